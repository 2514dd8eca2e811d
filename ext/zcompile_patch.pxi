# -- a change grafted onto the last image instead of a recompile (issue 8) ---------------------
#
# Most changes to a hosted zone of a million record sets replace the values of record sets that
# exist (an address, a TXT string), add a record set (a new name under one that exists, a type
# at a name that has others) or delete one, and move the SOA serial forward. ``graft_image``
# makes the new image from the last one instead of compiling every record set again: the
# changed record sets' templates come from the same compiler run on a zone of only the SOA, the
# apex NS and those record sets (``mini``: a positive template depends on nothing but its record
# set and its owner's name, so it is the one a full compile writes); a replaced record set's
# template record is pointed at its new body, appended to the blob; a node whose types change
# gets a new type table at the end of the types section; a new name is inserted into its
# parent's run of children (breadth-first order, children sorted canonically, as
# fastdns.image.TrieBuilder lays them out), a deleted one taken out, and every node index is
# renumbered and the child links rebuilt from the parent links; the new serial is written over
# the old one in every template that holds the SOA. A copy of the image and a few passes over
# its tables instead of a sort, a trie and a million templates.
#
# It grafts what changes the changed names' own templates and those that copy their data, and
# refuses the rest: not below a zone cut (glue is written into referrals); not a new name that
# a lookup looked for and did not find (a chain ending in NXDOMAIN or at a wildcard, an absent
# MX target: the names ``absent`` lists); not the removal of a name below which such a lookup
# ended (REF_ABSENCE); not of a type that is structure (SOA fields but the serial, REFRESH,
# RETRY and EXPIRE); not a new name that needs an empty non-terminal above it, not a deletion
# that would leave one behind.
#
# Where other templates copy a node's data (``compile_packed(with_references=True)``:
# REF_DATA, and for each such node the nodes whose templates copy it, compile.note_data: CNAME
# chain hops and ends, in-zone NS, MX and SRV targets, sibling glue), the change is grafted
# when each of those copiers is written again too: the caller finds them (``copiers_of``) and
# gives their record sets unchanged as changes (CHANGE_RETEMPLATED). A CNAME, MX, SRV or NS
# record set added, replaced or written again that points inside the zone needs what its
# answers copy in ``mini``: an MX, SRV or NS target's addresses, a CNAME target's every
# record set (checked here against the target's types), the next hop's where the target is a
# CNAME too, and their targets' addresses; the caller gives them and lists the targets with their copiers
# (fastdns.packedzone), which are marked REF_DATA and noted as copied. So its answers in
# ``mini`` are its answers in the zone. A node with a CNAME before or after the change takes
# its whole shape from ``mini`` (type table, default, templates: a CNAME's answers are
# chains, RFC 1034 §3.6.2), and so does a delegation point whose NS or DS record sets change,
# or which is made or ended (its referrals, its DS answer, its cut flag), if no names of the
# zone are below it. Anything else is refused with a reason and the caller compiles.
# tests/test_zcompile_graft.py compares grafted images with full compiles of the same
# records, node by node and template by template.

cdef enum:
    MAX_GRAFTS = 4096
    MAX_NEW_DEPTH = 8              # new names (a new name and its new ancestors) per change
    FRESH_BIT = 0x80000000         # in the order of the new nodes: a new node's index


cdef struct View:
    const uint8_t* base
    size_t size
    const ImageHeader* h
    const ImgNode* nodes
    const ImgType* types
    const ImgTemplate* tmpls
    const uint8_t* labels
    const uint8_t* blob


cdef bint view_open(View* v, const uint8_t* base, size_t size) noexcept nogil:
    """Whether ``base[:size]`` is an unsigned image without policy groups whose sections lie
    inside it (the images compile_packed writes)."""
    cdef const ImageHeader* h = <const ImageHeader*> base
    if size < HEADER_SIZE or memcmp(base, b"FDZ1", 4) != 0 or h.version != IMAGE_VERSION \
            or h.total_len != size:
        return False
    if h.reserved1 or h.nsec3_off or h.nsec3_count or h.node_sec_off \
            or h.online_off:
        return False
    if <uint64_t> h.nodes_off + <uint64_t> h.node_count * NODE_SIZE > size \
            or <uint64_t> h.types_off + <uint64_t> h.type_count * TYPE_SIZE > size \
            or <uint64_t> h.tmpls_off + <uint64_t> h.tmpl_count * TEMPLATE_SIZE > size \
            or <uint64_t> h.labels_off + h.labels_len > size \
            or <uint64_t> h.blob_off + h.blob_len > size \
            or <uint64_t> h.apex_off + h.apex_len > size \
            or h.node_count == 0 or h.tmpl_count < 2 or h.apex_len == 0 \
            or h.nodes_off % 4 or h.types_off % 4 or h.tmpls_off % 4:
        return False
    v.base = base
    v.size = size
    v.h = h
    v.nodes = <const ImgNode*> (base + h.nodes_off)
    v.types = <const ImgType*> (base + h.types_off)
    v.tmpls = <const ImgTemplate*> (base + h.tmpls_off)
    v.labels = base + h.labels_off
    v.blob = base + h.blob_off
    return True


cdef uint32_t view_walk(View* v, const uint8_t* name, bint* cut, uint32_t* encloser,
                        uint32_t* child_off) noexcept nogil:
    """The node of ``name`` (uncompressed wire format, any case), or NONE32; ``cut``: whether
    the node, or the last one met, is a zone cut or below one. For a name of the zone the
    image lacks, ``encloser`` is its closest encloser and ``child_off`` where the name of that
    node's child on the way starts (else ``encloser`` is NONE32). Children are sorted
    canonically (fastdns.image)."""
    cdef uint32_t offsets[128]
    cdef int n = label_offsets(name, offsets)
    cdef int k = n - <int> v.h.apex_labels
    cdef uint32_t at = 0, found
    cdef uint32_t lo, hi, mid
    cdef const uint8_t* label
    cdef const uint8_t* s
    cdef int j, d
    cut[0] = False
    encloser[0] = NONE32
    if k < 0 or (k < n and not name_equal(name + offsets[k], v.base + v.h.apex_off)):
        return NONE32
    for j in range(k - 1, -1, -1):
        if v.nodes[at].flags & NODE_CUT:
            cut[0] = True
        label = name + offsets[j]
        found = NONE32
        if v.nodes[at].child_count:
            lo = v.nodes[at].first_child
            hi = lo + v.nodes[at].child_count
            if hi > v.h.node_count:
                return NONE32
            while lo < hi:
                mid = lo + (hi - lo) // 2
                if v.nodes[mid].label_off >= v.h.labels_len:
                    return NONE32
                s = v.labels + v.nodes[mid].label_off
                d = label_compare(label + 1, label[0], s + 1, s[0])
                if d == 0:
                    found = mid
                    break
                if d < 0:
                    hi = mid
                else:
                    lo = mid + 1
        if found == NONE32:
            encloser[0] = at
            child_off[0] = offsets[j]
            return NONE32
        at = found
    if v.nodes[at].flags & NODE_CUT:
        cut[0] = True
    return at


cdef uint32_t view_node(View* v, const uint8_t* name, bint* cut) noexcept nogil:
    """The node of ``name``, or NONE32 (see view_walk)."""
    cdef uint32_t encloser, child_off
    return view_walk(v, name, cut, &encloser, &child_off)


cdef bint _wildcard_above(View* v, const uint8_t* name) noexcept nogil:
    """Whether ``name``'s closest encloser in ``v`` (which lacks it) has a wildcard child, or
    ``v`` has the name after all."""
    cdef uint32_t encloser, child_off
    cdef bint cut
    if view_walk(v, name, &cut, &encloser, &child_off) != NONE32:
        return True
    return encloser == NONE32 or v.nodes[encloser].wildcard != NONE32


cdef bint same_types(View* a, uint32_t node_a, View* b, uint32_t node_b) noexcept nogil:
    """Whether two nodes have the same types (ANY aside): a CNAME target's data in ``mini`` is
    all of it in the zone (tables are sorted by type). A target that is a CNAME itself is the
    next hop of the chain, whose target the caller gives as one of ``chains`` too."""
    cdef const ImgNode* x
    cdef const ImgNode* y
    cdef uint32_t i = 0, j = 0
    cdef uint16_t p, q
    if node_a == NONE32 or node_b == NONE32:
        return False
    x, y = &a.nodes[node_a], &b.nodes[node_b]
    while True:
        while i < x.types_count and a.types[x.types_first + i].qtype == T_ANY:
            i += 1
        while j < y.types_count and b.types[y.types_first + j].qtype == T_ANY:
            j += 1
        if i == x.types_count or j == y.types_count:
            return i == x.types_count and j == y.types_count and x.types_count > 0
        p = a.types[x.types_first + i].qtype
        q = b.types[y.types_first + j].qtype
        if p != q:
            return False
        i += 1
        j += 1


