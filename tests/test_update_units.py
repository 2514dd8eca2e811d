"""``fastdns.xfr.update`` against a real ``Store``: RFC 2136's rules case by case (apex SOA and
NS, CNAME exclusivity, the SOA serial, prerequisites over aliases and routing-policy groups,
malformed sections), each checked by the RCODE and by the zone's record sets afterwards.
Updates are written as dnspython ``UpdateMessage`` calls and read back one RR per RRset, as the
server reads them."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.update
import pytest

from fastdns.route53.changebatch import parse_changes
from fastdns.store import Store
from fastdns.xfr.update import apply_update

ZONE = "unit.test."
ORIGIN = dns.name.from_text(ZONE)


@pytest.fixture
def zone(tmp_path):
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ZONE, "ref", None, ("ns1.fastdns.test.", "ns2.x."))
    rrsets = [
        {
            "Name": f"www.{ZONE}",
            "Type": "A",
            "TTL": 300,
            "ResourceRecords": [{"Value": "192.0.2.1"}],
        },
        {"Name": f"c.{ZONE}", "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "www"}]},
        {
            "Name": f"al.{ZONE}",
            "Type": "A",
            "AliasTarget": {
                "HostedZoneId": hosted.id,
                "DNSName": f"www.{ZONE}",
                "EvaluateTargetHealth": False,
            },
        },
    ]
    rrsets += [
        {
            "Name": f"w.{ZONE}",
            "Type": "A",
            "SetIdentifier": ident,
            "Weight": 1,
            "TTL": 60,
            "ResourceRecords": [{"Value": address}],
        }
        for ident, address in (("a", "192.0.2.10"), ("b", "192.0.2.11"))
    ]
    batch = {"Changes": [{"Action": "CREATE", "ResourceRecordSet": r} for r in rrsets]}
    store.change_record_sets(hosted.id, parse_changes(batch), None)
    yield store, hosted.id
    store.close()


def run(zone, build) -> int:
    store, zone_id = zone
    update = dns.update.UpdateMessage(ZONE)
    build(update)
    message = dns.message.from_wire(update.to_wire(), one_rr_per_rrset=True)
    return apply_update(store, zone_id, ORIGIN, message, "test").rcode


def values(zone, name: str, rtype: str) -> dict[str, list[str]] | None:
    """{SetIdentifier or "": sorted values} of (name, type), None when absent."""
    store, zone_id = zone
    found = {
        key[2]: sorted(r.to_text() for r in rrset.rdatas)
        for key, rrset in store.record_sets(zone_id).items()
        if key[:2] == (name, rtype)
    }
    return found or None


def serial(zone) -> int:
    store, zone_id = zone
    return store.record_sets(zone_id)[(ZONE, "SOA", "")].rdatas[0].serial


CASES = [
    # (what, update, rcode, (name, type, expected values afterwards))
    (
        "add to an RRset; the new RR's TTL is the record set's",
        lambda u: u.add("www", 120, "A", "192.0.2.2"),
        "NOERROR",
        (f"www.{ZONE}", "A", {"": ["192.0.2.1", "192.0.2.2"]}),
    ),
    (
        "the apex NS RRset is never deleted whole",
        lambda u: u.delete(ZONE, "NS"),
        "NOERROR",
        (ZONE, "NS", {"": ["ns1.fastdns.test.", "ns2.x."]}),
    ),
    (
        "deleting a name at the apex keeps SOA and NS",
        lambda u: u.delete(ZONE),
        "NOERROR",
        (ZONE, "NS", {"": ["ns1.fastdns.test.", "ns2.x."]}),
    ),
    (
        "nor its last NS RR",
        lambda u: (u.delete(ZONE, "NS", "ns1.fastdns.test."), u.delete(ZONE, "NS", "ns2.x.")),
        "NOERROR",
        (ZONE, "NS", {"": ["ns2.x."]}),
    ),
    (
        "a CNAME does not join other data",
        lambda u: u.add("www", 300, "CNAME", "elsewhere.example."),
        "NOERROR",
        (f"www.{ZONE}", "CNAME", None),
    ),
    (
        "nor other data a CNAME",
        lambda u: u.add("c", 300, "TXT", '"x"'),
        "NOERROR",
        (f"c.{ZONE}", "TXT", None),
    ),
    (
        "delete an RRset, then add: order matters",
        lambda u: (u.delete("www", "A"), u.add("www", 300, "A", "192.0.2.9")),
        "NOERROR",
        (f"www.{ZONE}", "A", {"": ["192.0.2.9"]}),
    ),
    (
        "deleting a routing-policy group's RRset deletes every member",
        lambda u: u.delete("w", "A"),
        "NOERROR",
        (f"w.{ZONE}", "A", None),
    ),
    (
        "single RRs of a group are the API's",
        lambda u: u.add("w", 60, "A", "192.0.2.12"),
        "REFUSED",
        (f"w.{ZONE}", "A", {"a": ["192.0.2.10"], "b": ["192.0.2.11"]}),
    ),
    (
        "and of an alias",
        lambda u: u.delete("al", "A", "192.0.2.1"),
        "REFUSED",
        (f"al.{ZONE}", "A", {"": []}),
    ),
    (
        "an alias is seen by its values (prerequisite) and deleted as an RRset",
        lambda u: (u.present("al", "A", "192.0.2.1"), u.delete("al", "A")),
        "NOERROR",
        (f"al.{ZONE}", "A", None),
    ),
    (
        "a group is seen as its first member",
        lambda u: (u.present("w", "A", "192.0.2.10"), u.add("x", 60, "A", "192.0.2.3")),
        "NOERROR",
        (f"x.{ZONE}", "A", {"": ["192.0.2.3"]}),
    ),
    (
        "a type hosted zones do not store: refused, nothing changes",
        lambda u: (u.add("x", 60, "A", "192.0.2.3"), u.add("x", 60, "HINFO", "a b")),
        "REFUSED",
        (f"x.{ZONE}", "A", None),
    ),
    (
        "an update outside the zone",
        lambda u: u.add("www.other.test.", 60, "A", "192.0.2.3"),
        "NOTZONE",
        None,
    ),
    (
        "a prerequisite outside the zone",
        lambda u: u.present("www.other.test."),
        "NOTZONE",
        None,
    ),
    (
        "adding an RR of a meta type",
        lambda u: u.add("x", 60, "ANY", "\\# 0"),
        "FORMERR",
        None,
    ),
]


@pytest.mark.parametrize(("what", "build", "rcode", "after"), CASES, ids=[c[0] for c in CASES])
def test_update_rules(zone, what, build, rcode, after) -> None:
    before = serial(zone)
    assert dns.rcode.to_text(run(zone, build)) == rcode, what
    if after is not None:
        name, rtype, expected = after
        assert values(zone, name, rtype) == expected, what
    if rcode != "NOERROR":
        assert serial(zone) == before  # nothing changed


def test_the_soa_moves_only_forward(zone) -> None:
    before = serial(zone)
    soa = "ns1.fastdns.test. hostmaster.unit.test. {} 7200 900 1209600 3600"
    assert run(zone, lambda u: u.add(ZONE, 900, "SOA", soa.format(before - 1))) == 0
    assert serial(zone) == before  # older serial: ignored, nothing to change
    assert run(zone, lambda u: u.add(ZONE, 900, "SOA", soa.format(before + 100))) == 0
    assert serial(zone) == before + 100  # the UPDATE's own serial, as the API keeps one
    assert values(zone, ZONE, "SOA")[""][0].endswith("1209600 3600")


def test_an_update_that_changes_nothing_stores_no_change(zone) -> None:
    before = serial(zone)
    assert run(zone, lambda u: u.add("www", 300, "A", "192.0.2.1")) == 0  # already there
    assert run(zone, lambda u: u.delete("nothing", "A")) == 0
    assert serial(zone) == before


def test_update_config(tmp_path) -> None:
    from support.xfr import KEY256

    from fastdns.config import ConfigError, load_config
    from fastdns.xfr.config import parse_update, update_allowed

    key = dns.name.from_text(KEY256.name)
    config = parse_update(
        {"keys": [KEY256.name], "zones": {"open.test": {"allow": ["127.0.0.0/8"]}}}
    )
    default = config.for_zone(ORIGIN)
    assert update_allowed(default, "192.0.2.1", key)
    assert not update_allowed(default, "192.0.2.1", None)  # unsigned: never
    assert not update_allowed(default, "192.0.2.1", dns.name.from_text("other."))
    zone = config.for_zone(dns.name.from_text("open.test."))  # keys from the default
    assert update_allowed(zone, "127.0.0.1", key) and not update_allowed(zone, "192.0.2.1", key)
    assert not update_allowed(parse_update({}).for_zone(ORIGIN), "127.0.0.1", key)
    path = tmp_path / "fastdns.toml"
    path.write_text(f'zone_dir = "{tmp_path}"\n[update]\nkeys = ["missing."]\n')
    with pytest.raises(ConfigError, match="missing"):
        load_config(path)
