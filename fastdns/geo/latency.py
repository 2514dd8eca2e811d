"""The latency table behind latency-based routing: client network -> AWS Region -> latency.

Route 53 answers a latency group with the record of the Region that has the lowest latency for
the client's network, and if that record is unhealthy, the next lowest (Developer Guide,
"Latency-based routing"; API Reference, ``ResourceRecordSet.Region``). Route 53 measures the
latencies itself; a self-hosted server is told them in its configuration::

    [latency.default]            # clients in no listed network (optional)
    us-east-1 = 50
    eu-west-1 = 80

    [latency.networks.europe]    # one table per client network
    cidrs = ["192.0.2.0/24", "2001:db8::/32"]
    latency = { eu-west-1 = 12, eu-central-1 = 20, us-east-1 = 90 }

    [latency.networks.europe-isp-x]   # networks may nest: the most specific one wins
    cidrs = ["192.0.2.128/25"]
    latency = { eu-central-1 = 8 }

Latencies are numbers of milliseconds >= 0. A network's effective map is the default map
overlaid by its own, so a network only lists what differs. Regions must be AWS Region names
(``fastdns.geo.regions.REGION_NAMES``, what ``ResourceRecordSet.Region`` accepts). A CIDR block
may be any prefix length (/0 included) but belongs to one network. Unlike IP-based routing, the
ECS source prefix does not limit which blocks match: the client address is classified as is.

Ordering, chosen where Route 53 is silent: Regions with a latency come first by latency; Regions
without one follow in the order the caller gave; ties keep the caller's order. A client in no
network uses the default map alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .cidr import GeoConfigError, Network, parse_network
from .ranges import Address, Classifier, build_classifier
from .regions import REGION_NAMES

__all__ = ["LatencyTable", "parse_latency"]


@dataclass(frozen=True)
class LatencyTable:
    """Client networks (class id = index in ``names``) and their region->latency maps."""

    names: tuple[str, ...]
    latency: tuple[Mapping[str, float], ...]  # effective map per class id
    default: Mapping[str, float]
    classifier: Classifier

    def classify(self, address: Address) -> int | None:
        """The class id (network index) of a client, None for a client in no network."""
        return self.classifier.classify(address)

    def latency_map(self, class_id: int | None) -> Mapping[str, float]:
        """The effective region->latency map of a class (the default map for None)."""
        return self.default if class_id is None else self.latency[class_id]

    def regions_by_latency(
        self, class_id: int | None, regions: Iterable[str] | None = None
    ) -> list[str]:
        """``regions`` ordered for a client of ``class_id``, lowest latency first.

        Without ``regions``, every Region that has a latency for the class, ties broken by name.
        With them (the Regions of one latency group), the ones without a latency come last in
        the given order.
        """
        table = self.latency_map(class_id)
        if regions is None:
            return sorted(table, key=lambda region: (table[region], region))
        given = list(dict.fromkeys(regions))
        return sorted(given, key=lambda r: (r not in table, table.get(r, 0.0), given.index(r)))


def parse_latency(
    config: Mapping[str, object],
    where: str = "latency",
    *,
    regions: Iterable[str] = REGION_NAMES,
) -> LatencyTable:
    """Validate a latency configuration (module docstring) and build its classifier.

    Every error is a ``GeoConfigError`` whose message starts with the key at fault, for
    example ``latency.networks.europe.latency.us-east-7: unknown region``.
    """
    known = frozenset(regions)
    if not isinstance(config, Mapping):
        raise GeoConfigError(f"{where}: expected a table with networks and default")
    _no_extra(config, ("networks", "default"), where)
    default = _latency_map(config.get("default", {}), f"{where}.default", known)
    networks = config.get("networks", {})
    if not isinstance(networks, Mapping):
        raise GeoConfigError(f"{where}.networks: expected a table of networks")
    names: list[str] = []
    maps: list[Mapping[str, float]] = []
    pairs: list[tuple[Network, int]] = []
    owner: dict[Network, str] = {}
    for name in sorted(networks, key=str):
        here = f"{where}.networks.{name}"
        entry = networks[name]
        if not isinstance(entry, Mapping):
            raise GeoConfigError(f"{here}: expected a table with cidrs and latency")
        _no_extra(entry, ("cidrs", "latency"), here)
        texts = entry.get("cidrs")
        if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
            raise GeoConfigError(f"{here}.cidrs: expected a non-empty list of CIDR blocks")
        class_id = len(names)
        for index, text in enumerate(texts):
            network = parse_network(text, f"{here}.cidrs[{index}]")
            other = owner.setdefault(network, str(name))
            if other != name:
                raise GeoConfigError(
                    f"{here}.cidrs[{index}]: {network} is already in network {other!r}"
                )
            pairs.append((network, class_id))
        own = _latency_map(entry.get("latency", {}), f"{here}.latency", known)
        names.append(str(name))
        maps.append({**default, **own})
    return LatencyTable(tuple(names), tuple(maps), default, build_classifier(pairs))


def _no_extra(table: Mapping[str, object], allowed: Sequence[str], where: str) -> None:
    extra = sorted(str(key) for key in table if key not in allowed)
    if extra:
        raise GeoConfigError(f"{where}: unknown key {extra[0]!r} (expected {', '.join(allowed)})")


def _latency_map(raw: object, where: str, known: frozenset[str]) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise GeoConfigError(f"{where}: expected a table of region = milliseconds")
    out: dict[str, float] = {}
    for region, value in raw.items():
        if region not in known:
            raise GeoConfigError(f"{where}.{region}: unknown region (not an AWS Region name)")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise GeoConfigError(f"{where}.{region}: {value!r} is not a latency in ms (>= 0)")
        out[region] = float(value)
    return out
