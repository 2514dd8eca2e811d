"""The parts of fastdns.xfr on their own: config, ACL, the AXFR message builder (checked by
dnspython's own transfer reader, TSIG chain included), the request service and NOTIFY retries
against a UDP socket standing in for a secondary."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone
import pytest
from support.xfr import KEY256, KEY512, records, write_zone, zone_file_records

from fastdns.config import ConfigError, load_config
from fastdns.xfr.acl import transfer_allowed
from fastdns.xfr.axfr import axfr_rrsets, transfer_messages
from fastdns.xfr.config import (
    NotifyTarget,
    TransferConfig,
    TransferPolicy,
    parse_transfer,
    parse_tsig_keys,
)
from fastdns.xfr.notify import Notifier
from fastdns.xfr.service import ControlPlaneService, serial_at_least
from fastdns.xfr.tsig import Keyring
from fastdns.zonefile import load_zone_file

ORIGIN = dns.name.from_text("unit.test.")


@pytest.fixture
def zone(tmp_path):
    path = tmp_path / "unit.test.zone"
    write_zone(path, "unit.test.", 41, names=500)
    return load_zone_file(path), path


def keyring(*keys) -> Keyring:
    return Keyring(
        parse_tsig_keys({k.name: {"algorithm": k.algorithm, "secret": k.base64} for k in keys})
    )


# -- config


def test_config_reads_keys_and_policies(tmp_path) -> None:
    config = tmp_path / "fastdns.toml"
    config.write_text(
        f'zone_dir = "zones"\n{KEY256.toml()}\n[transfer]\nallow = ["127.0.0.0/8"]\n'
        f'[transfer.zones."example.com"]\nkeys = ["{KEY256.name}"]\n'
        f'notify = ["127.0.0.1:5300", "[::1]:5301", "192.0.2.1"]\nnotify_key = "{KEY256.name}"\n'
    )
    loaded = load_config(config)
    spec = loaded.tsig_keys[dns.name.from_text(KEY256.name)]
    assert spec.secret == KEY256.secret and spec.algorithm == dns.tsig.HMAC_SHA256
    policy = loaded.transfer.for_zone(dns.name.from_text("example.com"))
    assert [str(n) for n in policy.allow] == ["127.0.0.0/8"]  # from the default
    assert policy.keys == (dns.name.from_text(KEY256.name),)
    assert policy.notify == (
        NotifyTarget("127.0.0.1", 5300),
        NotifyTarget("::1", 5301),
        NotifyTarget("192.0.2.1", 53),
    )
    assert loaded.transfer.for_zone(ORIGIN).keys is None
    assert KEY256.base64 not in repr(loaded)  # keys are never logged


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"k": {"algorithm": "hmac-md5", "secret": KEY256.base64}}, "algorithm must be one of"),
        ({"k": {"algorithm": "hmac-sha256", "secret": "not base64!"}}, "not valid base64"),
        ({"k": {"algorithm": "hmac-sha256", "secret": "c2hvcnQ="}}, "at least 16 octets"),
        ({"k": {"algorithm": "hmac-sha256"}}, "exactly algorithm and secret"),
    ],
)
def test_bad_tsig_keys_are_config_errors(value, message) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_tsig_keys(value)
    assert "not base64!" not in str(info.value) or "base64" in message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"allow": ["300.0.0.0/8"]}, "allow"),
        ({"notify": ["host.example:53"]}, "not an IP address"),
        ({"notify": ["127.0.0.1:0"]}, "port"),
        ({"bogus": 1}, "unknown setting 'bogus'"),
        ({"zones": {"example.com": {"keys": 5}}}, "keys"),
    ],
)
def test_bad_transfer_settings_are_config_errors(value, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_transfer(value)


def test_transfer_naming_an_undefined_key_is_a_config_error(tmp_path) -> None:
    config = tmp_path / "fastdns.toml"
    config.write_text('zone_dir = "zones"\n[transfer]\nkeys = ["missing.key."]\n')
    with pytest.raises(ConfigError, match=r"missing\.key\. is not defined"):
        load_config(config)


# -- ACL


def test_acl_default_denies() -> None:
    assert not transfer_allowed(TransferPolicy(), "127.0.0.1", None)


def test_acl_by_address_and_key() -> None:
    key = dns.name.from_text(KEY256.name)
    by_address = parse_transfer({"allow": ["127.0.0.0/8", "::1"]}).default
    assert transfer_allowed(by_address, "127.0.0.2", None)
    assert transfer_allowed(by_address, "::ffff:127.0.0.1", None)  # IPv4-mapped
    assert transfer_allowed(by_address, "::1", key)
    assert not transfer_allowed(by_address, "192.0.2.1", key)
    by_key = parse_transfer({"keys": [KEY256.name]}).default
    assert transfer_allowed(by_key, "192.0.2.1", key)
    assert not transfer_allowed(by_key, "127.0.0.1", None)
    assert not transfer_allowed(by_key, "127.0.0.1", dns.name.from_text(KEY512.name))
    both = parse_transfer({"keys": [KEY256.name], "allow": ["127.0.0.1"]}).default
    assert transfer_allowed(both, "127.0.0.1", key)
    assert not transfer_allowed(both, "127.0.0.2", key)
    assert not transfer_allowed(both, "127.0.0.1", None)


def test_serial_arithmetic() -> None:
    """RFC 1982: serials wrap around."""
    assert serial_at_least(5, 5) and serial_at_least(6, 5)
    assert not serial_at_least(4, 5)
    assert serial_at_least(1, 2**32 - 1) and not serial_at_least(2**32 - 1, 1)


# -- the AXFR builder


@pytest.mark.parametrize("key", [None, KEY256, KEY512], ids=["unsigned", "sha256", "sha512"])
def test_messages_read_back_as_the_zone(zone, key) -> None:
    """dnspython's inbound transfer reader (the same code ``dns.query.xfr`` runs) checks the
    framing and, when signed, every message's TSIG in the chain (RFC 8945 §5.3.1)."""
    model, path = zone
    tsig_key = key.tsig() if key else None
    request = dns.message.make_query(ORIGIN, "AXFR")
    if tsig_key:
        request.use_tsig(tsig_key)
    request = dns.message.from_wire(request.to_wire(), keyring=tsig_key or False)
    wires = list(transfer_messages(request, axfr_rrsets(model), tsig_key, max_size=1024))
    assert len(wires) > 5 and all(len(w) <= 1024 for w in wires)
    result = dns.zone.Zone(ORIGIN, relativize=False)
    ctx, request_mac = None, request.mac
    inbound = dns.xfr.Inbound(result, dns.rdatatype.AXFR)
    done = False
    for i, wire in enumerate(wires):
        assert not done
        message = dns.message.from_wire(
            wire,
            keyring=tsig_key,
            request_mac=request_mac,
            xfr=True,
            tsig_ctx=ctx,
            multi=bool(tsig_key),
            one_rr_per_rrset=False,
        )
        if tsig_key:
            assert message.had_tsig
            ctx = message.tsig_ctx
        assert bool(message.question) == (i == 0)
        assert message.flags & dns.flags.AA and message.id == request.id
        done = inbound.process_message(message)
    assert done
    assert records(result) == zone_file_records(path, "unit.test.")


