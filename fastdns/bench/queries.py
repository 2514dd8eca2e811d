"""The queries a benchmark sends: read from a dnsperf-format file or drawn from a zone directory.

A dnsperf query file has one ``name type`` per line (type defaults to A); blank lines and lines
starting with ``;`` or ``#`` are skipped. A *mix* (``A=40,AAAA=20,MX=10,NXDOMAIN=20,CNAME=10``)
draws queries from the zones themselves: a record type asks for names that have records of that
type; ``CNAME`` asks for A at names that are aliases (the server follows the chain); ``NXDOMAIN``
asks for names that do not exist; ``NODATA`` asks an existing name for a type it lacks. Names at
or below a zone cut (delegations) are left out; wildcard owners get a random label in place of
the ``*``. Queries are encoded to wire format once, before the run.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from fastdns.bench import DEFAULT_MIX
from fastdns.model import Zone

__all__ = [
    "DEFAULT_MIX",
    "PSEUDO_CATEGORIES",
    "QueryError",
    "QuerySpec",
    "encode_queries",
    "generate_queries",
    "load_zones",
    "parse_mix",
    "parse_query_file",
    "parse_query_lines",
    "write_query_file",
]

PSEUDO_CATEGORIES = ("NXDOMAIN", "CNAME", "NODATA")
NODATA_TYPES = ("TXT", "SRV", "CAA", "NAPTR")


class QueryError(ValueError):
    """A query file, a mix or a zone directory cannot give queries; the message says why
    (``file:line: reason`` for query files)."""


@dataclass(frozen=True)
class QuerySpec:
    """One query in presentation format: an absolute name and a type mnemonic."""

    name: str
    rdtype: str

    def __str__(self) -> str:
        return f"{self.name} {self.rdtype}"


def parse_query_lines(lines: Iterable[str], source: str = "<queries>") -> list[QuerySpec]:
    """Queries from dnsperf-format lines; errors name ``source:line``."""
    specs = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        fields = line.split()
        if len(fields) > 2:
            raise QueryError(f"{source}:{number}: expected 'name type', got {line!r}")
        try:
            name = dns.name.from_text(fields[0])
        except dns.exception.DNSException as e:
            raise QueryError(f"{source}:{number}: bad name {fields[0]!r}: {e}") from None
        rdtype_text = fields[1] if len(fields) == 2 else "A"
        try:
            rdtype = dns.rdatatype.from_text(rdtype_text)
        except dns.exception.DNSException:
            raise QueryError(f"{source}:{number}: unknown type {rdtype_text!r}") from None
        specs.append(QuerySpec(name.to_text(), dns.rdatatype.to_text(rdtype)))
    if not specs:
        raise QueryError(f"{source}: no queries")
    return specs


def parse_query_file(path: str | os.PathLike[str]) -> list[QuerySpec]:
    """Queries from a dnsperf-format file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_query_lines(f, os.fspath(path))
    except OSError as e:
        raise QueryError(f"{os.fspath(path)}: cannot read query file: {e.strerror}") from None


def write_query_file(specs: Iterable[QuerySpec], path: str | os.PathLike[str]) -> None:
    """Write queries in dnsperf format (for dnsperf itself, or to keep a generated mix)."""
    Path(path).write_text("".join(f"{spec}\n" for spec in specs))


