"""The native zone-file compiler (fastdns._zcompile) against the reference (fastdns.compile).

The differential rule: for a zone file, ``compile_columns`` on the scanner's columns gives
either the very image ``compile_zone(load_zone_file(path))`` gives (byte for byte: the same
trie, the same templates in the same order, so every query -- each (name, type), ANY, names
below every node, wildcard matches, names below delegations, CNAME chains -- is answered
identically), or no image and a reason, in which case fastdns.nativezone takes the reference
path. A zone the reference rejects is never compiled natively. Inputs: every zone file of the
test corpus (tests/data) and random zones built from the shapes that change answers:
delegations with in-domain and sibling glue, wildcards, CNAME chains (into wildcards, cuts,
missing names, loops, out of the zone), MX/NS/SRV additional data, duplicates, TTL
disagreements, mixed case, and the validation mistakes the native checks must catch.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import dns.name
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdns._native import _core
from fastdns._zcompile import NATIVE_TYPES, compile_columns
from fastdns._zscanner import scan_zone_file
from fastdns.compile import compile_zone
from fastdns.model import ZoneLoadError
from fastdns.nativezone import ZoneFileModel, compile_zone_file
from fastdns.server import ZoneLoadAhead, load_zones
from fastdns.zonefile import load_zone_file, origin_from_file_name

DATA = Path(__file__).resolve().parent / "data"


def reference(path: Path, origin: dns.name.Name) -> bytes | None:
    """The reference image, or None when the reference rejects the file."""
    try:
        return compile_zone(load_zone_file(path, origin))
    except ZoneLoadError:
        return None


def native(path: Path, origin: dns.name.Name) -> tuple[bytes | None, str | None]:
    scanned = scan_zone_file(path, origin)
    image, reason, *_ = compile_columns(scanned, origin.to_wire())
    return image, reason


def check(path: Path, origin: dns.name.Name) -> str:
    """The rule above for one file; "native", "fallback" or "rejected"."""
    expected = reference(path, origin)
    try:
        image, reason = native(path, origin)
    except Exception:
        assert expected is None  # a syntax error: both readers reject it
        return "rejected"
    if expected is None:
        assert image is None, f"{path}: compiled natively a zone the reference rejects"
        return "rejected"
    if image is None:
        assert reason
        return "fallback"
    assert image == expected, f"{path}: native image differs from the reference"
    return "native"


def corpus_origin(path: Path) -> dns.name.Name | None:
    try:
        return origin_from_file_name(path)
    except ZoneLoadError:
        return None


# Every zone file of the corpus whose name gives an origin (the others test zone directories).
CORPUS = [p for p in sorted(DATA.rglob("*.zone")) if corpus_origin(p) is not None]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(DATA)))
def test_corpus_zone_compiles_as_the_reference_does(path):
    check(path, corpus_origin(path))


def test_corpus_is_mostly_compiled_natively():
    # The differential test above would pass vacuously if every zone fell back.
    outcomes = [check(p, corpus_origin(p)) for p in CORPUS]
    assert outcomes.count("native") >= 15
    assert "fallback" in outcomes  # tests/data/zonefiles/good/types.example.zone: NSEC3PARAM


def test_fallback_names_the_type(tmp_path):
    path = tmp_path / "f.test.zone"
    path.write_text(
        "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n@ 0 NSEC3PARAM 1 0 0 -\n"
    )
    image, reason = native(path, dns.name.from_text("f.test."))
    assert image is None and reason == "type 51 is not compiled natively"
    assert 51 not in NATIVE_TYPES and 1 in NATIVE_TYPES and 65400 in NATIVE_TYPES


def test_native_types_are_what_dnspython_keeps_as_written():
    """NATIVE_TYPES is computed from dnspython's module lists, not by importing every rdata
    class: the same set as asking dnspython type by type."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    from fastdns._zcompile import _KNOWN

    expected = {
        t
        for t in range(1, 65536)
        if not dns.rdatatype.is_metatype(t)
        and dns.rdata.get_rdata_class(dns.rdataclass.IN, t) is dns.rdata.GenericRdata
    } | set(_KNOWN)
    assert expected == NATIVE_TYPES


