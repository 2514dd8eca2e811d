"""The zone-file scanner (fastdns._zscanner) against dnspython's zone-file reader.

The differential rule: for any input, the scanner and dnspython's reader either both fail, or
both produce the same records. dnspython is driven through fastdns.zonefile's reader hooks
(``reference_records``), so the reference is exactly what its dnspython reader loads: $INCLUDE paths
relative to the including file, the line where each record starts, records outside the origin
kept, and each record with its own TTL (before fastdns.zonefile merges an RRset's TTLs).

What is compared, record by record and in file order:
(owner wire, type, TTL, rdata wire, file, line), with names in uncompressed wire format with
their case as written. That is stricter than comparing sets of canonical forms (lower-cased
owners and rdata names, RFC 4034 §6.2): equal exact forms have equal canonical forms, and the
order and locations are checked too.
"""

from __future__ import annotations

import io
import os
import re
import string
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdns import zonefile
from fastdns._zscanner import ScannedZone, ZoneScanError, native_types, scan_zone_file

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SYNTAX = DATA / "zonefiles" / "syntax"

Record = tuple[bytes, int, int, bytes, str, int]


# --- the reference -------------------------------------------------------------------------------


class ReferenceError_(Exception):
    """dnspython (through fastdns.zonefile's reader) rejected the input."""

    def __init__(self, file: str, line: int, reason: str):
        super().__init__(f"{file}:{line}: {reason}")
        self.file, self.line, self.reason = file, line, reason


def reference_records(path: Path | str, origin: dns.name.Name | str | None) -> list[Record]:
    """Every record dnspython's reader produces for ``path``, each with its own TTL."""
    file = os.fspath(path)
    if isinstance(origin, str):
        origin = dns.name.from_text(origin)
    txn = zonefile._RecordCollector(zonefile._Manager(origin))
    data = Path(file).read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReferenceError_(file, data.count(b"\n", 0, e.start) + 1, "not UTF-8") from None
    reader = zonefile._Reader(zonefile._Tokenizer(io.StringIO(text), file), txn)
    try:
        reader.read()
    except Exception as e:
        error = zonefile._parse_error(reader.tok, e)
        raise ReferenceError_(error.file, error.line, error.reason) from None
    finally:
        reader.close_included_files()
    return [
        (name.to_wire(), int(rdata.rdtype), ttl, rdata.to_wire(), location.file, location.line)
        for name, ttl, rdata, location in txn.records
    ]


def scanned_records(zone: ScannedZone) -> list[Record]:
    return [zone.record(i) for i in range(len(zone))]


def assert_same_as_dnspython(path: Path, origin=None, **kwargs) -> ScannedZone | None:
    """Scan ``path`` with both; both fail, or both give the same records. The scan (or None)."""
    try:
        expected = reference_records(path, origin)
    except ReferenceError_ as reference:
        with pytest.raises(ZoneScanError) as raised:
            scan_zone_file(path, origin, **kwargs)
        # dnspython's line for an error is not always the line at fault (fastdns.zonefile works
        # around the worst of it); the file must agree.
        assert raised.value.file == reference.file, (raised.value, reference)
        return None
    try:
        zone = scan_zone_file(path, origin, **kwargs)
    except ZoneScanError as e:
        pytest.fail(f"dnspython accepts {path} but the scanner says {e}")
    assert scanned_records(zone) == expected
    return zone


def zone_files() -> list[Path]:
    """Every master file in the repository's test data and examples."""
    found = []
    for root in (DATA, REPO / "examples" / "zones"):
        for path in sorted(root.rglob("*")):
            if path.suffix in {".zone", ".db", ".directive"}:
                found.append(path)
    return found


def origin_of(path: Path) -> dns.name.Name | None:
    try:
        return zonefile.origin_from_file_name(path)
    except Exception:
        return None


