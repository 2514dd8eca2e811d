"""The state database and the change-batch rules, on a real SQLite file (no server)."""

from __future__ import annotations

import json
import sqlite3

import dns.name
import pytest

from fastdns.route53.changebatch import parse_changes
from fastdns.route53.errors import ApiError, InvalidChangeBatch, InvalidInput
from fastdns.route53.names import InvalidName, name_from_text, name_text, sort_key
from fastdns.store import Store

NAME_SERVERS = ("ns1.fastdns.test.", "ns2.fastdns.test.")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
def zone(store):
    created, _change = store.create_hosted_zone("example.test", "ref", None, NAME_SERVERS)
    return created


def batch(*changes):
    return parse_changes({"Changes": list(changes)})


def rr(action, name, rtype, *values, ttl=300, **extra):
    rrset = {
        "Name": name,
        "Type": rtype,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }
    rrset.update(extra)
    return {"Action": action, "ResourceRecordSet": rrset}


# -- names


@pytest.mark.parametrize(
    ("text", "shown", "key"),
    [
        ("www.Example.COM", "www.example.com.", "com.example.www."),
        ("*.example.com.", "\\052.example.com.", "com.example.\\052."),
        ("\\052.example.com", "\\052.example.com.", "com.example.\\052."),
        ("a\\.b.example.com.", "a\\056b.example.com.", "com.example.a\\056b."),
        ("under_score.example.", "under_score.example.", "example.under_score."),
    ],
)
def test_names_are_written_and_sorted_as_route53_does(text, shown, key):
    name = name_from_text(text)
    assert name_text(name) == shown
    assert sort_key(name) == key
    assert name_from_text(shown) == name


def test_octal_escapes_are_octal_not_decimal():
    assert name_from_text("\\052.x.").labels[0] == b"*"  # 052 octal = 42 = "*"


@pytest.mark.parametrize("text", ["", "a..b.", "x" * 64 + ".test.", ("a" * 60 + ".") * 5])
def test_bad_names_are_refused(text):
    with pytest.raises(InvalidName):
        name_from_text(text)


# -- record sets and batches


def test_a_new_zone_has_route53_default_soa_and_ns(store, zone):
    sets = store.record_sets(zone.id)
    soa = sets[("example.test.", "SOA", "")]
    assert soa.ttl == 900
    assert soa.rdatas[0].serial == 1
    assert soa.rdatas[0].mname == dns.name.from_text("ns1.fastdns.test.")
    ns = sets[("example.test.", "NS", "")]
    assert ns.ttl == 172800
    assert {r.target.to_text() for r in ns.rdatas} == set(NAME_SERVERS)


def test_changes_bump_the_serial_and_record_a_diff(store, zone):
    change, result = store.change_record_sets(
        zone.id, batch(rr("CREATE", "a.example.test", "A", "192.0.2.1")), "first"
    )
    assert change.serial == 2
    assert sorted(r.name_text for r in result.added) == ["a.example.test.", "example.test."]
    db = sqlite3.connect(store.path)
    (diff,) = db.execute("SELECT diff FROM changes WHERE id=?", (change.id,)).fetchone()
    assert '"a.example.test."' in diff
    # A batch that sets a later serial itself keeps it; an earlier one is moved forward.
    soa = "ns1.fastdns.test. hostmaster.example.test. {} 7200 900 1209600 86400"
    change, _ = store.change_record_sets(
        zone.id, batch(rr("UPSERT", "example.test", "SOA", soa.format(100), ttl=900)), None
    )
    assert change.serial == 100
    change, _ = store.change_record_sets(
        zone.id, batch(rr("UPSERT", "example.test", "SOA", soa.format(5), ttl=900)), None
    )
    assert change.serial == 101


def test_serial_wraps_with_rfc1982_arithmetic(store, zone):
    soa = "ns1.fastdns.test. hostmaster.example.test. {} 7200 900 1209600 86400"

    def set_serial(serial: int) -> int:
        change, _ = store.change_record_sets(
            zone.id, batch(rr("UPSERT", "example.test", "SOA", soa.format(serial), ttl=900)), None
        )
        return change.serial

    # RFC 1982 §3.2: from 1, 2^32 - 1 is *behind* (more than 2^31 ahead), so the serial just
    # moves on to 2; two steps of 2^31 - 1 get there, and the next change wraps to 0.
    assert set_serial(4294967295) == 2
    assert set_serial(2 + 2**31 - 1) == 2 + 2**31 - 1
    assert set_serial(4294967295) == 4294967295
    change, _ = store.change_record_sets(
        zone.id, batch(rr("CREATE", "a.example.test", "A", "192.0.2.1")), None
    )
    assert change.serial == 0


