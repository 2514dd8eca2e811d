"""The query log of a running server: every worker appends Route 53-format lines to one file."""

from __future__ import annotations

import time
from pathlib import Path

import dns.rcode
from support.client import query
from support.server import running_fastdns

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
