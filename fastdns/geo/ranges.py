"""Address classifiers: sorted, non-overlapping address ranges, each with a class id.

Geolocation, geoproximity, latency and IP-based routing all start by putting the client address
(the EDNS Client Subnet address, else the resolver's, RFC 7871 §7.1.1) into a class with one
binary search. The compiler builds the classifier from (network, class id) pairs that may nest;
the most specific network (the longest prefix) wins, as in a routing table. Per policy group it
then builds a table indexed by class id.

IPv4 and IPv6 are kept apart. An IPv4-mapped IPv6 address (``::ffff:0:0/96``, RFC 4291
§2.5.5.2) is looked up as the IPv4 address it carries, and a mapped network given to a builder
is stored as the IPv4 network it maps. An IPv6 network that merely contains ``::ffff:0:0/96``
(``::/8``, say) is not consulted for mapped addresses.

Two binary layouts, little-endian, entries sorted by start, ranges inclusive at both ends; IPv6
addresses are 16 bytes in network byte order so they compare with ``memcmp``:

``FDC1`` (``Classifier``)::

    header   b"FDC1", u32 v4_count, u32 v6_count, u32 0
    v4 entry u32 start, u32 end, u32 class_id                       (12 bytes)
    v6 entry 16s start, 16s end, u32 class_id, u32 0                (40 bytes)

``FDC2`` (``PrefixClassifier``, for IP-based routing) adds a table of the networks behind the
ranges, so that a lookup can honour Route 53's rule "a client prefix shorter than a configured
CIDR does not match it" (Developer Guide, "IP-based routing"): with an ECS source prefix length
L, only configured networks of prefix length <= L may match::

    header   b"FDC2", u32 v4_count, u32 v6_count, u32 network_count
    v4 entry u32 start, u32 end, u32 class_id, u32 network          (16 bytes)
    v6 entry 16s start, 16s end, u32 class_id, u32 network          (40 bytes)
    network  u32 class_id, u32 prefix_len, u32 parent               (12 bytes)

``network`` indexes the network table: the innermost configured network covering the range.
``parent`` is the next enclosing network, or ``NO_NETWORK`` (0xFFFFFFFF); prefix lengths fall
strictly along a parent chain. An entry's ``class_id`` equals its network's. Networks that
behave alike (same class, prefix length and parent) share one table row, so the ranges they
produce merge. The lookup with source prefix L (in bits of the address family)::

    i = binary search for the last entry with start <= address; miss unless end >= address
    n = entry.network
    while n != NO_NETWORK and networks[n].prefix_len > L: n = networks[n].parent
    class = networks[n].class_id if n != NO_NETWORK else no match (the "*" default)

Without ECS the lookup is ``entry.class_id``, as in FDC1.

``scope_prefix`` gives the RFC 7871 §7.2.1 SCOPE PREFIX-LENGTH of an answer that depended on
which range (or gap between ranges) the address fell in; ``Classifier.scope`` applies it.
"""

from __future__ import annotations

import bisect
import ipaddress
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "NO_NETWORK",
    "Classifier",
    "Network",
    "PrefixClassifier",
    "Range",
    "build_classifier",
    "build_prefix_classifier",
    "normalize_address",
    "normalize_network",
    "scope_prefix",
]

NO_NETWORK = 0xFFFFFFFF
_BITS = {4: 32, 6: 128}
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_MAPPED_START = int(_MAPPED.network_address)
_V4_ENTRY = struct.Struct("<III")
_V4_ENTRY2 = struct.Struct("<IIII")
_V6_TAIL = struct.Struct("<II")
_HEADER = struct.Struct("<4sIII")
_NETWORK = struct.Struct("<III")

Address = str | tuple[int, int] | ipaddress.IPv4Address | ipaddress.IPv6Address
AnyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Range:
    """Addresses ``start``..``end`` (inclusive, as integers) are in class ``class_id``.

    ``network`` is the FDC2 network-table row behind the range (``NO_NETWORK`` in FDC1).
    """

    start: int
    end: int
    class_id: int
    network: int = NO_NETWORK


