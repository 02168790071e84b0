"""How events reach the analytics projections: live from RabbitMQ, and by catch-up through
each source's ``read_events`` (at start, on a timer, and whatever a live delivery missed).

Both go through ``shared.consumer`` (``apply_all_once`` / ``catch_up``): the consumer records each
event id in ``processed_events`` in the same transaction as its effect, so redelivery changes
nothing; the fold itself is order independent (projector.py). Applies take one advisory lock
(per transaction) so projection writes never interleave, and so that a rebuild's swap
(rebuild.py) can hold every writer off while it exchanges the tables.

Freshness: each applied event records ``now - occurred_at`` (the source's commit time of the
event) in ``freshness``; ``freshness_figures`` gives p50, p99 and the last lag over a window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy.orm import Session

from services.analytics.projector import SUBSCRIPTIONS, Projector, parse_time, source_of
from shared.consumer import (
    advance_cursor,
    already_applied,
    apply_all_once,
    claim_page,
    cursor,
    remember_cursor,
)

log = logging.getLogger(__name__)

#: The consumer's name in ``processed_events`` and ``consumer_positions``.
CONSUMER = "analytics"

#: Advisory lock key every projection write holds (``'anal'``).
APPLY_LOCK = 0x616E616C

Envelope = Mapping[str, Any]
Fetch = Callable[[str, int, int, Sequence[str]], Sequence[Envelope]]


def raw_cursor(session: Session):
    """A psycopg2 cursor on the session's connection (inside its transaction)."""
    return session.connection().connection.cursor()


def lock(cursor) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (APPLY_LOCK,))


def record_lags(cursor, envelopes: Sequence[Envelope], path: str) -> None:
    rows = [
        (source_of(e), e["type"], path, parse_time(e["occurred_at"]))
        for e in envelopes
        if e.get("occurred_at")
    ]
    if rows:
        execute_values(
            cursor,
            "INSERT INTO freshness (source, event_type, path, lag_ms) VALUES %s",
            rows,
            template="(%s, %s, %s, GREATEST(0, extract(epoch FROM clock_timestamp() - %s) * 1000))",
            page_size=1000,
        )


def handle_all(session: Session, envelopes: Sequence[Envelope]) -> int:
    """A batch of live deliveries in one transaction, under the write lock, folded at once;
    how many were new. Errors propagate (the batch is requeued)."""
    pending = [e for e in envelopes if not already_applied(session, CONSUMER, e)]
    if not pending:
        return 0  # a catch-up took them
    lock(raw_cursor(session))

    def apply_page(session: Session, fresh: Sequence[Envelope]) -> None:
        db = raw_cursor(session)
        Projector(db).apply(fresh)
        record_lags(db, fresh, "live")

    return len(apply_all_once(session, CONSUMER, pending, apply_page=apply_page))


def catch_up_all(session: Session, fetch: Fetch, batch_size: int = 1000) -> int:
    """Apply every subscribed event the live deliveries missed, a page per transaction (the
    same records as ``shared.consumer.catch_up``, claimed and folded a page at a time, so a
    consumer that was away for a while catches up at rebuild speed). Returns how many."""
    applied = 0
    for source, types in SUBSCRIPTIONS.items():
        position = cursor(session, CONSUMER, source)
        session.rollback()
        while True:
            page = fetch(source, position, batch_size, types)
            if not page:
                break
            try:
                db = raw_cursor(session)
                lock(db)
                fresh_ids = claim_page(session, CONSUMER, source, page)
                fresh = [e for e in page if str(e["event_id"]) in fresh_ids]
                if fresh:
                    Projector(db).apply(fresh)
                    record_lags(db, fresh, "catch_up")
                position = int(page[-1]["position"])
                advance_cursor(session, CONSUMER, source, position)
                session.commit()
            except Exception:
                session.rollback()
                raise
            remember_cursor(session, CONSUMER, source, position)
            applied += len(fresh)
            if len(page) < batch_size:
                break
    return applied


def freshness_figures(cursor, window_seconds: int) -> dict[str, Any]:
    """Lag from an event's commit at its source to its projection, over the last window."""
    cursor.execute(
        """SELECT path, count(*),
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms),
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms),
                  max(applied_at)
           FROM freshness WHERE applied_at > clock_timestamp() - make_interval(secs => %s)
           GROUP BY path""",
        (window_seconds,),
    )
    paths = {
        row[0]: {
            "events": row[1],
            "p50_ms": round(row[2], 1),
            "p99_ms": round(row[3], 1),
            "last_applied_at": row[4].isoformat(),
        }
        for row in cursor.fetchall()
    }
    cursor.execute(
        "SELECT lag_ms, applied_at, source, event_type FROM freshness ORDER BY id DESC LIMIT 1"
    )
    last = cursor.fetchone()
    live = paths.get("live", {})
    return {
        "window_seconds": window_seconds,
        "events": live.get("events", 0),
        "p50_ms": live.get("p50_ms"),
        "p99_ms": live.get("p99_ms"),
        "last_ms": round(last[0], 1) if last else None,
        "last_applied_at": last[1].isoformat() if last else None,
        "last_event_type": last[3] if last else None,
        "by_path": paths,
        "measured_at": datetime.now(UTC).isoformat(),
    }


def prune_freshness(cursor, keep_seconds: int = 86400) -> None:
    cursor.execute(
        "DELETE FROM freshness WHERE applied_at < clock_timestamp() - make_interval(secs => %s)",
        (keep_seconds,),
    )


def prometheus(figures: dict[str, Any]) -> str:
    """The freshness figures in the Prometheus text exposition format."""
    lines = [
        "# HELP cms_analytics_freshness_lag_seconds Lag from an event's commit at its source "
        "to the analytics projection applying it (live deliveries, recent window).",
        "# TYPE cms_analytics_freshness_lag_seconds summary",
    ]
    for quantile, key in (("0.5", "p50_ms"), ("0.99", "p99_ms")):
        value = figures.get(key)
        lines.append(
            f'cms_analytics_freshness_lag_seconds{{quantile="{quantile}"}} '
            f"{(value / 1000) if value is not None else 'NaN'}"
        )
    lines.append(f"cms_analytics_freshness_lag_seconds_count {figures.get('events', 0)}")
    lines += [
        "# HELP cms_analytics_last_event_lag_seconds Lag of the last applied event.",
        "# TYPE cms_analytics_last_event_lag_seconds gauge",
        "cms_analytics_last_event_lag_seconds "
        + (str(figures["last_ms"] / 1000) if figures.get("last_ms") is not None else "NaN"),
    ]
    return "\n".join(lines) + "\n"
