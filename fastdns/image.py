"""The compiled zone image: one flat, position-independent byte string per zone.

A flat image (rather than a graph of Python objects) is what the hot path reads without touching
Python, and what a later step can place in shared memory for every worker at once. The layout is
mirrored by the C structs in ``ext/_core.pxd``; ``IMAGE_VERSION`` changes whenever either does.

Layout (native byte order, every section 4-byte aligned)::

    header   magic "FDZ1", version, then (count, offset) pairs, see HEADER
    nodes    NODE records; node 0 is the trie root (the zone apex, or the DNS root for an index)
    types    TYPE_ENTRY records: (qtype -> template) per node, sorted by qtype
    tmpls    TEMPLATE records
    labels   the label of each node: one length octet, then the label lower-cased
    blob     template bodies, pointer-position lists and additional-RR offsets (u16 little-endian),
             then the routing-policy tables: per group its MEMBER records and its chains,
             then (signed zones) the NSEC3 records of the chain as self-contained wire RRs
    groups   GROUP records (the header's words 17-18: their offset and count)
    nsec3    signed zones (issue 6): NSEC3_ENTRY records sorted by hash, then one NODE_SEC
             record per node (header words 19-21: entries offset and count, node table offset)

A signed zone's templates each name their signed twin (``Template.twin``, the TEMPLATE
record's last word; 0 = none), which the hot path sends when the query has the DO bit.

The trie has one node per owner name and per empty non-terminal; a node's children are stored
contiguously, sorted in canonical DNS order (RFC 4034 §6.1: label octets compared lower-cased,
a shorter label before a longer one it prefixes), so walking labels from the root finds exact
matches, the closest encloser and the canonical predecessor.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype

MAGIC = b"FDZ1"
IMAGE_VERSION = 2
NONE = 0xFFFFFFFF

HEADER = struct.Struct("=4sI" + "II" * 5 + "I" * 2 + "I" * 4 + "I" * 4)  # see pack_image
NSEC3_ENTRY = struct.Struct("=20sIHH")  # hash, wire offset in blob, wire length, RR count
NODE_SEC = struct.Struct("=II")  # the node's own NSEC3 entry, the entry covering *.<node>
# A zone signed online: key offset and length in the blob, key tag, NSEC TTL, algorithm, denial.
ONLINE = struct.Struct("=IHHIBBH")
NODE_NSEC = struct.Struct("=II")  # compact denial: a node's NSEC type bitmap (offset, length)
DENIAL_NSEC3 = 0
DENIAL_COMPACT = 1
NODE = struct.Struct("=6IHHI")
TYPE_ENTRY = struct.Struct("=HHI")
TEMPLATE = struct.Struct("=3I8HI")
GROUP = struct.Struct("=BBHIII")  # kind, classifier, member count, members/chains offsets, classes
MEMBER = struct.Struct("=IIHH")  # template (or TMPL_POLICY | group), health, weight, flags
U32LE = struct.Struct("<I")  # chain offsets in the blob
U16LE = struct.Struct("<H")  # pointer positions and additional-RR offsets in the blob

# Node flags (mirrored in ext/_core.pxd).
NODE_CUT = 0x1  # a delegation point (NS below the apex)
NODE_APEX = 0x2  # index trie: the node is a hosted zone's apex

# Template flags: the low 4 bits are the RCODE.
TMPL_AA = 0x10
TMPL_OWNER_IS_QNAME = 0x20
TMPL_ALWAYS_TC = 0x40
# A signed twin that denies (NODATA, NXDOMAIN): the hot path appends the NSEC3 proof for the
# name it walked to (RFC 5155 §7.2).
TMPL_DENIAL = 0x80
# A type entry's or node's template number with this bit set is a policy group's index.
TMPL_POLICY = 0x80000000


@dataclass(slots=True)
class Template:
    body: bytes
    pointers: list[int]
    an: int
    ns: int
    ar: int
    ar_marks: list[int]  # body offset where each additional RR starts
    ar_required: int
    flags: int
    qname_len: int
    twin: int = 0  # signed zones: the template to send when the query has DO set


@dataclass(slots=True)
class Nsec3Tables:
    """A signed zone's NSEC3 chain for the hot path: ``entries`` in hash order as (SHA-1
    hash, wire RRs, RR count), ``per_node`` (in final node order) as (own entry, entry
    covering ``*.<node>``), NONE for names without one (occluded below a cut)."""

    entries: list[tuple[bytes, bytes, int]]
    per_node: list[tuple[int, int]]


@dataclass(slots=True)
class OnlineSigning:
    """What the hot path needs to sign online (issue 6): the signing ZSK (PKCS#8 DER; the
    snapshot memfd is private to our processes), its key tag and algorithm, the NSEC TTL, the
    denial mode, and for compact denial (RFC 9824) the NSEC type bitmap of every node (final
    node order, RFC 4034 §4.1.2 wire form)."""

    key_der: bytes
    key_tag: int
    algorithm: int
    nsec_ttl: int
    denial: int
    bitmaps: list[bytes]

    def __repr__(self) -> str:  # never the key, whatever logs an image's parts
        return f"OnlineSigning(tag {self.key_tag}, denial {self.denial})"


@dataclass(slots=True)
class Node:
    label: bytes  # lower-cased; b"" for the root
    parent: int
    flags: int = 0
    types: list[tuple[int, int]] = field(default_factory=list)  # (qtype, template index)
    default_template: int = NONE
    children: dict[bytes, int] = field(default_factory=dict)
    # filled in by layout
    first_child: int = NONE
    child_count: int = 0
    wildcard: int = NONE


def name_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """``name``'s labels lower-cased: equal for names that are equal (RFC 4343), and cheap to
    hash and compare, unlike ``dns.name.Name``."""
    return tuple(map(bytes.lower, name.labels))


def canonical_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A sort key that orders names canonically (RFC 4034 §6.1, dnspython's ``<``): the
    lower-cased labels from the root down, compared octet by octet."""
    return name_key(name)[::-1]


