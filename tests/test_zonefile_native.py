"""The native zone-file reader (fastdns._zscanner + fastdns.zonescan) against dnspython's.

The differential rule, one level above tests/test_zscanner.py (which compares the scanner's
records with dnspython's): for any input, ``parse_zone_file(path, reader="native")`` and
``parse_zone_file(path, reader="dnspython")`` either both fail with errors at the same file and
line (for random files, in a record spanning lines, the scanner may name an earlier line of it),
or give equal models; for the repository's files, with validation (``load_zone_file``) too.

Equal is stricter than ``Zone.__eq__`` (which compares names and rdata case-insensitively): the
same keys in the same order, and for every record set the owner as written, type, TTL, location,
policy fields and rdatas in order, each of the same class with the same wire form and the same
text. The inputs are those of tests/test_zscanner.py: every zone file in the repository, its
table of small cases, its random zone files and its token soups.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import test_zscanner as cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdns.model import Zone, ZoneLoadError
from fastdns.zonefile import load_zone_file, parse_zone_file

REPO = Path(__file__).resolve().parent.parent
SHOWN = {"name", "rdtype", "ttl", "rdatas"}


def model_view(zone: Zone) -> tuple:
    """Everything about a zone model, case and order included, in comparable values."""
    return (
        zone.origin.to_wire(),
        zone.source,
        [
            (
                owner.to_wire(),
                rdtype,
                [
                    (
                        rrset.name.to_wire(),
                        type(rrset.rdtype),
                        int(rrset.rdtype),
                        rrset.ttl,
                        # source, and the routing-policy fields (unset in zone files)
                        {
                            f.name: getattr(rrset, f.name)
                            for f in fields(rrset)
                            if f.name not in SHOWN
                        },
                        [
                            (type(rd), int(rd.rdclass), rd.to_wire(), rd.to_text())
                            for rd in rrset.rdatas
                        ],
                    )
                    for rrset in candidates
                ],
            )
            for (owner, rdtype), candidates in zone.rrsets.items()
        ],
    )


def read(path: Path, origin, reader: str, validate: bool) -> tuple:
    """("zone", model view) or ("errors", [(file, line)]) for one reader."""
    load = load_zone_file if validate else parse_zone_file
    try:
        zone = load(path, origin, reader)  # type: ignore[arg-type]
    except ZoneLoadError as e:
        return "errors", [(error.file, error.line) for error in e.errors]
    return "zone", model_view(zone)


def assert_same_models(
    path: Path, origin=None, validate: bool = False, exact_lines: bool = True
) -> str:
    """Both readers agree on ``path``; "zone" or "errors".

    Without ``exact_lines``, a syntax error in a record that spans lines may be blamed on its
    first line by the scanner and on a later one by dnspython, whose line is that of the token
    it was reading (tests/test_zscanner.py's rule): the file must be the same.
    """
    native = read(path, origin, "native", validate)
    reference = read(path, origin, "dnspython", validate)
    if not exact_lines and native[0] == reference[0] == "errors":
        [(native_file, native_line)] = native[1]
        [(reference_file, reference_line)] = reference[1]
        assert native_file == reference_file
        assert native_line <= reference_line
        return "errors"
    assert native == reference
    if native[0] == "zone":
        # And the dataclass equality the rest of fastdns uses.
        assert parse_zone_file(path, origin) == parse_zone_file(path, origin, "dnspython")
    return native[0]


@pytest.mark.parametrize("path", cases.zone_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_repository_zone_files_give_equal_models(path: Path):
    # The origin as the loaders find it (file name, else $ORIGIN), and validated as served.
    assert_same_models(path)
    assert_same_models(path, validate=True)


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_small_cases_give_equal_models(tmp_path: Path, name: str):
    path = cases.write(tmp_path, cases.case_text(name))
    outcome = assert_same_models(path, cases.ORIGIN)
    assert (outcome == "zone") == (name in cases.ACCEPTED)


MERGING = """$TTL 300
@      SOA ns hostmaster 1 2 3 4 5
@      NS  ns
ns     A   192.0.2.53
www    A   192.0.2.1
WWW    600 A 192.0.2.1
www    100 A 192.0.2.2
other  A   192.0.2.9
www    A   192.0.2.3
www    AAAA 2001:db8::1
www    AAAA 2001:DB8:0:0:0:0:0:1
www    AAAA ::ffff:192.0.2.1
www    AAAA 2001:db8:0:1::
mail   MX  10 MX.Example.
mail   MX  10 mx.example.
mail   MX  20 mx.example.
alias  CNAME Target.example.
ptr    PTR Host
txt    TXT "a" "b"
txt    TXT "a" "b"
txt    TXT ""
spf    SPF "v=spf1 -all"
gen    A   \\# 4 c0000263
gen    TXT \\# 3 026869
$GENERATE 1-3 host$ A 192.0.2.$
$GENERATE 1-3 host$ TXT x
"""


def test_merging_ttls_case_and_fast_built_types(tmp_path: Path):
    """Duplicates (by dnspython's canonical equality) merge, the smallest TTL wins, the first
    record's owner spelling and line stay; the rdata built without dnspython's constructors
    equal dnspython's."""
    path = cases.write(tmp_path, MERGING, "merge.example.zone")
    assert assert_same_models(path, validate=True) == "zone"
    # DNAME parses (validation refuses it for now).
    dname = cases.write(tmp_path, MERGING + "dn DNAME Dest\n", "dname.example.zone")
    assert assert_same_models(dname) == "zone"
    zone = parse_zone_file(path)
    www = [rrset for rrset in zone if rrset.name.to_text() == "www.merge.example."]
    assert [(int(r.rdtype), r.ttl, len(r.rdatas), r.source.line) for r in www] == [
        (1, 100, 3, 5),
        (28, 300, 3, 10),
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=cases.zone_texts(), origin=st.sampled_from(["example.", "Test.", None]))
def test_random_zone_files_give_equal_models(tmp_path_factory, text: str, origin):
    path = cases.write(tmp_path_factory.mktemp("z"), text)
    assert_same_models(path, origin, exact_lines=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(st.sampled_from(cases.TOKENS), max_size=30))
def test_token_soup_gives_equal_models(tmp_path_factory, tokens: list[str]):
    text = "$TTL 5\n" + "".join(t if t.isspace() or t in {"(", ")"} else t + " " for t in tokens)
    path = cases.write(tmp_path_factory.mktemp("soup"), text)
    assert_same_models(path, "example.", exact_lines=False)
