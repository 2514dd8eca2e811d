"""Automatic ZSK rollover by pre-publication (RFC 6781 §4.1.1.1), driven by a fake clock.

A signed hosted zone is compiled every half hour of simulated time through its ZSK's end of
life, as the supervisor would (its timer calls ``roll_zone_signing_keys`` and recompiles).
At every step, dnspython's validator, told the simulated time, must accept what a resolver may
combine: the answers served now with any DNSKEY RRset it may still cache (served within the
DNSKEY TTL), and any answer it may still cache (served within that RRset's TTL) with the
DNSKEY RRset served now. At no moment does an answer fail validation.
"""

from __future__ import annotations

import dns.dnssec
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

import fastdns.dnssec.signer as signer_module
from fastdns import _core
from fastdns.dnssec.keys import DNSKEY_TTL
from fastdns.dnssec.keystore import PUBLISH_WAIT, RETIRE_WAIT, ZSK_LIFETIME, KeyStore
from fastdns.hostedzones import compile_hosted_zone
from fastdns.store import Store

ORIGIN = dns.name.from_text("roll.test.")
STEP = 1800
START = 1_800_000_000.0


def _served(store, zone_id: str, now: float) -> dict:
    catalog = _core.Catalog([compile_hosted_zone(store, zone_id).image])
    served = {}
    for rdtype in ("DNSKEY", "SOA", "NS"):
        query = dns.message.make_query(ORIGIN, rdtype, want_dnssec=True)
        response = dns.message.from_wire(catalog.answer(query.to_wire(), True))
        rrset = response.find_rrset(response.answer, ORIGIN, 1, dns.rdatatype.from_text(rdtype))
        sigs = response.find_rrset(
            response.answer, ORIGIN, 1, dns.rdatatype.RRSIG, dns.rdatatype.from_text(rdtype)
        )
        served[rdtype] = (rrset, sigs)
    return served


def test_zsk_rollover_never_breaks_validation(tmp_path, monkeypatch):
    clock = [START]
    monkeypatch.setattr(signer_module.time, "time", lambda: clock[0])
    store = Store(tmp_path / "state.db")
    zone, _change = store.create_hosted_zone("roll.test.", "ref", None, ("ns1.roll.test.",))
    keys = KeyStore(store)
    info, _change = keys.create_key_signing_key(zone.id, "roll_ksk", "ref-ksk", "arn", "ACTIVE")
    keys.enable(zone.id)
    ksk_set = {ORIGIN: dns.rrset.from_rdata(ORIGIN, DNSKEY_TTL, info.key.dnskey)}
    first_zsk = keys.zone_keys(zone.id).zsks[0].tag

    history: list[tuple[float, dict]] = []
    checked = 0
    # From a day before the ZSK's end of life until the old key is gone, and a day more.
    clock[0] = START + ZSK_LIFETIME - 86400
    end = START + ZSK_LIFETIME + PUBLISH_WAIT + RETIRE_WAIT + 2 * 86400
    tags_seen = []
    while clock[0] <= end:
        now = clock[0]
        keys.roll_zone_signing_keys(zone.id, now)
        served = _served(store, zone.id, now)
        dnskeys, dnskey_sigs = served["DNSKEY"]
        dns.dnssec.validate(dnskeys, dnskey_sigs, ksk_set, now=now)  # the KSK signs the set
        tags_seen.append(sorted(dns.dnssec.key_id(k) for k in dnskeys if k.flags == 256))
        history.append((now, served))
        for then, old in history:
            old_keys, _sigs = old["DNSKEY"]
            if now - then <= DNSKEY_TTL:  # a resolver may still hold the older key set
                for rdtype in ("SOA", "NS"):
                    rrset, sigs = served[rdtype]
                    dns.dnssec.validate(rrset, sigs, {ORIGIN: old_keys}, now=now)
                    checked += 1
            for rdtype in ("SOA", "NS"):  # ... or an older answer, within its TTL
                rrset, sigs = old[rdtype]
                if now - then <= rrset.ttl:
                    dns.dnssec.validate(rrset, sigs, {ORIGIN: dnskeys}, now=now)
                    checked += 1
        history = [(t, s) for t, s in history if now - t <= 3 * 86400]
        clock[0] += STEP
    final = keys.zone_keys(zone.id)
    assert final.zsks[0].tag != first_zsk and not final.standby  # rolled, old key removed
    assert [first_zsk] in tags_seen and len({tuple(t) for t in tags_seen}) == 3  # pre-published
    assert checked > 1000


