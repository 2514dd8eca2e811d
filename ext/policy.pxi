# Routing policies, per query: classify the client, read health, choose a member.
#
# A policy group (fastdns/policy.py compiles them) is a small table: its members, each with the
# template of its answer, a health reference and a weight, and for chain-shaped policies one
# ordered candidate list ("chain") per client class. Route 53's rules (route53-semantics.md):
# a record without a health check is healthy; the choice skips unhealthy members; when no member
# is healthy the group fails open and chooses as if all were.

cdef enum:
    CHOSE_MULTIVALUE = -2          # eval_group: the answer is the members in ``chosen``


# What a policy evaluation decided, for TestDNSAnswer's explanation.
ctypedef struct PolicyTrace:
    int group                      # the group evaluated first, or -1
    uint32_t cls                   # the client's class (NO_CLASS: none or not classified)
    int member                     # the member chosen, or -1 (multivalue: see chosen)
    int nchosen
    uint16_t chosen[MULTIVALUE_MAX]


ctypedef struct PolicyState:
    const ClassifierC* classifiers
    int classifier_count
    const uint8_t* health          # one octet per health slot: 1 healthy, 0 not
    Py_ssize_t health_len
    uint64_t* rng                  # per catalog (TCP) and per UDP socket (ext/udp.pxi)


cdef inline uint64_t next_random(uint64_t* state) noexcept nogil:
    """xorshift64* (Vigna): spreads load evenly and costs a few cycles; not for secrets."""
    cdef uint64_t x = state[0]
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    state[0] = x
    return x * <uint64_t> 0x2545F4914F6CDD1D


cdef inline uint32_t random_below(uint64_t* state, uint32_t n) noexcept nogil:
    """Uniform in [0, n) by multiply-shift (Lemire), n > 0."""
    return <uint32_t> (((next_random(state) >> 32) * n) >> 32)


cdef inline uint32_t load_be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t> p[0] << 24) | (<uint32_t> p[1] << 16) | (<uint32_t> p[2] << 8) | p[3]


cdef inline uint64_t load_be64(const uint8_t* p) noexcept nogil:
    return (<uint64_t> load_be32(p) << 32) | load_be32(p + 4)


# -- classification (RFC 7871 §7.2.1: the scope is the prefix the answer depended on)

cdef int scope_v4(uint32_t a, uint32_t lo, uint32_t hi) noexcept nogil:
    """The shortest prefix p whose block around ``a`` lies inside [lo, hi]."""
    cdef int p
    cdef uint32_t mask, first, last
    for p in range(33):
        mask = 0 if p == 0 else (<uint32_t> 0xFFFFFFFF) << (32 - p)
        first = a & mask
        last = first | ~mask
        if first >= lo and last <= hi:
            return p
    return 32


cdef inline bint le128(uint64_t ah, uint64_t al, uint64_t bh, uint64_t bl) noexcept nogil:
    return ah < bh or (ah == bh and al <= bl)


cdef int scope_v6(uint64_t ah, uint64_t al, uint64_t loh, uint64_t lol,
                  uint64_t hih, uint64_t hil) noexcept nogil:
    cdef int p
    cdef uint64_t mh, ml, fh, fl, lh, ll
    for p in range(129):
        if p == 0:
            mh = 0
            ml = 0
        elif p <= 64:
            mh = (<uint64_t> 0xFFFFFFFFFFFFFFFF) << (64 - p) if p < 64 else \
                <uint64_t> 0xFFFFFFFFFFFFFFFF
            ml = 0
        else:
            mh = <uint64_t> 0xFFFFFFFFFFFFFFFF
            ml = (<uint64_t> 0xFFFFFFFFFFFFFFFF) << (128 - p) if p < 128 else \
                <uint64_t> 0xFFFFFFFFFFFFFFFF
        fh = ah & mh
        fl = al & ml
        lh = fh | ~mh
        ll = fl | ~ml
        if le128(loh, lol, fh, fl) and le128(lh, ll, hih, hil):
            return p
    return 128


