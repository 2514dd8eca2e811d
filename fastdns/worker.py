"""A worker: serves the supervisor's zone snapshot on its own sockets, told what to do over a
control socket.

The supervisor starts each worker as ``python -m fastdns.worker --control-fd N`` (a fresh
interpreter, never a fork of the supervisor's running event loop; not through the ``fastdns``
command line, whose parser imports every subcommand), with one end of an
``AF_UNIX``/``SOCK_SEQPACKET`` socket pair as descriptor N. Each message on it is one JSON
object; descriptors travel with it as ``SCM_RIGHTS`` (``socket.send_fds``).

supervisor -> worker:
    ``{"op": "start", "generation": G, "settings": {...}}`` + [counter table, snapshot, health
    table, the snapshot's image segments...]: the first message; the worker maps them, binds
    its sockets and answers ``ready``.
    ``{"op": "snapshot", "generation": G}`` + [snapshot, its image segments...]: serve this
    snapshot from now on; answered with ``loaded`` (or ``failed``, and the old snapshot
    stays).
    ``{"op": "drain"}``: stop (see ``Worker.drain``) and exit 0.
    ``{"op": "ping"}``: answered with ``{"op": "pong"}`` (the heartbeat; a worker silent for
    ``HEARTBEAT_TIMEOUT`` is replaced).
worker -> supervisor:
    ``{"op": "ready", "pid": P, "generation": G}``, ``{"op": "loaded", "generation": G}``,
    ``{"op": "failed", "generation": G, "error": "..."}``.
    ``{"op": "control", "peer": "192.0.2.1"}`` + [stream]: a TCP request from that client for
    the control plane (a zone transfer, a signed query), carried on the stream
    (``fastdns.xfr.channel``).

A worker also drains and exits on SIGTERM, and when the control socket closes (the supervisor is
gone). It ignores SIGINT and SIGHUP, which a terminal sends to the whole process group: the
supervisor handles those for every worker.

``Worker`` itself (sockets, snapshot swaps, drain) does not depend on the control socket; with
``--workers 0`` the supervisor runs one in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import sys
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from fastdns.config import UDP_RECEIVERS, ListenAddress, parse_listen
from fastdns.health.table import open_health_table
from fastdns.metrics import open_counters
from fastdns.querylog import QueryLog
from fastdns.snapshot import MAX_SEGMENTS, SnapshotParts, open_snapshot_parts
from fastdns.transport import Listeners
from fastdns.xfr.channel import open_stream

log = logging.getLogger("fastdns.worker")

__all__ = [
    "DRAIN_GRACE",
    "Worker",
    "WorkerSettings",
    "load_catalog",
    "load_snapshot",
    "main",
    "receive_messages",
    "send_message",
]

# Seconds open TCP connections get, once a worker drains, to receive the answers they are owed.
DRAIN_GRACE = 2.0
MESSAGE_LIMIT = 64 * 1024
MAX_FDS = 3 + MAX_SEGMENTS  # the start message's three, and the snapshot's segments


# -- control messages


def send_message(sock: socket.socket, message: dict, fds: Sequence[int] = ()) -> None:
    """Send one control message (and descriptors). ``BlockingIOError`` if the peer's queue is
    full; ``OSError`` if the peer is gone."""
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def receive_messages(sock: socket.socket) -> tuple[list[tuple[dict, list[int]]], bool]:
    """Every control message waiting on a non-blocking ``sock``: ([(message, fds)], closed).

    ``closed`` is true once the peer has closed its end. The caller owns the received
    descriptors. A message that is not valid JSON is logged and skipped (its descriptors closed).
    """
    messages = []
    while True:
        try:
            data, fds, flags, _addr = socket.recv_fds(sock, MESSAGE_LIMIT, MAX_FDS)
        except (BlockingIOError, InterruptedError):
            return messages, False
        except OSError:  # ECONNRESET: the peer is gone
            return messages, True
        if not data and not fds:
            return messages, True
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("truncated")
            message = json.loads(data)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            log.error("ignoring a bad control message (%s): %r", exc, data[:200])
            for fd in fds:
                os.close(fd)
            continue
        messages.append((message, fds))


# -- serving


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to know (sent in the start message)."""

    slot: int  # its row in the counter table and its number in logs and metrics
    listen: tuple[ListenAddress, ...]
    udp_max_payload: int
    tcp_idle_timeout: float
    tcp_max_connections: int
    log_level: str = "info"
    drain_grace: float = DRAIN_GRACE
    reuse_port: bool = True  # False only for the in-process worker of --workers 0
    query_log: str | None = None  # file appended to by every worker (O_APPEND); None: off
    udp_receiver: str = UDP_RECEIVERS[0]  # fastdns.config.UDP_RECEIVERS

    def to_json(self) -> dict:
        values = asdict(self)
        values["listen"] = [str(address) for address in self.listen]
        return values

    @classmethod
    def from_json(cls, values: dict) -> WorkerSettings:
        values = dict(values)
        values["listen"] = tuple(parse_listen(text) for text in values["listen"])
        return cls(**values)


