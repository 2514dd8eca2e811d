"""The Route 53 health check operations, driven by boto3.

Most tests run against a real ``fastdns serve`` (one per module, state in a fresh SQLite file);
each makes its own health checks so tests do not depend on each other's order. The last ones run
the API server in this process, wired to a real ``HealthMonitor`` the way the supervisor wires
it, to see statuses and the ``on_health_change`` hook.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import socket
import threading
import time
import uuid
from types import SimpleNamespace

import botocore.exceptions
import pytest
from support.api import make_client, running_api_server
from support.health import HttpEndpoint

from fastdns.bench.servers import free_port
from fastdns.config import ListenAddress
from fastdns.health.checker import Timeouts
from fastdns.health.monitor import HealthMonitor
from fastdns.health.table import HealthTable
from fastdns.route53.http import ApiServer
from fastdns.route53.service import Route53Service
from fastdns.store import Store

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api_server(tmp_path_factory.mktemp("health-api")) as server:
        yield server


@pytest.fixture
def client(api):
    return api.client()


def create(client, reference: str | None = None, **config) -> dict:
    """CreateHealthCheck; the response's HealthCheck."""
    response = client.create_health_check(
        CallerReference=reference or str(uuid.uuid4()), HealthCheckConfig=config
    )
    return response["HealthCheck"]


def http_config(**fields) -> dict:
    return {"Type": "HTTP", "IPAddress": "127.0.0.1", "Port": 8080, **fields}


def error_of(raised) -> tuple[str, int, str]:
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


# -- create and get


def test_create_and_get_with_route53_defaults(client):
    reference = str(uuid.uuid4())
    response = client.create_health_check(
        CallerReference=reference,
        HealthCheckConfig=http_config(ResourcePath="/health", FullyQualifiedDomainName="a.test"),
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    check = response["HealthCheck"]
    assert UUID.match(check["Id"])
    assert response["Location"].endswith(f"/2013-04-01/healthcheck/{check['Id']}")
    assert check["CallerReference"] == reference
    assert check["HealthCheckVersion"] == 1
    assert check["HealthCheckConfig"] == {
        "IPAddress": "127.0.0.1",
        "Port": 8080,
        "Type": "HTTP",
        "ResourcePath": "/health",
        "FullyQualifiedDomainName": "a.test",
        "RequestInterval": 30,
        "FailureThreshold": 3,
        "MeasureLatency": False,
        "Inverted": False,
        "Disabled": False,
        "EnableSNI": False,
    }
    assert client.get_health_check(HealthCheckId=check["Id"])["HealthCheck"] == check

    https = create(client, Type="HTTPS", IPAddress="::1", RequestInterval=10)["HealthCheckConfig"]
    assert (https["Port"], https["EnableSNI"], https["RequestInterval"]) == (443, True, 10)
    matcher = create(
        client,
        Type="HTTP_STR_MATCH",
        FullyQualifiedDomainName="www.example.test",
        SearchString="OK",
        FailureThreshold=10,
        Inverted=True,
        Regions=["us-east-1", "eu-west-1", "sa-east-1"],
    )["HealthCheckConfig"]
    assert matcher["Port"] == 80 and matcher["SearchString"] == "OK"
    assert matcher["Regions"] == ["us-east-1", "eu-west-1", "sa-east-1"]
    assert matcher["Inverted"] is True and matcher["FailureThreshold"] == 10
    assert "IPAddress" not in matcher
    tcp = create(client, Type="TCP", IPAddress="10.0.0.5", Port=5432)["HealthCheckConfig"]
    assert tcp["Port"] == 5432 and tcp["EnableSNI"] is False


def test_create_is_idempotent_by_caller_reference(client):
    reference = str(uuid.uuid4())
    first = client.create_health_check(CallerReference=reference, HealthCheckConfig=http_config())
    again = client.create_health_check(CallerReference=reference, HealthCheckConfig=http_config())
    assert again["HealthCheck"] == first["HealthCheck"]
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 201
    with pytest.raises(client.exceptions.HealthCheckAlreadyExists) as raised:
        create(client, reference, **http_config(Port=8081))
    code, status, message = error_of(raised)
    assert (code, status) == ("HealthCheckAlreadyExists", 409)
    assert reference in message
    # Another reference with the same settings is another health check.
    assert create(client, **http_config())["Id"] != first["HealthCheck"]["Id"]
    # A deleted check's reference stays taken, whatever the settings.
    client.delete_health_check(HealthCheckId=first["HealthCheck"]["Id"])
    with pytest.raises(client.exceptions.HealthCheckAlreadyExists):
        create(client, reference, **http_config())


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (http_config(RequestInterval=20), "RequestInterval must be 10 or 30"),
        (http_config(FailureThreshold=11), "FailureThreshold must be a whole number from 1 to 10"),
        (http_config(IPAddress="300.1.2.3"), "IPAddress must be an IPv4 or IPv6 address"),
        ({"Type": "HTTP", "Port": 80}, "needs an IPAddress or a FullyQualifiedDomainName"),
        ({"Type": "TCP", "IPAddress": "192.0.2.1"}, "a TCP health check needs a Port"),
        (http_config(Type="HTTP_STR_MATCH"), "needs a SearchString"),
        (http_config(Type="HTTP_STR_MATCH", SearchString="x" * 256), "SearchString must be"),
        (http_config(SearchString="x"), "SearchString is only for HTTP_STR_MATCH"),
        (http_config(ResourcePath="/" + "p" * 255), "ResourcePath must be"),
        (http_config(HealthThreshold=1), "only for CALCULATED"),
        ({"Type": "CALCULATED", "HealthThreshold": 1, "Port": 80}, "has no Port"),
        ({"Type": "CALCULATED", "ChildHealthChecks": []}, "needs a HealthThreshold"),
        (
            {"Type": "CALCULATED", "HealthThreshold": 1, "ChildHealthChecks": ["nope"]},
            "no health check with the ID nope",
        ),
        (
            {"Type": "CALCULATED", "HealthThreshold": 1, "ChildHealthChecks": ["a", "a"]},
            "listed twice",
        ),
        (http_config(Regions=["us-east-1", "eu-west-1", "mars-1"]), "unknown health checker"),
        ({"Type": "CLOUDWATCH_METRIC"}, "CLOUDWATCH_METRIC are not supported"),
        ({"Type": "RECOVERY_CONTROL"}, "RECOVERY_CONTROL are not supported"),
    ],
)
def test_invalid_configs_are_invalid_input(client, config, words):
    with pytest.raises(client.exceptions.InvalidInput) as raised:
        create(client, **config)
    code, status, message = error_of(raised)
    assert (code, status) == ("InvalidInput", 400)
    assert words in message


