"""fastdns as a secondary of a large zone (issue 8): the first AXFR, and how long a one-record
change on the primary takes to be served through NOTIFY and IXFR; Knot DNS as a second secondary
in the same run.

    python bench/secondary_latency.py                              # 1M A records, 6 changes
    python bench/secondary_latency.py --records 100000 --changes 3 --idle 5
    python bench/secondary_latency.py --records 100000 --notify     # without Knot's 1 s delay
    python bench/secondary_latency.py --records 20000 --no-knot-secondary --keep-log

One run sets up, each on a free loopback port with its own directory:

- the primary: knotd serving ``a.bench.test.`` from bench/zone_scan_speed.py's zone file of
  ``--records`` A records (``host<i>``), with a journal so that it can answer IXFR
  (``journal-content: changes``, ``zonefile-sync: -1``), accepting RFC 2136 UPDATE and transfers
  from 127.0.0.1 (no TSIG) and NOTIFYing both secondaries;
- secondary 1: ``fastdns serve`` (``--workers``, 2 by default) with an empty zone directory and
  ``[secondary.zones."a.bench.test."]`` naming the primary;
- secondary 2 (unless ``--no-knot-secondary``): a second knotd (2 UDP workers) with the zone as
  a secondary of the primary, nothing kept on disk.

It measures:

- the initial transfer: from each secondary's process start (``/proc/<pid>/stat``) until it
  answers the zone's SOA with the primary's serial (polled every 10 ms over UDP); the secondaries
  start one after the other, fastdns first; then RSS and PSS summed over each secondary's process
  tree (bench/zone_load_speed.py's ``memory``), again after the last change;
- ``--changes`` changes: each an RFC 2136 UPDATE (dnspython over TCP) to the primary replacing
  one A record (a random existing name, ``--seed``) with a new address from 198.18.0.0/15; from
  the UPDATE's response until each secondary answers the new address (every 10 ms, dnspython
  over UDP, at most ``--timeout`` seconds); the primary's serial before and after. Nothing but
  a NOTIFY starts the refresh (the SOA's REFRESH is two hours). Knot sends its NOTIFY about a
  second after an UPDATE (src/knot/nameserver/update.c: ``time(NULL) + 1``), so each
  figure includes that second; with ``--notify`` the script NOTIFYs the secondaries itself
  (from 127.0.0.1, the primary's address) as soon as the UPDATE is answered, which times the
  secondaries alone. ``--idle`` seconds pass before each change.

From fastdns's log (info level) it also prints, per change, when the NOTIFY arrived, when the
transfer ended ("serial A -> B", with its kind when logged) and when the zone was served
("serial B (snapshot N)"), each from the UPDATE's response; lines it does not find are left
out. ``--keep-log`` prints the tail of fastdns's log.

Exits 1 when a secondary did not serve a change (or the first transfer) in time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
from zone_load_speed import memory, mib, process_tree, started_at
from zone_scan_speed import ORIGIN, write_a_zone

from fastdns.bench.servers import _child_setup, find_knotd, free_port, knot_server_lines

ZONE = f"a.{ORIGIN}"  # write_a_zone's origin
POLL = 0.01  # seconds between polls of a secondary
STOP_DEADLINE = 30.0


@dataclass
class Server:
    """A server this script started: its name in the table, port, process and log."""

    label: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    transfer: float | None = None  # seconds from process start to the primary's serial
    memory: dict[str, dict[str, int]] = field(default_factory=dict)  # when -> rss, pss
    changes: list[float | None] = field(default_factory=list)  # seconds, None: not in time

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log written)"

    def note_memory(self, when: str) -> None:
        per_process = [memory(pid) for pid in process_tree(self.proc.pid)]
        self.memory[when] = {k: sum(m[k] for m in per_process) for k in ("rss", "pss")}


# --- configurations ------------------------------------------------------------------------------


def knot_primary_conf(rundir: Path, port: int, zone_file: Path, secondaries: dict[str, int]) -> str:
    """The primary: the zone from ``zone_file``, its changes kept in the journal (for IXFR),
    UPDATE and transfers from 127.0.0.1, NOTIFY to ``secondaries`` (id -> port)."""
    lines = knot_server_lines(rundir, port=port, udp_workers=1, tcp_workers=2)
    lines.append("remote:")
    for name, secondary_port in secondaries.items():
        lines += [f"  - id: {name}", f"    address: 127.0.0.1@{secondary_port}"]
    lines += [
        "acl:",
        "  - id: local",
        "    address: 127.0.0.1",
        "    action: [transfer, update]",
        "template:",
        "  - id: default",
        f'    storage: "{rundir}"',
        "    zonefile-load: difference",
        "    zonefile-sync: -1",
        "    journal-content: changes",
        "    semantic-checks: off",
        "zone:",
        f"  - domain: {ZONE}",
        f'    file: "{zone_file}"',
        f"    notify: [{', '.join(secondaries)}]",
        "    acl: local",
    ]
    return "\n".join(lines) + "\n"


def knot_secondary_conf(rundir: Path, port: int, primary_port: int) -> str:
    """A secondary of the primary: NOTIFY accepted from 127.0.0.1, nothing written to disk."""
    lines = knot_server_lines(rundir, port=port, udp_workers=2, tcp_workers=2)
    lines += [
        "remote:",
        "  - id: primary",
        f"    address: 127.0.0.1@{primary_port}",
        "acl:",
        "  - id: notify_from_primary",
        "    address: 127.0.0.1",
        "    action: notify",
        "template:",
        "  - id: default",
        f'    storage: "{rundir}"',
        "    zonefile-load: none",
        "    zonefile-sync: -1",
        "    journal-content: none",
        "    semantic-checks: off",
        "zone:",
        f"  - domain: {ZONE}",
        "    master: primary",
        "    acl: notify_from_primary",
    ]
    return "\n".join(lines) + "\n"


def fastdns_conf(workdir: Path, port: int, primary_port: int, workers: int) -> Path:
    """``fastdns serve``'s config: no zone files, the zone as a secondary of the primary."""
    (workdir / "zones").mkdir()
    config = workdir / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{workdir / "zones"}"\nstate = "{workdir / "state.db"}"\n'
        f'listen = ["127.0.0.1:{port}"]\nworkers = {workers}\nlog_level = "info"\n'
        f'[secondary.zones."{ZONE}"]\nprimaries = ["127.0.0.1:{primary_port}"]\n'
    )
    return config


