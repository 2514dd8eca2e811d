"""Servers a benchmark starts itself: fastdns, Knot DNS and NSD on free loopback ports.

``running_server(kind, zone_dir, workers=..., cpus=...)`` serves every ``<origin>.zone`` file of
``zone_dir`` from ``kind`` ("fastdns", "knot" or "nsd") on ``127.0.0.1`` and a free port, waits
until every zone answers SOA, yields a ``ServerProcess`` and stops the server on exit. ``workers``
is fastdns's ``--workers``, Knot's ``udp-workers`` and NSD's ``server-count``; ``cpus`` pins the
server (and every process and thread it starts) to those CPUs, and once it serves puts back any
thread that pinned itself elsewhere (``hold_to_cpus``). ``ServerProcess.cpu_seconds()``
is the user + system CPU time of the server's whole process tree so far, read from /proc.

Knot and NSD read the zone files in place and never write them: no journal, no database, no
zone file sync, no DNSSEC signing. They run as the current user (no privilege drop).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype

__all__ = [
    "SERVER_KINDS",
    "ServerProcess",
    "ServerStartError",
    "ServerUnavailable",
    "answers_soa",
    "fastdns_supports_workers",
    "find_knotd",
    "free_port",
    "hold_to_cpus",
    "knot_conf",
    "knot_server_lines",
    "process_tree_cpu",
    "running_server",
]

SERVER_KINDS = ("fastdns", "knot", "nsd")
STARTUP_DEADLINE = 120.0  # a large zone takes a while to compile
STOP_DEADLINE = 10.0
# Seconds between readiness probes: start-up times are measured to this resolution
# (bench/zone_load_speed.py); a probe round costs the server one query per zone.
PROBE_INTERVAL = 0.01
PR_SET_PDEATHSIG = 1  # prctl(2)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerUnavailable(RuntimeError):
    """The server software is not installed; the message says how to install it."""


class ServerStartError(RuntimeError):
    """The server did not start or did not load a zone; the message includes its log."""


@dataclass
class ServerProcess:
    """A running server: what it is, where it listens, its process and log."""

    kind: str
    label: str  # e.g. "knot 3.2.6, 1 UDP worker"
    host: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    # Threads that had set their own CPU affinity and were put back on the server's CPUs.
    threads_moved: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's process tree so far."""
        return process_tree_cpu(self.proc.pid)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log written)"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds incl. reaped children) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2 :].split()
    # After the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17) of proc(5).
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return int(fields[1]), ticks / CLOCK_TICKS


def _process_tree(pid: int) -> dict[int, float]:
    """pid -> CPU seconds incl. reaped children, for ``pid`` and all its live descendants."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for child, (parent, _cpu) in stats.items():
        children.setdefault(parent, []).append(child)
    tree, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            tree[current] = stats[current][1]
        todo.extend(children.get(current, ()))
    return tree


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and all its descendants, from /proc.

    Children that exited and were reaped are still counted, in their parent's cutime/cstime.
    """
    return sum(_process_tree(pid).values())


def hold_to_cpus(pid: int, cpus: set[int]) -> int:
    """Put every thread of ``pid``'s process tree back on ``cpus``; the number that had left.

    A server may set its threads' affinity itself, overriding the one it inherited: Knot pins
    UDP worker *i* to CPU *i* mod the online CPUs, so with one UDP worker it answers from CPU 0,
    the load generator's CPU under ``--pin``. It does so once, when it starts its workers.
    """
    moved = 0
    for process in _process_tree(pid):
        with contextlib.suppress(OSError):  # a process or thread that just ended
            for task in os.listdir(f"/proc/{process}/task"):
                tid = int(task)
                with contextlib.suppress(OSError):
                    if os.sched_getaffinity(tid) != cpus:
                        os.sched_setaffinity(tid, cpus)
                        moved += 1
    return moved


def fastdns_supports_workers() -> bool:
    """Whether this fastdns's ``serve`` command has ``--workers``."""
    import argparse

    from fastdns.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and "serve" in action.choices:
            return "--workers" in action.choices["serve"]._option_string_actions
    return False


