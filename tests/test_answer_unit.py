"""``Catalog.answer`` without a server: RFC 1034 §4.3.2 answers, EDNS, truncation, compression.

The zones are in tests/data/unit/. Most cases are a table in presentation format, in the manner
of CoreDNS's ``plugin/file/lookup_test.go``: a question, the RCODE and AA bit expected, and the
records expected in each section. Every response is decoded by both dnspython and dnslib, which
must agree on the header, every record's owner, type, class and TTL, and (for the types both
print the same way) its RDATA.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dnslib
import pytest
from support.client import check_decoders_agree, make_query

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.zonefile import load_zone_file

UNIT_ZONES = Path(__file__).resolve().parent / "data" / "unit"


def unit_images() -> list[bytes]:
    return [compile_zone(load_zone_file(path)) for path in sorted(UNIT_ZONES.glob("*.zone"))]


@pytest.fixture(scope="module")
def catalog() -> _core.Catalog:
    return _core.Catalog(unit_images())


# -- decoding ----------------------------------------------------------------------------------

# Types whose RDATA dnslib and dnspython print identically (up to case).
COMPARABLE = {"A", "AAAA", "NS", "CNAME", "PTR", "MX", "SOA", "SRV", "TXT", "DS"}


def decode(wire: bytes) -> dns.message.Message:
    """Both decoders must read ``wire`` and agree, RDATA included; dnspython's view."""
    ours = check_decoders_agree(wire)
    theirs = dnslib.DNSRecord.parse(wire)
    pairs = [
        (ours.answer, theirs.rr),
        (ours.authority, theirs.auth),
        (ours.additional, [rr for rr in theirs.ar if rr.rtype != dnslib.QTYPE.OPT]),
    ]
    for ours_section, theirs_section in pairs:
        mine = sorted(
            (
                rrset.name.to_text().lower(),
                dns.rdatatype.to_text(rrset.rdtype),
                rd.to_text().lower(),
            )
            for rrset in ours_section
            for rd in rrset
            if dns.rdatatype.to_text(rrset.rdtype) in COMPARABLE
        )
        other = sorted(
            (str(rr.rname).lower(), dnslib.QTYPE[rr.rtype], str(rr.rdata).lower())
            for rr in theirs_section
            if dnslib.QTYPE.get(rr.rtype) in COMPARABLE
        )
        assert mine == other, f"dnspython and dnslib read different RDATA\n{ours}"
    return ours


def ask(catalog, qname, rdtype, *, edns=None, dnssec_ok=False, tcp=False):
    """(query wire, response wire, decoded response) for one question."""
    query = make_query(qname, rdtype, edns=edns, dnssec_ok=dnssec_ok).to_wire()
    wire = catalog.answer(query, tcp=tcp)
    assert wire is not None, "no response"
    return query, wire, decode(wire)


def lines(section) -> list[str]:
    """A response section as presentation lines, one per record."""
    return [
        dns.rrset.from_rdata(rrset.name, rrset.ttl, rdata).to_text()
        for rrset in section
        for rdata in rrset
    ]


def parse_lines(texts) -> list[str]:
    """Expected records ("owner TTL class type rdata") normalised as ``lines`` prints them."""
    out = []
    for text in texts:
        owner, ttl, rdclass, rdtype, rdata = text.split(None, 4)
        out.append(dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, rdata).to_text())
    return out


# -- RFC 1034 §4.3.2 answers, table-driven -----------------------------------------------------


@dataclass(frozen=True)
class Case:
    question: str  # "owner TYPE"
    rcode: str = "NOERROR"
    aa: bool = True
    answer: tuple[str, ...] = ()  # in order (CNAME chains)
    authority: tuple[str, ...] = ()  # any order
    additional: tuple[str, ...] = ()  # any order


UNIT_SOA = "unit.test. 300 IN SOA ns1.unit.test. hostmaster.unit.test. 1 7200 3600 1209600 300"
LOW_SOA = "lowttl.test. 60 IN SOA ns1.lowttl.test. hostmaster.lowttl.test. 1 7200 3600 1209600 3600"
EX_SOA = "example. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 3600"
PARENT_SOA = (
    "parent.test. 600 IN SOA ns1.parent.test. hostmaster.parent.test. 1 7200 3600 1209600 600"
)
CHILD_SOA = (
    "child.parent.test. 600 IN SOA ns1.child.parent.test. hostmaster.parent.test. "
    "1 7200 3600 1209600 600"
)
WWW_A = ("www.unit.test. 600 IN A 192.0.2.10", "www.unit.test. 600 IN A 192.0.2.11")
MAIL_ADDRS = ("mail.unit.test. 3600 IN A 192.0.2.25", "mail.unit.test. 3600 IN AAAA 2001:db8::25")
DELEG_NS = (
    "deleg.unit.test. 3600 IN NS ns1.deleg.unit.test.",
    "deleg.unit.test. 3600 IN NS ns.example.net.",
)
DELEG_GLUE = (
    "ns1.deleg.unit.test. 3600 IN A 192.0.2.53",
    "ns1.deleg.unit.test. 3600 IN AAAA 2001:db8::53",
)
SECURE_DS = (
    "secure.unit.test. 3600 IN DS 12345 13 2 "
    "DED1079F8583824AF8440CB9323AA92394991AC5D82F91FDEB0FE411D75755C7"
)
CHILD_DS = (
    "child.parent.test. 3600 IN DS 2222 13 2 "
    "0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0"
)
SUBDEL_NS = (
    "subdel.example. 3600 IN NS ns.example.com.",
    "subdel.example. 3600 IN NS ns.example.net.",
)

