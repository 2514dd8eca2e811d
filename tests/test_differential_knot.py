"""Differential test against Knot DNS: the acceptance test of fastdns's authoritative core.

Knot DNS 3.2.6 (Debian package ``knot``, a required test dependency) and fastdns serve the same
zones (``tests/data/zones/``); every case of ``tests/data/differential_queries.txt`` is asked of
both in a matrix of EDNS {none, 512, 1232, 4096} x {UDP, TCP}, with the query name in a seeded
random 0x20 case. Both servers run with their default largest UDP response, 1232 bytes, so EDNS
4096 also checks that the server caps the client's offer. Raw-packet cases (``RAW_CASES``) cover
EDNS versions, opcodes, header bits, classes, meta types and malformed queries.

Run: ``pytest tests/test_differential_knot.py`` (or ``-m knot``; about 15 s). A failure's test ID
names the case (``qname/qtype/edns=.../udp|tcp`` or ``raw/<name>/udp|tcp``) and the message lists
the differences and shows both responses. Knot's observed behaviour is described in
``docs/knot-behaviour.md``; ``RAW_CASES`` records Knot's outcome for each raw query and asserts it,
so a different Knot version shows up as a changed reference, not as a fastdns bug. Raw queries
that may go unanswered are followed by a well-formed probe on the same socket or connection, so
silence is observed as soon as the probe is answered instead of after a timeout.
``test_comparison_rule_reports_a_changed_response`` checks the comparison itself: Knot's
response with one change must not pass.

Comparison rule
---------------
Always compared, both servers against the query and against each other:

- a response arrives (or, for raw cases, silence where that is the expected outcome), with the
  query's ID;
- the question section, byte for byte against the query's (so the 0x20 case must be echoed);
- the header flags (QR, opcode, AA, TC, RD, RA, Z, AD, CD) and the full RCODE (header + OPT
  extended RCODE);
- the presence of OPT, its version and its flags (DO echoed, RFC 3225; Z bits zero). The
  advertised UDP payload size is not compared.

Then, when neither response has TC set:

- answer and authority sections as multisets of RRs (owner and RDATA names compared
  case-insensitively, TTLs included, order ignored; each RR parsed on its own so that two TTLs
  within one RRset are not merged);
- the additional section by ``_additional_problems``: RRsets both servers include must be equal;
  an address RRset only one server includes is allowed when it is *optional* (see the table);
  in-domain glue of a referral that Knot includes must be present (RFC 9471 §3: TC otherwise);
  every optional address RRset fastdns adds must equal the zone's data.

When either response has TC set, the flags above (so TC itself) must agree, and every RR each
server kept must be in the same section of Knot's full TCP answer: the RFCs let a server choose
what it keeps (RFC 2181 §9), and Knot keeps the whole RRsets that fit before the first one that
does not (so ``totxt700 TXT`` at 512 keeps its CNAME, and an oversize referral keeps the NS RRset
and part of the glue), while a large answer RRset alone leaves the sections empty.

ANY queries (corpus tag ``any``) compare the answer section by RFC 8482 §4: each server may
answer with one RRset, several, or all RRsets at the name, or a single synthesised HINFO; every
RRset fastdns returns must equal Knot's answer to a query for that type. Knot returns one
RRset (the lowest type code) over UDP and TCP alike.

Differences between Knot 3.2.6 and the RFCs, and what fastdns may do instead
----------------------------------------------------------------------------
================================  ==========================  ==================================
situation                         Knot 3.2.6                  allowed for fastdns (why)
================================  ==========================  ==================================
additional A/AAAA for targets of  included for in-zone        either, per RRset (RFC 1034
NS, MX, SRV, SVCB, HTTPS, NAPTR   targets when they fit       §4.3.2 step 6, RFC 2181 §9,
answers; sibling glue in a                                    RFC 9460 §4.1: optional data);
referral                                                      what is sent must be zone data
in-domain glue of a referral      included; TC=1 if it does   the same: required (RFC 9471 §3)
                                  not fit
ANY                               one RRset, lowest type,     one, several or all RRsets of the
                                  UDP and TCP                 name, or one HINFO (RFC 8482 §4)
TC responses                      keeps the RRsets that fit   any RRs of the full answer
                                  before the first that       (RFC 2181 §9); flags must match
                                  does not
CD bit in the query               not copied                  copied or not (RFC 4035 §3.1.6
                                                              binds security-aware servers;
                                                              neither signs these zones)
QDCOUNT = 2                       no response                 FORMERR (RFC 9619 §4, 2024, later
                                                              than Knot 3.2) or no response
OPT owner not the root            accepted as EDNS            the same, or FORMERR (RFC 6891
                                                              §6.1.2: owner MUST be 0)
two OPT records                   FORMERR without OPT         FORMERR, with or without OPT
                                                              (RFC 6891 §6.1.1)
trailing bytes after the          FORMERR                     FORMERR or a normal answer
question                                                      (RFC 1035 is silent)
answer RR inside a query          ignored, normal answer      the same, or FORMERR
NSCOUNT=1 without the record      FORMERR                     FORMERR or no response
label > 63, name > 255, pointer   no response                 no response or FORMERR
or extended label in the                                      (RFC 1035 §2.3.4, §4.1.4; RFC
question, truncated question                                  6891 §5)
class ANY (255) question          answered with IN data, AA   the same, REFUSED or NOTIMP
class CH, NONE, other             REFUSED                     REFUSED or NOTIMP (CH may also
                                                              answer version.bind, RFC 4892)
opcode NOTIFY                     NOTAUTH (no ACL)            NOTAUTH, NOTIMP or REFUSED
opcode UPDATE                     FORMERR (zone section)      FORMERR, NOTIMP, REFUSED, NOTAUTH
AXFR / IXFR                       NOTIMP (AXFR/UDP) or        NOTIMP, REFUSED, NOTAUTH or
                                  NOTAUTH                     FORMERR (no zone transfer yet)
QTYPE 0                           NOTIMP                      NOTIMP, FORMERR or NODATA
QTYPE MAILA, MAILB, OPT, TKEY,    NODATA                      the same, NOTIMP, or FORMERR
TSIG                                                          (OPT/TKEY/TSIG); REFUSED for
                                                              TKEY/TSIG
================================  ==========================  ==================================

Behaviour both must share (Knot already follows the RFC): negative answers carry the SOA with
TTL min(SOA TTL, MINIMUM) (RFC 2308 §5); CNAME to a missing in-zone name is NXDOMAIN (RFC 6604);
CNAME loops end without SERVFAIL; CNAMEs are not followed into another hosted zone; empty
non-terminals are NODATA; RFC 4592 wildcard rules; referrals are not authoritative and DS at a
cut is answered from the parent; names outside every zone get REFUSED with AA clear; BADVERS
(RFC 6891 §6.1.3) carries OPT version 0 and the question; NOTIMP and REFUSED echo the question;
QR=1 queries are never answered; positive answers carry no NS RRset in the authority section.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from support.client import check_decoders_agree, exchange_raw, recv_frame, tcp_connect
from support.knot import KnotHandle, running_knot
from support.server import free_port, running_fastdns

pytestmark = pytest.mark.knot

DATA = Path(__file__).resolve().parent / "data"
ZONE_DIR = DATA / "zones"
CORPUS = DATA / "differential_queries.txt"
EDNS_SIZES = (None, 512, 1232, 4096)
TRANSPORTS = ("udp", "tcp")
TIMEOUT = 3.0
SILENCE_GRACE = 0.05  # how long a late response may take once the probe after it was answered
ADDRESS_TYPES = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA})


# -- the corpus


@dataclass(frozen=True)
class Case:
    """One line of the query corpus: ``qname qtype [tag ...]``."""

    qname: str
    qtype: str
    tags: frozenset[str]
    line: int


def load_corpus(path: Path = CORPUS) -> list[Case]:
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        qname, qtype, *tags = fields
        dns.rdatatype.from_text(qtype)  # a typo fails at collection, not as 8 odd test failures
        cases.append(Case(qname, qtype, frozenset(tags), number))
    return cases


CASES = load_corpus()


def mixed_case(qname: str, seed: str) -> str:
    """``qname`` with each letter's case chosen by a RNG seeded with ``seed`` (0x20 encoding)."""
    rng = random.Random(seed)
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in qname)


