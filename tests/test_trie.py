"""The compiled label trie (``ZoneImage.lookup``) against a simple model: a sorted set of names.

Random sets of names under an origin are compiled into a zone (an A record at each name, NS at
the names chosen as zone cuts, SOA and NS at the apex). For random query names the model — every
name and every ancestor of one, compared in canonical DNS order (RFC 4034 §6.1), implemented
here independently of the extension — must agree with the trie walk on whether the name exists,
its closest encloser, its canonical predecessor, and the zone cut that stops the walk.
"""

from __future__ import annotations

import random

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.model import RecordSet, Zone

Labels = tuple[bytes, ...]  # a name below the origin, leftmost label first, as written
Key = tuple[bytes, ...]  # canonical key: labels right to left, lower-cased


# -- the model ---------------------------------------------------------------------------------


def canonical_key(labels: Labels) -> Key:
    """RFC 4034 §6.1: compare the most significant (rightmost) labels first; labels as octet
    strings with A-Z folded to a-z (and nothing else: RFC 4343); a missing label sorts first.
    Python's tuple and bytes ordering are exactly that once the labels are reversed."""
    return tuple(_ascii_lower(label) for label in reversed(labels))


def _ascii_lower(label: bytes) -> bytes:
    return bytes(c + 0x20 if 0x41 <= c <= 0x5A else c for c in label)


class TrieModel:
    """Every node of the zone (owner names, their ancestors up to the apex), sorted."""

    def __init__(self, names: list[Labels], cuts: set[Labels]):
        self.nodes: set[Key] = {()}
        for labels in names:
            key = canonical_key(labels)
            for depth in range(1, len(key) + 1):
                self.nodes.add(key[:depth])
        self.cuts = {canonical_key(c) for c in cuts}
        self.sorted = sorted(self.nodes)

    def predecessor(self, key: Key) -> Key:
        return max(k for k in self.sorted if k < key)

    def lookup(self, labels: Labels):
        """What the walk from the apex down must find: (exact, encloser, predecessor, cut)."""
        key = canonical_key(labels)
        encloser: Key = ()
        for depth in range(1, len(key) + 1):
            prefix = key[:depth]
            if prefix not in self.nodes:
                return False, encloser, self.predecessor(key), None
            encloser = prefix
            if prefix in self.cuts:
                # Nothing below a zone cut is authoritative data: the walk stops there.
                return prefix == key, prefix, prefix, prefix
        return True, key, key, None


def as_labels(key: Key | None) -> list[bytes] | None:
    """A model key in ``ZoneImage.lookup``'s form: labels below the apex, leftmost first."""
    return None if key is None else list(reversed(key))


# -- zones -------------------------------------------------------------------------------------

SOA_TEXT = "ns.invalid. hostmaster.invalid. 1 7200 3600 1209600 300"


def _rdata(rdtype: str, text: str):
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)


def build_zone(origin: dns.name.Name, names: list[Labels], cuts: set[Labels]) -> Zone:
    zone = Zone(origin)
    zone.add(RecordSet(origin, dns.rdatatype.SOA, 3600, (_rdata("SOA", SOA_TEXT),)))
    zone.add(RecordSet(origin, dns.rdatatype.NS, 3600, (_rdata("NS", "ns.invalid."),)))
    for labels in names:
        owner = dns.name.Name(labels + origin.labels)
        if labels in cuts:
            zone.add(RecordSet(owner, dns.rdatatype.NS, 3600, (_rdata("NS", "ns.invalid."),)))
        else:
            zone.add(RecordSet(owner, dns.rdatatype.A, 3600, (_rdata("A", "192.0.2.1"),)))
    return zone


def fits(labels: Labels, origin: dns.name.Name) -> bool:
    return sum(1 + len(x) for x in labels) + len(origin.to_wire()) <= 255


def name_wire(labels: Labels, origin: dns.name.Name) -> bytes:
    return dns.name.Name(labels + origin.labels).to_wire()


# -- strategies ----------------------------------------------------------------------------------

# Octets whose order is easy to get wrong: '-' < '0' < 'A' < 'Z' < '_' (0x5F) < 'a' < 0xC1 <
# 0xFF; mixed case (only A-Z fold); '*' (the wildcard label, a plain label to the trie); 0x00.
ALPHABET = b"aAbBzZ-09_*\x00\xc1\xe1\xff."
FIXED_LABELS = [b"*", b"a", b"A", b"ab", b"aB", b"Ab", b"a-b", b"_tcp", b"\x5f", b"\xff", b"a" * 63]

label_st = st.one_of(
    st.sampled_from(FIXED_LABELS),
    st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=4).map(bytes),
)
relative_st = st.lists(label_st, min_size=1, max_size=5).map(tuple)
ORIGINS = ["example.", "Zone-1.Test.", "a.b.c.d.e.f.", "."]


