"""What the server serves: a zone directory, loaded and compiled, one zone image per zone.

``load_zones`` reads and compiles every ``<origin>.zone`` of the zone directory (natively from
the scanner's columns where it can, fastdns.nativezone); on a reload it keeps the previous
version of a zone whose new file is broken. The supervisor
(``fastdns.supervisor``) runs it at start and on SIGHUP and writes the images into a
snapshot for the workers.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import dns.name

from fastdns.compile import compile_zone
from fastdns.image import canonical_key
from fastdns.model import Zone, ZoneError, ZoneLoadError
from fastdns.nativezone import compile_zone_file
from fastdns.zonedir import zone_files

log = logging.getLogger("fastdns")

ZONE_LINES_MAX = 100  # zones loaded with a log line each at info level; beyond, a summary
STAMP_SETTLE_NS = 2_000_000_000  # a zone file changed this recently is read on every reload


class StartupError(Exception):
    """The server cannot start; the message says why (printed as is by the CLI)."""


@dataclass(frozen=True)
class ServedZone:
    """A zone as it is being served: its compiled image and what to log about it."""

    origin: dns.name.Name
    # Left out of repr: a signed zone's image holds its ZSK for online signing (issue 6).
    # bytes, or for a large zone compiled natively a fastdns.snapshot.SealedImage: the memfd
    # it is served from, which reads like bytes. Once the supervisor serves a zone whose image
    # the snapshot holds as a copy, a read-only memoryview of that copy (see
    # fastdns.supervisor._share_small_images).
    image: bytes = field(repr=False)
    record_sets: int
    serial: int | None
    source: str | None
    hosted_zone_id: str | None = None  # set for hosted zones (the API's store)
    # What each routing-policy group of the image was compiled from (TestDNSAnswer).
    policy_groups: tuple = ()
    # The model it was compiled from: what zone transfers send (fastdns.xfr); for a zone file
    # compiled natively, a stand-in that reads the file when asked (fastdns.nativezone).
    zone: Zone | None = field(default=None, repr=False, compare=False)
    # Signed zones: the time (epoch seconds) by which it must be compiled again so that no
    # served signature gets near its expiration (fastdns.dnssec.signer).
    resign_at: float | None = None
    # Signed zones: the signer of this compile, whose signatures zone transfers send.
    signer: object = field(default=None, repr=False, compare=False)

    # A zone file's (device, inode, size, mtime, ctime) when it was read, if it includes no
    # other file: load_zones keeps this version while they stay the same.
    file_stamp: tuple[int, ...] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def order_key(self) -> tuple[bytes, ...]:
        """The zone's place in a catalog (``canonical_key`` of its origin), made once per
        zone rather than once per zone and snapshot (100,000 zones: 80 ms a snapshot)."""
        return canonical_key(self.origin)

    @cached_property
    def log_name(self) -> str:
        """What the query log calls the zone (the snapshot's name list): its hosted zone ID,
        or its origin. Made once per zone, not once per zone and snapshot."""
        return self.hosted_zone_id or self.origin.to_text()


@dataclass
class ZoneLoad:
    """The result of reading a zone directory."""

    zones: dict[dns.name.Name, ServedZone] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # ``file:line: reason`` each
    kept: list[ServedZone] = field(default_factory=list)  # failed now, previous version kept
    removed: list[dns.name.Name] = field(default_factory=list)  # of ``previous``: file gone


def zone_summary(zone: Zone) -> tuple[int, int | None]:
    """(number of record sets, SOA serial or None) of a zone."""
    soa = zone.soa
    serial = soa.rdatas[0].serial if soa is not None and soa.rdatas else None
    return sum(1 for _ in zone), serial


def compile_served_zone(zone: Zone) -> ServedZone:
    """A validated zone compiled for serving."""
    record_sets, serial = zone_summary(zone)
    return ServedZone(zone.origin, compile_zone(zone), record_sets, serial, zone.source, zone=zone)


def _file_stamp(path: str) -> tuple[int, ...] | None:
    """What says a file did not change: (device, inode, size, mtime, ctime); None for a file changed
    in the last ``STAMP_SETTLE_NS``. File times come from a coarse clock (a few ms), so two
    writes of the same size that close together could carry the same times: such a file is
    read again on the next reload, as git re-reads "racily clean" files."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < STAMP_SETTLE_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load_zones(
    zone_dir: Path, previous: Mapping[dns.name.Name, ServedZone] | None = None
) -> ZoneLoad:
    """Load and compile every zone of ``zone_dir``.

    A zone that fails to load, validate or compile is left out and its errors are returned; if
    ``previous`` has a version of it and its file is still there, that version is kept. Zones
    whose files are gone are dropped. A zone of ``previous`` read from a file that includes no
    other, whose inode, size, modification and change times are still the same, is kept as it
    is without reading the file again: a SIGHUP to a directory of 100,000 zones compiles the
    files that changed (a write, a rename over it, even a ``touch``, moves the change time).
    """
    # Keyed by file and by canonical key, never by dns.name.Name, whose hash and comparison
    # lower-case every label each time: a reload of 100,000 zones made seconds of them. The
    # zones' dict is made once, at the end.
    by_file = {served.source: (origin, served) for origin, served in (previous or {}).items()}
    files, errors = zone_files(zone_dir, {file: origin for file, (origin, _) in by_file.items()})
    result = ZoneLoad()
    loaded: list[tuple[tuple[bytes, ...], dns.name.Name, ServedZone]] = []
    recompiled: list[tuple[dns.name.Name, ServedZone]] = []  # files ``previous`` had too
    new_files = 0
    for file, origin in files:
        stamp = _file_stamp(file)  # before reading: a write during the read shows next time
        before = by_file.get(file)
        # Its origin is the one zone_files took from that same zone (see ``known`` there).
        if before is not None and stamp is not None and before[1].file_stamp == stamp:
            loaded.append((canonical_key(origin), origin, before[1]))
            continue
        new_files += before is None
        try:
            compiled = compile_zone_file(file, origin)
        except ZoneLoadError as e:
            errors.extend(e.errors)
            continue
        except Exception as exc:  # a compiler bug must not take the other zones down
            log.debug("compiling %s failed", origin, exc_info=True)
            errors.append(ZoneError(file, 0, f"cannot compile zone: {exc}"))
            continue
        served = ServedZone(
            origin, compiled.image, compiled.record_sets, compiled.serial, file,
            zone=compiled.model, file_stamp=stamp if compiled.single_file else None,
        )  # fmt: skip
        loaded.append((canonical_key(origin), origin, served))
        if before is not None:
            recompiled.append((origin, served))
    errors.sort(key=lambda e: (e.file, e.line, e.reason))
    result.errors = [str(e) for e in errors]
    served_keys = {key for key, _origin, _served in loaded}
    on_disk = {canonical_key(origin) for _file, origin in files}  # the failed ones too
    if previous and not new_files:
        # Every zone was served before, in canonical order: change that dict's copy in place
        # (``dict`` copies keep their hashes; dns.name.Name hashes all its labels on each
        # call, and a dict of 100,000 of them made a noticeable part of a reload).
        result.zones = dict(previous)
        for origin, served in recompiled:
            result.zones[origin] = served
    else:
        loaded.sort(key=lambda item: item[0])
        result.zones = {origin: served for _key, origin, served in loaded}
    for origin, served in (previous or {}).items():
        key = canonical_key(origin)
        if key in served_keys:
            continue
        if key in on_disk:
            result.zones[origin] = served
            result.kept.append(served)
        else:
            result.zones.pop(origin, None)
            result.removed.append(origin)
    return result


