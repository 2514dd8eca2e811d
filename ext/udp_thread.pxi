# The native UDP receive loop (issue 3): one pthread per UDP socket blocks in recvmmsg, answers
# each batch with udp_answer and replies with sendmmsg, never taking the GIL. Python is off the
# wake-up path; it hears from the thread only through the handoff queue below, for what the C
# answer does not finish itself (query-log entries, NOTIFY, UPDATE and IXFR datagrams).
#
# Snapshot swaps: the thread holds ``UdpThread.lock`` (a plain mutex) while it answers a batch
# and queues its handoff records; ``UdpResponder.set_catalog`` takes the same lock to replace the
# catalog view. A batch is therefore answered wholly from the old catalog or wholly from the new
# one, and once set_catalog has released the lock the thread holds no pointer into the old one,
# so the old Catalog may be freed at once. An epoch scheme (RCU-like) would spare the thread its
# lock, but the lock is taken once per batch and is uncontended except during a swap (a futex
# lock/unlock without contention is two atomic instructions, no system call), which costs less
# than the bookkeeping an epoch needs to know when the old catalog can go.
#
# Stopping: a stop flag, then shutdown(SHUT_RD) on the socket, which makes a recvmmsg blocked in
# another thread return at once (Linux wakes every reader; later reads of an empty queue return
# end-of-file, which udp_receive recognises), then pthread_join. SO_RCVTIMEO bounds each blocking
# receive as well, so the flag is seen within THREAD_TICK_MS even on a kernel that did not wake
# the reader.

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_t:
        pass
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_create(pthread_t* thread, const void* attr, void* (*start)(void*) noexcept nogil,
                       void* arg)
    int pthread_join(pthread_t thread, void** result)
    int pthread_mutex_init(pthread_mutex_t* mutex, const void* attr)
    int pthread_mutex_destroy(pthread_mutex_t* mutex)
    int pthread_mutex_lock(pthread_mutex_t* mutex)
    int pthread_mutex_unlock(pthread_mutex_t* mutex)

cdef extern from "<signal.h>" nogil:
    ctypedef struct sigset_t:
        pass
    int sigfillset(sigset_t* set)
    int pthread_sigmask(int how, const sigset_t* set, sigset_t* old)
    int SIG_SETMASK

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    int EFD_NONBLOCK
    int EFD_CLOEXEC

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void* buf, size_t count)
    ssize_t write(int fd, const void* buf, size_t count)
    int close(int fd)
    int usleep(unsigned int usec)

cdef extern from "<fcntl.h>" nogil:
    int fcntl(int fd, int cmd, ...)
    int F_GETFL
    int F_SETFL
    int O_NONBLOCK

cdef extern from "<sys/time.h>" nogil:
    struct timeval:
        long tv_sec
        long tv_usec

cdef extern from "<sys/socket.h>" nogil:
    int shutdown(int fd, int how)
    int setsockopt(int fd, int level, int name, const void* value, socklen_t length)
    int SHUT_RD
    int SOL_SOCKET
    int SO_RCVTIMEO

cdef extern from "<errno.h>" nogil:
    int EAGAIN
    int EWOULDBLOCK

cdef extern from "udp_thread.h" nogil:
    int fd_flag_load(const int* flag)
    void fd_flag_store(int* flag, int value)


cdef enum:
    THREAD_TICK_MS = 500           # longest blocking receive: the stop flag's worst-case latency
    HANDOFF_BYTES = 1 << 20        # per queue half; beyond this, records are dropped (counted)
    HANDOFF_LOG = 1                # a query-log entry: data = QNAME wire
    HANDOFF_CONTROL = 2            # a datagram for the control plane: data = the datagram


ctypedef struct HandoffRecord:
    uint16_t kind
    uint16_t addr_len
    uint16_t data_len
    uint16_t qtype
    int32_t zone
    int32_t rcode
    # followed by addr_len octets of sockaddr, data_len octets of data, padding to 8


ctypedef struct UdpThread:
    UdpState* s
    pthread_mutex_t lock       # held per batch by the thread; see the top of this file
    pthread_t tid
    bint running
    int stop                   # fd_flag_load/fd_flag_store only
    int wake_fd                # eventfd the event loop watches; written when the queue fills up
    bint want_log              # collect query-log entries (set under lock)
    bint want_control          # collect control-plane datagrams (set under lock)
    uint8_t* fill              # the half the thread appends to (under lock)
    uint8_t* spare             # the half the loop reads, swapped in by handoff_take
    size_t used                # octets used in fill
    uint64_t lost              # records dropped because fill was full


cdef extern from *:
    """
    #define FD_HANDOFF_ALIGN(n) (((n) + 7u) & ~(size_t) 7u)
    """
    size_t FD_HANDOFF_ALIGN(size_t n) nogil


