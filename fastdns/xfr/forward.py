"""UPDATE forwarding (RFC 2136 §6): an UPDATE of a secondary zone goes to the zone's primaries.

The message is sent as the client signed it, under a new message ID (§6: the forwarder is a
requestor of its own), over TCP (§6.2: required when the client used TCP, allowed when it used
UDP), to the primaries in the order the secondary zone lists them -- the servers it transfers
from (§6.1) -- the next one tried when one cannot be reached or does not answer (§6.5). The
first answer goes back to the client with the client's ID restored (§6.6); the forwarder
answers nothing before it (§6.4).

A TSIG (RFC 8945) covers the request's Original ID, not the header's, so the primary still
verifies the client's signature under the new ID (§4.3.3, §5.2); the primary signs its answer,
which the client verifies the same way.
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Iterable

from fastdns.xfr.config import NotifyTarget

log = logging.getLogger("fastdns.xfr")

__all__ = ["FORWARD_TIMEOUT", "forward_update"]

FORWARD_TIMEOUT = 5.0  # seconds for one primary to answer (connect, send, receive)
HEADER_LEN = 12


def _exchange(target: NotifyTarget, message: bytes, timeout: float) -> bytes:
    """One framed TCP exchange (RFC 1035 §4.2.2) with ``target``; its first response."""
    with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(len(message).to_bytes(2, "big") + message)
        head = _read(sock, 2)
        return _read(sock, int.from_bytes(head, "big"))


def _read(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the primary closed the connection")
        data += chunk
    return bytes(data)


def forward_update(
    wire: bytes, primaries: Iterable[NotifyTarget], timeout: float = FORWARD_TIMEOUT
) -> tuple[bytes, NotifyTarget] | None:
    """Forward UPDATE ``wire`` to the first of ``primaries`` that answers: (its answer with
    the request's ID, that primary), or None when none does."""
    client_id = wire[:2]
    for target in primaries:
        forward_id = secrets.token_bytes(2)
        try:
            reply = _exchange(target, forward_id + wire[2:], timeout)
        except (OSError, ConnectionError) as exc:
            log.info("UPDATE forwarding to %s failed: %s", target, exc)
            continue
        if len(reply) < HEADER_LEN or reply[:2] != forward_id or not reply[2] & 0x80:
            log.info("UPDATE forwarding to %s: not an answer to it", target)
            continue
        return client_id + reply[2:], target
    return None
