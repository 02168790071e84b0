"""The orders service's event catalogue (docs/service-contracts.md): one marshmallow schema per
event type and schema version.

Streams:
- ``product`` / ``product:<product id>``: one catalogue entry.
- ``order`` / ``<order id>``: one order.

Every ``order.*`` payload carries ``customer_id`` and ``currency``. Personal data (the
delivery address and the notes) is in the log only sealed under the customer's key in this
service's own ``subject_keys`` (``shared.sealing``); ``customer.erased`` destroys that key.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events import EventRegistry
from shared.sealing import SealedField

registry = EventRegistry("orders")

PRODUCT_STREAM = "product"
ORDER_STREAM = "order"

#: Fields of order events sealed under the customer's key.
SEALED_FIELDS = ("delivery_address", "notes")

CURRENCY = validate.Regexp(r"^[A-Z]{3}$")
MONEY = {"strict": True, "required": True}


def product_stream_id(product_id: str) -> str:
    return f"product:{product_id}"


# -- products -----------------------------------------------------------------------------------


@registry.register("product.created", 1, "A product entered the catalogue.")
class ProductCreatedV1(Schema):
    product_id = fields.UUID(required=True)
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True)
    category = fields.String(required=True, allow_none=True)
    brand = fields.String(required=True, allow_none=True)
    price = fields.Integer(validate=validate.Range(min=0), **MONEY)
    currency = fields.String(required=True, validate=CURRENCY)
    active = fields.Boolean(required=True)


class ProductChangesV1(Schema):
    name = fields.String()
    category = fields.String(allow_none=True)
    brand = fields.String(allow_none=True)
    active = fields.Boolean()


@registry.register("product.updated", 1, "Product fields changed (only the changed ones).")
class ProductUpdatedV1(Schema):
    product_id = fields.UUID(required=True)
    changes = fields.Nested(ProductChangesV1, required=True)


@registry.register(
    "product.price_changed",
    1,
    "The list price changed. Orders keep the unit price captured when they were placed.",
)
class ProductPriceChangedV1(Schema):
    product_id = fields.UUID(required=True)
    old_price = fields.Integer(validate=validate.Range(min=0), **MONEY)
    new_price = fields.Integer(validate=validate.Range(min=0), **MONEY)
    currency = fields.String(required=True, validate=CURRENCY)


# -- orders -------------------------------------------------------------------------------------


class _OrderEvent(Schema):
    order_id = fields.UUID(required=True)
    customer_id = fields.UUID(required=True)
    currency = fields.String(required=True, validate=CURRENCY)


class LineV1(Schema):
    line_id = fields.String(required=True)
    product_id = fields.UUID(required=True, allow_none=True)
    sku = fields.String(required=True, allow_none=True)
    name = fields.String(required=True)
    category = fields.String(required=True, allow_none=True)
    brand = fields.String(required=True, allow_none=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    unit_price = fields.Integer(validate=validate.Range(min=0), **MONEY)
    line_discount = fields.Integer(validate=validate.Range(min=0), **MONEY)
    line_total = fields.Integer(validate=validate.Range(min=0), **MONEY)


class _Totals(_OrderEvent):
    lines = fields.List(fields.Nested(LineV1), required=True, validate=validate.Length(min=1))
    subtotal = fields.Integer(**MONEY)
    order_discount = fields.Integer(validate=validate.Range(min=0), **MONEY)
    tax_rate = fields.Integer(
        strict=True,
        load_default=0,
        validate=validate.Range(min=0, max=10000),
        metadata={"description": "tax rate in basis points (1300 = 13 %); additive in v1"},
    )
    tax = fields.Integer(**MONEY)
    total = fields.Integer(**MONEY)


@registry.register(
    "order.placed",
    1,
    "An order was placed (``source`` api) or imported (``source`` import, with its original "
    "``placed_at`` and ``external_id``).",
)
class OrderPlacedV1(_Totals):
    number = fields.String(required=True)
    placed_at = fields.String(required=True)
    source = fields.String(required=True, validate=validate.OneOf(["api", "import"]))
    external_id = fields.String(required=True, allow_none=True)
    delivery_address = SealedField(required=True, allow_none=True)
    notes = SealedField(required=True, allow_none=True)


@registry.register("order.lines_changed", 1, "The lines (and so the totals) were edited.")
class OrderLinesChangedV1(_Totals):
    pass


@registry.register("order.address_changed", 1, "The delivery address was edited.")
class OrderAddressChangedV1(_OrderEvent):
    delivery_address = SealedField(required=True, allow_none=True)


@registry.register(
    "order.payment_applied",
    1,
    "A captured payment or a refund counted against the order. ``refund_id`` (additive) names "
    "the refund for kind refund; ``status`` (additive) is the order's status once it is "
    "counted: a refund that brings a paid order back to nothing makes it ``placed`` with no "
    "status event of its own.",
)
class OrderPaymentAppliedV1(_OrderEvent):
    payment_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["capture", "refund"]))
    amount = fields.Integer(validate=validate.Range(min=0), **MONEY)
    paid_amount = fields.Integer(**MONEY)
    total = fields.Integer(**MONEY)
    refund_id = fields.String(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True)


@registry.register("order.partially_paid", 1, "Some, not all, of the total is paid.")
class OrderPartiallyPaidV1(_OrderEvent):
    paid_amount = fields.Integer(**MONEY)
    total = fields.Integer(**MONEY)


@registry.register("order.paid", 1, "Captured minus refunded covers the total.")
class OrderPaidV1(_OrderEvent):
    paid_amount = fields.Integer(**MONEY)
    total = fields.Integer(**MONEY)


@registry.register("order.fulfilled", 1, "The order was shipped / handed over.")
class OrderFulfilledV1(_OrderEvent):
    pass


@registry.register("order.completed", 1, "The order is closed.")
class OrderCompletedV1(_OrderEvent):
    pass


@registry.register("order.cancelled", 1, "Cancelled before fulfilment.")
class OrderCancelledV1(_OrderEvent):
    reason = fields.String(required=True, allow_none=True)


@registry.register("order.returned", 1, "Returned after fulfilment.")
class OrderReturnedV1(_OrderEvent):
    reason = fields.String(required=True, allow_none=True)


ORDER_EVENTS = frozenset(key[0] for key in registry if key[0].startswith("order."))
PRODUCT_EVENTS = frozenset(key[0] for key in registry if key[0].startswith("product."))
