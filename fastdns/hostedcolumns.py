"""A hosted zone's record sets packed for the native compiler, patched per change (issue 8).

An unsigned hosted zone without routing policies or aliases is plain RFC 1035 data, as a zone
file is, so it compiles through ``fastdns._zcompile.compile_packed`` (C without the GIL) into
the image ``fastdns.compile.compile_zone`` makes of its model, byte for byte. The supervisor
keeps one :class:`HostedColumns` per such zone: each record set packed once (owner, type, TTL,
records in wire format); a change re-packs only the record sets it touched
(``Store.record_set_edits``), so a one-record change in a zone of a million record sets costs
the native compile of the packed parts, not a Python object per record.

A change to a zone whose image is large -- record sets replaced, added or deleted, and the SOA
serial moved -- is grafted onto the last image (``fastdns._zcompile.graft_image``) rather than
compiled again, where the compiler's rules allow it: the image answers as a full compile would,
for a copy of the old image instead of a compile of every record set.

A record set the native compiler does not handle -- a routing-policy member, an alias (its
values depend on its target), a type outside ``fastdns._zcompile.NATIVE_TYPES`` -- is kept as
a reason, and the zone takes the reference path (fastdns.hostedzones) while it has any.

:class:`HostedZoneModel` stands in for the model of a natively compiled hosted zone: it holds
the record sets the image was compiled from (the store replaces its dict on every change, so
the one held never changes) and builds the model only when something needs every record (an
outgoing zone transfer).
"""

from __future__ import annotations

import logging
import re
import struct
import weakref
from collections.abc import Iterable, Mapping

import dns.name
import dns.rdatatype

from fastdns._zcompile import NATIVE_TYPES, compile_packed, graft_image, pack_scanned
from fastdns._zscanner import ZoneScanError, scan_zone_text
from fastdns.model import POLICY_FIELDS, RecordSet, Zone
from fastdns.route53.names import name_text
from fastdns.route53.recordset import RecordSetKey, ResourceRecordSet
from fastdns.snapshot import SealedImage, image_buffer, sealed_image
from fastdns.store import Store

__all__ = ["HostedColumns", "HostedZoneModel", "master_file_text", "pack_record_set"]

log = logging.getLogger("fastdns")

_HEAD = struct.Struct("=HIH")  # type, TTL, record count (after the owner)
_RDLEN = struct.Struct("=H")
REPLACED, ADDED, DELETED = 0, 1, 2  # graft_image's kinds of change

# Grafting (see the module's doc): at most this many record sets changed at once, and until the
# bodies grafted onto an image since its compile are an eighth of it (the old bodies stay in it,
# unused, until the next compile).
GRAFT_MAX_RECORD_SETS = 256
GRAFT_MAX_GROWTH = 8


def not_plain(rrset: ResourceRecordSet) -> str | None:
    """Why the native compiler cannot take ``rrset``, or None when it can (plain RFC 1035
    data: no routing policy, no alias, a type it compiles)."""
    if rrset.set_identifier is not None or rrset.policy is not None:
        return f"{rrset.describe()}: a routing policy"
    if rrset.alias_target is not None:
        return f"{rrset.describe()}: an alias"
    if _native_type(rrset.type) is None:
        return f"{rrset.describe()}: type {rrset.type} is not compiled natively"
    return None


def pack_record_set(rrset: ResourceRecordSet) -> bytes | str:
    """``rrset`` in ``compile_packed``'s layout, or why the native compiler cannot take it."""
    reason = not_plain(rrset)
    if reason is not None:
        return reason
    rtype = _native_type(rrset.type)
    owner = rrset.name.to_wire()
    parts = [bytes((len(owner),)), owner, _HEAD.pack(rtype, rrset.ttl or 0, len(rrset.rdatas))]
    for rdata in rrset.rdatas:
        wire = rdata.to_wire()
        parts.append(_RDLEN.pack(len(wire)))
        parts.append(wire)
    return b"".join(parts)