def parse_mix(text: str) -> dict[str, float]:
    """``A=40,AAAA=20,NXDOMAIN=20`` -> {category: weight}; weights need not add up to 100."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().upper()
        if not sep:
            raise QueryError(f"mix: expected CATEGORY=WEIGHT, got {part.strip()!r}")
        try:
            weight = float(value)
        except ValueError:
            raise QueryError(f"mix: weight of {key} is not a number: {value.strip()!r}") from None
        if weight < 0:
            raise QueryError(f"mix: weight of {key} is negative")
        if key not in PSEUDO_CATEGORIES:
            try:
                key = dns.rdatatype.to_text(dns.rdatatype.from_text(key))
            except dns.exception.DNSException:
                raise QueryError(
                    f"mix: {key!r} is neither a record type nor one of "
                    f"{', '.join(PSEUDO_CATEGORIES)}"
                ) from None
        mix[key] = mix.get(key, 0.0) + weight
    if not mix or sum(mix.values()) <= 0:
        raise QueryError("mix: no category has a positive weight")
    return mix


def load_zones(zone_dir: str | os.PathLike[str]) -> tuple[list[Zone], list[str]]:
    """The zones of a directory (fastdns's own loader) and the errors of the ones left out."""
    from fastdns.zonedir import load_zone_dir

    zones, errors = load_zone_dir(zone_dir)
    if not zones:
        detail = "; ".join(str(e) for e in errors[:3]) or "no <origin>.zone files"
        raise QueryError(f"{os.fspath(zone_dir)}: no zone could be loaded ({detail})")
    return zones, [str(e) for e in errors]


def generate_queries(
    zones: Sequence[Zone], mix: dict[str, float], count: int = 10000, seed: int = 1
) -> tuple[list[QuerySpec], list[str]]:
    """``count`` queries drawn from ``zones`` in the proportions of ``mix`` (reproducible for a
    ``seed``); also warnings for mix categories the zones cannot give (left out)."""
    rng = random.Random(seed)
    pools = _pools(zones)
    warnings = []
    categories, weights = [], []
    for category, weight in mix.items():
        if weight <= 0:
            continue
        if category == "NXDOMAIN" or pools.get(category):
            categories.append(category)
            weights.append(weight)
        else:
            warnings.append(f"mix: the zones have nothing for {category}; left out")
    if not categories:
        raise QueryError("mix: the zones have nothing for any category of the mix")
    origins = [zone.origin for zone in zones]
    specs = []
    for category in rng.choices(categories, weights, k=count):
        if category == "NXDOMAIN":
            origin = rng.choice(origins)
            name = dns.name.Name((f"nx-{rng.getrandbits(40):010x}".encode(), *origin.labels))
            specs.append(QuerySpec(name.to_text(), "A"))
            continue
        owner, rdtype = rng.choice(pools[category])
        if owner.is_wild():
            owner = dns.name.Name((f"w{rng.getrandbits(32):08x}".encode(), *owner.labels[1:]))
        specs.append(QuerySpec(owner.to_text(), rdtype))
    return specs, warnings


def _pools(zones: Sequence[Zone]) -> dict[str, list[tuple[dns.name.Name, str]]]:
    """Category -> the (name, query type) pairs it may ask, over all zones."""
    pools: dict[str, list[tuple[dns.name.Name, str]]] = {}
    for zone in zones:
        cuts = {
            name
            for (name, rdtype) in zone.rrsets
            if rdtype == dns.rdatatype.NS and name != zone.origin
        }
        types_at: dict[dns.name.Name, set[int]] = {}
        for name, rdtype in zone.rrsets:
            if any(name.is_subdomain(cut) for cut in cuts):
                continue  # a referral or glue, not an authoritative answer
            types_at.setdefault(name, set()).add(rdtype)
        for name in sorted(types_at):
            types = types_at[name]
            for rdtype in sorted(types):
                if rdtype == dns.rdatatype.CNAME:
                    pools.setdefault("CNAME", []).append((name, "A"))
                else:
                    text = dns.rdatatype.to_text(rdtype)
                    pools.setdefault(text, []).append((name, text))
            if dns.rdatatype.CNAME not in types:
                missing = [t for t in NODATA_TYPES if dns.rdatatype.from_text(t) not in types]
                if missing:
                    pools.setdefault("NODATA", []).append((name, missing[0]))
    return pools


def encode_queries(
    specs: Iterable[QuerySpec],
    edns_payload: int | None = None,
    ecs: Sequence[str] = (),
    dnssec_ok: bool = False,
) -> list[bytes]:
    """Wire-format queries (ID 0, RD clear as a resolver asks an authoritative server; an OPT
    record advertising ``edns_payload`` bytes when given). With ``ecs`` subnets
    (``198.51.100.0/24``), every query carries an EDNS Client Subnet option (RFC 7871), the
    subnets taken in turn, as a resolver forwarding its clients' subnets would send them.
    ``dnssec_ok`` sets the DO bit (RFC 3225), as a validating resolver does."""
    options = [_ecs_option(text) for text in ecs]
    wires = []
    for index, spec in enumerate(specs):
        msg = dns.message.make_query(
            spec.name,
            spec.rdtype,
            use_edns=0 if edns_payload or options or dnssec_ok else False,
            payload=edns_payload or 1232,
            options=[options[index % len(options)]] if options else None,
            want_dnssec=dnssec_ok,
        )
        msg.id = 0
        msg.flags = 0
        wires.append(msg.to_wire())
    return wires


def _ecs_option(text: str) -> dns.edns.ECSOption:
    """``ADDRESS/PREFIX`` -> an ECS option; ``QueryError`` when it is not one."""
    address, _, prefix = text.partition("/")
    try:
        return dns.edns.ECSOption(address, int(prefix) if prefix else None)
    except (ValueError, TypeError) as exc:
        raise QueryError(f"--ecs {text!r}: expected ADDRESS/PREFIX ({exc})") from None