def wire_key(wire: bytes) -> tuple[bytes, ...]:
    """:func:`name_key` of a name given in uncompressed wire format: no ``dns.name.Name`` made
    (a catalog of 100,000 zones keys every apex on every snapshot)."""
    labels = []
    at = 0
    while True:
        length = wire[at]
        labels.append(wire[at + 1 : at + 1 + length].lower())
        if length == 0:
            return tuple(labels)
        at += 1 + length


class TrieBuilder:
    """Collects names into a label trie; ``layout`` numbers nodes breadth-first.

    Names are keyed by :func:`name_key`; ``by_key`` maps each key to its node, in the order the
    nodes were created (every node after its parent).
    """

    def __init__(self, root: dns.name.Name):
        self.root = root
        self.nodes: list[Node] = [Node(b"", NONE)]
        self.by_key: dict[tuple[bytes, ...], int] = {name_key(root): 0}

    def add(self, name: dns.name.Name) -> int:
        """The node of ``name`` (a subdomain of the root), creating it and its ancestors."""
        return self.add_key(name_key(name))

    def add_key(self, key: tuple[bytes, ...]) -> int:
        """:meth:`add` for a name given by its :func:`name_key`."""
        found = self.by_key.get(key)
        if found is not None:
            return found
        if len(key) <= 1:
            # Walked up past the root without meeting it: not a subdomain of the root.
            raise dns.name.NoParent
        parent = self.add_key(key[1:])
        label = key[0]
        index = len(self.nodes)
        self.nodes.append(Node(label, parent))
        self.nodes[parent].children[label] = index
        self.by_key[key] = index
        return index

    def layout(self) -> list[Node]:
        """Renumber breadth-first with sorted children; returns nodes in their final order."""
        nodes = self.nodes
        # Breadth-first, each node's children in label order: the children of a node get
        # consecutive numbers, starting where ``first`` records.
        order = [0]
        first = [NONE] * len(nodes)
        for old in order:  # grows while it is walked
            children = nodes[old].children
            if children:
                first[old] = len(order)
                order += [children[label] for label in sorted(children)]
        new_index = [0] * len(nodes)
        for new, old in enumerate(order):
            new_index[old] = new
        result = [nodes[old] for old in order]
        for node, old in zip(result, order, strict=True):
            node.parent = new_index[node.parent] if node.parent != NONE else NONE
            node.child_count = len(node.children)
            node.first_child = first[old]
            wildcard = node.children.get(b"*")
            node.wildcard = new_index[wildcard] if wildcard is not None else NONE
        self.by_key = {key: new_index[idx] for key, idx in self.by_key.items()}
        self.nodes = result
        return result


