"""What a signed zone's AXFR costs (issue 7): the control plane rendering AXFR of a zone of
``--names`` A records, unsigned and signed (ECDSA P-256), TSIG-signed as Knot asks for it.

    python bench/xfr_signed.py [--names 10000] [--rounds 3]

In process: the zone is compiled signed once (as the server does), then
``ControlPlaneService.respond`` renders the transfer ``--rounds`` times; prints the best time,
messages, octets and RRs of each, and the signatures the signed transfer had to make itself
(0: every RRSIG came from the compile's cache, as the answers' do).
"""

from __future__ import annotations

import argparse
import time

import dns.message
import dns.name
import dns.rdata
import dns.rdatatype

from fastdns.compile import compile_zone
from fastdns.dnssec.keys import ECDSAP256SHA256, SigningKey, generate_private_key
from fastdns.dnssec.keystore import ZoneKeys
from fastdns.dnssec.signer import ZoneSigner
from fastdns.model import RecordSet, Zone
from fastdns.xfr.config import TransferConfig, TransferPolicy, parse_tsig_keys
from fastdns.xfr.service import ControlPlaneService
from fastdns.xfr.tsig import Keyring

ORIGIN = dns.name.from_text("bench.test.")
KEY = {
    "xfr.bench.": {
        "algorithm": "hmac-sha256",
        "secret": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    }
}


def make_zone(names: int) -> Zone:
    zone = Zone(ORIGIN)

    def add(name, rtype, ttl, *values):
        rdatas = tuple(
            dns.rdata.from_text("IN", rtype, v, origin=ORIGIN, relativize=False) for v in values
        )
        owner = dns.name.from_text(name, ORIGIN)
        zone.add(RecordSet(owner, dns.rdatatype.from_text(rtype), ttl, rdatas))

    add("@", "SOA", 900, "ns1 hostmaster 1 7200 900 1209600 300")
    add("@", "NS", 3600, "ns1", "ns2")
    add("ns1", "A", 3600, "192.0.2.1")
    add("ns2", "A", 3600, "192.0.2.2")
    for i in range(names):
        add(f"host{i}", "A", 300, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    return zone


def transfer(service: ControlPlaneService, key) -> tuple[float, int, int, int]:
    request = dns.message.make_query(ORIGIN, "AXFR")
    request.use_tsig(key)
    started = time.perf_counter()
    wires = list(service.respond(request.to_wire(), "127.0.0.1"))
    elapsed = time.perf_counter() - started
    rrs = sum(int.from_bytes(w[6:8], "big") for w in wires)
    return elapsed, len(wires), sum(len(w) for w in wires), rrs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    keys = parse_tsig_keys(KEY)
    tsig = next(iter(keys.values())).key()
    policy = TransferConfig(TransferPolicy(keys=tuple(keys)))
    zone = make_zone(args.names)
    ksk = SigningKey.from_private_key("k", "KSK", ECDSAP256SHA256, generate_private_key(13))
    zsk = SigningKey.from_private_key("z", "ZSK", ECDSAP256SHA256, generate_private_key(13))
    signer = ZoneSigner(ORIGIN, ZoneKeys((ksk,), (zsk,)))
    started = time.perf_counter()
    compile_zone(zone, signer=signer)
    print(f"{args.names} names: signed compile {time.perf_counter() - started:.2f} s, "
          f"{signer.signatures} signatures")  # fmt: skip
    for label, signers in (("unsigned", {}), ("signed", {ORIGIN: signer})):
        service = ControlPlaneService(policy, Keyring(keys))
        service.update({ORIGIN: zone}, None, signers)
        before = signer.signatures
        runs = [transfer(service, tsig) for _ in range(args.rounds)]
        best = min(runs)
        print(f"AXFR {label:8}: {best[0] * 1000:7.0f} ms, {best[1]} messages, {best[2]} octets, "
              f"{best[3]} RRs; signatures made during the transfers: "
              f"{signer.signatures - before}")  # fmt: skip


if __name__ == "__main__":
    main()