@dataclass(frozen=True, slots=True)
class Network:
    """A row of the FDC2 network table (see the module docstring)."""

    class_id: int
    prefix_len: int
    parent: int = NO_NETWORK


def normalize_address(address: Address) -> tuple[int, int]:
    """``(family, integer)`` for an address; an IPv4-mapped IPv6 address gives family 4.

    ``address`` may be text, an ``ipaddress`` object, or a ``(family, integer)`` pair.
    """
    family, value, _mapped = _normalize(address)
    return family, value


def _normalize(address: Address) -> tuple[int, int, bool]:
    """``(family, integer, whether it was an IPv4-mapped IPv6 address)``."""
    if isinstance(address, tuple):
        family, value = address
    else:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            address = ipaddress.ip_address(address)
        family, value = address.version, int(address)
    if family == 6 and value >> 32 == _MAPPED_START >> 32:
        return 4, value & 0xFFFFFFFF, True
    if family not in _BITS or not 0 <= value < 1 << _BITS[family]:
        raise ValueError(f"not an IPv{family} address: {value!r}")
    return family, value, False


def normalize_network(network: AnyNetwork | str) -> tuple[int, int, int, int]:
    """``(family, start, end, prefix_len)``; an IPv4-mapped network becomes its IPv4 network."""
    net = ipaddress.ip_network(network) if isinstance(network, str) else network
    start = int(net.network_address)
    length = net.prefixlen
    size = 1 << (net.max_prefixlen - length)  # not net.num_addresses: that is slow
    if net.version == 6 and length >= 96 and start >> 32 == _MAPPED_START >> 32:
        return 4, start & 0xFFFFFFFF, (start & 0xFFFFFFFF) + size - 1, length - 96
    return net.version, start, start + size - 1, length


def scope_prefix(address: int, range_start: int, range_end: int, family: int) -> int:
    """The shortest prefix length p such that the block ``address/p`` lies in the range.

    This is the SCOPE PREFIX-LENGTH (RFC 7871 §7.2.1) of an answer that is the same for every
    address in ``[range_start, range_end]``: the answer covers ``address/p`` and no shorter
    prefix of ``address`` stays inside the range. ``address`` must lie in the range; for an
    address in no range, pass the gap between its neighbouring ranges. ``family`` is 4 or 6.

    Closed form, meant to be mirrored in C (``bit_length`` is ``bits - clz``): the block of
    2**k addresses around ``address`` starts at or after ``range_start`` exactly when
    ``address >> k != (range_start - 1) >> k``, i.e. ``k < bit_length(address ^ (range_start -
    1))``; it ends at or before ``range_end`` exactly when ``k < bit_length(address ^ (range_end +
    1))``. The largest such k gives p = bits - k. At ``range_start == 0`` (or ``range_end`` the
    top address) that side allows any k.
    """
    bits = _BITS[family]
    if not range_start <= address <= range_end:
        raise ValueError("address outside the range")
    k = bits
    if range_start > 0:
        k = min(k, (address ^ (range_start - 1)).bit_length() - 1)
    if range_end < (1 << bits) - 1:
        k = min(k, (address ^ (range_end + 1)).bit_length() - 1)
    return bits - k


def _flatten(
    items: Iterable[tuple[int, int, int, int]],
) -> list[tuple[int, int, int]]:
    """Most-specific-wins flattening of nested blocks of one family.

    ``items`` are ``(start, end, prefix_len, payload)`` of aligned CIDR blocks (any two nest or
    are disjoint), no two alike. Returns ``(start, end, payload)`` pieces in address order, each
    carrying the payload of the innermost block; gaps get no piece.
    """
    ordered = sorted(items, key=lambda item: (item[0], item[2]))  # parents before children
    pieces: list[tuple[int, int, int]] = []
    stack: list[tuple[int, int]] = []  # (end, payload) of the open blocks, innermost last
    pos = 0
    for start, end, _prefix, payload in ordered:
        while stack and stack[-1][0] < start:
            top_end, top_payload = stack.pop()
            if pos <= top_end:
                pieces.append((pos, top_end, top_payload))
                pos = top_end + 1
        if stack and pos < start:
            pieces.append((pos, start - 1, stack[-1][1]))
        pos = start
        stack.append((end, payload))
    while stack:
        top_end, top_payload = stack.pop()
        if pos <= top_end:
            pieces.append((pos, top_end, top_payload))
            pos = top_end + 1
    return pieces


