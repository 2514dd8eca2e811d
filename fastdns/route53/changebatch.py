"""ChangeResourceRecordSets: check a change batch against a zone and work out its result.

Route 53's rules, applied change by change to a working copy of the zone so that a batch may
DELETE a record set and CREATE it again, and so that deleting the same record set twice fails:

* CREATE fails if the record set exists; DELETE fails if it does not, or if any field or value
  differs from what is stored (values compared in any order); UPSERT creates or replaces.
* Every name lies in the zone. The apex SOA can only be UPSERTed; the apex NS cannot be deleted.
* The members of a (name, type) group share one routing policy: a simple record set cannot sit
  beside policy record sets, nor a weighted one beside a failover one.
* An alias targets a record set of the same type in the same hosted zone, not a CNAME.
* The batch holds at most 1,000 values and 32,000 characters of values, UPSERTs counted twice.

Then the zone that results is checked as a whole with the same rules as a zone file
(``fastdns.validate``: CNAME beside other data, data below a delegation, ...). Every problem of
the batch is reported at once in one ``InvalidChangeBatch``; malformed input raises
``InvalidInput`` at the first problem, like Route 53's schema check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import dns.name

from fastdns.route53.errors import InvalidChangeBatch, InvalidInput
from fastdns.route53.names import name_text
from fastdns.route53.recordset import RecordSetKey, ResourceRecordSet
from fastdns.route53.tozone import zone_from_record_sets
from fastdns.validate import validate_zone

__all__ = ["ACTIONS", "BatchResult", "apply_change_batch", "parse_changes"]

ACTIONS = ("CREATE", "DELETE", "UPSERT")
MAX_VALUES_PER_BATCH = 1000
MAX_VALUE_CHARACTERS_PER_BATCH = 32000


@dataclass
class BatchResult:
    """What a valid batch does: the zone's record sets afterwards and what changed."""

    record_sets: dict[RecordSetKey, ResourceRecordSet]
    deleted: list[ResourceRecordSet] = field(default_factory=list)  # old versions removed
    added: list[ResourceRecordSet] = field(default_factory=list)  # new versions stored


def parse_changes(batch: object) -> list[tuple[str, ResourceRecordSet]]:
    """A ChangeBatch dict (``{"Changes": [{"Action": ..., "ResourceRecordSet": ...}]}``) ->
    ``[(action, record set)]``; ``InvalidInput`` for malformed input."""
    if not isinstance(batch, dict):
        raise InvalidInput("Invalid request: ChangeBatch must be a structure")
    changes = batch.get("Changes")
    if not isinstance(changes, list) or not changes:
        raise InvalidInput("Invalid request: ChangeBatch must contain at least one Change")
    parsed = []
    for change in changes:
        if not isinstance(change, dict):
            raise InvalidInput("Invalid request: a Change must be a structure")
        action = change.get("Action")
        if action not in ACTIONS:
            raise InvalidInput(
                f"Invalid request: Action must be CREATE, DELETE or UPSERT, got {action!r}"
            )
        if change.get("ResourceRecordSet") is None:
            raise InvalidInput("Invalid request: a Change without a ResourceRecordSet")
        parsed.append((action, ResourceRecordSet.from_api(change["ResourceRecordSet"])))
    _check_size(parsed)
    return parsed


def _check_size(changes: list[tuple[str, ResourceRecordSet]]) -> None:
    values = characters = 0
    for action, rrset in changes:
        weight = 2 if action == "UPSERT" else 1
        records = rrset.data.get("ResourceRecords", [])
        values += weight * len(records)
        characters += weight * sum(len(r["Value"]) for r in records)
    if values > MAX_VALUES_PER_BATCH:
        raise InvalidChangeBatch([f"Number of records limit of {MAX_VALUES_PER_BATCH} exceeded."])
    if characters > MAX_VALUE_CHARACTERS_PER_BATCH:
        raise InvalidChangeBatch(
            [f"Number of characters limit of {MAX_VALUE_CHARACTERS_PER_BATCH} exceeded."]
        )


