"""Health checks in the state database (slots, references, persistence) and their settings."""

from __future__ import annotations

import pytest

from fastdns.health.config import HealthCheckConfig, parse_config, updated_config
from fastdns.health.store import HealthCheckStore
from fastdns.route53.errors import ApiError, InvalidInput
from fastdns.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "state.db")
    yield store
    store.close()


def tcp(port: int, **fields) -> HealthCheckConfig:
    return parse_config({"Type": "TCP", "IPAddress": "192.0.2.1", "Port": port, **fields})


def test_slots_are_the_smallest_free_and_come_back_on_delete(store):
    checks = HealthCheckStore(store, capacity=4)
    made = [checks.create(f"ref{i}", tcp(1000 + i))[0] for i in range(3)]
    assert [c.slot for c in made] == [0, 1, 2]
    checks.delete(made[1].id)
    assert checks.health_check_slot(made[1].id) is None
    again, created = checks.create("ref-again", tcp(2000))
    assert created and again.slot == 1
    assert checks.create("ref-last", tcp(2001))[0].slot == 3
    with pytest.raises(ApiError) as raised:
        checks.create("one-too-many", tcp(2002))
    assert raised.value.code == "TooManyHealthChecks"
    checks.delete(made[0].id)
    assert checks.create("fits-again", tcp(2003))[0].slot == 0
    assert sorted(checks.health_check_slots().values()) == [0, 1, 2, 3]


def test_lookups_for_the_compiler_and_the_monitor(store):
    checks = HealthCheckStore(store)
    first, _ = checks.create("a", tcp(1))
    second, _ = checks.create(
        "b", parse_config({"Type": "CALCULATED", "HealthThreshold": 1, "ChildHealthChecks": []})
    )
    assert checks.health_check_exists(first.id) and not checks.health_check_exists("nope")
    assert checks.health_check_slot(second.id) == 1
    assert checks.health_check_slot("nope") is None
    assert checks.monitor_entries() == [(first.id, 0, first.config), (second.id, 1, second.config)]
    assert [c.id for c in checks.all_health_checks()] == [first.id, second.id]


def test_health_checks_persist_with_their_versions_and_references(tmp_path):
    path = tmp_path / "state.db"
    store = Store(path)
    checks = HealthCheckStore(store)
    config = parse_config(
        {
            "Type": "HTTPS_STR_MATCH",
            "FullyQualifiedDomainName": "www.example.test",
            "SearchString": "ok",
            "Regions": ["us-east-1", "us-west-1", "us-west-2"],
        }
    )
    check, _ = checks.create("kept", config)
    checks.update(check.id, 1, lambda c: updated_config(c, {"FailureThreshold": "7"}))
    gone, _ = checks.create("gone", tcp(5))
    checks.delete(gone.id)
    store.close()

    store = Store(path)
    checks = HealthCheckStore(store)
    (reloaded,) = checks.all_health_checks()
    assert reloaded.version == 2 and reloaded.config.failure_threshold == 7
    assert reloaded.config.to_api()["Regions"] == ["us-east-1", "us-west-1", "us-west-2"]
    assert checks.create("kept", reloaded.config)[0].id == check.id  # same settings: the same
    with pytest.raises(ApiError) as raised:
        checks.create("gone", tcp(5))
    assert raised.value.code == "HealthCheckAlreadyExists" and raised.value.status == 409
    store.close()


def test_tags_of_health_checks_go_with_them(store):
    checks = HealthCheckStore(store)
    check, _ = checks.create("tagged", tcp(1))
    store.change_tags("healthcheck", check.id, [("Name", "db")], [])
    assert store.list_tags("healthcheck", check.id) == [("Name", "db")]
    checks.delete(check.id)
    assert store.db.execute("SELECT count(*) FROM tags").fetchone()[0] == 0
    with pytest.raises(ApiError) as raised:
        store.list_tags("healthcheck", check.id)
    assert raised.value.code == "NoSuchHealthCheck" and raised.value.status == 404


# -- settings


@pytest.mark.parametrize(
    "raw",
    [
        {"Type": "HTTP", "IPAddress": "2001:db8::1", "ResourcePath": "/x?y=1"},
        {"Type": "HTTPS", "FullyQualifiedDomainName": "a.test", "EnableSNI": "false"},
        {"Type": "HTTP_STR_MATCH", "IPAddress": "10.1.2.3", "SearchString": "<b>ok</b>"},
        {"Type": "TCP", "IPAddress": "127.0.0.1", "Port": "22", "MeasureLatency": "true"},
        {"Type": "CALCULATED", "HealthThreshold": "0", "Inverted": "true"},
    ],
)
def test_settings_round_trip_through_the_api_shape(raw):
    config = parse_config(raw)
    assert HealthCheckConfig.from_api(config.to_api()) == config
    assert parse_config(config.to_api()) == config


def test_updates_keep_what_they_do_not_name_and_reset_what_they_list():
    config = parse_config(
        {
            "Type": "HTTP",
            "IPAddress": "192.0.2.1",
            "FullyQualifiedDomainName": "a.test",
            "ResourcePath": "/health",
            "Regions": ["us-east-1", "us-west-1", "us-west-2"],
        }
    )
    changed = updated_config(config, {"Port": "8080", "ResetElements": ["Regions", "ResourcePath"]})
    assert changed.port == 8080 and changed.regions is None and changed.resource_path is None
    assert changed.fully_qualified_domain_name == "a.test"
    with pytest.raises(InvalidInput, match="cannot be changed"):
        updated_config(config, {"RequestInterval": "10"})
    with pytest.raises(InvalidInput, match="cannot be reset"):
        updated_config(config, {"ResetElements": ["IPAddress"]})
    with pytest.raises(InvalidInput, match="unknown field"):
        updated_config(config, {"Colour": "blue"})
