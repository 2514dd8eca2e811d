"""Run the real fastdns server as a subprocess for a test.

``running_fastdns(zone_dir)`` starts ``python -m fastdns serve`` on a free loopback port, waits
until the supervisor logs that every worker is ready (``fastdns ready: N workers``) and the
server answers a DNS query over UDP, yields a ``FastdnsHandle`` and, on exit, stops it with
SIGTERM and checks it exited with status 0. Startup problems raise ``FastdnsStartError`` with the
server's stderr, so a failing fixture says why.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype

from fastdns.bench.servers import free_port

__all__ = [
    "FastdnsHandle",
    "FastdnsStartError",
    "format_listen",
    "free_port",
    "running_fastdns",
    "toml_text",
]

STARTUP_DEADLINE = 20.0
STOP_DEADLINE = 10.0
RELOAD_DEADLINE = 20.0
RELOAD_DONE = "reload finished"  # the server logs this line after every SIGHUP reload
READY = "fastdns ready:"  # the supervisor logs this once every worker answers
WORKER_READY = re.compile(r"worker (\d+) ready: pid (\d+)")


class FastdnsStartError(RuntimeError):
    """The server did not come up; the message includes its stderr."""


@dataclass
class FastdnsHandle:
    """A running ``fastdns serve`` subprocess."""

    host: str
    port: int
    proc: subprocess.Popen
    workdir: Path  # the server's cwd, a fresh temporary folder
    stderr_path: Path
    expected_returncode: int = 0  # checked when the ``with`` block ends

    def stderr_text(self) -> str:
        """Everything the server has written to stderr (its log) so far."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def worker_pids(self) -> dict[int, int]:
        """The pid of the latest worker process of each slot that has logged it is ready."""
        return {int(slot): int(pid) for slot, pid in WORKER_READY.findall(self.stderr_text())}

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 10.0) -> str:
        """Wait until regular expression ``pattern`` has matched ``count`` times in the log; the
        log. ``AssertionError`` on timeout or if the server exits."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr_text()
            if len(re.findall(pattern, text)) >= count:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"fastdns exited waiting for {pattern!r}:\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the log within {timeout} s:\n{text}")
            time.sleep(0.01)

    def reload(self, timeout: float = RELOAD_DEADLINE) -> str:
        """Send SIGHUP and wait until the server logs that the reload finished; the log lines
        written meanwhile."""
        before = self.stderr_text()
        done = before.count(RELOAD_DONE)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr_text()
            if text.count(RELOAD_DONE) > done:
                return text[len(before) :]
            if self.proc.poll() is not None:
                raise AssertionError(f"fastdns exited during a reload:\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"fastdns did not finish a reload in {timeout} s:\n{text}")
            time.sleep(0.02)


def format_listen(host: str, port: int) -> str:
    """``--listen`` syntax: ``127.0.0.1:5353`` or ``[::1]:5353``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def toml_text(values: Mapping[str, object]) -> str:
    """A TOML document for flat settings (strings, numbers, booleans, lists of those)."""

    def value_text(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, (str, Path)):
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            return f'"{escaped}"'
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(value_text(v) for v in value) + "]"
        raise TypeError(f"cannot write {value!r} as TOML")

    return "".join(f"{key} = {value_text(value)}\n" for key, value in values.items())


def _config_values(config: Mapping[str, object] | Path) -> Mapping[str, object]:
    """The settings of a config (a mapping, or a TOML file: {} if it cannot be read)."""
    if isinstance(config, Path):
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib

        try:
            return tomllib.loads(config.read_text())
        except (OSError, ValueError):
            return {}
    return config


def _logs_ready(args: Sequence[str], config: Mapping[str, object]) -> bool:
    """Whether the server's log level lets the ``READY`` line (INFO) through."""
    level = config.get("log_level", "info")
    for flag, value in itertools.pairwise(args):
        if flag == "--log-level":
            level = value  # the last flag wins, and flags override the config file
    return str(level).lower() in ("debug", "info")


def _config_listen(config: Mapping[str, object]) -> str | None:
    """The first listen address a config names, if any."""
    listen = config.get("listen")
    if isinstance(listen, str):
        return listen
    if isinstance(listen, (list, tuple)) and listen and isinstance(listen[0], str):
        return listen[0]
    return None


def _split_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _probe_name(zone_dir: Path | None) -> dns.name.Name:
    if zone_dir is not None:
        for path in sorted(zone_dir.glob("*.zone")):
            with contextlib.suppress(Exception):
                return dns.name.from_text(path.name[: -len(".zone")])
    return dns.name.root


PROBE_TIMEOUT = 0.2  # how long one readiness probe waits before sending another
LATE_PROBE_DEADLINE = 5.0  # how long answers to earlier, timed-out probes are waited for


class _ReadinessProbe:
    """SOA queries over UDP, a fresh socket each, until one is answered (any rcode).

    A worker busy at startup can answer a probe after it timed out. Such an answer would be
    counted in the server's metrics after the test's first look at them, so the sockets of
    timed-out probes are kept and ``drain`` waits for their answers before the server is handed
    to the test."""

    def __init__(self, host: str, port: int, qname: dns.name.Name) -> None:
        self.address = (host, port)
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.qname = qname
        self.pending: list[socket.socket] = []

    def answered(self) -> bool:
        wire = dns.message.make_query(self.qname, dns.rdatatype.SOA).to_wire()
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)  # only the server's datagrams reach this socket
            sock.send(wire)
            sock.settimeout(PROBE_TIMEOUT)
            response = sock.recv(65535)
        except TimeoutError:
            self.pending.append(sock)  # sent, not answered yet: maybe later
            return False
        except OSError:  # e.g. ICMP port unreachable: nothing listens, no answer will come
            sock.close()
            return False
        sock.close()
        return response[:2] == wire[:2]

    def drain(self) -> None:
        deadline = time.monotonic() + LATE_PROBE_DEADLINE
        for sock in self.pending:
            with contextlib.suppress(OSError):  # timed out or refused: nothing more to wait for
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                sock.recv(65535)
        self.close()

    def close(self) -> None:
        for sock in self.pending:
            sock.close()
        self.pending.clear()


