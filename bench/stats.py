"""Small statistics for benchmark samples (nearest-rank percentiles, no numpy)."""

from __future__ import annotations

import math
import statistics


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest sample with at least p% of the samples at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "median": median(values), "p95": percentile(values, 95),
            "min": min(values) if values else None, "max": max(values) if values else None}
