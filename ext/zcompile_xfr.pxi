# -- zone transfer responses read into compile_packed's records (issue 8) -----------------------
#
# A secondary zone of a million records arrives as a few thousand AXFR messages (RFC 5936) of
# compressed RFC 1035 wire. dnspython makes an rdata object of every record (seconds, and
# hundreds of MB for a large zone); ``read_transfer_message`` reads one message into tuples of
# its answer records with their owners and the names in their RDATA decompressed (RFC 3597 §4:
# a receiver must decompress the names of the RFC 1035 types, and should those of RP, AFSDB,
# RT, PX, NAPTR and SRV), which is the form compile_packed takes, and checks the RDATA of every
# type whose names the compiler reads (fastdns.xfr.inbound groups them into record sets). The
# TSIG record (RFC 8945), which must be the last of the additional section, is handed back
# with its offset for dns.tsig.validate; every other non-answer record is skipped.

cdef enum:
    XFR_HEADER = 12
    MAX_POINTERS = 127             # a compressed name cannot follow more than this many
    T_MD = 3
    T_MF = 4
    T_MB = 7
    T_MG = 8
    T_MR = 9
    T_MINFO = 14
    T_RP = 17
    T_AFSDB = 18
    T_RT = 21
    T_PX = 26
    T_KX = 36
    T_DNAME = 39
    T_OPT = 41
    T_TSIG = 250


class TransferFormError(ValueError):
    """A zone transfer message that does not parse (RFC 1035 §4.1 framing, a name, or the
    RDATA of a type whose layout is checked)."""


cdef int read_name(const uint8_t* msg, size_t size, size_t* at, uint8_t* out,
                   size_t* out_len) noexcept nogil:
    """The name at ``msg[at[0]:]`` written uncompressed to ``out`` (at ``out_len[0]``, which
    it advances); ``at[0]`` moves past the name as it is in the message. 0, or -1 when it does
    not parse: a pointer that does not point back (RFC 1035 §4.1.4 lets it point only at a
    prior occurrence; this also ends any loop), a label type other than 00 and 11, a name over
    255 octets."""
    cdef size_t p = at[0]
    cdef size_t start = out_len[0]
    cdef size_t target
    cdef uint8_t length
    cdef int jumps = 0
    cdef bint jumped = False
    while True:
        if p >= size:
            return -1
        length = msg[p]
        if length >= 0xC0:
            if p + 1 >= size:
                return -1
            target = ((length & 0x3F) << 8) | msg[p + 1]
            if not jumped:
                at[0] = p + 2
                jumped = True
            if target >= p or jumps >= MAX_POINTERS:
                return -1
            jumps += 1
            p = target
            continue
        if length > 63:
            return -1
        if out_len[0] - start + 1 + length > MAX_NAME_WIRE or p + 1 + length > size:
            return -1
        memcpy(out + out_len[0], msg + p, 1 + length)
        out_len[0] += 1 + length
        p += 1 + length
        if length == 0:
            if not jumped:
                at[0] = p
            return 0