def matrix() -> Iterator[object]:
    for case in CASES:
        for edns in EDNS_SIZES:
            for transport in TRANSPORTS:
                edns_id = "none" if edns is None else str(edns)
                case_id = f"{case.qname}/{case.qtype}/edns={edns_id}/{transport}"
                yield pytest.param(case, edns, transport, id=case_id)


# -- servers


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int


@pytest.fixture(scope="module")
def knot() -> Iterator[KnotHandle]:
    with running_knot(ZONE_DIR, port=free_port()) as handle:
        yield handle


@pytest.fixture(scope="module")
def servers(knot: KnotHandle) -> Iterator[tuple[Server, Server]]:
    """(Knot, fastdns), both serving the corpus zones with default settings."""
    with running_fastdns(ZONE_DIR) as fastdns:
        yield Server("knot", knot.host, knot.port), Server("fastdns", fastdns.host, fastdns.port)


# -- reading responses


def question_bytes(wire: bytes) -> bytes | None:
    """The raw question section of a message with QDCOUNT 1 (None if absent or unreadable)."""
    if len(wire) < 12 or struct.unpack_from("!H", wire, 4)[0] != 1:
        return None
    pos = 12
    while pos < len(wire) and not wire[pos] & 0xC0:
        if wire[pos] == 0:
            end = pos + 5
            return wire[12:end] if end <= len(wire) else None
        pos += 1 + wire[pos]
    return None


RR = tuple[str, int, int, int, bytes]  # owner, type, class, TTL, canonical RDATA
RDATA_TEXT: dict[tuple[int, bytes], str] = {}  # canonical RDATA -> presentation, for messages


def rr_key(rrset: dns.rrset.RRset, rdata) -> RR:
    """One RR, comparable: names lower-cased (the owner and, for the types of RFC 4034 §6.2 such
    as NS, CNAME, MX, SOA, SRV, PTR, the names in the RDATA)."""
    digest = rdata.to_digestable()
    RDATA_TEXT.setdefault((rrset.rdtype, digest), rdata.to_text())
    return (rrset.name.canonicalize().to_text(), rrset.rdtype, rrset.rdclass, rrset.ttl, digest)


def rrs_text(rrs: Counter[RR]) -> list[str]:
    return sorted(
        f"{owner} {ttl} {dns.rdataclass.to_text(rdclass)} {dns.rdatatype.to_text(rdtype)} "
        f"{RDATA_TEXT.get((rdtype, rdata), rdata.hex())}"
        for (owner, rdtype, rdclass, ttl, rdata) in rrs.elements()
    )


