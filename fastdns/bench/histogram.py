"""Latency histograms as the load generator counts them: percentiles, mean, merging.

The buckets are ``fastdns._loadgen``'s log-linear ones (exact below 256 ns, then 128 per power
of two), identified by index; ``bucket_bounds(index)`` gives the ns range of one. A percentile is
the middle of the bucket holding that rank, clamped to the exact minimum and maximum, so it is
within 0.4 % of the true value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["PERCENTILES", "LatencyHistogram"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass
class LatencyHistogram:
    """Counts per bucket index, with the exact sum, minimum and maximum in ns."""

    counts: dict[int, int] = field(default_factory=dict)
    sum_ns: int = 0
    min_ns: int = 0
    max_ns: int = 0

    @classmethod
    def from_result(cls, result: Mapping) -> LatencyHistogram:
        """From ``LoadGenerator.run()``'s result (or its JSON form, with string keys)."""
        return cls(
            {int(k): int(v) for k, v in result["histogram"].items()},
            int(result["latency_sum_ns"]),
            int(result["latency_min_ns"]),
            int(result["latency_max_ns"]),
        )

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def mean_ns(self) -> float:
        total = self.total
        return self.sum_ns / total if total else 0.0

    def percentile_ns(self, p: float) -> float:
        """The latency below which ``p`` percent of answers came; 0 for an empty histogram."""
        from fastdns.bench.load import bucket_bounds

        total = self.total
        if not total:
            return 0.0
        if p >= 100:
            return float(self.max_ns)
        rank = max(1, math.ceil(p / 100.0 * total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bucket_bounds(index)
                value = low if high - low == 1 else (low + high) / 2
                return float(min(max(value, self.min_ns), self.max_ns))
        return float(self.max_ns)

    def percentiles_us(self, ps: Iterable[float] = PERCENTILES) -> dict[str, float]:
        """{"p50": us, ...} for the given percentiles."""
        return {_label(p): self.percentile_ns(p) / 1000.0 for p in ps}

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """A new histogram counting both."""
        counts = dict(self.counts)
        for index, n in other.counts.items():
            counts[index] = counts.get(index, 0) + n
        mins = [h.min_ns for h in (self, other) if h.total]
        return LatencyHistogram(
            counts,
            self.sum_ns + other.sum_ns,
            min(mins) if mins else 0,
            max(self.max_ns, other.max_ns),
        )

    def cumulative(
        self, bounds: Callable[[int], tuple[int, int]] | None = None
    ) -> list[tuple[float, float]]:
        """(upper bound in ns, fraction of answers at or below it), one per non-empty bucket."""
        if bounds is None:
            from fastdns.bench.load import bucket_bounds as bounds
        total = self.total
        points, seen = [], 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            points.append((float(min(bounds(index)[1], max(self.max_ns, 1))), seen / total))
        return points


def _label(p: float) -> str:
    return f"p{p:g}"
