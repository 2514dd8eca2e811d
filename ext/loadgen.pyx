# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""fastdns's DNS load generator: UDP queries at a fixed rate or as fast as allowed, per-response
latency in a log-linear histogram.

Not part of the server: ``python -m fastdns bench`` drives it (``fastdns.bench.load``). The send
and receive loop is plain C and runs without the GIL; it returns to Python at least every 100 ms
so the caller can show progress and Ctrl-C works.

How a run works:

- A few connected, non-blocking UDP sockets to the target (different source ports, so a server's
  SO_REUSEPORT workers all get a share). Queries are sent with ``sendmmsg`` in batches and the
  answers read with ``recvmmsg``.
- Each socket has an outstanding table indexed by the 16-bit query ID: the send time
  (CLOCK_MONOTONIC ns, 0 = free) and which query was sent. IDs are handed out in turn, skipping
  the ones still outstanding, and never more than ``PER_SOCKET_LIMIT`` per socket are out, so
  a free ID always exists. A response must match an outstanding ID and echo the question.
- Offered rate: a token bucket by time (``rate`` queries per second; tokens older than the burst
  allowance are dropped and counted as ``skipped``), sending at most every ``tick`` so bursts
  stay small. ``rate == 0``: as fast as possible with at most ``max_outstanding`` queries out.
- Timeouts: every send is also appended to a FIFO in send order, so the oldest outstanding query
  is at its head; a query unanswered ``timeout`` after it was sent is lost (and its ID free
  again). After ``duration`` no more queries are sent and the run waits up to ``timeout`` for
  the last answers.
- Latency histogram: log-linear, exact below 256 ns, then 128 buckets per power of two (each
  bucket at most 1/128 of its value wide: better than 1 % from 1 us to beyond 10 s).
