"""Hosted zones compiled natively from packed record sets, patched per change (issue 8).

The rule: an unsigned hosted zone without routing policies or aliases gets, after every
change, the image ``fastdns.compile`` makes of ``zone_from_record_sets`` of the store's record
sets, byte for byte; a zone the native path cannot take (a policy, an alias, DNSSEC) gets the
reference image and the reason is logged. Then a real server: a change through the API, a
deletion, an RFC 2136 update, each answered over UDP.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest
from support.api import running_api_server

from fastdns.compile import compile_zone
from fastdns.dnssec.keystore import KeyStore
from fastdns.hostedcolumns import HostedZoneModel
from fastdns.hostedzones import compile_hosted_zone
from fastdns.route53.recordset import ResourceRecordSet
from fastdns.route53.tozone import record_sets_from_zone, zone_from_record_sets
from fastdns.store import Store
from fastdns.xfr.update import apply_update
from fastdns.zonefile import load_zone_file

DATA = Path(__file__).resolve().parent / "data"
ORIGIN = "cols.test."


def reference_image(store: Store, zone_id: str, origin: str) -> bytes:
    return compile_zone(
        zone_from_record_sets(dns.name.from_text(origin), store.record_sets(zone_id).values())
    )


def rrset(name: str, rtype: str, *values: str, ttl: int = 300) -> ResourceRecordSet:
    return ResourceRecordSet.from_api(
        {"Name": name, "Type": rtype, "TTL": ttl,
         "ResourceRecords": [{"Value": v} for v in values]}
    )  # fmt: skip


def change(store: Store, zone_id: str, *changes: tuple[str, ResourceRecordSet]) -> None:
    store.change_record_sets(zone_id, list(changes), None)


def served(store: Store, zone_id: str):
    result = compile_hosted_zone(store, zone_id)
    assert result is not None
    return result


@pytest.mark.parametrize("name", ["example.com", "example.org", "2.0.192.in-addr.arpa"])
def test_imported_zone_and_its_changes_compile_as_the_reference(tmp_path, name):
    origin = dns.name.from_text(name)
    zone = load_zone_file(DATA / "zones" / f"{name}.zone", origin)
    record_sets, _skipped = record_sets_from_zone(zone)
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(name, "ref", None, ("ns1.x.test.",), record_sets)
    first = served(store, hosted.id)
    assert isinstance(first.zone, HostedZoneModel)  # the native path
    assert first.image == reference_image(store, hosted.id, name)

    rng = random.Random(8)
    names = sorted({r.name_text for r in record_sets if r.type in ("A", "AAAA", "TXT")})
    for step in range(12):
        owner = rng.choice([*names, f"new{step}.{origin}"])
        address = f"198.51.100.{step + 1}"
        current = store.record_sets(hosted.id).get((owner, "A", ""))
        if current is not None and step % 3 == 0:
            change(store, hosted.id, ("DELETE", current))
        else:
            change(store, hosted.id, ("UPSERT", rrset(owner, "A", address)))
        result = served(store, hosted.id)
        assert isinstance(result.zone, HostedZoneModel)
        assert result.image == reference_image(store, hosted.id, name), step


def test_batch_adding_several_names_keeps_the_store_order(tmp_path):
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.x.test.",))
    served(store, hosted.id)
    change(
        store,
        hosted.id,
        *[("CREATE", rrset(f"h{i}.{ORIGIN}", "A", f"192.0.2.{i}")) for i in (5, 1, 9, 3)],
        ("CREATE", rrset(f"mx.{ORIGIN}", "MX", f"10 h1.{ORIGIN}")),
    )
    assert served(store, hosted.id).image == reference_image(store, hosted.id, ORIGIN)
    change(store, hosted.id, ("UPSERT", rrset(f"h9.{ORIGIN}", "A", "192.0.2.99")))
    change(store, hosted.id, ("CREATE", rrset(f"h0.{ORIGIN}", "AAAA", "2001:db8::1")))
    assert served(store, hosted.id).image == reference_image(store, hosted.id, ORIGIN)


def test_rfc2136_updates_compile_as_the_reference(tmp_path):
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.x.test.",))
    change(
        store,
        hosted.id,
        ("CREATE", rrset(f"www.{ORIGIN}", "A", "192.0.2.1", "192.0.2.2")),
        ("CREATE", rrset(f"mail.{ORIGIN}", "MX", f"10 www.{ORIGIN}")),
    )
    served(store, hosted.id)
    origin = dns.name.from_text(ORIGIN)
    steps = [
        lambda u: u.add("www", 300, "A", "192.0.2.3"),
        lambda u: u.delete("www", "A", "192.0.2.1"),
        lambda u: u.replace("new", 60, "TXT", '"hello"'),
        lambda u: u.delete("mail"),
        lambda u: (u.present("new", "TXT"), u.add("new", 60, "AAAA", "2001:db8::5")),
    ]
    for step, build in enumerate(steps):
        update = dns.update.UpdateMessage(ORIGIN)
        build(update)
        message = dns.message.from_wire(update.to_wire(), one_rr_per_rrset=True)
        result = apply_update(store, hosted.id, origin, message, "test")
        assert result.rcode == dns.rcode.NOERROR and result.change is not None, step
        compiled = served(store, hosted.id)
        assert isinstance(compiled.zone, HostedZoneModel)
        assert compiled.image == reference_image(store, hosted.id, ORIGIN), step
    keys = set(store.record_sets(hosted.id))
    assert (f"mail.{ORIGIN}", "MX", "") not in keys and (f"new.{ORIGIN}", "AAAA", "") in keys
    www = store.record_sets(hosted.id)[(f"www.{ORIGIN}", "A", "")]
    assert sorted(r.to_text() for r in www.rdatas) == ["192.0.2.2", "192.0.2.3"]


def test_policy_and_alias_fall_back_and_come_back(tmp_path, caplog):
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.x.test.",))
    change(store, hosted.id, ("CREATE", rrset(f"www.{ORIGIN}", "A", "192.0.2.1")))
    assert isinstance(served(store, hosted.id).zone, HostedZoneModel)

    weighted = ResourceRecordSet.from_api(
        {"Name": f"w.{ORIGIN}", "Type": "A", "TTL": 60, "SetIdentifier": "one", "Weight": 1,
         "ResourceRecords": [{"Value": "192.0.2.7"}]}
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger="fastdns")
    change(store, hosted.id, ("CREATE", weighted))
    result = served(store, hosted.id)
    assert not isinstance(result.zone, HostedZoneModel)
    assert result.policy_groups  # the reference compile built the group
    assert "compiled through the model" in caplog.text and "a routing policy" in caplog.text

    alias = ResourceRecordSet.from_api(
        {"Name": f"al.{ORIGIN}", "Type": "A",
         "AliasTarget": {"HostedZoneId": hosted.id, "DNSName": f"www.{ORIGIN}",
                         "EvaluateTargetHealth": False}}
    )  # fmt: skip
    change(store, hosted.id, ("DELETE", weighted), ("CREATE", alias))
    result = served(store, hosted.id)
    assert not isinstance(result.zone, HostedZoneModel)
    assert "an alias" in caplog.text
    assert result.image == reference_image(store, hosted.id, ORIGIN)

    change(store, hosted.id, ("DELETE", alias))
    result = served(store, hosted.id)
    assert isinstance(result.zone, HostedZoneModel)
    assert "compiled natively again" in caplog.text
    assert result.image == reference_image(store, hosted.id, ORIGIN)


def test_signed_zone_falls_back(tmp_path, caplog):
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.x.test.",))
    assert isinstance(served(store, hosted.id).zone, HostedZoneModel)
    keys = KeyStore(store)
    keys.create_key_signing_key(hosted.id, "ksk_one", "r1", "arn:k", "ACTIVE")
    keys.enable(hosted.id)
    caplog.set_level(logging.INFO, logger="fastdns")
    result = served(store, hosted.id)
    assert result.signer is not None and not isinstance(result.zone, HostedZoneModel)
    assert "signed (DNSSEC)" in caplog.text


def test_model_stand_in_gives_the_record_sets(tmp_path):
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.x.test.",))
    change(store, hosted.id, ("CREATE", rrset(f"www.{ORIGIN}", "A", "192.0.2.1")))
    model = served(store, hosted.id).zone
    change(store, hosted.id, ("UPSERT", rrset(f"www.{ORIGIN}", "A", "192.0.2.2")))
    www = model.get(dns.name.from_text(f"www.{ORIGIN}"), dns.rdatatype.A)
    assert [r.to_text() for r in www.rdatas] == ["192.0.2.1"]  # what that image served
    assert model.soa is not None and model.soa.rdatas[0].serial == 2


def _ask(port: int, name: str, rtype: str = "A") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", port=port, timeout=2)


def test_server_serves_changes_deletes_and_updates(tmp_path):
    with running_api_server(tmp_path, workers=2) as api:
        client = api.client()
        zone_id = client.create_hosted_zone(Name=ORIGIN, CallerReference="c1")["HostedZone"]["Id"]
        batch = [
            {"Action": "CREATE",
             "ResourceRecordSet": {"Name": f"h{i}.{ORIGIN}", "Type": "A", "TTL": 60,
                                   "ResourceRecords": [{"Value": f"10.0.0.{i}"}]}}
            for i in range(50)
        ]  # fmt: skip
        done = client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": batch}
        )
        api.wait_insync(done["ChangeInfo"]["Id"])
        port = api.dns.port
        assert _ask(port, f"h7.{ORIGIN}").answer[0][0].to_text() == "10.0.0.7"

        upsert = {"Action": "UPSERT",
                  "ResourceRecordSet": {"Name": f"h7.{ORIGIN}", "Type": "A", "TTL": 60,
                                        "ResourceRecords": [{"Value": "192.0.2.77"}]}}  # fmt: skip
        done = client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [upsert]}
        )
        api.wait_insync(done["ChangeInfo"]["Id"])
        assert _ask(port, f"h7.{ORIGIN}").answer[0][0].to_text() == "192.0.2.77"

        delete = dict(upsert, Action="DELETE")
        done = client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [delete]}
        )
        api.wait_insync(done["ChangeInfo"]["Id"])
        response = _ask(port, f"h7.{ORIGIN}")
        assert response.rcode() == dns.rcode.NXDOMAIN and not response.answer
        assert _ask(port, f"h8.{ORIGIN}").answer[0][0].to_text() == "10.0.0.8"
        assert "compiled through the model" not in api.dns.stderr_text()
