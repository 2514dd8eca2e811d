"""IXFR over UDP (RFC 1995 §2, §4) against ``fastdns serve``, asked by ``kdig +notcp`` and by
dnspython: the single SOA for a client that is up to date, the increment when it fits in one
datagram, the single SOA of the current version when it does not (the client then asks over
TCP: dnspython's ``inbound_xfr`` does, and ends up with the zone an AXFR gives).
"""

from __future__ import annotations

import subprocess
import time
import uuid

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone
import pytest
from support.api import ACCESS_KEY, SECRET_KEY, make_client
from support.server import free_port, running_fastdns
from support.xfr import KEY256, records

ZONE = "udp.test."
SOA = dns.rdatatype.SOA


def wait_insync(client, change_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get_change(Id=change_id)["ChangeInfo"]["Status"] != "INSYNC":
        assert time.monotonic() < deadline, f"change {change_id} not INSYNC"
        time.sleep(0.01)


class Served:
    def __init__(self, server, client, zone_id):
        self.server, self.client, self.zone_id = server, client, zone_id
        self.host, self.port = server.host, server.port

    def upsert(self, *rrsets) -> None:
        changes = [{"Action": "UPSERT", "ResourceRecordSet": r} for r in rrsets]
        change = self.client.change_resource_record_sets(
            HostedZoneId=self.zone_id, ChangeBatch={"Changes": changes}
        )
        wait_insync(self.client, change["ChangeInfo"]["Id"])

    def axfr(self) -> dns.zone.Zone:
        messages = dns.query.xfr(
            self.host, ZONE, port=self.port, keyring=KEY256.tsig(), relativize=False
        )
        return dns.zone.from_xfr(messages, relativize=False)

    def ixfr_udp(self, serial: int, payload: int | None = 1232) -> dns.message.Message:
        query = dns.message.make_query(ZONE, "IXFR", use_edns=payload is not None,
                                       payload=payload or 512)  # fmt: skip
        query.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
        query.use_tsig(KEY256.tsig())
        # One RR per RRset: the SOAs of the IXFR sequence stay apart.
        return dns.query.udp(query, self.host, port=self.port, timeout=5, one_rr_per_rrset=True)

    def kdig_serials(self, serial: int) -> list[int]:
        """The SOA serials, in order, of the answer ``kdig +notcp IXFR=serial`` prints."""
        out = self.kdig(serial)
        assert "(UDP)" in out, out
        return [int(line.split()[6]) for line in out.splitlines() if "\tSOA\t" in line]

    def kdig(self, serial: int) -> str:
        key = f"{KEY256.algorithm}:{KEY256.name}:{KEY256.base64}"
        result = subprocess.run(
            ["kdig", f"@{self.host}", "-p", str(self.port), "-y", key, "+notcp",
             f"IXFR={serial}", ZONE],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return result.stdout + result.stderr


def a_rrset(label: str, address: str) -> dict:
    return {"Name": f"{label}.{ZONE}", "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": address}]}  # fmt: skip


