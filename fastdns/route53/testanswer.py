"""TestDNSAnswer: what the name servers answer a given client, and why.

Route 53's operation (GET /2013-04-01/testdnsanswer) takes a record name and type, a resolver
address and an EDNS Client Subnet, and returns the answer's values and RCODE. fastdns answers it
with the very C function the workers serve from (``Catalog.answer_explained``) over the snapshot
being served, with the live health table, so the prediction is the served answer's rule, not a
second implementation of it. Random choices (weighted, multivalue) are drawn again, so a weighted
answer is one the policy can give, not necessarily the next one a worker gives.

The response is Route 53's, plus an ``Explanation`` element boto3 ignores and people read: the
policy that chose, the client's class (location, latency network, CIDR location), and each
member of the group with its health check, its health now and whether it was chosen.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from fastdns.policy import PolicyEnvironment
from fastdns.route53.errors import InvalidInput
from fastdns.route53.recordset import SUPPORTED_TYPES

__all__ = ["AnswerView", "test_dns_answer"]

_POLICY_NAMES = {
    None: "Simple",
    "Weight": "Weighted",
    "Region": "Latency",
    "GeoLocation": "Geolocation",
    "Failover": "Failover",
    "MultiValueAnswer": "Multivalue answer",
    "GeoProximityLocation": "Geoproximity",
    "CidrRoutingConfig": "IP-based",
}


@dataclass
class AnswerView:
    """What the server serves now: the supervisor's own catalog over the current snapshot,
    the served zones in catalog order, the routing-policy environment and the health of a
    health check by ID (None when unknown)."""

    catalog: object
    zones: Sequence  # fastdns.server.ServedZone, catalog order
    env: PolicyEnvironment
    healthy: Callable[[str], bool | None]
    name_server: str


def test_dns_answer(view: AnswerView, zone_origin: dns.name.Name, args: dict) -> dict:
    """The TestDNSAnswerResponse document for query-string ``args``; ``InvalidInput`` for
    bad parameters."""
    name = _record_name(args.get("recordname"), zone_origin)
    rtype = args.get("recordtype")
    if rtype not in SUPPORTED_TYPES:
        raise InvalidInput(f"Invalid request: recordtype {rtype!r} is not a supported type")
    resolver = _address(args.get("resolverip"), "resolverip")
    options = []
    subnet_ip = _address(args.get("edns0clientsubnetip"), "edns0clientsubnetip")
    if subnet_ip is not None:
        bits = 32 if subnet_ip.version == 4 else 128
        default = 24 if subnet_ip.version == 4 else 64
        mask_text = args.get("edns0clientsubnetmask")
        if mask_text is None:
            mask = default
        elif mask_text.isdigit() and 0 <= int(mask_text) <= bits:
            mask = int(mask_text)
        else:
            raise InvalidInput(f"Invalid request: edns0clientsubnetmask {mask_text!r}")
        options.append(dns.edns.ECSOption(str(subnet_ip), mask))
    query = dns.message.make_query(name, rtype, use_edns=0, options=options)
    client = resolver.packed if resolver is not None else None
    reply, explanation = view.catalog.answer_explained(query.to_wire(), client)
    response = dns.message.from_wire(reply)
    qtype = dns.rdatatype.from_text(rtype)
    values = [
        rdata.to_text() for rrset in response.answer if rrset.rdtype == qtype for rdata in rrset
    ]
    document = {
        "Nameserver": view.name_server,
        "RecordName": name.to_text(),
        "RecordType": rtype,
        "RecordData": values,
        "ResponseCode": dns.rcode.to_text(response.rcode()),
        "Protocol": "UDP",
        "Explanation": _explain(view, explanation),
    }
    return document


def _record_name(text: object, origin: dns.name.Name) -> dns.name.Name:
    if not isinstance(text, str) or not text:
        raise InvalidInput("Invalid request: recordname is required")
    try:
        name = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise InvalidInput(f"Invalid request: recordname {text!r}: {exc}") from None
    if not name.is_subdomain(origin):
        raise InvalidInput(f"Invalid request: {text} is not in the hosted zone {origin}")
    return name


def _address(text: object, field: str):
    if text is None or text == "":
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(f"Invalid request: {field} {text!r} is not an IP address") from None


def _explain(view: AnswerView, explanation: dict | None) -> dict:
    if explanation is None:
        return {"Policy": "Simple", "Rule": "one record set, no routing policy"}
    zone = view.zones[explanation["zone"]]
    group = zone.policy_groups[explanation["group"]]
    chosen = set(explanation["members"])
    if explanation["member"] is not None:
        chosen.add(explanation["member"])
    members = []
    for index, member in enumerate(group.members):
        entry: dict = {"SetIdentifier": member.set_identifier or ""}
        if member.health_check_id:
            entry["HealthCheckId"] = member.health_check_id
            healthy = view.healthy(member.health_check_id)
            entry["Healthy"] = True if healthy is None else healthy
        else:
            entry["Healthy"] = True
        if member.alias_target is not None:
            entry["AliasTarget"] = member.alias_target.to_text()
            entry["EvaluateTargetHealth"] = member.evaluate_target_health
        entry["Chosen"] = index in chosen
        members.append(entry)
    policy = _POLICY_NAMES.get(group.policy, group.policy)
    out = {
        "Policy": policy,
        "RecordSet": f"{group.name} {dns.rdatatype.to_text(group.rdtype)}",
        "ClientClass": _client_class(view.env, group, explanation["class"]),
        "Members": members,
    }
    if not chosen:
        out["Rule"] = "no record matches this client and there is no default: NODATA"
    elif all(m["Healthy"] for m in members if m["Chosen"]):
        out["Rule"] = "chosen by policy among the healthy records"
    elif not any(m["Healthy"] for m in members):
        out["Rule"] = "no record is healthy: chosen by policy as if all were (fail open)"
    else:
        out["Rule"] = (
            "every record that can answer this client is unhealthy: chosen as if healthy "
            "(fail open)"
        )
    return out


def _client_class(env: PolicyEnvironment, group, cls: int | None) -> str | None:
    """What the client's class means for this group's policy."""
    if group.policy not in ("GeoLocation", "GeoProximityLocation", "Region", "CidrRoutingConfig"):
        return None
    if cls is None:
        return "unknown (no class: default record, if any)"
    if group.policy == "GeoLocation" and env.geolocation is not None:
        location = env.geolocation.locations[cls]
        parts = [location.continent, location.country, location.subdivision]
        return "/".join(p for p in parts if p)
    if group.policy == "GeoProximityLocation" and env.geoproximity is not None:
        location = env.geoproximity.locations[cls]
        return (
            f"{location.country or location.continent} ({location.latitude}, {location.longitude})"
        )
    if group.policy == "Region" and env.latency is not None:
        return f"latency network {env.latency[1].names[cls]}"
    if group.policy == "CidrRoutingConfig":
        collection_id = group.members[0].policy["CidrRoutingConfig"]["CollectionId"]
        entry = env.cidr_collections.get(collection_id)
        if entry is not None:
            return f"CIDR location {entry[1].locations[cls]}"
    return str(cls)