def test_an_rrset_bigger_than_a_message_is_split(tmp_path) -> None:
    path = tmp_path / "wide.test.zone"
    write_zone(path, "wide.test.", 1)
    wide = "".join(f"wide IN A 10.0.{i // 250}.{i % 250}\n" for i in range(900))
    path.write_text(path.read_text() + wide)
    model = load_zone_file(path)
    request = dns.message.make_query("wide.test.", "AXFR")
    wires = list(transfer_messages(request, axfr_rrsets(model), max_size=2048))
    assert len(wires) > 3
    messages = [dns.message.from_wire(w, xfr=True, origin=model.origin) for w in wires]
    sent = sum(len(rrset) for m in messages for rrset in m.answer)
    assert sent == sum(len(rs.rdatas) for rs in model) + 1  # the SOA twice


# -- the service


def test_service_answers(zone, monkeypatch) -> None:
    model, _path = zone
    service = ControlPlaneService(
        parse_transfer({"zones": {"unit.test": {"keys": [KEY256.name]}}}), keyring(KEY256)
    )
    service.update({ORIGIN: model})

    def ask(request, peer="127.0.0.1") -> list[dns.message.Message]:
        return [
            dns.message.from_wire(w, keyring=False, xfr=True)
            for w in service.respond(request.to_wire(), peer)
        ]

    assert list(service.respond(b"\x12\x34\x00\x00\x00\x01", "127.0.0.1")) == []  # too short
    assert ask(dns.message.make_query(ORIGIN, "AXFR"))[0].rcode() == dns.rcode.REFUSED
    assert ask(dns.message.make_query("other.test.", "AXFR"))[0].rcode() == dns.rcode.NOTAUTH
    signed = dns.message.make_query(ORIGIN, "AXFR")
    signed.use_tsig(KEY256.tsig())
    answers = ask(signed)
    assert all(m.had_tsig for m in answers) and answers[-1].answer[-1].rdtype == dns.rdatatype.SOA
    garbled = bytearray(signed.to_wire())
    garbled[-10] ^= 0xFF  # inside the MAC
    [bad] = [dns.message.from_wire(w, keyring=False) for w in service.respond(bytes(garbled), "-")]
    assert bad.rcode() == dns.rcode.NOTAUTH and bad.tsig_error == dns.rcode.BADSIG
    assert bad.tsig[0].mac == b""  # RFC 8945 §5.3.2: unsigned
    late = dns.message.make_query(ORIGIN, "AXFR")
    late.use_tsig(KEY256.tsig())
    an_hour_ago = time.time() - 3600
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: an_hour_ago)
        wire = late.to_wire()
    [stale] = [dns.message.from_wire(w, keyring=False) for w in service.respond(wire, "-")]
    assert stale.rcode() == dns.rcode.NOTAUTH and stale.tsig_error == dns.rcode.BADTIME
    assert stale.tsig[0].mac != b""  # BADTIME is signed (§5.2.3)


