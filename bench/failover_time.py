"""How long DNS failover takes with Route 53's real health-check intervals.

Issue 5's bound: after an endpoint stops answering, DNS answers change within
interval x threshold + 1 s. The script starts ``fastdns serve`` with the API on (production
timing: no ``health_check_time_scale``), a local HTTP server as the primary endpoint, and a
failover pair whose PRIMARY has an HTTP health check (``--interval`` 10 or 30 s,
``--threshold`` consecutive failures). For each of ``--trials``, it waits until the primary is
answered, makes the endpoint answer 503 and polls DNS every 10 ms until the SECONDARY is
answered; then it lets the endpoint recover and waits for the primary again.

Run: ``python bench/failover_time.py [--interval 10] [--threshold 1] [--trials 3]``.
Prints every trial and the median, next to the bound.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import dns.message
import dns.query

from fastdns.bench.servers import free_port

KEY, SECRET = "AKIDBENCH", "bench-secret-0123456789abcdef"


class Endpoint:
    """An HTTP server on 127.0.0.1 whose status code can be switched."""

    def __init__(self) -> None:
        self.status = 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def answer(port: int, name: str) -> str | None:
    query = dns.message.make_query(name, "A")
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=1)
    except dns.exception.Timeout:
        return None
    return response.answer[0][0].to_text() if response.answer else None


def wait_for(port: int, name: str, address: str, timeout: float) -> float:
    started = time.monotonic()
    while answer(port, name) != address:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{name} did not answer {address} within {timeout:.0f} s")
        time.sleep(0.01)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=int, choices=(10, 30), default=10)
    parser.add_argument("--threshold", type=int, default=1)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    bound = args.interval * args.threshold + 1
    with tempfile.TemporaryDirectory(prefix="fastdns-failover-") as tmp:
        workdir = Path(tmp)
        (workdir / "zones").mkdir()
        dns_port, api_port = free_port("127.0.0.1"), free_port("127.0.0.1")
        config = workdir / "fastdns.toml"
        config.write_text(
            f'zone_dir = "{workdir / "zones"}"\nstate = "{workdir / "state.db"}"\n'
            f'listen = ["127.0.0.1:{dns_port}"]\napi_listen = "127.0.0.1:{api_port}"\n'
            f'workers = 1\n[[access_keys]]\nid = "{KEY}"\nsecret = "{SECRET}"\n'
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "fastdns", "serve", "--config", str(config)],
            stderr=subprocess.DEVNULL,
        )
        try:
            client = boto3.client(
                "route53",
                endpoint_url=f"http://127.0.0.1:{api_port}",
                aws_access_key_id=KEY,
                aws_secret_access_key=SECRET,
                region_name="us-east-1",
            )
            for _ in range(100):
                try:
                    client.list_hosted_zones()
                    break
                except Exception:  # not up yet
                    time.sleep(0.1)
            endpoint = Endpoint()
            check = client.create_health_check(
                CallerReference=str(uuid.uuid4()),
                HealthCheckConfig={
                    "Type": "HTTP",
                    "IPAddress": "127.0.0.1",
                    "Port": endpoint.port,
                    "RequestInterval": args.interval,
                    "FailureThreshold": args.threshold,
                },
            )["HealthCheck"]["Id"]
            zone = client.create_hosted_zone(Name="failover.bench.", CallerReference="x")
            name = "www.failover.bench."

            def member(identifier, address, **fields):
                return {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "A",
                        "TTL": 10,
                        "SetIdentifier": identifier,
                        "ResourceRecords": [{"Value": address}],
                        **fields,
                    },
                }

            client.change_resource_record_sets(
                HostedZoneId=zone["HostedZone"]["Id"],
                ChangeBatch={
                    "Changes": [
                        member("p", "192.0.2.1", Failover="PRIMARY", HealthCheckId=check),
                        member("s", "192.0.2.2", Failover="SECONDARY"),
                    ]
                },
            )
            times = []
            for trial in range(1, args.trials + 1):
                endpoint.status = 200
                wait_for(dns_port, name, "192.0.2.1", 4 * bound)
                time.sleep(args.interval * 0.37 * trial % args.interval)  # vary the phase
                endpoint.status = 503
                took = wait_for(dns_port, name, "192.0.2.2", 4 * bound)
                times.append(took)
                print(f"trial {trial}: failover after {took:.2f} s (bound {bound} s)", flush=True)
            print(
                f"interval {args.interval} s, threshold {args.threshold}: median "
                f"{statistics.median(times):.2f} s, max {max(times):.2f} s, bound {bound} s"
            )
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