cdef uint32_t network_class(const ClassifierC* c, uint32_t network, uint32_t cls,
                            int source) noexcept nogil:
    """FDC2: the class of the innermost configured network no longer than the client's
    ``source`` prefix (Route 53, IP-based routing: "a client prefix shorter than a configured
    CIDR does not match it")."""
    if c.networks == NULL or source < 0:
        return cls
    while network != NO_NETWORK and network < c.network_count and \
            <int> c.networks[network].prefix_len > source:
        network = c.networks[network].parent
    if network == NO_NETWORK or network >= c.network_count:
        return NO_CLASS
    return c.networks[network].cls


cdef uint32_t classify_v4(const ClassifierC* c, uint32_t a, int source,
                          int* scope) noexcept nogil:
    cdef uint32_t lo = 0, hi = c.v4_count, mid, cls
    cdef uint32_t gap_lo = 0, gap_hi = 0xFFFFFFFF
    cdef const uint32_t* e
    cdef uint32_t w = c.v4_words
    while lo < hi:  # the first range starting after a
        mid = lo + (hi - lo) // 2
        if c.v4[mid * w] <= a:
            lo = mid + 1
        else:
            hi = mid
    if lo > 0 and a <= c.v4[(lo - 1) * w + 1]:
        e = c.v4 + (lo - 1) * w
        scope[0] = scope_v4(a, e[0], e[1])
        cls = e[2]
        if w == 4:
            cls = network_class(c, e[3], cls, source)
        return cls
    if lo > 0:
        gap_lo = c.v4[(lo - 1) * w + 1] + 1
    if lo < c.v4_count:
        gap_hi = c.v4[lo * w] - 1
    scope[0] = scope_v4(a, gap_lo, gap_hi)
    return NO_CLASS


cdef uint32_t classify_v6(const ClassifierC* c, const uint8_t* addr, int source,
                          int* scope) noexcept nogil:
    cdef uint64_t ah = load_be64(addr), al = load_be64(addr + 8)
    cdef uint32_t lo = 0, hi = c.v6_count, mid
    cdef uint64_t gh = 0, gl = 0, eh = 0xFFFFFFFFFFFFFFFF, el = 0xFFFFFFFFFFFFFFFF
    cdef const RangeV6* r
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if le128(load_be64(c.v6[mid].start), load_be64(c.v6[mid].start + 8), ah, al):
            lo = mid + 1
        else:
            hi = mid
    if lo > 0:
        r = &c.v6[lo - 1]
        if le128(ah, al, load_be64(r.end), load_be64(r.end + 8)):
            scope[0] = scope_v6(ah, al, load_be64(r.start), load_be64(r.start + 8),
                                load_be64(r.end), load_be64(r.end + 8))
            return network_class(c, r.network, r.cls, source)
        gh = load_be64(r.end)
        gl = load_be64(r.end + 8) + 1
        if gl == 0:
            gh += 1
    if lo < c.v6_count:
        eh = load_be64(c.v6[lo].start)
        el = load_be64(c.v6[lo].start + 8)
        if el == 0:
            eh -= 1
        el -= 1
    scope[0] = scope_v6(ah, al, gh, gl, eh, el)
    return NO_CLASS


cdef uint32_t classify(const PolicyState* ps, int which, Client* client) noexcept nogil:
    """The client's class in classifier ``which`` (NO_CLASS when unknown or in no range);
    widens ``client.scope`` to the prefix this answer depended on. With an FDC2 classifier and
    an ECS source prefix, the scope is at most that prefix: longer configured networks were
    not consulted."""
    cdef int scope = 0
    cdef int bits = 32 if client.family == 4 else 128
    cdef int source = client.prefix if client.prefix < bits else -1
    cdef uint32_t cls
    cdef const ClassifierC* c
    if which >= ps.classifier_count or client.family == 0:
        return NO_CLASS
    c = &ps.classifiers[which]
    if client.family == 4:
        cls = classify_v4(c, load_be32(client.addr), source, &scope)
    else:
        cls = classify_v6(c, client.addr, source, &scope)
    if c.networks != NULL and source >= 0 and scope > source:
        scope = source
    if scope > client.scope:
        client.scope = scope
    return cls


