"""UDP and TCP serving, signals and reload, against the real server subprocess and real sockets.

The zone is examples/zones/example.com.zone (www.example.com A 192.0.2.10).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import time
from pathlib import Path

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest
from support.client import (
    check_decoders_agree,
    exchange_raw,
    make_query,
    query,
    recv_frame,
    tcp_connect,
    tcp_pipeline,
)
from support.server import running_fastdns

WWW_A = "192.0.2.10"


def addresses(response, rdtype=dns.rdatatype.A) -> set[str]:
    return {rd.to_text() for rrset in response.answer if rrset.rdtype == rdtype for rd in rrset}


def wait_closed(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closes ``sock`` (reads and discards answers meanwhile)."""
    start = time.monotonic()
    sock.settimeout(timeout)
    while True:
        try:
            data = sock.recv(65535)
        except ConnectionResetError:
            data = b""
        if not data:
            return time.monotonic() - start


def ipv6_loopback_unavailable() -> str | None:
    """Why [::1] cannot be used here, or None when it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6 support"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        return f"this machine has no IPv6 loopback: binding [::1] failed ({exc})"
    return None


# -- answers


def test_udp_answer(example_server):
    response = query(example_server.host, example_server.port, "www.example.com", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert not response.flags & dns.flags.TC
    assert addresses(response) == {WWW_A}


def test_tcp_answer(example_server):
    response = query(example_server.host, example_server.port, "www.example.com", "A", tcp=True)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert addresses(response) == {WWW_A}


def test_udp_and_tcp_answers_are_identical(example_server):
    wire = make_query("www.example.com", "AAAA", edns=1232, want_id=4321).to_wire()
    over_udp = exchange_raw(example_server.host, example_server.port, wire)
    over_tcp = exchange_raw(example_server.host, example_server.port, wire, tcp=True)
    assert over_udp is not None
    assert over_udp == over_tcp


def test_50_pipelined_tcp_queries_are_all_answered(example_server):
    names = ["www.example.com", "mail.example.com", "example.com", "nothing.example.com"]
    queries = {
        1000 + i: make_query(names[i % len(names)], "A", want_id=1000 + i) for i in range(50)
    }
    wires = [q.to_wire() for q in queries.values()]
    responses = tcp_pipeline(example_server.host, example_server.port, wires)
    assert len(responses) == 50
    seen = set()
    for wire in responses:
        response = check_decoders_agree(wire)
        assert queries[response.id].is_response(response)  # right id, right question
        seen.add(response.id)
    assert seen == set(queries)


def test_udp_garbage_does_not_kill_the_server(example_server):
    rng = random.Random(1035)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for size in (0, 1, 11, 12, 13, 100, 512, 1500, 4000):
            sock.sendto(rng.randbytes(size), (example_server.host, example_server.port))
    response = query(example_server.host, example_server.port, "www.example.com", "A")
    assert addresses(response) == {WWW_A}


def test_tcp_truncated_frame_and_garbage_do_not_kill_the_server(example_server):
    host, port = example_server.host, example_server.port
    query_wire = make_query("www.example.com", "A").to_wire()
    with tcp_connect(host, port) as sock:  # a frame that promises more than it delivers
        sock.sendall(struct.pack("!H", len(query_wire) + 40) + query_wire)
    with tcp_connect(host, port) as sock:  # half a length prefix
        sock.sendall(b"\x00")
    rng = random.Random(7766)
    for size in (1, 2, 3, 14, 300, 70000):
        with tcp_connect(host, port) as sock:
            try:
                sock.sendall(rng.randbytes(size))
                wait_closed(sock, 0.2)
            except (ConnectionError, TimeoutError):
                pass  # the server may close (or reset) at once or keep waiting for more bytes
    assert addresses(query(host, port, "www.example.com", "A", tcp=True)) == {WWW_A}
    assert addresses(query(host, port, "www.example.com", "A")) == {WWW_A}


def test_tcp_zero_length_prefix_closes_the_connection(example_server):
    # A zero-length message cannot be DNS (the header alone is 12 octets): the framing is broken,
    # so the server closes the connection rather than guess (see fastdns/transport.py).
    with tcp_connect(example_server.host, example_server.port) as sock:
        sock.sendall(b"\x00\x00")
        assert wait_closed(sock, 5) < 5


def test_tcp_query_the_catalog_drops_closes_the_connection(example_server):
    host, port = example_server.host, example_server.port
    junk = b"\x12\x34\x00"  # shorter than a DNS header: nothing to answer
    assert exchange_raw(host, port, junk, timeout=0.5) is None, "dropped over UDP"
    with tcp_connect(host, port) as sock:
        # A valid query first: it is answered, then the junk closes the connection.
        good = make_query("www.example.com", "A", want_id=77).to_wire()
        sock.sendall(struct.pack("!H", len(good)) + good + struct.pack("!H", len(junk)) + junk)
        frame = recv_frame(sock, deadline=time.monotonic() + 5)
        assert frame is not None and check_decoders_agree(frame).id == 77
        assert wait_closed(sock, 5) < 5


def test_tcp_client_half_close_still_gets_every_answer(example_server):
    wires = [make_query("www.example.com", "A", want_id=i).to_wire() for i in range(10)]
    with tcp_connect(example_server.host, example_server.port) as sock:
        sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w in wires))
        sock.shutdown(socket.SHUT_WR)
        ids = set()
        deadline = time.monotonic() + 5
        while (frame := recv_frame(sock, deadline=deadline)) is not None:
            ids.add(check_decoders_agree(frame).id)
    assert ids == set(range(10))


# -- connection management


def test_tcp_idle_timeout_closes_idle_connections(zone_dir, start_fastdns):
    server = start_fastdns(zone_dir, extra_args=["--tcp-idle-timeout", "1"])
    with tcp_connect(server.host, server.port) as sock:  # never sends anything
        assert 0.5 < wait_closed(sock, 10) < 5
    with tcp_connect(server.host, server.port) as sock:  # idle after one answered query
        wire = make_query("www.example.com", "A", want_id=5).to_wire()
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        assert check_decoders_agree(recv_frame(sock, deadline=time.monotonic() + 5)).id == 5
        assert 0.5 < wait_closed(sock, 10) < 5


def test_tcp_activity_keeps_a_connection_open(zone_dir, start_fastdns):
    server = start_fastdns(zone_dir, extra_args=["--tcp-idle-timeout", "1"])
    with tcp_connect(server.host, server.port) as sock:
        for i in range(6):  # 6 queries 0.4 s apart: 2.4 s in all, never 1 s idle
            wire = make_query("www.example.com", "A", want_id=i).to_wire()
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            frame = recv_frame(sock, deadline=time.monotonic() + 5)
            assert frame is not None, f"closed before query {i}"
            time.sleep(0.4)


def test_tcp_connection_limit(zone_dir, start_fastdns):
    server = start_fastdns(zone_dir, extra_args=["--tcp-max-connections", "2"])
    host, port = server.host, server.port
    first, second = socket.create_connection((host, port)), socket.create_connection((host, port))
    try:
        assert query(host, port, "www.example.com", "A", tcp=True, timeout=1.5) is not None
    except TimeoutError:
        pass  # the third connection is over the limit and refused: expected
    else:
        pytest.fail("a third TCP connection was served with max 2 open")
    finally:
        first.close()
        second.close()
    deadline = time.monotonic() + 5
    while True:  # once the two close, connections are accepted again
        try:
            assert addresses(query(host, port, "www.example.com", "A", tcp=True)) == {WWW_A}
            break
        except TimeoutError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_ipv6_listener(zone_dir, start_fastdns):
    reason = ipv6_loopback_unavailable()
    if reason:
        pytest.skip(reason)
    server = start_fastdns(zone_dir, listen_host="::1")
    assert server.host == "::1"
    assert addresses(query("::1", server.port, "www.example.com", "A")) == {WWW_A}
    assert addresses(query("::1", server.port, "www.example.com", "A", tcp=True)) == {WWW_A}


def test_ipv4_and_ipv6_listeners_together(zone_dir, start_fastdns):
    reason = ipv6_loopback_unavailable()
    if reason:
        pytest.skip(reason)
    from support.server import free_port

    v6_port = free_port("::1")
    server = start_fastdns(zone_dir, extra_args=["--listen", f"[::1]:{v6_port}"])
    assert addresses(query(server.host, server.port, "www.example.com", "A")) == {WWW_A}
    assert addresses(query("::1", v6_port, "www.example.com", "A", tcp=True)) == {WWW_A}
    text = server.stderr_text()
    assert f"listening on 127.0.0.1:{server.port}" in text
    assert f"listening on [::1]:{v6_port}" in text


# -- reload and signals


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_sighup_reload(zone_dir, start_fastdns):
    server = start_fastdns(zone_dir)
    host, port = server.host, server.port
    zone_file = zone_dir / "example.com.zone"
    assert addresses(query(host, port, "www.example.com", "A")) == {WWW_A}

    # A changed zone replaces the old one.
    rewrite(zone_file, "2024060101", "2024060102")
    rewrite(zone_file, "A    192.0.2.10\n", "A    192.0.2.99\n")
    log = server.reload()
    assert addresses(query(host, port, "www.example.com", "A")) == {"192.0.2.99"}
    assert addresses(query(host, port, "www.example.com", "A", tcp=True)) == {"192.0.2.99"}
    assert "2024060102" in log

    # A zone that now fails keeps serving its previous version; the error is logged.
    good_text = zone_file.read_text()
    zone_file.write_text(good_text + "broken IN A not-an-address\n")
    log = server.reload()
    assert f"{zone_file.name}:" in log or f"{zone_file}:" in log, log
    assert addresses(query(host, port, "www.example.com", "A")) == {"192.0.2.99"}

    # A new file is served; a removed file stops being served.
    (zone_dir / "example.net.zone").write_text(
        good_text.replace("example.com.", "example.net.").replace("192.0.2.99", "192.0.2.77")
    )
    server.reload()
    assert addresses(query(host, port, "www.example.net", "A")) == {"192.0.2.77"}
    zone_file.unlink()
    server.reload()
    assert query(host, port, "www.example.com", "A").rcode() == dns.rcode.REFUSED
    assert addresses(query(host, port, "www.example.net", "A")) == {"192.0.2.77"}


def test_startup_serves_good_zones_and_logs_bad_ones(zone_dir, start_fastdns):
    (zone_dir / "broken.example.zone").write_text(
        "$ORIGIN broken.example.\n$TTL 300\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns\nns IN A 1.2.3\n"
    )
    server = start_fastdns(zone_dir)
    assert addresses(query(server.host, server.port, "www.example.com", "A")) == {WWW_A}
    assert query(server.host, server.port, "ns.broken.example", "A").rcode() == dns.rcode.REFUSED
    text = server.stderr_text()
    assert "broken.example.zone:" in text
    assert "zone example.com.: serving" in text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_exit_0(zone_dir, sig):
    with running_fastdns(zone_dir) as server:
        with tcp_connect(server.host, server.port):  # an open connection must not block exit
            os.kill(server.proc.pid, sig)
            assert server.proc.wait(10) == 0
        assert "fastdns stopped" in server.stderr_text()
