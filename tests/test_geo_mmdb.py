"""MaxMind databases: the test writer against the ``maxminddb`` reader, then
``fastdns.geo.mmdb`` reading locations from such files (City-like and Country-like)."""

from __future__ import annotations

import ipaddress

import maxminddb
import pytest
from support.mmdb_writer import encode, write_mmdb

from fastdns.geo.codes import GeoLocation
from fastdns.geo.mmdb import Location, geo_database_from_records, load_mmdb, location_from_record

SEATTLE = {
    "continent": {"code": "NA", "names": {"en": "North America"}},
    "country": {"iso_code": "US", "names": {"en": "United States"}},
    "subdivisions": [{"iso_code": "WA"}, {"iso_code": "KC"}],
    "location": {"latitude": 47.6062, "longitude": -122.3321, "accuracy_radius": 20},
}
USA = {"continent": {"code": "NA"}, "country": {"iso_code": "US"}}
ISTANBUL = {
    "continent": {"code": "AS"},  # MaxMind may say Asia; Route 53 puts TR in Europe
    "country": {"iso_code": "TR"},
    "subdivisions": [{"iso_code": "34"}],
    "location": {"latitude": 41.0138, "longitude": 28.9497},
}
CRIMEA = {
    "continent": {"code": "EU"},
    "country": {"iso_code": "UA"},
    "subdivisions": [{"iso_code": "43"}],
}
EUROPE_ONLY = {"continent": {"code": "EU"}}
GERMANY = {"continent": {"code": "EU"}, "country": {"iso_code": "DE"}}

NETWORKS = [
    ("1.0.0.0/8", USA),
    ("1.2.0.0/16", SEATTLE),  # nested inside the /8: the most specific wins
    ("5.0.0.0/16", ISTANBUL),
    ("5.1.0.0/16", CRIMEA),
    ("81.0.0.0/8", EUROPE_ONLY),
    ("2001:db8::/32", GERMANY),
    ("2001:db8:1::/48", SEATTLE),
]


@pytest.mark.parametrize("record_size", [24, 28, 32])
@pytest.mark.parametrize("mode", [maxminddb.MODE_MMAP_EXT, maxminddb.MODE_MEMORY])
def test_writer_round_trip(tmp_path, record_size, mode):
    path = write_mmdb(tmp_path / "test.mmdb", NETWORKS, record_size=record_size)
    with maxminddb.open_database(str(path), mode) as reader:
        meta = reader.metadata()
        assert (meta.ip_version, meta.record_size, meta.binary_format_major_version) == (
            6,
            record_size,
            2,
        )
        assert reader.get("1.2.3.4") == SEATTLE
        assert reader.get("1.3.0.0") == USA
        assert reader.get_with_prefix_len("1.3.0.0") == (USA, 16)  # 1.2/16 split the /8
        assert reader.get_with_prefix_len("1.4.0.0") == (USA, 14)
        assert reader.get("::ffff:1.2.3.4") == SEATTLE  # the ::ffff:0:0/96 alias
        assert reader.get("2001:db8:1::1") == SEATTLE
        assert reader.get("2001:db8:2::1") == GERMANY
        assert reader.get("9.9.9.9") is None
        assert reader.get("2001:db9::") is None
        listed = {str(network): record for network, record in reader}
    assert listed["1.2.0.0/16"] == SEATTLE
    assert listed["81.0.0.0/8"] == EUROPE_ONLY
    assert not any(net.startswith("::ffff") for net in listed)  # the alias is skipped


def test_writer_ipv4_database_and_values(tmp_path):
    record = {"s": "x" * 300, "i": -5, "big": 2**40, "zero": 0, "t": True, "l": [1, 2.5, "a"]}
    path = write_mmdb(tmp_path / "v4.mmdb", [("10.0.0.0/8", record)], ip_version=4)
    with maxminddb.open_database(str(path)) as reader:
        assert reader.metadata().ip_version == 4
        assert reader.get("10.9.8.7") == record
        assert [str(n) for n, _ in reader] == ["10.0.0.0/8"]


def test_encode_sizes():
    # Control bytes for the three long-size forms of the spec (29, 30, 31).
    assert encode("a" * 28)[:1] == bytes([0x40 | 28])
    assert encode("a" * 80)[:2] == bytes([0x40 | 29, 51])
    assert encode("a" * 13392)[:3] == bytes([0x40 | 30, 0x33, 0x33])
    assert encode([])[:2] == bytes([0, 4])  # array is extended type 11 = 7 + 4


def test_location_from_record():
    assert location_from_record(SEATTLE) == Location("NA", "US", "WA", 47.61, -122.33)
    assert location_from_record(ISTANBUL, coordinates=False) == Location("EU", "TR")
    assert location_from_record(CRIMEA) == Location("EU", "UA", "11")
    assert location_from_record(EUROPE_ONLY) == Location("EU")
    assert location_from_record({"registered_country": {"iso_code": "US"}}) is None
    assert location_from_record(None) is None
    assert location_from_record(SEATTLE, coordinate_digits=0).latitude == 48.0


def test_load_city_like_database(tmp_path):
    path = write_mmdb(tmp_path / "city.mmdb", NETWORKS)
    db = load_mmdb(path)
    assert db.locate("1.2.3.4") == Location("NA", "US", "WA", 47.61, -122.33)
    assert db.locate("::ffff:1.2.3.4") == Location("NA", "US", "WA", 47.61, -122.33)
    assert db.locate("1.200.0.1") == Location("NA", "US")
    assert db.locate("5.0.0.1") == Location("EU", "TR", None, 41.01, 28.95)
    assert db.locate("2001:db8:1::5") == db.locate("1.2.0.0")
    assert db.locate("8.8.8.8") is None
    assert db.locate("81.1.1.1").candidates() == (
        GeoLocation(continent="EU"),
        GeoLocation(country="*"),
    )
    # Seattle in IPv4 and IPv6 is one location id.
    assert len(db.locations) == 6
    assert db.classifier.classify("1.2.3.4") == db.classifier.classify("2001:db8:1::")
    # Dropping coordinates merges what only they told apart.
    codes = db.without_coordinates()
    assert codes.locate("5.0.0.1") == Location("EU", "TR")
    assert len(codes.locations) == 6 and len(codes.classifier) <= len(db.classifier)


def test_load_country_like_ipv4_database(tmp_path):
    # A Country database: no subdivisions, no coordinates, IPv4 only.
    pairs = [
        ("1.0.0.0/8", USA),
        ("2.0.0.0/8", GERMANY),
        ("3.0.0.0/8", GERMANY),  # adjacent and alike: one range
    ]
    path = write_mmdb(tmp_path / "country.mmdb", pairs, ip_version=4, record_size=28)
    db = load_mmdb(path)
    assert db.locate("2.1.1.1") == db.locate("3.1.1.1") == Location("EU", "DE")
    assert not db.locate("1.1.1.1").has_coordinates
    assert [(r.start >> 24, r.end >> 24) for r in db.classifier.v4] == [(1, 1), (2, 3)]
    assert db.locate("2001:db8::1") is None


def test_records_directly_and_mapped_networks_skipped():
    pairs = [
        (ipaddress.ip_network("10.0.0.0/8"), GERMANY),
        (ipaddress.ip_network("::ffff:10.0.0.0/104"), USA),  # an alias subtree's copy
    ]
    db = geo_database_from_records(pairs)
    assert db.locate("10.1.1.1") == Location("EU", "DE")
    assert db.locations == (Location("EU", "DE"),)