@pytest.mark.parametrize("path", zone_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_repository_zone_files_match_dnspython(path: Path):
    assert_same_as_dnspython(path, origin_of(path))


# --- small cases, written as zone text -----------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "case.zone") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


ORIGIN = "example."

# Each case is a zone (origin example., $TTL 300 unless it says otherwise) that the scanner and
# dnspython must read alike: accept with the same records, or both reject.
CASES = {
    # owners: @, relative, absolute, escapes, inheritance, wildcards, case kept
    "owners": """
@ A 192.0.2.1
www A 192.0.2.2
www.example. A 192.0.2.3
WwW.Sub A 192.0.2.4
 A 192.0.2.5
\\@\\.x\\032y\\255 A 192.0.2.6
*.wild A 192.0.2.7
a\\.b.c A 192.0.2.8
\\$dollar A 192.0.2.9
    """,
    "owner-escape-bad": "a\\25 A 192.0.2.1\n",
    "owner-escape-too-big": "a\\256 A 192.0.2.1\n",
    "owner-empty-label": "a..b A 192.0.2.1\n",
    "owner-leading-dot": ".a A 192.0.2.1\n",
    "owner-label-64": "a" * 64 + " A 192.0.2.1\n",
    "owner-label-63": "a" * 63 + " A 192.0.2.1\n",
    "owner-too-long": ".".join(["a" * 60] * 4) + " A 192.0.2.1\n",
    "owner-too-long-with-origin": ".".join(["a" * 62] * 4)[:246] + " A 192.0.2.1\n",
    "owner-quoted": '"www" A 192.0.2.1\n',
    "owner-root": ". A 192.0.2.1\n",
    "whitespace-only-lines": "www A 192.0.2.1\n   \n\t\n   ; comment\n A 192.0.2.2\n",
    # TTLs and classes in either order, units, defaults
    "ttl-class-orders": """
a 100 IN A 192.0.2.1
b IN 200 A 192.0.2.2
c IN A 192.0.2.3
d 1h30m A 192.0.2.4
e 1W2d3H4m5S IN A 192.0.2.5
f A 192.0.2.6
g CLASS1 A 192.0.2.7
h in 0 a 192.0.2.8
i 4294967295 A 192.0.2.9
j INTERNET A 192.0.2.10
    """,
    "ttl-too-big": "a 4294967296 A 192.0.2.1\n",
    "ttl-trailing-digits": "a 1h30 A 192.0.2.1\n",
    "ttl-bad-unit": "a 1y A 192.0.2.1\n",
    "class-ch": "a CH A 192.0.2.1\n",
    "class-any": "a ANY A 192.0.2.1\n",
    "class-none-after-ttl": "a 300 NONE A 192.0.2.1\n",
    "class-65536": "a CLASS65536 A 192.0.2.1\n",
    "two-ttls": "a 300 600 A 192.0.2.1\n",
    "type-missing": "a 300 IN\n",
    "type-unknown": "a 300 IN BOGUS 1\n",
    "type-numeric": "a TYPE1 192.0.2.1\nb type28 ::1\nc TYPE065534 \\# 0\n",
    "type-too-big": "a TYPE65536 \\# 0\n",
    "no-default-ttl": None,  # filled below: a file without $TTL
    # $TTL, $ORIGIN
    "directives": """
$TTL 1d
a A 192.0.2.1
$ORIGIN sub
b A 192.0.2.2
$ORIGIN other.test.
c A 192.0.2.3
@ A 192.0.2.4
$ttl 60 ; lower case, with a comment
d A 192.0.2.5
    """,
    "ttl-directive-bad": "$TTL soon\n",
    "ttl-directive-missing": "$TTL\n",
    "ttl-directive-extra": "$TTL 5 6\n",
    "origin-directive-quoted": '$ORIGIN "x."\n',
    "unknown-directive": "$FOO bar\n",
    # parentheses, comments, line ends
    "parentheses": """
@ SOA ns hostmaster (
    1 ; serial
    2 ; refresh
    3 4
    5 )
a ( A
  192.0.2.1 )
( b ) A 192.0.2.2
c TXT ( "x" ; (
        "y" )
    """,
    "paren-unclosed": "a A ( 192.0.2.1\nb A 192.0.2.2\n",
    "paren-unopened": "a A 192.0.2.1 )\n",
    "crlf": 'a A 192.0.2.1\r\nb A 192.0.2.2\r\n\r\nc TXT "x"\r\n',
    "cr-only": "a A 192.0.2.1\rb A 192.0.2.2\r",
    "no-final-newline": "a A 192.0.2.1",
    "comment-at-end": "a A 192.0.2.1 ; comment",
    "backslash-newline": "a TXT x\\\ny\n",
    # quoted strings and escapes
    "txt": r"""
a TXT "v=spf1 -all"
b TXT "two" "strings" unquoted
c TXT "with \"quotes\" and \\ and \065 and \255"
d TXT ""
e TXT "semicolon ; and ( parens )"
f TXT "a"b
g TXT "tab	inside"
h TXT "é UTF-8"
i SPF "v=spf1"
j TXT \"a
    """,
    "txt-255": 'a TXT "' + "x" * 255 + '"\n',
    "txt-256": 'a TXT "' + "x" * 256 + '"\n',
    "txt-256-escapes": 'a TXT "' + "\\120" * 256 + '"\n',
    "txt-empty": "a TXT\n",
    "txt-bad-escape": 'a TXT "\\2x"\n',
    "txt-escape-300": 'a TXT "\\300"\n',
    "quote-newline": 'a TXT "abc\ndef"\n',
    "quote-eof": 'a TXT "abc',
    "quote-escaped-newline": 'a TXT "abc\\\ndef"\n',
    # addresses
    "addresses": """
a A 0.0.0.0
b A 255.255.255.255
c AAAA ::
d AAAA ::1
e AAAA 2001:db8::
f AAAA 2001:DB8:0:0:0:0:0:1
g AAAA ::ffff:192.0.2.1
h AAAA 1:2:3:4:5:6:7:8
i AAAA 1:2:3:4:5:6:7::
j AAAA ::2:3:4:5:6:7:8
k AAAA 1::8
l AAAA 1:2:3:4:5:6:1.2.3.4
m A 1\\.2.3.4
    """,
    **{
        f"a-bad-{i}": f"a A {text}\n"
        for i, text in enumerate(
            [
                "192.0.2.256",
                "192.0.2",
                "192.0.2.1.5",
                "01.2.3.4",
                "1..2.3",
                "a.b.c.d",
                "192.0.2.1/24",
                "",
                " 1.2.3.4 x",
                "-1.2.3.4",
            ]
        )
    },
    **{
        f"aaaa-bad-{i}": f"a AAAA {text}\n"
        for i, text in enumerate(
            [
                "1::2::3",
                ":1::2",
                "1::2:",
                "12345::",
                "1:2:3:4:5:6:7:8:9",
                "1:2:3:4:5:6:7",
                "::1.2.3",
                "::01.2.3.4",
                "g::",
                "1:2:3:4:5:6:7:1.2.3.4",
                ":::",
                "::1:2:3:4:5:6:7:8",
            ]
        )
    },
    # names in rdata
    "names": """
a NS ns
b NS ns.example.net.
c CNAME @
d PTR \\046.x
e DNAME target
f MX 10 mail
g MX 65535 .
h SRV 1 2 3 target
i AFSDB 1 afs
j RT 2 relay
k KX 3 kx
l RP mbox.example. txt
m NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:x@example!" .
n NAPTR 1 2 u "" "" replacement
    """,
    "mx-missing-exchange": "a MX 10\n",
    "mx-pref-too-big": "a MX 65536 mail\n",
    "mx-pref-negative": "a MX -1 mail\n",
    "mx-quoted-name": 'a MX 10 "mail"\n',
    "ns-extra": "a NS ns extra\n",
    "hinfo": 'a HINFO "PC" "Linux"\nb HINFO x86 linux\n',
    "hinfo-missing": "a HINFO x86\n",
    "soa-units": "@ SOA ns host 2024010101 1h 30m 1w 1d\n",
    "soa-serial-too-big": "@ SOA ns host 4294967296 1 2 3 4\n",
    "soa-bad-timer": "@ SOA ns host 1 2 soon 4 5\n",
    "soa-extra": "@ SOA ns host 1 2 3 4 5 6\n",
    # CAA, URI
    "caa": 'a CAA 0 issue "letsencrypt.org"\nb CAA 128 iodef "mailto:x@example"\n'
    'c CAA 0 issuewild ";"\nd CAA 0 tag ""\ne CAA 0 tag unquoted\n',
    "caa-tag-not-alnum": 'a CAA 0 is-sue "x"\n',
    "caa-tag-empty": 'a CAA 0 "" "x"\n',
    "caa-flags-256": 'a CAA 256 issue "x"\n',
    "uri": 'a URI 10 1 "https://example/"\nb URI 0 0 x\n',
    "uri-empty": 'a URI 10 1 ""\n',
    # DNSSEC
    "dnssec": """
a DS 12345 13 2 DED1079F8583824AF8440CB9323AA92394991AC5D82F91FDEB0FE411D75755C7
b DS 1 ECDSAP256SHA256 2 ( DED1079F8583824AF8440CB9 323AA92394991AC5D82F91FDEB0FE411D75755C7 )
c CDS 0 0 0 00
d DS 1 8 1 0123456789abcdef0123456789ABCDEF01234567
e DS 1 8 9 ab
f DNSKEY 257 3 13 ( FDSFDnd0nIrnBgbVNpHlZm9ITqaZkECmuiSikn+Pfx/C10n1X5KIzogxK0ahNV
                    //JP15tuEqJxLivMdltUav3w== )
g CDNSKEY 256 3 RSASHA256 AwEAAQ==
h RRSIG A 13 2 3600 20300101000000 20240101000000 12345 example. (
    oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJX
    UAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o= )
i RRSIG TYPE65534 ECDSAP256SHA256 0 1d 1700000000 0 0 . AAAA
j NSEC next.example. A NS SOA MX RRSIG NSEC DNSKEY TYPE65534
k NSEC next
l NSEC3 1 1 10 AABBCCDD 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG
m NSEC3 1 0 0 - 2t7b4g4vsa5smi47k61mv5bv1a22bojr
n NSEC3PARAM 1 0 0 -
o NSEC3PARAM 1 0 5 "AB"
p TLSA 3 1 1 b6c0540daa5560a0952f4fdfbcdf8b071238a4ee4eb872c9ccf95a73523332bc
q SMIMEA 0 0 0 ab cd ef
r SSHFP 1 2 ac427481aea27c04a21a8167aa0a695e3f76a8e9875be3be903ab118f9392593
s SSHFP 4 9 0123
t OPENPGPKEY mQENBFz1
u DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
v ZONEMD 2024 1 1 ( 0123456789abcdef0123456789abcdef0123456789abcdef
                    0123456789abcdef0123456789abcdef0123456789abcdef )
w CSYNC 66 3 A NS AAAA
x RRSIG NSEC 8 1 300 4294967295 20380119031407 1 . AA==
    """,
    "ds-digest-length": "a DS 1 8 2 abcd\n",
    "ds-digest-type-0": "a DS 1 8 0 ab\n",
    "ds-odd-hex": "a DS 1 8 9 abc\n",
    "ds-not-hex": "a DS 1 8 9 xyzw\n",
    "ds-no-digest": "a DS 1 8 2\n",
    "ds-bad-algorithm": "a DS 1 NOPE 2 ab\n",
    "ds-algorithm-256": "a DS 1 256 2 ab\n",
    "dnskey-no-key": "a DNSKEY 257 3 13\n",
    "dnskey-bad-base64": "a DNSKEY 257 3 13 abc*\n",
    "tlsa-length": "a TLSA 3 1 1 abcd\n",
    "sshfp-length": "a SSHFP 1 1 abcd\n",
    "rrsig-bad-time": "a RRSIG A 8 1 300 20301301000000 20240101000000 1 . AA==\n",
    "rrsig-feb-29": "a RRSIG A 8 1 300 20240229000000 20230229000000 1 . AA==\n",
    "rrsig-11-digits": "a RRSIG A 8 1 300 12345678901 1 1 . AA==\n",
    "rrsig-before-1970": "a RRSIG A 8 1 300 19691231235959 1 1 . AA==\n",
    "rrsig-after-2106": "a RRSIG A 8 1 300 21060207062816 1 1 . AA==\n",
    "rrsig-labels-256": "a RRSIG A 8 256 300 1 1 1 . AA==\n",
    "nsec-type-0": "a NSEC next TYPE0\n",
    "nsec-unknown-type": "a NSEC next BOGUS\n",
    "nsec3-padding": "a NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJ=\n",
    "nsec3-not-canonical": "a NSEC3 1 0 0 - AB\n",
    "nsec3-short": "a NSEC3 1 0 0 - A0\n",
    "nsec3-bad-length": "a NSEC3 1 0 0 - ABC\n",
    "nsec3-empty-next": 'a NSEC3 1 0 0 - ""\n',
    "nsec3-bad-salt": "a NSEC3 1 0 0 ABC ABCDEFGH\n",
    "zonemd-short": "a ZONEMD 1 1 1 abcd\n",
    "zonemd-scheme-0": "a ZONEMD 1 0 240 0123456789abcdef01234567\n",
    "zonemd-private": "a ZONEMD 1 1 240 0123456789abcdef01234567\n",
    # RFC 3597 generic rdata
    "generic": """
a TYPE65534 \\# 4 0a000001
b TYPE65535 \\# 0
c A \\# 4 c0000201
d MX \\# 13 000a0161076578616d706c6500
e TXT \\# 3 026869
f TYPE65534 \\# 3 ( 0a
    0000 )
g NULL \\# 1 ff
h SOA \\# 46 026e73076578616d706c6500046d61696c076578616d706c6500 (
    0000000100000002000000030000000400000005 )
    """,
    "generic-wrong-length": "a TYPE65534 \\# 3 0a000001\n",
    "generic-odd-hex": "a TYPE65534 \\# 2 0a0\n",
    "generic-known-bad-a": "a A \\# 3 c00002\n",
    "generic-known-compressed": "a NS \\# 2 c00c\n",
    "generic-known-trailing": "a MX \\# 5 000a000000\n",
    "generic-txt-empty": "a TXT \\# 0\n",
    "generic-unknown-text": "a TYPE65534 1 2 3\n",
    "generic-null-text": "a NULL abc\n",
    "generic-ds-length": "a DS \\# 5 0001080201\n",
    "generic-nsec-bitmap": "a NSEC \\# 5 00 00 02 4000\n",
    "generic-caa-tag": "a CAA \\# 4 00 01 2d 78\n",
    "generic-quoted-length": 'a TYPE65534 \\# "0"\n',
    "generic-quoted-hex": 'a TYPE65534 \\# 1 "ff"\n',
    # SVCB and HTTPS (RFC 9460; several from its Appendix D)
    "svcb": r"""
a HTTPS 1 . alpn="h3,h2" ipv4hint=192.0.2.1 ipv6hint=2001:db8::1
b SVCB 0 www.example.
c SVCB 1 www port=8443 alpn=h2 no-default-alpn
d HTTPS 16 foo.example.org. ( alpn=h2,h3-19 mandatory=ipv4hint,alpn
                              ipv4hint=192.0.2.1 )
e SVCB 1 foo key667=hello
f SVCB 1 foo key667="hello\210qoo"
g SVCB 1 foo ipv6hint="2001:db8::1,2001:db8::53:1"
h SVCB 1 example.com. ipv6hint="2001:db8:122:344::192.0.2.33"
i SVCB 16 foo.example.org. alpn="f\\\\oo\\,bar,h2"
j SVCB 16 foo.example.org. alpn=f\\\092oo\092,bar,h2
k HTTPS 1 . ech="AARhYmNk"
l SVCB 1 . key3="\000\080"
m SVCB 1 . key3="\000\080\001"
n SVCB 1 . dohpath=/dns-query{?dns} docpath=""
o SVCB 1 . docpath=a,b\\,c ohttp
p SVCB 1 . key65535 key7=""
q HTTPS 1 . mandatory=key65000 key65000=x
r HTTPS 1 . key0="\000\001" alpn=h2
s HTTPS 1 . key1="\002h2"
    """,
    **{
        f"svcb-bad-{i}": f"a SVCB {text}\n"
        for i, text in enumerate(
            [
                r"0 . alpn=h2",
                r"1 . alpn",
                r"1 . alpn=",
                r'1 . alpn= "h2"',
                r"1 . ALPN=h2",
                r"1 . alpn=h2 alpn=h3",
                r"1 . =h2",
                r"1 . port=65536",
                r"1 . port=\056",
                r"1 . ipv4hint=1.2.3",
                r"1 . ipv6hint=::1,",
                r"1 . mandatory=alpn",
                r"1 . mandatory=mandatory",
                r"1 . mandatory=alpn,alpn alpn=h2",
                r"1 . no-default-alpn",
                r"1 . no-default-alpn=x alpn=h2",
                r"1 . key01=x",
                r"1 . key65536=x",
                r"1 . foo=bar",
                r"1 . alpn=h2,,h3",
                r"1 . alpn=h2\\q",
                r"1 . ech=abc",
                r"1 . ech=AAAA",
                r'1 . key3="\000"',
                r'1 . key4="\001"',
                r"1 . ohttp=1",
                r'1 . "alpn=h2"',
                r"1 . alp\n=h2",
                r'1 . key0="\000\000"',
                r'1 . key1="\000"',
            ]
        )
    },
    "svcb-generic": "a HTTPS \\# 3 000000\nb SVCB \\# 16 0001 00 0001 0003 026832 0003 0002 01bb\n",
    **{
        f"svcb-generic-bad-{i}": f"a SVCB \\# {len(bytes.fromhex(h))} {h}\n"
        for i, h in enumerate(
            [
                "0001",
                "00010000010000",
                "000100000300020050000100020268",
                "0001000003000150",
                "00010000000002000100",
                "0001000002000000",
                "0001000001000100",
                "000100000400030a000001",
            ]
        )
    },
    # types dnspython parses for the scanner
    "dnspython-types": """
a LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
b CERT PGP 0 0 mQENBFz1
c APL 1:192.0.2.0/24 !2:2001:db8::/32
d HTTPS 1 . alpn="h3,h2" ipv4hint=192.0.2.1 ipv6hint=2001:db8::1
e SVCB 0 www.example.
f IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
g LOC ( 52 22 23.000 N
        4 53 32.000 E -2.00m )
h ( LOC 52 22 23.000 N 4 53 32.000 E -2.00m )
i HTTPS \\# 3 000000
j OPENPGPKEY ( mQ
  EN BFz1 )
    """,
    "dnspython-type-bad": "a LOC 91 0 0 N 0 0 0 E 0m\n",
    "dnspython-type-bad-second-line": "a LOC ( 52 22 23.000 N\n 4 53 32.000 Q 0m )\n",
    "idna-owner": "bücher A 192.0.2.1\nxn--bcher-kva A 192.0.2.2\n",
    "idna-rdata": "a CNAME bücher\nb MX 1 bücher.example.\n",
    "idna-origin": "$ORIGIN bücher.example.\n@ A 192.0.2.1\n",
    "unicode-2003": "$UNICODE 2003\nfaß A 192.0.2.1\n",
    "unicode-2008": "$UNICODE 2008\nfaß A 192.0.2.1\n",
    # $GENERATE
    "generate": """
$GENERATE 1-3 host$ A 192.0.2.$
$GENERATE 0-30/10 ${0,3,d}.a A 192.0.2.${1}
$GENERATE 8-10 ${-8,2,x} PTR host$.example.
$GENERATE 1-2 x${0,4,o}-${16,2,X} AAAA 2001:db8::${0,0,x}
$GENERATE 250-251 ${0,0,n} PTR ${0,7,N}.rev.
$GENERATE 1-1 $$literal$ TXT \\$$
$GENERATE 1-2 g$ 600 IN CNAME c${+5}
$GENERATE 1-2 @ TXT $
    """,
    "generate-escaped-spaces": "$GENERATE 4-4 z$ TYPE65534 \\#\\ 1\\ 0$\n",
    "generate-class-then-ttl": "$GENERATE 3-3 h$ IN 700 A 10.0.0.$\n",
    "generate-bad-range": "$GENERATE 3-1 h$ A 10.0.0.$\n",
    "generate-bad-range-2": "$GENERATE 1 h$ A 10.0.0.$\n",
    "generate-bad-range-3": "$GENERATE 1-2/0 h$ A 10.0.0.$\n",
    "generate-bad-range-4": "$GENERATE -1-2 h$ A 10.0.0.$\n",
    "generate-bad-modifier": "$GENERATE 1-2 h${1,2,q} A 10.0.0.$\n",
    "generate-bad-modifier-2": "$GENERATE 1-2 h${} A 10.0.0.$\n",
    "generate-width-128": "$GENERATE 1-2 h${0,128} A 10.0.0.$\n",
    "generate-negative-nibble": "$GENERATE 1-2 h${-5,0,n} A 10.0.0.$\n",
    "generate-bad-rdata": "$GENERATE 1-3 host$ A 192.0.2.x$\n",
    "generate-class-ch": "$GENERATE 1-3 host$ CH A 192.0.2.$\n",
    "generate-unknown-type": "$GENERATE 1-3 host$ BOGUS 192.0.2.$\n",
    "generate-quoted-rhs": '$GENERATE 1-3 host$ TXT "x$"\n',
    "generate-dnspython-type": "$GENERATE 1-2 l$ LOC 5$\\ 0\\ 0\\ N\\ 0\\ 0\\ 0\\ E\\ 0m\n",
    "generate-comment": "$GENERATE 1-2 c$ A 192.0.2.$ ; comment\n",
    # whitespace-led line with no owner yet (only possible without an origin argument)
    "no-record": "; only a comment\n\n",
}


# The cases both accept; every other case both reject.
ACCEPTED = {
    "owners",
    "owner-label-63",
    "owner-too-long",
    "owner-root",
    "whitespace-only-lines",
    "ttl-class-orders",
    "type-numeric",
    "directives",
    "parentheses",
    "crlf",
    "cr-only",
    "no-final-newline",
    "comment-at-end",
    "txt",
    "txt-255",
    "quote-escaped-newline",
    "addresses",
    "names",
    "hinfo",
    "soa-units",
    "caa",
    "uri",
    "dnssec",
    "nsec3-short",
    "zonemd-private",
    "generic",
    "svcb",
    "svcb-generic",
    "dnspython-types",
    "idna-owner",
    "idna-rdata",
    "idna-origin",
    "unicode-2003",
    "generate",
    "generate-comment",
    "no-record",
}


def _has_idna2008() -> bool:
    """Whether dnspython can apply IDNA 2008 here: it needs the ``idna`` package, which some
    environments have (another test dependency pulls it in) and others do not."""
    try:
        dns.name.from_text("faß", idna_codec=dns.name.IDNA_2008)
    except dns.name.NoIDNA2008:
        return False
    return True


if _has_idna2008():
    ACCEPTED.add("unicode-2008")


def case_text(name: str) -> str:
    text = CASES[name]
    if name == "no-default-ttl":
        return "a A 192.0.2.1\n"
    return "$TTL 300\n" + text.lstrip("\n")


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_matches_dnspython(tmp_path: Path, name: str):
    zone = assert_same_as_dnspython(write(tmp_path, case_text(name)), ORIGIN)
    assert (zone is not None) == (name in ACCEPTED)
    if zone is not None and name != "no-record":
        assert len(zone) > 0


def test_types_dnspython_parses_are_counted(tmp_path: Path):
    zone = assert_same_as_dnspython(write(tmp_path, case_text("dnspython-types")), ORIGIN)
    assert zone is not None
    assert zone.fallbacks[dns.rdatatype.LOC] == 3
    not_native = [zone.record(i)[1] for i in range(len(zone))]
    not_native = [rtype for rtype in not_native if rtype not in native_types()]
    assert sum(zone.fallbacks.values()) == len(not_native) > 0
    assert zone.fallback_names == 0


def test_common_types_are_native():
    assert {
        dns.rdatatype.from_text(t)
        for t in [
            "A",
            "AAAA",
            "NS",
            "CNAME",
            "PTR",
            "DNAME",
            "MX",
            "TXT",
            "SPF",
            "SOA",
            "SRV",
            "CAA",
            "DS",
            "CDS",
            "DNSKEY",
            "CDNSKEY",
            "RRSIG",
            "NSEC",
            "NSEC3",
            "NSEC3PARAM",
            "TLSA",
            "SMIMEA",
            "SSHFP",
            "NAPTR",
            "HINFO",
            "RP",
            "AFSDB",
            "RT",
            "KX",
            "URI",
            "OPENPGPKEY",
            "DHCID",
            "ZONEMD",
            "CSYNC",
        ]
    } <= native_types()


# --- errors: the right file, line and reason -----------------------------------------------------

_MARKER = re.compile(r";\s*ERROR(@0)?:\s*(.*?)\s*$")
_INCLUDE = re.compile(r"^\$INCLUDE\s+(\S+)", re.IGNORECASE)


def marked_errors(path: Path) -> list[tuple[str, int]]:
    """(file, line) of each ``; ERROR:`` marker in ``path`` and the files it includes (the
    convention of tests/data/zonefiles/README)."""
    found = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, text in enumerate(lines, start=1):
        marker = _MARKER.search(text)
        if marker:
            found.append((str(path), 0 if marker.group(1) else number))
        include = _INCLUDE.match(text)
        if include and (path.parent / include.group(1)).exists():
            found.extend(marked_errors(path.parent / include.group(1)))
    return found


@pytest.mark.parametrize(
    "path",
    sorted(p for p in SYNTAX.iterdir() if p.suffix in {".zone", ".db"}),
    ids=lambda p: p.name,
)
def test_syntax_error_file_and_line(path: Path):
    (expected,) = marked_errors(path)
    with pytest.raises(ZoneScanError) as raised:
        scan_zone_file(path, origin_of(path))
    assert (raised.value.file, raised.value.line) == expected
    assert str(raised.value) == f"{expected[0]}:{expected[1]}: {raised.value.reason}"


# (zone text after "$TTL 300", line of the error, part of the reason)
ERRORS = [
    ("www A 192.0.2.1\nbad A 192.0.2.300\n", 3, "bad A address '192.0.2.300'"),
    ("www MX 10\n", 2, "missing MX exchange"),
    ("www MX ( 10\n\n )\n", 4, "missing MX exchange"),
    ("www MX 70000 mail\n", 2, "not an unsigned 16-bit integer"),
    ("www CH TXT x\n", 2, "record class must be IN"),
    ("www BOGUS x\n", 2, "unknown record type 'BOGUS'"),
    ("www\n", 2, "missing record type"),
    ('www TXT "a\nb"\n', 2, "newline in quoted string"),
    ("www TXT ( a\n b\n", 2, "unbalanced parentheses"),
    ("www A 192.0.2.1 )\n", 2, "unbalanced parentheses"),
    ("www A 192.0.2.1 extra\n", 2, "unexpected 'extra' after the record data"),
    ("www TXT " + "x" * 256 + "\n", 2, "longer than 255 octets"),
    ("a..b A 192.0.2.1\n", 2, "empty label"),
    ("x" * 64 + " A 192.0.2.1\n", 2, "label longer than 63 octets"),
    ("$FOO\n", 2, "unknown directive '$FOO'"),
    ("$TTL 1x\n", 2, "bad $TTL '1x'"),
    ("$GENERATE 1-3 h$ A 10.0.0.x$\n", 2, "bad A address '10.0.0.x1'"),
    ("$GENERATE 3-1 h$ A 10.0.0.$\n", 2, "bad $GENERATE range"),
    ("$GENERATE 1-3 h${0,200} A 10.0.0.$\n", 2, "width is too large"),
    ("www TYPE65534 1 2\n", 2, "RFC 3597"),
    ("www TYPE65534 \\# 2 00\n", 2, "not the 2 its length says"),
    ("www A \\# 3 000000\n", 2, "A rdata is not 4 octets"),
    ("www DS 1 8 2 00\n", 2, "digest length inconsistent with digest type"),
    ("www DNSKEY 257 3 8 a\n", 2, "bad DNSKEY public key"),
    ("www LOC ( 52 22 23.000 N\n 4 53 32.000 Q 0m )\n", 3, "bad LOC rdata"),
    ("www RRSIG A 8 1 300 20301301000000 1 1 . AA==\n", 2, "not a valid date and time"),
]


@pytest.mark.parametrize(("text", "line", "reason"), ERRORS, ids=[e[2] for e in ERRORS])
def test_error_line_and_reason(tmp_path: Path, text: str, line: int, reason: str):
    path = write(tmp_path, "$TTL 300\n" + text)
    with pytest.raises(ZoneScanError) as raised:
        scan_zone_file(path, ORIGIN)
    assert (raised.value.file, raised.value.line) == (str(path), line)
    assert reason in raised.value.reason
    with pytest.raises(ReferenceError_):
        reference_records(path, ORIGIN)


def test_unreadable_and_non_utf8_files(tmp_path: Path):
    missing = tmp_path / "missing.zone"
    with pytest.raises(ZoneScanError) as raised:
        scan_zone_file(missing, ORIGIN)
    assert (raised.value.file, raised.value.line) == (str(missing), 0)
    assert "cannot read zone file" in raised.value.reason
    latin1 = write(tmp_path, b'$TTL 300\nwww TXT ok\nwww TXT "caf\xe9"\n')
    with pytest.raises(ZoneScanError, match=r":3: not UTF-8 text"):
        scan_zone_file(latin1, ORIGIN)
    overlong = write(tmp_path, b'$TTL 300\nwww TXT "\xc0\xaf"\n')
    with pytest.raises(ZoneScanError, match=r":2: not UTF-8 text"):
        scan_zone_file(overlong, ORIGIN)


def test_no_origin(tmp_path: Path):
    path = write(tmp_path, "$TTL 300\nwww A 192.0.2.1\n")
    with pytest.raises(ZoneScanError, match=r":2: no origin for relative names"):
        scan_zone_file(path)
    with pytest.raises(ZoneScanError, match=r":1: no origin"):
        scan_zone_file(write(tmp_path, "$ORIGIN relative\n"))


# --- $INCLUDE ------------------------------------------------------------------------------------


def test_include_paths_origins_and_state(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "$TTL 60\nin-sub A 192.0.2.2\n$INCLUDE deeper.inc\n", "sub/part.inc")
    write(tmp_path, "deep TXT here\n", "sub/deeper.inc")
    write(tmp_path, "$ORIGIN elsewhere.\nx A 192.0.2.3\n", "sub/origin.inc")
    main = write(
        tmp_path,
        "$TTL 300\n@ A 192.0.2.1\n$INCLUDE sub/part.inc child\n A 192.0.2.4\n"
        f"$INCLUDE {tmp_path}/sub/origin.inc\nback A 192.0.2.5\n",
    )
    zone = assert_same_as_dnspython(main, ORIGIN)
    assert zone is not None
    names = [dns.name.from_wire(zone.record(i)[0], 0)[0].to_text() for i in range(len(zone))]
    assert names == [
        "example.",
        "in-sub.child.example.",
        "deep.child.example.",
        "example.",
        "x.elsewhere.",
        "back.example.",
    ]
    # $TTL and the last owner inside an included file do not leak out of it
    assert [zone.record(i)[2] for i in range(len(zone))] == [300, 60, 60, 300, 300, 300]
    assert zone.files == (
        str(main),
        str(tmp_path / "sub/part.inc"),
        str(tmp_path / "sub/deeper.inc"),
        f"{tmp_path}/sub/origin.inc",
    )
    assert zone.first_origin == dns.name.from_text("elsewhere.").to_wire()


def test_error_in_included_file_names_that_file(tmp_path: Path):
    write(tmp_path, "; part\nok A 192.0.2.1\n\nbad AAAA 2001:db8::g\n", "part.inc")
    main = write(tmp_path, "$TTL 300\n$INCLUDE part.inc\nafter A 192.0.2.2\n")
    with pytest.raises(ZoneScanError) as raised:
        scan_zone_file(main, ORIGIN)
    assert (raised.value.file, raised.value.line) == (str(tmp_path / "part.inc"), 4)
    assert "bad AAAA address" in raised.value.reason


def test_include_of_a_missing_file_blames_the_include_line(tmp_path: Path):
    main = write(tmp_path, "$TTL 300\n\n$INCLUDE nowhere.inc\n")
    with pytest.raises(ZoneScanError) as raised:
        scan_zone_file(main, ORIGIN)
    assert (raised.value.file, raised.value.line) == (str(main), 3)
    assert "cannot read included file" in raised.value.reason


def test_include_depth_is_limited(tmp_path: Path):
    loop = write(tmp_path, "$TTL 300\nx A 192.0.2.1\n$INCLUDE loop.zone\n", "loop.zone")
    with pytest.raises(ZoneScanError) as raised:
        scan_zone_file(loop, ORIGIN)
    assert raised.value.line == 3
    assert "nested more than 10 levels" in raised.value.reason
    chain = [write(tmp_path, f"$INCLUDE {i + 1}.inc\n", f"{i}.inc") for i in range(10)]
    write(tmp_path, "x A 192.0.2.1\n", "10.inc")
    zone = scan_zone_file(chain[0], ORIGIN, default_ttl=5)
    assert len(zone) == 1
    assert zone.record(0)[4:] == (str(tmp_path / "10.inc"), 1)


# --- the Python view -----------------------------------------------------------------------------


def test_columns_agree_with_records(tmp_path: Path):
    zone = scan_zone_file(write(tmp_path, case_text("dnssec")), ORIGIN)
    n = len(zone)
    owner_offsets, owners = zone.owner_offsets, zone.owner_data
    rdata_offsets, rdata = zone.rdata_offsets, zone.rdata
    assert owner_offsets.format == "Q" and zone.types.format == "H" and zone.ttls.format == "I"
    assert rdata_offsets.format == "Q" and zone.lines.format == "I"
    assert zone.file_indexes.format == "H" and rdata.format == "B"
    assert len(rdata_offsets) == n + 1 and rdata_offsets[0] == 0 and rdata_offsets[n] == len(rdata)
    for i in range(n):
        owner, rtype, ttl, data, file, line = zone.record(i)
        assert owners[owner_offsets[i] : owner_offsets[i] + len(owner)].tobytes() == owner
        assert (zone.types[i], zone.ttls[i], zone.lines[i]) == (rtype, ttl, line)
        assert rdata[rdata_offsets[i] : rdata_offsets[i + 1]].tobytes() == data
        assert zone.files[zone.file_indexes[i]] == file
    assert zone.record(-1) == zone.record(n - 1)
    with pytest.raises(IndexError):
        zone.record(n)
    assert zone.nbytes == sum(
        memoryview(c).nbytes
        for c in (
            owner_offsets,
            owners,
            zone.types,
            zone.ttls,
            rdata_offsets,
            rdata,
            zone.lines,
            zone.file_indexes,
        )
    )
    with pytest.raises((BufferError, TypeError)):
        memoryview(owners).cast("B")[0] = 1


def test_repeated_owners_are_stored_once(tmp_path: Path):
    zone = scan_zone_file(
        write(tmp_path, "$TTL 1\na A 192.0.2.1\n A 192.0.2.2\na TXT x\nb A 192.0.2.3\n"), ORIGIN
    )
    assert list(zone.owner_offsets) == [0, 0, 0, len(b"\x01a\x07example\x00")]
    assert zone.owner_data.tobytes() == b"\x01a\x07example\x00\x01b\x07example\x00"


def test_empty_file(tmp_path: Path):
    zone = scan_zone_file(write(tmp_path, ""), None)
    assert len(zone) == 0 and list(zone.rdata_offsets) == [0] and zone.rdata.nbytes == 0
    assert (
        zone.first_origin is None
        and zone.fallbacks == {}
        and zone.files == (str(tmp_path / "case.zone"),)
    )


def test_origin_and_default_ttl_arguments(tmp_path: Path):
    path = write(tmp_path, "www A 192.0.2.1\n")
    for origin in ("example", "example.", "EXAMPLE.", dns.name.from_text("example.")):
        zone = scan_zone_file(path, origin, default_ttl=7)
        owner, rtype, ttl = zone.record(0)[:3]
        assert (owner.lower(), rtype, ttl) == (b"\x03www\x07example\x00", 1, 7)
    assert scan_zone_file(path, "Exa\\.mple", 1).record(0)[0] == b"\x03www\x08Exa.mple\x00"
    assert scan_zone_file(str(path), "bücher", 1).record(0)[0] == b"\x03www\x0dxn--bcher-kva\x00"
    with pytest.raises(ValueError, match="bad zone origin"):
        scan_zone_file(path, "a..b")
    with pytest.raises(ValueError):
        scan_zone_file(path, "example.", default_ttl=-1)
    with pytest.raises(ZoneScanError, match="missing default TTL"):
        scan_zone_file(path, "example.")


def test_zone_scan_error_fields():
    error = ZoneScanError("a.zone", 3, "bad thing")
    assert (error.file, error.line, error.reason) == ("a.zone", 3, "bad thing")
    assert str(error) == "a.zone:3: bad thing"


def test_large_rdata_and_many_records(tmp_path: Path):
    strings = " ".join(['"' + "x" * 255 + '"'] * 255)
    path = write(
        tmp_path,
        f"$TTL 1\nbig TXT {strings}\n"
        + "".join(f"h{i} A 10.0.{i >> 8}.{i & 255}\n" for i in range(5000)),
    )
    zone = assert_same_as_dnspython(path, ORIGIN)
    assert zone is not None and len(zone) == 5001 and len(zone.record(0)[3]) == 255 * 256
    # RDLENGTH is 16 bits (RFC 1035 §3.2.1); dnspython notices only when it writes a message.
    too_big = write(tmp_path, "$TTL 1\nbig TXT " + " ".join(['"' + "x" * 255 + '"'] * 256) + "\n")
    with pytest.raises(ZoneScanError, match="rdata longer than 65535 octets"):
        scan_zone_file(too_big, ORIGIN)


# --- property: random zone files read alike ------------------------------------------------------

LABEL_CHARS = string.ascii_letters + string.digits + "-_*"
ESCAPES = ["\\.", "\\032", "\\$", "\\\\", "\\@", "\\(", "\\;", '\\"', "\\255", "\\000", "\\a"]


@st.composite
def labels(draw) -> str:
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(LABEL_CHARS), st.sampled_from(ESCAPES)),
            min_size=1,
            max_size=8,
        )
    )
    return "".join(parts)


