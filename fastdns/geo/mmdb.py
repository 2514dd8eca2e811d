"""Client locations from a MaxMind DB (GeoLite2/GeoIP2 City or Country) as a classifier.

Every network of the database becomes a range whose class is a location id; a location is what
the routing policies need of a MaxMind record:

- ``continent``: Route 53's continent of the country (``fastdns.geo.codes``) when Route 53
  lists the country, else the record's ``continent.code`` (MaxMind uses the same seven codes,
  AF AN AS EU NA OC SA). Route 53's table decides because it, not MaxMind's, says which
  continent record answers a client: the two differ (Route 53 puts CC in Asia, GS and TF in
  Antarctica, TR in Europe).
- ``country``: ``country.iso_code`` (ISO 3166-1 alpha-2, as Route 53). ``registered_country``
  is not used: Route 53 routes by where the user is, not where the block is registered.
- ``subdivision``: ``subdivisions[0].iso_code`` (the largest subdivision, MaxMind lists them
  largest first), kept only where Route 53 has subdivisions: US states and DC, and Ukraine's
  oblasts. Route 53 spells Crimea "11" and Sevastopol "20" where ISO 3166-2:UA (and so
  MaxMind) has "43" and "40"; those two are translated. Other countries' subdivisions are
  dropped: no geolocation record can name them, and keeping them would only split ranges.
- ``latitude``/``longitude``: ``location.latitude``/``longitude``, rounded to
  ``coordinate_digits`` decimals (2 by default, Route 53's ``Coordinates`` precision), for
  geoproximity; None in a Country database.

A record with neither a country nor a continent locates nothing: its addresses get no class,
like addresses the database does not cover, and are answered by the ``*`` default.

IPv4 data is read where MaxMind stores it: the IPv4 tree, or ``::/96`` in an IPv6 database
(``maxminddb`` yields those networks as IPv4). Networks under ``::ffff:0:0/96`` are skipped:
in MaxMind's databases that subtree is an alias of the IPv4 one, and ``fastdns.geo.ranges``
looks IPv4-mapped addresses up as IPv4 anyway.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import maxminddb

from .codes import CONTINENTS, COUNTRY_CONTINENT, SUBDIVISIONS, GeoLocation, candidate_locations
from .ranges import Address, Classifier, build_classifier

__all__ = [
    "GeoDatabase",
    "Location",
    "geo_database_from_records",
    "load_mmdb",
    "location_from_record",
]

# ISO 3166-2 subdivision codes that Route 53 spells differently.
_SUBDIVISION_ALIASES = {("UA", "43"): "11", ("UA", "40"): "20"}
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a client is, as far as the routing policies care (module docstring)."""

    continent: str | None = None
    country: str | None = None
    subdivision: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def candidates(self) -> tuple[GeoLocation, ...]:
        """The geolocation records that match this client, most specific first, ``*`` last."""
        return candidate_locations(self.continent, self.country, self.subdivision)

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


@dataclass(frozen=True)
class GeoDatabase:
    """A classifier whose class ids index ``locations``."""

    classifier: Classifier
    locations: tuple[Location, ...]

    def locate(self, address: Address) -> Location | None:
        """The location of a client, or None if the database does not place it."""
        class_id = self.classifier.classify(address)
        return None if class_id is None else self.locations[class_id]

    def without_coordinates(self) -> GeoDatabase:
        """The same database with coordinates dropped and the classes that then coincide
        merged: what geolocation routing needs, with far fewer ranges than a City database."""
        ids: dict[Location, int] = {}
        new_of = [
            ids.setdefault(replace(loc, latitude=None, longitude=None), len(ids))
            for loc in self.locations
        ]
        return GeoDatabase(self.classifier.remap(new_of.__getitem__), tuple(ids))


def location_from_record(
    record: Mapping[str, object] | None,
    *,
    coordinates: bool = True,
    coordinate_digits: int = 2,
) -> Location | None:
    """The ``Location`` of one MaxMind record (module docstring), None if it places nothing."""
    if not isinstance(record, Mapping):
        return None
    country = _code(record.get("country"))
    continent = COUNTRY_CONTINENT.get(country) if country is not None else None
    if continent is None:
        continent = _code(record.get("continent"))
        if continent not in CONTINENTS:
            continent = None
    subdivision = None
    subdivisions = record.get("subdivisions")
    if country in SUBDIVISIONS and isinstance(subdivisions, list) and subdivisions:
        code = _code(subdivisions[0])
        code = _SUBDIVISION_ALIASES.get((country, code), code)  # type: ignore[arg-type]
        if code in SUBDIVISIONS[country]:
            subdivision = code
    latitude = longitude = None
    place = record.get("location")
    if coordinates and isinstance(place, Mapping):
        lat, lon = place.get("latitude"), place.get("longitude")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            latitude, longitude = (
                round(float(lat), coordinate_digits),
                round(float(lon), coordinate_digits),
            )
    if continent is None and country is None:
        return None
    return Location(continent, country, subdivision, latitude, longitude)


def _code(value: object) -> str | None:
    if isinstance(value, Mapping):
        for key in ("iso_code", "code"):
            code = value.get(key)
            if isinstance(code, str) and code:
                return code.upper()
    return None


def geo_database_from_records(
    pairs: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Mapping | None]],
    *,
    coordinates: bool = True,
    coordinate_digits: int = 2,
) -> GeoDatabase:
    """A ``GeoDatabase`` from ``(network, MaxMind record)`` pairs (what iterating a
    ``maxminddb.Reader`` yields). Location ids are given in order of first appearance."""
    ids: dict[Location, int] = {}
    classified = []
    for network, record in pairs:
        if network.version == 6 and network.subnet_of(_MAPPED):  # type: ignore[arg-type]
            continue
        location = location_from_record(
            record, coordinates=coordinates, coordinate_digits=coordinate_digits
        )
        if location is not None:
            classified.append((network, ids.setdefault(location, len(ids))))
    return GeoDatabase(build_classifier(classified), tuple(ids))


def load_mmdb(
    path: str | os.PathLike[str], *, coordinates: bool = True, coordinate_digits: int = 2
) -> GeoDatabase:
    """Read a MaxMind DB file into a ``GeoDatabase`` (iterates every network of the file)."""
    reader = maxminddb.open_database(os.fspath(path))
    if not hasattr(reader, "__iter__"):  # an old C extension: use the pure-Python reader
        reader.close()
        reader = maxminddb.open_database(os.fspath(path), maxminddb.MODE_MMAP)
    with reader:
        return geo_database_from_records(
            iter(reader), coordinates=coordinates, coordinate_digits=coordinate_digits
        )
