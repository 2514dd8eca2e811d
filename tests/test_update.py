"""RFC 2136 dynamic UPDATE with TSIG, sent by the real ``nsupdate`` (BIND 9's, with a key file)
to ``fastdns serve``, over UDP and over TCP (``nsupdate -v``).

One server for the module: the hosted zone ``upd.test.`` (made through the API) may be updated
with ``xfr.test.`` (hmac-sha256); ``xfr512.test.`` is a key the server knows but the update
policy does not name; ``example.com`` is a zone file. Each result is checked three ways: over
DNS, through the API (ListResourceRecordSets) and by the change the update made (GetChange
INSYNC, its ID taken from the server's log). Refused updates must change nothing (the serial
stays).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.update
import dns.xfr
import dns.zone
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, make_client
from support.server import free_port, running_fastdns
from support.xfr import KEY256, KEY512, Key, records, soa_serial

REPO = Path(__file__).resolve().parent.parent
NSUPDATE = shutil.which("nsupdate")
ZONE = "upd.test."

pytestmark = pytest.mark.skipif(NSUPDATE is None, reason="nsupdate (bind9-dnsutils) missing")


def config_text(zone_dir: Path, state: Path, api_port: int, notify_port: int) -> str:
    return f"""\
zone_dir = "{zone_dir}"
state = "{state}"
api_listen = "127.0.0.1:{api_port}"
name_servers = ["ns1.fastdns.test.", "ns2.fastdns.test."]

[[access_keys]]
id = "{ACCESS_KEY}"
secret = "{SECRET_KEY}"

{KEY256.toml()}
{KEY512.toml()}
[transfer]
keys = ["{KEY256.name}"]
notify = ["127.0.0.1:{notify_port}"]

