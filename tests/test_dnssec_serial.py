"""The SOA serial of a signed hosted zone moves whenever its DNSSEC data does (issue 7), so that
secondaries transfer new keys and signatures; IXFR from before such a change is the whole zone.

Store-level: KeyStore operations and the re-signing record on a real state database, their
change rows read back as the IXFR history walk reads them; the supervisor's re-signing timer
run at a chosen time; and ``fastdns serve`` restarted.
"""

from __future__ import annotations

import asyncio
import time

import dns.rdatatype
from support.api import ACCESS_KEY, SECRET_KEY
from support.server import free_port, running_fastdns
from support.xfr import soa_serial

from fastdns.config import load_config
from fastdns.dnssec.keystore import ZSK_LIFETIME, KeyStore
from fastdns.route53.recordset import ResourceRecordSet
from fastdns.store import Store
from fastdns.supervisor import Supervisor
from fastdns.xfr.ixfr import difference_sequence

ORIGIN = "serial.test."


def _serial(store, zone_id) -> int:
    soa = store.record_sets(zone_id)[(ORIGIN, "SOA", "")]
    return soa.rdatas[0].serial


def _upsert_a(store, zone_id, address):
    rrset = ResourceRecordSet.from_api(
        {"Name": f"www.{ORIGIN}", "Type": "A", "TTL": 60,
         "ResourceRecords": [{"Value": address}]}
    )  # fmt: skip
    return store.change_record_sets(zone_id, [("UPSERT", rrset)], None)[0]


def _history(store, zone_id, client, served):
    return difference_sequence(
        ORIGIN, store.record_sets(zone_id).values(), store.zone_changes(zone_id), client, served
    )


def test_every_dnssec_change_moves_the_serial(tmp_path):
    store = Store(tmp_path / "state.db")
    zone, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.serial.test.",))
    keys = KeyStore(store)
    start = _serial(store, zone.id)

    # A KSK of an unsigned zone is served nowhere: no new serial.
    _info, change = keys.create_key_signing_key(zone.id, "ksk_one", "r1", "arn:k", "ACTIVE")
    assert _serial(store, zone.id) == start and change.serial is None

    steps = [
        ("enable", lambda: keys.enable(zone.id)),
        ("a second KSK", lambda: keys.create_key_signing_key(
            zone.id, "ksk_two", "r2", "arn:k", "ACTIVE")[1]),
        ("a KSK deactivated", lambda: keys.set_key_signing_key_status(
            zone.id, "ksk_two", "INACTIVE")),
    ]  # fmt: skip
    serial = start
    for what, step in steps:
        change = step()
        assert _serial(store, zone.id) == serial + 1, what
        assert change.serial == serial + 1, what
        serial += 1

    assert keys.record_resign(zone.id)
    assert _serial(store, zone.id) == serial + 1
    serial += 1

    # A ZSK rollover step (a new ZSK published) moves it too; a call with nothing to do not.
    assert keys.roll_zone_signing_keys(zone.id, time.time() + ZSK_LIFETIME + 1)
    assert _serial(store, zone.id) == serial + 1
    serial += 1
    assert not keys.roll_zone_signing_keys(zone.id, time.time() + ZSK_LIFETIME + 2)
    assert _serial(store, zone.id) == serial

    keys.disable(zone.id)
    assert _serial(store, zone.id) == serial + 1
    serial += 1
    # Not signed any more: re-signing records nothing.
    assert not keys.record_resign(zone.id)
    assert _serial(store, zone.id) == serial


def test_ixfr_history_stops_at_a_dnssec_change(tmp_path):
    store = Store(tmp_path / "state.db")
    zone, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.serial.test.",))
    keys = KeyStore(store)
    keys.create_key_signing_key(zone.id, "ksk_one", "r1", "arn:k", "ACTIVE")
    _upsert_a(store, zone.id, "192.0.2.1")
    before_signing = _serial(store, zone.id)
    keys.enable(zone.id)
    signed = _serial(store, zone.id)
    keys.disable(zone.id)
    unsigned = _serial(store, zone.id)
    _upsert_a(store, zone.id, "192.0.2.2")
    now = _serial(store, zone.id)
    # From after the zone lost its signatures: a plain difference (the A record).
    found = _history(store, zone.id, unsigned, now)
    assert found is not None
    differences, _condensed = found
    assert len(differences) == 1
    assert [r.rdtype for r in differences[0].added] == [dns.rdatatype.A]
    # From a signed version, or across signing: the whole zone (None).
    assert _history(store, zone.id, signed, now) is None
    assert _history(store, zone.id, before_signing, now) is None


def test_a_restart_moves_the_serial_of_signed_zones_only(tmp_path):
    # Signatures are not kept across a restart: the server signs afresh, so the serial moves
    # and secondaries take the new signatures (README "Primary + secondary").
    store = Store(tmp_path / "state.db")
    signed, _ = store.create_hosted_zone(ORIGIN, "ref1", None, ("ns1.serial.test.",))
    store.create_hosted_zone("plain.test.", "ref2", None, ("ns1.serial.test.",))
    keys = KeyStore(store)
    keys.create_key_signing_key(signed.id, "ksk_one", "r1", "arn:k", "ACTIVE")
    keys.enable(signed.id)
    before = _serial(store, signed.id)
    store.close()
    (tmp_path / "zones").mkdir()
    config = tmp_path / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{tmp_path / "zones"}"\nstate = "{tmp_path / "state.db"}"\n'
        f'api_listen = "127.0.0.1:{free_port()}"\n'
        f'[[access_keys]]\nid = "{ACCESS_KEY}"\nsecret = "{SECRET_KEY}"\n'
    )
    for restart in (1, 2):
        with running_fastdns(None, config=config, workers=1) as server:
            server.wait_for_log("Route 53 API at")
            assert soa_serial(server.host, server.port, ORIGIN) == before + restart
            assert soa_serial(server.host, server.port, "plain.test.") == 1


def test_the_supervisor_moves_the_serial_when_it_re_signs(tmp_path):
    # The supervisor's re-signing timer, run at a chosen time: nothing before the zone's
    # resign_at, then a new serial and a recompile (``zone_changed``).
    store = Store(tmp_path / "state.db")
    zone, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.serial.test.",))
    keys = KeyStore(store)
    keys.create_key_signing_key(zone.id, "ksk_one", "r1", "arn:k", "ACTIVE")
    keys.enable(zone.id)
    store.close()
    (tmp_path / "zones").mkdir()
    config = load_config(None, {"zone_dir": str(tmp_path / "zones"),
                                "state": str(tmp_path / "state.db")})  # fmt: skip
    supervisor = Supervisor(config)
    try:
        supervisor.store_thread.submit(supervisor._open_store).result()

        def serial() -> int:
            return supervisor.store_thread.submit(_serial, supervisor.store, zone.id).result()

        started = serial()
        (served,) = supervisor.hosted.values()
        changed = []
        supervisor.zone_changed = lambda zone_id, _change=None: changed.append(zone_id)
        asyncio.run(supervisor._resign_due(served.resign_at - 60))
        assert changed == []
        assert (
            supervisor.store_thread.submit(_serial, supervisor.store, zone.id).result() == started
        )
        asyncio.run(supervisor._resign_due(served.resign_at + 1))
        assert changed == [zone.id]
        assert serial() == started + 1
    finally:
        supervisor.store_thread.submit(supervisor.store.close).result()
        supervisor.store_thread.shutdown()
        supervisor.health.close()
