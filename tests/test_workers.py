"""The supervisor and its worker processes, against the real server and real sockets.

Workers answer on the shared port; a killed worker is replaced while queries keep being answered;
a SIGHUP reload under a steady stream of queries loses none and never mixes old and new data;
SIGTERM drains and exits 0; N workers map one copy of the zones. No test asserts a duration: the
respawn time is printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.rdatatype
from support.client import check_decoders_agree, make_query, query, recv_frame, tcp_connect
from support.server import free_port, running_fastdns

from fastdns.config import default_workers, load_config

WWW_A = "192.0.2.10"
OLD = {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
NEW = {"198.51.100.1", "198.51.100.2", "198.51.100.3"}
SNAPSHOT_MAPPING = "/memfd:fastdns-snapshot"


def addresses(response) -> set[str]:
    return {
        rd.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset
    }


def alive(pid: int) -> bool:
    """True while ``pid`` is a process that has not exited (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def snapshot_inodes(pid: int) -> set[int]:
    """The inodes of the snapshot memfds process ``pid`` has mapped."""
    inodes = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if SNAPSHOT_MAPPING in line:
            inodes.add(int(line.split()[4]))
    return inodes


def wait_until(condition, timeout: float, what: str, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return result


def add_multi(zone_dir: Path, values: set[str], serial: str = "2024060101") -> None:
    """(Re)write the example zone with ``multi.example.com`` holding ``values`` and ``serial``."""
    zone_file = zone_dir / "example.com.zone"
    text = zone_file.read_text().split("; -- multi\n")[0].replace("2024060101", serial)
    zone_file.write_text(
        text + "; -- multi\n" + "".join(f"multi IN A {value}\n" for value in sorted(values))
    )


# -- load generators


class RetryingQueries(threading.Thread):
    """Asks www.example.com A again and again, each attempt from a fresh UDP socket (so it may
    reach another worker), retrying an unanswered query up to ``attempts`` times."""

    def __init__(self, host: str, port: int, attempts: int = 25, timeout: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.attempts, self.timeout = host, port, attempts, timeout
        self.answered = 0
        self.retried = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            attempts = 0
            while True:
                attempts += 1
                try:
                    response = query(
                        self.host, self.port, "www.example.com", "A", timeout=self.timeout
                    )
                except TimeoutError:
                    if attempts < self.attempts:
                        continue
                    self.failures.append(f"no answer in {self.attempts} attempts")
                else:
                    if addresses(response) != {WWW_A}:
                        self.failures.append(f"wrong answer {response}")
                break
            self.answered += 1
            self.retried += attempts > 1


class SteadyUdpLoad(threading.Thread):
    """Queries ``qname`` A over ``sockets`` UDP sockets (so they spread over the workers), at
    most ``window`` unanswered at once and at most ``rate`` per second, never retrying. A
    query unanswered after ``loss_timeout`` seconds is lost. ``records[i]`` is
    [sent at, answered at, response wire] of query i (id i)."""

    def __init__(
        self,
        host: str,
        port: int,
        qname: str,
        *,
        sockets: int = 8,
        window: int = 16,
        rate: float = 2000,
        loss_timeout: float = 5.0,
    ) -> None:
        super().__init__(daemon=True)
        self.address = (host, port)
        self.wire = make_query(qname, "A", want_id=0).to_wire()
        self.sockets, self.window, self.rate, self.loss_timeout = (
            sockets,
            window,
            rate,
            loss_timeout,
        )
        self.records: list[list] = []
        self.answered = 0
        self.lost: list[int] = []
        self.unexpected: list[bytes] = []
        self.stop = threading.Event()

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        socks = []
        for _ in range(self.sockets):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(self.address)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            socks.append(sock)
        outstanding: dict[int, int] = {}
        next_send = time.monotonic()
        try:
            while not (self.stop.is_set() and not outstanding):
                now = time.monotonic()
                can_send = not self.stop.is_set() and len(outstanding) < self.window
                if can_send and now >= next_send:
                    qid = len(self.records)
                    assert qid < 65536
                    socks[qid % len(socks)].send(struct.pack("!H", qid) + self.wire[2:])
                    self.records.append([now, None, None])
                    outstanding[qid] = qid
                    next_send = max(next_send + 1 / self.rate, now - 0.05)
                    continue
                wait = min(max(next_send - now, 0), 0.02) if can_send else 0.02
                for key, _events in selector.select(wait):
                    while True:
                        try:
                            data = key.fileobj.recv(4096)
                        except (BlockingIOError, ConnectionRefusedError):
                            break
                        qid = struct.unpack_from("!H", data)[0] if len(data) >= 2 else -1
                        if outstanding.pop(qid, None) is None:
                            self.unexpected.append(data)
                            continue
                        self.records[qid][1] = time.monotonic()
                        self.records[qid][2] = data
                        self.answered += 1
                now = time.monotonic()
                for qid in [q for q in outstanding if now - self.records[q][0] > self.loss_timeout]:
                    del outstanding[qid]
                    self.lost.append(qid)
        finally:
            for sock in socks:
                sock.close()


# -- tests


def test_workers_answer_on_the_shared_port(zone_dir, start_fastdns):
    server = start_fastdns(zone_dir, workers=2)
    pids = server.worker_pids()
    assert sorted(pids) == [0, 1]
    assert len(set(pids.values())) == 2
    assert children_of(server.proc.pid) == set(pids.values())
    for _ in range(20):  # fresh sockets: the kernel spreads them over both workers
        assert addresses(query(server.host, server.port, "www.example.com", "A")) == {WWW_A}
        answer = query(server.host, server.port, "www.example.com", "A", tcp=True)
        assert addresses(answer) == {WWW_A}
    text = server.stderr_text()
    assert text.count(f"listening on 127.0.0.1:{server.port} (UDP and TCP)") == 1
    assert "fastdns ready: 2 workers, 1 zones" in text
    # One copy of the zones: both workers map the same sealed memfd.
    inodes = [snapshot_inodes(pid) for pid in pids.values()]
    assert len(inodes[0]) == 1 and inodes[0] == inodes[1], inodes


def segment_inodes(pid: int) -> set[int]:
    """The inodes of the image-segment memfds (fastdns.snapshot.ImageSegment) ``pid`` maps."""
    return {
        int(line.split()[4])
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
        if "/memfd:fastdns-image" in line
    }


def test_a_large_zone_keeps_its_segment_while_another_zone_changes(zone_dir, start_fastdns):
    # 12,000 records compile to an image over SEGMENT_MIN_BYTES (1 MiB): it travels in a
    # segment of its own, which a reload that changes only example.com does not copy.
    big = "\n".join(
        ["$ORIGIN big.test.", "$TTL 300", "@ SOA ns hostmaster 1 7200 900 1209600 300",
         "@ NS ns", "ns A 192.0.2.53"]
        + [f"h{i} A 10.0.{i >> 8}.{i & 255}" for i in range(12_000)]
    )  # fmt: skip
    (zone_dir / "big.test.zone").write_text(big + "\n")
    server = start_fastdns(zone_dir, workers=2)
    pids = server.worker_pids()
    before = {slot: segment_inodes(pid) for slot, pid in pids.items()}
    assert len(before[0]) == 1 and before[0] == before[1], before  # one copy, shared
    add_multi(zone_dir, NEW, serial="2024060102")
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_until(
        lambda: addresses(query(server.host, server.port, "multi.example.com", "A")) == NEW,
        20,
        "the reloaded example.com",
    )
    assert {slot: segment_inodes(pid) for slot, pid in pids.items()} == before
    # A new worker is given the segment with its start message.
    os.kill(pids[1], signal.SIGKILL)
    replacement = wait_until(
        lambda: server.worker_pids()[1] != pids[1] and server.worker_pids()[1], 10, "worker 1"
    )
    wait_until(lambda: segment_inodes(replacement) == before[0], 10, "the new worker's mapping")
    for i in (0, 11_999):  # fresh sockets: both workers answer
        for _ in range(4):
            response = query(server.host, server.port, f"h{i}.big.test", "A")
            assert addresses(response) == {f"10.0.{i >> 8}.{i & 255}"}


def test_a_killed_worker_is_replaced_while_queries_keep_being_answered(zone_dir, start_fastdns):
    server = start_fastdns(zone_dir, workers=2)
    pids = server.worker_pids()
    victim = pids[1]
    load = RetryingQueries(server.host, server.port)
    load.start()
    try:
        wait_until(lambda: load.answered >= 20, 20, "queries to be answered")
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        replacement = wait_until(
            lambda: server.worker_pids()[1] != victim and server.worker_pids()[1],
            5,
            "a new worker 1",
        )
        respawn = time.monotonic() - killed_at
        print(f"\nworker 1 killed (pid {victim}); pid {replacement} ready after {respawn:.3f} s")
        answered = load.answered
        wait_until(lambda: load.answered >= answered + 50, 20, "more queries to be answered")
    finally:
        load.stop.set()
        load.join(30)
    assert load.failures == []
    print(f"{load.answered} queries answered, {load.retried} after a retry")
    assert server.worker_pids()[0] == pids[0]  # the other worker was left alone
    assert not alive(victim)
    assert parent_of(replacement) == server.proc.pid
    assert children_of(server.proc.pid) == {pids[0], replacement}
    assert f"worker 1 (pid {victim}) was killed by SIGKILL; starting a new one" in (
        server.stderr_text()
    )
    # A worker that exits cleanly (SIGTERM sent to it alone) is replaced as well.
    os.kill(pids[0], signal.SIGTERM)
    wait_until(lambda: server.worker_pids()[0] != pids[0], 10, "a new worker 0")
    assert addresses(query(server.host, server.port, "www.example.com", "A")) == {WWW_A}


def test_a_hung_worker_is_replaced(zone_dir, start_fastdns):
    """A worker that stops answering its control socket (here: SIGSTOP, as a hang would) still
    holds its share of the SO_REUSEPORT traffic; the supervisor's heartbeat notices and kills
    it, and a new worker takes the slot."""
    server = start_fastdns(zone_dir, workers=2)
    pids = server.worker_pids()
    victim = pids[1]
    stopped_at = time.monotonic()
    os.kill(victim, signal.SIGSTOP)
    try:
        replacement = wait_until(
            lambda: server.worker_pids()[1] != victim and server.worker_pids()[1],
            20,
            "a new worker 1",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
    print(f"\nhung worker 1 (pid {victim}) replaced after {time.monotonic() - stopped_at:.1f} s")
    assert f"worker 1 (pid {victim}) has not answered for" in server.stderr_text()
    assert server.worker_pids()[0] == pids[0]
    assert parent_of(replacement) == server.proc.pid
    for _ in range(20):
        assert addresses(query(server.host, server.port, "www.example.com", "A")) == {WWW_A}


def test_sighup_under_load_loses_nothing_and_never_mixes_versions(zone_dir, start_fastdns):
    add_multi(zone_dir, OLD)
    server = start_fastdns(zone_dir, workers=2)
    worker_pids = list(server.worker_pids().values())
    before = {pid: snapshot_inodes(pid) for pid in worker_pids}
    add_multi(zone_dir, NEW, serial="2024060102")  # on disk now, served only after SIGHUP

    load = SteadyUdpLoad(server.host, server.port, "multi.example.com")
    load.start()
    try:
        wait_until(lambda: load.answered >= 300, 20, "the first answers")
        hup_at = time.monotonic()
        server.reload()
        done_at = time.monotonic()
        mark = len(load.records)
        wait_until(lambda: len(load.records) >= max(2000, mark + 300), 30, "more queries")
    finally:
        load.stop.set()
        load.join(30)

    assert load.lost == [] and load.unexpected == []
    old = new = 0
    for qid, (sent_at, answered_at, wire) in enumerate(load.records):
        response = check_decoders_agree(wire)
        assert response.id == qid
        got = addresses(response)
        assert got in (OLD, NEW), f"query {qid}: a mix of versions: {got}"
        if answered_at < hup_at:
            assert got == OLD, f"query {qid} answered before SIGHUP: {got}"
        if sent_at > done_at:
            assert got == NEW, f"query {qid} sent after the reload finished: {got}"
        old += got == OLD
        new += got == NEW
    print(f"\n{len(load.records)} queries, 0 lost: {old} old answers, {new} new")
    assert old >= 300 and new >= 300
    # Every worker now maps the new snapshot only: the old mapping was released.
    after = {pid: snapshot_inodes(pid) for pid in worker_pids}
    assert len(set(map(frozenset, after.values()))) == 1
    for pid in worker_pids:
        assert len(after[pid]) == 1 and after[pid] != before[pid]


def test_sigterm_drains_and_exits_0(zone_dir):
    # The default number of workers: one per CPU.
    with running_fastdns(zone_dir, workers=None, extra_args=["--drain-timeout", "30"]) as server:
        pids = server.worker_pids()
        assert len(pids) == default_workers()
        host, port = server.host, server.port
        wire = make_query("www.example.com", "A", want_id=1).to_wire()
        framed = struct.pack("!H", len(wire)) + wire
        with tcp_connect(host, port, timeout=30) as idle, tcp_connect(host, port) as busy:
            for sock in (idle, busy):  # answered: both connections are in a worker's hands
                sock.sendall(framed)
                assert recv_frame(sock, deadline=time.monotonic() + 10) is not None
            busy.sendall(framed[:7])  # half a query when the drain starts
            os.kill(server.proc.pid, signal.SIGTERM)
            # The idle connection is closed at once...
            idle.settimeout(10)
            assert idle.recv(100) == b""
            # ...the half-received query is still answered, then that connection is closed.
            busy.sendall(framed[7:])
            answer = recv_frame(busy, deadline=time.monotonic() + 10)
            assert answer is not None and addresses(check_decoders_agree(answer)) == {WWW_A}
            busy.settimeout(10)
            assert busy.recv(100) == b""
        assert server.proc.wait(30) == 0
        for pid in pids.values():
            wait_until(lambda pid=pid: not alive(pid), 10, f"worker pid {pid} to be gone")
        assert "fastdns stopped" in server.stderr_text()


def test_workers_exit_when_the_supervisor_dies(zone_dir):
    with running_fastdns(zone_dir, workers=2) as server:
        pids = server.worker_pids()
        server.proc.kill()
        server.proc.wait(10)
        server.expected_returncode = -signal.SIGKILL
        for pid in pids.values():
            wait_until(lambda pid=pid: not alive(pid), 10, f"worker pid {pid} to exit")


def test_workers_0_serves_in_the_supervisor_process(zone_dir, start_fastdns):
    add_multi(zone_dir, OLD)
    server = start_fastdns(zone_dir, workers=0)
    assert "fastdns ready: 0 workers (serving in-process)" in server.stderr_text()
    assert children_of(server.proc.pid) == set()
    assert addresses(query(server.host, server.port, "multi.example.com", "A")) == OLD
    add_multi(zone_dir, NEW, serial="2024060102")
    server.reload()
    assert addresses(query(server.host, server.port, "multi.example.com", "A")) == NEW
    answer = query(server.host, server.port, "multi.example.com", "A", tcp=True)
    assert addresses(answer) == NEW


def test_workers_setting(tmp_path):
    assert load_config(None, {"zone_dir": "z"}).workers == default_workers() >= 1
    assert load_config(None, {"zone_dir": "z", "workers": "0"}).workers == 0
    result = subprocess.run(
        [sys.executable, "-m", "fastdns", "serve", "--zone-dir", "z", "--workers", "-1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_unbindable_address_fails_before_any_worker_starts(tmp_path):
    port = free_port()
    zone_dir = Path(__file__).resolve().parent.parent / "examples" / "zones"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        # Even a socket that allows SO_REUSEPORT sharing: the supervisor's check binds without it.
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "fastdns",
                "serve",
                "--zone-dir",
                str(zone_dir),
                "--listen",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "worker" not in result.stderr


def test_workers_started_ahead_exit_quietly_when_the_load_fails(tmp_path):
    # The worker processes start before the zones load (ProcessPool.prestart); when the load
    # then fails, they get no start message and exit without a word.
    (tmp_path / "zones").mkdir()
    (tmp_path / "not-a-folder").write_text("")
    (tmp_path / "fastdns.toml").write_text(f'state = "{tmp_path}/not-a-folder/state.db"\n')
    result = subprocess.run(
        [
            sys.executable, "-m", "fastdns", "serve", "--config", "fastdns.toml",
            "--zone-dir", str(tmp_path / "zones"), "--listen", f"127.0.0.1:{free_port()}",
            "--workers", "2", "--log-level", "debug",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    started = [
        int(line.split("worker process ")[1].split()[0])
        for line in result.stderr.splitlines()
        if "started ahead of the zone load" in line
    ]
    assert len(started) == 2, result.stderr
    for pid in started:
        wait_until(lambda pid=pid: not alive(pid), 10, f"worker process {pid} to exit")
    assert "worker:" not in result.stderr  # nothing from the workers themselves
    assert "worker 0" not in result.stderr and "worker 1" not in result.stderr


def test_one_worker_is_a_supervisor_and_one_process(zone_dir, start_fastdns):
    server = start_fastdns(zone_dir, workers=1)
    pids = server.worker_pids()
    assert list(pids) == [0]
    assert children_of(server.proc.pid) == {pids[0]}
    assert addresses(query(server.host, server.port, "www.example.com", "A")) == {WWW_A}
