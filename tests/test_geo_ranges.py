"""fastdns.geo.ranges: classifiers against a brute-force model, their binary layouts, and the
RFC 7871 scope prefix against an exhaustive search on small address spaces.

The model of a classifier is the routing-table rule itself: of the configured networks that
contain the address, the longest prefix wins (for FDC2 with an ECS source prefix L, only
networks of prefix length <= L count). IPv4-mapped IPv6 addresses are IPv4 addresses.
"""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdns.geo.ranges import (
    NO_NETWORK,
    Classifier,
    Network,
    PrefixClassifier,
    Range,
    build_classifier,
    build_prefix_classifier,
    normalize_address,
    scope_prefix,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- strategies: networks that nest often (few base addresses, many prefix lengths) -----------


@st.composite
def nested_networks(draw, version: int) -> list[tuple[ipaddress._BaseNetwork, int]]:
    bits = 32 if version == 4 else 128
    make = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    bases = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=4))
    if version == 6 and draw(st.booleans()):
        bases.append((0xFFFF << 32) | draw(st.integers(0, 2**32 - 1)))  # IPv4-mapped space
    out = {}
    for _ in range(draw(st.integers(0, 25))):
        base = draw(st.sampled_from(bases))
        jitter = draw(st.integers(0, 255)) << draw(st.integers(0, bits - 8))
        prefix = draw(st.integers(0 if version == 4 else 8, bits))
        net = make(((base ^ jitter) % (1 << bits), prefix), strict=False)
        out.setdefault(net, draw(st.integers(0, 4)))
    return list(out.items())


def probes(pairs, version: int, extra: list[int]) -> list[int]:
    """Addresses at and around every network boundary, plus some random ones."""
    top = (1 << (32 if version == 4 else 128)) - 1
    points = set(extra) | {0, top}
    for net, _ in pairs:
        first, last = int(net.network_address), int(net.broadcast_address)
        points |= {first, last, max(first - 1, 0), min(last + 1, top)}
    return sorted(points)


def flat(pairs) -> list[tuple[int, int, int, int, int]]:
    """(family, first, last, prefix length, class), IPv4-mapped IPv6 networks as IPv4."""
    out = []
    for net, class_id in pairs:
        first, last, length, family = (
            int(net.network_address),
            int(net.broadcast_address),
            net.prefixlen,
            net.version,
        )
        if family == 6 and length >= 96 and first >> 32 == 0xFFFF:
            family, first, last, length = 4, first & 0xFFFFFFFF, last & 0xFFFFFFFF, length - 96
        out.append((family, first, last, length, class_id))
    return out


def combine(*groups) -> list[tuple[ipaddress._BaseNetwork, int]]:
    """The pairs of all groups, minus any that repeat an earlier network once IPv4-mapped IPv6
    is read as IPv4 (the builder refuses one network in two classes)."""
    seen, out = set(), []
    for pairs in groups:
        for pair in pairs:
            key = flat([pair])[0][:4]
            if key not in seen:
                seen.add(key)
                out.append(pair)
    return out


def model(nets, family: int, value: int, source_prefix: int | None = None) -> int | None:
    """Longest prefix among ``flat`` networks holding (family, value), no longer than the
    source prefix when one is given."""
    best = None
    for fam, first, last, length, class_id in nets:
        if fam != family or not first <= value <= last:
            continue
        if (source_prefix is None or length <= source_prefix) and (
            best is None or length > best[0]
        ):
            best = (length, class_id)
    return None if best is None else best[1]


def address(version: int, value: int) -> str:
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return str(make(value))


# -- the FDC1 classifier -------------------------------------------------------------------------


