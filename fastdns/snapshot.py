"""Zone snapshots in shared memory: every compiled zone image in one sealed memfd.

The supervisor compiles the zones once and writes the images with ``write_snapshot``; each worker
receives the descriptor over its control socket and maps it with ``open_snapshot``. The pages
belong to the memfd, not to any process, so N workers map one copy of every zone (see
docs/ARCHITECTURE.md, "Processes").

The memfd is sealed (``F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL``) before it is
handed out, and ``open_snapshot`` refuses one that is not: the catalog checks every offset of an
image once, when it is built, and the hot path then trusts them, which is only sound if no
process can change the bytes afterwards.

Layout (native byte order)::

    header   magic "FDSN", version, image count, classifier count, name-list count (0 or 1),
             total size of the file
    entries  (offset, length) per image, then per classifier, then the name list, each u64
    images   each starting on a ``IMAGE_ALIGN`` boundary (the image's own sections are 4-byte
             aligned relative to its start), then the classifiers and the name list the same way

The name list (UTF-8, one line per image) is what the query log calls each zone: its hosted
zone ID, or its origin for a zone file. It travels in the snapshot rather than in a control
message because a server may hold a hundred thousand zones.

Classifiers (``fastdns.geo.ranges``: client address -> class, for routing policies) belong to
the snapshot rather than to one zone: every zone's policies refer to them by position.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "REQUIRED_SEALS",
    "SnapshotError",
    "SnapshotParts",
    "open_snapshot",
    "open_snapshot_parts",
    "snapshot_size",
    "write_snapshot",
]

MAGIC = b"FDSN"
VERSION = 2
HEADER = struct.Struct("=4sIIIIQ")  # magic, version, images, classifiers, name lists, total
ENTRY = struct.Struct("=QQ")  # offset, length
IMAGE_ALIGN = 64  # a cache line: image headers and node arrays never straddle one needlessly
MEMFD_NAME = "fastdns-snapshot"

# Sealed against every change; F_SEAL_SEAL so that no one can take the seals off again.
REQUIRED_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL


class SnapshotError(ValueError):
    """A descriptor that is not a sealed fastdns snapshot (the message says what is wrong)."""


def _align(value: int) -> int:
    return (value + IMAGE_ALIGN - 1) // IMAGE_ALIGN * IMAGE_ALIGN


def _layout(lengths: Sequence[int]) -> tuple[list[int], int]:
    """Offsets of images of ``lengths`` and the total size of the file."""
    position = _align(HEADER.size + ENTRY.size * len(lengths))
    offsets = []
    for length in lengths:
        offsets.append(position)
        position = _align(position + length)
    return offsets, max(position, HEADER.size)


def snapshot_size(images: Sequence[bytes]) -> int:
    """How many bytes ``write_snapshot(images)`` puts in the memfd."""
    return _layout([len(image) for image in images])[1]


def _write_all(fd: int, data, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def write_snapshot(
    images: Sequence[bytes], classifiers: Sequence[bytes] = (), zone_names: Sequence[str] = ()
) -> int:
    """A new sealed memfd holding ``images``, ``classifiers`` and, when given, one name per
    image (``zone_names``); the caller owns (and closes) the descriptor.

    The descriptor is close-on-exec: it reaches a worker only when sent with
    ``socket.send_fds``.
    """
    names = []
    if zone_names:
        if len(zone_names) != len(images) or any("\n" in name for name in zone_names):
            raise ValueError("zone_names: one name per image, without line breaks")
        names = ["\n".join(zone_names).encode()]
    parts = [*images, *classifiers, *names]
    lengths = [len(part) for part in parts]
    offsets, total = _layout(lengths)
    fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, total)
        header = HEADER.pack(MAGIC, VERSION, len(images), len(classifiers), len(names), total)
        header += b"".join(ENTRY.pack(o, n) for o, n in zip(offsets, lengths, strict=True))
        _write_all(fd, header, 0)
        for offset, part in zip(offsets, parts, strict=True):
            _write_all(fd, part, offset)
        # Written with pwrite, never through a writable mapping: F_SEAL_WRITE fails (EBUSY)
        # while one exists.
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, REQUIRED_SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_snapshot(fd: int) -> list[memoryview]:
    """Map the snapshot in ``fd`` read-only; one read-only ``memoryview`` per image, in order.

    The views keep the mapping alive (``fd`` may be closed as soon as this returns); pass them to
    ``fastdns._core.ZoneImage``/``Catalog``. Raises ``SnapshotError`` when ``fd`` is not a
    sealed snapshot, ``OSError`` when it cannot be mapped.
    """
    return open_snapshot_parts(fd)[0]


class SnapshotParts(NamedTuple):
    images: list[memoryview]
    classifiers: list[memoryview]
    zone_names: list[str] | None  # None: the snapshot has no name list


def open_snapshot_parts(fd: int) -> SnapshotParts:
    """``open_snapshot``, with the classifiers and the zone names."""
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as exc:
        raise SnapshotError(f"not a sealed memfd: {exc.strerror or exc}") from None
    if seals & REQUIRED_SEALS != REQUIRED_SEALS:
        raise SnapshotError(f"the memfd is not sealed against changes (seals {seals:#x})")
    size = os.fstat(fd).st_size
    if size < HEADER.size:
        raise SnapshotError(f"too short for a snapshot header ({size} bytes)")
    mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    view = memoryview(mapping)
    parts: list[memoryview] = []
    try:
        entries, image_count, classifier_count = _entries(view, size)
        parts = [view[offset : offset + length] for offset, length in entries]
        names = None
        if len(parts) > image_count + classifier_count:
            names = bytes(parts.pop()).decode().split("\n") if image_count else []
            if len(names) != image_count:
                raise SnapshotError(f"{len(names)} zone names for {image_count} images")
    except BaseException:
        for part in parts:
            part.release()
        view.release()
        mapping.close()
        raise
    # Each slice holds the mapping; it is unmapped when the last of them is gone.
    view.release()
    return SnapshotParts(parts[:image_count], parts[image_count:], names)


def _entries(view: memoryview, size: int) -> tuple[list[tuple[int, int]], int, int]:
    """The checked (offset, length) of every part of a mapped snapshot, and how many of them
    are images and classifiers."""
    magic, version, images, classifiers, name_lists, total = HEADER.unpack_from(view, 0)
    count = images + classifiers + name_lists
    if magic != MAGIC:
        raise SnapshotError(f"not a fastdns snapshot (magic {magic!r})")
    if version != VERSION:
        raise SnapshotError(f"snapshot version {version}, expected {VERSION}")
    if total != size or HEADER.size + ENTRY.size * count > size:
        raise SnapshotError(f"snapshot size mismatch: header says {total}, file has {size}")
    entries = []
    for i in range(count):
        offset, length = ENTRY.unpack_from(view, HEADER.size + ENTRY.size * i)
        if offset % IMAGE_ALIGN or offset + length > size:
            raise SnapshotError(f"image {i} out of bounds ({offset}+{length} of {size})")
        entries.append((offset, length))
    if name_lists > 1:
        raise SnapshotError(f"{name_lists} name lists in a snapshot")
    return entries, images, classifiers
