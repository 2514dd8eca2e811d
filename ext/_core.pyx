# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""fastdns's per-packet path: parse, find the zone, walk its trie, copy and patch a template.

Python objects are touched only when a catalog is built and at the call boundary; the work per
query (``answer_query``) is plain C and runs without the GIL.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcmp, memcpy, memset
from libc.stdint cimport int32_t, uint64_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Malloc

from core_types cimport *

include "wire.pxi"
include "trie.pxi"
include "answer.pxi"
include "policy.pxi"
include "online.pxi"
include "dnssec.pxi"
include "counters.pxi"

cdef enum:
    OUT_BUFFER = MAX_MESSAGE + 1024

if sizeof(ImageHeader) != 88 or sizeof(Nsec3Entry) != 28 or sizeof(NodeSec) != 8 \
        or sizeof(ImgNode) != 32 or sizeof(ImgType) != 8 \
        or sizeof(ImgTemplate) != 32 or sizeof(ImgGroup) != 16 or sizeof(ImgMember) != 12 \
        or sizeof(NetworkC) != 12 or sizeof(RangeV6) != 40 or sizeof(ImgOnline) != 16 \
        or sizeof(NodeNsec) != 8:
    raise ImportError("fastdns._core was built with a struct layout that differs from image.py")
online_init()


cdef inline bint bad_tmpl_ref(uint32_t tmpl, const ImageHeader* h) noexcept nogil:
    """A type entry's or node's template: a template, or a policy group (TMPL_POLICY)."""
    if tmpl & TMPL_POLICY:
        return (tmpl & ~(<uint32_t> TMPL_POLICY)) >= h.reserved1
    return tmpl >= h.tmpl_count


cdef int load_image(Image* img, const uint8_t* buf, Py_ssize_t size,
                    bint is_index) except -1:
    """Check every offset and index of an image so the hot path can trust it."""
    cdef const ImageHeader* h = <const ImageHeader*> buf
    cdef uint32_t i, j, end
    cdef const ImgNode* nd
    cdef const ImgTemplate* t
    cdef const uint8_t* blob
    if size < <Py_ssize_t> sizeof(ImageHeader) or memcmp(h.magic, b"FDZ1", 4) != 0:
        raise ValueError("not a fastdns zone image")
    if h.version != IMAGE_VERSION or h.total_len != size:
        raise ValueError("zone image version or size mismatch")
    for off, count, item in ((h.nodes_off, h.node_count, sizeof(ImgNode)),
                             (h.types_off, h.type_count, sizeof(ImgType)),
                             (h.tmpls_off, h.tmpl_count, sizeof(ImgTemplate)),
                             (h.labels_off, h.labels_len, 1), (h.blob_off, h.blob_len, 1),
                             (h.apex_off, h.apex_len, 1)):
        if off % 4 or <Py_ssize_t> off + <Py_ssize_t> count * item > size:
            raise ValueError("zone image section out of bounds")
    if h.node_count == 0 or (not is_index and h.tmpl_count < 2):
        raise ValueError("zone image is empty")
    img.hdr = h
    img.nodes = <const ImgNode*> (buf + h.nodes_off)
    img.types = <const ImgType*> (buf + h.types_off)
    img.tmpls = <const ImgTemplate*> (buf + h.tmpls_off)
    img.labels = buf + h.labels_off
    img.blob = buf + h.blob_off
    img.apex_labels = h.apex_labels
    # Policy groups (fastdns/policy.py): reserved0 = offset, reserved1 = count; 0 in images
    # without routing policies.
    if h.reserved0 % 4 or <uint64_t> h.reserved0 + <uint64_t> h.reserved1 * sizeof(ImgGroup) \
            > <uint64_t> size or (h.reserved1 and is_index):
        raise ValueError("zone image: bad policy group section")
    img.groups = <const ImgGroup*> (buf + h.reserved0)
    img.group_count = h.reserved1
    img.zsk = NULL
    load_nsec3(img, buf, size, is_index)
    load_online(img, is_index)
    for i in range(h.node_count):
        nd = &img.nodes[i]
        if nd.label_off >= h.labels_len or \
                nd.label_off + 1 + img.labels[nd.label_off] > h.labels_len or \
                img.labels[nd.label_off] > 63:
            raise ValueError("zone image: bad label")
        if nd.child_count and (nd.first_child <= i or
                               <uint64_t> nd.first_child + nd.child_count > h.node_count):
            raise ValueError("zone image: bad children")
        if nd.wildcard != NONE_INDEX and nd.wildcard >= h.node_count:
            raise ValueError("zone image: bad wildcard")
        if <uint64_t> nd.types_first + nd.types_count > h.type_count:
            raise ValueError("zone image: bad type table")
        if not is_index and bad_tmpl_ref(nd.default_tmpl, h):
            raise ValueError("zone image: bad default template")
    for i in range(h.type_count):
        if bad_tmpl_ref(img.types[i].tmpl, h):
            raise ValueError("zone image: bad type entry")
    for i in range(h.tmpl_count):
        t = &img.tmpls[i]
        if <uint64_t> t.body_off + t.body_len > h.blob_len or \
                <uint64_t> t.ptr_off + 2 * t.ptr_count > h.blob_len or \
                <uint64_t> t.mark_off + 2 * t.ar > h.blob_len or \
                t.ar_required > t.ar or t.qname_len > MAX_NAME_WIRE or t.qname_len == 0 or \
                HEADER_LEN + MAX_NAME_WIRE + 4 + t.body_len + OPT_RR_LEN > MAX_MESSAGE or \
                t.twin >= h.tmpl_count or (t.twin and not img.signed_zone) or \
                ((t.flags & TMPL_DENIAL) and t.ar):
            raise ValueError("zone image: bad template")
        blob = img.blob + t.ptr_off
        for j in range(t.ptr_count):
            end = (blob[2 * j] | (blob[2 * j + 1] << 8)) + 2
            if end > t.body_len:
                raise ValueError("zone image: bad pointer position")
        blob = img.blob + t.mark_off
        for j in range(t.ar):
            if (blob[2 * j] | (blob[2 * j + 1] << 8)) > t.body_len:
                raise ValueError("zone image: bad additional mark")
    check_groups(img, h.blob_len, 256)  # classifier indices are checked again by the Catalog
    if img.online != NULL:
        load_online_key(img, img.blob + img.online.key_off, img.online.key_len)
    return 0


