"""Routing policies compiled into images and evaluated by the hot path (``Catalog.answer``).

Each test builds a zone model with policy record sets (as the API stores them), compiles it in a
``PolicyEnvironment`` made from a test MaxMind database, a latency table and a CIDR collection,
and asks the C answer function, with the client given as an EDNS Client Subnet or as the source
address. Health is a bytearray standing in for the shared health table. Statistical tests state
their bounds: counts within 5 standard deviations of the binomial mean (a false failure about
once in 3.5 million runs).
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from support.mmdb_writer import write_mmdb

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.geo.cidr import parse_cidr_collections
from fastdns.geo.latency import parse_latency
from fastdns.model import RecordSet, Zone
from fastdns.policyenv import build_environment, with_health_slots

ORIGIN = dns.name.from_text("pol.test.")
COLLECTION = "5d1c2a4e-0b7f-4c3e-9a61-0c2f3d4e5f60"

# Client networks of the test geo database (documentation and benchmarking ranges).
CALIFORNIA, TEXAS, GERMANY, JAPAN, NOWHERE = (
    "198.18.1.0",
    "198.18.2.0",
    "198.18.3.0",
    "198.18.4.0",
    "203.0.113.0",
)
GEO_NETWORKS = [
    (
        "198.18.1.0/24",
        {
            "continent": {"code": "NA"},
            "country": {"iso_code": "US"},
            "subdivisions": [{"iso_code": "CA"}],
            "location": {"latitude": 37.77, "longitude": -122.42},
        },
    ),
    (
        "198.18.2.0/24",
        {
            "continent": {"code": "NA"},
            "country": {"iso_code": "US"},
            "subdivisions": [{"iso_code": "TX"}],
            "location": {"latitude": 29.76, "longitude": -95.37},
        },
    ),
    (
        "198.18.3.0/24",
        {
            "continent": {"code": "EU"},
            "country": {"iso_code": "DE"},
            "location": {"latitude": 50.11, "longitude": 8.68},
        },
    ),
    (
        "198.18.4.0/24",
        {
            "continent": {"code": "AS"},
            "country": {"iso_code": "JP"},
            "location": {"latitude": 35.68, "longitude": 139.69},
        },
    ),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("geo")
    database = write_mmdb(folder / "test.mmdb", GEO_NETWORKS)
    latency = parse_latency(
        {
            "default": {"us-east-1": 50, "eu-west-1": 80, "ap-northeast-1": 120},
            "networks": {
                "europe": {
                    "cidrs": ["198.18.3.0/24"],
                    "latency": {"eu-west-1": 10, "us-east-1": 90},
                },
                "japan": {"cidrs": ["198.18.4.0/24"], "latency": {"ap-northeast-1": 5}},
            },
        }
    )
    collections = parse_cidr_collections(
        [
            {
                "id": COLLECTION,
                "name": "isps",
                "locations": {"isp-a": ["10.1.0.0/16"], "isp-b": ["10.2.0.0/16", "10.2.3.0/24"]},
            }
        ]
    )
    base = build_environment(database, latency, collections)
    return with_health_slots(base, {f"hc-{n}": n for n in range(16)})


def a_records(*addresses: str) -> tuple:
    return tuple(dns.rdata.from_text("IN", "A", a) for a in addresses)


def member(name: str, identifier: str, address: str, *, health=None, **policy) -> RecordSet:
    return RecordSet(
        name=dns.name.from_text(name, ORIGIN),
        rdtype=dns.rdatatype.A,
        ttl=60,
        rdatas=a_records(address),
        set_identifier=identifier,
        policy={"SetIdentifier": identifier, **policy},
        health_check_id=health,
    )


def zone_with(*record_sets: RecordSet) -> Zone:
    zone = Zone(ORIGIN)
    zone.add(
        RecordSet(
            ORIGIN,
            dns.rdatatype.SOA,
            300,
            (dns.rdata.from_text("IN", "SOA", "ns1.pol.test. h.pol.test. 1 7200 900 1209600 300"),),
        )
    )
    zone.add(
        RecordSet(
            ORIGIN, dns.rdatatype.NS, 300, (dns.rdata.from_text("IN", "NS", "ns1.pol.test."),)
        )
    )
    for rrset in record_sets:
        zone.add(rrset)
    return zone


class Server:
    """A catalog over one compiled zone, with a health table the test flips."""

    def __init__(self, env, *record_sets: RecordSet):
        self.health = bytearray(b"\x01" * 16)
        image = compile_zone(zone_with(*record_sets), env)
        self.catalog = _core.Catalog([image], 1232, env.classifiers, self.health)

    def set_health(self, slot: int, healthy: bool) -> None:
        self.health[slot] = 1 if healthy else 0

    def ask(self, name: str, qtype="A", *, ecs: str | None = None, source=24, client=None):
        options = [dns.edns.ECSOption(ecs, source)] if ecs is not None else []
        query = dns.message.make_query(
            dns.name.from_text(name, ORIGIN), qtype, use_edns=0, options=options
        )
        packed = ipaddress.ip_address(client).packed if client else None
        reply, explanation = self.catalog.answer_explained(query.to_wire(), packed)
        return dns.message.from_wire(reply), explanation

    def addresses(self, name: str, **kwargs) -> list[str]:
        response, _ = self.ask(name, **kwargs)
        assert response.rcode() == dns.rcode.NOERROR
        return sorted(r.to_text() for rrset in response.answer for r in rrset)

    def sample(self, name: str, n: int) -> Counter:
        """The single A address of ``n`` answers to one query (no EDNS, so the address is the
        reply's last four octets), counted: fast enough for statistical tests."""
        query = dns.message.make_query(dns.name.from_text(name, ORIGIN), "A").to_wire()
        counts: Counter = Counter()
        answer = self.catalog.answer
        for _ in range(n):
            reply = answer(query)
            assert reply[6:8] == b"\0\1"  # ANCOUNT 1
            counts[reply[-4:]] += 1
        return Counter({str(ipaddress.IPv4Address(k)): v for k, v in counts.items()})

    def address(self, name: str, **kwargs) -> str | None:
        found = self.addresses(name, **kwargs)
        assert len(found) <= 1
        return found[0] if found else None


def within_binomial(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


# -- weighted


def test_weighted_70_30_over_20000_queries(env):
    server = Server(
        env,
        member("w", "a", "192.0.2.1", Weight=70),
        member("w", "b", "192.0.2.2", Weight=30),
    )
    counts = server.sample("w", 20_000)
    assert set(counts) == {"192.0.2.1", "192.0.2.2"}
    assert within_binomial(counts["192.0.2.1"], 20_000, 0.7)


def test_weighted_skips_unhealthy_and_fails_open(env):
    server = Server(
        env,
        member("w", "a", "192.0.2.1", Weight=70, health="hc-1"),
        member("w", "b", "192.0.2.2", Weight=20, health="hc-2"),
        member("w", "c", "192.0.2.3", Weight=10, health="hc-3"),
    )
    server.set_health(1, False)
    counts = server.sample("w", 6000)
    assert "192.0.2.1" not in counts
    assert within_binomial(counts["192.0.2.2"], 6000, 2 / 3)
    for slot in (1, 2, 3):
        server.set_health(slot, False)
    counts = server.sample("w", 6000)  # fail open: all by weight
    assert within_binomial(counts["192.0.2.1"], 6000, 0.7)


def test_weight_zero_only_when_every_weighted_member_is_unhealthy(env):
    server = Server(
        env,
        member("w", "a", "192.0.2.1", Weight=1, health="hc-1"),
        member("w", "z1", "192.0.2.8", Weight=0),
        member("w", "z2", "192.0.2.9", Weight=0),
    )
    assert set(server.sample("w", 500)) == {"192.0.2.1"}
    server.set_health(1, False)
    counts = server.sample("w", 4000)
    assert set(counts) == {"192.0.2.8", "192.0.2.9"}
    assert within_binomial(counts["192.0.2.8"], 4000, 0.5)


def test_all_weights_zero_share_equally(env):
    server = Server(
        env,
        member("w", "a", "192.0.2.1", Weight=0),
        member("w", "b", "192.0.2.2", Weight=0),
    )
    counts = server.sample("w", 4000)
    assert within_binomial(counts["192.0.2.1"], 4000, 0.5)


# -- failover


def test_failover_primary_secondary_and_both_down(env):
    server = Server(
        env,
        member("f", "p", "192.0.2.1", Failover="PRIMARY", health="hc-1"),
        member("f", "s", "192.0.2.2", Failover="SECONDARY", health="hc-2"),
    )
    assert server.address("f") == "192.0.2.1"
    server.set_health(1, False)
    assert server.address("f") == "192.0.2.2"
    server.set_health(2, False)
    assert server.address("f") == "192.0.2.1"  # both unhealthy: the primary
    server.set_health(1, True)
    assert server.address("f") == "192.0.2.1"


def test_failover_secondary_without_health_check_counts_as_healthy(env):
    server = Server(
        env,
        member("f", "p", "192.0.2.1", Failover="PRIMARY", health="hc-1"),
        member("f", "s", "192.0.2.2", Failover="SECONDARY"),
    )
    server.set_health(1, False)
    assert server.address("f") == "192.0.2.2"


def test_health_check_unknown_to_the_environment_never_fails(env):
    server = Server(env, member("f", "p", "192.0.2.1", Failover="PRIMARY", health="gone"))
    assert server.address("f") == "192.0.2.1"


# -- multivalue


def multivalue_server(env, count: int) -> Server:
    return Server(
        env,
        *[
            member("m", f"m{i}", f"192.0.2.{i + 1}", MultiValueAnswer=True, health=f"hc-{i}")
            for i in range(count)
        ],
    )


def test_multivalue_returns_at_most_eight_random_healthy_values(env):
    server = multivalue_server(env, 12)
    for slot in (0, 1, 2):
        server.set_health(slot, False)
    seen = Counter()
    for _ in range(600):
        values = server.addresses("m")
        assert len(values) == 8 and len(set(values)) == 8
        assert not {"192.0.2.1", "192.0.2.2", "192.0.2.3"} & set(values)
        seen.update(values)
    assert len(seen) == 9  # every healthy value turns up: the choice is random per query


def test_multivalue_with_few_healthy_returns_all_of_them(env):
    server = multivalue_server(env, 12)
    for slot in range(12):
        server.set_health(slot, slot < 3)
    for _ in range(50):
        assert server.addresses("m") == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


def test_multivalue_fails_open_with_eight_unhealthy_values(env):
    server = multivalue_server(env, 12)
    for slot in range(12):
        server.set_health(slot, False)
    for _ in range(50):
        assert len(set(server.addresses("m"))) == 8


# -- geolocation (client location from ECS, else the source address)


def geo_server(env, *, default=True, health=None) -> Server:
    members = [
        member("g", "ca", "192.0.2.1", GeoLocation={"CountryCode": "US", "SubdivisionCode": "CA"}),
        member("g", "us", "192.0.2.2", GeoLocation={"CountryCode": "US"}),
        member("g", "eu", "192.0.2.3", GeoLocation={"ContinentCode": "EU"}),
    ]
    if health:
        members[0].health_check_id = health
    if default:
        members.append(member("g", "any", "192.0.2.9", GeoLocation={"CountryCode": "*"}))
    return Server(env, *members)


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (CALIFORNIA, "192.0.2.1"),  # subdivision beats country
        (TEXAS, "192.0.2.2"),  # country
        (GERMANY, "192.0.2.3"),  # continent
        (JAPAN, "192.0.2.9"),  # default
        (NOWHERE, "192.0.2.9"),  # not in the database: default
    ],
)
def test_geolocation_most_specific_location_wins(env, client, expected):
    server = geo_server(env)
    assert server.address("g", ecs=client) == expected
    assert server.address("g", client=client) == expected  # no ECS: the source address


