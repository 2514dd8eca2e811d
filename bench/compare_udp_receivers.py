"""fastdns's two UDP drivers against Knot DNS, in alternation (issue 3).

Runs ``compare_servers.py --rounds 1`` once per ``udp_receiver`` setting ("thread", "loop"),
alternating, ``--alternations`` times; each run loads fastdns and Knot in turn, so every ratio
fastdns/Knot is taken within one run on the same noisy machine. Reports, per setting, the
medians over the runs of those ratios (CPU per query, mean latency) and of fastdns's own
figures, for the built-in generator and for dnsperf.

    python bench/compare_udp_receivers.py --alternations 5 --duration 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECEIVERS = ("thread", "loop")
# (label, JSON metric): ratios fastdns/knot and fastdns's own values
FIGURES = (
    ("CPU/query ratio, built-in", "ratio", "cpu_us_per_query"),
    ("CPU/query ratio, dnsperf", "ratio", "dnsperf_cpu_us_per_query"),
    ("latency mean ratio, built-in", "ratio", "latency_mean_us"),
    ("latency avg ratio, dnsperf", "ratio", "dnsperf_latency_avg_us"),
    ("fastdns CPU µs/query, built-in", "fastdns", "cpu_us_per_query"),
    ("fastdns CPU µs/query, dnsperf", "fastdns", "dnsperf_cpu_us_per_query"),
    ("knot CPU µs/query, built-in", "knot", "cpu_us_per_query"),
    ("knot CPU µs/query, dnsperf", "knot", "dnsperf_cpu_us_per_query"),
    ("fastdns latency mean µs, built-in", "fastdns", "latency_mean_us"),
    ("knot latency mean µs, built-in", "knot", "latency_mean_us"),
    ("fastdns latency avg µs, dnsperf", "fastdns", "dnsperf_latency_avg_us"),
    ("knot latency avg µs, dnsperf", "knot", "dnsperf_latency_avg_us"),
    ("fastdns lost, built-in", "fastdns", "lost"),
    ("fastdns lost, dnsperf", "fastdns", "dnsperf_lost"),
    ("knot lost, built-in", "knot", "lost"),
)


def figure(result: dict, source: str, key: str) -> float | None:
    if source == "ratio":
        return result.get("ratios", {}).get("fastdns/knot", {}).get(key)
    for server in result["servers"]:
        if server["name"] == source:
            return server["median"].get(key)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alternations", type=int, default=5, help="runs per setting (5)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per load (10)")
    parser.add_argument("--rate", type=float, default=50000, help="offered qps (50000)")
    parser.add_argument("--json-out", metavar="FILE", help="also write every run as JSON")
    args = parser.parse_args(argv)

    results: dict[str, list[dict]] = {receiver: [] for receiver in RECEIVERS}
    with tempfile.TemporaryDirectory(prefix="fastdns-receivers-") as tmp:
        for n in range(args.alternations):
            for receiver in RECEIVERS if n % 2 == 0 else RECEIVERS[::-1]:
                out = Path(tmp) / f"{receiver}-{n}.json"
                command = [
                    sys.executable, str(HERE / "compare_servers.py"), "--rounds", "1",
                    "--duration", f"{args.duration:g}", "--rate", f"{args.rate:g}",
                    "--udp-receiver", receiver, "--json-out", str(out),
                ]  # fmt: skip
                print(f"run {n + 1}/{args.alternations}: {receiver}", file=sys.stderr, flush=True)
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                results[receiver].append(json.loads(out.read_text()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))

    print(f"medians of {args.alternations} alternating runs per setting, {args.rate:g} qps, "
          f"{args.duration:g} s per load")  # fmt: skip
    print(f"{'':36}" + "".join(f"{r:>12}" for r in RECEIVERS))
    for label, source, key in FIGURES:
        cells = []
        for receiver in RECEIVERS:
            values = [v for r in results[receiver] if (v := figure(r, source, key)) is not None]
            cells.append(f"{statistics.median(values):12.3f}" if values else f"{'-':>12}")
        print(f"{label:36}" + "".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
