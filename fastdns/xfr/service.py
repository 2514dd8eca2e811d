"""The control plane's answers to the messages workers cannot answer in C.

Those are zone transfers (AXFR, RFC 5936; IXFR, RFC 1995, over TCP and UDP), TSIG-signed
queries (RFC 8945), UPDATE and NOTIFY. ``ControlPlaneService.respond(wire, peer)`` gives the
response messages for one forwarded request, in order:

1. a message that does not parse gets FORMERR (header only);
2. a bad TSIG gets NOTAUTH with the TSIG error (RFC 8945 §5.2), whatever the question;
3. AXFR/IXFR: NOTAUTH for a zone we do not serve (RFC 5936 §2.2.1), REFUSED when the zone's
   ``TransferPolicy`` does not allow the peer (address, key), else the zone. IXFR is answered
   with the single SOA when the client is already up to date (RFC 1995 §2), with the
   differences from the client's serial when ``history`` has them (hosted zones,
   ``fastdns.xfr.ixfr``) and they are smaller than the zone, else with the whole zone in AXFR
   form (RFC 1995 §4; always for a DNSSEC-signed zone, signed: ``fastdns.xfr.signed``). Over
   UDP (RFC 1995 §2) the answer is one datagram: the single SOA when the client is up to date,
   the differences when they fit, else the single SOA of the current version (the client
   then asks over TCP);
4. UPDATE (RFC 2136; ``fastdns.xfr.update``): FORMERR for a zone section that is not one SOA
   question (§3.1.1), NOTAUTH for a zone we do not serve, REFUSED unless the zone's
   ``UpdatePolicy`` names the key that signed it (§3.3; unsigned: always REFUSED), else, for
   a secondary zone, the answer of its primary (forwarded as the client sent it, §6;
   ``fastdns.xfr.forward``; SERVFAIL when no primary answers), else what ``updater``
   answers (REFUSED for zones that are not hosted zones);
5. NOTIFY (RFC 1996): NOERROR when ``on_notify`` (secondary zones) takes it, else REFUSED
   (NOTIMP without one);
6. any other signed query is answered by the same C catalog the workers use, and signed.

Every response to a signed request is signed with its key (RFC 8945 §5.3). Runs on the
supervisor's transfer threads: the zones and catalog are replaced whole, never mutated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from fastdns.dnssec.signer import ZoneSigner
from fastdns.model import Zone, ZoneLoadError
from fastdns.xfr.acl import transfer_allowed
from fastdns.xfr.axfr import axfr_rrsets, soa_rrset, transfer_messages
from fastdns.xfr.config import NotifyTarget, TransferConfig, UpdateConfig, update_allowed
from fastdns.xfr.forward import forward_update
from fastdns.xfr.ixfr import Difference, ixfr_rrsets
from fastdns.xfr.signed import signed_axfr_rrsets
from fastdns.xfr.tsig import Keyring, VerifiedRequest, sign_response, verify_request

log = logging.getLogger("fastdns.xfr")

__all__ = ["ControlPlaneService", "serial_at_least"]

HEADER_LEN = 12
UDP_MIN_PAYLOAD = 512  # RFC 1035 §4.2.1; RFC 6891 §6.2.5: smaller EDNS offers count as 512


def serial_at_least(serial: int, reference: int) -> bool:
    """Whether SOA serial ``serial`` is ``reference`` or later (RFC 1982 §3.2 arithmetic)."""
    return (serial - reference) % 2**32 < 2**31


def formerr(wire: bytes) -> bytes | None:
    """A FORMERR for a message that could not be parsed (None: too short, or a response): the
    header, and the question when it is one uncompressed name, type and class."""
    if len(wire) < HEADER_LEN or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x79) << 8 | dns.rcode.FORMERR
    question = b""
    if wire[4:6] == b"\x00\x01":
        try:
            name, used = dns.name.from_wire(wire, HEADER_LEN)
        except dns.exception.DNSException:
            pass
        else:
            end = HEADER_LEN + used + 4
            if end <= len(wire) and name.to_wire() == wire[HEADER_LEN : HEADER_LEN + used]:
                question = wire[HEADER_LEN:end]
    counts = (1 if question else 0).to_bytes(2, "big") + bytes(6)
    return wire[:2] + flags.to_bytes(2, "big") + counts + question


class ControlPlaneService:
    """Answers forwarded requests from the zones and catalog given to ``update``."""

    def __init__(self, transfer: TransferConfig, keyring: Keyring) -> None:
        self.transfer = transfer
        self.keyring = keyring
        self.zones: Mapping[dns.name.Name, Zone] = {}
        self.catalog = None  # a fastdns._core.Catalog over the served snapshot, or None
        self.signers: Mapping[dns.name.Name, ZoneSigner] = {}
        # (origin, client serial, served serial) -> the IXFR differences, or None when the
        # history does not have them (zone files): set by the supervisor.
        self.history: (
            Callable[[dns.name.Name, int, int], tuple[list[Difference], Difference] | None] | None
        ) = None
        self.update_policy = UpdateConfig()
        self.udp_max_payload = 1232  # the server's own UDP limit (config udp_max_payload)
        # (origin, UPDATE parsed one RR per RRset, peer, key name) -> RCODE: set by the
        # supervisor; runs the update through the store's change pipeline.
        self.updater: (
            Callable[[dns.name.Name, dns.message.Message, str, dns.name.Name], int] | None
        ) = None
        # origin -> the primaries to forward its UPDATEs to (RFC 2136 §6), or None when it
        # is not a secondary zone: set by the supervisor.
        self.primaries: Callable[[dns.name.Name], tuple[NotifyTarget, ...] | None] | None = None
        # (origin, peer, key name or None) -> whether a NOTIFY was taken (secondary zones).
        self.on_notify: Callable[[dns.name.Name, str, dns.name.Name | None], bool] | None = None

    def update(
        self,
        zones: Mapping[dns.name.Name, Zone],
        catalog=None,
        signers: Mapping[dns.name.Name, ZoneSigner] | None = None,
    ) -> None:
        """Serve ``zones`` (and answer signed queries from ``catalog``) from now on; the zones
        of ``signers`` are DNSSEC-signed, by the signer of the compile being served."""
        self.signers = dict(signers or {})  # first: a zone is never seen without its signer
        self.zones = zones
        self.catalog = catalog

    def respond(self, wire: bytes, peer: str, *, udp: bool = False) -> Iterator[bytes]:
        """The response messages to request ``wire`` from ``peer`` (an IP address as text);
        one that fits a datagram when the request came over UDP (``udp``)."""
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
        if request.opcode() == dns.opcode.UPDATE:
            yield self._update(verified, wire, peer)
            return
        if request.opcode() == dns.opcode.NOTIFY:
            yield self._notify(verified, peer)
            return
        if request.opcode() != dns.opcode.QUERY or len(request.question) != 1:
            yield self._error(verified, dns.rcode.NOTIMP)
            return
        if request.question[0].rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            yield from self._transfer(verified, peer, udp)
        else:
            yield self._signed_query(verified, wire)

    def _error(self, verified: VerifiedRequest, rcode: int) -> bytes:
        response = dns.message.make_response(verified.message)
        response.set_rcode(rcode)
        return sign_response(response, verified).to_wire()

    def _update(self, verified: VerifiedRequest, wire: bytes, peer: str) -> bytes:
        request = verified.message
        if len(request.question) != 1 or request.question[0].rdtype != dns.rdatatype.SOA:
            return self._error(verified, dns.rcode.FORMERR)  # RFC 2136 §3.1.1
        origin = request.question[0].name
        key_name = verified.key.name if verified.key is not None else None
        if origin not in self.zones or request.question[0].rdclass != dns.rdataclass.IN:
            log.info("UPDATE of %s from %s: not a zone we serve", origin, peer)
            return self._error(verified, dns.rcode.NOTAUTH)
        if not update_allowed(self.update_policy.for_zone(origin), peer, key_name):
            log.info("UPDATE of zone %s refused to %s (key %s)", origin, peer, key_name or "-")
            return self._error(verified, dns.rcode.REFUSED)
        primaries = self.primaries(origin) if self.primaries is not None else None
        if primaries:
            return self._forward(verified, wire, peer, primaries)
        if self.updater is None:
            return self._error(verified, dns.rcode.REFUSED)
        # One RR per RRset, in message order: §3.4.2 applies the update section RR by RR.
        message = dns.message.from_wire(wire, keyring=False, one_rr_per_rrset=True)
        try:
            rcode = self.updater(origin, message, peer, key_name)
        except Exception:
            log.exception("UPDATE of zone %s from %s failed", origin, peer)
            rcode = dns.rcode.SERVFAIL
        return self._error(verified, rcode)

    def _forward(self, verified: VerifiedRequest, wire: bytes, peer: str, primaries) -> bytes:
        """RFC 2136 §6: a secondary zone's UPDATE, as the client sent it, to its primaries;
        their answer, or SERVFAIL when none answers."""
        origin = verified.message.question[0].name
        key_name = verified.key.name if verified.key is not None else "-"
        forwarded = forward_update(wire, primaries)
        if forwarded is None:
            log.warning(
                "UPDATE of secondary zone %s from %s (key %s): no primary answered",
                origin, peer, key_name,
            )  # fmt: skip
            return self._error(verified, dns.rcode.SERVFAIL)
        reply, primary = forwarded
        log.info(
            "UPDATE of secondary zone %s from %s (key %s): forwarded to %s, %s",
            origin, peer, key_name, primary, dns.rcode.to_text(reply[3] & 0x0F),
        )  # fmt: skip
        return reply

    def _notify(self, verified: VerifiedRequest, peer: str) -> bytes:
        request = verified.message
        if self.on_notify is None:
            return self._error(verified, dns.rcode.NOTIMP)
        if len(request.question) != 1 or request.question[0].rdtype != dns.rdatatype.SOA:
            return self._error(verified, dns.rcode.FORMERR)  # RFC 1996 §3.7
        key_name = verified.key.name if verified.key is not None else None
        taken = self.on_notify(request.question[0].name, peer, key_name)
        response = dns.message.make_response(request)
        response.flags |= dns.flags.AA
        response.set_rcode(dns.rcode.NOERROR if taken else dns.rcode.REFUSED)
        return sign_response(response, verified).to_wire()

    def _transfer(self, verified: VerifiedRequest, peer: str, udp: bool) -> Iterator[bytes]:
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
        try:
            # A zone file's stand-in reads the file now (fastdns.nativezone).
            zone = zone.materialized()
        except ZoneLoadError as exc:
            log.warning("%s of zone %s to %s: %s", kind, zone.origin, peer, exc)
            yield self._error(verified, dns.rcode.SERVFAIL)
            return
        soa = soa_rrset(zone)
        serial = soa[0].serial
        client = [rrset for rrset in request.authority if rrset.rdtype == dns.rdatatype.SOA]
        client_serial = client[0][0].serial if client else None
        if question.rdtype == dns.rdatatype.IXFR:
            if client_serial is not None and serial_at_least(client_serial, serial):
                # RFC 1995 §2: the client is up to date; our SOA alone says so.
                if udp:
                    yield self._datagram(verified, [soa])
                else:
                    yield from transfer_messages(request, [soa], verified.key)
                return
            candidates = self._increments(zone, client_serial, serial)
            if udp:
                yield self._ixfr_datagram(verified, soa, candidates, peer, client_serial)
                return
            for differences, how in candidates:
                log.info(
                    "IXFR of zone %s serial %d -> %d to %s (key %s): %d %s, %d RRs",
                    zone.origin, client_serial, serial, peer, key_name or "-",
                    len(differences), how, sum(d.size() for d in differences),
                )  # fmt: skip
                yield from transfer_messages(request, ixfr_rrsets(soa, differences), verified.key)
                return
            kind = "IXFR (whole zone)"
        log.info(
            "%s of zone %s serial %d to %s (key %s): %d RRsets",
            kind,
            zone.origin,
            serial,
            peer,
            key_name or "-",
            len(zone.rrsets),
        )
        signer = self.signers.get(zone.origin)
        rrsets = axfr_rrsets(zone) if signer is None else signed_axfr_rrsets(zone, signer)
        yield from transfer_messages(request, rrsets, verified.key)

    def _increments(
        self, zone: Zone, client_serial: int | None, serial: int
    ) -> list[tuple[list[Difference], str]]:
        """The IXFR bodies worth sending from ``client_serial`` to ``serial``, best first: one
        difference per change, then all of them condensed into one (RFC 1995 §5), each only
        while it is smaller than the zone; empty when only the whole zone will do."""
        # A signed zone's IXFR is the whole zone (RFC 1995 §4 allows it): its RRSIGs and
        # NSEC3 records are not in the change history, and re-signing replaces signatures
        # with no change at all. A signed difference would need every version's RRSIGs and
        # NSEC3 chain kept (the deleted ones must be sent exactly); we keep only the served
        # version's.
        if client_serial is None or self.history is None or zone.origin in self.signers:
            return []
        found = self.history(zone.origin, client_serial, serial)
        if found is None:
            return []
        zone_size = sum(len(c[0].rdatas) for c in zone.rrsets.values())
        return [
            (differences, how)
            for differences, how in ((found[0], "changes"), ([found[1]], "condensed"))
            if sum(d.size() for d in differences) <= zone_size
        ]

    def _ixfr_datagram(self, verified, soa, candidates, peer: str, client_serial) -> bytes:
        """IXFR over UDP (RFC 1995 §2): the first increment that fits one datagram, else the
        current SOA alone, which tells the client to ask again over TCP."""
        origin = soa.name
        for differences, how in candidates:
            reply = self._datagram(verified, list(ixfr_rrsets(soa, differences)))
            if reply is not None:
                log.info(
                    "IXFR over UDP of zone %s serial %s -> %d to %s: %d %s",
                    origin, client_serial, soa[0].serial, peer, len(differences), how,
                )  # fmt: skip
                return reply
        log.info(
            "IXFR over UDP of zone %s serial %s -> %d to %s: the SOA alone (use TCP)",
            origin, client_serial, soa[0].serial, peer,
        )  # fmt: skip
        return self._datagram(verified, [soa])

    def _datagram(self, verified: VerifiedRequest, rrsets: list) -> bytes | None:
        """One UDP response with ``rrsets`` in its answer section, signed as the request was,
        within the client's EDNS payload size (RFC 6891 §6.2.5; 512 without EDNS, RFC 1035
        §4.2.1) and ours; None when it does not fit."""
        request = verified.message
        response = dns.message.make_response(request, our_payload=self.udp_max_payload)
        response.flags |= dns.flags.AA
        response.answer.extend(rrsets)
        sign_response(response, verified)
        limit = UDP_MIN_PAYLOAD
        if request.edns >= 0:
            limit = max(UDP_MIN_PAYLOAD, min(request.payload, self.udp_max_payload))
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            return None

    def _signed_query(self, verified: VerifiedRequest, wire: bytes) -> bytes:
        """The catalog's answer to the request without its TSIG, signed."""
        plain = dns.message.from_wire(wire, keyring=False)
        plain.tsig = None
        reply = self.catalog.answer(plain.to_wire(), True) if self.catalog is not None else None
        if not reply:
            return self._error(verified, dns.rcode.SERVFAIL)
        response = dns.message.from_wire(reply)
        return sign_response(response, verified).to_wire(max_size=65535)
