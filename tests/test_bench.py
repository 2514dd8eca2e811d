"""``fastdns bench``: the load generator, query files and mixes, reports, the PNG, and the
comparison with Knot, against real servers. No test asserts a duration or a speed."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import zlib

import dns.message
import dns.name
import dns.rdatatype
import pytest
from conftest import EXAMPLE_ZONES

from fastdns import _loadgen
from fastdns.bench.dnsperf import parse_output
from fastdns.bench.histogram import LatencyHistogram
from fastdns.bench.load import LoadSettings, run_load
from fastdns.bench.plot import PNG_SIGNATURE, encode_png, latency_plot
from fastdns.bench.queries import (
    QueryError,
    QuerySpec,
    encode_queries,
    generate_queries,
    load_zones,
    parse_mix,
    parse_query_lines,
)
from fastdns.bench.servers import (
    ServerUnavailable,
    hold_to_cpus,
    process_tree_cpu,
    running_server,
)
from fastdns.cli import main

QUERIES = [
    QuerySpec("www.example.com.", "A"),
    QuerySpec("example.com.", "MX"),
    QuerySpec("nothing-here.example.com.", "A"),
    QuerySpec("blog.example.com.", "A"),
]


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) of a PNG, after checking its structure."""
    assert data[:8] == PNG_SIGNATURE
    length, tag = struct.unpack(">I4s", data[8:16])
    assert (tag, length) == (b"IHDR", 13)
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])
    assert data[-12:] == struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return struct.unpack(">IIBB", data[16:26])


# -- the histogram


def test_histogram_buckets_are_within_one_percent_from_1us_to_10s():
    previous_high = None
    for index in range(_loadgen.BUCKET_COUNT - 1):
        low, high = _loadgen.bucket_bounds(index)
        assert previous_high is None or low == previous_high  # contiguous, no gaps
        previous_high = high
        if 1_000 <= low <= 10_000_000_000:
            assert (high - low) / low <= 0.01
    for ns in (0, 1, 255, 256, 999, 1_000, 123_456, 10**9, 10**10):
        low, high = _loadgen.bucket_bounds(_loadgen.bucket_index(ns))
        assert low <= ns < high


def test_percentiles_are_monotone_and_clamped():
    counts: dict[int, int] = {}
    for ns in (3_000, 5_000, 5_000, 40_000, 900_000):
        index = _loadgen.bucket_index(ns)
        counts[index] = counts.get(index, 0) + 1
    h = LatencyHistogram(counts, sum_ns=953_000, min_ns=3_000, max_ns=900_000)
    values = [h.percentile_ns(p) for p in (0, 10, 50, 90, 99, 99.9, 100)]
    assert values == sorted(values)
    assert values[0] == 3_000 and values[-1] == 900_000
    assert abs(h.percentile_ns(50) - 5_000) <= 50
    assert h.mean_ns() == pytest.approx(190_600)
    merged = h.merge(LatencyHistogram({_loadgen.bucket_index(1_000): 1}, 1_000, 1_000, 1_000))
    assert merged.total == 6 and merged.min_ns == 1_000 and merged.max_ns == 900_000


# -- queries


def test_query_file_parser():
    specs = parse_query_lines(
        [
            "; a comment",
            "# another",
            "",
            "www.example.com A",
            "  example.com   mx  ",
            "bare.example.com",
            "Mixed.Example.COM. aaaa",
        ],
        "q.txt",
    )
    assert specs == [
        QuerySpec("www.example.com.", "A"),
        QuerySpec("example.com.", "MX"),
        QuerySpec("bare.example.com.", "A"),
        QuerySpec("Mixed.Example.COM.", "AAAA"),
    ]
    with pytest.raises(QueryError, match=r"^q\.txt:2: unknown type 'NOPE'"):
        parse_query_lines(["ok.example A", "bad.example NOPE"], "q.txt")
    with pytest.raises(QueryError, match=r"^q\.txt:1: expected 'name type'"):
        parse_query_lines(["a.example A extra"], "q.txt")
    with pytest.raises(QueryError, match="no queries"):
        parse_query_lines(["; only comments"], "q.txt")


def test_query_wire_format():
    plain = encode_queries([QuerySpec("www.example.com.", "AAAA")])
    msg = dns.message.from_wire(plain[0])
    assert msg.id == 0 and msg.flags == 0 and msg.edns == -1
    assert msg.question[0].rdtype == dns.rdatatype.AAAA
    edns = dns.message.from_wire(encode_queries([QuerySpec("www.example.com.", "A")], 1232)[0])
    assert edns.edns == 0 and edns.payload == 1232