# -- health and choice

cdef bint member_healthy(const PolicyState* ps, const Image* img, const ImgMember* m,
                         int depth) noexcept nogil:
    cdef uint32_t h = m.health
    if h == HEALTH_ALWAYS:
        return True
    if h & HEALTH_GROUP:
        # An alias with EvaluateTargetHealth: healthy when any record it targets is.
        return group_any_healthy(ps, img, h & ~(<uint32_t> HEALTH_GROUP), depth + 1)
    if <Py_ssize_t> h >= ps.health_len:
        return True
    return ps.health[h] != 0


cdef bint group_any_healthy(const PolicyState* ps, const Image* img, uint32_t gi,
                            int depth) noexcept nogil:
    cdef const ImgGroup* g
    cdef const ImgMember* members
    cdef uint32_t i
    if depth > MAX_POLICY_DEPTH or gi >= img.group_count:
        return False
    g = &img.groups[gi]
    members = <const ImgMember*> (img.blob + g.members_off)
    for i in range(g.member_count):
        if member_healthy(ps, img, &members[i], depth):
            return True
    return False


cdef inline const uint8_t* chain_of(const Image* img, const ImgGroup* g,
                                    uint32_t cls) noexcept nogil:
    cdef const uint8_t* offsets = img.blob + g.chains_off
    cdef uint32_t k = g.class_count if cls == NO_CLASS or cls >= g.class_count else cls
    cdef uint32_t off = offsets[4 * k] | (offsets[4 * k + 1] << 8) | \
        (offsets[4 * k + 2] << 16) | (<uint32_t> offsets[4 * k + 3] << 24)
    return img.blob + off


cdef int pick_chain(const PolicyState* ps, const Image* img, const ImgMember* members,
                    const uint8_t* chain, int depth) noexcept nogil:
    """The first healthy candidate of a chain; the first one when none is (fail open); -1 when
    the chain is empty (geolocation with no matching location and no default: NODATA)."""
    cdef int n = chain[0] | (chain[1] << 8)
    cdef int k, m
    if n == 0:
        return -1
    for k in range(n):
        m = chain[2 + 2 * k] | (chain[3 + 2 * k] << 8)
        if member_healthy(ps, img, &members[m], depth):
            return m
    return chain[2] | (chain[3] << 8)


cdef int pick_weighted(const PolicyState* ps, const Image* img, const ImgGroup* g,
                       const ImgMember* members, int depth) noexcept nogil:
    """Route 53's weighted rule: share = weight / sum over healthy members; weight-0 members
    only when no member with a weight is healthy (then equally); none healthy: as if all
    were."""
    cdef uint64_t total = 0, zero = 0, r
    cdef uint32_t i
    cdef bint ok
    cdef bint any_healthy = False
    for i in range(g.member_count):
        ok = member_healthy(ps, img, &members[i], depth)
        if ok:
            any_healthy = True
            if members[i].weight:
                total += members[i].weight
            else:
                zero += 1
    if total:
        r = random_below(ps.rng, <uint32_t> total)
        for i in range(g.member_count):
            if members[i].weight and member_healthy(ps, img, &members[i], depth):
                if r < members[i].weight:
                    return i
                r -= members[i].weight
    if zero and any_healthy:
        r = random_below(ps.rng, <uint32_t> zero)
        for i in range(g.member_count):
            if not members[i].weight and member_healthy(ps, img, &members[i], depth):
                if r == 0:
                    return i
                r -= 1
    # Fail open: every member unhealthy.
    total = 0
    for i in range(g.member_count):
        total += members[i].weight
    if total:
        r = random_below(ps.rng, <uint32_t> total)
        for i in range(g.member_count):
            if r < members[i].weight:
                return i
            r -= members[i].weight
    return random_below(ps.rng, g.member_count)


