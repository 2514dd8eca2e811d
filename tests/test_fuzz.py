"""Fuzz-style tests of the hot path, bounded in time (the whole module runs in well under 60 s).

Random bytes and mutated valid queries (bit flips, truncations, splices, count-field edits,
inserted compression pointers, EDNS edits) go to ``parse_query_fields`` and ``Catalog.answer``
(hypothesis with fixed example counts, then a seeded loop over many packets), and then, fewer of
them, to a real ``python -m fastdns serve`` over UDP and TCP. Whatever comes in:

* nothing crashes, and a packet gets no response exactly when it is shorter than a header or
  has QR set (RFC 1035 §4.1.1);
* every response decodes with dnspython, has QR set, the query's ID and OPCODE, is at most
  65535 octets, and over UDP fits the payload the query allowed (512 without EDNS, RFC 1035
  §4.2.1; else the smaller of the requestor's and ours, never below 512, RFC 6891 §6.2.5);
* a response to a query whose question parsed echoes that question octet for octet;
* SERVFAIL (the hot path's "the compiler got this wrong") never appears.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.client import make_query, query, recv_frame, tcp_connect
from support.server import running_fastdns

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.zonefile import load_zone_file

UNIT_ZONES = Path(__file__).resolve().parent / "data" / "unit"
UDP_MAX = 1232  # Catalog's default udp_max_payload, also the server's default
EXPECTED_RCODES = {
    dns.rcode.NOERROR,
    dns.rcode.FORMERR,
    dns.rcode.NXDOMAIN,
    dns.rcode.NOTIMP,
    dns.rcode.REFUSED,
    dns.rcode.BADVERS,
    dns.rcode.NOTAUTH,  # the control plane: UPDATE/NOTIFY of a zone not served, a bad TSIG
}


@pytest.fixture(scope="module")
def catalog() -> _core.Catalog:
    images = [compile_zone(load_zone_file(p)) for p in sorted(UNIT_ZONES.glob("*.zone"))]
    return _core.Catalog(images, udp_max_payload=UDP_MAX)


# -- seeds: valid queries ----------------------------------------------------------------------

SEED_NAMES = [
    "www.unit.test.",
    "WwW.uNiT.tEsT.",
    "unit.test.",
    "nothing.unit.test.",
    "a.b.c.d.wild.unit.test.",
    "x.wcname.unit.test.",
    "chain1.unit.test.",
    "loop1.unit.test.",
    "dangling.unit.test.",
    "host.deleg.unit.test.",
    "secure.unit.test.",
    "txt1500.unit.test.",
    "mxmany.unit.test.",
    "www.bigdeleg.unit.test.",
    "host3.example.",
    "ghost.*.example.",
    "child.parent.test.",
    "www.example.net.",
    ".",
    ("l" * 63 + ".") * 3 + "l" * 46 + ".wild.unit.test.",
]
SEED_TYPES = ["A", "AAAA", "MX", "TXT", "NS", "DS", "SOA", "ANY", "CNAME", "SRV"]


def seed_queries() -> list[bytes]:
    rng = random.Random(53)
    out = []
    for name in SEED_NAMES:
        for rdtype in SEED_TYPES:
            edns = rng.choice([None, None, 512, 1232, 4096, 65535])
            msg = make_query(name, rdtype, edns=edns, dnssec_ok=rng.random() < 0.2)
            out.append(msg.to_wire())
    out.append(dns.message.make_query("www.unit.test.", "A", use_edns=1).to_wire())
    return out


SEEDS = seed_queries()


# -- mutations -----------------------------------------------------------------------------------

INTERESTING_OCTETS = [0x00, 0x01, 0x3F, 0x40, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xFF]
INTERESTING_COUNTS = [0, 1, 2, 3, 0x7F, 0xFF, 0x100, 0x7FFF, 0xFFFF]


def flip_bits(rng: random.Random, pkt: bytearray) -> None:
    for _ in range(rng.randint(1, 8)):
        if pkt:
            i = rng.randrange(len(pkt))
            pkt[i] ^= 1 << rng.randrange(8)


def set_octets(rng: random.Random, pkt: bytearray) -> None:
    for _ in range(rng.randint(1, 4)):
        if pkt:
            pkt[rng.randrange(len(pkt))] = rng.choice([*INTERESTING_OCTETS, rng.randrange(256)])


def truncate(rng: random.Random, pkt: bytearray) -> None:
    del pkt[rng.randrange(len(pkt) + 1) :]


def extend(rng: random.Random, pkt: bytearray) -> None:
    pkt += rng.randbytes(rng.randint(1, 40))


def insert_or_delete(rng: random.Random, pkt: bytearray) -> None:
    i = rng.randrange(len(pkt) + 1)
    if rng.random() < 0.5:
        pkt[i:i] = rng.randbytes(rng.randint(1, 8))
    else:
        del pkt[i : i + rng.randint(1, 8)]


def splice(rng: random.Random, pkt: bytearray) -> None:
    other = rng.choice(SEEDS)
    i = rng.randrange(len(pkt) + 1)
    j = rng.randrange(len(other) + 1)
    pkt[i:] = other[j:]


def edit_count(rng: random.Random, pkt: bytearray) -> None:
    if len(pkt) >= 12:
        field = 4 + 2 * rng.randrange(4)
        value = rng.choice([*INTERESTING_COUNTS, rng.randrange(0x10000)])
        pkt[field : field + 2] = struct.pack("!H", value)


def edit_flags(rng: random.Random, pkt: bytearray) -> None:
    if len(pkt) >= 4:
        pkt[2] = rng.randrange(256) & ~0x80 if rng.random() < 0.9 else rng.randrange(256)
        pkt[3] = rng.randrange(256)


def insert_pointer(rng: random.Random, pkt: bytearray) -> None:
    """A compression pointer where a label or a name would be: forward, backward, into the
    header, at itself, or anywhere."""
    if len(pkt) < 13:
        return
    at = rng.randrange(12, len(pkt))
    target = rng.choice([0, 2, 12, at, at + 2, rng.randrange(len(pkt) + 4), rng.randrange(0x4000)])
    pointer = struct.pack("!H", 0xC000 | (target & 0x3FFF))
    if rng.random() < 0.5:
        pkt[at : at + 2] = pointer
    else:
        pkt[at:at] = pointer


def add_opt(rng: random.Random, pkt: bytearray) -> None:
    """Another OPT record: random owner, payload, version, DO and options (some overrunning)."""
    if len(pkt) < 12:
        return
    options = b""
    for _ in range(rng.randint(0, 3)):
        data = rng.randbytes(rng.randint(0, 12))
        length = len(data) if rng.random() < 0.8 else rng.randrange(0x10000)
        options += struct.pack("!HH", rng.randrange(0x10000), length) + data
    owner = b"\x00" if rng.random() < 0.85 else rng.choice([b"\xc0\x0c", b"\x01a\x00"])
    payload = rng.choice([0, 1, 511, 512, 1232, 1400, 4096, 65535])
    ttl = (rng.choice([0, 0, 1, 255]) << 24) | (rng.choice([0, 0, 0, 1, 2]) << 16)
    ttl |= rng.choice([0, 0x8000])
    rdlen = len(options) if rng.random() < 0.9 else rng.randrange(0x10000)
    pkt += owner + struct.pack("!HHIH", 41, payload, ttl, rdlen) + options
    arcount = struct.unpack("!H", pkt[10:12])[0]
    pkt[10:12] = struct.pack("!H", (arcount + 1) & 0xFFFF)


def question_span(pkt: bytearray) -> tuple[int, int] | None:
    """(start, end) of the question's uncompressed name, if the packet has one."""
    pos = 12
    while pos < len(pkt) and 0 < pkt[pos] < 64:
        pos += 1 + pkt[pos]
    if pos >= len(pkt) or pkt[pos] != 0:
        return None
    return 12, pos + 1


