"""The supervisor: the control plane of ``fastdns serve``, and the owner of the worker processes.

The supervisor loads and compiles the zone directory once, writes the images into a sealed
memfd snapshot (``fastdns.snapshot``) and starts ``--workers`` worker processes
(``fastdns.worker``), each with its own SO_REUSEPORT sockets. It never answers DNS itself
(except with ``--workers 0``, where one ``Worker`` runs in this process for debugging and
profiling). Its jobs:

* start: check that every listen address can be bound, start the workers, log
  ``fastdns ready: N workers, M zones`` once every worker answers;
* respawn: a worker that exits is replaced at once, in the same slot (so its counters keep
  adding up); one that exits before it was ready is retried after a growing delay;
* SIGHUP: reload the zone directory in a thread, write a new snapshot, send it to every worker
  and log ``reload finished`` once each one serves it; a zone whose new file is broken keeps its
  previous version;
* SIGTERM/SIGINT: tell every worker to drain, wait until all have exited, exit 0;
* metrics: the shared counter table (``fastdns.metrics``) and, with ``--metrics-listen``, the
  Prometheus endpoint;
* zone transfers (``fastdns.xfr``): answer the TCP requests workers hand over (AXFR, IXFR,
  TSIG-signed queries) from the zones they serve, and NOTIFY secondaries of changed serials.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import functools
import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import dns.name
import dns.rcode

from fastdns._zcompile import release_scratch
from fastdns.collector import collector_paused, freeze_loaded
from fastdns.config import ListenAddress, ServerConfig
from fastdns.dnssec.keystore import KeyStore
from fastdns.health.monitor import HealthMonitor
from fastdns.health.store import HealthCheckStore
from fastdns.health.table import HealthTable, open_health_table
from fastdns.hostedzones import compile_hosted_zone, load_hosted_zones
from fastdns.metrics import CounterTable, MetricsServer, ServerGauges, render_metrics
from fastdns.policy import PolicyEnvironment
from fastdns.policyenv import build_environment, with_health_slots
from fastdns.route53.names import name_text
from fastdns.route53.policycheck import policy_problem
from fastdns.route53.testanswer import AnswerView
from fastdns.server import (
    ServedZone,
    StartupError,
    ZoneLoadAhead,
    catalog_order,
    load_zones,
    log_load,
)
from fastdns.snapshot import (
    MAX_SEGMENTS,
    SEGMENT_MIN_BYTES,
    ImageSegment,
    open_snapshot_parts,
    snapshot_segments,
    write_snapshot,
)
from fastdns.store import Store, StoreError
from fastdns.transport import check_listen
from fastdns.worker import (
    Worker,
    WorkerSettings,
    catalog_of_parts,
    load_catalog,
    load_snapshot,
    receive_messages,
    send_message,
)
from fastdns.xfr.channel import ControlPlaneServer
from fastdns.xfr.ixfr import difference_sequence
from fastdns.xfr.notify import Notifier
from fastdns.xfr.secondary import SecondaryZones
from fastdns.xfr.service import ControlPlaneService
from fastdns.xfr.tsig import Keyring
from fastdns.xfr.update import apply_update
from fastdns.xfr.zonedata import CompiledSecondary

log = logging.getLogger("fastdns")

__all__ = ["Snapshot", "Supervisor", "serve"]

EXTERNAL_CHANGE_POLL = 1.0  # seconds between looks for writes by other processes to the store
RESIGN_CHECK = 60.0  # seconds between looks for signed zones due for re-signing (issue 6)
START_TIMEOUT = 30.0  # seconds for the first workers to report ready
INSTALL_TIMEOUT = 10.0  # seconds for a worker to confirm a new snapshot before it is replaced
STOP_MARGIN = 5.0  # seconds for the workers to exit, beyond the drain timeout, before a kill
HISTORY_TIMEOUT = 10.0  # seconds an IXFR waits for the store thread before sending the zone
UPDATE_TIMEOUT = 30.0  # seconds an UPDATE (or NOTIFY) waits for the store thread (event loop)
RESPAWN_DELAY = 0.5  # first delay before replacing a worker that died before it was ready
RESPAWN_DELAY_MAX = 10.0
# A worker whose event loop is stuck (a hang, SIGSTOP, a livelock) still holds its sockets and
# their share of SO_REUSEPORT traffic: the supervisor pings every worker and replaces one that
# has not answered anything for HEARTBEAT_TIMEOUT.
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TIMEOUT = 5.0
# Seconds the native compiler keeps its scratch memory after a snapshot was built (ext/scratch.h):
# changes come in bursts, and each one that cannot be grafted onto its zone's last image
# (fastdns.hostedcolumns) or comes from a zone file recompiles its zone (a million record sets:
# 0.35 s with the memory kept, 0.5 s with fresh pages). An idle server gives it back.
SCRATCH_HOLD = 60.0


@dataclass
class Snapshot:
    """A compiled zone snapshot: its memfd and the image segments it names (owned by the
    supervisor), and its generation."""

    fd: int
    generation: int
    zones: int
    # The served zones in catalog order and the supervisor's own catalog over the snapshot
    # (for TestDNSAnswer; built on first use).
    served: tuple = ()
    catalog: object = None
    segments: tuple[ImageSegment, ...] = ()
    # The validated images of its segments, from the catalog build_snapshot checked it with:
    # held so that fastdns.worker._segment_images (weak) keeps them for the next snapshot and
    # the catalogs made here. Not the whole catalog: with 100,000 small zones that held about
    # 150 MB of per-zone objects in the supervisor.
    checked: tuple = ()

    @property
    def segment_fds(self) -> list[int]:
        return [segment.fd for segment in self.segments]

    @property
    def fds(self) -> list[int]:
        """What a worker needs to open it: the snapshot's descriptor, then its segments'."""
        return [self.fd, *self.segment_fds]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        _segments.release(self.segments)


class SegmentCache:
    """The image segments of the snapshots alive, with their images: an image that is still
    served, or one byte for byte equal (a zone file reloaded unchanged), keeps its segment
    from one snapshot to the next (see fastdns.snapshot)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # snapshots are built on an executor thread
        self._entries: list[tuple[bytes, ImageSegment]] = []  # at most a few MAX_SEGMENTS

    def take(self, images: list) -> list:
        """``images`` with the largest (up to ``MAX_SEGMENTS`` of ``SEGMENT_MIN_BYTES`` or
        more) replaced by their segments, each counted as used once more."""
        large = sorted(
            (i for i, image in enumerate(images) if len(image) >= SEGMENT_MIN_BYTES),
            key=lambda i: -len(images[i]),
        )[:MAX_SEGMENTS]
        result = list(images)
        with self._lock:
            try:
                for i in large:
                    result[i] = self._segment(images[i])
            except BaseException:
                self._release(snapshot_segments(result))
                raise
        return result

    def _segment(self, image) -> ImageSegment:
        # A comparison of equal lengths is one memcmp: far cheaper than a copy and a check.
        found = [
            segment
            for cached, segment in self._entries
            if cached is image or (len(cached) == len(image) and cached == image)
        ]
        if found:
            segment = found[0]
        else:
            segment = ImageSegment(image)
            self._entries.append((image, segment))
        segment.users += 1
        return segment

    def release(self, segments) -> None:
        """The snapshot using ``segments`` is gone: close those no snapshot uses any more."""
        with self._lock:
            self._release(segments)

    def _release(self, segments) -> None:
        for segment in segments:
            segment.users -= 1
            if segment.users == 0:
                segment.close()
                self._entries = [e for e in self._entries if e[1] is not segment]


