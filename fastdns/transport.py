"""UDP and TCP listeners of one serving process: bytes in, ``catalog.answer`` bytes out.

``Listeners`` owns the sockets of every listen address. UDP is served by the extension's
``UdpResponder``, which drains the socket with ``recvmmsg``, answers the whole batch in C and
replies with ``sendmmsg``, driven in one of two ways (``UDP_RECEIVERS``, the ``udp_receiver``
setting):

- ``"thread"``: a native thread per UDP socket blocks in ``recvmmsg`` and answers without the
  GIL; the event loop only delivers what the thread queues for Python (query-log entries,
  NOTIFY/UPDATE datagrams), woken through an eventfd.
- ``"loop"``: the socket is registered with the event loop (``add_reader``) and each wake-up
  runs ``UdpResponder.on_readable``.

TCP is served by ``TcpProtocol`` on uvloop streams, calling the same C answer function per
message.

``Listeners.set_catalog`` switches every listener to a new catalog at once: every query is
answered entirely from the old zones or entirely from the new ones (the UDP thread answers a
batch under a lock that the swap takes; the loop path and TCP run on the loop thread, between
two batches and two messages). All DNS logic is in the catalog; this module only frames, limits,
times out and drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable

from fastdns.config import UDP_RECEIVERS, ListenAddress

log = logging.getLogger("fastdns.transport")

# RFC 1035 §4.2.2: every TCP message is preceded by its length as two octets.
_LENGTH_PREFIX = 2
# Per TCP connection, answers queued for a client that does not read. Above this we stop reading
# its queries (TCP flow control then slows the client down) until the queue drains.
TCP_WRITE_HIGH_WATER = 64 * 1024
TCP_BACKLOG = 1024
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # absorbs bursts; the kernel caps it at net.core.rmem_max
UDP_DRAIN_CALLS = 16  # at most this many on_readable() calls per socket when draining
# Datagrams (NOTIFY, UPDATE) with the control plane at once per process; more are dropped, so
# that a flood of them costs no more than this many streams.
UDP_CONTROL_MAX = 64


class ServingState:
    """What the TCP listeners answer from. ``catalog`` is replaced whole, never mutated;
    ``counters`` is this process's row of the shared counter table (or None)."""

    __slots__ = ("catalog", "control_plane", "counters", "query_log")

    def __init__(self, catalog, counters=None) -> None:
        self.catalog = catalog
        self.counters = counters
        self.query_log = None  # a fastdns.querylog.QueryLog, or None (off)
        # peer address -> a stream to the supervisor (fastdns.xfr.channel), for the TCP
        # messages the catalog leaves to the control plane; None: those are refused.
        self.control_plane = None


class TcpConnections:
    """The TCP connections of all listeners: the shared limit, and the set to drain at exit."""

    def __init__(self, state: ServingState, *, idle_timeout: float, max_connections: int) -> None:
        self.state = state
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.active: set[TcpProtocol] = set()
        self.draining = False
        self._limit_logged = False

    def protocol(self) -> TcpProtocol:
        return TcpProtocol(self)

    def admit(self, conn: TcpProtocol) -> bool:
        if len(self.active) >= self.max_connections:
            if not self._limit_logged:
                log.warning(
                    "%d TCP connections open, the limit: refusing new ones until some close",
                    self.max_connections,
                )
                self._limit_logged = True
            return False
        self._limit_logged = False
        self.active.add(conn)
        return True

    def close_all(self) -> None:
        for conn in list(self.active):
            conn.close()

    def drain(self) -> None:
        """Take no new queries: close each connection, after flushing its answers, as soon as
        it holds no partial message (one with a partial message closes once that is answered)."""
        self.draining = True
        for conn in list(self.active):
            conn.finish_if_idle()

    async def wait_closed(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every connection to close, then abort the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.active and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.active):
            conn.abort()


