"""Zone-transfer test helpers: a fastdns config with TSIG keys and transfer policies, zone
files, and Knot DNS as a secondary of fastdns.

``running_knot_secondary(zones, primary_port=..., port=..., key=...)`` writes a knot.conf in
which every zone is a secondary (``master``) of fastdns on 127.0.0.1 with the TSIG key, accepts
NOTIFY from it signed with that key, lets 127.0.0.1 transfer its copies (unsigned), keeps
nothing on disk (no zone file written, no journal), and waits until Knot serves every zone.
"""

from __future__ import annotations

import base64
import contextlib
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.tsig
import dns.zone

from fastdns.bench.servers import knot_server_lines
from support.knot import _die_with_parent, _read_log, _stop, knotd_path

STARTUP_DEADLINE = 20.0


@dataclass(frozen=True)
class Key:
    """A TSIG key as the tests use it: name, algorithm (RFC 8945 §6 name) and secret."""

    name: str
    algorithm: str
    secret: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.secret).decode()

    def tsig(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, self.algorithm)

    def toml(self) -> str:
        return (
            f'[tsig_keys."{self.name}"]\nalgorithm = "{self.algorithm}"\nsecret = "{self.base64}"\n'
        )


KEY256 = Key("xfr.test.", "hmac-sha256", bytes(range(32)))
KEY512 = Key("xfr512.test.", "hmac-sha512", bytes(range(64, 128)))


def write_zone(path: Path, origin: str, serial: int, names: int = 0) -> None:
    """A zone file for ``origin`` with ``names`` extra A records (``h<i>``)."""
    lines = [
        f"$ORIGIN {origin}",
        "$TTL 3600",
        f"@ IN SOA ns1.{origin} hostmaster.{origin} {serial} 7200 3600 1209600 300",
        f"@ IN NS ns1.{origin}",
        "ns1 IN A 192.0.2.53",
        "www 300 IN A 192.0.2.10",
        'www IN TXT "hello"',
    ]
    lines += [f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(names)]
    path.write_text("\n".join(lines) + "\n")


def records(zone: dns.zone.Zone) -> set[tuple[str, int, str]]:
    """Every record of a dnspython zone as (owner, TTL, type and RDATA) text."""
    return {
        (name.derelativize(zone.origin).to_text(), ttl, f"{rdata.rdtype.name} {rdata.to_text()}")
        for name, ttl, rdata in zone.iterate_rdatas()
    }


def zone_file_records(path: Path, origin: str) -> set[tuple[str, int, str]]:
    return records(dns.zone.from_file(str(path), origin, relativize=False))


def transferred(host: str, port: int, origin: str, key: Key | None = None) -> set:
    """``records`` of a zone as an AXFR from ``host@port`` gives it."""
    keyring = key.tsig() if key is not None else None
    messages = dns.query.xfr(host, origin, port=port, keyring=keyring, relativize=False)
    return records(dns.zone.from_xfr(messages, relativize=False))


def soa_serial(host: str, port: int, origin: str) -> int | None:
    """The serial a server answers for ``origin`` over UDP (None: no answer)."""
    query = dns.message.make_query(origin, dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, host, port=port, timeout=0.3)
    except (OSError, dns.exception.DNSException):
        return None
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset[0].serial
    return None


def wait_for_serial(host: str, port: int, origin: str, serial: int, timeout: float) -> float:
    """Poll until the server answers ``serial`` for ``origin``; the seconds it took."""
    start = time.monotonic()
    while soa_serial(host, port, origin) != serial:
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"{host}@{port} did not serve {origin} serial {serial} within {timeout} s "
                f"(serves {soa_serial(host, port, origin)})"
            )
        time.sleep(0.005)
    return time.monotonic() - start


@dataclass(frozen=True)
class KnotSecondary:
    host: str
    port: int
    log_path: Path

    def log(self) -> str:
        return _read_log(self.log_path)


