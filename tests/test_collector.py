"""fastdns.collector: the cyclic garbage collector paused while zones are built, and the
loaded zones frozen out of its reach once the supervisor has loaded them."""

from __future__ import annotations

import gc

import pytest

from fastdns.collector import collector_paused, freeze_loaded
from fastdns.config import load_config
from fastdns.supervisor import Supervisor


@pytest.fixture
def unfrozen():
    """Whatever a test freezes goes back to the collector afterwards."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_then_left_as_it_was(enabled):
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("a failed build")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_frozen_objects_are_not_walked_but_still_freed(unfrozen):
    data = [[i] for i in range(1000)]
    assert gc.is_tracked(data[0])
    freeze_loaded()
    assert gc.get_freeze_count() >= 1000
    tracked = {id(o) for o in gc.get_objects()}  # the collector's generations only
    assert id(data[0]) not in tracked
    # Reference counting still frees them.
    ids = gc.get_freeze_count()
    del data
    assert gc.get_freeze_count() < ids


def test_the_supervisor_freezes_the_zones_it_loaded(tmp_path, unfrozen):
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "frozen.test.zone").write_text(
        "$ORIGIN frozen.test.\n@ 300 SOA ns h 1 7200 900 1209600 300\n@ 300 NS ns\n"
        "ns 300 A 192.0.2.1\n"
    )
    config = load_config(None, {"zone_dir": str(zones), "state": str(tmp_path / "state.db")})
    supervisor = Supervisor(config)
    try:
        assert gc.get_freeze_count() == 0
        supervisor.load()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        served = supervisor.zones
        assert [origin.to_text() for origin in served] == ["frozen.test."]
        assert id(served) not in {id(o) for o in gc.get_objects()}
    finally:
        supervisor.snapshot.close()
        supervisor.store_thread.submit(supervisor.store.close).result()
        supervisor.store_thread.shutdown()
        supervisor.health.close()
