"""Signed zone images in process (issue 6): every DO=1 answer of a zone file's names checked
with dnspython's validator in both denial modes, NSEC3 proofs checked against RFC 5155 §7.2's
rules (the hot path's SHA-1 included, for many random names), DO=0 answers equal to the
unsigned image's, both algorithms, and the signatures' validity window. Compact denial's
online NSEC records (RFC 9824) and their signature cache are in test_dnssec_online.py."""

from __future__ import annotations

import random
import time
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from support.dnssec import validate_sections

from fastdns import _core
from fastdns.compile import compile_zone
from fastdns.dnssec.keys import ECDSAP256SHA256, ED25519, SigningKey, generate_private_key
from fastdns.dnssec.keystore import ZoneKeys
from fastdns.dnssec.signer import (
    DENIAL_COMPACT,
    DENIAL_NSEC3,
    INCEPTION_SKEW,
    JITTER,
    VALIDITY,
    ZoneSigner,
)
from fastdns.zonefile import load_zone_file

ZONE = Path(__file__).parent / "data" / "dnssec" / "zone.test.zone"
ORIGIN = dns.name.from_text("zone.test.")
QUESTIONS = [
    ("www", "A"), ("www", "TXT"), ("", "DNSKEY"), ("", "SOA"), ("", "MX"), ("", "ANY"),
    ("nope", "A"), ("x.y.deep", "A"), ("c.deep", "A"), ("alias", "A"), ("chain", "AAAA"),
    ("dangling", "A"), ("toWild", "A"), ("foo.wild", "A"), ("a.b.wild", "MX"),
    ("foo.wild", "TXT"), ("www.sub", "A"), ("sub", "DS"), ("x.secure", "A"), ("secure", "DS"),
    ("", "NSEC3PARAM"), ("ns.sub", "A"), ("*.wild", "A"),
]  # fmt: skip


def _signed(algorithm: int, now: float | None = None, denial: str = DENIAL_COMPACT):
    zone = load_zone_file(ZONE, origin=ORIGIN)
    ksk = SigningKey.from_private_key("ksk", "KSK", algorithm, generate_private_key(algorithm))
    zsk = SigningKey.from_private_key("zsk", "ZSK", algorithm, generate_private_key(algorithm))
    signer = ZoneSigner(ORIGIN, ZoneKeys((ksk,), (zsk,)), now=now, denial=denial)
    signed = _core.Catalog([compile_zone(zone, signer=signer)])
    plain = _core.Catalog([compile_zone(zone)])
    keys = {ORIGIN: dns.rrset.from_rdata_list(ORIGIN, 3600, [ksk.dnskey, zsk.dnskey])}
    return signed, plain, keys, signer


@pytest.fixture(
    scope="module",
    params=[
        (ECDSAP256SHA256, DENIAL_COMPACT),
        (ECDSAP256SHA256, DENIAL_NSEC3),
        (ED25519, DENIAL_COMPACT),
        (ED25519, DENIAL_NSEC3),
    ],
    ids=["p256-compact", "p256-nsec3", "ed25519-compact", "ed25519-nsec3"],
)
def zone(request):
    return _signed(request.param[0], denial=request.param[1])


@pytest.fixture(scope="module", params=[ECDSAP256SHA256, ED25519], ids=["p256", "ed25519"])
def nsec3_zone(request):
    """The NSEC3 option, with either algorithm."""
    zone = _signed(request.param, denial=DENIAL_NSEC3)
    assert zone[3].denial == DENIAL_NSEC3
    return zone


def _ask(catalog, name, rtype, do=True):
    query = dns.message.make_query(name, rtype, want_dnssec=do)
    query.id = 7
    return query, catalog.answer(query.to_wire())


def _name(label: str) -> str:
    return f"{label}.zone.test." if label else "zone.test."


@pytest.mark.parametrize(("label", "rtype"), QUESTIONS)
def test_signed_answers_validate_and_do0_is_unchanged(zone, label, rtype):
    signed, plain, keys, _signer = zone
    _query, wire = _ask(signed, _name(label), rtype)
    response = dns.message.from_wire(wire)
    assert validate_sections(response, keys) >= 1
    if rtype not in ("DNSKEY", "NSEC3PARAM"):  # only a signed zone has those
        _query, unsigned = _ask(plain, _name(label), rtype, do=False)
        assert _ask(signed, _name(label), rtype, do=False)[1] == unsigned


def _nsec3_ranges(response):
    """(owner hash, next hash) of every NSEC3 in the authority section."""
    out = []
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.NSEC3:
            owner = rrset.name.labels[0].decode().upper()
            for rdata in rrset:
                out.append((owner, dns.dnssec.base64.b32hexencode(rdata.next).decode()))
    return out


