"""The RFM summary a lifetime-value fit starts from (``services.analytics.clv``): per
customer, repeat purchases, recency and age. numpy only, so that the service process can
build it without importing scipy (the fit itself runs in a child process: ``clv_runner``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np

UNITS = {"days": 1.0, "weeks": 7.0}


@dataclass
class Summary:
    """Per customer: ids, frequency, recency, age (in the time unit) and the mean value of
    the repeat purchases (0 when there are none)."""

    ids: list[str]
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray


def summarise(
    purchases: Iterable[tuple[str, date, int]], as_of: date, unit: str = "days"
) -> Summary:
    """RFM summary from ``(customer, day, value)`` rows sorted by customer: purchases on one
    day count as one (their values summed); the first day is not a repeat."""
    scale = UNITS[unit]
    ids: list[str] = []
    xs, txs, ts, ms = [], [], [], []
    current, days = None, {}

    def flush():
        if current is None:
            return
        ordered = sorted(days)
        first, last = ordered[0], ordered[-1]
        repeats = [days[d] for d in ordered[1:]]
        ids.append(current)
        xs.append(len(repeats))
        txs.append((last - first).days / scale)
        ts.append((as_of - first).days / scale)
        ms.append(sum(repeats) / len(repeats) if repeats else 0.0)

    for customer, day, value in purchases:
        if customer != current:
            flush()
            current, days = customer, {}
        days[day] = days.get(day, 0) + value
    flush()
    return Summary(
        ids, np.array(xs, float), np.array(txs, float), np.array(ts, float), np.array(ms, float)
    )