# -- NOTIFY


def _secondary() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def test_notify_is_retried_until_acknowledged(zone, caplog) -> None:
    model, _path = zone
    caplog.set_level(logging.INFO, "fastdns.xfr")

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        with _secondary() as sock:
            target = NotifyTarget("127.0.0.1", sock.getsockname()[1])
            policy = TransferPolicy(notify=(target,), notify_key=dns.name.from_text(KEY256.name))
            notifier = Notifier(TransferConfig(policy), keyring(KEY256), intervals=(0.1,) * 4)
            notifier.zones_served({ORIGIN: model})
            _ignored = await loop.sock_recvfrom(sock, 65535)
            wire, address = await loop.sock_recvfrom(sock, 65535)
            request = dns.message.from_wire(wire, keyring=KEY256.tsig())  # verifies the TSIG
            assert request.opcode() == dns.opcode.NOTIFY and request.flags & dns.flags.AA
            assert not request.flags & dns.flags.RD
            assert request.question[0].rdtype == dns.rdatatype.SOA
            assert request.answer[0][0].serial == 41
            response = dns.message.make_response(request)  # signed like the request
            await loop.sock_sendto(sock, response.to_wire(), address)
            await asyncio.gather(*notifier._tasks.values())
            notifier.zones_served({ORIGIN: model})  # the same serial: nothing more to send
            await asyncio.sleep(0.15)
            with pytest.raises(BlockingIOError):
                sock.recvfrom(65535)
            await notifier.close()
            return 0

    asyncio.run(scenario())
    assert "NOTIFY of zone unit.test. serial 41" in caplog.text
    assert "(try 2)" in caplog.text


def test_notify_gives_up_after_its_tries(zone, caplog) -> None:
    model, _path = zone
    caplog.set_level(logging.INFO, "fastdns.xfr")

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        with _secondary() as sock:
            target = NotifyTarget("127.0.0.1", sock.getsockname()[1])
            notifier = Notifier(
                TransferConfig(TransferPolicy(notify=(target,))), Keyring(), intervals=(0.05,) * 3
            )
            notifier.zones_served({ORIGIN: model})
            for _ in range(3):
                await loop.sock_recvfrom(sock, 65535)
            await asyncio.gather(*notifier._tasks.values())
            await notifier.close()
            return 0

    asyncio.run(scenario())
    assert "no answer after 3 tries" in caplog.text


def test_notify_without_targets_walks_no_zones() -> None:
    class Unwalkable(dict):
        def items(self):
            raise AssertionError("walked every zone with nothing to notify")

    notifier = Notifier(TransferConfig(), Keyring())
    notifier.zones_served(Unwalkable({ORIGIN: None}))
    assert notifier._notified == {}
