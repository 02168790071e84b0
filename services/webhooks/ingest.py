"""From events to deliveries: every event of every other service, in each service's position
order, becomes one delivery per endpoint whose filter it matches.

Events are taken only through catch-up (``shared.consumer.catch_up`` over the source's
``read_events``): a live message merely says "there is something new". That keeps each source's
events in position order, which is what lets the deliverer keep streams in order, and means an
event missed by the bus (a queue not bound yet, the service down) is still delivered.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.consumer import Envelope, Fetch, apply_run, catch_up, cursor

CONSUMER = "webhooks"
BATCH = 500


def type_matches(patterns: Sequence[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def matches(endpoint: Mapping[str, Any], envelope: Mapping[str, Any]) -> bool:
    """The endpoint's type filter, and its field filter: an event that reports ``changes``
    matches only when one of the changed fields is listed (other events are not filtered)."""
    if not type_matches(endpoint["event_types"], envelope["type"]):
        return False
    wanted = endpoint.get("fields")
    changes = (envelope.get("payload") or {}).get("changes")
    if wanted and isinstance(changes, Mapping):
        return bool(set(changes) & set(wanted))
    return True


def _endpoints(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(text("SELECT id, event_types, fields FROM endpoints WHERE active"))
    return [dict(row._mapping) for row in rows]


def delivery_id(endpoint_id: Any, event_id: Any) -> uuid.UUID:
    """The id of an event's delivery to an endpoint (``CMS-Webhook-Id``, which receivers
    de-duplicate on): derived from both, so a delivery made again (a consumer commit that a
    database crash lost is applied again from the log) carries the same id."""
    return uuid.uuid5(uuid.UUID(str(endpoint_id)), str(event_id))


def _deliver(
    session: Session, source: str, endpoints: Sequence[Mapping[str, Any]], envelope: Envelope
) -> int:
    """The deliveries of one event, one per endpoint it matches; returns how many."""
    rows = [
        {
            "id": delivery_id(endpoint["id"], envelope["event_id"]),
            "endpoint_id": endpoint["id"],
            "event_id": uuid.UUID(str(envelope["event_id"])),
            "source": source,
            "position": int(envelope["position"]),
            "stream_id": str(envelope["stream_id"]),
            "event_type": envelope["type"],
            "envelope": _json(envelope),
        }
        for endpoint in endpoints
        if matches(endpoint, envelope)
    ]
    if rows:
        session.execute(
            text(
                "INSERT INTO deliveries (id, endpoint_id, event_id, source, position, "
                "stream_id, event_type, envelope) VALUES (:id, :endpoint_id, :event_id, "
                ":source, :position, :stream_id, :event_type, CAST(:envelope AS jsonb)) "
                "ON CONFLICT (endpoint_id, event_id) DO NOTHING"
            ),
            rows,
        )
    return len(rows)


def ingest(session: Session, source: str, fetch: Fetch) -> int:
    """Catch up on ``source``; returns how many deliveries were created."""
    endpoints = _endpoints(session)
    session.rollback()
    created = 0

    def apply(session: Session, envelope: Envelope) -> None:
        nonlocal created
        created += _deliver(session, source, endpoints, envelope)

    catch_up(session, CONSUMER, source, fetch, apply, batch_size=BATCH)
    return created


def ingest_run(session: Session, source: str, run: Sequence[Envelope]) -> int | None:
    """Live events whose positions follow one another, the first right after the consumer's
    cursor, taken in one transaction without reading ``source``'s log; returns the
    deliveries created, or None when the first is not the next event (the caller catches
    up)."""
    created = 0
    endpoints: list[Any] | None = None

    def apply(session: Session, envelope: Envelope) -> None:
        nonlocal created, endpoints
        if endpoints is None:
            endpoints = _endpoints(session)
        created += _deliver(session, source, endpoints, envelope)

    return created if apply_run(session, CONSUMER, source, run, apply) else None


def behind(session: Session, source: str, position: int) -> bool:
    """Whether the consumer has not reached ``position`` of ``source`` yet."""
    reached = cursor(session, CONSUMER, source)
    session.rollback()
    return position > reached


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