def test_mix_from_zone_directory():
    zones, errors = load_zones(EXAMPLE_ZONES)
    assert errors == []
    mix = parse_mix("A=40,AAAA=20,MX=10,NXDOMAIN=20,CNAME=10,NODATA=5")
    specs, warnings = generate_queries(zones, mix, count=2000, seed=7)
    assert warnings == []
    assert len(specs) == 2000
    assert specs == generate_queries(zones, mix, count=2000, seed=7)[0]  # reproducible
    zone = zones[0]
    cut = dns.name.from_text("dev.example.com.")
    kinds = {spec.rdtype for spec in specs}
    assert {"A", "AAAA", "MX"} <= kinds
    for spec in specs:
        name = dns.name.from_text(spec.name)
        assert name.is_subdomain(zone.origin) and not name.is_subdomain(cut)
        if spec.name.startswith("nx-"):
            assert name not in zone.names()
    # wildcard owners are asked for under a random label
    assert any(spec.name.endswith(".apps.example.com.") for spec in specs)
    with pytest.raises(QueryError, match="neither a record type"):
        parse_mix("A=1,BOGUS=2")
    _specs, warnings = generate_queries(zones, parse_mix("A=1,SRV=1"), count=10)
    assert warnings == ["mix: the zones have nothing for SRV; left out"]


# -- the load generator


def test_loadgen_against_fastdns(example_server):
    wires = encode_queries(QUERIES)
    progress = []
    result = run_load(
        example_server.host,
        example_server.port,
        wires,
        LoadSettings(duration=1.5, rate=2000, timeout=1.0),
        progress.append,
    )
    assert result.sent > 0
    assert result.lost == 0
    assert result.answered == result.sent
    assert result.extra["mismatched"] == 0 and result.extra["late"] == 0
    assert result.rcodes.get(0, 0) > 0 and result.rcodes.get(3, 0) > 0  # NOERROR, NXDOMAIN
    assert result.histogram.total == result.answered
    values = [result.histogram.percentile_ns(p) for p in (0, 50, 90, 99, 99.9, 100)]
    assert values == sorted(values) and values[0] > 0
    assert progress and all(p["answered"] <= p["sent"] for p in progress)


def test_loadgen_counts_unanswered_queries_as_lost():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives, never answers
        port = silent.getsockname()[1]
        result = run_load(
            "127.0.0.1",
            port,
            encode_queries(QUERIES),
            LoadSettings(duration=0.3, rate=1000, timeout=0.2, sockets=2),
        )
    assert result.sent > 0
    assert result.answered == 0
    assert result.lost == result.sent


def test_loadgen_rejects_wrong_answers_and_reuses_ids_safely():
    """A server that answers with the wrong question: nothing counts as answered. With a
    cap of 2 outstanding and 100 ms timeouts, query IDs are reused many times over."""
    import threading

    stop = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.05)
        other = encode_queries([QuerySpec("other.example.", "A")])[0]

        def answer_wrongly():
            while not stop.is_set():
                try:
                    data, peer = server.recvfrom(512)
                except TimeoutError:
                    continue
                server.sendto(data[:2] + b"\x84\x00" + other[4:], peer)

        thread = threading.Thread(target=answer_wrongly)
        thread.start()
        try:
            generator = _loadgen.LoadGenerator(
                "127.0.0.1",
                server.getsockname()[1],
                encode_queries(QUERIES),
                max_outstanding=2,
                timeout=0.1,
                sockets=1,
            )
            raw = generator.run(0.5)
        finally:
            stop.set()
            thread.join()
    assert raw["sent"] > 0
    assert raw["answered"] == 0
    assert raw["mismatched"] > 0
    assert raw["lost"] == raw["sent"]


# -- reports, JSON, dnsperf


