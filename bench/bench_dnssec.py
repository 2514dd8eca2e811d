"""What signing costs (issue 6): answers with DO=1 from a signed zone against the same answers
with DO=0, and compile-time signing.

    pytest bench/bench_dnssec.py --benchmark-only --benchmark-columns=min,median,ops

``test_answer`` times ``Catalog.answer`` (the C answer plus the Python call around it, the
same for both) for the bench zone signed with ECDSA P-256; ``test_signing_rate`` compiles the
whole signed zone once per round and prints signatures per second.
"""

from __future__ import annotations

import time

import dns.message
import dns.rcode
import pytest

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.dnssec.keys import ECDSAP256SHA256, SigningKey, generate_private_key
from fastdns.dnssec.keystore import ZoneKeys
from fastdns.dnssec.signer import ZoneSigner

QUESTIONS = {
    "positive-a": ("www.bench.test.", "A", dns.rcode.NOERROR),
    "positive-a-10k": ("host5003.bench.test.", "A", dns.rcode.NOERROR),
    "nxdomain": ("nothing.bench.test.", "A", dns.rcode.NXDOMAIN),
    "wildcard": ("x.wild.bench.test.", "MX", dns.rcode.NOERROR),
}


def _keys() -> ZoneKeys:
    def key(name: str, role: str) -> SigningKey:
        private = generate_private_key(ECDSAP256SHA256)
        return SigningKey.from_private_key(name, role, ECDSAP256SHA256, private)

    return ZoneKeys((key("ksk", "KSK"),), (key("zsk", "ZSK"),))


@pytest.fixture(scope="module")
def signed_catalog(bench_zone):
    return _core.Catalog([compile_zone(bench_zone, signer=ZoneSigner(bench_zone.origin, _keys()))])


@pytest.mark.parametrize("dnssec_ok", [False, True], ids=["DO=0", "DO=1"])
@pytest.mark.parametrize("question", QUESTIONS.values(), ids=QUESTIONS.keys())
def test_answer(benchmark, signed_catalog, question, dnssec_ok) -> None:
    name, rdtype, rcode = question
    wire = dns.message.make_query(name, rdtype, want_dnssec=dnssec_ok, use_edns=0).to_wire()
    response = dns.message.from_wire(signed_catalog.answer(wire))
    assert response.rcode() == rcode
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
