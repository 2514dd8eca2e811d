"""fastdns as a secondary of Knot DNS: the zone is fetched with TSIG, refreshed when Knot's copy
changes, kept across a restart, and served like any other zone.

Knot is the primary (its zone file, a TSIG key for transfers, a journal so it can answer IXFR,
NOTIFY to fastdns); fastdns has a ``[secondary]`` zone naming Knot. Delays are printed, not
asserted: each wait has a generous timeout.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import dns.rcode
import pytest
from support.client import query
from support.knot import _die_with_parent, _read_log, _stop, knotd_path
from support.server import running_fastdns
from support.xfr import KEY256, knot_peer_conf, soa_serial, wait_for_serial

from fastdns.bench.servers import free_port

ORIGIN = "sec.test."
TIMEOUT = 20.0


def zone_text(serial: int, address: str, refresh: int, names: int = 0) -> str:
    return (
        f"$ORIGIN {ORIGIN}\n$TTL 60\n"
        f"@ SOA ns1 hostmaster {serial} {refresh} 1 600 60\n"
        "@ NS ns1\nns1 A 192.0.2.53\n"
        f"www A {address}\n"
        + "".join(f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(names))
    )


def knot_primary_conf(rundir: Path, port: int, fastdns_port: int) -> str:
    return "\n".join(
        [
            *knot_peer_conf(rundir, port=port, fastdns_port=fastdns_port, key=KEY256),
            "acl:",
            "  - id: transfer_to_fastdns",
            "    address: 127.0.0.1",
            f"    key: {KEY256.name}",
            "    action: transfer",
            "template:",
            "  - id: default",
            f'    storage: "{rundir}"',
            "    zonefile-sync: -1",
            "    zonefile-load: difference",
            "    journal-content: changes",
            "zone:",
            f"  - domain: {ORIGIN}",
            f"    file: {ORIGIN}zone",
            "    notify: fastdns",
            "    acl: transfer_to_fastdns",
            "",
        ]
    )


def fastdns_conf(workdir: Path, knot_port: int) -> Path:
    (workdir / "zones").mkdir(exist_ok=True)
    config = workdir / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{workdir / "zones"}"\nstate = "{workdir / "state.db"}"\n'
        + KEY256.toml()
        + f'[secondary.zones."{ORIGIN}"]\n'
        + f'primaries = ["127.0.0.1:{knot_port}"]\nkey = "{KEY256.name}"\n'
    )
    return config


def www(host: str, port: int) -> str | None:
    response = query(host, port, f"www.{ORIGIN}", "A")
    if response.rcode() != dns.rcode.NOERROR or not response.answer:
        return None
    return response.answer[0][0].to_text()


# 20,000 names: an image over a MiB, which an IXFR's change is grafted onto (issue 8).
@pytest.mark.parametrize("names", [0, 20000])
def test_fastdns_follows_knot_as_a_secondary(tmp_path, names):
    fastdns_port = free_port("127.0.0.1")
    knot_port = free_port("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="fastdns-knot-primary-") as tmp:
        rundir = Path(tmp)
        (rundir / "db").mkdir()
        zone_file = rundir / f"{ORIGIN}zone"
        zone_file.write_text(zone_text(1, "192.0.2.1", refresh=2, names=names))
        conf = rundir / "knot.conf"
        conf.write_text(knot_primary_conf(rundir, knot_port, fastdns_port))
        proc = subprocess.Popen(
            [knotd_path(), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_for_serial("127.0.0.1", knot_port, ORIGIN, 1, TIMEOUT)
            config = fastdns_conf(tmp_path, knot_port)
            with running_fastdns(None, config=config, port=fastdns_port) as server:
                took = wait_for_serial(server.host, server.port, ORIGIN, 1, TIMEOUT)
                print(f"\nfastdns serves the secondary zone {took:.2f} s after it answered")
                assert www(server.host, server.port) == "192.0.2.1"
                # A change on Knot (zone file edited, zone reloaded): Knot keeps the difference
                # in its journal and NOTIFYs fastdns, which asks for an IXFR.
                # (The SOA's REFRESH changes too: grafted with the serial.)
                zone_file.write_text(zone_text(2, "192.0.2.2", refresh=3600, names=names))
                started = time.monotonic()
                subprocess.run(
                    ["knotc", "-s", str(rundir / "knot.sock"), "zone-reload", ORIGIN],
                    check=True,
                    capture_output=True,
                    timeout=20,
                )
                wait_for_serial(server.host, server.port, ORIGIN, 2, TIMEOUT)
                print(f"serial 2 served {time.monotonic() - started:.2f} s after Knot's reload")
                assert www(server.host, server.port) == "192.0.2.2"
                log = server.stderr_text()
                assert "secondary zone sec.test.: serial 1 -> 2" in log, log
                # Knot's journal gave the difference: one record replaced, the SOA moved.
                assert "(IXFR of 1 differences" in log, log
                if names:
                    assert (
                        "secondary zone sec.test.: 1 record sets and the SOA serial grafted" in log
                    )
                # Knot's NOTIFY reached the control plane (UDP, forwarded by the worker).
                assert "NOTIFY for sec.test. from 127.0.0.1: refreshing" in log, log
            # A restart serves the saved copy (the zone as of the AXFR, and the IXFR in the
            # journal), even before Knot is asked again.
            saved = sorted(p.name for p in (tmp_path / "state.db.secondary").iterdir())
            # (A small zone's journal entry is more than a quarter of it: folded in at once.)
            journal = ["sec.test.journal"] if names else []
            assert saved == [*journal, "sec.test.packed"], saved
            _stop(proc)
            with running_fastdns(None, config=config, port=fastdns_port) as server:
                assert soa_serial(server.host, server.port, ORIGIN) == 2
                assert www(server.host, server.port) == "192.0.2.2"
                if names:
                    h7 = query(server.host, server.port, f"h7.{ORIGIN}", "A")
                    assert h7.answer[0][0].to_text() == "10.0.0.7"
        finally:
            _stop(proc)
            print(_read_log(rundir / "knotd.log")[-3000:])
