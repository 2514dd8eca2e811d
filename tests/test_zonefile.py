"""Master file loading: record types, locations, $INCLUDE, TTLs, origins and parse errors."""

from __future__ import annotations

import re
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from fastdns.model import SourceLocation, ZoneLoadError
from fastdns.zonefile import load_zone_file, origin_from_file_name, parse_zone_file

DATA = Path(__file__).parent / "data" / "zonefiles"
GOOD = DATA / "good"
SYNTAX = DATA / "syntax"

_MARKER = re.compile(r";\s*ERROR(@0)?:\s*(.*?)\s*$")
_INCLUDE = re.compile(r"^\$INCLUDE\s+(\S+)", re.IGNORECASE)


def expected_errors(path: Path) -> list[tuple[str, int, str]]:
    """(file, line, reason part) for each ``; ERROR:`` marker in ``path`` and its includes."""
    found = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, text in enumerate(lines, start=1):
        marker = _MARKER.search(text)
        if marker:
            found.append((str(path), 0 if marker.group(1) else number, marker.group(2)))
        include = _INCLUDE.match(text)
        if include and (path.parent / include.group(1)).exists():
            found.extend(expected_errors(path.parent / include.group(1)))
    return sorted(found)


def line_of(path: Path, needle: str) -> int:
    """The number of the first line of ``path`` containing ``needle``."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


# --- record types ------------------------------------------------------------------------------

REQUIRED_TYPES = {
    "A", "AAAA", "NS", "CNAME", "SOA", "MX", "TXT", "PTR", "SRV", "CAA", "NAPTR", "DS",
    "DNSKEY", "SSHFP", "TLSA", "SVCB", "HTTPS", "RRSIG", "NSEC", "TYPE65400",
}  # fmt: skip


def test_every_supported_type_matches_dnspython():
    path = GOOD / "types.example.zone"
    zone = load_zone_file(path)
    reference = dns.zone.from_file(str(path), "types.example.", relativize=False)

    ours = {(rrset.name, int(rrset.rdtype)): rrset for rrset in zone}
    theirs = {(owner, int(rds.rdtype)): rds for owner, rds in reference.iterate_rdatasets()}
    assert ours.keys() == theirs.keys()
    for key, rdataset in theirs.items():
        assert set(ours[key].rdatas) == set(rdataset), key
        assert len(ours[key].rdatas) == len(rdataset), key
        assert ours[key].ttl == rdataset.ttl, key
    loaded_types = {dns.rdatatype.to_text(rdtype) for _owner, rdtype in ours}
    assert loaded_types >= REQUIRED_TYPES


def test_wire_round_trip_of_every_record():
    zone = load_zone_file(GOOD / "types.example.zone")
    for rrset in zone:
        for rd in rrset.rdatas:
            wire = rd.to_wire()
            back = dns.rdata.from_wire(dns.rdataclass.IN, rd.rdtype, wire, 0, len(wire))
            assert back == rd
            assert dns.rdata.from_text(dns.rdataclass.IN, rd.rdtype, rd.to_text()) == rd


def test_rfc3597_generic_rdata():
    zone = load_zone_file(GOOD / "types.example.zone")
    unknown = zone.get(name("unknown.types.example."), 65400)
    assert unknown is not None
    assert unknown.rdatas[0].to_wire() == bytes.fromhex("0a000001")
    empty = zone.get(name("empty.types.example."), 65401)
    assert empty is not None
    assert empty.rdatas[0].to_wire() == b""
    # A known type written in the generic form is that type.
    generic = zone.get(name("generic.types.example."), dns.rdatatype.A)
    assert generic is not None
    assert generic.rdatas == (rdata("A", "192.0.2.2"),)


def test_relative_names_and_generate():
    zone = load_zone_file(GOOD / "types.example.zone")
    mx = zone.get(name("types.example."), dns.rdatatype.MX)
    assert mx is not None
    assert mx.rdatas == (rdata("MX", "10 mail.types.example."), rdata("MX", "20 mx.example.net."))
    for i in (1, 2, 3):
        host = zone.get(name(f"host{i}.types.example."), dns.rdatatype.A)
        assert host is not None
        assert host.rdatas == (rdata("A", f"192.0.2.{i}"),)


# --- locations ---------------------------------------------------------------------------------


def test_record_sets_know_the_line_of_their_first_record():
    path = GOOD / "types.example.zone"
    zone = load_zone_file(path)

    def where(owner: str, rdtype: int) -> SourceLocation | None:
        rrset = zone.get(name(owner), rdtype)
        assert rrset is not None
        return rrset.source

    file = str(path)
    # A multi-line record is located at the line it starts on.
    assert where("types.example.", dns.rdatatype.SOA) == SourceLocation(
        file, line_of(path, "IN  SOA")
    )
    assert where("types.example.", dns.rdatatype.DNSKEY) == SourceLocation(
        file, line_of(path, "IN  DNSKEY")
    )
    # Several records: the first one's line.
    assert where("types.example.", dns.rdatatype.NS) == SourceLocation(
        file, line_of(path, "IN  NS      ns1")
    )
    # A line that inherits the previous owner.
    assert where("www.types.example.", dns.rdatatype.AAAA) == SourceLocation(
        file, line_of(path, "IN  AAAA    2001:db8::10")
    )
    # $GENERATE records are located at the $GENERATE line.
    assert where("host2.types.example.", dns.rdatatype.A) == SourceLocation(
        file, line_of(path, "$GENERATE 1-3")
    )


def test_include_locations_and_origins():
    path = GOOD / "include.example.zone"
    zone = load_zone_file(path)
    inc = GOOD / "include.example.inc"
    sub = GOOD / "include.example.sub.inc"
    nested = GOOD / "include.example.nested.inc"

    expected = {
        ("include.example.", "SOA"): (path, "IN  SOA"),
        ("ns1.include.example.", "A"): (inc, "ns1"),
        ("www.include.example.", "A"): (inc, "www"),
        # multi-line, owner inherited, inside an included file
        ("www.include.example.", "TXT"): (inc, '"a record"'),
        # $INCLUDE with an origin, and an include nested inside it
        ("host.sub.include.example.", "A"): (sub, "host"),
        ("deep.sub.include.example.", "TXT"): (nested, "deep"),
        # after the $INCLUDE, the including file's origin is back
        ("after.include.example.", "A"): (path, "after"),
    }
    for (owner, rdtype), (file, needle) in expected.items():
        rrset = zone.get(name(owner), dns.rdatatype.from_text(rdtype))
        assert rrset is not None, owner
        assert rrset.source == SourceLocation(str(file), line_of(file, needle)), owner
    assert len(list(zone)) == len(expected) + 1  # and the apex NS


def test_include_paths_are_relative_to_the_including_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    zone = load_zone_file(GOOD / "include.example.zone")
    assert zone.get(name("deep.sub.include.example."), dns.rdatatype.TXT) is not None

    # A relative path to the top file gives relative paths to the included ones.
    monkeypatch.chdir(GOOD.parent)
    zone = load_zone_file("good/include.example.zone")
    rrset = zone.get(name("www.include.example."), dns.rdatatype.A)
    assert rrset is not None and rrset.source is not None
    assert rrset.source.file == "good/include.example.inc"


# --- TTLs, duplicates, origins -----------------------------------------------------------------


def test_differing_ttls_use_the_minimum_and_duplicates_merge():
    zone = load_zone_file(GOOD / "ttl.example.zone")
    www = zone.get(name("www.ttl.example."), dns.rdatatype.A)
    assert www is not None
    assert www.ttl == 100
    assert www.rdatas == tuple(rdata("A", f"192.0.2.{i}") for i in (1, 2, 3))
    assert len(zone.rrsets[(www.name, dns.rdatatype.A)]) == 1


def test_origin_from_first_origin_directive():
    zone = load_zone_file(GOOD / "db.directive")
    assert zone.origin == name("directive.example.")
    assert zone.get(name("www.sub.directive.example."), dns.rdatatype.A) is not None


def test_origin_from_file_name_with_trailing_dot():
    zone = load_zone_file(GOOD / "trailing.example..zone")
    assert zone.origin == name("trailing.example.")
    assert zone.source == str(GOOD / "trailing.example..zone")


@pytest.mark.parametrize("origin", ["other.example", "other.example.", name("other.example.")])
def test_explicit_origin_wins_over_the_file_name(origin):
    zone = load_zone_file(GOOD / "ttl.example.zone", origin)
    assert zone.origin == name("other.example.")
    assert zone.get(name("www.other.example."), dns.rdatatype.A) is not None


@pytest.mark.parametrize(
    ("file_name", "origin"),
    [
        ("example.com.zone", "example.com."),
        ("example.com..zone", "example.com."),
        ("/some/dir/Example.COM.zone", "example.com."),
        ("..zone", "."),
        ("db.example.com", None),
        ("example.com.zone.bak", None),
    ],
)
def test_origin_from_file_name(file_name, origin):
    expected = None if origin is None else name(origin)
    assert origin_from_file_name(file_name) == expected


@pytest.mark.parametrize("file_name", ["a..b.zone", ".zone", f"{'x' * 64}.zone"])
def test_origin_from_bad_file_name(file_name):
    with pytest.raises(ZoneLoadError) as info:
        origin_from_file_name(file_name)
    assert [(e.file, e.line) for e in info.value.errors] == [(file_name, 0)]


def test_parse_only_keeps_what_validation_rejects():
    path = DATA / "bad" / "out-of-zone.test.zone"
    zone = parse_zone_file(path)
    stray = zone.get(name("www.example.net."), dns.rdatatype.A)
    assert stray is not None
    assert stray.source == SourceLocation(str(path), line_of(path, "www.example.net."))
    with pytest.raises(ZoneLoadError):
        load_zone_file(path)


# --- parse errors ------------------------------------------------------------------------------

SYNTAX_CASES = sorted(p for p in SYNTAX.iterdir() if p.suffix != ".inc")


def reason_matches(reason: str, marker: str) -> bool:
    """Whether ``reason`` contains the marker's text, or one of its ``a | b`` alternatives."""
    return any(part in reason for part in marker.split(" | "))