CASES = {
    # positive answers, with additional addresses for NS and MX targets (step 6)
    "positive": Case("www.unit.test. A", answer=WWW_A),
    "positive-txt": Case("www.unit.test. TXT", answer=('www.unit.test. 3600 IN TXT "www"',)),
    "apex-mx": Case(
        "unit.test. MX", answer=("unit.test. 3600 IN MX 10 mail.unit.test.",), additional=MAIL_ADDRS
    ),
    "apex-ns": Case(
        "unit.test. NS",
        answer=("unit.test. 3600 IN NS ns1.unit.test.", "unit.test. 3600 IN NS ns2.unit.test."),
        additional=("ns1.unit.test. 3600 IN A 192.0.2.1", "ns2.unit.test. 3600 IN A 192.0.2.2"),
    ),
    "apex-soa": Case("unit.test. SOA", answer=(UNIT_SOA.replace(" 300 IN", " 3600 IN", 1),)),
    # negative answers (RFC 2308): SOA TTL = min(SOA TTL, MINIMUM)
    "nodata": Case("www.unit.test. AAAA", authority=(UNIT_SOA,)),
    "nxdomain": Case("nothing.unit.test. A", rcode="NXDOMAIN", authority=(UNIT_SOA,)),
    "nxdomain-deep": Case("x.y.nothing.unit.test. A", rcode="NXDOMAIN", authority=(UNIT_SOA,)),
    "nxdomain-below-name": Case("x.www.unit.test. A", rcode="NXDOMAIN", authority=(UNIT_SOA,)),
    "nodata-soa-ttl-below-minimum": Case("lowttl.test. AAAA", authority=(LOW_SOA,)),
    "nxdomain-soa-ttl-below-minimum": Case(
        "x.lowttl.test. A", rcode="NXDOMAIN", authority=(LOW_SOA,)
    ),
    # empty non-terminals are nodes: NODATA, and NXDOMAIN only below them (RFC 8020)
    "ent": Case("c.unit.test. A", authority=(UNIT_SOA,)),
    "ent-deeper": Case("b.c.unit.test. TXT", authority=(UNIT_SOA,)),
    "below-ent": Case("x.b.c.unit.test. A", rcode="NXDOMAIN", authority=(UNIT_SOA,)),
    "below-ent-leaf": Case("x.a.b.c.unit.test. A", rcode="NXDOMAIN", authority=(UNIT_SOA,)),
    "ent-leaf": Case("a.b.c.unit.test. A", answer=("a.b.c.unit.test. 3600 IN A 192.0.2.80",)),
    # CNAME (step 3a): chains followed inside the zone
    "cname-chain": Case(
        "chain1.unit.test. A",
        answer=(
            "chain1.unit.test. 3600 IN CNAME chain2.unit.test.",
            "chain2.unit.test. 120 IN CNAME www.unit.test.",
            *WWW_A,
        ),
    ),
    "cname-chain-other-type": Case(
        "chain1.unit.test. TXT",
        answer=(
            "chain1.unit.test. 3600 IN CNAME chain2.unit.test.",
            "chain2.unit.test. 120 IN CNAME www.unit.test.",
            'www.unit.test. 3600 IN TXT "www"',
        ),
    ),
    "cname-chain-nodata": Case(
        "chain1.unit.test. AAAA",
        answer=(
            "chain1.unit.test. 3600 IN CNAME chain2.unit.test.",
            "chain2.unit.test. 120 IN CNAME www.unit.test.",
        ),
        authority=(UNIT_SOA,),
    ),
    "cname-qtype-cname": Case(
        "chain1.unit.test. CNAME", answer=("chain1.unit.test. 3600 IN CNAME chain2.unit.test.",)
    ),
    "cname-loop": Case(
        "loop1.unit.test. A",
        answer=(
            "loop1.unit.test. 3600 IN CNAME loop2.unit.test.",
            "loop2.unit.test. 3600 IN CNAME loop1.unit.test.",
        ),
    ),
    "cname-dangling": Case(  # RFC 6604 §3: the RCODE is the last name's
        "dangling.unit.test. A",
        rcode="NXDOMAIN",
        answer=("dangling.unit.test. 3600 IN CNAME nowhere.unit.test.",),
        authority=(UNIT_SOA,),
    ),
    "cname-out-of-zone": Case(
        "out.unit.test. A", answer=("out.unit.test. 3600 IN CNAME www.example.net.",)
    ),
    "cname-to-ent": Case(
        "toent.unit.test. A",
        answer=("toent.unit.test. 3600 IN CNAME c.unit.test.",),
        authority=(UNIT_SOA,),
    ),
    "cname-to-wildcard": Case(
        "towild.unit.test. A",
        answer=(
            "towild.unit.test. 3600 IN CNAME x.wild.unit.test.",
            "x.wild.unit.test. 3600 IN A 192.0.2.100",
        ),
    ),
    # wildcards (RFC 4592)
    "wildcard": Case(
        "host.wild.unit.test. A", answer=("host.wild.unit.test. 3600 IN A 192.0.2.100",)
    ),
    "wildcard-deep": Case(
        "a.b.wild.unit.test. MX",
        answer=("a.b.wild.unit.test. 3600 IN MX 10 mail.unit.test.",),
        additional=MAIL_ADDRS,
    ),
    "wildcard-nodata": Case("host.wild.unit.test. AAAA", authority=(UNIT_SOA,)),
    "wildcard-not-for-existing": Case("sub.wild.unit.test. TXT", authority=(UNIT_SOA,)),
    "wildcard-existing-name": Case(
        "sub.wild.unit.test. A", answer=("sub.wild.unit.test. 3600 IN A 192.0.2.101",)
    ),
    "wildcard-not-below-existing": Case(
        "x.sub.wild.unit.test. A", rcode="NXDOMAIN", authority=(UNIT_SOA,)
    ),
    "wildcard-cname": Case(
        "x.wcname.unit.test. A",
        answer=("x.wcname.unit.test. 3600 IN CNAME www.unit.test.", *WWW_A),
    ),
    "wildcard-owner-itself": Case(
        "*.wild.unit.test. A", answer=("*.wild.unit.test. 3600 IN A 192.0.2.100",)
    ),
    # RFC 4592 §2.2.1, every example query
    "rfc4592-host3-mx": Case(
        "host3.example. MX",
        answer=("host3.example. 3600 IN MX 10 host1.example.",),
        additional=("host1.example. 3600 IN A 192.0.2.1",),
    ),
    "rfc4592-host3-a": Case("host3.example. A", authority=(EX_SOA,)),
    "rfc4592-foo-bar-txt": Case(
        "foo.bar.example. TXT", answer=('foo.bar.example. 3600 IN TXT "this is a wildcard"',)
    ),
    "rfc4592-host1-mx": Case("host1.example. MX", authority=(EX_SOA,)),
    "rfc4592-sub-star-mx": Case("sub.*.example. MX", authority=(EX_SOA,)),
    "rfc4592-telnet-srv": Case(
        "_telnet._tcp.host1.example. SRV", rcode="NXDOMAIN", authority=(EX_SOA,)
    ),
    "rfc4592-subdel": Case("host.subdel.example. A", aa=False, authority=SUBDEL_NS),
    "rfc4592-ghost-star-mx": Case("ghost.*.example. MX", rcode="NXDOMAIN", authority=(EX_SOA,)),
    "rfc4592-ssh-srv": Case(
        "_ssh._tcp.host1.example. SRV",
        answer=("_ssh._tcp.host1.example. 3600 IN SRV 0 0 22 host1.example.",),
        additional=("host1.example. 3600 IN A 192.0.2.1",),
    ),
    # referrals (step 3b): NS in authority, glue in additional, AA clear
    "referral": Case(
        "host.deleg.unit.test. A", aa=False, authority=DELEG_NS, additional=DELEG_GLUE
    ),
    "referral-at-cut": Case(
        "deleg.unit.test. A", aa=False, authority=DELEG_NS, additional=DELEG_GLUE
    ),
    "referral-ns-at-cut": Case(
        "deleg.unit.test. NS", aa=False, authority=DELEG_NS, additional=DELEG_GLUE
    ),
    "referral-glue-name": Case(
        "ns1.deleg.unit.test. A", aa=False, authority=DELEG_NS, additional=DELEG_GLUE
    ),
    "referral-sibling-glue": Case(
        "x.secure.unit.test. A",
        aa=False,
        authority=("secure.unit.test. 3600 IN NS ns1.unit.test.",),
        additional=("ns1.unit.test. 3600 IN A 192.0.2.1",),
    ),
    # DS is the parent's data (RFC 4035 §3.1.4.1)
    "ds-at-cut": Case("secure.unit.test. DS", answer=(SECURE_DS,)),
    "ds-at-cut-none": Case("deleg.unit.test. DS", authority=(UNIT_SOA,)),
    "ds-below-cut": Case(
        "x.secure.unit.test. DS",
        aa=False,
        authority=("secure.unit.test. 3600 IN NS ns1.unit.test.",),
        additional=("ns1.unit.test. 3600 IN A 192.0.2.1",),
    ),
    "ds-at-hosted-child-apex": Case("child.parent.test. DS", answer=(CHILD_DS,)),
    "child-apex-a": Case(
        "child.parent.test. A", answer=("child.parent.test. 3600 IN A 192.0.2.98",)
    ),
    "child-apex-ns": Case(
        "child.parent.test. NS",
        answer=("child.parent.test. 3600 IN NS ns1.child.parent.test.",),
        additional=("ns1.child.parent.test. 3600 IN A 192.0.2.99",),
    ),
    "child-name": Case(
        "ns1.child.parent.test. A", answer=("ns1.child.parent.test. 3600 IN A 192.0.2.99",)
    ),
    "child-nxdomain-ds": Case("x.child.parent.test. DS", rcode="NXDOMAIN", authority=(CHILD_SOA,)),
    "parent-apex-ds": Case("parent.test. DS", authority=(PARENT_SOA,)),
    # a hosted child the hosted parent does not delegate answers its own DS query
    "ds-at-undelegated-child-apex": Case(
        "orphan.parent.test. DS",
        authority=(
            "orphan.parent.test. 900 IN SOA ns1.parent.test. hostmaster.parent.test. "
            "1 7200 3600 1209600 900",
        ),
    ),
    # not ours
    "refused-other-zone": Case("www.example.net. A", rcode="REFUSED", aa=False),
    "refused-parent-of-zone": Case("test. SOA", rcode="REFUSED", aa=False),
    "refused-root": Case(". NS", rcode="REFUSED", aa=False),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("edns", [None, 1232], ids=["plain", "edns"])
def test_answer(catalog, case: Case, edns) -> None:
    qname, rdtype = case.question.split()
    query, _wire, msg = ask(catalog, qname, rdtype, edns=edns)
    assert msg.flags & dns.flags.QR
    assert not msg.flags & dns.flags.TC
    assert dns.rcode.to_text(msg.rcode()) == case.rcode
    assert bool(msg.flags & dns.flags.AA) == case.aa
    assert msg.question == dns.message.from_wire(query).question
    assert (msg.opt is not None) == (edns is not None)
    assert lines(msg.answer) == parse_lines(case.answer)
    assert sorted(lines(msg.authority)) == sorted(parse_lines(case.authority))
    assert sorted(lines(msg.additional)) == sorted(parse_lines(case.additional))


def test_axfr_over_udp_is_notimp(catalog) -> None:
    _q, _wire, msg = ask(catalog, "unit.test.", "AXFR", tcp=False)
    assert msg.rcode() == dns.rcode.NOTIMP  # RFC 5936 §4.2: AXFR is not defined over UDP
    assert not msg.flags & dns.flags.AA
    assert not msg.answer and not msg.authority and not msg.additional


@pytest.mark.parametrize(("rdtype", "tcp"), [("AXFR", True), ("IXFR", True), ("IXFR", False)])
def test_zone_transfers_go_to_the_control_plane(catalog, rdtype, tcp) -> None:
    """b"": the C answer leaves transfers to the supervisor (fastdns.xfr): AXFR over TCP,
    IXFR over TCP and UDP (RFC 1995 §2)."""
    query = dns.message.make_query("unit.test.", rdtype).to_wire()
    assert catalog.answer(query, tcp=tcp) == b""
    assert catalog.answer_with_info(query, tcp=tcp)[0] == b""


def test_signed_queries_over_tcp_go_to_the_control_plane(catalog) -> None:
    """A TSIG (RFC 8945) must be checked and the answer signed: not in C. Over UDP the C
    answer stays (unsigned), as before transfers existed."""
    import dns.tsig

    query = dns.message.make_query("www.unit.test.", "A")
    query.use_tsig(dns.tsig.Key("k.", b"0" * 32, "hmac-sha256"))
    wire = query.to_wire()
    assert catalog.answer(wire, tcp=True) == b""
    assert catalog.answer(wire, tcp=False)[3] & 0x0F == dns.rcode.NOERROR
    plain = dns.message.make_query("www.unit.test.", "A").to_wire()
    assert len(catalog.answer(plain, tcp=True)) > 12


def test_any_is_answered_with_one_rrset(catalog) -> None:
    """RFC 8482 §4.1: one RRset of the name's data, never the whole node."""
    _q, _wire, msg = ask(catalog, "www.unit.test.", "ANY")
    assert msg.rcode() == dns.rcode.NOERROR and msg.flags & dns.flags.AA
    assert len(msg.answer) == 1
    assert lines(msg.answer) in (list(WWW_A), ['www.unit.test. 3600 IN TXT "www"'])


@pytest.mark.parametrize("native", [False, True])
def test_any_is_the_lowest_type_without_a_table_entry_for_it(tmp_path, native) -> None:
    """RFC 8482 §4.1 answers ANY with the lowest type's RRset, which the image does not store
    twice (fastdns.image.implied_any): the table has no ANY entry where ANY repeats the first
    entry. Where it would not -- a CNAME whose chain ends at data of a lower type, a name with
    only types above 255 -- the entry stays, and a cut's ANY is still the referral."""
    from support.images import answer_table

    from fastdns.nativezone import compile_zone_file

    (tmp_path / "any.test.zone").write_text(
        "$ORIGIN any.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.53\n"
        'www A 192.0.2.1\nwww TXT "t"\nalias CNAME www\ncaa CAA 0 issue "ca.example"\n'
        "sub NS ns.other.example.\n* MX 10 mail.other.example.\n* AAAA 2001:db8::1\n"
    )
    path = str(tmp_path / "any.test.zone")
    origin = dns.name.from_text("any.test.")
    image = compile_zone_file(path, origin).image if native else compile_zone(load_zone_file(path))
    assert bytes(image) == bytes(compile_zone(load_zone_file(path)))  # native as reference
    catalog = _core.Catalog([bytes(image)])
    tables = {node[0]: [t for t, _ in node[7]] for node in answer_table(image)[4]}
    assert tables[b"www"] == [1, 16] and tables[b"caa"] == [255, 257]
    assert 255 in tables[b"alias"] and 255 not in tables[b"sub"]

    def any_answer(name: str) -> list[str]:
        msg = ask(catalog, name, "ANY")[2]
        assert msg.rcode() == dns.rcode.NOERROR
        return lines(msg.answer)

    assert any_answer("www.any.test.") == ["www.any.test. 300 IN A 192.0.2.1"]
    assert any_answer("caa.any.test.") == ['caa.any.test. 300 IN CAA 0 issue "ca.example"']
    assert any_answer("x.any.test.") == ["x.any.test. 300 IN MX 10 mail.other.example."]
    # The CNAME alone (its table's first entry, A, is the chain to www's A: ANY stays).
    assert any_answer("alias.any.test.") == ["alias.any.test. 300 IN CNAME www.any.test."]
    for name in ("sub.any.test.", "host.sub.any.test."):  # a referral, at the cut and below
        msg = ask(catalog, name, "ANY")[2]
        assert not msg.answer and not msg.flags & dns.flags.AA
        assert lines(msg.authority) == ["sub.any.test. 300 IN NS ns.other.example."]


# -- header, opcodes, EDNS ---------------------------------------------------------------------


def raw_query(*, opcode=0, qname=b"\x03www\x04unit\x04test\x00", qtype=1, opt=False) -> bytes:
    flags = opcode << 11
    arcount = 1 if opt else 0
    wire = struct.pack("!HHHHHH", 0xBEEF, flags, 1, 0, 0, arcount) + qname
    wire += struct.pack("!HH", qtype, 1)
    if opt:
        wire += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return wire


@pytest.mark.parametrize("opcode", [dns.opcode.STATUS, 1, 3, 6, 15])
@pytest.mark.parametrize("opt", [False, True], ids=["plain", "edns"])
def test_notimp_for_other_opcodes(catalog, opcode, opt) -> None:
    query = raw_query(opcode=opcode, opt=opt)
    msg = decode(catalog.answer(query))
    assert msg.id == 0xBEEF
    assert msg.rcode() == dns.rcode.NOTIMP
    assert dns.opcode.from_flags(msg.flags) == opcode
    assert msg.flags & dns.flags.QR and not msg.flags & dns.flags.AA
    assert (msg.opt is not None) == opt
    assert not msg.answer and not msg.authority and not msg.additional


@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.UPDATE])
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_notify_and_update_go_to_the_control_plane(catalog, opcode, tcp) -> None:
    # An UPDATE's "question" is its zone section, which names the zone's SOA (RFC 2136 §2.3);
    # a NOTIFY's names the zone's SOA too (RFC 1996 §3.7). b"": nothing written in C.
    assert catalog.answer(raw_query(opcode=opcode, qtype=6), tcp) == b""