cdef int read_rdata(const uint8_t* msg, size_t start, size_t end, uint16_t rtype,
                    uint8_t* out, size_t* out_len, bint* checked) noexcept nogil:
    """The RDATA at ``msg[start:end]`` written to ``out`` with its names decompressed.
    ``checked``: the layout was checked here (the types whose names are read, A, AAAA);
    other types are copied as they are. 0, or -1 when a checked layout does not parse."""
    cdef size_t at = start
    cdef size_t fixed = 0
    cdef int names = 0
    cdef int strings = 0
    cdef int k
    checked[0] = True
    out_len[0] = 0
    if rtype == T_A:
        if end - start != 4:
            return -1
    elif rtype == T_AAAA:
        if end - start != 16:
            return -1
    elif (rtype == T_NS or rtype == T_CNAME or rtype == T_PTR or rtype == T_MD
            or rtype == T_MF or rtype == T_MB or rtype == T_MG or rtype == T_MR
            or rtype == T_DNAME):
        names = 1
    elif rtype == T_MINFO or rtype == T_RP:
        names = 2
    elif rtype == T_SOA:
        names = 2
    elif rtype == T_MX or rtype == T_AFSDB or rtype == T_RT or rtype == T_KX:
        fixed, names = 2, 1
    elif rtype == T_PX:
        fixed, names = 2, 2
    elif rtype == T_SRV:
        fixed, names = 6, 1
    elif rtype == T_NAPTR:
        fixed, strings, names = 4, 3, 1
    elif rtype == T_RRSIG:
        # TYPE COVERED .. KEY TAG, then the signer's name (RFC 4034 §3.1: not compressed),
        # then the signature.
        fixed, names = 18, 1
    else:
        checked[0] = False
    if not checked[0] or (names == 0 and fixed == 0):
        memcpy(out, msg + start, end - start)
        out_len[0] = end - start
        return 0
    if at + fixed > end:
        return -1
    memcpy(out, msg + at, fixed)
    out_len[0] = fixed
    at += fixed
    for k in range(strings):
        if at >= end or at + 1 + msg[at] > end:
            return -1
        memcpy(out + out_len[0], msg + at, 1 + msg[at])
        out_len[0] += 1 + msg[at]
        at += 1 + msg[at]
    for k in range(names):
        if read_name(msg, end, &at, out, out_len) < 0:
            return -1
    if rtype == T_SOA:
        fixed = 20  # SERIAL .. MINIMUM (RFC 1035 §3.3.13)
    elif rtype == T_RRSIG:
        fixed = end - at
        if fixed == 0:
            return -1
    else:
        fixed = 0
    if at + fixed != end:
        return -1
    memcpy(out + out_len[0], msg + at, fixed)
    out_len[0] += fixed
    return 0


cdef struct Run:
    # The record sets packed from consecutive records (compile_packed's layout), one after
    # another in ``data``; the one being packed starts at ``start``.
    uint8_t* data
    size_t length
    size_t capacity
    size_t start
    size_t records
    size_t owner_len            # 0: no run open
    uint16_t rtype
    uint32_t ttl
    uint16_t count
    bint checked


cdef int run_put(Run* run, const void* p, size_t n) noexcept nogil:
    cdef size_t capacity
    cdef uint8_t* grown
    if run.length + n > run.capacity:
        capacity = max(run.capacity * 2, run.length + n + 4096)
        grown = <uint8_t*> realloc(run.data, capacity)
        if grown == NULL:
            return -1
        run.data, run.capacity = grown, capacity
    memcpy(run.data + run.length, p, n)
    run.length += n
    return 0


cdef bint owner_in_zone(const uint8_t* owner, size_t owner_len, const uint8_t* origin,
                        size_t origin_len) noexcept nogil:
    """Whether ``owner`` is ``origin`` or below it (RFC 4343: case ignored); ``origin`` is
    lower-cased."""
    cdef size_t at = 0
    cdef size_t i
    if owner_len < origin_len:
        return False
    while owner_len - at > origin_len:
        at += 1 + owner[at]
    if owner_len - at != origin_len:
        return False
    for i in range(origin_len):
        if lower(owner[at + i]) != origin[i]:
            return False
    return True


cdef object run_close(Run* run, list soa, list unchecked, size_t zone_len):
    """Close the open run: write its type, TTL and count; note where it is when it is an SOA
    of the zone (its owner, in the zone, is as long as the origin) or holds RDATA this reader
    did not check."""
    cdef uint8_t* head
    if run.owner_len == 0:
        return None
    head = run.data + run.start + 1 + run.owner_len
    memcpy(head, &run.rtype, 2)
    memcpy(head + 2, &run.ttl, 4)
    memcpy(head + 6, &run.count, 2)
    if run.rtype == T_SOA and run.owner_len == zone_len:
        soa.append((run.start, run.length))
    if not run.checked:
        unchecked.append((run.start, run.length))
    run.owner_len = 0
    return None