def _covers(ranges, name) -> bool:
    h = dns.dnssec.nsec3_hash(name, b"", 0, 1)
    return any((a < h < b) or (b <= a and (h > a or h < b)) for a, b in ranges)


def _matches(ranges, name) -> bool:
    h = dns.dnssec.nsec3_hash(name, b"", 0, 1)
    return any(a == h for a, _ in ranges)


def test_nxdomain_proofs_follow_rfc5155_for_random_names(nsec3_zone):
    signed, _plain, keys, _signer = nsec3_zone
    rng = random.Random(6)
    parents = ["", "deep", "b.c.deep", "a.b.c.deep", "ns1"]
    for _ in range(200):
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(8))
        parent = rng.choice(parents)
        name = dns.name.from_text(f"{label}.{_name(parent)}")
        response = dns.message.from_wire(_ask(signed, name, "A")[1])
        assert response.rcode() == dns.rcode.NXDOMAIN
        validate_sections(response, keys)
        ranges = _nsec3_ranges(response)
        encloser = dns.name.from_text(_name(parent))
        # RFC 5155 §7.2.2 (and §8.3's checks a validator makes).
        assert _matches(ranges, encloser)
        assert _covers(ranges, name)  # the next closer name is the name itself here
        assert _covers(ranges, dns.name.from_text("*", encloser))


def test_wildcard_answer_proves_the_next_closer_name(nsec3_zone):
    signed, _plain, _keys, _signer = nsec3_zone
    for label in ("one", "two.three", "Mixed.Case"):
        name = dns.name.from_text(f"{label}.wild.zone.test.")
        response = dns.message.from_wire(_ask(signed, name, "A")[1])
        (sig,) = [r for r in response.answer if r.rdtype == dns.rdatatype.RRSIG]
        assert sig[0].labels == 3  # *.wild.zone.test. minus the * (RFC 4034 §3.1.3)
        next_closer = dns.name.Name(name.labels[-5:])  # the encloser wild.zone.test. + 1
        assert _covers(_nsec3_ranges(response), next_closer)


def test_signature_validity_window():
    now = time.time()
    signed, _plain, _keys, signer = _signed(ECDSAP256SHA256, now=now)
    response = dns.message.from_wire(_ask(signed, "www.zone.test.", "A")[1])
    (sig,) = [r for rrset in response.answer if rrset.rdtype == dns.rdatatype.RRSIG for r in rrset]
    assert sig.inception == int(now) - INCEPTION_SKEW
    assert int(now) + VALIDITY <= sig.expiration < int(now) + VALIDITY + JITTER
    # The supervisor re-signs at half the validity: long before the earliest expiration.
    assert signer.resign_at == pytest.approx(now + VALIDITY / 2, abs=1)
    assert signer.signatures > 0


def test_recompiles_reuse_fresh_signatures_and_resign_old_ones(tmp_path, monkeypatch):
    """A hosted zone recompiled after a change reuses signatures made less than half a
    validity ago; once that has passed (the supervisor's re-sign timer recompiles then)
    every signature is made again, so none served is ever older than half its validity."""
    import fastdns.dnssec.signer as signer_module
    from fastdns.dnssec.keystore import KeyStore
    from fastdns.hostedzones import compile_hosted_zone
    from fastdns.store import Store

    store = Store(tmp_path / "state.db")
    zone, _change = store.create_hosted_zone("clock.test.", "ref", None, ("ns1.clock.test.",))
    keys = KeyStore(store)
    keys.create_key_signing_key(zone.id, "clock_key", "ref-ksk", "arn", "ACTIVE")
    keys.enable(zone.id)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(signer_module.time, "time", lambda: clock[0])

    def inception() -> int:
        served = compile_hosted_zone(store, zone.id)
        catalog = _core.Catalog([served.image])
        response = dns.message.from_wire(_ask(catalog, "clock.test.", "SOA")[1])
        (sig,) = [r for rrset in response.answer if rrset.rdtype == dns.rdatatype.RRSIG
                  for r in rrset]  # fmt: skip
        assert sig.inception <= clock[0] < sig.expiration
        assert clock[0] < served.resign_at <= sig.expiration - VALIDITY / 2 + JITTER
        return sig.inception

    first = inception()
    clock[0] += VALIDITY / 4
    assert inception() == first  # reused
    clock[0] += VALIDITY / 4
    assert inception() == int(clock[0]) - INCEPTION_SKEW  # made again
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600