cdef int load_nsec3(Image* img, const uint8_t* buf, Py_ssize_t size, bint is_index) except -1:
    """A signed zone's NSEC3 chain (sorted, inside the blob) and per-node entries."""
    cdef const ImageHeader* h = img.hdr
    cdef uint32_t i
    img.nsec3 = NULL
    img.nsec3_count = 0
    img.node_sec = NULL
    img.signed_zone = h.nsec3_count != 0
    if h.nsec3_count == 0:
        return 0
    if is_index or h.nsec3_off % 4 or h.node_sec_off % 4 or \
            <uint64_t> h.nsec3_off + <uint64_t> h.nsec3_count * sizeof(Nsec3Entry) > \
            <uint64_t> size or \
            <uint64_t> h.node_sec_off + <uint64_t> h.node_count * sizeof(NodeSec) > \
            <uint64_t> size:
        raise ValueError("zone image: bad NSEC3 section")
    img.nsec3 = <const Nsec3Entry*> (buf + h.nsec3_off)
    img.nsec3_count = h.nsec3_count
    img.node_sec = <const NodeSec*> (buf + h.node_sec_off)
    for i in range(h.nsec3_count):
        if <uint64_t> img.nsec3[i].wire_off + img.nsec3[i].wire_len > h.blob_len or \
                (i > 0 and memcmp(img.nsec3[i - 1].hash, img.nsec3[i].hash,
                                  NSEC3_HASH_LEN) >= 0):
            raise ValueError("zone image: bad NSEC3 entry")
    for i in range(h.node_count):
        if (img.node_sec[i].match != NONE_INDEX and img.node_sec[i].match >= h.nsec3_count) or \
                (img.node_sec[i].wild_cover != NONE_INDEX and
                 img.node_sec[i].wild_cover >= h.nsec3_count):
            raise ValueError("zone image: bad NSEC3 node entry")
    return 0


