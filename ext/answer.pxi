# Answer assembly: header + the query's own question bytes + a template, patched.

cdef inline Py_ssize_t opt_size(const Query* q) noexcept nogil:
    """Octets of the response OPT RR: with the ECS option echoed when the query had one."""
    if not q.has_opt:
        return 0
    if q.has_ecs:
        return OPT_RR_LEN + 4 + ECS_FIXED_LEN + q.ecs_addr_len
    return OPT_RR_LEN


cdef inline Py_ssize_t write_opt(uint8_t* out, Py_ssize_t pos, uint16_t payload,
                                 uint8_t ext_rcode, const Query* q, int scope) noexcept nogil:
    """The response OPT RR (RFC 6891 §6.1.2); DO is copied from the query (RFC 3225 §3).

    An ECS option in the query is echoed with its FAMILY, SOURCE PREFIX-LENGTH and ADDRESS and
    our SCOPE PREFIX-LENGTH: how many leading bits of the address the answer depended on (0: it
    holds for every client; RFC 7871 §7.2.1)."""
    cdef int rdlen = 0
    out[pos] = 0
    write_u16(out + pos + 1, TYPE_OPT)
    write_u16(out + pos + 3, payload)
    out[pos + 5] = ext_rcode
    out[pos + 6] = 0                      # version 0
    out[pos + 7] = 0x80 if q.dnssec_ok else 0
    out[pos + 8] = 0
    if q.has_ecs:
        rdlen = 4 + ECS_FIXED_LEN + q.ecs_addr_len
        write_u16(out + pos + 11, OPTION_ECS)
        write_u16(out + pos + 13, ECS_FIXED_LEN + q.ecs_addr_len)
        write_u16(out + pos + 15, q.ecs_family)
        out[pos + 17] = q.ecs_source
        out[pos + 18] = <uint8_t> scope
        memcpy(out + pos + 19, q.ecs_addr, q.ecs_addr_len)
    write_u16(out + pos + 9, rdlen)
    return pos + OPT_RR_LEN + rdlen


cdef inline void write_header(uint8_t* out, const Query* q, int flags, int rcode) noexcept nogil:
    # ID copied; QR set; OPCODE copied; RD and CD copied (RFC 1035 §4.1.1, RFC 4035 §3.1.6).
    out[0] = q.pkt[0]
    out[1] = q.pkt[1]
    out[2] = 0x80 | (q.pkt[2] & 0x79) | ((flags & TMPL_AA) >> 2)
    out[3] = (q.pkt[3] & 0x10) | (rcode & 0x0F)


cdef Py_ssize_t error_response(const Query* q, uint8_t* out, int rcode, bint with_question,
                               uint8_t ext_rcode, uint16_t udp_max) noexcept nogil:
    """A response without data: FORMERR, NOTIMP, REFUSED, BADVERS."""
    cdef Py_ssize_t pos = HEADER_LEN
    cdef Py_ssize_t qlen
    write_header(out, q, 0, rcode)
    out[4] = 0
    out[5] = 1 if with_question else 0
    memset(out + 6, 0, 6)
    if with_question:
        qlen = q.question_end - HEADER_LEN
        memcpy(out + HEADER_LEN, q.pkt + HEADER_LEN, qlen)
        pos += qlen
    if q.has_opt:
        out[11] = 1
        pos = write_opt(out, pos, udp_max, ext_rcode, q, 0)
    return pos


