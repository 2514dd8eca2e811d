"""Routing policies at compile time: a group of record sets -> the table the hot path evaluates.

A routing-policy group is the record sets of one (name, type) told apart by SetIdentifier, all
with the same policy (Route 53 requires it; ``fastdns.route53.changebatch`` enforces it). The
compiler gives every member its own answer template and asks this module for the group's table
(``ext/policy.pxi`` evaluates it per query, without Python):

* failover: one chain, PRIMARY then SECONDARY (``POLICY_CHAIN``);
* geolocation, latency, IP-based, geoproximity: one chain per client class of a classifier
  (``POLICY_CLASSIFIED``), ordered by Route 53's rule for that policy, plus one chain for a client
  in no class;
* weighted and multivalue answer: the members themselves (``POLICY_WEIGHTED``,
  ``POLICY_MULTIVALUE``).

The per-query rule is the same for every chain: the first healthy candidate, else the first one
(Route 53 fails open); an empty chain answers NODATA (geolocation without a default location).

What the chains are built from -- client classes and their locations, the latency table, the CIDR
collections, health-check slots -- comes from a ``PolicyEnvironment``, the same for every zone of
a snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fastdns.geo.cidr import CidrCollection
from fastdns.geo.codes import parse_geolocation
from fastdns.geo.geoproximity import GeoProximityError, member_from_location, nearest_order
from fastdns.geo.latency import LatencyTable
from fastdns.geo.mmdb import Location
from fastdns.model import POLICY_FIELDS, RecordSet

__all__ = [
    "HEALTH_ALWAYS",
    "HEALTH_GROUP",
    "POLICY_CHAIN",
    "POLICY_CLASSIFIED",
    "POLICY_MULTIVALUE",
    "POLICY_WEIGHTED",
    "ClassifiedLocations",
    "PolicyEnvironment",
    "PolicyError",
    "PolicyGroup",
    "build_group",
    "policy_of",
]

# Mirrored in ext/core_types.pxd.
POLICY_CHAIN = 1
POLICY_CLASSIFIED = 2
POLICY_WEIGHTED = 3
POLICY_MULTIVALUE = 4
HEALTH_ALWAYS = 0xFFFFFFFF
HEALTH_GROUP = 0x80000000
MAX_MEMBERS = 0xFFFF  # ImgGroup.member_count is 16 bits


class PolicyError(ValueError):
    """A group that cannot be compiled (a missing classifier, an unknown region...)."""


@dataclass(frozen=True)
class ClassifiedLocations:
    """A classifier of the snapshot (its index) and the location of each of its classes."""

    classifier: int
    locations: tuple[Location, ...]


@dataclass
class PolicyEnvironment:
    """Everything outside a zone that its policy tables depend on, the same for every zone of a
    snapshot (``fastdns.policyenv`` builds it from the server config).

    Classifier indices are positions in ``classifiers``, the blobs the Catalog is given.
    """

    health_slot: Callable[[str], int | None] = lambda _id: None
    classifiers: list[bytes] = field(default_factory=list)
    geolocation: ClassifiedLocations | None = None  # countries/subdivisions, no coordinates
    geoproximity: ClassifiedLocations | None = None  # with coordinates
    latency: tuple[int, LatencyTable] | None = None
    cidr_collections: Mapping[str, tuple[int, CidrCollection]] = field(default_factory=dict)


@dataclass
class PolicyGroup:
    """One group's table: ``members`` are (template, health, weight); ``chains`` are lists of
    member indices, one per class and a last one for "no class" (POLICY_CHAIN: just one)."""

    kind: int
    members: list[tuple[int, int, int]]
    chains: list[list[int]] = field(default_factory=list)
    classifier: int = 0
    # POLICY_MULTIVALUE in a zone signed online: per member its records in canonical form
    # (fastdns.image.member_signing_data), which the hot path signs as one RRset.
    signing: list[bytes] | None = None


def policy_of(rrset: RecordSet) -> str | None:
    """The policy field a record set uses ("Weight", "Failover", ...), None if simple."""
    data = rrset.policy
    if not isinstance(data, dict):
        return None
    return next((name for name in POLICY_FIELDS if name in data), None)


def build_group(
    members: Sequence[RecordSet],
    templates: Sequence[int],
    health: Sequence[int],
    env: PolicyEnvironment,
) -> PolicyGroup:
    """The table of a group whose members answer with ``templates`` and whose health is read
    from ``health`` (both in member order)."""
    if len(members) > MAX_MEMBERS:
        raise PolicyError(f"a policy group has {len(members)} members; at most {MAX_MEMBERS}")
    policy = policy_of(members[0])
    entries = [(tmpl, h, _weight(m)) for m, tmpl, h in zip(members, templates, health, strict=True)]
    if policy == "Weight":
        return PolicyGroup(POLICY_WEIGHTED, entries)
    if policy == "MultiValueAnswer":
        return PolicyGroup(POLICY_MULTIVALUE, entries)
    if policy == "Failover":
        return PolicyGroup(POLICY_CHAIN, entries, [_failover_chain(members)])
    if policy == "GeoLocation":
        return _geolocation(members, entries, env)
    if policy == "Region":
        return _latency(members, entries, env)
    if policy == "CidrRoutingConfig":
        return _ip_based(members, entries, env)
    if policy == "GeoProximityLocation":
        return _geoproximity(members, entries, env)
    # Not a policy group (one simple record set, e.g. an alias to a group): a chain of one.
    return PolicyGroup(POLICY_CHAIN, entries[:1], [[0]])


def health_of(member: RecordSet, env: PolicyEnvironment) -> int:
    """The health reference of a record set's own health check (HEALTH_ALWAYS without one)."""
    if member.health_check_id is None:
        return HEALTH_ALWAYS
    slot = env.health_slot(member.health_check_id)
    if slot is None:
        # A health check that no longer exists cannot fail: Route 53 keeps answering.
        return HEALTH_ALWAYS
    return slot


