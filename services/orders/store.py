"""Loading and saving the catalogue and orders: append the events (personal fields sealed under
the customer's key) and write the read models in the same transaction (DESIGN §2).

The caller commits. An append whose stream moved since it was loaded raises
``ConcurrencyError`` (409, or 412 when the client sent ``If-Match``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.orders.domain import Change, Order, Product
from services.orders.events import (
    ORDER_STREAM,
    PRODUCT_STREAM,
    SEALED_FIELDS,
    product_stream_id,
    registry,
)
from services.orders.projections import upsert_order, upsert_product
from shared.errors import NotFound
from shared.events import RecordedEvent
from shared.eventstore import EventStore
from shared.sealing import Vault


def order_not_found(order_id: str) -> NotFound:
    return NotFound("order not found", {"resource_type": "order", "resource_id": order_id})


def product_not_found(product_id: str) -> NotFound:
    return NotFound("product not found", {"resource_type": "product", "resource_id": product_id})


class Projected(NamedTuple):
    """What this transaction wrote to an order's read-model row beyond the order's state."""

    updated_at: datetime
    last_position: int


class Store:
    def __init__(self, session: Session, metadata: dict[str, Any] | None = None):
        self.session = session
        self.metadata = metadata or {}
        self.events = EventStore(session)
        self.vault = Vault(session)
        #: Orders saved through this store: the answer to the command is built from them
        #: without reading the row back.
        self.projected: dict[str, Projected] = {}

    def _append(
        self, stream_type: str, stream_id: str, changes: Sequence[Change], expected: int
    ) -> list[RecordedEvent]:
        new = []
        for event_type, payload in changes:
            if event_type.startswith("order."):
                subject = str(payload["customer_id"])
                payload = self.vault.seal_fields(subject, dict(payload), SEALED_FIELDS)
            new.append(registry.new_event(event_type, payload))
        return self.events.append(stream_type, stream_id, new, expected, self.metadata)

    # -- products ----------------------------------------------------------------------------

    def load_product(self, product_id: str) -> Product:
        product = Product.from_events(
            product_id, self.events.load_stream(product_stream_id(product_id))
        )
        if product.version == 0:
            raise product_not_found(product_id)
        return product

    def save_product(self, product: Product, changes: Sequence[Change]) -> list[RecordedEvent]:
        recorded = self._append(
            PRODUCT_STREAM, product_stream_id(product.id), changes, product.version
        )
        for event in recorded:
            product.apply(event.type, event.payload)
        if recorded:
            upsert_product(self.session, product, recorded[0].occurred_at, recorded[-1].occurred_at)
        return recorded

    # -- orders ------------------------------------------------------------------------------

    def load_order(self, order_id: str, lock: bool = False) -> Order:
        if lock:  # serialise commands on one order (consumers retry less)
            self.session.execute(
                text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id}
            )
        order = Order.from_events(order_id, self.events.load_stream(order_id))
        if not order.exists:
            raise order_not_found(order_id)
        return order

    def next_number(self) -> str:
        value = self.session.execute(text("SELECT nextval('order_number_seq')")).scalar_one()
        return f"SO{value:08d}"

    def save_order(self, order: Order, changes: Sequence[Change]) -> list[RecordedEvent]:
        recorded = self._append(ORDER_STREAM, order.id, changes, order.version)
        for event in recorded:
            order.apply(event.type, event.payload)  # sealed values stay sealed in the state
        if recorded:
            self._project(order, recorded[-1])
        return recorded

    def _project(self, order: Order, last: RecordedEvent) -> None:
        """The order's read-model row (``created_at`` is kept from the first write)."""
        upsert_order(self.session, order, last.occurred_at, last)
        self.projected[order.id] = Projected(last.occurred_at, last.global_position)
