"""The stream between a worker and the supervisor that carries one forwarded request.

For each message the C answer function leaves to the control plane (``Catalog.answer``
returned ``b""``), the worker makes a Unix stream socket pair and hands one end to the
supervisor (with the client's address) over its control socket (``fastdns.worker``), or
directly with ``--workers 0``. A request that came over UDP (NOTIFY, UPDATE, IXFR) is marked
so, and gets one response that fits a datagram. On the stream, both ways, every message is
framed as on DNS TCP (RFC 1035 §4.2.2: a two-octet length, then the message): the worker writes
the request, the supervisor writes the response messages (one, or a whole zone transfer) and
closes its end.

Worker side: ``open_stream`` and ``relay``; supervisor side: ``ControlPlaneServer``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a worker imports this module for open_stream alone: not the whole service
    from fastdns.xfr.service import ControlPlaneService

log = logging.getLogger("fastdns.xfr")

__all__ = ["ControlPlaneServer", "open_stream", "relay"]

# Seconds the supervisor waits for the request, or for the worker to take the next message.
IO_TIMEOUT = 60.0
TRANSFER_THREADS = 4  # requests served at once; more wait their turn


def open_stream(
    send: Callable[[dict, Sequence[int]], None], peer: str, udp: bool = False
) -> socket.socket:
    """A stream to the supervisor for one request from ``peer`` (that came over UDP when
    ``udp``: its answer must fit one datagram): ``send(message, fds)`` hands the far end over
    (``{"op": "control", "peer": ..., "udp": ...}``); ``OSError`` if it cannot."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        send({"op": "control", "peer": peer, "udp": udp}, [theirs.fileno()])
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return ours


async def relay(
    sock: socket.socket, request: bytes, deliver: Callable[[bytes], Awaitable[None]]
) -> int:
    """Send ``request`` on ``sock`` and pass every framed response (length prefix included) to
    ``deliver`` until the supervisor closes the stream; the number of responses."""
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    count = 0
    try:
        writer.write(len(request).to_bytes(2, "big") + request)
        await writer.drain()
        while True:
            try:
                head = await reader.readexactly(2)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise
                return count
            body = await reader.readexactly(int.from_bytes(head, "big"))
            await deliver(head + body)
            count += 1
    finally:
        writer.close()


class ControlPlaneServer:
    """The supervisor's end: serves each stream handed over on a thread of its own pool."""

    def __init__(self, service: ControlPlaneService, threads: int = TRANSFER_THREADS) -> None:
        self.service = service
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, "fastdns-xfr")

    def accept(self, fd: int, peer: object, udp: bool = False) -> None:
        """Serve the stream ``fd`` (now owned here) for a request from ``peer`` (over UDP
        when ``udp``)."""
        sock = socket.socket(fileno=fd)
        if not isinstance(peer, str):
            sock.close()
            return
        try:
            self._pool.submit(self._serve, sock, peer, udp)
        except RuntimeError:  # shut down
            sock.close()

    def open_local(self, peer: str, udp: bool = False) -> socket.socket:
        """``open_stream`` for a worker in this process (``--workers 0``)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.accept(theirs.detach(), peer, udp)
        return ours

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _serve(self, sock: socket.socket, peer: str, udp: bool) -> None:
        with contextlib.closing(sock):
            sock.settimeout(IO_TIMEOUT)
            try:
                request = _read_frame(sock)
                if request is None:
                    return
                for message in self.service.respond(request, peer, udp=udp):
                    sock.sendall(len(message).to_bytes(2, "big") + message)
            except OSError as exc:
                log.info("request from %s: the stream broke: %s", peer, exc)
            except Exception:
                log.exception("request from %s failed", peer)


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exactly(sock, 2)
    return None if head is None else _read_exactly(sock, int.from_bytes(head, "big"))


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)
