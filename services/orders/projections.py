"""The orders service's read models (``products``, ``orders``), written in the same transaction
as the events they come from (:mod:`services.orders.store`), and rebuilt from the event log at
will: ``python -m services.orders.projections`` (or ``shared.backup``'s replay).

The customer replica is not rebuilt here: it comes from the customers service's log, and a
reset consumer cursor (``consumer_positions``) replays it through the usual catch-up.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from services.orders import tables
from services.orders.domain import Order, Product
from services.orders.events import ORDER_STREAM, PRODUCT_STREAM
from shared.events import RecordedEvent
from shared.eventstore import events_table
from shared.upsert import Upsert

BATCH = 500
_UPSERT_PRODUCT = Upsert(tables.products, ["id"], keep=["created_at"])
_UPSERT_ORDER = Upsert(tables.orders, ["id"], keep=["created_at"])


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def upsert_product(session: Session, product: Product, created_at: datetime, updated_at: datetime):
    row = {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "brand": product.brand,
        "price": product.price,
        "currency": product.currency,
        "active": product.active,
        "version": product.version,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    _UPSERT_PRODUCT(session, row)


def order_row(order: Order, created_at: datetime, last: RecordedEvent) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "customer_id": order.customer_id,
        "currency": order.currency,
        "status": order.status,
        "lines": order.lines,
        "product_ids": sorted(
            {line["product_id"] for line in order.lines if line.get("product_id")}
        ),
        "subtotal": order.subtotal,
        "order_discount": order.order_discount,
        "tax_rate": order.tax_rate,
        "tax": order.tax,
        "total": order.total,
        "paid_amount": order.paid_amount,
        "ever_paid": order.ever_paid,
        "source": order.source,
        "external_id": order.external_id,
        "delivery_address": order.delivery_address,  # sealed
        "notes": order.notes,  # sealed
        "placed_at": parse_time(order.placed_at),
        "created_at": created_at,
        "updated_at": last.occurred_at,
        "version": order.version,
        "last_position": last.global_position,
    }


def upsert_order(session: Session, order: Order, created_at: datetime, last: RecordedEvent):
    _UPSERT_ORDER(session, order_row(order, created_at, last))


def _stream_ids(session: Session, stream_type: str) -> list[str]:
    return list(
        session.execute(
            select(events_table.c.stream_id)
            .where(events_table.c.stream_type == stream_type)
            .where(events_table.c.stream_version == 1)
            .order_by(events_table.c.global_position)
        ).scalars()
    )


def _events(session: Session, ids: list[str]) -> dict[str, list[RecordedEvent]]:
    from shared.eventstore import _recorded

    grouped: dict[str, list[RecordedEvent]] = defaultdict(list)
    rows = session.execute(
        select(events_table)
        .where(events_table.c.stream_id.in_(ids))
        .order_by(events_table.c.stream_id, events_table.c.stream_version)
    )
    for row in rows:
        grouped[row.stream_id].append(_recorded(row))
    return grouped


def rebuild(session: Session) -> int:
    """Empty ``products`` and ``orders`` and replay every product and order event into them,
    in one transaction (writers wait: the event table is locked first). Returns the number of
    events replayed; the caller commits."""
    session.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
    session.execute(text("LOCK TABLE products, orders IN EXCLUSIVE MODE"))
    session.execute(delete(tables.orders))
    session.execute(delete(tables.products))
    replayed = 0
    for stream_type in (PRODUCT_STREAM, ORDER_STREAM):
        ids = _stream_ids(session, stream_type)
        for start in range(0, len(ids), BATCH):
            for stream_id, events in _events(session, ids[start : start + BATCH]).items():
                replayed += len(events)
                if stream_type == PRODUCT_STREAM:
                    product = Product.from_events(stream_id.removeprefix("product:"), events)
                    upsert_product(session, product, events[0].occurred_at, events[-1].occurred_at)
                else:
                    order = Order.from_events(stream_id, events)
                    upsert_order(session, order, events[0].occurred_at, events[-1])
    return replayed


def main() -> int:
    from shared.config import settings
    from shared.db import create_service_engine

    engine = create_service_engine(settings().service_url("orders"), schema="orders", pool_size=1)
    try:
        with Session(engine) as session:
            replayed = rebuild(session)
            session.commit()
    finally:
        engine.dispose()
    print(f"orders read models rebuilt from {replayed} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