@contextlib.contextmanager
def running_fastdns(
    zone_dir: str | Path | None,
    *,
    listen_host: str = "127.0.0.1",
    port: int | None = None,
    extra_args: Sequence[str] = (),
    config: Mapping[str, object] | str | Path | None = None,
    workers: int | None = 1,
) -> Iterator[FastdnsHandle]:
    """Serve ``zone_dir`` from ``python -m fastdns serve`` for the ``with`` block.

    ``zone_dir`` is passed as ``--zone-dir`` (None: the config names it). ``config`` is a TOML
    file path, or a mapping written to ``fastdns.toml`` in the server's working folder. The
    server listens on ``listen_host:port`` (a free port when ``port`` is None), unless ``port``
    is None and the config names ``listen``: then it listens where the config says and the
    handle's host and port are the config's first address. ``extra_args`` are appended to the
    command line. ``workers`` is passed as ``--workers`` (None: the server's default, one per
    CPU); one worker by default, which keeps the suite fast and per-worker limits exact. The
    server's cwd is a fresh temporary folder; its stderr is kept in a file there
    (``handle.stderr_text()``).

    On exit the server gets SIGTERM (SIGKILL after 10 s) and, unless the block raised, must have
    exited with ``handle.expected_returncode`` (0).
    """
    zone_dir = Path(zone_dir).resolve() if zone_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="fastdns-serve-") as tmp:
        workdir = Path(tmp)
        args = [sys.executable, "-m", "fastdns", "serve"]
        if zone_dir is not None:
            args += ["--zone-dir", str(zone_dir)]
        config_values: Mapping[str, object] = {}
        if config is not None:
            if isinstance(config, Mapping):
                config_path = workdir / "fastdns.toml"
                config_path.write_text(toml_text(config))
            else:
                config_path = Path(config).resolve()
            args += ["--config", str(config_path)]
            config_values = _config_values(config if isinstance(config, Mapping) else config_path)
        config_listen = _config_listen(config_values)
        if port is None and config_listen is not None:
            host, port = _split_listen(config_listen)
        else:
            host = listen_host
            port = free_port(host) if port is None else port
            args += ["--listen", format_listen(host, port)]
        if workers is not None:
            args += ["--workers", str(workers)]
        args += list(extra_args)

        stderr_path = workdir / "fastdns.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(stderr_path, "wb") as log_file:
            proc = subprocess.Popen(
                args,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # a ^C in the test runner is not also sent to the server
            )
        handle = FastdnsHandle(host, port, proc, workdir, stderr_path)
        try:
            ready_line = _logs_ready(args, config_values)
            _wait_until_answering(handle, _probe_name(zone_dir), args, ready_line)
        except BaseException:
            _stop(proc)
            raise
        try:
            yield handle
        except BaseException:
            _stop(proc)
            raise
        returncode, stopped = _stop(proc)
        if not stopped:
            raise AssertionError(
                f"fastdns did not exit within {STOP_DEADLINE} s of SIGTERM and was killed\n"
                + handle.stderr_text()
            )
        if returncode != handle.expected_returncode:
            raise AssertionError(
                f"fastdns exited with status {returncode}, expected "
                f"{handle.expected_returncode}\n{handle.stderr_text()}"
            )


def _wait_until_answering(
    handle: FastdnsHandle, qname: dns.name.Name, args: list[str], ready_line: bool
) -> None:
    """Until the supervisor has logged that every worker is ready (when its log level shows
    it: ``ready_line``) and the server answers a query (and has answered every earlier probe
    it is going to answer)."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    probe = _ReadinessProbe(handle.host, handle.port, qname)
    try:
        while True:
            if handle.proc.poll() is not None:
                raise FastdnsStartError(
                    f"fastdns exited with status {handle.proc.returncode} during startup\n"
                    f"command: {' '.join(args)}\n--- stderr ---\n{handle.stderr_text()}"
                )
            ready = not ready_line or READY in handle.stderr_text()
            if ready and probe.answered():
                probe.drain()
                return
            if time.monotonic() > deadline:
                raise FastdnsStartError(
                    f"fastdns did not answer on {format_listen(handle.host, handle.port)} "
                    f"within {STARTUP_DEADLINE:.0f} s\ncommand: {' '.join(args)}\n"
                    f"--- stderr ---\n{handle.stderr_text()}"
                )
            time.sleep(0.05)
    finally:
        probe.close()


def _stop(proc: subprocess.Popen) -> tuple[int, bool]:
    """SIGTERM, then SIGKILL to the supervisor and its workers after ``STOP_DEADLINE``;
    (exit status, stopped without SIGKILL)."""
    if proc.poll() is not None:
        return proc.returncode, True
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(STOP_DEADLINE), True
    except subprocess.TimeoutExpired:
        # The server runs in its own session (start_new_session), so its process group is its
        # pid (still valid: it has not been waited for) and holds it and its workers only.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(), False