def test_badvers_for_edns_version_1(catalog) -> None:
    query = dns.message.make_query("www.unit.test.", "A", use_edns=1, payload=1232)
    wire = catalog.answer(query.to_wire())
    msg = decode(wire)
    assert msg.rcode() == dns.rcode.BADVERS
    assert wire[3] & 0x0F == 0  # the low four bits; the rest is in OPT (RFC 6891 §6.1.3)
    assert msg.opt is not None
    assert msg.opt.ttl >> 24 == 1  # extended RCODE 1
    assert (msg.opt.ttl >> 16) & 0xFF == 0  # the version we do implement
    assert not msg.answer and not msg.authority


def test_do_bit_and_payload_in_response_opt(catalog) -> None:
    _q, _wire, msg = ask(catalog, "www.unit.test.", "A", edns=4096, dnssec_ok=True)
    assert msg.ednsflags & dns.flags.DO
    assert msg.payload == 1232  # ours, not the requestor's
    _q, _wire, msg = ask(catalog, "www.unit.test.", "A", edns=4096)
    assert not msg.ednsflags & dns.flags.DO


def test_header_bits_copied(catalog) -> None:
    query = make_query("www.unit.test.", "A", rd=True, want_id=4321)
    query.flags |= dns.flags.AD
    msg = decode(catalog.answer(query.to_wire()))
    assert msg.id == 4321
    assert msg.flags & dns.flags.RD
    assert not msg.flags & dns.flags.RA
    assert not msg.flags & dns.flags.AD  # we do not validate


