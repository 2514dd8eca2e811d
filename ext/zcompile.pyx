# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""A zone file's scanned columns compiled straight into a zone image, in C (issue 8).

``compile_columns`` takes what ``fastdns._zscanner.scan_zone_file`` produced (records in
columns, no Python object per record) and returns the image ``fastdns.compile.compile_zone``
would make from the model of the same file, byte for byte, or the reason it cannot: this module
is a port of the unsigned, policy-free part of fastdns/compile.py and fastdns/wire.py, which stay
the reference (tests/test_zcompile.py compares both on every zone file of the test corpus and on
random zones). Everything runs without the GIL.

What it does not do, and says so in the reason, so that the caller falls back to the reference
path (model, fastdns.validate, fastdns.compile) for that zone:

* types outside ``NATIVE_TYPES`` (their wire form or their equality may differ from dnspython's
  model, or the reference compiler treats them specially);
* zones that break a rule of fastdns/validate.py: the checks here decide only *whether* the zone
  is valid; the reference path words the errors, with file and line;
* more than 2**31 records, or a template body offset beyond 32 bits.

Steps (each linear or n log n in the records): owners sorted in canonical order (RFC 4034
§6.1) and turned into a trie with empty non-terminals (RFC 4592 §2.2.2), laid out breadth-first
as fastdns.image.TrieBuilder does; records grouped into RRsets (one TTL, the smallest, RFC 2181
§5.2; duplicates merged, RFC 2181 §5); the validity checks; then every node filled in the
order the reference compiler fills it, so that templates get the same numbers.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

# Every allocation of this module goes through ext/scratch.h, which keeps large freed blocks for
# the next compile (a change to a large zone recompiles it) until release_scratch().
cdef extern from "scratch.h" nogil:
    void* malloc "scratch_malloc" (size_t n)
    void* calloc "scratch_calloc" (size_t count, size_t size)
    void* realloc "scratch_realloc" (void* p, size_t n)
    void free "scratch_free" (void* p)
    size_t scratch_release()
    size_t scratch_kept()
from libc.string cimport memcmp, memcpy, memmove, memset

# The image's records as the hot path reads them (zcompile_patch.pxi reads and writes images).
from core_types cimport TMPL_POLICY, ImageHeader, ImgNode, ImgTemplate, ImgType

__all__ = [
    "NATIVE_TYPES",
    "compile_columns",
    "compile_packed",
    "graft_image",
    "index_packed",
    "key_hash",
    "kept_scratch",
    "pack_scanned",
    "packed_entry",
    "read_transfer_message",
    "release_scratch",
    "same_bytes",
    "TransferFormError",
]


cdef extern from "stdlib.h" nogil:
    void qsort_r(void* base, size_t nmemb, size_t size,
                 int (*compar)(const void*, const void*, void*) noexcept nogil, void* arg)


cdef enum:
    T_A = 1
    T_NS = 2
    T_CNAME = 5
    T_SOA = 6
    T_PTR = 12
    T_HINFO = 13
    T_MX = 15
    T_TXT = 16
    T_AAAA = 28
    T_LOC = 29
    T_SRV = 33
    T_NAPTR = 35
    T_DS = 43
    T_SSHFP = 44
    T_RRSIG = 46
    T_NSEC = 47
    T_DNSKEY = 48
    T_TLSA = 52
    T_SMIMEA = 53
    T_CDS = 59
    T_CDNSKEY = 60
    T_OPENPGPKEY = 61
    T_SVCB = 64
    T_HTTPS = 65
    T_SPF = 99
    T_ANY = 255
    T_URI = 256
    T_CAA = 257

    NONE32 = 0xFFFFFFFF
    MAX_CHAIN = 16                 # fastdns.compile.MAX_CHAIN
    QUESTION_OFFSET = 12
    MAX_NAME_WIRE = 255
    # fastdns.wire.MAX_BODY and _MAX_TARGET.
    MAX_BODY = 0xFFFF - 12 - 255 - 4 - 11
    MAX_TARGET = 0x3FFF - 255
    BUF_CAPACITY = MAX_BODY + 8
    LIST_CAPACITY = 65536          # pointers, marks, targets and seen pairs of one template

    # Template flags (fastdns.image).
    TMPL_AA = 0x10
    TMPL_OWNER_IS_QNAME = 0x20
    TMPL_ALWAYS_TC = 0x40
    NODE_CUT = 0x1
    NOERROR = 0
    NXDOMAIN = 3

    IMAGE_VERSION = 2
    HEADER_SIZE = 88               # fastdns.image.HEADER.size
    NODE_SIZE = 32
    TYPE_SIZE = 8
    TEMPLATE_SIZE = 32

    # Results of the steps: 0 is done.
    R_NOMEM = 1
    R_TYPE = 2
    R_INVALID = 3
    R_TOO_LARGE = 4
    R_EMPTY = 5

# Types compiled here (NATIVE_TYPES): what fastdns.wire writes as literal wire or as compressed
# RFC 1035 names, whose wire form dnspython's model keeps as the scanner wrote it, and whose
# dnspython equality is that of their canonical wire form (RFC 4034 §6.2 lower-cases the names
# in NS, CNAME, SOA, PTR, MX, NAPTR, SRV and RRSIG, not NSEC's, RFC 6840 §5.1: same_rdata).
# RRSIG and NSEC in a zone file are data like any other to the unsigned compiler. Plus every
# type dnspython has no class for (RFC 3597 opaque data), except meta-types, which validation
# rejects.
cdef uint8_t NATIVE[65536]
_KNOWN = (
    T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_HINFO, T_MX, T_TXT, T_AAAA, T_LOC, T_SRV, T_NAPTR,
    T_DS, T_SSHFP, T_RRSIG, T_NSEC, T_DNSKEY, T_TLSA, T_SMIMEA, T_CDS, T_CDNSKEY, T_OPENPGPKEY,
    T_SVCB, T_HTTPS, T_SPF, T_URI, T_CAA,
)


def _load_types() -> frozenset:
    import itertools
    import pkgutil

    import dns.rdatatype
    import dns.rdtypes.ANY
    import dns.rdtypes.IN

    # dnspython has a class for a type when dns.rdata.get_rdata_class finds a module named as
    # its mnemonic ("-" as "_") in the package dns.rdtypes.IN or dns.rdtypes.ANY (their
    # __all__ lists leave some out). Listing the packages instead of asking get_rdata_class,
    # which imports every module, saves some 25 ms of every start (tests/test_zcompile.py
    # checks that both agree).
    classes = {
        module.name
        for package in (dns.rdtypes.ANY, dns.rdtypes.IN)
        for module in pkgutil.iter_modules(package.__path__)
    }
    memset(NATIVE, 1, sizeof(NATIVE))
    NATIVE[0] = 0
    for t in dns.rdatatype.RdataType:
        if dns.rdatatype.is_metatype(t) or dns.rdatatype.to_text(t).replace("-", "_") in classes:
            NATIVE[t] = 0
    # Meta-types without a name: dnspython's are the range RFC 6895 §3.1 reserves for them,
    # 128-255 (the named ones, such as OPT, are members of RdataType, above).
    for t in range(128, 256):
        if dns.rdatatype.is_metatype(t):
            NATIVE[t] = 0
    for t in _KNOWN:
        NATIVE[t] = 1
    return frozenset(itertools.compress(range(65536), (<char*> NATIVE)[:65536]))


NATIVE_TYPES = _load_types()


cdef struct Buf:
    uint8_t* data
    size_t length
    size_t capacity


cdef struct RRset:
    uint32_t node                  # DFS index
    uint16_t rtype
    uint32_t ttl                   # the smallest of its records
    uint32_t first                 # its first record in file order
    uint32_t rd_start              # into Ctx.refs: its distinct records, in file order
    uint32_t rd_count
    uint32_t tmpl                  # its positive template


cdef struct Target:
    const uint8_t* name            # a suffix in wire format (any case)
    uint32_t pos


cdef struct Writer:
    uint8_t* buf
    uint32_t length
    bint overflow
    uint8_t question[256]          # lower-cased
    uint32_t qlen
    bint owner_is_qname
    uint32_t body_start
    uint32_t* pointers
    uint32_t npointers
    uint32_t* marks
    uint32_t nmarks
    Target* targets
    uint32_t ntargets
    bint targets_ready
    uint32_t* seen                 # node << 1 | (type is AAAA)
    uint32_t nseen
    uint32_t an, ns, required
    uint8_t spelled[256]           # a cut spelled as a CNAME target met it
    uint32_t node                  # the node the template is compiled against


cdef struct Hop:
    const uint8_t* owner
    uint32_t rrset
    uint32_t node


cdef struct Ctx:
    # input columns
    size_t count
    const uint64_t* owner_offset
    const uint8_t* owner_data
    const uint16_t* rtype
    const uint32_t* ttl
    const uint64_t* rdata_offset
    const uint8_t* rdata
    const uint8_t* origin          # as given
    uint8_t origin_lower[256]
    uint32_t origin_len
    uint32_t origin_labels
    # owners: entries (runs of one owner offset), their keys (labels below the origin,
    # top-down, lower-cased, each as length octet + label)
    uint32_t nentries
    uint64_t* entry_offset
    uint64_t* key_offset
    uint8_t* keys
    uint32_t* entry_node
    uint32_t* rec_entry
    # nodes, in DFS (canonical) order: 0 is the apex
    uint32_t nnodes
    uint64_t* node_label           # offset in keys of the label's length octet
    uint32_t* parent
    uint8_t* depth
    uint32_t* child_start          # children of n: children[child_start[n]:child_start[n + 1]]
    uint32_t* children
    uint32_t* bfs_index
    uint32_t* bfs_order
    uint32_t* rr_start             # the node's RRsets are rrsets[rr_start[n]:rr_start[n+1]]
    uint8_t* node_flags
    # Per node, what other nodes' templates depend on (zcompile_patch.pxi: a change there is
    # compiled, not grafted): REF_DATA, its data is copied (CNAME chains, additional addresses,
    # glue); REF_ABSENCE, a name below it was looked up and not found (a chain ending in
    # NXDOMAIN or at a wildcard below it, an absent MX target). ``absent``: those names cut
    # to the child of the node that was missing (wire format, lower-cased, one after another):
    # a new name there could answer them.
    uint8_t* referenced
    Buf absent
    # With references: (node, copier) pairs of uint32, one per REF_DATA noted while compiling
    # the copier's templates, so that a change to the node can be grafted by writing its
    # copiers' templates again (zcompile_patch.pxi); ``copiers_lost``: out of memory.
    bint note_copiers
    Buf copiers
    bint copiers_lost
    bint absent_lost               # out of memory while noting them: no list
    # RRsets sorted by (node, type)
    uint32_t nrrsets
    RRset* rrsets
    uint32_t* refs
    # compile state
    uint32_t negative_ttl
    uint32_t soa_rrset
    uint32_t* default_tmpl
    uint32_t* any_tmpl
    uint32_t* extra_start          # into extras: (type, template) pairs of CNAME nodes
    uint16_t* extra_count
    Buf extras
    Buf blob
    Buf tmpls
    uint32_t ntmpls
    Writer w
    uint16_t bad_type              # R_TYPE: the type not handled here
    uint32_t serial