def edit_name(rng: random.Random, pkt: bytearray) -> None:
    """Keep the name well formed but change what it asks for: a letter, the case, a label."""
    span = question_span(pkt)
    if span is None:
        return
    start, end = span
    labels = []
    pos = start
    while pkt[pos]:
        labels.append(bytes(pkt[pos + 1 : pos + 1 + pkt[pos]]))
        pos += 1 + pkt[pos]
    choice = rng.randrange(4)
    if choice == 0 and labels:
        i = rng.randrange(len(labels))
        label = bytearray(labels[i])
        label[rng.randrange(len(label))] = rng.choice(b"abwxyz*-_AZ\x00\xc1\xff")
        labels[i] = bytes(label)
    elif choice == 1:
        labels.insert(rng.randrange(len(labels) + 1), rng.choice([b"*", b"a", b"www", b"x" * 63]))
    elif choice == 2 and labels:
        del labels[rng.randrange(len(labels))]
    else:
        labels = [label.swapcase() if rng.random() < 0.5 else label for label in labels]
    name = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    pkt[start:end] = name  # may exceed 255 octets: that is a FORMERR to check too


def edit_question_type(rng: random.Random, pkt: bytearray) -> None:
    span = question_span(pkt)
    if span is None or span[1] + 4 > len(pkt):
        return
    qtype = rng.choice([0, 1, 2, 5, 6, 15, 16, 28, 33, 41, 43, 46, 249, 250, 251, 252, 255, 65535])
    qclass = rng.choice([1, 1, 1, 3, 4, 254, 255, 0])
    pkt[span[1] : span[1] + 4] = struct.pack("!HH", qtype, qclass)


