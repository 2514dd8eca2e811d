"""UDP and TCP listeners: bytes in, ``catalog.answer`` bytes out.

Both protocols read the catalog through one ``ServingState`` object each time a message arrives,
so a reload that assigns ``state.catalog`` switches every listener at once, between two messages,
and no message is answered from a mix of old and new zones. All DNS logic is in the catalog; this
module only frames, limits and times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from fastdns.config import ListenAddress

log = logging.getLogger("fastdns.transport")

# RFC 1035 §4.2.2: every TCP message is preceded by its length as two octets.
_LENGTH_PREFIX = 2
# Per TCP connection, answers queued for a client that does not read. Above this we stop reading
# its queries (TCP flow control then slows the client down) until the queue drains.
TCP_WRITE_HIGH_WATER = 64 * 1024
TCP_BACKLOG = 1024
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # absorbs bursts; the kernel caps it at net.core.rmem_max


class ServingState:
    """What the transports answer from. ``catalog`` is replaced whole, never mutated."""

    __slots__ = ("catalog",)

    def __init__(self, catalog) -> None:
        self.catalog = catalog


class UdpProtocol(asyncio.DatagramProtocol):
    """One datagram, one ``catalog.answer`` call, at most one datagram back."""

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self.transport: asyncio.DatagramTransport | None = None
        self.paused = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        reply = self.state.catalog.answer(data, False)
        # While the socket's send buffer is full, drop answers rather than queue them: under
        # overload a queue only adds latency and memory, and the client will retry.
        if reply is not None and not self.paused:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors caused by earlier answers (port unreachable, ...): nothing to do.
        pass

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False


class TcpConnections:
    """The TCP connections of all listeners: the shared limit and the list to close at exit."""

    def __init__(self, state: ServingState, *, idle_timeout: float, max_connections: int) -> None:
        self.state = state
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.active: set[TcpProtocol] = set()
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
        self.loop: asyncio.AbstractEventLoop | None = None
        self.last_receive = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
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
        if not self.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.closing:
            if not self.peer_eof:
                self.transport.resume_reading()
            self._answer_buffered()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.connections.active.discard(self)
        self.buffer = bytearray()

    # -- work

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
        buf = self.buffer
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
            reply = self.connections.state.catalog.answer(query, True)
            if reply is None:
                self.close()
                return
            self.transport.write(len(reply).to_bytes(2, "big") + reply)
        if pos:
            del buf[:pos]
        if self.peer_eof and not self.write_paused:
            # Whatever is left is an incomplete message that can never be completed.
            self.close()

    def _idle_check(self) -> None:
        if self.closing:
            return
        # One timer per connection, re-armed for the remaining time instead of being reset on
        # every read.
        remaining = self.connections.idle_timeout - (self.loop.time() - self.last_receive)
        if remaining <= 0:
            self.close()
        else:
            self.timer = self.loop.call_later(remaining, self._idle_check)


def _sockaddr(address: ListenAddress, sock_type: int):
    flags = socket.AI_NUMERICHOST | socket.AI_PASSIVE
    infos = socket.getaddrinfo(address.host, address.port, address.family, sock_type, 0, flags)
    return infos[0][4]


def bind_udp(address: ListenAddress) -> socket.socket:
    """A bound, non-blocking UDP socket for ``address``; ``OSError`` if it cannot be bound."""
    sock = socket.socket(address.family, socket.SOCK_DGRAM)
    try:
        if address.family == socket.AF_INET6:
            # [::] must not also claim IPv4, so that 0.0.0.0 can be listed as well.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        sock.bind(_sockaddr(address, socket.SOCK_DGRAM))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_tcp(address: ListenAddress) -> socket.socket:
    """A bound, listening, non-blocking TCP socket for ``address`` (SO_REUSEADDR set)."""
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        # Restarting the server must not wait for old connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if address.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(_sockaddr(address, socket.SOCK_STREAM))
        sock.listen(TCP_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
