"""The data model every source (zone files, later the API store) produces and the compiler reads.

A zone maps (owner name, type) to a list of candidate record sets. A plain zone-file record set is
the only candidate of its key; routing-policy groups (weighted, failover, geolocation, ...) will
put several candidates under one key, told apart by ``set_identifier``, each with its own policy
fields and health check. Names are absolute ``dns.name.Name`` values; comparisons between names
are case-insensitive (dnspython's Name equality is).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdatatype


@dataclass(frozen=True)
class SourceLocation:
    """Where a record came from, for error messages: ``file:line``."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ZoneError:
    """One problem found in a zone source; ``str()`` gives ``file:line: reason``."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class ZoneLoadError(Exception):
    """A zone source could not be loaded; ``errors`` lists every problem found."""

    def __init__(self, errors: list[ZoneError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


# The Route 53 fields that choose a routing policy (``RecordSet.policy`` holds the record set's
# API fields); a record set with a SetIdentifier has exactly one of them.
POLICY_FIELDS = (
    "Weight",
    "Region",
    "GeoLocation",
    "Failover",
    "MultiValueAnswer",
    "GeoProximityLocation",
    "CidrRoutingConfig",
)


@dataclass
class RecordSet:
    """One candidate answer for (name, rdtype): the records and how to choose it.

    ``set_identifier``, ``policy`` and ``health_check_id`` are unset for static record sets; they
    are the room routing policies fill in. An alias record set (hosted zones only) carries the
    values and TTL of its target and names the target in ``alias_target``, so the compiler can
    evaluate a target that is itself a policy group per query; ``evaluate_target_health`` makes
    the alias as healthy as its target (Route 53: healthy when any record of the target is).
    """

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    ttl: int
    rdatas: tuple[dns.rdata.Rdata, ...]
    source: SourceLocation | None = None
    set_identifier: str | None = None
    policy: object | None = None
    health_check_id: str | None = None
    alias_target: dns.name.Name | None = None
    evaluate_target_health: bool = False


@dataclass
class Zone:
    """A zone: its origin and its record sets keyed by (owner, type)."""

    origin: dns.name.Name
    rrsets: dict[tuple[dns.name.Name, int], list[RecordSet]] = field(default_factory=dict)
    source: str | None = None

    def add(self, rrset: RecordSet) -> None:
        self.rrsets.setdefault((rrset.name, int(rrset.rdtype)), []).append(rrset)

    def get(self, name: dns.name.Name, rdtype: int) -> RecordSet | None:
        """The record set for (name, rdtype) when it has exactly one (static) candidate."""
        candidates = self.rrsets.get((name, int(rdtype)))
        if not candidates:
            return None
        return candidates[0]

    def types_at(self, name: dns.name.Name) -> set[int]:
        return {t for (n, t) in self.rrsets if n == name}

    def names(self) -> set[dns.name.Name]:
        return {n for (n, _t) in self.rrsets}

    def __iter__(self) -> Iterator[RecordSet]:
        for candidates in self.rrsets.values():
            yield from candidates

    def materialized(self) -> Zone:
        """This zone with every record set in memory: itself, except for a zone file's stand-in
        (fastdns.nativezone.ZoneFileModel), which reads them now. Call it once before using
        ``rrsets`` many times."""
        return self

    @property
    def soa(self) -> RecordSet | None:
        return self.get(self.origin, dns.rdatatype.SOA)


class LazyZone(Zone):
    """A stand-in for a zone's model whose record sets are built when something needs every
    one (an outgoing zone transfer, the reference compiler) and kept only while in use: a zone
    compiled natively keeps no Python object per record. Subclasses hold what :meth:`_build`
    needs, and ``origin``, ``source`` and their own ``soa``."""

    _loaded: weakref.ref[Zone] | None = None

    @property
    def rrsets(self) -> dict:  # type: ignore[override]
        return self.materialized().rrsets

    def materialized(self) -> Zone:
        zone = self._loaded() if self._loaded is not None else None
        if zone is None:
            zone = self._build()
            self._loaded = weakref.ref(zone)
        return zone

    def _build(self) -> Zone:
        raise NotImplementedError
