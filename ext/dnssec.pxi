# Signed zones (issue 6): the parts of a DNSSEC answer that depend on the query name.
#
# Everything else is pre-computed: each template's signed twin holds its RRSIGs, and each node
# knows its own NSEC3 and the one covering the wildcard below it. Per query only the NSEC3
# covering the next closer name (RFC 5155 §7.2.1) is found: one SHA-1 of the name (RFC 9276
# parameters: no extra iterations, empty salt) and a binary search of the sorted chain.

cdef extern from "sha1.h":
    void fastdns_sha1(const uint8_t* data, size_t length, uint8_t* out) nogil

cdef enum:
    # how the walk ended, which decides the NSEC3 proof (RFC 5155 §7.2)
    WALK_EXACT = 0
    WALK_CUT = 1
    WALK_WILDCARD = 2
    WALK_NXDOMAIN = 3


cdef uint32_t nsec3_cover(const Image* img, const uint8_t* digest) noexcept nogil:
    """The NSEC3 entry covering (or matching) ``digest``: the last with a hash <= it; the
    last of all when ``digest`` sorts first (the chain is circular, RFC 5155 §3.1.7)."""
    cdef uint32_t lo = 0
    cdef uint32_t hi = img.nsec3_count
    cdef uint32_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if memcmp(img.nsec3[mid].hash, digest, NSEC3_HASH_LEN) <= 0:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1 if lo > 0 else img.nsec3_count - 1


cdef inline int add_proof(uint32_t* proof, int n, uint32_t entry) noexcept nogil:
    """``entry`` appended to ``proof`` unless absent (NONE_INDEX) or already there."""
    cdef int i
    if entry == NONE_INDEX:
        return n
    for i in range(n):
        if proof[i] == entry:
            return n
    proof[n] = entry
    return n + 1


cdef int denial_proof(const Image* img, const Query* q, const Walk* w, int how,
                      uint32_t twin, uint32_t* proof) noexcept nogil:
    """The NSEC3 entries (at most MAX_NSEC3_PROOF) to append to signed twin ``twin``."""
    cdef uint8_t digest[NSEC3_HASH_LEN]
    cdef int n = 0
    cdef int start
    cdef uint32_t cover
    cdef bint denial = (img.tmpls[twin].flags & TMPL_DENIAL) != 0
    cdef const NodeSec* ce
    if how == WALK_EXACT:
        # RFC 5155 §7.2.3/§7.2.4 (NODATA, DS NODATA at a cut): the name's own NSEC3.
        if denial:
            n = add_proof(proof, n, img.node_sec[w.node].match)
        return n
    if how == WALK_CUT:
        return 0  # the referral's twin holds its DS or its no-DS NSEC3 (§7.2.7)
    start = q.label_pos[w.miss_label]
    fastdns_sha1(q.lname + start, q.qname_len - start, digest)
    cover = nsec3_cover(img, digest)
    ce = &img.node_sec[w.node]
    if how == WALK_NXDOMAIN:
        # §7.2.2: the closest encloser, the next closer name, the wildcard at the encloser.
        n = add_proof(proof, n, ce.match)
        n = add_proof(proof, n, cover)
        n = add_proof(proof, n, ce.wild_cover)
    elif denial:
        # §7.2.5: wildcard NODATA.
        n = add_proof(proof, n, ce.match)
        n = add_proof(proof, n, cover)
        n = add_proof(proof, n, img.node_sec[img.nodes[w.node].wildcard].match)
    else:
        # §7.2.6: a wildcard answer proves that the next closer name does not exist.
        n = add_proof(proof, n, cover)
    return n


# Compact denial of existence (RFC 9824, the "black lies" Route 53 answers with): a name that
# does not exist is said to exist without the queried type. The proof is one NSEC owned by the
# name itself whose next name is its immediate successor, ``\000.<name>`` (RFC 4470 §3.1.1;
# for a name of 254 or 255 octets, which has no room for that label, RFC 4471 §3.1.2),
# listing the types the name has, or only RRSIG, NSEC and NXNAME when it has none (§3.1, §3.4);
# that NSEC depends on the query name, so it is signed here (ext/online.pxi, cached).

