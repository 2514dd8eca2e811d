"""Compact denial (RFC 9824) signed online by the hot path, in process.

Every denial is one NSEC owned by the query name (or, for a wildcard answer, by the existing
name before it) whose next name is ``\\000.<qname>``, signed per query with the zone's ZSK
(ECDSA P-256 or Ed25519 through libcrypto: every test runs with both) and checked with
dnspython's validator; the per-process signature cache answers a repeated denial without
signing, and a cached signature is never served once it is past half its validity, let alone
expired (the C clock moved forward).
"""

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
from fastdns.dnssec.compact import NXNAME
from fastdns.dnssec.keys import ECDSAP256SHA256, ED25519, SigningKey, generate_private_key
from fastdns.dnssec.keystore import ZoneKeys
from fastdns.dnssec.signer import ZoneSigner
from fastdns.zonefile import load_zone_file

ZONE = Path(__file__).parent / "data" / "dnssec" / "zone.test.zone"
ORIGIN = dns.name.from_text("zone.test.")
NSEC, RRSIG = dns.rdatatype.NSEC, dns.rdatatype.RRSIG
ONLINE_VALIDITY = 2 * 86400  # ext/online.pxi


@pytest.fixture(scope="module", params=[ECDSAP256SHA256, ED25519], ids=["p256", "ed25519"])
def zone(request):
    zone = load_zone_file(ZONE, origin=ORIGIN)
    alg = request.param
    ksk = SigningKey.from_private_key("ksk", "KSK", alg, generate_private_key(alg))
    zsk = SigningKey.from_private_key("zsk", "ZSK", alg, generate_private_key(alg))
    signer = ZoneSigner(ORIGIN, ZoneKeys((ksk,), (zsk,)))
    assert signer.compact
    catalog = _core.Catalog([compile_zone(zone, signer=signer)])
    keys = {ORIGIN: dns.rrset.from_rdata_list(ORIGIN, 3600, [ksk.dnskey, zsk.dnskey])}
    return catalog, keys


@pytest.fixture
def clock():
    """Move the hot path's signing clock; always put back."""
    yield _core.set_online_clock_offset
    _core.set_online_clock_offset(0)


def ask(catalog, name, rtype, tcp=False):
    query = dns.message.make_query(name, rtype, want_dnssec=True)
    return dns.message.from_wire(catalog.answer(query.to_wire(), tcp=tcp))


def nsec_of(response):
    """The one NSEC of the authority section and its RRSIG."""
    (nsec,) = [r for r in response.authority if r.rdtype == NSEC]
    (sig,) = [r for r in response.authority if r.rdtype == RRSIG and r.covers == NSEC]
    return nsec, sig


def types_of(nsec) -> set[int]:
    return {t for window, bits in nsec[0].windows for t in _bitmap_types(window, bits)}


def _bitmap_types(window, bits):
    for i, octet in enumerate(bits):
        for bit in range(8):
            if octet & (0x80 >> bit):
                yield window * 256 + i * 8 + bit


def test_nxdomain_is_noerror_with_the_names_own_nsec(zone):
    catalog, keys = zone
    rng = random.Random(9)
    for _ in range(100):
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(8))
        parent = rng.choice(["", "deep.", "b.c.deep.", "ns1."])
        name = dns.name.from_text(f"{label}.{parent}zone.test.")
        response = ask(catalog, name, "A")
        assert response.rcode() == dns.rcode.NOERROR and not response.answer
        nsec, _sig = nsec_of(response)
        assert nsec.name == name
        assert nsec[0].next == dns.name.Name((b"\x00", *name.labels))
        assert types_of(nsec) == {RRSIG, NSEC, NXNAME}
        assert validate_sections(response, keys) == 2  # SOA and NSEC


@pytest.mark.parametrize(
    ("name", "rtype", "types"),
    [
        ("www.zone.test.", "TXT", {"A", "AAAA"}),
        ("zone.test.", "TXT", {"SOA", "NS", "MX", "DNSKEY"}),
        ("deep.zone.test.", "A", set()),  # an empty non-terminal: no NXNAME (RFC 9824 §3.3)
        ("c.deep.zone.test.", "A", set()),
        ("sub.zone.test.", "DS", {"NS"}),  # a delegation without DS (RFC 4035 §3.1.4.1)
        ("x.wild.zone.test.", "TXT", {"A", "MX"}),  # wildcard NODATA: the wildcard's types
    ],
)
def test_nodata_nsec_lists_the_types_present(zone, name, rtype, types):
    catalog, keys = zone
    response = ask(catalog, name, rtype)
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    nsec, _sig = nsec_of(response)
    assert nsec.name == dns.name.from_text(name)
    expected = {dns.rdatatype.from_text(t) for t in types} | {RRSIG, NSEC}
    assert types_of(nsec) == expected
    assert validate_sections(response, keys) == 2


