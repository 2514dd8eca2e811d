"""What routing-policy answers cost the server, against plain records, in one run.

Issue 5's target: a load mixing weighted, geolocation (with ECS) and failover answers costs at
most 1.15x the server CPU per query of the plain-records load. This script prepares one fastdns:

* a zone file ``plain.bench.`` with ``--names`` A records (the plain load asks for them);
* a hosted zone ``policy.bench.`` in a fresh state database holding, for each of ``--names``
  owner names, one of: a weighted group of two members, a geolocation group (subdivision,
  country, continent and default ``*``), or a failover pair whose primary's health check (TCP to
  a closed port) is unhealthy, so the answer comes from the secondary after a health lookup;
* a MaxMind database placing four /24s in California, Germany, Japan and Brazil.

then runs ``python -m fastdns bench`` with ``--queries policy.txt --versus-queries plain.txt``
and ``--ecs`` cycling the four /24s, so both loads carry the same EDNS Client Subnet option and
differ only in how the answer is chosen. The bench alternates the two loads round after round
against the same server and prints medians and their ratio (``policy/plain``).

Run: ``python bench/policy_load.py [--names 3000] [--rate 30000] [--duration 10] [--rounds 3]``
(extra arguments after ``--`` go to ``fastdns bench``).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's MaxMind DB writer

from support.mmdb_writer import write_mmdb  # noqa: E402

from fastdns.health.config import parse_config  # noqa: E402
from fastdns.health.store import HealthCheckStore  # noqa: E402
from fastdns.route53.changebatch import parse_changes  # noqa: E402
from fastdns.store import Store  # noqa: E402

SUBNETS = ["198.18.1.0/24", "198.18.3.0/24", "198.18.4.0/24", "198.18.5.0/24"]
GEO = [
    ("198.18.1.0/24", {"country": {"iso_code": "US"}, "subdivisions": [{"iso_code": "CA"}]}),
    ("198.18.3.0/24", {"country": {"iso_code": "DE"}}),
    ("198.18.4.0/24", {"country": {"iso_code": "JP"}}),
    ("198.18.5.0/24", {"country": {"iso_code": "BR"}}),
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def policy_record_sets(names: int, health_check: str) -> list[dict]:
    out = []
    for i in range(names):
        name = f"n{i}.policy.bench."

        def a(identifier, address, name=name, **fields):
            return {
                "Name": name,
                "Type": "A",
                "TTL": 300,
                "SetIdentifier": identifier,
                "ResourceRecords": [{"Value": address}],
                **fields,
            }

        kind = i % 3
        if kind == 0:
            out += [a("a", "192.0.2.1", Weight=70), a("b", "192.0.2.2", Weight=30)]
        elif kind == 1:
            out += [
                a("ca", "192.0.2.1", GeoLocation={"CountryCode": "US", "SubdivisionCode": "CA"}),
                a("us", "192.0.2.2", GeoLocation={"CountryCode": "US"}),
                a("eu", "192.0.2.3", GeoLocation={"ContinentCode": "EU"}),
                a("any", "192.0.2.9", GeoLocation={"CountryCode": "*"}),
            ]
        else:
            out += [
                a("p", "192.0.2.1", Failover="PRIMARY", HealthCheckId=health_check),
                a("s", "192.0.2.2", Failover="SECONDARY"),
            ]
    return out


def prepare(workdir: Path, names: int) -> tuple[Path, Path, Path, Path]:
    zones = workdir / "zones"
    zones.mkdir()
    lines = ["$ORIGIN plain.bench.", "$TTL 300", "@ SOA ns1 h 1 7200 900 1209600 300", "@ NS ns1"]
    lines += ["ns1 A 192.0.2.53"] + [f"n{i} A 192.0.2.{i % 250 + 1}" for i in range(names)]
    (zones / "plain.bench.zone").write_text("\n".join(lines) + "\n")
    database = write_mmdb(workdir / "geo.mmdb", GEO)
    state = workdir / "state.db"
    store = Store(state)
    checks = HealthCheckStore(store)
    check, _ = checks.create(
        "bench",
        parse_config({"Type": "TCP", "IPAddress": "127.0.0.1", "Port": closed_port()}),
    )
    zone, _ = store.create_hosted_zone(
        "policy.bench.", str(uuid.uuid4()), None, ("ns1.policy.bench.",)
    )
    record_sets = policy_record_sets(names, check.id)
    for start in range(0, len(record_sets), 400):
        batch = {"Changes": [{"Action": "CREATE", "ResourceRecordSet": r} for r in
                             record_sets[start : start + 400]]}  # fmt: skip
        store.change_record_sets(zone.id, parse_changes(batch), None, checks.health_check_exists)
    store.close()
    config = workdir / "fastdns.toml"
    config.write_text(f'state = "{state}"\ngeoip_database = "{database}"\n')
    (workdir / "policy.txt").write_text("".join(f"n{i}.policy.bench. A\n" for i in range(names)))
    (workdir / "plain.txt").write_text("".join(f"n{i}.plain.bench. A\n" for i in range(names)))
    return zones, config, workdir / "policy.txt", workdir / "plain.txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=30000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("bench_args", nargs="*", help="more fastdns bench arguments (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fastdns-policy-bench-") as tmp:
        zones, config, policy, plain = prepare(Path(tmp), args.names)
        argv = [
            sys.executable, "-m", "fastdns", "bench",
            "--zone-dir", str(zones), "--fastdns-config", str(config),
            "--queries", str(policy), "--versus-queries", str(plain),
            "--rate", str(args.rate), "--duration", str(args.duration),
            "--rounds", str(args.rounds), "--pin",
        ]  # fmt: skip
        for subnet in SUBNETS:
            argv += ["--ecs", subnet]
        print("+", " ".join(argv[1:]), flush=True)
        return subprocess.call(argv + args.bench_args)


if __name__ == "__main__":
    sys.exit(main())
