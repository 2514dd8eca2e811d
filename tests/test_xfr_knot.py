"""Knot DNS as a secondary of fastdns: AXFR with TSIG (hmac-sha256) at startup, then NOTIFY
(RFC 1996) after every serial change brings Knot the new version -- by IXFR (RFC 1995) from the
change history for a hosted zone, by AXFR-style IXFR for a zone file.

Two zones: ``example.com`` from the zone directory (changed by editing its file + SIGHUP) and
the hosted zone ``api.test.`` (changed through the Route 53 API with boto3). After each change
the time until Knot answers the new serial is printed (``pytest -s``); the test only requires
it within ``CONVERGE_TIMEOUT`` (the issue's target is 2 s; the SOA refresh timer is hours, so
only NOTIFY can do it).
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import botocore.exceptions
import dns.message
import dns.query
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, make_client
from support.server import free_port, running_fastdns
from support.xfr import (
    KEY256,
    ChangeMaker,
    running_knot_secondary,
    soa_serial,
    transferred,
    wait_for_serial,
)

REPO = Path(__file__).resolve().parent.parent
CONVERGE_TIMEOUT = 10.0


def config_text(zone_dir: Path, state: Path, api_port: int, knot_port: int) -> str:
    return f"""\
zone_dir = "{zone_dir}"
state = "{state}"
api_listen = "127.0.0.1:{api_port}"
name_servers = ["ns1.fastdns.test.", "ns2.fastdns.test."]

[[access_keys]]
id = "{ACCESS_KEY}"
secret = "{SECRET_KEY}"

{KEY256.toml()}
[transfer]
keys = ["{KEY256.name}"]
notify = ["127.0.0.1:{knot_port}"]
notify_key = "{KEY256.name}"
"""


def a_record(host: str, port: int, name: str) -> list[str]:
    response = dns.query.udp(dns.message.make_query(name, "A"), host, port=port, timeout=1)
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


def assert_same_zones(server, knot) -> None:
    """Knot's copy of every zone, record for record, is what fastdns transfers."""
    for origin in ("example.com.", "api.test."):
        ours = transferred(server.host, server.port, origin, KEY256)
        assert transferred(knot.host, knot.port, origin) == ours, origin


@pytest.fixture
def primary(tmp_path):
    zone_dir = tmp_path / "zones"
    zone_dir.mkdir()
    shutil.copy(REPO / "examples" / "zones" / "example.com.zone", zone_dir)
    api_port, knot_port = free_port(), free_port()
    config = tmp_path / "fastdns.toml"
    config.write_text(config_text(zone_dir, tmp_path / "state.db", api_port, knot_port))
    with running_fastdns(None, config=config) as handle:
        handle.wait_for_log("Route 53 API at")
        yield handle, make_client(f"http://127.0.0.1:{api_port}"), knot_port, zone_dir