cdef bint below_cut(View* v, uint32_t node) noexcept nogil:
    """Whether a zone cut is above ``node`` (not at it): the trie's parent links to the apex."""
    while node != 0:
        node = v.nodes[node].parent
        if node != 0 and v.nodes[node].flags & NODE_CUT:
            return True
    return False


cdef uint32_t view_template(View* v, uint32_t node, uint16_t qtype) noexcept nogil:
    """The template answering ``qtype`` at ``node`` if that is the positive answer of a record
    set of the node's own (not NODATA, a policy group or a CNAME chain), else NONE32."""
    cdef const ImgNode* nd = &v.nodes[node]
    cdef uint32_t i, found = NONE32
    if <uint64_t> nd.types_first + nd.types_count > v.h.type_count:
        return NONE32
    for i in range(nd.types_first, nd.types_first + nd.types_count):
        if v.types[i].qtype == T_CNAME:
            return NONE32
        if v.types[i].qtype == qtype:
            found = v.types[i].tmpl
    if found == NONE32 or found & TMPL_POLICY or found < 2 or found >= v.h.tmpl_count:
        return NONE32
    return found


cdef size_t template_size(View* v, uint32_t t) noexcept nogil:
    """The blob bytes of template ``t``: body, pointer positions, additional marks."""
    cdef const ImgTemplate* r = &v.tmpls[t]
    return <size_t> r.body_len + 2 * <size_t> r.ptr_count + 2 * <size_t> r.ar


cdef bint template_inside(View* v, uint32_t t) noexcept nogil:
    cdef const ImgTemplate* r = &v.tmpls[t]
    cdef uint64_t blob_len = v.h.blob_len
    return <uint64_t> r.body_off + r.body_len <= blob_len \
        and <uint64_t> r.ptr_off + 2 * <uint64_t> r.ptr_count <= blob_len \
        and <uint64_t> r.mark_off + 2 * <uint64_t> r.ar <= blob_len


cdef int skip_name(const uint8_t* body, uint32_t n, uint32_t* at) noexcept nogil:
    """Step over a (possibly compressed) name in a template body; -1 if it runs past ``n``."""
    cdef uint8_t b
    while at[0] < n:
        b = body[at[0]]
        if b & 0xC0 == 0xC0:
            if at[0] + 2 > n:
                return -1
            at[0] += 2
            return 0
        if b & 0xC0:
            return -1
        at[0] += 1 + b
        if b == 0:
            return 0
    return -1


cdef int reserial(uint8_t* body, uint32_t n, uint32_t rrs, uint32_t old_serial,
                  uint32_t new_serial, const uint8_t* timers) noexcept nogil:
    """Write ``new_serial`` over the serial of every SOA RR in a template body of ``rrs`` RRs,
    and ``timers`` (REFRESH, RETRY and EXPIRE, 12 octets, RFC 1035 §3.3.13) after it unless
    NULL; -1 if the body does not parse or an SOA there holds another serial than
    ``old_serial`` (or ``new_serial``: a body ``mini`` wrote, left as it is). The zone has one
    SOA (fastdns.validate), so every SOA RR in its templates is that one. MINIMUM is not
    written: it is the negative answers' TTL (RFC 2308 §5), which other parts of the templates
    hold too."""
    cdef uint32_t at = 0
    cdef uint32_t i, rdlen, serial_at, serial
    for i in range(rrs):
        if skip_name(body, n, &at) < 0 or at + 10 > n:
            return -1
        rdlen = <uint32_t> body[at + 8] << 8 | body[at + 9]
        if at + 10 + rdlen > n:
            return -1
        if body[at] == 0 and body[at + 1] == T_SOA:
            if rdlen < 22:
                return -1
            serial_at = at + 10 + rdlen - 20
            serial = (<uint32_t> body[serial_at] << 24 | <uint32_t> body[serial_at + 1] << 16
                      | <uint32_t> body[serial_at + 2] << 8 | body[serial_at + 3])
            if serial == new_serial and serial != old_serial:
                # A body from ``mini`` (compiled with the new SOA): a chain that ends in a
                # denial of a type its in-zone target lacks.
                at += 10 + rdlen
                continue
            if serial != old_serial:
                return -1
            body[serial_at] = (new_serial >> 24) & 0xFF
            body[serial_at + 1] = (new_serial >> 16) & 0xFF
            body[serial_at + 2] = (new_serial >> 8) & 0xFF
            body[serial_at + 3] = new_serial & 0xFF
            if timers != NULL:
                memcpy(body + serial_at + 4, timers, 12)
        at += 10 + rdlen
    return 0 if at == n else -1


cdef enum:
    CHANGE_REPLACED = 0
    CHANGE_ADDED = 1
    CHANGE_DELETED = 2
    CHANGE_RETEMPLATED = 3         # the same record set: its templates copy changed data
    MAX_NODE_TYPES = 64            # as fill() and pack_sections() allow
    PLAIN = 0xFFFFFFFE


cdef struct Change:
    const uint8_t* owner
    uint16_t rtype
    uint8_t kind
    uint32_t node                  # its node in the old image, or NONE32 (a new name)
    uint32_t mini_tmpl             # its template in ``mini`` (not for a deletion)
    uint32_t tmpl                  # replaced: the old template; added: its new number
    bint shaped                    # its node takes its whole shape from ``mini`` (a CNAME)
    bint delegation                # a record set at a cut, or one that makes or ends one
    bint retemplated               # CHANGE_RETEMPLATED (kept as CHANGE_REPLACED)
    bint copied                    # at a node other templates copy: they must all be rewritten
    bint occluded                  # below a zone cut: an address, perhaps glue


cdef struct NewNode:
    const uint8_t* owner
    uint32_t parent                # in the old image, or NONE32: a new node's
    uint32_t new_parent            # the new node it is a child of (NONE32: an old one)
    uint32_t label_off             # in the new labels section
    uint32_t types_first           # in the new types section
    uint16_t types_count
    uint32_t mini_node             # its node in ``mini``, whose shape it takes
    uint32_t tmpl_base             # the new number of the first template copied from there
    uint32_t default_tmpl


cdef struct Retyped:               # an old node whose types change
    uint32_t node
    uint32_t types_first
    uint16_t types_count
    bint removed                   # no types and no children left: taken out of the trie
    bint shaped                    # takes its shape from ``mini`` (NONE32 there: none)
    bint occluded                  # below a zone cut: no types, removed when mini lacks it
    uint32_t types_new             # how many types it has after the change
    uint32_t mini_node
    uint32_t tmpl_base
    uint32_t default_tmpl


cdef uint32_t shape_templates(View* v, uint32_t node, uint32_t* distinct) noexcept nogil:
    """The templates of ``node`` in ``v`` a new image copies to take its shape: those of its
    type entries and its default, each once, in that order, leaving out NODATA and NXDOMAIN
    (templates 0 and 1 of every image of the zone, alike); how many. 0 for NONE32."""
    cdef uint32_t n = 0
    cdef uint32_t k, j, t
    cdef const ImgNode* nd
    if node == NONE32:
        return 0
    nd = &v.nodes[node]
    for k in range(nd.types_first, nd.types_first + nd.types_count + 1):
        t = v.types[k].tmpl if k < nd.types_first + nd.types_count else nd.default_tmpl
        if t < 2:
            continue
        for j in range(n):
            if distinct[j] == t:
                break
        else:
            distinct[n] = t
            n += 1
    return n


cdef uint32_t shaped_template(uint32_t t, const uint32_t* distinct, uint32_t n,
                              uint32_t base) noexcept nogil:
    """Template ``t`` of ``mini`` as numbered in the new image (see shape_templates)."""
    cdef uint32_t j
    if t < 2:
        return t
    for j in range(n):
        if distinct[j] == t:
            return base + j
    return NONE32


