"""Compact denial of existence (RFC 9824): the NSEC records of a zone that denies online.

Route 53 answers a nonexistent name with NOERROR and an NSEC owned by that very name, whose
next name is its immediate successor ``\\000.<name>`` (RFC 4470 §3.1.1) and whose type bitmap
lists RRSIG, NSEC and NXNAME (RFC 9824 §3.4, the type that tells a nonexistent name from an
empty non-terminal); NODATA gets an NSEC for the name listing its types. The hot path makes and
signs these per query (``ext/dnssec.pxi``, ``ext/online.pxi``); this module makes what is fixed
at compile time: every node's type bitmap for the image, and the NSEC records of answers whose
proof does not depend on the query name (a referral without DS, the end of a CNAME chain).
"""

from __future__ import annotations

import bisect

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
from dns.rdtypes.util import Bitmap

from fastdns.dnssec.keys import ECDSAP256SHA256, ED25519

__all__ = ["NXNAME", "CompactDenial", "bitmap_wire", "supports_online"]

NXNAME = 128  # RFC 9824 §3.4
NS, DS, RRSIG, NSEC = (
    dns.rdatatype.NS,
    dns.rdatatype.DS,
    dns.rdatatype.RRSIG,
    dns.rdatatype.NSEC,
)

Key = tuple[bytes, ...]


def supports_online(algorithm: int) -> bool:
    """Whether the hot path can sign with ``algorithm``: ECDSA P-256 (RFC 6605) and Ed25519
    (RFC 8080), the two algorithms our keys can have (ext/online.pxi)."""
    return algorithm in (ECDSAP256SHA256, ED25519)


def bitmap_wire(types) -> bytes:
    """An NSEC type bitmap (RFC 4034 §4.1.2) in wire form."""
    out = bytearray()
    for window, bits in Bitmap.from_rdtypes(sorted(types)).windows:
        out += bytes((window, len(bits))) + bits
    return bytes(out)


def successor(key: Key, origin: dns.name.Name = dns.name.root) -> dns.name.Name:
    """The immediate successor of a name in canonical order: ``\\000.<name>`` (RFC 4470
    §3.1.1), or for a name of 254 or 255 octets the rest of RFC 4471 §3.1.2 (a zero octet
    appended to its first label, else that label incremented), as ext/dnssec.pxi
    ``name_successor`` does per query."""
    return dns.name.Name(key).successor(origin)


def after_subtree(key: Key, origin: dns.name.Name = dns.name.root) -> dns.name.Name:
    """The first name after ``key`` and every name below it: its first label with a zero
    octet appended, else (a 63-octet label, a 255-octet name) RFC 4471 §3.1.2 without the
    prefix step."""
    return dns.name.Name(key).successor(origin, prefix_ok=False)


class CompactDenial:
    """The compact-denial NSEC records of one compile.

    ``data`` maps each owner key to its types, ``cuts`` are the delegation points, ``occluded``
    says whether a key is below a cut. Records are numbered in ``records`` as (owner key, NSEC
    RDATA), each made once.
    """

    def __init__(self, data: dict[Key, dict], cuts: set[Key], occluded, names: list[Key]):
        self.data = data
        self.cuts = cuts
        self.occluded = occluded
        # Every name of the trie (owners and empty non-terminals) in canonical order: reversed
        # labels compare as RFC 4034 §6.1 orders names (lower-cased; a shorter label first).
        self._order = sorted(names, key=lambda k: k[::-1])
        self._sort_keys = [k[::-1] for k in self._order]
        self.records: list[tuple[Key, object]] = []
        self._index: dict[tuple[Key, Key], int] = {}

    def types(self, key: Key) -> set[int]:
        """The types the NSEC at ``key`` lists: its own, NS and DS only at a cut (RFC 4035
        §2.3), nothing below one, and always RRSIG and NSEC (the NSEC is signed)."""
        if self.occluded(key):
            types: set[int] = set()
        elif key in self.cuts:
            types = set(self.data.get(key, {})) & {NS, DS}
        else:
            types = set(self.data.get(key, {}))
        return types | {RRSIG, NSEC}

    def bitmap(self, key: Key) -> bytes:
        return bitmap_wire(self.types(key))

    def _record(self, owner: Key, next_name: dns.name.Name, types) -> int:
        found = self._index.get((owner, next_name))
        if found is not None:
            return found
        rdata = dns.rdtypes.ANY.NSEC.NSEC(
            dns.rdataclass.IN,
            dns.rdatatype.NSEC,
            next_name,
            Bitmap.from_rdtypes(sorted(types)).windows,
        )
        self.records.append((owner, rdata))
        self._index[(owner, next_name)] = len(self.records) - 1
        return len(self.records) - 1

    def match(self, key: Key) -> int:
        """NODATA at an existing name (and no DS at a cut): its NSEC with its types."""
        return self._record(key, successor(key), self.types(key))

    def nxdomain(self, key: Key) -> int:
        """A nonexistent name, answered as NODATA (RFC 9824 §3.1)."""
        return self._record(key, successor(key), {RRSIG, NSEC, NXNAME})

    def wildcard(self, key: Key, wildcard: Key, *, nodata: bool) -> int:
        """A name answered from ``wildcard``. NODATA: the name's NSEC with the wildcard's
        types. An answer: the NSEC from the existing name before ``key`` to the first name
        after the next closer name's subtree, which covers ``key`` (RFC 4035 §3.1.3.3) and no
        existing name, nor the wildcard (ext/dnssec.pxi compact_proof makes the same per
        query)."""
        if nodata:
            return self._record(key, successor(key), self.types(wildcard))
        pred = self._order[bisect.bisect_left(self._sort_keys, key[::-1]) - 1]
        next_closer = key[len(key) - len(wildcard) :]  # one label more than the encloser
        return self._record(pred, after_subtree(next_closer), self.types(pred))
