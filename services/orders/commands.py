"""The orders service's command layer: each function runs one command in the caller's session
(load, decide with the domain, append + project through :class:`Store`); the caller commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.orders import access, replica, tables
from services.orders.domain import Order, Product, Totals, price_lines
from services.orders.store import Store, order_not_found
from shared.errors import BadRequest, Conflict, NotFound, PreconditionFailed, RuleViolation
from shared.events import isoformat, utcnow

log = logging.getLogger(__name__)


class CustomerNotKnownYet(Exception):
    """The replica does not know the customer as active (registered a moment ago, its event
    not here yet). Raised inside a command: the service catches up outside the command's
    transaction, since a catch-up commits pages of its own, which inside the command would
    end the transaction and its idempotency key with it, and then runs the command again."""


def check_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailed(
            "the record changed since you read it; reload and try again",
            {"expected_version": expected, "actual_version": current},
        )


# -- catalogue ----------------------------------------------------------------------------------


def _sku_taken(session: Session, sku: str, except_id: str | None = None) -> bool:
    query = select(tables.products.c.id).where(tables.products.c.sku == sku)
    if except_id:
        query = query.where(tables.products.c.id != except_id)
    return session.execute(query).first() is not None


def create_product(store: Store, data: Mapping[str, Any]) -> str:
    session = store.session
    session.execute(
        text("SELECT pg_advisory_xact_lock(7331, hashtext(:sku))"), {"sku": data["sku"]}
    )
    if _sku_taken(session, data["sku"]):
        raise Conflict(
            "a product with this SKU exists",
            {"code": "duplicate_sku", "errors": {"sku": ["Already in use."]}},
        )
    product_id = str(uuid.uuid4())
    product = Product(product_id)
    store.save_product(product, Product.create(product_id, data))
    return product_id


def update_product(
    store: Store, product_id: str, changes: Mapping[str, Any], expected_version: int | None
) -> None:
    product = store.load_product(product_id)
    check_version(product.version, expected_version)
    store.save_product(product, product.update(changes))


# -- pricing lines from the catalogue ----------------------------------------------------------


def priced_from_catalogue(
    session: Session,
    lines: Sequence[Mapping[str, Any]],
    currency: str | None,
    order_discount: int,
    tax_rate: int,
) -> tuple[Totals, str]:
    """Lines ``{product_id, quantity, line_discount}`` priced at the catalogue's current price
    (captured into the order: later price changes never alter it)."""
    ids = [str(line["product_id"]) for line in lines]
    rows = {
        str(row.id): row
        for row in session.execute(
            select(tables.products).where(tables.products.c.id.in_(ids))
        ).all()
    }
    errors: dict[str, list[str]] = {}
    priced = []
    for index, line in enumerate(lines):
        row = rows.get(str(line["product_id"]))
        if row is None:
            errors[f"lines.{index}.product_id"] = ["No such product."]
            continue
        if not row.active:
            errors[f"lines.{index}.product_id"] = ["This product is not on sale."]
            continue
        currency = currency or row.currency
        if row.currency != currency:
            errors[f"lines.{index}.product_id"] = [f"Priced in {row.currency}, not {currency}."]
            continue
        priced.append(
            {
                "line_id": str(line.get("line_id") or uuid.uuid4()),
                "product_id": str(row.id),
                "sku": row.sku,
                "name": row.name,
                "category": row.category,
                "brand": row.brand,
                "quantity": line["quantity"],
                "unit_price": int(row.price),
                "line_discount": line.get("line_discount") or 0,
            }
        )
    if errors:
        raise BadRequest.for_fields(errors)
    return price_lines(priced, order_discount, tax_rate), str(currency)


# -- customers ----------------------------------------------------------------------------------


def customer_for_order(
    session: Session, viewer: Mapping[str, Any], customer_id: str, may_catch_up: bool
) -> Any:
    """The replica's row of an active customer the viewer may act for. A customer not in the
    replica as active raises :class:`CustomerNotKnownYet` when ``may_catch_up``: the answer
    is no only after one catch-up through the customers service's ``read_events``."""
    row = replica.lookup(session, customer_id)
    if (row is None or row.status != "active") and may_catch_up:
        raise CustomerNotKnownYet(customer_id)
    if row is None or not access.sees(viewer, row.owner_id):
        raise NotFound(
            "customer not found", {"resource_type": "customer", "resource_id": customer_id}
        )
    if row.status != "active":
        raise RuleViolation(
            f"orders can be placed only for active customers; this one is {row.status}",
            {"code": "customer_not_active", "state": row.status, "customer_id": customer_id},
        )
    return row


def order_owner(session: Session, customer_id: str) -> str | None:
    row = replica.lookup(session, customer_id)
    return row.owner_id if row is not None else None


