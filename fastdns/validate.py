"""Zone validation: the rules a zone must meet before fastdns compiles and serves it.

Every rule names the RFC section it comes from. Each error points at the record set that breaks
the rule (the file and line of its first record); an error with no such record (a missing SOA)
points at line 0 of the zone's source.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype

from fastdns.model import RecordSet, Zone, ZoneError

__all__ = ["validate_zone"]

_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
_DS = dns.rdatatype.DS
_NS = dns.rdatatype.NS
_NSEC = dns.rdatatype.NSEC
_RRSIG = dns.rdatatype.RRSIG
_SOA = dns.rdatatype.SOA

# RFC 4035 §2.5: RRSIG and NSEC are the only types allowed beside a CNAME.
_CNAME_COMPANIONS = frozenset({_RRSIG, _NSEC})
# RFC 1034 §4.2.1: a delegation point holds the (non-authoritative) NS RRset, and glue (the
# addresses of the subzone's servers) may sit at or below it; RFC 4035 §2.4 adds DS at the cut,
# with NSEC/RRSIG to prove and sign it. Anything else there is occluded by the delegation.
_GLUE = frozenset({_A, _AAAA})
_AT_DELEGATION = frozenset({_NS, _DS, _NSEC, _RRSIG}) | _GLUE


def validate_zone(zone: Zone) -> list[ZoneError]:
    """Check ``zone`` against the rules below; return every error, sorted by file and line.

    1. Exactly one SOA record, at the apex, and none elsewhere (RFC 1035 §5.2, RFC 1034 §4.2.1).
    2. NS records at the apex (RFC 1034 §4.2.1).
    3. A CNAME has no other data beside it except RRSIG/NSEC, and is a single record
       (RFC 1034 §3.6.2, RFC 2181 §10.1, RFC 4035 §2.5).
    4. Below a delegation (a non-apex name with NS) only glue A/AAAA; at the delegation only
       NS, DS, NSEC, RRSIG and glue, for a server named like the cut itself (RFC 1034 §4.2.1,
       RFC 4035 §2.4). DS only at a delegation (RFC 4034 §5, RFC 4035 §2.4).
    5. Every owner is at or below the origin (RFC 1035 §5.2).
    6. No CNAME at the apex.
    7. No DNAME (fastdns does not implement RFC 6672 yet).
    8. No NS or DS at a wildcard (RFC 4592 §4.2, §4.6).

    Also rejected: meta-types (OPT, TSIG, ANY, ...), which cannot be stored in a zone
    (RFC 6895 §3.1).
    """
    check = _Checker(zone)
    check.run()
    return sorted(check.errors, key=lambda e: (e.file, e.line, e.reason))


class _Checker:
    def __init__(self, zone: Zone):
        self.zone = zone
        self.origin = zone.origin
        self.origin_key = _key(zone.origin)
        self.errors: list[ZoneError] = []
        # _key(name) -> (name, type -> candidates), for the names inside the zone. Keyed by
        # lower-cased labels: dns.name.Name hashes and compares in Python, label by label, and
        # its hash collides often for numbered names (host09/host10), which made validation as
        # slow as compiling a large zone.
        self.nodes: dict[tuple[bytes, ...], tuple[dns.name.Name, dict[int, list[RecordSet]]]] = {}

    def error(self, rrset: RecordSet | None, reason: str) -> None:
        if rrset is not None and rrset.source is not None:
            self.errors.append(ZoneError(rrset.source.file, rrset.source.line, reason))
        else:
            file = self.zone.source if self.zone.source is not None else self.origin.to_text()
            self.errors.append(ZoneError(file, 0, reason))

    def run(self) -> None:
        self.check_in_zone()
        self.check_soa()
        self.check_apex_ns()
        self.check_cnames()
        self.check_delegations()
        self.check_unsupported_types()

    def types_at(self, key: tuple[bytes, ...]) -> dict[int, list[RecordSet]]:
        node = self.nodes.get(key)
        return node[1] if node is not None else {}

    def first(self, key: tuple[bytes, ...], rdtype: int) -> RecordSet | None:
        candidates = self.types_at(key).get(rdtype)
        return candidates[0] if candidates else None

    def check_in_zone(self) -> None:
        # RFC 1035 §5.2: data outside the zone's nodes is an error (an origin mistake, usually).
        origin_key = self.origin_key
        depth = len(origin_key)
        nodes = self.nodes
        for rrset in self.zone:
            key = _key(rrset.name)
            if key[-depth:] == origin_key:
                node = nodes.get(key)
                if node is None:
                    node = nodes[key] = (rrset.name, {})
                node[1].setdefault(int(rrset.rdtype), []).append(rrset)
            else:
                self.error(rrset, f"{rrset.name} is outside the zone {self.origin} (RFC 1035 §5.2)")

    def check_soa(self) -> None:
        # RFC 1035 §5.2: "Exactly one SOA RR should be present at the top of the zone";
        # RFC 1034 §4.2.1: the top node holds "a single SOA RR".
        apex_soa = self.types_at(self.origin_key).get(_SOA, [])
        if not apex_soa:
            self.error(None, f"no SOA record at the zone apex {self.origin} (RFC 1035 §5.2)")
        else:
            count = sum(len(rrset.rdatas) for rrset in apex_soa)
            if count != 1:
                self.error(
                    apex_soa[0],
                    f"{self.origin} has {count} SOA records; a zone has exactly one "
                    "(RFC 1035 §5.2)",
                )
        for key, (name, types) in self.nodes.items():
            if _SOA in types and key != self.origin_key:
                self.error(
                    types[_SOA][0],
                    f"{name} has SOA but is not the zone apex {self.origin} (RFC 1035 §5.2)",
                )

    def check_apex_ns(self) -> None:
        # RFC 1034 §4.2.1: the top node lists the zone's name servers in NS RRs. With no NS to
        # point at, the error points at the SOA (the apex) when there is one.
        if not self.types_at(self.origin_key).get(_NS):
            self.error(
                self.first(self.origin_key, _SOA),
                f"no NS records at the zone apex {self.origin} (RFC 1034 §4.2.1)",
            )

    def check_cnames(self) -> None:
        for key, (name, types) in self.nodes.items():
            cnames = types.get(_CNAME)
            if not cnames:
                continue
            if key == self.origin_key:
                # Covered by the rule below too (the apex has SOA and NS), but worth saying so.
                self.error(
                    cnames[0],
                    f"CNAME at the zone apex {name} is not allowed: the apex must have SOA and "
                    "NS (RFC 1034 §3.6.2, RFC 2181 §10.1)",
                )
                continue
            # RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME name has no other data; RFC 4035 §2.5
            # lets RRSIG and NSEC sit beside it.
            others = sorted(t for t in types if t != _CNAME and t not in _CNAME_COMPANIONS)
            if others:
                self.error(cnames[0], f"{name} has CNAME and {_type_list(others)} (RFC 2181 §10.1)")
            # RFC 2181 §10.1: an alias has exactly one CNAME record. Routing-policy candidates
            # are separate answers, so the limit is per candidate.
            for rrset in cnames:
                if len(rrset.rdatas) > 1:
                    self.error(
                        rrset,
                        f"{name} has {len(rrset.rdatas)} CNAME records; a name can have only "
                        "one (RFC 2181 §10.1)",
                    )

    def check_delegations(self) -> None:
        cuts = set()
        origin_key = self.origin_key
        for key, (name, types) in self.nodes.items():
            if key[0] == b"*":  # Name.is_wild
                # RFC 4592 §4.2: an NS RRset at a wildcard has undefined behaviour; §4.6: a DS
                # RRset there is meaningless (DS belongs only at a delegation point).
                for rdtype, section in ((_NS, "§4.2"), (_DS, "§4.6")):
                    if rdtype in types:
                        self.error(
                            types[rdtype][0],
                            f"wildcard {name} has {dns.rdatatype.to_text(rdtype)} "
                            f"(RFC 4592 {section})",
                        )
            elif _NS in types and key != origin_key:
                cuts.add(key)

        for key, (name, types) in self.nodes.items():
            if key == origin_key:
                if _DS in types:
                    self.error(
                        types[_DS][0],
                        f"DS at the zone apex {name} belongs in the parent zone (RFC 4035 §2.4)",
                    )
                continue
            cut = _highest_cut_above(name, key, len(origin_key), cuts) if cuts else None
            if cut is not None:
                # RFC 1034 §4.2.1 and RFC 1035 §5.2: below a cut only glue; anything else is
                # occluded by the delegation and would never be served.
                for rdtype in sorted(types):
                    if rdtype not in _GLUE:
                        self.error(
                            types[rdtype][0],
                            f"{name} {dns.rdatatype.to_text(rdtype)} is occluded by the "
                            f"delegation at {cut}: only glue (A/AAAA) may be below it "
                            "(RFC 1034 §4.2.1)",
                        )
            elif cuts and key in cuts:
                # CNAME beside NS is reported by check_cnames.
                for rdtype in sorted(types):
                    if rdtype not in _AT_DELEGATION and rdtype != _CNAME:
                        self.error(
                            types[rdtype][0],
                            f"{name} {dns.rdatatype.to_text(rdtype)} is occluded by the "
                            f"delegation at {name}: a delegation point has only NS, DS and glue "
                            "(RFC 1034 §4.2.1, RFC 4035 §2.4)",
                        )
            elif _DS in types and key[0] != b"*":
                # RFC 4034 §5: the DS RR appears only on the parent side of a delegation.
                self.error(
                    types[_DS][0],
                    f"{name} has DS but no NS: DS belongs only at a delegation (RFC 4034 §5)",
                )

    def check_unsupported_types(self) -> None:
        for name, types in self.nodes.values():
            if _DNAME in types:
                self.error(
                    types[_DNAME][0],
                    f"{name} has DNAME, which fastdns does not support yet (RFC 6672)",
                )
            for rdtype in sorted(types):
                if dns.rdatatype.is_metatype(rdtype):
                    self.error(
                        types[rdtype][0],
                        f"{name} has {dns.rdatatype.to_text(rdtype)}, a meta-type that cannot "
                        "be stored in a zone (RFC 6895 §3.1)",
                    )


def _key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A name's labels, lower-cased: compared and hashed much faster than ``dns.name.Name``."""
    return tuple(label.lower() for label in name.labels)


def _highest_cut_above(
    name: dns.name.Name, key: tuple[bytes, ...], origin_depth: int, cuts: set[tuple[bytes, ...]]
) -> dns.name.Name | None:
    """The highest delegation point strictly above ``name`` (whose ``_key`` is ``key``, in a
    zone whose origin has ``origin_depth`` labels; the one that occludes it), if any; ``cuts``
    holds the delegation points as ``_key`` tuples."""
    for start in range(len(key) - origin_depth, 0, -1):  # from just below the origin down
        if key[start:] in cuts:
            return dns.name.Name(name.labels[start:])
    return None


def _type_list(rdtypes: list[int]) -> str:
    return ", ".join(dns.rdatatype.to_text(t) for t in rdtypes)