cdef int pick_multivalue(const PolicyState* ps, const Image* img, const ImgGroup* g,
                         const ImgMember* members, uint16_t* chosen, int depth) noexcept nogil:
    """Up to eight healthy members at random (all when eight or fewer); none healthy: up to
    eight of all. Returns how many, written to ``chosen`` in random order."""
    cdef uint16_t pool[1024]
    cdef int n = 0, k, j, limit
    cdef uint16_t tmp
    cdef uint32_t i
    limit = g.member_count if g.member_count < 1024 else 1024
    for i in range(<uint32_t> limit):
        if member_healthy(ps, img, &members[i], depth):
            pool[n] = <uint16_t> i
            n += 1
    if n == 0:
        for i in range(<uint32_t> limit):
            pool[i] = <uint16_t> i
        n = limit
    k = n if n < MULTIVALUE_MAX else MULTIVALUE_MAX
    for j in range(k):  # partial Fisher-Yates
        i = j + random_below(ps.rng, n - j)
        tmp = pool[j]
        pool[j] = pool[i]
        pool[i] = tmp
        chosen[j] = pool[j]
    return k


cdef long eval_group(const PolicyState* ps, const Image* img, uint32_t gi, Client* client,
                     uint16_t* chosen, int* nchosen, uint32_t* chosen_group, int depth,
                     PolicyTrace* trace) noexcept nogil:
    """The template a policy group answers with for this client, TEMPLATE_NODATA when it has
    no answer for it, or CHOSE_MULTIVALUE with the members in ``chosen`` of the group
    ``chosen_group`` (the group itself, or one an alias member leads to). The first
    (outermost) group's decision is written to ``trace``."""
    cdef const ImgGroup* g
    cdef const ImgMember* members
    cdef uint32_t cls = NO_CLASS
    cdef int m
    cdef uint32_t tmpl
    if depth > MAX_POLICY_DEPTH or gi >= img.group_count:
        return TEMPLATE_NODATA
    g = &img.groups[gi]
    members = <const ImgMember*> (img.blob + g.members_off)
    if g.member_count == 0:
        return TEMPLATE_NODATA
    if depth == 0:
        trace.group = <int> gi
        trace.cls = NO_CLASS
        trace.member = -1
        trace.nchosen = 0
    if g.kind == POLICY_WEIGHTED:
        m = pick_weighted(ps, img, g, members, depth)
    elif g.kind == POLICY_MULTIVALUE:
        nchosen[0] = pick_multivalue(ps, img, g, members, chosen, depth)
        chosen_group[0] = gi
        if depth == 0:
            trace.nchosen = nchosen[0]
            memcpy(trace.chosen, chosen, sizeof(uint16_t) * nchosen[0])
        return CHOSE_MULTIVALUE
    else:
        if g.kind == POLICY_CLASSIFIED:
            cls = classify(ps, g.classifier, client)
            if depth == 0:
                trace.cls = cls
        m = pick_chain(ps, img, members, chain_of(img, g, cls), depth)
        if m < 0:
            return TEMPLATE_NODATA
    if depth == 0:
        trace.member = m
    tmpl = members[m].tmpl
    if tmpl & TMPL_POLICY:  # an alias member whose target is itself a policy group
        return eval_group(ps, img, tmpl & ~(<uint32_t> TMPL_POLICY), client, chosen, nchosen,
                          chosen_group, depth + 1, trace)
    return tmpl


