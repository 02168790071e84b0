"""Each customer's marketing segment, from the analytics service's ``segment.changed`` and
``segment.cleared`` events.

The analytics service scores customers (RFM) and publishes a ``segment.changed`` event when a
customer's named segment changes, and ``segment.cleared`` when a customer no longer has any
(no purchase counts any more; docs/service-contracts.md). The customers service keeps the
latest one per customer in ``customer_segments`` for the customer list's ``segment`` filter and
the record's ``segment`` field. Events are applied once (``shared.consumer``) and an older
event never overwrites a newer one (positions of one source only grow), so redelivery and
out-of-order arrival change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.customers import tables
from shared.consumer import apply_all_once, catch_up

CONSUMER = "customers.segments"
SOURCE = "analytics"
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {SOURCE: ("segment.changed", "segment.cleared")}

#: The named segments (the analytics service's RFM rules; README "Analytics").
SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
)

SCORE_FIELDS = ("r_score", "f_score", "m_score", "recency", "frequency", "monetary")


def apply(session: Session, envelope: Mapping[str, Any]) -> None:
    """Keep the newest segment of the event's customer (null once ``segment.cleared``)."""
    payload = envelope["payload"]
    row = {
        "customer_id": str(payload["customer_id"]),
        "segment": payload["segment"] if envelope["type"] == "segment.changed" else None,
        "scores": {key: payload[key] for key in SCORE_FIELDS if key in payload},
        "as_of": datetime.fromisoformat(str(payload.get("as_of") or envelope["occurred_at"])),
        "position": int(envelope["position"]),
    }
    statement = pg_insert(tables.customer_segments).values(**row)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={key: statement.excluded[key] for key in row if key != "customer_id"},
            where=tables.customer_segments.c.position < statement.excluded.position,
        )
    )


def handle_all(session: Session, envelopes: Sequence[Mapping[str, Any]]) -> int:
    """A batch of deliveries in one transaction (each event once); how many were new."""
    return len(apply_all_once(session, CONSUMER, envelopes, apply))


def catch_up_all(
    session: Session, fetch: Callable[[str, int, int, Sequence[str]], Sequence[Mapping]]
) -> int:
    """Apply the segment events the live deliveries missed."""
    types = SUBSCRIPTIONS[SOURCE]
    return catch_up(
        session,
        CONSUMER,
        SOURCE,
        lambda after, limit: fetch(SOURCE, after, limit, types),
        apply,
    )


def segments_of(conn: Connection, customer_ids: Sequence[str]) -> dict[str, str]:
    """``{customer id: segment}`` for those of these customers that have one."""
    if not customer_ids:
        return {}
    rows = conn.execute(
        select(tables.customer_segments.c.customer_id, tables.customer_segments.c.segment).where(
            tables.customer_segments.c.customer_id.in_(list(customer_ids))
        )
    )
    return {str(customer_id): segment for customer_id, segment in rows if segment is not None}


def members(segment: str):
    """The ids of a segment's customers, as a subquery for the customer list's filter."""
    return select(tables.customer_segments.c.customer_id).where(
        tables.customer_segments.c.segment == segment
    )
