"""Routing policies end to end: record sets made with boto3 against a real fastdns, health checks
of real local HTTP and TCP servers, answers asked over UDP with EDNS Client Subnet, and
TestDNSAnswer's prediction compared with what a client gets (the differential rule of issue 5).

The server's config names a test MaxMind database, a latency table and a CIDR collection, and
shortens health-check intervals tenfold (``health_check_time_scale = 0.1``: a 10 s interval is
1 s), so a failover happens in seconds. Failover times are measured and printed, not asserted:
the convergence wait is a generous timeout.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, make_client
from support.dnssec import validate_sections
from support.health import HttpEndpoint, TcpEndpoint
from support.mmdb_writer import write_mmdb
from support.server import running_fastdns

from fastdns.bench.servers import free_port

COLLECTION = "0b7f5d1c-2a4e-4c3e-9a61-0c2f3d4e5f60"
GEO = [
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
            "subdivisions": [{"iso_code": "NY"}],
            "location": {"latitude": 40.71, "longitude": -74.0},
        },
    ),
    ("198.18.3.0/24", {"continent": {"code": "EU"}, "country": {"iso_code": "FR"}}),
    ("198.18.4.0/24", {"continent": {"code": "AS"}, "country": {"iso_code": "JP"}}),
]
CLIENTS = ["198.18.1.10", "198.18.2.10", "198.18.3.10", "198.18.4.10", "203.0.113.5", "10.9.1.1"]
FAILOVER_TIMEOUT = 15.0  # seconds to wait for a failover (measured figures are printed)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy-server")
    database = write_mmdb(folder / "geo.mmdb", GEO)
    (folder / "zones").mkdir()
    api_port = free_port("127.0.0.1")
    config = folder / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{folder / "zones"}"\n'
        f'state = "{folder / "state.db"}"\n'
        f'api_listen = "127.0.0.1:{api_port}"\n'
        f'geoip_database = "{database}"\n'
        "health_check_time_scale = 0.1\n"
        "[[access_keys]]\n"
        f'id = "{ACCESS_KEY}"\n'
        f'secret = "{SECRET_KEY}"\n'
        "[latency.default]\n"
        '"us-east-1" = 50\n"eu-west-1" = 90\n'
        "[latency.networks.europe]\n"
        'cidrs = ["198.18.3.0/24"]\n'
        'latency = { "eu-west-1" = 10 }\n'
        "[[cidr_collections]]\n"
        f'id = "{COLLECTION}"\n'
        'name = "isps"\n'
        "[cidr_collections.locations]\n"
        'isp-a = ["10.9.0.0/16"]\n'
    )
    with running_fastdns(None, config=config, workers=2) as handle:
        handle.wait_for_log("Route 53 API at")
        handle.client = make_client(f"http://127.0.0.1:{api_port}")
        handle.state = folder / "state.db"
        yield handle


def new_zone(client) -> tuple[str, str]:
    name = f"pol-{uuid.uuid4().hex[:8]}.test."
    zone = client.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))
    return zone["HostedZone"]["Id"].rsplit("/", 1)[-1], name


def upsert(client, zone_id: str, *record_sets: dict) -> None:
    changes = [{"Action": "UPSERT", "ResourceRecordSet": r} for r in record_sets]
    change = client.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": changes}
    )
    client.get_waiter("resource_record_sets_changed").wait(
        Id=change["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 20}
    )


def a_set(name: str, identifier: str, address: str, **fields) -> dict:
    return {
        "Name": name,
        "Type": "A",
        "TTL": 30,
        "SetIdentifier": identifier,
        "ResourceRecords": [{"Value": address}],
        **fields,
    }


def ask(server, name: str, ecs: str | None = None) -> list[str]:
    options = [dns.edns.ECSOption(ecs, 24)] if ecs else []
    query = dns.message.make_query(name, "A", use_edns=0, options=options)
    response = dns.query.udp(query, server.host, port=server.port, timeout=3)
    assert response.rcode() == dns.rcode.NOERROR
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


def predicted(client, zone_id: str, name: str, ecs: str | None = None) -> dict:
    kwargs = {"EDNS0ClientSubnetIP": ecs, "EDNS0ClientSubnetMask": "24"} if ecs else {}
    return client.test_dns_answer(
        HostedZoneId=zone_id, RecordName=name, RecordType="A", ResolverIP="127.0.0.1", **kwargs
    )


def health_check(client, **config) -> str:
    if config["Type"] != "CALCULATED":
        config.setdefault("RequestInterval", 10)
        config.setdefault("FailureThreshold", 1)
        config.setdefault("IPAddress", "127.0.0.1")
    response = client.create_health_check(
        CallerReference=str(uuid.uuid4()), HealthCheckConfig=config
    )
    return response["HealthCheck"]["Id"]


def wait_for_answer(server, name: str, expected: list[str], timeout=FAILOVER_TIMEOUT) -> float:
    started = time.monotonic()
    while ask(server, name) != expected:
        assert time.monotonic() - started < timeout, f"{name} never answered {expected}"
        time.sleep(0.05)
    return time.monotonic() - started


def test_failover_follows_real_http_and_tcp_endpoints(server):
    client = server.client
    zone_id, zone = new_zone(client)
    name = f"www.{zone}"
    with HttpEndpoint() as web, TcpEndpoint() as tcp:
        primary = health_check(client, Type="HTTP", Port=web.port, ResourcePath="/health")
        secondary = health_check(client, Type="TCP", Port=tcp.port)
        upsert(
            client,
            zone_id,
            a_set(name, "p", "192.0.2.1", Failover="PRIMARY", HealthCheckId=primary),
            a_set(name, "s", "192.0.2.2", Failover="SECONDARY", HealthCheckId=secondary),
        )
        wait_for_answer(server, name, ["192.0.2.1"])
        web.status = 503
        took = wait_for_answer(server, name, ["192.0.2.2"])
        # bound: interval (10 s x 0.1) x threshold (1) + 1 s = 2 s
        print(f"\nfailover to SECONDARY after the primary failed: {took:.2f} s (bound 2 s)")
        explanation = predicted(client, zone_id, name)
        assert explanation["RecordData"] == ["192.0.2.2"]
        tcp.close()  # both unhealthy: Route 53 answers the primary
        took = wait_for_answer(server, name, ["192.0.2.1"])
        print(f"both unhealthy, back to PRIMARY: {took:.2f} s")
        web.status = 200
        wait_for_answer(server, name, ["192.0.2.1"])


def test_calculated_health_check_drives_a_weighted_member(server):
    client = server.client
    zone_id, zone = new_zone(client)
    name = f"w.{zone}"
    with HttpEndpoint() as first, HttpEndpoint() as second:
        children = [
            health_check(client, Type="HTTP", Port=first.port),
            health_check(client, Type="HTTP", Port=second.port),
        ]
        both = health_check(
            client, Type="CALCULATED", ChildHealthChecks=children, HealthThreshold=2
        )
        upsert(
            client,
            zone_id,
            a_set(name, "a", "192.0.2.1", Weight=100, HealthCheckId=both),
            # Weight 0: answered only while every weighted member is unhealthy.
            a_set(name, "b", "192.0.2.2", Weight=0),
        )
        wait_for_answer(server, name, ["192.0.2.1"], timeout=FAILOVER_TIMEOUT)
        assert {ask(server, name)[0] for _ in range(50)} == {"192.0.2.1"}
        second.status = 500  # AND of two: one down is down
        wait_for_answer(server, name, ["192.0.2.2"])
        assert {ask(server, name)[0] for _ in range(50)} == {"192.0.2.2"}


def test_geolocation_by_ecs_and_test_dns_answer_agree(server):
    client = server.client
    zone_id, zone = new_zone(client)
    name = f"geo.{zone}"
    upsert(
        client,
        zone_id,
        a_set(name, "ca", "192.0.2.1", GeoLocation={"CountryCode": "US", "SubdivisionCode": "CA"}),
        a_set(name, "us", "192.0.2.2", GeoLocation={"CountryCode": "US"}),
        a_set(name, "eu", "192.0.2.3", GeoLocation={"ContinentCode": "EU"}),
        a_set(name, "default", "192.0.2.9", GeoLocation={"CountryCode": "*"}),
    )
    expected = {
        "198.18.1.10": "192.0.2.1",
        "198.18.2.10": "192.0.2.2",
        "198.18.3.10": "192.0.2.3",
        "198.18.4.10": "192.0.2.9",
    }
    for ecs, address in expected.items():
        assert ask(server, name, ecs) == [address]
        prediction = predicted(client, zone_id, name, ecs)
        assert prediction["RecordData"] == [address]
        assert prediction["ResponseCode"] == "NOERROR"


def test_every_policy_answer_is_the_one_test_dns_answer_predicts(server):
    """The differential rule: for each client, the served answer is TestDNSAnswer's (for
    deterministic policies) or one of the values it can give (weighted, multivalue)."""
    client = server.client
    zone_id, zone = new_zone(client)
    lat, ip, prox, mv, w = (f"{label}.{zone}" for label in ("lat", "ip", "prox", "mv", "w"))
    cidr = {"CollectionId": COLLECTION}

    def at(lat_, lon_):
        return {"Coordinates": {"Latitude": str(lat_), "Longitude": str(lon_)}}

    upsert(
        client,
        zone_id,
        a_set(lat, "use1", "192.0.2.1", Region="us-east-1"),
        a_set(lat, "euw1", "192.0.2.2", Region="eu-west-1"),
        a_set(ip, "a", "192.0.2.1", CidrRoutingConfig={**cidr, "LocationName": "isp-a"}),
        a_set(ip, "d", "192.0.2.9", CidrRoutingConfig={**cidr, "LocationName": "*"}),
        a_set(prox, "sf", "192.0.2.1", GeoProximityLocation=at(37.0, -122.0)),
        a_set(prox, "ny", "192.0.2.2", GeoProximityLocation=at(40.7, -74.0)),
        *[a_set(mv, f"m{i}", f"192.0.2.{i + 1}", MultiValueAnswer=True) for i in range(10)],
        a_set(w, "a", "192.0.2.1", Weight=1),
        a_set(w, "b", "192.0.2.2", Weight=1),
    )
    for ecs in CLIENTS:
        for deterministic in (lat, ip, prox):
            assert ask(server, deterministic, ecs) == sorted(
                predicted(client, zone_id, deterministic, ecs)["RecordData"]
            ), (deterministic, ecs)
    assert ask(server, lat, "198.18.3.10") == ["192.0.2.2"]
    assert ask(server, ip, "10.9.1.1") == ["192.0.2.1"]
    assert ask(server, prox, "198.18.2.10") == ["192.0.2.2"]
    values = {f"192.0.2.{i + 1}" for i in range(10)}
    for _ in range(20):
        served = ask(server, mv)
        assert len(served) == 8 and set(served) <= values
        prediction = predicted(client, zone_id, mv)["RecordData"]
        assert len(prediction) == 8 and set(prediction) <= values
        assert ask(server, w)[0] in {"192.0.2.1", "192.0.2.2"}


def test_test_dns_answer_explains_the_choice(server):
    """The Explanation element (a fastdns extension) names the rule and every member's health;
    boto3 ignores it, so it is read from the raw XML."""
    client = server.client
    zone_id, zone = new_zone(client)
    name = f"f.{zone}"
    with HttpEndpoint() as web:
        check = health_check(client, Type="HTTP", Port=web.port)
        upsert(
            client,
            zone_id,
            a_set(name, "p", "192.0.2.1", Failover="PRIMARY", HealthCheckId=check),
            a_set(name, "s", "192.0.2.2", Failover="SECONDARY"),
        )
        web.status = 500
        wait_for_answer(server, name, ["192.0.2.2"])
        query = urllib.parse.urlencode(
            {"hostedzoneid": zone_id, "recordname": name, "recordtype": "A"}
        )
        endpoint = client.meta.endpoint_url
        request = botocore.awsrequest.AWSRequest(
            "GET", f"{endpoint}/2013-04-01/testdnsanswer?{query}"
        )
        credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
        botocore.auth.SigV4Auth(credentials, "route53", "us-east-1").add_auth(request)
        prepared = urllib.request.Request(request.url, headers=dict(request.headers))
        body = urllib.request.urlopen(prepared, timeout=5).read().decode()
    assert "<Policy>Failover</Policy>" in body
    assert f"<HealthCheckId>{check}</HealthCheckId><Healthy>false</Healthy>" in body
    assert "<SetIdentifier>s</SetIdentifier><Healthy>true</Healthy><Chosen>true</Chosen>" in body


def test_policy_record_sets_the_server_cannot_answer_are_refused(server):
    client = server.client
    zone_id, zone = new_zone(client)
    bad = [
        a_set(f"g.{zone}", "x", "192.0.2.1", GeoLocation={"CountryCode": "XX"}),
        a_set(f"l.{zone}", "x", "192.0.2.1", Region="mars-north-1"),
        a_set(
            f"i.{zone}",
            "x",
            "192.0.2.1",
            CidrRoutingConfig={"CollectionId": COLLECTION, "LocationName": "nowhere"},
        ),
    ]
    for record_set in bad:
        with pytest.raises(client.exceptions.InvalidChangeBatch):
            client.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record_set}]},
            )
    listed = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert {r["Type"] for r in listed} == {"SOA", "NS"}  # nothing changed


def _create_ksk(client, zone_id: str) -> None:
    client.create_key_signing_key(
        CallerReference=str(uuid.uuid4()),
        HostedZoneId=zone_id,
        KeyManagementServiceArn="arn:aws:kms:us-east-1:111122223333:key/test",
        Name="ksk1",
        Status="ACTIVE",
    )


def _denial(server, zone: str, mode: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fastdns", "zone", "dnssec-denial", zone, mode,
               "--state", str(server.state)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_an_nsec3_signed_zone_keeps_a_default_in_geolocation_and_ip_groups(server):
    """With the NSEC3 option denials are signed when the zone is compiled, so a geolocation or
    IP-based group without a default record would give some clients a NODATA that cannot be
    proven: enabling DNSSEC on such a zone is refused, and so is a batch that would make one
    (and so is choosing NSEC3 for a signed zone with such a group)."""
    client = server.client
    zone_id, zone = new_zone(client)
    name = f"geo.{zone}"
    us = a_set(name, "us", "192.0.2.1", GeoLocation={"CountryCode": "US"})
    default = a_set(name, "default", "192.0.2.9", GeoLocation={"CountryCode": "*"})
    upsert(client, zone_id, us)
    assert _denial(server, zone, "nsec3").stdout == "nsec3\n"
    _create_ksk(client, zone_id)
    with pytest.raises(client.exceptions.InvalidInput, match="default record"):
        client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)
    assert client.get_dnssec(HostedZoneId=zone_id)["Status"]["ServeSignature"] == "NOT_SIGNING"
    upsert(client, zone_id, default)
    client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)
    with pytest.raises(client.exceptions.InvalidChangeBatch, match="default record"):
        client.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": default}]},
        )
    served = ask(server, name, "198.18.4.10")  # Japan: only the default matches
    assert served == ["192.0.2.9"]


def test_compact_denial_signs_the_nodata_of_a_geolocation_group_without_default(server):
    """Compact denial (the default) signs per query: the NODATA a geolocation group without a
    default gives an unmatched client carries the name's NSEC without the type asked, and
    validates; matched clients get the signed record. Switching such a zone to NSEC3 is
    refused."""
    client = server.client
    zone_id, zone = new_zone(client)
    name = f"geo.{zone}"
    upsert(client, zone_id, a_set(name, "us", "192.0.2.1", GeoLocation={"CountryCode": "US"}))
    upsert(client, zone_id, {"Name": name, "Type": "TXT", "TTL": 30,
                             "ResourceRecords": [{"Value": '"geo"'}]})  # fmt: skip
    _create_ksk(client, zone_id)
    change = client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]["Id"]
    client.get_waiter("resource_record_sets_changed").wait(
        Id=change, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
    )

    def signed(rtype: str, ecs: str) -> dns.message.Message:
        query = dns.message.make_query(
            name if rtype != "DNSKEY" else zone, rtype, want_dnssec=True,
            options=[dns.edns.ECSOption(ecs, 24)],
        )  # fmt: skip
        return dns.query.tcp(query, server.host, port=server.port, timeout=3)

    dnskeys = signed("DNSKEY", "198.18.4.10").answer[0]
    keys = {dns.name.from_text(zone): dnskeys}
    japan = signed("A", "198.18.4.10")  # only the US record, no default: NODATA
    assert japan.rcode() == dns.rcode.NOERROR and not japan.answer
    (nsec,) = [r for r in japan.authority if r.rdtype == dns.rdatatype.NSEC]
    assert nsec.name == dns.name.from_text(name)
    types = {t for window, bits in nsec[0].windows for t in _bitmap_types(window, bits)}
    assert types == {dns.rdatatype.TXT, dns.rdatatype.RRSIG, dns.rdatatype.NSEC}
    assert validate_sections(japan, keys) == 2
    assert validate_sections(signed("A", "198.18.1.10"), keys) == 1  # the US record, signed
    refused = _denial(server, zone, "nsec3")
    assert refused.returncode == 1 and "default record" in refused.stderr


def _bitmap_types(window, bits):
    for i, octet in enumerate(bits):
        for bit in range(8):
            if octet & (0x80 >> bit):
                yield window * 256 + i * 8 + bit
