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

Image segments: a large image (``SEGMENT_MIN_BYTES`` or more) can travel in a sealed memfd of its
own (:class:`ImageSegment`), which the snapshot names instead of holding a copy: its entry's
offset is ``SEGMENT_FLAG | n`` for the n-th segment descriptor sent after the snapshot's. A zone
that did not change keeps its segment from one snapshot to the next, so a change elsewhere does
not copy it, and a worker that still holds it validated reuses it (``fastdns.worker``): a
one-record change next to a million-record zone costs neither a copy nor a check of that zone.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "MAX_SEGMENTS",
    "REQUIRED_SEALS",
    "SEGMENT_MIN_BYTES",
    "ImageBuffer",
    "ImageSegment",
    "SealedImage",
    "SnapshotError",
    "SnapshotParts",
    "image_buffer",
    "open_snapshot",
    "open_snapshot_parts",
    "sealed_image",
    "snapshot_size",
    "write_snapshot",
]

MAGIC = b"FDSN"
VERSION = 3
HEADER = struct.Struct("=4sIIIIQ")  # magic, version, images, classifiers, name lists, total
ENTRY = struct.Struct("=QQ")  # offset, length
IMAGE_ALIGN = 64  # a cache line: image headers and node arrays never straddle one needlessly
MEMFD_NAME = "fastdns-snapshot"
SEGMENT_NAME = "fastdns-image"
SEGMENT_FLAG = 1 << 63  # an entry's offset with this bit names a segment, not a position
SEGMENT_MIN_BYTES = 1 << 20  # smaller images are copied into the snapshot itself
MAX_SEGMENTS = 64  # descriptors per control message stay far below SCM_MAX_FD (253)

# Sealed against every change; F_SEAL_SEAL so that no one can take the seals off again.
REQUIRED_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL


class SnapshotError(ValueError):
    """A descriptor that is not a sealed fastdns snapshot (the message says what is wrong)."""