def read_transfer_message(message, origin=None) -> tuple:
    """``(id, flags, question, records, tsig)`` of one zone transfer response (bytes).

    ``question`` is ``(qname, qtype, qclass)`` or None when the message has none (RFC 5936
    §2.2.1 lets later messages leave it out); ``records`` lists the answer section's records
    as ``(owner, type, class, TTL, RDATA, checked)``, owner and RDATA names uncompressed and
    spelled as sent, ``checked`` True when the RDATA's layout was checked here; ``tsig`` is
    ``(offset, owner, RDATA)`` of the TSIG record or None.

    With ``origin`` (the zone's name in wire format, lower-cased) ``records`` is instead
    ``(packed, count, soa, unchecked)``: the message's records as record sets one after another
    in compile_packed's layout, consecutive records of one owner and type in one set (their
    smallest TTL, RFC 2181 §5.2); how many records; and the (start, end) offsets of the sets
    that are an SOA of the zone (each a set of its own) and of those holding RDATA whose layout
    was not checked. This is how an AXFR's bulk is read without a Python object per record;
    every record must be of class IN and at or below ``origin``.

    :raises TransferFormError: the message does not parse, has a TSIG record that is not
        the last one, or (with ``origin``) a record of another class or outside the zone."""
    cdef const uint8_t[::1] view = message
    cdef const uint8_t[::1] origin_view
    cdef const uint8_t* zone = NULL
    cdef size_t zone_len = 0
    cdef bint grouped = origin is not None
    cdef Run run
    cdef const uint8_t* msg
    cdef size_t size = view.shape[0]
    cdef size_t at = XFR_HEADER
    cdef size_t rr_start, rdata_end, out_len, name_len
    cdef uint16_t counts[4]
    cdef uint16_t ident, flags, rtype, rclass, rdlen, u16
    cdef uint32_t ttl
    cdef int section, k
    cdef bint checked
    cdef uint8_t name[MAX_NAME_WIRE + 1]
    cdef uint8_t* rdata = NULL
    cdef list records = []
    cdef list soa_runs = []
    cdef list unchecked_runs = []
    cdef object batch = None
    cdef object question = None
    cdef object tsig = None
    if size < XFR_HEADER:
        raise TransferFormError("a message shorter than its header")
    msg = &view[0]
    ident = (msg[0] << 8) | msg[1]
    flags = (msg[2] << 8) | msg[3]
    for k in range(4):
        counts[k] = (msg[4 + 2 * k] << 8) | msg[5 + 2 * k]
    if counts[0] > 1:
        raise TransferFormError(f"{counts[0]} questions")
    if counts[0] == 1:
        name_len = 0
        if read_name(msg, size, &at, name, &name_len) < 0 or at + 4 > size:
            raise TransferFormError("the question does not parse")
        question = (
            PyBytes_FromStringAndSize(<char*> name, name_len),
            (msg[at] << 8) | msg[at + 1],
            (msg[at + 2] << 8) | msg[at + 3],
        )
        at += 4
    memset(&run, 0, sizeof(Run))
    if grouped:
        origin_view = origin
        zone, zone_len = &origin_view[0], origin_view.shape[0]
    rdata = <uint8_t*> malloc(0x10000 + MAX_NAME_WIRE * 2)
    if rdata == NULL:
        raise MemoryError()
    try:
        for section in range(1, 4):
            for k in range(counts[section]):
                if tsig is not None:
                    raise TransferFormError("a record after the TSIG record")
                rr_start = at
                name_len = 0
                if read_name(msg, size, &at, name, &name_len) < 0 or at + 10 > size:
                    raise TransferFormError(f"record {k + 1} of section {section} does not parse")
                rtype = (msg[at] << 8) | msg[at + 1]
                rclass = (msg[at + 2] << 8) | msg[at + 3]
                ttl = ((<uint32_t> msg[at + 4] << 24) | (<uint32_t> msg[at + 5] << 16)
                       | (<uint32_t> msg[at + 6] << 8) | msg[at + 7])
                rdlen = (msg[at + 8] << 8) | msg[at + 9]
                at += 10
                rdata_end = at + rdlen
                if rdata_end > size:
                    raise TransferFormError(f"record {k + 1} of section {section}: RDATA "
                                            "beyond the message")
                if section == 3 and rtype == T_TSIG:
                    tsig = (rr_start, PyBytes_FromStringAndSize(<char*> name, name_len),
                            PyBytes_FromStringAndSize(<char*> msg + at, rdlen))
                elif section == 1:
                    if (read_rdata(msg, at, rdata_end, rtype, rdata, &out_len, &checked) < 0
                            or out_len > 0xFFFF):
                        raise TransferFormError(
                            f"record {k + 1}: the RDATA of type {rtype} does not parse")
                    if not grouped:
                        records.append((
                            PyBytes_FromStringAndSize(<char*> name, name_len), rtype, rclass,
                            ttl, PyBytes_FromStringAndSize(<char*> rdata, out_len), checked,
                        ))
                    else:
                        if rclass != 1:
                            raise TransferFormError(f"record {k + 1} is of class {rclass}")
                        if not owner_in_zone(name, name_len, zone, zone_len):
                            raise TransferFormError(f"record {k + 1} is outside the zone")
                        if (run.owner_len != name_len or run.rtype != rtype
                                or run.count == 0xFFFF or rtype == T_SOA
                                and name_len == zone_len
                                or not name_equal(run.data + run.start + 1, name)):
                            run_close(&run, soa_runs, unchecked_runs, zone_len)
                            run.start = run.length
                            if (run_put(&run, &name_len, 1) < 0
                                    or run_put(&run, name, name_len) < 0
                                    or run_put(&run, rdata, 8) < 0):  # type, TTL, count later
                                raise MemoryError()
                            run.owner_len = name_len
                            run.rtype, run.ttl, run.count, run.checked = rtype, ttl, 0, True
                        u16 = <uint16_t> out_len
                        if run_put(&run, &u16, 2) < 0 or run_put(&run, rdata, out_len) < 0:
                            raise MemoryError()
                        run.count += 1
                        run.records += 1
                        run.ttl = min(run.ttl, ttl)
                        run.checked = run.checked and checked
                at = rdata_end
        if at != size:
            raise TransferFormError("octets after the last record")
        if grouped:
            run_close(&run, soa_runs, unchecked_runs, zone_len)
            records = None
            batch = (PyBytes_FromStringAndSize(<char*> run.data, run.length), run.records,
                     soa_runs, unchecked_runs)
    finally:
        free(rdata)
        free(run.data)
    return ident, flags, question, records if batch is None else batch, tsig


