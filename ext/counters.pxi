# Per-worker counters: one row of uint64 in a (usually shared) buffer. Only the worker writes its
# row, but from two threads when the UDP receive thread runs (ext/udp_thread.pxi) next to the
# event loop's TCP path, and both count rcodes: so answers are counted into a private row
# (``CountBatch``) and added to the shared one with relaxed atomic adds, once per UDP batch and
# once per TCP message. The supervisor reads aligned 64-bit words, which x86-64 and AArch64
# load untorn.

cdef extern from "udp_thread.h":
    void fd_counter_add(uint64_t* word, uint64_t n) noexcept nogil

cdef enum:
    C_QUERIES_UDP = 0
    C_QUERIES_TCP = 1
    C_RESPONSES_UDP = 2
    C_RESPONSES_TCP = 3
    C_RCODE_NOERROR = 4
    C_RCODE_FORMERR = 5
    C_RCODE_SERVFAIL = 6
    C_RCODE_NXDOMAIN = 7
    C_RCODE_NOTIMP = 8
    C_RCODE_REFUSED = 9
    C_RCODE_BADVERS = 10
    C_RCODE_OTHER = 11
    C_TRUNCATED = 12
    C_DROPPED = 13
    C_MALFORMED = 14
    C_SEND_ERRORS = 15
    C_HANDOFF_LOST = 16
    C_COUNT = 17
    C_SLOT_WORDS = 32        # room to add counters without changing the row size

COUNTER_NAMES = (
    "queries_udp", "queries_tcp", "responses_udp", "responses_tcp",
    "rcode_NOERROR", "rcode_FORMERR", "rcode_SERVFAIL", "rcode_NXDOMAIN", "rcode_NOTIMP",
    "rcode_REFUSED", "rcode_BADVERS", "rcode_other", "truncated", "dropped", "malformed",
    "send_errors", "handoff_lost",
)
COUNTER_SLOT_BYTES = C_SLOT_WORDS * 8


ctypedef struct CountBatch:
    uint64_t n[C_COUNT]


cdef inline void count_flush(uint64_t* row, CountBatch* batch) noexcept nogil:
    """Add ``batch`` to ``row`` (atomically, word by word) and zero it."""
    cdef int i
    for i in range(C_COUNT):
        if batch.n[i]:
            fd_counter_add(&row[i], batch.n[i])
            batch.n[i] = 0


cdef inline void count_answer(uint64_t* row, bint tcp, const AnswerInfo* info,
                              const uint8_t* out, Py_ssize_t n) noexcept nogil:
    cdef int rcode
    row[C_QUERIES_TCP if tcp else C_QUERIES_UDP] += 1
    if info.malformed:
        row[C_MALFORMED] += 1
    if n == 0:
        row[C_DROPPED] += 1
        return
    row[C_RESPONSES_TCP if tcp else C_RESPONSES_UDP] += 1
    rcode = info.rcode if info.rcode >= 0 else (out[3] & 0x0F)
    if rcode <= 5:
        row[C_RCODE_NOERROR + rcode] += 1
    elif rcode == 16:
        row[C_RCODE_BADVERS] += 1
    else:
        row[C_RCODE_OTHER] += 1
    if out[2] & 0x02:
        row[C_TRUNCATED] += 1


cdef class Counters:
    """One worker's row of counters inside a writable buffer (e.g. an mmap shared with the
    supervisor); ``Counters()`` alone makes a private row."""

    cdef object buffer
    cdef uint8_t[::1] view
    cdef uint64_t* row
    cdef readonly int slot

    def __cinit__(self, buffer=None, int slot=0):
        if buffer is None:
            buffer = bytearray(COUNTER_SLOT_BYTES)
        self.buffer = buffer
        self.view = buffer
        if slot < 0 or (slot + 1) * COUNTER_SLOT_BYTES > self.view.shape[0]:
            raise ValueError("counter slot outside the buffer")
        if (<size_t> &self.view[0]) % 8:
            raise ValueError("counter buffer must be 8-byte aligned")
        self.slot = slot
        self.row = <uint64_t*> &self.view[slot * COUNTER_SLOT_BYTES]

    def values(self):
        """The row as a list, in ``COUNTER_NAMES`` order."""
        return [self.row[i] for i in range(C_COUNT)]

    def as_dict(self):
        return dict(zip(COUNTER_NAMES, self.values()))