# -- random zones --------------------------------------------------------------------------------

ORIGIN = "Rnd.Test."
LABELS = ["a", "B", "c", "www", "mail", "*", "sub", "Deleg", "x"]
ADDRESSES = ["192.0.2.1", "192.0.2.2", "198.51.100.7"]


@st.composite
def names(draw) -> str:
    depth = draw(st.integers(0, 3))
    labels = [draw(st.sampled_from(LABELS)) for _ in range(depth)]
    return ".".join(labels) + "." + ORIGIN if labels else ORIGIN


@st.composite
def targets(draw) -> str:
    return draw(st.one_of(names(), st.sampled_from(["out.example.", "ns.Other.test."])))


@st.composite
def records(draw) -> str:
    owner = draw(names())
    ttl = draw(st.sampled_from([60, 300, 3600]))
    kind = draw(
        st.sampled_from(
            ["A", "A", "AAAA", "NS", "CNAME", "MX", "SRV", "TXT", "DS", "CAA", "RRSIG", "NSEC", "X"]
        )
    )
    data = {
        "A": lambda: draw(st.sampled_from(ADDRESSES)),
        "AAAA": lambda: draw(st.sampled_from(["2001:db8::1", "2001:DB8::2"])),
        "NS": lambda: draw(targets()),
        "CNAME": lambda: draw(targets()),
        "MX": lambda: f"{draw(st.integers(0, 20))} {draw(targets())}",
        "SRV": lambda: f"1 2 {draw(st.integers(1, 9))} {draw(targets())}",
        "TXT": lambda: draw(st.sampled_from(['"v=spf1 -all"', '"a" "b"', '""'])),
        "DS": lambda: "12345 13 2 " + "ab" * 32,
        "CAA": lambda: '0 issue "ca.example"',
        "RRSIG": lambda: (
            f"A 13 3 3600 20300101000000 20240101000000 {draw(st.integers(1, 3))} "
            f"{draw(st.sampled_from([ORIGIN, ORIGIN.lower()]))} AAECAwQ="
        ),
        "NSEC": lambda: f"{draw(names())} A NS RRSIG NSEC",
        "X": lambda: draw(
            st.sampled_from(
                [
                    "TYPE65400 \\# 2 abcd",
                    "HINFO cpu os",
                    "LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m",
                    'HTTPS 1 . alpn="h3,h2" port=443',
                ]
            )
        ),
    }[kind]()
    if kind == "X":
        return f"{owner} {ttl} {data}"
    return f"{owner} {ttl} {kind} {data}"


@st.composite
def zone_texts(draw) -> str:
    head = [
        f"{ORIGIN} 3600 SOA ns1.{ORIGIN} hostmaster.{ORIGIN} 1 7200 3600 1209600 "
        f"{draw(st.sampled_from([300, 7200]))}",
        f"{ORIGIN} 3600 NS ns1.{ORIGIN}",
        f"ns1.{ORIGIN} 3600 A 192.0.2.53",
    ]
    body = draw(st.lists(records(), min_size=1, max_size=25))
    return "\n".join(head + body) + "\n"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=zone_texts())
