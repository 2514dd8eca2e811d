"""Incoming zone transfers (AXFR, RFC 5936; IXFR, RFC 1995) read into packed record sets.

A secondary zone of a million records must not become a million dnspython objects on every
transfer (issue 8): this client sends the query (signed with TSIG when the zone has a key,
RFC 8945), reads the TCP response's messages with the extension
(``fastdns._zcompile.read_transfer_message``: records with their names decompressed, in the
wire form ``compile_packed`` takes) and returns either the whole zone as packed record sets
(AXFR, or an IXFR answered in AXFR's form, RFC 1995 §4) or the IXFR's difference sequences,
which fastdns.xfr.zonedata applies to the record sets it holds.

Records are ``(owner, type, TTL, RDATA)``, owner and RDATA names uncompressed and spelled as
sent; record sets are keyed by :func:`set_key`: the owner lower-cased, then the type.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

from fastdns._zcompile import read_transfer_message
from fastdns.packedsets import PackedSets
from fastdns.packedzone import HEAD, in_zone, pack_records, unpack_records

__all__ = [
    "Difference",
    "Record",
    "Transfer",
    "TransferError",
    "receive_transfer",
    "set_key",
    "soa_serial",
]

Record = tuple[bytes, int, int, bytes]

CLASS_IN = dns.rdataclass.IN
SOA = dns.rdatatype.SOA
QR = 0x8000
OPCODE_MASK = 0x7800
# RFC 8945 §5.3.1: a signed transfer may leave out the TSIG of up to 99 messages in a row.
MAX_UNSIGNED = 99


class TransferError(dns.exception.DNSException):
    """A transfer the primary refused or answered with something that is not a transfer."""


@dataclass
class Difference:
    """One difference sequence of an IXFR (RFC 1995 §4): from ``old_soa`` to ``new_soa``."""

    old_soa: Record
    new_soa: Record
    deleted: list[Record] = field(default_factory=list)
    added: list[Record] = field(default_factory=list)


@dataclass
class Transfer:
    """What a transfer brought: ``serial``, the primary's; ``record_sets`` (the whole zone,
    packed, keyed by :func:`set_key`) or ``differences`` (an incremental IXFR);
    neither when the zone held is current (an IXFR answered with the SOA alone)."""

    serial: int
    record_sets: PackedSets | None = None
    differences: list[Difference] | None = None
    records: int = 0
    messages: int = 0


def set_key(owner: bytes, rtype: int) -> bytes:
    """The key of a record set: its owner (wire format) lower-cased, then its type (two octets,
    big-endian), as ``read_transfer_message`` makes them. One bytes object rather than a tuple
    saves some 60 MB per million record sets."""
    return owner.lower() + rtype.to_bytes(2, "big")


def soa_serial(rdata: bytes) -> int:
    """The serial of an SOA RDATA in uncompressed wire format (RFC 1035 §3.3.13: after the
    two names)."""
    return int.from_bytes(rdata[-20:-16], "big")


def receive_transfer(
    host: str,
    port: int,
    origin: dns.name.Name,
    serial: int | None,
    key: dns.tsig.Key | None = None,
    timeout: float = 5.0,
    lifetime: float = 300.0,
) -> Transfer:
    """Transfer ``origin`` from ``host``: IXFR from ``serial``, AXFR when it is None.

    :raises TransferError: the primary refused, or its answer is not a transfer of the zone.
    :raises TransferFormError: a message does not parse.
    :raises OSError: the connection failed or timed out."""
    rdtype = dns.rdatatype.AXFR if serial is None else dns.rdatatype.IXFR
    query = dns.message.make_query(origin, rdtype)
    if serial is not None:
        # RFC 1995 §3: the authority section holds the SOA of the version the client has.
        query.authority.append(dns.rrset.from_text(origin, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    if key is not None:
        query.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
    wire = query.to_wire()
    reader = _Reader(query, wire, origin, key)
    deadline = time.monotonic() + lifetime
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        return _Assembler(origin, serial).run(reader.records(sock, timeout, deadline), reader)


class _Batch(NamedTuple):
    """One message's records read in runs (``read_transfer_message`` with the origin)."""

    packed: bytes  # record sets one after another
    records: int
    soa: list[tuple[int, int]]  # (start, end) of the zone's SOA sets among them
    unchecked: list[tuple[int, int]]  # of those with RDATA the reader did not check


