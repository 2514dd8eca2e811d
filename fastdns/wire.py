"""Compile-time wire writer: encodes answer templates once per zone, off the hot path.

Names are compressed (RFC 1035 §4.1.4) against the template's question name and everything
written before them, and every compression pointer's position is recorded. The hot path copies a
template after the real question and, when the real query name is longer than the name the
template was compiled against, adds the difference to each recorded pointer (see
docs/ARCHITECTURE.md). Pointers may only reach offsets below 0x3FFF minus the largest possible
shift, so a shifted pointer always stays within its 14 bits.

A zone compiles to thousands of templates that write the same names and records again and again,
so what a writer derives from dnspython objects (a name's labels and compression keys, an RDATA's
wire form) is worked out once per zone in a :class:`WireCache` that all its writers share.
"""

from __future__ import annotations

import socket
import struct

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

HEADER_LEN = 12
QUESTION_OFFSET = 12
MAX_NAME_WIRE = 255
OPT_RR_LEN = 11
# The largest template body: a full-length question and an OPT RR must still fit in 65535
# octets (the same bound ext/_core.pyx load_image checks).
MAX_BODY = 0xFFFF - HEADER_LEN - MAX_NAME_WIRE - 4 - OPT_RR_LEN
# Highest offset a compression target may have so that target + shift (< 255) fits in 14 bits.
_MAX_TARGET = 0x3FFF - MAX_NAME_WIRE
# QTYPE and QCLASS after the question name: never a compression target.
_QTYPE_QCLASS_LEN = 4

# RFC 3597 §4: only the RFC 1035 types may carry compressed names in RDATA; servers compress
# these (NS, CNAME, PTR, MX, SOA) and must not compress names of any other type.
_SINGLE_NAME_TYPES = {dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR}

_U16 = struct.Struct("!H")
_RR_FIXED = struct.Struct("!HHI")  # TYPE, CLASS, TTL
_CLASS_IN = 1
_QNAME_POINTER = _U16.pack(0xC000 | QUESTION_OFFSET)
# Addresses: the text dnspython keeps (validated, canonical) straight to wire.
_A, _AAAA = int(dns.rdatatype.A), int(dns.rdatatype.AAAA)
_A_RDATA, _AAAA_RDATA = dns.rdtypes.IN.A.A, dns.rdtypes.IN.AAAA.AAAA
_AF_INET, _AF_INET6 = int(socket.AF_INET), int(socket.AF_INET6)
_inet_pton = socket.inet_pton


class TemplateTooLarge(Exception):
    """The encoded sections do not fit in a DNS message."""


class WireName:
    """A domain name ready to write: its labels as given and its compression keys.

    Compression targets are keyed by the lower-cased labels of a name suffix (names compare
    case-insensitively, RFC 4343), while the labels are written in the case they were given.
    ``key`` is the whole name lower-cased: the form the compiler compares and looks names up by.
    """

    __slots__ = ("absolute", "key", "labels", "pieces", "suffixes")

    def __init__(self, labels: tuple[bytes, ...]):
        self.labels = labels
        self.absolute = bool(labels) and labels[-1] == b""
        self.key = tuple(map(bytes.lower, labels))
        # Every label but the root's, as written (length octet, then the label) and as the
        # key of the suffix it starts.
        self.pieces = [bytes((len(label),)) + label for label in labels[:-1]]
        self.suffixes = [self.key[i:] for i in range(len(labels) - 1)]

    def __repr__(self) -> str:
        return f"WireName({dns.name.Name(self.labels)})"


class WireCache:
    """Per-zone memo of names and RDATA in the form :class:`WireWriter` writes them."""

    def __init__(self):
        self._names: dict[tuple[bytes, ...], WireName] = {}
        # (rdtype, id(rdata)) -> (rdata, encoded); the rdata is held so that its id stays unique.
        self._rdatas: dict[tuple[int, int], tuple[dns.rdata.Rdata, bytes | tuple]] = {}

    def name(self, name: dns.name.Name) -> WireName:
        """``name`` prepared for writing (one object per distinct spelling of a name)."""
        return self.labels(name.labels)

    def labels(self, labels: tuple[bytes, ...]) -> WireName:
        """The name of these labels (as in ``dns.name.Name.labels``) prepared for writing."""
        found = self._names.get(labels)
        if found is None:
            found = self._names[labels] = WireName(labels)
        return found

    def rdata(self, rdtype: int, rdata: dns.rdata.Rdata) -> bytes | tuple:
        """RDLENGTH and RDATA as bytes when no name in the RDATA is compressed, else the RDATA
        as a tuple of literal bytes and :class:`WireName` s to compress."""
        # Addresses, the bulk of most zones, are cheap enough to encode on every use.
        if rdtype == _A and type(rdata) is _A_RDATA:
            return b"\0\4" + _inet_pton(_AF_INET, rdata.address)
        if rdtype == _AAAA and type(rdata) is _AAAA_RDATA:
            return b"\0\20" + _inet_pton(_AF_INET6, rdata.address)
        key = (rdtype, id(rdata))
        found = self._rdatas.get(key)
        if found is None:
            found = self._rdatas[key] = (rdata, self._encode_rdata(rdtype, rdata))
        return found[1]

    def _encode_rdata(self, rdtype: int, rdata: dns.rdata.Rdata) -> bytes | tuple:
        if rdtype in _SINGLE_NAME_TYPES:
            return (self.name(rdata.target),)
        if rdtype == dns.rdatatype.MX:
            return (_U16.pack(rdata.preference), self.name(rdata.exchange))
        if rdtype == dns.rdatatype.SOA:
            numbers = struct.pack(
                "!IIIII", rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum
            )
            return (self.name(rdata.mname), self.name(rdata.rname), numbers)
        # Any other type: its own uncompressed wire form (names in it are not compressed).
        wire = rdata.to_wire(None, None, None, False)
        if len(wire) > 0xFFFF:
            return (wire,)  # WireWriter refuses it when it is written
        return _U16.pack(len(wire)) + wire


