"""``fastdns bench``: load a DNS server, measure it, and compare it with Knot DNS and NSD.

Registered in ``fastdns.cli`` through ``add_parser(subcommands)``. Exit status: 0 when the runs
completed (whatever they measured), 1 when a server could not be started or a tool is missing,
2 for bad flags, unreadable query files or zone directories, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastdns.bench.load import LoadSettings
    from fastdns.bench.report import Measurement
    from fastdns.bench.servers import ServerProcess

__all__ = ["add_parser", "run"]

DEFAULT_DURATION = 10.0


class UsageError(Exception):
    """A bad combination of flags (exit status 2)."""


def add_parser(subcommands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``bench`` command to a ``fastdns`` sub-command set."""
    from fastdns.bench import DEFAULT_MIX

    bench = subcommands.add_parser(
        "bench",
        help="load a DNS server and report qps, loss, latency and CPU per query",
        description=(
            "Send DNS queries over UDP at a fixed rate or as fast as possible and report "
            "answered qps, loss, latency percentiles and rcodes. With --start-fastdns the "
            "benchmark starts fastdns on a free port and also reports the server's CPU time "
            "per answered query; --compare also starts Knot DNS or NSD on the same zones and "
            "loads each in turn, round after round, then prints medians side by side."
        ),
    )
    target = bench.add_argument_group("target")
    target.add_argument("--server", metavar="HOST:PORT", help="load this running server")
    target.add_argument(
        "--start-fastdns",
        action="store_true",
        help="start `fastdns serve --zone-dir DIR` on a free loopback port and load it",
    )
    target.add_argument(
        "--compare",
        action="append",
        choices=["knot", "nsd"],
        metavar="SERVER",
        help="also start SERVER (knot or nsd) on the same zones and load it in alternation "
        "with fastdns; repeatable; implies --start-fastdns",
    )
    target.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="fastdns --workers, Knot udp-workers, NSD server-count (default 1; 0 is "
        "fastdns answering in its supervisor process, and 1 for the others)",
    )
    target.add_argument(
        "--pin",
        action="store_true",
        help="run the load generator (and dnsperf) on the first CPU and the servers on the others",
    )
    target.add_argument(
        "--fastdns-config",
        metavar="FILE",
        help="config file for the fastdns the bench starts (its state database of hosted "
        "zones, geo database, latency table...), beside --zone-dir",
    )
    queries = bench.add_argument_group("queries")
    queries.add_argument("--queries", metavar="FILE", help="dnsperf-format query file")
    queries.add_argument(
        "--zone-dir", metavar="DIR", help="zones to serve and to draw the query mix from"
    )
    queries.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        metavar="MIX",
        help=f"query mix drawn from the zones (default {DEFAULT_MIX}); categories: record "
        "types, NXDOMAIN, CNAME (A at an alias), NODATA",
    )
    queries.add_argument(
        "--count", type=int, default=10000, metavar="N", help="queries to draw (default 10000)"
    )
    queries.add_argument("--seed", type=int, default=1, help="random seed of the mix (default 1)")
    queries.add_argument(
        "--edns",
        type=int,
        nargs="?",
        const=1232,
        metavar="PAYLOAD",
        help="add an OPT record advertising PAYLOAD bytes (default 1232); off by default",
    )
    queries.add_argument(
        "--ecs",
        action="append",
        metavar="SUBNET",
        help="add an EDNS Client Subnet option (e.g. 198.51.100.0/24) to every query, the "
        "subnets given taken in turn; repeatable; implies an OPT record",
    )
    queries.add_argument(
        "--dnssec-ok",
        action="store_true",
        help="set the DO bit in every query (signed answers from signed zones); implies an "
        "OPT record",
    )
    queries.add_argument(
        "--versus-queries",
        metavar="FILE",
        help="a second dnsperf-format query file, loaded against the same fastdns in "
        "alternation with the first, to compare what two loads cost (e.g. routing-policy "
        "answers against plain records); implies --start-fastdns",
    )
    load = bench.add_argument_group("load")
    rate = load.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=float, metavar="QPS", help="offered queries per second")
    rate.add_argument(
        "--max",
        action="store_true",
        help="as fast as the outstanding limit allows (the default without --rate)",
    )
    load.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help=f"seconds of sending per run (default {DEFAULT_DURATION:g})",
    )
    load.add_argument(
        "--outstanding",
        type=int,
        metavar="N",
        help="most queries in flight (default 200 with --max, unlimited at a fixed rate)",
    )
    load.add_argument(
        "--timeout",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="a query unanswered this long is lost (default 1)",
    )
    load.add_argument(
        "--sockets", type=int, default=4, metavar="N", help="UDP sockets (source ports); 4"
    )
    load.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="runs per server; medians are reported (default 3 with --compare, else 1)",
    )
    load.add_argument(
        "--dnsperf",
        action="store_true",
        help="after each run, run dnsperf with the same queries, rate and duration",
    )
    output = bench.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--save-json", metavar="FILE", help="also write the JSON object to FILE")
    output.add_argument("--plot", metavar="PNG", help="draw latency by percentile to a PNG")
    output.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    bench.set_defaults(func=run)
    return bench


