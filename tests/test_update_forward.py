"""UPDATE of a secondary zone is forwarded to its primary (RFC 2136 §6), against Knot DNS.

Knot is the primary of ``fwd.test.`` (dynamic updates allowed with the shared TSIG key, a
journal so it serves IXFR, NOTIFY to fastdns); fastdns is its secondary. BIND's ``nsupdate``
sends a signed UPDATE to fastdns, over UDP and over TCP: the change must appear on Knot (the
client's signature verified there), then on fastdns through NOTIFY and IXFR, and nsupdate must
accept the answer (the primary's, signed, relayed under the client's message ID). With no
primary answering the client gets SERVFAIL; a key the update policy does not name is refused
by fastdns itself.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.update
import pytest
from support.knot import _die_with_parent, _read_log, _stop, knotd_path
from support.server import running_fastdns
from support.xfr import KEY256, KEY512, Key, knot_peer_conf, soa_serial, wait_for_serial

from fastdns.bench.servers import free_port

ORIGIN = "fwd.test."
TIMEOUT = 20.0
NSUPDATE = shutil.which("nsupdate")


def knot_conf(rundir: Path, port: int, fastdns_port: int) -> str:
    return "\n".join(
        [
            *knot_peer_conf(rundir, port=port, fastdns_port=fastdns_port, key=KEY256),
            "acl:",
            "  - id: fastdns_peer",
            "    address: 127.0.0.1",
            f"    key: {KEY256.name}",
            "    action: [transfer, update]",
            "template:",
            "  - id: default",
            f'    storage: "{rundir}"',
            "    zonefile-sync: -1",
            "    journal-content: changes",
            "zone:",
            f"  - domain: {ORIGIN}",
            f"    file: {ORIGIN}zone",
            "    notify: fastdns",
            "    acl: fastdns_peer",
            "",
        ]
    )


def fastdns_conf(workdir: Path, knot_port: int) -> Path:
    (workdir / "zones").mkdir(exist_ok=True)
    config = workdir / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{workdir / "zones"}"\nstate = "{workdir / "state.db"}"\n'
        + KEY256.toml()
        + KEY512.toml()
        + f'[secondary.zones."{ORIGIN}"]\n'
        + f'primaries = ["127.0.0.1:{knot_port}"]\nkey = "{KEY256.name}"\n'
        + f'[update.zones."{ORIGIN}"]\nkeys = ["{KEY256.name}"]\n'
    )
    return config


def key_file(path: Path, key: Key) -> Path:
    path.write_text(
        f'key "{key.name}" {{\n    algorithm {key.algorithm};\n    secret "{key.base64}";\n}};\n'
    )
    return path


def nsupdate(host: str, port: int, commands: str, key: Path, tcp: bool = False):
    args = [NSUPDATE, *(["-v"] if tcp else []), "-k", str(key)]
    script = f"server {host} {port}\nzone {ORIGIN}\n{commands.strip()}\nsend\n"
    return subprocess.run(args, input=script, capture_output=True, text=True, timeout=60)


def a_record(host: str, port: int, name: str) -> list[str]:
    response = dns.query.udp(dns.message.make_query(name, "A"), host, port=port, timeout=2)
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


def wait_for_a(host: str, port: int, name: str, expected: list[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while a_record(host, port, name) != expected:
        assert time.monotonic() < deadline, f"{name} at {port}: {a_record(host, port, name)}"
        time.sleep(0.01)


@pytest.fixture
def knot_and_fastdns(tmp_path):
    fastdns_port, knot_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="fastdns-knot-upd-") as tmp:
        rundir = Path(tmp)
        (rundir / "db").mkdir()
        (rundir / f"{ORIGIN}zone").write_text(
            f"$ORIGIN {ORIGIN}\n$TTL 60\n@ SOA ns1 hostmaster 1 3600 60 600 60\n"
            "@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n"
        )
        (rundir / "knot.conf").write_text(knot_conf(rundir, knot_port, fastdns_port))
        proc = subprocess.Popen(
            [knotd_path(), "-c", str(rundir / "knot.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        try:
            wait_for_serial("127.0.0.1", knot_port, ORIGIN, 1, TIMEOUT)
            config = fastdns_conf(tmp_path, knot_port)
            with running_fastdns(None, config=config, port=fastdns_port) as server:
                wait_for_serial(server.host, server.port, ORIGIN, 1, TIMEOUT)
                yield server, proc, knot_port, tmp_path
        finally:
            _stop(proc)
            print(_read_log(rundir / "knotd.log")[-3000:])


def test_update_to_the_secondary_reaches_the_primary_and_comes_back(knot_and_fastdns):
    server, _proc, knot_port, tmp_path = knot_and_fastdns
    key = key_file(tmp_path / "good.key", KEY256)
    for tcp, label, address in ((False, "udp", "192.0.2.10"), (True, "tcp", "192.0.2.11")):
        before = soa_serial(server.host, server.port, ORIGIN)
        result = nsupdate(server.host, server.port, f"update add {label}.{ORIGIN} 60 A {address}",
                          key, tcp=tcp)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr + server.stderr_text()
        # On Knot first (the primary applied it) ...
        assert a_record("127.0.0.1", knot_port, f"{label}.{ORIGIN}") == [address]
        # ... then on fastdns, by NOTIFY and IXFR from Knot.
        wait_for_a(server.host, server.port, f"{label}.{ORIGIN}", [address])
        assert soa_serial(server.host, server.port, ORIGIN) == before + 1
    log = server.stderr_text()
    forwarded = f"UPDATE of secondary zone {ORIGIN} from 127.0.0.1 (key {KEY256.name}): forwarded"
    assert log.count(forwarded) == 2, log  # the UDP and the TCP update
    assert f"secondary zone {ORIGIN}: serial 2 -> 3" in log, log
    assert KEY256.base64 not in log  # keys are never logged


def test_update_signed_with_a_key_the_policy_does_not_name_is_refused(knot_and_fastdns):
    server, _proc, knot_port, tmp_path = knot_and_fastdns
    key = key_file(tmp_path / "other.key", KEY512)
    result = nsupdate(server.host, server.port, f"update add no.{ORIGIN} 60 A 192.0.2.9", key)
    assert result.returncode != 0 and "REFUSED" in result.stdout + result.stderr
    assert a_record("127.0.0.1", knot_port, f"no.{ORIGIN}") == []


def test_update_with_no_primary_answering_gets_servfail(knot_and_fastdns):
    server, proc, _knot_port, _tmp_path = knot_and_fastdns
    _stop(proc)
    update = dns.update.UpdateMessage(ORIGIN)
    update.add(f"gone.{ORIGIN}", 60, "A", "192.0.2.12")
    update.use_tsig(KEY256.tsig())
    response = dns.query.tcp(update, server.host, port=server.port, timeout=30)
    assert response.rcode() == dns.rcode.SERVFAIL
    assert response.had_tsig  # our own answer, signed with the request's key
    assert "no primary answered" in server.stderr_text()
