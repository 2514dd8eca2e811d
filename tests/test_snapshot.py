"""Zone snapshots (fastdns/snapshot.py): one sealed memfd holding every compiled zone image."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import struct
from pathlib import Path

import pytest
from support.client import make_query

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.snapshot import (
    IMAGE_ALIGN,
    REQUIRED_SEALS,
    VERSION,
    ImageSegment,
    SnapshotError,
    open_snapshot,
    open_snapshot_parts,
    snapshot_size,
    write_snapshot,
)
from fastdns.zonefile import load_zone_file

UNIT_ZONES = Path(__file__).resolve().parent / "data" / "unit"


@pytest.fixture
def snapshot_fd():
    """``make(images)`` -> a snapshot descriptor, closed at the end of the test."""
    fds = []

    def make(images):
        fd = write_snapshot(images)
        fds.append(fd)
        return fd

    yield make
    for fd in fds:
        os.close(fd)


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [compile_zone(load_zone_file(path)) for path in sorted(UNIT_ZONES.glob("*.zone"))]


def test_round_trip(snapshot_fd):
    payloads = [b"first", b"", b"x" * 10_000, bytes(range(256)) * 3]
    fd = snapshot_fd(payloads)
    views = open_snapshot(fd)
    assert [bytes(view) for view in views] == payloads
    assert all(view.readonly for view in views)
    assert os.fstat(fd).st_size == snapshot_size(payloads)


def test_views_outlive_the_descriptor(snapshot_fd):
    fd = write_snapshot([b"abc", b"defg"])
    views = open_snapshot(fd)
    os.close(fd)
    assert [bytes(view) for view in views] == [b"abc", b"defg"]


def test_images_are_aligned(snapshot_fd):
    fd = snapshot_fd([b"a", b"bc", b"def"])
    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as whole:
        _magic, _version, count, _reserved, _total = struct.unpack_from("=4sIIIQ", whole, 0)
        offsets = [struct.unpack_from("=QQ", whole, 24 + 16 * i)[0] for i in range(count)]
    assert count == 3
    assert all(offset % IMAGE_ALIGN == 0 for offset in offsets)


def test_empty_snapshot(snapshot_fd):
    assert open_snapshot(snapshot_fd([])) == []


def test_the_memfd_is_sealed_against_every_change(snapshot_fd):
    fd = snapshot_fd([b"zone image bytes"])
    assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & REQUIRED_SEALS == REQUIRED_SEALS
    size = os.fstat(fd).st_size
    with pytest.raises(PermissionError):
        os.pwrite(fd, b"evil", 0)
    with pytest.raises(PermissionError):
        os.pwrite(fd, b"grow", size)
    with pytest.raises(PermissionError):
        os.ftruncate(fd, 0)
    with pytest.raises(PermissionError):
        mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    with pytest.raises(PermissionError):  # F_SEAL_SEAL: the seals cannot be changed either
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)
    # The same descriptor opened again through /proc (as another process could) is no better.
    with pytest.raises(PermissionError):
        reopened = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
        try:
            os.write(reopened, b"evil")
        finally:
            os.close(reopened)
    assert bytes(open_snapshot(fd)[0]) == b"zone image bytes"


def test_unsealed_memfd_is_refused():
    fd = os.memfd_create("not-sealed", os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, write_header_only())
        with pytest.raises(SnapshotError, match="not sealed"):
            open_snapshot(fd)
    finally:
        os.close(fd)


def write_header_only() -> bytes:
    return struct.pack("=4sIIIIQ", b"FDSN", VERSION, 0, 0, 0, 28)


def test_a_file_that_cannot_be_sealed_is_refused(tmp_path):
    path = tmp_path / "snapshot"
    path.write_bytes(write_header_only())
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(SnapshotError):
            open_snapshot(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (struct.pack("=4sIIIIQ", b"NOPE", 2, 0, 0, 0, 28), "magic"),
        (struct.pack("=4sIIIIQ", b"FDSN", 9, 0, 0, 0, 28), "version"),
        (struct.pack("=4sIIIIQ", b"FDSN", VERSION, 0, 0, 0, 4096), "size"),
        (struct.pack("=4sIIIIQ", b"FDSN", VERSION, 1000, 0, 0, 28), "size"),
        (struct.pack("=4sIIIIQQQ", b"FDSN", VERSION, 1, 0, 0, 44, 64, 1), "out of bounds"),
        (struct.pack("=4sIIIIQQQ", b"FDSN", VERSION, 1, 0, 0, 44, 28, 1), "out of bounds"),
        (struct.pack("=4sIIIIQ", b"FDSN", VERSION, 0, 0, 2, 28), "size"),
    ],
)
def test_bad_headers_are_refused(header, message):
    fd = os.memfd_create("bad", os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, header)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, REQUIRED_SEALS)
        with pytest.raises(SnapshotError, match=message):
            open_snapshot(fd)
    finally:
        os.close(fd)


def test_a_catalog_over_the_snapshot_answers_like_one_over_bytes(snapshot_fd, images):
    fd = snapshot_fd(images)
    shared = _core.Catalog(open_snapshot(fd))
    private = _core.Catalog(images)
    assert [z.origin for z in shared.zones] == [z.origin for z in private.zones]
    names = ["unit.test", "www.unit.test", "nothing.unit.test", "example", "nope.invalid"]
    for i, name in enumerate(names):
        for rdtype in ("A", "AAAA", "MX", "NS", "SOA", "TXT"):
            wire = make_query(name, rdtype, edns=1232, want_id=i).to_wire()
            assert shared.answer(wire) == private.answer(wire), (name, rdtype)
            assert shared.answer(wire, True) == private.answer(wire, True), (name, rdtype)


def test_the_catalog_keeps_the_mapping_alive(snapshot_fd, images):
    fd = write_snapshot(images)
    catalog = _core.Catalog(open_snapshot(fd))
    os.close(fd)
    wire = make_query("unit.test", "SOA", want_id=7).to_wire()
    assert catalog.answer(wire) == _core.Catalog(images).answer(wire)


def test_writing_to_a_full_tmpfs_fails_cleanly(monkeypatch):
    def failing_pwrite(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", failing_pwrite)
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="No space"):
        write_snapshot([b"image"])
    assert set(os.listdir("/proc/self/fd")) <= before  # the memfd was closed


def test_zone_names_travel_with_the_images():
    fd = write_snapshot([b"first image", b"second"], (), ["Z0123", "example.com."])
    try:
        parts = open_snapshot_parts(fd)
    finally:
        os.close(fd)
    assert [bytes(v) for v in parts.images] == [b"first image", b"second"]
    assert parts.zone_names == ["Z0123", "example.com."]
    fd = write_snapshot([b"image"])
    try:
        assert open_snapshot_parts(fd).zone_names is None
    finally:
        os.close(fd)
    with pytest.raises(ValueError):
        write_snapshot([b"image"], (), ["one", "two"])


def test_a_segment_is_named_not_copied(images):
    segment = ImageSegment(images[0])
    fd = write_snapshot([segment, images[1]], (), ["seg.test.", "inline.test."])
    try:
        # The snapshot holds the inline image only: the segment's bytes are not in it.
        assert os.fstat(fd).st_size < len(images[0]) + len(images[1])
        parts = open_snapshot_parts(fd, [segment.fd])
        with pytest.raises(SnapshotError, match="names segment 0 of 0"):
            open_snapshot_parts(fd)
    finally:
        os.close(fd)
        segment.close()
    # The mapping outlives both descriptors.
    assert [bytes(view) for view in parts.images] == images[:2]
    assert parts.zone_names == ["seg.test.", "inline.test."]
    assert parts.segment_keys[1] is None and parts.segment_keys[0] is not None
    catalog = _core.Catalog(parts.images)
    for zone in catalog.zones:
        wire = make_query(zone.origin, "SOA", want_id=7).to_wire()
        assert catalog.answer(wire) == _core.Catalog(images[:2]).answer(wire)


def test_an_unsealed_segment_is_refused(images):
    segment = ImageSegment(images[0])
    fd = write_snapshot([segment])
    unsealed = os.memfd_create("unsealed", os.MFD_ALLOW_SEALING)
    try:
        os.write(unsealed, images[0])
        with pytest.raises(SnapshotError, match="image segment: the memfd is not sealed"):
            open_snapshot(fd, [unsealed])
        short = os.memfd_create("short", os.MFD_ALLOW_SEALING)
        os.write(short, images[0][:10])
        fcntl.fcntl(short, fcntl.F_ADD_SEALS, REQUIRED_SEALS)
        with pytest.raises(SnapshotError, match="image segment of 10 bytes"):
            open_snapshot(fd, [short])
        os.close(short)
    finally:
        for each in (fd, unsealed):
            os.close(each)
        segment.close()


def test_a_worker_checks_an_unchanged_segment_once(images):
    # Two snapshots naming the same segment (a zone that did not change between them): the
    # second catalog reuses the first's validated image; a new segment is validated anew.
    from fastdns.worker import load_catalog

    segment, other = ImageSegment(images[0]), ImageSegment(images[0])
    first = write_snapshot([segment, images[1]])
    second = write_snapshot([segment, images[1]])
    third = write_snapshot([other, images[1]])
    try:
        old = load_catalog([first, segment.fd], 1232)
        new = load_catalog([second, segment.fd], 1232)
        assert new.zones[0] is old.zones[0]
        assert new.zones[1] is not old.zones[1]  # inline images are per snapshot
        assert load_catalog([third, other.fd], 1232).zones[0] is not old.zones[0]
    finally:
        for fd in (first, second, third):
            os.close(fd)
        segment.close()
        other.close()


def test_a_large_image_is_compiled_into_the_memfd_it_is_served_from(tmp_path, images):
    import dns.name

    from fastdns._zcompile import compile_columns
    from fastdns._zscanner import scan_zone_file
    from fastdns.nativezone import compile_zone_file
    from fastdns.snapshot import SEGMENT_MIN_BYTES, SealedImage
    from fastdns.worker import load_catalog

    origin = dns.name.from_text("big.test.")
    path = tmp_path / "big.test.zone"
    lines = ["$ORIGIN big.test.", "@ 300 SOA ns hm 1 2 3 4 5", "@ 300 NS ns", "ns 300 A 192.0.2.1"]
    lines += [f"host{i} 300 A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(12000)]
    path.write_text("\n".join(lines) + "\n")
    image = compile_zone_file(str(path), origin).image
    as_bytes = compile_columns(scan_zone_file(str(path), origin), origin.to_wire())[0]
    assert isinstance(image, SealedImage) and len(image) >= SEGMENT_MIN_BYTES
    # The same bytes as the image compiled into memory, and equal to them both ways round.
    assert image == as_bytes and as_bytes == image and bytes(image) == as_bytes
    assert image != as_bytes[:-1] + b"\x01" and image != images[0]
    assert fcntl.fcntl(image.fd, fcntl.F_GET_SEALS) & REQUIRED_SEALS == REQUIRED_SEALS
    # Its segment is its own memfd (a second descriptor), not a copy.
    segment = ImageSegment(image)
    fd = write_snapshot([segment, images[1]])
    try:
        assert segment.fd != image.fd
        assert os.fstat(segment.fd).st_ino == os.fstat(image.fd).st_ino
        catalog = load_catalog([fd, segment.fd], 1232)
        wire = make_query("host11999.big.test.", "A", want_id=3).to_wire()
        assert catalog.answer(wire) == _core.Catalog([as_bytes]).answer(wire)
    finally:
        os.close(fd)
        segment.close()
    # A small zone's image stays bytes, copied into the snapshot itself.
    small = compile_zone_file(str(UNIT_ZONES / "unit.test.zone"), dns.name.from_text("unit.test."))
    assert type(small.image) is bytes


def test_the_supervisor_keeps_small_images_only_in_the_snapshot(tmp_path):
    # fastdns.supervisor.build_snapshot: a served zone's image the snapshot holds as a copy is
    # that copy afterwards (one copy per image in the supervisor, shared with the workers), and
    # the next snapshot moves every zone on to its own copy, so an old mapping is not kept.
    import gc
    import weakref

    from fastdns.server import load_zones
    from fastdns.supervisor import build_snapshot

    for i in range(3):
        text = (UNIT_ZONES / "unit.test.zone").read_text().replace("unit.test.", f"z{i}.test.")
        (tmp_path / f"z{i}.test.zone").write_text(text)
    zones = load_zones(tmp_path).zones
    before = {origin: bytes(zone.image) for origin, zone in zones.items()}
    assert all(type(zone.image) is bytes for zone in zones.values())

    first = build_snapshot(zones, 1, 1232)
    views = [zone.image for zone in zones.values()]
    assert all(type(view) is memoryview and view.readonly for view in views)
    assert {origin: bytes(zone.image) for origin, zone in zones.items()} == before
    old_mapping = weakref.ref(views[0].obj)
    assert first.checked == ()  # no segments: the checking catalog is not kept
    wire = make_query("www.z1.test.", "A", want_id=9).to_wire()
    answer = _core.Catalog(list(before.values())).answer(wire)
    assert _core.Catalog([zone.image for zone in zones.values()]).answer(wire) == answer

    second = build_snapshot(zones, 2, 1232)
    assert all(zone.image.obj is not views[0].obj for zone in zones.values())
    assert {origin: bytes(zone.image) for origin, zone in zones.items()} == before
    first.close()
    del views
    gc.collect()
    assert old_mapping() is None  # nothing holds the first snapshot's mapping any more
    second.close()


def test_served_zones_take_a_hosted_zone_over_a_file_over_a_secondary(caplog) -> None:
    """Supervisor.served_zones merges its three sources without hashing every origin again
    (dict.update); a name in two of them is served from the stronger one, and logged."""
    import logging
    from types import SimpleNamespace

    import dns.name

    from fastdns.supervisor import Supervisor

    a, b, c = (dns.name.from_text(t) for t in ("a.test.", "b.test.", "c.test."))
    sources = SimpleNamespace(
        secondaries={a: "secondary a", b: "secondary b"},
        zones={b: "file b", c: "file c"},
        hosted={c: SimpleNamespace(hosted_zone_id="ZC")},
    )
    caplog.set_level(logging.ERROR, logger="fastdns")
    zones = Supervisor.served_zones(sources)
    assert zones[a] == "secondary a" and zones[b] == "file b"
    assert zones[c].hosted_zone_id == "ZC" and len(zones) == 3
    assert "zone b.test.: both a zone file and a secondary zone" in caplog.text
    assert "zone c.test.: both a zone file and hosted zone ZC" in caplog.text


def test_the_control_plane_reads_models_through_the_served_zones() -> None:
    from types import SimpleNamespace

    import dns.name

    from fastdns.supervisor import _ZoneModels

    a, b = dns.name.from_text("a.test."), dns.name.from_text("b.test.")
    models = _ZoneModels({a: SimpleNamespace(zone="model a"), b: SimpleNamespace(zone=None)})
    assert models[a] == "model a" and models.get(b) is None and b not in models
    assert a in models and list(models) == [a] and len(models) == 1
    assert dict(models.items()) == {a: "model a"}


def _memfd_rss() -> int:
    """Bytes of this process's memfd mappings that are resident (/proc/self/smaps)."""
    total, memfd = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
            memfd = len(fields) > 5 and fields[5].startswith("/memfd:")
        elif memfd and line.startswith("Rss:"):
            total += int(fields[1]) * 1024
    return total