class ZoneLoadAhead:
    """``load_zones(zone_dir)`` started on a thread of its own as soon as ``fastdns serve`` knows
    its zone directory, so that the control plane's imports overlap the native compile, which
    runs without the GIL (issue 8: start to first answer). The supervisor takes the
    :meth:`result` when it loads; a load that fails raises there, as ``load_zones`` would.

    The thread is a daemon: a server that exits before it loads does not wait for it.
    """

    def __init__(self, zone_dir: Path) -> None:
        self.zone_dir = zone_dir
        self._result: ZoneLoad | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fastdns-zone-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = load_zones(self.zone_dir)
        except BaseException as exc:  # raised again by result(), on the supervisor's thread
            self._error = exc

    def result(self) -> ZoneLoad:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def catalog_order(zones: Mapping[dns.name.Name, ServedZone]) -> list[ServedZone]:
    """``zones`` in canonical origin order (RFC 4034 §6.1; a catalog's order, reproducibly),
    sorted by each zone's ``order_key`` rather than by ``dns.name.Name`` comparisons, which
    cost a second for 100,000 zones."""
    return sorted(zones.values(), key=_zone_order)


_zone_order = operator.attrgetter("order_key")


def log_load(load: ZoneLoad) -> None:
    """Log a load's errors and what each zone is now served from: a line per zone up to
    ``ZONE_LINES_MAX`` zones; beyond, those lines at debug level and one summary line (a
    server of 100,000 zones would otherwise log 100,000 lines on every start and reload, which
    takes seconds and buries the errors)."""
    for error in load.errors:
        log.error("%s", error)
    for served in sorted(load.kept, key=lambda s: s.origin):
        log.warning(
            "zone %s: the new version failed, still serving serial %s",
            served.origin,
            served.serial,
        )
    many = len(load.zones) > ZONE_LINES_MAX
    if not many or log.isEnabledFor(logging.DEBUG):
        kept = {served.origin for served in load.kept}
        say = log.debug if many else log.info
        for origin in sorted(load.zones):
            served = load.zones[origin]
            if origin not in kept:
                say(
                    "zone %s: serving %d record sets, serial %s",
                    origin,
                    served.record_sets,
                    served.serial,
                )
    if many:
        log.info(
            "serving %d zones, %d record sets (a line per zone at debug level)",
            len(load.zones),
            sum(served.record_sets for served in load.zones.values()),
        )
    if not load.zones:
        log.warning("no zones to serve: every query will be refused")


__all__ = [
    "ServedZone",
    "StartupError",
    "ZoneLoad",
    "ZoneLoadAhead",
    "catalog_order",
    "load_zones",
    "log_load",
    "zone_summary",
]
