"""The hot-path query parser (``fastdns._core.parse_query_fields``), table-driven.

Each case is a raw packet and the fields the parser must report for it. Well-formed queries are
made by dnspython; malformed ones are assembled octet by octet so that each breaks exactly one
rule (RFC 1035 §4.1, RFC 6891 §6.1).
"""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rdatatype
import pytest

from fastdns._native import _core

parse = _core.parse_query_fields

WWW = b"\x03www\x07example\x03com\x00"


def header(*, qr=False, opcode=0, qd=1, an=0, ns=0, ar=0, ident=0x1234) -> bytes:
    flags = (0x8000 if qr else 0) | (opcode << 11)
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def question(name: bytes = WWW, qtype: int = 1, qclass: int = 1) -> bytes:
    return name + struct.pack("!HH", qtype, qclass)


def opt_rr(
    *, owner=b"\x00", payload=1232, ext_rcode=0, version=0, do=False, rdata=b"", rdlen=None
) -> bytes:
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    rdlen = len(rdata) if rdlen is None else rdlen
    return owner + struct.pack("!HHIH", 41, payload, ttl, rdlen) + rdata


def a_rr(owner: bytes) -> bytes:
    return owner + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])


def option(code: int, data: bytes, length: int | None = None) -> bytes:
    return struct.pack("!HH", code, len(data) if length is None else length) + data


def made(qname="www.example.com", rdtype="A", **kwargs) -> bytes:
    """A dnspython query; ``kwargs`` go to ``dns.message.make_query``."""
    return dns.message.make_query(qname, rdtype, **kwargs).to_wire()


def label(n: int) -> bytes:
    return bytes([n]) + b"a" * n


# A name of exactly 255 octets: three 63-octet labels, one of 61, the root.
NAME_255 = label(63) * 3 + label(61) + b"\x00"
NAME_256 = label(63) * 3 + label(62) + b"\x00"
assert len(NAME_255) == 255 and len(NAME_256) == 256

OK_CASES = [
    pytest.param(
        made(use_edns=False),
        dict(qname_wire=WWW, labels=3, qtype=1, qclass=1, has_opt=False, udp_size=0),
        id="plain",
    ),
    pytest.param(
        made("WwW.ExAmPlE.CoM", "AAAA", use_edns=False),
        dict(qname_wire=WWW, labels=3, qtype=28, question_end=12 + len(WWW) + 4),
        id="mixed-case-lowered",
    ),
    pytest.param(
        made(".", "NS", use_edns=False),
        dict(qname_wire=b"\x00", labels=0, qtype=2),
        id="root-name",
    ),
    pytest.param(
        made(use_edns=0, payload=4096),
        dict(has_opt=True, udp_size=4096, edns_version=0, dnssec_ok=False),
        id="edns",
    ),
    pytest.param(
        made(use_edns=0, payload=512, want_dnssec=True),
        dict(has_opt=True, udp_size=512, dnssec_ok=True),
        id="edns-do",
    ),
    pytest.param(
        made(use_edns=0, payload=100),
        dict(has_opt=True, udp_size=100),
        id="edns-small-payload",
    ),
    pytest.param(
        made(
            use_edns=0,
            payload=1232,
            options=[
                dns.edns.GenericOption(dns.edns.NSID, b""),
                dns.edns.ECSOption("192.0.2.0", 24),
                dns.edns.CookieOption(b"\x01" * 8, b""),
            ],
        ),
        dict(has_opt=True, udp_size=1232),
        id="edns-options",
    ),
    pytest.param(
        made(use_edns=1, payload=1232),
        dict(has_opt=True, edns_version=1),
        id="edns-version-1",
    ),
    pytest.param(
        header(opcode=2) + question(),
        dict(opcode=2, qname_wire=WWW),
        id="opcode-status",
    ),
    pytest.param(
        header(opcode=5) + question(),
        dict(opcode=5),
        id="opcode-update",
    ),
    pytest.param(
        header() + question(qtype=255, qclass=3),
        dict(qtype=255, qclass=3),
        id="any-chaos",
    ),
    pytest.param(
        header() + question(NAME_255),
        dict(qname_wire=NAME_255, labels=4),
        id="name-255-octets",
    ),
    pytest.param(
        header() + question(label(63) + b"\x00"),
        dict(labels=1),
        id="label-63-octets",
    ),
    pytest.param(
        header() + question(b"\x01a" * 127 + b"\x00"),
        dict(labels=127),
        id="127-labels",
    ),
    pytest.param(
        # A backward pointer (to the question name) in an additional-section owner is fine.
        header(ar=2) + question() + a_rr(b"\x03ns1\xc0\x10") + opt_rr(),
        dict(has_opt=True, udp_size=1232),
        id="additional-backward-pointer",
    ),
    pytest.param(
        header(ar=1) + question() + a_rr(b"\xc0\x02"),
        dict(has_opt=False),
        id="additional-pointer-into-header",
    ),
    pytest.param(
        header(an=1, ns=1, ar=1) + question() + a_rr(b"\xc0\x0c") + a_rr(WWW) + opt_rr(),
        dict(has_opt=True),
        id="records-in-every-section",
    ),
    pytest.param(
        header(ar=1) + question() + opt_rr(rdata=option(10, b"\x00" * 8) + option(3, b"")),
        dict(has_opt=True),
        id="options-exactly-fill-rdata",
    ),
    pytest.param(
        # RFC 4343: only A-Z are folded; 0xC1 (Latin-1 'Á'), '@', '[' and '_' stay as they are.
        header() + question(b"\x05Z\xc1@[_\x02\xffA\x00"),
        dict(qname_wire=b"\x05z\xc1@[_\x02\xffa\x00", labels=2),
        id="ascii-only-lowercase",
    ),
]