class _Reader:
    """The response's messages, checked (ID, QR, opcode, RCODE, question, TSIG)."""

    def __init__(self, query, wire: bytes, origin: dns.name.Name, key: dns.tsig.Key | None):
        self.ident = query.id
        self.qtype = query.question[0].rdtype
        self.origin_wire = origin.to_wire().lower()
        self.key = key
        self.request_mac = query.mac if key is not None else b""
        self.context = None
        self.unsigned = 0
        self.messages = 0
        self.left = 0  # records of the current message not read yet
        # Once set (the zone's name, lower-cased), messages are read as runs of packed records.
        self.grouped: bytes | None = None

    def records(self, sock: socket.socket, timeout: float, deadline: float) -> Iterator[tuple]:
        """Every answer record of every message, in order, as the extension reads them: one by
        one, or once ``grouped`` is set, a :class:`_Batch` per message."""
        while True:
            message = _read_message(sock, timeout, deadline)
            ident, flags, question, records, tsig = read_transfer_message(message, self.grouped)
            self.messages += 1
            if ident != self.ident or not flags & QR or flags & OPCODE_MASK:
                raise TransferError("a message that does not answer the transfer's query")
            rcode = flags & 0xF
            if rcode != dns.rcode.NOERROR:
                raise TransferError(f"the primary answered {dns.rcode.to_text(rcode)}")
            if question is not None and (
                question[0].lower() != self.origin_wire or question[1] != self.qtype
            ):
                raise TransferError("a message for another question")
            self._check_tsig(message, tsig)
            if self.grouped is not None:
                self.left = 0
                yield _Batch(*records)
                continue
            self.left = len(records)
            for record in records:
                self.left -= 1
                yield record

    def _check_tsig(self, message: bytes, tsig: tuple | None) -> None:
        """RFC 8945 §5.3.1: the first message is signed, later ones may leave out the TSIG of
        up to 99 in a row (their digest is carried into the next one's), the last is signed
        (``finish``)."""
        if self.key is None:
            if tsig is not None:
                raise TransferError("a signed message answers an unsigned query")
            return
        if tsig is None:
            if self.context is None:
                raise TransferError("the first message is not signed")
            self.unsigned += 1
            if self.unsigned > MAX_UNSIGNED:
                raise TransferError(f"more than {MAX_UNSIGNED} messages in a row not signed")
            self.context.update(message)
            return
        offset, owner, rdata = tsig
        name = dns.name.from_wire(owner, 0)[0]
        if name != self.key.name:
            raise TransferError(f"signed with key {name}, not {self.key.name}")
        record = dns.rdata.from_wire(dns.rdataclass.ANY, dns.rdatatype.TSIG, rdata, 0, len(rdata))
        # dns.tsig raises BadSignature, BadTime and the like (DNSException) when it fails.
        self.context = dns.tsig.validate(
            message, self.key, name, record, int(time.time()), self.request_mac, offset,
            self.context, True,
        )  # fmt: skip
        self.unsigned = 0

    def finish(self) -> None:
        if self.key is not None and self.unsigned:
            raise TransferError("the last message is not signed")


def _read_message(sock: socket.socket, timeout: float, deadline: float) -> bytes:
    (length,) = struct.unpack("!H", _read_exactly(sock, 2, timeout, deadline))
    return _read_exactly(sock, length, timeout, deadline)


def _read_exactly(sock: socket.socket, count: int, timeout: float, deadline: float) -> bytes:
    chunks = []
    while count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the transfer took longer than its lifetime")
        sock.settimeout(min(timeout, left))
        chunk = sock.recv(min(count, 1 << 20))
        if not chunk:
            raise EOFError("the primary closed the connection mid-transfer")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