def test_random_zone_compiles_as_the_reference_does(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("rnd") / "rnd.test.zone"
    path.write_text(text)
    # Every type here is compiled natively: a valid zone must not fall back (a native check
    # stricter than fastdns.validate would show up as a fallback).
    assert check(path, dns.name.from_text(ORIGIN)) != "fallback"


def test_root_zone(tmp_path):
    path = tmp_path / "..zone"
    path.write_text(
        ". 86400 SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400\n"
        ". 518400 NS a.root-servers.net.\n"
        "a.root-servers.net. 518400 A 198.41.0.4\n"
        "com. 172800 NS a.gtld-servers.net.\n"
        "a.gtld-servers.net. 172800 A 192.5.6.30\n"
        "*.wild. 300 TXT w\n"
    )
    assert check(path, dns.name.root) == "native"


# -- the loader ------------------------------------------------------------------------------------

PLAIN = """$ORIGIN plain.test.
@ 3600 SOA ns1 hostmaster 7 7200 3600 1209600 300
@ 3600 NS ns1
ns1 3600 A 192.0.2.53
www 300 A 192.0.2.1
alias 300 CNAME www
"""


def test_zone_file_served_natively_keeps_no_model_until_asked(tmp_path):
    path = tmp_path / "plain.test.zone"
    path.write_text(PLAIN)
    origin = dns.name.from_text("plain.test.")
    compiled = compile_zone_file(str(path), origin)
    assert compiled.image == compile_zone(load_zone_file(path))
    assert (compiled.record_sets, compiled.serial) == (5, 7)
    model = compiled.model
    assert isinstance(model, ZoneFileModel)
    assert model.soa.rdatas[0].serial == 7 and model.soa.ttl == 3600
    assert model.materialized().rrsets == load_zone_file(path).rrsets
    assert model.soa == load_zone_file(path).soa
    # The file changed and was not reloaded: its records are not the served ones.
    path.write_text(PLAIN.replace(" 7 7200", " 8 7200"))
    del compiled
    with pytest.raises(ZoneLoadError, match="changed since serial 7"):
        ZoneFileModel(origin, str(path), model.soa).materialized()


def test_load_zones_uses_the_native_path_and_falls_back(tmp_path):
    (tmp_path / "plain.test.zone").write_text(PLAIN)
    (tmp_path / "types.example.zone").write_text(
        (DATA / "zonefiles" / "good" / "types.example.zone").read_text()
    )
    broken = PLAIN.replace("plain.test.", "broken.test.") + "alias 300 A 192.0.2.9\n"
    (tmp_path / "broken.test.zone").write_text(broken)
    load = load_zones(tmp_path)
    plain = load.zones[dns.name.from_text("plain.test.")]
    types = load.zones[dns.name.from_text("types.example.")]
    assert isinstance(plain.zone, ZoneFileModel)
    assert types.zone is not None and not isinstance(types.zone, ZoneFileModel)
    # The broken zone's errors are the reference validator's, with file and line.
    assert load.errors == [
        f"{tmp_path / 'broken.test.zone'}:6: alias.broken.test. has CNAME and A (RFC 2181 §10.1)"
    ]
    catalog = _core.Catalog([plain.image, types.image])
    assert catalog is not None


def test_a_load_started_ahead_gives_what_load_zones_gives(tmp_path, monkeypatch):
    (tmp_path / "plain.test.zone").write_text(PLAIN)
    broken = PLAIN.replace("plain.test.", "broken.test.") + "alias 300 A 192.0.2.9\n"
    (tmp_path / "broken.test.zone").write_text(broken)
    ahead = ZoneLoadAhead(tmp_path).result()
    now = load_zones(tmp_path)
    assert ahead.errors == now.errors and len(ahead.errors) == 1
    assert ahead.zones.keys() == now.zones.keys() == {dns.name.from_text("plain.test.")}
    assert [z.image for z in ahead.zones.values()] == [z.image for z in now.zones.values()]

    def fails(zone_dir):
        raise PermissionError(f"{zone_dir}: no access")

    # A load that fails raises where the supervisor takes its result, as load_zones would.
    monkeypatch.setattr("fastdns.server.load_zones", fails)
    with pytest.raises(PermissionError, match="no access"):
        ZoneLoadAhead(tmp_path).result()


def test_a_large_load_logs_a_summary_and_each_zone_at_debug(caplog):
    from fastdns.server import ZONE_LINES_MAX, ServedZone, ZoneLoad, log_load

    def load(count: int) -> ZoneLoad:
        zones = {}
        for i in range(count):
            origin = dns.name.from_text(f"z{i}.test.")
            zones[origin] = ServedZone(origin, b"", 10, 7, f"z{i}.test.zone")
        return ZoneLoad(zones, ["z.zone:3: a broken record"], [zones[origin]])

    caplog.set_level(logging.INFO, logger="fastdns")
    log_load(load(ZONE_LINES_MAX + 1))
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [f"serving {ZONE_LINES_MAX + 1} zones, {10 * (ZONE_LINES_MAX + 1)} record sets "
                     "(a line per zone at debug level)"]  # fmt: skip
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING", "INFO"]

    caplog.clear()
    log_load(load(3))
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "zone z0.test.: serving 10 record sets, serial 7") in lines
    assert ("WARNING", "zone z2.test.: the new version failed, still serving serial 7") in lines
    assert len(lines) == 4  # the error, z0, z1 and the kept z2

    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="fastdns")
    log_load(load(ZONE_LINES_MAX + 1))
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == ZONE_LINES_MAX