def test_geolocation_falls_back_when_the_specific_record_is_unhealthy(env):
    server = geo_server(env, health="hc-4")
    server.set_health(4, False)
    assert server.address("g", ecs=CALIFORNIA) == "192.0.2.2"


def test_geolocation_without_default_answers_nodata(env):
    server = geo_server(env, default=False)
    response, _ = server.ask("g", ecs=JAPAN)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_geolocation_echoes_ecs_with_a_scope_that_covers_the_answer(env):
    server = geo_server(env)
    response, _ = server.ask("g", ecs="198.18.1.77", source=32)
    (option,) = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
    assert option.srclen == 32
    # The database places the whole /24: the answer holds for all of it, no wider.
    assert option.scopelen == 24


# -- latency


def latency_server(env, health=None) -> Server:
    members = [
        member("l", "use1", "192.0.2.1", Region="us-east-1", health=health),
        member("l", "euw1", "192.0.2.2", Region="eu-west-1"),
        member("l", "apne1", "192.0.2.3", Region="ap-northeast-1"),
    ]
    return Server(env, *members)


@pytest.mark.parametrize(
    ("client", "expected"),
    [(GERMANY, "192.0.2.2"), (JAPAN, "192.0.2.3"), (CALIFORNIA, "192.0.2.1")],
)
def test_latency_lowest_latency_region_wins(env, client, expected):
    assert latency_server(env).address("l", ecs=client) == expected


