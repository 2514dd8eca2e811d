"""Micro-benchmarks of the hot path: parsing, answering, and compiling a zone.

Each answer benchmark first checks the response it times is the intended one (rcode, section
counts), so a benchmark never measures a FORMERR by mistake.
"""

from __future__ import annotations

import dns.message
import dns.rcode
import pytest

from fastdns._native import _core
from fastdns.compile import compile_zone

LONG_WILDCARD = ".".join(["label-of-some-length"] * 8) + ".wild.bench.test."

# name, type, expected rcode, expected (answer, authority) record counts
QUESTIONS = {
    "positive-a": ("www.bench.test.", "A", dns.rcode.NOERROR, (2, 0)),
    "positive-a-10k": ("host5003.bench.test.", "A", dns.rcode.NOERROR, (1, 0)),
    "nxdomain": ("nothing.bench.test.", "A", dns.rcode.NXDOMAIN, (0, 1)),
    "wildcard-shifted": (LONG_WILDCARD, "MX", dns.rcode.NOERROR, (1, 0)),
    "cname-chain": ("chain1.bench.test.", "A", dns.rcode.NOERROR, (5, 0)),
    "referral": ("a.b.deleg.bench.test.", "A", dns.rcode.NOERROR, (0, 1)),
    "refused": ("www.example.net.", "A", dns.rcode.REFUSED, (0, 0)),
}
EDNS = {"plain": None, "edns": 1232}


def query_wire(name: str, rdtype: str, edns: int | None) -> bytes:
    msg = dns.message.make_query(
        name, rdtype, use_edns=0 if edns is not None else False, payload=edns or 1232
    )
    return msg.to_wire()


@pytest.mark.parametrize("edns", EDNS.values(), ids=EDNS.keys())
def test_parse_only(benchmark, edns) -> None:
    """``parse_query_fields``: the C parser plus building its result dict."""
    wire = query_wire("www.bench.test.", "A", edns)
    assert _core.parse_query_fields(wire)["status"] == "ok"
    benchmark(_core.parse_query_fields, wire)


@pytest.mark.parametrize("edns", EDNS.values(), ids=EDNS.keys())
@pytest.mark.parametrize("question", QUESTIONS.values(), ids=QUESTIONS.keys())
def test_answer(benchmark, catalog, question, edns) -> None:
    name, rdtype, rcode, (answers, authority) = question
    wire = query_wire(name, rdtype, edns)
    response = dns.message.from_wire(catalog.answer(wire))
    assert response.rcode() == rcode
    assert sum(len(r) for r in response.answer) == answers
    assert len(response.authority) == authority
    benchmark(catalog.answer, wire)


def test_answer_tcp_large(benchmark, catalog) -> None:
    """An answer with additional records over TCP (no truncation work)."""
    wire = query_wire("host5001.bench.test.", "MX", None)
    response = dns.message.from_wire(catalog.answer(wire, True))
    assert response.answer and response.additional
    benchmark(catalog.answer, wire, True)


def test_compile_10k_names(benchmark, bench_zone) -> None:
    """``compile_zone`` for a zone of 10,000 owner names."""
    assert len(bench_zone.names()) == 10_000
    image = benchmark.pedantic(compile_zone, (bench_zone,), rounds=3, iterations=1)
    assert _core.ZoneImage(image).origin == "bench.test."