def test_a_missing_health_check_is_no_such_health_check(client):
    missing = str(uuid.uuid4())
    for call in (
        lambda: client.get_health_check(HealthCheckId=missing),
        lambda: client.delete_health_check(HealthCheckId=missing),
        lambda: client.update_health_check(HealthCheckId=missing, FailureThreshold=2),
        lambda: client.get_health_check_status(HealthCheckId=missing),
        lambda: client.get_health_check_last_failure_reason(HealthCheckId=missing),
        lambda: client.list_tags_for_resource(ResourceType="healthcheck", ResourceId=missing),
    ):
        with pytest.raises(client.exceptions.NoSuchHealthCheck) as raised:
            call()
        assert error_of(raised)[:2] == ("NoSuchHealthCheck", 404)


# -- list and count


def test_list_pages_in_creation_order_and_count(client):
    ours = [create(client, **http_config(Port=9000 + i))["Id"] for i in range(5)]
    count = client.get_health_check_count()["HealthCheckCount"]
    pages = list(
        client.get_paginator("list_health_checks").paginate(PaginationConfig={"PageSize": 2})
    )
    listed = [check["Id"] for page in pages for check in page["HealthChecks"]]
    assert len(listed) == len(set(listed)) == count
    positions = [listed.index(check_id) for check_id in ours]
    assert positions == sorted(positions) and positions[-1] - positions[0] == 4
    assert all(page["MaxItems"] == "2" for page in pages)
    assert all(page["IsTruncated"] for page in pages[:-1]) and not pages[-1]["IsTruncated"]

    page = client.list_health_checks(MaxItems="2", Marker=ours[1])
    assert [c["Id"] for c in page["HealthChecks"]] == ours[1:3]
    assert page["Marker"] == ours[1] and page["NextMarker"] == ours[3] and page["IsTruncated"]
    with pytest.raises(client.exceptions.InvalidInput):
        client.list_health_checks(Marker="no-such-marker")


