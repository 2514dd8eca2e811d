"""Outgoing zone transfers against the real server: AXFR (RFC 5936), IXFR answered in AXFR form
(RFC 1995 §4), TSIG (RFC 8945) and the transfer ACLs, asked with dnspython and kdig.

One ``fastdns serve`` (one worker) for the module, with zones that differ only in their
transfer policy:

=============  ===============================================  ================================
zone           policy                                           expected
=============  ===============================================  ================================
example.com    keys = [xfr.test. (sha256), xfr512.test.]        signed: the zone; unsigned:
                                                                REFUSED; wrong secret: BADSIG
open.test      allow = [127.0.0.1/32]                           the zone, signed or not
closed.test    allow = [192.0.2.0/24] (not us)                  REFUSED
quiet.test     none (the global default names nothing)          REFUSED
big.test       allow = [127.0.0.0/8]; 5000 extra A records      every record, many messages
=============  ===============================================  ================================

The last test runs its own server: a zone file edited without a reload is not transferred.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.zone
import pytest
from support.client import query, recv_frame, tcp_connect
from support.server import running_fastdns
from support.xfr import KEY256, KEY512, Key, records, write_zone, zone_file_records

REPO = Path(__file__).resolve().parent.parent
BIG_NAMES = 5000
CONFIG = f"""\
{KEY256.toml()}
{KEY512.toml()}
[transfer.zones."example.com"]
keys = ["{KEY256.name}", "{KEY512.name}"]

[transfer.zones."open.test"]
allow = ["127.0.0.1/32"]

[transfer.zones."closed.test"]
allow = ["192.0.2.0/24"]

[transfer.zones."big.test"]
allow = ["127.0.0.0/8"]
"""


@pytest.fixture(scope="module")
def zones(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("xfr") / "zones"
    folder.mkdir()
    shutil.copy(REPO / "examples" / "zones" / "example.com.zone", folder)
    write_zone(folder / "open.test.zone", "open.test.", 7)
    write_zone(folder / "closed.test.zone", "closed.test.", 7)
    write_zone(folder / "quiet.test.zone", "quiet.test.", 7)
    write_zone(folder / "big.test.zone", "big.test.", 2024, BIG_NAMES)
    return folder


@pytest.fixture(scope="module")
def server(zones, tmp_path_factory):
    config = tmp_path_factory.mktemp("xfr-config") / "fastdns.toml"
    config.write_text(CONFIG)
    with running_fastdns(zones, config=config) as handle:
        yield handle


def axfr(server, origin: str, key: Key | dns.tsig.Key | None = None) -> dns.zone.Zone:
    keyring = key.tsig() if isinstance(key, Key) else key
    return dns.zone.from_xfr(
        dns.query.xfr(
            server.host, origin, port=server.port, keyring=keyring, lifetime=10, relativize=False
        ),
        relativize=False,
    )


def transfer_rcode(server, origin: str, rdtype: str = "AXFR") -> int:
    """The RCODE of an unsigned transfer request's (single) answer."""
    request = dns.message.make_query(origin, rdtype)
    return dns.query.tcp(request, server.host, port=server.port, timeout=5).rcode()


@pytest.mark.parametrize("key", [KEY256, KEY512], ids=["hmac-sha256", "hmac-sha512"])
def test_signed_transfer_is_the_zone(server, zones, key) -> None:
    zone = axfr(server, "example.com", key)
    assert records(zone) == zone_file_records(zones / "example.com.zone", "example.com.")


def test_transfer_allowed_by_address_needs_no_key(server, zones) -> None:
    expected = zone_file_records(zones / "open.test.zone", "open.test.")
    assert records(axfr(server, "open.test")) == expected
    assert records(axfr(server, "open.test", KEY256)) == expected  # signed: fine too


def test_unsigned_transfer_of_a_key_only_zone_is_refused(server) -> None:
    assert transfer_rcode(server, "example.com") == dns.rcode.REFUSED


