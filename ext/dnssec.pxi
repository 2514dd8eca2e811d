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
