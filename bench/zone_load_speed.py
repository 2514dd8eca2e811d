"""How long a large zone takes to load and what it costs in memory, step by step; Knot DNS in the
same run.

    python bench/zone_load_speed.py                      # 1M A records, 100k mixed, 3 rounds
    python bench/zone_load_speed.py --a-records 200000 --mixed-records 20000 --rounds 5
    python bench/zone_load_speed.py --no-servers         # the in-process steps only
    python bench/zone_load_speed.py --no-steps           # fastdns serve and Knot only
    python bench/zone_load_speed.py --dnspython          # also the dnspython reader (slow)

Two zones, written to a temporary directory (``--keep DIR`` keeps them):

- ``a.bench.test.zone``: an SOA, an NS, its address and N names with one A record each
  (1,000,000 by default): bench/zone_scan_speed.py's flat zone;
- ``mixed.bench.test.zone``: about M records (100,000 by default) of bench/zone_scan_speed.py's
  common types, except that each DS sits at a delegation (an NS beside it), so the zone passes
  validation and can be served.

The steps of a load, each round in a fresh Python process so that each figure is its own:

- ``scan``: ``fastdns._zscanner.scan_zone_file`` (C) -> ScannedZone (columns);
- ``native compile``: ``fastdns._zcompile.compile_columns`` (C) columns -> zone image, the
  validity checks included: what ``fastdns serve`` runs for a zone file (fastdns.nativezone);
  the three steps below are the reference path it falls back to;
- ``model``: ``fastdns.zonescan.zone_from_scan`` -> fastdns.model.Zone (dnspython objects);
- ``validate``: ``fastdns.validate.validate_zone`` (with the cyclic garbage collector paused, as
  ``fastdns.zonefile.load_zone_file`` runs it);
- ``compile``: ``fastdns.compile.compile_zone`` -> the zone image the workers serve;
- with ``--dnspython``, ``model (dnspython)``: the reference reader, file -> Zone, instead of
  scan + model.

For each: wall time (median of ``--rounds``) and the process's peak RSS when the step ends
(``ru_maxrss``: the peak so far, so it includes the steps before and what they keep alive; the
interpreter and imports alone are reported as ``baseline``).

Then, per zone, each server started ``--rounds`` times on a free loopback port and timed from
its process's start (``/proc/<pid>/stat``) to its first answer (an SOA query answered with
NOERROR and data, ``fastdns.bench.servers.SoaProbes``, polled every 10 ms: +0-10 ms):

- ``fastdns serve --workers 2`` (as ``fastdns bench`` starts it: fastdns/bench/servers.py);
  memory is summed over the supervisor and its workers from /proc: RSS (pages shared between
  processes, like the compiled zones' memfd, counted in each), PSS (shared pages divided among
  their users: the fair sum) and the peak RSS (VmHWM) of each;
- ``knotd`` with 2 UDP workers (servers.py's ``knot_conf``: zone file loaded whole, no journal,
  semantic checks off), the same figures for its one process.

With ``--shape NxM`` (repeatable, e.g. ``--shape 100x10000 --shape 100000x10``): N zone files of
M records each (an SOA, an NS, its address, A records) in one directory; per round, in a fresh
process, ``fastdns.server.load_zones`` on it (what ``fastdns serve`` runs first: wall time, peak
RSS, how many zones were compiled natively), then both servers as above, timed to the moment
every zone answers its SOA (``fastdns.bench.servers.SoaProbes``: a window of 256 queries in
flight, so a round over 100,000 zones takes about a second).

Memory is read at the first answer. Run on an otherwise idle machine; on a shared 2-CPU box
figures move by tens of percent between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zone_scan_speed import ORIGIN, mixed_record, write_a_zone

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STEPS = ["scan", "native compile", "model", "validate", "compile"]


# --- zones ---------------------------------------------------------------------------------------


def write_mixed_zone(path: Path, records: int) -> int:
    """About ``records`` records of bench/zone_scan_speed.py's mixed types, each DS at a
    delegation; the exact number written."""
    count = 3
    with path.open("w", encoding="ascii") as f:
        f.write(HEADER_MIXED)
        i = 0
        while count < records + 3:
            text = mixed_record(i)
            if i % 16 == 8:  # a DS: make its owner a delegation
                text = f"n{i} NS ns.example.net.\n" + text
                count += 1
            elif i % 16 == 9:  # Knot refuses base64 split inside a 4-character group
                text = text.replace("KIzog\n    ", "KIzog")
            f.write(text + "\n")
            count += 1 + text.count("\n    MX")
            i += 1
    return count


HEADER_MIXED = f"""$ORIGIN mixed.{ORIGIN}
$TTL 3600
@   IN  SOA ns1 hostmaster ( 2024060101 2h 1h 2w 300 )
@   IN  NS  ns1
ns1 IN  A   192.0.2.53
"""


def write_shape(directory: Path, zones: int, records: int) -> None:
    """``zones`` zone files of ``records`` records each in ``directory``."""
    for z in range(zones):
        origin = f"z{z}.shape.{ORIGIN}"
        with (directory / f"{origin}zone").open("w", encoding="ascii") as f:
            f.write(HEADER_MIXED.replace(f"mixed.{ORIGIN}", origin))
            for i in range(max(records - 3, 0)):
                f.write(f"host{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")


def load_child(zone_dir: str) -> None:
    """One round of ``load_zones`` on ``zone_dir``; prints one JSON object."""
    from fastdns.nativezone import ZoneFileModel
    from fastdns.server import load_zones

    baseline = rss_now()
    start = time.perf_counter()
    load = load_zones(Path(zone_dir))
    seconds = time.perf_counter() - start
    native = sum(isinstance(z.zone, ZoneFileModel) for z in load.zones.values())
    print(json.dumps({
        "seconds": seconds, "peak_rss": peak_rss(), "rss": rss_now(), "baseline_rss": baseline,
        "zones": len(load.zones), "native": native, "errors": len(load.errors),
    }))  # fmt: skip


def run_shape(args, directory: Path, shape: str) -> None:
    zones, records = (int(part) for part in shape.lower().split("x"))
    zone_dir = directory / f"shape-{zones}x{records}"
    zone_dir.mkdir(parents=True, exist_ok=True)
    write_shape(zone_dir, zones, records)
    print(f"\n{zones:,} zones of {records:,} records: {zone_dir}")
    results = []
    for _ in range(args.rounds):
        proc = subprocess.run(
            [sys.executable, __file__, "--load-child", str(zone_dir)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"load run failed:\n{proc.stdout}\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first = results[0]
    seconds = statistics.median(r["seconds"] for r in results)
    print(
        f"  load_zones (fastdns.server)       {seconds:8.2f} s   peak RSS "
        f"{mib(statistics.median(r['peak_rss'] for r in results))}   RSS after "
        f"{mib(statistics.median(r['rss'] for r in results))} (baseline "
        f"{mib(first['baseline_rss'])}); {first['zones']:,} zones, {first['native']:,} "
        f"compiled natively, {first['errors']} errors"
    )
    if args.no_servers:
        return
    runs: dict[str, list[dict]] = {"fastdns": [], "knot": []}
    for _ in range(args.rounds):
        runs["fastdns"].append(start_server("fastdns", zone_dir, args.workers, args.deadline))
        runs["knot"].append(start_server("knot", zone_dir, 2, args.deadline))
    report_servers(f"{zones}x{records} servers (every zone answering)", runs)


# --- the in-process steps, one round per child process -------------------------------------------


def rss_now() -> int:
    """This process's current RSS in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(path: str, origin: str, reader: str) -> None:
    """One round of the steps on ``path``; prints one JSON object."""
    import dns.name

    from fastdns._zcompile import compile_columns
    from fastdns._zscanner import scan_zone_file
    from fastdns.collector import collector_paused
    from fastdns.compile import compile_zone
    from fastdns.validate import validate_zone
    from fastdns.zonefile import parse_zone_file
    from fastdns.zonescan import zone_from_scan

    origin_name = dns.name.from_text(origin)
    out: dict[str, object] = {"baseline_rss": rss_now()}

    def step(name: str, run):
        start = time.perf_counter()
        result = run()
        out[name] = {"seconds": time.perf_counter() - start, "peak_rss": peak_rss()}
        return result

    if reader == "dnspython":
        zone = step("model (dnspython)", lambda: parse_zone_file(path, origin_name, "dnspython"))
    else:
        scanned = step("scan", lambda: scan_zone_file(path, origin_name))
        out["records"] = len(scanned)
        out["scanned_bytes"] = scanned.nbytes
        native = step("native compile", lambda: compile_columns(scanned, origin_name.to_wire()))
        if native[0] is None:  # served through the reference path below
            out["native_fallback"] = native[1]
            del out["native compile"]
        else:
            out["native_image_bytes"] = len(native[0])
        del native
        zone = step("model", lambda: zone_from_scan(scanned, origin_name, path))
        del scanned
    with collector_paused():  # as fastdns.zonefile.load_zone_file validates
        errors = step("validate", lambda: validate_zone(zone))
    if errors:
        raise SystemExit(f"{path}: {len(errors)} validation errors, the first: {errors[0]}")
    image = step("compile", lambda: compile_zone(zone))
    out["image_bytes"] = len(image)
    if "native_image_bytes" in out and out["native_image_bytes"] != len(image):
        raise SystemExit(f"{path}: the native image differs from the reference image")
    print(json.dumps(out))