def apply_change_batch(
    zone_id: str,
    origin: dns.name.Name,
    current: Mapping[RecordSetKey, ResourceRecordSet],
    changes: list[tuple[str, ResourceRecordSet]],
    health_check_exists: Callable[[str], bool] = lambda _id: False,
    policy_problem: Callable[[ResourceRecordSet], str | None] = lambda _rrset: None,
    zone_problems: Callable[[Mapping[RecordSetKey, ResourceRecordSet]], list[str]] = (
        lambda _record_sets: []
    ),
    keys_at: Callable[[str], Iterable[RecordSetKey]] | None = None,
) -> BatchResult:
    """Apply ``changes`` (from ``parse_changes``) to a copy of ``current``; the result, or
    ``InvalidChangeBatch`` listing every reason the batch is refused. ``policy_problem``
    says why the server cannot answer a routing-policy record set, ``zone_problems`` why the
    resulting zone cannot be served as it is (``fastdns.route53.policycheck``).
    ``keys_at(name text)`` gives the keys of ``current`` at a name (``Store.keys_at``), so
    that the checks look at the names the batch touches instead of every record set (issue
    8: a change in a zone of a million record sets); without it they scan ``current``."""
    batch = _Batch(zone_id, origin, dict(current), health_check_exists, policy_problem)
    batch.keys_at = keys_at
    for action, rrset in changes:
        batch.apply(action, rrset)
    if not batch.errors:
        batch.check_aliases()
        batch.check_zone()
    if not batch.errors:
        # Rules on the zone as a whole that depend on its state (signed zones).
        batch.errors.extend(zone_problems(batch.result.record_sets))
    if batch.errors:
        raise InvalidChangeBatch(batch.errors)
    return batch.result