# --- processes and queries -----------------------------------------------------------------------


def start(label: str, argv: list[str], rundir: Path, port: int) -> Server:
    log_path = rundir / "stderr.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=rundir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, preexec_fn=_child_setup(None),  # dies with this script
        )  # fmt: skip
    return Server(label, port, proc, log_path)


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()


def ask(port: int, name: str, rdtype: dns.rdatatype.RdataType):
    """The first record of the answer to ``name``/``rdtype`` over UDP, or None.

    The socket is connected, so a port nobody listens on yet fails at once (ECONNREFUSED)
    instead of costing the whole timeout: a start is timed to the poll, not to the timeout."""
    query = dns.message.make_query(name, rdtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        try:
            response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5, sock=sock)
        except (OSError, dns.exception.DNSException):
            return None
    for rrset in response.answer:
        if rrset.rdtype == rdtype:
            return rrset[0]
    return None


def soa_serial(port: int) -> int | None:
    soa = ask(port, ZONE, dns.rdatatype.SOA)
    return None if soa is None else soa.serial


def wait_serial(server: Server, serial: int, deadline: float) -> float:
    """Seconds from ``server``'s process start until it answers ``serial``."""
    while soa_serial(server.port) != serial:
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.label} does not serve {ZONE} serial {serial} "
                f"(exit {server.proc.poll()}, serves {soa_serial(server.port)})"
            )
        time.sleep(POLL)
    return time.clock_gettime(time.CLOCK_BOOTTIME) - started_at(server.proc.pid)


def update_a(port: int, name: str, address: str) -> None:
    """Replace ``name``'s A record at the primary (RFC 2136, unsigned, over TCP)."""
    update = dns.update.UpdateMessage(ZONE)
    update.replace(name, 3600, "A", address)
    response = dns.query.tcp(update, "127.0.0.1", port=port, timeout=60)
    if response.rcode() != dns.rcode.NOERROR:
        raise RuntimeError(f"UPDATE answered {dns.rcode.to_text(response.rcode())}")


def send_notify(servers: list[Server]) -> None:
    """A NOTIFY for the zone (RFC 1996) to each server, from 127.0.0.1 as the primary's is; the
    answers are not waited for."""
    message = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    message.flags = dns.flags.AA  # before the opcode, which is kept in the same field
    message.set_opcode(dns.opcode.NOTIFY)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for server in servers:
            sock.sendto(message.to_wire(), ("127.0.0.1", server.port))


def wait_address(
    servers: list[Server], name: str, address: str, since: float, timeout: float
) -> dict[str, float | None]:
    """Per server: seconds from ``since`` until it answers ``address`` for ``name`` (None: not
    within ``timeout``). The servers are asked in turn, every POLL seconds."""
    took: dict[str, float | None] = {}
    waiting = list(servers)
    while waiting:
        for server in list(waiting):
            a = ask(server.port, name, dns.rdatatype.A)
            if a is not None and a.to_text() == address:
                took[server.label] = time.monotonic() - since
                waiting.remove(server)
        if time.monotonic() - since > timeout:
            for server in waiting:
                took[server.label] = None
            break
        time.sleep(POLL)
    return took