def run_steps(path: Path, origin: str, reader: str, rounds: int) -> list[dict]:
    results = []
    for _ in range(rounds):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(path), origin, reader],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"step run failed:\n{proc.stdout}\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def report_steps(title: str, results: list[dict], records: int) -> None:
    first = results[0]
    print(f"\n{title}: {records:,} records, median of {len(results)} rounds")
    baseline = "baseline (interpreter + imports)"
    print(f"  {baseline:34} {'':>9}   peak RSS {mib(first['baseline_rss'])}")
    total = 0.0
    for name in ["model (dnspython)", *STEPS]:
        if name not in first:
            continue
        seconds = statistics.median(r[name]["seconds"] for r in results)
        peak = statistics.median(r[name]["peak_rss"] for r in results)
        if name != "native compile":  # the native path: scan + native compile
            total += seconds
        print(
            f"  {name:34} {seconds:8.2f} s {seconds / records * 1e6:7.2f} µs/record   "
            f"peak RSS {mib(peak)}"
        )
    print(f"  {'total, reference path':34} {total:8.2f} s")
    if "native_fallback" in first:
        print(f"  not compiled natively ({first['native_fallback']}): served by the reference path")
    if "native compile" in first:
        native = sum(
            statistics.median(r[name]["seconds"] for r in results)
            for name in ("scan", "native compile")
        )
        print(f"  {'total, native path':34} {native:8.2f} s")
    sizes = [f"zone image {first['image_bytes'] / records:.1f} B/record"]
    if "scanned_bytes" in first:
        sizes.insert(0, f"ScannedZone columns {first['scanned_bytes'] / records:.1f} B/record")
    print("  " + "; ".join(sizes))