cdef enum:
    REF_DATA = 1
    REF_ABSENCE = 2


# Per-node flags of the compile (not the image's).
cdef enum:
    F_CUT = 1
    F_OCCLUDED = 2
    F_WILD = 4
    F_CNAME = 8


# -- small helpers -----------------------------------------------------------------------------

cdef inline uint8_t lower(uint8_t c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef int buf_put(Buf* b, const void* src, size_t n) noexcept nogil:
    cdef size_t cap
    cdef uint8_t* grown
    if b.length + n > b.capacity:
        cap = b.capacity * 2 if b.capacity else 4096
        while cap < b.length + n:
            cap *= 2
        grown = <uint8_t*> realloc(b.data, cap)
        if grown == NULL:
            return -1
        b.data = grown
        b.capacity = cap
    memcpy(b.data + b.length, src, n)
    b.length += n
    return 0


cdef inline int buf_u16le(Buf* b, uint32_t v) noexcept nogil:
    cdef uint8_t x[2]
    x[0] = v & 0xFF
    x[1] = (v >> 8) & 0xFF
    return buf_put(b, x, 2)


cdef inline int buf_u32(Buf* b, uint32_t v) noexcept nogil:
    # Native byte order, as fastdns.image packs ("=").
    return buf_put(b, &v, 4)


cdef inline int buf_u16(Buf* b, uint16_t v) noexcept nogil:
    return buf_put(b, &v, 2)


cdef int align4(Buf* b) noexcept nogil:
    cdef uint8_t zeros[4]
    memset(zeros, 0, 4)
    return buf_put(b, zeros, (4 - b.length % 4) % 4)


cdef uint32_t name_length(const uint8_t* p) noexcept nogil:
    cdef uint32_t i = 0
    while p[i] != 0:
        i += p[i] + 1
    return i + 1


cdef bint name_equal(const uint8_t* a, const uint8_t* b) noexcept nogil:
    """Two wire names (uncompressed) are equal, ASCII case ignored (RFC 4343)."""
    cdef uint32_t i = 0
    cdef uint32_t n
    while True:
        if a[i] != b[i]:
            return False
        n = a[i]
        if n == 0:
            return True
        for i in range(i + 1, i + 1 + n):
            if lower(a[i]) != lower(b[i]):
                return False
        i += 1


cdef int label_offsets(const uint8_t* name, uint32_t* offsets) noexcept nogil:
    """The offsets of ``name``'s labels (root excluded); their number."""
    cdef int n = 0
    cdef uint32_t i = 0
    while name[i] != 0:
        offsets[n] = i
        n += 1
        i += name[i] + 1
    return n


cdef int below_origin(Ctx* c, const uint8_t* name, uint32_t* offsets) noexcept nogil:
    """How many labels ``name`` has below the origin; -1 if it is not at or below it."""
    cdef int n = label_offsets(name, offsets)
    cdef int k = n - <int> c.origin_labels
    if k < 0:
        return -1
    if c.origin_labels == 0:
        return n  # the root zone: every name is below it
    if not name_equal(name + offsets[k], c.origin_lower):
        return -1
    return k


cdef int label_compare(const uint8_t* a, uint32_t la, const uint8_t* b, uint32_t lb) noexcept nogil:
    """RFC 4034 §6.1 for one label: octets (``a`` lower-cased here, ``b`` already), then
    length."""
    cdef uint32_t i
    cdef uint32_t n = la if la < lb else lb
    cdef int d
    for i in range(n):
        d = <int> lower(a[i]) - <int> b[i]
        if d:
            return d
    return <int> la - <int> lb


# -- owners -> trie ----------------------------------------------------------------------------

cdef int compare_keys(const void* x, const void* y, void* arg) noexcept nogil:
    cdef Ctx* c = <Ctx*> arg
    cdef uint32_t ex = (<const uint32_t*> x)[0]
    cdef uint32_t ey = (<const uint32_t*> y)[0]
    cdef const uint8_t* a = c.keys + c.key_offset[ex]
    cdef const uint8_t* b = c.keys + c.key_offset[ey]
    cdef const uint8_t* a_end = c.keys + c.key_offset[ex + 1]
    cdef const uint8_t* b_end = c.keys + c.key_offset[ey + 1]
    cdef int d
    while a < a_end and b < b_end:
        d = label_compare(a + 1, a[0], b + 1, b[0])
        if d:
            return d
        a += a[0] + 1
        b += b[0] + 1
    if a < a_end:
        return 1
    if b < b_end:
        return -1
    return <int> ex - <int> ey


cdef int build_owners(Ctx* c) noexcept nogil:
    """Entries (runs of records with one owner offset) and their keys; R_INVALID for an owner
    outside the origin (fastdns.validate rule 5)."""
    cdef size_t i
    cdef uint32_t e = 0
    cdef uint64_t last = 0xFFFFFFFFFFFFFFFF
    cdef uint32_t offsets[128]
    cdef int k, j, m
    cdef const uint8_t* name
    cdef uint64_t key_len = 0
    cdef uint64_t total = 0
    c.rec_entry = <uint32_t*> malloc(c.count * 4)
    c.entry_offset = <uint64_t*> malloc(c.count * 8)
    if c.rec_entry == NULL or c.entry_offset == NULL:
        return R_NOMEM
    for i in range(c.count):
        if c.owner_offset[i] != last:
            last = c.owner_offset[i]
            c.entry_offset[e] = last
            e += 1
        c.rec_entry[i] = e - 1
    c.nentries = e
    c.key_offset = <uint64_t*> malloc((e + 1) * 8)
    c.entry_node = <uint32_t*> malloc(e * 4 + 4)
    if c.key_offset == NULL or c.entry_node == NULL:
        return R_NOMEM
    for i in range(e):
        total += name_length(c.owner_data + c.entry_offset[i])
    c.keys = <uint8_t*> malloc(total + 1)
    if c.keys == NULL:
        return R_NOMEM
    for i in range(e):
        name = c.owner_data + c.entry_offset[i]
        k = below_origin(c, name, offsets)
        if k < 0:
            return R_INVALID
        c.key_offset[i] = key_len
        for j in range(k - 1, -1, -1):
            c.keys[key_len] = name[offsets[j]]
            key_len += 1
            for m in range(name[offsets[j]]):
                c.keys[key_len] = lower(name[offsets[j] + 1 + m])
                key_len += 1
    c.key_offset[e] = key_len
    return 0


cdef int build_trie(Ctx* c) noexcept nogil:
    """Nodes in canonical order with empty non-terminals; children in CSR form; the
    breadth-first numbering of fastdns.image.TrieBuilder.layout."""
    cdef uint32_t* order = <uint32_t*> malloc(c.nentries * 4 + 4)
    cdef uint32_t stack[128]
    cdef uint64_t stack_label[128]
    cdef uint32_t top = 0              # labels on the stack below the apex
    cdef uint32_t i, e, j, n, head, tail
    cdef uint64_t p, end, q
    cdef uint32_t cap = c.nentries * 2 + 16
    cdef uint32_t common
    if order == NULL:
        return R_NOMEM
    for i in range(c.nentries):
        order[i] = i
    qsort_r(order, c.nentries, 4, compare_keys, c)
    # Every node is an owner or an ancestor of one: at most labels-of-all-keys + 1 nodes.
    cap = <uint32_t> c.key_offset[c.nentries] + 1
    c.node_label = <uint64_t*> malloc(cap * 8)
    c.parent = <uint32_t*> malloc(cap * 4)
    c.depth = <uint8_t*> malloc(cap)
    if c.node_label == NULL or c.parent == NULL or c.depth == NULL:
        free(order)
        return R_NOMEM
    c.node_label[0] = 0xFFFFFFFFFFFFFFFF
    c.parent[0] = NONE32
    c.depth[0] = 0
    c.nnodes = 1
    stack[0] = 0
    for i in range(c.nentries):
        e = order[i]
        p = c.key_offset[e]
        end = c.key_offset[e + 1]
        # The labels this key shares with the path on the stack.
        common = 0
        while p < end and common < top:
            q = stack_label[common + 1]
            if c.keys[p] != c.keys[q] or memcmp(c.keys + p + 1, c.keys + q + 1, c.keys[p]) != 0:
                break
            common += 1
            p += c.keys[p] + 1
        top = common
        while p < end:
            n = c.nnodes
            c.nnodes += 1
            c.node_label[n] = p
            c.parent[n] = stack[top]
            top += 1
            c.depth[n] = top
            stack[top] = n
            stack_label[top] = p
            p += c.keys[p] + 1
        c.entry_node[e] = stack[top]
    free(order)
    n = c.nnodes
    c.child_start = <uint32_t*> malloc((n + 1) * 4)
    c.children = <uint32_t*> malloc(n * 4)
    c.bfs_index = <uint32_t*> malloc(n * 4)
    c.bfs_order = <uint32_t*> malloc(n * 4)
    if c.child_start == NULL or c.children == NULL or c.bfs_index == NULL \
            or c.bfs_order == NULL:
        return R_NOMEM
    memset(c.child_start, 0, (n + 1) * 4)
    for i in range(1, n):
        c.child_start[c.parent[i] + 1] += 1
    for i in range(n):
        c.child_start[i + 1] += c.child_start[i]
    # Canonical order lists each node's children in order; place them.
    memcpy(c.bfs_index, c.child_start, n * 4)  # as a cursor
    for i in range(1, n):
        j = c.parent[i]
        c.children[c.bfs_index[j]] = i
        c.bfs_index[j] += 1
    c.bfs_order[0] = 0
    tail = 1
    head = 0
    while head < tail:
        j = c.bfs_order[head]
        head += 1
        for i in range(c.child_start[j], c.child_start[j + 1]):
            c.bfs_order[tail] = c.children[i]
            tail += 1
    for i in range(n):
        c.bfs_index[c.bfs_order[i]] = i
    return 0


cdef uint32_t find_child(Ctx* c, uint32_t node, const uint8_t* label) noexcept nogil:
    """The child of ``node`` with ``label`` (length octet first, any case), or NONE32."""
    cdef uint32_t lo = c.child_start[node]
    cdef uint32_t hi = c.child_start[node + 1]
    cdef uint32_t mid, child
    cdef const uint8_t* s
    cdef int d
    while lo < hi:
        mid = (lo + hi) // 2
        child = c.children[mid]
        s = c.keys + c.node_label[child]
        d = label_compare(label + 1, label[0], s + 1, s[0])
        if d == 0:
            return child
        if d < 0:
            hi = mid
        else:
            lo = mid + 1
    return NONE32


cdef uint32_t wildcard_child(Ctx* c, uint32_t node) noexcept nogil:
    cdef uint8_t star[2]
    star[0] = 1
    star[1] = 42
    return find_child(c, node, star)


cdef uint32_t find_name(Ctx* c, const uint8_t* name) noexcept nogil:
    """The node of ``name`` (exact match), or NONE32."""
    cdef uint32_t encloser
    return find_name_below(c, name, &encloser)


cdef uint32_t find_name_below(Ctx* c, const uint8_t* name, uint32_t* encloser) noexcept nogil:
    """The node of ``name`` (exact match), or NONE32 and in ``encloser`` the deepest node on
    the way to it (NONE32 when ``name`` is outside the zone)."""
    cdef uint32_t offsets[128]
    cdef int k = below_origin(c, name, offsets)
    cdef uint32_t node = 0
    cdef uint32_t child
    cdef int j
    encloser[0] = NONE32
    if k < 0:
        return NONE32
    for j in range(k - 1, -1, -1):
        child = find_child(c, node, name + offsets[j])
        if child == NONE32:
            encloser[0] = node
            return NONE32
        node = child
    return node


cdef bint name_below_node(Ctx* c, const uint8_t* name, uint32_t node) noexcept nogil:
    """``name`` is ``node``'s name or a subdomain of it."""
    cdef uint32_t offsets[128]
    cdef int k = below_origin(c, name, offsets)
    cdef uint32_t at = 0
    cdef int j
    cdef int d = c.depth[node]
    if k < d:
        return False
    for j in range(k - 1, k - 1 - d, -1):
        at = find_child(c, at, name + offsets[j])
        if at == NONE32:
            return False
    return at == node


# -- records -> RRsets ---------------------------------------------------------------------------

cdef int compare_records(const void* x, const void* y, void* arg) noexcept nogil:
    cdef Ctx* c = <Ctx*> arg
    cdef uint32_t a = (<const uint32_t*> x)[0]
    cdef uint32_t b = (<const uint32_t*> y)[0]
    if c.rtype[a] != c.rtype[b]:
        return <int> c.rtype[a] - <int> c.rtype[b]
    return (a > b) - (a < b)


cdef bint same_rdata(Ctx* c, uint16_t rtype, uint32_t a, uint32_t b) noexcept nogil:
    """dnspython's rdata equality: canonical wire forms (RFC 4034 §6.2: names in the RDATA of
    the RFC 1035 types and SRV lower-cased) are equal."""
    cdef const uint8_t* x = c.rdata + c.rdata_offset[a]
    cdef const uint8_t* y = c.rdata + c.rdata_offset[b]
    cdef uint64_t n = c.rdata_offset[a + 1] - c.rdata_offset[a]
    cdef uint32_t skip, lx
    if n != c.rdata_offset[b + 1] - c.rdata_offset[b]:
        return False
    if rtype == T_NS or rtype == T_CNAME or rtype == T_PTR:
        return name_equal(x, y)
    if rtype == T_MX or rtype == T_SRV:
        skip = 2 if rtype == T_MX else 6
        return memcmp(x, y, skip) == 0 and name_equal(x + skip, y + skip)
    if rtype == T_RRSIG:
        # TYPE COVERED .. KEY TAG (18 octets), the signer's name, the signature.
        if n < 19 or memcmp(x, y, 18) != 0 or not name_equal(x + 18, y + 18):
            return False
        skip = 18 + name_length(x + 18)
        return memcmp(x + skip, y + skip, n - skip) == 0
    if rtype == T_NAPTR:
        # ORDER, PREFERENCE, FLAGS, SERVICES, REGEXP, then the replacement name.
        skip = 4
        for _ in range(3):
            if skip >= n:
                return memcmp(x, y, n) == 0
            skip += x[skip] + 1
        return memcmp(x, y, skip) == 0 and name_equal(x + skip, y + skip)
    if rtype == T_SOA:
        if not name_equal(x, y):
            return False
        lx = name_length(x)
        if not name_equal(x + lx, y + lx):
            return False
        lx += name_length(x + lx)
        return memcmp(x + lx, y + lx, 20) == 0
    return memcmp(x, y, n) == 0


cdef int build_rrsets(Ctx* c) noexcept nogil:
    cdef uint32_t n = c.nnodes
    cdef uint32_t* cursor = <uint32_t*> malloc((n + 1) * 4)
    cdef uint32_t* order = <uint32_t*> malloc(c.count * 4 + 4)
    cdef uint32_t i, j, k, node, start, end, rec, t
    cdef RRset* s
    cdef bint dup
    c.rr_start = <uint32_t*> malloc((n + 1) * 4)
    c.refs = <uint32_t*> malloc(c.count * 4 + 4)
    c.rrsets = <RRset*> malloc(c.count * sizeof(RRset) + sizeof(RRset))
    if cursor == NULL or order == NULL or c.rr_start == NULL or c.refs == NULL \
            or c.rrsets == NULL:
        free(cursor)
        free(order)
        return R_NOMEM
    # Records by node (a counting sort keeps file order), then by type within a node.
    memset(cursor, 0, (n + 1) * 4)
    for i in range(c.count):
        if not NATIVE[c.rtype[i]]:
            c.bad_type = c.rtype[i]
            free(cursor)
            free(order)
            return R_TYPE
        cursor[c.entry_node[c.rec_entry[i]] + 1] += 1
    for i in range(n):
        cursor[i + 1] += cursor[i]
    memcpy(c.rr_start, cursor, (n + 1) * 4)
    for i in range(c.count):
        node = c.entry_node[c.rec_entry[i]]
        order[cursor[node]] = i
        cursor[node] += 1
    c.nrrsets = 0
    k = 0
    for node in range(n):
        start = c.rr_start[node]
        end = c.rr_start[node + 1]
        c.rr_start[node] = c.nrrsets
        if end - start > 1:
            qsort_r(order + start, end - start, 4, compare_records, c)
        i = start
        while i < end:
            rec = order[i]
            t = c.rtype[rec]
            s = &c.rrsets[c.nrrsets]
            c.nrrsets += 1
            s.node = node
            s.rtype = t
            s.ttl = c.ttl[rec]
            s.first = rec
            s.rd_start = k
            s.rd_count = 0
            s.tmpl = NONE32
            while i < end and c.rtype[order[i]] == t:
                rec = order[i]
                if c.ttl[rec] < s.ttl:
                    s.ttl = c.ttl[rec]
                dup = False
                for j in range(s.rd_start, k):
                    if same_rdata(c, t, c.refs[j], rec):
                        dup = True
                        break
                if not dup:
                    c.refs[k] = rec
                    k += 1
                    s.rd_count += 1
                i += 1
    c.rr_start[n] = c.nrrsets
    free(cursor)
    free(order)
    return 0


cdef uint32_t rrset_of(Ctx* c, uint32_t node, uint16_t rtype) noexcept nogil:
    cdef uint32_t i
    if node == NONE32:
        return NONE32
    for i in range(c.rr_start[node], c.rr_start[node + 1]):
        if c.rrsets[i].rtype == rtype:
            return i
    return NONE32


cdef inline bint is_cut(Ctx* c, uint32_t node) noexcept nogil:
    return c.node_flags[node] & F_CUT


# -- the rules of fastdns/validate.py --------------------------------------------------------

cdef int check_zone(Ctx* c) noexcept nogil:
    """R_INVALID when the zone breaks a rule of fastdns.validate (which then words it)."""
    cdef uint32_t node, i, p
    cdef uint16_t t
    cdef uint8_t flags
    cdef const uint8_t* label
    cdef bint has_ns, has_ds, has_cname, has_other
    c.node_flags = <uint8_t*> malloc(c.nnodes)
    if c.node_flags == NULL:
        return R_NOMEM
    c.soa_rrset = rrset_of(c, 0, T_SOA)
    # Rules 1 and 2: one SOA record and NS at the apex; 6: no CNAME there; DS belongs to the
    # parent.
    if c.soa_rrset == NONE32 or c.rrsets[c.soa_rrset].rd_count != 1:
        return R_INVALID
    if rrset_of(c, 0, T_NS) == NONE32 or rrset_of(c, 0, T_CNAME) != NONE32 \
            or rrset_of(c, 0, T_DS) != NONE32:
        return R_INVALID
    c.node_flags[0] = 0
    # Canonical order puts parents first: occlusion flows down.
    for node in range(1, c.nnodes):
        flags = 0
        p = c.parent[node]
        if c.node_flags[p] & (F_CUT | F_OCCLUDED):
            flags |= F_OCCLUDED
        label = c.keys + c.node_label[node]
        if label[0] == 1 and label[1] == 42:
            flags |= F_WILD
        has_ns = has_ds = has_cname = has_other = False
        for i in range(c.rr_start[node], c.rr_start[node + 1]):
            t = c.rrsets[i].rtype
            if t == T_SOA:
                return R_INVALID
            has_ns |= t == T_NS
            has_ds |= t == T_DS
            has_cname |= t == T_CNAME
            has_other |= t != T_CNAME and t != T_RRSIG and t != T_NSEC
        if has_cname:
            # Rule 3: nothing beside a CNAME but RRSIG and NSEC (RFC 4035 §2.5); one record.
            if has_other or c.rrsets[rrset_of(c, node, T_CNAME)].rd_count != 1:
                return R_INVALID
            flags |= F_CNAME
        if flags & F_WILD and (has_ns or has_ds):
            return R_INVALID  # rule 8
        if flags & F_OCCLUDED:
            # Rule 4: below a cut, only glue.
            for i in range(c.rr_start[node], c.rr_start[node + 1]):
                t = c.rrsets[i].rtype
                if t != T_A and t != T_AAAA:
                    return R_INVALID
        elif has_ns:
            flags |= F_CUT
            for i in range(c.rr_start[node], c.rr_start[node + 1]):
                t = c.rrsets[i].rtype
                if t != T_NS and t != T_DS and t != T_A and t != T_AAAA and t != T_NSEC \
                        and t != T_RRSIG:
                    return R_INVALID
        elif has_ds:
            return R_INVALID  # DS only at a delegation (rule 4)
        c.node_flags[node] = flags
    return 0


# -- the template writer (fastdns.wire.WireWriter) ---------------------------------------------

cdef void w_start(Ctx* c, uint32_t node, bint owner_is_qname) noexcept nogil:
    """A writer for a template compiled against ``node``'s name."""
    cdef Writer* w = &c.w
    cdef uint32_t n = node
    cdef uint32_t q = 0
    cdef const uint8_t* label
    while n != 0:
        label = c.keys + c.node_label[n]
        memcpy(w.question + q, label, label[0] + 1)
        q += label[0] + 1
        n = c.parent[n]
    memcpy(w.question + q, c.origin_lower, c.origin_len)
    w.qlen = q + c.origin_len
    w.node = node
    w.owner_is_qname = owner_is_qname
    w.body_start = QUESTION_OFFSET + w.qlen + 4
    w.length = 0
    w.overflow = False
    w.npointers = w.nmarks = w.ntargets = w.nseen = 0
    w.targets_ready = False
    w.an = w.ns = w.required = 0


cdef inline void w_put(Writer* w, const void* src, uint32_t n) noexcept nogil:
    if w.overflow or w.length + n > MAX_BODY:
        w.overflow = True
        return
    memcpy(w.buf + w.length, src, n)
    w.length += n


cdef inline void w_u16(Writer* w, uint32_t v) noexcept nogil:
    cdef uint8_t x[2]
    x[0] = (v >> 8) & 0xFF
    x[1] = v & 0xFF
    w_put(w, x, 2)


cdef inline void w_pointer(Writer* w, uint32_t target) noexcept nogil:
    if w.overflow:
        return
    w.pointers[w.npointers] = w.length
    w_u16(w, 0xC000 | target)
    if not w.overflow:
        w.npointers += 1


cdef void w_name(Writer* w, const uint8_t* name) noexcept nogil:
    """``name`` compressed against the question and the names written before (RFC 1035
    §4.1.4); targets are suffixes, compared case-insensitively (RFC 4343)."""
    cdef uint32_t i, j, pos
    cdef uint8_t zero = 0
    if not w.targets_ready:
        w.targets_ready = True
        pos = QUESTION_OFFSET
        i = 0
        while w.question[i] != 0:
            if i > 0 or not w.owner_is_qname:
                w.targets[w.ntargets].name = w.question + i
                w.targets[w.ntargets].pos = pos
                w.ntargets += 1
            pos += w.question[i] + 1
            i += w.question[i] + 1
    i = 0
    while name[i] != 0:
        for j in range(w.ntargets):
            if name_equal(name + i, w.targets[j].name):
                w_pointer(w, w.targets[j].pos)
                return
        pos = w.body_start + w.length
        if pos <= MAX_TARGET and w.ntargets < LIST_CAPACITY:
            w.targets[w.ntargets].name = name + i
            w.targets[w.ntargets].pos = pos
            w.ntargets += 1
        w_put(w, name + i, name[i] + 1)
        i += name[i] + 1
    w_put(w, &zero, 1)


cdef void w_rr(Ctx* c, const uint8_t* owner, uint16_t rtype, uint32_t ttl,
               uint32_t rec) noexcept nogil:
    """One RR; ``owner`` NULL is the query name (a pointer to offset 12)."""
    cdef Writer* w = &c.w
    cdef const uint8_t* rd = c.rdata + c.rdata_offset[rec]
    cdef uint32_t n = <uint32_t> (c.rdata_offset[rec + 1] - c.rdata_offset[rec])
    cdef uint32_t at, m, rdlen
    cdef uint8_t fixed[8]
    if owner == NULL:
        w_pointer(w, QUESTION_OFFSET)
    else:
        w_name(w, owner)
    fixed[0] = rtype >> 8
    fixed[1] = rtype & 0xFF
    fixed[2] = 0
    fixed[3] = 1
    fixed[4] = (ttl >> 24) & 0xFF
    fixed[5] = (ttl >> 16) & 0xFF
    fixed[6] = (ttl >> 8) & 0xFF
    fixed[7] = ttl & 0xFF
    w_put(w, fixed, 8)
    if rtype != T_NS and rtype != T_CNAME and rtype != T_PTR and rtype != T_MX \
            and rtype != T_SOA:
        # RFC 3597 §4: names in the RDATA of other types are not compressed.
        w_u16(w, n)
        w_put(w, rd, n)
        return
    at = w.length
    w_u16(w, 0)
    if rtype == T_MX:
        w_put(w, rd, 2)
        w_name(w, rd + 2)
    elif rtype == T_SOA:
        w_name(w, rd)
        m = name_length(rd)
        w_name(w, rd + m)
        m += name_length(rd + m)
        w_put(w, rd + m, 20)
    else:
        w_name(w, rd)
    if not w.overflow:
        rdlen = w.length - at - 2
        w.buf[at] = rdlen >> 8
        w.buf[at + 1] = rdlen & 0xFF


cdef uint32_t w_rrset(Ctx* c, const uint8_t* owner, uint32_t r) noexcept nogil:
    cdef RRset* s = &c.rrsets[r]
    cdef uint32_t i
    for i in range(s.rd_start, s.rd_start + s.rd_count):
        w_rr(c, owner, s.rtype, s.ttl, c.refs[i])
    return s.rd_count


cdef void w_additional_rr(Ctx* c, const uint8_t* owner, uint16_t rtype, uint32_t ttl,
                          uint32_t rec) noexcept nogil:
    cdef Writer* w = &c.w
    if w.overflow:
        return
    w.marks[w.nmarks] = w.length
    w.nmarks += 1
    w_rr(c, owner, rtype, ttl, rec)


cdef int w_finish(Ctx* c, uint32_t flags, uint32_t* index) noexcept nogil:
    """Append the template (fastdns.compile._ZoneCompiler._finish, fastdns.image.pack_image);
    its number in ``index``."""
    cdef Writer* w = &c.w
    cdef uint32_t i, body_off, ptr_off, mark_off
    cdef uint16_t h[8]
    cdef uint32_t zero = 0
    if w.owner_is_qname:
        flags |= TMPL_OWNER_IS_QNAME
    if w.overflow:
        w.length = w.npointers = w.nmarks = w.an = w.ns = w.required = 0
        flags |= TMPL_ALWAYS_TC
    body_off = <uint32_t> c.blob.length
    if c.blob.length > <size_t> 0xFFFF0000:
        return R_TOO_LARGE
    if buf_put(&c.blob, w.buf, w.length) < 0:
        return R_NOMEM
    ptr_off = <uint32_t> c.blob.length
    for i in range(w.npointers):
        if buf_u16le(&c.blob, w.pointers[i]) < 0:
            return R_NOMEM
    mark_off = <uint32_t> c.blob.length
    for i in range(w.nmarks):
        if buf_u16le(&c.blob, w.marks[i]) < 0:
            return R_NOMEM
    h[0] = w.length
    h[1] = w.npointers
    h[2] = w.an
    h[3] = w.ns
    h[4] = w.nmarks
    h[5] = w.required
    h[6] = flags
    h[7] = w.qlen
    if buf_u32(&c.tmpls, body_off) < 0 or buf_u32(&c.tmpls, ptr_off) < 0 \
            or buf_u32(&c.tmpls, mark_off) < 0 or buf_put(&c.tmpls, h, 16) < 0 \
            or buf_u32(&c.tmpls, zero) < 0:
        return R_NOMEM
    index[0] = c.ntmpls
    c.ntmpls += 1
    return 0


# -- answers (fastdns.compile._ZoneCompiler) ---------------------------------------------------

cdef inline const uint8_t* rdata_of(Ctx* c, uint32_t r) noexcept nogil:
    """The first record's RDATA of RRset ``r``."""
    return c.rdata + c.rdata_offset[c.refs[c.rrsets[r].rd_start]]


cdef const uint8_t* target_of(Ctx* c, uint16_t rtype, uint32_t rec) noexcept nogil:
    """The name whose addresses go in the additional section with this record, or NULL."""
    cdef const uint8_t* rd = c.rdata + c.rdata_offset[rec]
    if rtype == T_NS:
        return rd
    if rtype == T_MX:
        return rd + 2
    if rtype == T_SRV:
        return rd + 6
    return NULL


cdef void write_soa(Ctx* c) noexcept nogil:
    """The SOA in authority, TTL min(SOA TTL, MINIMUM) (RFC 2308 §3)."""
    cdef RRset* s = &c.rrsets[c.soa_rrset]
    w_rr(c, c.origin, T_SOA, c.negative_ttl, c.refs[s.rd_start])
    c.w.ns += 1


cdef void write_addresses(Ctx* c, const uint8_t* target) noexcept nogil:
    """The A and AAAA RRsets of ``target`` not written yet, in the additional section."""
    cdef Writer* w = &c.w
    cdef uint32_t encloser
    cdef uint32_t node = find_name_below(c, target, &encloser)
    cdef uint32_t r, i, key
    cdef uint16_t t
    cdef int k
    cdef bint seen
    if node == NONE32:
        if encloser != NONE32:
            note_absent(c, target, encloser)
        return
    note_data(c, node)
    for k in range(2):
        t = T_A if k == 0 else T_AAAA
        r = rrset_of(c, node, t)
        if r == NONE32:
            continue
        key = node << 1 | (t == T_AAAA)
        seen = False
        for i in range(w.nseen):
            if w.seen[i] == key:
                seen = True
                break
        if seen or w.nseen >= LIST_CAPACITY:
            continue
        w.seen[w.nseen] = key
        w.nseen += 1
        for i in range(c.rrsets[r].rd_start, c.rrsets[r].rd_start + c.rrsets[r].rd_count):
            w_additional_rr(c, target, t, c.rrsets[r].ttl, c.refs[i])


cdef void note_data(Ctx* c, uint32_t node) noexcept nogil:
    """The template being written copies ``node``'s data (see Ctx.referenced, Ctx.copiers)."""
    cdef uint32_t pair[2]
    cdef const uint32_t* last
    c.referenced[node] |= REF_DATA
    if not c.note_copiers:
        return
    pair[0] = node
    pair[1] = c.w.node
    if c.copiers.length >= 8:
        last = <const uint32_t*> (c.copiers.data + c.copiers.length - 8)
        if last[0] == node and last[1] == c.w.node:
            return  # the same again (a node's templates copy one target each in turn)
    if buf_put(&c.copiers, pair, 8) < 0:
        c.copiers_lost = True


cdef void note_absent(Ctx* c, const uint8_t* name, uint32_t encloser) noexcept nogil:
    """``name`` was looked up and not found below ``encloser`` (see Ctx.referenced)."""
    cdef uint32_t offsets[128]
    cdef int k = below_origin(c, name, offsets)
    cdef int child = k - <int> c.depth[encloser] - 1
    cdef uint32_t i, n
    cdef uint8_t lowered[256]
    c.referenced[encloser] |= REF_ABSENCE
    if child < 0:
        return
    n = name_length(name + offsets[child])
    for i in range(n):
        lowered[i] = lower(name[offsets[child] + i])
    if buf_put(&c.absent, lowered, n) < 0:
        c.absent_lost = True


cdef void write_additional(Ctx* c, uint32_t r) noexcept nogil:
    """Addresses of in-zone NS, MX and SRV targets (RFC 1034 §4.3.2 step 6, RFC 2782)."""
    cdef RRset* s = &c.rrsets[r]
    cdef uint32_t i
    cdef uint32_t offsets[128]
    cdef const uint8_t* target
    if s.rtype != T_NS and s.rtype != T_MX and s.rtype != T_SRV:
        return
    for i in range(s.rd_start, s.rd_start + s.rd_count):
        target = target_of(c, s.rtype, c.refs[i])
        if below_origin(c, target, offsets) >= 0:
            write_addresses(c, target)


cdef void write_delegation(Ctx* c, uint32_t cut, const uint8_t* cut_name) noexcept nogil:
    """The cut's NS RRset, then glue: in-domain glue required, sibling glue optional
    (RFC 9471 §2.1, §2.2)."""
    cdef uint32_t r = rrset_of(c, cut, T_NS)
    cdef RRset* s = &c.rrsets[r]
    cdef uint32_t i
    cdef uint32_t offsets[128]
    cdef const uint8_t* target
    c.w.ns += w_rrset(c, cut_name, r)
    for i in range(s.rd_start, s.rd_start + s.rd_count):
        target = target_of(c, T_NS, c.refs[i])
        if name_below_node(c, target, cut):
            write_addresses(c, target)
    c.w.required = c.w.nmarks
    for i in range(s.rd_start, s.rd_start + s.rd_count):
        target = target_of(c, T_NS, c.refs[i])
        if below_origin(c, target, offsets) >= 0 and not name_below_node(c, target, cut):
            write_addresses(c, target)


cdef int positive(Ctx* c, uint32_t node, uint32_t r, uint32_t* index) noexcept nogil:
    """RRset ``r`` as the answer for a query name at ``node``, with additional data."""
    w_start(c, node, c.node_flags[node] & F_WILD)
    c.w.an += w_rrset(c, NULL, r)
    write_additional(c, r)
    return w_finish(c, TMPL_AA, index)


cdef int negative(Ctx* c, uint32_t rcode) noexcept nogil:
    cdef uint32_t index
    w_start(c, 0, False)
    write_soa(c)
    return w_finish(c, TMPL_AA | rcode, &index)


cdef int referral(Ctx* c, uint32_t cut, uint32_t* index) noexcept nogil:
    """RFC 1034 §4.3.2 step 3b: NS in authority, glue in additional, AA clear."""
    w_start(c, cut, False)
    # The cut is the question: its NS owner is a pointer to it.
    write_delegation(c, cut, c.w.question)
    return w_finish(c, 0, index)


cdef enum:
    END_OUT = 0
    END_LOOP = 1
    END_NXDOMAIN = 2
    END_CUT = 3
    END_NODE = 4


cdef struct Chase:
    Hop hops[MAX_CHAIN]
    uint32_t nhops
    int end
    const uint8_t* owner           # END_NODE: the final owner; END_CUT: the target
    uint32_t node                  # END_NODE: the node whose data answers; END_CUT: the cut


cdef int resolve(Ctx* c, const uint8_t* name, uint32_t* node) noexcept nogil:
    """Where the hot path's walk ends for ``name`` (in the zone): END_CUT, END_NXDOMAIN or
    END_NODE (exact or wildcard), and the node."""
    cdef uint32_t offsets[128]
    cdef int k = below_origin(c, name, offsets)
    cdef uint32_t at = 0
    cdef uint32_t child
    cdef int j
    for j in range(k - 1, -1, -1):
        if is_cut(c, at):
            node[0] = at
            return END_CUT
        child = find_child(c, at, name + offsets[j])
        if child == NONE32:
            child = wildcard_child(c, at)
            node[0] = child if child != NONE32 else at
            return END_NODE if child != NONE32 else END_NXDOMAIN
        at = child
    node[0] = at
    return END_CUT if is_cut(c, at) else END_NODE


cdef void chase(Ctx* c, uint32_t node, Chase* ch) noexcept nogil:
    """The CNAME hops after ``node`` and how the chain ends (fastdns.compile._chase)."""
    cdef const uint8_t* visited[MAX_CHAIN + 1]
    cdef uint32_t nvisited = 0
    cdef uint32_t offsets[128]
    cdef const uint8_t* target = rdata_of(c, rrset_of(c, node, T_CNAME))
    cdef uint32_t found, r, i
    cdef int kind
    cdef bint seen
    ch.nhops = 0
    visited[0] = c.w.question  # the node's own name (the writer is set up for it)
    nvisited = 1
    for _ in range(MAX_CHAIN):
        if below_origin(c, target, offsets) < 0:
            ch.end = END_OUT
            return
        seen = False
        for i in range(nvisited):
            if name_equal(target, visited[i]):
                seen = True
                break
        if seen:
            ch.end = END_LOOP
            return
        kind = resolve(c, target, &found)
        if kind == END_NXDOMAIN:
            note_absent(c, target, found)
        else:
            note_data(c, found)
            if c.node_flags[found] & F_WILD and not name_below_node(c, target, found):
                # Synthesised from *.<parent>: a new child of the parent could be the name.
                note_absent(c, target, c.parent[found])
        if kind != END_NODE:
            ch.end = kind
            ch.owner = target
            ch.node = found
            return
        r = rrset_of(c, found, T_CNAME)
        if r == NONE32:
            ch.end = END_NODE
            ch.owner = target
            ch.node = found
            return
        ch.hops[ch.nhops].owner = target
        ch.hops[ch.nhops].rrset = r
        ch.hops[ch.nhops].node = found
        ch.nhops += 1
        visited[nvisited] = target
        nvisited += 1
        target = rdata_of(c, r)
    ch.end = END_LOOP


cdef void spell_cut(Ctx* c, const uint8_t* target, uint32_t cut, uint8_t* out) noexcept nogil:
    """The cut met on the way to ``target``, spelled as the walk saw it: the target's labels
    below the apex, the origin's above (fastdns.compile._spelled_cut)."""
    cdef uint32_t offsets[128]
    cdef int k = below_origin(c, target, offsets)
    cdef uint32_t start = offsets[k - c.depth[cut]]
    cdef uint32_t end = offsets[k - 1] + target[offsets[k - 1]] + 1
    memcpy(out, target + start, end - start)
    memcpy(out + end - start, c.origin, c.origin_len)


cdef int chain(Ctx* c, uint32_t node, Chase* ch, int qtype, uint32_t* index) noexcept nogil:
    """A CNAME node's answer for ``qtype`` (-1: any type the end has no data for)."""
    cdef Writer* w
    cdef uint32_t i, r
    cdef uint32_t rcode = NOERROR
    w_start(c, node, c.node_flags[node] & F_WILD)
    w = &c.w
    w.an += w_rrset(c, NULL, rrset_of(c, node, T_CNAME))
    for i in range(ch.nhops):
        w.an += w_rrset(c, ch.hops[i].owner, ch.hops[i].rrset)
    if ch.end == END_CUT:
        # The restarted lookup meets a zone cut: a referral after the CNAMEs (RFC 1034
        # §4.3.2 steps 3a then 3b).
        spell_cut(c, ch.owner, ch.node, w.spelled)
        write_delegation(c, ch.node, w.spelled)
    elif ch.end == END_NXDOMAIN:
        # RFC 6604 §3: the RCODE describes the last name in the chain.
        rcode = NXDOMAIN
        write_soa(c)
    elif ch.end == END_NODE:
        r = rrset_of(c, ch.node, <uint16_t> qtype) if qtype >= 0 else NONE32
        if r != NONE32:
            w.an += w_rrset(c, ch.owner, r)
            write_additional(c, r)
        else:
            write_soa(c)
    return w_finish(c, TMPL_AA | rcode, index)


cdef int fill_cname(Ctx* c, uint32_t node) noexcept nogil:
    """RFC 1034 §4.3.2 step 3a: restart the lookup at the canonical name, within the zone."""
    cdef Chase ch
    cdef uint32_t cname, tmpl, i, r
    cdef uint32_t firsts[64]
    cdef uint32_t n = 0
    cdef uint32_t j, x
    cdef int err
    r = rrset_of(c, node, T_CNAME)
    err = positive(c, node, r, &cname)
    if err:
        return err
    c.any_tmpl[node] = cname
    c.rrsets[r].tmpl = cname
    w_start(c, node, c.node_flags[node] & F_WILD)  # the question, for chase's visited set
    chase(c, node, &ch)
    c.extra_start[node] = <uint32_t> (c.extras.length // 8)
    c.extra_count[node] = 0
    if ch.end == END_NODE:
        # The end's types in the order they first appear in the file (the model's order).
        for i in range(c.rr_start[ch.node], c.rr_start[ch.node + 1]):
            if n == 64:
                return R_TYPE  # more types at one name than worth a native path
            j = n
            while j > 0 and c.rrsets[firsts[j - 1]].first > c.rrsets[i].first:
                firsts[j] = firsts[j - 1]
                j -= 1
            firsts[j] = i
            n += 1
        for x in range(n):
            r = firsts[x]
            err = chain(c, node, &ch, c.rrsets[r].rtype, &tmpl)
            if err:
                return err
            if buf_u32(&c.extras, c.rrsets[r].rtype) < 0 or buf_u32(&c.extras, tmpl) < 0:
                return R_NOMEM
            c.extra_count[node] += 1
    return chain(c, node, &ch, -1, &c.default_tmpl[node])


cdef int fill(Ctx* c, uint32_t node) noexcept nogil:
    """One node's templates (fastdns.compile._ZoneCompiler._fill), in the reference's order."""
    cdef uint32_t firsts[64]
    cdef uint32_t n = 0
    cdef uint32_t i, j, r
    cdef uint32_t ds
    cdef int err
    c.default_tmpl[node] = 0
    c.any_tmpl[node] = NONE32
    c.extra_count[node] = 0
    if is_cut(c, node):
        err = referral(c, node, &c.default_tmpl[node])
        if err:
            return err
        ds = rrset_of(c, node, T_DS)
        c.any_tmpl[node] = 0  # DS -> NODATA unless it has DS
        if ds != NONE32:
            err = positive(c, node, ds, &c.any_tmpl[node])
        return err
    if c.rr_start[node] == c.rr_start[node + 1] or c.node_flags[node] & F_OCCLUDED:
        return 0
    if c.node_flags[node] & F_CNAME:
        return fill_cname(c, node)
    for i in range(c.rr_start[node], c.rr_start[node + 1]):
        if n == 64:
            return R_TYPE
        j = n
        while j > 0 and c.rrsets[firsts[j - 1]].first > c.rrsets[i].first:
            firsts[j] = firsts[j - 1]
            j -= 1
        firsts[j] = i
        n += 1
    for j in range(n):
        r = firsts[j]
        err = positive(c, node, r, &c.rrsets[r].tmpl)
        if err:
            return err
    # RFC 8482 §4.1: ANY gets the RRset of the lowest type (RRsets are sorted by type).
    c.any_tmpl[node] = c.rrsets[c.rr_start[node]].tmpl
    return 0


cdef int compare_fill(const void* x, const void* y, void* arg) noexcept nogil:
    cdef const uint64_t* a = <const uint64_t*> x
    cdef const uint64_t* b = <const uint64_t*> y
    return (a[0] > b[0]) - (a[0] < b[0])


cdef int fill_all(Ctx* c) noexcept nogil:
    """Every node, in the order the reference compiler fills them: the order its trie
    created them (each owner as its first record set appears in the file, ancestors first)."""
    cdef uint32_t n = c.nnodes
    cdef uint64_t* birth = <uint64_t*> malloc(n * 16)
    cdef uint32_t i, p
    cdef uint64_t b
    cdef int err = 0
    if birth == NULL:
        return R_NOMEM
    # birth[2i] = (first record of the subtree + 1) << 8 | depth; birth[2i + 1] = i.
    for i in range(n):
        b = 0xFFFFFFFF
        if c.rr_start[i] < c.rr_start[i + 1]:
            for p in range(c.rr_start[i], c.rr_start[i + 1]):
                if c.rrsets[p].first < b:
                    b = c.rrsets[p].first
        birth[2 * i] = b
        birth[2 * i + 1] = i
    for i in range(n - 1, 0, -1):  # children after parents in canonical order
        p = c.parent[i]
        if birth[2 * i] < birth[2 * p]:
            birth[2 * p] = birth[2 * i]
    for i in range(n):
        b = 0 if i == 0 else birth[2 * i] + 1
        birth[2 * i] = b << 8 | c.depth[i]
    qsort_r(birth, n, 16, compare_fill, NULL)
    for i in range(n):
        err = fill(c, <uint32_t> birth[2 * i + 1])
        if err:
            break
    free(birth)
    return err


# -- the image (fastdns.image.pack_image) ------------------------------------------------------

cdef int compare_pairs(const void* x, const void* y, void* arg) noexcept nogil:
    cdef const uint32_t* a = <const uint32_t*> x
    cdef const uint32_t* b = <const uint32_t*> y
    if a[0] != b[0]:
        return (a[0] > b[0]) - (a[0] < b[0])
    return (a[1] > b[1]) - (a[1] < b[1])


cdef uint32_t drop_implied_any(uint32_t* pairs, uint32_t n) noexcept nogil:
    """A node's sorted (type, template) pairs without the ANY entry when it names the first
    entry's template (fastdns.image.implied_any: the hot path answers ANY with the lowest
    type's RRset then, RFC 8482 §4.1); the new count. Not for a cut's table."""
    cdef uint32_t i
    for i in range(1, n):
        if pairs[2 * i] == T_ANY:
            if pairs[2 * i + 1] != pairs[1]:
                return n
            memmove(pairs + 2 * i, pairs + 2 * i + 2, 8 * (n - i - 1))
            return n - 1
    return n


cdef int pack_sections(Ctx* c, Buf* nodes, Buf* types, Buf* labels) noexcept nogil:
    cdef uint32_t j, node, k, first_child, wild, n
    cdef uint32_t type_count = 0
    cdef uint32_t pairs[2 * 80]
    cdef uint16_t h[2]
    cdef uint32_t label_off
    cdef const uint8_t* label
    cdef const uint32_t* extras
    cdef uint8_t empty = 0
    for k in range(c.nnodes):
        node = c.bfs_order[k]
        label_off = <uint32_t> labels.length
        if node == 0:
            if buf_put(labels, &empty, 1) < 0:
                return R_NOMEM
        else:
            label = c.keys + c.node_label[node]
            if buf_put(labels, label, label[0] + 1) < 0:
                return R_NOMEM
        # The (type, template) table, sorted by type.
        n = 0
        if is_cut(c, node):
            pairs[0] = T_DS
            pairs[1] = c.any_tmpl[node]
            n = 1
        elif c.any_tmpl[node] != NONE32:
            if c.node_flags[node] & F_CNAME:
                pairs[0] = T_CNAME
                pairs[1] = c.any_tmpl[node]
                n = 1
                extras = <const uint32_t*> (c.extras.data) + 2 * c.extra_start[node]
                for j in range(c.extra_count[node]):
                    if n == 79:
                        return R_TYPE
                    pairs[2 * n] = extras[2 * j]
                    pairs[2 * n + 1] = extras[2 * j + 1]
                    n += 1
            else:
                for j in range(c.rr_start[node], c.rr_start[node + 1]):
                    if n == 79:
                        return R_TYPE
                    pairs[2 * n] = c.rrsets[j].rtype
                    pairs[2 * n + 1] = c.rrsets[j].tmpl
                    n += 1
            pairs[2 * n] = T_ANY
            pairs[2 * n + 1] = c.any_tmpl[node]
            n += 1
            qsort_r(pairs, n, 8, compare_pairs, NULL)
            n = drop_implied_any(pairs, n)
        for j in range(n):
            h[0] = pairs[2 * j]
            h[1] = 0
            if buf_put(types, h, 4) < 0 or buf_u32(types, pairs[2 * j + 1]) < 0:
                return R_NOMEM
        first_child = NONE32
        if c.child_start[node + 1] > c.child_start[node]:
            first_child = c.bfs_index[c.children[c.child_start[node]]]
        wild = wildcard_child(c, node)
        h[0] = n
        h[1] = NODE_CUT if is_cut(c, node) else 0
        if buf_u32(nodes, label_off) < 0 or buf_u32(nodes, first_child) < 0 \
                or buf_u32(nodes, c.child_start[node + 1] - c.child_start[node]) < 0 \
                or buf_u32(nodes, c.bfs_index[c.parent[node]] if node else NONE32) < 0 \
                or buf_u32(nodes, c.bfs_index[wild] if wild != NONE32 else NONE32) < 0 \
                or buf_u32(nodes, type_count) < 0 or buf_put(nodes, h, 4) < 0 \
                or buf_u32(nodes, c.default_tmpl[node]) < 0:
            return R_NOMEM
        type_count += n
    return 0


cdef int compile_ctx(Ctx* c) noexcept nogil:
    cdef int err
    cdef const uint8_t* soa
    cdef uint32_t m, minimum
    err = build_owners(c)
    if err:
        return err
    err = build_trie(c)
    if err:
        return err
    err = build_rrsets(c)
    if err:
        return err
    err = check_zone(c)
    if err:
        return err
    soa = rdata_of(c, c.soa_rrset)
    m = name_length(soa)
    m += name_length(soa + m)
    c.serial = (<uint32_t> soa[m] << 24 | <uint32_t> soa[m + 1] << 16
                | <uint32_t> soa[m + 2] << 8 | soa[m + 3])
    minimum = (<uint32_t> soa[m + 16] << 24 | <uint32_t> soa[m + 17] << 16
               | <uint32_t> soa[m + 18] << 8 | soa[m + 19])
    c.negative_ttl = c.rrsets[c.soa_rrset].ttl
    if minimum < c.negative_ttl:
        c.negative_ttl = minimum
    c.referenced = <uint8_t*> calloc(c.nnodes, 1)
    c.default_tmpl = <uint32_t*> malloc(c.nnodes * 4)
    c.any_tmpl = <uint32_t*> malloc(c.nnodes * 4)
    c.extra_start = <uint32_t*> malloc(c.nnodes * 4)
    c.extra_count = <uint16_t*> malloc(c.nnodes * 2)
    c.w.buf = <uint8_t*> malloc(BUF_CAPACITY)
    c.w.pointers = <uint32_t*> malloc(LIST_CAPACITY * 4)
    c.w.marks = <uint32_t*> malloc(LIST_CAPACITY * 4)
    c.w.targets = <Target*> malloc(LIST_CAPACITY * sizeof(Target))
    c.w.seen = <uint32_t*> malloc(LIST_CAPACITY * 4)
    if c.referenced == NULL or c.default_tmpl == NULL or c.any_tmpl == NULL \
            or c.extra_start == NULL or c.extra_count == NULL or c.w.buf == NULL \
            or c.w.pointers == NULL or c.w.marks == NULL or c.w.targets == NULL \
            or c.w.seen == NULL:
        return R_NOMEM
    # Templates 0 and 1: NODATA and NXDOMAIN (the hot path's TEMPLATE_NODATA, _NXDOMAIN).
    err = negative(c, NOERROR)
    if not err:
        err = negative(c, NXDOMAIN)
    if not err:
        err = fill_all(c)
    return err


cdef void free_ctx(Ctx* c) noexcept nogil:
    free(c.rec_entry)
    free(c.entry_offset)
    free(c.key_offset)
    free(c.entry_node)
    free(c.keys)
    free(c.node_label)
    free(c.parent)
    free(c.depth)
    free(c.child_start)
    free(c.children)
    free(c.bfs_index)
    free(c.bfs_order)
    free(c.rr_start)
    free(c.node_flags)
    free(c.referenced)
    free(c.absent.data)
    free(c.copiers.data)
    free(c.rrsets)
    free(c.refs)
    free(c.default_tmpl)
    free(c.any_tmpl)
    free(c.extra_start)
    free(c.extra_count)
    free(c.extras.data)
    free(c.blob.data)
    free(c.tmpls.data)
    free(c.w.buf)
    free(c.w.pointers)
    free(c.w.marks)
    free(c.w.targets)
    free(c.w.seen)


cdef inline size_t aligned(size_t n) noexcept nogil:
    return (n + 3) & ~(<size_t> 3)


_REASONS = {
    R_NOMEM: "out of memory",
    R_TYPE: "a record type or a node shape the native compiler does not handle",
    R_INVALID: "the zone breaks a validation rule",
    R_TOO_LARGE: "the image would exceed 4 GiB",
    R_EMPTY: "no records",
}


def release_scratch() -> int:
    """Give back the memory kept from earlier compiles (see ext/scratch.h); the bytes given
    back."""
    return scratch_release()


def kept_scratch() -> int:
    """The bytes of memory kept from earlier compiles for the next one."""
    return scratch_kept()


def compile_columns(scanned, origin: bytes, image_buffer=None) -> tuple:
    """``(image, None, record_sets, soa_record, soa_ttl, serial)``: the image of the zone file
    scanned into ``scanned`` (a ``fastdns._zscanner.ScannedZone``) with origin ``origin`` (wire
    format, spelled as the zone is named), the image ``fastdns.compile.compile_zone`` makes of
    the file's validated model; its number of RRsets; the index of its SOA record in
    ``scanned``, the SOA RRset's TTL and its serial. Or ``(None, reason, 0, -1, 0, 0)`` when
    this compiler does not handle the zone (see the module's doc) or the zone breaks a
    validation rule.

    The image is ``bytes``, unless ``image_buffer`` is given and, called with the image's size,
    returns a writable buffer of that size rather than None: then the image is written there and
    that buffer is returned in its place (``fastdns.snapshot.image_buffer``: a large image goes
    straight into the memfd it will be served from, not through a copy)."""
    cdef Ctx c
    memset(&c, 0, sizeof(Ctx))
    point_at_columns(&c, scanned)
    if c.count == 0:
        return None, _REASONS[R_EMPTY], 0, -1, 0, 0
    if c.count >= 0x7FFFFFFF:
        return None, _REASONS[R_TOO_LARGE], 0, -1, 0, 0
    return compile_ctx_image(&c, bytes(origin), image_buffer, False)


cdef int point_at_columns(Ctx* c, scanned) except -1:
    """Point ``c``'s input columns at those of ``scanned`` (a ``ScannedZone``, which owns
    them: it must outlive their use)."""
    cdef const uint64_t[::1] owner_offsets = scanned.owner_offsets
    cdef const uint8_t[::1] owner_data = scanned.owner_data
    cdef const uint16_t[::1] types = scanned.types
    cdef const uint32_t[::1] ttls = scanned.ttls
    cdef const uint64_t[::1] rdata_offsets = scanned.rdata_offsets  # count + 1 entries
    cdef const uint8_t[::1] rdata = scanned.rdata
    cdef const uint8_t* nothing = b""
    c.count = types.shape[0]
    if c.count == 0:
        return 0
    c.owner_offset = &owner_offsets[0]
    c.owner_data = &owner_data[0]
    c.rtype = &types[0]
    c.ttl = &ttls[0]
    c.rdata_offset = &rdata_offsets[0]
    c.rdata = &rdata[0] if rdata.shape[0] else nothing
    return 0


def compile_packed(packed, origin: bytes, image_buffer=None, bint with_references=False) -> tuple:
    """As :func:`compile_columns`, for record sets packed by ``fastdns.hostedcolumns``:
    ``packed`` is a list (or tuple) of ``bytes``, each holding one or more record sets one
    after another, each as: owner length (u8), owner (wire format, uncompressed), type (u16),
    TTL (u32), record count (u16), then per record its RDATA length (u16) and RDATA
    (uncompressed wire format, well formed for its type, as the scanner or dnspython writes
    it); integers in native byte order. Taking the parts as they are kept saves joining them
    (a zone of a million record sets is about 50 MB). ``soa_record`` counts records in the
    parts' order. Framing that does not parse (lengths beyond the end of a part, an owner
    whose labels do not fill its length) is refused with a reason.

    ``with_references``: the tuple has a seventh item, what :func:`graft_image` needs to know
    of the image, or None when there is no image: ``(references, absent, copiers)``, a byte
    per node in image order (REF_DATA where other nodes' templates copy the node's data,
    REF_ABSENCE where they depend on a name below it not existing); those names, each cut to
    the missing child of its node (wire format, lower-cased, one after another); and for the
    REF_DATA nodes which nodes' templates copy them, as (node, copier) pairs of native
    uint32 in image order, sorted (the last two None if they could not be kept)."""
    cdef Ctx c
    cdef Py_ssize_t parts, i
    cdef object part
    cdef const uint8_t** starts = NULL
    cdef size_t* sizes = NULL
    cdef size_t count = 0, rdata_total = 0, owner_total = 0
    cdef Packed* out = NULL
    cdef bint ok = True
    if not isinstance(packed, (list, tuple)):
        raise TypeError("compile_packed: a list or tuple of bytes")
    parts = len(packed)
    if parts == 0:
        return _failed(_REASONS[R_EMPTY], with_references)
    starts = <const uint8_t**> malloc(parts * sizeof(uint8_t*))
    sizes = <size_t*> malloc(parts * sizeof(size_t))
    out = <Packed*> calloc(1, sizeof(Packed))
    try:
        if starts == NULL or sizes == NULL or out == NULL:
            return _failed(_REASONS[R_NOMEM], with_references)
        # The list holds the parts (and so their buffers) until this returns.
        for i in range(parts):
            part = packed[i]
            if type(part) is not bytes:
                raise TypeError(f"compile_packed: part {i} is {type(part).__name__}, not bytes")
            starts[i] = <const uint8_t*> PyBytes_AS_STRING(part)
            sizes[i] = PyBytes_GET_SIZE(part)
        with nogil:
            for i in range(parts):
                if not packed_count(starts[i], sizes[i], &count, &rdata_total, &owner_total):
                    ok = False
                    break
        if not ok:
            return _failed("packed record sets do not parse", with_references)
        if count == 0:
            return _failed(_REASONS[R_EMPTY], with_references)
        if count >= 0x7FFFFFFF:
            return _failed(_REASONS[R_TOO_LARGE], with_references)
        out.owner_offsets = <uint64_t*> malloc(count * 8)
        out.types = <uint16_t*> malloc(count * 2)
        out.ttls = <uint32_t*> malloc(count * 4)
        out.rdata_offsets = <uint64_t*> malloc((count + 1) * 8)
        out.rdata = <uint8_t*> malloc(rdata_total + 1)
        out.owners = <uint8_t*> malloc(owner_total + 1)
        if (out.owner_offsets == NULL or out.types == NULL or out.ttls == NULL
                or out.rdata_offsets == NULL or out.rdata == NULL or out.owners == NULL):
            return _failed(_REASONS[R_NOMEM], with_references)
        with nogil:
            for i in range(parts):
                packed_unpack(starts[i], sizes[i], out)
            out.rdata_offsets[out.records] = out.rdata_length
        memset(&c, 0, sizeof(Ctx))
        c.count = count
        c.owner_offset = out.owner_offsets
        c.owner_data = out.owners
        c.rtype = out.types
        c.ttl = out.ttls
        c.rdata_offset = out.rdata_offsets
        c.rdata = out.rdata
        return compile_ctx_image(&c, bytes(origin), image_buffer, with_references)
    finally:
        free(starts)
        free(sizes)
        if out != NULL:
            free(out.owner_offsets)
            free(out.types)
            free(out.ttls)
            free(out.rdata_offsets)
            free(out.rdata)
            free(out.owners)
            free(out)


cdef struct Packed:
    # The records' columns, appended to part by part.
    uint64_t* owner_offsets
    uint16_t* types
    uint32_t* ttls
    uint64_t* rdata_offsets
    uint8_t* rdata
    uint8_t* owners             # each record set's owner once (owner_offsets point in here)
    size_t records
    size_t rdata_length
    size_t owners_length


cdef inline uint16_t load_u16(const uint8_t* p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v


cdef size_t packed_end(const uint8_t* p, size_t at, size_t n) noexcept nogil:
    """Where the packed record set at ``p[at:n]`` ends, or 0 when it does not parse: lengths
    beyond ``n``, an owner whose labels do not fill its length."""
    cdef size_t owner_end, label, k, count, rdlen
    if at >= n or p[at] == 0 or at + 1 + p[at] + 8 > n:
        return 0
    owner_end = at + 1 + p[at]
    label = at + 1
    while label < owner_end and p[label] != 0:
        label += 1 + p[label]
    if label != owner_end - 1:
        return 0
    count = load_u16(p + owner_end + 6)
    at = owner_end + 8
    for k in range(count):
        if at + 2 > n:
            return 0
        rdlen = load_u16(p + at)
        at += 2 + rdlen
        if at > n:
            return 0
    return at


cdef bint packed_count(const uint8_t* p, size_t n, size_t* count, size_t* rdata_total,
                       size_t* owner_total) noexcept nogil:
    """Whether ``p[:n]`` parses as compile_packed's record sets; adds their records, RDATA
    octets and owner octets to the totals."""
    cdef size_t at = 0
    cdef size_t end, records
    while at < n:
        end = packed_end(p, at, n)
        if end == 0:
            return False
        records = load_u16(p + at + 1 + p[at] + 6)
        owner_total[0] += p[at]
        count[0] += records
        rdata_total[0] += end - (at + 1 + p[at] + 8) - 2 * records
        at = end
    return True


cdef void packed_unpack(const uint8_t* p, size_t n, Packed* out) noexcept nogil:
    """Append the records in ``p[:n]`` (checked by packed_count) to ``out``'s columns."""
    cdef size_t at = 0
    cdef size_t i = out.records
    cdef size_t owner_at, _k, records, rdlen
    cdef uint64_t rd = out.rdata_length
    cdef uint16_t rtype
    cdef uint32_t ttl
    while at < n:
        owner_at = out.owners_length
        memcpy(out.owners + owner_at, p + at + 1, p[at])
        out.owners_length += p[at]
        at += 1 + p[at]
        rtype = load_u16(p + at)
        memcpy(&ttl, p + at + 2, 4)
        records = load_u16(p + at + 6)
        at += 8
        for _k in range(records):
            rdlen = load_u16(p + at)
            out.owner_offsets[i] = owner_at
            out.types[i] = rtype
            out.ttls[i] = ttl
            out.rdata_offsets[i] = rd
            memcpy(out.rdata + rd, p + at + 2, rdlen)
            rd += rdlen
            at += 2 + rdlen
            i += 1
    out.records = i
    out.rdata_length = rd


cdef tuple _failed(str reason, bint with_references):
    if with_references:
        return None, reason, 0, -1, 0, 0, None
    return None, reason, 0, -1, 0, 0


cdef tuple compile_ctx_image(Ctx* cp, bytes origin_wire, object image_buffer,
                             bint with_references):
    """The image of the records ``cp`` points at (compile_columns' result tuple, and the
    referenced nodes if ``with_references``, see compile_packed); frees what the compile
    allocated in ``cp``, not the columns. ``image_buffer``: see compile_columns."""
    cdef Ctx c = cp[0]
    cdef object image = None
    cdef uint8_t[::1] dest
    cdef Buf nodes, type_buf, labels
    cdef int err
    cdef size_t i, total, at, end
    cdef size_t lengths[5]
    cdef uint32_t* header
    cdef uint32_t sections[5][2]
    cdef const uint8_t* origin_p = origin_wire
    cdef uint8_t* out
    cdef bytes references = None
    cdef object absent, copiers
    cdef uint8_t* bits
    cdef uint32_t* pairs
    cdef size_t npairs, kept
    memset(&nodes, 0, sizeof(Buf))
    memset(&type_buf, 0, sizeof(Buf))
    memset(&labels, 0, sizeof(Buf))
    c.origin = origin_p
    c.origin_len = len(origin_wire)
    for i in range(c.origin_len):
        c.origin_lower[i] = lower(origin_p[i])
    c.origin_labels = _label_count(origin_wire)
    c.note_copiers = with_references
    try:
        with nogil:
            err = compile_ctx(&c)
            if not err:
                err = pack_sections(&c, &nodes, &type_buf, &labels)
        if err == R_TYPE and c.bad_type:
            return _failed(f"type {c.bad_type} is not compiled natively", with_references)
        if err:
            return _failed(_REASONS[err], with_references)
        # fastdns.image.pack_image: header, then nodes, types, templates, labels and blob,
        # each 4-byte aligned; no policy groups; the apex in canonical form; no NSEC3.
        at = HEADER_SIZE
        sections[0][0] = c.nnodes
        sections[0][1] = at
        at = aligned(at + nodes.length)
        sections[1][0] = <uint32_t> (type_buf.length // TYPE_SIZE)
        sections[1][1] = at
        at = aligned(at + type_buf.length)
        sections[2][0] = c.ntmpls
        sections[2][1] = at
        at = aligned(at + c.tmpls.length)
        sections[3][0] = <uint32_t> labels.length
        sections[3][1] = at
        at = aligned(at + labels.length)
        sections[4][0] = <uint32_t> c.blob.length
        sections[4][1] = at
        at = aligned(at + c.blob.length)
        total = aligned(at + c.origin_len)
        if total > 0xFFFFFFFF:
            return _failed(_REASONS[R_TOO_LARGE], with_references)
        lengths[0] = nodes.length
        lengths[1] = type_buf.length
        lengths[2] = c.tmpls.length
        lengths[3] = labels.length
        lengths[4] = c.blob.length
        if image_buffer is not None:
            image = image_buffer(total)
        if image is None:
            image = PyBytes_FromStringAndSize(NULL, total)
            out = <uint8_t*> PyBytes_AS_STRING(image)
        else:
            dest = image  # writable, released when this returns
            if <size_t> dest.shape[0] != total:
                raise ValueError(f"image buffer of {dest.shape[0]} bytes for {total}")
            out = &dest[0]
        with nogil:
            # Zero only what no section fills (the header's unused words, the alignment
            # padding): a memset of the whole image would touch every page twice.
            memset(out, 0, HEADER_SIZE)
            for i in range(5):
                end = sections[i][1] + lengths[i]
                memset(out + end, 0, (sections[i + 1][1] if i < 4 else at) - end)
            memset(out + at + c.origin_len, 0, total - at - c.origin_len)
            memcpy(out, b"FDZ1", 4)
            header = <uint32_t*> out
            header[1] = IMAGE_VERSION
            for i in range(5):
                header[2 + 2 * i] = sections[i][0]
                header[3 + 2 * i] = sections[i][1]
            header[12] = <uint32_t> at                  # apex offset (no groups before it)
            header[13] = c.origin_len
            header[14] = c.origin_labels
            header[15] = <uint32_t> total
            memcpy(out + sections[0][1], nodes.data, nodes.length)
            memcpy(out + sections[1][1], type_buf.data, type_buf.length)
            memcpy(out + sections[2][1], c.tmpls.data, c.tmpls.length)
            memcpy(out + sections[3][1], labels.data, labels.length)
            memcpy(out + sections[4][1], c.blob.data, c.blob.length)
            memcpy(out + at, c.origin_lower, c.origin_len)
        if with_references:
            references = PyBytes_FromStringAndSize(NULL, c.nnodes)
            bits = <uint8_t*> PyBytes_AS_STRING(references)
            with nogil:
                for i in range(c.nnodes):
                    bits[i] = c.referenced[c.bfs_order[i]]
            absent = None if c.absent_lost else PyBytes_FromStringAndSize(
                <const char*> c.absent.data, c.absent.length)
            # The (node, copier) pairs in image order, sorted, each once.
            pairs = <uint32_t*> c.copiers.data
            npairs = c.copiers.length // 8
            kept = 0
            with nogil:
                for i in range(2 * npairs):
                    pairs[i] = c.bfs_index[pairs[i]]
                qsort_r(pairs, npairs, 8, compare_pairs, NULL)
                for i in range(npairs):
                    if kept == 0 or pairs[2 * i] != pairs[2 * kept - 2] \
                            or pairs[2 * i + 1] != pairs[2 * kept - 1]:
                        pairs[2 * kept] = pairs[2 * i]
                        pairs[2 * kept + 1] = pairs[2 * i + 1]
                        kept += 1
            copiers = None if c.copiers_lost else PyBytes_FromStringAndSize(
                <const char*> pairs, 8 * kept)
            return (image, None, c.nrrsets, c.refs[c.rrsets[c.soa_rrset].rd_start],
                    c.rrsets[c.soa_rrset].ttl, c.serial, (references, absent, copiers))
        return (image, None, c.nrrsets, c.refs[c.rrsets[c.soa_rrset].rd_start],
                c.rrsets[c.soa_rrset].ttl, c.serial)
    finally:
        free_ctx(&c)
        free(nodes.data)
        free(type_buf.data)
        free(labels.data)


def pack_scanned(scanned, counts) -> list:
    """The records of ``scanned`` (a ``fastdns._zscanner.ScannedZone``) as record sets in
    :func:`compile_packed`'s layout, one ``bytes`` per record set: ``counts`` says how many
    records each takes, in order (the first ``counts[0]`` records are the first set...). The
    records of one set must share owner, type and TTL; ``ValueError`` if they do not or the
    counts do not add up. Used when fastdns.hostedcolumns packs a whole hosted zone at once,
    from text the scanner read instead of a dnspython parse of every value."""
    cdef Ctx c
    cdef Py_ssize_t total
    cdef Py_ssize_t at = 0, first, k, n
    cdef size_t size, owner_len, rdlen
    cdef const uint8_t* owner
    cdef uint8_t* out
    cdef bytes part
    cdef uint16_t u16
    cdef list result = []
    memset(&c, 0, sizeof(Ctx))
    point_at_columns(&c, scanned)
    total = c.count
    for count in counts:
        n = count
        if n <= 0 or n > 0xFFFF or at + n > total:
            raise ValueError(f"pack_scanned: {count} records from record {at} of {total}")
        first = at
        owner = c.owner_data + c.owner_offset[first]
        owner_len = name_length(owner)
        size = 1 + owner_len + 8
        for k in range(first, first + n):
            if (c.rtype[k] != c.rtype[first] or c.ttl[k] != c.ttl[first]
                    or (c.owner_offset[k] != c.owner_offset[first]
                        and not name_equal_exact(c.owner_data + c.owner_offset[k], owner,
                                                 owner_len))):
                raise ValueError(f"pack_scanned: record {k} is not of the set at record {first}")
            size += 2 + c.rdata_offset[k + 1] - c.rdata_offset[k]
        part = PyBytes_FromStringAndSize(NULL, size)
        out = <uint8_t*> PyBytes_AS_STRING(part)
        out[0] = <uint8_t> owner_len
        memcpy(out + 1, owner, owner_len)
        out += 1 + owner_len
        memcpy(out, &c.rtype[first], 2)
        memcpy(out + 2, &c.ttl[first], 4)
        u16 = <uint16_t> n
        memcpy(out + 6, &u16, 2)
        out += 8
        for k in range(first, first + n):
            rdlen = c.rdata_offset[k + 1] - c.rdata_offset[k]
            u16 = <uint16_t> rdlen
            memcpy(out, &u16, 2)
            if rdlen:
                memcpy(out + 2, c.rdata + c.rdata_offset[k], rdlen)
            out += 2 + rdlen
        result.append(part)
        at += n
    if at != total:
        raise ValueError(f"pack_scanned: the counts cover {at} of {total} records")
    return result


cdef bint name_equal_exact(const uint8_t* a, const uint8_t* b, size_t length) noexcept nogil:
    return name_length(a) == length and memcmp(a, b, length) == 0


def same_bytes(a, b) -> bool:
    """Whether the buffers ``a`` and ``b`` (bytes, mmaps) hold the same bytes: one memcmp
    without the GIL (``memoryview`` equality compares item by item, some ten times slower on
    a 100 MB image)."""
    cdef const uint8_t[::1] x = a
    cdef const uint8_t[::1] y = b
    cdef size_t n = x.shape[0]
    cdef int d = 0
    if n != <size_t> y.shape[0]:
        return False
    if n == 0:
        return True
    with nogil:
        d = memcmp(&x[0], &y[0], n)
    return d == 0


def _label_count(bytes wire) -> int:
    cdef uint32_t n = 0
    cdef size_t i = 0
    while wire[i] != 0:
        n += 1
        i += wire[i] + 1
    return n


include "zcompile_patch.pxi"
include "zcompile_xfr.pxi"