def test_knot_follows_fastdns_through_notify(primary) -> None:
    server, client, knot_port, zone_dir = primary
    zone_id = client.create_hosted_zone(Name="api.test", CallerReference=str(uuid.uuid4()))[
        "HostedZone"
    ]["Id"]
    server.wait_for_log(r"hosted zone .* api\.test|published")
    with running_knot_secondary(
        ["example.com.", "api.test."], port=knot_port, primary_port=server.port, key=KEY256
    ) as knot:
        # Bootstrapped by AXFR with TSIG: Knot serves what fastdns serves.
        for origin in ("example.com.", "api.test."):
            wait_for_serial(
                knot.host, knot.port, origin, soa_serial(server.host, server.port, origin), 10
            )
        assert a_record(knot.host, knot.port, "www.example.com.") == ["192.0.2.10"]
        assert_same_zones(server, knot)

        # An API change: a new serial, NOTIFY, Knot transfers it.
        old = soa_serial(server.host, server.port, "api.test.")
        started = time.monotonic()
        client.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": "www.api.test",
                            "Type": "A",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": "192.0.2.99"}],
                        },
                    }
                ]
            },
        )
        while (new := soa_serial(server.host, server.port, "api.test.")) == old:
            assert time.monotonic() - started < CONVERGE_TIMEOUT, "fastdns kept the old serial"
            time.sleep(0.005)
        wait_for_serial(knot.host, knot.port, "api.test.", new, CONVERGE_TIMEOUT)
        api_delay = time.monotonic() - started
        assert a_record(knot.host, knot.port, "www.api.test.") == ["192.0.2.99"]

        # A zone-file edit + SIGHUP.
        zone_file = zone_dir / "example.com.zone"
        zone_file.write_text(
            zone_file.read_text().replace("2024060101", "2024060102")
            + "added 300 IN A 192.0.2.77\n"
        )
        started = time.monotonic()
        server.reload()
        wait_for_serial(knot.host, knot.port, "example.com.", 2024060102, CONVERGE_TIMEOUT)
        reload_delay = time.monotonic() - started
        assert a_record(knot.host, knot.port, "added.example.com.") == ["192.0.2.77"]

        assert_same_zones(server, knot)
        log = knot.log()
        assert "[api.test.] notify, incoming" in log, log
        assert "[example.com.] notify, incoming" in log, log
        print(
            f"\nKnot serves the new serial after an API change in {api_delay * 1000:.0f} ms, "
            f"after a zone-file reload (SIGHUP) in {reload_delay * 1000:.0f} ms"
        )
    text = server.stderr_text()
    assert "NOTIFY of zone api.test." in text and "acknowledged" in text


SERIES = 40


def test_knot_follows_a_series_of_api_changes_by_ixfr(primary) -> None:
    server, client, knot_port, _zone_dir = primary
    zone_id = client.create_hosted_zone(Name="api.test", CallerReference=str(uuid.uuid4()))[
        "HostedZone"
    ]["Id"]
    bulk = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": f"bulk{i}.api.test.",
                "Type": "AAAA",
                "TTL": 300,
                "ResourceRecords": [{"Value": f"2001:db8::{i:x}"}],
            },
        }
        for i in range(200)
    ]
    client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": bulk})
    server.wait_for_log("published")
    with running_knot_secondary(
        ["example.com.", "api.test."], port=knot_port, primary_port=server.port, key=KEY256
    ) as knot:
        wait_for_serial(
            knot.host, knot.port, "api.test.", soa_serial(server.host, server.port, "api.test."), 10
        )
        # Changes back to back (Knot may ask from several serials back) and, every tenth,
        # a wait until Knot has it.
        maker = ChangeMaker("api.test.", zone_id, seed=11)
        delays, applied = [], 0
        while applied < SERIES:
            try:
                client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=maker.batch())
            except botocore.exceptions.ClientError:
                continue
            maker.accepted()
            applied += 1
            if applied % 10 == 0:
                started = time.monotonic()
                serial = soa_serial(server.host, server.port, "api.test.")
                while serial is None or serial < applied + 2:
                    assert time.monotonic() - started < CONVERGE_TIMEOUT
                    time.sleep(0.005)
                    serial = soa_serial(server.host, server.port, "api.test.")
                wait_for_serial(knot.host, knot.port, "api.test.", serial, CONVERGE_TIMEOUT)
                delays.append(time.monotonic() - started)
        assert_same_zones(server, knot)
        log = knot.log()
    api_lines = [line for line in log.splitlines() if "[api.test.]" in line]
    incoming = [line for line in api_lines if "IXFR, incoming" in line and "finished" in line]
    assert incoming, log
    assert not any("AXFR-style" in line for line in api_lines), log
    assert sum("AXFR, incoming" in line and "finished" in line for line in api_lines) == 1, log
    print(
        f"\n{SERIES} API changes: Knot took {len(incoming)} IXFRs (no AXFR after the first); "
        "after each tenth change Knot served it in "
        + ", ".join(f"{d * 1000:.0f}" for d in delays)
        + " ms"
    )