def run(args: argparse.Namespace) -> int:
    """Run ``fastdns bench``; the exit status."""
    from fastdns.bench.dnsperf import DnsperfError
    from fastdns.bench.queries import QueryError
    from fastdns.bench.servers import ServerStartError, ServerUnavailable

    try:
        return _run(args)
    except (UsageError, QueryError) as exc:
        print(f"fastdns bench: {exc}", file=sys.stderr)
        return 2
    except (ServerUnavailable, ServerStartError, DnsperfError) as exc:
        print(f"fastdns bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastdns bench: interrupted", file=sys.stderr)
        return 130


def _check_args(args: argparse.Namespace) -> None:
    if args.compare:
        args.start_fastdns = True
    if args.versus_queries:
        if args.compare or args.server:
            raise UsageError("--versus-queries loads the fastdns it starts: no --compare/--server")
        if args.dnsperf:
            raise UsageError("--dnsperf runs one query file: not with --versus-queries")
        args.start_fastdns = True
    if args.server and args.start_fastdns:
        raise UsageError("give either --server or --start-fastdns/--compare, not both")
    if not args.server and not args.start_fastdns:
        raise UsageError("give --server HOST:PORT, --start-fastdns or --compare SERVER")
    if args.start_fastdns and not args.zone_dir:
        raise UsageError("--start-fastdns and --compare need --zone-dir DIR")
    if not args.queries and not args.zone_dir:
        raise UsageError("give --queries FILE or --zone-dir DIR")
    for name in ("duration", "timeout"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name} must be positive")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be positive")
    if args.workers < 0:
        raise UsageError("--workers must be 0 (fastdns only: no worker processes) or more")
    if args.count < 1 or args.sockets < 1:
        raise UsageError("--count and --sockets must be at least 1")
    if args.rounds is not None and args.rounds < 1:
        raise UsageError("--rounds must be at least 1")


def _split_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--server: expected HOST:PORT (IPv6 as [::1]:5353), not {text!r}")
    return host, int(port)


def _load_queries(args: argparse.Namespace) -> tuple[list, str, list[str]]:
    """The query specs, where they came from, and warnings."""
    from fastdns.bench.queries import generate_queries, load_zones, parse_mix, parse_query_file

    if args.queries:
        specs = parse_query_file(args.queries)
        return specs, f"query file {args.queries}", []
    mix = parse_mix(args.mix)
    zones, errors = load_zones(args.zone_dir)
    warnings = [f"zone left out: {e}" for e in errors]
    specs, mix_warnings = generate_queries(zones, mix, args.count, args.seed)
    source = f"mix {args.mix} from {len(zones)} zone(s) in {args.zone_dir}"
    return specs, source, warnings + mix_warnings