[update]
keys = ["{KEY256.name}"]
"""


def key_file(path: Path, key: Key, secret: bytes | None = None) -> Path:
    """A BIND key file (what ``nsupdate -k`` reads)."""
    secret_text = Key(key.name, key.algorithm, secret).base64 if secret else key.base64
    path.write_text(
        f'key "{key.name}" {{\n    algorithm {key.algorithm};\n    secret "{secret_text}";\n}};\n'
    )
    return path


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("update")
    zone_dir = tmp / "zones"
    zone_dir.mkdir()
    shutil.copy(REPO / "examples" / "zones" / "example.com.zone", zone_dir)
    api_port = free_port()
    secondary = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # stands in for one
    secondary.bind(("127.0.0.1", 0))
    config = tmp / "fastdns.toml"
    config.write_text(config_text(zone_dir, tmp / "state.db", api_port, secondary.getsockname()[1]))
    keys = {
        "good": key_file(tmp / "good.key", KEY256),
        "bad-secret": key_file(tmp / "bad.key", KEY256, bytes(range(100, 132))),
        "not-allowed": key_file(tmp / "other.key", KEY512),
    }
    with running_fastdns(None, config=config) as server:
        server.wait_for_log("Route 53 API at")
        client = make_client(f"http://127.0.0.1:{api_port}")
        created = client.create_hosted_zone(Name=ZONE, CallerReference=str(uuid.uuid4()))
        zone_id = created["HostedZone"]["Id"]
        wait_insync(client, created["ChangeInfo"]["Id"])
        yield server, client, zone_id, keys, secondary
    secondary.close()


def notified_serial(secondary: socket.socket, serial: int, timeout: float = 10.0) -> None:
    """Wait for a NOTIFY of ``ZONE`` with ``serial`` (RFC 1996 §3.7: the SOA in the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        secondary.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            wire, _peer = secondary.recvfrom(4096)
        except TimeoutError:
            raise AssertionError(f"no NOTIFY of {ZONE} serial {serial}") from None
        message = dns.message.from_wire(wire, keyring=False)
        if message.question[0].name.to_text() == ZONE and any(
            rdata.serial == serial for rrset in message.answer for rdata in rrset
        ):
            return


def wait_insync(client, change_id: str, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while client.get_change(Id=change_id)["ChangeInfo"]["Status"] != "INSYNC":
        assert time.monotonic() - started < timeout, f"{change_id} not INSYNC"
        time.sleep(0.01)
    return time.monotonic() - started


def nsupdate(server, commands: str, key: Path | None, tcp: bool = False):
    args = [NSUPDATE]
    if tcp:
        args.append("-v")
    if key is not None:
        args += ["-k", str(key)]
    script = f"server {server.host} {server.port}\n{commands.strip()}\nsend\n"
    try:
        return subprocess.run(args, input=script, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"nsupdate hung: {exc.stderr}\n{server.stderr_text()}") from None


def answer(server, name: str, rtype: str) -> list[str]:
    response = dns.query.udp(
        dns.message.make_query(name, rtype), server.host, port=server.port, timeout=2
    )
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


def listed(client, zone_id: str) -> dict[tuple[str, str], list[str]]:
    sets = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        (s["Name"], s["Type"]): sorted(r["Value"] for r in s.get("ResourceRecords", []))
        for s in sets
    }


def last_change(server, count: int) -> str:
    """The ID of the change the ``count``-th accepted UPDATE made (from the server's log)."""
    text = server.wait_for_log(r"UPDATE of zone upd\.test\..*NOERROR.*change C", count)
    return re.findall(r"UPDATE of zone upd\.test\..*NOERROR.*change (C\w+)", text)[count - 1]


def accepted(server) -> int:
    return len(re.findall(r"UPDATE of zone upd\.test\..*NOERROR.*change C", server.stderr_text()))


def test_add_then_delete_over_udp_and_tcp(primary) -> None:
    server, client, zone_id, keys, secondary = primary
    before = accepted(server)
    old = dns.zone.from_xfr(
        dns.query.xfr(server.host, ZONE, port=server.port, keyring=KEY256.tsig(), relativize=False),
        relativize=False,
    )
    started = time.monotonic()
    done = nsupdate(
        server,
        f"""
        zone {ZONE}
        update add www.{ZONE} 300 A 192.0.2.1
        update add www.{ZONE} 300 A 192.0.2.2
        update add www.{ZONE} 300 TXT "hello world"
        update add {ZONE} 600 MX 10 mail.{ZONE}
        """,
        keys["good"],
    )
    assert done.returncode == 0, done.stderr
    change = last_change(server, before + 1)
    insync = wait_insync(client, change)
    delay = time.monotonic() - started
    assert answer(server, f"www.{ZONE}", "A") == ["192.0.2.1", "192.0.2.2"]
    assert answer(server, f"www.{ZONE}", "TXT") == ['"hello world"']
    sets = listed(client, zone_id)
    assert sets[(f"www.{ZONE}", "A")] == ["192.0.2.1", "192.0.2.2"]
    assert sets[(ZONE, "MX")] == [f"10 mail.{ZONE}"]

    # The change history serves the update by IXFR: the copy from before catches up.
    query, _serial = dns.xfr.make_query(old, keyring=KEY256.tsig())
    dns.query.inbound_xfr(server.host, old, query, port=server.port, lifetime=10)
    new = dns.zone.from_xfr(
        dns.query.xfr(server.host, ZONE, port=server.port, keyring=KEY256.tsig(), relativize=False),
        relativize=False,
    )
    assert records(old) == records(new)
    notified_serial(secondary, new.get_soa().serial)  # the secondaries hear of it

    # Over TCP: delete one RR, a whole RRset, and everything at a name.
    done = nsupdate(
        server,
        f"""
        zone {ZONE}
        update delete www.{ZONE} A 192.0.2.1
        update delete www.{ZONE} TXT
        update add gone.{ZONE} 60 AAAA 2001:db8::1
        """,
        keys["good"],
        tcp=True,
    )
    assert done.returncode == 0, done.stderr
    wait_insync(client, last_change(server, before + 2))
    assert answer(server, f"www.{ZONE}", "A") == ["192.0.2.2"]
    assert answer(server, f"www.{ZONE}", "TXT") == []
    assert answer(server, f"gone.{ZONE}", "AAAA") == ["2001:db8::1"]
    done = nsupdate(server, f"zone {ZONE}\nupdate delete gone.{ZONE}", keys["good"], tcp=True)
    assert done.returncode == 0, done.stderr
    wait_insync(client, last_change(server, before + 3))
    sets = listed(client, zone_id)
    assert (f"gone.{ZONE}", "AAAA") not in sets and (f"www.{ZONE}", "TXT") not in sets
    assert sets[(f"www.{ZONE}", "A")] == ["192.0.2.2"]
    print(
        f"\nnsupdate (UDP, TSIG) -> served and INSYNC in {delay * 1000:.0f} ms "
        f"(GetChange polled INSYNC after {insync * 1000:.0f} ms)"
    )


def test_prerequisites(primary) -> None:
    server, client, _zone_id, keys, _secondary = primary
    before = accepted(server)
    done = nsupdate(
        server, f"zone {ZONE}\nupdate add pre.{ZONE} 300 A 192.0.2.7", keys["good"], tcp=True
    )
    assert done.returncode == 0, done.stderr
    wait_insync(client, last_change(server, before + 1))
    serial = soa_serial(server.host, server.port, ZONE)
    cases = [
        (f"prereq nxdomain pre.{ZONE}", "YXDOMAIN"),
        (f"prereq yxdomain nothing.{ZONE}", "NXDOMAIN"),
        (f"prereq nxrrset pre.{ZONE} A", "YXRRSET"),
        (f"prereq yxrrset pre.{ZONE} AAAA", "NXRRSET"),
        (f"prereq yxrrset pre.{ZONE} A 192.0.2.8", "NXRRSET"),
    ]
    for prereq, rcode in cases:
        done = nsupdate(
            server, f"zone {ZONE}\n{prereq}\nupdate add more.{ZONE} 300 A 192.0.2.9", keys["good"]
        )
        assert done.returncode != 0 and rcode in done.stderr, (prereq, done.stderr)
    assert soa_serial(server.host, server.port, ZONE) == serial  # nothing changed
    assert answer(server, f"more.{ZONE}", "A") == []
    # A prerequisite that holds: the update goes through.
    done = nsupdate(
        server,
        f"zone {ZONE}\nprereq yxrrset pre.{ZONE} A 192.0.2.7\nprereq nxdomain more.{ZONE}\n"
        f"update add more.{ZONE} 300 A 192.0.2.9",
        keys["good"],
    )
    assert done.returncode == 0, done.stderr
    wait_insync(client, last_change(server, before + 2))
    assert answer(server, f"more.{ZONE}", "A") == ["192.0.2.9"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, "REFUSED"),  # unsigned
        ("not-allowed", "REFUSED"),  # a key the server knows, not named by [update]
        ("bad-secret", "NOTAUTH(BADSIG)"),  # RFC 8945 §5.2
    ],
)
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_unauthorized_updates_change_nothing(primary, key, expected, tcp) -> None:
    server, client, zone_id, keys, _secondary = primary
    serial = soa_serial(server.host, server.port, ZONE)
    before = listed(client, zone_id)
    done = nsupdate(
        server,
        f"zone {ZONE}\nupdate add intruder.{ZONE} 300 A 203.0.113.1",
        keys[key] if key else None,
        tcp,
    )
    assert done.returncode != 0 and expected in done.stderr, done.stderr
    assert soa_serial(server.host, server.port, ZONE) == serial
    assert listed(client, zone_id) == before
    assert answer(server, f"intruder.{ZONE}", "A") == []
    assert KEY256.base64 not in server.stderr_text()


def test_zone_files_and_unknown_zones_are_refused(primary) -> None:
    server, _client, _zone_id, keys, _secondary = primary
    serial = soa_serial(server.host, server.port, "example.com.")
    done = nsupdate(
        server, "zone example.com.\nupdate add new.example.com. 300 A 192.0.2.1", keys["good"]
    )
    assert done.returncode != 0 and "REFUSED" in done.stderr, done.stderr
    assert soa_serial(server.host, server.port, "example.com.") == serial
    done = nsupdate(
        server, "zone elsewhere.test.\nupdate add a.elsewhere.test. 300 A 192.0.2.1", keys["good"]
    )
    assert done.returncode != 0 and "NOTAUTH" in done.stderr, done.stderr


def test_an_update_outside_the_zone_is_notzone(primary) -> None:
    server, _client, _zone_id, _keys, _secondary = primary
    request = dns.update.UpdateMessage(ZONE, keyring=KEY256.tsig())
    request.add("www.elsewhere.test.", 300, "A", "192.0.2.1")
    response = dns.query.tcp(request, server.host, port=server.port, timeout=5)
    assert response.rcode() == dns.rcode.NOTZONE
    assert response.had_tsig  # the answer to a signed request is signed