cdef bint handoff_put(UdpThread* t, uint16_t kind, const AnswerInfo* info, int rcode,
                      const void* addr, socklen_t addr_len, const uint8_t* data,
                      size_t data_len) noexcept nogil:
    """Queue one record (the caller holds the lock); false when the queue is full."""
    cdef size_t need = FD_HANDOFF_ALIGN(sizeof(HandoffRecord) + addr_len + data_len)
    cdef HandoffRecord* r
    if t.used + need > HANDOFF_BYTES:
        t.lost += 1
        t.s.counts.n[C_HANDOFF_LOST] += 1   # reaches the shared row with the batch's counts
        return False
    r = <HandoffRecord*> (t.fill + t.used)
    r.kind = kind
    r.addr_len = <uint16_t> addr_len
    r.data_len = <uint16_t> data_len
    r.qtype = info.qtype
    r.zone = info.zone
    r.rcode = rcode
    memcpy(<uint8_t*> r + sizeof(HandoffRecord), addr, addr_len)
    if data_len:
        memcpy(<uint8_t*> r + sizeof(HandoffRecord) + addr_len, data, data_len)
    t.used += need
    return True


cdef void handoff_batch(UdpThread* t, int n) noexcept nogil:
    """Queue what Python must see of the batch just answered (the caller holds the lock), in
    the order the event-loop path reports it: the batch's log entries, then its control
    datagrams."""
    cdef UdpState* s = t.s
    cdef int i
    if t.want_log:
        for i in range(n):
            handoff_put(t, HANDOFF_LOG, &s.infos[i], udp_rcode(s, i), &s.addrs[i],
                        s.rmsgs[i].msg_hdr.msg_namelen, s.infos[i].qname,
                        s.infos[i].qname_len)
    if t.want_control:
        for i in range(n):
            if s.infos[i].control and s.lens[i] == 0:
                handoff_put(t, HANDOFF_CONTROL, &s.infos[i], -1, &s.addrs[i],
                            s.rmsgs[i].msg_hdr.msg_namelen, s.rbufs + i * UDP_QUERY_MAX,
                            s.rmsgs[i].msg_len)


cdef size_t handoff_take(UdpThread* t) noexcept nogil:
    """Swap the queue halves (the caller holds the lock): what was queued is now in ``spare``,
    its size returned."""
    cdef uint8_t* full = t.fill
    cdef size_t used = t.used
    t.fill = t.spare
    t.spare = full
    t.used = 0
    return used


cdef void* udp_thread_main(void* arg) noexcept nogil:
    cdef UdpThread* t = <UdpThread*> arg
    cdef UdpState* s = t.s
    cdef int n, k
    cdef bint was_empty, wake
    cdef uint64_t one = 1
    while not fd_flag_load(&t.stop):
        # The socket is blocking while the thread runs: one system call waits and receives (a
        # batch of up to UDP_BATCH: MSG_WAITFORONE returns what is queued once one arrived).
        n = udp_receive(s, MSG_WAITFORONE)
        if n <= 0:
            if n < 0 and errno != EAGAIN and errno != EWOULDBLOCK:
                usleep(1000)   # an unexpected error (ENOMEM): do not spin on it
            continue
        pthread_mutex_lock(&t.lock)
        k = udp_answer(s, n)
        wake = False
        if t.want_log or t.want_control:
            was_empty = t.used == 0
            handoff_batch(t, n)
            # One wake-up per filling of the queue, however many batches land in it before the
            # loop runs: the loop reads the eventfd before it takes the queue (on_wake).
            wake = was_empty and t.used != 0
        pthread_mutex_unlock(&t.lock)
        udp_send(s, k)
        if wake:
            write(t.wake_fd, &one, sizeof(one))
    return NULL


cdef int udp_thread_start(UdpThread* t) noexcept nogil:
    """Put the socket in blocking mode (bounded by SO_RCVTIMEO) and start the thread; 0, or an
    errno value (the socket is left as it was)."""
    cdef timeval tick
    cdef sigset_t all_signals, old
    cdef int flags = fcntl(t.s.fd, F_GETFL)
    cdef int r
    if flags < 0:
        return errno
    tick.tv_sec = THREAD_TICK_MS // 1000
    tick.tv_usec = (THREAD_TICK_MS % 1000) * 1000
    if setsockopt(t.s.fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) != 0:
        return errno
    if fcntl(t.s.fd, F_SETFL, flags & ~O_NONBLOCK) != 0:
        return errno
    fd_flag_store(&t.stop, 0)
    # Signals stay with the main thread (Python handles them there; SIGTERM drains): the new
    # thread inherits a mask that blocks them all.
    sigfillset(&all_signals)
    pthread_sigmask(SIG_SETMASK, &all_signals, &old)
    r = pthread_create(&t.tid, NULL, udp_thread_main, t)
    pthread_sigmask(SIG_SETMASK, &old, NULL)
    if r != 0:
        fcntl(t.s.fd, F_SETFL, flags)
        return r
    t.running = True
    return 0


cdef void udp_thread_stop(UdpThread* t) noexcept nogil:
    """Stop and join the thread; the socket is non-blocking again and its reading side shut
    (queued datagrams can still be received: see udp_receive)."""
    cdef timeval none
    if not t.running:
        return
    fd_flag_store(&t.stop, 1)
    t.s.read_shut = True       # set before the wake-up the thread will see it after
    shutdown(t.s.fd, SHUT_RD)  # ENOTCONN for an unconnected socket, but the readers are woken
    pthread_join(t.tid, NULL)
    t.running = False
    none.tv_sec = 0
    none.tv_usec = 0
    setsockopt(t.s.fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none))
    fcntl(t.s.fd, F_SETFL, fcntl(t.s.fd, F_GETFL) | O_NONBLOCK)