def zone_origins(zone_dir: Path) -> dict[str, Path]:
    """origin (no trailing dot) -> zone file, for every ``<origin>.zone`` of ``zone_dir``."""
    zones = {p.name[: -len(".zone")].rstrip("."): p.resolve() for p in zone_dir.glob("*.zone")}
    if not zones:
        raise ServerStartError(f"no <origin>.zone files in {zone_dir}")
    return dict(sorted(zones.items()))


def _binary(names: tuple[str, ...], hint: str) -> str:
    for name in names:
        found = shutil.which(name) or next(
            (d + name for d in ("/usr/sbin/", "/sbin/") if os.access(d + name, os.X_OK)), None
        )
        if found:
            return found
    raise ServerUnavailable(hint)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _fastdns_command(
    zone_dir: Path, rundir: Path, host: str, port: int, workers: int, config: Path | None = None
) -> tuple[list[str], str]:
    argv = [sys.executable, "-m", "fastdns", "serve", "--zone-dir", str(zone_dir)]
    if config is not None:
        argv += ["--config", str(Path(config).resolve())]
    argv += ["--listen", f"{host}:{port}", "--log-level", "warning"]
    if fastdns_supports_workers():
        argv += ["--workers", str(workers)]
        label = f"fastdns, {_plural(workers, 'worker')}" if workers else "fastdns, no workers"
    elif workers != 1:
        raise ServerUnavailable(
            "this fastdns's `serve` has no --workers option; run with --workers 1"
        )
    else:
        label = "fastdns, 1 process (serve has no --workers)"
    return argv, label


def find_knotd() -> str:
    """Path of knotd; ``ServerUnavailable`` (saying which package to install) if it is missing."""
    return _binary(
        ("knotd",), "Knot DNS (knotd) is not installed: install the Debian package `knot`"
    )


