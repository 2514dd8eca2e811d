"""RFC 2136 dynamic UPDATE of a hosted zone, as a Route 53 change batch.

An UPDATE does not write the zone itself: ``apply_update`` checks the prerequisites (§3.2)
against the zone as it is served from the store, prescans the update section (§3.4.1), applies
it to a copy of the zone's record sets (§3.4.2) and turns the difference into a change batch
(DELETE the record sets it removes or changes, then UPSERT their new versions) that goes
through ``Store.change_record_sets`` -- the API's own path: the same validation, one
transaction, the SOA serial moved forward, a change row (so GetChange shows it, INSYNC comes
from the same publish, and IXFR serves it). Nothing changes unless the whole message does.

What an UPDATE can name is RRs; a hosted zone also has record sets that are not plain RRsets.
An alias record set or a routing-policy group is seen, for prerequisites, as AXFR sends it (its
resolved values; the group's first member); deleting the RRset or the name deletes all of its
record sets; adding or deleting single RRs in it is REFUSED (change those through the API).

Runs on the store thread (``Store`` is single-threaded); the caller has checked the zone
section and the requester's key (§3.1, §3.3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from fastdns.route53.errors import ApiError
from fastdns.route53.names import name_text
from fastdns.route53.recordset import RecordSetKey, ResourceRecordSet
from fastdns.store import ChangeInfo, Store
from fastdns.xfr.ixfr import transferred

log = logging.getLogger("fastdns.xfr")

__all__ = ["UpdateResult", "apply_update"]

# RFC 2136 §3.4.1.3: types an RR to delete with class ANY may not have.
_NOT_DELETABLE = {
    dns.rdatatype.AXFR,
    dns.rdatatype.IXFR,
    dns.rdatatype.MAILA,
    dns.rdatatype.MAILB,
}


@dataclass
class UpdateResult:
    """The RCODE to answer, why (for the log), and the change stored (None: nothing changed)."""

    rcode: int
    reason: str = ""
    change: ChangeInfo | None = None


class _Refusal(Exception):
    def __init__(self, rcode: int, reason: str) -> None:
        super().__init__(reason)
        self.rcode = rcode
        self.reason = reason


def _in_zone(name: dns.name.Name, origin: dns.name.Name) -> None:
    if not name.is_subdomain(origin):
        raise _Refusal(dns.rcode.NOTZONE, f"{name} is outside the zone {origin}")


class _Groups:
    """``group_record_sets`` of a zone's record sets, made per (name, type) when asked for
    (``get`` is all ``transferred`` and ``model_record_set`` use), not for the whole zone."""

    def __init__(self, record_sets, keys_at) -> None:
        self.record_sets = record_sets
        self.keys_at = keys_at

    def get(self, group: tuple[str, str], default=None):
        name, rtype = group
        members = [self.record_sets[k] for k in self.keys_at(name) if k[1] == rtype]
        if not members:
            return default
        return sorted(members, key=lambda r: r.set_identifier or "")


class _ZoneView:
    """The zone's record sets and what AXFR would send for each (name, type)."""

    def __init__(
        self,
        record_sets: dict[RecordSetKey, ResourceRecordSet],
        keys_at: Callable[[str], list[RecordSetKey]],
    ) -> None:
        self.record_sets = record_sets
        self.keys_at = keys_at
        self.groups = _Groups(record_sets, keys_at)
        self._served: dict[tuple[str, str], frozenset | None] = {}

    def served(self, name: str, rtype: str) -> frozenset | None:
        """The RDATAs served for (name, type), None when nothing is."""
        key = (name, rtype)
        if key not in self._served:
            value = transferred(self.groups, key)
            self._served[key] = value[2] if value is not None else None
        return self._served[key]

    def name_in_use(self, name: str) -> bool:
        return any(self.served(name, t) for t in {k[1] for k in self.keys_at(name)})

    def rrset_exists(self, name: str, rtype: str) -> bool:
        return bool(self.served(name, rtype))


