"""How long a one-record change in a large zone takes to be served (issue 8), against Knot.

For a zone of ``--records`` A records (plus SOA, NS, the name server's A and ``www CNAME web``
with web's A) it measures, from
the moment the change was made until a DNS query over UDP (every millisecond) returns the new
address:

* ``api``: a hosted zone (imported with ``fastdns zone import``), one ChangeResourceRecordSets
  UPSERT of one A record through boto3, timed from when the API call returned; then one CREATE
  of an A record at a new name; one UPSERT of ``web``'s address, which ``www CNAME web``
  copies (timed until ``www`` answers with it); one CREATE of a delegation (NS at a new name,
  timed until a name below it gets the referral); one CREATE of a name a CNAME already
  points at (which the graft refuses: the zone is compiled whole);
* ``update``: the same hosted zone, one RFC 2136 UPDATE (dnspython, TSIG-signed, over TCP)
  replacing one A record, timed from when the UPDATE was sent;
* ``sighup``: a zone file of the same records served by the same server, one record's address
  and the SOA serial changed in the file, then SIGHUP, timed from the signal;
* Knot (``--knot``, the default when knotd is installed): the same zone file served by knotd,
  ``knotc zone-reload`` after the same edit (timed from the command's start), and RFC 2136
  UPDATEs of the zone: an A record, web's A, a delegation (timed from the send; Knot's journal
  on, as updates need it).

Each is repeated ``--changes`` times with a new address each time, ``--idle`` seconds after the
one before (0: back to back; the first change after a quiet minute meets memory the kernel has
taken back); the script prints median and max, the setup steps' times, the server's own
"published ... in X ms (compile Y ms)" log lines, and how many changes to the hosted zone were
grafted onto its last image (fastdns.hostedcolumns) rather than compiled.

Run: ``python bench/change_latency.py [--records 1000000] [--changes 5] [--workers 2]
[--idle SECONDS] [--state-cache FILE]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore.exceptions
import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from fastdns.bench.servers import free_port

KEY, SECRET = "AKIDBENCH", "bench-secret-0123456789abcdef"
TSIG_NAME, TSIG_SECRET = "update.bench.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM="
HOSTED, FILE = "hosted.bench.", "file.bench."


def zone_text(origin: str, records: int, serial: int = 1, changed: tuple[int, str] | None = None):
    lines = [
        f"$ORIGIN {origin}",
        "$TTL 300",
        f"@ SOA ns1 hostmaster {serial} 7200 900 1209600 300",
        "@ NS ns1",
        "ns1 A 192.0.2.1",
        "www CNAME web",  # web's address is copied into www's answers
        "web A 192.0.2.3",
    ]
    head = len(lines)
    lines += [f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(records)]
    if changed is not None:
        index, address = changed
        lines[head + index] = f"h{index} A {address}"
    return "\n".join(lines) + "\n"


def answer(port: int, name: str) -> str | None:
    """The first address in the answer to ``name`` A (after a CNAME chain), for a name
    below a delegation the first name server of the referral, for a chain that ends without
    an address its last target."""
    query = dns.message.make_query(name, "A")
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except dns.exception.Timeout:
        return None
    for rrset in (*response.answer, *response.authority):
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.NS):
            return rrset[0].to_text()
    if response.answer and response.answer[-1].rdtype == dns.rdatatype.CNAME:
        return response.answer[-1][0].to_text()  # a chain that ends in no data
    return None


def wait_for(port: int, name: str, address: str, since: float, limit: float = 120.0) -> float:
    """Seconds from ``since`` until ``name`` is answered with ``address`` (see answer)."""
    while answer(port, name) != address:
        if time.monotonic() - since > limit:
            raise RuntimeError(f"{name} not answered with {address} within {limit} s")
        time.sleep(0.001)
    return time.monotonic() - since


def wait_ready(port: int, name: str, proc: subprocess.Popen, limit: float = 600.0) -> float:
    started = time.monotonic()
    while answer(port, name) is None:
        if proc.poll() is not None or time.monotonic() - started > limit:
            raise RuntimeError(f"server not answering {name} (exit {proc.poll()})")
        time.sleep(0.05)
    return time.monotonic() - started


def wait_api(client, proc: subprocess.Popen, limit: float = 120.0) -> str:
    """The hosted zone's ID, once the API answers (it starts after the DNS listeners)."""
    started = time.monotonic()
    while True:
        try:
            return client.list_hosted_zones_by_name(DNSName=HOSTED)["HostedZones"][0]["Id"]
        except botocore.exceptions.EndpointConnectionError:
            if proc.poll() is not None or time.monotonic() - started > limit:
                raise
            time.sleep(0.1)


