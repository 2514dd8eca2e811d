"""The control plane's answers to the TCP messages workers cannot answer in C.

Those are zone transfers (AXFR, RFC 5936; IXFR, RFC 1995) and TSIG-signed queries (RFC 8945).
``ControlPlaneService.respond(wire, peer)`` gives the response messages for one forwarded
request, in order:

1. a message that does not parse gets FORMERR (header only);
2. a bad TSIG gets NOTAUTH with the TSIG error (RFC 8945 §5.2), whatever the question;
3. AXFR/IXFR: NOTAUTH for a zone we do not serve (RFC 5936 §2.2.1), REFUSED when the zone's
   ``TransferPolicy`` does not allow the peer (address, key), else the zone. IXFR is answered
   with the whole zone in AXFR form (RFC 1995 §4: allowed when no history is kept), or with
   the single SOA when the client is already up to date (RFC 1995 §2);
4. any other signed query is answered by the same C catalog the workers use, and signed.

Every response to a signed request is signed with its key (RFC 8945 §5.3). Runs on the
supervisor's transfer threads: the zones and catalog are replaced whole, never mutated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from fastdns.model import Zone
from fastdns.xfr.acl import transfer_allowed
from fastdns.xfr.axfr import axfr_rrsets, soa_rrset, transfer_messages
from fastdns.xfr.config import TransferConfig
from fastdns.xfr.tsig import Keyring, VerifiedRequest, sign_response, verify_request

log = logging.getLogger("fastdns.xfr")

__all__ = ["ControlPlaneService", "serial_at_least"]

HEADER_LEN = 12


def serial_at_least(serial: int, reference: int) -> bool:
    """Whether SOA serial ``serial`` is ``reference`` or later (RFC 1982 §3.2 arithmetic)."""
    return (serial - reference) % 2**32 < 2**31


def formerr(wire: bytes) -> bytes | None:
    """A header-only FORMERR for a message that could not be parsed (None: too short)."""
    if len(wire) < HEADER_LEN or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x79) << 8 | dns.rcode.FORMERR
    return wire[:2] + flags.to_bytes(2, "big") + bytes(8)


class ControlPlaneService:
    """Answers forwarded requests from the zones and catalog given to ``update``."""

    def __init__(self, transfer: TransferConfig, keyring: Keyring) -> None:
        self.transfer = transfer
        self.keyring = keyring
        self.zones: Mapping[dns.name.Name, Zone] = {}
        self.catalog = None  # a fastdns._core.Catalog over the served snapshot, or None

    def update(self, zones: Mapping[dns.name.Name, Zone], catalog=None) -> None:
        """Serve ``zones`` (and answer signed queries from ``catalog``) from now on."""
        self.zones = zones
        self.catalog = catalog

    def respond(self, wire: bytes, peer: str) -> Iterator[bytes]:
        """The response messages to request ``wire`` from ``peer`` (an IP address as text)."""
        try:
            verified = verify_request(wire, self.keyring)
        except Exception as exc:  # any parse failure of dnspython's
            log.debug("request from %s does not parse: %s", peer, exc)
            reply = formerr(wire)
            if reply is not None:
                yield reply
            return
        request = verified.message
        if verified.response is not None:
            log.warning(
                "request from %s signed with key %s: TSIG error %s",
                peer,
                request.keyname,
                dns.rcode.to_text(verified.error, tsig=True),
            )
            yield verified.response
            return
        if request.opcode() != dns.opcode.QUERY or len(request.question) != 1:
            yield self._error(verified, dns.rcode.NOTIMP)
            return
        if request.question[0].rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            yield from self._transfer(verified, peer)
        else:
            yield self._signed_query(verified, wire)

    def _error(self, verified: VerifiedRequest, rcode: int) -> bytes:
        response = dns.message.make_response(verified.message)
        response.set_rcode(rcode)
        return sign_response(response, verified).to_wire()

    def _transfer(self, verified: VerifiedRequest, peer: str) -> Iterator[bytes]:
        request = verified.message
        question = request.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        zone = self.zones.get(question.name)
        if zone is None or question.rdclass != dns.rdataclass.IN:
            log.info("%s of %s from %s: not a zone we serve", kind, question.name, peer)
            yield self._error(verified, dns.rcode.NOTAUTH)
            return
        key_name = verified.key.name if verified.key is not None else None
        if not transfer_allowed(self.transfer.for_zone(zone.origin), peer, key_name):
            log.info(
                "%s of zone %s refused to %s (key %s)", kind, zone.origin, peer, key_name or "-"
            )
            yield self._error(verified, dns.rcode.REFUSED)
            return
        soa = soa_rrset(zone)
        serial = soa[0].serial
        if question.rdtype == dns.rdatatype.IXFR:
            client = [rrset for rrset in request.authority if rrset.rdtype == dns.rdatatype.SOA]
            if client and serial_at_least(client[0][0].serial, serial):
                # RFC 1995 §2: the client is up to date; our SOA alone says so.
                yield from transfer_messages(request, [soa], verified.key)
                return
        log.info(
            "%s of zone %s serial %d to %s (key %s): %d RRsets",
            kind,
            zone.origin,
            serial,
            peer,
            key_name or "-",
            len(zone.rrsets),
        )
        yield from transfer_messages(request, axfr_rrsets(zone), verified.key)

    def _signed_query(self, verified: VerifiedRequest, wire: bytes) -> bytes:
        """The catalog's answer to the request without its TSIG, signed."""
        plain = dns.message.from_wire(wire, keyring=False)
        plain.tsig = None
        reply = self.catalog.answer(plain.to_wire(), True) if self.catalog is not None else None
        if not reply:
            return self._error(verified, dns.rcode.SERVFAIL)
        response = dns.message.from_wire(reply)
        return sign_response(response, verified).to_wire(max_size=65535)