def _check_prerequisites(message: dns.message.Message, origin, view: _ZoneView) -> None:
    """RFC 2136 §3.2: every prerequisite holds, or the RCODE that says which does not."""
    required: dict[tuple[str, str], set] = {}
    for rrset in message.answer:  # the prerequisite section, one RR per "RRset"
        if rrset.ttl != 0:
            raise _Refusal(dns.rcode.FORMERR, "a prerequisite with a TTL")
        _in_zone(rrset.name, origin)
        name = name_text(rrset.name)
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        if rrset.deleting == dns.rdataclass.ANY:
            if len(rrset):
                raise _Refusal(dns.rcode.FORMERR, "a class ANY prerequisite with RDATA")
            if rrset.rdtype == dns.rdatatype.ANY:
                if not view.name_in_use(name):  # §2.4.4 "name is in use"
                    raise _Refusal(dns.rcode.NXDOMAIN, f"{name} is not in use")
            elif not view.rrset_exists(name, rtype):  # §2.4.1 "RRset exists"
                raise _Refusal(dns.rcode.NXRRSET, f"no {name} {rtype} RRset")
        elif rrset.deleting == dns.rdataclass.NONE:
            if len(rrset):
                raise _Refusal(dns.rcode.FORMERR, "a class NONE prerequisite with RDATA")
            if rrset.rdtype == dns.rdatatype.ANY:
                if view.name_in_use(name):  # §2.4.5 "name is not in use"
                    raise _Refusal(dns.rcode.YXDOMAIN, f"{name} is in use")
            elif view.rrset_exists(name, rtype):  # §2.4.3 "RRset does not exist"
                raise _Refusal(dns.rcode.YXRRSET, f"{name} {rtype} exists")
        elif rrset.rdclass == dns.rdataclass.IN and rrset.deleting is None:
            required.setdefault((name, rtype), set()).update(rrset)
        else:
            raise _Refusal(dns.rcode.FORMERR, "a prerequisite of another class")
    for (name, rtype), rdatas in required.items():  # §2.4.2 "RRset exists (value dependent)"
        if view.served(name, rtype) != frozenset(rdatas):
            raise _Refusal(dns.rcode.NXRRSET, f"{name} {rtype} does not have those values")


def _prescan(message: dns.message.Message, origin) -> None:
    """RFC 2136 §3.4.1: the update section is well formed before anything is applied."""
    for rrset in message.authority:  # the update section
        _in_zone(rrset.name, origin)
        if rrset.rdclass != dns.rdataclass.IN:
            raise _Refusal(dns.rcode.FORMERR, "an update of another class")
        if rrset.deleting is None:
            if dns.rdatatype.is_metatype(rrset.rdtype) or rrset.rdtype == dns.rdatatype.ANY:
                raise _Refusal(dns.rcode.FORMERR, "adding an RR of a meta type")
        elif rrset.deleting == dns.rdataclass.ANY:
            if rrset.ttl != 0 or len(rrset) or rrset.rdtype in _NOT_DELETABLE:
                raise _Refusal(dns.rcode.FORMERR, "a malformed delete of an RRset or name")
        elif rrset.deleting == dns.rdataclass.NONE:
            if rrset.ttl != 0 or dns.rdatatype.is_metatype(rrset.rdtype):
                raise _Refusal(dns.rcode.FORMERR, "a malformed delete of an RR")
        else:
            raise _Refusal(dns.rcode.FORMERR, "an update of another class")


