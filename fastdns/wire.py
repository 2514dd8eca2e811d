"""Compile-time wire writer: encodes answer templates once per zone, off the hot path.

Names are compressed (RFC 1035 §4.1.4) against the template's question name and everything
written before them, and every compression pointer's position is recorded. The hot path copies a
template after the real question and, when the real query name is longer than the name the
template was compiled against, adds the difference to each recorded pointer (see
docs/ARCHITECTURE.md). Pointers may only reach offsets below 0x3FFF minus the largest possible
shift, so a shifted pointer always stays within its 14 bits.
"""

from __future__ import annotations

import io
import struct

import dns.name
import dns.rdata
import dns.rdatatype

HEADER_LEN = 12
QUESTION_OFFSET = 12
MAX_NAME_WIRE = 255
OPT_RR_LEN = 11
# The largest template body: a full-length question and an OPT RR must still fit in 65535
# octets (the same bound ext/_core.pyx load_image checks).
MAX_BODY = 0xFFFF - HEADER_LEN - MAX_NAME_WIRE - 4 - OPT_RR_LEN
# Highest offset a compression target may have so that target + shift (< 255) fits in 14 bits.
_MAX_TARGET = 0x3FFF - MAX_NAME_WIRE

# RFC 3597 §4: only the RFC 1035 types may carry compressed names in RDATA; servers compress
# these (NS, CNAME, PTR, MX, SOA) and must not compress names of any other type.
_SINGLE_NAME_TYPES = {dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR}


class TemplateTooLarge(Exception):
    """The encoded sections do not fit in a DNS message."""


class WireWriter:
    """Writes RRs of one template after a stand-in header and question.

    ``question`` is the name the template is compiled against. With ``owner_is_qname`` (wildcard
    synthesis, RFC 4592 §3.4.1) the question's full name is not offered for compression: only
    :meth:`qname_pointer` points at it, because at run time offset 12 holds the real query name
    while the template was compiled against ``*.<closest encloser>``.
    """

    def __init__(self, question: dns.name.Name, *, owner_is_qname: bool = False):
        self.question = question
        self.owner_is_qname = owner_is_qname
        self.buf = bytearray(HEADER_LEN)
        # Compression targets keyed by the lower-cased labels of a name suffix (cheaper than
        # dns.name.Name objects, and names compare case-insensitively, RFC 4343).
        self.compress: dict[tuple[bytes, ...], int] = {}
        self.pointers: list[int] = []
        pos = QUESTION_OFFSET
        labels = tuple(label.lower() for label in question.labels)
        for i, label in enumerate(question.labels[:-1]):
            if i > 0 or not owner_is_qname:
                self.compress[labels[i:]] = pos
            self.buf.append(len(label))
            self.buf += label
            pos += 1 + len(label)
        self.buf.append(0)
        self.buf += b"\0\0\0\0"  # qtype, qclass: never a compression target
        self.body_start = len(self.buf)

    # -- names -------------------------------------------------------------------------------
    def _pointer(self, target: int) -> None:
        self.pointers.append(len(self.buf) - self.body_start)
        self.buf += struct.pack("!H", 0xC000 | target)

    def qname_pointer(self) -> None:
        """The query name itself (the owner of synthesized and exact-match answers)."""
        self._pointer(QUESTION_OFFSET)

    def name(self, name: dns.name.Name, *, compress: bool = True) -> None:
        if not name.is_absolute():
            # A relative name would be written as if it ended at the root: refuse instead.
            raise ValueError(f"relative name {name} in a compiled zone")
        labels = name.labels
        lowered = tuple(label.lower() for label in labels) if compress else ()
        for i in range(len(labels) - 1):
            if compress:
                suffix = lowered[i:]
                target = self.compress.get(suffix)
                if target is not None:
                    self._pointer(target)
                    return
                pos = len(self.buf)
                if pos <= _MAX_TARGET:
                    self.compress[suffix] = pos
            self.buf.append(len(labels[i]))
            self.buf += labels[i]
        self.buf.append(0)

    # -- records -----------------------------------------------------------------------------
    def rr(self, owner: dns.name.Name | None, rdtype: int, ttl: int, rdata: dns.rdata.Rdata):
        """One RR; ``owner=None`` means the query name (:meth:`qname_pointer`)."""
        if owner is None:
            self.qname_pointer()
        else:
            self.name(owner)
        self.buf += struct.pack("!HHI", rdtype, 1, ttl)
        rdlen_at = len(self.buf)
        self.buf += b"\0\0"
        self._rdata(rdtype, rdata)
        rdlen = len(self.buf) - rdlen_at - 2
        if rdlen > 0xFFFF:
            raise TemplateTooLarge("RDATA over 65535 octets")
        struct.pack_into("!H", self.buf, rdlen_at, rdlen)

    def rrset(self, owner, rdtype: int, ttl: int, rdatas) -> int:
        for rdata in rdatas:
            self.rr(owner, rdtype, ttl, rdata)
        return len(rdatas)

    def _rdata(self, rdtype: int, rdata) -> None:
        if rdtype in _SINGLE_NAME_TYPES:
            self.name(rdata.target)
        elif rdtype == dns.rdatatype.MX:
            self.buf += struct.pack("!H", rdata.preference)
            self.name(rdata.exchange)
        elif rdtype == dns.rdatatype.SOA:
            self.name(rdata.mname)
            self.name(rdata.rname)
            self.buf += struct.pack(
                "!IIIII", rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum
            )
        else:
            out = io.BytesIO()
            rdata.to_wire(out, None, None, False)
            self.buf += out.getvalue()

    # -- result ------------------------------------------------------------------------------
    def mark(self) -> int:
        """Body offset of the next byte (an RR boundary when called between RRs)."""
        return len(self.buf) - self.body_start

    def body(self) -> bytes:
        body = bytes(self.buf[self.body_start :])
        if len(body) > MAX_BODY:
            raise TemplateTooLarge(f"answer of {len(body)} octets does not fit a DNS message")
        return body