def by_rrset(rrs: Counter[RR]) -> dict[tuple[str, int], Counter[RR]]:
    grouped: dict[tuple[str, int], Counter[RR]] = {}
    for rr, count in rrs.items():
        grouped.setdefault((rr[0], rr[1]), Counter())[rr] += count
    return grouped


@dataclass
class Response:
    """A response, parsed with one RR per RRset so that every RR keeps its own TTL."""

    server: str
    wire: bytes
    message: dns.message.Message
    text: str

    @classmethod
    def parse(cls, server: str, wire: bytes) -> Response:
        opcode = dns.opcode.from_flags(struct.unpack_from("!H", wire, 2)[0]) if len(wire) > 3 else 0
        if server == "fastdns" and opcode != dns.opcode.UPDATE:
            check_decoders_agree(wire)  # the project rule: dnspython and dnslib must agree
        try:
            message = dns.message.from_wire(wire, one_rr_per_rrset=True)
            text = dns.message.from_wire(wire).to_text()
        except dns.exception.DNSException as exc:
            # e.g. an UPDATE response whose zone section is not SOA: keep the header only
            qid, flags = struct.unpack_from("!HH", wire)
            message = dns.message.Message(id=qid)
            message.flags = flags
            text = f"(dnspython cannot decode it: {exc}) header {wire[:12].hex()} {wire.hex()}"
        return cls(server, wire, message, text)

    @property
    def tc(self) -> bool:
        return bool(self.message.flags & dns.flags.TC)

    @property
    def rcode_text(self) -> str:
        return dns.rcode.to_text(self.message.rcode())

    def section(self, name: str) -> Counter[RR]:
        return Counter(rr_key(rrset, rd) for rrset in getattr(self.message, name) for rd in rrset)


# -- sending


def make_query_wire(qname: str, qtype: str, edns: int | None, *, qid: int) -> bytes:
    query = dns.message.make_query(
        qname, qtype, use_edns=0 if edns is not None else False, payload=edns or 1232
    )
    query.flags = 0  # RD clear, as a resolver asks an authoritative server
    query.id = qid
    return query.to_wire()


def ask(server: Server, wire: bytes, transport: str) -> Response | None:
    response = exchange_raw(server.host, server.port, wire, tcp=transport == "tcp", timeout=TIMEOUT)
    return None if response is None else Response.parse(server.name, response)


@cache
def knot_full_answer(knot: Server, qname: str, qtype: str) -> Response:
    """Knot's answer over TCP (never truncated): the oracle for the TC and ANY rules."""
    response = ask(knot, make_query_wire(qname, qtype, 1232, qid=0x2121), "tcp")
    assert response is not None, f"Knot did not answer {qname} {qtype} over TCP"
    return response


@cache
def zone_rrsets() -> dict[tuple[str, int], Counter[RR]]:
    """Every RRset of the corpus zones: the oracle for additional records only fastdns sends."""
    rrsets: dict[tuple[str, int], Counter[RR]] = {}
    for path in sorted(ZONE_DIR.glob("*.zone")):
        zone = dns.zone.from_file(str(path), origin=path.name[: -len(".zone")], relativize=False)
        for name, rdataset in zone.iterate_rdatasets():
            rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
            rrset.update(rdataset)
            key = (name.canonicalize().to_text(), rdataset.rdtype)
            rrsets[key] = Counter(rr_key(rrset, rd) for rd in rrset)
    return rrsets


# -- the comparison

TARGET_FIELDS = {
    dns.rdatatype.NS: "target",
    dns.rdatatype.MX: "exchange",
    dns.rdatatype.SRV: "target",
    dns.rdatatype.SVCB: "target",
    dns.rdatatype.HTTPS: "target",
    dns.rdatatype.NAPTR: "replacement",
}


def named_targets(message: dns.message.Message) -> set[str]:
    """Names that answer and authority RRs point at: their addresses are optional additional
    data (RFC 1034 §4.3.2 step 6, RFC 9460 §4.1)."""
    targets = set()
    for rrset in [*message.answer, *message.authority]:
        attribute = TARGET_FIELDS.get(rrset.rdtype)
        for rdata in rrset if attribute else ():
            target = getattr(rdata, attribute)
            if target == dns.name.root and attribute == "target":
                target = rrset.name  # SVCB/HTTPS ServiceMode "." means the owner (RFC 9460 §2.5)
            targets.add(target.canonicalize().to_text())
    return targets


def delegation_point(message: dns.message.Message) -> dns.name.Name | None:
    """The owner of an NS RRset in the authority section (a referral), else None."""
    for rrset in message.authority:
        if rrset.rdtype == dns.rdatatype.NS:
            return rrset.name
    return None


