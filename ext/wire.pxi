# Query parsing: a bounds-checked reader that never looks past ``len`` octets of the packet.
# Every check failure returns an error code at once; nothing is read before its bound is tested.

cdef inline uint16_t read_u16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline void write_u16(uint8_t* p, uint16_t v) noexcept nogil:
    p[0] = v >> 8
    p[1] = v & 0xFF


cdef int parse_qname(Query* q, int pos) noexcept nogil:
    """QNAME at ``pos``; fills lname/label_pos. Returns the offset after it, or -1.

    The question is the first name of a message, so a compression pointer in it can only point
    forward or into itself (RFC 1035 §4.1.4 allows pointers to *prior* occurrences): rejected,
    along with the reserved label types 0b01/0b10 (RFC 6891 §5), labels over 63 octets and names
    over 255 octets (RFC 1035 §2.3.4).
    """
    cdef int wire_len = 0
    cdef int n = 0
    cdef uint8_t c, ch
    cdef int i
    while True:
        if pos >= q.len:
            return -1
        c = q.pkt[pos]
        if c == 0:
            q.lname[wire_len] = 0
            wire_len += 1
            pos += 1
            break
        if c > 63:
            return -1
        if wire_len + 1 + c + 1 > MAX_NAME_WIRE or pos + 1 + c > q.len or n >= MAX_LABELS:
            return -1
        q.label_pos[n] = wire_len
        n += 1
        q.lname[wire_len] = c
        for i in range(c):
            ch = q.pkt[pos + 1 + i]
            if 0x41 <= ch <= 0x5A:
                ch = ch + 0x20
            q.lname[wire_len + 1 + i] = ch
        wire_len += 1 + c
        pos += 1 + c
    q.qname_len = wire_len
    q.nlabels = n
    return pos


cdef int skip_name(const uint8_t* pkt, Py_ssize_t length, int pos) noexcept nogil:
    """Skip a name in a later section. A pointer must point before the name it ends."""
    cdef int start = pos
    cdef uint8_t c
    cdef int total = 0
    while True:
        if pos >= length:
            return -1
        c = pkt[pos]
        if c == 0:
            return pos + 1
        if (c & 0xC0) == 0xC0:
            if pos + 2 > length:
                return -1
            if (read_u16(pkt + pos) & 0x3FFF) >= start:
                return -1
            return pos + 2
        if c > 63:
            return -1
        total += 1 + c
        if total + 1 > MAX_NAME_WIRE:
            return -1
        pos += 1 + c


cdef int parse_ecs(Query* q, const uint8_t* opt, int optlen) noexcept nogil:
    """The EDNS Client Subnet option (RFC 7871 §6). A wrongly formatted one is a FORMERR
    (§7.2.1): an unknown FAMILY, a SOURCE PREFIX-LENGTH longer than the address, more or fewer
    ADDRESS octets than the prefix needs, or address bits set beyond the prefix."""
    cdef int family, source, need, i
    cdef uint8_t mask
    if optlen < ECS_FIXED_LEN or q.has_ecs:
        return -1
    family = read_u16(opt)
    source = opt[2]
    if family == 1:
        if source > 32:
            return -1
    elif family == 2:
        if source > 128:
            return -1
    else:
        return -1
    need = (source + 7) // 8
    if optlen - ECS_FIXED_LEN != need:
        return -1
    if source % 8:
        mask = <uint8_t> (0xFF >> (source % 8))
        if opt[ECS_FIXED_LEN + need - 1] & mask:
            return -1
    q.has_ecs = True
    q.ecs_family = family
    q.ecs_source = source
    q.ecs_addr_len = need
    memset(q.ecs_addr, 0, 16)
    for i in range(need):
        q.ecs_addr[i] = opt[ECS_FIXED_LEN + i]
    return 0