@pytest.fixture(
    scope="module",
    params=[(1, "loop"), (1, "thread"), (0, "loop")],
    ids=["workers", "workers-udp-thread", "in-process"],
)
def served(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("ixfr-udp")
    (folder / "zones").mkdir()
    api_port = free_port()
    config = folder / "fastdns.toml"
    config.write_text(
        f'zone_dir = "{folder / "zones"}"\nstate = "{folder / "state.db"}"\n'
        f'api_listen = "127.0.0.1:{api_port}"\n'
        'name_servers = ["ns1.fastdns.test.", "ns2.fastdns.test."]\n'
        f'[[access_keys]]\nid = "{ACCESS_KEY}"\nsecret = "{SECRET_KEY}"\n'
        + KEY256.toml()
        + f'[transfer]\nkeys = ["{KEY256.name}"]\n'
    )
    workers, receiver = request.param
    # A worker process hands the datagram over its control socket; --workers 0 in process.
    # With the receive thread the datagram reaches Python through its handoff queue.
    with running_fastdns(
        None, config=config, workers=workers, extra_args=["--udp-receiver", receiver]
    ) as server:
        server.wait_for_log("Route 53 API at")
        client = make_client(f"http://127.0.0.1:{api_port}")
        created = client.create_hosted_zone(Name=ZONE, CallerReference=str(uuid.uuid4()))
        wait_insync(client, created["ChangeInfo"]["Id"])
        zone_id = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
        yield Served(server, client, zone_id)


def test_up_to_date_client_gets_the_single_soa(served):
    serial = served.axfr().get_soa().serial
    response = served.ixfr_udp(serial)
    assert [(r.rdtype, len(r)) for r in response.answer] == [(SOA, 1)]
    assert response.answer[0][0].serial == serial
    assert response.had_tsig  # signed with the request's key (RFC 8945 §5.3)
    assert served.kdig_serials(serial) == [serial]


def test_small_increment_comes_in_one_datagram(served):
    copy = served.axfr()
    old = copy.get_soa().serial
    served.upsert(a_rrset("small", "192.0.2.1"))
    new = served.axfr().get_soa().serial
    response = served.ixfr_udp(old)
    types = [r.rdtype for r in response.answer]
    # RFC 1995 §4: new SOA, old SOA, (deleted), new SOA, added, new SOA.
    assert types[0] == SOA and types[1] == SOA and types[-1] == SOA
    assert response.answer[0][0].serial == new and response.answer[1][0].serial == old
    added = [r for r in response.answer if r.rdtype == dns.rdatatype.A]
    assert [r.name.to_text() for r in added] == [f"small.{ZONE}"]
    # dnspython's inbound reader over UDP applies it to the old copy.
    query, _serial = dns.xfr.make_query(copy, keyring=KEY256.tsig())
    dns.query.inbound_xfr(served.host, copy, query, port=served.port,
                          udp_mode=dns.query.UDPMode.ONLY, lifetime=10)  # fmt: skip
    assert records(copy) == records(served.axfr())
    assert served.kdig_serials(old) == [new, old, new, new]
    assert "small.udp.test." in served.kdig(old)
    served.server.wait_for_log(rf"IXFR over UDP of zone {ZONE} serial {old} -> {new}")


def test_large_increment_gets_the_current_soa_and_tcp_finishes(served):
    copy = served.axfr()
    old = copy.get_soa().serial
    served.upsert(*[a_rrset(f"big{i}", f"198.51.100.{i}") for i in range(120)])
    new = served.axfr().get_soa().serial
    response = served.ixfr_udp(old)
    assert [(r.rdtype, len(r)) for r in response.answer] == [(SOA, 1)]
    assert response.answer[0][0].serial == new  # the current version: "use TCP"
    # Without EDNS the limit is 512 octets even for a small increment.
    served.upsert(a_rrset("tiny", "192.0.2.2"))
    assert len(served.ixfr_udp(new, payload=None).to_wire()) <= 512
    # dnspython tries UDP first, is told to use TCP, and gets there.
    query, _serial = dns.xfr.make_query(copy, keyring=KEY256.tsig())
    dns.query.inbound_xfr(served.host, copy, query, port=served.port,
                          udp_mode=dns.query.UDPMode.TRY_FIRST, lifetime=10)  # fmt: skip
    assert records(copy) == records(served.axfr())
    current = served.axfr().get_soa().serial
    assert served.kdig_serials(old) == [current]


def test_udp_ixfr_outside_the_acl_is_refused(served):
    query = dns.message.make_query(ZONE, "IXFR")
    query.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", ". . 1 0 0 0 0"))
    response = dns.query.udp(query, served.host, port=served.port, timeout=5)
    assert response.rcode() == dns.rcode.REFUSED  # unsigned; the zone wants the key