def test_a_reload_reads_only_the_files_that_changed(tmp_path, monkeypatch):
    # Files written just now count as settled here; their changes below change their size
    # or come after a pause, so the coarse file clock cannot hide them.
    monkeypatch.setattr("fastdns.server.STAMP_SETTLE_NS", 0)
    (tmp_path / "plain.test.zone").write_text(PLAIN)
    other = PLAIN.replace("plain.test.", "other.test.")
    (tmp_path / "other.test.zone").write_text(other)
    (tmp_path / "inc.test.zone").write_text(
        PLAIN.replace("plain.test.", "inc.test.") + f"$INCLUDE {tmp_path / 'part.inc'}\n"
    )
    (tmp_path / "part.inc").write_text("extra 300 A 192.0.2.77\n")
    first = load_zones(tmp_path).zones
    plain, other_origin, inc = (
        dns.name.from_text(n) for n in ("plain.test.", "other.test.", "inc.test.")
    )

    (tmp_path / "other.test.zone").write_text(other.replace(" 7 7200", " 80 7200"))
    (tmp_path / "part.inc").write_text("extra 300 A 192.0.2.78\n")
    second = load_zones(tmp_path, first).zones
    assert second[plain] is first[plain]  # unchanged: not read again
    assert second[other_origin].serial == 80 and second[other_origin] is not first[other_origin]
    # A zone with $INCLUDE is read again: its own file does not say whether a part changed.
    assert second[inc] is not first[inc] and second[inc].image != first[inc].image

    time.sleep(0.05)
    os.utime(tmp_path / "plain.test.zone")  # the same bytes, a new change time: read again
    third = load_zones(tmp_path, second).zones
    assert third[plain] is not second[plain] and third[plain].image == second[plain].image
    assert third[other_origin] is second[other_origin]

    # A file changed within STAMP_SETTLE_NS is never taken as unchanged.
    monkeypatch.setattr("fastdns.server.STAMP_SETTLE_NS", 60 * 10**9)
    fresh = load_zones(tmp_path, third).zones
    assert all(fresh[origin] is not third[origin] for origin in fresh)
    assert load_zones(tmp_path, fresh).zones[plain] is not fresh[plain]


def test_a_reload_drops_removed_zones_keeps_broken_ones_and_adds_new_ones(tmp_path, monkeypatch):
    # load_zones keys a reload by file and canonical key, not by dns.name.Name: what it serves
    # afterwards must be what the directory says, in canonical order.
    monkeypatch.setattr("fastdns.server.STAMP_SETTLE_NS", 0)
    for name in ("b.test.", "a.test.", "c.test."):
        (tmp_path / f"{name}zone").write_text(PLAIN.replace("plain.test.", name))
    first = load_zones(tmp_path)
    a, b, c, d = (dns.name.from_text(n) for n in ("a.test.", "b.test.", "c.test.", "d.test."))
    assert list(first.zones) == [a, b, c]

    (tmp_path / "a.test.zone").unlink()
    (tmp_path / "b.test.zone").write_text(PLAIN.replace("plain.test.", "b.test.") + "bad A x\n")
    (tmp_path / "d.test.zone").write_text(PLAIN.replace("plain.test.", "d.test."))
    second = load_zones(tmp_path, first.zones)
    assert list(second.zones) == [c, d, b]  # canonical order, then the zones kept
    assert second.zones[b] is first.zones[b] and second.kept == [first.zones[b]]
    assert second.zones[c] is first.zones[c]
    assert any("b.test.zone" in error for error in second.errors)

    assert second.removed == [a]

    (tmp_path / "b.test.zone").unlink()  # a broken zone whose file is gone is not kept
    third = load_zones(tmp_path, second.zones)
    assert list(third.zones) == [c, d] and third.kept == [] and third.removed == [b]

    # No new file: the previous dict is changed in place, in its order.
    (tmp_path / "c.test.zone").write_text(PLAIN.replace("plain.test.", "c.test.") + "x A 1.2.3.4\n")
    fourth = load_zones(tmp_path, third.zones)
    assert list(fourth.zones) == [c, d] and fourth.removed == [] and fourth.kept == []
    assert fourth.zones[c] is not third.zones[c] and fourth.zones[d] is third.zones[d]
    assert fourth.zones[c].record_sets == third.zones[c].record_sets + 1


