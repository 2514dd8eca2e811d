"""How fast zone files load: fastdns._zscanner, fastdns.zonefile (dnspython) and Knot DNS.

    python bench/zone_scan_speed.py                    # 1M A records, 100k mixed, 3 rounds
    python bench/zone_scan_speed.py --a-records 200000 --mixed-records 20000 --rounds 5
    python bench/zone_scan_speed.py --keep /tmp/zones  # keep the generated zone files

It writes two zones to a temporary directory:

- ``a.bench.test.zone``: an SOA, an NS and N owner names with one A record each (1,000,000 by
  default), the shape of a large flat zone;
- ``mixed.bench.test.zone``: M records (100,000 by default) of the common types (A, AAAA, MX,
  TXT, CNAME, SRV, CAA, PTR, DS, DNSKEY, RRSIG, NSEC, SSHFP, TLSA, HTTPS), with parentheses,
  comments, blank owners, TTL units and one LOC per thousand records (a type the scanner hands
  to dnspython).

and times, as the median of ``--rounds`` runs (wall clock, one process, one core):

- ``scan_zone_file`` on both files: records/s, µs/record, and the bytes per record the
  resulting ScannedZone holds (all its columns);
- ``fastdns.zonefile.parse_zone_file`` (dnspython's reader plus fastdns's model) on the mixed
  file only: dnspython needs about a minute for a million records;
- ``kzonecheck`` (Debian's knot package) on the A-record file, when /usr/bin/kzonecheck exists:
  it parses the whole zone (and checks its semantics, so it is an upper bound for Knot's
  parser alone). The time includes starting the process.
- Knot's parser itself, libzscanner (Debian's libzscanner4), through ctypes, on the A-record
  file, when the library is installed: ``zs_parse_all`` with no record callback parses (and
  checks) every record but keeps nothing, so it is a lower bound for a Knot-style loader.

Run it on an otherwise idle machine; on a shared 2-CPU box the figures move by tens of percent
between runs, so compare figures from one run.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastdns import zonefile
from fastdns._zscanner import scan_zone_file

ORIGIN = "bench.test."
KZONECHECK = "/usr/bin/kzonecheck"

HEADER = """$ORIGIN {origin}
$TTL 3600
@   IN  SOA ns1 hostmaster ( 2024060101 2h 1h 2w 300 )
@   IN  NS  ns1
ns1 IN  A   192.0.2.53
"""


def write_a_zone(path: Path, records: int) -> int:
    """An SOA, an NS, the NS's address and ``records`` A records; the number of records."""
    with path.open("w", encoding="ascii") as f:
        f.write(HEADER.format(origin="a." + ORIGIN))
        for i in range(records):
            f.write(f"host{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
    return records + 3


def mixed_record(i: int) -> str:
    """One record (or two lines of one) of the i-th owner in the mixed zone."""
    kind = i % 16
    owner = f"n{i}"
    if kind == 0:
        return f"{owner} 300 IN A 192.0.{i >> 8 & 255}.{i & 255}"
    if kind == 1:
        return f"{owner} IN 1h AAAA 2001:db8::{i >> 16:x}:{i & 0xFFFF:x}"
    if kind == 2:
        return f"{owner} MX 10 mail.{owner}\n    MX 20 backup.example.net."
    if kind == 3:
        return f'{owner} TXT "v=spf1 ip4:192.0.2.0/24 -all" "record {i}" ; a comment'
    if kind == 4:
        return f"{owner} CNAME target{i % 100}.example.net."
    if kind == 5:
        return f"_sip._tcp.{owner} SRV 10 60 5060 sip.{owner}"
    if kind == 6:
        return f'{owner} CAA 0 issue "letsencrypt.org"'
    if kind == 7:
        return f"{i & 255}.{i >> 8 & 255}.rev PTR host{i}.example.net."
    if kind == 8:
        return (
            f"{owner} DS {i & 65535} 13 2 ( {i:08x}8583824AF8440CB9323AA923\n"
            "    94991AC5D82F91FDEB0FE411D75755C7 )"
        )
    if kind == 9:
        return (
            f"{owner} DNSKEY 257 3 13 ( FDSFDnd0nIrnBgbVNpHlZm9ITqaZkECmuiSikn+Pfx/C10n1X5KIzog\n"
            "    xK0ahNV//JP15tuEqJxLivMdltUav3w== )"
        )
    if kind == 10:
        return (
            f"{owner} RRSIG A 13 3 3600 20300101000000 20240101000000 {i & 65535} {ORIGIN} (\n"
            "    oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3D\n"
            "    TJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBz )"
        )
    if kind == 11:
        return f"{owner} NSEC n{i + 1}.{ORIGIN} A AAAA RRSIG NSEC"
    if kind == 12:
        fingerprint = f"ac427481aea27c04a21a8167aa0a695e3f76a8e9875be3be903ab118f9{i:06x}"
        return f"{owner} SSHFP 1 2 {fingerprint[:32]} {fingerprint[32:]}"
    if kind == 13:
        return (
            f"_443._tcp.{owner} TLSA 3 1 1 b6c0540daa5560a0952f4fdfbcdf8b0712 "
            f"38a4ee4eb872c9ccf95a7352{i:06x}"
        )
    if kind == 14:
        return f'{owner} HTTPS 1 . alpn="h3,h2" ipv4hint=192.0.2.{i & 255} port=443'
    if i % 1000 == 15:
        return f"{owner} LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"
    return f"    A 192.0.2.{i & 255}"  # the previous owner again


def write_mixed_zone(path: Path, records: int) -> int:
    """About ``records`` records of the common types; the exact number written."""
    count = 3
    with path.open("w", encoding="ascii") as f:
        f.write(HEADER.format(origin="mixed." + ORIGIN))
        i = 0
        while count < records + 3:
            text = mixed_record(i)
            f.write(text + "\n")
            count += 1 + text.count("\n    MX")
            i += 1
    return count


def libzscanner_parse(library: str, path: Path, origin: str) -> None:
    """Parse ``path`` with Knot's libzscanner (zs_init, zs_set_input_file, zs_parse_all)."""
    lib = ctypes.CDLL(library)
    # zs_scanner_t is a few hundred kilobytes (three 64 KiB buffers); 4 MiB is plenty.
    scanner = ctypes.create_string_buffer(4 << 20)
    lib.zs_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16, ctypes.c_uint32]
    if lib.zs_init(scanner, origin.encode(), 1, 3600) != 0:
        raise RuntimeError("zs_init failed")
    try:
        if lib.zs_set_input_file(scanner, os.fsencode(path)) != 0:
            raise RuntimeError("zs_set_input_file failed")
        if lib.zs_set_processing(scanner, None, None, None) != 0:
            raise RuntimeError("zs_set_processing failed")
        if lib.zs_parse_all(scanner) != 0:
            raise RuntimeError(f"libzscanner rejects {path}")
    finally:
        lib.zs_deinit(scanner)