def _validate_with_anchor(served: dict, anchor, now: float) -> None:
    """A validator whose trust anchor (the DS it holds from the parent) matches ``anchor``
    accepts the DNSKEY RRset served now, and through it the zone's other RRsets."""
    dnskeys, dnskey_sigs = served["DNSKEY"]
    assert anchor in list(dnskeys), "the anchored KSK is no longer published"
    dns.dnssec.validate(
        dnskeys, dnskey_sigs, {ORIGIN: dns.rrset.from_rdata(ORIGIN, DNSKEY_TTL, anchor)}, now=now
    )
    for rdtype in ("SOA", "NS"):
        rrset, sigs = served[rdtype]
        dns.dnssec.validate(rrset, sigs, {ORIGIN: dnskeys}, now=now)


def test_ksk_rollover_with_two_ksks_never_breaks_validation(tmp_path, monkeypatch):
    """The KSK rollover Route 53 documents, done through the API's operations: add a second
    active KSK, give the parent its DS, wait for the old DS to leave caches, deactivate and
    delete the first. That is RFC 6781 §4.1.2's double-signature rollover: while both KSKs are
    active both sign the DNSKEY RRset, so a validator anchored at either DS accepts it.
    At each step every validator that may exist (by the DS it may hold) must validate."""
    parent_ds_ttl = 86400
    clock = [START]
    monkeypatch.setattr(signer_module.time, "time", lambda: clock[0])
    store = Store(tmp_path / "state.db")
    zone, _change = store.create_hosted_zone("roll.test.", "ref", None, ("ns1.roll.test.",))
    keys = KeyStore(store)
    old, _change = keys.create_key_signing_key(zone.id, "ksk_old", "ref-old", "arn", "ACTIVE")
    keys.enable(zone.id)
    old_key = old.key.dnskey

    def step(*anchors, hours: float = 1) -> dict:
        clock[0] += hours * 3600
        served = _served(store, zone.id, clock[0])
        for anchor in anchors:
            _validate_with_anchor(served, anchor, clock[0])
        return served

    step(old_key)  # the parent holds the old KSK's DS
    new, _change = keys.create_key_signing_key(zone.id, "ksk_new", "ref-new", "arn", "ACTIVE")
    new_key = new.key.dnskey
    served = step(old_key, new_key)  # both published, both sign (RFC 6781 §4.1.2)
    _dnskeys, sigs = served["DNSKEY"]
    assert {s.key_tag for s in sigs} == {old.key.tag, new.key.tag}
    # The parent publishes the new DS; resolvers may hold the old one for its TTL.
    clock[0] += parent_ds_ttl
    step(old_key, new_key)
    keys.set_key_signing_key_status(zone.id, "ksk_old", "INACTIVE")
    served = step(new_key)
    _dnskeys, sigs = served["DNSKEY"]
    assert {s.key_tag for s in sigs} == {new.key.tag}  # an inactive KSK no longer signs
    keys.delete_key_signing_key(zone.id, "ksk_old")
    served = step(new_key)
    assert old_key not in list(served["DNSKEY"][0])
    # Through a ZSK rollover as well, the new KSK alone carries the zone.
    clock[0] += ZSK_LIFETIME
    for _ in range(int((PUBLISH_WAIT + RETIRE_WAIT) / STEP) + 2):
        keys.roll_zone_signing_keys(zone.id, clock[0])
        step(new_key, hours=STEP / 3600)