def test_referral_without_ds_carries_the_cuts_nsec(zone):
    catalog, keys = zone
    response = ask(catalog, "www.sub.zone.test.", "A")
    nsec, _sig = nsec_of(response)
    assert nsec.name == dns.name.from_text("sub.zone.test.")
    assert types_of(nsec) == {dns.rdatatype.NS, RRSIG, NSEC}
    validate_sections(response, keys)


@pytest.mark.parametrize("label", ["one", "two.three", "Mixed.Case", "-dash", "!bang", "a.b"])
def test_wildcard_answer_covers_the_name_and_not_the_wildcard(zone, label):
    catalog, keys = zone
    name = dns.name.from_text(f"{label}.wild.zone.test.")
    response = ask(catalog, name, "A")
    (sig,) = [r for r in response.answer if r.rdtype == RRSIG]
    assert sig[0].labels == 3  # expanded from *.wild.zone.test. (RFC 4034 §3.1.3)
    nsec, _ = nsec_of(response)
    lowered = dns.name.from_text(name.to_text().lower())
    # RFC 4035 §3.1.3.3: the NSEC covers the query name ...
    assert nsec.name < lowered < nsec[0].next
    # ... and neither the wildcard that answered nor any other existing name.
    wildcard = dns.name.from_text("*.wild.zone.test.")
    assert not nsec.name < wildcard < nsec[0].next
    for existing in ("wild", "mail", "www", "a.b.c.deep", "toWild"):
        assert not nsec.name < dns.name.from_text(existing, ORIGIN) < nsec[0].next
    # The next name is past the next closer name's subtree (RFC 4471 §3.1.3.2), so a
    # validator finds the wildcard's parent as the closest encloser.
    closer = lowered.labels[-5:]  # wild.zone.test. and one label more
    assert nsec[0].next == dns.name.Name((closer[0] + b"\x00", *closer[1:]))
    validate_sections(response, keys)


def _long_name(total: int, first: bytes, suffix: str = "zone.test.") -> dns.name.Name:
    """A name of ``total`` octets (wire form): ``first`` as its first label, then labels of
    63 octets and one shorter label to make up the length."""
    name = dns.name.from_text(suffix)
    rest = total - len(name.to_wire()) - 1 - len(first)
    labels = []
    while rest > 0:
        size = min(64, rest) - 1
        labels.append(b"q" * size)
        rest -= size + 1
    assert rest == 0
    return dns.name.Name((first, *labels, *name.labels))


# Names with no room for \000.<name> (RFC 1035 §3.1: 255 octets at most) get the rest of RFC
# 4471 §3.1.2's successor: a zero octet appended to the first label, else that label's last
# octet below 0xFF incremented ("@" to "[": upper case sorts as lower case), else the label
# dropped and the same done to the next one.
LONG_NAMES = [
    (253, b"a" * 20),  # \000. still fits
    (254, b"a" * 20),  # \000 appended to the first label
    (254, b"b" * 63),  # a full first label: its last octet incremented
    (255, b"c" * 20),
    (255, b"x@"),  # "@" + 1 would be "A", which sorts as "a"
    (255, b"d" + b"\xff" * 5),  # trailing 0xFF octets dropped, "d" incremented
    (255, b"\xff" * 4),  # nothing to increment: the next label is
]


@pytest.mark.parametrize(("total", "first"), LONG_NAMES)
def test_long_nonexistent_names_get_an_nsec_to_their_immediate_successor(zone, total, first):
    catalog, keys = zone
    name = _long_name(total, first)
    assert len(name.to_wire()) == total
    response = ask(catalog, name, "A", tcp=True)  # too large for 1232 octets
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    nsec, _sig = nsec_of(response)
    assert nsec.name == name
    assert nsec[0].next == name.successor(ORIGIN)  # dnspython's RFC 4471 §3.1.2
    if total <= 253:
        assert nsec[0].next == dns.name.Name((b"\x00", *name.labels))
    # The immediate successor: greater than the name, and nothing fits between the two.
    assert name < nsec[0].next
    assert types_of(nsec) == {RRSIG, NSEC, NXNAME}
    assert validate_sections(response, keys) == 2


def test_a_wildcard_answer_below_a_full_label_covers_up_to_the_next_label(zone):
    """The next closer name's first label is 63 octets: no zero octet can be appended to it,
    so the NSEC ends at that label incremented, the first name after its subtree."""
    name = dns.name.from_text(f"{'k' * 63}.wild.zone.test.")
    catalog, keys = zone
    response = ask(catalog, name, "A")
    assert response.rcode() == dns.rcode.NOERROR
    nsec, _sig = nsec_of(response)
    assert nsec[0].next == dns.name.from_text(f"{'k' * 62}l.wild.zone.test.")
    assert nsec.name < name < nsec[0].next
    assert not nsec.name < dns.name.from_text("*.wild.zone.test.") < nsec[0].next
    assert validate_sections(response, keys) == 2


