"""One load run with the built-in generator (``fastdns._loadgen``) and what it measured.

``run_load(host, port, wires, settings, progress)`` sends the wire queries in turn at
``settings.rate`` queries per second (or, with ``rate`` None, as fast as
``settings.max_outstanding`` queries in flight allow) for ``settings.duration`` seconds and
returns a ``LoadResult``: counts, rcodes and the latency histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.rcode

from fastdns.bench.histogram import LatencyHistogram

try:
    from fastdns import _loadgen
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "fastdns bench needs the compiled load generator fastdns._loadgen, which is not built "
        f"or not importable ({exc}). Build it with `pip install .` (or `pip install -e .` for "
        "development) from the repository root; this needs a C compiler and the Python headers."
    ) from exc

__all__ = ["LoadResult", "LoadSettings", "bucket_bounds", "run_load"]

bucket_bounds = _loadgen.bucket_bounds


@dataclass(frozen=True)
class LoadSettings:
    """How to load a server: ``rate`` qps (None: as fast as possible), for ``duration`` s."""

    duration: float = 10.0
    rate: float | None = None
    max_outstanding: int | None = None  # default: 200 at --max, the ID space at a fixed rate
    timeout: float = 1.0  # unanswered this long after sending: lost
    sockets: int = 4


@dataclass
class LoadResult:
    """What one run measured; latencies in the histogram are ns."""

    duration: float  # seconds spent sending
    sent: int
    answered: int
    lost: int
    rcodes: dict[int, int]
    histogram: LatencyHistogram
    extra: dict[str, int] = field(default_factory=dict)  # late, mismatched, skipped, errors...

    @classmethod
    def from_counters(cls, raw: Mapping) -> LoadResult:
        extra_keys = (
            "late",
            "mismatched",
            "truncated",
            "skipped",
            "send_errors",
            "recv_errors",
            "bytes_sent",
            "bytes_received",
        )
        return cls(
            duration=float(raw["duration_s"]),
            sent=int(raw["sent"]),
            answered=int(raw["answered"]),
            lost=int(raw["lost"]),
            rcodes={int(k): int(v) for k, v in raw["rcodes"].items()},
            histogram=LatencyHistogram.from_result(raw),
            extra={k: int(raw[k]) for k in extra_keys if k in raw},
        )

    @property
    def qps(self) -> float:
        """Answers per second of sending."""
        return self.answered / self.duration if self.duration else 0.0

    @property
    def offered_qps(self) -> float:
        return self.sent / self.duration if self.duration else 0.0

    @property
    def loss_percent(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0

    def rcode_names(self) -> dict[str, int]:
        return {_rcode_text(code): n for code, n in sorted(self.rcodes.items())}


def _rcode_text(code: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(code))
    except ValueError:
        return f"RCODE{code}"


def run_load(
    host: str,
    port: int,
    wires: Sequence[bytes],
    settings: LoadSettings,
    progress: Callable[[Mapping], None] | None = None,
) -> LoadResult:
    """Load ``host:port`` with ``wires`` (sent in turn, cycling) and measure every answer.

    ``progress(counters)`` is called about once a second with the counts so far
    (``sent``, ``answered``, ``lost``, ``elapsed_s``...).
    """
    generator = _loadgen.LoadGenerator(
        host,
        port,
        wires,
        rate=settings.rate or 0.0,
        max_outstanding=settings.max_outstanding or 0,
        timeout=settings.timeout,
        sockets=settings.sockets,
    )
    raw = generator.run(settings.duration, progress)
    return LoadResult.from_counters(raw)
