"""Knot DNS as a reference server for differential tests.

``running_knot(zone_dir, port=...)`` writes a ``knot.conf`` into a temporary directory, serves
every ``<origin>.zone`` file of ``zone_dir`` from a ``knotd`` subprocess on ``127.0.0.1@port``
(UDP and TCP) and stops it on exit. The zone files are read in place and never written back:
journal off, ``zonefile-load: whole``, ``zonefile-sync: -1``, no DNSSEC signing, extra semantic
checks on. knotd runs as the current user; as root the default ``user`` (``root:root``) keeps it
from dropping privileges, so no ``knot`` system user is needed.

knotd is a required test dependency (Debian package ``knot``): when it is missing the fixture
raises ``KnotUnavailable`` (an ``AssertionError``), so the test fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastdns.bench.servers import (
    ServerUnavailable,
    answers_soa,
    find_knotd,
    knot_conf,
    zone_origins,
)

STARTUP_DEADLINE = 20.0
STOP_DEADLINE = 10.0
PR_SET_PDEATHSIG = 1  # prctl(2)
INSTALL_HINT = (
    "knotd (Knot DNS) is required for the differential tests: install the Debian package "
    "`knot` (apt-get install knot); it also provides knotc. kdig comes with `knot-dnsutils`."
)


class KnotUnavailable(AssertionError):
    """knotd is not installed; the message says how to install it."""


class KnotStartError(RuntimeError):
    """knotd did not start or did not load a zone; the message includes Knot's log."""


@dataclass(frozen=True)
class KnotHandle:
    """A running knotd: where it listens, the zones it serves and its log file."""

    host: str
    port: int
    zones: tuple[str, ...]
    log_path: Path
    conf_path: Path

    def log(self) -> str:
        return _read_log(self.log_path)


def knotd_path() -> str:
    """Path of the knotd binary; raises ``KnotUnavailable`` when it is not installed."""
    try:
        return find_knotd()
    except ServerUnavailable:
        raise KnotUnavailable(INSTALL_HINT) from None


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return "(no log written)"


@contextlib.contextmanager
def running_knot(
    zone_dir: Path | str,
    *,
    port: int,
    host: str = "127.0.0.1",
    udp_max_payload: int = 1232,
) -> Iterator[KnotHandle]:
    """Serve the zones of ``zone_dir`` from knotd on ``host@port`` for the ``with`` block.

    Waits (up to 20 s) until every zone answers SOA over UDP; a zone Knot refused to load, a
    crash or the deadline raise ``KnotStartError`` with Knot's log. ``udp_max_payload`` is
    Knot's largest UDP response to an EDNS query (its own default is 1232).
    """
    knotd = knotd_path()
    zones = zone_origins(Path(zone_dir))
    with tempfile.TemporaryDirectory(prefix="fastdns-knot-") as tmp:
        rundir = Path(tmp)
        conf_path = rundir / "knot.conf"
        (rundir / "db").mkdir()
        conf_path.write_text(
            knot_conf(
                zones,
                rundir,
                host=host,
                port=port,
                udp_workers=2,
                tcp_workers=2,
                udp_max_payload=udp_max_payload,
                semantic_checks=True,
                log_level="info",
            )
        )
        log_path = rundir / "knotd.log"
        handle = KnotHandle(host, port, tuple(zones), log_path, conf_path)
        with open(rundir / "knotd.stderr", "wb") as stderr:
            proc = subprocess.Popen(
                [knotd, "-c", str(conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            try:
                _wait_until_serving(proc, handle, rundir)
                yield handle
            finally:
                _stop(proc)


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM knotd when the test process dies, so a
    killed test run leaves no knotd behind (best effort; a no-op elsewhere). Linux sends it when
    the thread that started knotd ends; pytest runs fixtures on the main thread."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_until_serving(proc: subprocess.Popen, handle: KnotHandle, rundir: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    pending = list(handle.zones)
    while pending:
        if proc.poll() is not None:
            raise KnotStartError(
                f"knotd exited with status {proc.returncode} during startup\n"
                + _diagnostics(handle, rundir)
            )
        pending = [z for z in pending if not answers_soa(handle.host, handle.port, z)]
        if not pending:
            return
        failed = _failed_zones(handle.log(), pending)
        if failed:
            raise KnotStartError(
                f"knotd could not load {', '.join(failed)}\n" + _diagnostics(handle, rundir)
            )
        if time.monotonic() > deadline:
            raise KnotStartError(
                f"knotd did not answer SOA for {', '.join(pending)} on "
                f"{handle.host}@{handle.port} within {STARTUP_DEADLINE:.0f} s\n"
                + _diagnostics(handle, rundir)
            )
        time.sleep(0.05)


def _failed_zones(log: str, zones: list[str]) -> list[str]:
    """Zones whose load Knot has given up on (e.g. a mandatory semantic check failed)."""
    return [z for z in zones if f"[{z}.] zone event 'load' failed" in log]


def _diagnostics(handle: KnotHandle, rundir: Path) -> str:
    stderr = _read_log(rundir / "knotd.stderr")
    return f"--- knotd log ---\n{handle.log()}\n--- knotd stderr ---\n{stderr}"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
