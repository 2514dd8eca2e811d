"""``fastdns zone list|import|export|apply`` on a real state database, and a running server
picking up what they write."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dns.rcode
import dns.zone
from support.client import query
from support.server import running_fastdns

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "zones" / "example.com.zone"


def fastdns_zone(*args: str, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastdns", "zone", *args, "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def records(zone: dns.zone.Zone) -> set[tuple[str, int, int, str]]:
    return {
        (name.to_text(), rdataset.rdtype, rdataset.ttl, rdata.to_text())
        for name, rdataset in zone.iterate_rdatasets()
        for rdata in rdataset
    }


def test_import_list_export_round_trip(tmp_path):
    state = tmp_path / "state.db"
    imported = fastdns_zone("import", str(EXAMPLE), "--comment", "from a file", state=state)
    assert imported.returncode == 0, imported.stderr
    zone_id = imported.stdout.split()[0]
    assert zone_id.startswith("Z")

    listed = fastdns_zone("list", state=state)
    assert listed.returncode == 0
    assert f"{zone_id}  example.com." in listed.stdout
    assert "from a file" in listed.stdout

    exported = fastdns_zone("export", "example.com", state=state)
    assert exported.returncode == 0, exported.stderr
    original = dns.zone.from_file(str(EXAMPLE), "example.com.", relativize=False)
    again = dns.zone.from_text(exported.stdout, "example.com.", relativize=False)
    assert records(again) == records(original)

    twice = fastdns_zone("import", str(EXAMPLE), state=state)
    assert twice.returncode == 1
    assert "HostedZoneAlreadyExists" in twice.stderr
    replaced = fastdns_zone("import", str(EXAMPLE), "--replace", state=state)
    assert replaced.returncode == 0, replaced.stderr


def test_import_of_a_broken_zone_names_file_and_line_and_creates_nothing(tmp_path):
    broken = tmp_path / "broken.test.zone"
    broken.write_text(
        "$ORIGIN broken.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
        "www CNAME a\nwww A 192.0.2.2\n"
    )
    state = tmp_path / "state.db"
    result = fastdns_zone("import", str(broken), state=state)
    assert result.returncode == 1
    assert f"{broken}:6:" in result.stderr
    assert fastdns_zone("list", state=state).stdout == ""


def test_apply_takes_the_aws_cli_change_batch_json(tmp_path):
    state = tmp_path / "state.db"
    assert fastdns_zone("import", str(EXAMPLE), state=state).returncode == 0
    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "Comment": "add one",
                "Changes": [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": "new.example.com",
                            "Type": "TXT",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": '"hello"'}],
                        },
                    }
                ],
            }
        )
    )
    applied = fastdns_zone("apply", "example.com.", str(batch), state=state)
    assert applied.returncode == 0, applied.stderr
    info = json.loads(applied.stdout)["ChangeInfo"]
    assert info["Status"] == "PENDING"
    assert info["Id"].startswith("/change/C")
    assert info["Comment"] == "add one"
    again = fastdns_zone("apply", "example.com.", str(batch), state=state)
    assert again.returncode == 1
    assert "but it already exists" in again.stderr
    missing = fastdns_zone("apply", "nowhere.test.", str(batch), state=state)
    assert missing.returncode == 1
    assert "NoSuchHostedZone" in missing.stderr


def test_a_running_server_serves_what_the_commands_write(tmp_path):
    state = tmp_path / "state.db"
    zones = tmp_path / "zones"
    zones.mkdir()
    with running_fastdns(zones, extra_args=["--state", str(state)]) as server:
        assert query(server.host, server.port, "www.example.com.", "A").rcode() == dns.rcode.REFUSED
        imported = fastdns_zone("import", str(EXAMPLE), state=state)
        assert imported.returncode == 0, imported.stderr
        deadline = time.monotonic() + 5
        while query(server.host, server.port, "www.example.com.", "A").rcode() != dns.rcode.NOERROR:
            assert time.monotonic() < deadline, server.stderr_text()
            time.sleep(0.05)
        server.wait_for_log("reloading it")


def test_apply_a_weighted_batch_served_by_policy(tmp_path):
    """The change-batch file path for routing policies: a weighted pair applied with
    ``fastdns zone apply`` is answered by weight by a running server; a geolocation record
    naming a location Route 53 does not have is refused."""
    state = tmp_path / "state.db"
    assert fastdns_zone("import", str(EXAMPLE), state=state).returncode == 0

    def member(identifier: str, address: str, name="w.example.com", **policy) -> dict:
        return {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": name,
                "Type": "A",
                "TTL": 60,
                "SetIdentifier": identifier,
                "ResourceRecords": [{"Value": address}],
                **policy,
            },
        }

    batch = tmp_path / "weighted.json"
    batch.write_text(
        json.dumps(
            {"Changes": [member("a", "192.0.2.1", Weight=1), member("b", "192.0.2.2", Weight=1)]}
        )
    )
    applied = fastdns_zone("apply", "example.com.", str(batch), state=state)
    assert applied.returncode == 0, applied.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "Changes": [
                    member("x", "192.0.2.3", "g.example.com", GeoLocation={"CountryCode": "XX"})
                ]
            }
        )
    )
    refused = fastdns_zone("apply", "example.com.", str(bad), state=state)
    assert refused.returncode == 1
    assert "XX" in refused.stderr
    zones = tmp_path / "zones"
    zones.mkdir()
    with running_fastdns(zones, extra_args=["--state", str(state)]) as server:
        seen = set()
        for _ in range(100):
            response = query(server.host, server.port, "w.example.com.", "A")
            seen.add(response.answer[0][0].to_text())
        assert seen == {"192.0.2.1", "192.0.2.2"}
