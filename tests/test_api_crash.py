"""kill -9 while change batches stream in: nothing acknowledged is lost, no batch is half applied.

A sender thread applies batches of two record sets (``bN-a`` and ``bN-b``) one after another and
notes each batch whose API call returned success. At a random moment the whole server (the
supervisor and its workers) gets SIGKILL. After a restart on the same state database: every
acknowledged batch is there, both halves of every batch are there or neither is, nothing is there
that was never sent, GetChange of every acknowledged change becomes INSYNC and the records are
answered over DNS.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid

import botocore.exceptions
import dns.rcode
import urllib3.exceptions
from support.api import running_api_server
from support.client import query

ROUNDS = 3


def _send_batches(api, zone_id: str, zone: str, progress: dict, acked: dict, stop):
    """Send batches numbered from ``progress["next"]`` until the server is gone."""
    client = api.client()
    while not stop.is_set():
        n = progress["next"]
        progress["next"] = n + 1  # before sending: a batch in flight may be committed
        changes = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": f"b{n}-{half}.{zone}",
                    "Type": "TXT",
                    "TTL": 60,
                    "ResourceRecords": [{"Value": f'"batch {n}"'}],
                },
            }
            for half in ("a", "b")
        ]
        try:
            response = client.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Changes": changes}
            )
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            urllib3.exceptions.HTTPError,
            OSError,
        ):
            return  # the server is gone
        acked[n] = response["ChangeInfo"]["Id"]


def test_kill_9_during_changes_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(4242)
    state = tmp_path / "state.db"
    acked: dict[int, str] = {}
    progress = {"next": 0}
    zone_id = zone = None
    for _round in range(ROUNDS):
        with running_api_server(tmp_path, state=state) as api:
            client = api.client()
            if zone_id is None:
                zone = f"crash-{uuid.uuid4().hex[:6]}.test."
                zone_id = client.create_hosted_zone(Name=zone, CallerReference="crash")[
                    "HostedZone"
                ]["Id"]
            stop = threading.Event()
            sender = threading.Thread(
                target=_send_batches, args=(api, zone_id, zone, progress, acked, stop)
            )
            sender.start()
            time.sleep(rng.uniform(0.3, 1.2))
            os.killpg(api.dns.proc.pid, signal.SIGKILL)
            api.dns.proc.wait()
            api.dns.expected_returncode = -signal.SIGKILL
            stop.set()
            sender.join(30)
            assert not sender.is_alive()
    assert len(acked) > 10, "too few batches were sent to test anything"

    with running_api_server(tmp_path, state=state) as api:
        client = api.client()
        pages = client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
        names = {r["Name"] for page in pages for r in page["ResourceRecordSets"]}
        present = {}
        for name in names - {zone}:
            batch, half = name.split(".", 1)[0][1:].split("-")
            present.setdefault(int(batch), set()).add(half)
        for batch in acked:
            assert present.get(batch) == {"a", "b"}, f"acknowledged batch {batch} lost"
        for batch, halves in present.items():
            assert halves == {"a", "b"}, f"batch {batch} half applied: {halves}"
            assert batch < progress["next"], f"batch {batch} was never sent"
        for change_id in acked.values():
            api.wait_insync(change_id)
        some = rng.sample(sorted(acked), 5)
        for batch in some:
            response = query(api.dns.host, api.dns.port, f"b{batch}-a.{zone}", "TXT")
            assert response.rcode() == dns.rcode.NOERROR
            assert response.answer[0][0].strings == (f"batch {batch}".encode(),)
