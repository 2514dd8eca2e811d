"""Incremental zone transfer (RFC 1995) of a hosted zone from the store's change history.

Every change batch is kept with the record sets it deleted and added and the SOA serial it
produced (``Store.zone_changes``). ``difference_sequence`` walks that history back from the
zone as it is now, undoing one change at a time, and turns each change between the client's
serial and the served one into what RFC 1995 §4 sends for it: the old SOA, the RRs deleted,
the new SOA, the RRs added. The difference is taken between what AXFR would send before and
after the change (``transferred``), not between record sets: an alias record set takes its
target's values, so a change to the target moves the alias too, and a routing-policy group is
sent as its first candidate (by SetIdentifier), as ``fastdns.xfr.axfr`` sends it. A TTL change
deletes every old RR of the RRset and adds every new one, since the RRs of an RRset share one
TTL (RFC 2181 §5.2).

When the history does not reach back to the client's serial (or has a change that did not move
the serial, or a change of DNSSEC data: ``fastdns.dnssec.serial``), the answer is None and the
caller falls back to the whole zone (RFC 1995 §4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.rrset

from fastdns.dnssec.serial import DNSSEC_DIFF_KEY
from fastdns.route53.recordset import RecordSetKey, ResourceRecordSet
from fastdns.route53.tozone import model_record_set

__all__ = ["Difference", "difference_sequence", "ixfr_rrsets", "transferred"]

# Changes walked back at most for one request: beyond that a whole zone is cheaper to send.
MAX_HISTORY = 10000

GroupKey = tuple[str, str]  # (name text, type)
Transferred = tuple[dns.name.Name, int, frozenset] | None  # (owner, TTL, rdatas) or absent


@dataclass
class Difference:
    """One change as IXFR sends it: SOA before, RRsets deleted, SOA after, RRsets added."""

    old_soa: dns.rrset.RRset
    deleted: list[dns.rrset.RRset] = field(default_factory=list)
    new_soa: dns.rrset.RRset | None = None
    added: list[dns.rrset.RRset] = field(default_factory=list)

    def size(self) -> int:
        """RRs this difference sends (both SOAs included)."""
        return 2 + sum(len(r) for r in self.deleted) + sum(len(r) for r in self.added)


class _History:
    """A hosted zone's record sets at one point of its history, as AXFR would send them."""

    def __init__(self, record_sets: Iterable[ResourceRecordSet]) -> None:
        self.sets: dict[RecordSetKey, ResourceRecordSet] = {}
        self.groups: dict[GroupKey, list[ResourceRecordSet]] = {}
        self.aliases: set[GroupKey] = set()  # groups with an alias member (now or before)
        for rrset in record_sets:
            self.put(rrset)

    def put(self, rrset: ResourceRecordSet) -> None:
        self.remove(rrset.key)
        self.sets[rrset.key] = rrset
        members = self.groups.setdefault((rrset.name_text, rrset.type), [])
        members.append(rrset)
        members.sort(key=lambda r: r.set_identifier or "")
        if rrset.alias_target is not None:
            self.aliases.add((rrset.name_text, rrset.type))

    def remove(self, key: RecordSetKey) -> None:
        old = self.sets.pop(key, None)
        if old is None:
            return
        group = (old.name_text, old.type)
        members = [r for r in self.groups[group] if r.key != key]
        if members:
            self.groups[group] = members
        else:
            del self.groups[group]

    def soa(self, origin_text: str) -> ResourceRecordSet | None:
        return self.sets.get((origin_text, "SOA", ""))

    def transferred(self, group: GroupKey) -> Transferred:
        return transferred(self.groups, group)


def transferred(groups: Mapping[GroupKey, list[ResourceRecordSet]], group: GroupKey) -> Transferred:
    """What AXFR sends for (name, type) of ``groups`` (``group_record_sets``): its first
    candidate that resolves (an alias whose target is gone is no candidate), if it has data."""
    for rrset in groups.get(group, ()):
        model = model_record_set(rrset, groups)  # type: ignore[arg-type]
        if model is not None:
            if not model.rdatas:
                return None
            return model.name, model.ttl, frozenset(model.rdatas)
    return None


