"""fastdns.geo.cidr: CIDR collections from the configuration, and Route 53's matching rules."""

from __future__ import annotations

import pytest

from fastdns.geo.cidr import GeoConfigError, parse_cidr_collection, parse_cidr_collections
from fastdns.geo.ranges import PrefixClassifier

UUID = "5d1c2a4e-0b7f-4c3e-9a61-0c2f3d4e5f60"
UUID2 = "00000000-0000-4000-8000-000000000002"


def collection(**locations):
    return {"id": UUID, "name": "isp-map", "locations": locations}


def test_example_from_the_developer_guide():
    # "if you specify 2001:0DB8::/32 ... a query from 2001:0DB8:0000:1234::/48 will match. If
    # ... you specify 2001:0DB8:0000:1234::/48 and a query originates from 2001:0DB8::/32,
    # this will not match and Route 53 will answer with the record for the default location."
    wide = parse_cidr_collection(collection(isp=["2001:0DB8::/32"]), "c")
    assert wide.match("2001:db8:0:1234::", 48) == "isp"
    narrow = parse_cidr_collection(collection(isp=["2001:0DB8:0000:1234::/48"]), "c")
    assert narrow.blocks["isp"][0].prefixlen == 48  # host bits cleared, as the guide writes it
    assert narrow.match("2001:db8::", 32) == "*"
    assert narrow.match("2001:db8::", 48) == "isp"


def test_most_specific_block_and_fallback_to_the_enclosing_one():
    c = parse_cidr_collection(
        collection(
            seattle=["192.0.2.0/24", "2001:db8::/32"],
            region=["192.0.0.0/16"],
            tokyo=["198.51.100.0/24"],
        ),
        "cidr_collections[0]",
    )
    assert c.locations == ("region", "seattle", "tokyo")  # sorted: stable class ids
    assert c.match("192.0.2.77") == "seattle"
    assert c.match("192.0.2.0", 24) == "seattle"
    assert c.match("192.0.2.0", 20) == "region"  # the /24 is longer than the client's /20
    assert c.match("192.0.2.0", 8) == "*"
    assert c.match("192.0.9.1", 24) == "region"
    assert c.match("198.51.100.9", 32) == "tokyo"
    assert c.match("203.0.113.1") == "*"
    assert c.match("::ffff:192.0.2.1") == "seattle"
    assert c.location_id("seattle") == 1 and c.location_id("*") is None
    assert c.has_location("*") and c.has_location("tokyo") and not c.has_location("paris")
    with pytest.raises(KeyError):
        c.location_id("paris")
    image = c.classifier.to_bytes()
    assert image[:4] == b"FDC2" and PrefixClassifier.from_bytes(image) == c.classifier


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "nope", "name": "x", "locations": {}}, r"c\.id: 'nope' is not a lower-case UUID"),
        ({"id": UUID.upper(), "name": "x", "locations": {}}, r"c\.id"),
        ({"id": UUID, "name": "a b", "locations": {}}, r"c\.name: 'a b' must be 1-64"),
        ({"id": UUID, "name": "x" * 65, "locations": {}}, r"c\.name"),
        ({"id": UUID, "name": "x", "locations": []}, r"c\.locations: expected a table"),
        ({"id": UUID, "name": "x", "locations": {}, "extra": 1}, r"c: unknown key 'extra'"),
        (collection(**{"*": ["10.0.0.0/8"]}), r"c\.locations\.\*: location names"),
        (collection(**{"a" * 17: ["10.0.0.0/8"]}), r"location names are 1-16"),
        (collection(a=[]), r"c\.locations\.a: expected a non-empty list"),
        (collection(a="10.0.0.0/8"), r"c\.locations\.a: expected a non-empty list"),
        (collection(a=["10.0.0.0/25"]), r"c\.locations\.a\[0\]: '10.0.0.0/25' is a /25 IPv4"),
        (collection(a=["0.0.0.0/0"]), r"is a /0 IPv4 block; allowed are /1 to /24"),
        (collection(a=["2001:db8::/49"]), r"is a /49 IPv6 block; allowed are /1 to /48"),
        (collection(a=["::/0"]), r"/0 IPv6"),
        (collection(a=["10.0.0.0/33"]), r"is not a CIDR block"),
        (collection(a=[7]), r"expected a CIDR block as text"),
        (
            collection(a=["10.0.0.0/8"], b=["10.0.0.0/8"]),
            r"c\.locations\.b\[0\]: 10\.0\.0\.0/8 is already in location 'a'",
        ),
        (
            collection(a=["10.0.0.0/8"], b=["10.0.0.1/8"]),  # the same block once normalized
            r"already in location 'a'",
        ),
    ],
)
def test_invalid_collections(entry, message):
    with pytest.raises(GeoConfigError, match=message):
        parse_cidr_collection(entry, "c")


def test_duplicate_block_in_one_location_counts_once():
    c = parse_cidr_collection(collection(a=["10.0.0.0/8", "10.0.0.0/8"]), "c")
    assert c.blocks["a"] == c.blocks["a"][:1]


def test_collections_by_id_with_unique_ids_and_names():
    a = collection(a=["10.0.0.0/8"])
    b = {"id": UUID2, "name": "other", "locations": {"b": ["10.0.0.0/8"]}}
    parsed = parse_cidr_collections([a, b])
    assert set(parsed) == {UUID, UUID2}
    assert parsed[UUID2].match("10.1.1.1") == "b"  # collections are independent
    with pytest.raises(GeoConfigError, match=r"cidr_collections\[1\]\.id: .* is used twice"):
        parse_cidr_collections([a, a])
    with pytest.raises(GeoConfigError, match=r"cidr_collections\[1\]\.name: 'isp-map' is used"):
        parse_cidr_collections([a, {**b, "name": "isp-map"}])
    with pytest.raises(GeoConfigError, match="expected a list"):
        parse_cidr_collections({"id": UUID})  # type: ignore[arg-type]
