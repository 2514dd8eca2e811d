"""Counters shared by every worker, and a Prometheus endpoint in the supervisor.

The counter table is one memfd with a row per worker slot (``COUNTER_SLOT_BYTES`` each, columns
``COUNTER_NAMES``, both from ``fastdns._core``). The supervisor creates it (``CounterTable``) and
hands the descriptor to every worker at start; a worker maps it and gives its row
(``open_counters``) to the hot path, which increments it without a system call or a lock. A worker
that is replaced gets the same slot, so its counts keep adding up: every series only grows.

``render_metrics`` writes the Prometheus text exposition format (version 0.0.4) and
``MetricsServer`` serves it at ``GET /metrics``. Every DNS counter is exported per worker, with a
``worker`` label; the total over all workers is ``sum without (worker) (...)`` in PromQL. The
totals are not exported as extra series on purpose: a series without the label next to the
labelled ones in the same family would be counted twice by every ``sum``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastdns.config import ListenAddress

log = logging.getLogger("fastdns.metrics")

__all__ = [
    "CONTENT_TYPE",
    "CounterTable",
    "MetricsServer",
    "ServerGauges",
    "open_counters",
    "render_metrics",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MEMFD_NAME = "fastdns-counters"
REQUEST_TIMEOUT = 5.0  # seconds for a client to send its request head
REQUEST_HEAD_LIMIT = 8192


def _core():
    from fastdns._native import _core

    return _core


class CounterTable:
    """The supervisor's side of the counter table: ``slots`` rows in a memfd (``fd``)."""

    def __init__(self, slots: int) -> None:
        core = _core()
        self.names: tuple[str, ...] = tuple(core.COUNTER_NAMES)
        self.slots = slots
        size = max(slots, 1) * core.COUNTER_SLOT_BYTES
        self.fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC)
        try:
            os.ftruncate(self.fd, size)  # zero-filled
            self._mapping = mmap.mmap(self.fd, size, flags=mmap.MAP_SHARED)
        except BaseException:
            os.close(self.fd)
            raise
        self._rows = [core.Counters(self._mapping, slot) for slot in range(slots)]

    def row(self, slot: int):
        """The ``Counters`` of ``slot`` (for a worker that runs in this process)."""
        return self._rows[slot]

    def values(self) -> list[list[int]]:
        """Every row's counts, in slot order, columns as ``names``."""
        return [list(row.values()) for row in self._rows]

    def totals(self) -> dict[str, int]:
        """Each counter summed over all slots."""
        sums = [sum(column) for column in zip(*self.values(), strict=True)] or [0] * len(self.names)
        return dict(zip(self.names, sums, strict=True))

    def close(self) -> None:
        """Close the descriptor (the mapping stays until the rows are gone)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


def open_counters(fd: int, slot: int):
    """A worker's ``Counters`` for row ``slot`` of the table in ``fd`` (mapped read-write,
    shared); ``fd`` may be closed afterwards."""
    core = _core()
    size = os.fstat(fd).st_size
    if size < (slot + 1) * core.COUNTER_SLOT_BYTES:
        raise ValueError(f"counter table of {size} bytes has no slot {slot}")
    mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
    return core.Counters(mapping, slot)


# -- Prometheus text format

# Column name -> (metric name, label name, label value); a label of None means no extra label.
_SERIES: dict[str, tuple[str, str | None, str | None]] = {
    "queries_udp": ("fastdns_queries_total", "transport", "udp"),
    "queries_tcp": ("fastdns_queries_total", "transport", "tcp"),
    "responses_udp": ("fastdns_responses_by_transport_total", "transport", "udp"),
    "responses_tcp": ("fastdns_responses_by_transport_total", "transport", "tcp"),
    "truncated": ("fastdns_truncated_total", None, None),
    "dropped": ("fastdns_dropped_total", None, None),
    "malformed": ("fastdns_malformed_total", None, None),
    "send_errors": ("fastdns_send_errors_total", None, None),
    "handoff_lost": ("fastdns_handoff_lost_total", None, None),
}
_RCODE_PREFIX = "rcode_"

_HELP = {
    "fastdns_queries_total": "DNS queries received, by transport and worker.",
    "fastdns_responses_total": "DNS responses sent, by response code (RCODE) and worker.",
    "fastdns_responses_by_transport_total": "DNS responses sent, by transport and worker.",
    "fastdns_truncated_total": "UDP responses sent truncated (TC set), by worker.",
    "fastdns_dropped_total": "Packets given no response (not a query, or could not be sent).",
    "fastdns_malformed_total": "Queries that could not be parsed, by worker.",
    "fastdns_send_errors_total": "UDP responses that could not be sent (socket buffer full).",
    "fastdns_handoff_lost_total": (
        "Query-log entries and NOTIFY/UPDATE/IXFR datagrams the UDP receive thread dropped "
        "because the event loop did not take them in time."
    ),
}


@dataclass(frozen=True)
class ServerGauges:
    """What the supervisor knows besides the counter table."""

    zones: int  # zones being served
    generation: int  # snapshot generation: 1 at start, +1 per reload
    workers: int  # worker processes answering now
    restarts: int  # worker processes replaced since start


def _series_of(name: str) -> tuple[str, str | None, str | None]:
    if name in _SERIES:
        return _SERIES[name]
    if name.startswith(_RCODE_PREFIX):
        return "fastdns_responses_total", "rcode", name[len(_RCODE_PREFIX) :]
    # A counter this module does not know yet (a newer extension): exported under its own name.
    return f"fastdns_{name}_total", None, None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(
    names: Sequence[str], rows: Sequence[Sequence[int]], gauges: ServerGauges
) -> str:
    """The Prometheus text exposition (format 0.0.4) of a counter table and the gauges.

    ``rows[slot][i]`` is counter ``names[i]`` of worker ``slot``.
    """
    families: dict[str, list[tuple[str, int]]] = {}
    for column, name in enumerate(names):
        metric, label, value = _series_of(name)
        series = families.setdefault(metric, [])
        for slot, row in enumerate(rows):
            labels = f'{label}="{_escape(value)}",' if label is not None else ""
            series.append((f'{{{labels}worker="{slot}"}}', row[column]))
    lines = []
    for metric, series in families.items():
        help_text = _HELP.get(metric, f"The hot path's {metric[8:-6]} counter, by worker.")
        lines.append(f"# HELP {metric} {help_text}")
        lines.append(f"# TYPE {metric} counter")
        lines.extend(f"{metric}{labels} {count}" for labels, count in series)
    for metric, kind, help_text, value in (
        ("fastdns_zones", "gauge", "Zones being served.", gauges.zones),
        (
            "fastdns_snapshot_generation",
            "gauge",
            "Zone snapshot being served: 1 at start, one more per reload.",
            gauges.generation,
        ),
        ("fastdns_workers", "gauge", "Worker processes answering queries.", gauges.workers),
        (
            "fastdns_worker_restarts_total",
            "counter",
            "Worker processes replaced after they exited.",
            gauges.restarts,
        ),
    ):
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", f"{metric} {value}"]
    return "\n".join(lines) + "\n"


# -- HTTP


class MetricsServer:
    """A minimal HTTP/1.x server for ``GET /metrics`` (one request per connection).

    ``render`` is called once per scrape, on the event loop.
    """

    def __init__(self, address: ListenAddress, render: Callable[[], str]) -> None:
        self.address = address
        self.render = render
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind and listen; ``OSError`` if the address cannot be bound."""
        self._server = await asyncio.start_server(
            self._handle,
            self.address.host,
            self.address.port,
            family=self.address.family,
            reuse_address=True,
            limit=REQUEST_HEAD_LIMIT,
        )
        log.info("metrics at http://%s/metrics", self.address)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
                return
            status, body, content_type = self._respond(head)
            method = head.split(b" ", 1)[0]
            payload = body.encode()
            header = (
                f"HTTP/1.1 {status}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(header if method == b"HEAD" else header + payload)
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    def _respond(self, head: bytes) -> tuple[str, str, str]:
        """(status line, body, content type) for a request head."""
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "400 Bad Request", "bad request\n", "text/plain; charset=utf-8"
        method, target, _version = parts
        path = target.split("?", 1)[0]
        if path != "/metrics":
            return "404 Not Found", "not found: try /metrics\n", "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "only GET\n", "text/plain; charset=utf-8"
        return "200 OK", self.render(), CONTENT_TYPE
