"""Zone validation: each rule against marked zone files, plus properties of random zones."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fastdns.model import RecordSet, SourceLocation, Zone, ZoneError, ZoneLoadError
from fastdns.validate import validate_zone
from fastdns.zonefile import load_zone_file, parse_zone_file

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "zonefiles"

_MARKER = re.compile(r";\s*ERROR(@0)?:\s*(.*?)\s*$")
_INCLUDE = re.compile(r"^\$INCLUDE\s+(\S+)", re.IGNORECASE)


def expected_errors(path: Path) -> list[tuple[str, int, str]]:
    """(file, line, reason part) for each ``; ERROR:`` marker in ``path`` and its includes."""
    found = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        marker = _MARKER.search(text)
        if marker:
            found.append((str(path), 0 if marker.group(1) else number, marker.group(2)))
        include = _INCLUDE.match(text)
        if include:
            found.extend(expected_errors(path.parent / include.group(1)))
    return sorted(found)


def assert_errors_match(errors: list[ZoneError], expected: list[tuple[str, int, str]]) -> None:
    assert [(e.file, e.line) for e in errors] == [(f, line) for f, line, _ in expected]
    for error, (_file, _line, part) in zip(errors, expected, strict=True):
        assert part in error.reason, (error, part)


# --- each rule, in files, at the right line ----------------------------------------------------

BAD_CASES = sorted((DATA / "bad").glob("*.zone"))


@pytest.mark.parametrize("path", BAD_CASES, ids=lambda p: p.name)
def test_rule_errors_name_file_and_line(path):
    expected = expected_errors(path)
    assert expected, "each bad case marks its errors"
    parse_zone_file(path)  # parses: the problems are for validation
    with pytest.raises(ZoneLoadError) as info:
        load_zone_file(path)
    errors = info.value.errors
    assert errors == sorted(errors, key=lambda e: (e.file, e.line))
    assert_errors_match(errors, expected)


GOOD_ZONES = [
    *sorted((DATA / "good").glob("*.zone")),
    *sorted((ROOT / "tests" / "data" / "zones").glob("*.zone")),
    *sorted((ROOT / "examples" / "zones").glob("*.zone")),
]


@pytest.mark.parametrize("path", GOOD_ZONES, ids=lambda p: p.name)
def test_good_zones_validate(path):
    assert validate_zone(parse_zone_file(path)) == []


# --- zones built in code -----------------------------------------------------------------------

ORIGIN = dns.name.from_text("prop.example.")
SOA_TEXT = "ns1.prop.example. hostmaster.prop.example. 1 7200 3600 1209600 300"


def rrset(owner: dns.name.Name | str, rdtype: str, *texts: str, **fields) -> RecordSet:
    if isinstance(owner, str):
        owner = dns.name.from_text(owner, ORIGIN)
    rds = tuple(dns.rdata.from_text(dns.rdataclass.IN, rdtype, t, ORIGIN, False) for t in texts)
    return RecordSet(owner, dns.rdatatype.from_text(rdtype), 300, rds, **fields)


def base_zone(source: str | None = "prop.example.zone") -> Zone:
    zone = Zone(ORIGIN, source=source)
    zone.add(rrset("@", "SOA", SOA_TEXT))
    zone.add(rrset("@", "NS", "ns1.prop.example."))
    return zone


def test_errors_without_a_location_point_at_the_zone_source():
    zone = base_zone()
    zone.add(rrset("www", "A", "192.0.2.1"))
    zone.add(rrset("www", "CNAME", "x.example."))
    assert validate_zone(zone) == [
        ZoneError("prop.example.zone", 0, "www.prop.example. has CNAME and A (RFC 2181 §10.1)")
    ]
    zone.source = None
    assert [(e.file, e.line) for e in validate_zone(zone)] == [("prop.example.", 0)]


def test_located_error_uses_the_record_sets_location():
    zone = base_zone()
    zone.add(rrset("old", "DNAME", "new.example.", source=SourceLocation("part.inc", 7)))
    assert [(e.file, e.line) for e in validate_zone(zone)] == [("part.inc", 7)]


def test_missing_ns_points_at_the_soa():
    zone = Zone(ORIGIN, source="z")
    zone.add(rrset("@", "SOA", SOA_TEXT, source=SourceLocation("z", 3)))
    (error,) = validate_zone(zone)
    assert (error.file, error.line) == ("z", 3)
    assert "no NS records at the zone apex" in error.reason


def test_cname_limit_is_per_routing_policy_candidate():
    zone = base_zone()
    zone.add(rrset("www", "CNAME", "a.example.", set_identifier="one"))
    zone.add(rrset("www", "CNAME", "b.example.", set_identifier="two"))
    assert validate_zone(zone) == []
    zone.add(rrset("www", "CNAME", "c.example.", "d.example.", set_identifier="three"))
    (error,) = validate_zone(zone)
    assert "has 2 CNAME records" in error.reason


def test_glue_at_and_below_a_delegation_is_allowed():
    zone = base_zone()
    zone.add(rrset("deleg", "NS", "deleg.prop.example.", "ns.deleg.prop.example."))
    zone.add(rrset("deleg", "A", "192.0.2.1"))
    zone.add(rrset("deleg", "DS", "12345 13 2 " + "ab" * 32))
    zone.add(rrset("ns.deleg", "AAAA", "2001:db8::1"))
    assert validate_zone(zone) == []


def test_root_zone():
    zone = Zone(dns.name.root, source="root.zone")
    zone.add(rrset(dns.name.root, "SOA", SOA_TEXT))
    zone.add(rrset(dns.name.root, "NS", "a.root-servers.net."))
    zone.add(rrset(dns.name.from_text("com."), "NS", "a.gtld-servers.net."))
    zone.add(rrset(dns.name.from_text("a.gtld-servers.net."), "A", "192.5.6.30"))
    zone.add(rrset(dns.name.from_text("www.com."), "TXT", '"occluded"'))
    (error,) = validate_zone(zone)
    assert error.reason.startswith("www.com. TXT is occluded by the delegation at com.")


# --- properties of random zones ----------------------------------------------------------------

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
_relative = st.lists(_label, min_size=1, max_size=3).map(
    lambda labels: dns.name.from_text(".".join(labels), ORIGIN)
)
_DATA_TYPES = {
    "A": st.integers(1, 254).map(lambda i: f"192.0.2.{i}"),
    "AAAA": st.integers(1, 0xFFFF).map(lambda i: f"2001:db8::{i:x}"),
    "TXT": _label.map(lambda s: f'"{s}"'),
    "MX": st.integers(0, 100).map(lambda p: f"{p} mail.example.net."),
    "SRV": st.integers(0, 100).map(lambda p: f"{p} 0 443 host.example.net."),
}


def _covered(owner: dns.name.Name, cuts: list[dns.name.Name]) -> bool:
    return any(owner.is_subdomain(cut) for cut in cuts)


@st.composite
def valid_zones(draw) -> Zone:
    """Random zones that keep every rule: apex SOA/NS, data, CNAMEs alone at their names,
    delegations with DS and glue, and nothing else at or below a delegation."""
    zone = base_zone()
    ttl = draw(st.integers(0, 86400))
    cuts: list[dns.name.Name] = []
    for cut in sorted(draw(st.sets(_relative, max_size=3)), key=len):
        if not _covered(cut, cuts):
            cuts.append(cut)
            zone.add(rrset(cut, "NS", f"ns.{cut}", "ns.example.net."))
            zone.add(rrset(dns.name.from_text("ns", cut), "A", "192.0.2.53"))
            if draw(st.booleans()):
                zone.add(rrset(cut, "DS", "12345 13 2 " + "ab" * 32))
    names = [n for n in draw(st.sets(_relative, max_size=12)) if not _covered(n, cuts)]
    for owner in names:
        if draw(st.integers(0, 4)) == 0:
            zone.add(rrset(owner, "CNAME", "target.example.net."))
            continue
        for rdtype in draw(st.sets(st.sampled_from(sorted(_DATA_TYPES)), min_size=1)):
            texts = draw(st.sets(_DATA_TYPES[rdtype], min_size=1, max_size=3))
            data = rrset(owner, rdtype, *sorted(texts))
            data.ttl = ttl
            zone.add(data)
    return zone


def _contents(zone: Zone) -> dict:
    return {(rrset.name, int(rrset.rdtype)): (rrset.ttl, frozenset(rrset.rdatas)) for rrset in zone}


@given(valid_zones())
def test_valid_random_zones_validate_and_round_trip_through_a_file(zone):
    assert validate_zone(zone) == []
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "prop.example.zone")
        with open(path, "w", encoding="utf-8") as f:
            for rrset in zone:
                for rd in rrset.rdatas:
                    f.write(f"{rrset.name} {rrset.ttl} IN {rrset.rdtype.name} {rd.to_text()}\n")
        loaded = load_zone_file(path)
    assert loaded.origin == ORIGIN
    assert _contents(loaded) == _contents(zone)


@given(valid_zones(), st.data())
def test_cname_beside_data_always_fails(zone, data):
    owners = sorted(
        {rs.name for rs in zone if rs.name != ORIGIN and rs.rdtype != dns.rdatatype.CNAME}
    )
    assume(owners)
    owner = data.draw(st.sampled_from(owners))
    zone.add(rrset(owner, "CNAME", "elsewhere.example.net."))
    reasons = [e.reason for e in validate_zone(zone)]
    assert any(r.startswith(f"{owner} has CNAME and ") for r in reasons), reasons


_OCCLUDED_DATA = {"TXT": '"x"', "MX": "10 mx.example.net.", "CNAME": "x.example.net."}


@given(valid_zones(), _relative, st.sampled_from(sorted(_OCCLUDED_DATA)))
def test_data_below_a_delegation_always_fails(zone, below, rdtype):
    cuts = sorted({rs.name for rs in zone if rs.rdtype == dns.rdatatype.NS and rs.name != ORIGIN})
    if not cuts:
        zone.add(rrset("deleg", "NS", "ns.example.net."))
        cuts = [dns.name.from_text("deleg", ORIGIN)]
    owner = below.relativize(ORIGIN).concatenate(cuts[0])
    zone.add(rrset(owner, rdtype, _OCCLUDED_DATA[rdtype]))
    reasons = [e.reason for e in validate_zone(zone)]
    assert any(r.startswith(f"{owner} {rdtype} is occluded by the delegation at") for r in reasons)
