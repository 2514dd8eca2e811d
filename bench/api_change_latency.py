"""How long from a Route 53 API change to INSYNC and to the new answer being served.

Issue 4's target: at most 1 s for a zone of 10k records. The script imports a zone of
``--records`` A records (``fastdns zone import``), starts ``fastdns serve`` with the API on,
then ``--changes`` times UPSERTs one record with a new address through boto3 and measures, from
the moment the API call returned:

* ``served``: until a DNS query over UDP gets the new address (queried every millisecond);
* ``insync``: until GetChange reports INSYNC.

Run: ``python bench/api_change_latency.py [--records 10000] [--changes 20] [--workers 2]``.
Prints median, p90 and max of both, and the server's own "published ... in X ms (compile Y ms)"
log lines' medians.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import dns.message
import dns.query

from fastdns.bench.servers import free_port

KEY, SECRET = "AKIDBENCH", "bench-secret-0123456789abcdef"


def write_zone(path: Path, origin: str, records: int) -> None:
    lines = [f"$ORIGIN {origin}", "$TTL 300", "@ SOA ns1 hostmaster 1 7200 900 1209600 300"]
    lines += ["@ NS ns1", "ns1 A 192.0.2.1"]
    lines += [f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(records)]
    path.write_text("\n".join(lines) + "\n")


def answer(port: int, name: str) -> str | None:
    query = dns.message.make_query(name, "A")
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except dns.exception.Timeout:
        return None
    return response.answer[0][0].to_text() if response.answer else None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    origin = "bench.test."
    with tempfile.TemporaryDirectory(prefix="fastdns-api-bench-") as tmp:
        work = Path(tmp)
        (work / "zones").mkdir()
        zone_file = work / "bench.test.zone"
        write_zone(zone_file, origin, args.records)
        state = work / "state.db"
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fastdns",
                "zone",
                "import",
                str(zone_file),
                "--state",
                str(state),
            ],
            check=True,
            capture_output=True,
        )
        print(f"imported {args.records} records in {time.monotonic() - started:.1f} s")
        dns_port, api_port = free_port("127.0.0.1"), free_port("127.0.0.1")
        config = work / "fastdns.toml"
        config.write_text(
            f'zone_dir = "{work / "zones"}"\nstate = "{state}"\n'
            f'listen = ["127.0.0.1:{dns_port}"]\napi_listen = "127.0.0.1:{api_port}"\n'
            f"workers = {args.workers}\n"
            f'[[access_keys]]\nid = "{KEY}"\nsecret = "{SECRET}"\n'
        )
        log_path = work / "fastdns.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "fastdns", "serve", "--config", str(config)],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            while "fastdns ready" not in log_path.read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    print(log_path.read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.05)
            client = boto3.client(
                "route53",
                endpoint_url=f"http://127.0.0.1:{api_port}",
                aws_access_key_id=KEY,
                aws_secret_access_key=SECRET,
                region_name="us-east-1",
            )
            zone_id = client.list_hosted_zones_by_name(DNSName=origin)["HostedZones"][0]["Id"]
            served, insync = [], []
            for n in range(args.changes):
                name = f"h{n}.{origin}"
                address = f"198.51.100.{n % 250 + 1}"
                change = client.change_resource_record_sets(
                    HostedZoneId=zone_id,
                    ChangeBatch={
                        "Changes": [
                            {
                                "Action": "UPSERT",
                                "ResourceRecordSet": {
                                    "Name": name,
                                    "Type": "A",
                                    "TTL": 300,
                                    "ResourceRecords": [{"Value": address}],
                                },
                            }
                        ]
                    },
                )
                returned = time.monotonic()
                while answer(dns_port, name) != address:
                    time.sleep(0.001)
                served.append(time.monotonic() - returned)
                change_id = change["ChangeInfo"]["Id"]
                while client.get_change(Id=change_id)["ChangeInfo"]["Status"] != "INSYNC":
                    time.sleep(0.005)
                insync.append(time.monotonic() - returned)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        text = log_path.read_text()
        published = [float(m) for m in re.findall(r"published \d+ changes .* in (\d+) ms", text)]
        compiled = [float(m) for m in re.findall(r"\(compile (\d+) ms\)", text)]

    print(f"zone of {args.records} records, {args.changes} changes, {args.workers} workers")
    for label, values in (("served", served), ("insync", insync)):
        print(
            f"  {label:7s} median {statistics.median(values) * 1000:7.1f} ms   "
            f"p90 {percentile(values, 0.9) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
        )
    if published:
        print(
            f"  server: publish median {statistics.median(published):.0f} ms, compile median "
            f"{statistics.median(compiled):.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
