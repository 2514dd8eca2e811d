"""Zone directories: good zones load, bad ones are left out and reported with file and line."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import dns.name
import dns.rdatatype

from fastdns.zonedir import check_zone_file, load_zone_dir

DATA = Path(__file__).parent / "data" / "zonefiles"

_MARKER = re.compile(r";\s*ERROR(@0)?:\s*(.*?)\s*$")


def expected_errors(directory: Path) -> list[tuple[str, int, str]]:
    """(file, line, reason part) for each ``; ERROR:`` marker in the zone files of a directory."""
    found = []
    for path in sorted(directory.glob("*.zone")):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            marker = _MARKER.search(text)
            if marker:
                found.append((str(path), 0 if marker.group(1) else number, marker.group(2)))
    return sorted(found)


def origins(zones) -> list[str]:
    return [zone.origin.to_text() for zone in zones]


def test_bad_zones_are_left_out_and_reported():
    directory = DATA / "dir"
    zones, errors = load_zone_dir(directory)
    # Canonical DNS order of the origins; notes.txt and parts/ are not zones.
    assert origins(zones) == ["2.0.192.in-addr.arpa.", "example.com.", "example.net."]
    expected = expected_errors(directory)
    assert [(e.file, e.line) for e in errors] == [(f, line) for f, line, _ in expected]
    for error, (_file, _line, part) in zip(errors, expected, strict=True):
        # "a | b": the two zone-file readers word some syntax errors differently.
        assert any(alternative in error.reason for alternative in part.split(" | "))
    # The good zones are whole, including an $INCLUDE d part under a subdirectory.
    example = zones[1]
    assert example.source == str(directory / "example.com.zone")
    mail = example.get(dns.name.from_text("mail.example.com."), dns.rdatatype.A)
    assert mail is not None and mail.source is not None
    assert mail.source.file == str(directory / "parts" / "example.com.inc")


def test_duplicate_origin_is_an_error_for_the_second_file():
    directory = DATA / "dupdir"
    zones, errors = load_zone_dir(directory)
    assert origins(zones) == ["example.com.", "other.example."]
    assert zones[0].source == str(directory / "example.com..zone")
    expected = expected_errors(directory)
    assert [(e.file, e.line) for e in errors] == [(f, line) for f, line, _ in expected]
    assert str(directory / "example.com..zone") in errors[0].reason


def test_result_does_not_depend_on_listing_order(monkeypatch):
    first = load_zone_dir(DATA / "dir")
    real_scandir = os.scandir
    listed = []

    @contextlib.contextmanager
    def reversed_scandir(path):
        with real_scandir(path) as entries:
            backwards = sorted(entries, key=lambda entry: entry.name, reverse=True)
        listed.append([entry.name for entry in backwards])
        yield iter(backwards)

    monkeypatch.setattr(os, "scandir", reversed_scandir)
    second = load_zone_dir(DATA / "dir")
    assert listed and listed[0] == sorted(listed[0], reverse=True) and len(listed[0]) > 1
    assert origins(first[0]) == origins(second[0])
    assert first[1] == second[1]
    dup = load_zone_dir(DATA / "dupdir")
    assert dup[0][0].source == str(DATA / "dupdir" / "example.com..zone")


def test_missing_directory():
    zones, errors = load_zone_dir(DATA / "no-such-dir")
    assert zones == []
    assert [(e.file, e.line) for e in errors] == [(str(DATA / "no-such-dir"), 0)]
    assert "cannot read zone directory" in errors[0].reason


def test_check_zone_file():
    assert check_zone_file(DATA / "good" / "types.example.zone") == []
    assert check_zone_file(DATA / "good" / "ttl.example.zone", "elsewhere.example.") == []
    path = DATA / "dir" / "broken.example.zone"
    lines = [str(e) for e in check_zone_file(path)]
    assert lines == [f"{path}:7: www.broken.example. has CNAME and A (RFC 2181 §10.1)"]
    path = DATA / "dir" / "unparsable.example.zone"
    assert [str(e) for e in check_zone_file(path)] == [
        f"{path}:5: bad A address 'not-an-address': not an IPv4 address"
    ]