cdef void copy_template(ImgTemplate* rec, uint8_t* blob_out, size_t* at, View* v,
                        uint32_t t) noexcept nogil:
    """Template ``t`` of ``v`` into ``rec``, its body and lists appended to ``blob_out`` at
    ``at`` (moved on)."""
    cdef const ImgTemplate* src = &v.tmpls[t]
    rec[0] = src[0]
    rec.body_off = <uint32_t> at[0]
    memcpy(blob_out + at[0], v.blob + src.body_off, src.body_len)
    at[0] += src.body_len
    rec.ptr_off = <uint32_t> at[0]
    memcpy(blob_out + at[0], v.blob + src.ptr_off, 2 * <size_t> src.ptr_count)
    at[0] += 2 * <size_t> src.ptr_count
    rec.mark_off = <uint32_t> at[0]
    memcpy(blob_out + at[0], v.blob + src.mark_off, 2 * <size_t> src.ar)
    at[0] += 2 * <size_t> src.ar


cdef str _new_node(View* ov, View* mv, NewNode* node, const uint8_t* owner, uint32_t parent,
                   uint32_t new_parent, const uint8_t[::1] node_refs, const uint8_t* absent,
                   size_t absent_len, bint occluded):
    """Fill ``node``, a new node for ``owner`` under old node ``parent`` or new node
    ``new_parent`` (the other NONE32); the reason it cannot be grafted, or None."""
    cdef size_t a = 0
    cdef bint cut
    if parent != NONE32 and owner[0] == 1 and owner[1] == 42 \
            and node_refs[parent] & REF_ABSENCE:
        # RFC 4592 §3.3.1: a new *.<parent> answers every name looked up below it.
        return "a new wildcard where other answers looked up a name"
    while a < absent_len:
        if name_equal(absent + a, owner):
            return "a new name other answers looked up and did not find"
        a += name_length(absent + a)
    node.owner = owner
    node.parent = parent
    node.new_parent = new_parent
    node.mini_node = view_node(mv, owner, &cut)
    if node.mini_node == NONE32:
        return "the change's own compile has no node for a new name"
    if occluded and mv.nodes[node.mini_node].types_count:
        return "the change's own compile has no cut above a name"
    return None


cdef int _label_order(const uint8_t* a, const uint8_t* b) noexcept nogil:
    """RFC 4034 §6.1 for the first labels of two names, both in any case."""
    cdef uint32_t i, n = min(a[0], b[0])
    cdef uint8_t x, y
    for i in range(1, n + 1):
        x = lower(a[i])
        y = lower(b[i])
        if x != y:
            return (x > y) - (x < y)
    return (a[0] > b[0]) - (a[0] < b[0])


cdef uint32_t _new_under_new(const NewNode* fresh, uint32_t nfresh) noexcept nogil:
    """How many of the new nodes have a new parent."""
    cdef uint32_t k, n = 0
    for k in range(nfresh):
        n += fresh[k].parent == NONE32
    return n


cdef int compare_new_nodes(const void* x, const void* y, void* arg) noexcept nogil:
    """New nodes (indices into ``arg``) by parent, old ones' children first, then label."""
    cdef const NewNode* nodes = <const NewNode*> arg
    cdef const NewNode* a = &nodes[(<const uint32_t*> x)[0]]
    cdef const NewNode* b = &nodes[(<const uint32_t*> y)[0]]
    if (a.parent == NONE32) != (b.parent == NONE32):
        return 1 if a.parent == NONE32 else -1
    if a.parent != b.parent:
        return (a.parent > b.parent) - (a.parent < b.parent)
    if a.new_parent != b.new_parent:
        return (a.new_parent > b.new_parent) - (a.new_parent < b.new_parent)
    return _label_order(a.owner, b.owner)


cdef uint32_t table_length(const uint32_t* pairs, uint32_t n) noexcept nogil:
    """How many entries write_types makes of ``n`` pairs: ANY is added, and left out again
    when the lowest type sorts before it (then ANY repeats that type's template)."""
    cdef uint32_t i, lowest = 0xFFFF
    if n == 0:
        return 0
    for i in range(n):
        lowest = min(lowest, pairs[2 * i])
    return n if lowest < T_ANY else n + 1


cdef int write_types(ImgType* out, const uint32_t* pairs, uint32_t n) noexcept nogil:
    """A node's (type, template) pairs (ANY excluded) as its type table: ANY added with the
    lowest type's template (RFC 8482 §4.1, as fill() does), sorted by type, and left out again
    as it is then implied (drop_implied_any)."""
    cdef uint32_t sorted_pairs[2 * (MAX_NODE_TYPES + 1)]
    cdef uint32_t i, lowest = 0
    if n == 0:
        return 0
    memcpy(sorted_pairs, pairs, 8 * n)
    for i in range(1, n):
        if pairs[2 * i] < pairs[2 * lowest]:
            lowest = i
    sorted_pairs[2 * n] = T_ANY
    sorted_pairs[2 * n + 1] = pairs[2 * lowest + 1]
    qsort_r(sorted_pairs, n + 1, 8, compare_pairs, NULL)
    n = drop_implied_any(sorted_pairs, n + 1)
    for i in range(n):
        out[i].qtype = <uint16_t> sorted_pairs[2 * i]
        out[i].reserved = 0
        out[i].tmpl = sorted_pairs[2 * i + 1]
    return n