@st.composite
def names(draw) -> str:
    """A name as written in a zone: relative, absolute, or @."""
    kind = draw(st.sampled_from(["relative", "absolute", "at", "relative", "root"]))
    if kind == "at":
        return "@"
    if kind == "root":
        return "."
    text = ".".join(draw(st.lists(labels(), min_size=1, max_size=3)))
    return text + ".test." if kind == "absolute" else text


def ttls(draw) -> str:
    value = draw(st.integers(0, 2**31))
    units = draw(st.sampled_from(["", "s", "units"]))
    if units == "s":
        return f"{value}S"
    if units == "units":
        w, d, h, m = draw(st.tuples(*[st.integers(0, 9)] * 4))
        return f"{w}w{d}D{h}h{m}m" if w or d or h or m else "0"
    return str(value)


def hex_chunks(draw, data: bytes) -> str:
    text = data.hex()
    text = text.upper() if draw(st.booleans()) else text
    cut = draw(st.integers(0, len(text))) if text else 0
    return f"{text[:cut]} {text[cut:]}".strip()


def base64_chunks(draw, data: bytes) -> str:
    import base64

    text = base64.b64encode(data).decode()
    cut = draw(st.integers(1, len(text)))
    return f"{text[:cut]} {text[cut:]}".strip()