def swap_case(labels: Labels) -> Labels:
    return tuple(label.swapcase() for label in labels)  # bytes.swapcase is ASCII only


def random_label(rng) -> bytes:
    if rng.random() < 0.4:
        return rng.choice(FIXED_LABELS)
    return bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4)))


@st.composite
def zone_and_queries(draw):
    """An origin, names below it (some of them cuts) and query names inside the zone.

    Names are drawn by hypothesis (so failures shrink to a small zone); the many query names
    come from a seeded generator drawn by hypothesis, which is much cheaper per name.
    """
    origin = dns.name.from_text(draw(st.sampled_from(ORIGINS)))
    names = [n for n in draw(st.lists(relative_st, max_size=25)) if fits(n, origin)]
    cuts = set(draw(st.sets(st.sampled_from(names), max_size=3))) if names else set()
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    queries: list[Labels] = [()]  # the apex itself
    for _ in range(40):
        kind = rng.randrange(4)
        if names and kind == 0:
            queries.append(rng.choice(names))
        elif names and kind == 1:
            # an existing name, below it, or one of its ancestors, in another case
            base = rng.choice(names)
            extra = tuple(random_label(rng) for _ in range(rng.randint(0, 2)))
            queries.append(swap_case(extra + base[rng.randrange(len(base)) :]))
        else:
            queries.append(tuple(random_label(rng) for _ in range(rng.randint(1, 5))))
    queries = [q for q in queries if fits(q, origin)]
    return origin, names, cuts, queries


# -- tests ---------------------------------------------------------------------------------------


def check_lookup(origin: dns.name.Name, names: list[Labels], cuts: set[Labels], queries) -> None:
    image = _core.ZoneImage(compile_zone(build_zone(origin, names, cuts)))
    model = TrieModel(names, cuts)
    for query in queries:
        exact, encloser, predecessor, cut = model.lookup(query)
        expected = (exact, as_labels(encloser), as_labels(predecessor), as_labels(cut))
        got = image.lookup(name_wire(query, origin))
        assert got == expected, (origin.to_text(), query)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone_and_queries())
def test_lookup_agrees_with_sorted_model(case) -> None:
    check_lookup(*case)


@settings(max_examples=50, deadline=None)
@given(st.lists(relative_st, min_size=2, max_size=30))
def test_model_order_is_dnspython_canonical_order(names) -> None:
    """The test's own canonical comparison agrees with dnspython's (also RFC 4034 §6.1)."""
    origin = dns.name.from_text("example.")
    names = [n for n in names if fits(n, origin)]
    ours = sorted(names, key=canonical_key)
    theirs = sorted(names, key=lambda n: dns.name.Name(n + origin.labels))
    assert [canonical_key(n) for n in ours] == [canonical_key(n) for n in theirs]


EXAMPLE = dns.name.from_text("example.")
HAND_NAMES: list[Labels] = [
    (b"a", b"b", b"c"),  # b.c and c are empty non-terminals
    (b"A",),
    (b"Z",),
    (b"_",),
    (b"z",),
    (b"\xc1",),
    (b"deleg",),
    (b"ns", b"deleg"),  # glue below the cut
    (b"*", b"wild"),
    (b"x", b"*", b"wild"),
]
HAND_CUTS = {(b"deleg",)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ((b"A", b"B", b"C"), (True, [b"a", b"b", b"c"], [b"a", b"b", b"c"], None)),
        ((b"b", b"c"), (True, [b"b", b"c"], [b"b", b"c"], None)),  # empty non-terminal
        ((b"zz", b"b", b"c"), (False, [b"b", b"c"], [b"a", b"b", b"c"], None)),
        ((b"0", b"b", b"c"), (False, [b"b", b"c"], [b"b", b"c"], None)),
        ((b"b",), (False, [], [b"a"], None)),
        # 'Z' is folded to 'z' (0x7A), so nothing sorts between the apex and '_' (0x5F) ...
        ((b"^",), (False, [], [], None)),
        ((b"`",), (False, [], [b"_"], None)),
        ((b"y",), (False, [], [b"x", b"*", b"wild"], None)),
        # ... and 0xC1 is not folded (RFC 4343: ASCII only), so it is not 0xE1.
        ((b"\xc0",), (False, [], [b"z"], None)),
        ((b"\xe1",), (False, [], [b"\xc1"], None)),
        ((b"deleg",), (True, [b"deleg"], [b"deleg"], [b"deleg"])),
        ((b"ns", b"deleg"), (False, [b"deleg"], [b"deleg"], [b"deleg"])),
        ((b"x", b"y", b"DELEG"), (False, [b"deleg"], [b"deleg"], [b"deleg"])),
        ((b"any", b"wild"), (False, [b"wild"], [b"x", b"*", b"wild"], None)),
        ((b"x", b"*", b"wild"), (True, [b"x", b"*", b"wild"], [b"x", b"*", b"wild"], None)),
        ((b"y", b"*", b"wild"), (False, [b"*", b"wild"], [b"x", b"*", b"wild"], None)),
        ((b"\xff",), (False, [], [b"\xc1"], None)),
        ((), (True, [], [], None)),
    ],
)
def test_hand_picked_lookups(query: Labels, expected) -> None:
    image = _core.ZoneImage(compile_zone(build_zone(EXAMPLE, HAND_NAMES, HAND_CUTS)))
    assert image.lookup(name_wire(query, EXAMPLE)) == expected
    model = TrieModel(HAND_NAMES, HAND_CUTS)
    exact, encloser, predecessor, cut = model.lookup(query)
    assert (exact, as_labels(encloser), as_labels(predecessor), as_labels(cut)) == expected