cdef int load_online(Image* img, bint is_index) except -1:
    """A zone signed online (issue 6): its ImgOnline record and, for compact denial, the NSEC
    type bitmap of every node. The key itself is read last (load_online_key)."""
    cdef const ImageHeader* h = img.hdr
    cdef const ImgOnline* o
    cdef uint32_t i
    img.online = NULL
    img.compact = False
    img.node_nsec = NULL
    if h.online_off == 0:
        return 0
    if is_index or h.online_off % 4 or \
            <uint64_t> h.online_off + sizeof(ImgOnline) > h.blob_len:
        raise ValueError("zone image: bad online-signing record")
    o = <const ImgOnline*> (img.blob + h.online_off)
    if <uint64_t> o.key_off + o.key_len > h.blob_len or \
            (o.algorithm != ALG_ECDSAP256SHA256 and o.algorithm != ALG_ED25519) or \
            o.denial > DENIAL_COMPACT or (o.denial == DENIAL_COMPACT) == (h.nsec3_count != 0):
        raise ValueError("zone image: bad online-signing record")
    img.online = o
    img.nsec_ttl = o.nsec_ttl
    img.zsk_tag = o.key_tag
    img.zsk_algorithm = o.algorithm
    if o.denial == DENIAL_COMPACT:
        if h.node_sec_off % 4 or <uint64_t> h.node_sec_off + \
                <uint64_t> h.node_count * sizeof(NodeNsec) > <uint64_t> size_of(img):
            raise ValueError("zone image: bad NSEC bitmap table")
        img.node_nsec = <const NodeNsec*> ((<const uint8_t*> h) + h.node_sec_off)
        for i in range(h.node_count):
            if <uint64_t> img.node_nsec[i].bitmap_off + img.node_nsec[i].bitmap_len > \
                    h.blob_len or img.node_nsec[i].bitmap_len > NSEC_BITMAP_MAX:
                raise ValueError("zone image: bad NSEC bitmap")
        img.compact = True
        img.signed_zone = True
    return 0


cdef inline uint64_t size_of(const Image* img) noexcept nogil:
    return img.hdr.total_len


ctypedef struct AnswerInfo:
    int zone                 # catalog index of the zone that answered, or -1
    int rcode                # extended RCODE when not in the header (BADVERS), else -1
    bint malformed
    uint16_t qtype
    int qname_len
    const uint8_t* qname     # the query's own QNAME octets (valid while the packet is)
    PolicyTrace policy       # policy.group == -1 when no routing policy was evaluated
    bint control             # a request for the control plane (see answer_query)


ctypedef struct CatalogC:
    Image index
    const Image* zones
    int zone_count
    uint16_t udp_max
    PolicyState policy