cdef enum:
    TYPE_NXNAME = 128              # RFC 9824 §3.4: the distinguisher of nonexistent names
    NSEC_BITMAP_MAX = 512          # checked when the image is loaded
    COMPACT_PROOF_MAX = 2048       # NSEC + RRSIG: owner twice, next name, bitmap, signature

# RRSIG (46), NSEC (47), NXNAME (128) as an NSEC type bitmap: window 0, 17 octets.
cdef uint8_t NXNAME_BITMAP[19]
NXNAME_BITMAP[:] = [0, 17, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]


cdef int node_owner(const Image* img, uint32_t node, uint8_t* out, int* labels) noexcept nogil:
    """The wire name (lower-cased) of ``node``; ``labels``: its label count."""
    cdef int pos = 0
    cdef int n = 0
    cdef const uint8_t* label
    while node != 0:
        label = img.labels + img.nodes[node].label_off
        memcpy(out + pos, label, 1 + label[0])
        pos += 1 + label[0]
        n += 1
        node = img.nodes[node].parent
    memcpy(out + pos, (<const uint8_t*> img.hdr) + img.hdr.apex_off, img.hdr.apex_len)
    labels[0] = n + img.apex_labels
    return pos + img.hdr.apex_len


cdef int bitmap_without(const uint8_t* bitmap, int length, uint16_t rtype,
                        uint8_t* out) noexcept nogil:
    """``bitmap`` (NSEC type bitmap, RFC 4034 §4.1.2) without ``rtype``, written to ``out``;
    returns its length. A window left with trailing zero octets is shortened, an empty one
    dropped, as §4.1.2 requires."""
    cdef int pos = 0, n = 0, blen, window, octet
    while pos + 2 <= length:
        window = bitmap[pos]
        blen = bitmap[pos + 1]
        memcpy(out + n, bitmap + pos, 2 + blen)
        if window == rtype >> 8:
            octet = (rtype & 0xFF) >> 3
            if octet < blen:
                out[n + 2 + octet] &= ~(0x80 >> (rtype & 7))
            while blen > 0 and out[n + 1 + blen] == 0:
                blen -= 1
            out[n + 1] = blen
        if blen > 0:
            n += 2 + blen
        pos += 2 + bitmap[pos + 1]
    return n


cdef int name_successor(const uint8_t* name, int length, int apex_len, bint prefix_ok,
                        uint8_t* out) noexcept nogil:
    """The immediate successor of ``name`` (wire form, lower-cased, ``length`` octets) in
    canonical order, by RFC 4471 §3.1.2's absolute method: no name can exist between the two.
    Written to ``out`` (MAX_NAME_WIRE octets); returns its length.

    1. A label of one zero octet prepended, when the name has room for it (``prefix_ok``;
       ``\000.<name>``, what RFC 4470 §3.1.1 and RFC 9824 §3.1 use).
    2. Else a zero octet appended to the first label, when both have room for it.
    3. Else the first label's last octet below 0xFF incremented ("@" to "[", skipping the
       upper-case letters, which sort as lower case) and the octets after it dropped.
    4. Else (all 0xFF) the first label dropped and step 2 on. Back at the apex (``apex_len``
       octets at the end) the apex itself, as the last NSEC of a zone names it.

    Without ``prefix_ok`` the result is the first name after ``name`` and all names below it
    (RFC 4471 §3.1.3.2 wants that for covering a subtree)."""
    cdef int first, i
    if prefix_ok and length + 2 <= MAX_NAME_WIRE:
        out[0] = 1
        out[1] = 0
        memcpy(out + 2, name, length)
        return length + 2
    while length > apex_len:
        first = name[0]
        if first < 63 and length + 1 <= MAX_NAME_WIRE:
            out[0] = first + 1
            memcpy(out + 1, name + 1, first)
            out[1 + first] = 0
            memcpy(out + 2 + first, name + 1 + first, length - 1 - first)
            return length + 1
        i = first  # the label's octets are name[1] .. name[first]
        while i > 0 and name[i] == 0xFF:
            i -= 1
        if i > 0:
            out[0] = i
            memcpy(out + 1, name + 1, i)
            out[i] = 0x5B if name[i] == 0x40 else name[i] + 1  # "@" + 1 would be "A"
            memcpy(out + 1 + i, name + 1 + first, length - 1 - first)
            return length - (first - i)
        name += 1 + first
        length -= 1 + first
    memcpy(out, name, length)
    return length