def median_seconds(run: Callable[[], object], rounds: int) -> tuple[float, object]:
    """The median wall-clock time of ``rounds`` calls, and the last call's result."""
    times = []
    result = None
    for _ in range(rounds):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def line(name: str, seconds: float, records: int, nbytes: int | None = None) -> str:
    per_record = f"{nbytes / records:7.1f} B/record" if nbytes is not None else ""
    return (
        f"{name:44} {seconds:8.3f} s {records / seconds:12,.0f} records/s "
        f"{seconds / records * 1e6:8.3f} µs/record {per_record}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a-records", type=int, default=1_000_000)
    parser.add_argument("--mixed-records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the zones here and keep them")
    args = parser.parse_args(argv)

    directory = args.keep or Path(tempfile.mkdtemp(prefix="zone-scan-speed-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        a_path = directory / f"a.{ORIGIN}zone"
        mixed_path = directory / f"mixed.{ORIGIN}zone"
        a_count = write_a_zone(a_path, args.a_records)
        mixed_count = write_mixed_zone(mixed_path, args.mixed_records)
        print(f"{a_path}: {a_count:,} records, {a_path.stat().st_size / 1e6:.1f} MB")
        print(f"{mixed_path}: {mixed_count:,} records, {mixed_path.stat().st_size / 1e6:.1f} MB")
        print(f"median of {args.rounds} rounds\n")
        scan_zone_file(mixed_path, "mixed." + ORIGIN)  # warm-up: builds the scanner's tables

        seconds, zone = median_seconds(lambda: scan_zone_file(a_path, "a." + ORIGIN), args.rounds)
        assert len(zone) == a_count, (len(zone), a_count)
        print(line("scan_zone_file, A records", seconds, a_count, zone.nbytes))

        seconds, zone = median_seconds(
            lambda: scan_zone_file(mixed_path, "mixed." + ORIGIN), args.rounds
        )
        assert len(zone) == mixed_count, (len(zone), mixed_count)
        print(line("scan_zone_file, mixed types", seconds, mixed_count, zone.nbytes))
        fallbacks = sum(zone.fallbacks.values())
        print(f"{'':44} {fallbacks} records parsed by dnspython (types {sorted(zone.fallbacks)})")

        seconds, parsed = median_seconds(
            lambda: zonefile.parse_zone_file(mixed_path, "mixed." + ORIGIN), args.rounds
        )
        print(line("fastdns.zonefile.parse_zone_file, mixed", seconds, mixed_count))

        if os.path.exists(KZONECHECK):
            command = [KZONECHECK, "-o", "a." + ORIGIN, str(a_path)]
            seconds, _ = median_seconds(
                lambda: subprocess.run(command, check=True, capture_output=True), args.rounds
            )
            print(line("kzonecheck, A records (process included)", seconds, a_count))
        else:
            print(f"{KZONECHECK} not found (Debian package knot): no kzonecheck figure")
        library = ctypes.util.find_library("zscanner")
        if library:
            seconds, _ = median_seconds(
                lambda: libzscanner_parse(library, a_path, "a." + ORIGIN), args.rounds
            )
            print(line(f"Knot {library}, A records (parse only)", seconds, a_count))
        else:
            print("libzscanner not found (Debian package libzscanner4): no libzscanner figure")
        del parsed
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