"""

import socket as _socket

from cpython.exc cimport PyErr_CheckSignals
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport EAGAIN, ECONNREFUSED, EINTR, ENOBUFS, errno
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.uio cimport iovec


cdef extern from "<sys/socket.h>" nogil:
    cdef struct msghdr:
        void* msg_name
        unsigned int msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags

    cdef struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len

    int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags)
    int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout)
    int MSG_DONTWAIT
    int MSG_TRUNC


cdef extern from "<poll.h>" nogil:
    cdef struct pollfd:
        int fd
        short events
        short revents

    int ppoll(pollfd* fds, unsigned long nfds, const timespec* timeout, const void* sigmask)
    short POLLIN
    short POLLERR


cdef extern from "<sys/prctl.h>" nogil:
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5)
    int PR_SET_TIMERSLACK
    int PR_GET_TIMERSLACK


cdef extern from * nogil:
    int __builtin_clzll(unsigned long long x)


cdef enum:
    SUB_BITS = 7  # 128 buckets per power of two
    SUB_COUNT = 128
    LINEAR_LIMIT = 256  # values below are counted exactly
    MAX_EXPONENT = 40  # 2**40 ns (18 min) and more land in the last bucket
    HISTOGRAM_BUCKETS = LINEAR_LIMIT + (MAX_EXPONENT - 8) * SUB_COUNT

    MAX_SOCKETS = 64
    ID_SPACE = 65536
    PER_SOCKET_LIMIT = 60000  # keeps free IDs in every socket's table
    MAX_QUERY = 512  # longest query accepted (a name is at most 255 bytes)
    MAX_BATCH = 64
    RECV_BATCH = 64
    RECV_BYTES = 512  # enough for header + question; longer responses are read truncated
    RING_SIZE = 1 << 20  # sends remembered for timeouts: 1 s of 1M qps

    LOOP_CONTINUE = 0  # returned to Python for progress and signals; call again
    LOOP_DONE = 1

BUCKET_COUNT = HISTOGRAM_BUCKETS


cdef struct QuerySlot:
    uint32_t offset  # into the query buffer
    uint16_t length
    uint16_t question_length  # bytes of the question after the header; 0: not checked


cdef struct Pending:
    uint64_t sent_ns
    uint32_t slot  # socket * ID_SPACE + query ID


cdef struct Stats:
    uint64_t sent
    uint64_t answered
    uint64_t lost
    uint64_t late  # answers to an ID that is no longer outstanding (after a timeout)
    uint64_t mismatched  # not a response, too short, or the question differs
    uint64_t truncated
    uint64_t skipped  # rate tokens dropped because the generator fell behind or hit the cap
    uint64_t send_errors
    uint64_t recv_errors
    uint64_t bytes_sent
    uint64_t bytes_received
    uint64_t latency_sum_ns
    uint64_t latency_min_ns
    uint64_t latency_max_ns
    uint64_t rcodes[16]


cdef inline uint64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t> ts.tv_sec * 1000000000ULL + <uint64_t> ts.tv_nsec


cdef inline uint32_t bucket_of(uint64_t ns) noexcept nogil:
    cdef int e
    if ns < LINEAR_LIMIT:
        return <uint32_t> ns
    e = 63 - __builtin_clzll(ns)
    if e >= MAX_EXPONENT:
        return HISTOGRAM_BUCKETS - 1
    return <uint32_t> (LINEAR_LIMIT + (e - 8) * SUB_COUNT
                       + ((ns >> (e - SUB_BITS)) - SUB_COUNT))


def bucket_index(uint64_t ns):
    """The histogram bucket that counts a latency of ``ns`` nanoseconds."""
    return bucket_of(ns)


def bucket_bounds(uint32_t index):
    """``(low, high)``: the latencies in ns that bucket ``index`` counts, ``low <= x < high``."""
    cdef uint32_t k, e, m
    if index >= HISTOGRAM_BUCKETS:
        raise IndexError(f"histogram bucket {index} out of range")
    if index < LINEAR_LIMIT:
        return index, index + 1
    k = index - LINEAR_LIMIT
    e = 8 + k // SUB_COUNT
    m = SUB_COUNT + k % SUB_COUNT
    return (<uint64_t> m) << (e - SUB_BITS), (<uint64_t> (m + 1)) << (e - SUB_BITS)


cdef uint16_t question_length(const uint8_t* q, uint32_t n) noexcept nogil:
    """Length of the first question (uncompressed name + type + class), 0 if not parseable."""
    cdef uint32_t pos = 12
    if n < 12 or q[4] != 0 or q[5] != 1:
        return 0
    while pos < n and q[pos] != 0:
        if q[pos] > 63:
            return 0
        pos += 1 + q[pos]
    if pos + 5 > n:
        return 0
    return <uint16_t> (pos + 5 - 12)


cdef inline uint8_t fold(uint8_t c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef class LoadGenerator:
    """One load run against one UDP server.

    ``LoadGenerator(host, port, queries, rate=0.0, max_outstanding=0, timeout=1.0, sockets=4,
    batch=32, tick=100e-6)``: ``queries`` are wire-format DNS queries (their IDs are replaced),
    sent in turn, cycling; ``rate`` queries per second, 0 for as fast as ``max_outstanding``
    (default 200 then; default for a fixed rate: no cap but the ID space) allows. ``run()`` once.
    """

    cdef:
        object _sockets
        int nsock
        pollfd fds[MAX_SOCKETS]
        uint16_t next_id[MAX_SOCKETS]
        uint32_t sock_outstanding[MAX_SOCKETS]
        uint8_t* qbuf
        QuerySlot* queries
        uint32_t nqueries
        uint32_t next_query
        uint64_t* sent_at
        uint32_t* query_of
        Pending* ring
        uint64_t ring_head
        uint64_t ring_tail
        uint64_t outstanding
        uint64_t max_outstanding
        double rate_per_ns
        uint64_t burst
        uint64_t issued
        uint64_t timeout_ns
        uint64_t tick_ns
        uint32_t batch
        uint32_t rr
        uint64_t t0
        uint64_t send_end
        uint64_t drain_end
        uint64_t finished_at
        bint ran
        Stats stats
        uint64_t* hist
        mmsghdr smsg[MAX_BATCH]
        iovec siov[MAX_BATCH]
        uint8_t sbuf[MAX_BATCH * MAX_QUERY]
        uint32_t squery[MAX_BATCH]
        uint16_t sid[MAX_BATCH]
        mmsghdr rmsg[RECV_BATCH]
        iovec riov[RECV_BATCH]
        uint8_t rbuf[RECV_BATCH * RECV_BYTES]

    def __cinit__(self):
        self.qbuf = NULL
        self.queries = NULL
        self.sent_at = NULL
        self.query_of = NULL
        self.ring = NULL
        self.hist = NULL
        self._sockets = []

    def __init__(self, str host, int port, queries, *, double rate=0.0, int max_outstanding=0,
                 double timeout=1.0, int sockets=4, int batch=32, double tick=100e-6):
        cdef Py_ssize_t total = 0, n = 0
        cdef bytes q
        cdef uint32_t i, off = 0
        cdef int k
        queries = [bytes(x) for x in queries]
        if not queries:
            raise ValueError("no queries to send")
        for q in queries:
            if not 12 <= len(q) <= MAX_QUERY:
                raise ValueError(f"a query must be 12 to {MAX_QUERY} bytes, not {len(q)}")
            total += len(q)
        if not 1 <= sockets <= MAX_SOCKETS:
            raise ValueError(f"sockets must be 1 to {MAX_SOCKETS}")
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch must be 1 to {MAX_BATCH}")
        if rate < 0 or timeout <= 0 or tick <= 0:
            raise ValueError("rate, timeout and tick must be positive")
        n = len(queries)
        self.qbuf = <uint8_t*> PyMem_Malloc(total)
        self.queries = <QuerySlot*> PyMem_Malloc(n * sizeof(QuerySlot))
        self.sent_at = <uint64_t*> PyMem_Malloc(sockets * ID_SPACE * sizeof(uint64_t))
        self.query_of = <uint32_t*> PyMem_Malloc(sockets * ID_SPACE * sizeof(uint32_t))
        self.ring = <Pending*> PyMem_Malloc(RING_SIZE * sizeof(Pending))
        self.hist = <uint64_t*> PyMem_Malloc(HISTOGRAM_BUCKETS * sizeof(uint64_t))
        if (self.qbuf == NULL or self.queries == NULL or self.sent_at == NULL
                or self.query_of == NULL or self.ring == NULL or self.hist == NULL):
            raise MemoryError()
        for i in range(n):
            q = queries[i]
            memcpy(self.qbuf + off, <const uint8_t*> q, len(q))
            self.queries[i].offset = off
            self.queries[i].length = <uint16_t> len(q)
            self.queries[i].question_length = question_length(self.qbuf + off, len(q))
            off += len(q)
        self.nqueries = <uint32_t> n
        memset(self.sent_at, 0, sockets * ID_SPACE * sizeof(uint64_t))
        memset(self.hist, 0, HISTOGRAM_BUCKETS * sizeof(uint64_t))
        memset(&self.stats, 0, sizeof(Stats))
        self.stats.latency_min_ns = <uint64_t> -1

        limit = sockets * PER_SOCKET_LIMIT
        if max_outstanding <= 0:
            max_outstanding = limit if rate > 0 else 200
        self.max_outstanding = min(max_outstanding, limit, RING_SIZE)
        self.rate_per_ns = rate / 1e9
        # A stalled generator may catch up by at most 10 ms of queries (and one batch).
        self.burst = max(<uint64_t> batch, <uint64_t> (rate * 0.01))
        self.timeout_ns = <uint64_t> (timeout * 1e9)
        self.tick_ns = <uint64_t> (tick * 1e9)
        self.batch = batch

        import random
        family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        for k in range(sockets):
            sock = _socket.socket(family, _socket.SOCK_DGRAM)
            self._sockets.append(sock)
            for opt, force in ((_socket.SO_RCVBUF, 33), (_socket.SO_SNDBUF, 32)):
                try:  # SO_RCVBUFFORCE / SO_SNDBUFFORCE pass rmem_max when permitted
                    sock.setsockopt(_socket.SOL_SOCKET, force, 4 << 20)
                except OSError:
                    sock.setsockopt(_socket.SOL_SOCKET, opt, 4 << 20)
            sock.connect((host, port))
            sock.setblocking(False)
            self.fds[k].fd = sock.fileno()
            self.fds[k].events = POLLIN
            self.next_id[k] = random.randrange(ID_SPACE)
            self.sock_outstanding[k] = 0
        self.nsock = sockets
        for k in range(MAX_BATCH):
            self.siov[k].iov_base = self.sbuf + k * MAX_QUERY
            memset(&self.smsg[k], 0, sizeof(mmsghdr))
            self.smsg[k].msg_hdr.msg_iov = &self.siov[k]
            self.smsg[k].msg_hdr.msg_iovlen = 1
        for k in range(RECV_BATCH):
            self.riov[k].iov_base = self.rbuf + k * RECV_BYTES
            self.riov[k].iov_len = RECV_BYTES
            memset(&self.rmsg[k], 0, sizeof(mmsghdr))
            self.rmsg[k].msg_hdr.msg_iov = &self.riov[k]
            self.rmsg[k].msg_hdr.msg_iovlen = 1

    def __dealloc__(self):
        PyMem_Free(self.qbuf)
        PyMem_Free(self.queries)
        PyMem_Free(self.sent_at)
        PyMem_Free(self.query_of)
        PyMem_Free(self.ring)
        PyMem_Free(self.hist)

    def run(self, double duration, progress=None, double progress_interval=1.0):
        """Send for ``duration`` seconds, then wait up to ``timeout`` for the last answers.

        ``progress(snapshot)`` is called about every ``progress_interval`` seconds with the
        counters so far (the ``result()`` keys without the histogram). Returns ``result()``.
        A ``KeyboardInterrupt`` (or an exception from ``progress``) stops the run and is raised.
        """
        cdef int state
        cdef uint64_t until, next_progress, interval_ns
        cdef long old_slack
        if self.ran:
            raise RuntimeError("a LoadGenerator runs once")
        if duration <= 0:
            raise ValueError("duration must be positive")
        self.ran = True
        interval_ns = <uint64_t> (max(progress_interval, 0.01) * 1e9)
        # ppoll sleeps short intervals; the default 50 us timer slack would stretch them.
        old_slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)
        prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)
        try:
            self.t0 = now_ns()
            self.send_end = self.t0 + <uint64_t> (duration * 1e9)
            self.drain_end = self.send_end + self.timeout_ns
            next_progress = self.t0 + interval_ns
            while True:
                until = min(next_progress, now_ns() + 100000000ULL)
                with nogil:
                    state = self._loop(until)
                PyErr_CheckSignals()
                if state == LOOP_DONE:
                    break
                if now_ns() >= next_progress:
                    next_progress += interval_ns
                    if progress is not None:
                        progress(self._counters())
        finally:
            if old_slack > 0:
                prctl(PR_SET_TIMERSLACK, <unsigned long> old_slack, 0, 0, 0)
            if self.finished_at == 0:
                self.finished_at = now_ns()
            for sock in self._sockets:
                sock.close()
        return self.result()

    def result(self):
        """Counters, ``rcodes`` {rcode: count}, latency sum/min/max in ns, ``histogram``
        {bucket index: count} and ``duration_s`` (sending) / ``elapsed_s`` (with the drain)."""
        cdef uint32_t i
        out = self._counters()
        out["histogram"] = {i: self.hist[i] for i in range(HISTOGRAM_BUCKETS) if self.hist[i]}
        return out

    cdef dict _counters(self):
        cdef Stats* s = &self.stats
        cdef int i
        cdef uint64_t now = self.finished_at if self.finished_at else now_ns()
        cdef uint64_t send_end = min(now, self.send_end)
        return {
            "duration_s": (send_end - self.t0) / 1e9 if self.t0 else 0.0,
            "elapsed_s": (now - self.t0) / 1e9 if self.t0 else 0.0,
            "sent": s.sent,
            "answered": s.answered,
            "lost": s.lost,
            "outstanding": self.outstanding,
            "late": s.late,
            "mismatched": s.mismatched,
            "truncated": s.truncated,
            "skipped": s.skipped,
            "send_errors": s.send_errors,
            "recv_errors": s.recv_errors,
            "bytes_sent": s.bytes_sent,
            "bytes_received": s.bytes_received,
            "latency_sum_ns": s.latency_sum_ns,
            "latency_min_ns": s.latency_min_ns if s.answered else 0,
            "latency_max_ns": s.latency_max_ns,
            "rcodes": {i: s.rcodes[i] for i in range(16) if s.rcodes[i]},
            "sockets": self.nsock,
        }

    cdef int _loop(self, uint64_t until) noexcept nogil:
        """Send, receive and expire until ``until`` (LOOP_CONTINUE) or the run is over."""
        cdef uint64_t now, wake, token_at
        cdef timespec wait
        cdef int ready, k
        cdef bint sending
        while True:
            now = now_ns()
            sending = now < self.send_end
            if not sending and (self.outstanding == 0 or now >= self.drain_end):
                self._expire(<uint64_t> -1)  # what is still out now is lost
                self.finished_at = now
                return LOOP_DONE
            if now >= until:
                return LOOP_CONTINUE
            self._expire(now)
            wake = until
            if sending:
                self._send_due(now)
                if self.rate_per_ns > 0:
                    # Next send: one tick from now, or when the next token is due if later.
                    token_at = self.t0 + <uint64_t> ((self.issued + 1) / self.rate_per_ns)
                    wake = min(wake, max(now + self.tick_ns, token_at))
                elif self.outstanding < self.max_outstanding:
                    wake = min(wake, now + self.tick_ns)  # the socket buffer was full
                wake = min(wake, self.send_end)
            else:
                wake = min(wake, self.drain_end)
            if self.ring_head != self.ring_tail:
                wake = min(wake, self.ring[self.ring_head & (RING_SIZE - 1)].sent_ns
                           + self.timeout_ns)
            now = now_ns()
            wait.tv_sec = 0
            wait.tv_nsec = 0
            if wake > now:
                wait.tv_sec = (wake - now) // 1000000000ULL
                wait.tv_nsec = (wake - now) % 1000000000ULL
            ready = ppoll(self.fds, self.nsock, &wait, NULL)
            if ready > 0:
                for k in range(self.nsock):
                    if self.fds[k].revents:
                        self._receive(k)

    cdef void _send_due(self, uint64_t now) noexcept nogil:
        cdef uint64_t due, want, room, t
        cdef uint32_t n, k, s, tries
        cdef int sent
        if self.rate_per_ns > 0:
            due = <uint64_t> ((now - self.t0) * self.rate_per_ns)
            if due > self.issued + self.burst:
                self.stats.skipped += due - self.issued - self.burst
                self.issued = due - self.burst
            want = due - self.issued if due > self.issued else 0
        else:
            want = self.max_outstanding
        room = self.max_outstanding - self.outstanding if self.max_outstanding > self.outstanding \
            else 0
        if RING_SIZE - (self.ring_tail - self.ring_head) < room:
            room = RING_SIZE - (self.ring_tail - self.ring_head)
        want = min(want, room)
        while want > 0:
            n = <uint32_t> min(want, <uint64_t> self.batch)
            s = self.rr
            tries = 0
            while self.sock_outstanding[s] + n > PER_SOCKET_LIMIT:
                s = (s + 1) % self.nsock
                tries += 1
                if tries == self.nsock:
                    return
            self.rr = (s + 1) % self.nsock
            for k in range(n):
                self._prepare(s, k)
            # The send time is taken before the batch goes out: a server on another CPU may
            # answer the first queries while sendmmsg is still sending the rest.
            t = now_ns()
            sent = sendmmsg(self.fds[s].fd, self.smsg, n, 0)
            if sent < 0:
                if errno != EAGAIN and errno != ENOBUFS \
                        and errno != EINTR:
                    self.stats.send_errors += 1
                return
            self._commit(s, <uint32_t> sent, t)
            if self.rate_per_ns > 0:
                self.issued += <uint64_t> sent
            want -= <uint64_t> sent
            if <uint32_t> sent < n:
                return

    cdef inline void _prepare(self, uint32_t s, uint32_t k) noexcept nogil:
        """Fill send slot ``k`` with the next query under a free ID of socket ``s``."""
        cdef uint32_t qi = self.next_query
        cdef QuerySlot* q = &self.queries[qi]
        cdef uint8_t* buf = self.sbuf + k * MAX_QUERY
        cdef uint16_t qid = self.next_id[s]
        cdef uint64_t* table = self.sent_at + <uint64_t> s * ID_SPACE
        while table[qid] != 0:  # still outstanding: skip (a free ID exists, see the limit)
            qid += 1
        self.next_id[s] = qid + 1
        self.next_query = qi + 1 if qi + 1 < self.nqueries else 0
        memcpy(buf, self.qbuf + q.offset, q.length)
        buf[0] = qid >> 8
        buf[1] = qid & 0xFF
        self.siov[k].iov_len = q.length
        self.squery[k] = qi
        self.sid[k] = qid

    cdef void _commit(self, uint32_t s, uint32_t sent, uint64_t t) noexcept nogil:
        """Record the first ``sent`` prepared queries as outstanding since ``t``."""
        cdef uint32_t k, slot
        cdef Pending* p
        for k in range(sent):
            slot = s * ID_SPACE + self.sid[k]
            self.sent_at[slot] = t
            self.query_of[slot] = self.squery[k]
            p = &self.ring[self.ring_tail & (RING_SIZE - 1)]
            p.sent_ns = t
            p.slot = slot
            self.ring_tail += 1
            self.stats.bytes_sent += self.siov[k].iov_len
        self.stats.sent += sent
        self.outstanding += sent
        self.sock_outstanding[s] += sent

    cdef void _expire(self, uint64_t now) noexcept nogil:
        """Drop answered entries from the head of the send FIFO; count expired ones as lost."""
        cdef Pending* p
        while self.ring_head != self.ring_tail:
            p = &self.ring[self.ring_head & (RING_SIZE - 1)]
            if self.sent_at[p.slot] == p.sent_ns:
                if now - p.sent_ns < self.timeout_ns and now != <uint64_t> -1:
                    return
                self.sent_at[p.slot] = 0
                self.outstanding -= 1
                self.sock_outstanding[p.slot // ID_SPACE] -= 1
                self.stats.lost += 1
            self.ring_head += 1

    cdef void _receive(self, uint32_t s) noexcept nogil:
        cdef int got, k
        cdef uint64_t t
        while True:
            got = recvmmsg(self.fds[s].fd, self.rmsg, RECV_BATCH, MSG_DONTWAIT | MSG_TRUNC,
                           NULL)
            if got < 0:
                if errno == EINTR:
                    continue
                if errno == ECONNREFUSED:  # an ICMP port unreachable: nothing listens
                    self.stats.recv_errors += 1
                    continue
                if errno != EAGAIN:
                    self.stats.recv_errors += 1
                return
            t = now_ns()
            for k in range(got):
                self._match(s, self.rbuf + k * RECV_BYTES, self.rmsg[k].msg_len, t)
            if got < RECV_BATCH:
                return

    cdef inline void _match(self, uint32_t s, const uint8_t* p, uint32_t size,
                            uint64_t t) noexcept nogil:
        cdef uint32_t n = min(size, <uint32_t> RECV_BYTES)
        cdef uint32_t slot, i
        cdef uint64_t sent, latency
        cdef QuerySlot* q
        cdef const uint8_t* question
        if n < 12 or not (p[2] & 0x80):
            self.stats.mismatched += 1
            return
        slot = s * ID_SPACE + ((<uint32_t> p[0] << 8) | p[1])
        sent = self.sent_at[slot]
        if sent == 0:
            self.stats.late += 1
            return
        q = &self.queries[self.query_of[slot]]
        if q.question_length and (p[4] or p[5]):  # servers may leave out the question on errors
            if n < 12 + <uint32_t> q.question_length:
                self.stats.mismatched += 1
                return
            question = self.qbuf + q.offset + 12
            for i in range(q.question_length):
                if fold(p[12 + i]) != fold(question[i]):
                    self.stats.mismatched += 1
                    return
        self.sent_at[slot] = 0
        self.outstanding -= 1
        self.sock_outstanding[s] -= 1
        latency = t - sent
        self.stats.answered += 1
        self.stats.rcodes[p[3] & 0x0F] += 1
        if p[2] & 0x02:
            self.stats.truncated += 1
        self.stats.bytes_received += size
        self.stats.latency_sum_ns += latency
        if latency < self.stats.latency_min_ns:
            self.stats.latency_min_ns = latency
        if latency > self.stats.latency_max_ns:
            self.stats.latency_max_ns = latency
        self.hist[bucket_of(latency)] += 1