# --- fastdns's log -------------------------------------------------------------------------------

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_times(text: str, pattern: str) -> list[tuple[float, re.Match]]:
    """(wall-clock time, match) of each fastdns log line matching ``pattern``."""
    found = []
    for line in text.splitlines():
        stamp = LOG_TIME.match(line)
        match = re.search(pattern, line)
        if stamp and match:
            when = datetime.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
            found.append((when.timestamp(), match))
    return found


def fastdns_stages(text: str, changes: list[dict]) -> list[str]:
    """Per change, from the UPDATE's response: NOTIFY received, transfer ended, served."""
    zone = re.escape(ZONE)
    notifies = [t for t, _ in log_times(text, rf"NOTIFY for {zone} from .*: refreshing")]
    transfers = {
        int(m.group(1)): (t, m.group(2))
        for t, m in log_times(
            text, rf"secondary zone {zone}: serial \S+ -> (\d+) from \S+(?: \((\w+))?"
        )
    }
    served = {
        int(m.group(1)): t
        for t, m in log_times(text, rf"secondary zone {zone}: serial (\d+) \(snapshot")
    }
    lines = []
    for n, change in enumerate(changes, 1):
        since, serial = change["wall"], change["serial_after"]
        parts = []
        # The NOTIFY that started the transfer: the last one before it ended.
        until = transfers[serial][0] if serial in transfers else float("inf")
        notify = max((t for t in notifies if since - 0.1 <= t <= until), default=None)
        if notify is not None:
            parts.append(f"NOTIFY +{(notify - since) * 1000:.0f}")
        if serial in transfers:
            ended, kind = transfers[serial]
            parts.append(f"{kind or 'transfer'} ended +{(ended - since) * 1000:.0f}")
        if serial in served:
            parts.append(f"served +{(served[serial] - since) * 1000:.0f}")
            if notify is not None:
                parts.append(f"NOTIFY to served {(served[serial] - notify) * 1000:.0f}")
        if parts:
            lines.append(f"  change {n} (serial {serial}): {', '.join(parts)} ms")
    return lines


# --- the run -------------------------------------------------------------------------------------


def ms(value: float | None, unit: str = "") -> str:
    return "timeout" if value is None else f"{value * 1000:.0f}{unit}"


def report(args, primary_label: str, secondaries: list[Server], changes: list[dict]) -> None:
    print(
        f"\n{ZONE}: {args.records:,} A records, primary {primary_label}; "
        f"{len(changes)} changes, {args.idle:g} s idle before each"
    )
    width = 30
    print(f"{'':36}" + "".join(f" {s.label:>{width}}" for s in secondaries))

    def row(label: str, cell) -> None:
        print(f"{label:36}" + "".join(f" {cell(s):>{width}}" for s in secondaries))

    row("first AXFR: start to serial", lambda s: f"{s.transfer:.2f} s" if s.transfer else "-")
    for when in ("after AXFR", "after the changes", f"{args.settle:g} s later"):

        def mem(s, when=when) -> str:
            m = s.memory.get(when)
            return f"{mib(m['pss']).strip()} / {mib(m['rss']).strip()}" if m else "-"

        row(f"PSS / RSS {when}", mem)

    def median(s) -> str:
        done = [v for v in s.changes if v is not None]
        if not done:
            return "-"
        return f"{statistics.median(done) * 1000:.0f} ms (max {max(done) * 1000:.0f})"

    row("change served: median (max)", median)
    row("each change (ms)", lambda s: ", ".join(ms(v) for v in s.changes) or "-")