def is_order_id(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def visible_order(
    store: Store, viewer: Mapping[str, Any], order_id: str, lock: bool = False
) -> Order:
    """The order if ``viewer`` may see it. ``lock``: for a command, its row is locked first,
    before the append locks the event log, in the order the payment consumer takes the two
    (the other order deadlocked a cancel against a capture)."""
    if not is_order_id(order_id):
        raise order_not_found(order_id)
    order = store.load_order(order_id, lock=lock)
    if not access.sees(viewer, order_owner(store.session, order.customer_id)):
        raise order_not_found(order_id)
    return order


# -- orders -------------------------------------------------------------------------------------


def place_order(
    store: Store, viewer: Mapping[str, Any], data: Mapping[str, Any], may_catch_up: bool
) -> Order:
    """Place an order; returns it as saved (the caller answers from it without reading it
    back)."""
    access.require_writer(viewer)
    session = store.session
    customer_id = str(data["customer_id"])
    customer_for_order(session, viewer, customer_id, may_catch_up)
    totals, currency = priced_from_catalogue(
        session,
        data["lines"],
        data.get("currency"),
        data.get("order_discount", 0),
        data.get("tax_rate", 0),
    )
    order_id = str(uuid.uuid4())
    order = Order(order_id)
    changes = Order.place(
        order_id,
        store.next_number(),
        customer_id,
        currency,
        totals,
        isoformat(utcnow()),
        delivery_address=data.get("delivery_address"),
        notes=data.get("notes"),
    )
    store.save_order(order, changes)
    return order


def change_lines(
    store: Store,
    viewer: Mapping[str, Any],
    order_id: str,
    data: Mapping[str, Any],
    expected_version: int | None,
    balance: Mapping[str, Any] | None = None,
) -> None:
    """``balance``: the order's balance at the payments service. A payment under way there
    (``pending_amount``) would settle against a total that changed under it: edited down, the
    order ended paid with more money than it costs (a new-user trial's ¥397), so lines
    change only when no payment is open or was ever made."""
    access.require_writer(viewer)
    order = visible_order(store, viewer, order_id, lock=True)
    check_version(order.version, expected_version)
    order.require("change_lines")
    balance = balance or {}
    if int(balance.get("pending_amount") or 0) > 0 or int(balance.get("paid_amount") or 0) > 0:
        raise RuleViolation(
            "an order can be edited only before any payment, and one is under way; wait for "
            "it to settle or cancel it first",
            {"code": "payment_in_progress", "action": "change_lines", "state": order.status},
        )
    totals, _ = priced_from_catalogue(
        store.session,
        data["lines"],
        order.currency,
        data.get("order_discount", order.order_discount),
        data.get("tax_rate", order.tax_rate),
    )
    store.save_order(order, order.change_lines(totals))


def change_address(
    store: Store,
    viewer: Mapping[str, Any],
    order_id: str,
    address: Any,
    expected_version: int | None,
) -> None:
    access.require_writer(viewer)
    order = visible_order(store, viewer, order_id, lock=True)
    check_version(order.version, expected_version)
    store.save_order(order, order.change_address(address))


def act(
    store: Store,
    viewer: Mapping[str, Any],
    order_id: str,
    action: str,
    reason: str | None,
    expected_version: int | None,
    paid_elsewhere: int = 0,
) -> None:
    """``paid_elsewhere``: what the payments service holds as paid on the order, where the
    caller asked (it is ahead of ``order.paid_amount`` until its events arrive here)."""
    access.require_writer(viewer)
    order = visible_order(store, viewer, order_id, lock=True)
    access.require_may_act(viewer, action, max(order.paid_amount, paid_elsewhere))
    check_version(order.version, expected_version)
    store.save_order(order, order.act(action, reason))


# -- payments' events ---------------------------------------------------------------------------

PAYMENT_EVENTS = ("payment.captured", "payment.refunded")


def apply_payment_event(store: Store, envelope: Mapping[str, Any]) -> None:
    """``payment.captured`` / ``payment.refunded`` → ``order.payment_applied`` (+ ``order.paid``
    / ``order.partially_paid``). An order this service does not know, or a currency that is not
    the order's, is logged and left alone (nothing here could make it right)."""
    payload = envelope["payload"]
    order_id = str(payload["order_id"])
    try:
        order = store.load_order(order_id, lock=True)
    except NotFound:
        log.warning("%s for unknown order %s ignored", envelope["type"], order_id)
        return
    if payload.get("currency") and payload["currency"] != order.currency:
        log.warning(
            "%s in %s for order %s in %s ignored",
            envelope["type"],
            payload["currency"],
            order_id,
            order.currency,
        )
        return
    if envelope["type"] == "payment.captured":
        changes = order.apply_payment(str(payload["payment_id"]), "capture", int(payload["amount"]))
    else:
        changes = order.apply_payment(
            str(payload["payment_id"]),
            "refund",
            int(payload["amount"]),
            refund_id=str(payload.get("refund_id") or envelope["event_id"]),
        )
    store.save_order(order, changes)