def test_repeated_denials_are_signed_once(zone):
    catalog, _keys = zone
    name = f"cache-{random.randrange(1 << 30)}.zone.test."
    made, hits = _core.online_stats()
    first = nsec_of(ask(catalog, name, "A"))[1]
    for _ in range(5):
        again = nsec_of(ask(catalog, name.upper(), "A"))[1]
        assert again[0].signature == first[0].signature
    assert _core.online_stats() == (made + 1, hits + 5)


def test_a_signature_is_never_served_past_half_its_validity(zone, clock):
    catalog, keys = zone
    name = f"clock-{random.randrange(1 << 30)}.zone.test."
    first = nsec_of(ask(catalog, name, "A"))[1][0]
    assert first.inception <= time.time() < first.expiration
    for step in (0.3, 0.6, 1.1, 3.0):  # in validities: within, past half, past the end
        offset = int(step * ONLINE_VALIDITY)
        clock(offset)
        now = time.time() + offset
        response = ask(catalog, name, "A")
        nsec, sigs = nsec_of(response)
        sig = sigs[0]
        # Reused only while more than half its validity remains; never expired.
        assert sig.expiration - now > ONLINE_VALIDITY / 2 - 5
        assert sig.inception <= now
        assert (sig.signature == first.signature) == (step < 0.5)
        dns.dnssec.validate(nsec, sigs, keys, now=now)


def test_a_query_for_nxname_is_a_format_error(zone):
    catalog, _keys = zone
    response = ask(catalog, "www.zone.test.", NXNAME)  # RFC 9824 §3.5
    assert response.rcode() == dns.rcode.FORMERR


def test_the_signing_key_stays_out_of_reprs(tmp_path):
    """The image carries the ZSK (the snapshot memfd is private to our processes); what a log
    line could print of a compiled zone leaves it out."""
    from cryptography.hazmat.primitives import serialization

    from fastdns.dnssec.keystore import KeyStore
    from fastdns.hostedzones import compile_hosted_zone
    from fastdns.store import Store

    store = Store(tmp_path / "state.db")
    zone, _change = store.create_hosted_zone("repr.test.", "ref", None, ("ns1.repr.test.",))
    keys = KeyStore(store)
    keys.create_key_signing_key(zone.id, "repr_key", "ref-ksk", "arn", "ACTIVE")
    keys.enable(zone.id)
    served = compile_hosted_zone(store, zone.id)
    der = (
        keys.zone_keys(zone.id)
        .zsks[0]
        .private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert der in served.image  # what the workers sign with ...
    assert repr(der)[2:40] not in repr(served)  # ... never in what a log line prints
    store.close()


@pytest.mark.parametrize("algorithm", [ECDSAP256SHA256, ED25519])
def test_both_algorithms_deny_online_and_sign_multivalue_answers(tmp_path, algorithm):
    """A zone whose keys are either algorithm denies with compact denial by default (so its
    geolocation and IP-based groups may lack a default record) and compiles with the online
    key the workers sign multivalue answers with; only the NSEC3 option signs in advance."""
    from fastdns.dnssec.keystore import KeyStore
    from fastdns.hostedzones import compile_hosted_zone
    from fastdns.store import Store

    store = Store(tmp_path / "state.db")
    zone, _change = store.create_hosted_zone("alg.test.", "ref", None, ("ns1.alg.test.",))
    keys = KeyStore(store)
    keys.create_key_signing_key(zone.id, "alg_key", "ref-ksk", "arn", "ACTIVE", algorithm)
    assert keys.denies_online(zone.id)  # before enabling: the KSK's algorithm decides
    keys.enable(zone.id)
    assert keys.zone_keys(zone.id).zsks[0].algorithm == algorithm
    assert keys.denies_online(zone.id)
    served = compile_hosted_zone(store, zone.id)
    assert served.signer.compact
    image = _core.ZoneImage(served.image)  # loads the ZSK for online signing
    assert image is not None
    keys.set_denial(zone.id, "nsec3")
    assert not keys.denies_online(zone.id)
    store.close()


def test_a_flood_of_new_names_does_not_keep_repeated_ones_out_of_the_cache(zone):
    """The cache replaces the least recently served entry: after a flood of names never seen
    again (more than the cache holds), the repeated names are signed once more, then served
    from the cache."""
    catalog, _keys = zone
    tag = random.randrange(1 << 30)
    repeated = [_wire(f"r{i}-{tag}.zone.test.") for i in range(2000)]
    for wire in repeated:
        catalog.answer(wire)
    for i in range(40_000):  # the cache holds 32768 signatures
        catalog.answer(_wire(f"f{i}-{tag}.zone.test."))
    for wire in repeated:
        catalog.answer(wire)
    made, hits = _core.online_stats()
    for wire in repeated:
        catalog.answer(wire)
    assert _core.online_stats() == (made, hits + len(repeated))


def _wire(name: str) -> bytes:
    return dns.message.make_query(name, "A", want_dnssec=True).to_wire()
