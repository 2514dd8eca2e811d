"""A small MaxMind DB writer for tests (MaxMind DB File Format Specification v2.0).

``write_mmdb(path, [(network, record), ...])`` writes a database that ``maxminddb`` opens and
looks up like a GeoLite2 file, so tests can make databases with exactly the networks and
fields they need. The three parts of the format, in file order:

1. The binary search tree: one node per bit of the address; each node has two records (bit 0,
   bit 1), big-endian, ``record_size`` bits each (24, 28 or 32). A record holds a node number,
   ``node_count`` for "no data", or ``node_count + 16 + offset`` for data at ``offset`` in the
   data section.
2. Sixteen zero bytes, then the data section: each record's value in the format's type system
   (control byte: 3 type bits, 5 size bits; extended types in a second byte).
3. ``b"\\xab\\xcd\\xefMaxMind.com"`` and the metadata map.

Networks may nest; the most specific one wins (a leaf that gains a more specific network below
it is split into a node whose both records keep the old data). An IPv6 database keeps IPv4
networks at ``::a.b.c.d/96+n``, as MaxMind does, and with ``ipv4_aliases`` points
``::ffff:0:0/96`` at that subtree (MaxMind also aliases 2002::/16; not needed here). Values may
be dict, list, str, bytes, bool, float (written as double), and int (uint16/uint32/uint64 when
non-negative and small enough, else int32). Identical records are stored once.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"

# Type numbers of the spec.
POINTER, UTF8, DOUBLE, BYTES, UINT16, UINT32, MAP, INT32, UINT64, UINT128, ARRAY = range(1, 12)
BOOLEAN, FLOAT = 14, 15


class _Node:
    __slots__ = ("records",)

    def __init__(self, left: object = None, right: object = None):
        # Each record: None (no data), a _Node, or ("data", key) for a data item.
        self.records: list[object] = [left, right]


def _control(type_number: int, size: int) -> bytes:
    """Control byte(s) for a field of ``type_number`` with payload ``size``."""
    if size < 29:
        first, extra = size, b""
    elif size < 29 + 256:
        first, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        first, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        first, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_number <= 7:
        return bytes([(type_number << 5) | first]) + extra
    return bytes([first, type_number - 7]) + extra


def encode(value: object) -> bytes:
    """One value in the data-section encoding."""
    if isinstance(value, bool):
        return _control(BOOLEAN, int(value))
    if isinstance(value, str):
        raw = value.encode()
        return _control(UTF8, len(raw)) + raw
    if isinstance(value, bytes):
        return _control(BYTES, len(value)) + value
    if isinstance(value, float):
        return _control(DOUBLE, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        if value < 0:
            if value < -(2**31):
                raise ValueError(f"{value} does not fit an int32")
            return _control(INT32, 4) + struct.pack(">i", value)
        type_number = UINT16 if value < 2**16 else UINT32 if value < 2**32 else UINT64
        if value >= 2**64:
            type_number = UINT128
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")  # 0 has an empty payload
        return _control(type_number, len(raw)) + raw
    if isinstance(value, Mapping):
        body = b"".join(encode(str(key)) + encode(item) for key, item in value.items())
        return _control(MAP, len(value)) + body
    if isinstance(value, list | tuple):
        return _control(ARRAY, len(value)) + b"".join(encode(item) for item in value)
    raise TypeError(f"cannot encode {type(value).__name__} in a MaxMind DB")


def _insert(root: _Node, bits: int, value: int, prefix_len: int, key: object) -> None:
    """Put data ``key`` at the network (value, prefix_len) of a ``bits``-bit tree."""
    node = root
    for depth in range(prefix_len):
        bit = (value >> (bits - 1 - depth)) & 1
        if depth == prefix_len - 1:
            node.records[bit] = key
            return
        child = node.records[bit]
        if not isinstance(child, _Node):
            child = _Node(child, child)  # None stays empty; data is pushed down to both halves
            node.records[bit] = child
        node = child


def _find(root: _Node, bits: int, value: int, prefix_len: int) -> _Node:
    """The node at the end of the path of (value, prefix_len), made if missing."""
    node = root
    for depth in range(prefix_len):
        bit = (value >> (bits - 1 - depth)) & 1
        child = node.records[bit]
        if not isinstance(child, _Node):
            child = _Node(child, child)
            node.records[bit] = child
        node = child
    return node


def write_mmdb(
    path: str | Path,
    networks: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | str, object]],
    *,
    ip_version: int = 6,
    record_size: int = 24,
    ipv4_aliases: bool = True,
    database_type: str = "fastdns-test",
    languages: tuple[str, ...] = ("en",),
) -> Path:
    """Write a MaxMind DB of ``(network, record)`` pairs to ``path`` and return the path."""
    if ip_version not in (4, 6) or record_size not in (24, 28, 32):
        raise ValueError("ip_version must be 4 or 6 and record_size 24, 28 or 32")
    bits = 32 if ip_version == 4 else 128
    items = []
    for network, record in networks:
        net = ipaddress.ip_network(network)
        value, prefix_len = int(net.network_address), net.prefixlen
        if net.version == 4 and ip_version == 6:
            prefix_len += 96  # IPv4 lives at ::/96 in an IPv6 tree
        elif net.version == 6 and ip_version == 4:
            raise ValueError(f"{net} in an IPv4 database")
        if prefix_len == 0:
            raise ValueError("a /0 network cannot be stored (the root is a node)")
        items.append((prefix_len, value, record))

    # Data section: each distinct record once, in order of first use.
    data = bytearray()
    offsets: dict[bytes, int] = {}
    root = _Node()
    for prefix_len, value, record in sorted(items, key=lambda item: item[0]):  # parents first
        raw = encode(record)
        if raw not in offsets:
            offsets[raw] = len(data)
            data += raw
        _insert(root, bits, value, prefix_len, ("data", offsets[raw]))

    aliased: _Node | None = None
    if ip_version == 6 and ipv4_aliases:
        ipv4_root = _find(root, bits, 0, 96)
        mapped = 0xFFFF << 32  # ::ffff:0:0, whose 96th bit (bit 95) is the last 1
        _find(root, bits, mapped, 95).records[(mapped >> 32) & 1] = ipv4_root
        aliased = ipv4_root

    # Number the nodes breadth-first (an aliased node keeps its first number).
    order: list[_Node] = []
    number: dict[int, int] = {}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        if id(node) in number:
            continue
        number[id(node)] = len(order)
        order.append(node)
        queue.extend(r for r in node.records if isinstance(r, _Node))
    node_count = len(order)
    if aliased is not None:
        assert id(aliased) in number

    def record_value(record: object) -> int:
        if record is None:
            return node_count
        if isinstance(record, _Node):
            return number[id(record)]
        return node_count + 16 + record[1]  # type: ignore[index]

    tree = bytearray()
    limit = 1 << record_size
    for node in order:
        left, right = (record_value(r) for r in node.records)
        if max(left, right) >= limit:
            raise ValueError(f"record_size {record_size} is too small for this database")
        if record_size == 24:
            tree += left.to_bytes(3, "big") + right.to_bytes(3, "big")
        elif record_size == 28:
            middle = ((left >> 24) << 4) | (right >> 24)
            tree += (left & 0xFFFFFF).to_bytes(3, "big") + bytes([middle])
            tree += (right & 0xFFFFFF).to_bytes(3, "big")
        else:
            tree += left.to_bytes(4, "big") + right.to_bytes(4, "big")

    metadata = {
        "node_count": _Typed(UINT32, node_count),
        "record_size": _Typed(UINT16, record_size),
        "ip_version": _Typed(UINT16, ip_version),
        "database_type": database_type,
        "languages": list(languages),
        "binary_format_major_version": _Typed(UINT16, 2),
        "binary_format_minor_version": _Typed(UINT16, 0),
        "build_epoch": _Typed(UINT64, int(time.time())),
        "description": {"en": "fastdns test database"},
    }
    out = Path(path)
    out.write_bytes(
        bytes(tree) + b"\0" * 16 + bytes(data) + METADATA_MARKER + _encode_meta(metadata)
    )
    return out


class _Typed:
    """An integer that must be written with a given type (the metadata's are fixed)."""

    def __init__(self, type_number: int, value: int):
        self.type_number = type_number
        self.value = value


def _encode_meta(value: object) -> bytes:
    if isinstance(value, _Typed):
        raw = value.value.to_bytes((value.value.bit_length() + 7) // 8, "big")
        return _control(value.type_number, len(raw)) + raw
    if isinstance(value, Mapping):
        body = b"".join(encode(str(k)) + _encode_meta(v) for k, v in value.items())
        return _control(MAP, len(value)) + body
    return encode(value)