def graft_image(old, mini, changes, long long old_serial, long long new_serial, references,
                image_buffer=None, timers=None, targets=(), chains=()) -> tuple:
    """``(image, references, None)``: the image of ``old``'s zone after ``changes`` and the SOA
    serial moved from ``old_serial`` to ``new_serial`` (both -1: the SOA did not change), and
    the references of that image; or ``(None, None, reason)`` when the change cannot be
    grafted and the zone must be compiled again. ``timers``: the SOA's new REFRESH, RETRY and
    EXPIRE (12 octets, as in its RDATA), written with the serial (which must then be given,
    moved or not). ``targets``: (target, copier) pairs, the in-zone names the added, replaced
    and rewritten NS, MX, SRV and CNAME record sets point at (wire format) with the owner of
    the record set whose answers copy the target's data; ``mini`` must hold an NS, MX or SRV
    target's A and AAAA record sets, so that its templates carry their addresses as a full
    compile's do. Each must be a name of the zone outside any cut, and stay one; it is marked
    REF_DATA. ``chains``: those of ``targets`` that CNAME record sets point at; ``mini`` must
    hold every record set of each (a chain copies the target's data of every type), which is
    checked against the target's types in ``old`` (or, for a target the change touches, that
    mini has it); where one is a CNAME, its own in-zone target must be one of ``chains`` too
    (the caller follows every hop: mini then chases the chain as the full compile does).

    ``old`` is the zone's last image (compile_packed) or one this function made, and
    ``references`` what compile_packed or this function gave with it (the same kind of pair);
    ``mini`` is compile_packed's image of the zone's new SOA, its apex NS, the added, replaced
    and rewritten record sets and what their answers copy; ``changes`` lists each changed
    record set as (owner in wire format, type, kind): kind 0 replaced, 1 added, 2 deleted, 3
    the same record set written again (CHANGE_RETEMPLATED: its templates copy the data of a
    name that changes; every copier ``copiers_of`` lists for a changed name must be given so).
    The result answers every query as a full compile of the changed zone does (see above for
    the changes refused); ``image_buffer`` as for compile_columns."""
    cdef const uint8_t[::1] old_bytes = old
    cdef const uint8_t[::1] mini_bytes = mini
    cdef const uint8_t[::1] node_refs
    cdef bytes absent
    cdef const uint8_t* absent_p
    cdef size_t absent_len, a
    cdef View ov, mv
    cdef Py_ssize_t count = len(changes)
    cdef Py_ssize_t i, j, k
    cdef Change* ch = NULL
    cdef NewNode* fresh = NULL
    cdef Retyped* retyped = NULL
    cdef uint32_t* node_map = NULL
    cdef uint32_t* emitted = NULL      # the new order: old node numbers, or FRESH_BIT | new
    cdef uint32_t* fresh_order = NULL  # the new nodes by parent and label (compare_new_nodes)
    cdef uint32_t head, u, c, last, child, prev
    cdef const uint8_t* name_p
    cdef const uint8_t* name_q
    cdef int depth
    cdef uint32_t offsets_scratch[128]
    cdef str reason
    cdef uint32_t* pairs = NULL
    cdef uint32_t nfresh = 0, nretyped = 0, nremoved = 0, nadded = 0
    cdef uint32_t node, t, parent, n, q, count_nodes, children, type_total
    cdef uint32_t old_nodes, old_types, old_tmpls, old_labels_len, old_blob_len
    cdef bint cut, has_cname, found
    cdef uint32_t distinct[MAX_NODE_TYPES + 24]
    cdef uint32_t m, mnode, base
    cdef const ImgNode* mnd
    cdef bytes owner
    cdef int rtype, kind
    cdef size_t extra_blob = 0, extra_labels = 0, extra_types = 0
    cdef size_t at, total, nodes_off, types_off, tmpls_off, labels_off, blob_off, apex_off
    cdef object image = None
    cdef bytes new_references
    cdef uint8_t* refs_out
    cdef uint8_t[::1] dest
    cdef uint8_t* out
    cdef ImageHeader* header
    cdef ImgNode* nodes_out
    cdef ImgType* types_out
    cdef ImgTemplate* tmpls_out
    cdef const ImgNode* nd
    cdef uint8_t* labels_out
    cdef uint8_t* blob_out
    cdef const uint8_t* label
    cdef int failed = 0
    if old_bytes.shape[0] == 0 or mini_bytes.shape[0] == 0:
        return None, None, "no image"
    if not view_open(&ov, &old_bytes[0], old_bytes.shape[0]) \
            or not view_open(&mv, &mini_bytes[0], mini_bytes.shape[0]):
        return None, None, "not an image a change can be grafted onto"
    old_nodes = ov.h.node_count
    old_types = ov.h.type_count
    old_tmpls = ov.h.tmpl_count
    old_labels_len = ov.h.labels_len
    old_blob_len = ov.h.blob_len
    node_refs, absent, copiers = references
    if <size_t> node_refs.shape[0] != old_nodes:
        raise ValueError("graft_image: references do not match the image's nodes")
    absent_p = NULL
    absent_len = 0
    if absent is not None:
        absent_p = absent
        absent_len = len(absent)
    if count > MAX_GRAFTS:
        return None, None, "too many record sets changed"
    if (old_serial < 0) != (new_serial < 0) or old_serial > 0xFFFFFFFF \
            or new_serial > 0xFFFFFFFF:
        raise ValueError("graft_image: serials are both -1 or both 32-bit")
    cdef const uint8_t* timers_p = NULL
    if timers is not None:
        timers = bytes(timers)
        if len(timers) != 12 or new_serial < 0:
            raise ValueError("graft_image: timers are 12 octets, given with the serials")
        timers_p = <const uint8_t*> PyBytes_AS_STRING(timers)
    # The nodes the in-zone targets are (compile.note_data marks them), and the owners whose
    # templates copy them.
    cdef Py_ssize_t ntargets = len(targets)
    cdef uint32_t target_nodes[64]     # in the old image (NONE32: a name the change adds)
    cdef uint32_t target_new[64]       # in the new image
    cdef uint32_t target_enclosers[64]  # one the zone lacks: its closest encloser (old image)
    cdef uint32_t absent_child = 0, walk_encloser = NONE32
    cdef bint walk_cut
    cdef bint target_chain[64]
    cdef bint target_gone[64]          # its node the change removes (an NS, MX or SRV target)
    new_absent = []  # the names those lookups did not find, cut to the encloser's child
    cdef const uint8_t* target_ptrs[64]
    cdef bint target_cut
    cdef const uint8_t[::1] target_name
    target_copiers = []
    target_names = []  # keeps the targets' bytes alive while ``target_ptrs`` point into them
    changed_owners = {change[0].lower() for change in changes}
    added_owners = {change[0].lower() for change in changes if change[2] == CHANGE_ADDED}
    if ntargets > 64:
        return None, None, "too many in-zone targets"
    for i in range(ntargets):
        target, copier = targets[i]
        if not isinstance(copier, bytes) or not _well_formed(copier):
            raise ValueError("graft_image: a target's copier that is not a wire name")
        target_copiers.append(copier)
        target_name = target
        a = 0
        while a < <size_t> target_name.shape[0] and target_name[a] != 0:
            a += 1 + target_name[a]
        if target_name.shape[0] > MAX_NAME_WIRE or a + 1 != <size_t> target_name.shape[0]:
            raise ValueError("graft_image: a target that is not a wire name")
        target = bytes(target)
        target_names.append(target)
        target_ptrs[i] = <const uint8_t*> PyBytes_AS_STRING(target)
        target_nodes[i] = view_walk(&ov, target_ptrs[i], &target_cut, &walk_encloser,
                                    &absent_child)
        walk_cut = target_cut
        if target_cut and _strictly_below(target.lower(), copier.lower()):
            target_cut = False  # in-domain glue of the delegation at the copier (RFC 9471 §2.1)
        target_enclosers[i] = NONE32
        target_chain[i] = target in chains
        target_gone[i] = False
        if target_nodes[i] == NONE32 and not target_cut \
                and target.lower() not in added_owners:
            # A target the zone lacks: an NS, MX or SRV answer carries no address for it, a
            # chain ends there in NXDOMAIN; a full compile notes the lookup (note_absent) so
            # that a later new name there compiles; noted here the same way. Not where the
            # change adds a name on the way (it, or an empty non-terminal above it, would be
            # the encloser), nor where a wildcard would answer the chain's lookup (RFC 4592
            # §3.3.1: one at the closest encloser, in the zone or in mini).
            target_enclosers[i] = walk_encloser
            target_cut = walk_cut  # (the in-domain glue exception is for names there)
            child_name = bytes(target[absent_child:]).lower()
            if absent_p == NULL or any(owner == child_name or _strictly_below(owner, child_name)
                                       for owner in added_owners):
                target_cut = True
            elif target_chain[i] and (
                    target_enclosers[i] == NONE32
                    or ov.nodes[target_enclosers[i]].wildcard != NONE32
                    or any(owner[:2] == b"\x01*" for owner in added_owners)
                    or _wildcard_above(&mv, target_ptrs[i])):
                return None, None, "a CNAME to a name a wildcard may answer"
            else:
                new_absent.append(child_name)
        if target_cut or (target_nodes[i] == NONE32 and target_enclosers[i] == NONE32
                          and target.lower() not in added_owners):
            return None, None, "an in-zone target that is glue below a zone cut, or no name " \
                "of the zone's"
        if target not in chains or target_enclosers[i] != NONE32:
            continue  # (a chain's end the zone lacks: checked above)
        node = view_node(&mv, &target_name[0], &target_cut)
        if target.lower() in changed_owners:
            # Its types change with it: mini holds them all (the caller's contract).
            if node == NONE32 or mv.nodes[node].types_count == 0:
                return None, None, "a CNAME target whose record sets mini does not all hold"
        elif not same_types(&ov, target_nodes[i], &mv, node):
            return None, None, "a CNAME target whose record sets mini does not all hold"
    owners = []  # keeps the owners' bytes alive while ``ch`` points into them
    ch = <Change*> calloc(count + 1, sizeof(Change))
    # New names, and the empty non-terminals above them the image lacks (at most
    # MAX_NEW_DEPTH above each).
    fresh = <NewNode*> calloc(count * MAX_NEW_DEPTH + 1, sizeof(NewNode))
    cdef Py_ssize_t retyped_capacity = count * MAX_NEW_DEPTH + 1  # empty non-terminals too
    retyped = <Retyped*> calloc(retyped_capacity, sizeof(Retyped))
    pairs = <uint32_t*> malloc(8 * (MAX_NODE_TYPES + 1))
    try:
        if ch == NULL or fresh == NULL or retyped == NULL or pairs == NULL:
            raise MemoryError()
        # 1. Each change against the old image: its node (or its new node's parent), whether it
        # may be grafted, and its template in ``mini``.
        for i in range(count):
            owner, rtype, kind = changes[i]
            if len(owner) == 0 or len(owner) > MAX_NAME_WIRE or not _well_formed(owner):
                raise ValueError(f"graft_image: owner {owner!r} is not a wire-format name")
            if not 0 < rtype < 65536 or kind not in (CHANGE_REPLACED, CHANGE_ADDED,
                                                     CHANGE_DELETED, CHANGE_RETEMPLATED):
                raise ValueError(f"graft_image: change {changes[i]!r}")
            if rtype in (T_SOA, T_ANY):
                return None, None, f"type {rtype} is structure"
            owners.append(owner)
            ch[i].owner = owner
            ch[i].rtype = <uint16_t> rtype
            ch[i].retemplated = kind == CHANGE_RETEMPLATED
            ch[i].kind = <uint8_t> (CHANGE_REPLACED if ch[i].retemplated else kind)
            ch[i].node = node = view_node(&ov, ch[i].owner, &cut)
            ch[i].tmpl = NONE32
            if node == 0 and (rtype == T_DS or (rtype == T_NS and ch[i].kind != CHANGE_REPLACED)):
                return None, None, f"type {rtype} is structure"  # the apex always has its NS
            # A delegation's record sets: its NS and DS (RFC 4035 §2.4: DS is the parent's),
            # and any data the cut occludes. The node takes its whole shape from ``mini``
            # (referrals, the DS answer, its cut flag); the caller gives every record set it has.
            ch[i].delegation = node != 0 and (rtype == T_NS or rtype == T_DS or (
                node != NONE32 and ov.nodes[node].flags & NODE_CUT != 0))
            if node != NONE32:
                if cut and not (ch[i].delegation and not below_cut(&ov, node)):
                    if rtype != T_A and rtype != T_AAAA:
                        return None, None, "a record set below a zone cut"
                    # Glue, or an address a cut hides (all rule 4 allows below one): the node
                    # has no types of its own (fill() leaves occluded nodes empty); the
                    # referrals copying it are its copiers.
                    ch[i].occluded = ch[i].shaped = True
                # Data other templates copy: those are written again from mini too, each of
                # them a change here (checked below; a retemplated set's data is the same).
                ch[i].copied = node_refs[node] & REF_DATA != 0 and not ch[i].retemplated
                if ch[i].delegation:
                    # Names below a cut made or ended change their answers; below one that
                    # stays, they have none of their own (glue, occluded addresses).
                    mnode = view_node(&mv, ch[i].owner, &target_cut)
                    if ov.nodes[node].child_count and (ov.nodes[node].flags & NODE_CUT) != (
                            mv.nodes[mnode].flags & NODE_CUT if mnode != NONE32 else 0):
                        return None, None, "a delegation above names of the zone"
                    if node_refs[node] & REF_ABSENCE:
                        return None, None, "a delegation where other answers looked a name up"
                    ch[i].shaped = True
                nd = &ov.nodes[node]
                if <uint64_t> nd.types_first + nd.types_count > old_types:
                    return None, None, "not an image a change can be grafted onto"
                has_cname = found = False
                for k in range(nd.types_first, nd.types_first + nd.types_count):
                    has_cname |= ov.types[k].qtype == T_CNAME
                    found |= ov.types[k].qtype == rtype
                if kind == CHANGE_ADDED and found and not ch[i].delegation:
                    # (A cut's table answers DS whether it has one or not: NODATA, RFC 4035
                    # §3.1.4.1.)
                    return None, None, "an added record set the image has"
                if has_cname or rtype == T_CNAME:
                    ch[i].shaped = True  # its answers are chains: the node takes mini's shape
                elif kind != CHANGE_ADDED and not ch[i].shaped:
                    ch[i].tmpl = view_template(&ov, node, ch[i].rtype)
                    if ch[i].tmpl == NONE32:
                        return None, None, "a record set the image does not answer with a " \
                            "template of its own"
            else:
                if kind != CHANGE_ADDED:
                    return None, None, "a record set that is not in the image"
                if ch[i].owner[0] == 0:
                    return None, None, "a record set that is not in the image"
                if absent_p == NULL:
                    return None, None, "a new name, and no list of the names looked up"
                # The new name, and each ancestor the image lacks (an empty non-terminal, or a
                # name of the change): new nodes shaped from mini, up to one the image has.
                depth = 0
                name_p = ch[i].owner
                while True:
                    parent = view_node(&ov, name_p + name_p[0] + 1, &cut)
                    if parent != NONE32 or name_p[name_p[0] + 1] == 0:
                        break
                    depth += 1
                    if depth == MAX_NEW_DEPTH:
                        return None, None, "a new name too far below the names of the image"
                    name_p = name_p + name_p[0] + 1
                if parent == NONE32:
                    return None, None, "a new name outside the zone"
                if cut and rtype != T_A and rtype != T_AAAA:
                    return None, None, "a record set at or below a zone cut"
                ch[i].occluded = cut
                # From the one below that name down to the change's owner.
                prev = NONE32
                while True:
                    for j in range(nfresh):
                        if name_equal(fresh[j].owner, name_p):
                            break
                    else:
                        reason = _new_node(&ov, &mv, &fresh[nfresh], name_p, parent, prev,
                                           node_refs, absent_p, absent_len, cut)
                        if reason is not None:
                            return None, None, reason
                        j = nfresh
                        nfresh += 1
                        extra_labels += 1 + name_p[0]
                    prev = <uint32_t> j
                    parent = NONE32  # the names below have a new parent
                    if name_p == ch[i].owner:
                        break
                    # The next name down: the owner's suffix one label longer.
                    name_q = ch[i].owner
                    while name_q + name_q[0] + 1 != name_p:
                        name_q = name_q + name_q[0] + 1
                    name_p = name_q
        # A node with a CNAME before or after takes its whole shape from ``mini``, whatever
        # else changed there (a CNAME has no other data beside it, RFC 1034 §3.6.2).
        for i in range(count):
            if ch[i].shaped:
                for j in range(count):
                    if ch[j].node == ch[i].node:
                        ch[j].shaped = True
        for i in range(count):
            if ch[i].copied and not _copiers_rewritten(&ov, ch[i].node, copiers, ch, count):
                return None, None, "a record set other answers copy"
        for i in range(count):
            if ch[i].kind != CHANGE_DELETED and ch[i].node != NONE32 and not ch[i].shaped:
                node = view_node(&mv, ch[i].owner, &cut)
                t = view_template(&mv, node, ch[i].rtype) if node != NONE32 else NONE32
                if t == NONE32 or not template_inside(&mv, t) or mv.tmpls[t].twin:
                    return None, None, "the change's own compile has no template for a " \
                        "record set"
                ch[i].mini_tmpl = t
                extra_blob += template_size(&mv, t)
                if ch[i].kind == CHANGE_ADDED:
                    ch[i].tmpl = old_tmpls + nadded
                    nadded += 1
        # 2. Old nodes whose types change (a record set added or deleted): their new type
        # tables; those left without types and children are taken out.
        for i in range(count):
            if (ch[i].kind == CHANGE_REPLACED and not ch[i].shaped) or ch[i].node == NONE32:
                continue
            for j in range(nretyped):
                if retyped[j].node == ch[i].node:
                    break
            else:
                retyped[nretyped].node = ch[i].node
                retyped[nretyped].shaped = ch[i].shaped
                retyped[nretyped].occluded = ch[i].occluded
                if ch[i].shaped:
                    retyped[nretyped].mini_node = view_node(&mv, ch[i].owner, &cut)
                nretyped += 1
        for j in range(nretyped):
            if retyped[j].shaped:
                n = mv.nodes[retyped[j].mini_node].types_count \
                    if retyped[j].mini_node != NONE32 else 0
            else:
                n = _node_pairs(&ov, retyped[j].node, ch, count, pairs)
            if n > MAX_NODE_TYPES + 1:
                return None, None, "more types at one name than worth a native path"
            node = retyped[j].node
            if retyped[j].occluded:
                # Below a cut in mini too (no types), and there while it has data.
                if retyped[j].mini_node != NONE32 and n != 0:
                    return None, None, "the change's own compile has no cut above a name"
                if retyped[j].mini_node != NONE32 or ov.nodes[node].child_count:
                    continue
                for i in range(nfresh):
                    if fresh[i].parent == node:
                        break
                else:
                    if node_refs[node] & REF_ABSENCE:
                        return None, None, "a name other answers looked up below"
                    retyped[j].removed = True
                    nremoved += 1
                continue
            for i in range(nfresh):
                if fresh[i].parent == node and retyped[j].shaped \
                        and ov.nodes[node].flags & NODE_CUT == 0 and retyped[j].mini_node \
                        != NONE32 and mv.nodes[retyped[j].mini_node].flags & NODE_CUT:
                    return None, None, "a delegation above names of the zone"
            if n == 0 and ov.nodes[node].child_count == 0:
                for i in range(nfresh):
                    if fresh[i].parent == node:
                        break
                else:
                    if node_refs[node] & REF_ABSENCE:
                        return None, None, "a name other answers looked up below"
                    retyped[j].removed = True
                    nremoved += 1
            retyped[j].types_new = n
            if retyped[j].shaped:
                extra_types += n  # mini's table as it is
            else:
                extra_types += table_length(pairs, n)
        # A name a deletion leaves without types and children goes too, as in a full compile
        # (an empty non-terminal exists only above names, RFC 4592 §2.2.2), and so on up.
        j = 0
        while j < nretyped:
            if not retyped[j].removed:
                j += 1
                continue
            parent = ov.nodes[retyped[j].node].parent
            j += 1
            if parent == 0:
                continue
            for k in range(nretyped):
                if retyped[k].node == parent:
                    break
            else:
                k = -1
            if k >= 0 and (retyped[k].removed or retyped[k].types_new):
                continue  # gone already, or keeps types
            if k < 0 and ov.nodes[parent].types_count:
                continue
            children = ov.nodes[parent].child_count
            for m in range(nretyped):
                if retyped[m].removed and ov.nodes[retyped[m].node].parent == parent:
                    children -= 1
            for m in range(nfresh):
                if fresh[m].parent == parent:
                    children += 1
            if children:
                continue
            if below_cut(&ov, parent) or ov.nodes[parent].flags & NODE_CUT:
                return None, None, "a deletion that leaves an empty non-terminal"  # glue's
            if node_refs[parent] & (REF_ABSENCE | REF_DATA):
                return None, None, "a deletion that leaves an empty non-terminal other " \
                    "answers look up"
            if k < 0:
                if nretyped == retyped_capacity:
                    return None, None, "a deletion that leaves too many empty non-terminals"
                k = nretyped
                nretyped += 1
                retyped[k].node = parent
            retyped[k].removed = True
            nremoved += 1
        # The templates the nodes that take their shape from mini copy from there.
        for j in range(nretyped + nfresh):
            if j < nretyped:
                if not retyped[j].shaped or retyped[j].removed:
                    continue
                node = retyped[j].mini_node
            else:
                node = fresh[j - nretyped].mini_node
                extra_types += mv.nodes[node].types_count
            n = shape_templates(&mv, node, distinct)
            for k in range(n):
                if not template_inside(&mv, distinct[k]) or mv.tmpls[distinct[k]].twin \
                        or distinct[k] & TMPL_POLICY or distinct[k] >= mv.h.tmpl_count:
                    return None, None, "the change's own compile has a template it cannot give"
                extra_blob += template_size(&mv, distinct[k])
            if j < nretyped:
                retyped[j].tmpl_base = old_tmpls + nadded
            else:
                fresh[j - nretyped].tmpl_base = old_tmpls + nadded
            nadded += n
        # 3. The new image: header, nodes, types, templates, labels, blob, apex.
        count_nodes = old_nodes + nfresh - nremoved
        type_total = old_types + <uint32_t> extra_types
        nodes_off = HEADER_SIZE
        types_off = aligned(nodes_off + <size_t> count_nodes * NODE_SIZE)
        tmpls_off = aligned(types_off + <size_t> type_total * TYPE_SIZE)
        labels_off = aligned(tmpls_off + (<size_t> old_tmpls + nadded) * TEMPLATE_SIZE)
        blob_off = aligned(labels_off + old_labels_len + extra_labels)
        apex_off = aligned(blob_off + old_blob_len + extra_blob)
        total = aligned(apex_off + ov.h.apex_len)
        if total > 0xFFFFFFFF:
            return None, None, _REASONS[R_TOO_LARGE]
        if image_buffer is not None:
            image = image_buffer(total)
        if image is None:
            image = PyBytes_FromStringAndSize(NULL, total)
            out = <uint8_t*> PyBytes_AS_STRING(image)
        else:
            dest = image
            if <size_t> dest.shape[0] != total:
                raise ValueError(f"image buffer of {dest.shape[0]} bytes for {total}")
            out = &dest[0]
        new_references = PyBytes_FromStringAndSize(NULL, count_nodes)
        refs_out = <uint8_t*> PyBytes_AS_STRING(new_references)
        node_map = <uint32_t*> malloc((<size_t> old_nodes + nfresh) * 4)
        emitted = <uint32_t*> malloc(<size_t> count_nodes * 4)
        fresh_order = <uint32_t*> malloc((<size_t> nfresh + 1) * 4)
        if node_map == NULL or emitted == NULL or fresh_order == NULL:
            raise MemoryError()
        with nogil:
            # Zero only the padding after each section (the sections are all written below).
            memset(out + nodes_off + <size_t> count_nodes * NODE_SIZE, 0,
                   types_off - nodes_off - <size_t> count_nodes * NODE_SIZE)
            memset(out + types_off + <size_t> type_total * TYPE_SIZE, 0,
                   tmpls_off - types_off - <size_t> type_total * TYPE_SIZE)
            memset(out + labels_off - 3, 0, 3)
            memset(out + blob_off - 3, 0, 3)
            memset(out + apex_off - 3, 0, 3)
            memset(out + total - 3, 0, 3)
            memcpy(out, ov.base, HEADER_SIZE)
            header = <ImageHeader*> out
            nodes_out = <ImgNode*> (out + nodes_off)
            types_out = <ImgType*> (out + types_off)
            tmpls_out = <ImgTemplate*> (out + tmpls_off)
            labels_out = out + labels_off
            blob_out = out + blob_off
            memcpy(types_out, ov.types, <size_t> old_types * TYPE_SIZE)
            memcpy(tmpls_out, ov.tmpls, <size_t> old_tmpls * TEMPLATE_SIZE)
            memcpy(labels_out, ov.labels, old_labels_len)
            memcpy(blob_out, ov.blob, old_blob_len)
            memcpy(out + apex_off, ov.base + ov.h.apex_off, ov.h.apex_len)
            # Templates: a replaced one's record points at its new body; an added one is new.
            at = old_blob_len
            for i in range(count):
                if ch[i].kind == CHANGE_DELETED or ch[i].node == NONE32 or ch[i].shaped:
                    continue
                copy_template(&tmpls_out[ch[i].tmpl], blob_out, &at, &mv, ch[i].mini_tmpl)
            # The templates, type tables and defaults of the nodes shaped from mini.
            q = old_types
            for j in range(nretyped + nfresh):
                if j < nretyped:
                    if not retyped[j].shaped or retyped[j].removed:
                        continue
                    mnode = retyped[j].mini_node
                    base = retyped[j].tmpl_base
                else:
                    mnode = fresh[j - nretyped].mini_node
                    base = fresh[j - nretyped].tmpl_base
                n = shape_templates(&mv, mnode, distinct)
                for k in range(n):
                    copy_template(&tmpls_out[base + k], blob_out, &at, &mv, distinct[k])
                m = 0
                t = 0  # NODATA: a node mini does not have (everything at it deleted)
                if mnode != NONE32:
                    mnd = &mv.nodes[mnode]
                    for k in range(mnd.types_count):
                        types_out[q + k].qtype = mv.types[mnd.types_first + k].qtype
                        types_out[q + k].reserved = 0
                        types_out[q + k].tmpl = shaped_template(
                            mv.types[mnd.types_first + k].tmpl, distinct, n, base)
                    m = mnd.types_count
                    t = shaped_template(mnd.default_tmpl, distinct, n, base)
                if j < nretyped:
                    retyped[j].types_first = q
                    retyped[j].types_count = <uint16_t> m
                    retyped[j].default_tmpl = t
                else:
                    fresh[j - nretyped].types_first = q
                    fresh[j - nretyped].types_count = <uint16_t> m
                    fresh[j - nretyped].default_tmpl = t
                q += m
            # Type tables of the old nodes whose types change and of the new nodes, after the
            # old tables; labels of the new nodes after the old labels.
            for j in range(nretyped):
                if retyped[j].shaped:
                    continue
                n = _node_pairs(&ov, retyped[j].node, ch, count, pairs)
                retyped[j].types_first = q
                retyped[j].types_count = <uint16_t> write_types(types_out + q, pairs, n)
                q += retyped[j].types_count
            at = old_labels_len
            for j in range(nfresh):
                fresh[j].label_off = <uint32_t> at
                label = fresh[j].owner
                labels_out[at] = label[0]
                for k in range(label[0]):
                    labels_out[at + 1 + k] = lower(label[1 + k])
                at += 1 + label[0]
            # Nodes, breadth-first as fastdns.image.TrieBuilder lays them out: each node's
            # children after those of the nodes before it, in canonical order (RFC 4034 §6.1),
            # the old ones' runs merged with the new children, the removed ones left out.
            # Parents are given as old numbers (a new node's: old_nodes + its index), then
            # renumbered by _relink, which also finds every node's children and wildcard again
            # from its children's parent links.
            if q != type_total:
                failed = 1
            for k in range(nfresh):
                fresh_order[k] = <uint32_t> k
            qsort_r(fresh_order, nfresh, 4, compare_new_nodes, fresh)
            # node_map: first which retyped entry an old node has (PLAIN: none), then its new
            # number (NONE32: removed); after the old nodes, the new nodes' new numbers.
            for node in range(old_nodes):
                node_map[node] = PLAIN
            for k in range(nretyped):
                node_map[retyped[k].node] = <uint32_t> k
            emitted[0] = 0  # the apex
            n = 1
            j = 0  # the next new node (in fresh_order) whose parent is an old node
            head = 0
            while head < n and not failed:
                u = emitted[head]
                head += 1
                if u & FRESH_BIT:
                    u &= ~FRESH_BIT
                    # Its children are all new (fresh_order has them together, in order).
                    for k in range(nfresh):
                        if fresh[fresh_order[k]].new_parent == u:
                            if n == count_nodes:
                                failed = 1
                                break
                            emitted[n] = FRESH_BIT | fresh_order[k]
                            n += 1
                    continue
                c = ov.nodes[u].first_child
                last = c + ov.nodes[u].child_count if ov.nodes[u].child_count else c
                if ov.nodes[u].child_count and (c == 0 or last > old_nodes):
                    failed = 1
                    break
                while c < last or (j < nfresh and fresh[fresh_order[j]].parent == u):
                    if j < nfresh and fresh[fresh_order[j]].parent == u and (
                            c == last or _label_order(fresh[fresh_order[j]].owner,
                                                      ov.labels + ov.nodes[c].label_off) < 0):
                        child = FRESH_BIT | fresh_order[j]
                        j += 1
                    else:
                        child = c
                        c += 1
                        k = node_map[child]
                        if k != PLAIN and retyped[k].removed:
                            continue
                    if n == count_nodes:
                        failed = 1
                        break
                    emitted[n] = child
                    n += 1
            if j != nfresh - _new_under_new(fresh, nfresh) or n != count_nodes:
                failed = 1
            for k in range(n if not failed else 0):
                u = emitted[k]
                if u & FRESH_BIT:
                    u &= ~FRESH_BIT
                    nodes_out[k].label_off = fresh[u].label_off
                    nodes_out[k].parent = fresh[u].parent if fresh[u].parent != NONE32 \
                        else old_nodes + fresh[u].new_parent
                    nodes_out[k].types_first = fresh[u].types_first
                    nodes_out[k].types_count = fresh[u].types_count
                    # A new delegation's cut flag (node flags are NODE_CUT alone in a zone).
                    nodes_out[k].flags = mv.nodes[fresh[u].mini_node].flags & NODE_CUT
                    nodes_out[k].default_tmpl = fresh[u].default_tmpl
                    refs_out[k] = 0
                    node_map[old_nodes + u] = <uint32_t> k
                    continue
                m = node_map[u]
                nodes_out[k] = ov.nodes[u]
                if m != PLAIN:
                    nodes_out[k].types_first = retyped[m].types_first
                    nodes_out[k].types_count = retyped[m].types_count
                    if retyped[m].shaped:
                        nodes_out[k].default_tmpl = retyped[m].default_tmpl
                        nodes_out[k].flags &= ~NODE_CUT
                        if retyped[m].mini_node != NONE32:
                            nodes_out[k].flags |= mv.nodes[retyped[m].mini_node].flags & NODE_CUT
                refs_out[k] = node_refs[u]
                node_map[u] = <uint32_t> k
            # The removed old nodes (never emitted) map to none.
            for k in range(nretyped):
                if retyped[k].removed:
                    node_map[retyped[k].node] = NONE32
            if not failed:
                failed = _relink(nodes_out, count_nodes, node_map, labels_out)
            for i in range(ntargets):
                if failed:
                    break
                if target_enclosers[i] != NONE32:
                    if node_map[target_enclosers[i]] == NONE32:
                        failed = 3  # the change removes the encloser: compiled
                    else:
                        refs_out[node_map[target_enclosers[i]]] |= REF_ABSENCE
                    continue
                if target_nodes[i] != NONE32:
                    target_new[i] = node_map[target_nodes[i]]
                else:  # a new name (one that is not gets no node: refused as removed)
                    target_new[i] = NONE32
                    for j in range(nfresh):
                        if name_equal(fresh[j].owner, target_ptrs[i]):
                            target_new[i] = node_map[old_nodes + j]
                if target_new[i] == NONE32 and target_nodes[i] != NONE32 \
                        and not target_chain[i]:
                    target_gone[i] = True  # its lookup now fails: noted below
                elif target_new[i] == NONE32:
                    failed = 3  # a chain's end gone (its lookup may now meet a wildcard)
                else:
                    refs_out[target_new[i]] |= REF_DATA
            header.node_count = count_nodes
            header.nodes_off = <uint32_t> nodes_off
            header.type_count = type_total
            header.types_off = <uint32_t> types_off
            header.tmpl_count = old_tmpls + nadded
            header.tmpls_off = <uint32_t> tmpls_off
            header.labels_len = <uint32_t> (old_labels_len + extra_labels)
            header.labels_off = <uint32_t> labels_off
            header.blob_len = <uint32_t> (old_blob_len + extra_blob)
            header.blob_off = <uint32_t> blob_off
            header.apex_off = <uint32_t> apex_off
            header.total_len = <uint32_t> total
            if not failed and new_serial >= 0:
                for t in range(old_tmpls + nadded):
                    if <size_t> tmpls_out[t].body_off + tmpls_out[t].body_len \
                            > old_blob_len + extra_blob or reserial(
                                blob_out + tmpls_out[t].body_off, tmpls_out[t].body_len,
                                <uint32_t> tmpls_out[t].an + tmpls_out[t].ns + tmpls_out[t].ar,
                                <uint32_t> old_serial, <uint32_t> new_serial,
                                timers_p) < 0:
                        failed = 2
                        break
        if failed == 1:
            return None, None, "the trie could not be relinked"
        if failed == 3:
            return None, None, "an in-zone target that the change removes"
        if failed:
            return None, None, "a template whose SOA does not hold the old serial"
        # An NS, MX or SRV target the change removes: noted as looked up and not found below
        # its closest encloser that stays, as compile.note_absent does.
        for i in range(ntargets):
            if not target_gone[i]:
                continue
            node = target_nodes[i]
            while node != 0 and node_map[node] == NONE32:
                node = ov.nodes[node].parent
            refs_out[node_map[node]] |= REF_ABSENCE
            if absent is None:
                return None, None, "an in-zone target that the change removes"
            depth = 0
            k = node
            while k != 0:
                depth += 1
                k = ov.nodes[k].parent
            # The target's name from the encloser's child down: drop the labels below it.
            name_p = target_ptrs[i]
            for k in range(label_offsets(name_p, offsets_scratch) - <int> ov.h.apex_labels
                           - depth - 1):
                name_p = name_p + name_p[0] + 1
            new_absent.append(bytes(name_p[:name_length(name_p)]).lower())
            target_enclosers[i] = node  # (no copier pair)
        # The copiers: the old pairs renumbered (those of removed nodes left out; those of
        # rewritten templates kept, which errs on the safe side) and each target's.
        new_pairs = []
        for i in range(ntargets):
            if target_enclosers[i] != NONE32:
                continue  # no node: nothing copied
            owner = target_copiers[i]
            node = view_node(&ov, owner, &cut)
            if node != NONE32:
                node = node_map[node]
            else:
                for j in range(nfresh):
                    if name_equal(fresh[j].owner, owner):
                        node = node_map[old_nodes + j]
            if node == NONE32:
                return None, None, "a target's copier that is no name of the new image"
            new_pairs.append((target_new[i], node))
        if new_absent:
            absent = absent + b"".join(new_absent)
        return image, (new_references, absent, _renumbered_copiers(
            copiers, node_map, old_nodes, sorted(set(new_pairs)))), None
    finally:
        free(ch)
        free(fresh)
        free(retyped)
        free(node_map)
        free(emitted)
        free(fresh_order)
        free(pairs)