@pytest.mark.parametrize("origin", ["closed.test", "quiet.test"])
def test_transfer_outside_the_acl_is_refused(server, origin) -> None:
    assert transfer_rcode(server, origin) == dns.rcode.REFUSED
    assert transfer_rcode(server, origin, "IXFR") == dns.rcode.REFUSED


def test_transfer_of_a_zone_we_do_not_serve_is_notauth(server) -> None:
    assert transfer_rcode(server, "elsewhere.test") == dns.rcode.NOTAUTH


def test_wrong_secret_gets_badsig(server) -> None:
    """RFC 8945 §5.2.2: NOTAUTH, TSIG error BADSIG, unsigned (dnspython raises on it)."""
    wrong = dns.tsig.Key(KEY256.name, b"\x01" * 32, KEY256.algorithm)
    with pytest.raises(dns.tsig.PeerBadSignature):
        axfr(server, "example.com", wrong)


def test_unknown_key_gets_badkey(server) -> None:
    unknown = dns.tsig.Key("nobody.test.", b"\x02" * 32, "hmac-sha256")
    with pytest.raises(dns.tsig.PeerBadKey):
        axfr(server, "open.test", unknown)


def test_key_with_the_wrong_algorithm_gets_badkey(server) -> None:
    mislabelled = dns.tsig.Key(KEY256.name, KEY256.secret, "hmac-sha512")
    with pytest.raises(dns.tsig.PeerBadKey):
        axfr(server, "example.com", mislabelled)


def test_big_zone_transfers_complete(server, zones) -> None:
    request = dns.message.make_query("big.test", "AXFR")
    messages = list(
        dns.query.xfr(server.host, "big.test", port=server.port, lifetime=20, relativize=False)
    )
    assert len(messages) > 1  # many messages, SOA first and last
    first, last = messages[0].answer[0], messages[-1].answer[-1]
    assert first.rdtype == last.rdtype == dns.rdatatype.SOA
    zone = dns.zone.from_xfr(iter(messages), relativize=False)
    expected = zone_file_records(zones / "big.test.zone", "big.test.")
    assert len(expected) == BIG_NAMES + 5
    assert records(zone) == expected
    assert request.question == messages[0].question