cdef Py_ssize_t emit_template(const Query* q, const Image* img, uint32_t tmpl_index,
                              uint8_t* out, Py_ssize_t limit, uint16_t udp_max,
                              int scope, const uint32_t* proof = NULL,
                              int nproof = 0, const uint8_t* made = NULL, int made_len = 0,
                              int made_rrs = 0) noexcept nogil:
    """Copy the question and template ``tmpl_index``; shift pointers; fit into ``limit``.

    ``proof``: NSEC3 entries (signed zones, DO set) appended to the authority section after
    the template, whose twin was compiled without additional records for this reason.
    ``made``: ``made_rrs`` records made for this query (compact denial's NSEC and RRSIG),
    appended the same way."""
    cdef const ImgTemplate* t = &img.tmpls[tmpl_index]
    cdef Py_ssize_t extra_len = made_len
    cdef int extra_rrs = made_rrs
    cdef Py_ssize_t qsec = q.question_end - HEADER_LEN
    cdef Py_ssize_t opt_len = opt_size(q)
    cdef Py_ssize_t base = HEADER_LEN + qsec
    cdef Py_ssize_t body_len = t.body_len
    cdef int ar = t.ar
    cdef int k, delta, i
    cdef uint16_t p, target
    cdef const uint8_t* ptrs
    cdef const uint8_t* marks
    cdef uint8_t* body
    cdef bint truncated = (t.flags & TMPL_ALWAYS_TC) != 0
    delta = q.qname_len - t.qname_len
    if delta < 0:
        return error_response(q, out, RCODE_SERVFAIL, True, 0, udp_max)  # compiler bug
    for i in range(nproof):
        extra_len += img.nsec3[proof[i]].wire_len
        extra_rrs += img.nsec3[proof[i]].rr_count
    if (nproof or made_rrs) and not truncated and \
            base + body_len + extra_len + opt_len > limit:
        truncated = True  # the proof is required data (RFC 4035 §3.1.3): all of it or TC
    if not truncated and base + body_len + opt_len > limit:
        # Optional additional RRs go first; what remains must fit whole (RFC 2181 §9).
        marks = img.blob + t.mark_off
        truncated = True
        k = ar - 1
        while k >= t.ar_required:
            if base + (marks[2 * k] | (marks[2 * k + 1] << 8)) + opt_len <= limit:
                body_len = marks[2 * k] | (marks[2 * k + 1] << 8)
                ar = k
                truncated = False
                break
            k -= 1
    write_header(out, q, t.flags, t.flags & 0x0F)
    memcpy(out + HEADER_LEN, q.pkt + HEADER_LEN, qsec)
    write_u16(out + 4, 1)
    if truncated:
        # RFC 2181 §9: TC when required data does not fit; send none of it, let TCP carry it.
        out[2] |= 0x02
        memset(out + 6, 0, 6)
        base = HEADER_LEN + qsec
    else:
        write_u16(out + 6, t.an)
        write_u16(out + 8, t.ns)
        write_u16(out + 10, ar)
        body = out + base
        memcpy(body, img.blob + t.body_off, body_len)
        if delta != 0:
            ptrs = img.blob + t.ptr_off
            for i in range(t.ptr_count):
                p = ptrs[2 * i] | (ptrs[2 * i + 1] << 8)
                if p >= body_len:
                    break
                target = read_u16(body + p) & 0x3FFF
                if not (target == HEADER_LEN and (t.flags & TMPL_OWNER_IS_QNAME)):
                    write_u16(body + p, 0xC000 | (target + delta))
        base += body_len
        for i in range(nproof):
            memcpy(out + base, img.blob + img.nsec3[proof[i]].wire_off,
                   img.nsec3[proof[i]].wire_len)
            base += img.nsec3[proof[i]].wire_len
        if made_len:
            memcpy(out + base, made, made_len)
            base += made_len
        if extra_rrs:
            write_u16(out + 8, t.ns + extra_rrs)
    if q.has_opt:
        write_u16(out + 10, read_u16(out + 10) + 1)
        base = write_opt(out, base, udp_max, 0, q, scope)
    return base


cdef Py_ssize_t emit_members(const Query* q, const Image* img, const ImgMember* members,
                             const uint16_t* chosen, int count, uint8_t* out, Py_ssize_t limit,
                             uint16_t udp_max, int scope,
                             const uint8_t* signing = NULL) noexcept nogil:
    """A multivalue answer: the answer records of each chosen member, one after another.

    ``signing`` (a signed zone, DO set): the group's canonical records per member; the records
    sent are then signed as one RRset (multivalue_rrsig), the RRSIG's room kept from the start.

    Each member's template was compiled with answer records only, against the group's owner.
    Copied to a new position, a compression pointer into the question moves by the QNAME length
    difference (as in emit_template) and one into the member's own records moves with them.
    Whole members are added while they fit; if not even one does, TC (RFC 2181 §9)."""
    cdef Py_ssize_t qsec = q.question_end - HEADER_LEN
    cdef Py_ssize_t pos = HEADER_LEN + qsec
    cdef Py_ssize_t room = limit - opt_size(q) - (RRSIG_RR_MAX if signing != NULL else 0)
    cdef const ImgTemplate* t
    cdef int k, i, delta, an = 0, flags = TMPL_AA, sent = 0, n
    cdef Py_ssize_t old_base
    cdef uint16_t p, target
    cdef const uint8_t* ptrs
    cdef uint8_t* body
    for k in range(count):
        t = &img.tmpls[members[chosen[k]].tmpl]
        delta = q.qname_len - t.qname_len
        if delta < 0 or pos + t.body_len > room or pos + t.body_len > 0x3FFF:
            if delta < 0:
                return error_response(q, out, RCODE_SERVFAIL, True, 0, udp_max)
            break
        flags = t.flags
        body = out + pos
        memcpy(body, img.blob + t.body_off, t.body_len)
        old_base = HEADER_LEN + t.qname_len + 4
        ptrs = img.blob + t.ptr_off
        for i in range(t.ptr_count):
            p = ptrs[2 * i] | (ptrs[2 * i + 1] << 8)
            target = read_u16(body + p) & 0x3FFF
            if target >= old_base:
                write_u16(body + p, 0xC000 | (target - old_base + pos))
            elif delta != 0 and not (target == HEADER_LEN and (t.flags & TMPL_OWNER_IS_QNAME)):
                write_u16(body + p, 0xC000 | (target + delta))
        an += t.an
        pos += t.body_len
        sent += 1
    if signing != NULL and sent > 0:
        n = multivalue_rrsig(img, q, signing, chosen, sent, out + pos)
        if n < 0:
            return error_response(q, out, RCODE_SERVFAIL, True, 0, udp_max)
        pos += n
        an += 1
    write_header(out, q, flags, RCODE_NOERROR)
    memcpy(out + HEADER_LEN, q.pkt + HEADER_LEN, qsec)
    write_u16(out + 4, 1)
    memset(out + 6, 0, 6)
    write_u16(out + 6, an)
    if an == 0 and count > 0:
        out[2] |= 0x02
    if q.has_opt:
        write_u16(out + 10, 1)
        pos = write_opt(out, pos, udp_max, 0, q, scope)
    return pos