MUTATORS = [
    edit_name,
    edit_name,
    edit_question_type,
    flip_bits,
    set_octets,
    truncate,
    extend,
    insert_or_delete,
    splice,
    edit_count,
    edit_flags,
    insert_pointer,
    add_opt,
]


def mutate(rng: random.Random, packet: bytes) -> bytes:
    pkt = bytearray(packet)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        rng.choice(MUTATORS)(rng, pkt)
    return bytes(pkt[:65535])


# -- the invariants --------------------------------------------------------------------------------


def udp_limit(fields: dict) -> int:
    if fields["status"] not in ("ok", "formerr-question") or not fields["has_opt"]:
        return 512
    return max(512, min(fields["udp_size"], UDP_MAX))


def decodable(response: bytes) -> dns.message.Message:
    """dnspython's reading of a response. An UPDATE's first section is its zone section, which
    dnspython insists names a SOA (RFC 2136 §2.3), so UPDATE responses are read as QUERY ones:
    the wire format is the same."""
    wire = response
    if (response[2] >> 3) & 0x0F == dns.opcode.UPDATE:
        wire = response[:2] + bytes([response[2] & 0x87]) + response[3:]
    return dns.message.from_wire(wire)


def check_response(packet: bytes, response: bytes | None, *, tcp: bool, decode=True) -> None:
    dropped = len(packet) < 12 or bool(packet[2] & 0x80)
    assert (response is None) == dropped, (packet, response)
    if response is None:
        return
    if response == b"":  # the control plane answers (fastdns.xfr): transfers and TSIG over
        # TCP; NOTIFY, UPDATE and IXFR (RFC 1995 §2) over UDP too
        ixfr = _core.parse_query_fields(packet).get("qtype") == dns.rdatatype.IXFR
        opcode = (packet[2] >> 3) & 0x0F
        assert tcp or ixfr or opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE), packet
        return
    assert 12 <= len(response) <= 65535
    assert response[:2] == packet[:2], "ID not copied"
    assert response[2] & 0x80, "QR not set"
    assert (response[2] >> 3) & 0x0F == (packet[2] >> 3) & 0x0F, "OPCODE not copied"
    fields = _core.parse_query_fields(packet)
    if not tcp:
        assert len(response) <= udp_limit(fields), (packet, response)
    if fields["status"] == "ok":
        end = fields["question_end"]
        assert response[4:6] == b"\x00\x01" and response[12:end] == packet[12:end]
    if response[2] & 0x02:  # TC: no partial RRsets (RFC 2181 §9)
        assert response[6:10] == b"\0\0\0\0"
    if decode:
        msg = decodable(response)
        assert msg.id == struct.unpack("!H", packet[:2])[0]
        assert msg.rcode() in EXPECTED_RCODES, (packet, msg)
        assert msg.flags & dns.flags.QR


def exercise(catalog, packet: bytes) -> None:
    fields = _core.parse_query_fields(packet)
    assert fields["status"] in ("ok", "drop", "formerr", "formerr-question")
    for tcp in (False, True):
        check_response(packet, catalog.answer(packet, tcp=tcp), tcp=tcp)


# -- in process ------------------------------------------------------------------------------------

FUZZ_SETTINGS = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)


@FUZZ_SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes(catalog, packet: bytes) -> None:
    exercise(catalog, packet)


@FUZZ_SETTINGS
@given(
    st.binary(min_size=12, max_size=12),
    st.binary(max_size=300),
)
def test_random_body_after_plausible_header(catalog, header: bytes, body: bytes) -> None:
    # QR clear, QDCOUNT 1: random bytes mostly stop at the header otherwise
    packet = header[:2] + bytes([header[2] & 0x7F]) + header[3:4] + b"\x00\x01" + header[6:] + body
    exercise(catalog, packet)


@FUZZ_SETTINGS
@given(st.sampled_from(SEEDS), st.integers(0, 2**32 - 1))
def test_mutated_queries(catalog, seed_packet: bytes, seed: int) -> None:
    exercise(catalog, mutate(random.Random(seed), seed_packet))


