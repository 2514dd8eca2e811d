"""What signing costs (issue 6): answers with DO=1 from a signed zone against the same answers
with DO=0, and compile-time signing.

    pytest bench/bench_dnssec.py --benchmark-only --benchmark-columns=min,median,ops

``test_answer`` times ``Catalog.answer`` (the C answer plus the Python call around it, the same
for both) for the bench zone signed with ECDSA P-256 and with Ed25519 (compact denial: a
repeated NXDOMAIN is a signature-cache hit); ``test_signing_rate`` compiles the whole signed
zone once per round and prints signatures per second; ``test_online_signing_rate`` answers names
never asked before, each costing one online signature (of either algorithm), and prints
signatures per second of one core.
"""

from __future__ import annotations

import time

import dns.message
import dns.rcode
import pytest

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.dnssec.keys import ECDSAP256SHA256, ED25519, SigningKey, generate_private_key
from fastdns.dnssec.keystore import ZoneKeys
from fastdns.dnssec.signer import ZoneSigner

QUESTIONS = {
    "positive-a": ("www.bench.test.", "A", dns.rcode.NOERROR),
    "positive-a-10k": ("host5003.bench.test.", "A", dns.rcode.NOERROR),
    "nxdomain": ("nothing.bench.test.", "A", dns.rcode.NXDOMAIN),  # DO=1: NOERROR (RFC 9824)
    "wildcard": ("x.wild.bench.test.", "MX", dns.rcode.NOERROR),
}


def _keys(algorithm: int = ECDSAP256SHA256) -> ZoneKeys:
    def key(name: str, role: str) -> SigningKey:
        private = generate_private_key(algorithm)
        return SigningKey.from_private_key(name, role, algorithm, private)

    return ZoneKeys((key("ksk", "KSK"),), (key("zsk", "ZSK"),))


@pytest.fixture(scope="module", params=[ECDSAP256SHA256, ED25519], ids=["p256", "ed25519"])
def signed_catalog(request, bench_zone):
    signer = ZoneSigner(bench_zone.origin, _keys(request.param))
    assert signer.compact  # both algorithms are signed online
    return _core.Catalog([compile_zone(bench_zone, signer=signer)])


@pytest.mark.parametrize("dnssec_ok", [False, True], ids=["DO=0", "DO=1"])
@pytest.mark.parametrize("question", QUESTIONS.values(), ids=QUESTIONS.keys())
def test_answer(benchmark, signed_catalog, question, dnssec_ok) -> None:
    name, rdtype, rcode = question
    wire = dns.message.make_query(name, rdtype, want_dnssec=dnssec_ok, use_edns=0).to_wire()
    response = dns.message.from_wire(signed_catalog.answer(wire))
    assert response.rcode() == (dns.rcode.NOERROR if dnssec_ok else rcode)
    signed = any(r.rdtype == 46 for r in response.answer + response.authority)  # RRSIG
    assert signed == dnssec_ok
    benchmark(signed_catalog.answer, wire)


def test_signing_rate(benchmark, bench_zone) -> None:
    keys = _keys()
    signers = []

    def compile_signed() -> bytes:
        signer = ZoneSigner(bench_zone.origin, keys)
        signers.append(signer)
        return compile_zone(bench_zone, signer=signer)

    started = time.process_time()
    benchmark.pedantic(compile_signed, rounds=3, iterations=1)
    used = time.process_time() - started
    signatures = sum(s.signatures for s in signers)
    print(
        f"\nsigned compile: {signatures / len(signers):.0f} signatures per compile, "
        f"{signatures / used:,.0f} signatures/s (compile included)"
    )


def test_online_signing_rate(benchmark, signed_catalog) -> None:
    rounds = 3000
    wires = iter(
        [
            dns.message.make_query(
                f"fresh{i}-{time.monotonic_ns()}.bench.test.", "A", want_dnssec=True, use_edns=0
            ).to_wire()
            for i in range(rounds)
        ]
    )  # encoded beforehand: every answer below costs one online signature

    def fresh_denial() -> bytes:
        return signed_catalog.answer(next(wires))

    made_before = _core.online_stats()[0]
    started = time.process_time()
    benchmark.pedantic(fresh_denial, rounds=rounds, iterations=1)
    used = time.process_time() - started
    made = _core.online_stats()[0] - made_before
    print(f"\nonline: {made} signatures, {made / used:,.0f} signatures/s (answers included)")