def test_question_echoed_byte_for_byte(catalog) -> None:
    """The 0x20 trick: a resolver checks the case of the question it gets back."""
    for qname, rdtype in [
        ("wWw.UnIt.TeSt.", "A"),
        ("HoSt.WiLd.uNiT.tEsT.", "MX"),
        ("NoThInG.UNIT.TEST.", "A"),
        ("X.dElEg.UNIT.test.", "A"),
        ("WWW.EXAMPLE.NET.", "A"),
    ]:
        query, wire, msg = ask(catalog, qname, rdtype, edns=1232)
        end = 12 + len(dns.name.from_text(qname).to_wire()) + 4
        assert wire[12:end] == query[12:end]
        assert msg.question[0].name.to_text() == qname  # case kept by the decoder too
        for rrset in msg.answer:
            if rrset.name == msg.question[0].name:
                # the owner is a pointer to the question: the query's case
                assert rrset.name.to_text() == qname


# -- truncation (RFC 2181 §9, RFC 6891 §6.2.5) -------------------------------------------------


def assert_truncated(wire: bytes, msg: dns.message.Message, limit: int) -> None:
    assert msg.flags & dns.flags.TC
    assert len(wire) <= limit
    assert not msg.answer and not msg.authority and not msg.additional
    assert len(msg.question) == 1