cdef int parse_opt(Query* q, int rdata_pos, int rdlen) noexcept nogil:
    """EDNS OPT RDATA: a sequence of {code, length, data}; each must fit (RFC 6891 §6.1.2)."""
    cdef int pos = rdata_pos
    cdef int end = rdata_pos + rdlen
    cdef int optlen
    while pos < end:
        if pos + 4 > end:
            return -1
        optlen = read_u16(q.pkt + pos + 2)
        if pos + 4 + optlen > end:
            return -1
        if read_u16(q.pkt + pos) == OPTION_ECS and \
                parse_ecs(q, q.pkt + pos + 4, optlen) < 0:
            return -1
        pos += 4 + optlen
    return 0


cdef int parse_records(Query* q, int pos, int total_rrs, int answer_rrs) noexcept nogil:
    """Skip ``total_rrs`` RRs from ``pos``, noting the EDNS OPT. Returns the end offset or -1.

    RFC 6891 §6.1.1: at most one OPT, in the additional section (after ``answer_rrs`` answer
    and authority RRs), owned by the root. A broken OPT leaves ``has_opt`` clear so the FORMERR
    carries none.
    """
    cdef int i, rdlen, name_start
    cdef uint32_t ttl
    cdef const uint8_t* pkt = q.pkt
    for i in range(total_rrs):
        name_start = pos
        pos = skip_name(pkt, q.len, pos)
        if pos < 0 or pos + 10 > q.len:
            return -1
        rdlen = read_u16(pkt + pos + 8)
        if pos + 10 + rdlen > q.len:
            return -1
        if read_u16(pkt + pos) == TYPE_OPT:
            if q.has_opt or i < answer_rrs or pos != name_start + 1:
                q.has_opt = False
                return -1
            if parse_opt(q, pos + 10, rdlen) < 0:
                return -1
            q.has_opt = True
            q.udp_size = read_u16(pkt + pos + 2)
            ttl = (<uint32_t>read_u16(pkt + pos + 4) << 16) | read_u16(pkt + pos + 6)
            q.edns_version = (ttl >> 16) & 0xFF
            q.dnssec_ok = (ttl & 0x8000) != 0
        elif read_u16(pkt + pos) == TYPE_TSIG and i == total_rrs - 1 and i >= answer_rrs:
            q.has_tsig = True  # RFC 8945 §5.1: a TSIG is the last RR of the additional section
        pos += 10 + rdlen
    return pos


cdef int parse_query(Query* q, const uint8_t* pkt, Py_ssize_t length) noexcept nogil:
    """Parse header, question and the RRs after it (to find EDNS OPT)."""
    cdef int pos
    q.pkt = pkt
    q.len = length
    q.has_opt = False
    q.has_ecs = False
    q.has_tsig = False
    q.dnssec_ok = False
    q.edns_version = 0
    q.udp_size = 0
    q.qname_len = 0
    if length < HEADER_LEN or (pkt[2] & 0x80):
        return PARSE_DROP  # RFC 1035 §4.1.1: QR=1 is a response; answering it invites loops
    q.opcode = (pkt[2] >> 3) & 0x0F
    q.qdcount = read_u16(pkt + 4)
    q.ancount = read_u16(pkt + 6)
    q.nscount = read_u16(pkt + 8)
    q.arcount = read_u16(pkt + 10)
    if q.qdcount == 0:
        # Still look for OPT: the FORMERR must carry one if the query did (RFC 6891 §7).
        parse_records(q, HEADER_LEN, q.ancount + q.nscount + q.arcount,
                      q.ancount + q.nscount)
        return PARSE_FORMERR
    if q.qdcount != 1:
        return PARSE_FORMERR  # RFC 9619: QDCOUNT > 1 is a FORMERR
    pos = parse_qname(q, HEADER_LEN)
    if pos < 0 or pos + 4 > length:
        q.qname_len = 0
        return PARSE_FORMERR
    q.qtype = read_u16(pkt + pos)
    q.qclass = read_u16(pkt + pos + 2)
    pos += 4
    q.question_end = pos
    pos = parse_records(q, pos, q.ancount + q.nscount + q.arcount, q.ancount + q.nscount)
    if pos < 0:
        return PARSE_FORMERR_QUESTION
    if pos != length:
        return PARSE_FORMERR_QUESTION  # trailing octets after the last RR: not a DNS message
    return PARSE_OK
