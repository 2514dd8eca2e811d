"""Signed hosted zones transferred signed (issue 7): what AXFR carries, checked by two
independent zone validators, and Knot DNS as a TSIG secondary whose answers BIND's ``delv``
validates with the zone's KSK as trust anchor -- before and after an API change.

One server for the module: the hosted zone (made and signed through the Route 53 API with
boto3) has a delegation with glue, a signed child delegation (DS), a wildcard, an empty
non-terminal, a CNAME and a weighted group, so the transfer has every kind of RRset the
signer treats differently (signed, unsigned delegation NS and glue, DS).
"""

from __future__ import annotations

import subprocess
import time
import uuid

import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, ApiServer, make_client
from support.dnssec import delv, write_trust_anchor
from support.server import running_fastdns
from support.xfr import KEY256, running_knot_secondary, soa_serial, wait_for_serial

from fastdns.bench.servers import free_port

CONVERGE_TIMEOUT = 20.0
RRSIG = dns.rdatatype.RRSIG


def rr(name, rtype, *values, ttl=300, **extra):
    rrset = {"Name": name, "Type": rtype, "TTL": ttl}
    rrset["ResourceRecords"] = [{"Value": v} for v in values]
    rrset.update(extra)
    return {"Action": "UPSERT", "ResourceRecordSet": rrset}


class SignedZone:
    """The server, its API client and the signed zone."""

    def __init__(self, server, endpoint, knot_port, folder):
        self.server, self.endpoint, self.knot_port = server, endpoint, knot_port
        self.host, self.port = server.host, server.port
        self.client = make_client(endpoint)
        self.origin = f"xs-{uuid.uuid4().hex[:6]}.test."
        o = self.origin
        created = self.client.create_hosted_zone(Name=o, CallerReference=str(uuid.uuid4()))
        self.zone_id = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
        self.change(
            rr(o, "MX", f"10 mail.{o}"),
            rr(f"mail.{o}", "A", "192.0.2.3"),
            rr(f"www.{o}", "A", "192.0.2.10"),
            rr(f"www.{o}", "AAAA", "2001:db8::10"),
            rr(f"alias.{o}", "CNAME", f"www.{o}"),
            rr(f"*.wild.{o}", "A", "192.0.2.20"),
            rr(f"a.b.deep.{o}", "TXT", '"deep"'),
            rr(f"sub.{o}", "NS", f"ns.sub.{o}"),
            rr(f"ns.sub.{o}", "A", "192.0.2.30"),
            rr(f"secure.{o}", "NS", f"ns.secure.{o}"),
            rr(f"secure.{o}", "DS", "12345 13 2 " + "01" * 32),
            rr(f"ns.secure.{o}", "A", "192.0.2.31"),
            rr(f"weighted.{o}", "A", "192.0.2.41", SetIdentifier="one", Weight=1),
            rr(f"weighted.{o}", "A", "192.0.2.42", SetIdentifier="two", Weight=1),
        )
        # Aliases: to a plain record set and to the weighted group (chosen per query).
        self.change(self.alias("to-www", f"www.{o}"), self.alias("to-weighted", f"weighted.{o}"))
        self.unsigned_serial = soa_serial(self.host, self.port, o)
        self.ksk = self.client.create_key_signing_key(
            CallerReference=str(uuid.uuid4()),
            HostedZoneId=self.zone_id,
            KeyManagementServiceArn="arn:aws:kms:us-east-1:111122223333:key/xfr",
            Name="ksk_xfr",
            Status="ACTIVE",
        )["KeySigningKey"]
        enabled = self.client.enable_hosted_zone_dnssec(HostedZoneId=self.zone_id)
        self.wait(enabled["ChangeInfo"]["Id"])
        self.ksk_dnskey = dns.rdata.from_text("IN", "DNSKEY", self.ksk["DNSKEYRecord"])
        self.anchors = write_trust_anchor(folder / "anchors.conf", o, self.ksk_dnskey)

    def alias(self, label, target):
        rrset = {"Name": f"{label}.{self.origin}", "Type": "A"}
        rrset["AliasTarget"] = {
            "HostedZoneId": self.zone_id, "DNSName": target, "EvaluateTargetHealth": False
        }  # fmt: skip
        return {"Action": "UPSERT", "ResourceRecordSet": rrset}

    def change(self, *changes):
        info = self.client.change_resource_record_sets(
            HostedZoneId=self.zone_id, ChangeBatch={"Changes": list(changes)}
        )["ChangeInfo"]
        self.wait(info["Id"])

    def wait(self, change_id):
        ApiServer(self.server, self.endpoint, None).wait_insync(change_id)

    def serial(self):
        return soa_serial(self.host, self.port, self.origin)

    def kdig_axfr(self) -> str:
        """The zone as ``kdig axfr`` (TSIG-signed) prints it: one RR per line."""
        key = f"{KEY256.algorithm}:{KEY256.name}:{KEY256.base64}"
        result = subprocess.run(
            ["kdig", f"@{self.host}", "-p", str(self.port), "-y", key, "+nocomments",
             "+nostats", "+noheader", "AXFR", self.origin],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        lines = [line for line in result.stdout.splitlines() if line and line[0] != ";"]
        assert lines and "SOA" in lines[0], result.stdout + result.stderr
        return "\n".join(lines[:-1]) + "\n"  # the closing SOA is a transfer marker only


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xfr-signed")
    (folder / "zones").mkdir()
    api_port, knot_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    config = folder / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{folder / "zones"}"\n'
        f'state = "{folder / "state.db"}"\n'
        f'api_listen = "127.0.0.1:{api_port}"\n'
        'name_servers = ["ns1.fastdns.test.", "ns2.fastdns.test."]\n'
        f'[[access_keys]]\nid = "{ACCESS_KEY}"\nsecret = "{SECRET_KEY}"\n'
        + KEY256.toml()
        + f'[transfer]\nkeys = ["{KEY256.name}"]\nnotify = ["127.0.0.1:{knot_port}"]\n'
        + f'notify_key = "{KEY256.name}"\n'
    )
    with running_fastdns(None, config=config, workers=1) as server:
        server.wait_for_log("Route 53 API at")
        yield SignedZone(server, f"http://127.0.0.1:{api_port}", knot_port, folder)