def _cpu_split(pin: bool) -> tuple[set[int] | None, set[int] | None, str]:
    """(generator CPUs, server CPUs, description) for --pin."""
    if not pin:
        return None, None, "not pinned"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("fastdns bench: --pin needs two CPUs; not pinning", file=sys.stderr)
        return None, None, "not pinned (one CPU)"
    generator, servers = {cpus[0]}, set(cpus[1:])
    return (
        generator,
        servers,
        f"generator on CPU {cpus[0]}, servers on CPU " + ",".join(map(str, cpus[1:])),
    )


class _Progress:
    """Prints a line on stderr about once a second while a run goes."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.label = ""
        self.last: tuple[float, int] = (0.0, 0)

    def start(self, label: str) -> None:
        self.label = label
        self.last = (0.0, 0)

    def __call__(self, counters: Mapping) -> None:
        if not self.enabled:
            return
        elapsed, answered = counters["elapsed_s"], counters["answered"]
        then, before = self.last
        rate = (answered - before) / (elapsed - then) if elapsed > then else 0.0
        self.last = (elapsed, answered)
        print(
            f"  {self.label}: {elapsed:4.0f} s  sent {counters['sent']}  answered {answered}"
            f"  ({rate:,.0f} qps)  lost {counters['lost']}",
            file=sys.stderr,
            flush=True,
        )


def _run(args: argparse.Namespace) -> int:
    _check_args(args)
    from fastdns.bench.load import LoadSettings
    from fastdns.bench.queries import encode_queries, write_query_file
    from fastdns.bench.report import (
        ServerRuns,
        format_comparison,
        format_runs,
        json_report,
    )
    from fastdns.bench.servers import running_server

    target = _split_address(args.server) if args.server else None
    specs, source, warnings = _load_queries(args)
    for warning in warnings:
        print(f"fastdns bench: {warning}", file=sys.stderr)
    wires = encode_queries(specs, args.edns, args.ecs or (), args.dnssec_ok)
    loads = {"": wires}  # query set label -> wires; one unlabelled set unless --versus-queries
    if args.versus_queries:
        from fastdns.bench.queries import parse_query_file

        versus = encode_queries(
            parse_query_file(args.versus_queries), args.edns, args.ecs or (), args.dnssec_ok
        )
        first = Path(args.queries).name if args.queries else "mix"
        loads = {first: wires, Path(args.versus_queries).name: versus}
    rounds = args.rounds or (3 if args.compare or args.versus_queries else 1)
    settings = LoadSettings(
        duration=args.duration,
        rate=args.rate,
        max_outstanding=args.outstanding,
        timeout=args.timeout,
        sockets=args.sockets,
    )
    generator_cpus, server_cpus, pinning = _cpu_split(args.pin)
    kinds = ["fastdns", *dict.fromkeys(k for k in args.compare or () if k != "fastdns")]
    progress = _Progress(not args.quiet)
    old_affinity = os.sched_getaffinity(0)

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fastdns-bench-")))
        query_file = workdir / "queries.txt"
        write_query_file(specs, query_file)
        servers: list[ServerRuns] = []
        processes: dict[str, ServerProcess] = {}
        targets: dict[str, tuple[str, int]] = {}
        if target is not None:
            address = f"{target[0]}:{target[1]}"
            servers.append(ServerRuns(address, "a running server", address))
            targets[address] = target
        else:
            for kind in kinds:
                if not args.quiet:
                    print(f"fastdns bench: starting {kind}", file=sys.stderr)
                process = stack.enter_context(
                    running_server(
                        kind,
                        args.zone_dir,
                        workers=args.workers,
                        cpus=server_cpus,
                        config=args.fastdns_config if kind == "fastdns" else None,
                    )
                )
                what = process.label
                if process.threads_moved:
                    # Said aloud: the server had chosen other CPUs (Knot pins its UDP workers).
                    moved = process.threads_moved
                    what += f", {moved} self-pinned thread(s) moved to the server CPUs"
                for label in loads:
                    name = f"{kind} {label}".strip()
                    processes[name] = process
                    targets[name] = (process.host, process.port)
                    servers.append(ServerRuns(name, what, process.address))
        if generator_cpus:
            os.sched_setaffinity(0, generator_cpus)
            stack.callback(os.sched_setaffinity, 0, old_affinity)
        for round_number in range(1, rounds + 1):
            for server in servers:
                host, port = targets[server.name]
                progress.start(f"{server.name} round {round_number}/{rounds}")
                server.runs.append(
                    _measure(
                        round_number,
                        host,
                        port,
                        _wires_of(server.name, loads),
                        settings,
                        processes.get(server.name),
                        progress,
                        query_file if args.dnsperf else None,
                        args,
                    )
                )

    heading = _heading(args, source, len(specs), rounds, pinning)
    if args.plot:
        from fastdns.bench.plot import latency_plot

        Path(args.plot).write_bytes(
            latency_plot({s.name: s.histogram() for s in servers}, "latency by percentile")
        )
    report = json_report(servers, _settings(args, source, len(specs), rounds, pinning))
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    elif len(servers) > 1:
        print(format_comparison(servers, heading))
    else:
        print(format_runs(servers[0], heading))
    if args.plot and not args.json:
        print(f"latency plot: {args.plot}")
    return 0


def _wires_of(name: str, loads: dict[str, list[bytes]]) -> list[bytes]:
    """The query set a ``ServerRuns`` entry is loaded with (named after it)."""
    for label, wires in loads.items():
        if label and name.endswith(" " + label):
            return wires
    return next(iter(loads.values()))


def _measure(
    round_number: int,
    host: str,
    port: int,
    wires: list[bytes],
    settings: LoadSettings,
    process: ServerProcess | None,
    progress: _Progress,
    query_file: Path | None,
    args: argparse.Namespace,
) -> Measurement:
    """One round against one server: the generator, then dnsperf when ``query_file`` is given;
    server CPU per answered query around each when the bench started the server."""
    from fastdns.bench.dnsperf import run_dnsperf
    from fastdns.bench.load import run_load
    from fastdns.bench.report import Measurement

    measurement = Measurement(round_number)
    before = process.cpu_seconds() if process else None
    measurement.load = run_load(host, port, wires, settings, progress)
    if process and measurement.load.answered:
        used = process.cpu_seconds() - before
        measurement.cpu_us_per_query = used * 1e6 / measurement.load.answered
    if query_file is not None:
        before = process.cpu_seconds() if process else None
        result = run_dnsperf(
            host,
            port,
            query_file,
            duration=settings.duration,
            rate=settings.rate,
            max_outstanding=settings.max_outstanding or (None if settings.rate else 200),
            timeout=settings.timeout,
            edns=args.edns is not None,
        )
        measurement.dnsperf = result
        if process and result.completed:
            used = process.cpu_seconds() - before
            measurement.dnsperf_cpu_us_per_query = used * 1e6 / result.completed
    return measurement


def _load_text(args: argparse.Namespace) -> str:
    if args.rate:
        return f"{args.rate:,.0f} qps offered"
    return f"as fast as possible, at most {args.outstanding or 200} outstanding"


def _heading(args, source: str, count: int, rounds: int, pinning: str) -> str:
    rounds_text = f"{rounds} rounds of " if rounds > 1 else ""
    edns = f", EDNS {args.edns}" if args.edns else ""
    if args.dnssec_ok:
        edns += ", DO"
    return (
        f"fastdns bench: {rounds_text}{args.duration:g} s, {_load_text(args)}, "
        f"{args.sockets} sockets{edns}; {count} queries ({source}); {pinning}"
        + ("; medians" if args.compare or args.versus_queries else "")
    )


def _settings(args, source: str, count: int, rounds: int, pinning: str) -> dict:
    return {
        "duration_s": args.duration,
        "rate_qps": args.rate,
        "max_outstanding": args.outstanding,
        "timeout_s": args.timeout,
        "sockets": args.sockets,
        "edns_payload": args.edns,
        "ecs": args.ecs,
        "dnssec_ok": args.dnssec_ok,
        "versus_queries": args.versus_queries,
        "rounds": rounds,
        "workers": args.workers,
        "queries": count,
        "query_source": source,
        "pinning": pinning,
        "dnsperf": args.dnsperf,
    }