def character_string(draw) -> str:
    pieces = draw(
        st.lists(
            st.one_of(
                st.text(string.ascii_letters + string.digits + " ;()@$.-", min_size=1, max_size=5),
                st.sampled_from(['\\"', "\\\\", "\\065", "\\255", "\\000", "é", "\\;"]),
            ),
            max_size=5,
        )
    )
    text = "".join(pieces)
    if not text or any(c in text for c in ' ;()"') or draw(st.booleans()):
        return '"' + text + '"'
    return text


@st.composite
def rdatas(draw) -> tuple[str, str]:
    """(type, rdata text) for a mix of native types, generic forms and dnspython's types."""
    kind = draw(
        st.sampled_from(
            [
                "A",
                "AAAA",
                "NS",
                "CNAME",
                "PTR",
                "DNAME",
                "MX",
                "TXT",
                "SPF",
                "SOA",
                "SRV",
                "CAA",
                "DS",
                "DNSKEY",
                "RRSIG",
                "NSEC",
                "NSEC3",
                "NSEC3PARAM",
                "TLSA",
                "SSHFP",
                "NAPTR",
                "HINFO",
                "URI",
                "generic",
                "generic-known",
                "LOC",
                "HTTPS",
                "bad",
            ]
        )
    )
    b = st.binary
    if kind == "A":
        return kind, str(draw(st.ip_addresses(v=4)))
    if kind == "AAAA":
        address = draw(st.ip_addresses(v=6))
        return kind, draw(st.sampled_from([address.compressed, address.exploded]))
    if kind in {"NS", "CNAME", "PTR", "DNAME"}:
        return kind, draw(names())
    if kind == "MX":
        return kind, f"{draw(st.integers(0, 65535))} {draw(names())}"
    if kind in {"TXT", "SPF"}:
        return kind, " ".join(character_string(draw) for _ in range(draw(st.integers(1, 3))))
    if kind == "SOA":
        timers = " ".join(ttls(draw) for _ in range(4))
        return (
            kind,
            f"{draw(names())} {draw(names())} ( {draw(st.integers(0, 2**32 - 1))}\n {timers} )",
        )
    if kind == "SRV":
        a, w, p = draw(st.tuples(*[st.integers(0, 65535)] * 3))
        return kind, f"{a} {w} {p} {draw(names())}"
    if kind == "CAA":
        tag = draw(st.sampled_from(["issue", "issuewild", "iodef", "Tag9"]))
        return kind, f"{draw(st.integers(0, 255))} {tag} {character_string(draw)}"
    if kind == "DS":
        digest_type = draw(st.sampled_from([1, 2, 4, 7]))
        size = {1: 20, 2: 32, 4: 48}.get(digest_type, draw(st.integers(1, 10)))
        algorithm = draw(st.sampled_from(["8", "13", "RSASHA256", "ecdsap256sha256"]))
        return kind, f"{draw(st.integers(0, 65535))} {algorithm} {digest_type} " + hex_chunks(
            draw, draw(b(min_size=size, max_size=size))
        )
    if kind == "DNSKEY":
        key = base64_chunks(draw, draw(b(min_size=1, max_size=40)))
        return kind, f"{draw(st.sampled_from([256, 257]))} 3 {draw(st.integers(0, 255))} {key}"
    if kind == "RRSIG":
        covered = draw(st.sampled_from(["A", "NS", "TYPE65534", "soa"]))
        expiration = draw(st.sampled_from(["20300101000000", "1700000000", "20240229120000"]))
        signature = base64_chunks(draw, draw(b(min_size=1, max_size=30)))
        return kind, (
            f"{covered} 13 {draw(st.integers(0, 255))} {ttls(draw)} {expiration} "
            f"20240101000000 {draw(st.integers(0, 65535))} {draw(names())} {signature}"
        )
    if kind == "NSEC":
        types = draw(
            st.lists(
                st.sampled_from(
                    ["A", "ns", "SOA", "RRSIG", "NSEC", "TYPE1234", "CAA", "TYPE65535"]
                ),
                max_size=5,
            )
        )
        return kind, f"{draw(names())} {' '.join(types)}"
    if kind == "NSEC3":
        import base64

        next_hash = base64.b32hexencode(draw(b(min_size=1, max_size=20))).decode().rstrip("=")
        salt = draw(b(max_size=8)).hex() or "-"
        return (
            kind,
            f"1 {draw(st.integers(0, 1))} {draw(st.integers(0, 20))} {salt} {next_hash} A RRSIG",
        )
    if kind == "NSEC3PARAM":
        return kind, f"1 0 {draw(st.integers(0, 65535))} {draw(b(max_size=8)).hex() or '-'}"
    if kind == "TLSA":
        matching = draw(st.sampled_from([0, 1, 2]))
        size = {1: 32, 2: 64}.get(matching, draw(st.integers(1, 40)))
        return kind, f"3 1 {matching} " + hex_chunks(draw, draw(b(min_size=size, max_size=size)))
    if kind == "SSHFP":
        fp_type = draw(st.sampled_from([1, 2, 3]))
        size = {1: 20, 2: 32}.get(fp_type, 5)
        return kind, f"4 {fp_type} " + hex_chunks(draw, draw(b(min_size=size, max_size=size)))
    if kind == "NAPTR":
        strings = " ".join(character_string(draw) for _ in range(3))
        return kind, f"{draw(st.integers(0, 65535))} 10 {strings} {draw(names())}"
    if kind == "HINFO":
        return kind, f"{character_string(draw)} {character_string(draw)}"
    if kind == "URI":
        return kind, f"1 2 {character_string(draw)}"
    if kind == "generic":
        data = draw(b(max_size=20))
        return f"TYPE{draw(st.integers(65280, 65534))}", f"\\# {len(data)} {hex_chunks(draw, data)}"
    if kind == "generic-known":
        data = draw(st.sampled_from([b"\xc0\x00\x02\x01", b"\x02hi", b"\x00\x01\x00", b""]))
        rtype = draw(st.sampled_from(["A", "TXT", "MX", "NS"]))
        return rtype, f"\\# {len(data)} {hex_chunks(draw, data)}"
    if kind == "LOC":
        return kind, f"{draw(st.integers(0, 90))} 0 0 N 4 53 32.000 E {draw(st.integers(0, 99))}m"
    if kind == "HTTPS":
        return draw(st.sampled_from(["HTTPS", "SVCB"])), svc_rdata(draw)
    return "A", draw(st.sampled_from(["192.0.2.256", "::1", "1.2.3", '"192.0.2.1"']))


