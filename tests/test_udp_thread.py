"""The native UDP receive thread (issue 3): snapshot swaps under load, datagrams for the control
plane, and workers serving and stopping with it, against real sockets.

The drivers' common behaviour (answers, counters, query log) is tested for both in
test_udp_responder.py; the server tests here run each ``udp_receiver`` setting.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from pathlib import Path

import dns.message
import dns.opcode
import dns.rcode
import pytest
import uvloop
from support.client import check_decoders_agree, query
from support.server import running_fastdns

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.zonefile import load_zone_file

ZONE = """$ORIGIN swap.test.
@    3600 IN SOA ns.swap.test. hostmaster.swap.test. {serial} 7200 3600 1209600 300
@    3600 IN NS  ns.swap.test.
ns   3600 IN A   192.0.2.53
www  300  IN A   {prefix}.1
www  300  IN A   {prefix}.2
www  300  IN MX  10 mail.swap.test.
mail 300  IN A   {prefix}.25
"""
QUESTIONS = [("www.swap.test", "A"), ("www.swap.test", "MX"), ("swap.test", "SOA"),
             ("nothing.swap.test", "A")]  # fmt: skip


def alive(pid: int) -> bool:
    """True while ``pid`` is a process that has not exited (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def zone_catalog(tmp_path: Path, serial: int, prefix: str) -> _core.Catalog:
    path = tmp_path / f"swap.test.{serial}.zone"
    path.write_text(ZONE.format(serial=serial, prefix=prefix))
    return _core.Catalog([compile_zone(load_zone_file(path, origin="swap.test."))])


def serve_threaded(catalog, client, *, control=None, query_log=None, drain=True):
    """Serve ``catalog`` from a receive thread while ``client(port, responder)`` runs in a
    thread; the responder's ``control`` callback gets ``(sock, datagram, address)``. With
    ``drain=False`` the loop never takes the thread's handoff queue (only stop_thread does)."""

    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        responder = _core.UdpResponder(sock.fileno(), catalog)
        if control is not None:
            responder.set_control(lambda datagram, address: control(sock, datagram, address))
        if query_log is not None:
            responder.set_query_log(query_log)
        loop = asyncio.get_running_loop()
        wake = responder.start_thread()
        assert responder.threaded
        if drain:
            loop.add_reader(wake, responder.on_wake)
        try:
            return await loop.run_in_executor(None, client, sock.getsockname()[1], responder)
        finally:
            if drain:
                loop.remove_reader(wake)
            responder.stop_thread()
            assert not responder.threaded
            sock.close()

    return uvloop.run(main())


def test_swap_under_load_loses_nothing_and_never_mixes_snapshots(tmp_path):
    old = zone_catalog(tmp_path, 1, "192.0.2")
    new = zone_catalog(tmp_path, 2, "198.51.100")
    wires = [
        dns.message.make_query(name, rdtype, id=i).to_wire()
        for i, (name, rdtype) in enumerate(QUESTIONS * 500)
    ]
    # What each snapshot answers, byte for byte: an answer that is neither mixes the two.
    expected = {i: (old.answer(w), new.answer(w)) for i, w in enumerate(wires)}
    assert all(a != b for a, b in expected.values())

    def client(port, responder):
        done = threading.Event()
        swaps = 0

        def swapper():
            nonlocal swaps
            while not done.is_set():
                responder.set_catalog(new if swaps % 2 == 0 else old)
                swaps += 1
                time.sleep(0.0005)

        worker = threading.Thread(target=swapper)
        worker.start()
        answers: dict[int, bytes] = {}
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(3)
        try:
            for start in range(0, len(wires), 16):
                burst = range(start, min(start + 16, len(wires)))
                for i in burst:
                    sock.sendto(wires[i], ("127.0.0.1", port))
                for _ in burst:
                    try:
                        data = sock.recv(65535)
                    except TimeoutError:
                        break
                    answers[int.from_bytes(data[:2], "big")] = data
        finally:
            done.set()
            worker.join()
            sock.close()
        return answers, swaps

    answers, swaps = serve_threaded(old, client)
    assert swaps > 10
    assert len(answers) == len(wires)  # nothing lost
    versions = set()
    for i, data in answers.items():
        assert data in expected[i], f"query {i}: an answer from neither snapshot"
        versions.add(expected[i].index(data))
    assert versions == {0, 1}  # the swaps happened while queries were being answered


def test_datagrams_for_the_control_plane_reach_python(tmp_path):
    catalog = zone_catalog(tmp_path, 1, "192.0.2")
    notify = dns.message.make_query("swap.test", "SOA", id=77)
    notify.set_opcode(dns.opcode.NOTIFY)
    received = []

    def control(sock, datagram, address):
        # As fastdns.transport does: Python answers, from the same socket.
        received.append((datagram, address))
        reply = dns.message.make_response(dns.message.from_wire(datagram))
        sock.sendto(reply.to_wire(), ("127.0.0.1", int.from_bytes(address[2:4], "big")))

    def client(port, _responder):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        with sock:
            sock.sendto(notify.to_wire(), ("127.0.0.1", port))
            reply = sock.recv(65535)
            # An ordinary query on the same socket is still answered by the thread itself.
            sock.sendto(dns.message.make_query("www.swap.test", "A", id=78).to_wire(),
                        ("127.0.0.1", port))  # fmt: skip
            return reply, sock.recv(65535), sock.getsockname()[1]

    reply, answer, client_port = serve_threaded(catalog, client, control=control)
    assert dns.message.from_wire(reply).id == 77
    assert dns.message.from_wire(reply).opcode() == dns.opcode.NOTIFY
    assert dns.message.from_wire(answer).rcode() == dns.rcode.NOERROR
    assert len(received) == 1 and received[0][0] == notify.to_wire()
    assert int.from_bytes(received[0][1][2:4], "big") == client_port


def test_a_full_handoff_queue_drops_log_entries_and_counts_them(tmp_path):
    # The loop never takes the queue, so once its half (1 MiB) is full every further query-log
    # entry is dropped: each one is counted, in the responder and in the shared counter row
    # (fastdns_handoff_lost_total), and the answers themselves still go out.
    catalog = zone_catalog(tmp_path, 1, "192.0.2")
    qname = ".".join(["a" * 63] * 3) + ".swap.test"  # long names: few entries fill the queue
    sent = 8000
    logged = []

    def client(port, responder):
        wire = dns.message.make_query(qname, "A").to_wire()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(3)
        answered = 0
        with sock:
            for _burst in range(sent // 16):
                for _ in range(16):
                    sock.sendto(wire, ("127.0.0.1", port))
                for _ in range(16):
                    sock.recv(65535)
                    answered += 1
        responder.stop_thread()  # delivers what the queue holds
        return answered, responder.handoff_lost, responder.counters.as_dict()

    answered, lost, counts = serve_threaded(catalog, client, query_log=logged.extend, drain=False)
    assert answered == sent
    assert 0 < lost < sent
    assert counts["handoff_lost"] == lost
    assert counts["queries_udp"] == sent
    assert len(logged) + lost == sent  # every query is either logged or counted as lost


def test_stopping_an_idle_thread_returns(tmp_path):
    # Nothing arrives: the thread is blocked in recvmmsg when stop_thread is called.
    catalog = zone_catalog(tmp_path, 1, "192.0.2")
    assert serve_threaded(catalog, lambda _port, responder: responder.threaded) is True


@pytest.mark.parametrize("receiver", ["thread", "loop"])
def test_workers_answer_on_the_shared_port(zone_dir, receiver):
    with running_fastdns(zone_dir, workers=2, extra_args=["--udp-receiver", receiver]) as server:
        assert len(server.worker_pids()) == 2
        for i in range(40):  # fresh source ports: the kernel spreads them over both workers
            response = query(server.host, server.port, "www.example.com", "A", want_id=i)
            assert response.rcode() == dns.rcode.NOERROR and response.answer


@pytest.mark.parametrize("receiver", ["thread", "loop"])
def test_a_loaded_worker_stops_cleanly_on_sigterm(zone_dir, receiver):
    with running_fastdns(zone_dir, workers=1, extra_args=["--udp-receiver", receiver]) as server:
        pids = server.worker_pids()
        wire = dns.message.make_query("www.example.com", "A", id=5).to_wire()
        stop = threading.Event()
        answered = 0

        def load():
            nonlocal answered
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            with sock:
                while not stop.is_set():
                    for _ in range(32):
                        try:
                            sock.sendto(wire, (server.host, server.port))
                        except BlockingIOError:
                            break
                    time.sleep(0.001)
                    while True:
                        try:
                            data = sock.recv(65535)
                        except BlockingIOError:
                            break
                        if answered == 0:
                            check_decoders_agree(data)
                        answered += 1

        loader = threading.Thread(target=load)
        loader.start()
        try:
            deadline = time.monotonic() + 10
            while answered < 500 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert answered >= 500  # the worker is busy answering when SIGTERM comes
            os.kill(server.proc.pid, signal.SIGTERM)
            assert server.proc.wait(30) == 0
        finally:
            stop.set()
            loader.join()
        for pid in pids.values():
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not alive(pid)
        assert "fastdns stopped" in server.stderr_text()


def test_a_stopped_thread_is_not_restarted_on_the_same_socket(tmp_path):
    catalog = zone_catalog(tmp_path, 1, "192.0.2")

    def client(_port, responder):
        responder.stop_thread()
        with pytest.raises(RuntimeError, match="cannot be reused"):
            responder.start_thread()
        return responder.threaded

    assert serve_threaded(catalog, client) is False