cdef uint32_t _node_pairs(View* v, uint32_t node, const Change* ch, Py_ssize_t count,
                          uint32_t* pairs) noexcept nogil:
    """The (type, template) pairs of old node ``node`` after the changes: its old types but
    ANY and the deleted ones, then the added ones; how many (more than MAX_NODE_TYPES: too
    many, ``pairs`` holds the first ones). New names and CNAME nodes take mini's table."""
    cdef uint32_t n = 0
    cdef uint32_t k
    cdef Py_ssize_t i
    cdef bint deleted
    cdef const ImgNode* nd = &v.nodes[node]
    for k in range(nd.types_first, nd.types_first + nd.types_count):
        if v.types[k].qtype == T_ANY:
            continue
        deleted = False
        for i in range(count):
            if ch[i].node == node and ch[i].kind == CHANGE_DELETED \
                    and ch[i].rtype == v.types[k].qtype:
                deleted = True
        if deleted:
            continue
        if n == MAX_NODE_TYPES:
            return n + 1
        pairs[2 * n] = v.types[k].qtype
        pairs[2 * n + 1] = v.types[k].tmpl
        n += 1
    for i in range(count):
        if ch[i].kind == CHANGE_ADDED and ch[i].node == node:
            if n == MAX_NODE_TYPES:
                return n + 1
            pairs[2 * n] = ch[i].rtype
            pairs[2 * n + 1] = ch[i].tmpl
            n += 1
    return n


