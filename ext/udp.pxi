# The batched UDP path: drain the socket with recvmmsg, answer the batch in C without the GIL,
# reply with sendmmsg. Python runs once per batch (the event loop's reader callback), not per
# packet.

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


cdef class UdpResponder:
    """Answers every datagram waiting on a non-blocking UDP socket, a batch at a time.

    ``on_readable()`` is meant for ``loop.add_reader(fd, responder.on_readable)``.
    ``set_catalog()`` swaps the snapshot between batches, so a query sees one or the other.
    With ``set_query_log(callback)`` each batch is reported as a list of
    ``(zone_index, qname_wire, qtype, rcode, address_bytes)``; without it nothing is collected.
    With ``set_control(callback)``, each datagram the C answer leaves to the control plane
    (NOTIFY, UPDATE, IXFR) is passed on as ``callback(datagram, address_bytes)`` after its batch;
    without it such datagrams get no answer.
    """

    cdef int fd
    cdef Catalog catalog
    cdef Counters counters
    cdef uint64_t* row
    cdef object query_log
    cdef object control
    cdef mmsghdr* rmsgs
    cdef mmsghdr* smsgs
    cdef iovec* riov
    cdef iovec* siov
    cdef sockaddr_storage* addrs
    cdef uint8_t* rbufs
    cdef uint8_t* sbufs
    cdef AnswerInfo* infos
    cdef Py_ssize_t* lens

    def __cinit__(self, int fd, Catalog catalog not None, Counters counters=None):
        cdef int i
        self.fd = fd
        self.catalog = catalog
        self.counters = counters if counters is not None else Counters()
        self.row = self.counters.row
        self.query_log = None
        self.rmsgs = <mmsghdr*> PyMem_Malloc(sizeof(mmsghdr) * UDP_BATCH)
        self.smsgs = <mmsghdr*> PyMem_Malloc(sizeof(mmsghdr) * UDP_BATCH)
        self.riov = <iovec*> PyMem_Malloc(sizeof(iovec) * UDP_BATCH)
        self.siov = <iovec*> PyMem_Malloc(sizeof(iovec) * UDP_BATCH)
        self.addrs = <sockaddr_storage*> PyMem_Malloc(sizeof(sockaddr_storage) * UDP_BATCH)
        self.rbufs = <uint8_t*> PyMem_Malloc(UDP_QUERY_MAX * UDP_BATCH)
        self.sbufs = <uint8_t*> PyMem_Malloc(<size_t> OUT_BUFFER * UDP_BATCH)
        self.infos = <AnswerInfo*> PyMem_Malloc(sizeof(AnswerInfo) * UDP_BATCH)
        self.lens = <Py_ssize_t*> PyMem_Malloc(sizeof(Py_ssize_t) * UDP_BATCH)
        if not (self.rmsgs and self.smsgs and self.riov and self.siov and self.addrs and
                self.rbufs and self.sbufs and self.infos and self.lens):
            raise MemoryError()
        memset(self.rmsgs, 0, sizeof(mmsghdr) * UDP_BATCH)
        memset(self.smsgs, 0, sizeof(mmsghdr) * UDP_BATCH)
        for i in range(UDP_BATCH):
            self.riov[i].iov_base = self.rbufs + i * UDP_QUERY_MAX
            self.riov[i].iov_len = UDP_QUERY_MAX
            self.rmsgs[i].msg_hdr.msg_iov = &self.riov[i]
            self.rmsgs[i].msg_hdr.msg_iovlen = 1
            self.rmsgs[i].msg_hdr.msg_name = &self.addrs[i]
            self.smsgs[i].msg_hdr.msg_iov = &self.siov[i]
            self.smsgs[i].msg_hdr.msg_iovlen = 1

    def __dealloc__(self):
        PyMem_Free(self.rmsgs)
        PyMem_Free(self.smsgs)
        PyMem_Free(self.riov)
        PyMem_Free(self.siov)
        PyMem_Free(self.addrs)
        PyMem_Free(self.rbufs)
        PyMem_Free(self.sbufs)
        PyMem_Free(self.infos)
        PyMem_Free(self.lens)

    def set_catalog(self, Catalog catalog not None):
        self.catalog = catalog

    def set_query_log(self, callback):
        self.query_log = callback

    def set_control(self, callback):
        self.control = callback

    @property
    def counters(self):
        return self.counters

    cdef int batch(self) noexcept nogil:
        """One recvmmsg/answer/sendmmsg round; returns datagrams received (0: drained)."""
        cdef int n, i, k = 0, sent, r
        cdef const CatalogC* cat = &self.catalog.c
        cdef Client peer
        for i in range(UDP_BATCH):
            self.rmsgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            self.rmsgs[i].msg_hdr.msg_flags = 0
        while True:
            n = recvmmsg(self.fd, self.rmsgs, UDP_BATCH, MSG_DONTWAIT, NULL)
            if n >= 0 or errno != EINTR:
                break
        if n <= 0:
            return 0
        for i in range(n):
            if self.rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC:
                self.lens[i] = 0   # an oversize datagram: not a query we answer
                self.infos[i].malformed = True
                self.infos[i].control = False
                self.infos[i].zone = -1
                self.infos[i].qname_len = 0
                self.infos[i].qtype = 0
                self.infos[i].rcode = -1
            else:
                client_from_sockaddr(<const uint8_t*> &self.addrs[i],
                                     self.rmsgs[i].msg_hdr.msg_namelen, &peer)
                self.lens[i] = answer_query(cat, self.rbufs + i * UDP_QUERY_MAX,
                                            self.rmsgs[i].msg_len, False,
                                            self.sbufs + <size_t> i * OUT_BUFFER,
                                            &self.infos[i], &peer)
            count_answer(self.row, False, &self.infos[i], self.sbufs + <size_t> i * OUT_BUFFER,
                         self.lens[i])
            if self.lens[i] > 0:
                self.siov[k].iov_base = self.sbufs + <size_t> i * OUT_BUFFER
                self.siov[k].iov_len = self.lens[i]
                self.smsgs[k].msg_hdr.msg_name = &self.addrs[i]
                self.smsgs[k].msg_hdr.msg_namelen = self.rmsgs[i].msg_hdr.msg_namelen
                k += 1
        sent = 0
        while sent < k:
            r = sendmmsg(self.fd, self.smsgs + sent, k - sent, MSG_DONTWAIT)
            if r < 0:
                if errno == EINTR:
                    continue
                # Socket buffer full or a transient error: these answers are lost; count them.
                self.row[C_SEND_ERRORS] += k - sent
                break
            sent += r
        return n

    def on_readable(self):
        """Drain up to UDP_ROUNDS batches; returns the number of datagrams handled."""
        cdef int total = 0, n, rounds
        for rounds in range(UDP_ROUNDS):
            with nogil:
                n = self.batch()
            if n and self.query_log is not None:
                self._report(n)
            if n and self.control is not None:
                self._forward(n)
            total += n
            if n < UDP_BATCH:
                break
        return total

    cdef _forward(self, int n):
        cdef int i
        for i in range(n):
            if self.infos[i].control and self.lens[i] == 0:
                self.control(
                    PyBytes_FromStringAndSize(<char*> self.rbufs + i * UDP_QUERY_MAX,
                                              self.rmsgs[i].msg_len),
                    PyBytes_FromStringAndSize(<char*> &self.addrs[i],
                                              self.rmsgs[i].msg_hdr.msg_namelen),
                )

    cdef _report(self, int n):
        entries = []
        cdef int i
        cdef socklen_t alen
        for i in range(n):
            alen = self.rmsgs[i].msg_hdr.msg_namelen
            entries.append((
                self.infos[i].zone,
                PyBytes_FromStringAndSize(<char*> self.infos[i].qname, self.infos[i].qname_len),
                self.infos[i].qtype,
                self.infos[i].rcode if self.infos[i].rcode >= 0 or self.lens[i] == 0
                else (self.sbufs[<size_t> i * OUT_BUFFER + 3] & 0x0F),
                PyBytes_FromStringAndSize(<char*> &self.addrs[i], alen),
            ))
        self.query_log(entries)