@pytest.mark.parametrize(
    ("qname", "edns", "limit"),
    [
        ("txt700.unit.test.", None, 512),
        ("txt1500.unit.test.", None, 512),
        ("txt1500.unit.test.", 1232, 1232),
        ("txt1500.unit.test.", 4096, 1232),  # our udp_max_payload caps the requestor's
        ("txt700.unit.test.", 100, 512),  # RFC 6891 §6.2.5: below 512 counts as 512
        ("txt700.unit.test.", 511, 512),
    ],
)
def test_large_answer_truncated_over_udp(catalog, qname, edns, limit) -> None:
    _q, wire, msg = ask(catalog, qname, "TXT", edns=edns)
    assert_truncated(wire, msg, limit)
    assert (msg.opt is not None) == (edns is not None)


@pytest.mark.parametrize(("qname", "count"), [("txt700.unit.test.", 3), ("txt1500.unit.test.", 6)])
@pytest.mark.parametrize("edns", [None, 512, 4096])
def test_large_answer_whole_over_tcp(catalog, qname, count, edns) -> None:
    _q, wire, msg = ask(catalog, qname, "TXT", edns=edns, tcp=True)
    assert not msg.flags & dns.flags.TC
    assert len(msg.answer) == 1 and len(msg.answer[0]) == count
    assert len(wire) > 512