def header_problems(query: bytes, knot: Response, fastdns: Response) -> list[str]:
    problems = []
    qid = struct.unpack_from("!H", query)[0]
    if fastdns.message.id != qid:
        problems.append(f"fastdns answered with ID {fastdns.message.id}, the query had {qid}")
    if knot.wire[4:6] != fastdns.wire[4:6]:
        problems.append(f"QDCOUNT: knot {knot.wire[4:6].hex()}, fastdns {fastdns.wire[4:6].hex()}")
    query_question = question_bytes(query)
    for side in (knot, fastdns):
        echoed = question_bytes(side.wire)
        if echoed is not None and echoed != query_question:
            problems.append(
                f"{side.server}'s question {echoed!r} is not the query's {query_question!r}"
            )
    if knot.message.flags & ~0xF != fastdns.message.flags & ~0xF:
        problems.append(
            f"flags: knot {dns.flags.to_text(knot.message.flags)!r} opcode "
            f"{dns.opcode.from_flags(knot.message.flags)}, fastdns "
            f"{dns.flags.to_text(fastdns.message.flags)!r} opcode "
            f"{dns.opcode.from_flags(fastdns.message.flags)}"
        )
    if knot.message.rcode() != fastdns.message.rcode():
        problems.append(f"rcode: knot {knot.rcode_text}, fastdns {fastdns.rcode_text}")
    if knot.message.edns != fastdns.message.edns:
        problems.append(
            f"EDNS version (-1: no OPT): knot {knot.message.edns}, fastdns {fastdns.message.edns}"
        )
    elif knot.message.ednsflags != fastdns.message.ednsflags:
        problems.append(
            f"OPT flags and extended rcode: knot {knot.message.ednsflags:#010x}, "
            f"fastdns {fastdns.message.ednsflags:#010x}"
        )
    return problems


def multiset_problems(name: str, knot: Counter[RR], fastdns: Counter[RR]) -> list[str]:
    if knot == fastdns:
        return []
    only_knot, only_fastdns = rrs_text(knot - fastdns), rrs_text(fastdns - knot)
    return [f"{name}: only in knot {only_knot}, only in fastdns {only_fastdns}"]


def additional_problems(knot: Response, fastdns: Response) -> list[str]:
    problems = []
    ours, theirs = by_rrset(fastdns.section("additional")), by_rrset(knot.section("additional"))
    optional_theirs, optional_ours = named_targets(knot.message), named_targets(fastdns.message)
    cut = delegation_point(knot.message)
    for key in sorted(set(ours) | set(theirs)):
        owner, rdtype = key
        what = f"{owner} {dns.rdatatype.to_text(rdtype)}"
        if key in ours and key in theirs:
            problems += multiset_problems(f"additional {what}", theirs[key], ours[key])
        elif key in theirs:
            if cut is not None and dns.name.from_text(owner).is_subdomain(cut):
                problems.append(f"additional: in-domain glue {what} missing (RFC 9471 §3)")
            elif rdtype not in ADDRESS_TYPES or owner not in optional_theirs:
                problems.append(f"additional: {what} missing; it is not optional address data")
        elif rdtype not in ADDRESS_TYPES or owner not in optional_ours:
            problems.append(
                f"additional: fastdns adds {what}, not an address of a name its answer or "
                "authority section points at"
            )
        elif ours[key] != zone_rrsets().get(key):
            problems.append(f"additional: fastdns's {what} {rrs_text(ours[key])} is not zone data")
    return problems


def truncated_problems(knot_server: Server, question, *sides: Response) -> list[str]:
    """Every RR a truncated response kept must be in the same section of the full answer."""
    if question is None:
        return []
    full = knot_full_answer(knot_server, *question)
    problems = []
    for side in sides:
        for section in ("answer", "authority", "additional"):
            extra = side.section(section) - full.section(section)
            if extra:
                problems.append(
                    f"{side.server}'s truncated {section} section has RRs that are not in "
                    f"Knot's full answer: {rrs_text(extra)}"
                )
    return problems


def any_problems(knot_server: Server, qname: str, knot: Response, fastdns: Response) -> list[str]:
    """RFC 8482 §4: one, several or all RRsets of the name, or one synthesised HINFO."""
    ours = fastdns.section("answer")
    if ours == knot.section("answer"):
        return []
    if not ours or not knot.section("answer"):
        return multiset_problems("ANY answer", knot.section("answer"), ours)
    owner = dns.name.from_text(qname).canonicalize().to_text()
    rrsets = by_rrset(ours)
    if {key[0] for key in rrsets} != {owner}:
        return [f"ANY: fastdns's answer has owners other than {owner}: {rrs_text(ours)}"]
    if set(rrsets) == {(owner, dns.rdatatype.HINFO)} and sum(ours.values()) == 1:
        return []  # RFC 8482 §4.2: a synthesised HINFO
    problems = []
    for (_owner, rdtype), rrs in rrsets.items():
        type_text = dns.rdatatype.to_text(rdtype)
        reference = by_rrset(knot_full_answer(knot_server, owner, type_text).section("answer"))
        if rrs != reference.get((owner, rdtype)):
            problems.append(
                f"ANY: fastdns's {type_text} RRset {rrs_text(rrs)} is not Knot's answer for "
                f"{type_text} {rrs_text(reference.get((owner, rdtype), Counter()))}"
            )
    return problems


def response_question(response: Response) -> tuple[str, str] | None:
    if not response.message.question:
        return None
    rrset = response.message.question[0]
    return rrset.name.canonicalize().to_text(), dns.rdatatype.to_text(rrset.rdtype)


def compare(
    knot_server: Server, query: bytes, knot: Response, fastdns: Response, *, any_rule: bool = False
) -> list[str]:
    """Problems with ``fastdns``'s response given Knot's; empty when they agree."""
    problems = header_problems(query, knot, fastdns)
    if knot.tc or fastdns.tc:
        return problems + truncated_problems(knot_server, response_question(knot), knot, fastdns)
    if any_rule and knot.message.question:
        qname = knot.message.question[0].name.to_text()
        problems += any_problems(knot_server, qname, knot, fastdns)
    else:
        problems += multiset_problems("answer", knot.section("answer"), fastdns.section("answer"))
    problems += multiset_problems(
        "authority", knot.section("authority"), fastdns.section("authority")
    )
    return problems + additional_problems(knot, fastdns)