def _strictly_below(bytes name, bytes ancestor) -> bool:
    """Whether ``name`` is below ``ancestor`` (both wire format, lower-cased)."""
    cdef Py_ssize_t at = 0, cut = len(name) - len(ancestor)
    if cut <= 0 or not name.endswith(ancestor):
        return False
    while at < cut:
        at += 1 + name[at]
    return at == cut


cdef size_t _first_pair(const uint32_t* pairs, size_t n, uint32_t node) noexcept nogil:
    """The first of ``n`` sorted (node, copier) pairs whose node is ``node`` or after it."""
    cdef size_t lo = 0, hi = n, mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if pairs[2 * mid] < node:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef bint _copiers_rewritten(View* v, uint32_t node, object copiers, const Change* ch,
                             Py_ssize_t count):
    """Whether every template that copies ``node``'s data is written again by the changes:
    each copier (compile.note_data) takes its shape from mini, or has each of its NS, MX and
    SRV record sets (the types whose answers carry their targets' addresses) among them."""
    cdef const uint8_t[::1] table
    cdef const uint32_t* pairs
    cdef size_t n, k
    cdef uint32_t copier, t
    cdef uint16_t qtype
    cdef Py_ssize_t i
    cdef bint any_change, covered
    if copiers is None:
        return False  # not kept: no way to know them
    table = copiers
    n = <size_t> table.shape[0] // 8
    if n == 0:
        return False
    pairs = <const uint32_t*> &table[0]
    k = _first_pair(pairs, n, node)
    while k < n and pairs[2 * k] == node:
        copier = pairs[2 * k + 1]
        k += 1
        if copier >= v.h.node_count:
            return False
        if not v.nodes[copier].flags & NODE_CUT and not _has_copying_type(v, copier):
            continue  # copied once, no longer (a pair grafts keep on the safe side)
        any_change = False
        for i in range(count):
            if ch[i].node == copier:
                any_change = True
                if ch[i].shaped:
                    break
        else:
            if not any_change:
                return False
            for t in range(v.nodes[copier].types_first,
                           v.nodes[copier].types_first + v.nodes[copier].types_count):
                qtype = v.types[t].qtype
                if qtype != T_NS and qtype != T_MX and qtype != T_SRV:
                    continue
                covered = False
                for i in range(count):
                    if ch[i].node == copier and ch[i].rtype == qtype:
                        covered = True
                if not covered:
                    return False
    return True