def _sockaddr_address(sockaddr: bytes) -> tuple | None:
    """A raw ``sockaddr_in``/``sockaddr_in6`` as the address tuple ``sendto`` takes."""
    if len(sockaddr) < 8:
        return None
    family = struct.unpack_from("=H", sockaddr)[0]
    port = struct.unpack_from("!H", sockaddr, 2)[0]
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, sockaddr[4:8]), port
    if family == socket.AF_INET6 and len(sockaddr) >= 28:
        flowinfo, scope = (
            struct.unpack_from("!I", sockaddr, 4)[0],
            struct.unpack_from("=I", sockaddr, 24)[0],
        )
        return socket.inet_ntop(socket.AF_INET6, sockaddr[8:24]), port, flowinfo, scope
    return None


def _packed_address(host: str) -> bytes | None:
    """An address as the hot path takes it: 4 or 16 octets (IPv4-mapped IPv6 as IPv4)."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.packed


class TcpProtocol(asyncio.Protocol):
    """DNS over TCP (RFC 1035 §4.2.2, RFC 7766).

    Queries pipelined on one connection are all answered, each as soon as it is complete
    (RFC 7766 §6.2.1.1). The connection closes when it has been idle (nothing received) for
    ``idle_timeout`` seconds (RFC 7766 §6.2.3), when the peer closes its side, and on input the
    server cannot answer: a zero length prefix (no DNS message is shorter than its 12-octet header,
    so the framing is broken) or a message the catalog drops (``answer`` returned None). Closing is
    the only way to tell a TCP client that no answer is coming; RFC 7766 §6.2.3 lets a server close
    a connection at any time and requires clients to cope with that.

    Memory per connection is bounded: at most one partial message (< 64 KiB) is kept between
    reads, and once ``TCP_WRITE_HIGH_WATER`` octets of answers wait for a client that does not
    read, reading stops until they drain.
    """

    def __init__(self, connections: TcpConnections) -> None:
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.write_paused = False
        self.peer_eof = False
        self.closing = False
        self.peer = "-"
        self.peer_address: bytes | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.last_receive = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.relaying = False  # a request is with the control plane: later ones wait
        self.relay_task: asyncio.Task | None = None  # held: the loop keeps only weak references
        self.writable: asyncio.Event | None = None

    # -- asyncio callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "-"
        self.peer_address = _packed_address(self.peer)  # for routing policies, once per connection
        if not self.connections.admit(self):
            self.closing = True
            transport.abort()
            return
        transport.set_write_buffer_limits(high=TCP_WRITE_HIGH_WATER)
        self.loop = asyncio.get_running_loop()
        self.last_receive = self.loop.time()
        self.timer = self.loop.call_later(self.connections.idle_timeout, self._idle_check)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_receive = self.loop.time()
        self.buffer += data
        self._answer_buffered()

    def eof_received(self) -> bool:
        # The client has sent all its queries. Answer what is complete, then close; returning True
        # keeps the transport open until the answers are queued (they are flushed before closing).
        self.peer_eof = True
        if not self.closing:
            self._answer_buffered()
        return True

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.writable is not None:
            self.writable.clear()
        if not self.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.writable is not None:
            self.writable.set()
        if not self.closing and not self.relaying:
            if not self.peer_eof:
                self.transport.resume_reading()
            self._answer_buffered()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.writable is not None:
            self.writable.set()  # a relay waiting to write sees the connection is gone
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.connections.active.discard(self)
        self.buffer = bytearray()

    # -- work

    def finish_if_idle(self) -> None:
        """Close (after flushing answers) unless a partial message is waiting for its rest."""
        if not self.buffer and not self.relaying:
            self.close()

    def abort(self) -> None:
        """Close at once, dropping unsent answers."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close after flushing queued answers; abort if the client still has not read them
        after another idle timeout."""
        if self.closing:
            return
        self.closing = True
        self.transport.close()
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(self.connections.idle_timeout, self.transport.abort)

    def _answer_buffered(self) -> None:
        if self.relaying:
            return  # resumed when the control plane's answer is written
        buf = self.buffer
        state = self.connections.state
        size = len(buf)
        pos = 0
        while not self.write_paused and size - pos >= _LENGTH_PREFIX:
            length = buf[pos] << 8 | buf[pos + 1]
            if length == 0:
                self.close()
                return
            end = pos + _LENGTH_PREFIX + length
            if end > size:
                break
            query = bytes(buf[pos + _LENGTH_PREFIX : end])
            pos = end
            # Look the catalog up per message: a reload between two pipelined queries is fine.
            if state.query_log is None:
                reply = state.catalog.answer(query, True, state.counters, self.peer_address)
            else:
                reply, *entry = state.catalog.answer_with_info(
                    query, True, state.counters, self.peer_address
                )
                state.query_log.log_one(*entry, protocol="TCP", resolver=self.peer)
            if reply is None:
                self.close()
                return
            if not reply:  # b"": a zone transfer or a signed query, for the control plane
                del buf[:pos]
                self._forward(query)
                return
            self.transport.write(len(reply).to_bytes(2, "big") + reply)
        if pos:
            del buf[:pos]
        if self.peer_eof and not self.write_paused:
            # Whatever is left is an incomplete message that can never be completed.
            self.close()
        elif self.connections.draining and not buf:
            self.close()

    def _forward(self, query: bytes) -> None:
        """Have the control plane answer ``query``; the messages after it wait until it has.
        (A zone transfer sends nothing for a while: the idle timer waits for it too.)"""
        opener = self.connections.state.control_plane
        if opener is None:
            reply = _refused(query)
            if reply is None:
                self.close()
            else:
                self.transport.write(len(reply).to_bytes(2, "big") + reply)
                self._answer_buffered()
            return
        self.relaying = True
        self.transport.pause_reading()  # what the client sends meanwhile waits in the kernel
        self.writable = asyncio.Event()
        if not self.write_paused:
            self.writable.set()
        self.relay_task = self.loop.create_task(self._relay(opener, query))

    async def _relay(self, opener, query: bytes) -> None:
        from fastdns.xfr.channel import relay

        async def deliver(frame: bytes) -> None:
            await self.writable.wait()
            if self.closing or self.transport.is_closing():
                raise ConnectionError("the client connection closed")
            self.transport.write(frame)

        try:
            sock = opener(self.peer)
            answered = await relay(sock, query, deliver)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("forwarding a request from %s failed: %s", self.peer, exc)
            answered = 0
        except Exception:  # never leave the connection waiting for a relay that is gone
            log.exception("forwarding a request from %s failed", self.peer)
            answered = 0
        self.relaying = False
        if self.closing:
            return
        if not answered:  # the control plane had no answer: all the client can learn is this
            self.close()
            return
        self.last_receive = self.loop.time()
        if not self.write_paused and not self.peer_eof:
            self.transport.resume_reading()
        self._answer_buffered()

    def _idle_check(self) -> None:
        if self.closing:
            return
        if self.relaying:
            self.timer = self.loop.call_later(self.connections.idle_timeout, self._idle_check)
            return
        # One timer per connection, re-armed for the remaining time instead of being reset on
        # every read.
        remaining = self.connections.idle_timeout - (self.loop.time() - self.last_receive)
        if remaining <= 0:
            self.close()
        else:
            self.timer = self.loop.call_later(remaining, self._idle_check)


def _refused(query: bytes) -> bytes | None:
    """REFUSED with the query's question, when nothing but the C catalog answers."""
    import dns.message
    import dns.rcode

    try:
        response = dns.message.make_response(dns.message.from_wire(query, keyring=False))
    except Exception:
        return None
    response.set_rcode(dns.rcode.REFUSED)
    return response.to_wire()