# -- an index of packed record sets (fastdns.packedsets) --------------------------------------
#
# A secondary zone of a million record sets kept as a dict of a key and a packed ``bytes`` per
# set costs some 170 MB of Python objects; kept as one blob of packed sets with a sorted array
# of key hashes and offsets, some 60 MB. These walk the blob in C.

cdef uint64_t fnv1a(const uint8_t* p, size_t n, uint64_t h) noexcept nogil:
    cdef size_t i
    for i in range(n):
        h = (h ^ p[i]) * 0x100000001B3ULL
    return h


cdef uint64_t set_hash(const uint8_t* packed, size_t owner_len) noexcept nogil:
    """FNV-1a of a packed set's key: its owner lower-cased, then its type big-endian."""
    cdef uint64_t h = 0xCBF29CE484222325ULL
    cdef size_t i
    cdef uint16_t rtype
    for i in range(owner_len):
        h = (h ^ lower(packed[1 + i])) * 0x100000001B3ULL
    memcpy(&rtype, packed + 1 + owner_len, 2)
    h = (h ^ (rtype >> 8)) * 0x100000001B3ULL
    return (h ^ (rtype & 0xFF)) * 0x100000001B3ULL


def key_hash(key) -> int:
    """The hash ``index_packed`` files a record set under, of its key (fastdns.xfr.inbound
    .set_key: the owner lower-cased, then the type big-endian)."""
    cdef const uint8_t[::1] k = key
    if k.shape[0] == 0:
        return fnv1a(NULL, 0, 0xCBF29CE484222325ULL)
    return fnv1a(&k[0], k.shape[0], 0xCBF29CE484222325ULL)