def _weight(member: RecordSet) -> int:
    data = member.policy if isinstance(member.policy, dict) else {}
    return int(data.get("Weight", 0) or 0)


def _failover_chain(members: Sequence[RecordSet]) -> list[int]:
    """PRIMARY, then SECONDARY: primary healthy -> primary; primary unhealthy and secondary
    healthy -> secondary; both unhealthy -> primary (the chain's fail-open first)."""
    order = {"PRIMARY": 0, "SECONDARY": 1}
    return sorted(range(len(members)), key=lambda i: order[members[i].policy["Failover"]])


def _geolocation(members, entries, env: PolicyEnvironment) -> PolicyGroup:
    """The most specific matching location wins (subdivision > country > continent > default
    ``*``); an unhealthy one falls back to the next less specific one; no match: NODATA."""
    if env.geolocation is None:
        raise PolicyError("geolocation records need a geo database (geoip_database)")
    by_location = {parse_geolocation(m.policy["GeoLocation"]): i for i, m in enumerate(members)}

    def chain_for(location: Location | None) -> list[int]:
        client = location if location is not None else Location()
        return [by_location[c] for c in client.candidates() if c in by_location]

    chains = [chain_for(loc) for loc in env.geolocation.locations] + [chain_for(None)]
    return PolicyGroup(POLICY_CLASSIFIED, entries, chains, env.geolocation.classifier)


def _latency(members, entries, env: PolicyEnvironment) -> PolicyGroup:
    """The record of the region with the lowest latency for the client's network, then the
    next lowest; regions the latency table does not rank come last, in record order."""
    if env.latency is None:
        raise PolicyError("latency records need a latency table ([latency]) in the config")
    classifier, table = env.latency
    regions = [m.policy["Region"] for m in members]

    def chain_for(class_id: int | None) -> list[int]:
        order = table.regions_by_latency(class_id, regions)
        rank = {region: n for n, region in enumerate(order)}
        return sorted(range(len(members)), key=lambda i: (rank[regions[i]], i))

    chains = [chain_for(c) for c in range(len(table.names))] + [chain_for(None)]
    return PolicyGroup(POLICY_CLASSIFIED, entries, chains, classifier)


def _ip_based(members, entries, env: PolicyEnvironment) -> PolicyGroup:
    """The record of the client's CIDR location (most specific match), else the ``*``
    location's; no match and no ``*``: NODATA."""
    collection_ids = {m.policy["CidrRoutingConfig"]["CollectionId"] for m in members}
    if len(collection_ids) != 1:
        raise PolicyError("the members of an IP-based group must use one CIDR collection")
    collection_id = collection_ids.pop()
    if collection_id not in env.cidr_collections:
        raise PolicyError(f"no CIDR collection {collection_id} in the config")
    classifier, collection = env.cidr_collections[collection_id]
    by_name = {m.policy["CidrRoutingConfig"]["LocationName"]: i for i, m in enumerate(members)}
    default = by_name.get("*")

    def chain_for(name: str | None) -> list[int]:
        chain = [by_name[name]] if name is not None and name in by_name else []
        if default is not None:
            chain.append(default)
        return chain

    chains = [chain_for(name) for name in collection.locations] + [chain_for(None)]
    return PolicyGroup(POLICY_CLASSIFIED, entries, chains, classifier)


def _geoproximity(members, entries, env: PolicyEnvironment) -> PolicyGroup:
    """The member nearest to the client by biased distance (``fastdns.geo.geoproximity``),
    then the next nearest. A client the database cannot place gets the members in record
    order (Route 53 does not say; every client gets an answer)."""
    if env.geoproximity is None:
        raise PolicyError(
            "geoproximity records need a geo database with coordinates (geoip_database)"
        )
    try:
        points = [member_from_location(m.policy["GeoProximityLocation"]) for m in members]
    except GeoProximityError as exc:
        raise PolicyError(str(exc)) from None

    def chain_for(location: Location | None) -> list[int]:
        if location is None or not location.has_coordinates:
            return list(range(len(members)))
        return nearest_order(location.latitude, location.longitude, points)

    chains = [chain_for(loc) for loc in env.geoproximity.locations] + [chain_for(None)]
    return PolicyGroup(POLICY_CLASSIFIED, entries, chains, env.geoproximity.classifier)
