"""Whether this server can answer a routing-policy record set, checked before it is stored.

``fastdns.route53.recordset`` checks the shape of a record set; this module checks what depends
on Route 53's tables and on the server's configuration: the location a geolocation record names
exists, a latency record names a known Region and the server has a latency table, an IP-based
record names a configured CIDR collection and one of its locations, a geoproximity record can be
placed on the map. A batch that passed here compiles: a change is never accepted and then left
unserved because the compiler refuses it.

Without an environment (``fastdns zone apply`` run without the server's config) only the checks
that need no configuration are made; the server's compile then reports the rest in its log.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastdns.geo.codes import GeoLocationError, parse_geolocation
from fastdns.geo.geoproximity import GeoProximityError, member_from_location
from fastdns.geo.regions import REGION_NAMES
from fastdns.policy import PolicyEnvironment
from fastdns.route53.recordset import ResourceRecordSet

__all__ = ["policy_problem", "signed_zone_problems"]


def policy_problem(rrset: ResourceRecordSet, env: PolicyEnvironment | None) -> str | None:
    """Why ``rrset`` cannot be served (an InvalidChangeBatch message), or None."""
    policy = rrset.policy
    where = rrset.describe()
    if policy == "MultiValueAnswer":
        # Route 53: multivalue answer records cannot be aliases, nor NS or CNAME records.
        if rrset.alias_target is not None:
            return f"{where}: a multivalue answer record set cannot be an alias"
        if rrset.type in ("NS", "CNAME"):
            return f"{where}: a multivalue answer record set cannot have type {rrset.type}"
    elif policy == "GeoLocation":
        try:
            parse_geolocation(rrset.data["GeoLocation"])
        except GeoLocationError as exc:
            return f"{where}: {exc}"
        if env is not None and env.geolocation is None:
            return f"{where}: geolocation routing needs geoip_database in the server config"
    elif policy == "Region":
        region = rrset.data["Region"]
        if region not in REGION_NAMES:
            return f"{where}: unknown Region {region!r}"
        if env is not None and env.latency is None:
            return f"{where}: latency routing needs a [latency] table in the server config"
    elif policy == "CidrRoutingConfig":
        return _cidr_problem(rrset, env, where)
    elif policy == "GeoProximityLocation":
        try:
            member_from_location(rrset.data["GeoProximityLocation"])
        except GeoProximityError as exc:
            return f"{where}: {exc}"
        if env is not None and env.geoproximity is None:
            return (
                f"{where}: geoproximity routing needs a geoip_database with coordinates "
                "(a City database) in the server config"
            )
    return None


def _cidr_problem(rrset: ResourceRecordSet, env: PolicyEnvironment | None, where: str):
    if env is None:
        return None
    config = rrset.data["CidrRoutingConfig"]
    entry = env.cidr_collections.get(config["CollectionId"])
    if entry is None:
        return f"{where}: no CIDR collection {config['CollectionId']} in the server config"
    collection = entry[1]
    if not collection.has_location(config["LocationName"]):
        return (
            f"{where}: CIDR collection {collection.name} has no location {config['LocationName']!r}"
        )
    return None


def signed_zone_problems(record_sets: Iterable[ResourceRecordSet]) -> list[str]:
    """Why a zone with these record sets cannot be signed as it stands (empty: it can).

    Only for zones whose denials are signed when the zone is compiled (the NSEC3 option;
    ``KeyStore.denies_online``). A geolocation or IP-based group without a
    default (``*``) answers NODATA to clients that no record matches, while other clients get
    the type; one pre-signed NSEC3 cannot prove both, so such answers would not validate and
    those zones' geolocation and IP-based groups need their default record. Compact denial
    signs the NODATA's NSEC per query, without the type (ext/dnssec.pxi)."""
    groups: dict[tuple[str, str], list[ResourceRecordSet]] = {}
    for rrset in record_sets:
        if rrset.policy in ("GeoLocation", "CidrRoutingConfig"):
            groups.setdefault((rrset.name_text, rrset.type), []).append(rrset)
    problems = []
    for (name, rtype), members in sorted(groups.items()):
        if not any(_is_default(member) for member in members):
            kind = "geolocation" if members[0].policy == "GeoLocation" else "IP-based"
            problems.append(
                f"RRSet with DNS name {name}, type {rtype}: a {kind} group in a DNSSEC-signed "
                "zone needs a default record ('*'): the NODATA answer for clients no record "
                "matches cannot be signed in advance"
            )
    return problems


def _is_default(rrset: ResourceRecordSet) -> bool:
    if rrset.policy == "GeoLocation":
        return rrset.data["GeoLocation"].get("CountryCode") == "*"
    return rrset.data["CidrRoutingConfig"].get("LocationName") == "*"
