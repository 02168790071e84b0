"""``segment.changed`` and ``segment.cleared`` events (docs/service-contracts.md): after each
scoring run, every customer whose segment (in the default currency) differs from the one last
published gets an event on its ``customer_segment`` stream, appended to the analytics event log
in the scoring transaction, so the outbox relay publishes it to ``analytics.events`` (the
customers service's segment filter follows them). A customer who had a segment and no longer
has any (every purchase cancelled, returned or refunded in full) gets ``segment.cleared``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from psycopg2.extras import execute_values

from services.analytics.events import registry


def publish_changes(cursor, currency: str, as_of: date) -> int:
    """Append an event per changed or cleared segment; returns how many."""
    cursor.execute(
        """SELECT r.customer_id, r.segment, p.segment, COALESCE(p.version, 0), r.r, r.f, r.m,
                  r.recency_days, r.frequency, r.monetary
           FROM customer_rfm r LEFT JOIN published_segments p USING (customer_id)
           WHERE r.currency = %s AND p.segment IS DISTINCT FROM r.segment
           ORDER BY r.customer_id""",
        (currency,),
    )
    changed = cursor.fetchall()
    cursor.execute(
        """SELECT p.customer_id, p.segment, p.version FROM published_segments p
           WHERE p.segment IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM customer_rfm r WHERE r.customer_id = p.customer_id)
           ORDER BY p.customer_id"""
    )
    cleared = cursor.fetchall()
    if not changed and not cleared:
        return 0
    day = as_of.isoformat()
    news: list[tuple[str, int, str, dict[str, Any]]] = [
        (
            customer_id,
            version,
            "segment.changed",
            {
                "customer_id": customer_id,
                "segment": segment,
                "previous_segment": previous,
                "r_score": r,
                "f_score": f,
                "m_score": m,
                "recency": recency,
                "frequency": frequency,
                "monetary": monetary,
                "currency": currency,
                "as_of": day,
            },
        )
        for (customer_id, segment, previous, version, r, f, m, recency, frequency, monetary) in (
            changed
        )
    ]
    news += [
        (
            customer_id,
            version,
            "segment.cleared",
            {
                "customer_id": customer_id,
                "previous_segment": previous,
                "as_of": day,
                "currency": currency,
            },
        )
        for customer_id, previous, version in cleared
    ]
    _append(cursor, news)
    return len(news)


def _append(cursor, news: list[tuple[str, int, str, dict[str, Any]]]) -> None:
    """The events on their streams, and each stream's segment (null once cleared) and version
    in ``published_segments``."""
    now = datetime.now(UTC)
    cursor.execute("LOCK TABLE events IN EXCLUSIVE MODE")
    rows = []
    for customer_id, version, event_type, payload in news:
        event = registry.new_event(event_type, payload, occurred_at=now)
        rows.append(
            (
                str(event.event_id),
                "customer_segment",
                customer_id,
                version + 1,
                event.type,
                event.schema_version,
                json.dumps(event.payload),
                "{}",
                now,
            )
        )
    execute_values(
        cursor,
        "INSERT INTO events (event_id, stream_type, stream_id, stream_version, event_type, "
        "schema_version, payload, metadata, occurred_at) VALUES %s",
        rows,
        page_size=1000,
    )
    execute_values(
        cursor,
        "INSERT INTO published_segments (customer_id, segment, version) VALUES %s "
        "ON CONFLICT (customer_id) DO UPDATE SET segment = EXCLUDED.segment, "
        "version = EXCLUDED.version",
        [(row[2], json.loads(row[6]).get("segment"), row[3]) for row in rows],
        page_size=1000,
    )
