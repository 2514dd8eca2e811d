"""Between a hosted zone's record sets and the server's zone model (and master-file text).

``zone_from_record_sets`` is what the compiler sees of a hosted zone: every record set becomes a
``fastdns.model.RecordSet`` candidate under its (name, type). An alias record set takes the
values and the TTL of the record set(s) it targets in the same zone (Route 53: "an alias record
has no TTL of its own"), resolved here once per compile, and names its target, which the
compiler evaluates per query when it is a routing-policy group; an alias whose target is gone
answers as if absent. Routing-policy members keep their API fields in ``RecordSet.policy``.

``record_sets_from_zone`` and ``zone_file_text`` import from and export to RFC 1035 master
files.
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdatatype

from fastdns.model import RecordSet, SourceLocation, Zone
from fastdns.route53.names import name_text
from fastdns.route53.recordset import SUPPORTED_TYPES, ResourceRecordSet

__all__ = [
    "group_record_sets",
    "model_record_set",
    "record_sets_from_zone",
    "zone_file_text",
    "zone_from_record_sets",
]

MAX_ALIAS_DEPTH = 8  # an alias may target an alias; stop at loops


def group_record_sets(
    record_sets: Iterable[ResourceRecordSet],
) -> dict[tuple[str, str], list[ResourceRecordSet]]:
    """Record sets by (name text, type), each group ordered by SetIdentifier."""
    groups: dict[tuple[str, str], list[ResourceRecordSet]] = {}
    for rrset in record_sets:
        groups.setdefault((rrset.name_text, rrset.type), []).append(rrset)
    for members in groups.values():
        members.sort(key=lambda r: r.set_identifier or "")
    return groups


def zone_from_record_sets(origin: dns.name.Name, record_sets: Iterable[ResourceRecordSet]) -> Zone:
    """The zone model of a hosted zone's record sets (candidates ordered by SetIdentifier)."""
    # Every group is ordered before any alias is resolved: an alias takes its target group's
    # first member, whatever order the record sets came in.
    groups = group_record_sets(record_sets)
    zone = Zone(origin, source=origin.to_text())
    for members in groups.values():
        for rrset in members:
            model = model_record_set(rrset, groups)
            if model is not None:
                zone.add(model)
    return zone


def model_record_set(
    rrset: ResourceRecordSet, groups: dict[tuple[str, str], list[ResourceRecordSet]]
) -> RecordSet | None:
    """The model of one record set, an alias resolved through ``groups`` (as
    ``group_record_sets`` makes them); None for an alias whose target is gone."""
    ttl, rdatas = rrset.ttl, rrset.rdatas
    target = rrset
    depth = 0
    while target.alias_target is not None:
        depth += 1
        members = groups.get((target.alias_target["DNSName"], rrset.type))
        if not members or depth > MAX_ALIAS_DEPTH:
            return None
        target = members[0]
        ttl, rdatas = target.ttl, target.rdatas
    alias = rrset.alias_target
    return RecordSet(
        name=rrset.name,
        rdtype=dns.rdatatype.from_text(rrset.type),
        ttl=ttl or 0,
        rdatas=rdatas,
        source=SourceLocation(rrset.describe(), 0),
        set_identifier=rrset.set_identifier,
        policy=rrset.data if rrset.policy is not None else None,
        health_check_id=rrset.data.get("HealthCheckId"),
        alias_target=dns.name.from_text(alias["DNSName"]) if alias is not None else None,
        evaluate_target_health=bool(alias and alias.get("EvaluateTargetHealth")),
    )


def record_sets_from_zone(zone: Zone) -> tuple[list[ResourceRecordSet], list[str]]:
    """A zone-file zone as API record sets; also the reasons for record sets left out (types
    the API does not store)."""
    record_sets, skipped = [], []
    for model in zone:
        rtype = dns.rdatatype.to_text(model.rdtype)
        if rtype not in SUPPORTED_TYPES:
            where = f"{model.source}: " if model.source else ""
            skipped.append(f"{where}{model.name} {rtype}: type not supported by hosted zones")
            continue
        raw = {
            "Name": name_text(model.name),
            "Type": rtype,
            "TTL": model.ttl,
            "ResourceRecords": [{"Value": rdata.to_text()} for rdata in model.rdatas],
        }
        # The values are the rdatas' text: checked as the API checks them, not parsed again.
        record_sets.append(ResourceRecordSet.from_api(raw, tuple(model.rdatas)))
    return record_sets, skipped


def zone_file_text(origin: dns.name.Name, record_sets: Iterable[ResourceRecordSet]) -> str:
    """An RFC 1035 master file of a hosted zone (aliases resolved; policy members written as
    comments, since a master file cannot express a routing policy)."""
    zone = zone_from_record_sets(origin, record_sets)
    lines = [f"$ORIGIN {origin.to_text()}"]
    soa = zone.soa
    ordered = sorted(zone, key=lambda r: (r is not soa, r.name, int(r.rdtype)))
    for model in ordered:
        owner = model.name.to_text()
        rtype = dns.rdatatype.to_text(model.rdtype)
        prefix = ""
        if model.set_identifier is not None:
            prefix = "; "
            lines.append(f"; routing policy member {model.set_identifier!r}: {model.policy}")
        for rdata in model.rdatas:
            lines.append(f"{prefix}{owner} {model.ttl} IN {rtype} {rdata.to_text()}")
    return "\n".join(lines) + "\n"