def test_json_output_shape(example_server, tmp_path, capsys):
    query_file = tmp_path / "q.txt"
    query_file.write_text("".join(f"{q}\n" for q in QUERIES))
    status = main(
        [
            "bench",
            "--server",
            f"{example_server.host}:{example_server.port}",
            "--queries",
            str(query_file),
            "--rate",
            "1000",
            "--duration",
            "1",
            "--dnsperf",
            "--json",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    report = json.loads(out)
    assert set(report) == {"settings", "servers"}
    assert report["settings"]["rate_qps"] == 1000 and report["settings"]["queries"] == 4
    (server,) = report["servers"]
    assert server["address"] == f"{example_server.host}:{example_server.port}"
    (run,) = server["runs"]
    for key in ("qps", "sent", "answered", "lost", "loss_percent", "latency_mean_us"):
        assert isinstance(run[key], (int, float))
    for p in ("p50", "p90", "p99", "p99.9"):
        assert run[f"latency_{p}_us"] > 0
    assert run["lost"] == 0 and run["answered"] == run["sent"]
    assert set(run["rcodes"]) == {"NOERROR", "NXDOMAIN"}
    assert "cpu_us_per_query" not in run  # the bench did not start this server
    assert run["dnsperf_qps"] > 0 and run["dnsperf_rcodes"]["NOERROR"] > 0
    assert server["median"]["qps"] == run["qps"]


def test_dnsperf_output_parser():
    text = """
Statistics:

  Queries sent:         10000
  Queries completed:    9990 (99.90%)
  Queries lost:         10 (0.10%)

  Response codes:       NOERROR 6667 (66.67%), NXDOMAIN 3323 (33.23%)
  Average packet size:  request 31, response 65
  Run time (s):         2.000207
  Queries per second:   4999.482554

  Average Latency (s):  0.000090 (min 0.000024, max 0.003634)
  Latency StdDev (s):   0.000118
"""
    result = parse_output(text)
    assert (result.sent, result.completed, result.lost) == (10000, 9990, 10)
    assert result.rcodes == {"NOERROR": 6667, "NXDOMAIN": 3323}
    assert result.qps == pytest.approx(4999.482554)
    assert result.latency_avg_us == pytest.approx(90.0)
    assert result.latency_max_us == pytest.approx(3634.0)
    assert result.loss_percent == pytest.approx(0.1)


def test_bad_flags_exit_2(capsys):
    assert main(["bench", "--queries", "x.txt"]) == 2
    assert "--server" in capsys.readouterr().err
    assert main(["bench", "--start-fastdns", "--queries", "x.txt"]) == 2
    assert "--zone-dir" in capsys.readouterr().err
    assert main(["bench", "--server", "127.0.0.1", "--queries", "x.txt"]) == 2
    assert main(["bench", "--server", "127.0.0.1:1", "--queries", "/nonexistent.txt"]) == 2
    assert "cannot read query file" in capsys.readouterr().err


# -- the PNG


def test_png_encoder_writes_a_valid_png():
    pixels = bytes([255, 0, 0]) * 6  # 3 x 2 red
    data = encode_png(3, 2, pixels)
    assert png_header(data) == (3, 2, 8, 2)
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = zlib.decompress(data[41 : 41 + idat_length])
    assert raw == (b"\x00" + bytes([255, 0, 0]) * 3) * 2


def test_latency_plot_is_a_png():
    h = LatencyHistogram(
        {_loadgen.bucket_index(ns): 10 for ns in (2_000, 30_000)}, 0, 2_000, 30_000
    )
    assert png_header(latency_plot({"fastdns": h, "knot": h}))[:2] == (900, 540)
    assert png_header(latency_plot({}))[:2] == (900, 540)


# -- servers


def test_process_tree_cpu_counts_this_process():
    assert process_tree_cpu(os.getpid()) > 0


def thread_affinities(pid: int) -> dict[int, set[int]]:
    return {int(t): os.sched_getaffinity(int(t)) for t in os.listdir(f"/proc/{pid}/task")}


# A child whose second thread pins itself to the first CPU, as Knot pins its UDP workers.
SELF_PINNING_CHILD = """
import os, sys, threading
ready = threading.Event()
def worker():
    os.sched_setaffinity(0, {int(sys.argv[1])})  # this thread only
    ready.set()
    threading.Event().wait()
threading.Thread(target=worker, daemon=True).start()
ready.wait()
print("pinned", flush=True)
sys.stdin.read()
"""


def two_cpus() -> tuple[int, int]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to tell a self-pinned thread from the others")
    return cpus[0], cpus[-1]


def test_hold_to_cpus_moves_back_a_thread_that_pinned_itself():
    first, last = two_cpus()
    child = subprocess.Popen(
        [sys.executable, "-c", SELF_PINNING_CHILD, str(first)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "pinned\n"
        assert {first} in thread_affinities(child.pid).values()
        assert hold_to_cpus(child.pid, {last}) == len(thread_affinities(child.pid))
        assert set(map(frozenset, thread_affinities(child.pid).values())) == {frozenset({last})}
        assert hold_to_cpus(child.pid, {last}) == 0  # nothing left to move
    finally:
        child.kill()
        child.wait()


@pytest.mark.knot
def test_a_pinned_knot_answers_from_the_server_cpus():
    # Knot pins UDP worker i to CPU i itself; a comparison under --pin must not let it answer
    # from the load generator's CPU.
    _first, last = two_cpus()
    with running_server("knot", EXAMPLE_ZONES, cpus={last}) as server:
        assert server.threads_moved >= 1
        affinities = thread_affinities(server.proc.pid)
        assert affinities and all(cpus == {last} for cpus in affinities.values())


def test_missing_server_software_says_how_to_install(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("os.access", lambda path, mode: False)
    with (
        pytest.raises(ServerUnavailable, match="nsd is not installed"),
        running_server("nsd", EXAMPLE_ZONES),
    ):
        pass


@pytest.mark.knot
def test_compare_knot_end_to_end(tmp_path, capsys):
    plot = tmp_path / "latency.png"
    status = main(
        [
            "bench",
            "--compare",
            "knot",
            "--zone-dir",
            str(EXAMPLE_ZONES),
            "--rate",
            "1000",
            "--duration",
            "1",
            "--rounds",
            "1",
            "--count",
            "200",
            "--plot",
            str(plot),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    lines = captured.out.splitlines()
    header = next(line for line in lines if "fastdns/knot" in line)
    assert header.split() == ["fastdns", "knot", "fastdns/knot"]
    rows = {line[:28].strip(): line[28:].split() for line in lines if line.startswith("  ")}
    assert len(rows["answered qps"]) == 3
    assert len(rows["server CPU µs/query"]) == 3
    assert rows["lost"] == ["0", "0"]
    assert any(line.strip().startswith("knot: knot") for line in lines)
    assert png_header(plot.read_bytes())[:2] == (900, 540)
