# -- a change grafted onto the last image instead of a recompile (issue 8) ---------------------
#
# A change to a hosted zone of a million record sets most often replaces the values of record
# sets that exist already (an address, a TXT string) and moves the SOA serial forward. Neither
# changes the trie: the nodes, their labels and which types each has stay as they are. What
# changes is the body of the templates that hold those record sets, and the serial in every
# template that holds the SOA. ``graft_image`` makes the new image from the last one by copying
# it, appending the new bodies to its blob and pointing the old template records at them, and
# writing the new serial over the old one: a copy and a walk of the template table instead of a
# sort, a trie and a million templates.
#
# It grafts a record set only where its template is all of what that record set puts in the
# image: the node is neither a zone cut nor below one (glue is written into referrals), no other
# node's template copies its data (``compile_packed(with_references=True)`` marks the nodes that
# CNAME chains and additional sections copy), it holds no CNAME (whose answers are chains), and
# the type brings nothing else with it (NS, MX and SRV add addresses; CNAME, SOA, DS are
# structure). The new templates come from the same compiler, run on a zone of only the SOA, the
# apex NS and the changed record sets (``mini``): a positive template depends on nothing but
# its record set and its owner's name, so it is the one a full compile writes. tests/
# test_zcompile_graft.py compares grafted images with full compiles of the same records, template
# by template.

cdef enum:
    HW_NODE_COUNT = 2              # header words (fastdns.image.HEADER)
    HW_NODES_OFF = 3
    HW_TYPE_COUNT = 4
    HW_TYPES_OFF = 5
    HW_TMPL_COUNT = 6
    HW_TMPLS_OFF = 7
    HW_LABELS_LEN = 8
    HW_LABELS_OFF = 9
    HW_BLOB_LEN = 10
    HW_BLOB_OFF = 11
    HW_APEX_OFF = 12
    HW_APEX_LEN = 13
    HW_APEX_LABELS = 14
    HW_TOTAL = 15
    HW_GROUP_COUNT = 17
    HW_NSEC3_OFF = 18
    HW_NSEC3_COUNT = 19
    HW_NODE_SEC_OFF = 20
    HW_ONLINE_OFF = 21
    HEADER_WORDS = 22
    TMPL_POLICY_BIT = 0x80000000
    MAX_GRAFTS = 4096


cdef struct ImgNodeRec:            # fastdns.image.NODE
    uint32_t label_off
    uint32_t first_child
    uint32_t child_count
    uint32_t parent
    uint32_t wildcard
    uint32_t types_first
    uint16_t types_count
    uint16_t flags
    uint32_t default_tmpl


cdef struct ImgTypeRec:            # fastdns.image.TYPE_ENTRY
    uint16_t qtype
    uint16_t reserved
    uint32_t tmpl


cdef struct ImgTmplRec:            # fastdns.image.TEMPLATE
    uint32_t body_off
    uint32_t ptr_off
    uint32_t mark_off
    uint16_t body_len
    uint16_t ptr_count
    uint16_t an
    uint16_t ns
    uint16_t ar
    uint16_t ar_required
    uint16_t flags
    uint16_t qname_len
    uint32_t twin


cdef struct View:
    const uint8_t* base
    size_t size
    const uint32_t* h
    const ImgNodeRec* nodes
    const ImgTypeRec* types
    const ImgTmplRec* tmpls
    const uint8_t* labels
    const uint8_t* blob