# -- update


def test_update_versions_and_optimistic_locking(client):
    check = create(client, **http_config(ResourcePath="/a", FullyQualifiedDomainName="a.test"))
    check_id = check["Id"]
    updated = client.update_health_check(
        HealthCheckId=check_id, HealthCheckVersion=1, FailureThreshold=5, Inverted=True
    )["HealthCheck"]
    assert updated["HealthCheckVersion"] == 2
    assert updated["HealthCheckConfig"]["FailureThreshold"] == 5
    assert updated["HealthCheckConfig"]["Inverted"] is True
    assert updated["HealthCheckConfig"]["ResourcePath"] == "/a"  # untouched fields stay

    with pytest.raises(client.exceptions.HealthCheckVersionMismatch) as raised:
        client.update_health_check(HealthCheckId=check_id, HealthCheckVersion=1, Disabled=True)
    assert error_of(raised)[:2] == ("HealthCheckVersionMismatch", 409)
    assert client.get_health_check(HealthCheckId=check_id)["HealthCheck"] == updated

    # Without a version the update applies; each one counts.
    again = client.update_health_check(HealthCheckId=check_id, IPAddress="192.0.2.7")
    assert again["HealthCheck"]["HealthCheckVersion"] == 3
    assert again["HealthCheck"]["HealthCheckConfig"]["IPAddress"] == "192.0.2.7"

    reset = client.update_health_check(
        HealthCheckId=check_id, ResetElements=["ResourcePath", "FullyQualifiedDomainName"]
    )["HealthCheck"]
    assert "ResourcePath" not in reset["HealthCheckConfig"]
    assert "FullyQualifiedDomainName" not in reset["HealthCheckConfig"]
    assert reset["HealthCheckVersion"] == 4


def test_update_rules(client):
    by_name = create(client, Type="HTTP", FullyQualifiedDomainName="www.example.test")["Id"]
    with pytest.raises(client.exceptions.InvalidInput) as raised:
        client.update_health_check(HealthCheckId=by_name, IPAddress="192.0.2.1")
    assert "IPAddress cannot be added" in error_of(raised)[2]
    with pytest.raises(client.exceptions.InvalidInput) as raised:
        client.update_health_check(
            HealthCheckId=by_name, ResetElements=["FullyQualifiedDomainName"]
        )
    assert "cannot be removed" in error_of(raised)[2]
    with pytest.raises(client.exceptions.InvalidInput) as raised:
        client.update_health_check(HealthCheckId=by_name, SearchString="x")
    assert "SearchString is only for" in error_of(raised)[2]
    with pytest.raises(client.exceptions.InvalidInput):
        client.update_health_check(
            HealthCheckId=by_name, ResourcePath="/x", ResetElements=["ResourcePath"]
        )
    assert client.get_health_check(HealthCheckId=by_name)["HealthCheck"]["HealthCheckVersion"] == 1


def test_calculated_checks_children_and_cycles(client):
    a = create(client, **http_config())["Id"]
    b = create(client, **http_config(Port=8081))["Id"]
    inner = create(client, Type="CALCULATED", HealthThreshold=1, ChildHealthChecks=[a])["Id"]
    outer = create(client, Type="CALCULATED", HealthThreshold=2, ChildHealthChecks=[inner, b])
    assert outer["HealthCheckConfig"] == {
        "Type": "CALCULATED",
        "Inverted": False,
        "Disabled": False,
        "HealthThreshold": 2,
        "ChildHealthChecks": [inner, b],
    }
    with pytest.raises(client.exceptions.InvalidInput) as raised:
        client.update_health_check(HealthCheckId=inner, ChildHealthChecks=[a, outer["Id"]])
    assert "depend on itself" in error_of(raised)[2]
    with pytest.raises(client.exceptions.InvalidInput):
        client.update_health_check(HealthCheckId=inner, ChildHealthChecks=[inner])
    # A child in use cannot be deleted; out of the list, it can.
    with pytest.raises(client.exceptions.HealthCheckInUse) as raised:
        client.delete_health_check(HealthCheckId=b)
    code, status, message = error_of(raised)
    assert (code, status) == ("HealthCheckInUse", 400)
    assert outer["Id"] in message
    client.update_health_check(HealthCheckId=outer["Id"], ResetElements=["ChildHealthChecks"])
    client.delete_health_check(HealthCheckId=b)
    with pytest.raises(client.exceptions.InvalidInput) as raised:
        client.get_health_check_status(HealthCheckId=inner)
    assert "calculated" in error_of(raised)[2]