# Record sets packed together from their text (a zone's load, or a change that adds many) rather
# than through dnspython one by one.
_PACK_AS_TEXT = 64
_NOT_PLAIN_FIELDS = frozenset(("SetIdentifier", "AliasTarget", *POLICY_FIELDS))
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def master_file_text(rrsets: Iterable[ResourceRecordSet]) -> tuple[bytes, list[int]] | None:
    """``(text, counts)``: the plain record sets of ``rrsets`` (see :func:`not_plain`) as
    master-file records, one line per value, and for each record set how many lines it has
    (0: not plain, left to ``pack_record_set``, which says why). None when none is plain.

    Names in values are absolute with or without the final dot (Route 53), as in a master file
    with the root as origin. Owners are the store's name text with its octal escapes
    (``\\052``) written as a master file's decimal ones (``\\042``)."""
    lines: list[str] = []
    counts: list[int] = []
    for rrset in rrsets:
        data = rrset.data
        records = data.get("ResourceRecords")
        # Most record sets have none of the fields that make one not plain: a set operation
        # rather than not_plain's lookups (a million record sets: 1.9 -> 1.5 s).
        if (
            not records
            or (not _NOT_PLAIN_FIELDS.isdisjoint(data) and not_plain(rrset) is not None)
            or _native_type(rrset.type) is None
        ):
            counts.append(0)
            continue
        owner = data["Name"]
        if "\\" in owner:
            owner = _OCTAL_ESCAPE.sub(lambda m: f"\\{int(m.group(1), 8):03d}", owner)
        head = f"{owner} {data['TTL']} IN {rrset.type} "
        lines += [head + record["Value"] for record in records]
        counts.append(len(records))
    if not lines:
        return None
    lines.append("")
    return "\n".join(lines).encode("utf-8"), counts


_type_codes: dict[str, int | None] = {}


def _native_type(rtype: str) -> int | None:
    """The type code of ``rtype`` if the native compiler takes it, else None."""
    try:
        return _type_codes[rtype]
    except KeyError:
        code = dns.rdatatype.from_text(rtype)
        _type_codes[rtype] = found = code if code in NATIVE_TYPES else None
        return found