def knot_peer_conf(rundir: Path, *, port: int, fastdns_port: int, key: Key) -> list[str]:
    """The part of a knot.conf every transfer test shares: Knot on 127.0.0.1@``port`` with its
    log, database and control socket in ``rundir``, the TSIG ``key``, and fastdns on
    ``fastdns_port`` as the remote ``fastdns`` (signing with that key)."""
    return [
        *knot_server_lines(rundir, port=port),
        "key:",
        f"  - id: {key.name}",
        f"    algorithm: {key.algorithm}",
        f"    secret: {key.base64}",
        "remote:",
        "  - id: fastdns",
        f"    address: 127.0.0.1@{fastdns_port}",
        f"    key: {key.name}",
    ]


def knot_secondary_conf(
    zones: list[str], rundir: Path, *, port: int, primary_port: int, key: Key
) -> str:
    lines = [
        *knot_peer_conf(rundir, port=port, fastdns_port=primary_port, key=key),
        "acl:",
        "  - id: notify_from_fastdns",
        "    address: 127.0.0.1",
        f"    key: {key.name}",
        "    action: notify",
        "  - id: transfer_to_tests",  # so that a test can compare Knot's copy with fastdns's
        "    address: 127.0.0.1",
        "    action: transfer",
        "template:",
        "  - id: default",
        f'    storage: "{rundir}"',
        "    journal-content: none",
        "    zonefile-load: none",
        "    zonefile-sync: -1",
        "zone:",
    ]
    for origin in zones:
        lines += [
            f"  - domain: {origin}",
            "    master: fastdns",
            "    acl: [notify_from_fastdns, transfer_to_tests]",
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def running_knot_secondary(
    zones: list[str], *, port: int, primary_port: int, key: Key
) -> Iterator[KnotSecondary]:
    """knotd on 127.0.0.1@``port`` as a secondary of fastdns for ``zones``; yields once it
    serves every zone (``AssertionError`` with Knot's log otherwise)."""
    knotd = knotd_path()
    with tempfile.TemporaryDirectory(prefix="fastdns-knot2-") as tmp:
        rundir = Path(tmp)
        (rundir / "db").mkdir()
        conf = rundir / "knot.conf"
        conf.write_text(
            knot_secondary_conf(zones, rundir, port=port, primary_port=primary_port, key=key)
        )
        handle = KnotSecondary("127.0.0.1", port, rundir / "knotd.log")
        with open(rundir / "knotd.stderr", "wb") as stderr:
            proc = subprocess.Popen(
                [knotd, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            try:
                deadline = time.monotonic() + STARTUP_DEADLINE
                for origin in zones:
                    while soa_serial("127.0.0.1", port, origin) is None:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise AssertionError(
                                f"Knot does not serve {origin} as a secondary:\n{handle.log()}\n"
                                + _read_log(rundir / "knotd.stderr")
                            )
                        time.sleep(0.02)
                yield handle
            finally:
                _stop(proc)


class ChangeMaker:
    """Random but reproducible Route 53 change batches for one hosted zone: simple A and TXT
    record sets, a weighted group, aliases to the A record sets, TTL changes and deletes.

    ``batch()`` proposes one ChangeBatch; call ``accepted()`` once the server took it (a
    batch the server refuses, such as deleting an alias's target, is simply not accepted).
    """

    def __init__(self, zone: str, zone_id: str, seed: int = 7) -> None:
        self.zone = zone if zone.endswith(".") else zone + "."
        self.zone_id = zone_id.rsplit("/", 1)[-1]
        self.rng = random.Random(seed)
        self.sets: dict[tuple[str, str, str], dict] = {}
        self._pending: list[tuple[str, dict]] = []

    def _address(self) -> str:
        return f"192.0.2.{self.rng.randrange(1, 255)}"

    def _proposal(self, taken: set) -> tuple[str, dict]:
        rng, zone = self.rng, self.zone
        kind = rng.randrange(7)
        existing = [k for k in self.sets if k not in taken]
        if kind == 0 and existing:  # delete something that exists
            return "DELETE", self.sets[rng.choice(existing)]
        if kind == 1:
            name = f"w.{zone}"
            ident = f"s{rng.randrange(3)}"
            return "UPSERT", {
                "Name": name,
                "Type": "A",
                "SetIdentifier": ident,
                "Weight": rng.randrange(1, 10),
                "TTL": rng.choice((60, 120)),
                "ResourceRecords": [{"Value": self._address()}],
            }
        targets = [k[0] for k in self.sets if k[1] == "A" and k[0].startswith("h")]
        if kind == 2 and targets:
            return "UPSERT", {
                "Name": f"a{rng.randrange(3)}.{zone}",
                "Type": "A",
                "AliasTarget": {
                    "HostedZoneId": self.zone_id,
                    "DNSName": rng.choice(targets),
                    "EvaluateTargetHealth": False,
                },
            }
        if kind == 3:
            return "UPSERT", {
                "Name": f"t{rng.randrange(5)}.{zone}",
                "Type": "TXT",
                "TTL": 300,
                "ResourceRecords": [{"Value": f'"v{rng.randrange(1000)}"'}],
            }
        addresses = sorted({self._address() for _ in range(rng.randrange(1, 4))})
        return "UPSERT", {
            "Name": f"h{rng.randrange(15)}.{zone}",
            "Type": "A",
            "TTL": rng.choice((60, 300, 300)),
            "ResourceRecords": [{"Value": a} for a in addresses],
        }

    def batch(self) -> dict:
        self._pending = []
        taken: set = set()
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            action, rrset = self._proposal(taken)
            key = (rrset["Name"], rrset["Type"], rrset.get("SetIdentifier", ""))
            if key in taken:
                continue
            taken.add(key)
            self._pending.append((action, rrset))
        return {
            "Changes": [{"Action": a, "ResourceRecordSet": r} for a, r in self._pending],
        }

    def accepted(self) -> None:
        for action, rrset in self._pending:
            key = (rrset["Name"], rrset["Type"], rrset.get("SetIdentifier", ""))
            if action == "DELETE":
                del self.sets[key]
            else:
                self.sets[key] = rrset
        self._pending = []


def apply_ixfr(
    records_before: set[tuple[str, int, str]], rrsets: list
) -> tuple[set[tuple[str, int, str]], int]:
    """Apply an IXFR answer (RFC 1995 §4: current SOA, then old SOA / deletions / new SOA /
    additions per difference, then the current SOA) to ``records`` of the old version; the
    new records and the number of differences. An independent reader of the sequence."""
    rrs = [(rrset.name.to_text(), rrset.ttl, rdata) for rrset in rrsets for rdata in rrset]
    current = rrs[0][2]
    assert current.rdtype == dns.rdatatype.SOA and rrs[-1][2] == current
    result = {r for r in records_before if not r[2].startswith("SOA ")}
    serial = None
    for _name, _ttl, rdata in records_before:
        if rdata.startswith("SOA "):
            serial = int(rdata.split()[3])
    body, differences, adding = rrs[1:-1], 0, True
    for name, ttl, rdata in body:
        if rdata.rdtype == dns.rdatatype.SOA and name == rrs[0][0]:
            if adding:  # an old SOA: a difference starts
                assert rdata.serial == serial, (rdata.serial, serial)
                differences += 1
            else:
                serial = rdata.serial
            adding = not adding
            continue
        text = f"{rdata.rdtype.name} {rdata.to_text()}"
        if adding:
            result = {r for r in result if (r[0], r[2]) != (name, text)}
            result.add((name, ttl, text))
        else:
            matching = {r for r in result if (r[0], r[2]) == (name, text)}
            assert matching, f"IXFR deletes {name} {text}, which is not there"
            result -= matching
    assert adding and serial == current.serial, "the sequence does not end at the current SOA"
    soa_name, soa_ttl, _ = rrs[0]
    result.add((soa_name, soa_ttl, f"SOA {current.to_text()}"))
    return result, differences