def svc_rdata(draw) -> str:
    """SVCB/HTTPS rdata: AliasMode, or ServiceMode with random SvcParams in random forms."""
    import base64

    if draw(st.integers(0, 5)) == 0:
        return f"0 {draw(names())}"
    keys = draw(
        st.lists(
            st.sampled_from(
                [
                    "alpn",
                    "no-default-alpn",
                    "port",
                    "ipv4hint",
                    "ipv6hint",
                    "ech",
                    "mandatory",
                    "dohpath",
                    "key65000",
                    "key3",
                    "ohttp",
                    "docpath",
                ]
            ),
            unique=True,
            max_size=5,
        )
    )
    params = []
    for key in keys:
        if key == "alpn":
            value = ",".join(
                draw(
                    st.lists(
                        st.sampled_from(["h2", "h3", "h3-29", "a\\\\,b", "x\\\\\\\\y"]),
                        min_size=1,
                        max_size=3,
                    )
                )
            )
        elif key == "port":
            value = str(draw(st.integers(0, 70000)))
        elif key == "ipv4hint":
            value = ",".join(
                str(draw(st.ip_addresses(v=4))) for _ in range(draw(st.integers(1, 3)))
            )
        elif key == "ipv6hint":
            value = ",".join(
                str(draw(st.ip_addresses(v=6))) for _ in range(draw(st.integers(1, 2)))
            )
        elif key == "ech":
            body = draw(st.binary(min_size=4, max_size=12))
            config = len(body).to_bytes(2, "big") + body
            value = base64.b64encode(config if draw(st.integers(0, 5)) else body).decode()
        elif key == "mandatory":
            others = [k for k in keys if k != "mandatory"] or ["alpn"]
            value = ",".join(draw(st.lists(st.sampled_from(others), min_size=1, unique=True)))
        elif key == "key65000":
            value = draw(st.sampled_from(["", "x", "\\000\\255", "a b"]))
        elif key == "key3":
            value = draw(st.sampled_from(["\\000\\080", "\\001"]))
        elif key == "docpath":
            value = draw(st.sampled_from(["", "a,b", "x\\\\,y"]))
        elif key == "dohpath":
            value = "/dns-query{?dns}"
        else:
            params.append(key)
            continue
        form = draw(st.sampled_from(["quoted", "plain"]))
        if form == "plain" and value and " " not in value and '"' not in value:
            params.append(f"{key}={value}")
        else:
            params.append(f'{key}="{value}"')
    return f"{draw(st.integers(1, 3))} {draw(names())} " + " ".join(params)