def _sockaddr(address: ListenAddress, sock_type: int):
    flags = socket.AI_NUMERICHOST | socket.AI_PASSIVE
    infos = socket.getaddrinfo(address.host, address.port, address.family, sock_type, 0, flags)
    return infos[0][4]


def bind_udp(address: ListenAddress, *, reuse_port: bool = False) -> socket.socket:
    """A bound, non-blocking UDP socket for ``address``; ``OSError`` if it cannot be bound.

    ``reuse_port``: set SO_REUSEPORT, so that every worker binds its own socket to the address
    and the kernel spreads datagrams over them (by a hash of the client's address and port).
    """
    sock = socket.socket(address.family, socket.SOCK_DGRAM)
    try:
        if address.family == socket.AF_INET6:
            # [::] must not also claim IPv4, so that 0.0.0.0 can be listed as well.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        sock.bind(_sockaddr(address, socket.SOCK_DGRAM))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_tcp(
    address: ListenAddress, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A bound, non-blocking TCP socket for ``address`` (SO_REUSEADDR set), listening unless
    ``listen`` is false. ``reuse_port`` as for ``bind_udp``: the kernel spreads new connections
    over the workers' listening sockets."""
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        # Restarting the server must not wait for old connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if address.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(_sockaddr(address, socket.SOCK_STREAM))
        if listen:
            sock.listen(TCP_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def check_listen(addresses: Iterable[ListenAddress]) -> list[ListenAddress]:
    """The addresses that can be bound for both UDP and TCP right now; the others are logged.

    The supervisor's check before it starts workers: the sockets are bound without
    SO_REUSEPORT, so an address that another process holds (even another fastdns, which the
    workers' SO_REUSEPORT would otherwise silently share it with) fails here, and then closed.
    """
    usable = []
    for address in addresses:
        try:
            bind_udp(address).close()
            bind_tcp(address, listen=False).close()
        except OSError as exc:
            log.error("cannot listen on %s: %s", address, exc.strerror or exc)
        else:
            usable.append(address)
    return usable


class Listeners:
    """The UDP and TCP sockets of every listen address of one serving process.

    UDP goes through ``UdpResponder`` (batched, answered in C); TCP through ``TcpProtocol``. Both
    answer from ``state.catalog`` and count into ``state.counters``.
    """

    def __init__(
        self,
        catalog,
        counters=None,
        *,
        idle_timeout: float,
        max_connections: int,
        control_plane=None,
        udp_receiver: str = UDP_RECEIVERS[0],
    ) -> None:
        if udp_receiver not in UDP_RECEIVERS:
            raise ValueError(f"udp_receiver must be one of {UDP_RECEIVERS}, not {udp_receiver!r}")
        self.udp_receiver = udp_receiver
        self.state = ServingState(catalog, counters)
        self.state.control_plane = control_plane
        self.connections = TcpConnections(
            self.state, idle_timeout=idle_timeout, max_connections=max_connections
        )
        self.addresses: list[ListenAddress] = []
        # (socket, its UdpResponder, the descriptor the loop watches for it)
        self._udp: list[tuple[socket.socket, object, int]] = []
        self._udp_control: set[asyncio.Task] = set()  # datagrams with the control plane now
        self._tcp_servers: list[asyncio.AbstractServer] = []

    async def open(
        self, addresses: Iterable[ListenAddress], *, reuse_port: bool
    ) -> list[ListenAddress]:
        """Bind and serve every address that can be bound (the others are logged); the addresses
        now served."""
        loop = asyncio.get_running_loop()
        for address in addresses:
            try:
                await self._listen(loop, address, reuse_port)
            except OSError as exc:
                log.error("cannot listen on %s: %s", address, exc.strerror or exc)
        return list(self.addresses)

    async def _listen(
        self, loop: asyncio.AbstractEventLoop, address: ListenAddress, reuse_port: bool
    ) -> None:
        # Imported here so that modules using only the socket helpers work without the extension.
        from fastdns._native import _core

        # Bind both sockets before using either, so an address is served over UDP and TCP or not
        # at all.
        udp_sock = bind_udp(address, reuse_port=reuse_port)
        try:
            tcp_sock = bind_tcp(address, reuse_port=reuse_port)
        except BaseException:
            udp_sock.close()
            raise
        try:
            responder = _core.UdpResponder(
                udp_sock.fileno(), self.state.catalog, self.state.counters
            )
            tcp_server = await loop.create_server(self.connections.protocol, sock=tcp_sock)
        except BaseException:
            udp_sock.close()
            tcp_sock.close()
            raise
        if self.state.query_log is not None:
            responder.set_query_log(self.state.query_log)
        responder.set_control(
            lambda datagram, sockaddr: self._control_datagram(udp_sock, datagram, sockaddr)
        )
        if self.udp_receiver == "thread":
            try:
                watched = responder.start_thread()
            except BaseException:
                tcp_server.close()
                udp_sock.close()
                raise
            loop.add_reader(watched, responder.on_wake)
        else:
            watched = udp_sock.fileno()
            loop.add_reader(watched, responder.on_readable)
        self._udp.append((udp_sock, responder, watched))
        self._tcp_servers.append(tcp_server)
        self.addresses.append(address)
        log.debug("listening on %s (UDP and TCP)", address)

    def _control_datagram(self, sock: socket.socket, datagram: bytes, sockaddr: bytes) -> None:
        """A NOTIFY, UPDATE or IXFR datagram the C answer left to the control plane: relay it
        there (``fastdns.xfr.channel``) and send its one answer back from the same socket."""
        opener = self.state.control_plane
        address = _sockaddr_address(sockaddr)
        if opener is None or address is None or len(self._udp_control) >= UDP_CONTROL_MAX:
            return
        task = asyncio.get_running_loop().create_task(
            self._relay_datagram(opener, sock, datagram, address)
        )
        self._udp_control.add(task)  # held: the loop keeps only weak references to tasks
        task.add_done_callback(self._udp_control.discard)

    async def _relay_datagram(self, opener, sock, datagram: bytes, address: tuple) -> None:
        from fastdns.xfr.channel import relay

        replies: list[bytes] = []

        async def deliver(frame: bytes) -> None:
            replies.append(frame[_LENGTH_PREFIX:])

        try:
            await relay(opener(address[0], udp=True), datagram, deliver)
            if replies:
                sock.sendto(replies[0], address)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("forwarding a datagram from %s failed: %s", address[0], exc)
        except Exception:
            log.exception("forwarding a datagram from %s failed", address[0])

    def set_catalog(self, catalog, zone_names: list[str] | None = None) -> None:
        """Answer every later query from ``catalog`` (called on the loop thread: atomic);
        ``zone_names``: what the query log calls its zones (hosted zone IDs), in catalog order
        (None: their origins)."""
        self.state.catalog = catalog
        # The responders first: a UDP thread's log entries from before the swap are delivered
        # by set_catalog, and must still be named with the old catalog's zones.
        for _sock, responder, _watched in self._udp:
            responder.set_catalog(catalog)
        if self.state.query_log is not None:
            self.state.query_log.set_zones(zone_names or [zone.origin for zone in catalog.zones])

    def set_query_log(self, query_log) -> None:
        """Log every query (UDP per batch, TCP per message) to ``query_log``; None: off."""
        self.state.query_log = query_log
        for _sock, responder, _watched in self._udp:
            responder.set_query_log(query_log)

    async def drain(self, grace: float) -> None:
        """Stop serving: stop accepting TCP connections, answer the datagrams already queued on
        the UDP sockets and close them, let open TCP connections finish the answers they are
        owed for up to ``grace`` seconds, then abort what is left."""
        loop = asyncio.get_running_loop()
        for server in self._tcp_servers:
            server.close()
        for sock, responder, watched in self._udp:
            loop.remove_reader(watched)
            responder.stop_thread()  # joins the receive thread, if any; delivers what it queued
            try:
                # Each call handles a bounded number of batches; a few calls empty even a full
                # receive buffer, and a client that keeps sending cannot keep us here.
                for _ in range(UDP_DRAIN_CALLS):
                    if not responder.on_readable():
                        break
            except OSError as exc:
                log.debug("answering the last datagrams on %s failed: %s", sock, exc)
            sock.close()
        self._udp.clear()
        self._tcp_servers.clear()
        self.connections.drain()
        await self.connections.wait_closed(grace)