def large_zone_text(hosts: int, step: int) -> str:
    """A zone with arrays large enough for ext/scratch.h to keep (hosts with A, some MX and
    CNAME); ``step`` varies the names and addresses."""
    lines = ["$ORIGIN big.test.", "$TTL 300", "@ SOA ns1 h 1 7200 3600 1209600 300", "@ NS ns1"]
    lines.append("ns1 A 192.0.2.1")
    for i in range(hosts):
        n = i * step
        lines.append(f"h{n} A 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
        if i % 7 == 0:
            lines.append(f"h{n} MX 10 h{(i + 1) * step}")
        if i % 11 == 0:
            lines.append(f"c{n} CNAME h{n}")
    return "\n".join(lines) + "\n"


FRESH_COMPILE = """
import hashlib, sys
import dns.name
from fastdns._zcompile import compile_columns
from fastdns._zscanner import scan_zone_file
origin = dns.name.from_text("big.test.")
image, reason, *_ = compile_columns(scan_zone_file(sys.argv[1], origin), origin.to_wire())
print(hashlib.sha256(image).hexdigest())
"""


def test_memory_kept_from_a_compile_does_not_change_the_next_image(tmp_path):
    # ext/scratch.h hands a compile the blocks an earlier compile freed, old contents and all:
    # the image must be the one a fresh process (fresh, zeroed pages) compiles.
    import hashlib
    import subprocess
    import sys

    from fastdns._zcompile import kept_scratch, release_scratch

    origin = dns.name.from_text("big.test.")
    zone = tmp_path / "big.test.zone"
    zone.write_text(large_zone_text(60_000, 3))
    other = tmp_path / "other.zone"
    other.write_text(large_zone_text(90_000, 7))
    fresh = subprocess.run(
        [sys.executable, "-c", FRESH_COMPILE, str(zone)], capture_output=True, text=True, check=True
    ).stdout.strip()

    release_scratch()
    assert kept_scratch() == 0
    assert native(other, origin)[0] is not None
    kept = kept_scratch()
    assert kept > 0  # the large arrays were kept, not unmapped
    image, reason = native(zone, origin)  # compiled in the other zone's used blocks
    assert reason is None
    assert hashlib.sha256(image).hexdigest() == fresh
    still_kept = kept_scratch()
    assert still_kept > 0
    assert release_scratch() == still_kept  # given back, all of it
    assert kept_scratch() == 0


def test_compiles_on_several_threads_share_the_kept_memory_safely(tmp_path):
    # Compiles run without the GIL (the zone load thread, the store thread): kept blocks are
    # taken and given back under ext/scratch.h's lock, never handed to two compiles at once.
    import concurrent.futures
    import hashlib

    origin = dns.name.from_text("big.test.")
    paths = []
    for step in (3, 5, 7):
        path = tmp_path / f"zone{step}.zone"
        path.write_text(large_zone_text(40_000, step))
        paths.append(path)

    def digest(path: Path) -> str:
        image, reason = native(path, origin)
        assert reason is None
        return hashlib.sha256(image).hexdigest()

    expected = [digest(path) for path in paths]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            assert list(pool.map(digest, paths)) == expected