# -- tags


def test_tags_on_health_checks(client):
    check_id = create(client, **http_config())["Id"]
    client.change_tags_for_resource(
        ResourceType="healthcheck",
        ResourceId=check_id,
        AddTags=[{"Key": "Name", "Value": "web"}, {"Key": "env", "Value": "test"}],
    )
    client.change_tags_for_resource(
        ResourceType="healthcheck", ResourceId=check_id, RemoveTagKeys=["env"]
    )
    tags = client.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check_id)
    assert tags["ResourceTagSet"] == {
        "ResourceType": "healthcheck",
        "ResourceId": check_id,
        "Tags": [{"Key": "Name", "Value": "web"}],
    }
    client.delete_health_check(HealthCheckId=check_id)
    with pytest.raises(client.exceptions.NoSuchHealthCheck):
        client.change_tags_for_resource(
            ResourceType="healthcheck", ResourceId=check_id, RemoveTagKeys=["Name"]
        )


# -- record sets that use health checks


def test_record_sets_use_existing_health_checks_which_then_cannot_be_deleted(api, client):
    zone = f"hc-{uuid.uuid4().hex[:8]}.test."
    zone_id = client.create_hosted_zone(Name=zone, CallerReference=str(uuid.uuid4()))["HostedZone"][
        "Id"
    ]
    check_id = create(client, **http_config())["Id"]

    def weighted(action: str, health_check_id: str) -> dict:
        return {
            "Action": action,
            "ResourceRecordSet": {
                "Name": f"www.{zone}",
                "Type": "A",
                "SetIdentifier": "one",
                "Weight": 10,
                "TTL": 60,
                "ResourceRecords": [{"Value": "192.0.2.1"}],
                "HealthCheckId": health_check_id,
            },
        }

    missing = str(uuid.uuid4())
    with pytest.raises(client.exceptions.InvalidChangeBatch) as raised:
        client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [weighted("CREATE", missing)]}
        )
    assert f"No health check found with id: {missing}" in error_of(raised)[2]

    created = client.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [weighted("CREATE", check_id)]}
    )
    api.wait_insync(created["ChangeInfo"]["Id"])
    with pytest.raises(client.exceptions.HealthCheckInUse) as raised:
        client.delete_health_check(HealthCheckId=check_id)
    code, status, message = error_of(raised)
    assert (code, status) == ("HealthCheckInUse", 400)
    assert f"[name='www.{zone}', type='A', set-identifier='one']" in message
    assert client.get_health_check(HealthCheckId=check_id)["HealthCheck"]["Id"] == check_id

    client.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [weighted("DELETE", check_id)]}
    )
    client.delete_health_check(HealthCheckId=check_id)
    with pytest.raises(client.exceptions.NoSuchHealthCheck):
        client.get_health_check(HealthCheckId=check_id)


def test_the_server_monitor_reports_observations(client):
    with HttpEndpoint() as endpoint:
        check_id = create(client, **http_config(Port=endpoint.port, RequestInterval=10))["Id"]
        deadline = time.monotonic() + 10
        while True:
            status = client.get_health_check_status(HealthCheckId=check_id)
            observations = status["HealthCheckObservations"]
            if observations:
                break
            assert time.monotonic() < deadline, "the server's monitor never probed"
            time.sleep(0.1)
    report = observations[0]["StatusReport"]["Status"]
    assert report.startswith("Success: HTTP Status Code 200"), report
    client.delete_health_check(HealthCheckId=check_id)