class _Assembler:
    """The records of a response, as the whole zone or as difference sequences (RFC 1995 §4,
    RFC 5936 §2.2): the response starts with the primary's SOA and ends with it again."""

    def __init__(self, origin: dns.name.Name, serial: int | None):
        self.origin_wire = origin.to_wire().lower()
        self.serial = serial
        self.checked_types: dict[int, bool] = {}

    def run(self, stream: Iterator[tuple], reader: _Reader) -> Transfer:
        first = self._next(stream)
        if first is None or first[1] != SOA or first[0].lower() != self.origin_wire:
            raise TransferError("the transfer does not start with the zone's SOA")
        serial = soa_serial(first[3])
        if self.serial is not None and not reader.left and not _newer(serial, self.serial):
            # RFC 1995 §4: an IXFR from the current serial (or a newer one) is answered with a
            # message of the SOA alone.
            reader.finish()
            return Transfer(serial, messages=reader.messages, records=1)
        second = self._next(stream)
        if second is None:
            raise TransferError("the transfer ended after its first SOA")
        if self.serial is not None and second[1] == SOA and soa_serial(second[3]) == self.serial:
            transfer = self._differences(first, second, stream)
        else:
            transfer = self._whole(first, second, stream, reader)
        # The last message ends with the last SOA (the primary sends no more messages).
        if reader.left:
            raise TransferError("records after the transfer's last SOA")
        reader.finish()
        transfer.messages = reader.messages
        return transfer

    def _next(self, stream: Iterator[tuple]) -> Record | None:
        """The next record of the zone's class, checked: its owner in the zone, its RDATA
        well formed for its type (checked by the extension or, for the other types dnspython
        knows, by dnspython). A run read grouped is handed on as it is."""
        for item in stream:
            if type(item) is _Batch:
                return item
            owner, rtype, rclass, ttl, rdata, checked = item
            if rclass != CLASS_IN:
                raise TransferError(f"a record of class {dns.rdataclass.to_text(rclass)}")
            if not in_zone(owner, self.origin_wire):
                raise TransferError(f"{dns.name.from_wire(owner, 0)[0]} is not in the zone")
            if not checked:
                self._check_rdata(rtype, rdata)
            return owner, rtype, ttl, rdata
        return None

    def _check_rdata(self, rtype: int, rdata: bytes) -> None:
        known = self.checked_types.get(rtype)
        if known is None:
            known = dns.rdata.get_rdata_class(CLASS_IN, rtype) is not dns.rdata.GenericRdata
            self.checked_types[rtype] = known
        if known:
            try:
                dns.rdata.from_wire(CLASS_IN, rtype, rdata, 0, len(rdata))
            except dns.exception.DNSException as exc:
                raise TransferError(
                    f"a {dns.rdatatype.to_text(rtype)} record does not parse: {exc}"
                ) from None

    def _whole(
        self, first: Record, second: Record, stream: Iterator[tuple], reader: _Reader
    ) -> Transfer:
        """An AXFR-form response: every record set, packed, in one blob (fastdns.packedsets).
        The messages after the first are read in runs (``read_transfer_message`` with the
        origin): a primary sends a record set's records together, so each run is a record
        set, and one that comes in parts (across messages, or scattered) is joined by
        ``PackedSets``. RFC 2181 §5.2: a record set has one TTL, its records' smallest."""
        reader.grouped = self.origin_wire
        soa_key = set_key(self.origin_wire, SOA)
        blob = bytearray()
        records = 1
        item: Record | _Batch | None = second
        while item is not None:
            if type(item) is _Batch:
                for start, end in item.unchecked:
                    rtype = HEAD.unpack_from(item.packed, start + 1 + item.packed[start])[0]
                    for rdata in unpack_records(item.packed[start:end])[3]:
                        self._check_rdata(rtype, rdata)
                if item.soa:
                    start, end = item.soa[0]
                    if unpack_records(item.packed[start:end])[3] != [first[3]]:
                        raise TransferError("the transfer ends with another SOA than it began")
                    if len(item.soa) > 1 or end != len(item.packed):
                        raise TransferError("records after the transfer's last SOA")
                    blob += item.packed[:start]
                    records += item.records - 1
                    break
                blob += item.packed
                records += item.records
            else:
                owner, rtype, ttl, rdata = item
                if rtype == SOA and set_key(owner, rtype) == soa_key:
                    if rdata != first[3]:
                        raise TransferError("the transfer ends with another SOA than it began")
                    break
                blob += pack_records(owner, rtype, ttl, (rdata,))
                records += 1
            item = self._next(stream)
        else:
            raise TransferError("the transfer ended before its last SOA")
        owner, _, ttl, rdata = first
        blob += pack_records(owner, SOA, ttl, (rdata,))
        try:
            record_sets = PackedSets(bytes(blob))  # joins a set that came in parts
        except ValueError as exc:
            raise TransferError(str(exc)) from None
        return Transfer(soa_serial(first[3]), record_sets=record_sets, records=records + 1)

    def _differences(self, first: Record, second: Record, stream: Iterator[tuple]) -> Transfer:
        """An incremental response (RFC 1995 §4): difference sequences, each the old SOA,
        the records deleted, the new SOA, the records added; the last new SOA is the first."""
        final = soa_serial(first[3])
        differences: list[Difference] = []
        records = 2
        old: Record | None = second
        expected = self.serial
        while True:
            if soa_serial(old[3]) != expected:
                raise TransferError(
                    f"a difference from serial {soa_serial(old[3])}, not {expected}"
                )
            deleted, new_soa = self._until_soa(stream)
            added, record = self._until_soa(stream)
            difference = Difference(old, new_soa, deleted, added)
            records += 2 + len(deleted) + len(added)
            differences.append(difference)
            expected = soa_serial(difference.new_soa[3])
            if expected == final and record[3] == first[3]:
                break
            old = record
        return Transfer(final, differences=differences, records=records)

    def _until_soa(self, stream: Iterator[tuple]) -> tuple[list[Record], Record]:
        """The records up to the next SOA of the zone, and that SOA."""
        records = []
        record = self._next(stream)
        while record is not None and not self._is_soa(record):
            records.append(record)
            record = self._next(stream)
        if record is None:
            raise TransferError("the transfer ended inside a difference sequence")
        return records, record

    def _is_soa(self, record: Record) -> bool:
        return record[1] == SOA and record[0].lower() == self.origin_wire


def _newer(serial: int, than: int) -> bool:
    """RFC 1982 serial number arithmetic: whether ``serial`` is greater than ``than``."""
    return serial != than and (serial - than) % (1 << 32) < (1 << 31)
