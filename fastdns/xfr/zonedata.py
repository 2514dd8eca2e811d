"""A secondary zone's data: packed record sets, changed per IXFR, compiled or grafted, saved.

fastdns.xfr.inbound brings a zone as packed record sets (AXFR) or as difference sequences
(IXFR, RFC 1995). :class:`SecondaryData` holds the record sets (a
fastdns.packedzone.PackedZone whose sets are a fastdns.packedsets.PackedSets: one blob and an
index, not an object per set), applies an IXFR's differences to the few record sets they
touch, all or nothing, and compiles: a change to a large zone is grafted onto its last image
(issue 8: one changed record in a zone of a million is served in well under a second), a zone
the native compiler does not take (DNSSEC types, a validation error) goes through the model
and fastdns.compile, as zone files do.

Saved copy (so that a restart serves the zone before the primary is asked): ``<origin>packed``
holds every record set as of one serial, and ``<origin>journal`` the record sets each later
IXFR changed (an IXFR of one record appends a few hundred bytes instead of writing the zone
again). Both are a header line and then entries, each ``length, CRC-32`` (big-endian u32s)
and a payload: the serial (u32), then packed record sets one after another (each says how long
it is); in the journal a set with no records deletes it. A journal that outgrows a quarter of
the zone is folded into a new ``packed`` file. An entry cut short or not matching its CRC (a
crash while appending) ends the journal: it and what follows are dropped, and the next refresh
brings them again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

from fastdns._zcompile import NATIVE_TYPES
from fastdns.model import LazyZone, RecordSet, SourceLocation, Zone, ZoneLoadError
from fastdns.packedsets import PackedSets, iter_packed
from fastdns.packedzone import HEAD, PackedZone, pack_records, unpack_records
from fastdns.xfr.inbound import Difference, Record, TransferError, set_key, soa_serial

__all__ = ["CompiledSecondary", "SecondaryData", "SecondaryZoneModel"]

log = logging.getLogger("fastdns.xfr")

MAGIC = b"fastdns secondary zone 1\n"
ENTRY = struct.Struct("!II")  # payload length, CRC-32 of the payload
U32 = struct.Struct("!I")
SOA, NS = dns.rdatatype.SOA, dns.rdatatype.NS
JOURNAL_SHARE = 4  # the journal is folded in when it is a quarter of the packed file


@dataclass(frozen=True)
class CompiledSecondary:
    """A secondary zone compiled for serving."""

    image: bytes
    record_sets: int
    serial: int
    model: Zone


class SecondaryData(PackedZone):
    """A secondary zone's record sets, keyed by ``fastdns.xfr.inbound.set_key``."""

    def __init__(self, origin: dns.name.Name, record_sets: PackedSets | None = None):
        super().__init__(f"secondary zone {origin}")
        self.origin = origin
        self.origin_wire = origin.to_wire().lower()
        self.packed: PackedSets = record_sets if record_sets is not None else PackedSets()
        # Keys of the record sets the native compiler does not take (their types).
        self.foreign = self.packed.foreign_keys(NATIVE_TYPES)
        self.journal_size = 0  # bytes appended to the journal since the packed file

    def key_of(self, owner: bytes, rtype: int) -> Hashable:
        return set_key(owner, rtype)

    def packed_parts(self) -> list[bytes]:
        return self.packed.parts()

    @property
    def soa_rdata(self) -> bytes | None:
        packed = self.packed.get(set_key(self.origin_wire, SOA))
        return unpack_records(packed)[3][0] if packed is not None else None

    @property
    def serial(self) -> int | None:
        rdata = self.soa_rdata
        return soa_serial(rdata) if rdata is not None else None

    def timers(self) -> tuple[int, int, int, int]:
        """(refresh, retry, expire, minimum) of the SOA (RFC 1035 §3.3.13)."""
        return struct.unpack("!IIII", self.soa_rdata[-16:])

    # -- changes

    def apply(self, differences: list[Difference]) -> set[bytes]:
        """Apply an IXFR's difference sequences in order, all or none; the keys of the record
        sets changed. :raises TransferError: a deletion of a record the zone does not have."""
        work: dict[bytes, list] = {}
        for difference in differences:
            for record in (difference.old_soa, *difference.deleted):
                self._delete(work, record)
            for record in (difference.new_soa, *difference.added):
                self._add(work, record)
        for key, (owner, ttl, rdatas) in work.items():
            self.note_change(key)
            rtype = _key_type(key)
            if rdatas:
                self.packed[key] = pack_records(owner, rtype, ttl, rdatas)
                if rtype not in NATIVE_TYPES:
                    self.foreign.add(key)
            else:
                self.packed.pop(key, None)
                self.foreign.discard(key)
        return set(work)

    def _working(self, work: dict, owner: bytes, rtype: int) -> list | None:
        key = set_key(owner, rtype)
        entry = work.get(key)
        if entry is None:
            packed = self.packed.get(key)
            if packed is None:
                return None
            held_owner, _, ttl, rdatas = unpack_records(packed)
            entry = work[key] = [held_owner, ttl, rdatas]
        return entry

    def _delete(self, work: dict, record: Record) -> None:
        owner, rtype, _ttl, rdata = record
        entry = self._working(work, owner, rtype)
        at = _find(rtype, entry[2], rdata) if entry is not None else None
        if at is None:
            name = dns.name.from_wire(owner, 0)[0]
            raise TransferError(
                f"the IXFR deletes a {dns.rdatatype.to_text(rtype)} record of {name} "
                "that the zone does not have"
            )
        del entry[2][at]

    def _add(self, work: dict, record: Record) -> None:
        owner, rtype, ttl, rdata = record
        entry = self._working(work, owner, rtype)
        if entry is None:
            work[set_key(owner, rtype)] = [owner, ttl, [rdata]]
            return
        if not entry[2]:
            entry[0] = owner
        entry[1] = ttl  # RFC 2181 §5.2: one TTL per set, the one the primary sends now
        if _find(rtype, entry[2], rdata) is None:
            entry[2].append(rdata)

    # -- compiling

    def compile_for_serving(self) -> CompiledSecondary:
        """The zone compiled: grafted or compiled natively, else through the model.
        :raises ZoneLoadError: the zone breaks a validation rule."""
        source = f"secondary zone {self.origin} serial {self.serial}"
        model = SecondaryZoneModel(self.origin, source, self)
        if not self.foreign:
            image, reason, record_sets, serial = self.compile(self.origin)
            if image is not None:
                return CompiledSecondary(image, record_sets, serial, model)
        else:
            self.forget()
            reason = f"{len(self.foreign)} record sets of types not compiled natively"
        log.debug("%s: compiled through the model: %s", self.label, reason)
        from fastdns.compile import compile_zone
        from fastdns.validate import validate_zone

        zone = model.materialized()
        errors = validate_zone(zone)
        if errors:
            raise ZoneLoadError(errors)
        return CompiledSecondary(compile_zone(zone), len(self.packed), self.serial, zone)

    # -- saving

    def save_whole(self, directory: Path) -> None:
        """Write every record set to ``<origin>packed`` (atomically) and drop the journal."""
        path = self._path(directory, "packed")
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as out:
            out.write(MAGIC)
            out.write(_entry(self.serial, self.packed.parts()))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        self._path(directory, "journal").unlink(missing_ok=True)
        self.journal_size = 0

    def save_change(self, directory: Path, keys: Iterable[Hashable]) -> None:
        """Append the record sets ``keys`` (as they are now) to the journal, or fold it into
        the packed file when it has grown to a quarter of it."""
        packed_path = self._path(directory, "packed")
        try:
            packed_size = packed_path.stat().st_size
        except FileNotFoundError:
            self.save_whole(directory)
            return
        parts = []
        for key in keys:
            packed = self.packed.get(key)
            if packed is None:  # deleted: the set with no records
                packed = pack_records(key[:-2], _key_type(key), 0, ())
            parts.append(packed)
        entry = _entry(self.serial, parts)
        if (self.journal_size + len(entry)) * JOURNAL_SHARE > packed_size:
            self.save_whole(directory)
            return
        path = self._path(directory, "journal")
        with open(path, "ab") as out:
            if out.tell() == 0:
                out.write(MAGIC)
            out.write(entry)
            out.flush()
            os.fsync(out.fileno())
        self.journal_size += len(entry)

    @classmethod
    def load(cls, origin: dns.name.Name, directory: Path) -> SecondaryData | None:
        """The saved copy of ``origin`` in ``directory``, or None when there is none.
        :raises ValueError: the packed file is damaged."""
        data = cls(origin)
        path = data._path(directory, "packed")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return _load_master_file(origin, directory)
        entries = _entries(raw, path)
        if len(entries) != 1 or entries[0][1] != len(raw):
            raise ValueError(f"{path}: not one whole entry")
        data.packed = PackedSets(entries[0][2])
        journal = data._path(directory, "journal")
        try:
            raw = journal.read_bytes()
        except FileNotFoundError:
            raw = b""
        if raw:
            entries = _entries(raw, journal)
            end = entries[-1][1] if entries else len(MAGIC)
            if end != len(raw):
                log.warning(
                    "%s: %s is cut short after %d bytes (serial %s): the rest is dropped",
                    data.label, journal, end, entries[-1][0] if entries else None,
                )  # fmt: skip
                with open(journal, "r+b") as out:
                    out.truncate(end)
            for _serial, _end, sets in entries:
                for key, start, end_at in iter_packed(sets):
                    if _count(sets, start):
                        data.packed[key] = sets[start:end_at]
                    else:
                        data.packed.pop(key, None)
            data.journal_size = end - len(MAGIC)
        data.foreign = data.packed.foreign_keys(NATIVE_TYPES)
        if data.soa_rdata is None:
            raise ValueError(f"{path}: no SOA")
        return data

    def saved_at(self, directory: Path) -> float | None:
        """When the saved copy was last written or confirmed (``touch``), or None."""
        times = []
        for suffix in ("packed", "journal"):
            with contextlib.suppress(FileNotFoundError):
                times.append(self._path(directory, suffix).stat().st_mtime)
        return max(times, default=None)

    def touch(self, directory: Path) -> None:
        """Note that the primary confirmed the saved serial (its age is the zone's expiry
        clock at a restart, RFC 1035 §4.3.5)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self._path(directory, "packed"))

    def _path(self, directory: Path, suffix: str) -> Path:
        return directory / f"{self.origin.to_text()}{suffix}"


def _find(rtype: int, rdatas: list[bytes], rdata: bytes) -> int | None:
    """The index of ``rdata`` in ``rdatas`` as dnspython compares RDATA (canonical form, RFC
    4034 §6.2: names in some types compared without case), or None."""
    for at, held in enumerate(rdatas):
        if held == rdata:
            return at
    lower = rdata.lower()
    for at, held in enumerate(rdatas):
        if held.lower() == lower and _rdata(rtype, held) == _rdata(rtype, rdata):
            return at
    return None


def _rdata(rtype: int, wire: bytes) -> dns.rdata.Rdata:
    return dns.rdata.from_wire(dns.rdataclass.IN, rtype, wire, 0, len(wire))


def _key_type(key: bytes) -> int:
    return int.from_bytes(key[-2:], "big")


def _count(packed: bytes, at: int = 0) -> int:
    """How many records the packed set at ``packed[at:]`` has."""
    return HEAD.unpack_from(packed, at + 1 + packed[at])[2]


def _entry(serial: int, sets: Iterable[bytes]) -> bytes:
    """A saved entry: ``sets`` are packed record sets, or parts of several one after another."""
    payload = b"".join([U32.pack(serial), *sets])
    return ENTRY.pack(len(payload), zlib.crc32(payload)) + payload


def _entries(raw: bytes, path: Path) -> list[tuple[int, int, bytes]]:
    """``(serial, end offset, packed sets one after another)`` of each whole entry of a saved
    file, up to the first that is cut short or damaged."""
    if not raw.startswith(MAGIC):
        raise ValueError(f"{path}: not a saved secondary zone")
    entries = []
    at = len(MAGIC)
    while at + ENTRY.size <= len(raw):
        length, crc = ENTRY.unpack_from(raw, at)
        start = at + ENTRY.size
        end = start + length
        if end > len(raw) or length < 4 or zlib.crc32(raw[start:end]) != crc:
            break
        entries.append((U32.unpack_from(raw, start)[0], end, raw[start + 4 : end]))
        at = end
    return entries


def _load_master_file(origin: dns.name.Name, directory: Path) -> SecondaryData | None:
    """A copy saved by an earlier version, as a master file (``<origin>zone``)."""
    path = directory / f"{origin.to_text()}zone"
    if not path.exists():
        return None
    zone = dns.zone.from_file(str(path), origin, relativize=False)
    blob = b"".join(
        pack_records(name.to_wire(), rdataset.rdtype, rdataset.ttl, (r.to_wire() for r in rdataset))
        for name, rdataset in zone.iterate_rdatasets()
    )
    return SecondaryData(origin, PackedSets(blob))


class SecondaryZoneModel(LazyZone):
    """The model of a secondary zone, built from its packed record sets when something needs
    every record (an outgoing zone transfer, the reference compiler) and kept only while it is
    in use. ``origin``, ``source`` and ``soa`` are held."""

    def __init__(self, origin: dns.name.Name, source: str, data: SecondaryData):
        # Not Zone's generated __init__: the record sets are not stored as models. The packed
        # record sets are those of this serial: later IXFRs change the PackedSets, not the
        # frozen view of it (whose blob is shared).
        self.origin = origin
        self.source = source
        self._record_sets = data.packed.frozen()
        soa = data.packed[set_key(data.origin_wire, SOA)]
        self._soa = _record_set(soa, SourceLocation(source, 0))

    @property
    def soa(self) -> RecordSet:  # type: ignore[override]
        return self._soa

    def _build(self) -> Zone:
        from fastdns.collector import collector_paused

        zone = Zone(self.origin, source=self.source)
        where = SourceLocation(self.source, 0)
        with collector_paused():
            for part in self._record_sets.parts():  # each one or more packed sets
                for _key, start, end in iter_packed(part):
                    zone.add(_record_set(part[start:end], where))
        return zone

    def __repr__(self) -> str:
        return f"SecondaryZoneModel({self.origin}, {self.source!r})"


def _record_set(packed: bytes, where: SourceLocation) -> RecordSet:
    owner, rtype, ttl, rdatas = unpack_records(packed)
    try:
        values = tuple(_rdata(rtype, rdata) for rdata in rdatas)
    except dns.exception.DNSException as exc:
        raise ValueError(f"{dns.name.from_wire(owner, 0)[0]} {rtype}: {exc}") from None
    return RecordSet(dns.name.from_wire(owner, 0)[0], rtype, ttl, values, where)
