"""Geoproximity routing: order a group's members by biased great-circle distance to a client.

Route 53 sends a client to the nearest resource, where each record's ``GeoProximityLocation``
places it at an AWS Region or at ``Coordinates`` and its ``Bias`` (-99..99) stretches or
shrinks its share of the map (Developer Guide, "Geoproximity routing", section "How Amazon
Route 53 uses bias to route traffic")::

    positive bias:  biased distance = actual distance * [1 - (bias/100)]
    negative bias:  biased distance = actual distance / [1 + (bias/100)]

Example from that page: a resource 150 km away with bias +50 counts as 75 km, so it wins over
an unbiased one 100 km away. These are the two formulas of the guide's markdown source
(awsdocs/amazon-route53-docs, ``routing-policy-geoproximity.md``) and of
``shared/route53-semantics.md``. The current HTML page shows only the first formula, labelled
"Bias"; applied to a negative bias it would give ``d * 1.5`` for -50 where the second gives
``d * 2``. We implement the two-formula version; ``biased_distance`` is the one place to
change if AWS is shown to do otherwise. Both agree for positive biases and both grow the
distance for negative ones, so only the strength of a negative bias differs.

Distances are great-circle distances on a sphere of the mean Earth radius (haversine).
``LocalZoneGroup`` locations need coordinates Route 53 does not publish, so they are refused
here (``GeoProximityError``) unless the caller passes a table for them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .regions import REGIONS

__all__ = [
    "EARTH_RADIUS_KM",
    "GeoProximityError",
    "Member",
    "biased_distance",
    "great_circle_km",
    "member_from_location",
    "nearest_order",
]

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


class GeoProximityError(ValueError):
    """A GeoProximityLocation that cannot be placed on the map."""


@dataclass(frozen=True)
class Member:
    """A geoproximity record reduced to what the choice needs: where it is and its bias."""

    latitude: float
    longitude: float
    bias: int = 0


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees (haversine formula)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def biased_distance(distance: float, bias: int) -> float:
    """The distance Route 53 compares for a record with ``bias`` (module docstring)."""
    if not -99 <= bias <= 99:
        raise ValueError(f"bias {bias} is outside -99..99")
    if bias >= 0:
        return distance * (1 - bias / 100)
    return distance / (1 + bias / 100)


def nearest_order(
    client_lat: float, client_lon: float, members: Sequence[Member | tuple[float, float, int]]
) -> list[int]:
    """Indexes of ``members`` from nearest to farthest by biased distance from the client.

    Members at equal biased distance keep their given order (the order of the group), so the
    result is deterministic. The first index is the answer; the rest is the order to fall back
    in when a record is unhealthy ("pick again by the same criteria among the rest").
    """
    keyed = []
    for index, member in enumerate(members):
        lat, lon, bias = (
            (member.latitude, member.longitude, member.bias)
            if isinstance(member, Member)
            else member
        )
        distance = great_circle_km(client_lat, client_lon, lat, lon)
        keyed.append((biased_distance(distance, bias), index))
    keyed.sort()
    return [index for _distance, index in keyed]


def member_from_location(
    location: Mapping[str, object],
    *,
    regions: Mapping[str, tuple[float, float]] = REGIONS,
    local_zone_groups: Mapping[str, tuple[float, float]] | None = None,
) -> Member:
    """A ``Member`` from an API ``GeoProximityLocation`` dict.

    ``AWSRegion`` is placed with ``regions``; ``Coordinates`` (``Latitude``/``Longitude`` as text
    or numbers) as given; ``LocalZoneGroup`` with ``local_zone_groups`` when provided. ``Bias``
    defaults to 0.
    """
    bias = location.get("Bias", 0)
    if not isinstance(bias, int) or isinstance(bias, bool) or not -99 <= bias <= 99:
        raise GeoProximityError(f"Bias {bias!r} is not an integer in -99..99")
    if location.get("AWSRegion") is not None:
        name = location["AWSRegion"]
        if name not in regions:
            raise GeoProximityError(f"unknown AWSRegion {name!r}")
        lat, lon = regions[name]  # type: ignore[index]
    elif location.get("Coordinates") is not None:
        coordinates = location["Coordinates"]
        if not isinstance(coordinates, Mapping):
            raise GeoProximityError("Coordinates must be a structure")
        lat = _degrees(coordinates.get("Latitude"), 90, "Latitude")
        lon = _degrees(coordinates.get("Longitude"), 180, "Longitude")
    elif location.get("LocalZoneGroup") is not None:
        name = location["LocalZoneGroup"]
        if local_zone_groups is None or name not in local_zone_groups:
            raise GeoProximityError(f"no coordinates known for LocalZoneGroup {name!r}")
        lat, lon = local_zone_groups[name]  # type: ignore[index]
    else:
        raise GeoProximityError(
            "GeoProximityLocation needs AWSRegion, Coordinates or LocalZoneGroup"
        )
    return Member(lat, lon, bias)


def _degrees(value: object, limit: int, field: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GeoProximityError(f"{field} {value!r} is not a number") from None
    if not -limit <= number <= limit:
        raise GeoProximityError(f"{field} {value!r} is outside -{limit}..{limit}")
    return number
