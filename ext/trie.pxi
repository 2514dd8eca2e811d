# The label trie of a compiled image: children of a node are contiguous and sorted in canonical
# DNS order (RFC 4034 §6.1), so a child is found by binary search and in-order traversal is
# canonical order (which gives the predecessor, for NSEC).

cdef inline int compare_label(const uint8_t* a, const uint8_t* b) noexcept nogil:
    """Canonical order of two lower-cased labels, each a length octet then its octets."""
    cdef int la = a[0]
    cdef int lb = b[0]
    cdef int n = la if la < lb else lb
    cdef int c = memcmp(a + 1, b + 1, n)
    if c != 0:
        return c
    return la - lb


cdef inline uint32_t find_child(const Image* img, uint32_t node, const uint8_t* label,
                                uint32_t* insert_at) noexcept nogil:
    """The child of ``node`` with ``label``, or NONE_INDEX (then *insert_at = its rank)."""
    cdef const ImgNode* nd = &img.nodes[node]
    cdef uint32_t lo = 0
    cdef uint32_t hi = nd.child_count
    cdef uint32_t mid
    cdef int c
    while lo < hi:
        mid = lo + (hi - lo) // 2
        c = compare_label(img.labels + img.nodes[nd.first_child + mid].label_off, label)
        if c == 0:
            return nd.first_child + mid
        if c < 0:
            lo = mid + 1
        else:
            hi = mid
    insert_at[0] = lo
    return NONE_INDEX


cdef inline uint32_t last_descendant(const Image* img, uint32_t node) noexcept nogil:
    while img.nodes[node].child_count > 0:
        node = img.nodes[node].first_child + img.nodes[node].child_count - 1
    return node


cdef inline uint32_t find_type(const Image* img, const ImgNode* nd, uint16_t qtype) noexcept nogil:
    cdef uint32_t i
    cdef const ImgType* t = img.types + nd.types_first
    for i in range(nd.types_count):
        if t[i].qtype == qtype:
            return t[i].tmpl
    if qtype == 255 and nd.types_count and not (nd.flags & NODE_CUT):
        # RFC 8482 §4.1: ANY is answered with one RRset, the lowest type's (the table is sorted
        # by type); the compiler leaves that ANY entry out (fastdns.image.implied_any).
        return t[0].tmpl
    return nd.default_tmpl


# Result of walking a query name down a zone image.
ctypedef struct Walk:
    uint32_t node          # exact match, or the closest encloser when not exact
    bint exact
    uint32_t cut           # first zone cut met on the way (NONE_INDEX if none)
    uint32_t predecessor   # canonical predecessor (or the node itself when exact)
    int miss_label         # not exact, no cut: the query's first label below ``node``


cdef void walk_image(const Image* img, const Query* q, int skip_labels,
                     Walk* w) noexcept nogil:
    """Walk QNAME's labels (right to left) below the image root.

    ``skip_labels`` is how many rightmost labels the root stands for (the apex's label count).
    Stops at the first zone cut below the root: nothing beneath one is authoritative.
    """
    cdef uint32_t node = 0
    cdef uint32_t child, rank = 0
    cdef int i = q.nlabels - skip_labels - 1
    w.exact = False
    w.cut = NONE_INDEX
    while True:
        if node != 0 and (img.nodes[node].flags & NODE_CUT):
            w.cut = node
            if i >= 0:
                w.node = node
                w.predecessor = node
                return
        if i < 0:
            w.node = node
            w.exact = True
            w.predecessor = node
            return
        child = find_child(img, node, q.lname + q.label_pos[i], &rank)
        if child == NONE_INDEX:
            w.node = node
            w.miss_label = i
            if rank > 0:
                w.predecessor = last_descendant(img, img.nodes[node].first_child + rank - 1)
            else:
                w.predecessor = node
            return
        node = child
        i -= 1


cdef int find_zone(const Image* index, const Query* q, int* depth,
                   int* parent_zone, int* parent_depth) noexcept nogil:
    """The deepest hosted apex at or above QNAME: its zone number, or -1 (not ours)."""
    cdef uint32_t node = 0
    cdef uint32_t child, rank
    cdef int i = q.nlabels - 1
    cdef int zone = -1
    parent_zone[0] = -1
    if index.nodes[0].flags & NODE_APEX:
        zone = index.nodes[0].default_tmpl
        depth[0] = 0
    while i >= 0:
        child = find_child(index, node, q.lname + q.label_pos[i], &rank)
        if child == NONE_INDEX:
            break
        node = child
        if index.nodes[node].flags & NODE_APEX:
            parent_zone[0] = zone
            parent_depth[0] = depth[0]
            zone = index.nodes[node].default_tmpl
            depth[0] = q.nlabels - i
        i -= 1
    return zone