def knot_server_lines(
    rundir: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    udp_workers: int = 1,
    tcp_workers: int = 1,
    log_level: str = "info",
    server_extra: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """The server, log, database and control sections of a knot.conf whose files (log,
    journal and timers database, control socket) live in ``rundir``, listening on
    ``host@port``; ``server_extra``: more lines of the server section. What every Knot this
    project starts (benches, differential and transfer tests) shares."""
    return [
        "server:",
        f'    rundir: "{rundir}"',
        f"    listen: {host}@{port}",
        f"    udp-workers: {udp_workers}",
        f"    tcp-workers: {tcp_workers}",
        "    background-workers: 1",
        *server_extra,
        "log:",
        f'  - target: "{rundir / "knotd.log"}"',
        f"    any: {log_level}",
        "database:",
        f'    storage: "{rundir / "db"}"',
        "control:",
        f'    listen: "{rundir / "knot.sock"}"',
    ]


def knot_conf(
    zones: dict[str, Path],
    rundir: Path,
    *,
    host: str,
    port: int,
    udp_workers: int = 1,
    tcp_workers: int = 1,
    udp_max_payload: int | None = None,
    semantic_checks: bool = False,
    log_level: str = "warning",
) -> str:
    """A knot.conf serving ``zones`` (origin -> file) read-only from their files, with no journal,
    no signing and no NSID/identity/version answers, so its answers depend on the zones alone.
    Shared by ``fastdns bench`` and the differential tests."""
    extra = ['    identity: ""', '    version: ""', '    nsid: ""']
    if udp_max_payload is not None:
        extra.append(f"    udp-max-payload: {udp_max_payload}")
    lines = knot_server_lines(
        rundir,
        host=host,
        port=port,
        udp_workers=udp_workers,
        tcp_workers=tcp_workers,
        log_level=log_level,
        server_extra=extra,
    )
    lines += [
        "",
        "template:",
        "  - id: default",
        f'    storage: "{rundir}"',
        "    journal-content: none",
        "    zonefile-load: whole",
        "    zonefile-sync: -1",
        f"    semantic-checks: {'on' if semantic_checks else 'off'}",
        "    dnssec-signing: off",
        "",
        "zone:",
    ]
    for origin, path in zones.items():
        lines += [f'  - domain: "{origin}."', f'    file: "{path}"']
    return "\n".join(lines) + "\n"


def _knot_command(
    zone_dir: Path, rundir: Path, host: str, port: int, workers: int
) -> tuple[list[str], str]:
    knotd = find_knotd()
    (rundir / "db").mkdir(exist_ok=True)
    conf = rundir / "knot.conf"
    conf.write_text(
        knot_conf(zone_origins(zone_dir), rundir, host=host, port=port, udp_workers=workers)
    )
    version = _version([knotd, "--version"])
    label = f"{f'knot {version}'.strip()}, {_plural(workers, 'UDP worker')}"
    return [knotd, "-c", str(conf)], label


def _nsd_command(
    zone_dir: Path, rundir: Path, host: str, port: int, workers: int
) -> tuple[list[str], str]:
    nsd = _binary(("nsd",), "nsd is not installed: install the Debian package `nsd`")
    lines = [
        "server:",
        f"    ip-address: {host}@{port}",
        f"    server-count: {workers}",
        '    username: ""',
        '    chroot: ""',
        f'    zonesdir: "{rundir}"',
        '    database: ""',
        f'    zonelistfile: "{rundir / "zone.list"}"',
        f'    xfrdfile: "{rundir / "xfrd.state"}"',
        f'    xfrdir: "{rundir}"',
        f'    pidfile: "{rundir / "nsd.pid"}"',
        f'    logfile: "{rundir / "nsd.log"}"',
        "    verbosity: 0",
        "    hide-version: yes",
        "    hide-identity: yes",
        "    reuseport: yes",
        "    rrl-ratelimit: 0  # NSD limits responses per client by default",
        "remote-control:",
        "    control-enable: no",
    ]
    for origin, path in zone_origins(zone_dir).items():
        lines += ["zone:", f'    name: "{origin}."', f'    zonefile: "{path}"']
    conf = rundir / "nsd.conf"
    conf.write_text("\n".join(lines) + "\n")
    version = _version([nsd, "-v"])
    label = f"{f'nsd {version}'.strip()}, {_plural(workers, 'server process')}"
    return [nsd, "-d", "-c", str(conf)], label


COMMANDS: dict[str, Callable[[Path, Path, str, int, int], tuple[list[str], str]]] = {
    "fastdns": _fastdns_command,
    "knot": _knot_command,
    "nsd": _nsd_command,
}


def _version(argv: list[str]) -> str:
    """The first version-looking word a server prints about itself ("" if none)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for word in (out.stdout + out.stderr).replace("(", " ").replace(")", " ").split():
        if word[:1].isdigit() and "." in word:
            return word
    return ""


@contextlib.contextmanager
def running_server(
    kind: str,
    zone_dir: Path | str,
    *,
    workers: int = 1,
    cpus: set[int] | None = None,
    host: str = "127.0.0.1",
    config: Path | str | None = None,
) -> Iterator[ServerProcess]:
    """Serve ``zone_dir`` from ``kind`` on ``host`` and a free port for the ``with`` block
    (fastdns with its ``config`` file, when given).

    :raises ServerUnavailable: the server is not installed.
    :raises ServerStartError: it exited or did not answer SOA for every zone in time.
    """
    if kind not in COMMANDS:
        raise ValueError(f"unknown server {kind!r}; known: {', '.join(SERVER_KINDS)}")
    zone_dir = Path(zone_dir).resolve()
    # The probes are built before the server starts: with 100,000 zones, building them is
    # seconds that would otherwise count as the server's start time.
    probes = SoaProbes(list(zone_origins(zone_dir)))
    with tempfile.TemporaryDirectory(prefix=f"fastdns-bench-{kind}-") as tmp:
        rundir = Path(tmp)
        port = free_port(host)
        if kind == "fastdns":
            argv, label = _fastdns_command(zone_dir, rundir, host, port, workers, config)
        else:
            argv, label = COMMANDS[kind](zone_dir, rundir, host, port, max(workers, 1))
        log_path = rundir / "server.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                argv,
                cwd=rundir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                preexec_fn=_child_setup(cpus),
            )
        server = ServerProcess(kind, label, host, port, proc, log_path)
        try:
            _wait_until_serving(server, probes, rundir)
            if cpus:
                server.threads_moved = hold_to_cpus(proc.pid, cpus)
            yield server
        finally:
            _stop(proc)


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
    def setup() -> None:
        # Die with the benchmark (best effort), and run on the server's CPUs: every thread and
        # process the server starts inherits the affinity.
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


def answers_soa(host: str, port: int, origin: str) -> bool:
    """True when the server at host:port answers SOA for ``origin`` over UDP (a readiness probe)."""
    query = dns.message.make_query(dns.name.from_text(origin), dns.rdatatype.SOA)
    query.flags = 0
    try:
        response = dns.query.udp(query, host, port=port, timeout=0.3)
    except (OSError, dns.exception.DNSException):
        return False
    return response.rcode() == 0 and bool(response.answer)


class SoaProbes:
    """SOA queries for many zones, sent a window at a time over one UDP socket: a round over
    100,000 zones costs about one query each, not one round trip each."""

    WINDOW = 256  # queries in flight
    WAIT = 0.2  # seconds for a window's answers

    def __init__(self, origins: list[str]) -> None:
        self.origins = origins
        self.wires = []
        for origin in origins:
            query = dns.message.make_query(dns.name.from_text(origin), dns.rdatatype.SOA)
            query.flags = 0
            query.id = 0
            self.wires.append(query.to_wire())

    def unanswered(self, host: str, port: int, pending: list[int]) -> list[int]:
        """The indexes in ``pending`` whose zone did not answer SOA with NOERROR and data.

        The socket is connected, so a port nobody listens on yet fails at once (ECONNREFUSED)
        instead of costing a wait; a window ends as soon as every query in it has a response.
        """
        left = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.connect((host, port))
            for start in range(0, len(pending), self.WINDOW):
                window = {
                    (start + k) & 0xFFFF: i
                    for k, i in enumerate(pending[start : start + self.WINDOW])
                }
                try:
                    for qid, i in window.items():
                        sock.send(qid.to_bytes(2, "big") + self.wires[i][2:])
                except ConnectionRefusedError:
                    return pending  # not listening yet
                deadline = time.monotonic() + self.WAIT
                waiting = dict(window)
                while waiting and (remaining := deadline - time.monotonic()) > 0:
                    sock.settimeout(remaining)
                    try:
                        data = sock.recv(65535)
                    except ConnectionRefusedError:
                        return pending
                    except (TimeoutError, OSError):
                        break
                    if len(data) < 12:
                        continue
                    i = waiting.pop(int.from_bytes(data[:2], "big"), None)
                    # Answered: NOERROR (low 4 bits of octet 3) and an answer (ANCOUNT, octets
                    # 6-7). Any other response (REFUSED while the zone loads) is not.
                    if i is not None and not (data[3] & 0xF == 0 and data[6:8] != b"\0\0"):
                        left.append(i)
                left.extend(waiting.values())
        return sorted(left)


def _wait_until_serving(server: ServerProcess, probes: SoaProbes, rundir: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    pending = list(range(len(probes.origins)))
    while pending:
        if server.proc.poll() is not None:
            raise ServerStartError(
                f"{server.kind} exited with status {server.proc.returncode} during startup\n"
                + _diagnostics(server, rundir)
            )
        pending = probes.unanswered(server.host, server.port, pending)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(probes.origins[i] for i in pending[:10])
            raise ServerStartError(
                f"{server.kind} did not answer SOA for {len(pending)} zones ({names}...) on "
                f"{server.address} within {STARTUP_DEADLINE:.0f} s\n" + _diagnostics(server, rundir)
            )
        time.sleep(PROBE_INTERVAL)


def _diagnostics(server: ServerProcess, rundir: Path) -> str:
    parts = [f"--- {server.kind} output ---\n{server.log()}"]
    for name in ("knotd.log", "nsd.log"):
        path = rundir / name
        if path.exists():
            parts.append(f"--- {name} ---\n{path.read_text(errors='replace')}")
    return "\n".join(parts)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: its children too
            proc.wait()
