"""Server CPU per query of signed (DO=1) against unsigned (DO=0) answers, on a real fastdns.

    python bench/dnssec_server_cpu.py                    # 2,000 names, 3 rounds of 5 s each
    python bench/dnssec_server_cpu.py --names 10000 --rounds 5 --duration 10
    python bench/dnssec_server_cpu.py --algorithm ED25519  # Ed25519 keys (RFC 8080)

Starts ``fastdns serve --workers 1`` with the Route 53 API on free loopback ports, creates a
hosted zone of N A records through the API, signs it (CreateKeySigningKey,
EnableHostedZoneDNSSEC), then loads it as fast as possible with ``fastdns bench``'s C load
generator, alternating a DO=0 and a DO=1 run of the same positive queries (plus, reported
apart, NXDOMAIN queries) round after round. Each run's figure is the CPU time of the server's
process tree (/proc) divided by the answers it sent; medians are printed. Prints the signed
compile's signature count too (the compile's time is in the server log).

The zone denies by compact denial (RFC 9824, the default): a DO=1 NXDOMAIN query gets an NSEC
signed online. "warm" repeats 5,000 names, so after the first pass the worker's signature
cache answers; "cold" sends names never asked before (fresh ones each round, more than a run
can send), so every answer costs one signature: ECDSA P-256 (Route 53's algorithm, the default)
or, with ``--algorithm ED25519``, Ed25519 (the config's ``dnssec_algorithm``). ``--denial
nsec3`` measures the NSEC3 option instead. The last line turns the cold run's extra CPU into
signatures per second of one core.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import botocore.config

from fastdns.bench.load import LoadSettings, run_load
from fastdns.bench.queries import QuerySpec, encode_queries
from fastdns.bench.servers import free_port, process_tree_cpu

KEY, SECRET = "AKIDBENCH", "bench-secret-0123456789"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--denial", choices=("compact", "nsec3"), default="compact")
    parser.add_argument(
        "--algorithm",
        choices=("ECDSAP256SHA256", "ED25519"),
        default="ECDSAP256SHA256",
        help="the zone's key algorithm (the config's dnssec_algorithm)",
    )
    parser.add_argument(
        "--cold-names", type=int, default=400_000, help="distinct names per cold run"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "zones").mkdir()
        dns_port, api_port = free_port(), free_port()
        (folder / "fastdns.toml").write_text(
            f'zone_dir = "{folder / "zones"}"\nstate = "{folder / "state.db"}"\n'
            f'listen = ["127.0.0.1:{dns_port}"]\napi_listen = "127.0.0.1:{api_port}"\n'
            f'workers = 1\ndnssec_algorithm = "{args.algorithm}"\n'
            f'[[access_keys]]\nid = "{KEY}"\nsecret = "{SECRET}"\n'
        )
        log = open(folder / "fastdns.log", "wb")  # noqa: SIM115 (closed with the server)
        server = subprocess.Popen(
            [sys.executable, "-m", "fastdns", "serve", "--config", str(folder / "fastdns.toml")],
            stdout=log,
            stderr=log,
        )
        try:
            return _run(args, server, dns_port, api_port, folder)
        finally:
            server.terminate()
            server.wait(10)
            log.close()


def _run(args, server, dns_port: int, api_port: int, folder: Path) -> int:
    client = boto3.client(
        "route53",
        endpoint_url=f"http://127.0.0.1:{api_port}",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=botocore.config.Config(retries={"max_attempts": 10}),
    )
    for _ in range(100):
        try:
            client.list_hosted_zones()
            break
        except Exception:
            time.sleep(0.1)
    origin = "cpu.bench.test."
    zone_id = client.create_hosted_zone(Name=origin, CallerReference=str(uuid.uuid4()))[
        "HostedZone"
    ]["Id"]
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": f"host{i}.{origin}",
                "Type": "A",
                "TTL": 300,
                "ResourceRecords": [{"Value": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"}],
            },
        }
        for i in range(args.names)
    ]
    for start in range(0, len(changes), 1000):
        client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": changes[start : start + 1000]}
        )
    if args.denial != "compact":
        subprocess.run(
            [sys.executable, "-m", "fastdns", "zone", "dnssec-denial", origin, args.denial,
             "--state", str(folder / "state.db")],
            check=True, capture_output=True,
        )  # fmt: skip
    client.create_key_signing_key(
        CallerReference=str(uuid.uuid4()),
        HostedZoneId=zone_id,
        KeyManagementServiceArn="arn:aws:kms:us-east-1:111122223333:key/bench",
        Name="bench_ksk",
        Status="ACTIVE",
    )
    change = client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]["Id"]
    while client.get_change(Id=change)["ChangeInfo"]["Status"] != "INSYNC":
        time.sleep(0.1)
    rng = random.Random(1)
    positive = [QuerySpec(f"host{rng.randrange(args.names)}.{origin}", "A") for _ in range(5000)]
    negative = [QuerySpec(f"nx{rng.randrange(10**9)}.{origin}", "A") for _ in range(5000)]
    loads = {
        "positive DO=0": encode_queries(positive, 1232),
        "positive DO=1": encode_queries(positive, 1232, dnssec_ok=True),
        "nxdomain DO=0": encode_queries(negative, 1232),
        "nxdomain DO=1 warm": encode_queries(negative, 1232, dnssec_ok=True),
        "nxdomain DO=1 cold": None,  # fresh names every round
    }
    settings = LoadSettings(duration=args.duration)
    cpu: dict[str, list[float]] = {name: [] for name in loads}
    qps: dict[str, list[float]] = {name: [] for name in loads}
    for round_ in range(args.rounds):
        for name, wires in loads.items():
            if wires is None:
                fresh = [QuerySpec(f"c{round_}-{i}.{origin}", "A") for i in range(args.cold_names)]
                wires = encode_queries(fresh, 1232, dnssec_ok=True)
            before = process_tree_cpu(server.pid)
            result = run_load("127.0.0.1", dns_port, wires, settings)
            used = process_tree_cpu(server.pid) - before
            if loads[name] is None and args.denial == "compact" and result.sent > len(wires):
                print(f"  warning: {name} sent {result.sent} queries, {len(wires)} distinct names")
            cpu[name].append(used * 1e6 / max(result.answered, 1))
            qps[name].append(result.qps)
    print(
        f"{args.names} names signed ({args.algorithm}, {args.denial} denial); medians of "
        f"{args.rounds} rounds of {args.duration:g} s"
    )
    for name in loads:
        print(
            f"  {name}: {statistics.median(cpu[name]):.2f} us server CPU per answer, "
            f"{statistics.median(qps[name]):,.0f} qps"
        )
    median = {name: statistics.median(values) for name, values in cpu.items()}
    for signed, plain in (
        ("positive DO=1", "positive DO=0"),
        ("nxdomain DO=1 warm", "nxdomain DO=0"),
        ("nxdomain DO=1 cold", "nxdomain DO=0"),
    ):
        print(f"  {signed} / {plain} CPU per answer = {median[signed] / median[plain]:.2f}")
    if args.denial == "compact":
        extra = median["nxdomain DO=1 cold"] - median["nxdomain DO=1 warm"]
        print(
            f"  online signing: {extra:.1f} us of server CPU per signature, about "
            f"{1e6 / extra:,.0f} signatures/s per core"
        )
    text = (folder / "fastdns.log").read_text(errors="replace")
    print("  " + [line for line in text.splitlines() if "published" in line][-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