def test_answer_within_payload_not_truncated(catalog) -> None:
    _q, wire, msg = ask(catalog, "txt700.unit.test.", "TXT", edns=1232)
    assert not msg.flags & dns.flags.TC and 512 < len(wire) <= 1232
    assert len(msg.answer[0]) == 3


def test_udp_max_payload_setting() -> None:
    big = _core.Catalog(unit_images(), udp_max_payload=4096)
    _q, wire, msg = ask(big, "txt1500.unit.test.", "TXT", edns=4096)
    assert not msg.flags & dns.flags.TC and len(wire) > 1232
    assert msg.payload == 4096
    _q, wire, msg = ask(big, "txt1500.unit.test.", "TXT", edns=1400)
    assert_truncated(wire, msg, 1400)


def test_optional_additional_dropped_before_tc(catalog) -> None:
    _q, full_wire, full = ask(catalog, "mxmany.unit.test.", "MX", tcp=True)
    assert len(full_wire) > 512 and len(lines(full.additional)) == 16
    _q, wire, msg = ask(catalog, "mxmany.unit.test.", "MX")
    assert not msg.flags & dns.flags.TC
    assert len(wire) <= 512
    assert lines(msg.answer) == lines(full.answer)
    kept = lines(msg.additional)
    assert 0 < len(kept) < 16
    # whole records dropped from the end: what is left is a prefix of the full section
    full_order = [
        dns.rrset.from_rdata(rr.rname.idna(), rr.ttl, rd).to_text()
        for rr, rd in _dnslib_additional(full_wire)
    ]
    assert kept == full_order[: len(kept)]
    # with room for everything, everything comes
    _q, wire, msg = ask(catalog, "mxmany.unit.test.", "MX", edns=1232)
    assert len(lines(msg.additional)) == 16