def open_query_log(path: str, zone_names: list[str]) -> QueryLog:
    """A query log appending to ``path``: one ``write`` per batch on an O_APPEND descriptor, so
    lines from several workers never interleave within a line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    return QueryLog(lambda text: os.write(fd, text.encode()), zone_names)


# Validated images of segments (fastdns.snapshot.ImageSegment) still held by a catalog, by the
# segment's key: a zone that did not change is neither checked nor mapped twice. Weak, so an
# image goes when the last catalog using it does.
_segment_images: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def load_snapshot(fds: int | Sequence[int], udp_max_payload: int, health=None):
    """``(catalog, zone names)`` for the snapshot in ``fds`` (its descriptor, then those of
    the image segments it names): a ``Catalog`` over it, mapped read-only and shared (the
    descriptors may be closed afterwards), and what the query log calls each of its zones
    (hosted zone IDs; origins when the snapshot names none). ``health``: the shared health
    table's mapping, or None. Raises ``SnapshotError``/``ValueError`` for a bad snapshot."""
    fd, *segment_fds = [fds] if isinstance(fds, int) else fds
    return catalog_of_parts(open_snapshot_parts(fd, segment_fds), udp_max_payload, health)


def catalog_of_parts(parts: SnapshotParts, udp_max_payload: int, health=None):
    """``load_snapshot`` of a snapshot already opened (``fastdns.snapshot.open_snapshot_parts``)."""
    from fastdns._native import _core
    from fastdns.collector import collector_paused

    images, classifiers, names, keys = parts
    zones = []
    # A ZoneImage per zone and no reference cycles: collections started meanwhile would walk
    # every one made so far (100,000 zones: a quarter of the time) and free nothing.
    with collector_paused():
        for image, key in zip(images, keys, strict=True):
            zone = _segment_images.get(key) if key is not None else None
            if zone is None:
                zone = _core.ZoneImage(image)
                if key is not None:
                    _segment_images[key] = zone
            zones.append(zone)
        catalog = _core.Catalog(zones, udp_max_payload, classifiers, health)
    if names is None:
        names = [zone.origin for zone in catalog.zones]
    return catalog, names


def load_catalog(fds: int | Sequence[int], udp_max_payload: int, health=None):
    """The ``Catalog`` of ``load_snapshot``."""
    return load_snapshot(fds, udp_max_payload, health)[0]


class Worker:
    """One serving process's listeners and the snapshot they answer from."""

    def __init__(self, settings: WorkerSettings, counters=None, health=None) -> None:
        self.settings = settings
        self.counters = counters
        self.health = health  # the shared health table's mapping (routing policies), or None
        self.generation = 0
        self.listeners: Listeners | None = None
        # peer -> a stream to the control plane (fastdns.xfr.channel.open_stream), or None
        self.control_plane = None

    async def start(
        self, catalog, generation: int, zone_names: list[str] | None = None
    ) -> list[ListenAddress]:
        """Bind every listen address and answer from ``catalog``; the addresses served (an
        address that cannot be bound is logged and left out)."""
        settings = self.settings
        self.generation = generation
        self.listeners = Listeners(
            catalog,
            self.counters,
            idle_timeout=settings.tcp_idle_timeout,
            max_connections=settings.tcp_max_connections,
            control_plane=self.control_plane,
            udp_receiver=settings.udp_receiver,
        )
        if settings.query_log:
            names = zone_names or [zone.origin for zone in catalog.zones]
            self.listeners.set_query_log(open_query_log(settings.query_log, names))
        return await self.listeners.open(settings.listen, reuse_port=settings.reuse_port)

    def install(self, fds: int | Sequence[int], generation: int) -> None:
        """Serve the snapshot in ``fds`` (see ``load_snapshot``) from the next query on (the
        swap is atomic: it runs on the loop thread, between two UDP batches and two TCP
        messages). On error the previous snapshot stays and the exception propagates."""
        catalog, names = load_snapshot(fds, self.settings.udp_max_payload, self.health)
        assert self.listeners is not None
        self.listeners.set_catalog(catalog, names)
        self.generation = generation
        log.debug("serving snapshot %d", generation)

    async def drain(self) -> None:
        """Stop accepting TCP connections, answer what is queued on the UDP sockets, give open
        TCP connections ``drain_grace`` seconds to receive their answers, close everything."""
        if self.listeners is not None:
            await self.listeners.drain(self.settings.drain_grace)