# -- in this process: the API wired to a real monitor


@contextlib.contextmanager
def api_with_monitor(tmp_path):
    """The API server and a HealthMonitor on one event loop in a thread, wired as the
    supervisor wires them; yields the boto3 client, the service, the monitor, the table and
    ``hooks["calls"]``, the number of ``on_health_change`` calls."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    store_thread = concurrent.futures.ThreadPoolExecutor(1)
    store = Store(tmp_path / "state.db")
    port = free_port("127.0.0.1")
    service = Route53Service(store, ("ns1.test.",), endpoint=f"http://127.0.0.1:{port}")
    table = HealthTable(capacity=32)
    hooks = {"calls": 0}

    async def load_checks():
        return await asyncio.get_running_loop().run_in_executor(
            store_thread, service.health_checks.monitor_entries
        )

    monitor = HealthMonitor(table, load_checks, time_scale=0.02, timeouts=Timeouts(0.5, 0.5))
    service.health_status = monitor.status

    def on_health_change():
        hooks["calls"] += 1
        monitor.request_reload()

    server = ApiServer(
        ListenAddress("127.0.0.1", port, socket.AF_INET),
        service,
        {"AKIDHEALTH": "health-secret"},
        store_thread,
        lambda _zone, _change: None,
        on_health_change,
    )
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    asyncio.run_coroutine_threadsafe(monitor.start(), loop).result(5)
    try:
        yield SimpleNamespace(
            client=make_client(f"http://127.0.0.1:{port}", "AKIDHEALTH", "health-secret"),
            service=service,
            monitor=monitor,
            table=table,
            hooks=hooks,
        )
    finally:

        async def shutdown():
            await monitor.close()
            await server.close()
            # The clients' keep-alive connections: end their handlers.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        store_thread.shutdown()
        store.close()
        table.close()


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_status_and_last_failure_reason_come_from_the_monitor(tmp_path):
    with HttpEndpoint() as endpoint, api_with_monitor(tmp_path) as wired:
        client, monitor, table, hooks = wired.client, wired.monitor, wired.table, wired.hooks
        config = http_config(Port=endpoint.port, RequestInterval=10)
        check = create(client, "first", **config)
        check_id = check["Id"]
        assert hooks["calls"] == 1
        assert create(client, "first", **config)["Id"] == check_id  # a repeat changes nothing
        with pytest.raises(client.exceptions.InvalidInput):
            create(client, **http_config(RequestInterval=20))
        assert hooks["calls"] == 1

        def observations():
            return client.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]

        (observation,) = wait_for(observations)
        assert observation["Region"] == "local"
        assert observation["IPAddress"] == "127.0.0.1"
        assert observation["StatusReport"]["Status"] == "Success: HTTP Status Code 200, OK"
        assert observation["StatusReport"]["CheckedTime"].tzinfo is not None
        reason = client.get_health_check_last_failure_reason(HealthCheckId=check_id)
        assert reason["HealthCheckObservations"] == []

        endpoint.status = 500  # three failures (FailureThreshold 3) and the slot reads 0
        slot = wired.service.health_checks.health_check_slot(check_id)
        wait_for(lambda: not table.get(slot))
        (failure,) = client.get_health_check_last_failure_reason(HealthCheckId=check_id)[
            "HealthCheckObservations"
        ]
        assert failure["StatusReport"]["Status"] == (
            "Failure: HTTP Status Code 500, Internal Server Error"
        )

        # Updating and deleting call the hook and the monitor follows.
        client.update_health_check(HealthCheckId=check_id, Inverted=True)
        assert hooks["calls"] == 2
        wait_for(lambda: table.get(slot))
        client.get_health_check(HealthCheckId=check_id)
        client.list_health_checks()
        assert hooks["calls"] == 2  # reads do not
        client.delete_health_check(HealthCheckId=check_id)
        assert hooks["calls"] == 3
        wait_for(lambda: monitor.status(check_id) is None)
        with pytest.raises(botocore.exceptions.ClientError):
            client.get_health_check_status(HealthCheckId=check_id)