def _merge(pieces: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Join adjacent pieces with the same payload."""
    out: list[tuple[int, int, int]] = []
    for start, end, payload in pieces:
        if out and out[-1][2] == payload and out[-1][1] + 1 == start:
            out[-1] = (out[-1][0], end, payload)
        else:
            out.append((start, end, payload))
    return out


def _collect(
    pairs: Iterable[tuple[AnyNetwork | str, int]],
) -> dict[int, dict[tuple[int, int, int], int]]:
    """Normalized blocks per family: {family: {(start, end, prefix_len): class_id}}."""
    blocks: dict[int, dict[tuple[int, int, int], int]] = {4: {}, 6: {}}
    for network, class_id in pairs:
        if not isinstance(class_id, int) or not 0 <= class_id < NO_NETWORK:
            raise ValueError(f"class id {class_id!r} for {network} is not a u32 below 0xFFFFFFFF")
        family, start, end, prefix_len = normalize_network(network)
        key = (start, end, prefix_len)
        previous = blocks[family].setdefault(key, class_id)
        if previous != class_id:
            raise ValueError(f"network {network} given twice, in classes {previous} and {class_id}")
    return blocks


def build_classifier(pairs: Iterable[tuple[AnyNetwork | str, int]]) -> Classifier:
    """A ``Classifier`` from ``(network, class_id)`` pairs, most specific network winning.

    The same network twice with one class is fine; with two classes it is a ``ValueError``.
    """
    blocks = _collect(pairs)
    tables = []
    for family in (4, 6):
        items = [(s, e, p, c) for (s, e, p), c in blocks[family].items()]
        tables.append([Range(s, e, c) for s, e, c in _merge(_flatten(items))])
    return Classifier(tables[0], tables[1])


def build_prefix_classifier(pairs: Iterable[tuple[AnyNetwork | str, int]]) -> PrefixClassifier:
    """A ``PrefixClassifier`` (FDC2) from ``(network, class_id)`` pairs; see the module doc."""
    blocks = _collect(pairs)
    networks: list[Network] = []
    interned: dict[Network, int] = {}

    def intern(row: Network) -> int:
        index = interned.get(row)
        if index is None:
            index = interned[row] = len(networks)
            networks.append(row)
        return index

    tables = []
    for family in (4, 6):
        # Pass 1: each block's parent is the innermost enclosing block (a stack walk in
        # parents-first order); rows are interned parents first so a parent's row exists.
        ordered = sorted(blocks[family].items(), key=lambda kv: (kv[0][0], kv[0][2]))
        row_of: dict[tuple[int, int, int], int] = {}
        stack: list[tuple[int, int, int]] = []
        for key, class_id in ordered:
            while stack and stack[-1][1] < key[0]:
                stack.pop()
            parent = row_of[stack[-1]] if stack else NO_NETWORK
            row_of[key] = intern(Network(class_id, key[2], parent))
            stack.append(key)
        items = [(s, e, p, row_of[(s, e, p)]) for (s, e, p) in blocks[family]]
        tables.append([Range(s, e, networks[n].class_id, n) for s, e, n in _merge(_flatten(items))])
    return PrefixClassifier(tables[0], tables[1], networks)


class Classifier:
    """Sorted, non-overlapping ranges per family; ``classify`` is the reference lookup."""

    magic = b"FDC1"

    def __init__(self, v4: Sequence[Range], v6: Sequence[Range]):
        self.v4 = tuple(v4)
        self.v6 = tuple(v6)
        for family, table in ((4, self.v4), (6, self.v6)):
            top = (1 << _BITS[family]) - 1
            previous_end = -1
            for entry in table:
                if not previous_end < entry.start <= entry.end <= top:
                    raise ValueError(f"IPv{family} ranges are not sorted and disjoint at {entry}")
                previous_end = entry.end
        self._starts = {4: [r.start for r in self.v4], 6: [r.start for r in self.v6]}

    def table(self, family: int) -> tuple[Range, ...]:
        return self.v4 if family == 4 else self.v6

    def find(self, address: Address) -> tuple[int, int, Range | None]:
        """``(family, integer address, the range holding it or None)``."""
        family, value = normalize_address(address)
        table = self.table(family)
        i = bisect.bisect_right(self._starts[family], value) - 1
        if i >= 0 and table[i].end >= value:
            return family, value, table[i]
        return family, value, None

    def classify(self, address: Address) -> int | None:
        """The class of ``address``, or None when no network covers it."""
        entry = self.find(address)[2]
        return entry.class_id if entry is not None else None

    def span(self, address: Address) -> tuple[int, int, int]:
        """``(family, first, last)``: the range holding ``address``, or the gap it falls in."""
        family, value, entry = self.find(address)
        if entry is not None:
            return family, entry.start, entry.end
        table = self.table(family)
        i = bisect.bisect_right(self._starts[family], value)
        first = table[i - 1].end + 1 if i > 0 else 0
        last = table[i].start - 1 if i < len(table) else (1 << _BITS[family]) - 1
        return family, first, last

    def scope(self, address: Address, source_prefix: int | None = None) -> int:
        """The SCOPE PREFIX-LENGTH for an answer chosen by this classifier's class of
        ``address``, in bits of the family the address is looked up in (IPv4 for a mapped
        address).

        With ``source_prefix`` (the query's ECS SOURCE PREFIX-LENGTH, counted like
        ``PrefixClassifier.classify`` counts it) the result is at most that: the answer depends
        only on the first ``source_prefix`` bits, since that is all the client sent. Without it
        the result is the exact coverage of the range, which may exceed the source prefix;
        RFC 7871 §7.2.1 lets a server return such a longer scope to ask for a longer source
        prefix, which is the caller's choice to make.
        """
        family, value, mapped = _normalize(address)
        _family, first, last = self.span(address)
        scope = scope_prefix(value, first, last, family)
        if source_prefix is not None:
            scope = min(scope, max(0, source_prefix - 96 if mapped else source_prefix))
        return scope

    def remap(self, class_of: Callable[[int], int | None]) -> Classifier:
        """A classifier with each class ``c`` replaced by ``class_of(c)`` (None drops it);
        neighbours that end up in one class merge. Use it to coarsen classes (for example
        locations to the codes a geolocation group needs)."""
        tables = []
        for table in (self.v4, self.v6):
            pieces = []
            for entry in table:
                new = class_of(entry.class_id)
                if new is not None:
                    pieces.append((entry.start, entry.end, new))
            tables.append([Range(s, e, c) for s, e, c in _merge(pieces)])
        return Classifier(tables[0], tables[1])

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return (self.v4, self.v6)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.v4)} IPv4 ranges, {len(self.v6)} IPv6 ranges)"

    def to_bytes(self) -> bytes:
        """The FDC1 layout (module docstring)."""
        parts = [_HEADER.pack(self.magic, len(self.v4), len(self.v6), 0)]
        parts.extend(_V4_ENTRY.pack(r.start, r.end, r.class_id) for r in self.v4)
        parts.extend(
            r.start.to_bytes(16, "big") + r.end.to_bytes(16, "big") + _V6_TAIL.pack(r.class_id, 0)
            for r in self.v6
        )
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Classifier:
        """Read an FDC1 image (``PrefixClassifier.from_bytes`` reads FDC2)."""
        _magic, n4, n6, reserved = _read_header(data, cls.magic)
        if reserved != 0:
            raise ValueError("FDC1 reserved header field is not 0")
        _expect_size(data, _HEADER.size + n4 * _V4_ENTRY.size + n6 * 40)
        offset = _HEADER.size
        v4 = [Range(*_V4_ENTRY.unpack_from(data, offset + i * 12)) for i in range(n4)]
        offset += n4 * 12
        v6 = []
        for i in range(n6):
            at = offset + i * 40
            class_id, pad = _V6_TAIL.unpack_from(data, at + 32)
            if pad != 0:
                raise ValueError("FDC1 IPv6 entry padding is not 0")
            v6.append(_v6_range(data, at, class_id))
        return cls(v4, v6)


class PrefixClassifier(Classifier):
    """A classifier that also knows the configured networks behind its ranges (FDC2).

    ``classify(address, source_prefix)`` applies the IP-based routing rule that a configured
    CIDR longer than the client's ECS source prefix does not match it.
    """

    magic = b"FDC2"

    def __init__(self, v4: Sequence[Range], v6: Sequence[Range], networks: Sequence[Network]):
        super().__init__(v4, v6)
        self.networks = tuple(networks)
        for index, row in enumerate(self.networks):
            if row.parent != NO_NETWORK and not (
                row.parent < len(self.networks)
                and self.networks[row.parent].prefix_len < row.prefix_len
            ):
                raise ValueError(f"network row {index} has a bad parent")
        for entry in self.v4 + self.v6:
            if not (
                entry.network < len(self.networks)
                and self.networks[entry.network].class_id == entry.class_id
            ):
                raise ValueError(f"range {entry} does not match its network row")

    def classify(self, address: Address, source_prefix: int | None = None) -> int | None:
        """The class of ``address``; with ``source_prefix`` (the ECS SOURCE PREFIX-LENGTH),
        only networks no longer than it match. For an IPv4-mapped address given as IPv6, the
        prefix counts IPv6 bits (96 is subtracted)."""
        entry = self.find(address)[2]
        if entry is None:
            return None
        if source_prefix is None:
            return entry.class_id
        if _normalize(address)[2]:
            source_prefix -= 96
        row = entry.network
        while row != NO_NETWORK and self.networks[row].prefix_len > source_prefix:
            row = self.networks[row].parent
        return self.networks[row].class_id if row != NO_NETWORK else None

    def remap(self, class_of: Callable[[int], int | None]) -> Classifier:
        raise TypeError("a PrefixClassifier cannot be remapped: rebuild it from its networks")

    def _key(self) -> tuple:
        return (self.v4, self.v6, self.networks)

    def to_bytes(self) -> bytes:
        """The FDC2 layout (module docstring)."""
        parts = [_HEADER.pack(self.magic, len(self.v4), len(self.v6), len(self.networks))]
        parts.extend(_V4_ENTRY2.pack(r.start, r.end, r.class_id, r.network) for r in self.v4)
        parts.extend(
            r.start.to_bytes(16, "big")
            + r.end.to_bytes(16, "big")
            + _V6_TAIL.pack(r.class_id, r.network)
            for r in self.v6
        )
        parts.extend(_NETWORK.pack(n.class_id, n.prefix_len, n.parent) for n in self.networks)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> PrefixClassifier:
        """Read an FDC2 image."""
        _magic, n4, n6, nn = _read_header(data, cls.magic)
        _expect_size(data, _HEADER.size + n4 * 16 + n6 * 40 + nn * _NETWORK.size)
        offset = _HEADER.size
        v4 = [Range(*_V4_ENTRY2.unpack_from(data, offset + i * 16)) for i in range(n4)]
        offset += n4 * 16
        v6 = []
        for i in range(n6):
            at = offset + i * 40
            class_id, network = _V6_TAIL.unpack_from(data, at + 32)
            v6.append(_v6_range(data, at, class_id, network))
        offset += n6 * 40
        networks = [Network(*_NETWORK.unpack_from(data, offset + i * 12)) for i in range(nn)]
        return cls(v4, v6, networks)


def _read_header(data: bytes, magic: bytes) -> tuple[bytes, int, int, int]:
    if len(data) < _HEADER.size:
        raise ValueError("classifier image shorter than its header")
    fields = _HEADER.unpack_from(data, 0)
    if fields[0] != magic:
        raise ValueError(f"classifier image starts with {fields[0]!r}, expected {magic!r}")
    return fields


def _expect_size(data: bytes, size: int) -> None:
    if len(data) != size:
        raise ValueError(f"classifier image is {len(data)} bytes, its header says {size}")


def _v6_range(data: bytes, at: int, class_id: int, network: int = NO_NETWORK) -> Range:
    start = int.from_bytes(data[at : at + 16], "big")
    end = int.from_bytes(data[at + 16 : at + 32], "big")
    return Range(start, end, class_id, network)
