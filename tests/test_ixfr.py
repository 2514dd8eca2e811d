"""IXFR (RFC 1995) of hosted zones from the store's change history.

Units: 200 random change batches go through the real ``Store`` (the API's path); every
version's AXFR content is kept, and the differences ``difference_sequence`` finds from an old
serial, applied by an independent reader of the IXFR sequence (``support.xfr.apply_ixfr``),
must give the newer version exactly -- one difference per change and condensed, aliases and
routing-policy groups included.

Server: the same over DNS with TSIG against ``fastdns serve``: an IXFR after 200 API changes,
read and applied by dnspython's own transfer code (``dns.query.inbound_xfr``) to the zone
copied before them, equals a fresh AXFR.
"""

from __future__ import annotations

import time
import uuid

import botocore.exceptions
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.xfr
import dns.zone
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, make_client
from support.server import free_port, running_fastdns
from support.xfr import KEY256, ChangeMaker, apply_ixfr, records

from fastdns.route53.changebatch import parse_changes
from fastdns.route53.errors import ApiError
from fastdns.route53.tozone import zone_from_record_sets
from fastdns.store import Store
from fastdns.xfr.axfr import axfr_rrsets, transfer_messages
from fastdns.xfr.ixfr import difference_sequence, ixfr_rrsets

ZONE = "unit.test."
CHANGES = 200
BULK = 300  # record sets that make the server test's zone larger than a few changes


def version_records(store: Store, zone_id: str) -> set:
    """What AXFR sends for the zone now, as ``support.xfr.records`` writes it."""
    model = zone_from_record_sets(dns.name.from_text(ZONE), store.record_sets(zone_id).values())
    rrsets = list(axfr_rrsets(model))[:-1]
    return {
        (rrset.name.to_text(), rrset.ttl, f"{rdata.rdtype.name} {rdata.to_text()}")
        for rrset in rrsets
        for rdata in rrset
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("ixfr") / "state.db")
    zone, change = store.create_hosted_zone(ZONE, "ref", None, ("ns1.fastdns.test.",))
    versions = {change.serial: version_records(store, zone.id)}
    maker = ChangeMaker(ZONE, zone.id)
    refused = 0
    while len(versions) <= CHANGES:
        try:
            change, _ = store.change_record_sets(zone.id, parse_changes(maker.batch()), None)
        except ApiError:
            refused += 1
            continue
        maker.accepted()
        versions[change.serial] = version_records(store, zone.id)
    print(f"\n{CHANGES} changes stored ({refused} batches refused by validation)")
    yield store, zone.id, versions
    store.close()


def walk(store: Store, zone_id: str, client: int, served: int):
    return difference_sequence(
        ZONE, store.record_sets(zone_id).values(), store.zone_changes(zone_id), client, served
    )


def test_differences_rebuild_every_later_version(history) -> None:
    store, zone_id, versions = history
    serials = sorted(versions)
    latest = serials[-1]
    for client in (serials[0], serials[1], serials[57], serials[150], serials[-2]):
        found = walk(store, zone_id, client, latest)
        assert found is not None, client
        steps, condensed = found
        assert len(steps) == serials.index(latest) - serials.index(client)
        current_soa = steps[-1].new_soa
        for differences in (steps, [condensed]):
            rrsets = list(ixfr_rrsets(current_soa, differences))
            result, count = apply_ixfr(versions[client], rrsets)
            assert count == len(differences)
            assert result == versions[latest], client


def test_the_store_may_be_ahead_of_what_is_served(history) -> None:
    store, zone_id, versions = history
    serials = sorted(versions)
    served = serials[120]  # later changes are stored but not yet compiled
    steps, condensed = walk(store, zone_id, serials[100], served)
    assert len(steps) == 20
    for differences in (steps, [condensed]):
        result, _ = apply_ixfr(
            versions[serials[100]], list(ixfr_rrsets(steps[-1].new_soa, differences))
        )
        assert result == versions[served]


def test_a_serial_the_history_does_not_have_gets_none(history) -> None:
    store, zone_id, versions = history
    latest = max(versions)
    assert walk(store, zone_id, 123456789, latest) is None
    assert walk(store, zone_id, min(versions), 123456789) is None


def zone_of(version: set) -> dns.zone.Zone:
    text = "\n".join(f"{name} {ttl} IN {data}" for name, ttl, data in version)
    return dns.zone.from_text(text, ZONE, relativize=False, check_origin=False)