def _serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2 for 32-bit serials."""
    return a != b and (a - b) % 2**32 < 2**31


class _Working:
    """The zone's record sets with the update section applied: what changed, over the
    store's record sets (which stay as they are)."""

    def __init__(self, origin: dns.name.Name, record_sets: dict, keys_at) -> None:
        self.origin = name_text(origin)
        self.base = record_sets
        self.keys_at = keys_at
        self.changed: dict[RecordSetKey, ResourceRecordSet | None] = {}  # None: deleted

    def get(self, key: RecordSetKey) -> ResourceRecordSet | None:
        if key in self.changed:
            return self.changed[key]
        return self.base.get(key)

    def keys(self, name: str, rtype: str | None = None) -> list[RecordSetKey]:
        keys = dict.fromkeys(self.keys_at(name))
        keys.update(dict.fromkeys(k for k in self.changed if k[0] == name))
        return [k for k in keys if (rtype is None or k[1] == rtype) and self.get(k) is not None]

    def plain(self, name: str, rtype: str) -> ResourceRecordSet | None:
        """The one simple (no policy, no alias) record set of (name, type); ``_Refusal`` if
        (name, type) is an alias or a routing-policy group, which single RRs cannot change."""
        keys = self.keys(name, rtype)
        if not keys:
            return None
        rrset = self.get((name, rtype, ""))
        if len(keys) > 1 or rrset is None or rrset.alias_target is not None:
            raise _Refusal(
                dns.rcode.REFUSED,
                f"{name} {rtype} is an alias or a routing-policy group: change it with the API",
            )
        return rrset

    def put(self, name: str, rtype: str, ttl: int, rdatas, old: ResourceRecordSet | None):
        values = [{"Value": rdata.to_text()} for rdata in rdatas]
        data = dict(old.data) if old is not None else {"Name": name, "Type": rtype}
        data.update(TTL=ttl, ResourceRecords=values)
        try:
            rrset = ResourceRecordSet.from_api(data)
        except ApiError as exc:
            raise _Refusal(dns.rcode.REFUSED, exc.message) from None
        self.changed[rrset.key] = rrset

    def add(self, rrset: dns.rrset.RRset) -> None:
        """§3.4.2.2: add an RR (an SOA only with a later serial; CNAME exclusivity)."""
        name, rtype = name_text(rrset.name), dns.rdatatype.to_text(rrset.rdtype)
        rdata = rrset[0]
        if rrset.rdtype == dns.rdatatype.SOA:
            soa = self.get((self.origin, "SOA", ""))
            if (
                name == self.origin
                and soa is not None
                and _serial_gt(rdata.serial, soa.rdatas[0].serial)
            ):
                self.put(name, rtype, rrset.ttl, [rdata], soa)
            return
        types = {k[1] for k in self.keys(name)}
        if rtype == "CNAME" and types - {"CNAME"}:
            return  # a CNAME cannot join other data: ignored (§3.4.2.2)
        if rtype != "CNAME" and "CNAME" in types:
            return  # nor other data a CNAME
        old = self.plain(name, rtype)
        rdatas = list(old.rdatas) if old is not None else []
        if rdata in rdatas:
            if old.ttl == rrset.ttl:
                return
        else:
            rdatas.append(rdata)
        # Route 53 keeps one TTL per record set: the RR added sets it (RFC 2181 §5.2).
        self.put(name, rtype, rrset.ttl, rdatas, old)

    def delete(self, rrset: dns.rrset.RRset) -> None:
        """§3.4.2.3 (class ANY: an RRset, or every RRset of a name) and §3.4.2.4 (class
        NONE: one RR). The apex SOA and NS RRsets are never deleted whole, nor the last NS."""
        name, rtype = name_text(rrset.name), dns.rdatatype.to_text(rrset.rdtype)
        apex = name == self.origin
        if rrset.deleting == dns.rdataclass.ANY:
            if rrset.rdtype == dns.rdatatype.ANY:
                doomed = [k for k in self.keys(name) if not (apex and k[1] in ("SOA", "NS"))]
            elif apex and rtype in ("SOA", "NS"):
                return
            else:
                doomed = self.keys(name, rtype)
            for key in doomed:
                self.changed[key] = None
            return
        if rrset.rdtype == dns.rdatatype.SOA:
            return
        old = self.plain(name, rtype)
        if old is None or rrset[0] not in old.rdatas:
            return
        rdatas = [r for r in old.rdatas if r != rrset[0]]
        if not rdatas:
            if apex and rtype == "NS":
                return
            self.changed[old.key] = None
        else:
            self.put(name, rtype, old.ttl or 0, rdatas, old)


def _change_batch(before: dict, changed: dict) -> list[tuple[str, ResourceRecordSet]]:
    """The Route 53 changes from ``before`` to it with ``changed`` (key -> record set, None
    for deleted) applied: DELETEs, then UPSERTs."""
    deletes, upserts = [], []
    for key, new in changed.items():
        old = before.get(key)
        if new is None:
            if old is not None:
                deletes.append(("DELETE", old))
        elif old is None or (new is not old and not new.same_values(old)):
            upserts.append(("UPSERT", new))
    return deletes + upserts


def apply_update(
    store: Store,
    zone_id: str,
    origin: dns.name.Name,
    message: dns.message.Message,
    comment: str,
    health_check_exists: Callable[[str], bool] | None = None,
    policy_problem: Callable[[ResourceRecordSet], str | None] | None = None,
) -> UpdateResult:
    """Apply UPDATE ``message`` (parsed with one RR per RRset, in order) to hosted zone
    ``zone_id`` through ``store.change_record_sets``; what to answer."""
    current = store.record_sets(zone_id)
    keys_at = store.keys_at(zone_id)
    try:
        _check_prerequisites(message, origin, _ZoneView(current, keys_at))
        _prescan(message, origin)
        working = _Working(origin, current, keys_at)
        for rrset in message.authority:
            if rrset.deleting is None:
                working.add(rrset)
            else:
                working.delete(rrset)
    except _Refusal as refusal:
        return UpdateResult(refusal.rcode, refusal.reason)
    changes = _change_batch(current, working.changed)
    if not changes:
        return UpdateResult(dns.rcode.NOERROR, "nothing to change")
    try:
        change, _result = store.change_record_sets(
            zone_id, changes, comment, health_check_exists, policy_problem
        )
    except ApiError as exc:
        return UpdateResult(dns.rcode.REFUSED, f"{exc.code}: {exc.message}")
    return UpdateResult(dns.rcode.NOERROR, f"{len(changes)} record set changes", change)
