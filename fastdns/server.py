"""The running server: load and compile a zone directory, bind the listeners, reload on SIGHUP.

Lifecycle (``serve(config)``): load every ``<origin>.zone`` of the zone directory, compile the
zones that are valid into one ``Catalog``, bind UDP and TCP on every listen address, then answer
until SIGTERM or SIGINT. SIGHUP reloads the directory in a worker thread and installs the new
catalog with one attribute assignment (``ServingState.catalog``), so every query is answered
entirely from the old zones or entirely from the new ones.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.name

from fastdns.compile import compile_zone
from fastdns.config import ListenAddress, ServerConfig
from fastdns.model import Zone, ZoneLoadError
from fastdns.transport import (
    ServingState,
    TcpConnections,
    UdpProtocol,
    bind_tcp,
    bind_udp,
)
from fastdns.zonedir import load_zone_dir
from fastdns.zonefile import ZONE_FILE_SUFFIX, origin_from_file_name

log = logging.getLogger("fastdns")


class StartupError(Exception):
    """The server cannot start; the message says why (printed as is by the CLI)."""


@dataclass(frozen=True)
class ServedZone:
    """A zone as it is being served: its compiled image and what to log about it."""

    origin: dns.name.Name
    image: bytes
    record_sets: int
    serial: int | None
    source: str | None


@dataclass
class ZoneLoad:
    """The result of reading a zone directory."""

    zones: dict[dns.name.Name, ServedZone] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # ``file:line: reason`` each
    kept: list[ServedZone] = field(default_factory=list)  # failed now, previous version kept


def zone_summary(zone: Zone) -> tuple[int, int | None]:
    """(number of record sets, SOA serial or None) of a zone."""
    soa = zone.soa
    serial = soa.rdatas[0].serial if soa is not None and soa.rdatas else None
    return sum(1 for _ in zone), serial


def _origins_on_disk(zone_dir: Path) -> set[dns.name.Name]:
    """The origins the ``<origin>.zone`` files of ``zone_dir`` name (files that still exist)."""
    origins = set()
    for path in zone_dir.glob("*" + ZONE_FILE_SUFFIX):
        try:
            origin = origin_from_file_name(path)
        except ZoneLoadError:
            continue
        if origin is not None and path.is_file():
            origins.add(origin)
    return origins


def load_zones(
    zone_dir: Path, previous: Mapping[dns.name.Name, ServedZone] | None = None
) -> ZoneLoad:
    """Load and compile every zone of ``zone_dir``.

    A zone that fails to load, validate or compile is left out and its errors are returned; if
    ``previous`` has a version of it and its file is still there, that version is kept. Zones
    whose files are gone are dropped.
    """
    zones, errors = load_zone_dir(zone_dir)
    result = ZoneLoad(errors=[str(e) for e in errors])
    for zone in zones:
        try:
            image = compile_zone(zone)
        except Exception as exc:  # a compiler bug must not take the other zones down
            log.debug("compiling %s failed", zone.origin, exc_info=True)
            result.errors.append(f"{zone.source or zone.origin}:0: cannot compile zone: {exc}")
            continue
        record_sets, serial = zone_summary(zone)
        result.zones[zone.origin] = ServedZone(zone.origin, image, record_sets, serial, zone.source)
    if previous:
        on_disk = _origins_on_disk(zone_dir)
        for origin, served in previous.items():
            if origin not in result.zones and origin in on_disk:
                result.zones[origin] = served
                result.kept.append(served)
    return result


def build_catalog(zones: Mapping[dns.name.Name, ServedZone], udp_max_payload: int):
    """One ``Catalog`` serving ``zones`` (in canonical origin order, for reproducibility)."""
    # Imported here so that check-zone (which uses zone_summary) works without the extension.
    from fastdns._native import _core

    images = [zones[origin].image for origin in sorted(zones)]
    return _core.Catalog(images, udp_max_payload)


def _log_load(load: ZoneLoad) -> None:
    for error in load.errors:
        log.error("%s", error)
    kept = {served.origin for served in load.kept}
    for origin in sorted(load.zones):
        served = load.zones[origin]
        if origin in kept:
            log.warning(
                "zone %s: the new version failed, still serving serial %s",
                origin,
                served.serial,
            )
        else:
            log.info(
                "zone %s: serving %d record sets, serial %s",
                origin,
                served.record_sets,
                served.serial,
            )
    if not load.zones:
        log.warning("no zones to serve: every query will be refused")


class Server:
    """A fastdns server for one ``ServerConfig``; ``await run()`` serves until signalled."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.state = ServingState(None)
        self.zones: dict[dns.name.Name, ServedZone] = {}
        self.connections = TcpConnections(
            self.state,
            idle_timeout=config.tcp_idle_timeout,
            max_connections=config.tcp_max_connections,
        )
        self._udp_transports: list[asyncio.DatagramTransport] = []
        self._tcp_servers: list[asyncio.AbstractServer] = []
        self._stop: asyncio.Event | None = None
        self._reload_task: asyncio.Task | None = None
        self._reload_again = False

    def load(self) -> None:
        """Load the zone directory and build the first catalog (before any listener opens)."""
        zone_dir = self.config.zone_dir
        if not zone_dir.is_dir():
            raise StartupError(f"zone directory {zone_dir} does not exist or is not a folder")
        load = load_zones(zone_dir)
        _log_load(load)
        self.zones = load.zones
        self.state.catalog = build_catalog(self.zones, self.config.udp_max_payload)

    async def start(self) -> None:
        """Bind every listen address; raises ``StartupError`` if none could be bound."""
        loop = asyncio.get_running_loop()
        for address in self.config.listen:
            try:
                await self._listen(loop, address)
            except OSError as exc:
                log.error("cannot listen on %s: %s", address, exc.strerror or exc)
        if not self._udp_transports:
            wanted = ", ".join(str(a) for a in self.config.listen)
            raise StartupError(f"could not listen on any address ({wanted}); see the log above")

    async def _listen(self, loop: asyncio.AbstractEventLoop, address: ListenAddress) -> None:
        # Bind both sockets before using either, so an address is served over UDP and TCP or not
        # at all.
        udp_sock = bind_udp(address)
        try:
            tcp_sock = bind_tcp(address)
        except BaseException:
            udp_sock.close()
            raise
        udp_transport, _ = await loop.create_datagram_endpoint(
            lambda: UdpProtocol(self.state), sock=udp_sock
        )
        tcp_server = await loop.create_server(self.connections.protocol, sock=tcp_sock)
        self._udp_transports.append(udp_transport)
        self._tcp_servers.append(tcp_server)
        log.info("listening on %s (UDP and TCP)", address)

    async def run(self) -> int:
        """Load, listen, serve until SIGTERM/SIGINT; the exit status (0)."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        log.debug("settings: %s", self.config)
        self.load()
        await self.start()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        log.info("fastdns ready: %d zones", len(self.zones))
        try:
            await self._stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.close()
        log.info("fastdns stopped")
        return 0

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def close(self) -> None:
        """Close the listeners and every open TCP connection."""
        for server in self._tcp_servers:
            server.close()
        for transport in self._udp_transports:
            transport.close()
        self.connections.close_all()
        if self._reload_task is not None:
            self._reload_task.cancel()
        self._tcp_servers.clear()
        self._udp_transports.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks

    # -- reload

    def request_reload(self) -> None:
        """Reload the zone directory (SIGHUP). A request during a reload runs one more after it."""
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True
            return
        self._reload_task = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._reload_again = False
            log.info("reloading zones from %s", self.config.zone_dir)
            previous = dict(self.zones)
            try:
                load, catalog = await loop.run_in_executor(None, self._build, previous)
            except Exception as exc:
                log.error("reload failed, still serving the previous zones: %s", exc)
                log.debug("reload failure", exc_info=True)
            else:
                _log_load(load)
                for origin in sorted(set(previous) - set(load.zones)):
                    log.info("zone %s: no longer served (file removed)", origin)
                self.zones = load.zones
                self.state.catalog = catalog  # the swap: one assignment
                log.info(
                    "reload finished: %d zones served, %d errors",
                    len(load.zones),
                    len(load.errors),
                )
            if not self._reload_again:
                return

    def _build(self, previous: Mapping[dns.name.Name, ServedZone]):
        load = load_zones(self.config.zone_dir, previous)
        return load, build_catalog(load.zones, self.config.udp_max_payload)


def serve(config: ServerConfig) -> int:
    """Run a server under uvloop until SIGTERM/SIGINT; the process exit status."""
    import uvloop

    server = Server(config)
    try:
        return uvloop.run(server.run())
    except StartupError as exc:
        log.error("%s", exc)
        return 1


__all__ = [
    "ServedZone",
    "Server",
    "StartupError",
    "ZoneLoad",
    "build_catalog",
    "load_zones",
    "serve",
    "zone_summary",
]