class WireWriter:
    """Writes RRs of one template after a stand-in header and question.

    ``question`` is the lower-cased labels of the name the template is compiled against (its
    case never reaches the template: the hot path copies the real question). With
    ``owner_is_qname`` (wildcard synthesis, RFC 4592 §3.4.1) the question's full name is not
    offered for compression: only :meth:`qname_pointer` points at it, because at run time
    offset 12 holds the real query name while the template was compiled against
    ``*.<closest encloser>``.

    Only the body (what follows the question) is kept; ``body_start`` is its message offset.
    """

    __slots__ = (
        "_compress",
        "body_start",
        "buf",
        "cache",
        "owner_is_qname",
        "pointers",
        "qname_len",
        "question",
    )

    def __init__(
        self, question: tuple[bytes, ...], cache: WireCache, *, owner_is_qname: bool = False
    ):
        self.question = question
        self.cache = cache
        self.owner_is_qname = owner_is_qname
        self.qname_len = len(b"".join(question)) + len(question)
        self.body_start = QUESTION_OFFSET + self.qname_len + _QTYPE_QCLASS_LEN
        self.buf = bytearray()
        self.pointers: list[int] = []
        # Compression targets by lower-cased suffix labels; the question's suffixes are added
        # when the first name is written (most templates write none).
        self._compress: dict[tuple[bytes, ...], int] | None = None

    def _question_targets(self) -> dict[tuple[bytes, ...], int]:
        """The question's suffixes as compression targets (all but the root's)."""
        compress = {}
        pos = QUESTION_OFFSET
        question = self.question
        for i in range(len(question) - 1):
            if i > 0 or not self.owner_is_qname:
                compress[question[i:]] = pos
            pos += 1 + len(question[i])
        return compress

    # -- names -------------------------------------------------------------------------------
    def _pointer(self, target: int) -> None:
        self.pointers.append(len(self.buf))
        self.buf += _U16.pack(0xC000 | target)

    def qname_pointer(self) -> None:
        """The query name itself (the owner of synthesized and exact-match answers)."""
        self.pointers.append(len(self.buf))
        self.buf += _QNAME_POINTER

    def name(self, name: WireName) -> None:
        if not name.absolute:
            # A relative name would be written as if it ended at the root: refuse instead.
            raise ValueError(f"relative name {dns.name.Name(name.labels)} in a compiled zone")
        compress = self._compress
        if compress is None:
            compress = self._compress = self._question_targets()
        buf = self.buf
        for piece, suffix in zip(name.pieces, name.suffixes, strict=True):
            target = compress.get(suffix)
            if target is not None:
                self._pointer(target)
                return
            pos = self.body_start + len(buf)
            if pos <= _MAX_TARGET:
                compress[suffix] = pos
            buf += piece
        buf.append(0)

    # -- records -----------------------------------------------------------------------------
    def rr(self, owner: WireName | None, rdtype: int, ttl: int, rdata: dns.rdata.Rdata):
        """One RR; ``owner=None`` means the query name (:meth:`qname_pointer`)."""
        self._rr(owner, rdtype, _RR_FIXED.pack(rdtype, _CLASS_IN, ttl), rdata)

    def rrset(self, owner: WireName | None, rdtype: int, ttl: int, rdatas) -> int:
        if not rdatas:
            return 0
        fixed = _RR_FIXED.pack(rdtype, _CLASS_IN, ttl)
        for rdata in rdatas:
            self._rr(owner, rdtype, fixed, rdata)
        return len(rdatas)

    def _rr(self, owner: WireName | None, rdtype: int, fixed: bytes, rdata) -> None:
        if owner is None:
            self.qname_pointer()
        else:
            self.name(owner)
        self.buf += fixed
        encoded = self.cache.rdata(rdtype, rdata)
        if type(encoded) is bytes:
            self.buf += encoded
        else:
            self._rdata_parts(encoded)

    def _rdata_parts(self, parts: tuple) -> None:
        """RDLENGTH, then RDATA whose names are compressed: its length is known afterwards."""
        buf = self.buf
        rdlen_at = len(buf)
        buf += b"\0\0"
        for part in parts:
            if type(part) is bytes:
                buf += part
            else:
                self.name(part)
        rdlen = len(buf) - rdlen_at - 2
        if rdlen > 0xFFFF:
            raise TemplateTooLarge("RDATA over 65535 octets")
        _U16.pack_into(buf, rdlen_at, rdlen)

    # -- result ------------------------------------------------------------------------------
    def mark(self) -> int:
        """Body offset of the next byte (an RR boundary when called between RRs)."""
        return len(self.buf)

    def body(self) -> bytes:
        body = bytes(self.buf)
        if len(body) > MAX_BODY:
            raise TemplateTooLarge(f"answer of {len(body)} octets does not fit a DNS message")
        return body
