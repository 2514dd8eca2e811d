"""Compiler guards that the table-driven answer tests do not reach."""

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
