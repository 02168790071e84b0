"""Statistics of one measured phase: percentiles and a summary (pure Python, no I/O)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

PERCENTILES = (50, 95, 99)


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of already sorted values, linearly interpolated between
    the two nearest ranks (the "linear" method of numpy and of Excel's PERCENTILE.INC).
    ``None`` for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summarise(
    latencies: Iterable[float],
    duration: float,
    errors: int = 0,
    error_kinds: Counter | dict | None = None,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """The figures of a phase: ``latencies`` are the seconds each *successful* operation took,
    ``duration`` the seconds the phase was measured for. Throughput counts successful operations
    only; latencies are reported in milliseconds, rounded to 0.01 ms."""
    if duration <= 0:
        raise ValueError("duration must be positive")
    ordered = sorted(latencies)
    count = len(ordered)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    summary: dict[str, Any] = {
        "ok": count,
        "errors": errors,
        "duration_s": round(duration, 3),
        "throughput_per_s": round(count / duration, 1),
        "mean_ms": ms(sum(ordered) / count) if count else None,
        "min_ms": ms(ordered[0]) if count else None,
        "max_ms": ms(ordered[-1]) if count else None,
    }
    for q in PERCENTILES:
        summary[f"p{q}_ms"] = ms(percentile(ordered, q))
    if concurrency is not None:
        summary["concurrency"] = concurrency
    if error_kinds:
        summary["error_kinds"] = dict(sorted(Counter(error_kinds).items()))
    return summary