cdef bint view_open(View* v, const uint8_t* base, size_t size) noexcept nogil:
    """Whether ``base[:size]`` is an unsigned image without policy groups whose sections lie
    inside it (the images compile_packed writes)."""
    cdef const uint32_t* h = <const uint32_t*> base
    if size < HEADER_SIZE or memcmp(base, b"FDZ1", 4) != 0 or h[1] != IMAGE_VERSION \
            or h[HW_TOTAL] != size:
        return False
    if h[HW_GROUP_COUNT] or h[HW_NSEC3_OFF] or h[HW_NSEC3_COUNT] or h[HW_NODE_SEC_OFF] \
            or h[HW_ONLINE_OFF]:
        return False
    if <uint64_t> h[HW_NODES_OFF] + <uint64_t> h[HW_NODE_COUNT] * NODE_SIZE > size \
            or <uint64_t> h[HW_TYPES_OFF] + <uint64_t> h[HW_TYPE_COUNT] * TYPE_SIZE > size \
            or <uint64_t> h[HW_TMPLS_OFF] + <uint64_t> h[HW_TMPL_COUNT] * TEMPLATE_SIZE > size \
            or <uint64_t> h[HW_LABELS_OFF] + h[HW_LABELS_LEN] > size \
            or <uint64_t> h[HW_BLOB_OFF] + h[HW_BLOB_LEN] > size \
            or <uint64_t> h[HW_APEX_OFF] + h[HW_APEX_LEN] > size \
            or h[HW_NODE_COUNT] == 0 or h[HW_TMPL_COUNT] < 2 or h[HW_APEX_LEN] == 0 \
            or h[HW_NODES_OFF] % 4 or h[HW_TYPES_OFF] % 4 or h[HW_TMPLS_OFF] % 4:
        return False
    v.base = base
    v.size = size
    v.h = h
    v.nodes = <const ImgNodeRec*> (base + h[HW_NODES_OFF])
    v.types = <const ImgTypeRec*> (base + h[HW_TYPES_OFF])
    v.tmpls = <const ImgTmplRec*> (base + h[HW_TMPLS_OFF])
    v.labels = base + h[HW_LABELS_OFF]
    v.blob = base + h[HW_BLOB_OFF]
    return True


cdef uint32_t view_node(View* v, const uint8_t* name, bint* cut) noexcept nogil:
    """The node of ``name`` (uncompressed wire format, any case), or NONE32; ``cut``: whether
    the node is a zone cut or below one. Children are sorted canonically (fastdns.image)."""
    cdef uint32_t offsets[128]
    cdef int n = label_offsets(name, offsets)
    cdef int k = n - <int> v.h[HW_APEX_LABELS]
    cdef uint32_t at = 0
    cdef uint32_t lo, hi, mid
    cdef const uint8_t* label
    cdef const uint8_t* s
    cdef int j, d
    cut[0] = False
    if k < 0 or (k < n and not name_equal(name + offsets[k], v.base + v.h[HW_APEX_OFF])):
        return NONE32
    for j in range(k - 1, -1, -1):
        if v.nodes[at].flags & NODE_CUT:
            cut[0] = True
        label = name + offsets[j]
        lo = v.nodes[at].first_child
        hi = lo + v.nodes[at].child_count
        if v.nodes[at].child_count == 0 or hi > v.h[HW_NODE_COUNT]:
            return NONE32
        at = NONE32
        while lo < hi:
            mid = lo + (hi - lo) // 2
            if v.nodes[mid].label_off >= v.h[HW_LABELS_LEN]:
                return NONE32
            s = v.labels + v.nodes[mid].label_off
            d = label_compare(label + 1, label[0], s + 1, s[0])
            if d == 0:
                at = mid
                break
            if d < 0:
                hi = mid
            else:
                lo = mid + 1
        if at == NONE32:
            return NONE32
    if v.nodes[at].flags & NODE_CUT:
        cut[0] = True
    return at


cdef uint32_t view_template(View* v, uint32_t node, uint16_t qtype) noexcept nogil:
    """The template answering ``qtype`` at ``node`` if that is the positive answer of a record
    set of the node's own (not NODATA, a policy group or a CNAME chain), else NONE32."""
    cdef const ImgNodeRec* nd = &v.nodes[node]
    cdef uint32_t i, found = NONE32
    if <uint64_t> nd.types_first + nd.types_count > v.h[HW_TYPE_COUNT]:
        return NONE32
    for i in range(nd.types_first, nd.types_first + nd.types_count):
        if v.types[i].qtype == T_CNAME:
            return NONE32
        if v.types[i].qtype == qtype:
            found = v.types[i].tmpl
    if found == NONE32 or found & TMPL_POLICY_BIT or found < 2 or found >= v.h[HW_TMPL_COUNT]:
        return NONE32
    return found