def run(args, work: Path) -> int:
    knotd = find_knotd()
    version = subprocess.run([knotd, "--version"], capture_output=True, text=True).stdout
    knot_label = f"Knot {version.split()[-1]}" if version.strip() else "Knot"

    primary_dir, fastdns_dir, knot_dir = work / "primary", work / "fastdns", work / "knot"
    for directory in (primary_dir, fastdns_dir, knot_dir):
        (directory / "db").mkdir(parents=True)
    zone_file = primary_dir / f"{ZONE}zone"
    started = time.monotonic()
    count = write_a_zone(zone_file, args.records)
    print(
        f"{zone_file.name}: {count:,} records, {zone_file.stat().st_size / 1e6:.1f} MB, "
        f"written in {time.monotonic() - started:.1f} s"
    )
    primary_port, fastdns_port, knot_port = (free_port("127.0.0.1") for _ in range(3))
    notify = {"fastdns": fastdns_port}
    if not args.no_knot_secondary:
        notify["knot2"] = knot_port

    servers: list[Server] = []
    secondaries: list[Server] = []
    changes: list[dict] = []
    failed = False
    try:
        conf = primary_dir / "knot.conf"
        conf.write_text(knot_primary_conf(primary_dir, primary_port, zone_file, notify))
        argv = [knotd, "-c", str(conf)]
        primary = start(f"{knot_label} primary", argv, primary_dir, primary_port)
        servers.append(primary)
        deadline = time.monotonic() + args.deadline
        while (serial := soa_serial(primary_port)) is None:
            if primary.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the primary does not serve {ZONE}:\n{primary.log()}")
            time.sleep(POLL)
        ready = time.clock_gettime(time.CLOCK_BOOTTIME) - started_at(primary.proc.pid)
        print(f"primary ({knot_label}): serial {serial} served {ready:.2f} s after its start")

        config = fastdns_conf(fastdns_dir, fastdns_port, primary_port, args.workers)
        argv = [sys.executable, "-m", "fastdns", "serve", "--config", str(config)]
        plural = "worker" if args.workers == 1 else "workers"
        candidates = [(f"fastdns ({args.workers} {plural})", argv, fastdns_dir, fastdns_port)]
        if not args.no_knot_secondary:
            conf = knot_dir / "knot.conf"
            conf.write_text(knot_secondary_conf(knot_dir, knot_port, primary_port))
            argv = [knotd, "-c", str(conf)]
            candidates.append((f"{knot_label} (2 UDP workers)", argv, knot_dir, knot_port))
        for label, argv, rundir, port in candidates:
            server = start(label, argv, rundir, port)
            servers.append(server)
            secondaries.append(server)
            server.transfer = wait_serial(server, serial, time.monotonic() + args.deadline)
            server.note_memory("after AXFR")
            print(f"{label}: serial {serial} served {server.transfer:.2f} s after its start")

        rng = random.Random(args.seed)
        waiting = list(secondaries)
        for n in range(1, args.changes + 1):
            if not waiting:
                break
            time.sleep(args.idle)
            index = rng.randrange(args.records)
            name = f"host{index}.{ZONE}"
            address = f"198.{18 + (n >> 16 & 1)}.{n >> 8 & 255}.{n & 255}"  # RFC 2544's range
            before = soa_serial(primary_port)
            update_a(primary_port, name, address)
            answered, wall = time.monotonic(), time.time()
            if args.notify:
                send_notify(waiting)
            after = soa_serial(primary_port)
            took = wait_address(waiting, name, address, answered, args.timeout)
            changes.append({"serial_after": after, "wall": wall})
            for server in waiting:
                server.changes.append(took[server.label])
            print(
                f"change {n}: {name} A {address}, primary serial {before} -> {after}; served "
                + ", ".join(f"{s.label} {ms(took[s.label], ' ms')}" for s in waiting)
            )
            for server in [s for s in waiting if took[s.label] is None]:
                print(f"  {server.label}: not served within {args.timeout:g} s; not asked again")
                waiting.remove(server)
                failed = True
        for server in secondaries:
            server.note_memory("after the changes")
        if args.settle:
            # fastdns gives its compiler's scratch memory back a minute after the last
            # snapshot (fastdns.supervisor.SCRATCH_HOLD): the memory a quiet server keeps.
            time.sleep(args.settle)
            for server in secondaries:
                server.note_memory(f"{args.settle:g} s later")
        final = soa_serial(primary_port)
        print(
            f"serials at the end: primary {final}, "
            + ", ".join(f"{s.label} {soa_serial(s.port)}" for s in secondaries)
        )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        failed = True
    finally:
        for server in reversed(servers):
            stop(server)

    fastdns = next((s for s in secondaries if s.label.startswith("fastdns")), None)
    if fastdns is not None:
        text = fastdns.log()
        stages = fastdns_stages(text, changes)
        if stages:
            print("\nfastdns log, from the UPDATE's response:")
            print("\n".join(stages))
        if args.keep_log or failed:
            print("\nfastdns log (last 40 lines):")
            print("\n".join(text.splitlines()[-40:]))
    if secondaries:
        report(args, knot_label, secondaries, changes)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="fastdns workers (default 2)")
    parser.add_argument(
        "--idle", type=float, default=0.0, metavar="SECONDS", help="pause before each change"
    )
    parser.add_argument(
        "--no-knot-secondary",
        action="store_true",
        help="fastdns as the only secondary",
    )
    parser.add_argument("--seed", type=int, default=8, help="which names change")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds a change may take to be served"
    )
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="seconds a first load or AXFR may take"
    )
    parser.add_argument(
        "--notify",
        action="store_true",
        help="NOTIFY the secondaries from this script right after each UPDATE's response "
        "(Knot's own NOTIFY goes out about 1 s after an UPDATE)",
    )
    parser.add_argument("--keep-log", action="store_true", help="print fastdns's log tail")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="after the changes, wait this long and measure memory again (65: past fastdns's "
        "scratch hold)",
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # A SIGTERM (timeout(1)) stops the servers and removes the directory on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="fastdns-secondary-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
