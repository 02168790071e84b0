"""A customer's orders and payments, from the orders and payments services' events.

The customers service subscribes to the events that say something about a customer's buying
(``SUBSCRIPTIONS``) and keeps one ``customer_activity`` row per event, in the same transaction
as the consumer's record of it (``shared.consumer``), so a redelivered event changes nothing.
``order.placed`` also counts the order in ``customers.order_count`` (the ``has_orders``
filter). The timeline (``views.timeline``) shows these rows among the customer's own events.

Only ids, amounts, statuses and methods are kept: never a delivery address or a card.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.customers import tables
from shared.consumer import apply_all_once, catch_up

#: The consumer's name in ``processed_events`` and ``consumer_positions``.
CONSUMER = "customers.activity"

#: The event types each source service publishes that the timeline shows.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "orders": (
        "order.placed",
        "order.partially_paid",
        "order.paid",
        "order.fulfilled",
        "order.completed",
        "order.cancelled",
        "order.returned",
    ),
    "payments": (
        "payment.captured",
        "payment.failed",
        "payment.refunded",
    ),
}

#: Payload fields kept in the summary (whichever of them an event has).
SUMMARY_FIELDS = (
    "order_id",
    "number",
    "payment_id",
    "refund_id",
    "method",
    "provider",
    "currency",
    "subtotal",
    "total",
    "amount",
    "paid_amount",
    "refunded_total",
    "reason",
    "source",
    "external_id",
    "placed_at",
)


def _parse_time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def summary(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """What the timeline shows of an order or payment event."""
    payload = envelope.get("payload") or {}
    kept = {key: payload[key] for key in SUMMARY_FIELDS if payload.get(key) is not None}
    lines = payload.get("lines")
    if envelope["type"] == "order.placed" and isinstance(lines, list):
        kept["items"] = sum(int(line.get("quantity") or 0) for line in lines)
    return kept


def actor_of(envelope: Mapping[str, Any]) -> dict[str, str | None]:
    """Who caused the event and in which request, from its metadata (a user, an API key, a
    payment provider, the system)."""
    meta = envelope.get("metadata") or {}
    return {
        name: (str(meta[name]) if meta.get(name) is not None else None)
        for name in ("actor_id", "actor_kind", "request_id")
    }


def _imported_at(session: Session, envelope: Mapping[str, Any]) -> datetime | None:
    """For an event of a historical import (its metadata names ``import_external_id``: an
    imported order paid as it was), the original purchase time of its order, where it showed
    at the time of the import, years after the order it belongs to."""
    order_id = (envelope.get("payload") or {}).get("order_id")
    if not order_id or not (envelope.get("metadata") or {}).get("import_external_id"):
        return None
    rows = tables.customer_activity.c
    return session.execute(
        select(rows.at).where(rows.order_id == str(order_id), rows.type == "order.placed")
    ).scalar()


def apply(session: Session, envelope: Mapping[str, Any]) -> None:
    """Record one order or payment event of a customer (the ``shared.consumer`` effect)."""
    payload = envelope.get("payload") or {}
    customer_id = payload.get("customer_id")
    if not customer_id:
        return
    if envelope["type"] == "order.placed":
        at = _parse_time(payload.get("placed_at") or envelope["occurred_at"])
    else:
        at = _imported_at(session, envelope) or _parse_time(envelope["occurred_at"])
    row = {
        "event_id": str(envelope["event_id"]),
        "customer_id": str(customer_id),
        "source": envelope.get("source") or envelope["type"].split(".")[0] + "s",
        "position": int(envelope.get("position") or 0),
        "type": envelope["type"],
        "at": at,
        "order_id": payload.get("order_id"),
        "summary": summary(envelope),
        **actor_of(envelope),
    }
    inserted = session.execute(
        pg_insert(tables.customer_activity)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(tables.customer_activity.c.event_id)
    ).scalar()
    if inserted and envelope["type"] == "order.placed":
        session.execute(
            update(tables.customers)
            .where(tables.customers.c.id == row["customer_id"])
            .values(order_count=tables.customers.c.order_count + 1)
        )


def handle_all(session: Session, envelopes: Sequence[Mapping[str, Any]]) -> int:
    """Apply a batch of delivered events, each once, in one transaction; how many were new."""
    return len(apply_all_once(session, CONSUMER, envelopes, apply))


Fetch = Callable[[str, int, int, Sequence[str]], Sequence[Mapping[str, Any]]]


def catch_up_all(session: Session, fetch: Fetch, batch_size: int = 500) -> int:
    """Apply what the live deliveries missed, from every source's ``read_events``;
    ``fetch(service, after, limit, types)``. Returns how many events were new."""
    applied = 0
    for source, types in SUBSCRIPTIONS.items():
        applied += catch_up(
            session,
            CONSUMER,
            source,
            lambda after, limit, source=source, types=types: fetch(source, after, limit, types),
            apply,
            batch_size,
        )
    return applied


def reset(session: Session) -> None:
    """Forget the activity, so that the next catch-up rebuilds it from position 0."""
    session.execute(text("DELETE FROM customer_activity"))
    session.execute(text("UPDATE customers SET order_count = 0 WHERE order_count <> 0"))
    session.execute(
        text("DELETE FROM processed_events WHERE consumer = :consumer"), {"consumer": CONSUMER}
    )
    session.execute(
        text("DELETE FROM consumer_positions WHERE consumer = :consumer"), {"consumer": CONSUMER}
    )
    session.commit()