def _dnslib_additional(wire: bytes):
    """(record, dnspython rdata) pairs of the additional section, in wire order."""
    parsed = dnslib.DNSRecord.parse(wire)
    out = []
    for rr in parsed.ar:
        if rr.rtype == dnslib.QTYPE.OPT:
            continue
        rdtype = dns.rdatatype.RdataType(rr.rtype)
        out.append((rr, dns.rdata.from_text(dns.rdataclass.IN, rdtype, str(rr.rdata))))
    return out


def test_referral_tc_when_in_domain_glue_does_not_fit(catalog) -> None:
    """RFC 9471 §2.1: in-domain glue is required; a referral without it is truncated."""
    _q, wire, msg = ask(catalog, "www.bigdeleg.unit.test.", "A")
    assert_truncated(wire, msg, 512)
    _q, wire, msg = ask(catalog, "www.bigdeleg.unit.test.", "A", edns=1232)
    assert not msg.flags & dns.flags.TC and not msg.flags & dns.flags.AA
    assert len(lines(msg.authority)) == 10 and len(lines(msg.additional)) == 20


def near_limit_zone(last: int):
    """A zone whose ``t.big.test.`` TXT answer is within a few octets of the largest answer a
    DNS message can hold (65535 octets less header, a 255-octet question and an OPT record)."""
    from fastdns.model import RecordSet, Zone

    origin = dns.name.from_text("big.test.")

    def rdata(rdtype, text):
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)

    zone = Zone(origin)
    zone.add(RecordSet(origin, dns.rdatatype.SOA, 60, (rdata("SOA", "ns. h. 1 2 3 4 5"),)))
    zone.add(RecordSet(origin, dns.rdatatype.NS, 60, (rdata("NS", "ns."),)))
    texts = [f'"{i:05d}{"x" * 250}"' for i in range(243)] + ['"' + "y" * last + '"']
    owner = dns.name.from_text("t", origin)
    zone.add(RecordSet(owner, dns.rdatatype.TXT, 60, tuple(rdata("TXT", t) for t in texts)))
    return zone


def test_answer_near_the_size_limit_compiles_to_a_loadable_image() -> None:
    for last in range(110, 135):
        image = compile_zone(near_limit_zone(last))
        # Bodies 65254..65264 octets once compiled but made Catalog raise "zone image: bad
        # template": the compiler's bound left out the response OPT RR.
        big = _core.Catalog([image])
        _q, wire, msg = ask(big, "t.big.test.", "TXT", edns=1232, tcp=True)
        assert len(wire) <= 65535
        assert msg.flags & dns.flags.TC or len(msg.answer[0]) == 244


# -- compression and pointer shifts ------------------------------------------------------------


def uncompressed_size(msg: dns.message.Message, query: bytes) -> int:
    size = 12 + len(msg.question[0].name.to_wire()) + 4
    for section in (msg.answer, msg.authority, msg.additional):
        for rrset in section:
            out = io.BytesIO()
            rrset.to_wire(out, None)  # no compression table: names written in full
            size += len(out.getvalue())
    return size


@pytest.mark.parametrize(
    ("qname", "rdtype"),
    [
        ("mxmany.unit.test.", "MX"),
        ("unit.test.", "NS"),
        ("x.y.wild.unit.test.", "MX"),
        ("chain1.unit.test.", "A"),
        ("host.deleg.unit.test.", "A"),
        ("nothing.unit.test.", "A"),
    ],
)
def test_answers_are_compressed(catalog, qname, rdtype) -> None:
    query, wire, msg = ask(catalog, qname, rdtype, tcp=True)
    assert len(wire) < uncompressed_size(msg, query)


def long_name(suffix: str, total: int) -> str:
    """A name of ``total`` wire octets ending in ``suffix``, with labels of up to 63 octets."""
    room = total - len(dns.name.from_text(suffix).to_wire())
    labels = []
    while room > 0:
        n = min(63, room - 1)
        if room - (n + 1) == 1:  # a one-octet remainder cannot be a label
            n -= 1
        labels.append("L" * n if len(labels) % 2 else "l" * n)
        room -= n + 1
    return ".".join(labels) + "." + suffix


SHIFT_NAMES = [
    "a.wild.unit.test.",
    "Much-Longer-Label.wild.unit.test.",
    "a.b.c.d.e.f.g.h.wild.unit.test.",
    long_name("wild.unit.test.", 200),
    long_name("wild.unit.test.", 255),
]


