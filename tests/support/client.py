"""A DNS client for tests: every response is decoded by both dnspython and dnslib.

The project's rule: dnslib and dnspython are independent decoders of every response fastdns
sends, so ``query`` fails the test when either cannot parse a response or when they disagree on
the header (id, flags, rcode), the section counts or the owner/type/class/TTL of any record.

``exchange_raw`` sends and receives raw wire bytes (no decoding, for malformed-input tests) and
``tcp_pipeline`` sends several queries on one TCP connection before reading any answer.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dnslib

__all__ = [
    "DecoderMismatch",
    "check_decoders_agree",
    "exchange_raw",
    "make_query",
    "query",
    "recv_frame",
    "tcp_connect",
    "tcp_pipeline",
]


class DecoderMismatch(AssertionError):
    """dnspython and dnslib read a response differently (or one of them could not read it)."""


def make_query(
    qname: str | dns.name.Name,
    rdtype: str | int,
    *,
    edns: int | None = None,
    dnssec_ok: bool = False,
    want_id: int | None = None,
    rd: bool = False,
) -> dns.message.QueryMessage:
    """A query message. ``edns``: None for no OPT record, else the advertised UDP payload size.
    ``dnssec_ok`` sets the DO bit (and adds OPT with 1232 if ``edns`` is None). RD is clear by
    default, as a resolver asks an authoritative server."""
    if dnssec_ok and edns is None:
        edns = 1232
    msg = dns.message.make_query(
        qname,
        rdtype,
        use_edns=0 if edns is not None else False,
        payload=edns if edns is not None else 1232,
        want_dnssec=dnssec_ok,
    )
    if not rd:
        msg.flags &= ~dns.flags.RD
    if want_id is not None:
        msg.id = want_id
    return msg


def query(
    host: str,
    port: int,
    qname: str | dns.name.Name,
    rdtype: str | int,
    *,
    tcp: bool = False,
    edns: int | None = None,
    dnssec_ok: bool = False,
    want_id: int | None = None,
    timeout: float = 3,
) -> dns.message.Message:
    """Ask ``host:port`` one question and return the response, decoded by dnspython.

    ``edns``: None sends no OPT record, a number advertises that UDP payload size. The response
    must carry the query's id and be read identically by dnspython and dnslib
    (``DecoderMismatch`` otherwise); no response within ``timeout`` raises ``TimeoutError``.
    """
    msg = make_query(qname, rdtype, edns=edns, dnssec_ok=dnssec_ok, want_id=want_id)
    wire = exchange_raw(host, port, msg.to_wire(), tcp=tcp, timeout=timeout)
    if wire is None:
        transport = "TCP" if tcp else "UDP"
        raise TimeoutError(
            f"no response from {host}:{port} over {transport} within {timeout} s "
            f"to {qname} {dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))}"
        )
    response = check_decoders_agree(wire)
    if response.id != msg.id:
        raise AssertionError(f"response id {response.id} does not match query id {msg.id}")
    return response


def check_decoders_agree(wire: bytes) -> dns.message.Message:
    """Decode ``wire`` with dnspython and dnslib; raise ``DecoderMismatch`` unless they agree."""
    try:
        ours = dns.message.from_wire(wire)
    except Exception as exc:
        raise DecoderMismatch(f"dnspython cannot decode the response: {exc!r}; {wire!r}") from exc
    try:
        theirs = dnslib.DNSRecord.parse(wire)
    except Exception as exc:
        raise DecoderMismatch(f"dnslib cannot decode the response: {exc!r}; {wire!r}") from exc

    problems = []
    header = theirs.header
    if header.id != ours.id:
        problems.append(f"id: dnspython {ours.id}, dnslib {header.id}")
    if header.bitmap != ours.flags:
        problems.append(f"flags: dnspython {ours.flags:#06x}, dnslib {header.bitmap:#06x}")
    # The full RCODE: 4 bits in the header, 8 more in the OPT record's TTL (RFC 6891 §6.1.3).
    opt = [rr for rr in theirs.ar if rr.rtype == dnslib.QTYPE.OPT]
    dnslib_rcode = header.rcode | ((opt[0].ttl >> 24) << 4 if opt else 0)
    if dnslib_rcode != ours.rcode():
        problems.append(f"rcode: dnspython {ours.rcode()}, dnslib {dnslib_rcode}")
    if (ours.opt is not None) != bool(opt):
        problems.append(f"OPT: dnspython {ours.opt is not None}, dnslib {bool(opt)}")

    sections = [
        ("question", _dnspython_questions(ours), _dnslib_questions(theirs.questions), header.q),
        ("answer", _dnspython_records(ours.answer), _dnslib_records(theirs.rr), header.a),
        (
            "authority",
            _dnspython_records(ours.authority),
            _dnslib_records(theirs.auth),
            header.auth,
        ),
        (
            "additional",
            _dnspython_records(ours.additional) + _dnspython_opt(ours),
            _dnslib_records(theirs.ar),
            header.ar,
        ),
    ]
    for name, mine, other, count in sections:
        if len(mine) != count or len(other) != count:
            problems.append(
                f"{name} count: header {count}, dnspython {len(mine)}, dnslib {len(other)}"
            )
        elif sorted(mine) != sorted(other):
            problems.append(f"{name}: dnspython {sorted(mine)}, dnslib {sorted(other)}")
    if problems:
        raise DecoderMismatch(
            "dnspython and dnslib disagree about a response:\n  "
            + "\n  ".join(problems)
            + f"\n{ours}\n{wire!r}"
        )
    return ours


def _labels(labels) -> tuple[bytes, ...]:
    return tuple(label.lower() for label in labels if label)


def _dnspython_questions(msg: dns.message.Message) -> list[tuple]:
    return [(_labels(rrset.name.labels), rrset.rdtype, rrset.rdclass) for rrset in msg.question]


def _dnslib_questions(questions) -> list[tuple]:
    return [(_labels(q.qname.label), q.qtype, q.qclass) for q in questions]


def _dnspython_records(section) -> list[tuple]:
    return [
        (_labels(rrset.name.labels), rrset.rdtype, rrset.rdclass, rrset.ttl)
        for rrset in section
        for _rdata in rrset
    ]


def _dnspython_opt(msg: dns.message.Message) -> list[tuple]:
    # dnspython takes the OPT pseudo-record out of the additional section; dnslib keeps it.
    if msg.opt is None:
        return []
    return [((), dns.rdatatype.OPT, msg.opt.rdclass, msg.opt.ttl)]


def _dnslib_records(section) -> list[tuple]:
    return [(_labels(rr.rname.label), rr.rtype, rr.rclass, rr.ttl) for rr in section]


# -- raw exchanges


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def exchange_raw(
    host: str, port: int, wire: bytes, *, tcp: bool = False, timeout: float = 3
) -> bytes | None:
    """Send ``wire`` as one message and return the first message back (no decoding).

    UDP: one datagram each way. TCP: a fresh connection, the message with its 2-octet length
    prefix, then one framed response. None when nothing arrives within ``timeout`` or, over TCP,
    when the server closes the connection without a complete response.
    """
    if tcp:
        try:
            with tcp_connect(host, port, timeout=timeout) as sock:
                sock.sendall(struct.pack("!H", len(wire)) + wire)
                return recv_frame(sock, deadline=time.monotonic() + timeout)
        except (TimeoutError, ConnectionError):
            return None
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))  # only the server's datagrams reach this socket
        sock.send(wire)
        deadline = time.monotonic() + timeout
        try:
            while True:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    return sock.recv(65535)
                except ConnectionRefusedError:
                    # ICMP port unreachable, e.g. the server is not up yet: keep waiting until
                    # the deadline like a lost datagram.
                    if time.monotonic() >= deadline:
                        return None
                    time.sleep(0.01)
        except TimeoutError:
            return None


@contextlib.contextmanager
def tcp_connect(host: str, port: int, *, timeout: float = 3):
    """A connected TCP socket to ``host:port`` with ``timeout`` set, closed on exit."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def _recv_exactly(sock: socket.socket, size: int, deadline: float) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def recv_frame(sock: socket.socket, *, deadline: float) -> bytes | None:
    """One length-prefixed DNS message from a TCP socket; None if the peer closed first.
    ``TimeoutError`` past ``deadline`` (a ``time.monotonic()`` value)."""
    prefix = _recv_exactly(sock, 2, deadline)
    if prefix is None:
        return None
    (length,) = struct.unpack("!H", prefix)
    return _recv_exactly(sock, length, deadline)


def tcp_pipeline(host: str, port: int, wires: list[bytes], *, timeout: float = 5) -> list[bytes]:
    """Send every message of ``wires`` on one TCP connection (in one write), then read as many
    responses, in the order they arrive (RFC 7766 lets a server answer out of order).

    Raises ``AssertionError`` if the server closes the connection early, ``TimeoutError`` if the
    responses do not all arrive within ``timeout``."""
    payload = b"".join(struct.pack("!H", len(w)) + w for w in wires)
    deadline = time.monotonic() + timeout
    responses = []
    with tcp_connect(host, port, timeout=timeout) as sock:
        sock.sendall(payload)
        for _ in wires:
            frame = recv_frame(sock, deadline=deadline)
            if frame is None:
                raise AssertionError(
                    f"the server closed the connection after {len(responses)} of "
                    f"{len(wires)} responses"
                )
            responses.append(frame)
    return responses