def test_latency_next_lowest_when_unhealthy(env):
    server = latency_server(env, health="hc-5")
    server.set_health(5, False)
    # default map: us-east-1 50, eu-west-1 80, ap-northeast-1 120
    assert server.address("l", ecs=CALIFORNIA) == "192.0.2.2"


# -- IP-based


def ip_server(env, default=True) -> Server:
    def cidr(location):
        return {"CollectionId": COLLECTION, "LocationName": location}

    members = [
        member("i", "a", "192.0.2.1", CidrRoutingConfig=cidr("isp-a")),
        member("i", "b", "192.0.2.2", CidrRoutingConfig=cidr("isp-b")),
    ]
    if default:
        members.append(member("i", "d", "192.0.2.9", CidrRoutingConfig=cidr("*")))
    return Server(env, *members)


def test_ip_based_routing_by_collection_location(env):
    server = ip_server(env)
    assert server.address("i", ecs="10.1.7.0") == "192.0.2.1"
    assert server.address("i", ecs="10.2.3.0") == "192.0.2.2"
    assert server.address("i", ecs="10.3.0.0") == "192.0.2.9"
    assert server.address("i", client="10.2.9.9") == "192.0.2.2"


def test_ip_based_client_prefix_shorter_than_the_block_does_not_match(env):
    # Route 53: a /8 client subnet does not match a /16 block: the default answers.
    server = ip_server(env)
    assert server.address("i", ecs="10.0.0.0", source=8) == "192.0.2.9"
    assert ip_server(env, default=False).address("i", ecs="10.0.0.0", source=8) is None


