"""How fast ``compile_zone`` is: median wall time for zones of 10,000 and 100,000 owner names.

The management API recompiles a zone after every change, so compile time is part of how fast a
change is served. The zones are built in memory by :func:`build_zone`, in the manner of
``bench/conftest.py`` (whose builder stops at 65,536 names): mostly hosts with one A record,
every tenth also AAAA and MX, a tenth of them two labels deep, plus a wildcard, CNAME chains,
and delegations with in-domain glue.

Run it on an otherwise idle machine, one benchmark at a time::

    python bench/compile_speed.py            # 10k and 100k names
    python bench/compile_speed.py --names 10000 --runs 9
    python bench/compile_speed.py --packed 1000000   # the native compiler, as a change runs it

It prints, per zone size, the median of ``--runs`` compiles (after one warm-up compile), the
compiled names per second and the microseconds per name. ``--packed N`` instead times
``fastdns._zcompile.compile_packed`` (what a change to a hosted zone runs) on N A records, each
compile with the scratch memory kept from the one before (ext/scratch.h) and each with it given
back first, with their system time and page faults; then what a one-record change to that zone
costs when it is grafted onto the last image instead (``graft_image``, as
fastdns.hostedcolumns runs it: the change's own small compile, then the copy of the image with
the new template and the new SOA serial), each graft onto the one before: a new value for an
A record, then an A record at a new name.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from fastdns.compile import compile_zone
from fastdns.model import RecordSet, Zone

ORIGIN = dns.name.from_text("bench.test.")


def _add(zone: Zone, owner: str, rdtype: str, ttl: int, *texts: str) -> None:
    """One record set; names in ``texts`` are relative to ORIGIN, stored absolute."""
    rdtype_value = dns.rdatatype.from_text(rdtype)
    rdatas = tuple(
        dns.rdata.from_text(dns.rdataclass.IN, rdtype_value, t, origin=ORIGIN, relativize=False)
        for t in texts
    )
    zone.add(RecordSet(dns.name.from_text(owner, ORIGIN), rdtype_value, ttl, rdatas))


def build_zone(names: int) -> Zone:
    """A zone of exactly ``names`` owner names under bench.test. (see the module docstring)."""
    zone = Zone(ORIGIN)
    _add(zone, "@", "SOA", 3600, "ns1 hostmaster 1 7200 3600 1209600 300")
    _add(zone, "@", "NS", 3600, "ns1", "ns2")
    _add(zone, "ns1", "A", 3600, "192.0.2.1")
    _add(zone, "ns2", "A", 3600, "192.0.2.2")
    _add(zone, "mail", "A", 3600, "192.0.2.25")
    _add(zone, "www", "A", 600, "192.0.2.10", "192.0.2.11")
    _add(zone, "*.wild", "A", 3600, "192.0.2.100")
    _add(zone, "*.wild", "MX", 3600, "10 mail")
    for d in range(10):
        _add(zone, f"deleg{d}", "NS", 3600, f"ns.deleg{d}", "ns2")
        _add(zone, f"ns.deleg{d}", "A", 3600, f"192.0.2.{60 + d}")
        _add(zone, f"chain{d}", "CNAME", 3600, f"chain{d}b")
        _add(zone, f"chain{d}b", "CNAME", 3600, "www" if d % 2 else f"x.deleg{d}")
    for i in range(names - len(zone.names())):
        owner = f"host{i}" if i % 10 else f"host{i}.sub{i % 97}"
        _add(zone, owner, "A", 300, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        if i % 10 == 1:
            _add(zone, owner, "AAAA", 300, f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}")
            _add(zone, owner, "MX", 300, "10 mail")
    return zone


def time_compile(names: int, runs: int) -> float:
    """Median seconds of ``runs`` compiles of a ``names``-name zone (after one warm-up)."""
    zone = build_zone(names)
    assert len(zone.names()) == names
    compile_zone(zone)
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        compile_zone(zone)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_packed(records: int, runs: int) -> None:
    """compile_packed of ``records`` A records, ``runs`` times with the scratch memory kept and
    ``runs`` times with it given back before each compile."""
    from fastdns._zcompile import compile_packed, graft_image, pack_scanned, release_scratch
    from fastdns._zscanner import scan_zone_text
    from fastdns.snapshot import image_buffer

    lines = ["@ 300 SOA ns1 h 1 7200 3600 1209600 300", "@ 300 NS ns1", "ns1 300 A 192.0.2.1"]
    lines += [f"h{i} 300 A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(records)]
    scanned = scan_zone_text(("\n".join(lines) + "\n").encode(), "packed.test", "packed.test.")
    origin = dns.name.from_text("packed.test.").to_wire()
    packed = pack_scanned(scanned, [1] * len(scanned.types))  # one record per record set
    compile_packed(packed, origin, image_buffer)  # warm-up

    def report(label: str, rows: list) -> None:
        print(
            f"{records} records, {label}: median "
            f"{statistics.median(r[0] for r in rows) * 1e3:.0f} ms (system "
            f"{statistics.median(r[1] for r in rows) * 1e3:.0f} ms, "
            f"{statistics.median(r[2] for r in rows):.0f} page faults) over {len(rows)} runs"
        )

    for kept in (True, False):
        rows = []
        for _ in range(runs):
            if not kept:
                release_scratch()
            before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            image, reason, *_ = compile_packed(packed, origin, image_buffer)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            assert reason is None, reason
            del image
            system = after.ru_stime - before.ru_stime
            rows.append((wall, system, after.ru_minflt - before.ru_minflt))
        report(f"compile, scratch {'kept' if kept else 'given back'}", rows)

    image, _reason, *_, references = compile_packed(
        packed, origin, image_buffer, with_references=True
    )
    soa_line, ns_line = packed[0], packed[1]
    serial = 1
    for label, owner, kind in (("a new value", "h", 0), ("a new name", "new", 1)):
        rows = []
        for _ in range(runs):
            serial += 1
            soa = soa_line[:-20] + serial.to_bytes(4, "big") + soa_line[-16:]
            host = serial * 7919 % records
            changed = pack_scanned(
                scan_zone_text(f"{owner}{host} 60 A 198.51.100.{serial % 250}\n".encode(),
                               "change", "packed.test."), [1]
            )[0]  # fmt: skip
            before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            mini, reason, *_ = compile_packed([soa, ns_line, changed], origin)
            assert reason is None, reason
            change = (changed[1 : 1 + changed[0]], 1, kind)
            image, references, reason = graft_image(
                image, mini, [change], serial - 1, serial, references, image_buffer
            )
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            assert reason is None, reason
            rows.append(
                (wall, after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt)
            )
            soa_line = soa
        report(f"a one-record change grafted ({label})", rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, action="append", help="zone size (repeatable)")
    parser.add_argument("--runs", type=int, default=5, help="timed compiles per size")
    parser.add_argument("--packed", type=int, metavar="RECORDS", help="time compile_packed")
    args = parser.parse_args(argv)
    if args.packed:
        time_packed(args.packed, args.runs)
        return
    for names in args.names or [10_000, 100_000]:
        median = time_compile(names, args.runs)
        print(
            f"{names:>7} names: median {median * 1e3:8.1f} ms over {args.runs} runs, "
            f"{names / median:>9.0f} names/s, {median / names * 1e6:6.2f} us/name"
        )


if __name__ == "__main__":
    main()