def test_kdig_axfr_with_tsig(server, zones) -> None:
    key = f"{KEY256.algorithm}:{KEY256.name}:{KEY256.base64}"
    result = subprocess.run(
        ["kdig", f"@{server.host}", "-p", str(server.port), "-y", key, "AXFR", "example.com"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith(";")]
    answer = [line for line in lines if "\tTSIG\t" not in line]
    assert "\tTSIG\t" in result.stdout and "NOERROR" in result.stdout, result.stdout
    expected = zone_file_records(zones / "example.com.zone", "example.com.")
    assert len(answer) == len(expected) + 1  # the SOA twice
    assert answer[0].split()[3] == answer[-1].split()[3] == "SOA"


def test_kdig_with_a_wrong_key_fails(server) -> None:
    key = f"{KEY256.algorithm}:{KEY256.name}:{Key('x.', 'hmac-sha256', bytes(32)).base64}"
    result = subprocess.run(
        ["kdig", f"@{server.host}", "-p", str(server.port), "-y", key, "AXFR", "example.com"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "BADSIG" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "\tA\t" not in result.stdout


def test_ixfr_is_answered_with_the_whole_zone_or_the_soa(server, zones) -> None:
    """RFC 1995 §4: no history is kept, so an older serial gets the zone in AXFR form; the
    current serial gets the single SOA (§2)."""
    expected = zone_file_records(zones / "open.test.zone", "open.test.")
    old = dns.query.xfr(
        server.host, "open.test", "IXFR", port=server.port, serial=6, relativize=False
    )
    assert records(dns.zone.from_xfr(old, relativize=False)) == expected
    request = dns.message.make_query("open.test", "IXFR")
    request.authority.append(dns.rrset.from_text("open.test.", 0, "IN", "SOA", ". . 7 0 0 0 0"))
    response = dns.query.tcp(request, server.host, port=server.port, timeout=5)
    assert [rrset.rdtype for rrset in response.answer] == [dns.rdatatype.SOA]
    assert response.answer[0][0].serial == 7


def test_axfr_over_udp_stays_notimp(server) -> None:
    response = query(server.host, server.port, "open.test", "AXFR")
    assert response.rcode() == dns.rcode.NOTIMP


def test_signed_query_gets_a_signed_answer(server) -> None:
    """A TSIG-signed ordinary query over TCP goes to the control plane and comes back signed
    (RFC 8945 §5.3); dnspython verifies the signature."""
    request = dns.message.make_query("www.example.com", "A")
    request.use_tsig(KEY256.tsig())
    response = dns.query.tcp(request, server.host, port=server.port, timeout=5)
    assert response.had_tsig and response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert [rd.to_text() for rd in response.answer[0]] == ["192.0.2.10"]


def test_transfer_and_queries_pipelined_on_one_connection(server) -> None:
    """Messages after a transfer on the same connection wait for it and are answered in order."""
    transfer = dns.message.make_query("open.test", "AXFR")
    plain = dns.message.make_query("www.open.test", "A")
    with tcp_connect(server.host, server.port) as sock:
        sock.sendall(b"".join(m.to_wire(prepend_length=True) for m in (transfer, plain)))
        deadline = time.monotonic() + 5
        first = dns.message.from_wire(recv_frame(sock, deadline=deadline), xfr=True)
        second = dns.message.from_wire(recv_frame(sock, deadline=deadline))
    assert first.id == transfer.id and first.answer[0].rdtype == dns.rdatatype.SOA
    assert first.answer[-1].rdtype == dns.rdatatype.SOA  # a small zone: one message
    assert second.id == plain.id and second.answer[0][0].to_text() == "192.0.2.10"


def test_no_secret_in_the_log(server) -> None:
    text = server.stderr_text()
    assert "AXFR of zone example.com." in text
    for key in (KEY256, KEY512):
        assert key.base64 not in text


def test_transfer_with_the_supervisor_serving(zones, tmp_path) -> None:
    """``--workers 0``: the in-process worker hands requests to the control plane directly."""
    config = tmp_path / "fastdns.toml"
    config.write_text(CONFIG)
    with running_fastdns(zones, config=config, workers=0) as server:
        assert records(axfr(server, "example.com", KEY256)) == zone_file_records(
            zones / "example.com.zone", "example.com."
        )
        assert transfer_rcode(server, "closed.test") == dns.rcode.REFUSED


def test_transfer_of_a_zone_file_edited_but_not_reloaded(tmp_path) -> None:
    # A zone file compiled natively keeps no model: a transfer reads the file again
    # (fastdns.nativezone.ZoneFileModel). Once the file holds another serial than the one
    # served, its records are not the served zone's: SERVFAIL until the reload.
    folder = tmp_path / "zones"
    folder.mkdir()
    write_zone(folder / "edit.test.zone", "edit.test.", 7, 10)
    config = tmp_path / "fastdns.toml"
    config.write_text('[transfer.zones."edit.test"]\nallow = ["127.0.0.0/8"]\n')
    with running_fastdns(folder, config=config) as server:
        assert records(axfr(server, "edit.test")) == zone_file_records(
            folder / "edit.test.zone", "edit.test."
        )
        write_zone(folder / "edit.test.zone", "edit.test.", 8, 11)
        assert transfer_rcode(server, "edit.test") == dns.rcode.SERVFAIL
        server.reload()
        zone = axfr(server, "edit.test")
        assert zone.get_soa().serial == 8
        assert records(zone) == zone_file_records(folder / "edit.test.zone", "edit.test.")