class WorkerProcess:
    """The worker process's event loop: a ``Worker`` driven by the control socket."""

    def __init__(
        self, control: socket.socket, worker: Worker, catalog, generation: int, zone_names=None
    ) -> None:
        self.control = control
        self.worker = worker
        self.catalog = catalog
        self.generation = generation
        self.zone_names = zone_names
        self._stop: asyncio.Event | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.worker.control_plane = functools.partial(
            open_stream, functools.partial(send_message, self.control)
        )
        served = await self.worker.start(self.catalog, self.generation, self.zone_names)
        self.catalog = None  # the listeners hold it now; a swap must be able to free it
        if not served:
            log.error("could not listen on any address; see the log above")
            return 1
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        self.control.setblocking(False)
        loop.add_reader(self.control.fileno(), self._on_control)
        self._send({"op": "ready", "pid": os.getpid(), "generation": self.generation})
        await self._stop.wait()
        loop.remove_reader(self.control.fileno())
        loop.remove_signal_handler(signal.SIGTERM)
        await self.worker.drain()
        log.debug("stopped")
        return 0

    def _send(self, message: dict) -> None:
        try:
            send_message(self.control, message)
        except OSError as exc:  # the supervisor is gone or stuck: it will notice us anyway
            log.warning("cannot reach the supervisor: %s", exc)

    def _on_control(self) -> None:
        messages, closed = receive_messages(self.control)
        for message, fds in messages:
            try:
                self._handle(message, fds)
            finally:
                for fd in fds:
                    os.close(fd)
        if closed:
            log.warning("the supervisor is gone: stopping")
            self._stop.set()

    def _handle(self, message: dict, fds: list[int]) -> None:
        op = message.get("op")
        if op == "snapshot" and fds:
            generation = int(message["generation"])
            try:
                self.worker.install(fds, generation)
            except Exception as exc:
                log.error(
                    "cannot serve snapshot %d, still serving %d: %s",
                    generation,
                    self.worker.generation,
                    exc,
                )
                self._send({"op": "failed", "generation": generation, "error": str(exc)})
            else:
                self._send({"op": "loaded", "generation": generation})
        elif op == "ping":
            self._send({"op": "pong"})  # the supervisor's heartbeat: this loop is alive
        elif op == "drain":
            self._stop.set()
        else:
            log.error("ignoring an unknown control message: %r", message)


class NotNeeded(Exception):
    """The supervisor closed the control socket before sending a start message: it started
    this process ahead (``ProcessPool.prestart``) and then did not need it."""


def _receive_start(control: socket.socket) -> tuple[dict, list[int]]:
    # No timeout: the supervisor may start this process before it loads the zones, which can
    # take minutes; if it exits, the socket closes and this returns.
    data, fds, _flags, _addr = socket.recv_fds(control, MESSAGE_LIMIT, MAX_FDS)
    if not data and not fds:
        raise NotNeeded()
    message = json.loads(data) if data else {}
    if message.get("op") != "start" or len(fds) < 3:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"expected a start message with 3 descriptors or more, got {data[:200]!r}")
    return message, fds


def main(control_fd: int) -> int:
    """Run a worker on control socket ``control_fd`` until drained; the exit status."""
    # Before anything else, so that a ^C in the terminal reaches only the supervisor's handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s worker: %(message)s")
    control = socket.socket(fileno=control_fd)
    # Imported before the wait, which may be the supervisor loading its zones
    # (ProcessPool.prestart): then these imports cost the start nothing.
    import uvloop

    from fastdns._native import _core  # noqa: F401  (load_snapshot needs it)

    try:
        message, (counters_fd, snapshot_fd, health_fd, *segment_fds) = _receive_start(control)
    except NotNeeded:
        return 0
    except (OSError, ValueError) as exc:
        log.error("no start message from the supervisor: %s", exc)
        return 1
    try:
        settings = WorkerSettings.from_json(message["settings"])
        generation = int(message["generation"])
        logging.basicConfig(
            level=settings.log_level.upper(),
            format=f"%(asctime)s %(levelname)s worker {settings.slot}: %(message)s",
            stream=sys.stderr,
            force=True,
        )
        counters = open_counters(counters_fd, settings.slot)
        health = open_health_table(health_fd)
        catalog, zone_names = load_snapshot(
            [snapshot_fd, *segment_fds], settings.udp_max_payload, health
        )
    except Exception as exc:
        log.error("cannot start: %s", exc)
        log.debug("start failure", exc_info=True)
        return 1
    finally:
        for fd in (counters_fd, snapshot_fd, health_fd, *segment_fds):
            os.close(fd)

    process = WorkerProcess(
        control, Worker(settings, counters, health), catalog, generation, zone_names
    )
    del catalog
    with contextlib.closing(control):
        return uvloop.run(process.run())


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m fastdns.worker",
        description="A fastdns worker process; started by `fastdns serve`, not by hand.",
    )
    parser.add_argument("--control-fd", type=int, required=True, metavar="N")
    sys.exit(main(parser.parse_args().control_fd))
