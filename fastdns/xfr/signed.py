"""A signed hosted zone as AXFR sends it: the zone as served to DO=1 queries.

Besides the zone's own RRsets (``fastdns.xfr.axfr``) the transfer carries what
``fastdns.compile`` adds to a signed zone: the apex DNSKEY and NSEC3PARAM RRsets, the NSEC3
chain (``fastdns.dnssec.nsec3``, built the way the compiler builds it; a zone served with
compact denial is sent with the chain too) and an RRSIG for every
authoritative RRset (RFC 4035 §2.2) -- not for the NS RRset at a delegation nor for glue (names
at or below a cut other than the cut's DS, RFC 4035 §2.2). Signatures come from the signer of
the compile being served: its cache holds the RRSIGs the answers carry, so a secondary serves
the very signatures the primary does (a signature the cache lacks is made by that signer, with
that compile's validity period).
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.name
import dns.rdatatype
import dns.rrset

# The compiler's own apex additions (DNSKEY, NSEC3PARAM), so both add the same records.
from fastdns.compile import _with_dnssec_records
from fastdns.dnssec.nsec3 import nsec3_chain, occluded, with_ancestors
from fastdns.dnssec.signer import ZoneSigner
from fastdns.image import name_key
from fastdns.model import Zone
from fastdns.xfr.axfr import soa_rrset

__all__ = ["signed_axfr_rrsets"]

NS, DS, SOA, NSEC3, RRSIG = (
    dns.rdatatype.NS,
    dns.rdatatype.DS,
    dns.rdatatype.SOA,
    dns.rdatatype.NSEC3,
    dns.rdatatype.RRSIG,
)


def _rrsig(owner: dns.name.Name, ttl: int, sigs) -> dns.rrset.RRset:
    # RFC 4034 §3: an RRSIG's TTL is the covered RRset's.
    return dns.rrset.from_rdata_list(owner, ttl, list(sigs))


def signed_axfr_rrsets(zone: Zone, signer: ZoneSigner) -> Iterator[dns.rrset.RRset]:
    """Every RRset of signed ``zone`` with its RRSIG, then the NSEC3 chain, SOA first and
    last (RFC 5936 §2.2); made as they are sent."""
    # Compact denial (RFC 9824) is made per query by the primary and cannot be transferred:
    # a zone that uses it goes out with an NSEC3 chain and its NSEC3PARAM instead, so that
    # a secondary with no signing of its own can still prove denial (RFC 5155 §7.2).
    zone = _with_dnssec_records(zone, signer, nsec3=True)
    apex = name_key(zone.origin)
    types: dict[tuple[bytes, ...], set[int]] = {}
    for name, rdtype in zone.rrsets:
        types.setdefault(name_key(name), set()).add(rdtype)
    cuts = {key for key, listed in types.items() if NS in listed and key != apex}

    def authoritative(key: tuple[bytes, ...], rdtype: int) -> bool:
        if key in cuts:
            return rdtype == DS  # the delegation NS and glue are the child's (RFC 4035 §2.2)
        return not occluded(key, apex, cuts)

    soa, soa_data = soa_rrset(zone), zone.soa
    yield soa
    yield _rrsig(soa.name, soa.ttl, signer.sign(dns.name.Name(apex), SOA, soa.ttl, soa_data.rdatas))
    for (name, rdtype), candidates in zone.rrsets.items():
        record_set = candidates[0]  # the first candidate, as fastdns.xfr.axfr sends it
        if not record_set.rdatas or (rdtype == SOA and name == zone.origin):
            continue
        yield dns.rrset.from_rdata_list(name, record_set.ttl, record_set.rdatas)
        key = name_key(name)
        if authoritative(key, rdtype):
            sigs = signer.sign(dns.name.Name(key), rdtype, record_set.ttl, record_set.rdatas)
            yield _rrsig(name, record_set.ttl, sigs)
    # RFC 9077 §3.3 / the compiler: NSEC3 TTL is min(SOA TTL, SOA MINIMUM).
    ttl = min(soa_data.ttl, soa_data.rdatas[0].minimum)
    chain = nsec3_chain(zone.origin, with_ancestors(types, apex), types, cuts, signer, ttl)
    for owner, (rdata, sigs) in zip(chain.owners, chain.records, strict=True):
        name = dns.name.Name(owner)
        yield dns.rrset.from_rdata(name, ttl, rdata)
        yield _rrsig(name, ttl, sigs)
    yield soa