def report(title: str, problems: list[str], knot: Response | None, fastdns: Response | None) -> str:
    lines = [title, *(f"  - {p}" for p in problems)]
    for name, side in (("Knot", knot), ("fastdns", fastdns)):
        lines += [f"--- {name} ---", "(no response)" if side is None else side.text]
    return "\n".join(lines)


# -- the matrix


@pytest.mark.parametrize(("case", "edns", "transport"), list(matrix()))
def test_query_matches_knot(
    servers: tuple[Server, Server], case: Case, edns: int | None, transport: str
) -> None:
    knot_server, fastdns_server = servers
    seed = f"{case.qname}|{case.qtype}|{edns}|{transport}"
    qname = mixed_case(case.qname, seed)
    query = make_query_wire(qname, case.qtype, edns, qid=random.Random(seed).randrange(0x10000))
    title = f"{qname} {case.qtype} edns={edns} over {transport.upper()} (corpus line {case.line})"
    knot = ask(knot_server, query, transport)
    assert knot is not None, f"Knot did not answer {title}"
    fastdns = ask(fastdns_server, query, transport)
    assert fastdns is not None, report(f"{title}: fastdns did not answer", [], knot, None)
    problems = compare(knot_server, query, knot, fastdns, any_rule="any" in case.tags)
    assert not problems, report(title, problems, knot, fastdns)


# -- raw packets


def header(qid: int, *, flags: int = 0, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name: str = "www.example.com.", rdtype: int = 1, rdclass: int = 1) -> bytes:
    return dns.name.from_text(name).to_wire() + struct.pack("!HH", rdtype, rdclass)


def opt(*, version=0, payload=1232, flags=0, owner=b"\0", options=b"") -> bytes:
    fixed = struct.pack("!HHBBHH", 41, payload, 0, version, flags, len(options))
    return owner + fixed + options


def option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def opcode(value: int) -> int:
    return value << 11


SILENT = "silent"  # no response (UDP); no response or the connection closed (TCP)
KNOT = "knot"  # equal to Knot's response by the comparison rule
LONG = b"".join(b"\x3f" + b"a" * 63 for _ in range(3))  # 192 octets of labels
WWW_A = question()


@dataclass(frozen=True)
class RawCase:
    """A hand-built query.

    ``knot``: Knot 3.2.6's outcome (an rcode name or ``silent``), asserted so that a change of
    the reference shows up as such. ``allowed``: fastdns's acceptable outcomes: ``knot`` (equal
    to Knot's response by the comparison rule), ``silent``, or an rcode name (the response must
    then echo the ID, set QR, carry no question or the query's, and carry OPT when the query did).
    """

    name: str
    build: Callable[[int], bytes]
    knot: str
    allowed: tuple[str, ...] = (KNOT,)
    why: str = ""
    knot_tcp: str | None = None  # Knot's outcome over TCP when it differs from UDP's
    transports: tuple[str, ...] = TRANSPORTS
    opt_optional: bool = False  # the response may leave OPT out although the query had one


