"""fastdns.geo.latency: the latency table from the configuration and the order it gives."""

from __future__ import annotations

import pytest

from fastdns.geo.cidr import GeoConfigError
from fastdns.geo.latency import parse_latency

CONFIG = {
    "default": {"us-east-1": 50, "eu-west-1": 80, "ap-northeast-1": 150},
    "networks": {
        "europe": {
            "cidrs": ["192.0.2.0/24", "2001:db8::/32"],
            "latency": {"eu-west-1": 12, "eu-central-1": 20, "us-east-1": 90},
        },
        "europe-isp-x": {"cidrs": ["192.0.2.128/25"], "latency": {"eu-central-1": 8}},
        "asia": {"cidrs": ["198.51.100.0/24"], "latency": {"ap-northeast-1": 5.5}},
    },
}


def test_classes_and_effective_maps():
    table = parse_latency(CONFIG)
    assert table.names == ("asia", "europe", "europe-isp-x")
    europe = table.classify("192.0.2.1")
    isp = table.classify("192.0.2.200")
    assert table.names[europe] == "europe" and table.names[isp] == "europe-isp-x"
    assert table.classify("2001:db8::1") == europe
    assert table.classify("203.0.113.1") is None
    # A network's map is the default overlaid by its own.
    assert table.latency_map(isp) == {
        "us-east-1": 50.0,
        "eu-west-1": 80.0,
        "ap-northeast-1": 150.0,
        "eu-central-1": 8.0,
    }


def test_regions_by_latency():
    table = parse_latency(CONFIG)
    europe, isp = table.classify("192.0.2.1"), table.classify("192.0.2.200")
    assert table.regions_by_latency(europe) == [
        "eu-west-1",
        "eu-central-1",
        "us-east-1",
        "ap-northeast-1",
    ]
    assert table.regions_by_latency(isp) == [
        "eu-central-1",
        "us-east-1",
        "eu-west-1",
        "ap-northeast-1",
    ]
    assert table.regions_by_latency(None) == ["us-east-1", "eu-west-1", "ap-northeast-1"]
    # A group's regions: the unmeasured ones last, in the group's order.
    group = ["sa-east-1", "ap-northeast-1", "af-south-1", "eu-west-1"]
    assert table.regions_by_latency(table.classify("198.51.100.7"), group) == [
        "ap-northeast-1",
        "eu-west-1",
        "sa-east-1",
        "af-south-1",
    ]


def test_ties_keep_the_given_order():
    table = parse_latency({"default": {"us-east-1": 10, "us-west-2": 10}})
    assert table.regions_by_latency(None, ["us-west-2", "us-east-1"]) == ["us-west-2", "us-east-1"]
    assert table.regions_by_latency(None) == ["us-east-1", "us-west-2"]  # by name
    assert parse_latency({}).regions_by_latency(None, ["b", "a"]) == ["b", "a"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], r"^latency: expected a table"),
        ({"nets": {}}, r"^latency: unknown key 'nets' \(expected networks, default\)"),
        ({"default": {"us-east-7": 5}}, r"^latency\.default\.us-east-7: unknown region"),
        ({"default": {"us-east-1": -1}}, r"^latency\.default\.us-east-1: -1 is not a latency"),
        ({"default": {"us-east-1": "5"}}, r"'5' is not a latency"),
        ({"default": {"us-east-1": True}}, r"True is not a latency"),
        ({"default": {"us-east-1": float("nan")}}, r"nan is not a latency"),
        ({"networks": {"a": ["10.0.0.0/8"]}}, r"^latency\.networks\.a: expected a table"),
        ({"networks": {"a": {"cidrs": []}}}, r"^latency\.networks\.a\.cidrs: expected a non"),
        ({"networks": {"a": {"cidrs": ["10/8"]}}}, r"^latency\.networks\.a\.cidrs\[0\]: '10/8'"),
        (
            {"networks": {"a": {"cidrs": ["10.0.0.0/8"], "latency": {"mars-1": 3}}}},
            r"^latency\.networks\.a\.latency\.mars-1: unknown region",
        ),
        (
            {"networks": {"a": {"cidrs": ["10.0.0.0/8"], "lat": {}}}},
            r"^latency\.networks\.a: unknown key 'lat'",
        ),
        (
            {
                "networks": {
                    "a": {"cidrs": ["10.0.0.0/8"]},
                    "b": {"cidrs": ["10.0.0.0/8"]},
                }
            },
            r"^latency\.networks\.b\.cidrs\[0\]: 10\.0\.0\.0/8 is already in network 'a'",
        ),
    ],
)
def test_invalid_configs_name_the_bad_key(config, message):
    with pytest.raises(GeoConfigError, match=message):
        parse_latency(config)


def test_custom_region_names_and_slash_zero():
    table = parse_latency(
        {"networks": {"all": {"cidrs": ["0.0.0.0/0", "::/0"], "latency": {"dc-a": 1}}}},
        regions={"dc-a", "dc-b"},
    )
    assert table.classify("8.8.8.8") == table.classify("2001:db8::") == 0
    assert table.regions_by_latency(0, ["dc-b", "dc-a"]) == ["dc-a", "dc-b"]
