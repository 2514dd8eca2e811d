"""Zone files compiled straight from the scanner's columns (issue 8), the model made on demand.

A zone file is plain RFC 1035 data: no routing policies, no DNSSEC signing (fastdns.server
compiles zone-file zones with neither). For those, :func:`compile_zone_file` runs the scanner
(``fastdns._zscanner``) and the native compiler (``fastdns._zcompile``, C without the GIL), which
produces the image ``fastdns.compile.compile_zone`` would, byte for byte, without a Python object
per record. Whatever the native compiler does not handle -- a type outside
``fastdns._zcompile.NATIVE_TYPES`` (DNSSEC types such as NSEC3PARAM, RRSIG, NSEC, and the
types whose dnspython model differs from their wire form), or a zone that breaks a validation
rule -- takes the reference path for that zone: the model (fastdns.zonescan), fastdns.validate
(which words the errors, with file and line) and fastdns.compile.

The served zone then keeps no model: :class:`ZoneFileModel` stands in for it, holding the
origin and the SOA (what NOTIFY needs) and re-reading the file when something needs every record
(an outgoing zone transfer, fastdns.xfr), refusing when the file no longer has the served serial.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from fastdns._zcompile import compile_columns
from fastdns._zscanner import ZoneScanError, scan_zone_file
from fastdns.model import LazyZone, RecordSet, SourceLocation, Zone, ZoneError, ZoneLoadError
from fastdns.snapshot import image_buffer, sealed_image

__all__ = ["CompiledZoneFile", "ZoneFileModel", "compile_zone_file"]

log = logging.getLogger("fastdns")


class ZoneFileModel(LazyZone):
    """The model of a zone file whose image was compiled natively, made when it is needed.

    ``origin``, ``source`` and ``soa`` are held; ``rrsets`` (and :meth:`materialized`) read the
    file again with the reference reader, and keep the result only while it is in use.

    :raises ZoneLoadError: from ``rrsets``: the file cannot be read or validated any more, or
        its SOA serial is no longer the one served (it changed and was not reloaded yet).
    """

    def __init__(
        self, origin: dns.name.Name, source: str, soa: RecordSet | tuple[bytes, int, str, int]
    ):
        # Not Zone's generated __init__: the record sets are not stored. ``soa`` may be given
        # as (RDATA wire, TTL, file, line), made into a record set when first asked for (most
        # zones never are: a server with 100,000 small zones saves 70 µs per zone).
        self.origin = origin
        self.source = source
        self._soa = soa

    @property
    def soa(self) -> RecordSet:  # type: ignore[override]
        soa = self._soa
        if isinstance(soa, tuple):
            wire, ttl, file, line = soa
            rdata = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.SOA, wire, 0, len(wire))
            soa = self._soa = RecordSet(
                self.origin, dns.rdatatype.SOA, ttl, (rdata,), SourceLocation(file, line)
            )
        return soa

    def _build(self) -> Zone:
        from fastdns.zonefile import load_zone_file

        zone = load_zone_file(self.source, self.origin)
        served = self.soa.rdatas[0].serial
        soa = zone.soa
        if soa is None or soa.rdatas[0].serial != served:
            raise ZoneLoadError(
                [ZoneError(self.source, 0, f"changed since serial {served} was loaded")]
            )
        return zone

    def __repr__(self) -> str:
        return f"ZoneFileModel({self.origin}, {self.source!r})"


@dataclass(frozen=True)
class CompiledZoneFile:
    """A zone file compiled for serving: its image, its number of record sets and SOA serial,
    and its model (a :class:`ZoneFileModel` when the native compiler made the image)."""

    image: bytes
    record_sets: int
    serial: int
    model: Zone
    # Read from its one file, without $INCLUDE (fastdns.server.load_zones then knows from that
    # file alone whether it changed).
    single_file: bool = True


def compile_zone_file(path: str, origin: dns.name.Name) -> CompiledZoneFile:
    """Scan, validate and compile the zone file ``path`` for ``origin`` (unsigned, no
    policies); natively when it can, else through the model (see the module's doc).

    :raises ZoneLoadError: a syntax error, or every validation error sorted by file and line.
    """
    try:
        scanned = scan_zone_file(path, origin)
    except ZoneScanError as e:
        raise ZoneLoadError([ZoneError(e.file, e.line, e.reason)]) from None
    image, reason, record_sets, soa_index, soa_ttl, serial = compile_columns(
        scanned, origin.to_wire(), image_buffer
    )
    if image is not None:
        image = sealed_image(image)
        _, _, _, wire, file, line = scanned.record(soa_index)
        model = ZoneFileModel(origin, path, (wire, soa_ttl, file, line))
        return CompiledZoneFile(image, record_sets, serial, model, len(scanned.files) == 1)
    log.debug("zone %s: compiled through the model: %s", origin, reason)
    return _reference(scanned, path, origin)


def _reference(scanned, path: str, origin: dns.name.Name) -> CompiledZoneFile:
    """fastdns.zonefile.load_zone_file's model and validation, then fastdns.compile."""
    from fastdns.collector import collector_paused
    from fastdns.compile import compile_zone
    from fastdns.validate import validate_zone
    from fastdns.zonescan import zone_from_scan

    with collector_paused():
        zone = zone_from_scan(scanned, origin, path)
        errors = validate_zone(zone)
    if errors:
        raise ZoneLoadError(errors)
    soa = zone.soa
    assert soa is not None  # validated
    return CompiledZoneFile(
        compile_zone(zone),
        sum(1 for _ in zone),
        soa.rdatas[0].serial,
        zone,
        len(scanned.files) == 1,
    )