@pytest.mark.parametrize(("packet", "expected"), OK_CASES)
def test_well_formed(packet: bytes, expected: dict) -> None:
    fields = parse(packet)
    assert fields["status"] == "ok", fields
    for key, value in expected.items():
        assert fields[key] == value, (key, fields)


DROP_CASES = [
    pytest.param(b"", id="empty"),
    pytest.param(header()[:11], id="11-octets"),
    pytest.param(header(qr=True) + question(), id="qr-set"),
    pytest.param(header(qr=True, qd=0), id="qr-set-no-question"),
    pytest.param(header(qr=True, opcode=5) + question(), id="qr-set-update"),
]


@pytest.mark.parametrize("packet", DROP_CASES)
def test_dropped(packet: bytes) -> None:
    assert parse(packet) == {"status": "drop"}


FORMERR_CASES = [
    pytest.param(header(qd=0), id="qdcount-0"),
    pytest.param(header(qd=0) + question(), id="qdcount-0-with-question"),
    pytest.param(header(qd=2) + question() + question(), id="qdcount-2"),
    pytest.param(header(qd=0xFFFF) + question(), id="qdcount-65535"),
    pytest.param(header() + question(label(64) + b"\x00"), id="label-64-octets"),
    pytest.param(header() + question(NAME_256), id="name-256-octets"),
    pytest.param(header() + question(b"\x01a" * 128 + b"\x00"), id="128-labels"),
    pytest.param(header() + question(b"\x03www\xc0\x20"), id="pointer-forward"),
    pytest.param(header() + question(b"\xc0\x0c"), id="pointer-self-loop"),
    pytest.param(header() + question(b"\x03www\xc0\x0c"), id="pointer-to-own-start"),
    pytest.param(header() + question(b"\x03www\xc0\x02"), id="pointer-into-header"),
    pytest.param(header() + question(b"\x41" + b"a" * 10 + b"\x00"), id="label-type-0x40"),
    pytest.param(header() + question(b"\x81" + b"a" * 10 + b"\x00"), id="label-type-0x80"),
    pytest.param(header(), id="header-only"),
    pytest.param(header() + WWW[:-1], id="name-without-root"),
    pytest.param(header() + WWW[:6], id="name-cut-mid-label"),
    pytest.param(header() + WWW, id="no-qtype"),
    pytest.param(header() + WWW + b"\x00\x01\x00", id="qclass-cut"),
]


