"""A real fastdns with its Route 53 API on, and boto3 clients for it.

``running_api_server(workdir)`` writes a config file with a fresh state database, an API port
and one access key, starts ``fastdns serve`` on it and yields an ``ApiServer``: the DNS handle
plus ``client()`` (boto3, signed with the configured key) and ``wait_insync(change_id)``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config

from fastdns.bench.servers import free_port

from .server import FastdnsHandle, running_fastdns

__all__ = ["ACCESS_KEY", "SECRET_KEY", "ApiServer", "api_config_text", "running_api_server"]

ACCESS_KEY = "AKIDFASTDNSTEST"
SECRET_KEY = "test-secret-key-0123456789abcdef"
INSYNC_TIMEOUT = 10.0


def api_config_text(state: Path, api_port: int, zone_dir: Path) -> str:
    return (
        f'zone_dir = "{zone_dir}"\n'
        f'state = "{state}"\n'
        f'api_listen = "127.0.0.1:{api_port}"\n'
        'name_servers = ["ns1.fastdns.test.", "ns2.fastdns.test."]\n'
        "[[access_keys]]\n"
        f'id = "{ACCESS_KEY}"\n'
        f'secret = "{SECRET_KEY}"\n'
    )


def make_client(endpoint: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY):
    """A boto3 Route 53 client for ``endpoint`` (no retries: a test sees every error)."""
    return boto3.client(
        "route53",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@dataclass
class ApiServer:
    dns: FastdnsHandle
    endpoint: str
    state: Path

    def client(self, key: str = ACCESS_KEY, secret: str = SECRET_KEY):
        return make_client(self.endpoint, key, secret)

    def change_a(self, zone_id: str, action: str, name: str, address: str, ttl: int = 60) -> None:
        """Submit one change of an A record set (``action``: CREATE, UPSERT, DELETE) and wait
        until it is INSYNC."""
        self.change_record(zone_id, action, name, "A", address, ttl)

    def change_record(
        self, zone_id: str, action: str, name: str, rtype: str, value: str, ttl: int = 60
    ) -> None:
        """Submit one change of a record set of one record and wait until it is INSYNC."""
        change = {
            "Action": action,
            "ResourceRecordSet": {
                "Name": name, "Type": rtype, "TTL": ttl, "ResourceRecords": [{"Value": value}]
            },
        }  # fmt: skip
        done = self.client().change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [change]}
        )
        self.wait_insync(done["ChangeInfo"]["Id"])

    def wait_insync(self, change_id: str, timeout: float = INSYNC_TIMEOUT) -> float:
        """Poll GetChange until INSYNC; the seconds it took."""
        client = self.client()
        start = time.monotonic()
        while True:
            status = client.get_change(Id=change_id)["ChangeInfo"]["Status"]
            if status == "INSYNC":
                return time.monotonic() - start
            assert status == "PENDING", status
            if time.monotonic() - start > timeout:
                raise AssertionError(f"change {change_id} not INSYNC within {timeout} s")
            time.sleep(0.01)


@contextlib.contextmanager
def running_api_server(
    workdir: Path, zone_dir: Path | None = None, state: Path | None = None, workers: int = 1
) -> Iterator[ApiServer]:
    """fastdns with the API on, state in ``workdir`` (or ``state``), zone files from
    ``zone_dir`` (an empty folder by default)."""
    if zone_dir is None:
        zone_dir = workdir / "zones"
        zone_dir.mkdir(exist_ok=True)
    state = state or workdir / "state.db"
    api_port = free_port("127.0.0.1")
    config = workdir / f"fastdns-{api_port}.toml"
    config.write_text(api_config_text(state, api_port, zone_dir))
    with running_fastdns(None, config=config, workers=workers) as handle:
        handle.wait_for_log("Route 53 API at")
        yield ApiServer(handle, f"http://127.0.0.1:{api_port}", state)
