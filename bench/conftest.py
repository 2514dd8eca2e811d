"""Fixtures for the micro-benchmarks (``pytest bench/ --benchmark-only``; see README.md).

The benchmarks are not part of the default test run: ``pyproject.toml``'s ``testpaths`` is
``tests/``, and pytest only collects the ``bench_*.py`` files here because of the hook below.
Every benchmark builds its inputs from this file alone, so the benchmarks do not depend on one
another or on their order.
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from fastdns._native import _core
from fastdns.compile import compile_zone
from fastdns.model import RecordSet, Zone

ORIGIN = dns.name.from_text("bench.test.")
ZONE_NAMES = 10_000


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def _rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    # names in the text are relative to the origin; the model wants them absolute
    return dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text, origin=ORIGIN, relativize=False
    )


def _add(zone: Zone, owner: str, rdtype: str, ttl: int, *texts: str) -> None:
    name = dns.name.from_text(owner, ORIGIN)
    rdtype_value = dns.rdatatype.from_text(rdtype)
    zone.add(RecordSet(name, rdtype_value, ttl, tuple(_rdata(rdtype, t) for t in texts)))


def build_zone(names: int = ZONE_NAMES) -> Zone:
    """``names`` owner names under bench.test.: hosts with A (every tenth also AAAA and MX),
    two levels deep for a tenth of them, plus a wildcard, a CNAME chain and a delegation."""
    zone = Zone(ORIGIN)
    _add(zone, "@", "SOA", 3600, "ns1 hostmaster 1 7200 3600 1209600 300")
    _add(zone, "@", "NS", 3600, "ns1", "ns2")
    _add(zone, "ns1", "A", 3600, "192.0.2.1")
    _add(zone, "ns2", "A", 3600, "192.0.2.2")
    _add(zone, "mail", "A", 3600, "192.0.2.25")
    _add(zone, "www", "A", 600, "192.0.2.10", "192.0.2.11")
    _add(zone, "*.wild", "A", 3600, "192.0.2.100")
    _add(zone, "*.wild", "MX", 3600, "10 mail")
    _add(zone, "chain1", "CNAME", 3600, "chain2")
    _add(zone, "chain2", "CNAME", 3600, "chain3")
    _add(zone, "chain3", "CNAME", 3600, "www")
    _add(zone, "deleg", "NS", 3600, "ns.deleg")
    _add(zone, "ns.deleg", "A", 3600, "192.0.2.53")
    for i in range(names - len(zone.names())):
        owner = f"host{i}" if i % 10 else f"host{i}.sub{i % 97}"
        _add(zone, owner, "A", 300, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        if i % 10 == 1:
            _add(zone, owner, "AAAA", 300, f"2001:db8::{i:x}")
            _add(zone, owner, "MX", 300, "10 mail")
    return zone


@pytest.fixture(scope="session")
def bench_zone() -> Zone:
    return build_zone()


@pytest.fixture(scope="session")
def catalog(bench_zone: Zone) -> _core.Catalog:
    return _core.Catalog([compile_zone(bench_zone)])