def update_a(port: int, origin: str, name: str, address: str, rtype: str = "A") -> None:
    """One RFC 2136 UPDATE replacing the ``rtype`` record set of ``name`` by one record."""
    keyring = dns.tsigkeyring.from_text({TSIG_NAME: TSIG_SECRET})
    update = dns.update.UpdateMessage(
        origin, keyring=keyring, keyname=TSIG_NAME, keyalgorithm="hmac-sha256"
    )
    update.replace(name, 300, rtype, address)
    response = dns.query.tcp(update, "127.0.0.1", port=port, timeout=120)
    if response.rcode() != dns.rcode.NOERROR:
        raise RuntimeError(f"UPDATE answered {dns.rcode.to_text(response.rcode())}")


def change_a(client, zone_id: str, action: str, name: str, address: str, rtype: str = "A") -> None:
    """One ChangeResourceRecordSets of one record (``action``: UPSERT or CREATE)."""
    client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": action,
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": rtype,
                        "TTL": 300,
                        "ResourceRecords": [{"Value": address}],
                    },
                }
            ]
        },
    )


def summary(label: str, values: list[float]) -> str:
    each = ", ".join(f"{v * 1000:.0f}" for v in values)
    return (
        f"{label:<34} median {statistics.median(values) * 1000:8.0f} ms   "
        f"max {max(values) * 1000:8.0f} ms   ({len(values)} changes: {each})"
    )