class HostedColumns:
    """One hosted zone's record sets, packed, kept in step with the store by :meth:`sync`."""

    def __init__(self, zone_id: str):
        self.zone_id = zone_id
        self.generation = -1  # the store's edit generation last synced with
        self.packed: dict[RecordSetKey, bytes] = {}
        self.unhandled: dict[RecordSetKey, str] = {}
        self.record_sets: Mapping[RecordSetKey, ResourceRecordSet] = {}
        # Since the last compile: the record sets changed, each with its packed form before
        # (None: added); ``reshaped`` when the zone must be compiled (packed afresh, or a record
        # set moved between packed and unhandled).
        self.changed: dict[RecordSetKey, bytes | None] = {}
        self.reshaped = True
        # The last image when it is large (a SealedImage, shared with the served zone) and what
        # grafting onto it needs: its referenced nodes, record sets, serial and compiled size.
        self.image: SealedImage | None = None
        self.references: bytes | None = None
        self.image_record_sets = 0
        self.image_serial = 0
        self.compiled_size = 0

    def sync(self, store: Store) -> int:
        """Bring the packed record sets in step with the store; how many were packed.

        The packed record sets keep the order of the store's dict, which is the order the
        reference model is built in (and the image depends on it): the store's changes
        replace a record set in place, delete, or add at the end, and so does this (record
        sets new here are put in the order they have at the end of the store's dict). A
        record set deleted and added again between two syncs stays in its place here and
        moves to the end there: the same answers, templates numbered differently."""
        record_sets = store.record_sets(self.zone_id)
        generation, keys = store.record_set_edits(self.zone_id, self.generation)
        if self.unhandled and keys is not None and self.unhandled.keys() <= keys:
            # Perhaps the last record set the native compiler cannot take goes: the ones
            # packed meanwhile were added out of order, so pack the zone in the store's order.
            keys = None
        if keys is None:
            self.packed.clear()
            self.unhandled.clear()
            keys = record_sets.keys()
            added: list[RecordSetKey] = list(keys)
            self.reshaped = True
        else:
            added = []
            for key in keys:
                before = self.packed.get(key)
                if key in self.unhandled:
                    self.reshaped = True
                elif key not in self.changed:
                    self.changed[key] = before
                if key not in record_sets:
                    self.packed.pop(key, None)
                    self.unhandled.pop(key, None)
                elif before is not None or key in self.unhandled:
                    self._pack(key, record_sets[key])
                else:
                    added.append(key)
            if len(added) >= _PACK_AS_TEXT:
                self.reshaped = True
            if len(added) > 1:
                wanted = set(added)
                added = []
                for key in reversed(record_sets):
                    if key in wanted:
                        added.append(key)
                        if len(added) == len(wanted):
                            break
                added.reverse()
        if len(added) >= _PACK_AS_TEXT:
            self._pack_many(added, record_sets)
        else:
            for key in added:
                self._pack(key, record_sets[key])
        self.generation = generation
        self.record_sets = record_sets
        return len(keys)

    def _pack_many(
        self, keys: list[RecordSetKey], record_sets: Mapping[RecordSetKey, ResourceRecordSet]
    ) -> None:
        """Pack ``keys`` in order: the plain ones from their values' text, through the zone
        scanner all at once (``master_file_text``), the rest one by one."""
        text = master_file_text(record_sets[key] for key in keys)
        packed: list[bytes] | None = None
        if text is not None:
            lines, counts = text
            try:
                scanned = scan_zone_text(lines, f"hosted zone {self.zone_id}", ".")
                packed = pack_scanned(scanned, [n for n in counts if n])
            except (ZoneScanError, ValueError) as exc:
                # Values the store took from dnspython that the scanner reads otherwise:
                # pack them all through dnspython, as a change does.
                log.warning(
                    "hosted zone %s: packed one record set at a time: %s", self.zone_id, exc
                )
                counts = [0] * len(keys)
        else:
            counts = [0] * len(keys)
        plain = iter(packed or ())
        for key, count in zip(keys, counts, strict=True):
            if count:
                self.unhandled.pop(key, None)
                self.packed[key] = next(plain)
            else:
                self._pack(key, record_sets[key])

    def _pack(self, key: RecordSetKey, rrset: ResourceRecordSet) -> None:
        packed = pack_record_set(rrset)
        if isinstance(packed, str):
            self.packed.pop(key, None)
            self.unhandled[key] = packed
        else:
            self.unhandled.pop(key, None)
            self.packed[key] = packed

    def compile(
        self, origin: dns.name.Name
    ) -> tuple[bytes | SealedImage | None, str | None, int, int]:
        """``(image, None, record_sets, serial)`` from the packed record sets, or
        ``(None, reason, 0, 0)`` when the zone must take the reference path."""
        if self.unhandled:
            self._forget()
            return None, next(iter(self.unhandled.values())), 0, 0
        grafted = self._graft(origin)
        self.changed = {}
        self.reshaped = False
        if grafted is not None:
            return grafted, None, self.image_record_sets, self.image_serial
        self._forget()
        image, reason, record_sets, _soa, _ttl, serial, references = compile_packed(
            list(self.packed.values()), origin.to_wire(), image_buffer, with_references=True
        )
        image = sealed_image(image)
        if isinstance(image, SealedImage):
            self.image, self.references = image, references
            self.image_record_sets, self.image_serial = record_sets, serial
            self.compiled_size = len(image)
        return image, reason, record_sets, serial

    def _forget(self) -> None:
        self.image = self.references = None
        self.changed = {}

    def _graft(self, origin: dns.name.Name) -> SealedImage | None:
        """The last image with this compile's changes grafted on, or None when the zone must
        be compiled (see the module's doc)."""
        if self.image is None or self.reshaped or len(self.changed) > GRAFT_MAX_RECORD_SETS:
            return None
        if len(self.image) - self.compiled_size > self.compiled_size // GRAFT_MAX_GROWTH:
            return None
        apex = name_text(origin)
        origin_wire = origin.to_wire().lower()
        soa, ns = self.packed.get((apex, "SOA", "")), self.packed.get((apex, "NS", ""))
        if soa is None or ns is None:
            return None
        changes: list[tuple[bytes, int, int]] = []
        parts = [soa, ns]
        serials = (-1, -1)
        added = 0
        for key, before in self.changed.items():
            after = self.packed.get(key)
            if after == before:
                continue  # the same again, or added and deleted
            if key[1] == "SOA":
                serials = _serial_change(before, after) if before and after else None
                if serials is None:
                    return None
                continue
            if after is not None:
                if key[1] in _TARGET_TYPES and not targets_outside(after, origin_wire):
                    return None  # its answers hold other names' data (graft_image's contract)
                parts.append(after)
            packed = after if after is not None else before
            kind = ADDED if before is None else DELETED if after is None else REPLACED
            added += (kind == ADDED) - (kind == DELETED)
            owner_end = 1 + packed[0]
            changes.append((packed[1:owner_end], _HEAD.unpack_from(packed, owner_end)[0], kind))
        if not changes and serials[0] < 0:
            return self.image
        mini, reason, *_ = compile_packed(parts, origin.to_wire())
        if mini is None:
            log.debug("hosted zone %s: compiled, not grafted: %s", self.zone_id, reason)
            return None
        image, references, reason = graft_image(
            self.image, mini, changes, *serials, self.references, image_buffer
        )
        if image is None:
            log.debug("hosted zone %s: compiled, not grafted: %s", self.zone_id, reason)
            return None
        self.image, self.references = sealed_image(image), references
        self.image_record_sets += added
        if serials[1] >= 0:
            self.image_serial = serials[1]
        log.info(
            "hosted zone %s: %d record sets%s grafted onto the last image (%d bytes more "
            "than its compile)",
            self.zone_id,
            len(changes),
            " and the SOA serial" if serials[1] >= 0 else "",
            len(self.image) - self.compiled_size,
        )
        return self.image