def test_a_refused_batch_changes_nothing_on_disk(store, zone):
    store.change_record_sets(zone.id, batch(rr("CREATE", "a.example.test", "A", "192.0.2.1")), None)
    before = store.db.execute("SELECT * FROM record_sets ORDER BY 2, 3").fetchall()
    with pytest.raises(InvalidChangeBatch) as raised:
        store.change_record_sets(
            zone.id,
            batch(
                rr("CREATE", "b.example.test", "A", "192.0.2.2"),
                rr("DELETE", "a.example.test", "A", "192.0.2.9"),
            ),
            None,
        )
    assert raised.value.messages == [
        "Tried to delete resource record set [name='a.example.test.', type='A'] but the values "
        "provided do not match the current values"
    ]
    assert store.db.execute("SELECT * FROM record_sets ORDER BY 2, 3").fetchall() == before
    fresh = Store(store.path)  # what another process (or a restart) sees
    assert set(fresh.record_sets(zone.id)) == set(store.record_sets(zone.id))
    fresh.close()


def test_delete_matches_values_in_any_order_and_case(store, zone):
    store.change_record_sets(
        zone.id,
        batch(rr("CREATE", "m.example.test", "MX", "10 A.example.test", "20 b.example.test.")),
        None,
    )
    store.change_record_sets(
        zone.id,
        batch(rr("DELETE", "M.example.test.", "MX", "20 b.example.test", "10 a.example.test.")),
        None,
    )
    assert ("m.example.test.", "MX", "") not in store.record_sets(zone.id)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            [
                rr("CREATE", "w.example.test", "A", "192.0.2.1", SetIdentifier="x", Weight=1),
                rr("CREATE", "w.example.test", "A", "192.0.2.2"),
            ],
            "cannot be created as a simple set because a weighted set exists",
        ),
        (
            [
                rr(
                    "CREATE",
                    "f.example.test",
                    "A",
                    "192.0.2.1",
                    SetIdentifier="p",
                    Failover="PRIMARY",
                ),
                rr(
                    "CREATE",
                    "f.example.test",
                    "A",
                    "192.0.2.2",
                    SetIdentifier="q",
                    Failover="PRIMARY",
                ),
            ],
            "PRIMARY failover record set already exists",
        ),
        (
            [
                rr(
                    "DELETE",
                    "example.test",
                    "SOA",
                    "ns1.fastdns.test. hostmaster.example.test. 1 7200 900 1209600 86400",
                    ttl=900,
                )
            ],
            "exactly one SOA record",
        ),
        (
            [rr("CREATE", "c.example.test", "CNAME", "x.example.test", "y.example.test")],
            "CNAME records; a name can have only one",
        ),
        (
            [
                rr("CREATE", "sub.example.test", "NS", "ns.elsewhere."),
                rr("CREATE", "www.sub.example.test", "TXT", '"occluded"'),
            ],
            "occluded by the delegation",
        ),
    ],
)
def test_change_batch_rules(store, zone, changes, reason):
    with pytest.raises(InvalidChangeBatch) as raised:
        store.change_record_sets(zone.id, batch(*changes), None)
    assert reason in raised.value.message


@pytest.mark.parametrize(
    ("rrset", "reason"),
    [
        ({"Name": "a.example.test", "Type": "A"}, "Expected exactly one of [AliasTarget"),
        (
            {
                "Name": "a.example.test",
                "Type": "A",
                "TTL": 1,
                "ResourceRecords": [{"Value": "1.2.3"}],
            },
            "Invalid Resource Record",
        ),
        (
            {"Name": "a.example.test", "Type": "BOGUS", "TTL": 1, "ResourceRecords": []},
            "unsupported record type",
        ),
        (
            {
                "Name": "a.example.test",
                "Type": "A",
                "TTL": 1,
                "ResourceRecords": [{"Value": "192.0.2.1"}],
                "Weight": 5,
            },
            "Missing field 'SetIdentifier'",
        ),
        (
            {
                "Name": "a.example.test",
                "Type": "A",
                "TTL": 1,
                "ResourceRecords": [{"Value": "192.0.2.1"}],
                "SetIdentifier": "x",
                "Weight": 5,
                "Failover": "PRIMARY",
            },
            "Expected exactly one of [Weight",
        ),
        (
            {
                "Name": "a.example.test",
                "Type": "A",
                "TTL": 1,
                "ResourceRecords": [{"Value": "192.0.2.1"}],
                "SetIdentifier": "x",
                "Weight": 256,
            },
            "Weight must be a whole number from 0 to 255",
        ),
        (
            {
                "Name": "a.example.test",
                "Type": "A",
                "TTL": -1,
                "ResourceRecords": [{"Value": "192.0.2.1"}],
            },
            "TTL must be",
        ),
    ],
)
def test_malformed_record_sets_are_invalid_input(rrset, reason):
    with pytest.raises(InvalidInput) as raised:
        parse_changes({"Changes": [{"Action": "CREATE", "ResourceRecordSet": rrset}]})
    assert reason in raised.value.message