def run_fastdns(args, work: Path, results: dict) -> None:
    zones = work / "zones"
    zones.mkdir()
    source = work / f"{HOSTED}zone"
    source.write_text(zone_text(HOSTED, args.records))
    (zones / f"{FILE}zone").write_text(zone_text(FILE, args.records))
    state = work / "state.db"
    cached = Path(args.state_cache) if args.state_cache else None
    # The cache is of one zone: the same records, and the names this version of the script
    # adds (a key file beside it says which; an older cache is imported again).
    key = hashlib.sha256(zone_text(HOSTED, args.records).encode()).hexdigest()
    cache_key = Path(f"{cached}.key") if cached is not None else None
    if (
        cached is not None
        and cached.exists()
        and cache_key.exists()
        and cache_key.read_text() == key
    ):
        # An import of the same zone kept from an earlier run (the import of a million
        # records takes minutes and is not what this measures).
        shutil.copyfile(cached, state)
        print(f"fastdns zone import: copied from {cached}")
    else:
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "fastdns", "zone", "import", str(source), "--state", str(state)],
            check=True,
            capture_output=True,
        )
        print(f"fastdns zone import of {args.records} records: {time.monotonic() - started:.1f} s")
        if cached is not None:
            shutil.copyfile(state, cached)
            cache_key.write_text(key)
    dns_port, api_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    config = work / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{zones}"\nstate = "{state}"\n'
        f'listen = ["127.0.0.1:{dns_port}"]\napi_listen = "127.0.0.1:{api_port}"\n'
        f"workers = {args.workers}\n"
        f'[[access_keys]]\nid = "{KEY}"\nsecret = "{SECRET}"\n'
        f'[tsig_keys."{TSIG_NAME}"]\nalgorithm = "hmac-sha256"\nsecret = "{TSIG_SECRET}"\n'
        f'[update]\nkeys = ["{TSIG_NAME}"]\n'
    )
    log_path = work / "fastdns.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "fastdns", "serve", "--config", str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        ready = wait_ready(dns_port, f"h1.{HOSTED}", server)
        wait_ready(dns_port, f"h1.{FILE}", server)
        print(f"fastdns serve: both zones answered {ready:.1f} s after start")
        client = boto3.client(
            "route53",
            endpoint_url=f"http://127.0.0.1:{api_port}",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        zone_id = wait_api(client, server)
        api, update, sighup = [], [], []
        created, copied, delegated, refused = [], [], [], []
        for action, prefix, series in (("UPSERT", "h", api), ("CREATE", "new", created)):
            for n in range(args.changes):
                time.sleep(args.idle)
                name, address = f"{prefix}{n}.{HOSTED}", f"198.51.100.{n % 250 + 1}"
                change_a(client, zone_id, action, name, address)
                series.append(wait_for(dns_port, name, address, time.monotonic()))
        for n in range(args.changes):
            # web's address, which www's answers copy (a CNAME chain, RFC 1034 §3.6.2).
            time.sleep(args.idle)
            address = f"198.51.100.{n % 250 + 101}"
            change_a(client, zone_id, "UPSERT", f"web.{HOSTED}", address)
            copied.append(wait_for(dns_port, f"www.{HOSTED}", address, time.monotonic()))
        for n in range(args.changes):
            # A CNAME to a name the zone lacks (grafted, the failed lookup noted), then that
            # name: a new name other answers looked up, which the graft refuses, so the zone
            # is compiled whole, as the rest of the refused changes are. The second is timed.
            time.sleep(args.idle)
            target, address = f"later{n}.{HOSTED}", f"203.0.113.{n % 250 + 101}"
            change_a(client, zone_id, "CREATE", f"chain{n}.{HOSTED}", target, "CNAME")
            wait_for(dns_port, f"chain{n}.{HOSTED}", target, time.monotonic())
            change_a(client, zone_id, "CREATE", target, address)
            refused.append(wait_for(dns_port, f"chain{n}.{HOSTED}", address, time.monotonic()))
        for n in range(args.changes):
            # A new delegation: a name below it is answered with a referral to its server.
            time.sleep(args.idle)
            server_name = f"ns{n}.provider.example."
            change_a(client, zone_id, "CREATE", f"child{n}.{HOSTED}", server_name, "NS")
            delegated.append(
                wait_for(dns_port, f"www.child{n}.{HOSTED}", server_name, time.monotonic())
            )
        for n in range(args.changes):
            time.sleep(args.idle)
            name, address = f"h{n + 100}.{HOSTED}", f"203.0.113.{n % 250 + 1}"
            sent = time.monotonic()
            update_a(dns_port, HOSTED, name, address)
            update.append(wait_for(dns_port, name, address, sent))
        for n in range(args.changes):
            time.sleep(args.idle)
            index, address = n + 200, f"192.0.2.{n % 250 + 10}"
            text = zone_text(FILE, args.records, serial=n + 2, changed=(index, address))
            (zones / f"{FILE}zone").write_text(text)
            sent = time.monotonic()
            server.send_signal(signal.SIGHUP)
            sighup.append(wait_for(dns_port, f"h{index}.{FILE}", address, sent))
        results["fastdns API UPSERT"] = api
        results["fastdns API CREATE (new name)"] = created
        results["fastdns API UPSERT (CNAME target)"] = copied
        results["fastdns API CREATE (delegation)"] = delegated
        results["fastdns API CREATE (compiled)"] = refused
        results["fastdns RFC 2136 UPDATE"] = update
        results["fastdns SIGHUP reload"] = sighup
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
    text = log_path.read_text()
    if args.keep_log:
        shutil.copyfile(log_path, args.keep_log)
    published = [float(m) for m in re.findall(r"published \d+ changes .* in (\d+) ms", text)]
    compiled = [float(m) for m in re.findall(r"\(compile (\d+) ms\)", text)]
    if published:
        pairs = zip(published, compiled, strict=True)
        print(
            f"fastdns log: published in median {statistics.median(published):.0f} ms "
            f"(compile {statistics.median(compiled):.0f} ms) over {len(published)} publishes; "
            f"in order: {', '.join(f'{p:.0f}/{c:.0f}' for p, c in pairs)} ms"
        )
    swaps = re.findall(r"snapshot \d+: built in (\d+) ms, installed in (\d+) ms", text)
    if swaps:
        print(
            "fastdns log: snapshot built in median "
            f"{statistics.median(float(b) for b, _ in swaps):.0f} ms, installed in median "
            f"{statistics.median(float(i) for _, i in swaps):.0f} ms over {len(swaps)} swaps"
        )
    grafted = len(re.findall(r"grafted onto the last image", text))
    print(f"fastdns log: {grafted} of {len(published)} publishes grafted onto the last image")
    for line in text.splitlines():
        if "compiled through the model" in line:
            print("fastdns log:", line)


def run_knot(args, work: Path, results: dict) -> None:
    knotd, knotc = shutil.which("knotd"), shutil.which("knotc")
    if knotd is None or knotc is None:
        print("knotd/knotc not installed: Knot skipped")
        return
    kdir = work / "knot"
    kdir.mkdir()
    zone = kdir / f"{FILE}zone"
    zone.write_text(zone_text(FILE, args.records))
    port = free_port("127.0.0.1")
    socket = kdir / "knot.sock"
    conf = kdir / "knot.conf"
    conf.write_text(
        f"server:\n  listen: 127.0.0.1@{port}\n  rundir: {kdir}\n  udp-workers: {args.workers}\n"
        f"  tcp-workers: 1\n  background-workers: 1\n"
        f"key:\n  - id: {TSIG_NAME}\n    algorithm: hmac-sha256\n    secret: {TSIG_SECRET}\n"
        f"acl:\n  - id: upd\n    key: {TSIG_NAME}\n    action: update\n"
        f"database:\n  storage: {kdir}\n"
        f"template:\n  - id: default\n    storage: {kdir}\n    zonefile-sync: -1\n"
        f"    zonefile-load: difference-no-serial\n    journal-content: all\n"
        f"    semantic-checks: off\n"
        f"zone:\n  - domain: {FILE}\n    file: {zone}\n    acl: upd\n"
    )
    log_path = kdir / "knot.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [knotd, "-c", str(conf)], stdout=log, stderr=log, start_new_session=True
        )
    try:
        ready = wait_ready(port, f"h1.{FILE}", proc)
        print(f"knotd: zone answered {ready:.1f} s after start")
        reload, update = [], []
        for n in range(args.changes):
            time.sleep(args.idle)
            index, address = n + 200, f"192.0.2.{n % 250 + 10}"
            zone.write_text(zone_text(FILE, args.records, serial=n + 2, changed=(index, address)))
            sent = time.monotonic()
            subprocess.run(
                [knotc, "-c", str(conf), "-s", str(socket), "zone-reload", FILE],
                check=True,
                capture_output=True,
            )
            reload.append(wait_for(port, f"h{index}.{FILE}", address, sent))
        for n in range(args.changes):
            time.sleep(args.idle)
            name, address = f"h{n + 100}.{FILE}", f"203.0.113.{n % 250 + 1}"
            sent = time.monotonic()
            update_a(port, FILE, name, address)
            update.append(wait_for(port, name, address, sent))
        copied, delegated = [], []
        for n in range(args.changes):
            time.sleep(args.idle)
            address = f"198.51.100.{n % 250 + 101}"
            sent = time.monotonic()
            update_a(port, FILE, f"web.{FILE}", address)
            copied.append(wait_for(port, f"www.{FILE}", address, sent))
        for n in range(args.changes):
            time.sleep(args.idle)
            server_name = f"ns{n}.provider.example."
            sent = time.monotonic()
            update_a(port, FILE, f"child{n}.{FILE}", server_name, "NS")
            delegated.append(wait_for(port, f"www.child{n}.{FILE}", server_name, sent))
        results["knot zone-reload"] = reload
        results["knot RFC 2136 UPDATE"] = update
        results["knot UPDATE (CNAME target)"] = copied
        results["knot UPDATE (delegation)"] = delegated
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-knot", action="store_true", help="measure fastdns only")
    parser.add_argument(
        "--idle", type=float, default=0.0, metavar="SECONDS", help="pause before each change"
    )
    parser.add_argument(
        "--state-cache",
        metavar="FILE",
        help="keep the imported state database in FILE and reuse it next time "
        "(for the same --records)",
    )
    parser.add_argument("--keep-log", metavar="FILE", help="copy the fastdns log to FILE")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="fastdns-change-") as tmp:
        run_fastdns(args, Path(tmp), results)
        if not args.no_knot:
            run_knot(args, Path(tmp), results)
    print(f"\none-record change in a zone of {args.records} A records, until served over UDP:")
    for label, values in results.items():
        print(summary(label, values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