_segments = SegmentCache()


def build_snapshot(
    zones: Mapping[dns.name.Name, ServedZone],
    generation: int,
    udp_max_payload: int,
    classifiers: Sequence[bytes] = (),
) -> Snapshot:
    """Write ``zones`` and the routing policies' client ``classifiers`` into a new sealed
    snapshot and check it the way a worker will read it (mapped, every image validated by a
    ``Catalog``), so a bad one is never sent. Large images travel as segments (see
    fastdns.snapshot); one that an earlier snapshot had keeps its segment."""
    with collector_paused():  # see fastdns.collector: objects per zone, no cycles
        return _build_snapshot(zones, generation, udp_max_payload, classifiers)


def _build_snapshot(
    zones: Mapping[dns.name.Name, ServedZone],
    generation: int,
    udp_max_payload: int,
    classifiers: Sequence[bytes],
) -> Snapshot:
    ordered = catalog_order(zones)
    names = [z.log_name for z in ordered]
    images = _segments.take([z.image for z in ordered])
    segments = tuple(snapshot_segments(images))
    fd = -1
    try:
        fd = write_snapshot(images, classifiers, names)
        snapshot = Snapshot(fd, generation, len(zones), tuple(ordered), segments=segments)
        parts = open_snapshot_parts(fd, snapshot.segment_fds)
        checked = catalog_of_parts(parts, udp_max_payload)[0]
        snapshot.checked = tuple(
            zone
            for zone, image in zip(checked.zones, images, strict=True)
            if isinstance(image, ImageSegment)
        )
        del checked
        _drop_segment_pages(parts)
        _share_small_images(ordered, images, parts.images)
        images.clear()  # the last references to the images the zones no longer hold
        _trim_heap()
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _segments.release(segments)
        raise
    return snapshot


class _ZoneModels(Mapping):
    """The models of the served zones, read through the served zones' own dict rather than
    copied into a new one on every snapshot (whose keys would all be hashed again)."""

    __slots__ = ("_zones",)

    def __init__(self, zones: Mapping[dns.name.Name, ServedZone]) -> None:
        self._zones = zones

    def __getitem__(self, origin: dns.name.Name):
        model = self._zones[origin].zone
        if model is None:
            raise KeyError(origin)
        return model

    def __iter__(self):
        return (origin for origin, served in self._zones.items() if served.zone is not None)

    def __len__(self) -> int:
        return sum(1 for served in self._zones.values() if served.zone is not None)


def secondary_served_zone(origin: dns.name.Name, compiled: CompiledSecondary) -> ServedZone:
    """A compiled secondary zone as the server serves it."""
    model = compiled.model
    return ServedZone(
        origin, compiled.image, compiled.record_sets, compiled.serial, model.source, zone=model
    )


def _drop_segment_pages(parts) -> None:
    """The check above read every page of the large images (segments), which the supervisor
    then keeps mapped (``Snapshot.checked``) but serves nothing from: drop them from its
    mappings. MADV_DONTNEED on a shared mapping of a memfd unmaps the pages from this process
    only; the memfd keeps them, and a later read (a graft copying the image) maps them again.
    With a 1M-record zone this is about 100 MB less RSS for the supervisor."""
    for part, key in zip(parts.images, parts.segment_keys, strict=True):
        if key is not None and len(part):
            part.obj.madvise(mmap.MADV_DONTNEED)


def _share_small_images(
    ordered: Sequence[ServedZone], images: list, views: Sequence[memoryview]
) -> None:
    """Point every zone whose image the snapshot holds as a copy at that copy (``views``, the
    snapshot's images mapped read-only) and drop its own bytes: the supervisor keeps one copy of
    each image, which it shares with the workers (with 100,000 small zones, 138 MB less). The
    mapping stays while a zone points into it, and the next snapshot copies from it."""
    for zone, image, view in zip(ordered, images, views, strict=True):
        # A view into an earlier snapshot moves too, so that no zone holds an old one. The
        # zone is frozen, and stays the same value: the view is read-only, equal to the bytes
        # it replaces and hashes as they do; only where they are kept changes.
        if isinstance(image, (bytes, memoryview)) and zone.image is image:
            object.__setattr__(zone, "image", view)


def _trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim; nothing elsewhere).
    The images a snapshot replaced and its checking catalog were freed between objects that
    stay, so their pages are never at the heap's top: with 100,000 small zones this takes the
    supervisor from 384 to 212 MB, in about 15 ms."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None)


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


# -- the worker processes


@dataclass(eq=False)
class WorkerHandle:
    """The supervisor's view of one worker process."""

    slot: int
    proc: subprocess.Popen
    control: socket.socket
    pidfd: int
    ready: bool = False
    generation: int = 0  # the snapshot the worker has confirmed it serves
    last_seen: float = 0.0  # loop time of its last message (heartbeat)
    killed: bool = False  # by the heartbeat: not pinged again while it exits

    @property
    def pid(self) -> int:
        return self.proc.pid


