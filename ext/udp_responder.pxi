# UdpResponder: one UDP socket's answering, driven either by the event loop (on_readable) or by
# the native receive thread (start_thread; udp_thread.pxi). Both use the batch steps of udp.pxi.


cdef class UdpResponder:
    """Answers every datagram arriving on a UDP socket, a batch at a time.

    Two drivers, one per socket at a time:

    - event loop: ``loop.add_reader(fd, responder.on_readable)``; the socket must be
      non-blocking. Python runs once per batch.
    - native thread: ``wake_fd = responder.start_thread()`` then
      ``loop.add_reader(wake_fd, responder.on_wake)``. A C thread receives, answers and replies
      without the GIL; the loop is woken only to deliver query-log entries and control-plane
      datagrams. ``stop_thread()`` (before closing the socket) joins it; afterwards
      ``on_readable`` answers what is still queued.

    ``set_catalog()`` swaps the snapshot between batches, so a query sees one or the other.
    With ``set_query_log(callback)`` each batch is reported as a list of
    ``(zone_index, qname_wire, qtype, rcode, address_bytes)``; without it nothing is collected.
    With ``set_control(callback)``, each datagram the C answer leaves to the control plane
    (NOTIFY, UPDATE, IXFR) is passed on as ``callback(datagram, address_bytes)`` after its batch;
    without it such datagrams get no answer.
    """

    cdef UdpState s
    cdef UdpThread t
    cdef bint ready
    cdef Catalog catalog
    cdef Counters counters
    cdef object query_log
    cdef object control

    def __cinit__(self, int fd, Catalog catalog not None, Counters counters=None):
        import os

        self.counters = counters if counters is not None else Counters()
        if udp_state_init(&self.s, fd, self.counters.row) != 0:
            raise MemoryError()
        self.s.rng = int.from_bytes(os.urandom(8), "little") | 1
        memset(&self.t, 0, sizeof(UdpThread))
        self.t.s = &self.s
        self.t.wake_fd = -1
        pthread_mutex_init(&self.t.lock, NULL)
        self.ready = True
        self._install(catalog)

    def __dealloc__(self):
        if not self.ready:
            udp_state_free(&self.s)
            return
        with nogil:
            udp_thread_stop(&self.t)   # normally done by stop_thread(); never leave it running
        if self.t.wake_fd >= 0:
            close(self.t.wake_fd)
        PyMem_Free(self.t.fill)
        PyMem_Free(self.t.spare)
        pthread_mutex_destroy(&self.t.lock)
        udp_state_free(&self.s)

    cdef void _install(self, Catalog catalog) noexcept:
        """Point the batch state at ``catalog`` (on construction: no thread yet)."""
        self.s.cat = catalog.c
        self.s.cat.policy.rng = &self.s.rng
        self.catalog = catalog

    # The lock is taken and released inside one nogil block everywhere, so the loop never waits
    # for the GIL while it holds the lock (which would stall the thread's next batch).

    def set_catalog(self, Catalog catalog not None):
        """Answer from ``catalog`` from the next batch on. With the thread running, what it
        queued before the swap is delivered first (its zone indexes are the old catalog's)."""
        cdef size_t taken = 0
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            if self.t.running:
                taken = handoff_take(&self.t)
            self.s.cat = catalog.c
            self.s.cat.policy.rng = &self.s.rng
            pthread_mutex_unlock(&self.t.lock)
        # The thread holds no pointer into the old catalog now (see udp_thread.pxi): this may
        # free it.
        self.catalog = catalog
        if taken:
            self._deliver(taken)

    def set_query_log(self, callback):
        cdef bint on = callback is not None
        if on:
            self.query_log = callback
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            self.t.want_log = on
            pthread_mutex_unlock(&self.t.lock)
        self.query_log = callback

    def set_control(self, callback):
        cdef bint on = callback is not None
        if on:
            self.control = callback
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            self.t.want_control = on
            pthread_mutex_unlock(&self.t.lock)
        self.control = callback

    @property
    def counters(self):
        return self.counters

    @property
    def threaded(self):
        """Whether the native receive thread is serving the socket."""
        return bool(self.t.running)

    @property
    def handoff_lost(self):
        """Query-log entries and control datagrams the thread dropped because the event loop
        did not take them fast enough."""
        return self.t.lost

    # -- the native thread

    def start_thread(self):
        """Start the receive thread; returns the descriptor to watch with ``on_wake``."""
        cdef int err
        if self.t.running:
            raise RuntimeError("the receive thread is already running")
        if self.s.read_shut:
            # stop_thread shut the socket's reading side; a blocking receive would now return
            # end-of-file at once, forever.
            raise RuntimeError("the receive thread was stopped: this socket cannot be reused")
        if self.t.fill == NULL:
            self.t.fill = <uint8_t*> PyMem_Malloc(HANDOFF_BYTES)
            self.t.spare = <uint8_t*> PyMem_Malloc(HANDOFF_BYTES)
            if self.t.fill == NULL or self.t.spare == NULL:
                raise MemoryError()
        if self.t.wake_fd < 0:
            self.t.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
            if self.t.wake_fd < 0:
                raise OSError(errno, "eventfd failed")
        with nogil:
            err = udp_thread_start(&self.t)
        if err:
            raise OSError(err, "cannot start the UDP receive thread")
        return self.t.wake_fd

    def stop_thread(self):
        """Stop and join the thread, then deliver what it queued. Idempotent. The caller
        removes ``on_wake`` from the loop first; the wake descriptor stays open until the
        responder is freed."""
        with nogil:
            udp_thread_stop(&self.t)
        self.on_wake()

    def on_wake(self):
        """Deliver the query-log entries and control datagrams the thread queued."""
        cdef uint64_t value
        cdef size_t taken
        if self.t.wake_fd >= 0:
            # Read (reset) the eventfd before taking the queue: a batch queued after the take
            # writes it again, so nothing waits unseen.
            read(self.t.wake_fd, &value, sizeof(value))
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            taken = handoff_take(&self.t)
            pthread_mutex_unlock(&self.t.lock)
        if taken:
            self._deliver(taken)

    cdef _deliver(self, size_t size):
        """Hand the records in ``t.spare`` to the query log and the control callback."""
        cdef size_t pos = 0
        cdef const HandoffRecord* r
        cdef const char* addr
        entries = []
        controls = []
        while pos < size:
            r = <const HandoffRecord*> (self.t.spare + pos)
            addr = <const char*> r + sizeof(HandoffRecord)
            if r.kind == HANDOFF_LOG:
                entries.append((r.zone, PyBytes_FromStringAndSize(addr + r.addr_len, r.data_len),
                                r.qtype, r.rcode, PyBytes_FromStringAndSize(addr, r.addr_len)))
            else:
                controls.append((PyBytes_FromStringAndSize(addr + r.addr_len, r.data_len),
                                 PyBytes_FromStringAndSize(addr, r.addr_len)))
            pos += FD_HANDOFF_ALIGN(sizeof(HandoffRecord) + r.addr_len + r.data_len)
        # The callbacks may have been unset since the records were queued.
        if entries and self.query_log is not None:
            self.query_log(entries)
        if self.control is not None:
            for datagram, address in controls:
                self.control(datagram, address)

    # -- the event loop

    def on_readable(self):
        """Drain up to UDP_ROUNDS batches; returns the number of datagrams handled."""
        cdef int total = 0, n, k, rounds
        if self.t.running:
            raise RuntimeError("the receive thread serves this socket")
        for rounds in range(UDP_ROUNDS):
            with nogil:
                n = udp_receive(&self.s, MSG_DONTWAIT)
                if n > 0:
                    k = udp_answer(&self.s, n)
                    udp_send(&self.s, k)
            if n <= 0:
                break
            if self.query_log is not None:
                self._report(n)
            if self.control is not None:
                self._forward(n)
            total += n
            if n < UDP_BATCH:
                break
        return total

    cdef _forward(self, int n):
        cdef int i
        for i in range(n):
            if self.s.infos[i].control and self.s.lens[i] == 0:
                self.control(
                    PyBytes_FromStringAndSize(<char*> self.s.rbufs + i * UDP_QUERY_MAX,
                                              self.s.rmsgs[i].msg_len),
                    PyBytes_FromStringAndSize(<char*> &self.s.addrs[i],
                                              self.s.rmsgs[i].msg_hdr.msg_namelen),
                )

    cdef _report(self, int n):
        entries = []
        cdef int i
        for i in range(n):
            entries.append((
                self.s.infos[i].zone,
                PyBytes_FromStringAndSize(<char*> self.s.infos[i].qname,
                                          self.s.infos[i].qname_len),
                self.s.infos[i].qtype,
                udp_rcode(&self.s, i),
                PyBytes_FromStringAndSize(<char*> &self.s.addrs[i],
                                          self.s.rmsgs[i].msg_hdr.msg_namelen),
            ))
        self.query_log(entries)
