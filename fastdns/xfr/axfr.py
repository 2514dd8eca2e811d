"""A zone model as AXFR response messages (RFC 5936 §2.2), TSIG-signed when asked.

The zone's SOA comes first and last (§2.2); every other RRset once in between, as many as fit
per message. The question is in the first message only (§2.2.1 allows it in every one).
Messages are rendered by dnspython (``dns.renderer``, name compression per message) and, for a
signed request, each one carries a TSIG that chains to the previous one (RFC 8945 §5.3.1,
dnspython's ``add_multi_tsig``).

A name with routing-policy candidates (several record sets for one name and type, hosted zones
only) is transferred as its first candidate: a secondary has no way to choose per query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
import dns.renderer
import dns.rrset
import dns.tsig

from fastdns.model import Zone

__all__ = ["MESSAGE_SIZE", "axfr_rrsets", "soa_rrset", "transfer_messages"]

# Octets per message: well below the 65535 of RFC 5936 §2.2 so that a large zone streams
# in many moderate messages rather than a few huge ones.
MESSAGE_SIZE = 16384


def soa_rrset(zone: Zone) -> dns.rrset.RRset:
    """The SOA RRset of ``zone``; ``ValueError`` without one."""
    soa = zone.soa
    if soa is None or not soa.rdatas:
        raise ValueError(f"zone {zone.origin} has no SOA")
    return dns.rrset.from_rdata_list(zone.origin, soa.ttl, soa.rdatas)


def axfr_rrsets(zone: Zone) -> Iterator[dns.rrset.RRset]:
    """Every RRset of ``zone`` in transfer order: SOA, the rest, SOA (RFC 5936 §2.2). Made
    as they are sent, so the first message leaves before the last RRset is built."""
    soa = soa_rrset(zone)
    yield soa
    for (name, rdtype), candidates in zone.rrsets.items():
        record_set = candidates[0]
        if not record_set.rdatas or (rdtype == dns.rdatatype.SOA and name == zone.origin):
            continue
        yield dns.rrset.from_rdata_list(name, record_set.ttl, record_set.rdatas)
    yield soa


def _tsig_size(key: dns.tsig.Key) -> int:
    """Octets a TSIG RR signed with ``key`` takes (owner, fixed RR fields, RDATA)."""
    fixed = 10 + 6 + 2 + 2 + 2 + 2 + 2  # TYPE..RDLENGTH, time, fudge, MAC size, id, error, len
    return (
        len(key.name.to_wire())
        + len(key.algorithm.to_wire())
        + fixed
        + (dns.tsig.mac_sizes[key.algorithm])
    )


def transfer_messages(
    request: dns.message.Message,
    rrsets: Iterable[dns.rrset.RRset],
    key: dns.tsig.Key | None = None,
    *,
    max_size: int = MESSAGE_SIZE,
) -> Iterator[bytes]:
    """The response messages (wire format) carrying ``rrsets`` in order, answering
    ``request``; signed with ``key`` (which verified ``request``) when given."""
    question = request.question[0]
    flags = dns.flags.QR | dns.flags.AA | (request.flags & dns.flags.RD)
    tsig = request.tsig[0] if key is not None else None
    reserve = _tsig_size(key) if key is not None else 0
    ctx = None
    first = True

    def start() -> dns.renderer.Renderer:
        renderer = dns.renderer.Renderer(request.id, flags, max_size)
        if first:
            renderer.add_question(question.name, question.rdtype, question.rdclass)
        renderer.reserve(reserve)
        return renderer

    def finish(renderer: dns.renderer.Renderer) -> bytes:
        nonlocal ctx, first
        renderer.release_reserved()
        renderer.write_header()
        if key is not None:
            ctx = renderer.add_multi_tsig(
                ctx,
                key.name,
                key,
                tsig.fudge,
                tsig.original_id,
                0,
                b"",
                request.mac,
                key.algorithm,
            )
        first = False
        return renderer.get_wire()

    renderer = start()
    empty = True
    for rrset in rrsets:
        try:
            renderer.add_rrset(dns.renderer.ANSWER, rrset)
            empty = False
            continue
        except dns.exception.TooBig:
            pass
        if not empty:
            yield finish(renderer)
            renderer = start()
        try:
            renderer.add_rrset(dns.renderer.ANSWER, rrset)
        except dns.exception.TooBig:
            # An RRset larger than a message: one RR per RRset, across messages.
            for rdata in rrset:
                single = dns.rrset.from_rdata(rrset.name, rrset.ttl, rdata)
                try:
                    renderer.add_rrset(dns.renderer.ANSWER, single)
                except dns.exception.TooBig:
                    yield finish(renderer)
                    renderer = start()
                    renderer.add_rrset(dns.renderer.ANSWER, single)
        empty = False
    yield finish(renderer)
