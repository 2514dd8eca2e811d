"""Health checks against real endpoints: probes, Route 53's status rules, the monitor, the table.

Every endpoint is a real server on 127.0.0.1 (``support.health``); nothing on the network path is
mocked. Timeouts are Route 53's in the code and shortened here through ``Timeouts``; the monitor
runs with ``time_scale`` so a 10-second RequestInterval takes a fifth of a second.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from support.health import (
    BlackHole,
    HttpEndpoint,
    SilentEndpoint,
    TcpEndpoint,
    closed_port,
)

from fastdns.health.checker import (
    SEARCH_WINDOW,
    ThresholdStatus,
    Timeouts,
    calculated_status,
    probe,
    reported_status,
)
from fastdns.health.config import parse_config
from fastdns.health.monitor import HealthMonitor
from fastdns.health.table import HealthTable, open_health_table

SHORT = Timeouts(connect=0.5, response=0.5, body=0.5, tcp_connect=0.5)
SCALE = 0.02  # RequestInterval 10 s -> 0.2 s


def config(**fields):
    """A checked HealthCheckConfig from API fields (strings or native values)."""
    return parse_config(fields)


def http_check(port: int, **fields):
    return config(**{"Type": "HTTP", "IPAddress": "127.0.0.1", "Port": port, **fields})


def run(coroutine):
    return asyncio.run(coroutine)


# -- one probe


@pytest.mark.parametrize(
    ("status", "success", "text"),
    [
        (200, True, "Success: HTTP Status Code 200, OK"),
        (204, True, "Success: HTTP Status Code 204, No Content"),
        (301, True, "Success: HTTP Status Code 301, Moved Permanently"),
        (399, True, "Success: HTTP Status Code 399"),
        (404, False, "Failure: HTTP Status Code 404, Not Found"),
        (503, False, "Failure: HTTP Status Code 503, Service Unavailable"),
    ],
)
def test_http_status_2xx_and_3xx_are_healthy(status, success, text):
    with HttpEndpoint(status=status) as endpoint:
        observation = run(probe(http_check(endpoint.port), SHORT))
    assert observation.success is success
    assert observation.status.startswith(text)
    assert observation.checker_ip == "127.0.0.1"
    assert observation.checked_time.endswith("Z") and len(observation.checked_time) == 24


def test_request_path_and_host_header():
    with HttpEndpoint() as endpoint:
        run(probe(http_check(endpoint.port, ResourcePath="/health?deep=1"), SHORT))
        run(
            probe(
                http_check(endpoint.port, FullyQualifiedDomainName="www.fastdns.test"), SHORT, "x"
            )
        )
    (path, headers), (default_path, named) = endpoint.requests
    assert path == "/health?deep=1"
    assert headers["Host"] == f"127.0.0.1:{endpoint.port}"  # no name: the IP, and the port
    assert default_path == "/"
    assert named["Host"] == f"www.fastdns.test:{endpoint.port}"
    assert "(ref x)" in named["User-Agent"]


def test_https_does_not_validate_the_certificate_and_sends_sni_when_enabled():
    with HttpEndpoint(tls=True) as endpoint:
        fields = {"IPAddress": "127.0.0.1", "Port": endpoint.port}
        name = {"FullyQualifiedDomainName": "www.fastdns.test"}
        with_sni = run(probe(config(Type="HTTPS", **fields, **name), SHORT))
        without_sni = run(probe(config(Type="HTTPS", EnableSNI=False, **fields, **name), SHORT))
    # The certificate is self-signed and for another name: still healthy.
    assert with_sni.status == "Success: HTTP Status Code 200, OK"
    assert without_sni.success
    assert endpoint.server_names == ["www.fastdns.test", None]
    assert endpoint.requests[0][1]["Host"] == f"www.fastdns.test:{endpoint.port}"


def test_http_check_against_an_https_port_and_tls_against_plain_http_fail():
    with HttpEndpoint() as plain:
        observation = run(
            probe(config(Type="HTTPS", IPAddress="127.0.0.1", Port=plain.port), SHORT)
        )
    assert not observation.success
    assert observation.status.startswith("Failure: TLS handshake failed")


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    ("offset", "success"),
    [
        (0, True),
        (SEARCH_WINDOW - len("NEEDLE"), True),  # ends on the last byte searched
        (SEARCH_WINDOW - len("NEEDLE") + 1, False),  # straddles the limit
        (SEARCH_WINDOW + 100, False),
    ],
)
def test_string_match_searches_the_first_5120_bytes(offset, success, chunked):
    body = b"x" * offset + b"NEEDLE" + b"y" * 3000
    with HttpEndpoint(body=body) as endpoint:
        endpoint.chunked = chunked
        check = http_check(endpoint.port, Type="HTTP_STR_MATCH", SearchString="NEEDLE")
        observation = run(probe(check, SHORT))
    assert observation.success is success
    if not success:
        assert observation.status == (
            "Failure: HTTP Status Code 200, OK. The search string was not found in the first "
            "5120 bytes of the response body."
        )


def test_string_match_is_case_sensitive_and_works_over_https():
    with HttpEndpoint(tls=True, body=b"<html>status: Green</html>") as endpoint:
        fields = {"Type": "HTTPS_STR_MATCH", "IPAddress": "127.0.0.1", "Port": endpoint.port}
        assert run(probe(config(SearchString="Green", **fields), SHORT)).success
        assert not run(probe(config(SearchString="green", **fields), SHORT)).success


def test_a_failing_status_fails_a_string_match_before_the_body():
    with HttpEndpoint(status=500, body=b"NEEDLE") as endpoint:
        check = http_check(endpoint.port, Type="HTTP_STR_MATCH", SearchString="NEEDLE")
        observation = run(probe(check, SHORT))
    assert observation.status == "Failure: HTTP Status Code 500, Internal Server Error"


def test_tcp_check_connects():
    with TcpEndpoint() as endpoint:
        good = run(probe(config(Type="TCP", IPAddress="127.0.0.1", Port=endpoint.port), SHORT))
    refused = run(probe(config(Type="TCP", IPAddress="127.0.0.1", Port=closed_port()), SHORT))
    assert good.success and good.status == "Success: TCP connection established"
    assert not refused.success
    assert refused.status.startswith("Failure: Connection refused")


def test_connection_refused_fails_an_http_check():
    observation = run(probe(http_check(closed_port()), SHORT))
    assert observation.status.startswith("Failure: Connection refused")


@pytest.mark.parametrize("check_type", ["HTTP", "TCP"])
def test_connect_timeout(check_type):
    with BlackHole() as hole:
        timeouts = Timeouts(connect=0.3, tcp_connect=0.4)
        start = time.monotonic()
        observation = run(
            probe(config(Type=check_type, IPAddress="127.0.0.1", Port=hole.port), timeouts)
        )
        elapsed = time.monotonic() - start
    assert not observation.success
    assert observation.status.startswith("Failure: Connection timed out.")
    expected = 0.3 if check_type == "HTTP" else 0.4
    assert expected <= elapsed < expected + 0.5


def test_an_endpoint_that_accepts_and_never_answers_fails_after_the_response_timeout():
    with SilentEndpoint() as endpoint:
        start = time.monotonic()
        observation = run(probe(http_check(endpoint.port), Timeouts(response=0.3)))
        elapsed = time.monotonic() - start
    assert observation.status == (
        "Failure: The endpoint did not send an HTTP status and headers within 0.3 seconds after "
        "the connection was established."
    )
    assert 0.3 <= elapsed < 0.8


def test_a_body_that_does_not_arrive_fails_a_string_match_after_the_body_timeout():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nnot yet"
    with SilentEndpoint(send=head) as endpoint:
        check = http_check(endpoint.port, Type="HTTP_STR_MATCH", SearchString="NEEDLE")
        start = time.monotonic()
        observation = run(probe(check, Timeouts(body=0.3)))
        elapsed = time.monotonic() - start
    assert observation.status == (
        "Failure: HTTP Status Code 200, OK. The response body was not received within 0.3 "
        "seconds after the HTTP status."
    )
    assert 0.3 <= elapsed < 0.8


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Fine: 1\r\n folded: continuation\r\n\r\n",
    ],
)
def test_headers_must_be_in_rfc7230_format(head):
    with HttpEndpoint() as endpoint:
        endpoint.raw_head = head
        observation = run(probe(http_check(endpoint.port), SHORT))
    assert observation.status == (
        "Failure: The response headers are not in the format RFC 7230 section 3.2 defines."
    )


def test_not_http_at_all():
    with HttpEndpoint() as endpoint:
        endpoint.raw_head = b"SSH-2.0-OpenSSH\r\n\r\n"
        observation = run(probe(http_check(endpoint.port), SHORT))
    assert (
        observation.status == "Failure: The response does not start with an HTTP/1.x status line."
    )


def test_a_domain_name_without_an_address_is_resolved_at_each_probe():
    with HttpEndpoint() as endpoint:
        check = config(Type="HTTP", FullyQualifiedDomainName="localhost", Port=endpoint.port)
        assert run(probe(check, SHORT)).success
    assert endpoint.requests[0][1]["Host"] == f"localhost:{endpoint.port}"
    missing = config(Type="HTTP", FullyQualifiedDomainName="missing.invalid", Port=80)
    observation = run(probe(missing, Timeouts(connect=2.0)))
    assert observation.status.startswith("Failure: DNS resolution failed: missing.invalid")


# -- the status rules


def test_the_status_flips_after_failure_threshold_results_that_disagree():
    status = ThresholdStatus(3)
    assert status.healthy  # new: healthy until there is data
    assert [status.record(r) for r in (False, False, True, False, False)] == [False] * 5
    assert status.healthy  # a success in between starts the count again
    assert status.record(False) is True and not status.healthy
    assert [status.record(r) for r in (True, True)] == [False, False]
    assert status.record(False) is False  # agreeing result: the count of successes restarts
    assert [status.record(True) for _ in range(3)] == [False, False, True]
    assert status.healthy
    one = ThresholdStatus(1)
    assert one.record(False) and not one.healthy and one.record(True) and one.healthy


@pytest.mark.parametrize(
    ("measured", "disabled", "inverted", "reported"),
    [
        (True, False, False, True),
        (False, False, False, False),
        (True, False, True, False),
        (False, False, True, True),
        (False, True, False, True),  # disabled: always healthy
        (True, True, False, True),
        (True, True, True, False),  # disabled and inverted: always unhealthy
        (False, True, True, False),
    ],
)
def test_disabled_and_inverted(measured, disabled, inverted, reported):
    check = config(Type="TCP", IPAddress="192.0.2.1", Port=80, Disabled=disabled, Inverted=inverted)
    assert reported_status(measured, check) is reported


@pytest.mark.parametrize(
    ("threshold", "healthy_children", "expected"),
    [
        (3, 3, True),  # AND of three
        (3, 2, False),
        (1, 1, True),  # OR
        (1, 0, False),
        (2, 2, True),  # at least 2 of 3
        (2, 1, False),
        (0, 0, True),  # 0: always healthy
        (4, 3, False),  # more than the children: always unhealthy
    ],
)
def test_calculated_status(threshold, healthy_children, expected):
    check = config(Type="CALCULATED", HealthThreshold=threshold, ChildHealthChecks=["a", "b", "c"])
    statuses = {"a": healthy_children >= 1, "b": healthy_children >= 2, "c": healthy_children >= 3}
    healthy, reason = calculated_status(check, statuses.get)
    assert healthy is expected
    assert reason == (
        f"{healthy_children} of 3 child health checks healthy, at least {threshold} required"
    )


def test_a_missing_child_counts_as_unhealthy():
    check = config(Type="CALCULATED", HealthThreshold=2, ChildHealthChecks=["a", "gone"])
    assert calculated_status(check, {"a": True}.get)[0] is False


# -- the table


def test_the_table_is_shared_read_only_and_starts_healthy():
    table = HealthTable(capacity=16)
    try:
        view = open_health_table(table.fd)
        assert view.readonly and len(view) == 16
        assert bytes(view) == b"\x01" * 16
        table.set(3, False)
        assert view[3] == 0 and not table.get(3)
        table.release(3)
        assert view[3] == 1
        with pytest.raises(IndexError):
            table.set(16, True)
        with pytest.raises(TypeError):
            view[0] = 0
        view.release()
    finally:
        table.close()


# -- the monitor


def start_monitor(table: HealthTable, entries: list, **kwargs) -> HealthMonitor:
    async def load_checks():
        return list(entries)

    return HealthMonitor(table, load_checks, time_scale=SCALE, timeouts=SHORT, **kwargs)


def test_the_monitor_flips_a_check_after_exactly_failure_threshold_probes():
    async def scenario(endpoint: HttpEndpoint, table: HealthTable):
        entries = [("web", 7, http_check(endpoint.port, RequestInterval=10, FailureThreshold=3))]
        monitor = start_monitor(table, entries)
        flips: list[tuple[str, bool, int]] = []
        flipped = asyncio.Event()

        def on_change(check_id, healthy):
            flips.append((check_id, healthy, len(endpoint.requests)))
            flipped.set()

        monitor.on_change(on_change)
        await monitor.start()
        assert table.get(7) and monitor.status("web").healthy
        await asyncio.wait_for(flipped.wait(), 5)
        assert flips == [("web", False, 3)]  # not before the third failure, not after
        assert not table.get(7)
        status = monitor.status("web")
        assert status.healthy is False and status.measured is False
        assert status.observation.status == "Failure: HTTP Status Code 500, Internal Server Error"
        assert status.last_failure == status.observation
        flipped.clear()
        endpoint.status = 200
        await asyncio.wait_for(flipped.wait(), 5)
        assert flips[-1] == ("web", True, 6)  # three successes later
        assert table.get(7)
        assert monitor.status("web").last_failure.status.startswith("Failure: HTTP Status Code 500")
        await monitor.close()

    table = HealthTable(capacity=64)
    try:
        with HttpEndpoint(status=500) as endpoint:
            run(scenario(endpoint, table))
    finally:
        table.close()


def test_new_inverted_disabled_checks_and_their_table_bytes():
    async def scenario(endpoint: HttpEndpoint, table: HealthTable):
        entries = [
            ("plain", 0, http_check(endpoint.port)),
            ("inverted", 1, http_check(endpoint.port, Inverted=True)),
            ("disabled", 2, http_check(endpoint.port, Disabled=True, ResourcePath="/d")),
            (
                "disabled-inverted",
                3,
                http_check(endpoint.port, Disabled=True, Inverted=True, ResourcePath="/d"),
            ),
        ]
        monitor = start_monitor(table, entries)
        await monitor.start()
        view = open_health_table(table.fd)
        # Before any data: healthy, an inverted check unhealthy; disabled always healthy, and
        # disabled and inverted always unhealthy.
        assert bytes(view[:5]) == b"\x01\x00\x01\x00\x01"
        await asyncio.sleep(0.5)  # a few probes (the endpoint answers 200)
        assert bytes(view[:5]) == b"\x01\x00\x01\x00\x01"
        # Disabled checks are never probed: every request came from the two enabled ones.
        paths = {path for path, _ in endpoint.requests}
        assert len(endpoint.requests) >= 2 and paths == {"/"}
        assert monitor.status("disabled").observation is None
        assert monitor.status("disabled").reason == "disabled"
        assert monitor.status("disabled-inverted").reason == "disabled, inverted"
        assert monitor.status("inverted").observation.success
        assert monitor.status("inverted").reason == "Success: HTTP Status Code 200, OK, inverted"
        await monitor.close()
        view.release()

    table = HealthTable(capacity=8)
    try:
        with HttpEndpoint() as endpoint:
            run(scenario(endpoint, table))
            probes = len(endpoint.requests)
            time.sleep(0.3)
            assert len(endpoint.requests) == probes  # closed: no more probes
    finally:
        table.close()


def test_the_monitor_evaluates_calculated_checks_when_a_child_changes():
    # Children whose status is fixed by their settings: disabled (healthy) or disabled and
    # inverted (unhealthy), so the test needs no timing.
    up = config(Type="TCP", IPAddress="192.0.2.1", Port=80, Disabled=True)
    down = config(Type="TCP", IPAddress="192.0.2.1", Port=80, Disabled=True, Inverted=True)

    def calculated(threshold, *children, **fields):
        return config(
            Type="CALCULATED", HealthThreshold=threshold, ChildHealthChecks=list(children), **fields
        )

    entries = [
        ("a", 0, up),
        ("b", 1, up),
        ("c", 2, down),
        ("all", 3, calculated(3, "a", "b", "c")),
        ("any", 4, calculated(1, "a", "b", "c")),
        ("two", 5, calculated(2, "a", "b", "c")),
        ("nested", 6, calculated(2, "all", "any")),
        ("not-any", 7, calculated(1, "a", "b", "c", Inverted=True)),
    ]

    async def scenario(table: HealthTable):
        current = list(entries)

        async def load_checks():
            return list(current)

        monitor = HealthMonitor(table, load_checks, time_scale=SCALE, timeouts=SHORT)
        flips: list[tuple[str, bool]] = []
        monitor.on_change(lambda check_id, healthy: flips.append((check_id, healthy)))
        await monitor.start()
        view = open_health_table(table.fd)
        assert bytes(view[:8]) == b"\x01\x01\x00\x00\x01\x01\x00\x00"
        assert flips == []  # first statuses are not flips
        assert monitor.status("two").reason == (
            "2 of 3 child health checks healthy, at least 2 required"
        )
        # c comes up: "all" becomes healthy, and with it "nested".
        current[2] = ("c", 2, up)
        await monitor.reload()
        assert bytes(view[:8]) == b"\x01\x01\x01\x01\x01\x01\x01\x00"
        assert flips == [("c", True), ("all", True), ("nested", True)]
        # a and b go down: "any" stays healthy (c), "two" and "all" do not.
        flips.clear()
        current[0] = ("a", 0, down)
        current[1] = ("b", 1, down)
        await monitor.reload()
        assert bytes(view[:8]) == b"\x00\x00\x01\x00\x01\x00\x00\x00"
        assert set(flips) == {("a", False), ("b", False), ("all", False), ("two", False)} | {
            ("nested", False)
        }
        # A disabled calculated check is healthy; inverted as well, unhealthy.
        current[5] = ("two", 5, calculated(2, "a", "b", "c", Disabled=True))
        await monitor.reload()
        assert view[5] == 1 and monitor.status("two").reason == "disabled"
        await monitor.close()
        view.release()

    table = HealthTable(capacity=8)
    try:
        run(scenario(table))
    finally:
        table.close()


def test_reload_leaves_unchanged_checks_running_and_frees_deleted_slots():
    async def scenario(failing: HttpEndpoint, healthy: HttpEndpoint, table: HealthTable):
        web = http_check(failing.port, RequestInterval=10, FailureThreshold=3)
        other = http_check(healthy.port, RequestInterval=10, Inverted=True)
        current = [("web", 0, web), ("other", 1, other)]

        async def load_checks():
            return list(current)

        monitor = HealthMonitor(table, load_checks, time_scale=SCALE, timeouts=SHORT)
        flips: list[tuple[str, bool, int]] = []
        flipped = asyncio.Event()

        def on_change(check_id, healthy_now):
            flips.append((check_id, healthy_now, len(failing.requests)))
            flipped.set()

        monitor.on_change(on_change)
        await monitor.start()
        assert not table.get(1)  # a new inverted check
        while len(failing.requests) < 2:
            await asyncio.sleep(0.01)
        # Two failures counted. A reload that deletes "other" and adds "third" must not
        # restart "web": its third failure still flips it.
        current[:] = [("web", 0, web), ("third", 2, http_check(healthy.port, Disabled=True))]
        await monitor.reload()
        assert monitor.status("other") is None
        assert table.get(1)  # the freed slot reads healthy again
        assert monitor.status("third").healthy and table.get(2)
        await asyncio.wait_for(flipped.wait(), 5)
        assert flips == [("web", False, 3)]
        # Changing a check's settings keeps its status: inverting "web" reports healthy.
        current[0] = ("web", 0, http_check(failing.port, RequestInterval=10, Inverted=True))
        await monitor.reload()
        assert flips[-1][:2] == ("web", True) and table.get(0)
        assert monitor.status("web").measured is False
        await monitor.close()

    table = HealthTable(capacity=4)
    try:
        with HttpEndpoint(status=503) as failing, HttpEndpoint() as healthy:
            run(scenario(failing, healthy, table))
    finally:
        table.close()


def test_many_checks_probe_concurrently():
    async def scenario(endpoint: HttpEndpoint, hole: BlackHole, table: HealthTable):
        # Ten checks of a black hole and one of a live endpoint, at most 4 probes at once:
        # the live one still gets its turn while the others wait out their timeouts.
        entries = [(f"hole{i}", i, http_check(hole.port)) for i in range(10)]
        entries.append(("live", 10, http_check(endpoint.port)))
        monitor = start_monitor(table, entries, max_concurrent_probes=4)
        await monitor.start()
        deadline = time.monotonic() + 5
        while monitor.status("live").observation is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert monitor.status("live").observation.success
        holes = [monitor.status(f"hole{i}").observation for i in range(10)]
        assert all(o is None or not o.success for o in holes)
        await monitor.close()

    table = HealthTable(capacity=16)
    try:
        with HttpEndpoint() as endpoint, BlackHole() as hole:
            run(scenario(endpoint, hole, table))
    finally:
        table.close()
