"""What the orders service answers to reads: products, orders (one, a filtered page, its
history), and the changes feed behind the live status of the UI."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import eventlet
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from services.orders import access, tables
from services.orders.domain import STATUS_OF_EVENT, Order
from services.orders.projections import parse_time
from services.orders.store import Store, product_not_found
from shared.cursors import decode_cursor, encode_cursor
from shared.events import isoformat
from shared.sealing import Vault

MAX_WAIT = 4.0  # the gateway's RPC deadline is 5 s: a long poll ends before it
POLL_INTERVAL = 0.25


def _iso(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def _uuid_text(value: Any) -> str:
    return str(uuid.UUID(str(value)))


# -- products -----------------------------------------------------------------------------------


def product_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "sku": row.sku,
        "name": row.name,
        "category": row.category,
        "brand": row.brand,
        "price": int(row.price),
        "currency": row.currency,
        "active": row.active,
        "version": row.version,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def get_product(session: Session, product_id: str) -> dict[str, Any]:
    row = session.execute(select(tables.products).where(tables.products.c.id == product_id)).first()
    if row is None:
        raise product_not_found(product_id)
    return product_json(row)


def list_products(
    session: Session,
    q: str | None = None,
    category: str | None = None,
    brand: str | None = None,
    active: bool | None = None,
    currency: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    p = tables.products
    query = select(p)
    if q:
        pattern = (
            "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(
            or_(func.lower(p.c.name).like(pattern), func.lower(p.c.sku).like(pattern))
        )
    if category:
        query = query.where(p.c.category == category)
    if brand:
        query = query.where(p.c.brand == brand)
    if active is not None:
        query = query.where(p.c.active == active)
    if currency:
        query = query.where(p.c.currency == currency)
    if cursor:
        name, last_id = decode_cursor(cursor, (str, _uuid_text))
        query = query.where(
            or_(func.lower(p.c.name) > name, and_(func.lower(p.c.name) == name, p.c.id > last_id))
        )
    rows = session.execute(query.order_by(func.lower(p.c.name), p.c.id).limit(limit + 1)).all()
    items = [product_json(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.name.lower(), str(last.id))
    return {"items": items, "next_cursor": next_cursor}


# -- orders -------------------------------------------------------------------------------------


def _personal_hidden(viewer: Mapping[str, Any] | None) -> bool:
    """Analysts (like for customers' contact details) and callers without a viewer (other
    services) do not get delivery addresses and notes."""
    return viewer is None or access.role(viewer) == "analyst"


def order_json(
    order: Order, vault: Vault | None, viewer: Mapping[str, Any] | None, row: Any = None
) -> dict[str, Any]:
    hidden = _personal_hidden(viewer)
    body = {
        "id": order.id,
        "order_id": order.id,
        "number": order.number,
        "customer_id": order.customer_id,
        "currency": order.currency,
        "status": order.status,
        "lines": order.lines,
        "subtotal": order.subtotal,
        "order_discount": order.order_discount,
        "tax_rate": order.tax_rate,
        "tax": order.tax,
        "total": order.total,
        "paid_amount": order.paid_amount,
        "balance": order.total - order.paid_amount,
        "placed_at": order.placed_at,
        "source": order.source,
        "external_id": order.external_id,
        "delivery_address": None
        if hidden or vault is None
        else vault.unseal(order.delivery_address),
        "notes": None if hidden or vault is None else vault.unseal(order.notes),
        "personal_hidden": hidden,
        "editable": order.allows("change_lines"),
        "actions": [
            action
            for action in order.available_actions()
            if access.may_act(viewer, action, order.paid_amount)
        ],
        "version": order.version,
    }
    if row is not None:
        body["updated_at"] = _iso(row.updated_at)
        body["last_position"] = row.last_position
    return body


def get_order(store: Store, viewer: Mapping[str, Any] | None, order: Order) -> dict[str, Any]:
    """The order as the API shows it; the row's time and position come from the store when it
    wrote them in this transaction (a command's answer), else from the read model."""
    row = (
        store.projected.get(order.id)
        or store.session.execute(
            select(tables.orders.c.updated_at, tables.orders.c.last_position).where(
                tables.orders.c.id == order.id
            )
        ).first()
    )
    return order_json(order, store.vault, viewer, row)


def summary_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "number": row.number,
        "customer_id": str(row.customer_id),
        "currency": row.currency,
        "status": row.status,
        "total": int(row.total),
        "paid_amount": int(row.paid_amount),
        "line_count": len(row.lines),
        "skus": [line.get("sku") for line in row.lines if line.get("sku")],
        "products": [line.get("name") for line in row.lines if line.get("name")],
        "source": row.source,
        "external_id": row.external_id,
        "placed_at": _iso(row.placed_at),
        "updated_at": _iso(row.updated_at),
        "version": row.version,
    }