def test_signed_ixfr_in_many_messages_read_by_dnspython(history) -> None:
    """The per-change answer rendered in small messages, each signed in a chain (RFC 8945
    §5.3.1), read by dnspython's inbound transfer code into the zone of the old version."""
    store, zone_id, versions = history
    serials = sorted(versions)
    old, latest = serials[20], serials[-1]
    steps, _condensed = walk(store, zone_id, old, latest)
    key = KEY256.tsig()
    request = dns.message.make_query(ZONE, "IXFR")
    request.authority.append(zone_of(versions[old]).find_rrset(ZONE, "SOA"))
    request.use_tsig(key)
    request = dns.message.from_wire(request.to_wire(), keyring=key)
    rrsets = ixfr_rrsets(steps[-1].new_soa, steps)
    wires = list(transfer_messages(request, rrsets, key, max_size=512))
    assert len(wires) > 10
    result = zone_of(versions[old])
    inbound = dns.xfr.Inbound(result, dns.rdatatype.IXFR, serial=old)
    ctx, done = None, False
    for wire in wires:
        assert not done
        message = dns.message.from_wire(
            wire, keyring=key, request_mac=request.mac, xfr=True, tsig_ctx=ctx, multi=True
        )
        ctx = message.tsig_ctx
        done = inbound.process_message(message)
    assert done
    assert records(result) == versions[latest]


# -- against the server


def config_text(state, api_port: int) -> str:
    return f"""\
state = "{state}"
api_listen = "127.0.0.1:{api_port}"
name_servers = ["ns1.fastdns.test.", "ns2.fastdns.test."]

[[access_keys]]
id = "{ACCESS_KEY}"
secret = "{SECRET_KEY}"

{KEY256.toml()}
[transfer]
keys = ["{KEY256.name}"]
"""


def wait_insync(client, change_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get_change(Id=change_id)["ChangeInfo"]["Status"] != "INSYNC":
        assert time.monotonic() < deadline, f"change {change_id} not INSYNC"
        time.sleep(0.01)


def axfr_zone(server, origin: str) -> dns.zone.Zone:
    messages = dns.query.xfr(
        server.host, origin, port=server.port, keyring=KEY256.tsig(), relativize=False
    )
    return dns.zone.from_xfr(messages, relativize=False)


def test_ixfr_after_200_api_changes_equals_axfr(tmp_path) -> None:
    zone_dir = tmp_path / "zones"
    zone_dir.mkdir()
    api_port = free_port()
    config = tmp_path / "fastdns.toml"
    config.write_text(config_text(tmp_path / "state.db", api_port))
    with running_fastdns(zone_dir, config=config) as server:
        server.wait_for_log("Route 53 API at")
        client = make_client(f"http://127.0.0.1:{api_port}")
        created = client.create_hosted_zone(Name="api.test", CallerReference=str(uuid.uuid4()))
        zone_id = created["HostedZone"]["Id"]
        wait_insync(client, created["ChangeInfo"]["Id"])
        bulk = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": f"bulk{i}.api.test.",
                    "Type": "A",
                    "TTL": 300,
                    "ResourceRecords": [{"Value": f"198.51.100.{i % 250}"}],
                },
            }
            for i in range(BULK)
        ]
        change = client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": bulk}
        )
        wait_insync(client, change["ChangeInfo"]["Id"])
        copy = axfr_zone(server, "api.test.")

        maker = ChangeMaker("api.test.", zone_id)
        applied = 0
        started = time.monotonic()
        late = None  # a copy taken 10 changes before the end
        while applied < CHANGES:
            try:
                change = client.change_resource_record_sets(
                    HostedZoneId=zone_id, ChangeBatch=maker.batch()
                )
            except botocore.exceptions.ClientError:
                continue
            maker.accepted()
            applied += 1
            if applied == CHANGES - 10:
                wait_insync(client, change["ChangeInfo"]["Id"])
                late = axfr_zone(server, "api.test.")
        wait_insync(client, change["ChangeInfo"]["Id"])
        elapsed = time.monotonic() - started
        fresh = axfr_zone(server, "api.test.")

        # From before the 200 changes: more RRs than the zone one by one, so condensed into
        # one difference (RFC 1995 §5); from 10 changes back: one difference per change.
        for copy_, how in ((copy, "condensed"), (late, "changes")):
            query, serial = dns.xfr.make_query(copy_, keyring=KEY256.tsig())
            started = time.monotonic()
            dns.query.inbound_xfr(server.host, copy_, query, port=server.port, lifetime=10)
            transfer = time.monotonic() - started
            assert records(copy_) == records(fresh)
            assert copy_.get_soa().serial == fresh.get_soa().serial != serial
            log = server.wait_for_log(rf"IXFR of zone api\.test\. serial {serial} -> .* {how}")
            line = log.split(f"IXFR of zone api.test. serial {serial} ", 1)[1].splitlines()[0]
            print(
                f"\nIXFR from serial {serial} {line}: read and applied in {transfer * 1000:.0f} ms"
            )
        assert "IXFR (whole zone)" not in server.stderr_text()
        print(f"{CHANGES} API changes took {elapsed:.2f} s")
