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

        api.change_a(zone_id, "UPSERT", f"h7.{ORIGIN}", "192.0.2.77")
        assert _ask(port, f"h7.{ORIGIN}").answer[0][0].to_text() == "192.0.2.77"

        api.change_a(zone_id, "DELETE", f"h7.{ORIGIN}", "192.0.2.77")
        response = _ask(port, f"h7.{ORIGIN}")
        assert response.rcode() == dns.rcode.NXDOMAIN and not response.answer
        assert _ask(port, f"h8.{ORIGIN}").answer[0][0].to_text() == "10.0.0.8"
        assert "compiled through the model" not in api.dns.stderr_text()


# Route 53 values of every type the native compiler takes, with the escapes and quoting a
# master file and dnspython might read differently.
PLAIN_RECORD_SETS = [
    ("cols.test.", "SOA", ["ns1.cols.test. hostmaster.cols.test. 7 7200 900 1209600 86400"]),
    ("cols.test.", "NS", ["ns1.cols.test.", "ns2.example.net"]),
    ("ns1.cols.test.", "A", ["192.0.2.1", "192.0.2.2"]),
    ("ns1.cols.test.", "AAAA", ["2001:db8::1"]),
    ("*.w.cols.test.", "A", ["198.51.100.7"]),
    ("weird\\040name.cols.test.", "TXT", ['"spaced owner"']),
    ("Upper.Cols.Test.", "CNAME", ["target.example.com"]),
    ("mail.cols.test.", "MX", ["10 mx1.example.com", "20 mx2.example.com."]),
    ("txt.cols.test.", "TXT", ['"hello world"', '"a;b" "c\\"d"', '"\\065bc" "\\\\"', "unquoted"]),
    ("txt.cols.test.", "SPF", ['"v=spf1 -all"']),
    ("_sip._tcp.cols.test.", "SRV", ["10 5 5060 sip.example.com."]),
    ("caa.cols.test.", "CAA", ['0 issue "letsencrypt.org"', '128 iodef "mailto:a@b.test"']),
    ("naptr.cols.test.", "NAPTR", ['100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .']),
    ("ds.cols.test.", "DS", ["12345 13 2 " + "ab" * 32]),
    ("ds.cols.test.", "NS", ["ns.ds.example."]),
    ("ssh.cols.test.", "SSHFP", ["1 1 " + "cd" * 20]),
    ("_443._tcp.tls.cols.test.", "TLSA", ["3 1 1 " + "ef" * 32]),
    ("svc.cols.test.", "SVCB", ["1 svc.example.com. alpn=h2,h3 port=8443"]),
    ("svc.cols.test.", "HTTPS", ['1 . alpn="h2" ipv4hint=192.0.2.1,192.0.2.2']),
    ("ptr.cols.test.", "PTR", ["host.example.com."]),
]


def test_record_sets_packed_from_their_text_are_packed_as_one_by_one():
    from fastdns._zcompile import pack_scanned
    from fastdns._zscanner import scan_zone_text
    from fastdns.hostedcolumns import master_file_text, pack_record_set

    plain = [rrset(name, rtype, *values) for name, rtype, values in PLAIN_RECORD_SETS]
    weighted = ResourceRecordSet.from_api(
        {"Name": "w.cols.test.", "Type": "A", "TTL": 60, "SetIdentifier": "one", "Weight": 1,
         "ResourceRecords": [{"Value": "192.0.2.9"}]}
    )  # fmt: skip
    alias = ResourceRecordSet.from_api(
        {"Name": "alias.cols.test.", "Type": "A",
         "AliasTarget": {"HostedZoneId": "Z1", "DNSName": "ns1.cols.test.",
                         "EvaluateTargetHealth": False}}
    )  # fmt: skip
    rrsets = [*plain[:3], weighted, *plain[3:], alias]
    text, counts = master_file_text(rrsets)
    assert counts[3] == 0 and counts[-1] == 0  # a routing-policy member and an alias: not plain
    assert [n for n in counts if n] == [len(r.rdatas) for r in plain]
    packed = pack_scanned(scan_zone_text(text, "hosted zone Z", "."), [n for n in counts if n])
    # As a restarted server packs them one by one: the store's name text, lower case.
    assert packed == [pack_record_set(ResourceRecordSet.from_store(r.data)) for r in plain]


def test_text_of_records_takes_no_directives():
    from fastdns._zscanner import ZoneScanError, scan_zone_text

    with pytest.raises(ZoneScanError, match=r"^hosted zone Z:2: no directives"):
        scan_zone_text(b"a.test. 1 IN A 192.0.2.1\n$INCLUDE /etc/passwd\n", "hosted zone Z", ".")


def test_a_large_zone_loaded_from_the_store_compiles_as_the_reference(tmp_path):
    # Enough record sets to be packed from their text (hostedcolumns._PACK_AS_TEXT), read
    # back by a new Store as a restarted server reads them.
    record_sets = [rrset(name, rtype, *values) for name, rtype, values in PLAIN_RECORD_SETS]
    record_sets += [
        rrset(f"h{i}.cols.test.", "A", f"10.0.{i // 250}.{i % 250}") for i in range(300)
    ]
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, ("ns1.x.test.",), record_sets)
    store.close()
    store = Store(tmp_path / "state.db")
    result = served(store, hosted.id)
    assert isinstance(result.zone, HostedZoneModel)  # the native path
    assert result.image == reference_image(store, hosted.id, ORIGIN)
