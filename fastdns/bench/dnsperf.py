"""dnsperf as a second opinion: run it against the same target with the same queries.

``run_dnsperf(host, port, query_file, duration=..., rate=...)`` runs
``dnsperf -s HOST -p PORT -d FILE -l DURATION [-Q RATE]`` and reads the figures from its
"Statistics" block. dnsperf reports only the average latency (and min, max, stddev), no
percentiles.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DnsperfError", "DnsperfResult", "dnsperf_command", "parse_output", "run_dnsperf"]

INSTALL_HINT = "dnsperf is not installed: install the Debian package `dnsperf`"


class DnsperfError(RuntimeError):
    """dnsperf is missing, failed, or printed no statistics."""


@dataclass
class DnsperfResult:
    sent: int
    completed: int
    lost: int
    qps: float
    run_time: float
    latency_avg_us: float
    latency_min_us: float
    latency_max_us: float
    latency_stddev_us: float
    rcodes: dict[str, int] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)

    @property
    def loss_percent(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0


def dnsperf_command(
    host: str,
    port: int,
    query_file: Path,
    *,
    duration: float,
    rate: float | None = None,
    max_outstanding: int | None = None,
    timeout: float = 1.0,
    edns: bool = False,
) -> list[str]:
    binary = shutil.which("dnsperf")
    if binary is None:
        raise DnsperfError(INSTALL_HINT)
    argv = [binary, "-s", host, "-p", str(port), "-d", str(query_file), "-l", f"{duration:g}"]
    argv += ["-t", f"{timeout:g}"]
    if rate:
        argv += ["-Q", str(round(rate))]
    if max_outstanding:
        argv += ["-q", str(max_outstanding)]
    if edns:
        argv.append("-e")
    return argv


def run_dnsperf(host: str, port: int, query_file: Path, **options) -> DnsperfResult:
    """Run dnsperf (options as ``dnsperf_command``) and parse what it printed."""
    argv = dnsperf_command(host, port, query_file, **options)
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=options["duration"] + 60
        )
    except subprocess.TimeoutExpired:
        raise DnsperfError(f"dnsperf did not finish: {' '.join(argv)}") from None
    if done.returncode != 0:
        raise DnsperfError(
            f"dnsperf exited with status {done.returncode}: {' '.join(argv)}\n"
            f"{done.stdout}{done.stderr}"
        )
    result = parse_output(done.stdout)
    result.command = argv
    return result


def _number(pattern: str, text: str, default: float | None = None) -> float:
    match = re.search(pattern, text)
    if match is None:
        if default is not None:
            return default
        raise DnsperfError(f"dnsperf output has no {pattern!r}:\n{text}")
    return float(match.group(1))


def parse_output(text: str) -> DnsperfResult:
    """The figures of dnsperf's "Statistics" block."""
    rcodes = {}
    match = re.search(r"Response codes:\s*(.*)", text)
    if match:
        for name, count in re.findall(r"([A-Z]+)\s+(\d+)", match.group(1)):
            rcodes[name] = int(count)
    latency = re.search(
        r"Average Latency \(s\):\s*([\d.]+)\s*\(min\s*([\d.]+),\s*max\s*([\d.]+)\)", text
    )
    avg, low, high = (float(x) * 1e6 for x in latency.groups()) if latency else (0.0,) * 3
    return DnsperfResult(
        sent=int(_number(r"Queries sent:\s*(\d+)", text)),
        completed=int(_number(r"Queries completed:\s*(\d+)", text)),
        lost=int(_number(r"Queries lost:\s*(\d+)", text)),
        qps=_number(r"Queries per second:\s*([\d.]+)", text),
        run_time=_number(r"Run time \(s\):\s*([\d.]+)", text),
        latency_avg_us=avg,
        latency_min_us=low,
        latency_max_us=high,
        latency_stddev_us=_number(r"Latency StdDev \(s\):\s*([\d.]+)", text, 0.0) * 1e6,
        rcodes=rcodes,
    )