def _new_memfd(name: str, size: int) -> int:
    """A new close-on-exec memfd of ``size`` bytes that can be sealed."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


# More parts than this are copied into a new memfd through a mapping rather than with pwrite.
_PWRITES_MAX = 64


def _sealed(name: str, size: int, writes: Sequence) -> int:
    """A new close-on-exec memfd of ``size`` bytes holding each ``(offset, data)`` of
    ``writes``, sealed against every change; closed again if anything fails."""
    fd = _new_memfd(name, size)
    try:
        if len(writes) > _PWRITES_MAX and size:
            # Many parts (a hundred thousand small zones): copied through a mapping, one
            # memcpy each instead of a system call each (0.37 -> 0.1 s for 100,000 zones).
            # It is unmapped before the seals: F_SEAL_WRITE fails (EBUSY) while a writable
            # mapping exists.
            with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as out:
                for offset, data in writes:
                    data = memoryview(data).cast("B")
                    out[offset : offset + len(data)] = data
        else:
            for offset, data in writes:
                _write_all(fd, data, offset)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, REQUIRED_SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_sealed(fd: int, what: str) -> int:
    """The size of ``fd``, a memfd sealed against changes, or ``SnapshotError``."""
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as exc:
        raise SnapshotError(f"{what}: not a sealed memfd: {exc.strerror or exc}") from None
    if seals & REQUIRED_SEALS != REQUIRED_SEALS:
        raise SnapshotError(f"{what}: the memfd is not sealed against changes (seals {seals:#x})")
    return os.fstat(fd).st_size


class _MemfdMapping(mmap.mmap):
    """A mapping of a memfd whose descriptor it owns (closed with it)."""

    fd: int

    def __new__(cls, fd: int, size: int, prot: int):
        self = super().__new__(cls, fd, size, mmap.MAP_SHARED, prot)
        self.fd = fd
        return self

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ImageBuffer(_MemfdMapping):
    """A new memfd of one image's size, mapped writable: where the native compiler
    (``fastdns._zcompile``) writes a large image. :func:`sealed_image` seals it."""

    def __new__(cls, size: int) -> ImageBuffer:
        fd = _new_memfd(SEGMENT_NAME, size)
        try:
            return super().__new__(cls, fd, size, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise


class SealedImage(_MemfdMapping):
    """A zone image in a sealed memfd of its own, mapped read-only: what a large zone's
    ``ServedZone.image`` is when the native compiler wrote it (see :func:`image_buffer`). It
    reads like ``bytes`` (length, slices, the buffer protocol; ``==`` compares the bytes), and
    :class:`ImageSegment` takes its memfd as it is instead of copying the image into one."""

    def __new__(cls, fd: int, size: int) -> SealedImage:
        return super().__new__(cls, fd, size, mmap.PROT_READ)

    def __eq__(self, other: object) -> bool:
        from fastdns._zcompile import same_bytes

        try:
            return same_bytes(self, other)
        except (TypeError, ValueError):  # not a buffer of bytes
            return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as bytearray: equal by content, not hashable

    def __repr__(self) -> str:
        return f"SealedImage(fd={self.fd}, {len(self)} bytes)"


def image_buffer(size: int) -> ImageBuffer | None:
    """The ``image_buffer`` of ``fastdns._zcompile.compile_columns`` and ``compile_packed``: a
    memfd for an image that will travel as a segment (``SEGMENT_MIN_BYTES`` or more), so it is
    written once, where workers will map it; None for a smaller one (``bytes``, copied into the
    snapshot)."""
    return ImageBuffer(size) if size >= SEGMENT_MIN_BYTES else None


def sealed_image(image):
    """A compiled image as it is kept: an :class:`ImageBuffer` the compiler filled, unmapped,
    sealed and mapped again read-only (a :class:`SealedImage`); anything else as it is."""
    if not isinstance(image, ImageBuffer):
        return image
    size = len(image)
    # F_SEAL_WRITE fails (EBUSY) while a writable mapping exists: unmap first.
    image.close()
    fd, image.fd = image.fd, -1
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, REQUIRED_SEALS)
        return SealedImage(fd, size)
    except BaseException:
        os.close(fd)
        raise


class ImageSegment:
    """One zone image in a sealed memfd of its own, named by snapshots instead of copied.

    The supervisor makes one per large image and keeps it while any snapshot it built uses it
    (``users``); ``close`` closes the descriptor (workers keep their own mappings). A
    :class:`SealedImage` is already in one: its memfd is shared (a duplicate descriptor), not
    copied.
    """

    def __init__(self, image) -> None:
        self.length = len(image)
        if isinstance(image, SealedImage):
            self.fd = os.dup(image.fd)
        else:
            self.fd = _sealed(SEGMENT_NAME, self.length, [(0, image)])
        self.users = 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __repr__(self) -> str:
        return f"ImageSegment(fd={self.fd}, {self.length} bytes, {self.users} users)"


def _align(value: int) -> int:
    return (value + IMAGE_ALIGN - 1) // IMAGE_ALIGN * IMAGE_ALIGN


def _layout(lengths: Sequence[int], segments: int = 0) -> tuple[list[int], int]:
    """Offsets of parts of ``lengths`` and the total size of the file (whose header also has
    an entry for each of ``segments``)."""
    position = _align(HEADER.size + ENTRY.size * (len(lengths) + segments))
    offsets = []
    for length in lengths:
        offsets.append(position)
        position = _align(position + length)
    return offsets, max(position, HEADER.size)


def snapshot_size(images: Sequence[bytes]) -> int:
    """How many bytes ``write_snapshot(images)`` puts in the memfd (without segments)."""
    return _layout([len(image) for image in images])[1]


def _write_all(fd: int, data, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def write_snapshot(
    images: Sequence, classifiers: Sequence[bytes] = (), zone_names: Sequence[str] = ()
) -> int:
    """A new sealed memfd holding ``images``, ``classifiers`` and, when given, one name per
    image (``zone_names``); the caller owns (and closes) the descriptor.

    An image given as an :class:`ImageSegment` is named, not copied: whoever opens the
    snapshot needs the segments' descriptors too, in the order they appear in ``images``
    (``snapshot_segments``).

    The descriptor is close-on-exec: it reaches a worker only when sent with
    ``socket.send_fds``.
    """
    names = []
    if zone_names:
        if len(zone_names) != len(images) or any("\n" in name for name in zone_names):
            raise ValueError("zone_names: one name per image, without line breaks")
        names = ["\n".join(zone_names).encode()]
    inline = [image for image in images if not isinstance(image, ImageSegment)]
    parts = [*inline, *classifiers, *names]
    offsets, total = _layout([len(part) for part in parts], len(images) - len(inline))
    layout = iter(zip(offsets, parts, strict=True))
    entries = []
    segment = 0
    for image in images:
        if isinstance(image, ImageSegment):
            entries.append((SEGMENT_FLAG | segment, image.length))
            segment += 1
        else:
            offset, _part = next(layout)
            entries.append((offset, len(image)))
    entries += [(offset, len(part)) for offset, part in layout]
    header = HEADER.pack(MAGIC, VERSION, len(images), len(classifiers), len(names), total)
    header += b"".join(ENTRY.pack(o, n) for o, n in entries)
    return _sealed(MEMFD_NAME, total, [(0, header), *zip(offsets, parts, strict=True)])


def snapshot_segments(images: Sequence) -> list[ImageSegment]:
    """The segments among ``images``, in the order ``write_snapshot`` numbers them."""
    return [image for image in images if isinstance(image, ImageSegment)]


def open_snapshot(fd: int, segment_fds: Sequence[int] = ()) -> list[memoryview]:
    """Map the snapshot in ``fd`` read-only; one read-only ``memoryview`` per image, in order.

    The views keep the mapping alive (``fd`` may be closed as soon as this returns); pass them to
    ``fastdns._core.ZoneImage``/``Catalog``. Raises ``SnapshotError`` when ``fd`` is not a
    sealed snapshot, ``OSError`` when it cannot be mapped. ``segment_fds``: the descriptors of
    the image segments it names, in order.
    """
    return open_snapshot_parts(fd, segment_fds)[0]


class SnapshotParts(NamedTuple):
    images: list[memoryview]
    classifiers: list[memoryview]
    zone_names: list[str] | None  # None: the snapshot has no name list
    # Per image: (st_dev, st_ino) of its segment, which stays the same while the segment
    # lives (it is sealed: the same key is the same bytes); None for an image in the snapshot.
    segment_keys: list[tuple[int, int] | None] = []


def _map_segment(fd: int, length: int) -> tuple[memoryview, tuple[int, int]]:
    size = _check_sealed(fd, "image segment")
    if length > size:
        raise SnapshotError(f"image segment of {size} bytes, the snapshot says {length}")
    stat = os.fstat(fd)
    if length == 0:
        return memoryview(b""), (stat.st_dev, stat.st_ino)
    mapping = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    return memoryview(mapping), (stat.st_dev, stat.st_ino)


def open_snapshot_parts(fd: int, segment_fds: Sequence[int] = ()) -> SnapshotParts:
    """``open_snapshot``, with the classifiers, the zone names and the segments' keys."""
    size = _check_sealed(fd, "snapshot")
    if size < HEADER.size:
        raise SnapshotError(f"too short for a snapshot header ({size} bytes)")
    mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    view = memoryview(mapping)
    parts: list[memoryview] = []
    keys: list[tuple[int, int] | None] = []
    try:
        entries, image_count, classifier_count = _entries(view, size, len(segment_fds))
        for offset, length in entries:
            if offset & SEGMENT_FLAG:
                part, key = _map_segment(segment_fds[offset & ~SEGMENT_FLAG], length)
            else:
                part, key = view[offset : offset + length], None
            parts.append(part)
            keys.append(key)
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
    return SnapshotParts(parts[:image_count], parts[image_count:], names, keys[:image_count])


def _entries(view: memoryview, size: int, segments: int) -> tuple[list[tuple[int, int]], int, int]:
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
        if offset & SEGMENT_FLAG:
            segment = offset & ~SEGMENT_FLAG
            if i >= images or segment >= segments:
                raise SnapshotError(f"entry {i} names segment {segment} of {segments}")
        elif offset % IMAGE_ALIGN or offset + length > size:
            raise SnapshotError(f"image {i} out of bounds ({offset}+{length} of {size})")
        entries.append((offset, length))
    if name_lists > 1:
        raise SnapshotError(f"{name_lists} name lists in a snapshot")
    return entries, images, classifiers