cdef Py_ssize_t answer_query(const CatalogC* cat, const uint8_t* pkt, Py_ssize_t length,
                             bint tcp, uint8_t* out, AnswerInfo* info,
                             const Client* peer) noexcept nogil:
    """The whole answer to one query, written to ``out``; 0 means send nothing (or, when
    ``info.control`` is set, that the control plane answers this message).

    ``info`` says what happened, for counters and the query log. ``peer`` is the address the
    query came from (family 0 when unknown); routing policies use the EDNS Client Subnet
    instead when the query carries one (RFC 7871 §7.1.3 via the resolver).
    """
    cdef Client client
    cdef uint16_t chosen[MULTIVALUE_MAX]
    cdef int nchosen = 0
    cdef uint32_t chosen_group = 0
    cdef long picked
    cdef Query q
    cdef Walk w
    cdef int zone, depth = 0, parent_zone, parent_depth = 0
    cdef const Image* img
    cdef uint32_t tmpl, wildcard
    cdef Py_ssize_t limit
    cdef int how, scope = 0, nproof = 0
    cdef uint32_t proof[MAX_NSEC3_PROOF]
    cdef uint8_t made[COMPACT_PROOF_MAX]
    cdef int made_len = 0
    cdef bint policy_nodata = False
    cdef int parsed = parse_query(&q, pkt, length)
    info.zone = -1
    info.rcode = -1
    info.malformed = parsed == PARSE_FORMERR or parsed == PARSE_FORMERR_QUESTION or \
        length < HEADER_LEN
    info.qtype = q.qtype if parsed == PARSE_OK else 0
    info.qname_len = q.qname_len if parsed == PARSE_OK else 0
    info.qname = q.pkt + HEADER_LEN
    info.policy.group = -1
    info.control = False
    if parsed == PARSE_DROP:
        return 0
    if q.opcode == OPCODE_NOTIFY or q.opcode == OPCODE_UPDATE:
        # NOTIFY (RFC 1996) and UPDATE (RFC 2136), over UDP and TCP, are the control plane's.
        info.control = True
        return 0
    if q.opcode != 0:
        # RFC 1035 §4.1.1: only standard QUERY here.
        return error_response(&q, out, RCODE_NOTIMP, parsed == PARSE_OK, 0, cat.udp_max)
    if parsed != PARSE_OK:
        return error_response(&q, out, RCODE_FORMERR, parsed == PARSE_FORMERR_QUESTION, 0,
                              cat.udp_max)
    if q.has_opt and q.edns_version > 0:
        # RFC 6891 §6.1.3: BADVERS, answered with the highest version we implement (0).
        info.rcode = 16
        return error_response(&q, out, RCODE_NOERROR, True, EXT_RCODE_BADVERS, cat.udp_max)
    if q.qclass != CLASS_IN:
        return error_response(&q, out, RCODE_REFUSED, True, 0, cat.udp_max)
    if q.qtype == TYPE_NXNAME:
        # RFC 9824 §3.5: NXNAME only ever appears in compact denial's NSEC bitmaps.
        return error_response(&q, out, RCODE_FORMERR, True, 0, cat.udp_max)
    if q.qtype == TYPE_AXFR and not tcp:
        # RFC 5936 §4.2: AXFR is not defined over UDP.
        return error_response(&q, out, RCODE_NOTIMP, True, 0, cat.udp_max)
    if q.qtype == TYPE_IXFR or (tcp and (q.qtype == TYPE_AXFR or q.has_tsig)):
        # Zone transfers (RFC 5936; RFC 1995, which offers IXFR over UDP too, §2) and
        # TSIG-signed queries over TCP (RFC 8945) are the control plane's (fastdns/xfr/):
        # nothing is written, the caller forwards the message.
        info.control = True
        return 0
    zone = find_zone(&cat.index, &q, &depth, &parent_zone, &parent_depth)
    if zone < 0:
        return error_response(&q, out, RCODE_REFUSED, True, 0, cat.udp_max)
    if q.qtype == TYPE_DS and depth == q.nlabels and parent_zone >= 0:
        # RFC 4035 §3.1.4.1: DS at an apex is the parent's data; answer from the parent we
        # host, but only when it really delegates this name (else the child answers).
        img = &cat.zones[parent_zone]
        walk_image(img, &q, parent_depth, &w)
        if w.exact and w.node != 0 and (img.nodes[w.node].flags & NODE_CUT):
            zone = parent_zone
            depth = parent_depth
    info.zone = zone
    img = &cat.zones[zone]
    walk_image(img, &q, depth, &w)
    if w.exact:
        tmpl = find_type(img, &img.nodes[w.node], q.qtype)  # at a cut: DS, else the referral
        how = WALK_EXACT
    elif w.cut != NONE_INDEX:
        tmpl = img.nodes[w.cut].default_tmpl
        how = WALK_CUT
    else:
        wildcard = img.nodes[w.node].wildcard
        if wildcard != NONE_INDEX:
            tmpl = find_type(img, &img.nodes[wildcard], q.qtype)
            how = WALK_WILDCARD
        else:
            tmpl = TEMPLATE_NXDOMAIN
            how = WALK_NXDOMAIN
    if tcp:
        limit = MAX_MESSAGE
    elif q.has_opt:
        # RFC 6891 §6.2.5: use the smaller of our payload and the requestor's, never below 512.
        limit = q.udp_size if q.udp_size < cat.udp_max else cat.udp_max
        if limit < MIN_UDP_PAYLOAD:
            limit = MIN_UDP_PAYLOAD
    else:
        limit = MIN_UDP_PAYLOAD
    if tmpl & TMPL_POLICY:
        client_of(&q, peer, &client)
        picked = eval_group(&cat.policy, img, tmpl & ~(<uint32_t> TMPL_POLICY), &client, chosen,
                            &nchosen, &chosen_group, 0, &info.policy)
        if picked == CHOSE_MULTIVALUE:
            if not (q.dnssec_ok and img.signed_zone):
                return emit_members(&q, img, <const ImgMember*> (
                    img.blob + img.groups[chosen_group].members_off),
                    chosen, nchosen, out, limit, cat.udp_max, client.scope)
            if img.zsk != NULL and img.groups[chosen_group].chains_off != 0:
                # Signed, DO set: the members chosen are one RRset, signed online.
                return emit_members(&q, img, <const ImgMember*> (
                    img.blob + img.groups[chosen_group].members_off),
                    chosen, nchosen, out, limit, cat.udp_max, client.scope,
                    img.blob + img.groups[chosen_group].chains_off)
            # Signed without an online key, or members whose TTLs
            # differ: one healthy member chosen at random (its own RRset, signed in advance).
            picked = (<const ImgMember*> (img.blob + img.groups[chosen_group].members_off))[
                chosen[0]].tmpl
        tmpl = <uint32_t> picked
        policy_nodata = picked == TEMPLATE_NODATA
        scope = client.scope
    if q.dnssec_ok and img.compact:
        # RFC 9824 §3.1: a name that does not exist is answered as NODATA (NOERROR).
        if how == WALK_NXDOMAIN:
            tmpl = TEMPLATE_NODATA
        if img.tmpls[tmpl].twin != 0:
            tmpl = img.tmpls[tmpl].twin
            made_len = compact_proof(img, &q, &w, how,
                                     (img.tmpls[tmpl].flags & TMPL_DENIAL) != 0, made,
                                     policy_nodata)
            if made_len < 0:
                return error_response(&q, out, RCODE_SERVFAIL, True, 0, cat.udp_max)
    elif q.dnssec_ok and img.signed_zone and img.tmpls[tmpl].twin != 0:
        # RFC 3225 §3 / RFC 4035 §3.1: DNSSEC records only when the query asks for them.
        tmpl = img.tmpls[tmpl].twin
        nproof = denial_proof(img, &q, &w, how, tmpl, proof)
    return emit_template(&q, img, tmpl, out, limit, cat.udp_max, scope, proof, nproof,
                         made, made_len, 2 if made_len > 0 else 0)