class ProcessPool:
    """``count`` worker processes, one per slot, kept running until ``stop``."""

    def __init__(
        self,
        count: int,
        settings: WorkerSettings,
        table: CounterTable,
        current_snapshot: Callable[[], Snapshot],
        health: HealthTable,
    ) -> None:
        self.count = count
        self.settings = settings  # slot is set per worker
        self.table = table
        self.health = health
        self.current_snapshot = current_snapshot
        self.workers: dict[int, WorkerHandle] = {}
        self.restarts = 0
        self._starting = True
        self._stopping = False
        self._startup_failure: str | None = None
        self._early_exits: dict[int, int] = {}  # slot -> exits before ready, in a row
        self._respawns: dict[int, asyncio.TimerHandle] = {}
        self._changed = asyncio.Event()
        self._heartbeat: asyncio.Task | None = None
        # Interpreters started before the zones were loaded, waiting for a start message.
        self._prestarted: list[tuple[subprocess.Popen, socket.socket]] = []
        # (stream fd, client address, over UDP) -> None: takes a worker's request for the
        # control plane
        self.on_control: Callable[[int, object, bool], None] | None = None

    def prestart(self) -> None:
        """Start the worker processes' interpreters now, before the zones are loaded: Python
        and fastdns's imports take a worker a few hundred milliseconds, which then overlap the
        supervisor's load and compile. Each waits for its start message (``start``); one that
        never gets it sees its control socket close and exits quietly."""
        for _ in range(self.count):
            launched = self._launch()
            if launched is None:
                return
            log.debug("worker process %d started ahead of the zone load", launched[0].pid)
            self._prestarted.append(launched)

    def _launch(self) -> tuple[subprocess.Popen, socket.socket] | None:
        """A new worker process and the supervisor's end of its control socket, or None
        (logged) when it cannot be started."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", "fastdns.worker", "--control-fd", str(child.fileno())]
        # PYTHONSAFEPATH (3.11+): the worker imports fastdns from where the supervisor did, not
        # from a "fastdns" folder that happens to be in the current directory.
        env = dict(os.environ, PYTHONSAFEPATH="1")
        try:
            proc = subprocess.Popen(
                command, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, env=env
            )
        except OSError as exc:
            parent.close()
            log.error("cannot start a worker process: %s", exc)
            return None
        finally:
            child.close()
        return proc, parent

    def _take_prestarted(self) -> tuple[subprocess.Popen, socket.socket] | None:
        while self._prestarted:
            proc, parent = self._prestarted.pop(0)
            if proc.poll() is None:
                return proc, parent
            parent.close()  # it exited meanwhile: a fresh one instead
        return None

    def _drop_prestarted(self) -> None:
        """Close the control sockets of the interpreters not used: each exits on its own."""
        for proc, parent in self._prestarted:
            parent.close()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._prestarted.clear()

    @property
    def serving(self) -> int:
        return sum(1 for handle in self.workers.values() if handle.ready)

    async def start(self, addresses: list[ListenAddress]) -> None:
        """Start every worker on ``addresses``; return once all are ready (``StartupError`` if
        one exits first)."""
        self.settings = replace(self.settings, listen=tuple(addresses))
        for slot in range(self.count):
            self._spawn(slot)
        done = await self._wait_for(
            lambda: self._startup_failure is not None or self.serving == self.count,
            START_TIMEOUT,
        )
        if self._startup_failure is not None:
            raise StartupError(self._startup_failure + "; see the log above")
        if not done:
            raise StartupError(f"the workers did not start within {START_TIMEOUT:.0f} s")
        self._starting = False
        self._heartbeat = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Ping every ready worker each HEARTBEAT_INTERVAL; kill one silent for longer than
        HEARTBEAT_TIMEOUT (its exit is then handled like any other: a new worker starts)."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            now = loop.time()
            for handle in list(self.workers.values()):
                if not handle.ready or handle.killed:
                    continue
                silent = now - handle.last_seen
                if silent > HEARTBEAT_TIMEOUT:
                    log.error(
                        "worker %d (pid %d) has not answered for %.1f s; replacing it",
                        handle.slot,
                        handle.pid,
                        silent,
                    )
                    handle.proc.kill()
                    handle.killed = True
                else:
                    self._send(handle, {"op": "ping"})
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def install(self, snapshot: Snapshot) -> None:
        """Send ``snapshot`` to every worker; return once each serves it (a worker that has not
        confirmed within ``INSTALL_TIMEOUT`` is replaced; its successor starts with it)."""
        generation = snapshot.generation
        for handle in list(self.workers.values()):
            self._send(handle, {"op": "snapshot", "generation": generation}, snapshot.fds)

        def behind() -> list[WorkerHandle]:
            return [h for h in self.workers.values() if h.generation < generation]

        if not await self._wait_for(lambda: not behind(), INSTALL_TIMEOUT):
            for handle in behind():
                log.error(
                    "worker %d (pid %d) did not confirm snapshot %d within %.0f s; replacing it",
                    handle.slot,
                    handle.pid,
                    generation,
                    INSTALL_TIMEOUT,
                )
                handle.proc.kill()

    async def stop(self) -> None:
        """Tell every worker to drain and wait until all have exited (killing stragglers)."""
        self._stopping = True
        self._drop_prestarted()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for timer in self._respawns.values():
            timer.cancel()
        self._respawns.clear()
        for handle in list(self.workers.values()):
            self._send(handle, {"op": "drain"})
        timeout = self.settings.drain_grace + STOP_MARGIN
        if not await self._wait_for(lambda: not self.workers, timeout):
            for handle in list(self.workers.values()):
                log.warning(
                    "worker %d (pid %d) did not stop within %.0f s; killing it",
                    handle.slot,
                    handle.pid,
                    timeout,
                )
                handle.proc.kill()
            await self._wait_for(lambda: not self.workers, STOP_MARGIN)

    # -- process management

    def _spawn(self, slot: int) -> None:
        self._respawns.pop(slot, None)
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        snapshot = self.current_snapshot()
        settings = replace(self.settings, slot=slot)
        launched = self._take_prestarted() or self._launch()
        if launched is None:
            self._worker_gone(slot, ready=False, what="could not be started")
            return
        proc, parent = launched
        handle = WorkerHandle(slot, proc, parent, os.pidfd_open(proc.pid))
        self.workers[slot] = handle
        start = {"op": "start", "generation": snapshot.generation, "settings": settings.to_json()}
        try:
            send_message(
                parent, start, [self.table.fd, snapshot.fd, self.health.fd, *snapshot.segment_fds]
            )
        except OSError as exc:  # it died already: its exit is handled below
            log.debug("worker %d: cannot send the start message: %s", slot, exc)
        parent.setblocking(False)
        loop.add_reader(parent.fileno(), self._on_message, handle)
        loop.add_reader(handle.pidfd, self._on_exit, handle)
        log.debug("worker %d starting: pid %d", slot, proc.pid)

    def _send(self, handle: WorkerHandle, message: dict, fds: list[int] | None = None) -> None:
        try:
            send_message(handle.control, message, fds or ())
        except BlockingIOError:
            log.error(
                "worker %d (pid %d) does not read its control socket; replacing it",
                handle.slot,
                handle.pid,
            )
            handle.proc.kill()
        except OSError as exc:  # exiting: _on_exit deals with it
            log.debug("worker %d: cannot send %s: %s", handle.slot, message.get("op"), exc)

    def _on_message(self, handle: WorkerHandle) -> None:
        messages, closed = receive_messages(handle.control)
        if messages:
            handle.last_seen = asyncio.get_running_loop().time()
        for message, fds in messages:
            op = message.get("op")
            if op == "control" and len(fds) == 1 and self.on_control is not None:
                # A TCP request for the control plane, on its own stream (fastdns.xfr.channel).
                self.on_control(fds[0], message.get("peer"), bool(message.get("udp")))
                continue
            for fd in fds:
                os.close(fd)
            if op == "ready":
                handle.ready = True
                handle.generation = int(message.get("generation", 0))
                self._early_exits.pop(handle.slot, None)
                log.info(
                    "worker %d ready: pid %d, snapshot %d",
                    handle.slot,
                    handle.pid,
                    handle.generation,
                )
            elif op == "pong":
                pass  # last_seen is all a heartbeat answer is for
            elif op == "loaded":
                handle.generation = max(handle.generation, int(message.get("generation", 0)))
            elif op == "failed":
                log.error(
                    "worker %d (pid %d) cannot serve snapshot %s (%s); replacing it",
                    handle.slot,
                    handle.pid,
                    message.get("generation"),
                    message.get("error"),
                )
                handle.proc.kill()
            else:
                log.error("worker %d sent an unknown message: %r", handle.slot, message)
        if closed:  # exiting; the pidfd tells when it is gone
            asyncio.get_running_loop().remove_reader(handle.control.fileno())
        self._changed.set()

    def _on_exit(self, handle: WorkerHandle) -> None:
        loop = asyncio.get_running_loop()
        returncode = handle.proc.poll()
        if returncode is None:  # cannot happen once the pidfd is readable; be safe
            return
        loop.remove_reader(handle.pidfd)
        os.close(handle.pidfd)
        loop.remove_reader(handle.control.fileno())
        handle.control.close()
        if self.workers.get(handle.slot) is handle:
            del self.workers[handle.slot]
        what = f"(pid {handle.pid}) {_describe_exit(returncode)}"
        self._worker_gone(handle.slot, ready=handle.ready, what=what)
        self._changed.set()

    def _worker_gone(self, slot: int, *, ready: bool, what: str) -> None:
        if self._stopping:
            log.debug("worker %d %s", slot, what)
            return
        if self._starting and not ready:
            if self._startup_failure is None:
                self._startup_failure = f"worker {slot} {what} during startup"
            self._changed.set()
            return
        self.restarts += 1
        if ready:
            delay = 0.0
        else:
            exits = self._early_exits[slot] = self._early_exits.get(slot, 0) + 1
            delay = min(RESPAWN_DELAY * 2 ** (exits - 1), RESPAWN_DELAY_MAX)
        log.warning(
            "worker %d %s; starting a new one%s",
            slot,
            what,
            f" in {delay:.1f} s" if delay else "",
        )
        loop = asyncio.get_running_loop()
        if delay:
            self._respawns[slot] = loop.call_later(delay, self._spawn, slot)
        else:
            self._spawn(slot)

    async def _wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds (re-checked on every worker event); False on
        timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


class InProcessPool:
    """``--workers 0``: one ``Worker`` in the supervisor's own process (no SO_REUSEPORT)."""

    def __init__(self, settings: WorkerSettings, table: CounterTable, health: HealthTable) -> None:
        self.health = open_health_table(health.fd)
        self.worker = Worker(replace(settings, slot=0, reuse_port=False), table.row(0), self.health)
        self.restarts = 0
        self.serving = 0

    async def start(self, addresses: list[ListenAddress], snapshot: Snapshot) -> list:
        catalog, names = load_snapshot(
            snapshot.fds, self.worker.settings.udp_max_payload, self.health
        )
        served = await self.worker.start(catalog, snapshot.generation, names)
        self.serving = 1 if served else 0
        return served

    async def install(self, snapshot: Snapshot) -> None:
        try:
            self.worker.install(snapshot.fds, snapshot.generation)
        except Exception as exc:
            log.error("cannot serve snapshot %d: %s", snapshot.generation, exc)

    async def stop(self) -> None:
        self.serving = 0
        await self.worker.drain()


