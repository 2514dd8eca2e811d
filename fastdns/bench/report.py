"""What a benchmark prints: one run in detail, medians side by side with ratios, or JSON.

A ``Measurement`` is one round against one server: the built-in generator's ``LoadResult``, the
server's CPU per answered query when the benchmark started the server, and dnsperf's figures
when it ran too. ``metrics()`` flattens one into named numbers; a comparison reports the median
of each over the rounds, and the ratio of the first server's median to every other's.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastdns.bench.dnsperf import DnsperfResult
from fastdns.bench.histogram import PERCENTILES, LatencyHistogram
from fastdns.bench.load import LoadResult

__all__ = [
    "METRICS",
    "Measurement",
    "ServerRuns",
    "format_comparison",
    "format_runs",
    "json_report",
    "metrics",
]


@dataclass
class Measurement:
    """One round against one server."""

    round: int
    load: LoadResult | None = None
    cpu_us_per_query: float | None = None  # server CPU during the generator's run
    dnsperf: DnsperfResult | None = None
    dnsperf_cpu_us_per_query: float | None = None


@dataclass
class ServerRuns:
    """A server and its rounds."""

    name: str  # "fastdns", "knot", "nsd", or the address of a server the bench did not start
    label: str  # what it is: version, workers
    address: str
    runs: list[Measurement] = field(default_factory=list)

    def histogram(self) -> LatencyHistogram:
        """The latency histogram of all rounds together."""
        merged = LatencyHistogram()
        for run in self.runs:
            if run.load is not None:
                merged = merged.merge(run.load.histogram)
        return merged

    def medians(self) -> dict[str, float | None]:
        return {name: _median([metrics(run).get(name) for run in self.runs]) for name in METRICS}


# name -> (row title in the table, digits after the point, whether a ratio means something)
METRICS: dict[str, tuple[str, int, bool]] = {
    "qps": ("answered qps", 0, True),
    "sent": ("sent", 0, False),
    "lost": ("lost", 0, False),
    "loss_percent": ("lost %", 3, False),
    "latency_mean_us": ("latency mean µs", 1, True),
    **{f"latency_p{p:g}_us": (f"latency p{p:g} µs", 1, True) for p in PERCENTILES},
    "latency_max_us": ("latency max µs", 0, True),
    "cpu_us_per_query": ("server CPU µs/query", 2, True),
    "dnsperf_qps": ("dnsperf qps", 0, True),
    "dnsperf_lost": ("dnsperf lost", 0, False),
    "dnsperf_loss_percent": ("dnsperf lost %", 3, False),
    "dnsperf_latency_avg_us": ("dnsperf latency avg µs", 1, True),
    "dnsperf_cpu_us_per_query": ("dnsperf server CPU µs/query", 2, True),
}


EXTRA_TITLES = {
    "truncated": "truncated (TC)",
    "late": "answers after the timeout",
    "mismatched": "answers not matching a query",
    "skipped": "queries not sent (the generator fell behind)",
    "send_errors": "send errors",
    "recv_errors": "receive errors (e.g. ICMP port unreachable)",
}


def metrics(run: Measurement) -> dict[str, float]:
    """The named figures of one round (only those it has)."""
    out: dict[str, float] = {}
    if run.load is not None:
        load = run.load
        out.update(
            qps=load.qps,
            sent=load.sent,
            lost=load.lost,
            loss_percent=load.loss_percent,
            latency_mean_us=load.histogram.mean_ns() / 1000,
        )
        for p in PERCENTILES:
            out[f"latency_p{p:g}_us"] = load.histogram.percentile_ns(p) / 1000
        out["latency_max_us"] = load.histogram.max_ns / 1000
    if run.cpu_us_per_query is not None:
        out["cpu_us_per_query"] = run.cpu_us_per_query
    if run.dnsperf is not None:
        out.update(
            dnsperf_qps=run.dnsperf.qps,
            dnsperf_lost=run.dnsperf.lost,
            dnsperf_loss_percent=run.dnsperf.loss_percent,
            dnsperf_latency_avg_us=run.dnsperf.latency_avg_us,
        )
    if run.dnsperf_cpu_us_per_query is not None:
        out["dnsperf_cpu_us_per_query"] = run.dnsperf_cpu_us_per_query
    return out


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}f}"


def _run_text(run: LoadResult) -> list[str]:
    h = run.histogram
    pct = "   ".join(f"p{p:g} {h.percentile_ns(p) / 1000:.1f}" for p in PERCENTILES)
    rcodes = ", ".join(f"{name} {n}" for name, n in run.rcode_names().items()) or "none"
    lines = [
        f"  answered   {run.answered} of {run.sent} sent in {run.duration:.1f} s: "
        f"{run.qps:,.0f} qps; lost {run.lost} ({run.loss_percent:.3f} %)",
        f"  latency    mean {h.mean_ns() / 1000:.1f}   {pct}   max {h.max_ns / 1000:.1f} µs",
        f"  rcodes     {rcodes}",
    ]
    odd = [f"{EXTRA_TITLES[k]} {v}" for k, v in run.extra.items() if k in EXTRA_TITLES and v]
    if odd:
        lines.append("  also       " + ", ".join(odd))
    return lines


def format_runs(server: ServerRuns, heading: str) -> str:
    """One server's rounds in detail (the report without ``--compare``)."""
    lines = [heading, f"server: {server.label} on {server.address}"]
    for run in server.runs:
        if len(server.runs) > 1:
            lines.append(f"round {run.round}:")
        if run.load is not None:
            lines += _run_text(run.load)
        if run.cpu_us_per_query is not None:
            lines.append(f"  server CPU {run.cpu_us_per_query:.2f} µs per answered query")
        if run.dnsperf is not None:
            d = run.dnsperf
            cpu = (
                f"; server CPU {run.dnsperf_cpu_us_per_query:.2f} µs/query"
                if run.dnsperf_cpu_us_per_query is not None
                else ""
            )
            lines.append(
                f"  dnsperf    {d.completed} of {d.sent} completed: {d.qps:,.0f} qps; lost "
                f"{d.lost} ({d.loss_percent:.3f} %); latency avg {d.latency_avg_us:.1f} µs "
                f"(min {d.latency_min_us:.1f}, max {d.latency_max_us:.1f}){cpu}"
            )
    if len(server.runs) > 1:
        lines.append(f"medians of {len(server.runs)} rounds:")
        medians = server.medians()
        for name, (title, digits, _ratio_ok) in METRICS.items():
            if medians[name] is not None:
                lines.append(f"  {title:<28} {_fmt(medians[name], digits):>12}")
    return "\n".join(lines)