def test_the_supervisor_does_not_keep_a_large_image_resident_after_checking_it(tmp_path):
    # build_snapshot checks every image as a worker will, which reads every page of a large
    # one; the supervisor serves nothing from them, so they are dropped from its mappings
    # (the memfd keeps them: the catalog it kept still answers from them).
    import dns.name

    from fastdns.nativezone import compile_zone_file
    from fastdns.server import ServedZone
    from fastdns.snapshot import SealedImage
    from fastdns.supervisor import build_snapshot

    origin = dns.name.from_text("big.test.")
    path = tmp_path / "big.test.zone"
    lines = ["$ORIGIN big.test.", "@ 300 SOA ns hm 1 2 3 4 5", "@ 300 NS ns", "ns 300 A 192.0.2.1"]
    lines += [f"host{i} 300 A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(40000)]
    path.write_text("\n".join(lines) + "\n")
    compiled = compile_zone_file(str(path), origin)
    assert isinstance(compiled.image, SealedImage) and len(compiled.image) > 3 << 20
    before = _memfd_rss()
    served = ServedZone(origin, compiled.image, compiled.record_sets, compiled.serial, str(path))
    snapshot = build_snapshot({origin: served}, 1, 1232)
    try:
        assert snapshot.checked  # the segment's check is kept for the next snapshot
        assert _memfd_rss() - before < len(compiled.image) // 8
        wire = make_query("host39999.big.test.", "A", want_id=3).to_wire()
        expected = _core.Catalog([bytes(compiled.image)]).answer(wire)
        assert _core.Catalog([compiled.image]).answer(wire) == expected
    finally:
        snapshot.close()
