# The batched UDP path: drain the socket with recvmmsg, answer the batch in C without the GIL,
# reply with sendmmsg. The steps work on a plain C struct (UdpState) so that both drivers share
# them: the event loop's reader callback (UdpResponder.on_readable, Python once per batch) and
# the native receive thread (udp_thread.pxi, no Python on the wake-up path at all).

cdef extern from "<sys/uio.h>":
    struct iovec:
        void* iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>":
    ctypedef unsigned int socklen_t
    struct sockaddr_storage:
        pass
    struct msghdr:
        void* msg_name
        socklen_t msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, void* timeout) nogil
    int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) nogil
    int MSG_DONTWAIT
    int MSG_TRUNC
    int MSG_WAITFORONE

cdef extern from "<errno.h>":
    int errno
    int EINTR

cdef enum:
    UDP_BATCH = 64
    UDP_QUERY_MAX = 4096         # larger datagrams are not queries we answer (MSG_TRUNC)
    UDP_ROUNDS = 16              # batches per readiness callback: fairness with TCP


cdef enum:
    AF_INET_ = 2
    AF_INET6_ = 10


cdef void client_from_sockaddr(const uint8_t* sa, socklen_t length,
                               Client* client) noexcept nogil:
    """sockaddr_in / sockaddr_in6 -> Client; an IPv4-mapped IPv6 address counts as IPv4."""
    cdef uint16_t family = (<const uint16_t*> sa)[0]
    cdef int i
    client.scope = 0
    memset(client.addr, 0, 16)
    if family == AF_INET_ and length >= 8:
        memcpy(client.addr, sa + 4, 4)
        client.family = 4
        client.prefix = 32
    elif family == AF_INET6_ and length >= 24:
        for i in range(10):
            if sa[8 + i] != 0:
                break
        else:
            if sa[18] == 0xFF and sa[19] == 0xFF:
                memcpy(client.addr, sa + 20, 4)
                client.family = 4
                client.prefix = 32
                return
        memcpy(client.addr, sa + 8, 16)
        client.family = 6
        client.prefix = 128
    else:
        client.family = 0
        client.prefix = 0


ctypedef struct UdpState:
    int fd
    bint read_shut           # shutdown(SHUT_RD) was called: see udp_receive
    CatalogC cat             # a copy of the served Catalog's C view, policy.rng -> rng
    uint64_t rng             # this socket's own generator: the TCP path uses the Catalog's
    uint64_t* row            # the shared counter row
    CountBatch counts        # this batch's counts, added to row by count_flush
    mmsghdr* rmsgs
    mmsghdr* smsgs
    iovec* riov
    iovec* siov
    sockaddr_storage* addrs
    uint8_t* rbufs
    uint8_t* sbufs
    AnswerInfo* infos
    Py_ssize_t* lens


cdef int udp_state_init(UdpState* s, int fd, uint64_t* row) noexcept:
    """Allocate the batch buffers; -1 when out of memory (``udp_state_free`` either way)."""
    cdef int i
    memset(s, 0, sizeof(UdpState))
    s.fd = fd
    s.row = row
    s.rmsgs = <mmsghdr*> PyMem_Malloc(sizeof(mmsghdr) * UDP_BATCH)
    s.smsgs = <mmsghdr*> PyMem_Malloc(sizeof(mmsghdr) * UDP_BATCH)
    s.riov = <iovec*> PyMem_Malloc(sizeof(iovec) * UDP_BATCH)
    s.siov = <iovec*> PyMem_Malloc(sizeof(iovec) * UDP_BATCH)
    s.addrs = <sockaddr_storage*> PyMem_Malloc(sizeof(sockaddr_storage) * UDP_BATCH)
    s.rbufs = <uint8_t*> PyMem_Malloc(UDP_QUERY_MAX * UDP_BATCH)
    s.sbufs = <uint8_t*> PyMem_Malloc(<size_t> OUT_BUFFER * UDP_BATCH)
    s.infos = <AnswerInfo*> PyMem_Malloc(sizeof(AnswerInfo) * UDP_BATCH)
    s.lens = <Py_ssize_t*> PyMem_Malloc(sizeof(Py_ssize_t) * UDP_BATCH)
    if not (s.rmsgs and s.smsgs and s.riov and s.siov and s.addrs and
            s.rbufs and s.sbufs and s.infos and s.lens):
        return -1
    memset(s.rmsgs, 0, sizeof(mmsghdr) * UDP_BATCH)
    memset(s.smsgs, 0, sizeof(mmsghdr) * UDP_BATCH)
    for i in range(UDP_BATCH):
        s.riov[i].iov_base = s.rbufs + i * UDP_QUERY_MAX
        s.riov[i].iov_len = UDP_QUERY_MAX
        s.rmsgs[i].msg_hdr.msg_iov = &s.riov[i]
        s.rmsgs[i].msg_hdr.msg_iovlen = 1
        s.rmsgs[i].msg_hdr.msg_name = &s.addrs[i]
        s.smsgs[i].msg_hdr.msg_iov = &s.siov[i]
        s.smsgs[i].msg_hdr.msg_iovlen = 1
    return 0