cdef void client_of(const Query* q, const Client* peer, Client* client) noexcept nogil:
    """Who the answer is for: the ECS subnet when the query has one with a non-zero source
    prefix (RFC 7871 §7.1.3: 0 asks for no tailoring by client address, so the resolver's own
    address is used, with scope 0), else the resolver's address."""
    client.scope = 0
    if q.has_ecs and q.ecs_source > 0:
        client.family = 4 if q.ecs_family == 1 else 6
        memcpy(client.addr, q.ecs_addr, 16)
        client.prefix = q.ecs_source
    elif peer != NULL:
        client.family = peer.family
        memcpy(client.addr, peer.addr, 16)
        client.prefix = 32 if peer.family == 4 else 128
    else:
        client.family = 0
        client.prefix = 0


cdef class ZoneImage:
    """A compiled zone image (bytes from ``fastdns.compile.compile_zone``), validated."""

    cdef readonly object data
    # data's bytes, held while this lives. A Py_buffer rather than a typed memoryview, which
    # would be one more object per zone (100,000 zones: about 30 MB in every worker).
    cdef Py_buffer buf         # buf.buf is NULL until it is taken
    cdef Image img
    cdef object __weakref__     # workers keep validated images of unchanged segments by weakref

    def __dealloc__(self):
        free_online_key(&self.img)
        if self.buf.buf != NULL:
            PyBuffer_Release(&self.buf)

    def __cinit__(self, data not None):
        # bytes, or a read-only buffer such as a memoryview of a shared mmap (kept alive here)
        self.img.zsk = NULL
        self.data = data
        PyObject_GetBuffer(data, &self.buf, PyBUF_SIMPLE)  # contiguous bytes, or an error
        if self.buf.len == 0:
            raise ValueError("not a fastdns zone image")
        load_image(&self.img, <const uint8_t*> self.buf.buf, self.buf.len, False)

    @property
    def origin(self):
        return _wire_to_text(self.apex_wire)

    @property
    def apex_wire(self):
        cdef const ImageHeader* h = self.img.hdr
        return PyBytes_FromStringAndSize(<const char*> self.buf.buf + h.apex_off, h.apex_len)

    def _node_name(self, uint32_t node):
        labels = []
        while node != 0:
            off = self.img.nodes[node].label_off
            labels.append(bytes(self.img.labels[off + 1:off + 1 + self.img.labels[off]]))
            node = self.img.nodes[node].parent
        return labels

    def lookup(self, bytes name_wire not None):
        """Walk a name (wire form, inside this zone) as the hot path would.

        Returns ``(exact, closest_encloser, predecessor, cut)``: the last three as lists of
        labels below the apex (``cut`` is None when no zone cut was met). For tests and tools.
        """
        cdef Query q
        cdef Walk w
        q.pkt = <const uint8_t*> (<char*> name_wire)
        q.len = len(name_wire)
        if parse_qname(&q, 0) < 0:
            raise ValueError("malformed name")
        if q.nlabels < <int> self.img.apex_labels:
            raise ValueError("name is not inside this zone")
        walk_image(&self.img, &q, self.img.apex_labels, &w)
        cut = None if w.cut == NONE_INDEX else self._node_name(w.cut)
        return (bool(w.exact), self._node_name(w.node), self._node_name(w.predecessor), cut)