@st.composite
def zone_texts(draw) -> str:
    lines = []
    if draw(st.integers(0, 4)):
        lines.append(f"$TTL {ttls(draw)}")
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["record"] * 8 + ["origin", "ttl", "generate", "comment"]))
        if kind == "origin":
            lines.append(
                f"$ORIGIN {draw(st.sampled_from(['sub', 'other.test.', 'A.b', 'x.y.test.']))}"
            )
        elif kind == "ttl":
            lines.append(f"$TTL {ttls(draw)} ; default")
        elif kind == "comment":
            lines.append(draw(st.sampled_from(["; just a comment", "", "   ", "\t; indented"])))
        elif kind == "generate":
            start = draw(st.integers(0, 20))
            stop = start + draw(st.integers(0, 4))
            lhs = draw(
                st.sampled_from(["h$", "${1,3,d}.g", "$.rev", "${0,0,n}", "x${-1,2,X}", "@"])
            )
            rhs = draw(st.sampled_from(["192.0.2.$", "t$.test.", "t${1,4,o}", "\\$$"]))
            rtype = "A" if rhs.startswith("192") else draw(st.sampled_from(["CNAME", "PTR", "NS"]))
            if rhs == "\\$$":
                rtype = "TXT"
            ttl = draw(st.sampled_from(["", "60 ", "IN ", "60 IN "]))
            lines.append(f"$GENERATE {start}-{stop} {lhs} {ttl}{rtype} {rhs}")
        else:
            owner = draw(st.one_of(names(), st.just("")))
            rtype, rdata = draw(rdatas())
            ttl = draw(st.sampled_from(["", "ttl"]))
            ttl = ttls(draw) if ttl else ""
            rclass = draw(st.sampled_from(["", "IN", "in", "CLASS1"]))
            fields = [ttl, rclass] if draw(st.booleans()) else [rclass, ttl]
            head = " ".join(f for f in [*fields, rtype] if f)
            if '"' not in rdata and draw(st.integers(0, 4)) == 0:
                rdata = "( " + rdata.replace(" ", " ; c\n ", 1) + " )"
            comment = draw(st.sampled_from(["", " ; trailing", ";x"]))
            gap = draw(st.sampled_from([" ", "\t", "  "]))
            lines.append(f"{owner}{gap}{head} {rdata}{comment}")
    newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from([newline, ""]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=zone_texts(), origin=st.sampled_from(["example.", "Test.", None]))
def test_random_zone_files_match_dnspython(tmp_path_factory, text: str, origin):
    path = write(tmp_path_factory.mktemp("z"), text)
    assert_same_as_dnspython(path, origin)


TOKENS = [
    "a",
    "@",
    "www.",
    "300",
    "1h",
    "IN",
    "A",
    "TXT",
    "MX",
    "NS",
    "10",
    "192.0.2.1",
    "x",
    '"q"',
    '"a b"',
    '""',
    "(",
    ")",
    ";c",
    "\\",
    "\\#",
    "\\032",
    "$TTL",
    "$ORIGIN",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    '"',
    "$GENERATE",
    "1-2",
    "h$",
    "TYPE65534",
    "0",
    "ff",
    "é",
    "\\\n",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=30))
def test_token_soup_matches_dnspython(tmp_path_factory, tokens: list[str]):
    """Arbitrary token sequences: the lexers must agree on every quote, paren and line end."""
    text = "$TTL 5\n" + "".join(t if t.isspace() or t in {"(", ")"} else t + " " for t in tokens)
    path = write(tmp_path_factory.mktemp("soup"), text)
    assert_same_as_dnspython(path, "example.")
