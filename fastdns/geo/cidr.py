"""CIDR collections for IP-based routing, read from the server configuration.

A collection is configured as (TOML shown; any mapping of the same shape works)::

    [[cidr_collections]]
    id = "5d1c2a4e-0b7f-4c3e-9a61-0c2f3d4e5f60"
    name = "isp-map"
    [cidr_collections.locations]
    seattle = ["192.0.2.0/24", "2001:db8::/32"]
    tokyo = ["198.51.100.0/24"]

Route 53's rules, from the service model and the Developer Guide ("IP-based routing"):

- ``id`` is a UUID in lower case (``UUID`` shape), ``name`` matches ``[0-9A-Za-z_\\-]+``, 1-64
  characters (``CollectionName``); both unique among collections.
- Location names match ``[0-9A-Za-z_\\-]+``, 1-16 characters (``CidrLocationNameDefaultNotAllowed``:
  ``*`` is not a location of a collection; records use it for the default).
- Blocks are IPv4 /1-/24 or IPv6 /1-/48 ("To define a zero bit CIDR block (0.0.0.0/0 or ::/0),
  use the default ("*") location"); at most 50 characters of text (``Cidr``).
- One block belongs to one location of a collection (``CidrBlockInUseException``).
- The most specific block containing the client wins; "For DNS queries with a CIDR longer than
  the one specified in the CIDR collection, Route 53 will match it to the shorter CIDR ... If
  ... you specify 2001:0DB8:0000:1234::/48 in your CIDR collection and a query originates from
  2001:0DB8::/32, this will not match and Route 53 will answer with the record for the default
  ("*") location." So a block longer than the ECS source prefix does not match, and the next
  enclosing block may. The classifier is a ``PrefixClassifier`` (FDC2) for that reason.

Choices where Route 53 is silent: a block with host bits set is taken as its network (the guide
itself writes 2001:0DB8:0000:1234::/48); a block listed twice in one location counts once; a
location must list at least one block (``CidrList`` has at least one member).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .ranges import Address, PrefixClassifier, build_prefix_classifier

__all__ = [
    "DEFAULT_LOCATION",
    "CidrCollection",
    "GeoConfigError",
    "parse_cidr_collection",
    "parse_cidr_collections",
    "parse_network",
]

DEFAULT_LOCATION = "*"
MAX_PREFIX = {4: 24, 6: 48}
_UUID = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")
_COLLECTION_NAME = re.compile(r"[0-9A-Za-z_\-]{1,64}")
_LOCATION_NAME = re.compile(r"[0-9A-Za-z_\-]{1,16}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class GeoConfigError(ValueError):
    """Location configuration that cannot be used; the message starts with where it is."""


def parse_network(
    text: object,
    where: str,
    *,
    min_prefix: int = 0,
    max_prefix: Mapping[int, int] | None = None,
) -> Network:
    """Parse a CIDR block, host bits cleared, within ``min_prefix``..``max_prefix[version]``."""
    if not isinstance(text, str) or not 1 <= len(text) <= 50:
        raise GeoConfigError(f"{where}: expected a CIDR block as text, got {text!r}")
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise GeoConfigError(f"{where}: {text!r} is not a CIDR block ({exc})") from None
    high = (max_prefix or {}).get(network.version, network.max_prefixlen)
    if not min_prefix <= network.prefixlen <= high:
        raise GeoConfigError(
            f"{where}: {text!r} is a /{network.prefixlen} IPv{network.version} block; "
            f"allowed are /{min_prefix} to /{high}"
        )
    return network


@dataclass(frozen=True)
class CidrCollection:
    """One collection: its locations (class id = index in ``locations``), their blocks, and
    the classifier that maps a client to a location."""

    id: str
    name: str
    locations: tuple[str, ...]
    blocks: Mapping[str, tuple[Network, ...]]
    classifier: PrefixClassifier

    def has_location(self, name: str) -> bool:
        """Whether a record may name ``name`` (a location here, or the ``*`` default)."""
        return name == DEFAULT_LOCATION or name in self.blocks

    def location_id(self, name: str) -> int | None:
        """The class id of location ``name``; None for ``*``. KeyError for an unknown name."""
        if name == DEFAULT_LOCATION:
            return None
        if name not in self.blocks:
            raise KeyError(name)
        return self.locations.index(name)

    def match(self, address: Address, source_prefix: int | None = None) -> str:
        """The location of a client, or ``*`` when no block matches (see the module doc for
        ``source_prefix``, the ECS SOURCE PREFIX-LENGTH)."""
        class_id = self.classifier.classify(address, source_prefix)
        return DEFAULT_LOCATION if class_id is None else self.locations[class_id]


def parse_cidr_collection(entry: Mapping[str, object], where: str) -> CidrCollection:
    """Validate one configured collection (module docstring) and build its classifier."""
    if not isinstance(entry, Mapping):
        raise GeoConfigError(f"{where}: expected a table with id, name and locations")
    extra = sorted(str(key) for key in entry if key not in ("id", "name", "locations"))
    if extra:
        raise GeoConfigError(f"{where}: unknown key {extra[0]!r}")
    collection_id = entry.get("id")
    if not isinstance(collection_id, str) or not _UUID.fullmatch(collection_id):
        raise GeoConfigError(f"{where}.id: {collection_id!r} is not a lower-case UUID")
    name = entry.get("name")
    if not isinstance(name, str) or not _COLLECTION_NAME.fullmatch(name):
        raise GeoConfigError(
            f"{where}.name: {name!r} must be 1-64 characters of letters, digits, _ and -"
        )
    locations = entry.get("locations")
    if not isinstance(locations, Mapping):
        raise GeoConfigError(f"{where}.locations: expected a table of location = [blocks]")
    blocks: dict[str, tuple[Network, ...]] = {}
    owner: dict[Network, str] = {}
    for location in sorted(locations, key=str):
        here = f"{where}.locations.{location}"
        if not isinstance(location, str) or not _LOCATION_NAME.fullmatch(location):
            raise GeoConfigError(
                f"{here}: location names are 1-16 characters of letters, digits, _ and -"
            )
        texts = locations[location]
        if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
            raise GeoConfigError(f"{here}: expected a non-empty list of CIDR blocks")
        networks: list[Network] = []
        for index, text in enumerate(texts):
            network = parse_network(text, f"{here}[{index}]", min_prefix=1, max_prefix=MAX_PREFIX)
            other = owner.setdefault(network, location)
            if other != location:
                raise GeoConfigError(
                    f"{here}[{index}]: {network} is already in location {other!r}; "
                    "a block belongs to one location of a collection"
                )
            if network not in networks:
                networks.append(network)
        blocks[location] = tuple(networks)
    names = tuple(blocks)
    classifier = build_prefix_classifier(
        (network, class_id) for class_id, name_ in enumerate(names) for network in blocks[name_]
    )
    return CidrCollection(collection_id, name, names, blocks, classifier)


def parse_cidr_collections(
    entries: Sequence[Mapping[str, object]], where: str = "cidr_collections"
) -> dict[str, CidrCollection]:
    """Validate every configured collection; returns them by id (ids and names unique)."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise GeoConfigError(f"{where}: expected a list of collections")
    out: dict[str, CidrCollection] = {}
    names: dict[str, str] = {}
    for index, entry in enumerate(entries):
        collection = parse_cidr_collection(entry, f"{where}[{index}]")
        if collection.id in out:
            raise GeoConfigError(f"{where}[{index}].id: {collection.id} is used twice")
        if collection.name in names:
            raise GeoConfigError(f"{where}[{index}].name: {collection.name!r} is used twice")
        out[collection.id] = collection
        names[collection.name] = collection.id
    return out