def mib(n: float) -> str:
    return f"{n / 2**20:8.0f} MiB"


# --- servers -------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                text = f.read()
        except OSError:
            continue
        parents[int(entry)] = int(text[text.rindex(b")") + 2 :].split()[1])
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return tree


def memory(pid: int) -> dict[str, int]:
    """RSS, PSS and peak RSS (VmHWM) of one process, in bytes (0 if it is gone)."""
    figures = {"rss": 0, "pss": 0, "hwm": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    figures["rss"] = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    figures["hwm"] = int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    figures["pss"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return figures


def started_at(pid: int) -> float:
    """When ``pid`` started, in CLOCK_BOOTTIME seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read()
    return int(text[text.rindex(b")") + 2 :].split()[19]) / CLOCK_TICKS


def start_server(kind: str, zone_dir: Path, workers: int, deadline: float) -> dict:
    """Start ``kind`` on ``zone_dir``: seconds from its start to the first answer, memory then."""
    from fastdns.bench import servers

    servers.STARTUP_DEADLINE = deadline
    with servers.running_server(kind, zone_dir, workers=workers) as server:
        answered = time.clock_gettime(time.CLOCK_BOOTTIME)
        seconds = answered - started_at(server.proc.pid)
        pids = process_tree(server.proc.pid)
        per_process = [memory(pid) for pid in pids]
        label = server.label
    total = {key: sum(m[key] for m in per_process) for key in ("rss", "pss", "hwm")}
    return {"label": label, "seconds": seconds, "processes": len(pids), **total}


def report_servers(title: str, runs: dict[str, list[dict]]) -> None:
    print(f"\n{title}: start to first answer, memory at the first answer (medians)")
    for results in runs.values():
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["rss"] for r in results)
        pss = statistics.median(r["pss"] for r in results)
        hwm = statistics.median(r["hwm"] for r in results)
        label = f"{results[0]['label']} ({results[0]['processes']} processes)"
        each = ", ".join(f"{r['seconds']:.2f}" for r in results)
        print(
            f"  {label:44} {seconds:7.2f} s   RSS {mib(rss)}   PSS {mib(pss)}   "
            f"peak RSS {mib(hwm)}   (runs: {each} s)"
        )


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a-records", type=int, default=1_000_000)
    parser.add_argument("--mixed-records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="fastdns workers (default 2)")
    parser.add_argument("--no-servers", action="store_true", help="skip fastdns serve and Knot")
    parser.add_argument("--no-steps", action="store_true", help="only fastdns serve and Knot")
    parser.add_argument("--dnspython", action="store_true", help="also time dnspython's reader")
    parser.add_argument("--deadline", type=float, default=300.0, help="server start limit (s)")
    parser.add_argument("--keep", type=Path, help="write the zones here and keep them")
    parser.add_argument(
        "--shape", action="append", default=[], metavar="NxM", help="N zones of M records"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--load-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.child:
        child(*args.child)
        return 0
    if args.load_child:
        load_child(args.load_child)
        return 0

    directory = args.keep or Path(tempfile.mkdtemp(prefix="zone-load-speed-"))
    try:
        zones = []
        for kind, count, write in (
            ("a", args.a_records, write_a_zone),
            ("mixed", args.mixed_records, write_mixed_zone),
        ):
            if count <= 0:
                continue
            origin = f"{kind}.{ORIGIN}"
            zone_dir = directory / kind
            zone_dir.mkdir(parents=True, exist_ok=True)
            path = zone_dir / f"{origin}zone"
            records = write(path, count)
            print(f"{path}: {records:,} records, {path.stat().st_size / 1e6:.1f} MB")
            zones.append((origin, path, records))

        for origin, path, records in zones:
            if not args.no_steps:
                steps = run_steps(path, origin, "native", args.rounds)
                report_steps(f"{origin} steps", steps, records)
            if args.dnspython:
                report_steps(
                    f"{origin} with the dnspython reader",
                    run_steps(path, origin, "dnspython", 1),
                    records,
                )
            if args.no_servers:
                continue
            runs: dict[str, list[dict]] = {"fastdns": [], "knot": []}
            for _ in range(args.rounds):  # alternate, so both see the same machine
                runs["fastdns"].append(
                    start_server("fastdns", path.parent, args.workers, args.deadline)
                )
                runs["knot"].append(start_server("knot", path.parent, 2, args.deadline))
            report_servers(f"{origin} servers", runs)
        for shape in args.shape:
            run_shape(args, directory, shape)
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