cdef bint _has_copying_type(View* v, uint32_t node) noexcept nogil:
    """Whether ``node`` has a type whose answers copy other names' data (NS, MX, SRV: their
    targets' addresses; CNAME: its chain)."""
    cdef uint32_t t
    cdef uint16_t qtype
    cdef uint32_t first = v.nodes[node].types_first
    for t in range(first, first + v.nodes[node].types_count):
        qtype = v.types[t].qtype
        if qtype == T_NS or qtype == T_MX or qtype == T_SRV or qtype == T_CNAME:
            return True
    return False


def copiers_of(image, references, names) -> list:
    """The owners (wire format, lower-cased) of the templates in ``image`` that copy the data
    of ``names`` (wire format, any case): what graft_image must write again, each of them a
    change (CHANGE_RETEMPLATED), for a change at one of those names to be grafted; None when
    the image's ``references`` did not keep them."""
    cdef const uint8_t[::1] image_bytes = image
    cdef const uint8_t[::1] table
    cdef const uint8_t[::1] name
    cdef const uint32_t* pairs
    cdef View v
    cdef size_t n, k
    cdef uint32_t node, copier
    cdef bint cut
    node_refs, _absent, copiers = references
    if copiers is None:
        return None
    if image_bytes.shape[0] == 0 or not view_open(&v, &image_bytes[0], image_bytes.shape[0]):
        raise ValueError("copiers_of: not an image")
    table = copiers
    n = <size_t> table.shape[0] // 8
    found = {}
    for owner in names:
        if not isinstance(owner, bytes) or not _well_formed(owner):
            raise ValueError("copiers_of: a name that is not a wire name")
        name = owner
        node = view_node(&v, &name[0], &cut)
        if node == NONE32 or not node_refs[node] & REF_DATA or n == 0:
            continue
        pairs = <const uint32_t*> &table[0]
        k = _first_pair(pairs, n, node)
        while k < n and pairs[2 * k] == node:
            copier = pairs[2 * k + 1]
            k += 1
            if copier < v.h.node_count:
                found[_node_name(&v, copier)] = None
    return list(found)


