"""A signed zone's NSEC3 chain (RFC 5155), built one way for the compiler and zone transfers.

The compiler writes the chain's records into the signed answers and the image; a zone transfer
(``fastdns.xfr.signed``) sends the same records, so both take them from ``nsec3_chain``. Its
signatures come from the zone's ``ZoneSigner``, whose cache makes the second build reuse the
first one's RRSIGs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from fastdns.dnssec.signer import ZoneSigner, hash_label, nsec3_hash_key

__all__ = ["Nsec3Chain", "nsec3_chain", "occluded", "with_ancestors"]

Key = tuple[bytes, ...]  # a name's labels lower-cased, root label last (image.name_key)

NS, DS, RRSIG, NSEC3 = (
    dns.rdatatype.NS,
    dns.rdatatype.DS,
    dns.rdatatype.RRSIG,
    dns.rdatatype.NSEC3,
)


@dataclass(frozen=True)
class Nsec3Chain:
    """The chain in hash order: ``hashes[i]`` is entry ``i``'s hash, ``owners[i]`` its owner's
    labels (hash label + the origin as the zone spells it), ``records[i]`` (NSEC3 RDATA, its
    RRSIG RDATAs); ``index`` maps each name with an entry to its position."""

    hashes: list[bytes]
    index: dict[Key, int]
    owners: list[tuple[bytes, ...]]
    records: list[tuple[object, tuple]]


def occluded(key: Key, apex: Key, cuts: set[Key]) -> bool:
    """A cut strictly between the apex and ``key`` hides ``key`` (RFC 1034 §4.2.1)."""
    depth = len(key) - len(apex)  # labels below the apex
    if depth < 2:
        return False
    return any(key[i:] in cuts for i in range(1, depth))


def with_ancestors(keys: Iterable[Key], apex: Key) -> set[Key]:
    """``keys`` and every name between each of them and the apex: the empty non-terminals
    that have an NSEC3 of their own (RFC 5155 §7.1)."""
    names = {apex}
    for key in keys:
        while len(key) > len(apex) and key not in names:
            names.add(key)
            key = key[1:]
    return names


def nsec3_chain(
    origin: dns.name.Name,
    names: Iterable[Key],
    types: Mapping[Key, Iterable[int]],
    cuts: set[Key],
    signer: ZoneSigner,
    ttl: int,
) -> Nsec3Chain:
    """One NSEC3 per name of ``names`` (owner names and empty non-terminals, the apex's key
    first or not) except those below a cut (RFC 5155 §7.1), each naming the next hash and its
    name's ``types`` and signed with ``signer`` at ``ttl`` (RFC 9077: min(SOA TTL, MINIMUM)).

    At a cut only NS and DS are listed (the rest is glue, RFC 1034 §4.2.1), RRSIG only with
    DS (the delegation NS is unsigned, RFC 4035 §2.2); anywhere else RRSIG joins a non-empty
    type list. No opt-out (RFC 9276 §3.1)."""
    apex = tuple(label.lower() for label in origin.labels)
    by_hash: dict[bytes, Key] = {}
    for key in names:
        if not occluded(key, apex, cuts):
            by_hash[nsec3_hash_key(key)] = key
    hashes = sorted(by_hash)
    index = {by_hash[h]: i for i, h in enumerate(hashes)}
    owners, records = [], []
    count = len(hashes)
    for i, digest in enumerate(hashes):
        key = by_hash[digest]
        listed = set(types.get(key, ()))
        if key in cuts:
            listed &= {NS, DS}
            if DS in listed:
                listed.add(RRSIG)
        elif listed:
            listed.add(RRSIG)
        owner = (hash_label(digest), *origin.labels)
        rdata = signer.nsec3_rdata(hashes[(i + 1) % count], listed)
        sigs = signer.sign(dns.name.Name(owner), NSEC3, ttl, [rdata])
        owners.append(owner)
        records.append((rdata, sigs))
    return Nsec3Chain(hashes, index, owners, records)