def _check_zone_file(path, origin) -> None:
    knot = subprocess.run(
        ["kzonecheck", "-o", origin, "--dnssec", "on", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert knot.returncode == 0, knot.stdout + knot.stderr
    ldns = subprocess.run(
        ["ldns-verify-zone", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert ldns.returncode == 0, ldns.stdout + ldns.stderr
    assert "Zone is verified and complete" in ldns.stdout, ldns.stdout


def test_axfr_of_a_signed_zone_passes_kzonecheck_and_ldns_verify_zone(signed, tmp_path):
    text = signed.kdig_axfr()
    path = tmp_path / f"{signed.origin}zone"
    path.write_text(text)
    _check_zone_file(path, signed.origin)
    zone = dns.zone.from_text(text, signed.origin, relativize=False)

    def signed_types(label):
        node = zone.get_node(f"{label}.{signed.origin}" if label else signed.origin)
        return {r.covers for r in node.rdatasets if r.rdtype == RRSIG} if node else set()

    assert {dns.rdatatype.DNSKEY, dns.rdatatype.NSEC3PARAM, dns.rdatatype.SOA} <= signed_types("")
    assert signed_types("secure") == {dns.rdatatype.DS}  # the DS, not the delegation NS
    assert signed_types("sub") == set() and signed_types("ns.sub") == set()  # NS and glue
    for label in ("weighted", "to-www", "to-weighted"):
        assert dns.rdatatype.A in signed_types(label), label
    nsec3 = [n for n, node in zone.nodes.items() if node.get_rdataset(1, dns.rdatatype.NSEC3)]
    # apex, mail, www, alias, *.wild, wild, a.b.deep, b.deep, deep, sub, secure, weighted,
    # to-www, to-weighted
    assert len(nsec3) == 14


def test_axfr_carries_the_signatures_the_answers_carry(signed):
    messages = dns.query.xfr(
        signed.host, signed.origin, port=signed.port, keyring=KEY256.tsig(), relativize=False
    )
    xfr = dns.zone.from_xfr(messages, relativize=False)
    for label, rtype in (("www", "AAAA"), ("", "DNSKEY"), ("", "MX"), ("secure", "DS")):
        name = f"{label}.{signed.origin}" if label else signed.origin
        query = dns.message.make_query(name, rtype, want_dnssec=True)
        answer = dns.query.tcp(query, signed.host, port=signed.port, timeout=5)
        served = {r.to_text() for rrset in answer.answer if rrset.rdtype == RRSIG for r in rrset}
        transferred = xfr.find_rdataset(name, RRSIG, dns.rdatatype.from_text(rtype))
        assert served and served == {r.to_text() for r in transferred}, (name, rtype)


def test_ixfr_of_a_signed_zone_is_the_whole_signed_zone(signed):
    query = dns.message.make_query(signed.origin, "IXFR")
    old_soa = f". . {signed.unsigned_serial} 0 0 0 0"
    query.authority.append(dns.rrset.from_text(signed.origin, 0, "IN", "SOA", old_soa))
    query.use_tsig(KEY256.tsig())
    response = dns.query.tcp(query, signed.host, port=signed.port, timeout=10)
    types = [rrset.rdtype for rrset in response.answer]
    # RFC 1995 §4: AXFR form (SOA, the zone, SOA), not a difference sequence (SOA, SOA, ...).
    assert types[0] == dns.rdatatype.SOA and types[1] != dns.rdatatype.SOA
    assert dns.rdatatype.NSEC3 in types and RRSIG in types


def _delv_ok(signed, knot, name, rtype, expect=None):
    out = delv(knot.host, knot.port, signed.anchors, signed.origin, name, rtype)
    assert "fully validated" in out, out
    if expect is not None:
        assert expect in out, out
    return out


def test_knot_secondary_serves_answers_delv_validates(signed):
    o = signed.origin
    with running_knot_secondary(
        [o], port=signed.knot_port, primary_port=signed.port, key=KEY256
    ) as knot:
        wait_for_serial(knot.host, knot.port, o, signed.serial(), CONVERGE_TIMEOUT)
        _delv_ok(signed, knot, f"www.{o}", "A", "192.0.2.10")
        _delv_ok(signed, knot, o, "DNSKEY")
        _delv_ok(signed, knot, f"x.wild.{o}", "A", "192.0.2.20")
        _delv_ok(signed, knot, f"to-www.{o}", "A", "192.0.2.10")
        _delv_ok(signed, knot, f"secure.{o}", "DS")
        assert "ncache nxdomain" in _delv_ok(signed, knot, f"nope.{o}", "A")
        assert "ncache nxrrset" in _delv_ok(signed, knot, f"www.{o}", "TXT")
        assert "ncache nxrrset" in _delv_ok(signed, knot, f"sub.{o}", "DS")

        # An API change: a new serial, NOTIFY, Knot transfers the newly signed zone.
        before = signed.serial()
        signed.change(rr(f"new.{o}", "A", "192.0.2.77"))
        after = signed.serial()
        assert after != before
        wait_for_serial(knot.host, knot.port, o, after, CONVERGE_TIMEOUT)
        _delv_ok(signed, knot, f"new.{o}", "A", "192.0.2.77")
        assert "ncache nxdomain" in _delv_ok(signed, knot, f"newer.{o}", "A")
        log = knot.log()
    assert f"[{o}] notify, incoming" in log, log


def test_knot_follows_signing_turned_on_and_off(signed):
    # Enabling and disabling DNSSEC change no record set, yet must reach secondaries: the
    # serial moves (fastdns.dnssec.serial), NOTIFY goes out, Knot transfers the zone again.
    client = signed.client
    origin = f"onoff-{uuid.uuid4().hex[:6]}.test."
    zone_id = client.create_hosted_zone(Name=origin, CallerReference=str(uuid.uuid4()))[
        "HostedZone"
    ]["Id"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while soa_serial(signed.host, signed.port, origin) is None:  # the new zone is served
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with running_knot_secondary(
        [origin], port=signed.knot_port, primary_port=signed.port, key=KEY256
    ) as knot:

        def knot_dnskeys() -> int:
            query = dns.message.make_query(origin, "DNSKEY", want_dnssec=True)
            response = dns.query.udp(query, knot.host, port=knot.port, timeout=2)
            return sum(len(r) for r in response.answer if r.rdtype == dns.rdatatype.DNSKEY)

        unsigned = soa_serial(signed.host, signed.port, origin)
        wait_for_serial(knot.host, knot.port, origin, unsigned, CONVERGE_TIMEOUT)
        assert knot_dnskeys() == 0
        client.create_key_signing_key(
            CallerReference=str(uuid.uuid4()),
            HostedZoneId=zone_id,
            KeyManagementServiceArn="arn:aws:kms:us-east-1:111122223333:key/onoff",
            Name="ksk_onoff",
            Status="ACTIVE",
        )
        signed.wait(client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]["Id"])
        on = soa_serial(signed.host, signed.port, origin)
        assert on == unsigned + 1
        wait_for_serial(knot.host, knot.port, origin, on, CONVERGE_TIMEOUT)
        assert knot_dnskeys() == 2  # the KSK and the ZSK

        signed.wait(client.disable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]["Id"])
        off = soa_serial(signed.host, signed.port, origin)
        assert off == on + 1
        wait_for_serial(knot.host, knot.port, origin, off, CONVERGE_TIMEOUT)
        assert knot_dnskeys() == 0
        query = dns.message.make_query(origin, "SOA", want_dnssec=True)
        response = dns.query.udp(query, knot.host, port=knot.port, timeout=2)
        assert not any(r.rdtype == RRSIG for r in response.answer), response
