"""The server comparison of issue 3, reproducible: fastdns against Knot DNS on one machine.

Builds a zone of 10,000 owner names (hosts with A, half of them also AAAA, a fifth MX; a tenth
of the names are CNAMEs to hosts), then runs ``fastdns bench`` on it: fastdns with 1 worker and
Knot with 1 UDP worker (``udp-workers: 1``, ``tcp-workers: 1``) are started on free loopback
ports and loaded in alternation, round after round, at 50,000 qps offered with the default mix
(A=40, AAAA=20, MX=10, NXDOMAIN=20, CNAME=10): first by the built-in generator, then by dnsperf
with the same queries. The load generator and dnsperf run on the first CPU, the servers on the
others (``--pin``). Reported: medians over the rounds of server CPU µs per answered query, loss
and latency, and the ratios fastdns/knot.

    python bench/compare_servers.py                 # 3 rounds of 10 s per server and tool
    python bench/compare_servers.py --rounds 5 --duration 20 --json-out results.json
    python bench/compare_servers.py --nsd            # NSD as well (Debian package nsd)
    python bench/compare_servers.py --udp-receiver loop   # fastdns's event-loop UDP path

It needs knotd (package ``knot``) and dnsperf (package ``dnsperf``), and the built extensions
(``pip install --no-build-isolation -e .``). Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from fastdns.config import UDP_RECEIVERS

ORIGIN = "bench.example"


def zone_text(names: int, origin: str = ORIGIN) -> str:
    """A zone with ``names`` owner names below the apex: 90 % hosts, 10 % CNAMEs to hosts."""
    lines = [
        f"$ORIGIN {origin}.",
        "$TTL 3600",
        f"@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 7200 3600 1209600 300",
        f"@ IN NS ns1.{origin}.",
        f"@ IN NS ns2.{origin}.",
        "@ IN A 192.0.2.1",
        f"@ IN MX 10 mail.{origin}.",
        "ns1 IN A 192.0.2.53",
        "ns2 IN A 192.0.2.54",
        "mail IN A 192.0.2.25",
    ]
    hosts = names - names // 10 - 3  # ns1, ns2 and mail are names too
    for i in range(hosts):
        lines.append(f"host{i:05d} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        if i % 2 == 0:
            lines.append(f"host{i:05d} IN AAAA 2001:db8::{i:x}")
        if i % 5 == 0:
            lines.append(f"host{i:05d} IN MX 10 mail.{origin}.")
    for i in range(names // 10):
        lines.append(f"alias{i:05d} IN CNAME host{(i * 7) % hosts:05d}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=10000, help="owner names (default 10000)")
    parser.add_argument("--rate", type=float, default=50000, help="offered qps (default 50000)")
    parser.add_argument(
        "--max", action="store_true", help="saturation: as fast as each server answers"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--count", type=int, default=50000, help="distinct queries (50000)")
    parser.add_argument("--nsd", action="store_true", help="compare with NSD as well")
    parser.add_argument("--no-dnsperf", action="store_true", help="the built-in generator only")
    parser.add_argument("--json-out", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--plot", metavar="PNG", help="latency by percentile, per server")
    parser.add_argument("--zone-dir", metavar="DIR", help="write the zone here and keep it")
    parser.add_argument(
        "--udp-receiver",
        choices=UDP_RECEIVERS,
        help="fastdns's udp_receiver setting (default: fastdns's default)",
    )
    args = parser.parse_args(argv)

    from fastdns.cli import main as fastdns_main

    with tempfile.TemporaryDirectory(prefix="fastdns-compare-") as tmp:
        zone_dir = Path(args.zone_dir or tmp)
        zone_dir.mkdir(parents=True, exist_ok=True)
        (zone_dir / f"{ORIGIN}.zone").write_text(zone_text(args.names))
        config = None
        if args.udp_receiver:
            config = Path(tmp) / "fastdns.toml"
            config.write_text(f'udp_receiver = "{args.udp_receiver}"\n')
        bench_args = [
            "bench",
            "--compare",
            "knot",
            *(["--compare", "nsd"] if args.nsd else []),
            "--zone-dir",
            str(zone_dir),
            "--workers",
            "1",
            *(["--max"] if args.max else ["--rate", f"{args.rate:g}"]),
            "--duration",
            f"{args.duration:g}",
            "--rounds",
            str(args.rounds),
            "--count",
            str(args.count),
            *([] if args.no_dnsperf else ["--dnsperf"]),
            *(["--pin"] if len(os.sched_getaffinity(0)) > 1 else []),
            *(["--save-json", args.json_out] if args.json_out else []),
            *(["--plot", args.plot] if args.plot else []),
            *(["--fastdns-config", str(config)] if config else []),
        ]
        print("$ python -m fastdns " + shlex.join(bench_args), file=sys.stderr, flush=True)
        return fastdns_main(bench_args)


if __name__ == "__main__":
    raise SystemExit(main())
