"""Signed hosted zones (issue 6) against independent validators.

A real ``fastdns serve`` with the Route 53 API; the zones are made and signed with boto3
(CreateKeySigningKey, EnableHostedZoneDNSSEC). Every RRset of every DO=1 answer is checked with
dnspython's ``dns.dnssec.validate`` against the zone's DNSKEY RRset, whose own RRSIG is checked
against the KSK the API reported; BIND's ``delv``, anchored at that KSK, must call positive
answers, NODATA, NXDOMAIN, wildcards and delegations (the child's DS, or its proven absence)
validated. DO=0 answers must be byte for byte what the unsigned zone gave. Everything runs in
both denial modes: compact (Route 53's NSEC made and signed per query, RFC 9824: a nonexistent
name is NOERROR) and the NSEC3 option (``fastdns zone dnssec-denial ZONE nsec3``), and with
both key algorithms: ECDSA P-256 (13, Route 53's) and Ed25519 (15, ``dnssec_algorithm``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, ApiServer, make_client
from support.dnssec import delv, validate_sections, write_trust_anchor
from support.mmdb_writer import write_mmdb
from support.server import running_fastdns

from fastdns.bench.servers import free_port

pytestmark = pytest.mark.skipif(shutil.which("delv") is None, reason="needs delv (bind9-dnsutils)")

NXNAME = 128  # RFC 9824 §3.4
# Locations (for latency and geoproximity routing too) of the clients the tests send as ECS.
GEO = [
    ("198.18.3.0/24", {"continent": {"code": "EU"}, "country": {"iso_code": "FR"},
                       "location": {"latitude": 48.86, "longitude": 2.35}}),
    ("198.18.4.0/24", {"continent": {"code": "AS"}, "country": {"iso_code": "JP"},
                       "location": {"latitude": 35.68, "longitude": 139.69}}),
]  # fmt: skip
COLLECTION = "5d0c7a52-3f1e-4b6a-9c2d-7e8f9a0b1c2d"  # IP-based routing's CIDR collection


def rr(name, rtype, *values, ttl=300, **extra):
    rrset = {
        "Name": name,
        "Type": rtype,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }
    rrset.update(extra)
    return {"Action": "CREATE", "ResourceRecordSet": rrset}


def country(code):
    return {"CountryCode": code}


class Signed:
    """The server, the parent zone (signed), its signed child and its unsigned child."""

    def __init__(self, server, client, folder, denial, algorithm):
        self.server = server
        self.denial = denial
        self.algorithm = algorithm
        self.compact = denial == "compact"
        self.client = client
        self.host, self.port = server.host, server.port
        tag = uuid.uuid4().hex[:6]
        self.origin = f"signed-{tag}.test."
        self.parent = self.zone(self.origin)
        o = self.origin
        self.change(
            self.parent,
            rr(o, "MX", f"10 mail.{o}"),
            rr(f"mail.{o}", "A", "192.0.2.3"),
            rr(f"www.{o}", "A", "192.0.2.10"),
            rr(f"www.{o}", "AAAA", "2001:db8::10"),
            rr(f"alias.{o}", "CNAME", f"www.{o}"),
            rr(f"chain.{o}", "CNAME", f"alias.{o}"),
            rr(f"dangling.{o}", "CNAME", f"nothere.{o}"),
            rr(f"*.wild.{o}", "A", "192.0.2.20"),
            rr(f"*.wild.{o}", "MX", f"10 mail.{o}"),
            rr(f"to-wild.{o}", "CNAME", f"x.wild.{o}"),
            rr(f"a.b.deep.{o}", "TXT", '"deep"'),
            rr(f"insecure.{o}", "NS", f"ns.insecure.{o}"),
            rr(f"ns.insecure.{o}", "A", "192.0.2.30"),
            rr(f"weighted.{o}", "A", "192.0.2.41", SetIdentifier="one", Weight=1),
            rr(f"weighted.{o}", "A", "192.0.2.42", SetIdentifier="two", Weight=1),
            rr(f"failover.{o}", "A", "192.0.2.51", SetIdentifier="p", Failover="PRIMARY"),
            rr(f"failover.{o}", "A", "192.0.2.52", SetIdentifier="s", Failover="SECONDARY"),
            rr(f"geo.{o}", "A", "192.0.2.61", SetIdentifier="fr", GeoLocation=country("FR")),
            rr(f"geo.{o}", "A", "192.0.2.62", SetIdentifier="jp", GeoLocation=country("JP")),
            rr(f"geo.{o}", "A", "192.0.2.63", SetIdentifier="any", GeoLocation=country("*")),
            rr(f"multi.{o}", "A", "192.0.2.71", SetIdentifier="m1", MultiValueAnswer=True),
            rr(f"multi.{o}", "A", "192.0.2.72", SetIdentifier="m2", MultiValueAnswer=True),
            rr(f"multi.{o}", "A", "192.0.2.73", SetIdentifier="m3", MultiValueAnswer=True),
            *[rr(f"many.{o}", "AAAA", f"2001:db8::{i}", SetIdentifier=f"m{i}",
                 MultiValueAnswer=True) for i in range(1, 11)],
            rr(f"latency.{o}", "A", "192.0.2.91", SetIdentifier="euw3", Region="eu-west-3"),
            rr(f"latency.{o}", "A", "192.0.2.92", SetIdentifier="apne1",
               Region="ap-northeast-1"),
            rr(f"ip.{o}", "A", "192.0.2.101", SetIdentifier="fr",
               CidrRoutingConfig={"CollectionId": COLLECTION, "LocationName": "fr-isp"}),
            rr(f"ip.{o}", "A", "192.0.2.109", SetIdentifier="rest",
               CidrRoutingConfig={"CollectionId": COLLECTION, "LocationName": "*"}),
            rr(f"prox.{o}", "A", "192.0.2.111", SetIdentifier="paris",
               GeoProximityLocation={"Coordinates": {"Latitude": "48.9", "Longitude": "2.3"}}),
            rr(f"prox.{o}", "A", "192.0.2.112", SetIdentifier="tokyo",
               GeoProximityLocation={"Coordinates": {"Latitude": "35.7", "Longitude": "139.7"}}),
        )  # fmt: skip
        # A signed child with its DS in the parent.
        self.child_origin = f"secure.{o}"
        self.child = self.zone(self.child_origin)
        self.change(self.child, rr(f"www.{self.child_origin}", "A", "192.0.2.80"))
        child_ksk = self.sign(self.child, "child")
        ns = [r["Value"] for r in self.record_set(self.child, self.child_origin, "NS")]
        self.change(
            self.parent,
            rr(self.child_origin, "NS", *ns),
            rr(self.child_origin, "DS", child_ksk["DSRecord"]),
        )
        # DO=0 answers of the unsigned zone, to compare with once it is signed.
        self.unsigned = {q: self.ask(*q, do=False).to_wire() for q in self.do0_queries()}
        if denial != "compact":
            command = [sys.executable, "-m", "fastdns", "zone", "dnssec-denial", self.parent,
                       denial, "--state", str(folder / "state.db")]  # fmt: skip
            assert subprocess.run(command, capture_output=True, text=True, check=True).stdout == (
                f"{denial}\n"
            )
        self.ksk = self.sign(self.parent, "parent")
        self.keys = {dns.name.from_text(o): self.dnskey_rrset()}
        self.anchors = write_trust_anchor(folder / "anchors.conf", o, self.ksk_dnskey)

    def zone(self, name):
        response = self.client.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))
        return response["HostedZone"]["Id"].rsplit("/", 1)[-1]

    def change(self, zone_id, *changes):
        info = self.client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": list(changes)}
        )["ChangeInfo"]
        self.wait(info["Id"])

    def wait(self, change_id):
        ApiServer(self.server, self.endpoint, None).wait_insync(change_id)

    def record_set(self, zone_id, name, rtype):
        page = self.client.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=name, StartRecordType=rtype, MaxItems="1"
        )
        return page["ResourceRecordSets"][0]["ResourceRecords"]

    def sign(self, zone_id, label):
        ksk = self.client.create_key_signing_key(
            CallerReference=str(uuid.uuid4()),
            HostedZoneId=zone_id,
            KeyManagementServiceArn=f"arn:aws:kms:us-east-1:111122223333:key/{label}",
            Name=f"ksk_{label}",
            Status="ACTIVE",
        )["KeySigningKey"]
        self.wait(self.client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]["Id"])
        return ksk

    def dnskey_rrset(self):
        """The served DNSKEY RRset, checked against the KSK the API reported."""
        response = self.ask(self.origin, "DNSKEY")
        dnskeys = response.find_rrset(
            response.answer, dns.name.from_text(self.origin), 1, dns.rdatatype.DNSKEY
        )
        (self.ksk_dnskey,) = [k for k in dnskeys if k.flags == 257]
        assert {k.algorithm for k in dnskeys} == {self.algorithm}
        assert dns.dnssec.key_id(self.ksk_dnskey) == self.ksk["KeyTag"]
        assert self.ksk["DNSKEYRecord"] == self.ksk_dnskey.to_text()
        ds = dns.dnssec.make_ds(self.origin, self.ksk_dnskey, "SHA256")
        assert ds.to_text().upper() == self.ksk["DSRecord"].upper()
        sigs = response.find_rrset(
            response.answer, dnskeys.name, 1, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY
        )
        # The DNSKEY RRset is signed by the KSK (RFC 4035 §2.1) ...
        assert {s.key_tag for s in sigs} == {self.ksk["KeyTag"]}
        only_ksk = dns.rrset.from_rdata(dnskeys.name, dnskeys.ttl, self.ksk_dnskey)
        dns.dnssec.validate(dnskeys, sigs, {dnskeys.name: only_ksk})
        return dnskeys

    def ask(self, name, rtype, *, do=True, client=None):
        options = []
        if client is not None:
            options.append(dns.edns.ECSOption(client, 24))
        query = dns.message.make_query(name, rtype, want_dnssec=do, use_edns=0, options=options)
        query.id = 4242
        return dns.query.tcp(query, self.host, port=self.port, timeout=5)

    def do0_queries(self):
        o = self.origin
        return [
            (f"www.{o}", "A"), (f"www.{o}", "TXT"), (f"nope.{o}", "A"), (f"chain.{o}", "AAAA"),
            (f"x.wild.{o}", "A"), (f"x.wild.{o}", "TXT"), (f"www.insecure.{o}", "A"),
            (f"dangling.{o}", "A"), (o, "MX"), (f"failover.{o}", "A"),
        ]  # fmt: skip

    def delv(self, name, rtype):
        return delv(self.host, self.port, self.anchors, self.origin, name, rtype)


@pytest.fixture(
    scope="module",
    params=[("compact", 13), ("nsec3", 13), ("compact", 15), ("nsec3", 15)],
    ids=["compact-p256", "nsec3-p256", "compact-ed25519", "nsec3-ed25519"],
)
def signed(request, tmp_path_factory):
    denial, algorithm = request.param
    folder = tmp_path_factory.mktemp("dnssec")
    database = write_mmdb(folder / "geo.mmdb", GEO)
    (folder / "zones").mkdir()
    api_port = free_port("127.0.0.1")
    config = folder / "fastdns.toml"
    config.write_text(
        ('dnssec_algorithm = "ED25519"\n' if algorithm == 15 else "")
        + f'zone_dir = "{folder / "zones"}"\n'
        f'state = "{folder / "state.db"}"\n'
        f'api_listen = "127.0.0.1:{api_port}"\n'
        f'geoip_database = "{database}"\n'
        'name_servers = ["ns1.fastdns.test.", "ns2.fastdns.test."]\n'
        "[[access_keys]]\n"
        f'id = "{ACCESS_KEY}"\n'
        f'secret = "{SECRET_KEY}"\n'
        "[latency.default]\n"
        '"eu-west-3" = 40\n"ap-northeast-1" = 200\n'
        "[latency.networks.japan]\n"
        'cidrs = ["198.18.4.0/24"]\n'
        'latency = { "ap-northeast-1" = 5 }\n'
        "[[cidr_collections]]\n"
        f'id = "{COLLECTION}"\n'
        'name = "isps"\n'
        "[cidr_collections.locations]\n"
        'fr-isp = ["198.18.3.0/24"]\n'
    )
    with running_fastdns(None, config=config, workers=1) as server:
        server.wait_for_log("Route 53 API at")
        endpoint = f"http://127.0.0.1:{api_port}"
        Signed.endpoint = endpoint
        yield Signed(server, make_client(endpoint), folder, denial, algorithm)


def _name(signed, label):
    return f"{label}.{signed.origin}" if label else signed.origin


POSITIVE = [("www", "A"), ("www", "AAAA"), ("", "MX"), ("", "SOA"), ("", "NS"), ("", "DNSKEY"),
            ("", "NSEC3PARAM"), ("alias", "A"), ("chain", "AAAA"), ("to-wild", "A"),
            ("x.wild", "A"), ("a.b.wild", "MX"), ("secure", "DS")]  # fmt: skip
NODATA = [("www", "TXT"), ("deep", "A"), ("b.deep", "TXT"), ("x.wild", "TXT"),
          ("insecure", "DS")]  # fmt: skip
NXDOMAIN = [("nope", "A"), ("x.y.nope", "AAAA"), ("c.a.b.deep", "A"), ("dangling", "A")]


@pytest.mark.parametrize(("label", "rtype"), POSITIVE + NODATA + NXDOMAIN)
def test_every_rrset_validates_with_dnspython(signed, label, rtype):
    response = signed.ask(_name(signed, label), rtype)
    assert response.flags & dns.flags.AA
    nxdomain = (label, rtype) in NXDOMAIN
    # RFC 9824 §3.1: compact denial answers a nonexistent name with NOERROR.
    expected = dns.rcode.NXDOMAIN if nxdomain and not signed.compact else dns.rcode.NOERROR
    assert response.rcode() == expected
    assert validate_sections(response, signed.keys) >= 1
    sigs = [r for r in response.answer + response.authority if r.rdtype == dns.rdatatype.RRSIG]
    assert {s.algorithm for rrsig in sigs for s in rrsig} == {signed.algorithm}
    if (label, rtype) in NODATA + NXDOMAIN:
        denial = dns.rdatatype.NSEC if signed.compact else dns.rdatatype.NSEC3
        assert any(r.rdtype == denial for r in response.authority)
        assert not any(r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)
                       and r.rdtype != denial for r in response.authority)  # fmt: skip
    if signed.compact and (label, rtype) in NODATA + NXDOMAIN and label != "dangling":
        # One NSEC, owned by the query name; NXNAME only for a name that does not exist.
        (nsec,) = [r for r in response.authority if r.rdtype == dns.rdatatype.NSEC]
        assert nsec.name == dns.name.from_text(_name(signed, label))
        assert nsec[0].next == dns.name.Name((b"\x00", *nsec.name.labels))
        types = {t for window, bits in nsec[0].windows for t in _types(window, bits)}
        assert (NXNAME in types) == nxdomain


@pytest.mark.parametrize(("label", "rtype"), POSITIVE)
def test_delv_validates_positive_answers(signed, label, rtype):
    out = signed.delv(_name(signed, label), rtype)
    if signed.compact and rtype == "NSEC3PARAM":
        # Only the NSEC3 mode publishes one; compact denial proves there is none.
        assert "; negative response, fully validated" in out, out
        return
    assert "; fully validated" in out, out


@pytest.mark.parametrize(("label", "rtype"), NODATA + NXDOMAIN)
def test_delv_validates_denials(signed, label, rtype):
    out = signed.delv(_name(signed, label), rtype)
    assert "fully validated" in out, out
    kind = "nxdomain" if (label, rtype) in NXDOMAIN and not signed.compact else "nxrrset"
    assert f"ncache {kind}" in out, out


def test_delv_follows_the_chain_of_trust_into_a_signed_child(signed):
    out = signed.delv(f"www.{signed.child_origin}", "A")
    assert "; fully validated" in out, out
    assert "192.0.2.80" in out


def test_referral_without_ds_carries_the_nsec_proving_there_is_none(signed):
    # RFC 4035 §3.1.4, RFC 5155 §7.2.7: the NSEC (NSEC3) matching the cut, NS bit set, DS bit
    # clear (delv checks the same proof through its DS query, test_delv_validates_denials).
    referral = signed.ask(f"www.insecure.{signed.origin}", "A")
    assert not referral.flags & dns.flags.AA
    assert validate_sections(referral, signed.keys) == 1
    cut = dns.name.from_text(f"insecure.{signed.origin}")
    if signed.compact:
        (nsec3,) = [r for r in referral.authority if r.rdtype == dns.rdatatype.NSEC]
        assert nsec3.name == cut
    else:
        (nsec3,) = [r for r in referral.authority if r.rdtype == dns.rdatatype.NSEC3]
        hashed = dns.dnssec.nsec3_hash(cut, b"", 0, 1).lower()
        assert nsec3.name.labels[0].decode().lower() == hashed
    types = {t for rdata in nsec3 for window, bits in rdata.windows for t in _types(window, bits)}
    assert dns.rdatatype.NS in types and dns.rdatatype.DS not in types
    assert any(r.rdtype == dns.rdatatype.A for r in referral.additional)  # glue stays


def test_signed_child_answers_validate_with_its_own_keys(signed):
    response = signed.ask(f"www.{signed.child_origin}", "A")
    child = dns.name.from_text(signed.child_origin)
    assert validate_sections(response, {child: _child_keys(signed)}) == 1


def _child_keys(signed):
    response = signed.ask(signed.child_origin, "DNSKEY")
    return response.find_rrset(
        response.answer, dns.name.from_text(signed.child_origin), 1, dns.rdatatype.DNSKEY
    )


def _types(window, bits):
    for i, byte in enumerate(bits):
        for j in range(8):
            if byte & (0x80 >> j):
                yield window * 256 + i * 8 + j


def test_secure_referral_validates(signed):
    # Asked of the parent alone (the DS query path): the DS RRset and its RRSIG.
    response = signed.ask(signed.child_origin, "DS")
    assert validate_sections(response, signed.keys) == 1
    assert response.answer[0].rdtype in (dns.rdatatype.DS, dns.rdatatype.RRSIG)


@pytest.mark.parametrize("client", [None, "198.18.3.0", "198.18.4.0", "203.0.113.0"])
@pytest.mark.parametrize("label", ["weighted", "failover", "geo", "multi", "latency", "ip", "prox"])
def test_routing_policy_answers_validate(signed, label, client):
    for _ in range(4):  # weighted and multivalue choose at random
        response = signed.ask(_name(signed, label), "A", client=client)
        assert validate_sections(response, signed.keys) == 1
        (a,) = [r for r in response.answer if r.rdtype == dns.rdatatype.A]
        if label == "multi":
            # Under DO as without it: every healthy member, signed online as one RRset.
            assert {r.to_text() for r in a} == {"192.0.2.71", "192.0.2.72", "192.0.2.73"}
    out = signed.delv(_name(signed, label), "A")
    assert "; fully validated" in out, out


def test_multivalue_subsets_are_signed_online(signed):
    """Ten members: each answer is eight of them at random, as without DO (Route 53 answers
    with up to eight healthy records), the subset signed online and validated."""
    seen = set()
    for _ in range(12):
        response = signed.ask(_name(signed, "many"), "AAAA")
        assert validate_sections(response, signed.keys) == 1
        (aaaa,) = [r for r in response.answer if r.rdtype == dns.rdatatype.AAAA]
        assert len(aaaa) == 8
        seen.add(frozenset(r.to_text() for r in aaaa))
        plain = signed.ask(_name(signed, "many"), "AAAA", do=False)
        assert len(plain.answer[0]) == 8
    assert len(seen) > 1  # 45 subsets of 8 in 10: twelve draws all equal is (1/45)**11
    out = signed.delv(_name(signed, "many"), "AAAA")
    assert "; fully validated" in out, out


def _long_name(total, first, origin):
    """A name of ``total`` octets (wire form) below ``origin``: ``first``, then filler labels."""
    suffix = dns.name.from_text(origin)
    rest = total - len(suffix.to_wire()) - 1 - len(first)
    labels = []
    while rest > 0:
        size = min(64, rest) - 1
        labels.append(b"q" * size)
        rest -= size + 1
    return dns.name.Name((first, *labels, *suffix.labels))


@pytest.mark.parametrize(("total", "first"), [(254, b"a" * 9), (254, b"b" * 63), (255, b"c"),
                                              (255, b"d\xff\xff")])  # fmt: skip
def test_names_of_254_and_255_octets_are_denied_and_validate(signed, total, first):
    """No room for ``\\000.<qname>``: compact denial's NSEC ends at the name's RFC 4471
    §3.1.2 successor instead (before, such names got SERVFAIL under DO)."""
    name = _long_name(total, first, signed.origin)
    assert len(name.to_wire()) == total
    response = signed.ask(name, "A")
    expected = dns.rcode.NOERROR if signed.compact else dns.rcode.NXDOMAIN
    assert response.rcode() == expected
    assert validate_sections(response, signed.keys) >= 2
    if signed.compact:
        (nsec,) = [r for r in response.authority if r.rdtype == dns.rdatatype.NSEC]
        assert nsec.name == name and nsec[0].next == name.successor(dns.name.from_text(
            signed.origin))  # fmt: skip
    out = signed.delv(name.to_text(), "A")
    assert "fully validated" in out, out
    kind = "nxrrset" if signed.compact else "nxdomain"
    assert f"ncache {kind}" in out, out


@pytest.mark.parametrize(
    ("label", "chosen"),
    [
        ("geo", {"198.18.3.0": "192.0.2.61", "198.18.4.0": "192.0.2.62",
                 "203.0.113.0": "192.0.2.63"}),
        ("latency", {"198.18.3.0": "192.0.2.91", "198.18.4.0": "192.0.2.92",
                     "203.0.113.0": "192.0.2.91"}),
        ("ip", {"198.18.3.0": "192.0.2.101", "198.18.4.0": "192.0.2.109",
                "203.0.113.0": "192.0.2.109"}),
        ("prox", {"198.18.3.0": "192.0.2.111", "198.18.4.0": "192.0.2.112"}),
    ],
)  # fmt: skip
def test_policies_under_do_still_choose_by_client(signed, label, chosen):
    """Signed answers are the ones the policy picks for that client, each validating."""
    for client, address in chosen.items():
        response = signed.ask(_name(signed, label), "A", client=client)
        assert validate_sections(response, signed.keys) == 1
        got = {r.to_text() for rrset in response.answer if rrset.rdtype == 1 for r in rrset}
        assert got == {address}, (label, client)


def test_signed_answers_that_do_not_fit_are_truncated(signed):
    # Long enough that the compact NSEC (its owner, next name and RRSIG) does not fit either.
    name = f"{'n' * 60}.{'o' * 60}.{'p' * 60}.{signed.origin}"
    query = dns.message.make_query(name, "A", want_dnssec=True, payload=512)
    response = dns.query.udp(query, signed.host, port=signed.port, timeout=5)
    assert response.flags & dns.flags.TC
    assert not response.authority


def test_do0_answers_are_unchanged_by_signing(signed):
    # Enabling DNSSEC moved the SOA serial (fastdns.dnssec.serial: secondaries must transfer
    # the signed zone); apart from that serial the answers are the same, octet for octet.
    for question, before in signed.unsigned.items():
        after = signed.ask(*question, do=False).to_wire()
        assert len(after) == len(before), question
        assert _serial_zeroed(after) == _serial_zeroed(before), question


def _serial_zeroed(wire: bytes) -> bytes:
    message = dns.message.from_wire(wire)
    for section in (message.answer, message.authority):
        for i, rrset in enumerate(section):
            if rrset.rdtype == dns.rdatatype.SOA:
                soa = rrset[0].replace(serial=0)
                section[i] = dns.rrset.from_rdata(rrset.name, rrset.ttl, soa)
    return message.to_wire()


def test_unsigned_queries_get_no_dnssec_records(signed):
    response = signed.ask(f"nope.{signed.origin}", "A", do=False)
    assert not any(
        r.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3)
        for r in response.answer + response.authority
    )