cdef void udp_state_free(UdpState* s) noexcept:
    PyMem_Free(s.rmsgs)
    PyMem_Free(s.smsgs)
    PyMem_Free(s.riov)
    PyMem_Free(s.siov)
    PyMem_Free(s.addrs)
    PyMem_Free(s.rbufs)
    PyMem_Free(s.sbufs)
    PyMem_Free(s.infos)
    PyMem_Free(s.lens)


cdef int udp_receive(UdpState* s, int flags) noexcept nogil:
    """recvmmsg a batch (``flags``: MSG_DONTWAIT, or MSG_WAITFORONE on a blocking socket); the
    number of datagrams, 0 when none, -1 with errno on error."""
    cdef int n, i
    for i in range(UDP_BATCH):
        s.rmsgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
        s.rmsgs[i].msg_hdr.msg_flags = 0
    while True:
        n = recvmmsg(s.fd, s.rmsgs, UDP_BATCH, flags, NULL)
        if n >= 0 or errno != EINTR:
            break
    if n > 0 and s.read_shut:
        # After shutdown(SHUT_RD) (how the receive thread is woken to stop) every receive that
        # finds the queue empty returns end-of-file, so recvmmsg fills the batch with empty
        # entries; the datagrams really queued come first.
        for i in range(n):
            if s.rmsgs[i].msg_len == 0:
                return i
    return n


cdef int udp_answer(UdpState* s, int n) noexcept nogil:
    """Answer the ``n`` datagrams received, counting into ``s.counts``; the number of replies
    prepared in ``s.smsgs``."""
    cdef int i, k = 0
    cdef Client peer
    for i in range(n):
        if s.rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC:
            s.lens[i] = 0   # an oversize datagram: not a query we answer
            s.infos[i].malformed = True
            s.infos[i].control = False
            s.infos[i].zone = -1
            s.infos[i].qname_len = 0
            s.infos[i].qtype = 0
            s.infos[i].rcode = -1
        else:
            client_from_sockaddr(<const uint8_t*> &s.addrs[i],
                                 s.rmsgs[i].msg_hdr.msg_namelen, &peer)
            s.lens[i] = answer_query(&s.cat, s.rbufs + i * UDP_QUERY_MAX,
                                     s.rmsgs[i].msg_len, False,
                                     s.sbufs + <size_t> i * OUT_BUFFER, &s.infos[i], &peer)
        count_answer(s.counts.n, False, &s.infos[i], s.sbufs + <size_t> i * OUT_BUFFER,
                     s.lens[i])
        if s.lens[i] > 0:
            s.siov[k].iov_base = s.sbufs + <size_t> i * OUT_BUFFER
            s.siov[k].iov_len = s.lens[i]
            s.smsgs[k].msg_hdr.msg_name = &s.addrs[i]
            s.smsgs[k].msg_hdr.msg_namelen = s.rmsgs[i].msg_hdr.msg_namelen
            k += 1
    return k


cdef void udp_send(UdpState* s, int k) noexcept nogil:
    """sendmmsg the ``k`` replies prepared, then add the batch's counts to the shared row."""
    cdef int sent = 0, r
    while sent < k:
        r = sendmmsg(s.fd, s.smsgs + sent, k - sent, MSG_DONTWAIT)
        if r < 0:
            if errno == EINTR:
                continue
            # Socket buffer full or a transient error: these answers are lost; count them.
            s.counts.n[C_SEND_ERRORS] += k - sent
            break
        sent += r
    count_flush(s.row, &s.counts)


cdef int udp_rcode(const UdpState* s, int i) noexcept nogil:
    """The query log's rcode for datagram ``i`` of the batch: -1 when it got no answer."""
    if s.infos[i].rcode >= 0 or s.lens[i] == 0:
        return s.infos[i].rcode
    return s.sbufs[<size_t> i * OUT_BUFFER + 3] & 0x0F
