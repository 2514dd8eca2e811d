"""The query log of a running server: every worker appends Route 53-format lines to one file."""

from __future__ import annotations

import time
from pathlib import Path

import dns.rcode
from support.api import api_config_text, make_client
from support.client import query
from support.server import running_fastdns

from fastdns.bench.servers import free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "zones"


def _wait_for_lines(path: Path, count: int, deadline: float = 10.0) -> list[str]:
    """The log's lines other than the fixture's readiness probes (SOA queries), once there are
    ``count`` of them (or at the deadline)."""
    end = time.monotonic() + deadline
    while True:
        text = path.read_text() if path.exists() else ""
        lines = [line for line in text.splitlines() if " SOA " not in line]
        if len(lines) >= count or time.monotonic() > end:
            time.sleep(0.2)  # a late extra line would show up as a count mismatch below
            text = path.read_text() if path.exists() else ""
            return [line for line in text.splitlines() if " SOA " not in line]
        time.sleep(0.05)


def test_query_log_has_one_route53_line_per_query(tmp_path):
    log_path = tmp_path / "queries.log"
    with running_fastdns(EXAMPLES, workers=2, extra_args=["--query-log", str(log_path)]) as srv:
        sent = []
        for i in range(20):
            tcp = i % 4 == 0
            name = "www.example.com" if i % 2 else "nope.example.com"
            response = query(srv.host, srv.port, name, "A", tcp=tcp)
            sent.append((name, "TCP" if tcp else "UDP", dns.rcode.to_text(response.rcode())))
        response = query(srv.host, srv.port, "example.net", "MX")
        sent.append(("example.net", "UDP", "REFUSED"))
        # The fixture's readiness probes (SOA queries) are logged too; leave them out.
        lines = [line for line in _wait_for_lines(log_path, len(sent)) if " SOA " not in line]
    assert len(lines) == len(sent)
    fields = [line.split(" ") for line in lines]
    assert all(len(f) == 10 and f[0] == "1.0" and f[1].endswith("Z") for f in fields)
    # Lines from two workers may come in any order between them; compare as multisets.
    logged = sorted((f[3], f[6], f[5]) for f in fields)
    assert logged == sorted(sent)
    for f in fields:
        expected_zone = "-" if f[3] == "example.net" else "example.com."
        assert f[2] == expected_zone
        assert f[8] == "127.0.0.1" and f[9] == "-"


def test_query_log_is_off_by_default(tmp_path):
    with running_fastdns(EXAMPLES, workers=1) as srv:
        query(srv.host, srv.port, "www.example.com", "A")
        time.sleep(0.2)
        files = [p for p in Path(srv.workdir).rglob("*") if p.is_file()]
        written = [p.read_text(errors="replace") for p in files]
    assert files, "the server's working folder should hold at least its stderr log"
    assert not any("www.example.com A NOERROR UDP" in text for text in written)


def test_hosted_zone_lines_carry_the_hosted_zone_id(tmp_path):
    """Route 53's query log names the hosted zone by its ID; a zone file by its origin."""
    log_path = tmp_path / "queries.log"
    api_port = free_port("127.0.0.1")
    config = tmp_path / "fastdns.toml"
    config.write_text(
        f'query_log = "{log_path}"\n' + api_config_text(tmp_path / "state.db", api_port, EXAMPLES)
    )
    with running_fastdns(None, config=config, workers=2) as server:
        server.wait_for_log("Route 53 API at")
        client = make_client(f"http://127.0.0.1:{api_port}")
        zone = client.create_hosted_zone(Name="logged.test.", CallerReference="log-test")
        zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
        client.get_waiter("resource_record_sets_changed").wait(
            Id=zone["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 20}
        )
        query(server.host, server.port, "nope.logged.test", "A")
        query(server.host, server.port, "www.example.com", "A")
        lines = _wait_for_lines(log_path, 2)
    zones = {line.split(" ")[3]: line.split(" ")[2] for line in lines}
    assert zones == {"nope.logged.test": zone_id, "www.example.com": "example.com."}