# -- geoproximity


def geoproximity_server(env, bias_eu=0) -> Server:
    def at(lat, lon, bias=0):
        return {"Coordinates": {"Latitude": str(lat), "Longitude": str(lon)}, "Bias": bias}

    return Server(
        env,
        member("p", "sf", "192.0.2.1", GeoProximityLocation=at(37.0, -122.0)),
        member("p", "ny", "192.0.2.2", GeoProximityLocation=at(40.7, -74.0)),
        member("p", "fra", "192.0.2.3", GeoProximityLocation={"AWSRegion": "eu-central-1"}),
        member("p", "dub", "192.0.2.4", GeoProximityLocation=at(53.3, -6.3, bias_eu)),
    )


def test_geoproximity_nearest_location_wins(env):
    server = geoproximity_server(env)
    assert server.address("p", ecs=CALIFORNIA) == "192.0.2.1"
    assert server.address("p", ecs=TEXAS) == "192.0.2.2"  # Houston: NY is nearer than SF
    assert server.address("p", ecs=GERMANY) == "192.0.2.3"


def test_geoproximity_bias_stretches_a_region(env):
    # Frankfurt -> Frankfurt 0 km; Dublin ~1090 km. A bias of +99 makes Dublin count 10.9 km,
    # still more than 0; a bias on Dublin cannot win Frankfurt, but it wins Houston from NY
    # (NY ~2280 km, Dublin ~7570 km * 0.01 = 76 km).
    server = geoproximity_server(env, bias_eu=99)
    assert server.address("p", ecs=GERMANY) == "192.0.2.3"
    assert server.address("p", ecs=TEXAS) == "192.0.2.4"