def list_orders(
    session: Session,
    viewer: Mapping[str, Any],
    customer_id: str | None = None,
    status: list[str] | None = None,
    id: list[str] | None = None,
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
    total_min: int | None = None,
    total_max: int | None = None,
    currency: str | None = None,
    product_id: str | None = None,
    q: str | None = None,
    sort: str = "-placed_at",
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Newest placed first (or by ``sort``: ``[-]placed_at``, ``[-]total``); keyset
    pagination on ``(sort column, id)``, so pages never repeat or skip."""
    o = tables.orders
    query = select(o)
    if access.role(viewer) == "sales":
        c = tables.customers
        query = query.join(c, c.c.id == o.c.customer_id).where(c.c.owner_id == viewer.get("id"))
    if customer_id:
        query = query.where(o.c.customer_id == customer_id)
    if status:
        query = query.where(o.c.status.in_(status))
    if id:
        query = query.where(o.c.id.in_(id))
    if placed_from:
        query = query.where(o.c.placed_at >= placed_from)
    if placed_to:
        query = query.where(o.c.placed_at < placed_to)
    if total_min is not None:
        query = query.where(o.c.total >= total_min)
    if total_max is not None:
        query = query.where(o.c.total <= total_max)
    if currency:
        query = query.where(o.c.currency == currency)
    if product_id:
        query = query.where(o.c.product_ids.contains([product_id]))
    if q:
        query = query.where(or_(o.c.number == q.strip().upper(), o.c.external_id == q.strip()))
    column = o.c.total if sort.lstrip("-") == "total" else o.c.placed_at
    descending = sort.startswith("-")
    if cursor:
        value_parser = int if column is o.c.total else (lambda value: parse_time(str(value)))
        value, last_id = decode_cursor(cursor, (value_parser, _uuid_text))
        if descending:
            after = or_(column < value, and_(column == value, o.c.id < last_id))
        else:
            after = or_(column > value, and_(column == value, o.c.id > last_id))
        query = query.where(after)
    order = (column.desc(), o.c.id.desc()) if descending else (column.asc(), o.c.id.asc())
    rows = session.execute(query.order_by(*order).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        value = int(last.total) if column is o.c.total else last.placed_at.isoformat()
        next_cursor = encode_cursor(value, str(last.id))
    return {"items": [summary_json(row) for row in rows[:limit]], "next_cursor": next_cursor}


def history(store: Store, order_id: str) -> list[dict[str, Any]]:
    """The order's status history and every other change, from its events."""
    entries = []
    order = Order(order_id)
    for event in store.events.load_stream(order_id):
        before = order.status
        order.apply(event.type, event.payload)
        payload = event.payload
        entry = {
            "position": event.global_position,
            "version": event.stream_version,
            "type": event.type,
            "status": order.status,
            "previous_status": None if before == "new" else before,
            "status_changed": order.status != before,
            "occurred_at": isoformat(event.occurred_at),
            "actor_id": event.metadata.get("actor_id"),
        }
        for name in ("placed_at", "reason", "kind", "amount", "paid_amount", "total", "payment_id"):
            if name in payload:
                entry[name] = payload[name]
        entries.append(entry)
    return entries


# -- changes feed -------------------------------------------------------------------------------

_CHANGES = """
    SELECT e.global_position AS position, e.stream_id AS order_id, e.event_type AS type,
           e.occurred_at, o.status, o.version, o.paid_amount, o.total, o.customer_id
    FROM events e
    JOIN orders o ON o.id = CAST(e.stream_id AS uuid)
    {join}
    WHERE e.stream_type = 'order' AND e.global_position > :after
      AND e.global_position <= :upto {where}
    ORDER BY e.global_position
    LIMIT :limit
"""


def last_order_position(session: Session) -> int:
    return session.execute(
        text("SELECT coalesce(max(global_position), 0) FROM events WHERE stream_type = 'order'")
    ).scalar_one()


def changes(
    session: Session,
    viewer: Mapping[str, Any],
    after: int | None = None,
    wait: float = 0.0,
    order_id: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Order events after ``after`` (a position of this feed) with each order's current
    status; waits up to ``wait`` seconds (at most :data:`MAX_WAIT`) for the first one.
    Without ``after``: no items, and the position to start from."""
    if after is None:
        position = last_order_position(session)
        session.rollback()
        return {"items": [], "last_position": position}
    join, where, params = "", "", {"after": after, "limit": limit}
    if access.role(viewer) == "sales":
        join = "JOIN customers c ON c.id = o.customer_id"
        where += " AND c.owner_id = :owner"
        params["owner"] = viewer.get("id")
    if order_id:
        where += " AND e.stream_id = :order_id"
        params["order_id"] = order_id
    statement = text(_CHANGES.format(join=join, where=where))
    deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT))
    while True:
        scanned = last_order_position(session)  # first: nothing below it is missed
        rows = session.execute(statement, {**params, "upto": scanned}).all()
        session.rollback()
        if rows or time.monotonic() >= deadline:
            break
        eventlet.sleep(POLL_INTERVAL)
    items = [
        {
            "position": row.position,
            "order_id": row.order_id,
            "type": row.type,
            "status": row.status,
            "status_changed": row.type in STATUS_OF_EVENT,
            "version": row.version,
            "paid_amount": int(row.paid_amount),
            "total": int(row.total),
            "occurred_at": _iso(row.occurred_at),
        }
        for row in rows
    ]
    last = items[-1]["position"] if len(items) == limit else max(after, scanned)
    return {"items": items, "last_position": last}