RAW_CASES = [
    # EDNS (RFC 6891)
    RawCase("edns-version-1", lambda i: header(i, ar=1) + WWW_A + opt(version=1), "BADVERS",
            why="RFC 6891 §6.1.3: BADVERS, OPT version 0"),
    RawCase("edns-version-1-nxdomain",
            lambda i: header(i, ar=1) + question("nx.example.com.") + opt(version=1), "BADVERS"),
    RawCase("edns-version-1-outside-zones",
            lambda i: header(i, ar=1) + question("example.net.") + opt(version=1), "BADVERS",
            why="the version is checked before the zone lookup"),
    RawCase("edns-version-255", lambda i: header(i, ar=1) + WWW_A + opt(version=255), "BADVERS"),
    RawCase("edns-do-bit", lambda i: header(i, ar=1) + WWW_A + opt(flags=0x8000), "NOERROR",
            why="RFC 3225 §3: DO copied into the response"),
    RawCase("edns-z-flags", lambda i: header(i, ar=1) + WWW_A + opt(flags=0x0001), "NOERROR",
            why="RFC 6891 §6.1.4: Z ignored, sent as zero"),
    RawCase("edns-payload-100",
            lambda i: header(i, ar=1) + question("txt700.example.com.", 16) + opt(payload=100),
            "NOERROR", why="RFC 6891 §6.2.5: below 512 counts as 512, so TC"),
    RawCase("edns-unknown-option",
            lambda i: header(i, ar=1) + WWW_A + opt(options=option(65001, b"ab")), "NOERROR",
            why="RFC 6891 §6.1.2: unknown options are ignored"),
    RawCase("edns-cookie",
            lambda i: header(i, ar=1) + WWW_A + opt(options=option(10, b"abcdefgh")), "NOERROR",
            why="RFC 7873 §5.2: a server without cookies ignores the option"),
    RawCase("edns-nsid-request", lambda i: header(i, ar=1) + WWW_A + opt(options=option(3, b"")),
            "NOERROR", why="RFC 5001: NSID is optional; neither server sends one"),
    RawCase("edns-two-opt", lambda i: header(i, ar=2) + WWW_A + opt() + opt(), "FORMERR",
            allowed=(KNOT, "FORMERR"), opt_optional=True, why="RFC 6891 §6.1.1"),
    RawCase("edns-opt-owner-not-root",
            lambda i: header(i, ar=1) + WWW_A + opt(owner=question()[:-4]), "NOERROR",
            allowed=(KNOT, "FORMERR"), opt_optional=True,
            why="RFC 6891 §6.1.2: the owner MUST be the root"),
    # opcodes (RFC 1035 §4.1.1: NOTIMP)
    RawCase("opcode-1-iquery", lambda i: header(i, flags=opcode(1)) + WWW_A, "NOTIMP",
            why="RFC 3425"),
    RawCase("opcode-2-status", lambda i: header(i, flags=opcode(2)) + WWW_A, "NOTIMP"),
    RawCase("opcode-3", lambda i: header(i, flags=opcode(3)) + WWW_A, "NOTIMP"),
    RawCase("opcode-3-edns", lambda i: header(i, flags=opcode(3), ar=1) + WWW_A + opt(), "NOTIMP"),
    RawCase("opcode-6", lambda i: header(i, flags=opcode(6)) + WWW_A, "NOTIMP"),
    RawCase("opcode-15", lambda i: header(i, flags=opcode(15)) + WWW_A, "NOTIMP"),
    RawCase("opcode-4-notify",
            lambda i: header(i, flags=opcode(4)) + question("example.com.", 6), "NOTAUTH",
            allowed=(KNOT, "NOTAUTH", "NOTIMP", "REFUSED"), why="RFC 1996; no primary configured"),
    RawCase("opcode-5-update", lambda i: header(i, flags=opcode(5)) + WWW_A, "FORMERR",
            allowed=(KNOT, "FORMERR", "NOTIMP", "REFUSED", "NOTAUTH"), why="RFC 2136; no updates"),
    # question count
    RawCase("qdcount-0", lambda i: header(i, qd=0), "FORMERR",
            why="RFC 7873 §5.4: QDCOUNT 0 only with a COOKIE"),
    RawCase("qdcount-0-edns", lambda i: header(i, qd=0, ar=1) + opt(), "FORMERR"),
    RawCase("qdcount-2", lambda i: header(i, qd=2) + WWW_A + question("example.com.", 6), SILENT,
            allowed=(SILENT, "FORMERR"), why="RFC 9619 §4 asks for FORMERR; Knot 3.2 drops"),
    RawCase("qdcount-2-one-present", lambda i: header(i, qd=2) + WWW_A, SILENT,
            allowed=(SILENT, "FORMERR")),
    # header bits of the query
    RawCase("qr-set", lambda i: header(i, flags=0x8000) + WWW_A, SILENT, allowed=(SILENT,),
            why="a response is never answered"),
    RawCase("rd-set", lambda i: header(i, flags=0x0100) + WWW_A, "NOERROR",
            why="RFC 1035 §4.1.1: RD copied, RA clear"),
    RawCase("tc-set", lambda i: header(i, flags=0x0200) + WWW_A, "NOERROR"),
    RawCase("aa-set", lambda i: header(i, flags=0x0400) + WWW_A, "NOERROR"),
    RawCase("z-set", lambda i: header(i, flags=0x0040) + WWW_A, "NOERROR",
            why="RFC 1035 §4.1.1: Z zero in responses"),
    RawCase("ad-set", lambda i: header(i, flags=0x0020) + WWW_A, "NOERROR", why="RFC 6840 §5.7"),
    RawCase("cd-set", lambda i: header(i, flags=0x0010) + WWW_A, "NOERROR",
            allowed=(KNOT, "NOERROR"), why="RFC 4035 §3.1.6: CD copy optional here"),
    RawCase("rcode-in-query", lambda i: header(i, flags=0x0003) + WWW_A, "NOERROR"),
    # sections and framing
    RawCase("answer-in-query",
            lambda i: header(i, an=1) + WWW_A + b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4\1\2\3\4",
            "NOERROR", allowed=(KNOT, "FORMERR")),
    RawCase("nscount-without-record", lambda i: header(i, ns=1) + WWW_A, "FORMERR",
            allowed=(KNOT, "FORMERR", SILENT)),
    RawCase("trailing-4-bytes", lambda i: header(i) + WWW_A + b"\xde\xad\xbe\xef", "FORMERR",
            allowed=(KNOT, "FORMERR", "NOERROR"), why="RFC 1035 is silent on trailing data"),
    RawCase("trailing-1-byte", lambda i: header(i) + WWW_A + b"\0", "FORMERR",
            allowed=(KNOT, "FORMERR", "NOERROR")),
    RawCase("truncated-question", lambda i: header(i) + WWW_A[:-2], SILENT,
            allowed=(SILENT, "FORMERR")),
    RawCase("short-header", lambda i: header(i)[:10], SILENT, allowed=(SILENT,)),
    RawCase("empty-datagram", lambda i: b"", SILENT, allowed=(SILENT,), transports=("udp",)),
    # names in the question
    RawCase("label-64", lambda i: header(i) + b"\x40" + b"a" * 64 + question("example.com."),
            SILENT, allowed=(SILENT, "FORMERR"), why="RFC 1035 §2.3.4: labels <= 63 octets"),
    RawCase("name-256",
            lambda i: header(i) + LONG + b"\x3f" + b"a" * 63 + question("example.com."), SILENT,
            allowed=(SILENT, "FORMERR"), why="RFC 1035 §2.3.4: names <= 255 octets"),
    RawCase("name-255",
            lambda i: header(i) + LONG + b"\x31" + b"a" * 49 + question("example.com."),
            "NXDOMAIN", why="the longest legal name"),
    RawCase("pointer-to-header", lambda i: header(i) + b"\x03www\xc0\x00\0\1\0\1", SILENT,
            allowed=(SILENT, "FORMERR")),
    RawCase("pointer-forward",
            lambda i: header(i) + b"\x03www\xc0\x16\0\1\0\1" + question("example.com.")[:-4],
            SILENT, allowed=(SILENT, "FORMERR"),
            why="RFC 1035 §4.1.4: a pointer refers to a prior occurrence"),
    RawCase("extended-label-type", lambda i: header(i) + b"\x41\x00" + question("example.com."),
            SILENT, allowed=(SILENT, "FORMERR"), why="RFC 6891 §5: no extended label types"),
    # classes
    RawCase("class-ch", lambda i: header(i) + question(rdclass=3), "REFUSED",
            allowed=(KNOT, "NOTIMP")),
    RawCase("class-ch-version-bind", lambda i: header(i) + question("version.bind.", 16, 3),
            "REFUSED", allowed=(KNOT, "NOTIMP", "NOERROR"), why="RFC 4892: optional"),
    RawCase("class-none", lambda i: header(i) + question(rdclass=254), "REFUSED",
            allowed=(KNOT, "NOTIMP")),
    RawCase("class-42", lambda i: header(i) + question(rdclass=42), "REFUSED",
            allowed=(KNOT, "NOTIMP")),
    RawCase("class-any", lambda i: header(i) + question(rdclass=255), "NOERROR",
            allowed=(KNOT, "REFUSED", "NOTIMP")),
    # meta and special types
    RawCase("qtype-axfr", lambda i: header(i) + question("example.com.", 252), "NOTIMP",
            knot_tcp="NOTAUTH", allowed=(KNOT, "NOTIMP", "REFUSED", "NOTAUTH", "FORMERR"),
            why="RFC 5936; no zone transfers"),
    RawCase("qtype-ixfr", lambda i: header(i) + question("example.com.", 251), "NOTAUTH",
            allowed=(KNOT, "NOTIMP", "REFUSED", "NOTAUTH", "FORMERR")),
    RawCase("qtype-0", lambda i: header(i) + question(rdtype=0), "NOTIMP",
            allowed=(KNOT, "FORMERR", "NOERROR")),
    RawCase("qtype-maila", lambda i: header(i) + question("example.com.", 254), "NOERROR",
            allowed=(KNOT, "NOTIMP")),
    RawCase("qtype-mailb", lambda i: header(i) + question("example.com.", 253), "NOERROR",
            allowed=(KNOT, "NOTIMP")),
    RawCase("qtype-opt", lambda i: header(i) + question("example.com.", 41), "NOERROR",
            allowed=(KNOT, "NOTIMP", "FORMERR")),
    RawCase("qtype-tkey", lambda i: header(i) + question(rdtype=249), "NOERROR",
            allowed=(KNOT, "NOTIMP", "FORMERR", "REFUSED")),
    RawCase("qtype-tsig", lambda i: header(i) + question(rdtype=250), "NOERROR",
            allowed=(KNOT, "NOTIMP", "FORMERR", "REFUSED")),
]  # fmt: skip