cdef int check_groups(const Image* img, Py_ssize_t blob_len,
                      int classifier_count) except -1 with gil:
    """Every offset and index of the policy groups, checked once when the image loads."""
    cdef uint32_t i, j, k, n, off, m
    cdef const ImgGroup* g
    cdef const ImgMember* members
    cdef const uint8_t* offsets
    cdef const uint8_t* chain
    for i in range(img.group_count):
        g = &img.groups[i]
        if g.kind < POLICY_CHAIN or g.kind > POLICY_MULTIVALUE:
            raise ValueError("zone image: unknown policy kind")
        if <uint64_t> g.members_off + <uint64_t> g.member_count * sizeof(ImgMember) > \
                <uint64_t> blob_len or g.members_off % 4:
            raise ValueError("zone image: bad policy members")
        members = <const ImgMember*> (img.blob + g.members_off)
        for j in range(g.member_count):
            if members[j].tmpl & TMPL_POLICY:
                if (members[j].tmpl & ~(<uint32_t> TMPL_POLICY)) >= img.group_count:
                    raise ValueError("zone image: bad policy alias")
            elif members[j].tmpl >= img.hdr.tmpl_count:
                raise ValueError("zone image: bad policy member template")
            if members[j].health != HEALTH_ALWAYS and (members[j].health & HEALTH_GROUP) and \
                    (members[j].health & ~(<uint32_t> HEALTH_GROUP)) >= img.group_count:
                raise ValueError("zone image: bad policy health group")
        if g.kind == POLICY_MULTIVALUE:
            check_signing_data(img, g, blob_len)
            continue
        if g.kind == POLICY_WEIGHTED:
            continue
        if g.kind == POLICY_CLASSIFIED and g.classifier >= classifier_count:
            raise ValueError("zone image: a policy needs a classifier the catalog lacks")
        if <uint64_t> g.chains_off + 4 * (<uint64_t> g.class_count + 1) > <uint64_t> blob_len:
            raise ValueError("zone image: bad policy chains")
        offsets = img.blob + g.chains_off
        for k in range(g.class_count + 1):
            off = offsets[4 * k] | (offsets[4 * k + 1] << 8) | (offsets[4 * k + 2] << 16) | \
                (<uint32_t> offsets[4 * k + 3] << 24)
            if <uint64_t> off + 2 > <uint64_t> blob_len:
                raise ValueError("zone image: bad policy chain")
            chain = img.blob + off
            n = chain[0] | (chain[1] << 8)
            if <uint64_t> off + 2 + 2 * n > <uint64_t> blob_len:
                raise ValueError("zone image: bad policy chain")
            for j in range(n):
                m = chain[2 + 2 * j] | (chain[3 + 2 * j] << 8)
                if m >= g.member_count:
                    raise ValueError("zone image: bad policy chain member")
    return 0


cdef int check_signing_data(const Image* img, const ImgGroup* g, uint32_t blob_len) except -1:
    """A multivalue group of a zone signed online: ``chains_off`` (0: none) is a u32 (LE) per
    member, the offset of the member's records in canonical form (multivalue_rrsig)."""
    cdef uint32_t j, off, k, n, pos
    cdef const uint8_t* table
    cdef const uint8_t* data
    if g.chains_off == 0:
        return 0
    if img.online == NULL or \
            <uint64_t> g.chains_off + 4 * <uint64_t> g.member_count > <uint64_t> blob_len:
        raise ValueError("zone image: bad multivalue signing data")
    table = img.blob + g.chains_off
    for j in range(g.member_count):
        off = table[4 * j] | (table[4 * j + 1] << 8) | (table[4 * j + 2] << 16) | \
            (<uint32_t> table[4 * j + 3] << 24)
        if <uint64_t> off + MEMBER_DATA_HEADER > <uint64_t> blob_len:
            raise ValueError("zone image: bad multivalue signing data")
        data = img.blob + off
        n = read_u16(data + 2)
        pos = off + MEMBER_DATA_HEADER
        for k in range(n):
            if <uint64_t> pos + 2 > blob_len or \
                    <uint64_t> pos + 2 + read_u16(img.blob + pos) > blob_len:
                raise ValueError("zone image: bad multivalue signing data")
            pos += 2 + read_u16(img.blob + pos)
    return 0
