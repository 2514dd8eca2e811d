"""The command line: ``fastdns serve``, ``check-zone``, ``zone`` and ``bench``.

Exit status: 0 on success (``serve``: stopped by SIGTERM/SIGINT), 1 when a zone has errors
(``check-zone``) or the server cannot start (no listen address could be bound, unreadable zone
directory), 2 for bad flags or a bad config file. Errors go to stderr, one per line; zone errors
are ``file:line: reason``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from fastdns import __version__

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastdns", description="An authoritative DNS server with a compiled hot path."
    )
    parser.add_argument("--version", action="version", version=f"fastdns {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve a directory of zone files",
        description=(
            "Serve every DIR/<origin>.zone file as zone <origin> over UDP and TCP. Flags override "
            "the config file. SIGHUP reloads the zone directory; SIGTERM or SIGINT drains the "
            "workers and stops."
        ),
    )
    # Values are kept as strings here and validated in fastdns.config, so a flag and the same
    # setting in the config file get the same checks and messages.
    serve.add_argument("--zone-dir", metavar="DIR", help="folder of <origin>.zone files")
    serve.add_argument(
        "--listen",
        action="append",
        metavar="ADDR:PORT",
        help="address to serve on, over UDP and TCP; repeatable; IPv6 as [::1]:5353 "
        "(default 127.0.0.1:5353)",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML config file")
    serve.add_argument(
        "--udp-max-payload",
        metavar="BYTES",
        help="largest UDP response to an EDNS query (default 1232)",
    )
    serve.add_argument(
        "--tcp-idle-timeout",
        metavar="SECONDS",
        help="close TCP connections idle this long (default 10)",
    )
    serve.add_argument(
        "--tcp-max-connections",
        metavar="N",
        help="most TCP connections open at once, per worker (default 1000)",
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        help="worker processes answering queries, each with its own sockets (default: one per "
        "CPU); 0 answers in the supervisor process itself",
    )
    serve.add_argument(
        "--udp-receiver",
        choices=("thread", "loop"),  # fastdns.config.UDP_RECEIVERS
        help="how a worker serves UDP: a native receive thread per socket (thread, the "
        "default) or the event loop (loop)",
    )
    serve.add_argument(
        "--metrics-listen",
        metavar="ADDR:PORT",
        help="serve Prometheus metrics over HTTP at http://ADDR:PORT/metrics (default: off)",
    )
    serve.add_argument(
        "--query-log",
        metavar="FILE",
        help="append one line per query to FILE in Route 53's query-log format (default: off)",
    )
    serve.add_argument(
        "--state",
        metavar="FILE",
        help="SQLite database of hosted zones and changes, created if missing (default fastdns.db)",
    )
    serve.add_argument(
        "--api-listen",
        metavar="ADDR:PORT",
        help="serve the Route 53 API here when the config file names access_keys "
        "(default 127.0.0.1:8053)",
    )
    serve.add_argument(
        "--drain-timeout",
        metavar="SECONDS",
        help="on SIGTERM, how long open TCP connections may take to receive their answers "
        "(default 2)",
    )
    serve.add_argument(
        "--log-level",
        metavar="LEVEL",
        help="debug, info, warning, error or critical (default info)",
    )
    serve.set_defaults(func=_serve)

    check = commands.add_parser(
        "check-zone",
        help="check a zone file",
        description="Load and validate a zone file; print its errors as file:line: reason.",
    )
    check.add_argument("file", metavar="FILE", help="zone file")
    check.add_argument(
        "--origin", metavar="NAME", help="zone origin (default: the file name without .zone)"
    )
    check.set_defaults(func=_check_zone)

    from fastdns.zonecommands import add_parser as add_zone_parser

    add_zone_parser(commands)  # `fastdns zone ...`: dispatched through its func default

    from fastdns.bench.cli import add_parser as add_bench_parser

    add_bench_parser(commands)  # `fastdns bench`: dispatched through its func default
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the process exit status."""
    # dnspython's dns.dnssecalgs.dsa names cryptography's DSA classes when dns.dnssec is
    # imported, and recent cryptography releases warn that DSA is deprecated: noise on every
    # start for operators, about an algorithm fastdns never uses (it signs with 13 and 15).
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    return args.func(args)


def _serve(args: argparse.Namespace) -> int:
    from fastdns.config import ConfigError, load_config

    overrides = {
        "zone_dir": args.zone_dir,
        "listen": args.listen,
        "udp_max_payload": args.udp_max_payload,
        "tcp_idle_timeout": args.tcp_idle_timeout,
        "tcp_max_connections": args.tcp_max_connections,
        "udp_receiver": args.udp_receiver,
        "log_level": args.log_level,
        "workers": args.workers,
        "drain_timeout": args.drain_timeout,
        "metrics_listen": args.metrics_listen,
        "query_log": args.query_log,
        "state": args.state,
        "api_listen": args.api_listen,
    }
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"fastdns serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True
    )

    # The zone files load (natively, mostly without the GIL) while the control plane imports.
    from fastdns.server import ZoneLoadAhead

    zone_load = ZoneLoadAhead(config.zone_dir) if config.zone_dir.is_dir() else None
    from fastdns.supervisor import serve

    return serve(config, zone_load)


def _check_zone(args: argparse.Namespace) -> int:
    from fastdns.server import zone_summary
    from fastdns.zonedir import check_zone_file
    from fastdns.zonefile import parse_zone_file

    path = Path(args.file)
    errors = check_zone_file(path, args.origin)
    if errors:
        for error in errors:
            print(error, file=sys.stderr)
        return 1
    zone = parse_zone_file(path, args.origin)  # known good: parsed again only for the summary
    record_sets, serial = zone_summary(zone)
    print(f"{path}: OK: zone {zone.origin}, {record_sets} record sets, serial {serial}")
    return 0
