"""fastdns.geo.geoproximity and fastdns.geo.regions: distance, bias, nearest-first order."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fastdns.geo.geoproximity import (
    GeoProximityError,
    Member,
    biased_distance,
    great_circle_km,
    member_from_location,
    nearest_order,
)
from fastdns.geo.regions import REGIONS


def test_bias_formula_examples():
    # Developer Guide: 150 km with bias +50 counts as 75 km, and beats an unbiased 100 km.
    assert biased_distance(150, 50) == 75
    assert biased_distance(100, 0) == 100
    assert biased_distance(150, 50) < biased_distance(100, 0)
    # Negative bias: distance / (1 + bias/100).
    assert biased_distance(100, -50) == 200
    assert biased_distance(100, -99) == pytest.approx(10000)
    assert biased_distance(100, 99) == pytest.approx(1)
    with pytest.raises(ValueError):
        biased_distance(1, 100)


def test_great_circle():
    assert great_circle_km(0, 0, 0, 0) == 0
    # A quarter of the equator, and pole to pole.
    assert great_circle_km(0, 0, 0, 90) == pytest.approx(10007.5, abs=1)
    assert great_circle_km(90, 0, -90, 0) == pytest.approx(20015.1, abs=1)
    # London to Paris is about 344 km.
    assert great_circle_km(51.51, -0.13, 48.86, 2.35) == pytest.approx(344, abs=3)
    # Symmetric, and across the antimeridian the short way.
    assert great_circle_km(10, 179, 10, -179) == pytest.approx(219, abs=1)


def test_nearest_order_with_bias_and_ties():
    client = (0.0, 0.0)
    a = Member(0.0, 1.35, 50)  # ~150 km, bias +50 -> ~75 km
    b = Member(0.0, 0.9, 0)  # ~100 km
    c = Member(0.0, -0.9, 0)  # ~100 km too: ties keep the group's order
    assert nearest_order(*client, [b, a]) == [1, 0]
    assert nearest_order(*client, [b, c]) == [0, 1]
    assert nearest_order(*client, [c, b]) == [0, 1]
    assert nearest_order(*client, [(0.0, 0.9, -50), (0.0, 1.35, 0)]) == [1, 0]
    assert nearest_order(*client, []) == []


def test_regions_seattle_client():
    seattle = (47.61, -122.33)
    members = [
        member_from_location({"AWSRegion": "us-east-1"}),
        member_from_location({"AWSRegion": "us-west-2"}),
        member_from_location({"AWSRegion": "eu-west-1"}),
    ]
    assert nearest_order(*seattle, members) == [1, 0, 2]
    # A large bias pulls Virginia ahead of Oregon (about 3,700 km against 300 km).
    members[0] = member_from_location({"AWSRegion": "us-east-1", "Bias": 99})
    assert nearest_order(*seattle, members)[0] == 0


def test_member_from_location():
    assert member_from_location(
        {"Coordinates": {"Latitude": "49.22", "Longitude": "-74.01"}, "Bias": -5}
    ) == Member(49.22, -74.01, -5)
    assert member_from_location({"AWSRegion": "eu-west-3"}) == Member(48.86, 2.35, 0)
    assert member_from_location(
        {"LocalZoneGroup": "us-west-2-den-1"},
        local_zone_groups={"us-west-2-den-1": (39.74, -104.99)},
    ) == Member(39.74, -104.99)
    for bad, message in [
        ({"AWSRegion": "mars-north-1"}, "unknown AWSRegion"),
        ({"LocalZoneGroup": "us-west-2-den-1"}, "no coordinates known"),
        ({"Coordinates": {"Latitude": "91", "Longitude": "0"}}, "outside -90..90"),
        ({"Coordinates": {"Latitude": "x", "Longitude": "0"}}, "not a number"),
        ({"AWSRegion": "us-east-1", "Bias": 100}, "Bias"),
        ({}, "needs AWSRegion"),
    ]:
        with pytest.raises(GeoProximityError, match=message):
            member_from_location(bad)


def test_region_table_matches_the_route53_model():
    """Every Region placed here is one Route 53 accepts (botocore's ResourceRecordSetRegion),
    and the table covers them all (a new Region in botocore shows up here)."""
    botocore = pytest.importorskip("botocore")
    models = sorted((Path(botocore.__file__).parent / "data" / "route53").glob("*/service-2.json*"))
    raw = models[-1].read_bytes()
    model = json.loads(gzip.decompress(raw) if models[-1].suffix == ".gz" else raw)
    names = set(model["shapes"]["ResourceRecordSetRegion"]["enum"])
    assert set(REGIONS) <= names
    missing = names - set(REGIONS)
    if missing:
        pytest.skip(f"botocore knows Regions without coordinates here: {sorted(missing)}")
    for lat, lon in REGIONS.values():
        assert -90 <= lat <= 90 and -180 <= lon <= 180
