"""Serial policy per hosted zone (``[serial]``): increment, or unix time with RFC 1982
arithmetic -- never backwards. Units on the store's SOA bump, then the real server: one zone
per policy changed through the API, serials read over DNS."""

from __future__ import annotations

import itertools
import time
import uuid

import dns.name
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, make_client
from support.server import free_port, running_fastdns
from support.xfr import soa_serial

from fastdns.config import ConfigError, load_config
from fastdns.route53.changebatch import parse_changes
from fastdns.route53.recordset import ResourceRecordSet
from fastdns.store import Store, _bumped_soa
from fastdns.xfr.config import parse_serial

SOA = "ns1.example. hostmaster.example. {} 7200 900 1209600 86400"


def soa(serial: int) -> ResourceRecordSet:
    return ResourceRecordSet.from_api(
        {
            "Name": "example.",
            "Type": "SOA",
            "TTL": 900,
            "ResourceRecords": [{"Value": SOA.format(serial)}],
        }
    )


def bumped(old: int, new: int, policy: str, now: float) -> int:
    return _bumped_soa(soa(old), soa(new), policy, now).rdatas[0].serial


@pytest.mark.parametrize(
    ("old", "batch", "policy", "now", "expected", "why"),
    [
        (7, 7, "increment", 1.8e9, 8, "the default: plus one"),
        (7, 7, "unixtime", 1_800_000_000.7, 1_800_000_000, "the time of the change"),
        (1_800_000_000, 1_800_000_000, "unixtime", 1_800_000_000, 1_800_000_001, "same second"),
        (1_800_000_005, 1_800_000_005, "unixtime", 1_800_000_000, 1_800_000_006, "clock behind"),
        (2024060101, 2024060101, "unixtime", 1.8e9, 2024060102, "a date serial ahead"),
        (2**32 - 5, 2**32 - 5, "unixtime", 100, 100, "RFC 1982: 100 follows 2^32-5"),
        (2**32 - 1, 2**32 - 1, "increment", 0, 0, "RFC 1982 §3.1: modulo 2^32"),
        (7, 50, "unixtime", 1.8e9, 50, "a later serial the batch sets is kept"),
    ],
)
def test_soa_bump(old, batch, policy, now, expected, why) -> None:
    assert bumped(old, batch, policy, now) == expected, why


def test_config(tmp_path) -> None:
    config = parse_serial({"policy": "unixtime", "zones": {"a.test": {"policy": "increment"}}})
    assert config.for_zone(dns.name.from_text("a.test.")) == "increment"
    assert config.for_zone(dns.name.from_text("b.test.")) == "unixtime"
    assert parse_serial({}).for_zone(dns.name.root) == "increment"
    path = tmp_path / "fastdns.toml"
    path.write_text(f'zone_dir = "{tmp_path}"\n[serial]\npolicy = "date"\n')
    with pytest.raises(ConfigError, match=r"increment.*unixtime"):
        load_config(path)


def test_store_never_goes_backwards(tmp_path) -> None:
    store = Store(tmp_path / "state.db")
    store.serial_policy = lambda _origin: "unixtime"
    zone, _ = store.create_hosted_zone("u.test.", "ref", None, ("ns1.example.",))
    serials = []
    started = time.time()
    for i in range(5):  # within a second or two: later ones must still move forward
        batch = {
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "www.u.test.",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": f"192.0.2.{i + 1}"}],
                    },
                }
            ]
        }
        serials.append(store.change_record_sets(zone.id, parse_changes(batch), None)[0].serial)
    store.close()
    assert int(started) <= serials[0] <= int(time.time())
    assert all(b > a for a, b in itertools.pairwise(serials)), serials


def test_server_applies_the_policy_per_zone(tmp_path) -> None:
    zone_dir = tmp_path / "zones"
    zone_dir.mkdir()
    api_port = free_port()
    config = tmp_path / "fastdns.toml"
    config.write_text(
        f'state = "{tmp_path / "state.db"}"\napi_listen = "127.0.0.1:{api_port}"\n'
        'name_servers = ["ns1.fastdns.test."]\n'
        f'[[access_keys]]\nid = "{ACCESS_KEY}"\nsecret = "{SECRET_KEY}"\n'
        '[serial]\npolicy = "unixtime"\n[serial.zones."inc.test"]\npolicy = "increment"\n'
    )
    with running_fastdns(zone_dir, config=config) as server:
        server.wait_for_log("Route 53 API at")
        client = make_client(f"http://127.0.0.1:{api_port}")
        started = int(time.time())
        for name in ("time.test", "inc.test"):
            zone_id = client.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))[
                "HostedZone"
            ]["Id"]
            change = client.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={
                    "Changes": [
                        {
                            "Action": "CREATE",
                            "ResourceRecordSet": {
                                "Name": f"www.{name}",
                                "Type": "A",
                                "TTL": 60,
                                "ResourceRecords": [{"Value": "192.0.2.1"}],
                            },
                        }
                    ]
                },
            )["ChangeInfo"]["Id"]
            deadline = time.monotonic() + 10
            while client.get_change(Id=change)["ChangeInfo"]["Status"] != "INSYNC":
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert started <= soa_serial(server.host, server.port, "time.test.") <= time.time()
        assert soa_serial(server.host, server.port, "inc.test.") == 2
