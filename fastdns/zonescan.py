"""A :class:`fastdns._zscanner.ScannedZone` (records in columns) -> :class:`fastdns.model.Zone`.

The model is the one fastdns.zonefile's dnspython reader builds, record set for record set:
records grouped by (owner, type) in the order each group first appears, duplicates merged
(dnspython's rdata equality: canonical form), the smallest TTL of a group, the location of its
first record, the owner as the first record writes it. tests/test_zonefile_native.py checks
both readers give equal models for every zone file of the test corpus.

Per record this costs a few Python objects, not dnspython's text parser: rdata comes from the
scanner's uncompressed wire format. The common types (A, AAAA, NS, CNAME, PTR, DNAME, MX, TXT,
SPF) are built without running their ``__init__`` (which re-validates what the scanner already
checked), the others through ``dns.rdata.from_wire``, cached by wire (NS and MX targets, SOA and
the like repeat). Names are built from wire labels the same way; the scanner has checked them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import dns.exception
import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.DNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SPF
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

from fastdns._zscanner import ScannedZone
from fastdns.collector import collector_paused
from fastdns.model import RecordSet, SourceLocation, Zone, ZoneError, ZoneLoadError

__all__ = ["zone_from_scan"]

_IN = dns.rdataclass.IN
_set = object.__setattr__
_Name = dns.name.Name
_new_name = _Name.__new__
_A = dns.rdtypes.IN.A.A


def _name(wire: bytes, start: int = 0) -> tuple[dns.name.Name, int]:
    """The absolute name at ``wire[start:]`` (uncompressed, checked by the scanner) and the
    offset just past it."""
    labels = []
    i = start
    while True:
        n = wire[i]
        labels.append(wire[i + 1 : i + 1 + n])
        i += n + 1
        if n == 0:
            break
    name = _new_name(_Name)
    _set(name, "labels", tuple(labels))
    return name, i


def _rdata_shell(cls: type, rdtype: dns.rdatatype.RdataType) -> Callable[[], dns.rdata.Rdata]:
    """A maker of empty ``cls`` rdata objects with the class and type set (Rdata.__init__'s
    part); the caller sets the type's own slots."""
    new = cls.__new__

    def shell() -> dns.rdata.Rdata:
        rd = new(cls)
        _set(rd, "rdclass", _IN)
        _set(rd, "rdtype", rdtype)
        _set(rd, "rdcomment", None)
        return rd

    return shell


def _fast_builders() -> dict[int, Callable[[bytes, dict], dns.rdata.Rdata | None]]:
    """rdtype -> a function (wire, name cache) -> rdata, or None for wire it leaves to
    dns.rdata.from_wire. Each sets the slots the type's from_wire_parser would, to the same
    values (dnspython's own text forms where it keeps text, e.g. AAAA)."""
    T = dns.rdatatype
    inet_ntop, AF_INET = socket.inet_ntop, socket.AF_INET
    ipv6_ntoa = dns.ipv6.inet_ntoa

    def target_name(wire: bytes, names: dict) -> dns.name.Name:
        name = names.get(wire)
        if name is None:
            name = names[wire] = _name(wire)[0]
        return name

    a = _rdata_shell(dns.rdtypes.IN.A.A, T.A)

    def build_a(wire: bytes, names: dict) -> dns.rdata.Rdata | None:
        if len(wire) != 4:
            return None
        rd = a()
        _set(rd, "address", inet_ntop(AF_INET, wire))
        return rd

    aaaa = _rdata_shell(dns.rdtypes.IN.AAAA.AAAA, T.AAAA)

    def build_aaaa(wire: bytes, names: dict) -> dns.rdata.Rdata | None:
        if len(wire) != 16:
            return None
        rd = aaaa()
        _set(rd, "address", ipv6_ntoa(wire))
        return rd

    def single_name(cls: type, rdtype: dns.rdatatype.RdataType):
        shell = _rdata_shell(cls, rdtype)

        def build(wire: bytes, names: dict) -> dns.rdata.Rdata | None:
            rd = shell()
            _set(rd, "target", target_name(wire, names))
            return rd

        return build

    mx = _rdata_shell(dns.rdtypes.ANY.MX.MX, T.MX)

    def build_mx(wire: bytes, names: dict) -> dns.rdata.Rdata | None:
        rd = mx()
        _set(rd, "preference", wire[0] << 8 | wire[1])
        _set(rd, "exchange", target_name(wire[2:], names))
        return rd

    def strings(cls: type, rdtype: dns.rdatatype.RdataType):
        shell = _rdata_shell(cls, rdtype)

        def build(wire: bytes, names: dict) -> dns.rdata.Rdata | None:
            if not wire:
                return None
            parts = []
            i = 0
            while i < len(wire):
                n = wire[i]
                parts.append(wire[i + 1 : i + 1 + n])
                i += n + 1
            rd = shell()
            _set(rd, "strings", tuple(parts))
            return rd

        return build

    return {
        T.A: build_a,
        T.AAAA: build_aaaa,
        T.NS: single_name(dns.rdtypes.ANY.NS.NS, T.NS),
        T.CNAME: single_name(dns.rdtypes.ANY.CNAME.CNAME, T.CNAME),
        T.PTR: single_name(dns.rdtypes.ANY.PTR.PTR, T.PTR),
        T.DNAME: single_name(dns.rdtypes.ANY.DNAME.DNAME, T.DNAME),
        T.MX: build_mx,
        T.TXT: strings(dns.rdtypes.ANY.TXT.TXT, T.TXT),
        T.SPF: strings(dns.rdtypes.ANY.SPF.SPF, T.SPF),
    }