cdef int compact_proof(const Image* img, const Query* q, const Walk* w, int how, bint denial,
                       uint8_t* out, bint policy_nodata = False) noexcept nogil:
    """The NSEC and its RRSIG (two RRs, uncompressed) proving this query's denial, written to
    ``out``: returns their length, 0 when the answer needs none, -1 when none can be made.

    * NODATA (exact match, empty non-terminal, DS at a delegation without one): the name's NSEC
      lists its types (RFC 4035 §3.1.3.1); at a cut NS and no DS (§3.1.4.1).
    * NXDOMAIN: answered as NODATA (the caller's template), the NSEC listing RRSIG, NSEC and
      NXNAME (RFC 9824 §3.1, §3.4).
    * Wildcard NODATA: the query name's NSEC with the wildcard's types (the name is said to
      exist, so no wildcard proof is needed).
    * ``policy_nodata``: a routing policy had no record for this client (a geolocation group
      without a default): the name's types less the one asked for, as for a name without it.
    * Wildcard answer: the RRSIG's Labels field says a wildcard was expanded, so the query name
      must be shown not to exist (RFC 4035 §3.1.3.3): an NSEC from the existing name before it
      in canonical order (its real types) to the first name after the subtree of the next
      closer name (RFC 5155 §1.3): its first label with a zero octet appended, or where that
      does not fit the rest of RFC 4471 §3.1.2 (``name_successor``); it covers only names
      that do not exist, never the wildcard or another existing name. The next name must not
      be below the next closer name: validators take the closest encloser from the longer of
      the owner's and the next name's common suffixes with the query name (BIND does), and it
      must be the wildcard's parent.
    """
    cdef uint8_t owner[MAX_NAME_WIRE + 1]
    cdef uint8_t rdata[2 + MAX_NAME_WIRE + 1 + NSEC_BITMAP_MAX]
    cdef uint8_t trimmed[NSEC_BITMAP_MAX]
    cdef const uint8_t* bitmap = NXNAME_BITMAP
    cdef int bitmap_len = sizeof(NXNAME_BITMAP)
    cdef int owner_len = q.qname_len
    cdef int labels = q.nlabels
    cdef int rdlen, pos, n, start
    cdef bint after_subtree = how == WALK_WILDCARD and not denial
    cdef uint32_t node = NONE_INDEX
    cdef uint32_t ttl = img.nsec_ttl
    if how == WALK_EXACT:
        if not denial:
            return 0
        node = w.node
    elif how == WALK_WILDCARD:
        node = img.nodes[w.node].wildcard if denial else w.predecessor
    elif how != WALK_NXDOMAIN:
        return 0  # referrals: the twin holds the DS or the cut's NSEC (compile time)
    if how == WALK_WILDCARD and not denial:
        owner_len = node_owner(img, node, owner, &labels)
        if img.labels[img.nodes[node].label_off] == 1 and \
                img.labels[img.nodes[node].label_off + 1] == ord("*"):
            labels -= 1  # RFC 4034 §3.1.3: a leftmost "*" is not counted
    else:
        memcpy(owner, q.lname, q.qname_len)
    if node != NONE_INDEX:
        bitmap = img.blob + img.node_nsec[node].bitmap_off
        bitmap_len = img.node_nsec[node].bitmap_len
        if policy_nodata:
            bitmap_len = bitmap_without(bitmap, bitmap_len, q.qtype, trimmed)
            bitmap = trimmed
    # NSEC RDATA (RFC 4034 §4.1): next name, uncompressed (§4.1.1), then the type bitmap. The
    # next name: the query name's successor, or the first name after the next closer name's
    # subtree (a wildcard answer).
    start = q.label_pos[w.miss_label] if after_subtree else 0
    rdlen = name_successor(q.lname + start, q.qname_len - start, img.hdr.apex_len,
                           not after_subtree, rdata + 2) + bitmap_len
    write_u16(rdata, rdlen)
    memcpy(rdata + 2 + rdlen - bitmap_len, bitmap, bitmap_len)
    memcpy(out, owner, owner_len)
    write_u16(out + owner_len, TYPE_NSEC)
    write_u16(out + owner_len + 2, CLASS_IN)
    write_u32(out + owner_len + 4, ttl)
    memcpy(out + owner_len + 8, rdata, 2 + rdlen)
    pos = owner_len + 10 + rdlen
    memcpy(out + pos, owner, owner_len)
    write_u16(out + pos + owner_len, TYPE_RRSIG)
    write_u16(out + pos + owner_len + 2, CLASS_IN)
    write_u32(out + pos + owner_len + 4, ttl)
    n = sign_rrset(img, owner, owner_len, labels, TYPE_NSEC, ttl, rdata, 2 + rdlen,
                   out + pos + owner_len + 10)
    if n < 0:
        return -1
    write_u16(out + pos + owner_len + 8, n)
    return pos + owner_len + 10 + n