# Types whose answers follow a name in their RDATA (a CNAME chain, MX and SRV targets'
# addresses): grafted only when every such name is outside the zone.
_TARGET_TYPES = {"CNAME": 0, "MX": 2, "SRV": 6}  # the name's offset in the RDATA


def targets_outside(packed: bytes, origin_wire: bytes) -> bool:
    """Whether every name a packed CNAME, MX or SRV record set points at is outside the zone
    whose origin is ``origin_wire`` (uncompressed wire format, lower-cased)."""
    owner_end = 1 + packed[0]
    rtype, _ttl, count = _HEAD.unpack_from(packed, owner_end)
    skip = _TARGET_TYPES[dns.rdatatype.to_text(rtype)]
    at = owner_end + 8
    for _ in range(count):
        rdlen = _RDLEN.unpack_from(packed, at)[0]
        name = packed[at + 2 + skip : at + 2 + rdlen].lower()
        at += 2 + rdlen
        label = 0
        while label < len(name):
            if name[label:] == origin_wire:
                return False
            label += 1 + name[label]
    return True


def _serial_change(before: bytes, after: bytes) -> tuple[int, int] | None:
    """(old serial, new serial) when two packed SOA record sets differ in the serial alone
    (the last record's RDATA ends with serial, refresh, retry, expire, minimum: RFC 1035
    §3.3.13), else None."""
    if len(before) != len(after) or before[-16:] != after[-16:] or before[:-20] != after[:-20]:
        return None
    return int.from_bytes(before[-20:-16], "big"), int.from_bytes(after[-20:-16], "big")


class HostedZoneModel(Zone):
    """The model of a hosted zone compiled natively, built from its record sets when needed.

    ``origin``, ``source`` and ``soa`` are held; ``rrsets`` builds the model
    (``fastdns.route53.tozone.zone_from_record_sets``) and keeps it only while it is in use.
    """

    def __init__(
        self,
        origin: dns.name.Name,
        source: str,
        record_sets: Mapping[RecordSetKey, ResourceRecordSet],
    ):
        # Not Zone's generated __init__: the record sets are not stored as models.
        self.origin = origin
        self.source = source
        self._record_sets = record_sets
        self._loaded: weakref.ref[Zone] | None = None
        self._soa: RecordSet | None = None

    @property
    def soa(self) -> RecordSet | None:  # type: ignore[override]
        if self._soa is None:
            from fastdns.route53.names import name_text
            from fastdns.route53.tozone import model_record_set

            rrset = self._record_sets.get((name_text(self.origin), "SOA", ""))
            if rrset is not None:
                self._soa = model_record_set(rrset, {})
        return self._soa

    @property
    def rrsets(self) -> dict:  # type: ignore[override]
        return self.materialized().rrsets

    def materialized(self) -> Zone:
        zone = self._loaded() if self._loaded is not None else None
        if zone is None:
            from fastdns.route53.tozone import zone_from_record_sets

            zone = zone_from_record_sets(self.origin, self._record_sets.values())
            self._loaded = weakref.ref(zone)
        return zone

    def __repr__(self) -> str:
        return f"HostedZoneModel({self.origin}, {self.source!r})"
