"""Compiler guards that the table-driven answer tests do not reach."""

import gc

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from fastdns.compile import compile_zone
from fastdns.model import RecordSet, Zone


def _zone_with_cname_target(target_text: str, origin_for_rdata) -> Zone:
    origin = dns.name.from_text("rel.test.")
    zone = Zone(origin)

    def rd(rdtype, text, rdata_origin=origin):
        return dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, text, origin=rdata_origin, relativize=False
        )

    zone.add(RecordSet(origin, dns.rdatatype.SOA, 60, (rd(dns.rdatatype.SOA, "ns h 1 2 3 4 5"),)))
    zone.add(RecordSet(origin, dns.rdatatype.NS, 60, (rd(dns.rdatatype.NS, "ns"),)))
    cname = rd(dns.rdatatype.CNAME, target_text, origin_for_rdata)
    zone.add(RecordSet(dns.name.from_text("a", origin), dns.rdatatype.CNAME, 60, (cname,)))
    return zone


def test_relative_rdata_name_is_refused_not_written_as_root():
    # RDATA parsed without an origin keeps a relative name; writing it would end at the root.
    with pytest.raises(ValueError, match="relative name"):
        compile_zone(_zone_with_cname_target("www", None))


def test_absolute_rdata_name_compiles():
    assert compile_zone(_zone_with_cname_target("www", dns.name.from_text("rel.test.")))


def _zone(records: list[tuple[str, str, str]], origin_text: str = "case.test.") -> Zone:
    """A zone of one-record RRsets (owner, type, RDATA); names relative to the origin, kept as
    spelled."""
    origin = dns.name.from_text(origin_text)
    zone = Zone(origin)
    for owner, rdtype_text, text in records:
        rdtype = dns.rdatatype.from_text(rdtype_text)
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, text, origin=origin, relativize=False
        )
        zone.add(RecordSet(dns.name.from_text(owner, origin), rdtype, 300, (rdata,)))
    return zone


CASE_RECORDS = [
    ("@", "SOA", "ns hostmaster 1 2 3 4 5"),
    ("@", "NS", "ns"),
    ("ns", "A", "192.0.2.1"),
    ("www", "A", "192.0.2.2"),
    ("www", "AAAA", "2001:db8::2"),
    ("www", "MX", "10 mail"),
    ("mail", "A", "192.0.2.3"),
    ("*.wild", "TXT", "wild"),
    ("alias", "CNAME", "www"),
    ("sub", "NS", "ns.sub"),
    ("ns.sub", "A", "192.0.2.4"),
]


def test_owner_spelling_does_not_change_the_image():
    # Owner names compare case-insensitively (RFC 4343): respelling owners, even differently
    # for two types of one name, is the same zone; answers point at the query name instead.
    respelled = [
        (owner.upper() if rdtype != "AAAA" else owner, rdtype, text)
        for owner, rdtype, text in CASE_RECORDS
    ]
    assert compile_zone(_zone(respelled)) == compile_zone(_zone(CASE_RECORDS))


def test_names_in_rdata_keep_their_spelling():
    # The MX target and the owner of its address in additional are written as the RDATA
    # spells them; only compression ignores case.
    records = [r if r[1] != "MX" else ("www", "MX", "10 MaiL") for r in CASE_RECORDS]
    image = compile_zone(_zone(records))
    assert b"\x04MaiL" in image
    assert b"\x04MaiL" not in compile_zone(_zone(CASE_RECORDS))


@pytest.mark.parametrize("enabled", [True, False])
def test_compile_leaves_the_garbage_collector_as_it_was(enabled):
    was = gc.isenabled()
    try:
        if enabled:
            gc.enable()
        else:
            gc.disable()
        compile_zone(_zone(CASE_RECORDS))
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()