def implied_any(types: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A node's type table, sorted by type, without its ANY entry when that names the first
    entry's template: RFC 8482 §4.1 lets ANY be answered with one RRset, the compiler picks
    the lowest type's, and the hot path (``find_type``, ext/trie.pxi) answers an ANY the table
    lacks with the first entry. Eight bytes less per name (a million-record zone: 8 MB of every
    process that maps it). Not for a cut's table, which has no ANY (the referral answers it)."""
    for i in range(1, len(types)):
        if types[i][0] == dns.rdatatype.ANY:
            if types[i][1] == types[0][1]:
                return types[:i] + types[i + 1 :]
            break
    return types


def _align4(buf: bytearray) -> None:
    buf += b"\0" * (-len(buf) % 4)


def pack_image(
    apex: dns.name.Name,
    nodes: list[Node],
    templates: list[Template],
    groups: Sequence = (),
    nsec3: Nsec3Tables | None = None,
    online: OnlineSigning | None = None,
) -> bytes:
    """Serialise a laid-out trie, its templates, its policy groups (``fastdns.policy.
    PolicyGroup``) and a signed zone's NSEC3 tables into one image."""
    labels = bytearray()
    node_bytes = bytearray()
    type_bytes = bytearray()
    type_count = 0
    for node in nodes:
        label_off = len(labels)
        labels.append(len(node.label))
        labels += node.label
        types = sorted(node.types)
        if not node.flags & NODE_CUT:
            types = implied_any(types)
        node_bytes += NODE.pack(
            label_off,
            node.first_child,
            node.child_count,
            node.parent,
            node.wildcard,
            type_count,
            len(types),
            node.flags,
            node.default_template,
        )
        for qtype, tmpl in types:
            type_bytes += TYPE_ENTRY.pack(qtype, 0, tmpl)
        type_count += len(types)

    blob = bytearray()
    tmpl_bytes = bytearray()
    for t in templates:
        body_off = len(blob)
        blob += t.body
        ptr_off = len(blob)
        for p in t.pointers:
            blob += U16LE.pack(p)
        mark_off = len(blob)
        for m in t.ar_marks:
            blob += U16LE.pack(m)
        tmpl_bytes += TEMPLATE.pack(
            body_off,
            ptr_off,
            mark_off,
            len(t.body),
            len(t.pointers),
            t.an,
            t.ns,
            t.ar,
            t.ar_required,
            t.flags,
            t.qname_len,
            t.twin,
        )
    group_bytes = _pack_groups(groups, blob)
    nsec3_bytes = bytearray()
    nsec3_count = 0
    if nsec3 is not None:
        for digest, wire, rr_count in nsec3.entries:
            nsec3_bytes += NSEC3_ENTRY.pack(digest, len(blob), len(wire), rr_count)
            blob += wire
        nsec3_count = len(nsec3.entries)
        node_sec_at = len(nsec3_bytes)
        for match, wild_cover in nsec3.per_node:
            nsec3_bytes += NODE_SEC.pack(match, wild_cover)
    online_off = 0
    if online is not None:
        _align4(blob)
        online_off = len(blob)
        blob += bytes(ONLINE.size)
        ONLINE.pack_into(
            blob, online_off, len(blob), len(online.key_der), online.key_tag,
            online.nsec_ttl, online.algorithm, online.denial, 0,
        )  # fmt: skip
        blob += online.key_der
        if online.denial == DENIAL_COMPACT:
            node_sec_at = 0
            for bitmap in online.bitmaps:
                nsec3_bytes += NODE_NSEC.pack(len(blob), len(bitmap))
                blob += bitmap
    apex_wire = apex.canonicalize().to_wire()

    out = bytearray(HEADER.size)
    sections = []
    for count, data in (
        (len(nodes), node_bytes),
        (type_count, type_bytes),
        (len(templates), tmpl_bytes),
        (len(labels), labels),
        (len(blob), blob),
    ):
        _align4(out)
        sections.append((count, len(out)))
        out += data
    _align4(out)
    groups_off = len(out)
    out += group_bytes
    apex_off = len(out)
    out += apex_wire
    _align4(out)
    nsec3_off = node_sec_off = 0
    if nsec3_bytes:
        nsec3_off = len(out) if nsec3_count else 0
        node_sec_off = len(out) + node_sec_at
        out += nsec3_bytes
    HEADER.pack_into(
        out,
        0,
        MAGIC,
        IMAGE_VERSION,
        *[v for pair in sections for v in pair],
        apex_off,
        len(apex_wire),
        len(apex.labels) - 1,
        len(out),
        groups_off if groups else 0,
        len(groups),
        nsec3_off,
        nsec3_count,
        node_sec_off,
        online_off,
    )
    return bytes(out)


def member_signing_data(rdtype: int, ttl: int, canonical_rdatas: Sequence[bytes]) -> bytes:
    """A multivalue member's records as the hot path signs them: type, count, TTL, then each
    RDATA in canonical form (RFC 4034 §6.2) after its length, all in network order."""
    out = bytearray(struct.pack("!HHI", rdtype, len(canonical_rdatas), ttl))
    for rdata in canonical_rdatas:
        out += struct.pack("!H", len(rdata)) + rdata
    return bytes(out)


def _pack_groups(groups: Sequence, blob: bytearray) -> bytes:
    """Members and chains of every group appended to ``blob``; returns the GROUP records.

    Members are 4-byte aligned (the hot path reads them as structs). A chain is a u16 count
    and u16 member indices, little-endian; each group has one u32 offset per class plus one
    for "no class" pointing at its chain. Equal chains are stored once per group: a
    geolocation group has one class per country or state but only a few distinct chains.
    """
    out = bytearray()
    for group in groups:
        _align4(blob)
        members_off = len(blob)
        for tmpl, health, weight in group.members:
            blob += MEMBER.pack(tmpl, health, weight, 0)
        chains_off = class_count = 0
        if group.signing:
            # A multivalue group signed online: chains_off locates each member's records.
            chains_off = len(blob)
            blob += bytes(4 * len(group.signing))
            for k, data in enumerate(group.signing):
                U32LE.pack_into(blob, chains_off + 4 * k, len(blob))
                blob += data
            _align4(blob)
        elif group.chains:
            chains_off = len(blob)
            class_count = len(group.chains) - 1
            blob += bytes(4 * len(group.chains))
            stored: dict[tuple[int, ...], int] = {}
            for k, chain in enumerate(group.chains):
                key = tuple(chain)
                at = stored.get(key)
                if at is None:
                    at = stored[key] = len(blob)
                    blob += U16LE.pack(len(chain))
                    for member in chain:
                        blob += U16LE.pack(member)
                U32LE.pack_into(blob, chains_off + 4 * k, at)
        out += GROUP.pack(
            group.kind, group.classifier, len(group.members), members_off, chains_off, class_count
        )
    return bytes(out)


def build_index(apexes: list[bytes]) -> bytes:
    """An image whose trie holds only zone apexes (each in uncompressed wire format);
    node.default_template = zone number.

    The last index built is kept and given again for the same apexes in the same order: a
    change to a zone's records leaves the zones as they were, and each new catalog of 100,000
    zones would otherwise build the same index again (about half a second, in the supervisor
    and in every worker)."""
    # Keyed by a digest of the apexes, not by a copy of them (100,000 names: some 7 MB in
    # every process); wire names end with their root label, so their concatenation is
    # unambiguous.
    key = hashlib.sha256(b"".join(apexes)).digest() + len(apexes).to_bytes(8, "little")
    last = _last_index
    if last is not None and last[0] == key:
        return last[1]
    index = _build_index(apexes)
    globals()["_last_index"] = (key, index)
    return index


_last_index: tuple[bytes, bytes] | None = None


def _build_index(apexes: list[bytes]) -> bytes:
    trie = TrieBuilder(dns.name.root)
    for number, apex in enumerate(apexes):
        idx = trie.add_key(wire_key(apex))
        trie.nodes[idx].flags |= NODE_APEX
        trie.nodes[idx].default_template = number
    nodes = trie.layout()
    return pack_image(dns.name.root, nodes, [])