def test_nested_cut_stops_at_the_first() -> None:
    names = [(b"a",), (b"b", b"a"), (b"c", b"b", b"a")]
    cuts = {(b"a",), (b"b", b"a")}
    image = _core.ZoneImage(compile_zone(build_zone(EXAMPLE, names, cuts)))
    assert image.lookup(name_wire((b"c", b"b", b"a"), EXAMPLE)) == (False, [b"a"], [b"a"], [b"a"])


def test_origin_property_and_names_outside() -> None:
    image = _core.ZoneImage(compile_zone(build_zone(EXAMPLE, HAND_NAMES, HAND_CUTS)))
    assert image.origin == "example."
    with pytest.raises(ValueError):
        image.lookup(b"\x00")  # the root is above the apex
    with pytest.raises(ValueError):
        image.lookup(b"\x03www\xc0\x0c")  # not a plain wire name


@pytest.mark.parametrize(
    "text", [".", "Example.COM.", "a.b.c.d.e.", "\\042.w.test.", "x\\255\\000y.test.", "Z."]
)
def test_wire_key_is_the_name_key_of_the_wire_name(text) -> None:
    from fastdns.image import name_key, wire_key

    name = dns.name.from_text(text)
    assert wire_key(name.to_wire()) == name_key(name)


def test_a_catalog_refuses_two_zones_whose_origins_differ_only_in_case() -> None:
    one = compile_zone(build_zone(dns.name.from_text("case.test."), [], set()))
    other = compile_zone(build_zone(dns.name.from_text("CASE.Test."), [], set()))
    with pytest.raises(ValueError, match="two zones with the same origin"):
        _core.Catalog([one, other])
    catalog = _core.Catalog([one, compile_zone(build_zone(EXAMPLE, [], set()))])
    assert [zone.origin for zone in catalog.zones] == ["case.test.", EXAMPLE.to_text()]


def test_canonical_key_sorts_as_dnspython_compares() -> None:
    from fastdns.image import canonical_key

    rng = random.Random(5)
    alphabet = [b"a", b"B", b"z", b"-", b"0", b"*", b"\x00", b"\xff", b"Aa", b"ab", b""]
    names = [dns.name.root]
    for _ in range(400):
        labels = [b"".join(rng.choices(alphabet, k=rng.randint(1, 3))) or b"x"
                  for _ in range(rng.randint(1, 4))]  # fmt: skip
        names.append(dns.name.Name([*labels, b""]))
    assert sorted(names, key=canonical_key) == sorted(names)


def test_the_index_is_built_again_only_when_the_apexes_change() -> None:
    """build_index keeps its last index for the same apexes (a change to a zone's records
    leaves the catalog's zones as they were); other apexes, or the same in another order, get
    their own, and a catalog answers from either as it should."""
    from fastdns.image import _build_index, build_index

    names = [dns.name.from_text(t) for t in ("a.test.", "b.test.", "c.example.")]
    apexes = [n.to_wire().lower() for n in names]
    first = build_index(apexes)
    assert build_index(list(apexes)) is first
    assert first == _build_index(apexes)
    swapped = build_index([apexes[1], apexes[0], apexes[2]])
    assert swapped is not first and swapped == _build_index([apexes[1], apexes[0], apexes[2]])
    fewer = build_index(apexes[:2])
    assert fewer == _build_index(apexes[:2]) and build_index(apexes) is not first
    images = [compile_zone(build_zone(name, [], set())) for name in names]
    for order in (images, images[::-1], images):
        catalog = _core.Catalog(order)  # the index of one order, then the other, then again
        for name in names:
            query = dns.message.make_query(name, "SOA")
            response = dns.message.from_wire(catalog.answer(query.to_wire()))
            assert response.answer[0].name == name