@pytest.mark.parametrize("reader", ["native", "dnspython"])
@pytest.mark.parametrize("path", SYNTAX_CASES, ids=lambda p: p.name)
def test_syntax_error_names_file_and_line(path, reader):
    expected = expected_errors(path)
    assert len(expected) == 1, "each syntax case marks exactly one error"
    with pytest.raises(ZoneLoadError) as info:
        parse_zone_file(path, reader=reader)
    errors = info.value.errors
    assert [(e.file, e.line) for e in errors] == [(file, line) for file, line, _ in expected]
    (error,) = errors
    assert reason_matches(error.reason, expected[0][2])
    # A clean reason: no "file:line:" of dnspython's own inside it.
    assert not re.search(r":\d+:", error.reason)
    assert str(error) == f"{error.file}:{error.line}: {error.reason}"


@pytest.mark.parametrize("reader", ["native", "dnspython"])
def test_missing_file(reader):
    with pytest.raises(ZoneLoadError) as info:
        load_zone_file(DATA / "no-such.example.zone", reader=reader)
    (error,) = info.value.errors
    assert (error.file, error.line) == (str(DATA / "no-such.example.zone"), 0)
    assert "cannot read" in error.reason


@pytest.mark.parametrize("reader", ["native", "dnspython"])
def test_bad_origin_argument(reader):
    with pytest.raises(ZoneLoadError) as info:
        load_zone_file(GOOD / "ttl.example.zone", "a..b", reader)
    (error,) = info.value.errors
    assert error.line == 0
    assert "bad zone origin" in error.reason


def test_unknown_reader():
    with pytest.raises(ValueError, match="unknown zone file reader"):
        parse_zone_file(GOOD / "ttl.example.zone", reader="bind")  # type: ignore[arg-type]