@pytest.mark.parametrize("qname", SHIFT_NAMES, ids=lambda n: f"{len(n)}")
def test_wildcard_pointer_shift(catalog, qname) -> None:
    """Synthesized answers are compiled against ``*.wild``; every pointer after the question
    moves by the difference in length (docs/ARCHITECTURE.md)."""
    _q, _wire, msg = ask(catalog, qname, "MX", tcp=True)
    assert lines(msg.answer) == parse_lines([f"{qname} 3600 IN MX 10 mail.unit.test."])
    assert sorted(lines(msg.additional)) == sorted(parse_lines(MAIL_ADDRS))
    _q, _wire, msg = ask(catalog, qname, "TXT", edns=1232)
    assert lines(msg.answer) == parse_lines([f'{qname} 3600 IN TXT "wild"'])
    _q, _wire, msg = ask(catalog, qname, "AAAA")
    assert sorted(lines(msg.authority)) == parse_lines([UNIT_SOA])
    assert not msg.answer


@pytest.mark.parametrize(
    "qname",
    [
        "x.wcname.unit.test.",
        long_name("wcname.unit.test.", 120),
        long_name("wcname.unit.test.", 255),
    ],
    ids=lambda n: f"{len(n)}",
)
def test_wildcard_cname_pointer_shift(catalog, qname) -> None:
    _q, _wire, msg = ask(catalog, qname, "A")
    assert lines(msg.answer) == parse_lines([f"{qname} 3600 IN CNAME www.unit.test.", *WWW_A])


@pytest.mark.parametrize(
    "qname",
    ["a.b.c.d.deleg.unit.test.", long_name("deleg.unit.test.", 255)],
    ids=lambda n: f"{len(n)}",
)
def test_referral_below_cut_pointer_shift(catalog, qname) -> None:
    _q, _wire, msg = ask(catalog, qname, "A", tcp=True)
    assert not msg.flags & dns.flags.AA
    assert sorted(lines(msg.authority)) == sorted(parse_lines(DELEG_NS))
    assert sorted(lines(msg.additional)) == sorted(parse_lines(DELEG_GLUE))


@pytest.mark.parametrize(
    "qname",
    ["x.nothing.unit.test.", long_name("nothing.unit.test.", 255), long_name("unit.test.", 255)],
    ids=lambda n: f"{len(n)}",
)
def test_negative_answer_pointer_shift(catalog, qname) -> None:
    _q, _wire, msg = ask(catalog, qname, "A")
    assert msg.rcode() == dns.rcode.NXDOMAIN
    assert lines(msg.authority) == parse_lines([UNIT_SOA])


def test_mixed_case_long_wildcard_query(catalog) -> None:
    qname = long_name("WiLd.UnIt.TeSt.", 240)
    query, wire, msg = ask(catalog, qname, "MX", edns=1232)
    assert msg.answer[0].name.to_text() == qname
    # The exchange is compressed against the question, so it comes back in the query's case.
    expected = parse_lines([f"{qname} 3600 IN MX 10 mail.unit.test."])
    assert [x.lower() for x in lines(msg.answer)] == [x.lower() for x in expected]
    assert len(wire) < uncompressed_size(msg, query)


def test_dropped_queries(catalog) -> None:
    query = make_query("www.unit.test.", "A").to_wire()
    assert catalog.answer(query[:11]) is None
    response = catalog.answer(query)
    assert catalog.answer(response) is None  # QR set: never answer a response
    assert catalog.answer(b"") is None


def test_formerr_echoes_what_it_can(catalog) -> None:
    query = make_query("www.unit.test.", "A").to_wire()
    two_questions = query[:4] + b"\x00\x02" + query[6:]
    msg = decode(catalog.answer(two_questions))
    assert msg.rcode() == dns.rcode.FORMERR and not msg.question
    bad_opt = (
        query[:10] + b"\x00\x01" + query[12:] + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x05"
    )
    msg = decode(catalog.answer(bad_opt))
    assert msg.rcode() == dns.rcode.FORMERR
    assert msg.question[0].name == dns.name.from_text("www.unit.test.")


def test_buffer_types(catalog) -> None:
    query = make_query("www.unit.test.", "A").to_wire()
    expected = catalog.answer(query)
    assert catalog.answer(bytearray(query)) == expected
    assert catalog.answer(memoryview(query)) == expected


def test_unknown_class_refused(catalog) -> None:
    query = dns.message.make_query("www.unit.test.", "A", rdclass=dns.rdataclass.CH)
    msg = decode(catalog.answer(query.to_wire()))
    assert msg.rcode() == dns.rcode.REFUSED


def test_edns_option_echo_free(catalog) -> None:
    """Options in the query (cookie, NSID) are parsed and not echoed (none implemented)."""
    query = dns.message.make_query(
        "www.unit.test.",
        "A",
        use_edns=0,
        payload=1232,
        options=[
            dns.edns.CookieOption(b"\x01" * 8, b""),
            dns.edns.GenericOption(dns.edns.NSID, b""),
        ],
    )
    msg = decode(catalog.answer(query.to_wire()))
    assert msg.rcode() == dns.rcode.NOERROR and msg.opt is not None
    assert not msg.options
