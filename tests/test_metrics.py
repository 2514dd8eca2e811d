"""Metrics (fastdns/metrics.py): the shared counter table, the Prometheus text format, and the
endpoint of a real server scraped over HTTP while the test sends it known queries."""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import dns.rcode
import pytest
from support.client import exchange_raw, make_query, query
from support.server import free_port

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.config import ConfigError, ListenAddress, load_config
from fastdns.metrics import (
    CONTENT_TYPE,
    CounterTable,
    ServerGauges,
    open_counters,
    render_metrics,
)
from fastdns.zonefile import load_zone_file

EXAMPLE_ZONE = Path(__file__).resolve().parent.parent / "examples" / "zones" / "example.com.zone"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> dict[tuple[str, frozenset], float]:
    """Samples of a Prometheus text exposition, keyed by (name, labels); checks that every
    sample's family was declared with # HELP and # TYPE first."""
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in declared, f"family {name} declared twice"
            declared[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        assert name in declared, f"{name} has no # TYPE line"
        if declared[name] == "counter":
            assert name.endswith("_total"), name
        key = (name, frozenset(_LABEL.findall(labels or "")))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = float(value)
    return samples


def total(samples, name: str, **labels: str) -> float:
    """The sum of every series of ``name`` whose labels include ``labels`` (as PromQL's
    ``sum without (worker)`` would give)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


# -- the counter table


def test_counter_table_rows_are_shared_with_workers():
    table = CounterTable(3)
    try:
        catalog = _core.Catalog([compile_zone(load_zone_file(EXAMPLE_ZONE))])
        # A worker maps the table through its own descriptor (as it receives it).
        worker_row = open_counters(os.dup(table.fd), 2)
        wire = make_query("www.example.com", "A").to_wire()
        for _ in range(5):
            catalog.answer(wire, False, worker_row)
        catalog.answer(wire, True, worker_row)
        names = list(table.names)
        rows = table.values()
        assert rows[0] == rows[1] == [0] * len(names)
        assert rows[2][names.index("queries_udp")] == 5
        assert rows[2][names.index("queries_tcp")] == 1
        assert rows[2][names.index("rcode_NOERROR")] == 6
        assert table.totals()["responses_udp"] == 5
    finally:
        table.close()


def test_a_replacement_worker_keeps_adding_to_its_row():
    table = CounterTable(2)
    try:
        catalog = _core.Catalog([compile_zone(load_zone_file(EXAMPLE_ZONE))])
        wire = make_query("www.example.com", "A").to_wire()
        first = open_counters(table.fd, 1)
        catalog.answer(wire, False, first)
        del first  # the worker dies; its successor maps the same slot
        second = open_counters(table.fd, 1)
        catalog.answer(wire, False, second)
        assert table.values()[1][table.names.index("queries_udp")] == 2
    finally:
        table.close()


def test_open_counters_checks_the_slot():
    table = CounterTable(1)
    try:
        with pytest.raises(ValueError, match="slot 1"):
            open_counters(table.fd, 1)
    finally:
        table.close()


# -- the text format


def test_render_metrics():
    names = ("queries_udp", "queries_tcp", "rcode_NOERROR", "rcode_other", "dropped", "future")
    rows = [[5, 1, 6, 0, 2, 9], [7, 0, 7, 1, 0, 0]]
    text = render_metrics(names, rows, ServerGauges(zones=3, generation=4, workers=2, restarts=1))
    samples = parse_exposition(text)
    w0, w1 = ("worker", "0"), ("worker", "1")
    assert samples["fastdns_queries_total", frozenset({("transport", "udp"), w0})] == 5
    assert samples["fastdns_queries_total", frozenset({("transport", "tcp"), w1})] == 0
    assert samples["fastdns_responses_total", frozenset({("rcode", "NOERROR"), w1})] == 7
    assert samples["fastdns_responses_total", frozenset({("rcode", "other"), w1})] == 1
    assert samples["fastdns_dropped_total", frozenset({w0})] == 2
    assert samples["fastdns_future_total", frozenset({w0})] == 9  # unknown counters still shown
    assert total(samples, "fastdns_queries_total", transport="udp") == 12
    assert samples["fastdns_zones", frozenset()] == 3
    assert samples["fastdns_snapshot_generation", frozenset()] == 4
    assert samples["fastdns_workers", frozenset()] == 2
    assert samples["fastdns_worker_restarts_total", frozenset()] == 1
    assert "# TYPE fastdns_zones gauge" in text.splitlines()


def test_metrics_listen_setting(tmp_path):
    config = load_config(None, {"zone_dir": "z", "metrics_listen": "127.0.0.1:9153"})
    assert config.metrics_listen == ListenAddress("127.0.0.1", 9153, socket.AF_INET)
    assert load_config(None, {"zone_dir": "z"}).metrics_listen is None
    with pytest.raises(ConfigError, match="--metrics-listen"):
        load_config(None, {"zone_dir": "z", "metrics_listen": "localhost:9153"})


# -- a real server


def http_get(port: int, path: str = "/metrics", method: str = "GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.headers.get("Content-Type"), response.read().decode()


def scrape(port: int) -> dict:
    status, content_type, body = http_get(port)
    assert status == 200
    assert content_type == CONTENT_TYPE
    return parse_exposition(body)


COUNTERS = [
    ("fastdns_queries_total", {"transport": "udp"}),
    ("fastdns_queries_total", {"transport": "tcp"}),
    ("fastdns_responses_by_transport_total", {"transport": "udp"}),
    ("fastdns_responses_by_transport_total", {"transport": "tcp"}),
    ("fastdns_responses_total", {"rcode": "NOERROR"}),
    ("fastdns_responses_total", {"rcode": "NXDOMAIN"}),
    ("fastdns_responses_total", {"rcode": "REFUSED"}),
    ("fastdns_responses_total", {"rcode": "FORMERR"}),
    ("fastdns_responses_total", {"rcode": "BADVERS"}),
    ("fastdns_truncated_total", {}),
    ("fastdns_dropped_total", {}),
    ("fastdns_malformed_total", {}),
]


def deltas(before: dict, after: dict) -> dict:
    return {
        (name, tuple(labels.values())): total(after, name, **labels) - total(before, name, **labels)
        for name, labels in COUNTERS
    }


def test_metrics_count_what_was_sent(zone_dir, start_fastdns):
    # 40 A records for big.example.com: 680 octets of answer, truncated for a query without EDNS.
    with (zone_dir / "example.com.zone").open("a") as zone:
        zone.writelines(f"big IN A 203.0.113.{i}\n" for i in range(40))
    metrics_port = free_port()
    server = start_fastdns(
        zone_dir, workers=2, extra_args=["--metrics-listen", f"127.0.0.1:{metrics_port}"]
    )
    host, port = server.host, server.port
    before = scrape(metrics_port)

    sent = Counter()

    def udp(name, rdtype="A", **kwargs):  # a fresh socket each time: spread over the workers
        response = query(host, port, name, rdtype, **kwargs)
        sent[dns.rcode.to_text(response.rcode())] += 1

    for _ in range(20):
        udp("www.example.com")
    for _ in range(10):
        udp("nothing.example.com")
    for _ in range(6):
        udp("www.example.org")
    for _ in range(3):
        udp("big.example.com")
    assert sent == {"NOERROR": 23, "NXDOMAIN": 10, "REFUSED": 6}
    for _ in range(5):
        assert query(host, port, "www.example.com", "A", tcp=True).rcode() == dns.rcode.NOERROR
    wire = make_query("www.example.com", "A").to_wire()
    badvers = make_query("www.example.com", "A", edns=1232)
    badvers.use_edns(1, payload=1232)
    assert exchange_raw(host, port, badvers.to_wire()) is not None
    for _ in range(4):  # QDCOUNT 2: FORMERR (RFC 9619), and malformed
        assert exchange_raw(host, port, wire[:5] + b"\x02" + wire[6:]) is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(2):  # a response (QR set) is never answered: dropped
            sock.sendto(wire[:2] + bytes([wire[2] | 0x80]) + wire[3:], (host, port))

    expected = {
        ("fastdns_queries_total", ("udp",)): 20 + 10 + 6 + 3 + 1 + 4 + 2,
        ("fastdns_queries_total", ("tcp",)): 5,
        ("fastdns_responses_by_transport_total", ("udp",)): 20 + 10 + 6 + 3 + 1 + 4,
        ("fastdns_responses_by_transport_total", ("tcp",)): 5,
        ("fastdns_responses_total", ("NOERROR",)): 20 + 3 + 5,
        ("fastdns_responses_total", ("NXDOMAIN",)): 10,
        ("fastdns_responses_total", ("REFUSED",)): 6,
        ("fastdns_responses_total", ("FORMERR",)): 4,
        ("fastdns_responses_total", ("BADVERS",)): 1,
        ("fastdns_truncated_total", ()): 3,
        ("fastdns_dropped_total", ()): 2,
        ("fastdns_malformed_total", ()): 4,
    }
    # The dropped datagrams get no answer to wait for: poll until they are counted.
    deadline = time.monotonic() + 10
    while True:
        after = scrape(metrics_port)
        got = deltas(before, after)
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got == expected

    workers = {dict(labels)["worker"] for (name, labels) in after if "worker" in dict(labels)}
    assert workers == {"0", "1"}
    for worker in ("0", "1"):  # 44 fresh UDP sockets: each worker got some (p = 2**-43 not)
        assert total(after, "fastdns_queries_total", transport="udp", worker=worker) > total(
            before, "fastdns_queries_total", transport="udp", worker=worker
        )
    assert after["fastdns_zones", frozenset()] == 1
    assert after["fastdns_snapshot_generation", frozenset()] == 1
    assert after["fastdns_workers", frozenset()] == 2
    assert after["fastdns_worker_restarts_total", frozenset()] == 0

    server.reload()
    assert scrape(metrics_port)["fastdns_snapshot_generation", frozenset()] == 2


def test_metrics_http_errors(zone_dir, start_fastdns):
    metrics_port = free_port()
    start_fastdns(zone_dir, extra_args=["--metrics-listen", f"127.0.0.1:{metrics_port}"])
    with pytest.raises(urllib.error.HTTPError) as info:
        http_get(metrics_port, "/")
    assert info.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        http_get(metrics_port, "/metrics", method="POST")
    assert info.value.code == 405
    status, _type, body = http_get(metrics_port, "/metrics?format=text", method="HEAD")
    assert status == 200 and body == ""
    with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
        sock.sendall(b"garbage\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")
    status, _type, body = http_get(metrics_port)  # still serving
    assert status == 200 and "fastdns_queries_total" in body


def test_metrics_port_in_use_exits_1(tmp_path):
    import subprocess
    import sys

    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "fastdns",
                "serve",
                "--zone-dir",
                str(EXAMPLE_ZONE.parent),
                "--listen",
                f"127.0.0.1:{free_port()}",
                "--metrics-listen",
                f"127.0.0.1:{port}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