def raw_matrix() -> Iterator[object]:
    for case in RAW_CASES:
        for transport in case.transports:
            yield pytest.param(case, transport, id=f"raw/{case.name}/{transport}")


def is_probe_answer(wire: bytes, probe: bytes) -> bool:
    return wire[:2] == probe[:2] and question_bytes(wire) == question_bytes(probe)


def exchange_or_silence(server: Server, wire: bytes, transport: str) -> tuple[bytes | None, str]:
    """Send ``wire``, then a well-formed probe query on the same socket or connection.

    Returns (the response to ``wire`` or None, how the wait ended: "" for a response, "probe",
    "closed" or "timeout"). The probe makes silence quick to observe: once the probe is
    answered, a response to ``wire`` would have come first or within ``SILENCE_GRACE``.
    """
    probe_id = struct.unpack_from("!H", wire)[0] ^ 0x5A5A if len(wire) >= 2 else 0x5A5A
    probe = make_query_wire("example.com.", "SOA", None, qid=probe_id)
    deadline = time.monotonic() + TIMEOUT
    if transport == "tcp":
        with tcp_connect(server.host, server.port, timeout=TIMEOUT) as sock:
            try:
                sock.sendall(b"".join(struct.pack("!H", len(m)) + m for m in (wire, probe)))
                frame = recv_frame(sock, deadline=deadline)
                if frame is None:
                    return None, "closed"
                if not is_probe_answer(frame, probe):
                    return frame, ""
            except TimeoutError:
                return None, "timeout"
            except ConnectionError:  # reset: closed with our probe unread
                return None, "closed"
            try:
                late = recv_frame(sock, deadline=time.monotonic() + SILENCE_GRACE)
            except (TimeoutError, ConnectionError):
                late = None
            return late, "" if late else "probe"
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((server.host, server.port))
        sock.send(wire)
        sock.send(probe)
        ended = "timeout"
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                return None, ended
            if not is_probe_answer(data, probe):
                return data, ""
            ended, deadline = "probe", time.monotonic() + SILENCE_GRACE


def query_has_opt(query: bytes) -> bool:
    try:
        return dns.message.from_wire(query, ignore_trailing=True).edns >= 0
    except dns.exception.DNSException:
        return False