cdef bytes _node_name(View* v, uint32_t node):
    """The name of ``node`` (wire format, lower-cased as the image keeps labels)."""
    parts = []
    cdef const uint8_t* label
    while node != 0:
        label = v.labels + v.nodes[node].label_off
        parts.append(label[:1 + label[0]])
        node = v.nodes[node].parent
    parts.append(v.base[v.h.apex_off:v.h.apex_off + v.h.apex_len])
    return b"".join(parts)


cdef object _renumbered_copiers(object copiers, const uint32_t* node_map, uint32_t old_nodes,
                                list added):
    """``copiers`` (sorted (node, copier) pairs of the old image) renumbered through
    ``node_map`` (NONE32: removed, and its pairs with it), merged with ``added`` (sorted
    pairs of the new image); None if ``copiers`` is."""
    cdef const uint8_t[::1] table
    cdef const uint32_t* pairs = NULL
    cdef uint32_t* out
    cdef size_t n = 0, k = 0, kept = 0, a = 0
    cdef size_t nadded = len(added)
    cdef uint32_t t = 0, c = 0, at = 0, ac = 0
    if copiers is None:
        return None
    table = copiers
    n = <size_t> table.shape[0] // 8
    if n:
        pairs = <const uint32_t*> &table[0]
    result = PyBytes_FromStringAndSize(NULL, 8 * (n + nadded))
    out = <uint32_t*> PyBytes_AS_STRING(result)
    while k < n or a < nadded:
        if k < n:
            if pairs[2 * k] >= old_nodes or pairs[2 * k + 1] >= old_nodes:
                raise ValueError("graft_image: copiers that do not match the image's nodes")
            t = node_map[pairs[2 * k]]
            c = node_map[pairs[2 * k + 1]]
            if t == NONE32 or c == NONE32:
                k += 1
                continue
        if a < nadded:
            at, ac = added[a]
        if k < n and (a == nadded or t < at or (t == at and c <= ac)):
            k += 1
        else:
            t, c = at, ac
            a += 1
        if kept and out[2 * kept - 2] == t and out[2 * kept - 1] == c:
            continue
        out[2 * kept] = t
        out[2 * kept + 1] = c
        kept += 1
    return result[:8 * kept]


cdef int _relink(ImgNode* nodes, uint32_t count, const uint32_t* node_map,
                 const uint8_t* labels) noexcept nogil:
    """Renumber parents (old numbers to new through ``node_map``), then set every node's
    first child, child count and wildcard child from its children's parent links; 1 if the
    children of a node are not one run after their parent (the insertion went wrong)."""
    cdef uint32_t n, p
    cdef const uint8_t* label
    for n in range(count):
        if n > 0:
            p = nodes[n].parent
            nodes[n].parent = node_map[p]
            if nodes[n].parent == NONE32 or nodes[n].parent >= n:
                return 1
        nodes[n].first_child = NONE32
        nodes[n].child_count = 0
        nodes[n].wildcard = NONE32
    for n in range(1, count):
        p = nodes[n].parent
        if nodes[p].first_child == NONE32:
            nodes[p].first_child = n
        elif nodes[p].first_child + nodes[p].child_count != n:
            return 1
        nodes[p].child_count += 1
        label = labels + nodes[n].label_off
        if label[0] == 1 and label[1] == 42:
            nodes[p].wildcard = n
    return 0


cdef bint _well_formed(bytes name):
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t n = len(name)
    cdef const uint8_t* p = name
    while i < n:
        if p[i] == 0:
            return i == n - 1
        if p[i] > 63:
            return False
        i += 1 + p[i]
    return False