# Multivalue answers under DO (issue 6): the healthy members chosen for this query form one
# RRset that was never signed in advance, so it is signed here (cached by the chosen records).

cdef enum:
    MEMBER_DATA_HEADER = 8         # u16 type, u16 record count, u32 TTL (network order)
    MULTIVALUE_RECORDS_MAX = 64    # records of the chosen members that are signed together
    RRSIG_RR_MAX = 2 + 10 + RRSIG_FIXED_LEN + MAX_NAME_WIRE + ONLINE_SIG_LEN


cdef inline int compare_rdata(const uint8_t* a, const uint8_t* b) noexcept nogil:
    """RFC 4034 §6.3: RDATA as left-justified octet strings, a shorter prefix first."""
    cdef int la = read_u16(a)
    cdef int lb = read_u16(b)
    cdef int c = memcmp(a + 2, b + 2, la if la < lb else lb)
    if c != 0:
        return c
    return la - lb


cdef int multivalue_rrsig(const Image* img, const Query* q, const uint8_t* table,
                          const uint16_t* members, int count, uint8_t* out) noexcept nogil:
    """The RRSIG RR (owner: a pointer to the question) over the records of ``members`` (group
    member indices, ``table``: their canonical records, check_signing_data), written to
    ``out``; returns its length, or -1. The owner is the query name with all its labels: a
    wildcard's members are signed as if the name existed, which needs no wildcard proof."""
    cdef const uint8_t* records[MULTIVALUE_RECORDS_MAX]
    cdef const uint8_t* data
    cdef const uint8_t* tmp
    cdef uint8_t buf[SIG_INPUT_MAX]
    cdef int nrec = 0
    cdef int i, j, k, n, pos = 0, len_
    cdef uint32_t off, ttl = 0
    cdef uint16_t rtype = 0
    for k in range(count):
        j = members[k]
        off = table[4 * j] | (table[4 * j + 1] << 8) | (table[4 * j + 2] << 16) | \
            (<uint32_t> table[4 * j + 3] << 24)
        data = img.blob + off
        if k == 0:
            rtype = read_u16(data)
            ttl = (<uint32_t> read_u16(data + 4) << 16) | read_u16(data + 6)
        n = read_u16(data + 2)
        data += MEMBER_DATA_HEADER
        for i in range(n):
            if nrec == MULTIVALUE_RECORDS_MAX:
                return -1
            records[nrec] = data
            nrec += 1
            data += 2 + read_u16(data)
    for i in range(1, nrec):  # insertion sort: a few records
        tmp = records[i]
        j = i - 1
        while j >= 0 and compare_rdata(records[j], tmp) > 0:
            records[j + 1] = records[j]
            j -= 1
        records[j + 1] = tmp
    for i in range(nrec):
        if i > 0 and compare_rdata(records[i - 1], records[i]) == 0:
            continue  # RFC 2181 §5: an RRset has no duplicate records
        len_ = 2 + read_u16(records[i])
        if pos + len_ > SIG_INPUT_MAX:
            return -1
        memcpy(buf + pos, records[i], len_)
        pos += len_
    out[0] = 0xC0
    out[1] = HEADER_LEN
    write_u16(out + 2, TYPE_RRSIG)
    write_u16(out + 4, CLASS_IN)
    write_u32(out + 6, ttl)
    n = sign_rrset(img, q.lname, q.qname_len, q.nlabels, rtype, ttl, buf, pos, out + 12)
    if n < 0:
        return -1
    write_u16(out + 10, n)
    return 12 + n