def _soa_rrset(rrset: ResourceRecordSet) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(rrset.name, rrset.ttl or 0, rrset.rdatas)


def _rrset(name: dns.name.Name, ttl: int, rdatas) -> dns.rrset.RRset:
    rdatas = sorted(rdatas, key=lambda r: r.to_digestable())
    return dns.rrset.from_rdata_list(name, ttl, rdatas)


def _difference(before: Transferred, after: Transferred, into: Difference) -> None:
    if before == after:
        return
    if before is not None and after is not None and before[1] == after[1]:
        gone, new = before[2] - after[2], after[2] - before[2]
    else:
        gone = before[2] if before is not None else frozenset()
        new = after[2] if after is not None else frozenset()
    if gone:
        into.deleted.append(_rrset(before[0], before[1], gone))
    if new:
        into.added.append(_rrset(after[0], after[1], new))


def difference_sequence(
    origin_text: str,
    current: Iterable[ResourceRecordSet],
    history: Iterable[tuple[int | None, dict]],
    client_serial: int,
    served_serial: int,
) -> tuple[list[Difference], Difference] | None:
    """The differences from ``client_serial`` to ``served_serial``: one per change, oldest
    first, and all of them condensed into one (RFC 1995 §5) -- or None when ``history``
    (newest first, as ``Store.zone_changes`` gives it, starting at the zone's ``current``
    record sets) does not hold every change between them.

    The store may already be ahead of what is served (a change not yet compiled): those
    changes are undone first and not sent.
    """
    state = _History(current)
    soa = state.soa(origin_text)
    if soa is None or not soa.rdatas:
        return None
    serial = soa.rdatas[0].serial
    collecting = serial == served_serial
    differences: list[Difference] = []
    served: dict[GroupKey, Transferred] = {}  # what the served version has, for condensing
    served_soa = soa if collecting else None
    for count, (_serial, diff) in enumerate(history):
        if collecting and serial == client_serial:
            break
        if count >= MAX_HISTORY:
            return None
        if collecting and DNSSEC_DIFF_KEY in diff:
            # Signing turned on or off, keys or signatures replaced: the difference is in
            # records the history does not hold (fastdns.dnssec.serial).
            return None
        deleted = [ResourceRecordSet.from_api(raw) for raw in diff.get("deleted", ())]
        added = [ResourceRecordSet.from_api(raw) for raw in diff.get("added", ())]
        affected = {(r.name_text, r.type) for r in (*deleted, *added)}
        affected.discard((origin_text, "SOA"))
        new_soa = state.soa(origin_text)
        if collecting:
            affected |= state.aliases
            after = {group: state.transferred(group) for group in affected}
            for group, value in after.items():
                served.setdefault(group, value)
        for rrset in added:
            state.remove(rrset.key)
        for rrset in deleted:
            state.put(rrset)
        old_soa = state.soa(origin_text)
        if old_soa is None or not old_soa.rdatas:
            return None  # back to before the zone existed
        old_serial = old_soa.rdatas[0].serial
        if old_serial == serial:
            return None  # a change that kept the serial: no IXFR step can carry it
        if collecting:
            difference = Difference(_soa_rrset(old_soa), new_soa=_soa_rrset(new_soa))
            for group in sorted(affected):
                _difference(state.transferred(group), after[group], difference)
            differences.append(difference)
        serial = old_serial
        if not collecting and serial == served_serial:
            collecting, served_soa = True, old_soa
    if not collecting or serial != client_serial or served_soa is None:
        return None
    differences.reverse()
    condensed = Difference(_soa_rrset(state.soa(origin_text)), new_soa=_soa_rrset(served_soa))
    for group in sorted(served):
        _difference(state.transferred(group), served[group], condensed)
    return differences, condensed


def ixfr_rrsets(
    current_soa: dns.rrset.RRset, differences: list[Difference]
) -> Iterable[dns.rrset.RRset]:
    """The IXFR answer (RFC 1995 §4): the current SOA, each difference (old SOA, deleted,
    new SOA, added), the current SOA again."""
    yield current_soa
    for difference in differences:
        yield difference.old_soa
        yield from difference.deleted
        yield difference.new_soa
        yield from difference.added
    yield current_soa