# -- the supervisor


@dataclass
class _ReloadState:
    task: asyncio.Task | None = None
    again: bool = False  # another SIGHUP came during the reload: run one more after it


class Supervisor:
    """``fastdns serve`` for one ``ServerConfig``; ``await run()`` serves until signalled."""

    def __init__(self, config: ServerConfig, zone_load: ZoneLoadAhead | None = None) -> None:
        self.config = config
        self._zone_load = zone_load  # the zone directory, loading since the command started
        self.zones: dict[dns.name.Name, ServedZone] = {}  # from the zone directory
        self.hosted: dict[dns.name.Name, ServedZone] = {}  # from the store (the API)
        self.store: Store | None = None
        # The store is used from this one thread only: SQLite sees one writer, and neither
        # its disk writes nor compiling a changed zone block the event loop.
        self.store_thread = concurrent.futures.ThreadPoolExecutor(1, "fastdns-store")
        self.api = None
        self.health_checks: HealthCheckStore | None = None
        # One octet per health check, written by the monitor, read by every worker per query.
        self.health = HealthTable()
        self.monitor: HealthMonitor | None = None
        self.policy_env = PolicyEnvironment()
        self.snapshot: Snapshot | None = None
        self.table: CounterTable | None = None
        self.pool: ProcessPool | InProcessPool | None = None
        self._listen: list[ListenAddress] = []  # the addresses that could be bound at start
        self.metrics: MetricsServer | None = None
        self._stop: asyncio.Event | None = None
        self._ready = False
        self._reload = _ReloadState()
        self._publish = _ReloadState()
        self._dirty: set[str] = set()  # hosted zones changed since the last publish
        self._external = False  # another process wrote the store: reread every hosted zone
        self._swap = asyncio.Lock()  # one snapshot build + install at a time
        self._startup_pending: list[str] = []
        # Zone transfers, signed queries and NOTIFY (fastdns.xfr): the zones the workers serve.
        keyring = Keyring(config.tsig_keys)
        self.control_plane = ControlPlaneServer(ControlPlaneService(config.transfer, keyring))
        service = self.control_plane.service
        service.history = self._ixfr_history
        service.update_policy = config.update
        service.udp_max_payload = config.udp_max_payload
        service.updater = self._update_zone
        service.on_notify = self._on_notify
        service.primaries = self._update_primaries
        self._loop: asyncio.AbstractEventLoop | None = None  # set by run()
        self.notifier = Notifier(config.transfer, keyring)
        # Zones fetched from primaries (fastdns.xfr.secondary), compiled like zone files.
        self.secondaries: dict[dns.name.Name, ServedZone] = {}
        self.secondary = SecondaryZones(
            config.secondary, keyring, self._secondary_updated, Path(f"{config.state}.secondary")
        )
        self._health_view = None  # the health table mapped for the control plane's catalog
        self._scratch_release: asyncio.TimerHandle | None = None  # see SCRATCH_HOLD

    def load(self) -> None:
        """Load the zone directory and the hosted zones and write the first snapshot (before
        any worker starts)."""
        zone_dir = self.config.zone_dir
        if not zone_dir.is_dir():
            raise StartupError(f"zone directory {zone_dir} does not exist or is not a folder")
        with collector_paused():
            self._load(zone_dir)
        freeze_loaded()  # see fastdns.collector: no full collection walks the loaded zones

    def _load(self, zone_dir: Path) -> None:
        ahead, self._zone_load = self._zone_load, None
        load = ahead.result() if ahead is not None else load_zones(zone_dir)
        log_load(load)
        self.zones = load.zones
        for origin, compiled in self.secondary.load_saved().items():
            self.secondaries[origin] = secondary_served_zone(origin, compiled)
            log.info("secondary zone %s: serving the saved copy until it is refreshed", origin)
        config = self.config
        try:
            self.policy_env = build_environment(
                config.geoip_database, config.latency, config.cidr_collections
            )
        except (OSError, ValueError) as exc:
            raise StartupError(f"routing policies: {exc}") from None
        self.store_thread.submit(self._open_store).result()
        self.snapshot = build_snapshot(
            self.served_zones(), 1, self.config.udp_max_payload, self.policy_env.classifiers
        )

    def _policy_environment(self) -> PolicyEnvironment:
        """The routing-policy environment with the health checks' slots as they are now (on
        the store thread)."""
        return with_health_slots(self.policy_env, self.health_checks.health_check_slots())

    def answer_view(self) -> AnswerView | None:
        """The snapshot being served, as TestDNSAnswer sees it (any thread)."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        if snapshot.catalog is None:
            health = open_health_table(self.health.fd)
            snapshot.catalog = load_catalog(snapshot.fds, self.config.udp_max_payload, health)
        slots = self.health_checks.health_check_slots() if self.health_checks else {}

        def healthy(check_id: str) -> bool | None:
            slot = slots.get(check_id)
            return None if slot is None else self.health.get(slot)

        return AnswerView(
            snapshot.catalog, snapshot.served, self.policy_env, healthy, self.config.name_servers[0]
        )

    def _open_store(self) -> None:
        try:
            self.store = Store(self.config.state)
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        self.store.serial_policy = self.config.serial.for_zone
        self.health_checks = HealthCheckStore(self.store, self.health.capacity)
        # Signatures are not kept across a restart: every signed zone is signed afresh now, so
        # its serial moves (fastdns.dnssec.serial) and secondaries take the new signatures
        # rather than keep theirs until they expire.
        keys = KeyStore(self.store)
        for zone_id in keys.signed_zones():
            keys.record_resign(zone_id)
        # Changes committed before a crash are in the first snapshot: INSYNC once it serves.
        self._startup_pending = self.store.pending_changes()
        self.hosted = load_hosted_zones(self.store, self._policy_environment())
        for origin in sorted(self.hosted):
            served = self.hosted[origin]
            log.info(
                "hosted zone %s (%s): serving %d record sets, serial %s",
                served.hosted_zone_id,
                origin,
                served.record_sets,
                served.serial,
            )

    def _ixfr_history(self, origin: dns.name.Name, client_serial: int, served_serial: int):
        """IXFR differences of a hosted zone from the store's change history (None: not a
        hosted zone, or the history does not reach back). Called on a transfer thread; reads
        the store on the store thread."""
        served = self.hosted.get(origin)
        store = self.store
        if served is None or served.hosted_zone_id is None or store is None:
            return None
        zone_id = served.hosted_zone_id

        def walk():
            return difference_sequence(
                name_text(origin),
                store.record_sets(zone_id).values(),
                store.zone_changes(zone_id),
                client_serial,
                served_serial,
            )

        try:
            return self.store_thread.submit(walk).result(HISTORY_TIMEOUT)
        except Exception:
            log.exception("IXFR of zone %s: reading the change history failed", origin)
            return None

    def _secondary_updated(self, origin: dns.name.Name, compiled: CompiledSecondary | None) -> None:
        """A secondary zone has new data, compiled (or expired: None): serve it."""
        if compiled is None:
            self.secondaries.pop(origin, None)
        else:
            self.secondaries[origin] = secondary_served_zone(origin, compiled)
        asyncio.get_running_loop().create_task(self._serve_secondary(origin, compiled))

    async def _serve_secondary(
        self, origin: dns.name.Name, compiled: CompiledSecondary | None
    ) -> None:
        generation = await self._swap_snapshot()
        log.info("secondary zone %s: %s (snapshot %d)", origin,
                 f"serial {compiled.serial}" if compiled else "no longer served",
                 generation)  # fmt: skip

    def _update_zone(self, origin: dns.name.Name, message, peer: str, key_name) -> int:
        """An RFC 2136 UPDATE of ``origin`` (authorized): through the API's change pipeline
        on the store thread; its RCODE. Only hosted zones: a zone file or a secondary zone
        is REFUSED (its data comes from the file or the primary, RFC 2136 §3.3). Called on
        a transfer thread."""
        served = self.hosted.get(origin)
        store, loop = self.store, self._loop
        if served is None or served.hosted_zone_id is None or store is None or loop is None:
            log.info("UPDATE of zone %s from %s: not a hosted zone, refused", origin, peer)
            return dns.rcode.REFUSED
        zone_id = served.hosted_zone_id
        comment = f"RFC 2136 UPDATE from {peer} (key {key_name})"

        def work():
            return apply_update(
                store,
                zone_id,
                origin,
                message,
                comment,
                self.health_checks.health_check_exists,
                lambda rrset: policy_problem(rrset, self.policy_env),
            )

        result = self.store_thread.submit(work).result(UPDATE_TIMEOUT)
        log.info(
            "UPDATE of zone %s from %s (key %s): %s%s%s",
            origin,
            peer,
            key_name,
            dns.rcode.to_text(result.rcode),
            f", {result.reason}" if result.reason else "",
            f", change {result.change.id}" if result.change is not None else "",
        )
        if result.change is not None:
            loop.call_soon_threadsafe(self.zone_changed, zone_id, result.change.id)
        return result.rcode

    def _update_primaries(self, origin: dns.name.Name):
        """The primaries an UPDATE of ``origin`` is forwarded to (RFC 2136 §6) when it is
        served as a secondary zone (not shadowed by a zone file or hosted zone), else None."""
        if origin in self.zones or origin in self.hosted or origin not in self.secondaries:
            return None
        config = self.config.secondary.get(origin)
        return config.primaries if config is not None else None

    def _on_notify(self, origin: dns.name.Name, peer: str, key_name) -> bool:
        """A NOTIFY (RFC 1996) for a secondary zone, on a transfer thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False

        async def notify() -> bool:
            return self.secondary.notify(origin, peer, key_name)

        return asyncio.run_coroutine_threadsafe(notify(), loop).result(UPDATE_TIMEOUT)

    def served_zones(self) -> dict[dns.name.Name, ServedZone]:
        """Zone-directory zones and hosted zones together; a hosted zone wins over a zone file
        of the same name (the API refuses to create such a zone, so this takes a file added
        later)."""
        # dict.update keeps the hashes the dicts have; the intersections hash the smaller side
        # only (dns.name.Name hashes its labels on each call: 100,000 zone files made this a
        # noticeable part of every snapshot).
        zones = dict(self.secondaries)
        for origin in self.zones.keys() & zones.keys():
            log.error("zone %s: both a zone file and a secondary zone; serving the file", origin)
        zones.update(self.zones)
        for origin in self.hosted.keys() & zones.keys():
            log.error(
                "zone %s: both a zone file and hosted zone %s; serving the hosted zone",
                origin,
                self.hosted[origin].hosted_zone_id,
            )
        zones.update(self.hosted)
        return zones

    def reserved_name(self, zone_name: str) -> str | None:
        """Why a hosted zone of this name cannot be created (a zone file serves it), or None."""
        origin = dns.name.from_text(zone_name)
        if origin in self.zones:
            return (
                f"The zone {zone_name} is served from the zone file {self.zones[origin].source}; "
                "import it (fastdns zone import) or remove the file first"
            )
        return None

    def _worker_settings(self) -> WorkerSettings:
        config = self.config
        return WorkerSettings(
            slot=0,
            listen=config.listen,
            udp_max_payload=config.udp_max_payload,
            tcp_idle_timeout=config.tcp_idle_timeout,
            tcp_max_connections=config.tcp_max_connections,
            log_level=config.log_level,
            drain_grace=config.drain_timeout,
            query_log=str(config.query_log) if config.query_log else None,
            udp_receiver=config.udp_receiver,
        )

    async def run(self) -> int:
        """Load, start the workers, serve until SIGTERM/SIGINT; the exit status (0)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        config = self.config
        log.debug("settings: %s", config)
        # From the start: a signal during startup is handled once the workers are up (SIGHUP's
        # default action would kill the server).
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            self.table = CounterTable(max(config.workers, 1))
            if config.workers:
                self._prestart_pool()
            self.load()
            # The load is compiled: its scratch memory is not held (see SCRATCH_HOLD), and the
            # workers that start next do not see it in the supervisor's footprint.
            release_scratch()
            if config.metrics_listen is not None:
                self.metrics = MetricsServer(config.metrics_listen, self.render_metrics)
                try:
                    await self.metrics.start()
                except OSError as exc:
                    raise StartupError(
                        f"cannot serve metrics on {config.metrics_listen}: {exc.strerror or exc}"
                    ) from None
            served = await self._start_pool()
            for address in served:
                log.info("listening on %s (UDP and TCP)", address)
            await self._mark_insync(self._startup_pending)
            await self._start_health_monitor()
            await self._start_api()
            self.secondary.start()
            poll = loop.create_task(self._poll_external_changes())
            resign = loop.create_task(self._resign_signed_zones())
            self._ready = True
            if self._reload.again:  # SIGHUP during startup
                self._reload.again = False
                self.request_reload()
            if config.workers:
                log.info("fastdns ready: %d workers, %d zones", config.workers, len(self.zones))
            else:
                log.info("fastdns ready: 0 workers (serving in-process), %d zones", len(self.zones))
            await self._stop.wait()
            poll.cancel()
            resign.cancel()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.close()
        log.info("fastdns stopped")
        return 0

    def _prestart_pool(self) -> None:
        """Check the listen addresses, then start the worker processes' interpreters, which
        then wait for the first snapshot while the zones load (``ProcessPool.prestart``). A
        server that cannot listen starts no worker at all."""
        config = self.config
        self._listen = check_listen(config.listen)
        if not self._listen:
            raise self._cannot_listen()
        self.pool = ProcessPool(
            config.workers, self._worker_settings(), self.table, lambda: self.snapshot, self.health
        )
        self.pool.on_control = self.control_plane.accept
        self.pool.prestart()

    def _cannot_listen(self) -> StartupError:
        wanted = ", ".join(str(a) for a in self.config.listen)
        return StartupError(f"could not listen on any address ({wanted}); see the log above")

    async def _start_pool(self) -> list[ListenAddress]:
        config = self.config
        if config.workers == 0:
            self.pool = InProcessPool(self._worker_settings(), self.table, self.health)
            self.pool.worker.control_plane = self.control_plane.open_local
            served = await self.pool.start(list(config.listen), self.snapshot)
            if not served:
                raise self._cannot_listen()
        else:
            assert isinstance(self.pool, ProcessPool)  # made by _prestart_pool
            served = self._listen
            await self.pool.start(served)
        self._serving_zones(self.served_zones())
        return served

    def _serving_zones(self, zones: Mapping[dns.name.Name, ServedZone]) -> None:
        """The workers now serve ``zones`` (from ``self.snapshot``): transfer those, and
        NOTIFY the secondaries of the zones whose serial changed."""
        models = _ZoneModels(zones)
        signers = {origin: s.signer for origin, s in zones.items() if s.signer is not None}
        catalog = None
        if self.config.tsig_keys:  # signed queries are answered from the same snapshot
            if self._health_view is None:
                self._health_view = open_health_table(self.health.fd)
            catalog = load_catalog(
                self.snapshot.fds, self.config.udp_max_payload, self._health_view
            )
        self.control_plane.service.update(models, catalog, signers)
        self.notifier.zones_served(models)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def close(self) -> None:
        """Drain and stop the workers, stop serving metrics, free the snapshot."""
        if self._scratch_release is not None:
            self._scratch_release.cancel()
        if self._reload.task is not None:
            self._reload.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reload.task
        if self.pool is not None:
            await self.pool.stop()
        await self.notifier.close()
        await self.secondary.close()
        self.control_plane.close()
        if self.metrics is not None:
            await self.metrics.close()
        if self.api is not None:
            await self.api.close()
        if self.monitor is not None:
            await self.monitor.close()
        if self._publish.task is not None:
            self._publish.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._publish.task
        if self.table is not None:
            totals = self.table.totals()
            log.info(
                "answered %d UDP and %d TCP queries",
                totals.get("responses_udp", 0),
                totals.get("responses_tcp", 0),
            )
            self.table.close()
        if self.snapshot is not None:
            self.snapshot.close()
        if self.store is not None:
            self.store_thread.submit(self.store.close).result()
        self.store_thread.shutdown()
        self.health.close()

    def render_metrics(self) -> str:
        """The Prometheus exposition of the counters and gauges, now."""
        gauges = ServerGauges(
            zones=len(self.zones) + len(self.hosted),
            generation=self.snapshot.generation if self.snapshot else 0,
            workers=self.pool.serving if self.pool else 0,
            restarts=self.pool.restarts if self.pool else 0,
        )
        return render_metrics(self.table.names, self.table.values(), gauges)

    # -- reload

    def request_reload(self) -> None:
        """Reload the zone directory (SIGHUP). A request during startup or during a reload runs
        one (more) once that is over."""
        state = self._reload
        if not self._ready or (state.task is not None and not state.task.done()):
            state.again = True
            return
        state.task = asyncio.get_running_loop().create_task(self._reload_loop())

    async def _reload_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._reload.again = False
            log.info("reloading zones from %s", self.config.zone_dir)
            previous = dict(self.zones)
            try:
                load = await loop.run_in_executor(None, load_zones, self.config.zone_dir, previous)
            except Exception as exc:
                log.error("reload failed, still serving the previous zones: %s", exc)
                log.debug("reload failure", exc_info=True)
            else:
                log_load(load)
                for origin in sorted(load.removed):
                    log.info("zone %s: no longer served (file removed)", origin)
                self.zones = load.zones
                generation = await self._swap_snapshot()
                log.info(
                    "reload finished: %d zones served, %d errors, snapshot %d",
                    len(load.zones),
                    len(load.errors),
                    generation,
                )
            if not self._reload.again:
                return

    async def _swap_snapshot(self) -> int:
        """Build a snapshot of the zones now (zone files and hosted zones) and install it in
        every worker; its generation. Builds and installs run one at a time."""
        loop = asyncio.get_running_loop()
        async with self._swap:
            started = time.monotonic()
            generation = self.snapshot.generation + 1
            zones = self.served_zones()
            snapshot = await loop.run_in_executor(
                None,
                build_snapshot,
                zones,
                generation,
                self.config.udp_max_payload,
                self.policy_env.classifiers,
            )
            built = time.monotonic()
            old, self.snapshot = self.snapshot, snapshot
            await self.pool.install(snapshot)
            installed = time.monotonic()
            self._serving_zones(zones)
            old.close()
            self._hold_scratch()
            log.info(
                "snapshot %d: built in %.0f ms, installed in %.0f ms, handed on in %.0f ms",
                generation,
                (built - started) * 1000,
                (installed - built) * 1000,
                (time.monotonic() - installed) * 1000,
            )
            return generation

    def _hold_scratch(self) -> None:
        """Give the compiler's scratch memory back SCRATCH_HOLD seconds after the last build."""
        if self._scratch_release is not None:
            self._scratch_release.cancel()
        loop = asyncio.get_running_loop()
        self._scratch_release = loop.call_later(
            SCRATCH_HOLD, loop.run_in_executor, None, release_scratch
        )

    # -- the change pipeline: API change -> store -> compile -> snapshot -> INSYNC

    async def _start_api(self) -> None:
        config = self.config
        if not config.access_keys:
            log.info("Route 53 API off: no access_keys in the config file")
            return
        from fastdns.route53.http import ApiServer
        from fastdns.route53.service import Route53Service

        service = Route53Service(
            self.store,
            config.name_servers,
            endpoint=f"http://{config.api_listen}",
            reserved_name=self.reserved_name,
        )
        service.health_status = self.monitor.status
        service.policy_env = self.policy_env
        service.answer_view = self.answer_view
        service.dnssec_algorithm = config.dnssec_algorithm
        self.api = ApiServer(
            config.api_listen,
            service,
            config.access_keys,
            self.store_thread,
            self.zone_changed,
            on_health_change=self.monitor.request_reload,
        )
        try:
            await self.api.start()
        except OSError as exc:
            raise StartupError(
                f"cannot serve the API on {config.api_listen}: {exc.strerror or exc}"
            ) from None

    async def _start_health_monitor(self) -> None:
        """Run the health checks of the store; their results reach the workers through the
        shared table, without a new snapshot."""
        loop = asyncio.get_running_loop()

        async def load_checks():
            return await loop.run_in_executor(self.store_thread, self.health_checks.monitor_entries)

        self.monitor = HealthMonitor(
            self.health, load_checks, time_scale=self.config.health_check_time_scale
        )
        await self.monitor.start()

    def zone_changed(self, zone_id: str, _change_id: str | None = None) -> None:
        """A hosted zone changed in the store: compile it and serve it (coalescing changes
        that arrive while a publish runs)."""
        self._dirty.add(zone_id)
        self._request_publish()

    def _request_publish(self) -> None:
        state = self._publish
        if state.task is not None and not state.task.done():
            state.again = True
            return
        state.task = asyncio.get_running_loop().create_task(self._publish_loop())

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._publish.again = False
            dirty, self._dirty = self._dirty, set()
            external, self._external = self._external, False
            started = time.monotonic()
            try:
                hosted, pending = await loop.run_in_executor(
                    self.store_thread, self._recompile, dirty, external
                )
            except Exception:
                log.exception("compiling changed hosted zones failed; still serving the old ones")
            else:
                compiled = time.monotonic()
                self.hosted = hosted
                generation = await self._swap_snapshot()
                await self._mark_insync(pending)
                log.info(
                    "published %d changes (snapshot %d) in %.0f ms (compile %.0f ms)",
                    len(pending),
                    generation,
                    (time.monotonic() - started) * 1000,
                    (compiled - started) * 1000,
                )
            if not self._publish.again and not self._dirty and not self._external:
                return

    def _recompile(
        self, dirty: set[str], external: bool
    ) -> tuple[dict[dns.name.Name, ServedZone], list[str]]:
        """(hosted zones compiled from the store now, the changes that brings in sync)."""
        store = self.store
        pending = store.pending_changes()
        env = self._policy_environment()
        if external:
            with collector_paused():
                hosted = load_hosted_zones(store, env)
            freeze_loaded()
            return hosted, pending
        hosted = {o: s for o, s in self.hosted.items() if s.hosted_zone_id not in dirty}
        for zone_id in sorted(dirty):
            served = compile_hosted_zone(store, zone_id, env)
            if served is not None:
                hosted[served.origin] = served
        return hosted, pending

    async def _mark_insync(self, change_ids: list[str]) -> None:
        if change_ids:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.store_thread, self.store.mark_insync, change_ids)

    async def _resign_signed_zones(self) -> None:
        """Every ``RESIGN_CHECK`` seconds, ``_resign_due`` now."""
        while True:
            await asyncio.sleep(RESIGN_CHECK)
            await self._resign_due(time.time())

    async def _resign_due(self, now: float) -> None:
        """Recompile each signed hosted zone once half its signatures' validity has passed
        (``ServedZone.resign_at``), so that no served RRSIG comes near its expiration
        (RFC 4034 §3.1.5; fastdns.dnssec.signer), and when its ZSK rollover moves on (as of
        ``now``). Either moves the zone's serial (fastdns.dnssec.serial): a secondary must
        transfer the new signatures and keys."""
        loop = asyncio.get_running_loop()
        try:
            # ZSK rollover by pre-publication moves on with the clock (keystore).
            rolled = await loop.run_in_executor(
                self.store_thread, lambda: KeyStore(self.store).roll_all(now)
            )
        except Exception:
            log.exception("cannot roll the zone-signing keys")
            rolled = []
        for zone_id in rolled:
            log.info("zone-signing key rollover step in hosted zone %s", zone_id)
            self.zone_changed(zone_id)
        for served in list(self.hosted.values()):
            if served.resign_at is None or now < served.resign_at:
                continue
            zone_id = served.hosted_zone_id
            log.info("re-signing hosted zone %s", zone_id)
            try:
                await loop.run_in_executor(
                    self.store_thread,
                    lambda zone_id=zone_id: KeyStore(self.store).record_resign(zone_id),
                )
            except Exception:
                log.exception("cannot record the re-signing of hosted zone %s", zone_id)
            self.zone_changed(zone_id)

    async def _poll_external_changes(self) -> None:
        """Pick up writes by other processes (``fastdns zone import``) within a second."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(EXTERNAL_CHANGE_POLL)
            try:
                changed = await loop.run_in_executor(self.store_thread, self.store.external_changes)
            except Exception:
                log.exception("cannot check the state database for changes")
                continue
            if changed:
                log.info("the state database was changed by another process; reloading it")
                self._external = True
                self._request_publish()


def serve(config: ServerConfig, zone_load: ZoneLoadAhead | None = None) -> int:
    """Run ``fastdns serve`` under uvloop until SIGTERM/SIGINT; the process exit status.
    ``zone_load``: the zone directory's load, if the caller started it ahead."""
    import uvloop

    supervisor = Supervisor(config, zone_load)
    try:
        return uvloop.run(supervisor.run())
    except StartupError as exc:
        log.error("%s", exc)
        return 1