cdef size_t template_size(View* v, uint32_t t) noexcept nogil:
    """The blob bytes of template ``t``: body, pointer positions, additional marks."""
    cdef const ImgTmplRec* r = &v.tmpls[t]
    return <size_t> r.body_len + 2 * <size_t> r.ptr_count + 2 * <size_t> r.ar


cdef bint template_inside(View* v, uint32_t t) noexcept nogil:
    cdef const ImgTmplRec* r = &v.tmpls[t]
    cdef uint64_t blob_len = v.h[HW_BLOB_LEN]
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
                  uint32_t new_serial) noexcept nogil:
    """Write ``new_serial`` over the serial of every SOA RR in a template body of ``rrs`` RRs;
    -1 if the body does not parse or an SOA there holds another serial than ``old_serial``.
    The zone has one SOA (fastdns.validate), so every SOA RR in its templates is that one."""
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
            if serial != old_serial:
                return -1
            body[serial_at] = (new_serial >> 24) & 0xFF
            body[serial_at + 1] = (new_serial >> 16) & 0xFF
            body[serial_at + 2] = (new_serial >> 8) & 0xFF
            body[serial_at + 3] = new_serial & 0xFF
        at += 10 + rdlen
    return 0 if at == n else -1


def graft_image(old, mini, targets, long long old_serial, long long new_serial,
                const uint8_t[::1] references, image_buffer=None) -> tuple:
    """``(image, None)``: the image of ``old``'s zone after a change that replaced the record
    sets ``targets`` names and moved the SOA serial from ``old_serial`` to ``new_serial``
    (both -1: the SOA did not change); or ``(None, reason)`` when the change cannot be grafted
    and the zone must be compiled again.

    ``old`` is the zone's last image (compile_packed) or one this function made from it, and
    ``references`` the referenced nodes compile_packed gave with that image; ``mini`` is
    compile_packed's image of the zone's new SOA, its apex NS and the new record sets;
    ``targets`` lists each replaced record set as (owner in wire format, type). The result
    answers every query as a full compile of the changed zone does (see above for the
    changes it refuses); ``image_buffer`` as for compile_columns."""
    cdef const uint8_t[::1] old_bytes = old
    cdef const uint8_t[::1] mini_bytes = mini
    cdef View ov, mv
    cdef Py_ssize_t count = len(targets)
    cdef Py_ssize_t i
    cdef uint32_t* old_t = NULL
    cdef uint32_t* mini_t = NULL
    cdef uint32_t node, t, blob_off
    cdef bint cut
    cdef bytes owner
    cdef const uint8_t* owner_p
    cdef int rtype
    cdef size_t extra = 0, total, at, n
    cdef object image = None
    cdef uint8_t[::1] dest
    cdef uint8_t* out
    cdef uint32_t* header
    cdef ImgTmplRec* rec
    cdef const ImgTmplRec* src
    cdef int failed = 0
    if old_bytes.shape[0] == 0 or mini_bytes.shape[0] == 0:
        return None, "no image"
    if not view_open(&ov, &old_bytes[0], old_bytes.shape[0]) \
            or not view_open(&mv, &mini_bytes[0], mini_bytes.shape[0]):
        return None, "not an image a change can be grafted onto"
    if <size_t> references.shape[0] * 8 < ov.h[HW_NODE_COUNT]:
        raise ValueError("graft_image: references do not cover the image's nodes")
    if count > MAX_GRAFTS:
        return None, "too many record sets changed"
    if (old_serial < 0) != (new_serial < 0) or old_serial > 0xFFFFFFFF \
            or new_serial > 0xFFFFFFFF:
        raise ValueError("graft_image: serials are both -1 or both 32-bit")
    old_t = <uint32_t*> malloc((count + 1) * 4)
    mini_t = <uint32_t*> malloc((count + 1) * 4)
    try:
        if old_t == NULL or mini_t == NULL:
            raise MemoryError()
        for i in range(count):
            owner, rtype = targets[i]
            if len(owner) == 0 or len(owner) > MAX_NAME_WIRE or not _well_formed(owner):
                raise ValueError(f"graft_image: owner {owner!r} is not a wire-format name")
            if rtype in (T_SOA, T_NS, T_CNAME, T_DS, T_MX, T_SRV) or not 0 < rtype < 65536:
                return None, f"type {rtype} is structure or brings additional data"
            owner_p = owner
            node = view_node(&ov, owner_p, &cut)
            if node == NONE32:
                return None, "a record set that is not in the image"
            if cut:
                return None, "a record set at or below a zone cut"
            if references[node >> 3] & (1 << (node & 7)):
                return None, "a record set other answers copy"
            t = view_template(&ov, node, <uint16_t> rtype)
            if t == NONE32:
                return None, "a record set the image does not answer with a template of its own"
            old_t[i] = t
            node = view_node(&mv, owner_p, &cut)
            t = view_template(&mv, node, <uint16_t> rtype) if node != NONE32 else NONE32
            if t == NONE32 or not template_inside(&mv, t) or mv.tmpls[t].twin:
                return None, "the change's own compile has no template for a record set"
            mini_t[i] = t
            extra += template_size(&mv, t)
        blob_off = ov.h[HW_BLOB_OFF]
        total = ov.size + aligned(extra)
        if total > 0xFFFFFFFF:
            return None, _REASONS[R_TOO_LARGE]
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
        with nogil:
            memcpy(out, ov.base, ov.size)
            at = ov.size
            for i in range(count):
                # The new body and its lists at the end of the blob (which the header extends
                # to the end of the image, over the apex name: sections may overlap); the old
                # template record points there. Its old body stays, unused, until the zone is
                # compiled again.
                src = &mv.tmpls[mini_t[i]]
                rec = <ImgTmplRec*> (out + ov.h[HW_TMPLS_OFF]) + old_t[i]
                rec[0] = src[0]
                rec.body_off = <uint32_t> (at - blob_off)
                memcpy(out + at, mv.blob + src.body_off, src.body_len)
                at += src.body_len
                rec.ptr_off = <uint32_t> (at - blob_off)
                memcpy(out + at, mv.blob + src.ptr_off, 2 * <size_t> src.ptr_count)
                at += 2 * <size_t> src.ptr_count
                rec.mark_off = <uint32_t> (at - blob_off)
                memcpy(out + at, mv.blob + src.mark_off, 2 * <size_t> src.ar)
                at += 2 * <size_t> src.ar
            memset(out + at, 0, total - at)
            header = <uint32_t*> out
            header[HW_TOTAL] = <uint32_t> total
            header[HW_BLOB_LEN] = <uint32_t> (total - blob_off)
            if new_serial >= 0:
                rec = <ImgTmplRec*> (out + ov.h[HW_TMPLS_OFF])
                for t in range(ov.h[HW_TMPL_COUNT]):
                    n = rec[t].body_off
                    if n + rec[t].body_len > total - blob_off or reserial(
                            out + blob_off + n, rec[t].body_len,
                            <uint32_t> rec[t].an + rec[t].ns + rec[t].ar,
                            <uint32_t> old_serial, <uint32_t> new_serial) < 0:
                        failed = 1
                        break
        if failed:
            return None, "a template whose SOA does not hold the old serial"
        return image, None
    finally:
        free(old_t)
        free(mini_t)


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