@SETTINGS
@given(
    v4=nested_networks(4),
    v6=nested_networks(6),
    extra4=st.lists(st.integers(0, 2**32 - 1), max_size=5),
    extra6=st.lists(st.integers(0, 2**128 - 1), max_size=5),
)
def test_classifier_matches_longest_prefix_model(v4, v6, extra4, extra6):
    v6 = combine(v4, v6)[len(v4) :]
    classifier = build_classifier(v4 + v6)
    nets = flat(v4 + v6)
    for version in (4, 6):
        table = classifier.table(version)
        # Sorted, disjoint, and no two neighbours that touch share a class (fully merged).
        for left, right in itertools.pairwise(table):
            assert left.end < right.start
            assert not (left.end + 1 == right.start and left.class_id == right.class_id)
    for version, pairs, extra in ((4, v4, extra4), (6, v6, extra6)):
        for value in probes(pairs, version, extra):
            family, key = normalize_address((version, value))  # mapped IPv6 -> IPv4
            expected = model(nets, family, key)
            assert classifier.classify(address(version, value)) == expected
            assert classifier.classify((version, value)) == expected
            # The span is the range or the gap holding the address, constant in class.
            span_family, first, last = classifier.span((version, value))
            assert span_family == family and first <= key <= last
            assert model(nets, family, first) == expected == model(nets, family, last)
    for value in probes(v4, 4, extra4):
        mapped = ipaddress.IPv6Address((0xFFFF << 32) | value)
        assert classifier.classify(mapped) == model(nets, 4, value)
    assert Classifier.from_bytes(classifier.to_bytes()) == classifier


@SETTINGS
@given(
    v4=nested_networks(4),
    v6=nested_networks(6),
    extra4=st.lists(st.integers(0, 2**32 - 1), max_size=5),
    data=st.data(),
)
def test_prefix_classifier_honours_the_source_prefix(v4, v6, extra4, data):
    v6 = combine(v4, v6)[len(v4) :]
    classifier = build_prefix_classifier(v4 + v6)
    assert PrefixClassifier.from_bytes(classifier.to_bytes()) == classifier
    nets = flat(v4 + v6)
    for version, pairs, extra in ((4, v4, extra4), (6, v6, [])):
        bits = 32 if version == 4 else 128
        edges = {0, bits} | {n.prefixlen for n, _ in pairs} | {n.prefixlen - 1 for n, _ in pairs}
        lengths = data.draw(st.lists(st.sampled_from(sorted(edges - {-1})), max_size=6))
        for value in probes(pairs, version, extra):
            family, key = normalize_address((version, value))
            assert classifier.classify((version, value)) == model(nets, family, key)
            for length in lengths:
                # A mapped address given as IPv6 counts its source prefix in IPv6 bits.
                in_family = length - 96 if family != version else length
                got = classifier.classify(address(version, value), length)
                assert got == model(nets, family, key, in_family), (value, length)


def test_classifier_example_and_layout():
    classifier = build_classifier(
        [
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.2.0/24", 1),
            ("2001:db8::/32", 3),
            ("::ffff:192.0.2.0/120", 4),  # stored as 192.0.2.0/24
        ]
    )
    assert [(str(ipaddress.IPv4Address(r.start)), r.class_id) for r in classifier.v4] == [
        ("10.0.0.0", 1),
        ("10.1.0.0", 2),
        ("10.1.2.0", 1),
        ("10.1.3.0", 2),
        ("10.2.0.0", 1),
        ("192.0.2.0", 4),
    ]
    assert classifier.classify("192.0.2.9") == 4
    assert classifier.classify("::ffff:10.1.2.3") == 1
    assert classifier.classify("11.0.0.0") is None
    assert classifier.classify("2001:db8:ffff::") == 3
    data = classifier.to_bytes()
    assert data[:4] == b"FDC1"
    assert int.from_bytes(data[4:8], "little") == 6 and int.from_bytes(data[8:12], "little") == 1
    assert len(data) == 16 + 6 * 12 + 40
    v6 = data[16 + 6 * 12 :]
    assert v6[:16] == ipaddress.IPv6Address("2001:db8::").packed
    assert v6[16:32] == ipaddress.IPv6Address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff").packed
    assert v6[32:40] == (3).to_bytes(4, "little") + bytes(4)


def test_prefix_classifier_layout_and_shared_rows():
    classifier = build_prefix_classifier(
        [("10.0.0.0/8", 0), ("10.1.2.0/24", 1), ("10.1.3.0/24", 1), ("2001:db8::/32", 0)]
    )
    # The two /24s behave alike (class 1, /24, parent 10/8): one row, one merged range.
    assert classifier.networks == (
        Network(0, 8, NO_NETWORK),
        Network(1, 24, 0),
        Network(0, 32, NO_NETWORK),
    )
    assert [(r.class_id, r.network) for r in classifier.v4] == [(0, 0), (1, 1), (0, 0)]
    assert classifier.v4[1].end - classifier.v4[1].start == 511
    data = classifier.to_bytes()
    assert data[:4] == b"FDC2" and len(data) == 16 + 3 * 16 + 1 * 40 + 3 * 12
    assert classifier.classify("10.1.3.7", 24) == 1
    assert classifier.classify("10.1.3.0", 23) == 0  # the /24 is longer than the client's /23
    assert classifier.classify("::ffff:10.1.3.0", 96 + 23) == 0
    assert classifier.classify("::ffff:10.1.3.0", 96 + 24) == 1


