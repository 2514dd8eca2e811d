"""UdpResponder: the batched recvmmsg/sendmmsg path, its counters and its query-log hook.

Real sockets on loopback; the responder runs under uvloop exactly as a worker runs it, driven
by the event loop (``on_readable``) and by its native receive thread (``start_thread``): every
test runs with both.
"""

from __future__ import annotations

import asyncio
import io
import mmap
import socket
from pathlib import Path

import dns.message
import dns.rcode
import pytest
import uvloop
from support.client import check_decoders_agree

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.querylog import QueryLog
from fastdns.zonefile import load_zone_file

UNIT_ZONES = Path(__file__).resolve().parent / "data" / "unit"


def catalog_from(paths, *, shared: bool = False) -> _core.Catalog:
    images = [compile_zone(load_zone_file(p)) for p in paths]
    if shared:  # as a worker sees a snapshot: read-only views of an mmap
        views = []
        for image in images:
            mm = mmap.mmap(-1, len(image))
            mm.write(image)
            views.append(memoryview(mm).toreadonly())
        images = views
    return _core.Catalog(images)


@pytest.fixture(scope="module")
def zone_paths():
    return sorted(UNIT_ZONES.glob("*.zone"))


@pytest.fixture(params=["loop", "thread"])
def receiver(request):
    return request.param


def run_responder(catalog, client, *, receiver, counters=None, log=None):
    """Serve ``catalog`` on a fresh UDP socket while ``client(port)`` runs in a thread;
    ``receiver``: "loop" or "thread", the driver (as fastdns.transport.Listeners uses it)."""

    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        responder = _core.UdpResponder(sock.fileno(), catalog, counters)
        if log is not None:
            responder.set_query_log(log)
        loop = asyncio.get_running_loop()
        if receiver == "thread":
            watched = responder.start_thread()
            loop.add_reader(watched, responder.on_wake)
        else:
            watched = sock.fileno()
            loop.add_reader(watched, responder.on_readable)
        try:
            return await loop.run_in_executor(None, client, sock.getsockname()[1], responder)
        finally:
            loop.remove_reader(watched)
            responder.stop_thread()  # delivers what the thread still had queued
            sock.close()

    return uvloop.run(main())


BURST = 32  # datagrams sent before reading: a real batch, well inside a default socket buffer


def exchange_many(port: int, wires: list[bytes], timeout: float = 3.0) -> dict[int, bytes]:
    """Send queries in bursts, so the responder sees several datagrams per wake-up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    answers: dict[int, bytes] = {}
    for start in range(0, len(wires), BURST):
        burst = wires[start : start + BURST]
        for wire in burst:
            sock.sendto(wire, ("127.0.0.1", port))
        expected = len(answers) + len(burst)
        try:
            while len(answers) < expected:
                data, _ = sock.recvfrom(65535)
                answers[int.from_bytes(data[:2], "big")] = data
        except TimeoutError:
            pass
    sock.close()
    return answers


def test_batch_answers_match_catalog_answer(zone_paths, receiver):
    catalog = catalog_from(zone_paths, shared=True)
    names = ["host1.example", "nope.example", "a.b.example", "subdel.example", "example.com"]
    wires = []
    for i in range(400):
        q = dns.message.make_query(names[i % len(names)], "A", use_edns=0 if i % 2 else None)
        q.id = i
        wires.append(q.to_wire())
    answers = run_responder(catalog, lambda port, _r: exchange_many(port, wires), receiver=receiver)
    assert len(answers) == len(wires)
    for i, wire in enumerate(wires):
        # The batched path and the single-call path are the same C answer.
        assert answers[i] == catalog.answer(wire), i
        check_decoders_agree(answers[i])


def test_counters_count_by_rcode_and_transport(zone_paths, receiver):
    catalog = catalog_from(zone_paths)
    buffer = mmap.mmap(-1, _core.COUNTER_SLOT_BYTES * 3)
    counters = _core.Counters(buffer, 2)
    wires = [
        dns.message.make_query("host1.example", "A", id=1).to_wire(),
        dns.message.make_query("_telnet._tcp.host1.example", "SRV", id=2).to_wire(),
        dns.message.make_query("example.net", "A", id=3).to_wire(),
        b"\x00\x04garbage",  # under 12 octets: malformed, dropped
    ]
    run_responder(
        catalog,
        lambda port, _r: exchange_many(port, wires, 1.0),
        receiver=receiver,
        counters=counters,
    )
    values = counters.as_dict()
    assert values["queries_udp"] == 4
    assert values["responses_udp"] == 3
    assert values["rcode_NXDOMAIN"] == 1
    assert values["rcode_REFUSED"] == 1
    assert values["dropped"] == 1
    assert values["malformed"] == 1
    # The row lives in the shared buffer at slot 2, not in slots 0 or 1.
    assert _core.Counters(buffer, 0).values() == [0] * len(_core.COUNTER_NAMES)
    assert _core.Counters(buffer, 2).values() == counters.values()


def test_oversize_datagram_is_dropped_and_server_keeps_answering(zone_paths, receiver):
    catalog = catalog_from(zone_paths)
    big = dns.message.make_query("host1.example", "A", id=7).to_wire() + b"\0" * 8000
    good = dns.message.make_query("host1.example", "A", id=8).to_wire()
    answers = run_responder(
        catalog, lambda port, _r: exchange_many(port, [big, good], 1.0), receiver=receiver
    )
    assert set(answers) == {8}


def test_set_catalog_swaps_between_batches(zone_paths, receiver):
    example = [p for p in zone_paths if p.name == "example.zone"]
    others = [p for p in zone_paths if p.name != "example.zone"]
    old, new = catalog_from(example), catalog_from(others)
    query = dns.message.make_query("host1.example", "A", id=9).to_wire()

    def client(port, responder):
        first = exchange_many(port, [query])[9]
        responder.set_catalog(new)
        second = exchange_many(port, [query])[9]
        return first, second

    first, second = run_responder(old, client, receiver=receiver)
    assert dns.message.from_wire(first).rcode() == dns.rcode.NOERROR
    assert dns.message.from_wire(second).rcode() == dns.rcode.REFUSED


def test_query_log_lines_in_route53_format(zone_paths, receiver):
    catalog = catalog_from(zone_paths)
    stream = io.StringIO()
    zone_ids = [z.origin for z in catalog.zones]
    log = QueryLog(stream.write, zone_ids, edge="LOCAL")
    wires = [
        dns.message.make_query("HoSt1.example", "AAAA", id=1).to_wire(),
        dns.message.make_query("example.net", "MX", id=2).to_wire(),
    ]
    run_responder(catalog, lambda port, _r: exchange_many(port, wires), receiver=receiver, log=log)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    fields = [line.split(" ") for line in lines]
    by_name = {f[3]: f for f in fields}
    www = by_name["HoSt1.example"]
    assert www[0] == "1.0" and www[1].endswith("Z") and "T" in www[1]
    assert www[2] == "example." and www[4:9] == ["AAAA", "NOERROR", "UDP", "LOCAL", "127.0.0.1"]
    assert www[9] == "-"
    assert by_name["example.net"][2] == "-" and by_name["example.net"][5] == "REFUSED"