@pytest.mark.parametrize("packet", SEEDS[:: len(SEEDS) // 20])
def test_seed_queries_are_answered(catalog, packet: bytes) -> None:
    response = catalog.answer(packet)
    check_response(packet, response, tcp=False)
    assert _core.parse_query_fields(packet)["status"] == "ok"


def test_seeded_mutation_loop(catalog) -> None:
    """200,000 mutated packets straight into ``Catalog.answer``, every response checked.

    dnspython (slow next to the hot path) decodes every 50th response and every response of a
    new shape: header and sections, leaving out the ID and the question, which
    ``check_response`` has already compared octet for octet with the query's."""
    rng = random.Random(20240601)
    answer = catalog.answer
    shapes: set[bytes] = set()
    for i in range(200_000):
        packet = mutate(rng, rng.choice(SEEDS))
        tcp = i % 4 == 0
        response = answer(packet, tcp)
        check_response(packet, response, tcp=tcp, decode=False)
        if response is None:
            continue
        end = 12
        if response[4:6] == b"\x00\x01":
            end = _core.parse_query_fields(packet)["question_end"]
        shape = response[2:12] + response[end:]
        if i % 50 == 0 or shape not in shapes:
            shapes.add(shape)
            check_response(packet, response, tcp=tcp)
    assert len(shapes) > 300  # the mutations reach many different answers


# -- against the running server --------------------------------------------------------------------


def unique_id(packet: bytes, ident: int) -> bytes:
    return struct.pack("!H", ident) + packet[2:] if len(packet) >= 2 else packet


def fuzz_udp(host: str, port: int, packets: list[bytes]) -> int:
    """Send every packet; check whatever comes back against the query with its ID."""
    by_id = {struct.unpack("!H", p[:2])[0]: p for p in packets if len(p) >= 2}
    received = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setblocking(False)

        def drain(wait: float) -> None:
            nonlocal received
            while select.select([sock], [], [], wait)[0]:
                try:
                    response = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    continue
                packet = by_id[struct.unpack("!H", response[:2])[0]]
                check_response(packet, response, tcp=False)
                received += 1
                wait = 0

        for i, packet in enumerate(packets):
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                sock.send(packet)  # a datagram the kernel drops is only one fewer answer
            if i % 50 == 49:
                drain(0.05)
        drain(0.5)
    return received


def fuzz_tcp_connection(host: str, port: int, rng: random.Random, packets: list[bytes]) -> None:
    """Frames of mutated queries on one connection, sometimes ended by a broken frame.

    The server answers frames in order and closes the connection at the first one it cannot
    answer (a message the catalog drops, a zero length prefix; see ``fastdns.transport``), so
    every frame before that must be answered."""
    by_id = {struct.unpack("!H", p[:2])[0]: p for p in packets}
    answered = []
    for p in packets:
        if len(p) < 12 or p[2] & 0x80:
            break
        answered.append(p)
    stream = b"".join(struct.pack("!H", len(p)) + p for p in packets)
    ending = rng.choice(
        [b"", b"", b"\x00", b"\xff\xff" + b"x" * 10, b"\x00\x00", rng.randbytes(rng.randint(1, 30))]
    )
    with tcp_connect(host, port, timeout=2) as sock:
        sock.sendall(stream + ending)
        deadline = time.monotonic() + 2
        for _ in answered:
            frame = recv_frame(sock, deadline=deadline)
            assert frame is not None, "the server closed before answering every query"
            check_response(by_id[struct.unpack("!H", frame[:2])[0]], frame, tcp=True)


def test_running_server_survives_fuzzing() -> None:
    rng = random.Random(7)
    next_id = iter(range(1, 0x10000))
    with running_fastdns(UNIT_ZONES) as srv:
        udp = []
        for _ in range(4000):
            base = rng.choice(SEEDS) if rng.random() < 0.9 else rng.randbytes(rng.randint(0, 80))
            udp.append(unique_id(mutate(rng, base), next(next_id)))
        for _ in range(20):
            # datagrams larger than any query the server reads whole (no answer is fine)
            big = rng.choice(SEEDS) + rng.randbytes(rng.randint(4000, 9000))
            udp.insert(rng.randrange(len(udp)), unique_id(big, next(next_id)))
        received = fuzz_udp(srv.host, srv.port, udp)
        assert received > 1000, f"only {received} of {len(udp)} datagrams were answered"

        for _ in range(60):
            frames = [
                unique_id(mutate(rng, rng.choice(SEEDS)), next(next_id))
                for _ in range(rng.randint(1, 5))
            ]
            # a frame shorter than 2 octets cannot carry the unique ID; leave those out
            fuzz_tcp_connection(srv.host, srv.port, rng, [f for f in frames if len(f) >= 2])

        assert srv.proc.poll() is None, "the server died\n" + srv.stderr_text()
        for tcp in (False, True):
            response = query(srv.host, srv.port, "www.unit.test.", "A", tcp=tcp)
            assert response.rcode() == dns.rcode.NOERROR
            assert sorted(rd.address for rd in response.answer[0]) == ["192.0.2.10", "192.0.2.11"]
        assert srv.proc.poll() is None