@pytest.mark.parametrize("packet", FORMERR_CASES)
def test_formerr(packet: bytes) -> None:
    assert parse(packet) == {"status": "formerr"}


QUESTION_THEN_BAD = [
    pytest.param(header(ar=1) + question() + opt_rr(owner=WWW), id="opt-owner-not-root"),
    pytest.param(header(ar=1) + question() + opt_rr(owner=b"\xc0\x0c"), id="opt-owner-pointer"),
    pytest.param(header(ar=2) + question() + opt_rr() + opt_rr(), id="two-opts"),
    pytest.param(header(an=1) + question() + opt_rr(), id="opt-in-answer"),
    pytest.param(header(ns=1) + question() + opt_rr(), id="opt-in-authority"),
    pytest.param(
        header(ar=1) + question() + opt_rr(rdata=option(10, b"\x00" * 8, length=9)),
        id="option-runs-past-rdata",
    ),
    pytest.param(
        header(ar=1) + question() + opt_rr(rdata=b"\x00\x0a\x00"),
        id="option-header-cut",
    ),
    pytest.param(header(ar=1) + question() + opt_rr(rdlen=4), id="opt-rdata-past-packet"),
    pytest.param(header(ar=1) + question(), id="arcount-without-record"),
    pytest.param(header(ar=2) + question() + opt_rr(), id="arcount-one-too-many"),
    pytest.param(header(ar=1) + question() + opt_rr()[:8], id="opt-cut"),
    pytest.param(header(ar=1) + question() + a_rr(b"\xc0\x40"), id="additional-forward-pointer"),
    pytest.param(
        header(ar=1) + question() + a_rr(b"\x03abc\xc0\x21"), id="additional-pointer-to-itself"
    ),
    pytest.param(header(ar=1) + question() + a_rr(b"\x41abc\x00"), id="additional-label-0x40"),
    pytest.param(header(ar=1) + question() + a_rr(label(63) * 5), id="additional-name-too-long"),
    # octets after the last record: not a DNS message (Knot answers FORMERR too)
    pytest.param(header() + question() + b"\x00", id="trailing-octet"),
    pytest.param(header(ar=1) + question() + opt_rr() + b"junk", id="trailing-after-opt"),
]


@pytest.mark.parametrize("packet", QUESTION_THEN_BAD)
def test_formerr_after_question(packet: bytes) -> None:
    fields = parse(packet)
    assert fields["status"] == "formerr-question", fields
    # The question itself was understood: a FORMERR response can echo it.
    assert fields["qname_wire"] == WWW
    assert fields["question_end"] == 12 + len(WWW) + 4


def test_question_end_and_fields_with_edns() -> None:
    msg = dns.message.make_query("Host.Example.ORG", "MX", use_edns=0, payload=1400)
    msg.flags |= dns.flags.CD
    wire = msg.to_wire()
    fields = parse(wire)
    name = b"\x04host\x07example\x03org\x00"
    assert fields == {
        "status": "ok",
        "opcode": 0,
        "qname_wire": name,
        "labels": 3,
        "qtype": dns.rdatatype.MX,
        "qclass": 1,
        "question_end": 12 + len(name) + 4,
        "has_opt": True,
        "udp_size": 1400,
        "edns_version": 0,
        "dnssec_ok": False,
    }


def test_accepts_buffers_other_than_bytes() -> None:
    wire = made(use_edns=False)
    assert parse(bytearray(wire)) == parse(wire)
    assert parse(memoryview(wire)) == parse(wire)


def test_opcode_reported_for_every_value() -> None:
    for opcode in range(16):
        fields = parse(header(opcode=opcode) + question())
        assert fields["status"] == "ok"
        assert fields["opcode"] == opcode == dns.opcode.from_flags(opcode << 11)
