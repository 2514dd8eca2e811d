"""octoDNS, unchanged, managing a zone on fastdns through the Route 53 API.

octoDNS's Route 53 provider (``octodns-route53``) has no endpoint setting of its own; boto3 reads
``AWS_ENDPOINT_URL_ROUTE_53``, which is how a user points it at fastdns. The test runs the real
``octodns-sync`` command: a first sync creates the hosted zone and its records, a second finds
nothing to do (so ListResourceRecordSets reads back exactly what was written), a third applies
one changed value; every step is checked over DNS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from support.api import ACCESS_KEY, SECRET_KEY, running_api_server
from support.client import query

ZONE = """---
'':
  - type: A
    values: [192.0.2.1, 192.0.2.2]
  - type: MX
    value: {exchange: mail.octo.test., preference: 10}
mail:
  type: A
  value: 192.0.2.25
txt:
  type: TXT
  value: hello world
www:
  type: CNAME
  value: octo.test.
"""
CONFIG = f"""providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: ./config
  route53:
    class: octodns_route53.Route53Provider
    access_key_id: {ACCESS_KEY}
    secret_access_key: {SECRET_KEY}
zones:
  octo.test.:
    sources: [config]
    targets: [route53]
"""


def octodns_sync(workdir: Path, endpoint: str) -> str:
    command = shutil.which("octodns-sync") or str(Path(sys.executable).parent / "octodns-sync")
    env = {**os.environ, "AWS_ENDPOINT_URL_ROUTE_53": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [command, "--config-file", "config/production.yaml", "--doit"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def values(api, name: str, rtype: str, expected: set[str], timeout: float = 10.0) -> set[str]:
    """The values served for (name, type), once they are ``expected`` (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        response = query(api.dns.host, api.dns.port, name, rtype)
        found = {r.to_text() for rrset in response.answer if rrset.rdtype != 5 for r in rrset}
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_octodns_creates_reads_back_and_updates_a_zone(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "production.yaml").write_text(CONFIG)
    (tmp_path / "config" / "octo.test.yaml").write_text(ZONE)
    (tmp_path / "server").mkdir()
    with running_api_server(tmp_path / "server") as api:
        first = octodns_sync(tmp_path, api.endpoint)
        assert "Creates=5" in first
        assert values(api, "octo.test.", "A", {"192.0.2.1", "192.0.2.2"}) == {
            "192.0.2.1",
            "192.0.2.2",
        }
        assert values(api, "octo.test.", "MX", {"10 mail.octo.test."}) == {"10 mail.octo.test."}
        assert values(api, "txt.octo.test.", "TXT", {'"hello world"'}) == {'"hello world"'}
        assert "No changes were planned" in octodns_sync(tmp_path, api.endpoint)
        zone = tmp_path / "config" / "octo.test.yaml"
        zone.write_text(ZONE.replace("192.0.2.25", "192.0.2.26"))
        assert "Updates=1" in octodns_sync(tmp_path, api.endpoint)
        assert values(api, "mail.octo.test.", "A", {"192.0.2.26"}) == {"192.0.2.26"}
