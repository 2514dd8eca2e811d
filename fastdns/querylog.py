"""Query log in Route 53's format, one line per query, written once per UDP batch.

Route 53's query-log line (see ../shared/route53-semantics.md, "Query logs"): format version,
ISO-8601 UTC timestamp, hosted zone ID, query name, query type, response code, protocol, edge
location, resolver IP, EDNS client subnet or ``-``. Zones have no API-assigned IDs yet, so the
zone's origin stands in for the hosted zone ID; a query outside every zone logs ``-``.

The hot path reports a batch as tuples ``(zone_index, qname_wire, qtype, rcode, sockaddr)``
(``UdpResponder.set_query_log``); nothing is collected while the log is off.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from datetime import datetime, timezone

import dns.name
import dns.rcode
import dns.rdatatype

FORMAT_VERSION = "1.0"


def resolver_address(sockaddr: bytes) -> str:
    """The IP address in a raw ``struct sockaddr_in``/``sockaddr_in6``."""
    if len(sockaddr) >= 2:
        family = struct.unpack_from("=H", sockaddr)[0]
        if family == socket.AF_INET and len(sockaddr) >= 8:
            return socket.inet_ntop(socket.AF_INET, sockaddr[4:8])
        if family == socket.AF_INET6 and len(sockaddr) >= 24:
            return socket.inet_ntop(socket.AF_INET6, sockaddr[8:24])
    return "-"


def format_line(
    when: datetime, zone_id: str, qname_wire: bytes, qtype: int, rcode: int, protocol: str,
    edge: str, resolver: str, client_subnet: str = "-",
) -> str:  # fmt: skip
    try:
        qname = dns.name.from_wire(qname_wire, 0)[0].to_text(omit_final_dot=True) or "."
    except Exception:  # a malformed query: nothing readable to log
        qname = "-"
    qtype_text = dns.rdatatype.to_text(qtype) if qname != "-" else "-"
    rcode_text = dns.rcode.to_text(rcode) if rcode >= 0 else "DROPPED"
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{when.microsecond // 1000:03d}Z"
    )
    return (
        f"{FORMAT_VERSION} {stamp} {zone_id} {qname} {qtype_text} {rcode_text} {protocol} "
        f"{edge} {resolver} {client_subnet}"
    )


class QueryLog:
    """Callable for ``UdpResponder.set_query_log``: formats a batch and writes it.

    ``write`` receives the text of a whole batch at once (one system call per batch).
    """

    def __init__(self, write: Callable[[str], object], zone_ids: list[str], *, edge: str = "-"):
        self.write = write
        self.zone_ids = list(zone_ids)
        self.edge = edge

    def set_zones(self, zone_ids: list[str]) -> None:
        """Follow a new snapshot: zone indexes in later batches refer to these zones."""
        self.zone_ids = list(zone_ids)

    def __call__(self, entries, protocol: str = "UDP") -> None:
        now = datetime.now(timezone.utc)
        lines = []
        for zone, qname_wire, qtype, rcode, sockaddr in entries:
            zone_id = self.zone_ids[zone] if 0 <= zone < len(self.zone_ids) else "-"
            lines.append(
                format_line(
                    now,
                    zone_id,
                    qname_wire,
                    qtype,
                    rcode,
                    protocol,
                    self.edge,
                    resolver_address(sockaddr),
                )
            )
        self.write("\n".join(lines) + "\n")

    def log_one(
        self, zone: int, qname_wire: bytes, qtype: int, rcode: int, *, protocol: str,
        resolver: str,
    ) -> None:  # fmt: skip
        """One query that did not come through a UDP batch (TCP)."""
        zone_id = self.zone_ids[zone] if 0 <= zone < len(self.zone_ids) else "-"
        now = datetime.now(timezone.utc)
        self.write(
            format_line(now, zone_id, qname_wire, qtype, rcode, protocol, self.edge, resolver)
            + "\n"
        )
