"""Incoming zone transfers read natively (fastdns.xfr.inbound, ``read_transfer_message``).

The reader is checked against dnspython on compressed messages and on damaged ones (it must
raise TransferFormError, never crash); the client against a scripted primary over real TCP
that answers with AXFR, IXFR (RFC 1995 §4: difference sequences, the SOA alone, AXFR form),
split over messages and signed with TSIG as RFC 8945 §5.3.1 allows (or not as it requires).
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections.abc import Callable

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import pytest
from support.xfr import KEY256, KEY512

from fastdns._zcompile import TransferFormError, packed_entry, read_transfer_message
from fastdns.packedzone import unpack_records
from fastdns.xfr.inbound import TransferError, receive_transfer, set_key

ORIGIN = dns.name.from_text("in.test.")


def soa(serial: int) -> dns.rrset.RRset:
    return rrset("@", "SOA", f"ns1 hostmaster {serial} 60 10 600 30")


def rrset(name: str, rtype: str, *values: str, ttl: int = 60) -> dns.rrset.RRset:
    """A record set whose relative names (owner, names in values) are under ORIGIN."""
    rdatas = [
        dns.rdata.from_text("IN", rtype, value, origin=ORIGIN, relativize=False) for value in values
    ]
    return dns.rrset.from_rdata_list(dns.name.from_text(name, ORIGIN), ttl, rdatas)


ZONE = [
    rrset("@", "NS", "ns1", "ns2.other.example."),
    rrset("ns1", "A", "192.0.2.53"),
    rrset("ns1", "AAAA", "2001:db8::53"),
    rrset("@", "MX", "10 mail", "20 mail.other.example."),
    rrset("mail", "A", "192.0.2.25"),
    rrset("www", "CNAME", "mail"),
    rrset("_sip._tcp", "SRV", "0 5 5060 mail"),
    rrset("txt", "TXT", '"hello world"', '"second"'),
    rrset("ptr", "PTR", "mail"),
    rrset("naptr", "NAPTR", '100 10 "u" "E2U+sip" "!^.*$!sip:a@b!" mail'),
    rrset("caa", "CAA", '0 issue "ca.example"'),
    rrset("x", "TYPE65000", r"\# 3 010203"),
]


def wire_records(message: dns.message.Message) -> list[tuple]:
    """What the reader should return for the answer section: owner and RDATA uncompressed."""
    out = []
    for rrs in message.answer:
        for rdata in rrs:
            out.append((rrs.name.to_wire(), rrs.rdtype, rrs.rdclass, rrs.ttl, rdata.to_wire()))
    return out


def test_the_reader_decompresses_owners_and_names_in_rdata_as_dnspython_reads_them():
    response = dns.message.make_response(dns.message.make_query(ORIGIN, "AXFR"))
    response.answer = [soa(1), *ZONE, soa(1)]
    wire = response.to_wire()  # dnspython compresses owners and RFC 1035 names in RDATA
    assert wire.count(b"\xc0") > 20
    ident, flags, question, records, tsig = read_transfer_message(wire)
    assert ident == response.id and flags == response.flags and tsig is None
    assert question == (ORIGIN.to_wire(), dns.rdatatype.AXFR, dns.rdataclass.IN)
    parsed = dns.message.from_wire(wire, one_rr_per_rrset=True)
    assert [r[:5] for r in records] == wire_records(parsed)
    checked = {dns.rdatatype.to_text(r[1]): r[5] for r in records}
    assert checked["A"] and checked["MX"] and checked["SOA"] and checked["NAPTR"]
    assert not checked["TXT"] and not checked["CAA"] and not checked["TYPE65000"]


def test_the_reader_hands_back_the_tsig_record_and_its_offset():
    query = dns.message.make_query(ORIGIN, "AXFR")
    query.use_tsig({KEY256.tsig().name: KEY256.tsig()}, KEY256.tsig().name)
    response = dns.message.make_response(query)
    response.answer = [soa(1), soa(1)]
    wire = response.to_wire()
    *_, tsig = read_transfer_message(wire)
    offset, owner, rdata = tsig
    assert dns.name.from_wire(owner, 0)[0] == KEY256.tsig().name
    assert dns.name.from_wire(wire, offset)[0] == KEY256.tsig().name and wire.endswith(rdata)


def _message_with(answer_wire: bytes, ancount: int = 1, adcount: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 7, 0x8400, 0, ancount, 0, adcount) + answer_wire


ROOT_A = b"\x00" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01\x02\x03\x04"


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"\x00" * 11, "shorter than its header"),
        (_message_with(b"\xc0\x0c" + ROOT_A[1:]), "a pointer to itself"),
        (_message_with(b"\xc0\x20" + ROOT_A[1:]), "a pointer forward"),
        (_message_with(b"\x40abc" + ROOT_A), "label type 01"),
        (_message_with(b"\x05ab"), "a label beyond the message"),
        (_message_with(ROOT_A[:-1]), "RDATA beyond the message"),
        (_message_with(b"\x00" + struct.pack("!HHIH", 1, 1, 60, 3) + b"\x01\x02\x03"), "A of 3"),
        (_message_with(b"\x00" + struct.pack("!HHIH", 15, 1, 60, 1) + b"\x00"), "MX of 1"),
        (_message_with(b"\x00" + struct.pack("!HHIH", 6, 1, 60, 3) + b"\x00\x00\x00"), "SOA"),
        (_message_with(ROOT_A + b"\x00"), "octets after the last record"),
        (_message_with((b"\x3f" + b"a" * 63) * 4 + ROOT_A), "a name over 255 octets"),
        (_message_with(b"\x00" + struct.pack("!HHIH", 250, 255, 0, 0) + ROOT_A, 2, 0), "TSIG"),
    ],
)
def test_the_reader_refuses_what_does_not_parse(wire, why):
    if why == "TSIG":  # a TSIG record before another one: only in the additional section
        wire = struct.pack("!HHHHHH", 7, 0x8400, 0, 0, 0, 2) + wire[12:]
    with pytest.raises(TransferFormError):
        read_transfer_message(wire)


def test_damaged_messages_raise_or_parse_never_crash():
    response = dns.message.make_response(dns.message.make_query(ORIGIN, "AXFR"))
    response.answer = [soa(1), *ZONE, soa(1)]
    wire = bytearray(response.to_wire())
    rng = random.Random(1995)
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(20000):
        damaged = bytearray(wire)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.2:
            damaged = damaged[: rng.randrange(len(damaged))]
        try:
            read_transfer_message(bytes(damaged))
            outcomes["parsed"] += 1
        except TransferFormError:
            outcomes["refused"] += 1
    assert outcomes["parsed"] and outcomes["refused"], outcomes


# -- the client against a scripted primary


class ScriptedPrimary:
    """A TCP server that answers one transfer query per connection with the messages
    ``script(query)`` returns (each a dns.message.Message, signed in turn when the query was;
    ``None`` in the list: leave that one unsigned)."""

    def __init__(self, script: Callable, key: dns.tsig.Key | None = None):
        self.script = script
        self.key = key
        self.queries: list[dns.message.Message] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                length = struct.unpack("!H", _recv(conn, 2))[0]
                # Not validated here: the client must notice a response signed with another key.
                query = dns.message.from_wire(_recv(conn, length), keyring=False)
                self.queries.append(query)
                context = None
                for response, signed in self.script(query):
                    if signed and self.key is not None:
                        response.use_tsig({self.key.name: self.key}, self.key.name)
                        response.request_mac = query.mac or b""  # RFC 8945 §5.3.1
                        wire = response.to_wire(multi=True, tsig_ctx=context)
                        context = response.tsig_ctx
                    else:
                        response.tsig = None  # make_response signs as the query was signed
                        wire = response.to_wire()
                        if context is not None:
                            context.update(wire)
                    conn.sendall(struct.pack("!H", len(wire)) + wire)

    def close(self) -> None:
        self.sock.close()


def _recv(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def messages(query, *answers, signed=None):
    """Responses to ``query`` with the given answer sections (the first has the question)."""
    out = []
    for i, answer in enumerate(answers):
        response = dns.message.make_response(query)
        if i:
            response.question = []
        response.answer = list(answer)
        out.append((response, True if signed is None else signed[i]))
    return out


@pytest.fixture
def primary():
    servers = []

    def start(script, key=None):
        server = ScriptedPrimary(script, key)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def transfer(server, serial=None, key=None):
    return receive_transfer("127.0.0.1", server.port, ORIGIN, serial, key, timeout=5, lifetime=10)


def sets_of(transfer_result) -> dict:
    return {key: unpack_records(packed) for key, packed in transfer_result.record_sets.items()}


def test_an_axfr_over_several_messages_is_grouped_into_record_sets(primary):
    extra = [rrset(f"h{i}", "A", f"192.0.2.{i}") for i in range(1, 101)]
    split = [soa(5), *ZONE[:5]], [*ZONE[5:], *extra[:50]], [*extra[50:], soa(5)]
    server = primary(lambda q: messages(q, *split))
    result = transfer(server)
    assert result.serial == 5 and result.messages == 3 and result.differences is None
    assert result.records == 2 + sum(len(r) for r in ZONE) + 100
    sets = sets_of(result)
    assert len(sets) == 1 + len(ZONE) + 100
    mx = sets[set_key(ORIGIN.to_wire(), dns.rdatatype.MX)]
    assert sorted(dns.rdata.from_wire(1, 15, r, 0, len(r)).to_text() for r in mx[3]) == [
        "10 mail.in.test.",
        "20 mail.other.example.",
    ]
    assert server.queries[0].question[0].rdtype == dns.rdatatype.AXFR


def test_a_record_set_takes_the_smallest_ttl_of_its_records(primary):
    split = [
        [
            soa(5),
            rrset("a", "A", "192.0.2.1", ttl=300),
            rrset("a", "A", "192.0.2.2", ttl=30),
            soa(5),
        ]
    ]
    server = primary(lambda q: messages(q, *split))
    owner = dns.name.from_text("a", ORIGIN).to_wire()
    assert sets_of(transfer(server))[set_key(owner, 1)][2] == 30  # RFC 2181 §5.2


def test_an_ixfr_brings_difference_sequences(primary):
    def script(query):
        assert query.authority[0][0].serial == 5  # RFC 1995 §3: the client's SOA
        return messages(
            query,
            [soa(7), soa(5), rrset("ns1", "A", "192.0.2.53"), soa(6)],
            [rrset("ns1", "A", "192.0.2.54"), soa(6), soa(7), rrset("new", "TXT", '"x"'), soa(7)],
        )

    result = transfer(primary(script), serial=5)
    assert result.serial == 7 and result.record_sets is None
    first, second = result.differences
    assert [r[1] for r in first.deleted] == [1] and [r[1] for r in first.added] == [1]
    assert not second.deleted and [r[1] for r in second.added] == [16]
    assert first.new_soa == second.old_soa


def test_an_ixfr_from_the_current_serial_is_the_soa_alone(primary):
    server = primary(lambda q: messages(q, [soa(5)]))
    result = transfer(server, serial=5)
    assert result.serial == 5 and result.record_sets is None and result.differences is None


def test_an_ixfr_may_be_answered_in_axfr_form(primary):
    server = primary(lambda q: messages(q, [soa(9), *ZONE, soa(9)]))
    result = transfer(server, serial=5)
    assert result.serial == 9 and result.differences is None and len(result.record_sets) == 13


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ([[rrset("ns1", "A", "192.0.2.1"), soa(5)]], "does not start with the zone's SOA"),
        ([[soa(5), *ZONE]], None),  # no last SOA: the primary closes, EOFError
        ([[soa(5), rrset("x.elsewhere.", "A", "192.0.2.1"), soa(5)]], "not in the zone"),
        ([[soa(5), *ZONE, soa(6)]], "ends with another SOA"),
        ([[soa(5), *ZONE, soa(5), rrset("late", "A", "192.0.2.1")]], "after the transfer's"),
    ],
)
def test_an_axfr_that_is_not_one_is_refused(primary, answers, error):
    server = primary(lambda q: messages(q, *answers))
    with pytest.raises((TransferError, EOFError)) as raised:
        transfer(server)
    if error is not None:
        assert error in str(raised.value)


def test_a_refusal_is_a_transfer_error(primary):
    def script(query):
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NOTAUTH)
        return [(response, False)]

    with pytest.raises(TransferError, match="NOTAUTH"):
        transfer(primary(script))


def test_an_ixfr_with_a_gap_in_its_serials_is_refused(primary):
    answer = [soa(7), soa(5), soa(6), soa(4), soa(7), soa(7)]
    server = primary(lambda q: messages(q, answer))
    with pytest.raises(TransferError, match="from serial 4, not 6"):
        transfer(server, serial=5)


def test_a_signed_transfer_may_leave_out_signatures_between_signed_messages(primary):
    key = KEY256.tsig()
    split = [soa(5), *ZONE[:4]], ZONE[4:8], ZONE[8:], [soa(5)]
    server = primary(lambda q: messages(q, *split, signed=[True, False, False, True]), key)
    result = transfer(server, key=key)
    assert result.serial == 5 and result.messages == 4
    assert server.queries[0].had_tsig


@pytest.mark.parametrize(
    ("signed", "error"),
    [
        ([False, True], "first message is not signed"),
        ([True, False], "last message is not signed"),
    ],
)
def test_a_signed_transfer_must_sign_its_first_and_last_messages(primary, signed, error):
    key = KEY256.tsig()
    split = [soa(5), *ZONE[:4]], [*ZONE[4:], soa(5)]
    server = primary(lambda q: messages(q, *split, signed=signed), key)
    with pytest.raises(TransferError, match=error):
        transfer(server, key=key)


def test_a_transfer_signed_with_another_key_is_refused(primary):
    server = primary(lambda q: messages(q, [soa(5), soa(5)]), KEY256.tsig())
    ours = dns.tsig.Key(KEY256.tsig().name, KEY512.secret, "hmac-sha256")
    with pytest.raises(dns.tsig.BadSignature):
        transfer(server, key=ours)


def test_a_signed_answer_to_an_unsigned_query_is_refused(primary):
    server = primary(lambda q: messages(q, [soa(5), soa(5)]), KEY256.tsig())
    with pytest.raises(TransferError, match="signed message answers an unsigned query"):
        transfer(server)


def test_the_reader_packs_consecutive_records_of_a_set_into_runs():
    response = dns.message.make_response(dns.message.make_query(ORIGIN, "AXFR"))
    a = rrset("A", "A", "192.0.2.1", ttl=30)
    response.answer = [soa(1), soa(1), a, rrset("a", "A", "192.0.2.2", ttl=20), ZONE[7], a]
    wire = response.to_wire()
    *_, batch, _ = read_transfer_message(wire, ORIGIN.to_wire())
    packed, count, soa_sets, unchecked = batch
    runs, at = [], 0
    while at < len(packed):
        key, end = packed_entry(packed, at)
        runs.append((key, at, end))
        at = end
    owner = dns.name.from_text("a", ORIGIN).to_wire()
    soa_key, a_key = set_key(ORIGIN.to_wire(), 6), set_key(owner, 1)
    txt_key = set_key(b"\x03txt" + ORIGIN.to_wire(), 16)
    assert [key for key, _, _ in runs] == [soa_key, soa_key, a_key, txt_key, a_key]
    assert count == 7
    assert soa_sets == [(start, end) for _, start, end in runs[:2]]  # each SOA a set of its own
    assert unchecked == [runs[3][1:]]  # TXT: not checked here
    _, rtype, ttl, rdatas = unpack_records(packed[runs[2][1] : runs[2][2]])
    assert (rtype, ttl, len(rdatas)) == (1, 20, 2)  # case-insensitive owners, smallest TTL
    assert packed[runs[2][1] + 2 : runs[2][1] + 3] == b"A"  # spelled as the run's first record


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (rrset("x.elsewhere.", "A", "192.0.2.1"), "outside the zone"),
        (dns.rrset.from_text(dns.name.from_text("c", ORIGIN), 60, "CH", "TXT", '"x"'), "class 3"),
    ],
)
def test_the_reader_refuses_runs_of_another_zone_or_class(record, error):
    response = dns.message.make_response(dns.message.make_query(ORIGIN, "AXFR"))
    response.answer = [soa(1), record]
    with pytest.raises(TransferFormError, match=error):
        read_transfer_message(response.to_wire(), ORIGIN.to_wire())


def test_a_record_set_split_across_messages_or_scattered_is_joined(primary):
    h = [rrset("h", "A", f"192.0.2.{i}") for i in range(1, 5)]
    split = [soa(5), h[0]], [h[1], ZONE[0], h[2]], [h[3], rrset("H", "A", "192.0.2.1"), soa(5)]
    result = transfer(primary(lambda q: messages(q, *split)))
    owner = dns.name.from_text("h", ORIGIN).to_wire()
    _, _, _, rdatas = sets_of(result)[set_key(owner, 1)]
    assert sorted(rdatas) == sorted(r[0].to_wire() for r in h)  # "H": one of h's again
    assert len(result.record_sets) == 3


def test_a_later_message_with_a_record_that_does_not_parse_is_refused(primary):
    bad = dns.rrset.from_rdata(
        dns.name.from_text("t", ORIGIN), 60, dns.rdata.GenericRdata(1, 16, b"\x05ab")
    )
    split = [soa(5), *ZONE[:3]], [bad, soa(5)]
    with pytest.raises(TransferError, match="TXT record does not parse"):
        transfer(primary(lambda q: messages(q, *split)))


@pytest.mark.parametrize(
    ("last", "error"),
    [
        ([soa(5), rrset("late", "A", "192.0.2.1")], "after the transfer's last SOA"),
        ([soa(6)], "ends with another SOA"),
        ([soa(5), soa(5)], "after the transfer's last SOA"),
    ],
)
def test_a_later_message_ends_the_transfer_only_with_the_first_soa_again(primary, last, error):
    split = [soa(5), *ZONE[:3]], [*ZONE[3:], *last]
    with pytest.raises(TransferError, match=error):
        transfer(primary(lambda q: messages(q, *split)))