class _Batch:
    def __init__(self, zone_id, origin, working, health_check_exists, policy_problem):
        self.zone_id = zone_id
        self.origin = origin
        self.working: dict[RecordSetKey, ResourceRecordSet] = working
        self.health_check_exists = health_check_exists
        self.policy_problem = policy_problem
        self.errors: list[str] = []
        self.result = BatchResult(working)
        self.touched_aliases: list[ResourceRecordSet] = []
        self.keys_at: Callable[[str], Iterable[RecordSetKey]] | None = None
        self.set_here: dict[str, set[RecordSetKey]] = {}  # name -> keys this batch set

    def at(self, name: str) -> list[ResourceRecordSet]:
        """The working record sets at ``name`` (Route 53 text)."""
        if self.keys_at is None:
            return [r for r in self.working.values() if r.name_text == name]
        keys = set(self.keys_at(name)) | self.set_here.get(name, set())
        return [self.working[k] for k in keys if k in self.working]

    def zone_text(self) -> str:
        return name_text(self.origin)

    def apply(self, action: str, rrset: ResourceRecordSet) -> None:
        if not rrset.name.is_subdomain(self.origin):
            self.errors.append(
                f"RRSet with DNS name {rrset.name_text} is not permitted in zone {self.zone_text()}"
            )
            return
        existing = self.working.get(rrset.key)
        apex = rrset.name == self.origin
        if action == "CREATE":
            if existing is not None:
                self.errors.append(
                    f"Tried to create resource record set {rrset.describe()} but it already exists"
                )
                return
        elif action == "DELETE":
            if existing is None:
                self.errors.append(
                    f"Tried to delete resource record set {rrset.describe()} but it was not found"
                )
                return
            if not existing.same_values(rrset):
                self.errors.append(
                    f"Tried to delete resource record set {rrset.describe()} but the values "
                    "provided do not match the current values"
                )
                return
            if apex and rrset.type == "SOA":
                self.errors.append("A HostedZone must contain exactly one SOA record.")
                return
            if apex and rrset.type == "NS":
                self.errors.append(
                    "A HostedZone must contain at least one NS record for the zone itself."
                )
                return
            del self.working[rrset.key]
            self.result.deleted.append(existing)
            return
        if not self.check_group(rrset):
            return
        if rrset.data.get("HealthCheckId") and not self.health_check_exists(
            rrset.data["HealthCheckId"]
        ):
            self.errors.append(f"No health check found with id: {rrset.data['HealthCheckId']}")
            return
        problem = self.policy_problem(rrset)
        if problem is not None:
            self.errors.append(problem)
            return
        if rrset.alias_target is not None:
            self.touched_aliases.append(rrset)
        if existing is not None:
            self.result.deleted.append(existing)
        self.working[rrset.key] = rrset
        self.set_here.setdefault(rrset.name_text, set()).add(rrset.key)
        self.result.added.append(rrset)

    def check_group(self, rrset: ResourceRecordSet) -> bool:
        """The members of a (name, type) group share one routing policy."""
        for other in self.at(rrset.name_text):
            if other.type != rrset.type:
                continue
            if other.key == rrset.key:
                continue
            if other.policy != rrset.policy:
                mine = _policy_word(rrset.policy)
                theirs = _policy_word(other.policy)
                self.errors.append(
                    f"RRSet with DNS name {rrset.name_text}, type {rrset.type}"
                    + (f", SetIdentifier {rrset.set_identifier}" if rrset.set_identifier else "")
                    + f" cannot be created as {mine} set because {theirs} set exists with the "
                    "same name and type."
                )
                return False
            if rrset.policy == "Failover" and other.data["Failover"] == rrset.data["Failover"]:
                self.errors.append(
                    f"RRSet with DNS name {rrset.name_text}, type {rrset.type}, SetIdentifier "
                    f"{rrset.set_identifier} cannot be created because a {rrset.data['Failover']}"
                    " failover record set already exists with the same name and type."
                )
                return False
            if (
                rrset.policy == "GeoLocation"
                and other.data["GeoLocation"] == rrset.data["GeoLocation"]
            ):
                self.errors.append(
                    f"RRSet with DNS name {rrset.name_text}, type {rrset.type}, SetIdentifier "
                    f"{rrset.set_identifier} cannot be created because another record set has "
                    "the same geolocation."
                )
                return False
        return True

    def check_aliases(self) -> None:
        """An alias record set targets an existing record set of its type in this zone."""
        for rrset in self.touched_aliases:
            if self.working.get(rrset.key) is not rrset:
                continue  # replaced or deleted later in the batch
            target = rrset.alias_target
            where = (
                f"Tried to create an alias that targets {target['DNSName']}, type {rrset.type} "
                f"in zone {target['HostedZoneId']}"
            )
            if target["HostedZoneId"] != self.zone_id:
                self.errors.append(
                    f"{where}, but only record sets of the same hosted zone can be targeted"
                )
                continue
            there = self.at(target["DNSName"])
            members = [other for other in there if other.type == rrset.type]
            if not members:
                cnames = [other for other in there if other.type == "CNAME"]
                reason = "a CNAME cannot be an alias target" if cnames else "it was not found"
                self.errors.append(f"{where}, but {reason}")
            elif target["DNSName"] == rrset.name_text:
                self.errors.append(f"{where}, but an alias cannot target itself")

    def check_zone(self) -> None:
        """The zone after the batch meets the zone-file rules, where the batch can have
        changed anything: the rules are about one name (SOA, CNAME beside other data, DS, NS at
        a wildcard), a name and the cuts above it, or a cut and the data below it; so the
        record sets checked are those at the apex, at the names the batch touched and their
        ancestors, and below any of those names that is a delegation point. (Checking all of a
        10k-record zone per batch would cost a third of a second.)"""
        touched = {rrset.name_text for rrset in self.result.added + self.result.deleted}
        relevant = {self.zone_text()}
        for name in touched:
            # Route 53 text escapes a literal dot as \056, so "." only separates labels.
            labels = name.split(".")
            relevant.update(".".join(labels[i:]) for i in range(len(labels) - 1))
        if self.keys_at is None:
            near = [r for r in self.working.values() if r.name_text in relevant]
        else:
            near = sorted((r for name in relevant for r in self.at(name)), key=lambda r: r.key)
        cuts = {r.name_text for r in near if r.type == "NS" and r.name != self.origin}
        subset = near
        if cuts:
            # The data below a cut (occluded, glue): a scan, only for batches that touch a
            # delegation or the names below one.
            suffixes = tuple("." + cut for cut in cuts)
            subset = [
                r
                for r in self.working.values()
                if r.name_text in relevant or r.name_text.endswith(suffixes)
            ]
        zone = zone_from_record_sets(self.origin, subset)
        for error in validate_zone(zone):
            self.errors.append(error.reason)


def _policy_word(policy: str | None) -> str:
    return {
        None: "a simple",
        "Weight": "a weighted",
        "Region": "a latency",
        "GeoLocation": "a geolocation",
        "Failover": "a failover",
        "MultiValueAnswer": "a multivalue answer",
        "GeoProximityLocation": "a geoproximity",
        "CidrRoutingConfig": "an IP-based",
    }[policy]
