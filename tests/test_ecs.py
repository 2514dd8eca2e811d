"""EDNS Client Subnet (RFC 7871) in the hot path: parsed, validated, echoed with a scope."""

from __future__ import annotations

import struct

import dns.edns
import dns.message
import dns.rcode
import pytest
from support.client import check_decoders_agree

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.zonefile import parse_zone_file

ZONE = """$ORIGIN ecs.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 900 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("ecs") / "ecs.test.zone"
    path.write_text(ZONE)
    return _core.Catalog([compile_zone(parse_zone_file(path))])


def ecs_query(address: str, source: int) -> bytes:
    option = dns.edns.ECSOption(address, source)
    return dns.message.make_query("www.ecs.test.", "A", use_edns=0, options=[option]).to_wire()


def raw_ecs_query(family: int, source: int, scope: int, address: bytes) -> bytes:
    """A query whose ECS option is written by hand (dnspython refuses to build broken ones)."""
    query = dns.message.make_query("www.ecs.test.", "A", use_edns=0).to_wire()
    data = struct.pack("!HBB", family, source, scope) + address
    option = struct.pack("!HH", 8, len(data)) + data
    # the OPT RR is last: RDLENGTH is its final two octets (0 without options)
    return query[:-2] + struct.pack("!H", len(option)) + option


@pytest.mark.parametrize(
    ("address", "source"),
    [
        ("198.51.100.0", 24),
        ("198.51.100.128", 25),
        ("0.0.0.0", 0),
        ("2001:db8::", 48),
        ("2001:db8:1:2::", 64),
    ],
)
def test_ecs_is_echoed_with_scope_zero_for_a_static_answer(catalog, address, source):
    response = check_decoders_agree(catalog.answer(ecs_query(address, source)))
    assert response.rcode() == dns.rcode.NOERROR
    (option,) = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
    assert option.address == address
    assert option.srclen == source
    assert option.scopelen == 0  # RFC 7871 §7.2.1: the answer is the same for every client


@pytest.mark.parametrize(
    ("family", "source", "address", "why"),
    [
        (3, 8, b"\x01", "unknown family"),
        (1, 33, b"\x01\x02\x03\x04\x05", "prefix longer than IPv4"),
        (1, 24, b"\xc6\x33", "too few address octets"),
        (1, 24, b"\xc6\x33\x64\x00", "too many address octets"),
        (1, 23, b"\xc6\x33\x65", "bits set beyond the prefix"),
        (2, 129, b"\x20" + b"\x00" * 16, "prefix longer than IPv6"),
    ],
)
def test_a_malformed_ecs_option_is_a_formerr(catalog, family, source, address, why):
    response = dns.message.from_wire(catalog.answer(raw_ecs_query(family, source, 0, address)))
    assert response.rcode() == dns.rcode.FORMERR, why


def test_a_client_address_is_accepted_and_checked(catalog):
    query = dns.message.make_query("www.ecs.test.", "A").to_wire()
    assert catalog.answer(query, client=bytes([192, 0, 2, 55])) is not None
    assert catalog.answer(query, client=bytes(16)) is not None
    with pytest.raises(ValueError):
        catalog.answer(query, client=b"\x01\x02\x03")