# -- aliases and CNAMEs


def test_alias_at_the_apex_to_a_weighted_group_with_evaluate_target_health(env):
    apex_alias = RecordSet(
        ORIGIN,
        dns.rdatatype.A,
        60,
        a_records("192.0.2.1"),
        alias_target=dns.name.from_text("w", ORIGIN),
        evaluate_target_health=True,
    )
    fallback = member("@", "fallback", "192.0.2.99", Failover="SECONDARY")
    primary = RecordSet(
        ORIGIN,
        dns.rdatatype.A,
        60,
        a_records("192.0.2.1"),
        set_identifier="primary",
        policy={"SetIdentifier": "primary", "Failover": "PRIMARY"},
        alias_target=dns.name.from_text("w", ORIGIN),
        evaluate_target_health=True,
    )
    weighted = [
        member("w", "a", "192.0.2.1", Weight=50, health="hc-1"),
        member("w", "b", "192.0.2.2", Weight=50, health="hc-2"),
    ]
    # A simple alias at the apex answers per query from the weighted group.
    server = Server(env, apex_alias, *weighted)
    assert {server.address("@") for _ in range(400)} == {"192.0.2.1", "192.0.2.2"}
    # A failover primary aliasing the group is healthy while any member of the group is.
    server = Server(env, primary, fallback, *weighted)
    server.set_health(1, False)
    assert {server.address("@") for _ in range(100)} == {"192.0.2.2"}
    server.set_health(2, False)
    assert server.address("@") == "192.0.2.99"


def test_weighted_cname_answers_the_chosen_cname_for_any_type(env):
    def cname(identifier, target, weight):
        return RecordSet(
            dns.name.from_text("c", ORIGIN),
            dns.rdatatype.CNAME,
            60,
            (dns.rdata.from_text("IN", "CNAME", target),),
            set_identifier=identifier,
            policy={"SetIdentifier": identifier, "Weight": weight},
        )

    server = Server(env, cname("x", "x.example.net.", 1), cname("y", "y.example.net.", 1))
    targets = set()
    for qtype in ("A", "AAAA", "CNAME", "MX"):
        for _ in range(100):
            response, _ = server.ask("c", qtype)
            (rrset,) = response.answer
            assert rrset.rdtype == dns.rdatatype.CNAME
            targets.add(rrset[0].target.to_text())
    assert targets == {"x.example.net.", "y.example.net."}


def test_a_cname_chain_stops_at_a_policy_answer(env):
    alias = RecordSet(
        dns.name.from_text("to-w", ORIGIN),
        dns.rdatatype.CNAME,
        60,
        (dns.rdata.from_text("IN", "CNAME", "w.pol.test."),),
    )
    server = Server(env, alias, member("w", "a", "192.0.2.1", Weight=1))
    response, _ = server.ask("to-w")
    assert response.rcode() == dns.rcode.NOERROR
    assert [r.rdtype for r in response.answer] == [dns.rdatatype.CNAME]
    assert response.authority == []  # not NODATA: the resolver asks for w itself


# -- the explanation agrees with the answer


def test_explanation_names_the_member_that_answered(env):
    server = Server(
        env,
        member("w", "a", "192.0.2.1", Weight=50),
        member("w", "b", "192.0.2.2", Weight=50),
    )
    for _ in range(200):
        response, explanation = server.ask("w")
        chosen = response.answer[0][0].to_text()
        assert explanation["member"] == {"192.0.2.1": 0, "192.0.2.2": 1}[chosen]
    _, static = server.ask("@", "SOA")
    assert static is None