_BUILDERS = _fast_builders()


def zone_from_scan(scanned: ScannedZone, origin: dns.name.Name, source: str) -> Zone:
    """The model of a scanned zone file (not validated), as fastdns.zonefile's dnspython
    reader would build it from the same file.

    :raises ZoneLoadError: dnspython rejects a record's rdata (not expected: the scanner
        accepts only what dnspython's text parser accepts), with the record's file and line.
    """
    with collector_paused():
        return _zone_from_scan(scanned, origin, source)


def _zone_from_scan(scanned: ScannedZone, origin: dns.name.Name, source: str) -> Zone:
    owner_data = bytes(scanned.owner_data)
    rdata = bytes(scanned.rdata)
    offsets = scanned.rdata_offsets
    files = scanned.files
    builders = _BUILDERS
    # Rdata of the types without a builder (and their names) repeat; share them.
    rdata_cache: dict[tuple[int, bytes], dns.rdata.Rdata] = {}
    names: dict[bytes, dns.name.Name] = {}
    type_enums: dict[int, dns.rdatatype.RdataType] = {}
    # (lower-cased owner wire, type) -> [owner, type, ttl, first rdata, location, merged or None]
    groups: dict[tuple[bytes, int], list] = {}
    # A records, the bulk of large zones, are built here rather than in _BUILDERS: a function
    # call per record is a tenth of the time this loop takes.
    set_slot, new_name, name_class = _set, _new_name, _Name
    a_class, a_type, inet_ntop, AF_INET = _A, dns.rdatatype.A, socket.inet_ntop, socket.AF_INET
    new_a, IN = _A.__new__, _IN
    last_offset = -1
    last_line = last_file = -1
    location = SourceLocation("", 0)
    owner = name_class(())
    owner_key = b""
    for owner_offset, rtype, ttl, start, end, line, file_index in zip(
        scanned.owner_offsets,
        scanned.types,
        scanned.ttls,
        offsets[:-1],
        offsets[1:],
        scanned.lines,
        scanned.file_indexes,
        strict=True,
    ):
        if owner_offset != last_offset:
            # _name, inlined.
            last_offset = i = owner_offset
            labels = []
            while True:
                n = owner_data[i]
                labels.append(owner_data[i + 1 : i + 1 + n])
                i += n + 1
                if n == 0:
                    break
            owner = new_name(name_class)
            set_slot(owner, "labels", tuple(labels))
            owner_key = owner_data[owner_offset:i].lower()
        if rtype == 1 and end - start == 4:
            rd = new_a(a_class)
            set_slot(rd, "rdclass", IN)
            set_slot(rd, "rdtype", a_type)
            set_slot(rd, "rdcomment", None)
            set_slot(rd, "address", inet_ntop(AF_INET, rdata[start:end]))
        else:
            wire = rdata[start:end]
            build = builders.get(rtype)
            rd = build(wire, names) if build is not None else None
            if rd is None:
                key = (rtype, wire)
                rd = rdata_cache.get(key)
                if rd is None:
                    try:
                        rd = dns.rdata.from_wire(_IN, rtype, wire, 0, len(wire))
                    except dns.exception.DNSException as e:
                        raise ZoneLoadError(
                            [ZoneError(files[file_index], line, f"bad rdata: {e}")]
                        ) from None
                    rdata_cache[key] = rd
        group_key = (owner_key, rtype)
        group = groups.get(group_key)
        if group is None:
            if line != last_line or file_index != last_file:
                last_line, last_file = line, file_index
                location = SourceLocation(files[file_index], line)
            groups[group_key] = [owner, rtype, ttl, rd, location, None]
            continue
        # RFC 2181 §5.2: one TTL per RRset; the smallest (see fastdns.zonefile._build_zone).
        if ttl < group[2]:
            group[2] = ttl
        merged = group[5]
        if merged is None:
            merged = group[5] = {group[3]: None}
        # Duplicate records are one record (RFC 2181 §5); a dict keeps the file order.
        merged[rd] = None

    zone = Zone(origin=origin, source=source)
    rrsets = zone.rrsets
    make_type = dns.rdatatype.RdataType.make
    for owner, rtype, ttl, rd, location, merged in groups.values():
        rdtype = type_enums.get(rtype)
        if rdtype is None:
            rdtype = type_enums[rtype] = make_type(rtype)
        rdatas = (rd,) if merged is None else tuple(merged)
        # Zone.add, inlined: each (owner, type) is new here.
        rrsets[(owner, rtype)] = [RecordSet(owner, rdtype, ttl, rdatas, location)]
    return zone