def test_batch_size_limits_count_upserts_twice():
    values = [f"192.0.2.{i % 250}" for i in range(501)]
    changes = [rr("UPSERT", f"h{i}.example.test", "A", v) for i, v in enumerate(values)]
    with pytest.raises(InvalidChangeBatch, match="1000"):
        parse_changes({"Changes": changes})
    parse_changes({"Changes": changes[:500]})


# -- zones, listings, tags


def test_zone_names_and_caller_references_are_unique(store, zone):
    with pytest.raises(ApiError) as raised:
        store.create_hosted_zone("other.test", "ref", None, NAME_SERVERS)
    assert raised.value.code == "HostedZoneAlreadyExists"
    with pytest.raises(ApiError) as raised:
        store.create_hosted_zone("EXAMPLE.test.", "ref2", None, NAME_SERVERS)
    assert raised.value.code == "ConflictingDomainExists"
    assert store.hosted_zone_count() == 1


def test_delete_zone_only_when_empty(store, zone):
    store.change_record_sets(zone.id, batch(rr("CREATE", "a.example.test", "A", "192.0.2.1")), None)
    with pytest.raises(ApiError) as raised:
        store.delete_hosted_zone(zone.id)
    assert raised.value.code == "HostedZoneNotEmpty"
    store.change_record_sets(zone.id, batch(rr("DELETE", "a.example.test", "A", "192.0.2.1")), None)
    store.delete_hosted_zone(zone.id)
    with pytest.raises(ApiError) as raised:
        store.get_hosted_zone(zone.id)
    assert raised.value.code == "NoSuchHostedZone"
    assert store.db.execute("SELECT count(*) FROM record_sets").fetchone()[0] == 0


def test_external_writes_are_noticed(store, zone):
    assert not store.external_changes()
    store.change_record_sets(zone.id, batch(rr("CREATE", "a.example.test", "A", "192.0.2.1")), None)
    assert not store.external_changes()  # our own write
    other = Store(store.path)
    other.change_record_sets(zone.id, batch(rr("CREATE", "b.example.test", "A", "192.0.2.2")), None)
    other.close()
    assert store.external_changes()
    assert ("b.example.test.", "A", "") in store.record_sets(zone.id)
    assert not store.external_changes()


def test_tags(store, zone):
    store.change_tags("hostedzone", zone.id, [("k1", "v1"), ("k2", "v2")], [])
    store.change_tags("hostedzone", zone.id, [("k1", "new")], ["k2"])
    assert store.list_tags("hostedzone", zone.id) == [("k1", "new")]
    with pytest.raises(ApiError):
        store.change_tags("hostedzone", zone.id, [(f"k{i}", "v") for i in range(11)], [])
    assert store.list_tags("hostedzone", zone.id) == [("k1", "new")]
    with pytest.raises(ApiError) as raised:
        store.list_tags("bogus", zone.id)
    assert raised.value.code == "InvalidInput"


def test_a_new_delegation_over_existing_data_is_refused(store, zone):
    # The batch touches only the cut; the data it would occlude was there before.
    store.change_record_sets(
        zone.id, batch(rr("CREATE", "www.sub.example.test", "TXT", '"x"')), None
    )
    with pytest.raises(InvalidChangeBatch, match="occluded by the delegation"):
        store.change_record_sets(
            zone.id, batch(rr("CREATE", "sub.example.test", "NS", "ns.else.")), None
        )
    # And data added below an existing cut.
    store.change_record_sets(
        zone.id, batch(rr("CREATE", "cut.example.test", "NS", "ns.else.")), None
    )
    with pytest.raises(InvalidChangeBatch, match="occluded by the delegation"):
        store.change_record_sets(
            zone.id, batch(rr("CREATE", "a.b.cut.example.test", "MX", "1 m.")), None
        )


def test_record_sets_read_back_parse_their_values_when_first_used(tmp_path):
    from fastdns.route53.recordset import ResourceRecordSet

    written = ResourceRecordSet.from_api(
        {"Name": "Www.Lazy.Test", "Type": "MX", "TTL": 60,
         "ResourceRecords": [{"Value": "10 mx1.example.com"}, {"Value": "20 mx2.example.com."}]}
    )  # fmt: skip
    read = ResourceRecordSet.from_store(json.loads(json.dumps(written.data)))
    assert "rdatas" not in vars(read) and "name" not in vars(read)  # not parsed yet
    assert read.key == written.key and read.ttl == 60
    assert read.rdatas == written.rdatas and [r.preference for r in read.rdatas] == [10, 20]
    assert read.name == dns.name.from_text("www.lazy.test.")
    assert read == written and read == ResourceRecordSet.from_store(written.data)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        read.nope  # noqa: B018