def test_same_network_in_two_classes_is_an_error():
    with pytest.raises(ValueError, match="given twice"):
        build_classifier([("10.0.0.0/8", 1), ("10.0.0.0/8", 2)])
    assert len(build_classifier([("10.0.0.0/8", 1), ("10.0.0.0/8", 1)])) == 1


def test_remap_merges_and_drops():
    classifier = build_classifier([("10.0.0.0/24", 0), ("10.0.1.0/24", 1), ("10.0.2.0/24", 2)])
    merged = classifier.remap(lambda c: None if c == 2 else 7)
    assert merged.v4 == (Range(0x0A000000, 0x0A0001FF, 7),)
    assert merged.classify("10.0.2.1") is None


def test_bad_images_are_refused():
    good = build_classifier([("10.0.0.0/8", 1)]).to_bytes()
    with pytest.raises(ValueError, match="expected"):
        Classifier.from_bytes(b"FDC2" + good[4:])
    with pytest.raises(ValueError, match="bytes"):
        Classifier.from_bytes(good + b"\0")
    with pytest.raises(ValueError, match="sorted"):
        Classifier([Range(5, 9, 0), Range(9, 12, 1)], [])


def test_normalize_address():
    assert normalize_address("::ffff:1.2.3.4") == (4, 0x01020304)
    assert normalize_address("1.2.3.4") == (4, 0x01020304)
    assert normalize_address((6, 1)) == (6, 1)


# -- scope_prefix ---------------------------------------------------------------------------


def brute_scope(addr: int, first: int, last: int, bits: int) -> int:
    """The definition: the shortest p whose block addr/p lies inside [first, last]."""
    for p in range(bits + 1):
        size = 1 << (bits - p)
        low = addr & ~(size - 1)
        if first <= low and low + size - 1 <= last:
            return p
    raise AssertionError("unreachable: the single address always fits")


@pytest.mark.parametrize("bits", [4, 6])
def test_scope_prefix_exhaustive_small(bits, monkeypatch):
    # The implementation reads the width from the family table; give it small widths.
    import fastdns.geo.ranges as ranges

    monkeypatch.setitem(ranges._BITS, 4, bits)
    size = 1 << bits
    for first in range(size):
        for last in range(first, size):
            for addr in range(first, last + 1):
                assert scope_prefix(addr, first, last, 4) == brute_scope(addr, first, last, bits)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_scope_prefix_random_wide(data):
    bits = data.draw(st.sampled_from([32, 128]))
    a, b = sorted(data.draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=2, max_size=2)))
    addr = data.draw(st.sampled_from([a, b, (a + b) // 2]))
    family = 4 if bits == 32 else 6
    assert scope_prefix(addr, a, b, family) == brute_scope(addr, a, b, bits)


def test_scope_examples():
    classifier = build_classifier([("10.0.0.0/8", 1), ("10.1.2.0/24", 2)])
    assert classifier.scope("10.1.2.3") == 24
    assert classifier.scope("10.200.0.1") == 9  # 10.128.0.0/9 avoids 10.1.2.0/24
    assert classifier.scope("10.1.3.0") == 24  # 10.1.3.0/24 lies between the /24 and 10.2/15
    assert classifier.scope("0.0.0.1") == 5  # the gap 0.0.0.0-9.255.255.255 holds 0/5
    assert classifier.scope("::1") == 0  # no IPv6 ranges: one gap, the whole space
    assert classifier.scope("10.1.2.0", 20) == 20  # clamped to the ECS source prefix
    assert classifier.scope("10.200.0.0", 24) == 9
    assert classifier.scope("::ffff:10.1.2.0", 96 + 20) == 20
    assert scope_prefix(0, 0, 2**32 - 1, 4) == 0
    with pytest.raises(ValueError):
        scope_prefix(5, 6, 9, 4)