def packed_entry(blob, Py_ssize_t offset) -> tuple:
    """``(key, end)`` of the packed record set at ``blob[offset:]``."""
    cdef const uint8_t[::1] b = blob
    cdef size_t end, i, owner_len
    cdef bytes key
    cdef uint8_t* k
    cdef uint16_t rtype
    if offset < 0 or b.shape[0] == 0:
        raise ValueError("packed_entry: no record set there")
    end = packed_end(&b[0], offset, b.shape[0])
    if end == 0:
        raise ValueError("packed_entry: no record set there")
    owner_len = b[offset]
    key = PyBytes_FromStringAndSize(NULL, owner_len + 2)
    k = <uint8_t*> PyBytes_AS_STRING(key)
    for i in range(owner_len):
        k[i] = lower(b[offset + 1 + i])
    memcpy(&rtype, &b[offset + 1 + owner_len], 2)
    k[owner_len] = rtype >> 8
    k[owner_len + 1] = rtype & 0xFF
    return key, end


cdef int compare_u64_pairs(const void* x, const void* y, void* arg) noexcept nogil:
    cdef const uint64_t* a = <const uint64_t*> x
    cdef const uint64_t* b = <const uint64_t*> y
    if a[0] != b[0]:
        return (a[0] > b[0]) - (a[0] < b[0])
    return (a[1] > b[1]) - (a[1] < b[1])


def index_packed(blob) -> tuple:
    """``(index, count, foreign, repeats)`` of a blob of packed record sets one after another:
    ``index`` holds a (key hash, offset) pair of u64s per set, sorted; ``foreign`` the offsets
    of the sets whose types the native compiler does not take; ``repeats`` the positions in
    the index whose hash is the one before's (the same key, or a collision). ``ValueError``
    when the blob does not parse."""
    cdef const uint8_t[::1] b = blob
    cdef size_t n = b.shape[0]
    cdef size_t at = 0, end, count = 0, capacity = 0
    cdef uint64_t* pairs = NULL
    cdef uint64_t* grown
    cdef uint16_t rtype
    cdef bytes index
    cdef list foreign = []
    cdef list repeats = []
    try:
        while at < n:
            end = packed_end(&b[0], at, n)
            if end == 0:
                raise ValueError(f"index_packed: the record set at {at} does not parse")
            if count == capacity:
                capacity = max(1024, capacity * 2)
                grown = <uint64_t*> realloc(pairs, capacity * 16)
                if grown == NULL:
                    raise MemoryError()
                pairs = grown
            pairs[2 * count] = set_hash(&b[at], b[at])
            pairs[2 * count + 1] = at
            memcpy(&rtype, &b[at + 1 + b[at]], 2)
            if not NATIVE[rtype]:
                foreign.append(at)
            count += 1
            at = end
        if count:
            with nogil:
                qsort_r(pairs, count, 16, compare_u64_pairs, NULL)
        for at in range(1, count):
            if pairs[2 * at] == pairs[2 * at - 2]:
                repeats.append(at)
        index = PyBytes_FromStringAndSize(<char*> pairs, count * 16)
    finally:
        free(pairs)
    return index, count, foreign, repeats