def format_comparison(servers: Sequence[ServerRuns], heading: str) -> str:
    """Medians side by side, then the first server's median over each other server's."""
    base = servers[0]
    others = servers[1:]
    medians = {s.name: s.medians() for s in servers}
    columns = [s.name for s in servers] + [f"{base.name}/{o.name}" for o in others]
    width = max(12, *(len(c) + 2 for c in columns))
    lines = [heading, f"{'':<28}" + "".join(f"{c:>{width}}" for c in columns)]
    for name, (title, digits, ratio_ok) in METRICS.items():
        if all(medians[s.name][name] is None for s in servers):
            continue
        cells = [_fmt(medians[s.name][name], digits) for s in servers]
        for other in others:
            ratio = _ratio(medians[base.name][name], medians[other.name][name])
            cells.append(_fmt(ratio, 2) if ratio_ok else "")
        lines.append(f"  {title:<26}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append("servers:")
    lines += [f"  {s.name}: {s.label} on {s.address}" for s in servers]
    return "\n".join(lines)


def json_report(servers: Sequence[ServerRuns], settings: dict) -> dict:
    """The whole benchmark as one JSON-ready object."""
    out: dict = {"settings": settings, "servers": []}
    for server in servers:
        runs = []
        for run in server.runs:
            entry: dict = {"round": run.round, **metrics(run)}
            if run.load is not None:
                entry["rcodes"] = run.load.rcode_names()
                entry["duration_s"] = run.load.duration
                entry["answered"] = run.load.answered
                entry.update(run.load.extra)
            if run.dnsperf is not None:
                entry["dnsperf_rcodes"] = run.dnsperf.rcodes
                entry["dnsperf_command"] = run.dnsperf.command
            runs.append(entry)
        out["servers"].append(
            {
                "name": server.name,
                "label": server.label,
                "address": server.address,
                "runs": runs,
                "median": {k: v for k, v in server.medians().items() if v is not None},
            }
        )
    if len(servers) > 1:
        base = servers[0]
        base_medians = base.medians()
        out["ratios"] = {}
        for other in servers[1:]:
            other_medians = other.medians()
            out["ratios"][f"{base.name}/{other.name}"] = {
                name: ratio
                for name, (_t, _d, ratio_ok) in METRICS.items()
                if ratio_ok
                and (ratio := _ratio(base_medians[name], other_medians[name])) is not None
            }
    return out