cdef class Catalog:
    """Every served zone, immutable once built; swap a whole Catalog to change what is served.

    ``answer(query, tcp)`` returns the response bytes, or None when the packet gets no answer.
    """

    cdef CatalogC c
    cdef list _zones
    cdef bytes _index_data
    cdef Image* _zone_array
    cdef list _classifier_data
    cdef ClassifierC* _classifiers
    cdef object _health
    cdef const uint8_t[::1] _health_view
    cdef uint64_t _rng

    def __cinit__(self, images, int udp_max_payload=1232, classifiers=(), health=None):
        """``images``: compiled zones. ``classifiers``: client-address classifiers ("FDC1"
        blobs of fastdns.geo.ranges) that routing policies name by position. ``health``: the
        shared health table (one octet per health-check slot, 1 = healthy), or None (all
        healthy)."""
        from fastdns.image import build_index  # once per catalog, never per packet

        if not MIN_UDP_PAYLOAD <= udp_max_payload <= MAX_MESSAGE:
            raise ValueError("udp_max_payload must be within 512..65535")
        zones = [img if isinstance(img, ZoneImage) else ZoneImage(img) for img in images]
        # Lower-cased wire (label lengths are below 64, so lower() leaves them alone): equal
        # exactly when the names are (RFC 4343), without a dns.name.Name per zone.
        apexes = [(<ZoneImage> z).apex_wire.lower() for z in zones]
        if len(set(apexes)) != len(apexes):
            raise ValueError("two zones with the same origin")
        self._zones = zones
        self._index_data = build_index(apexes)
        load_image(&self.c.index, <const uint8_t*> (<char*> self._index_data),
                   len(self._index_data), True)
        self._zone_array = <Image*> PyMem_Malloc(sizeof(Image) * (len(zones) or 1))
        if self._zone_array == NULL:
            raise MemoryError()
        for i, z in enumerate(zones):
            self._zone_array[i] = (<ZoneImage> z).img
        self.c.zones = self._zone_array
        self.c.zone_count = len(zones)
        self.c.udp_max = udp_max_payload
        self._load_policy_state(list(classifiers), health)
        for i in range(len(zones)):
            check_groups(&self._zone_array[i], self._zone_array[i].hdr.blob_len,
                         self.c.policy.classifier_count)

    cdef _load_policy_state(self, list classifiers, health):
        import os

        cdef const uint8_t[::1] view
        cdef const uint8_t* data
        cdef uint32_t n4, n6, nn, words
        cdef Py_ssize_t size
        self._classifier_data = []
        self._classifiers = <ClassifierC*> PyMem_Malloc(
            sizeof(ClassifierC) * (len(classifiers) or 1))
        if self._classifiers == NULL:
            raise MemoryError()
        for i, blob in enumerate(classifiers):
            view = blob
            size = view.shape[0]
            data = &view[0] if size else NULL
            if size < 16 or (memcmp(data, b"FDC1", 4) != 0 and memcmp(data, b"FDC2", 4) != 0):
                raise ValueError("not a fastdns classifier")
            words = 4 if data[3] == ord("2") else 3
            n4 = (<const uint32_t*> (data + 4))[0]
            n6 = (<const uint32_t*> (data + 8))[0]
            nn = (<const uint32_t*> (data + 12))[0] if words == 4 else 0
            if 16 + <uint64_t> n4 * 4 * words + <uint64_t> n6 * sizeof(RangeV6) + \
                    <uint64_t> nn * sizeof(NetworkC) != <uint64_t> size:
                raise ValueError("classifier size mismatch")
            self._classifier_data.append(blob)
            self._classifiers[i].v4 = <const uint32_t*> (data + 16)
            self._classifiers[i].v4_count = n4
            self._classifiers[i].v4_words = words
            self._classifiers[i].v6 = <const RangeV6*> (data + 16 + n4 * 4 * words)
            self._classifiers[i].v6_count = n6
            self._classifiers[i].networks = <const NetworkC*> (
                data + 16 + n4 * 4 * words + n6 * sizeof(RangeV6)) if nn else NULL
            self._classifiers[i].network_count = nn
        self.c.policy.classifiers = self._classifiers
        self.c.policy.classifier_count = len(classifiers)
        self._health = health
        if health is not None:
            self._health_view = health
            self.c.policy.health = &self._health_view[0] if self._health_view.shape[0] else NULL
            self.c.policy.health_len = self._health_view.shape[0]
        else:
            self.c.policy.health = NULL
            self.c.policy.health_len = 0
        self._rng = int.from_bytes(os.urandom(8), "little") | 1
        self.c.policy.rng = &self._rng

    def __dealloc__(self):
        PyMem_Free(self._zone_array)
        PyMem_Free(self._classifiers)

    @property
    def zones(self):
        """The zone images served, in catalog order."""
        return list(self._zones)

    @property
    def udp_max_payload(self):
        return self.c.udp_max

    cdef Py_ssize_t _answer(self, query, bint tcp, Counters counters, uint8_t* out,
                            AnswerInfo* info, client) except -1:
        """Answer ``query`` (bytes, or any buffer) into ``out``, counting into ``counters``;
        ``client``: the packed IPv4/IPv6 address it came from, or None."""
        cdef uint64_t* row = counters.row if counters is not None else NULL
        cdef const uint8_t* data
        cdef Py_ssize_t length, n
        cdef const uint8_t[::1] view
        cdef Client peer
        cdef const Client* peer_ptr = NULL
        cdef CountBatch counts
        if client is not None:
            packed = bytes(client)
            if len(packed) == 4:
                peer.family = 4
            elif len(packed) == 16:
                peer.family = 6
            else:
                raise ValueError("client must be a packed IPv4 or IPv6 address")
            memset(peer.addr, 0, 16)
            memcpy(peer.addr, <const char*> packed, len(packed))
            peer.prefix = 32 if peer.family == 4 else 128
            peer.scope = 0
            peer_ptr = &peer
        if type(query) is bytes:
            # uvloop hands datagrams over as bytes: no buffer acquisition on the common path
            data = <const uint8_t*> PyBytes_AS_STRING(query)
            length = PyBytes_GET_SIZE(query)
        else:
            view = query
            data = &view[0] if view.shape[0] else NULL
            length = view.shape[0]
        memset(&counts, 0, sizeof(counts))
        with nogil:
            n = answer_query(&self.c, data, length, tcp, out, info, peer_ptr)
            if row != NULL and not info.control:
                count_answer(counts.n, tcp, info, out, n)
            elif row != NULL:
                counts.n[C_QUERIES_TCP] += 1  # the control plane's answer is not counted here
            if row != NULL:
                count_flush(row, &counts)
        return n

    def answer(self, query, bint tcp=False, Counters counters=None, client=None):
        """The response to ``query``, or None when it gets no answer. ``client``: the packed
        address (``ipaddress.ip_address(...).packed``) it came from, for routing policies.

        ``b""`` (empty) means the control plane answers: NOTIFY, UPDATE, IXFR and, over TCP,
        AXFR and TSIG-signed queries; the caller forwards it (``fastdns.xfr.channel``)."""
        cdef uint8_t out[OUT_BUFFER]
        cdef AnswerInfo info
        cdef Py_ssize_t n = self._answer(query, tcp, counters, out, &info, client)
        if n == 0:
            return b"" if info.control else None
        return PyBytes_FromStringAndSize(<char*> out, n)

    def answer_with_info(self, query, bint tcp=False, Counters counters=None, client=None):
        """``answer`` plus what the query log needs: ``(reply, zone_index, qname_wire, qtype,
        rcode)``; rcode is -1 when the query got no answer (or goes to the control plane: reply
        ``b""``). Off the UDP hot path (TCP only)."""
        cdef uint8_t out[OUT_BUFFER]
        cdef AnswerInfo info
        cdef Py_ssize_t n = self._answer(query, tcp, counters, out, &info, client)
        reply = PyBytes_FromStringAndSize(<char*> out, n) if n else (b"" if info.control else None)
        rcode = info.rcode if info.rcode >= 0 or n == 0 else (out[3] & 0x0F)
        qname = PyBytes_FromStringAndSize(<char*> info.qname, info.qname_len) \
            if info.qname_len else b""
        return reply, info.zone, qname, info.qtype, rcode

    def answer_explained(self, query, client=None):
        """``answer`` over UDP and how a routing policy chose it: ``(reply, explanation)``,
        explanation None when no policy was evaluated, else a dict with ``zone`` (catalog
        index), ``group`` (index in that zone's image), ``class`` (the client's class or None),
        ``member`` (the chosen member or None) and ``members`` (multivalue: those chosen).
        For TestDNSAnswer; never on the serving path."""
        cdef uint8_t out[OUT_BUFFER]
        cdef AnswerInfo info
        cdef Py_ssize_t n = self._answer(query, False, None, out, &info, client)
        reply = PyBytes_FromStringAndSize(<char*> out, n) if n else None
        if info.policy.group < 0:
            return reply, None
        return reply, {
            "zone": info.zone,
            "group": info.policy.group,
            "class": None if info.policy.cls == NO_CLASS else info.policy.cls,
            "member": None if info.policy.member < 0 else info.policy.member,
            "members": [info.policy.chosen[i] for i in range(info.policy.nchosen)],
        }


def parse_query_fields(const uint8_t[::1] packet not None):
    """The hot-path parser's view of a packet, as a dict (for tests and tools).

    ``status`` is one of "ok", "drop", "formerr", "formerr-question".
    """
    cdef Query q
    cdef int r = parse_query(&q, &packet[0] if packet.shape[0] else NULL, packet.shape[0])
    status = ("ok", "drop", "formerr", "formerr-question")[r]
    out = {"status": status}
    if r in (PARSE_OK, PARSE_FORMERR_QUESTION):
        out.update(
            opcode=q.opcode, qname_wire=bytes(q.lname[:q.qname_len]), labels=q.nlabels,
            qtype=q.qtype, qclass=q.qclass, question_end=q.question_end,
            has_opt=bool(q.has_opt), udp_size=q.udp_size, edns_version=q.edns_version,
            dnssec_ok=bool(q.dnssec_ok),
        )
    return out


include "udp.pxi"
include "udp_thread.pxi"
include "udp_responder.pxi"


def _wire_to_text(bytes wire):
    import dns.name
    return dns.name.from_wire(wire, 0)[0].to_text()
