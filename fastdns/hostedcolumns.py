"""A hosted zone's record sets packed for the native compiler, patched per change (issue 8).

An unsigned hosted zone without routing policies or aliases is plain RFC 1035 data, as a zone
file is, so it compiles through ``fastdns._zcompile.compile_packed`` (C without the GIL) into
the image ``fastdns.compile.compile_zone`` makes of its model, byte for byte. The supervisor
keeps one :class:`HostedColumns` per such zone: each record set packed once (owner, type, TTL,
records in wire format); a change re-packs only the record sets it touched
(``Store.record_set_edits``), so a one-record change in a zone of a million record sets costs
the native compile of the packed parts, not a Python object per record.

A change to a zone whose image is large is grafted onto the last image rather than compiled
again (fastdns.packedzone, which this module's class extends).

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
from collections.abc import Iterable, Mapping

import dns.name
import dns.rdatatype

from fastdns._zcompile import NATIVE_TYPES, pack_scanned
from fastdns._zscanner import ZoneScanError, scan_zone_text
from fastdns.model import POLICY_FIELDS, LazyZone, RecordSet, Zone
from fastdns.packedzone import PackedZone, pack_records, targets_outside
from fastdns.route53.names import name_text
from fastdns.route53.recordset import RecordSetKey, ResourceRecordSet
from fastdns.snapshot import SealedImage
from fastdns.store import Store

__all__ = [
    "HostedColumns",
    "HostedZoneModel",
    "master_file_text",
    "pack_record_set",
    "targets_outside",
]

log = logging.getLogger("fastdns")


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
    return pack_records(
        rrset.name.to_wire(), rtype, rrset.ttl or 0, (rdata.to_wire() for rdata in rrset.rdatas)
    )


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


class HostedColumns(PackedZone):
    """One hosted zone's record sets, packed, kept in step with the store by :meth:`sync`."""

    def __init__(self, zone_id: str):
        super().__init__(f"hosted zone {zone_id}")
        self.zone_id = zone_id
        self.generation = -1  # the store's edit generation last synced with
        self.unhandled: dict[RecordSetKey, str] = {}
        self.record_sets: Mapping[RecordSetKey, ResourceRecordSet] = {}

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
                else:
                    self.note_change(key)
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

    def key_of(self, owner: bytes, rtype: int) -> RecordSetKey:
        return (name_text(dns.name.from_wire(owner, 0)[0]), dns.rdatatype.to_text(rtype), "")

    def compile(
        self, origin: dns.name.Name
    ) -> tuple[bytes | SealedImage | None, str | None, int, int]:
        """``(image, None, record_sets, serial)`` from the packed record sets, or
        ``(None, reason, 0, 0)`` when the zone must take the reference path."""
        if self.unhandled:
            self.forget()
            return None, next(iter(self.unhandled.values())), 0, 0
        return super().compile(origin)


class HostedZoneModel(LazyZone):
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

    def _build(self) -> Zone:
        from fastdns.route53.tozone import zone_from_record_sets

        return zone_from_record_sets(self.origin, self._record_sets.values())

    def __repr__(self) -> str:
        return f"HostedZoneModel({self.origin}, {self.source!r})"