def alternative_problems(case: RawCase, query: bytes, fastdns: Response) -> list[str]:
    """Checks for a response whose outcome is allowed but differs from Knot's."""
    problems = []
    if len(query) >= 2 and fastdns.message.id != struct.unpack_from("!H", query)[0]:
        problems.append("the response does not carry the query's ID")
    if not fastdns.message.flags & dns.flags.QR:
        problems.append("QR is not set")
    echoed = question_bytes(fastdns.wire)
    if echoed is not None and echoed != question_bytes(query):
        problems.append(f"question {echoed!r} is not the query's {question_bytes(query)!r}")
    if query_has_opt(query) and fastdns.message.edns < 0 and not case.opt_optional:
        problems.append("the query had OPT, the response has none (RFC 6891 §7)")
    return problems


@pytest.mark.parametrize(("case", "transport"), list(raw_matrix()))
def test_raw_query_matches_knot(
    servers: tuple[Server, Server], case: RawCase, transport: str
) -> None:
    knot_server, fastdns_server = servers
    query = case.build(random.Random(case.name).randrange(0x10000))
    knot_wire, knot_end = exchange_or_silence(knot_server, query, transport)
    fastdns_wire, fastdns_end = exchange_or_silence(fastdns_server, query, transport)
    knot = None if knot_wire is None else Response.parse("knot", knot_wire)
    fastdns = None if fastdns_wire is None else Response.parse("fastdns", fastdns_wire)
    title = f"raw query {case.name} over {transport.upper()}" + (
        f" ({case.why})" if case.why else ""
    )

    knot_outcome = SILENT if knot is None else knot.rcode_text
    recorded = case.knot_tcp if transport == "tcp" and case.knot_tcp else case.knot
    assert knot_outcome == recorded, report(
        f"{title}: Knot's outcome is {knot_outcome} ({knot_end}), the recorded one {recorded}",
        [],
        knot,
        fastdns,
    )
    assert fastdns_end != "timeout", f"{title}: fastdns answered neither the query nor a probe"
    outcome = SILENT if fastdns is None else fastdns.rcode_text
    if KNOT in case.allowed:
        if knot is None and fastdns is None:
            return
        if knot is not None and fastdns is not None:
            problems = compare(knot_server, query, knot, fastdns)
            if not problems or outcome not in case.allowed:
                assert not problems, report(title, problems, knot, fastdns)
                return
    assert outcome in case.allowed, report(
        f"{title}: fastdns's outcome {outcome} is not one of {case.allowed}", [], knot, fastdns
    )
    if fastdns is not None:
        problems = alternative_problems(case, query, fastdns)
        assert not problems, report(title, problems, knot, fastdns)


# -- the reference itself


def test_knot_loads_the_corpus_cleanly(knot: KnotHandle) -> None:
    """Knot serves every corpus zone and its semantic checks find nothing to warn about."""
    complaints = [
        line for line in knot.log().splitlines() if " warning: [" in line or " error: [" in line
    ]
    assert set(knot.zones) == {p.name[: -len(".zone")] for p in ZONE_DIR.glob("*.zone")}
    assert not complaints, "\n".join(complaints)


def _set_flags(message: dns.message.Message, flags: int) -> dns.message.Message:
    message.flags = flags
    return message


def _bump_first_ttl(message: dns.message.Message) -> dns.message.Message:
    message.answer[0].ttl += 1
    return message


def _add_txt_additional(message: dns.message.Message) -> dns.message.Message:
    message.additional.append(dns.rrset.from_text("www.example.com.", 600, "IN", "TXT", '"x"'))
    return message


def _drop_glue(message: dns.message.Message) -> dns.message.Message:
    message.additional = [r for r in message.additional if r.rdtype != dns.rdatatype.A]
    return message


def _drop_opt(message: dns.message.Message) -> dns.message.Message:
    message.use_edns(False)
    return message


def _lower_question(message: dns.message.Message) -> dns.message.Message:
    message.question[0].name = message.question[0].name.canonicalize()
    return message


def _any_foreign_rrset(message: dns.message.Message) -> dns.message.Message:
    message.answer.append(dns.rrset.from_text(message.question[0].name, 60, "IN", "TXT", '"x"'))
    return message


# (query, a change to Knot's response that the comparison rule must report)
MUTATIONS = {
    "question-case": ("WwW.ExAmPlE.CoM.", "A", 1232, _lower_question, False),
    "aa-cleared": ("www.example.com.", "A", 1232, lambda m: _set_flags(m, dns.flags.QR), False),
    "answer-ttl": ("www.example.com.", "A", None, _bump_first_ttl, False),
    "extra-additional": ("www.example.com.", "A", None, _add_txt_additional, False),
    "missing-glue": ("host.deleg.example.com.", "A", None, _drop_glue, False),
    "missing-opt": ("www.example.com.", "A", 1232, _drop_opt, False),
    "any-wrong-rrset": ("www.example.com.", "ANY", None, _any_foreign_rrset, True),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_comparison_rule_reports_a_changed_response(knot: KnotHandle, mutation: str) -> None:
    """The comparison rule itself: Knot's response, changed in one way, must not pass for
    fastdns's (guards the test against comparing too little)."""
    qname, qtype, edns, change, any_rule = MUTATIONS[mutation]
    knot_server = Server("knot", knot.host, knot.port)
    query = make_query_wire(qname, qtype, edns, qid=4321)
    original = ask(knot_server, query, "udp")
    assert original is not None
    assert not compare(knot_server, query, original, original, any_rule=any_rule)
    changed = change(dns.message.from_wire(original.wire))
    mutated = Response.parse("mutated", changed.to_wire())
    assert compare(knot_server, query, original, mutated, any_rule=any_rule), mutation
