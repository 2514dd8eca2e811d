"""fastdns.geo.codes: Route 53's location tables and GeoLocation validation."""

from __future__ import annotations

import pytest

from fastdns.geo.codes import (
    CONTINENTS,
    COUNTRIES,
    COUNTRY_CONTINENT,
    DEFAULT_LOCATION,
    SUBDIVISIONS,
    UNSUPPORTED_COUNTRIES,
    GeoLocation,
    InvalidGeoLocation,
    UnknownGeoLocation,
    candidate_locations,
    geo_location_details,
    list_geo_locations,
    parse_geolocation,
)


def test_tables_agree():
    assert set(CONTINENTS) == {"AF", "AN", "AS", "EU", "OC", "NA", "SA"}
    # Every country ListGeoLocations names has exactly one continent, and nothing else does.
    assert set(COUNTRY_CONTINENT) == set(COUNTRIES)
    assert set(COUNTRY_CONTINENT.values()) == set(CONTINENTS)
    assert not UNSUPPORTED_COUNTRIES & set(COUNTRIES)
    # 249 ISO 3166-1 codes plus XK (Kosovo), less the four Route 53 has no data for.
    assert len(COUNTRIES) == 250 - 4
    assert len(SUBDIVISIONS["US"]) == 51 and "DC" in SUBDIVISIONS["US"]
    assert len(SUBDIVISIONS["UA"]) == 27 and SUBDIVISIONS["UA"]["11"] == "Crimea"
    assert set(SUBDIVISIONS) == {"US", "UA"}


@pytest.mark.parametrize(
    ("country", "continent"),
    [("US", "NA"), ("TR", "EU"), ("CC", "AS"), ("GS", "AN"), ("UA", "EU"), ("XK", "EU"),
     ("EG", "AF"), ("FK", "SA"), ("UM", "OC"), ("RU", "EU"), ("CY", "EU")],
)  # fmt: skip
def test_route53_continents(country, continent):
    assert COUNTRY_CONTINENT[country] == continent


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"ContinentCode": "EU"}, GeoLocation(continent="EU")),
        ({"CountryCode": "*"}, DEFAULT_LOCATION),
        ({"CountryCode": "de"}, GeoLocation(country="DE")),
        ({"CountryCode": "US", "SubdivisionCode": "WA"}, GeoLocation(None, "US", "WA")),
        ({"CountryCode": "UA", "SubdivisionCode": "30"}, GeoLocation(None, "UA", "30")),
        ({"CountryCode": "US", "ContinentCode": None}, GeoLocation(country="US")),
    ],
)
def test_parse_valid(data, expected):
    assert parse_geolocation(data) == expected


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({}, "needs"),
        ({"ContinentCode": "EU", "CountryCode": "DE"}, "not both"),
        ({"ContinentCode": "NA", "SubdivisionCode": "WA"}, "not both"),
        ({"SubdivisionCode": "WA"}, "needs a CountryCode"),
        ({"ContinentCode": "E"}, "2 to 2"),
        ({"CountryCode": "USA"}, "1 to 2"),
        ({"CountryCode": "US", "SubdivisionCode": "WASH"}, "1 to 3"),
        ({"CountryCode": 12}, "string"),
        ({"Country": "US"}, "unknown field"),
        ("US", "structure"),
    ],
)
def test_parse_invalid_input(data, match):
    with pytest.raises(InvalidGeoLocation, match=match) as info:
        parse_geolocation(data)
    assert (info.value.code, info.value.status) == ("InvalidInput", 400)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ContinentCode": "XX"}, "Cannot find location: 'continent = XX'."),
        ({"CountryCode": "ZZ"}, "Cannot find location: 'country = ZZ'."),
        ({"CountryCode": "BV"}, "Cannot find location: 'country = BV'."),
        (
            {"CountryCode": "CA", "SubdivisionCode": "NL"},
            "Cannot find location: 'country = CA subdivision = NL'.",
        ),
        ({"CountryCode": "US", "SubdivisionCode": "PR"}, None),  # a territory is a country
        ({"CountryCode": "*", "SubdivisionCode": "WA"}, None),
    ],
)
def test_parse_unknown_location(data, message):
    with pytest.raises(UnknownGeoLocation) as info:
        parse_geolocation(data)
    assert (info.value.code, info.value.status) == ("NoSuchGeoLocation", 404)
    if message is not None:
        assert info.value.message == message


def test_candidate_locations_most_specific_first():
    assert candidate_locations("NA", "US", "WA") == (
        GeoLocation(country="US", subdivision="WA"),
        GeoLocation(country="US"),
        GeoLocation(continent="NA"),
        DEFAULT_LOCATION,
    )
    # Route 53's continent of the country wins over the one given (MaxMind's).
    assert candidate_locations("AS", "TR") == (
        GeoLocation(country="TR"),
        GeoLocation(continent="EU"),
        DEFAULT_LOCATION,
    )
    # A subdivision Route 53 does not have is ignored; so is an unknown country.
    assert candidate_locations("EU", "DE", "BY")[0] == GeoLocation(country="DE")
    assert candidate_locations("EU", "ZZ") == (GeoLocation(continent="EU"), DEFAULT_LOCATION)
    assert candidate_locations(None) == (DEFAULT_LOCATION,)
    assert [loc.kind for loc in candidate_locations("NA", "US", "TX")] == [
        "subdivision",
        "country",
        "continent",
        "default",
    ]


def test_api_shapes():
    assert GeoLocation(country="US", subdivision="WA").to_api() == {
        "CountryCode": "US",
        "SubdivisionCode": "WA",
    }
    assert geo_location_details(GeoLocation(country="US", subdivision="WA")) == {
        "CountryCode": "US",
        "CountryName": "United States",
        "SubdivisionCode": "WA",
        "SubdivisionName": "Washington",
    }
    assert geo_location_details(GeoLocation(continent="OC")) == {
        "ContinentCode": "OC",
        "ContinentName": "Oceania",
    }
    listing = list_geo_locations()
    assert listing[0] == {"CountryCode": "*", "CountryName": "Default"}
    assert listing[-1] == {"ContinentCode": "SA", "ContinentName": "South America"}
    assert len(listing) == 1 + 246 + 51 + 27 + 7
    us = listing.index({"CountryCode": "US", "CountryName": "United States"})
    assert listing[us + 1]["SubdivisionCode"] == "AK"
