"""A SIGHUP reload of a large zone file under dnsperf load: how many queries are lost (issue 8).

Writes a zone file of ``--records`` A records, starts ``fastdns serve --workers N`` on it and
waits until it answers; then runs ``dnsperf -Q RATE -l DURATION -t 1`` (queries drawn from the
zone's names, a tenth of them names that do not exist), and ``--hup-after`` seconds into the
run changes one record and the SOA serial in the file and sends SIGHUP (``--reloads`` times,
``--hup-every`` seconds apart). Reports dnsperf's sent, completed and lost queries, the time
from each SIGHUP until the changed record was served, and the server's "reload finished" log
lines. ``--pin`` runs dnsperf on CPU 0 and the server on the others (taskset).

Run: ``python bench/reload_under_load.py [--records 1000000] [--rate 20000] [--duration 30]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from fastdns.bench.dnsperf import dnsperf_command, parse_output
from fastdns.bench.servers import free_port

ORIGIN = "reload.bench."


def zone_text(records: int, serial: int, changed: tuple[int, str] | None = None) -> str:
    lines = [
        f"$ORIGIN {ORIGIN}",
        "$TTL 300",
        f"@ SOA ns1 hostmaster {serial} 7200 900 1209600 300",
        "@ NS ns1",
        "ns1 A 192.0.2.1",
    ]
    lines += [f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(records)]
    if changed is not None:
        index, address = changed
        lines[5 + index] = f"h{index} A {address}"
    return "\n".join(lines) + "\n"


def answer(port: int, name: str) -> str | None:
    try:
        response = dns.query.udp(
            dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.5
        )
    except dns.exception.Timeout:
        return None
    return response.answer[0][0].to_text() if response.answer else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--hup-after", type=float, default=5.0)
    parser.add_argument("--hup-every", type=float, default=6.0)
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="fastdns-reload-") as tmp:
        work = Path(tmp)
        zones = work / "zones"
        zones.mkdir()
        zone_file = zones / f"{ORIGIN}zone"
        zone_file.write_text(zone_text(args.records, 1))
        rng = random.Random(8)
        queries = work / "queries.txt"
        queries.write_text(
            "".join(
                f"h{rng.randrange(args.records)}.{ORIGIN} A\n"
                if rng.random() < 0.9
                else f"x{rng.randrange(args.records)}.{ORIGIN} A\n"
                for _ in range(100_000)
            )
        )
        port = free_port("127.0.0.1")
        server_cmd = [
            sys.executable, "-m", "fastdns", "serve", "--zone-dir", str(zones),
            "--listen", f"127.0.0.1:{port}", "--workers", str(args.workers),
        ]  # fmt: skip
        perf_cmd = dnsperf_command(
            "127.0.0.1", port, queries, duration=args.duration, rate=args.rate, timeout=1.0
        )
        if args.pin and len(cpus) > 1:
            others = ",".join(map(str, cpus[1:]))
            server_cmd = ["taskset", "-c", others, *server_cmd]
            perf_cmd = ["taskset", "-c", str(cpus[0]), *perf_cmd]
        log_path = work / "fastdns.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(server_cmd, stdout=log, stderr=log, start_new_session=True)
        try:
            started = time.monotonic()
            while answer(port, f"h1.{ORIGIN}") is None:
                if server.poll() is not None or time.monotonic() - started > 600:
                    print(log_path.read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.1)
            print(f"serving {args.records} records {time.monotonic() - started:.1f} s after start")
            print("dnsperf:", " ".join(perf_cmd), file=sys.stderr)
            served: list[float] = []

            def reloads() -> None:
                time.sleep(args.hup_after)
                for n in range(args.reloads):
                    index, address = 1000 + n, f"198.51.100.{n + 1}"
                    zone_file.write_text(zone_text(args.records, n + 2, (index, address)))
                    hup = time.monotonic()
                    server.send_signal(signal.SIGHUP)
                    while answer(port, f"h{index}.{ORIGIN}") != address:
                        time.sleep(0.005)
                    served.append(time.monotonic() - hup)
                    time.sleep(max(0.0, args.hup_every - (time.monotonic() - hup)))

            thread = threading.Thread(target=reloads, daemon=True)
            thread.start()
            done = subprocess.run(perf_cmd, capture_output=True, text=True, check=True)
            thread.join(120)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
        result = parse_output(done.stdout)
        finished = re.findall(r"reload finished.*", log_path.read_text())
    print(
        f"dnsperf at {args.rate} qps for {args.duration:g} s, {len(served)} SIGHUP reloads of "
        f"{args.records} records: sent {result.sent}, completed {result.completed}, "
        f"lost {result.lost} ({result.loss_percent:.3f} %), "
        f"latency avg {result.latency_avg_us:.0f} us max {result.latency_max_us / 1000:.0f} ms"
    )
    print("SIGHUP -> changed record served: " + ", ".join(f"{s:.2f} s" for s in served))
    for line in finished:
        print("fastdns log:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
