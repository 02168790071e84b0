"""marshmallow schemas of the product, order and order-import operations. The gateway checks
shape, types and bounds and refuses unknown fields; the orders service checks the rest (the
products exist, are on sale and share the order's currency; discounts fit; the workflow)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas import MAX_IDS, TIMESTAMP, IdList
from shared.currencies import CurrencyCode

MINOR = {"description": "integer minor units (1999 = 19.99)"}
MONEY = validate.Range(min=0, max=10**13)
CURRENCY = CurrencyCode()
STATUSES = ["placed", "partially_paid", "paid", "fulfilled", "completed", "cancelled", "returned"]


def _text(maximum: int, **kwargs):
    return fields.String(validate=validate.Length(max=maximum), **kwargs)


# -- products -----------------------------------------------------------------------------------


class ProductCreate(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    category = _text(100, allow_none=True)
    brand = _text(100, allow_none=True)
    price = fields.Integer(required=True, strict=True, validate=MONEY, metadata=MINOR)
    currency = fields.String(required=True, validate=CURRENCY)
    active = fields.Boolean()


class ProductChanges(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    category = _text(100, allow_none=True)
    brand = _text(100, allow_none=True)
    price = fields.Integer(strict=True, validate=MONEY, metadata=MINOR)
    active = fields.Boolean()

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one field.", "_schema")


class Product(Schema):
    id = fields.String()
    sku = fields.String()
    name = fields.String()
    category = fields.String(allow_none=True)
    brand = fields.String(allow_none=True)
    price = fields.Integer(metadata=MINOR)
    currency = fields.String()
    active = fields.Boolean()
    version = fields.Integer()
    created_at = fields.String(metadata=TIMESTAMP)
    updated_at = fields.String(metadata=TIMESTAMP)


class ProductPage(Schema):
    items = fields.List(fields.Nested(Product))
    next_cursor = fields.String(allow_none=True)


class ProductQuery(Schema):
    q = _text(100)
    category = _text(100)
    brand = _text(100)
    active = fields.Boolean()
    currency = fields.String(validate=CURRENCY)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = _text(500)


# -- orders -------------------------------------------------------------------------------------


class OrderLineInput(Schema):
    product_id = fields.UUID(required=True)
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=1_000_000)
    )
    line_discount = fields.Integer(strict=True, validate=MONEY, metadata=MINOR)


class DeliveryAddress(Schema):
    recipient = _text(100, allow_none=True)
    phone = _text(40, allow_none=True)
    country = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))
    region = _text(100, allow_none=True)
    city = _text(100, allow_none=True)
    district = _text(100, allow_none=True)
    street = _text(200, allow_none=True)
    postal_code = _text(20, allow_none=True)


class _Pricing(Schema):
    lines = fields.List(
        fields.Nested(OrderLineInput), required=True, validate=validate.Length(min=1, max=200)
    )
    order_discount = fields.Integer(strict=True, validate=MONEY, metadata=MINOR)
    tax_rate = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=10000),
        metadata={"description": "basis points: 1300 = 13 %"},
    )


class OrderCreate(_Pricing):
    customer_id = fields.UUID(required=True)
    currency = fields.String(validate=CURRENCY)
    delivery_address = fields.Nested(DeliveryAddress, allow_none=True)
    notes = _text(2000, allow_none=True)


class OrderChanges(Schema):
    """PATCH: new lines (with discount and tax rate) and/or a new delivery address."""

    lines = fields.List(fields.Nested(OrderLineInput), validate=validate.Length(min=1, max=200))
    order_discount = fields.Integer(strict=True, validate=MONEY, metadata=MINOR)
    tax_rate = fields.Integer(strict=True, validate=validate.Range(min=0, max=10000))
    delivery_address = fields.Nested(DeliveryAddress, allow_none=True)

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one field.", "_schema")
        if ("order_discount" in data or "tax_rate" in data) and "lines" not in data:
            raise ValidationError("Send the lines with the discount or tax rate.", "lines")


class OrderActionBody(Schema):
    reason = _text(500, allow_none=True)


class OrderLine(Schema):
    line_id = fields.String()
    product_id = fields.String(allow_none=True)
    sku = fields.String(allow_none=True)
    name = fields.String()
    category = fields.String(allow_none=True)
    brand = fields.String(allow_none=True)
    quantity = fields.Integer()
    unit_price = fields.Integer(metadata=MINOR)
    line_discount = fields.Integer(metadata=MINOR)
    line_total = fields.Integer(metadata=MINOR)


class Order(Schema):
    id = fields.String()
    order_id = fields.String()
    number = fields.String()
    customer_id = fields.String()
    currency = fields.String()
    status = fields.String(metadata={"enum": STATUSES})
    lines = fields.List(fields.Nested(OrderLine))
    subtotal = fields.Integer(metadata=MINOR)
    order_discount = fields.Integer(metadata=MINOR)
    tax_rate = fields.Integer()
    tax = fields.Integer(metadata=MINOR)
    total = fields.Integer(metadata=MINOR)
    paid_amount = fields.Integer(metadata=MINOR)
    balance = fields.Integer(metadata=MINOR)
    placed_at = fields.String(metadata=TIMESTAMP)
    updated_at = fields.String(metadata=TIMESTAMP)
    source = fields.String()
    external_id = fields.String(allow_none=True)
    delivery_address = fields.Nested(DeliveryAddress, allow_none=True)
    notes = fields.String(allow_none=True)
    personal_hidden = fields.Boolean()
    editable = fields.Boolean()
    actions = fields.List(fields.String())
    version = fields.Integer()
    last_position = fields.Integer()


class OrderSummary(Schema):
    id = fields.String()
    number = fields.String()
    customer_id = fields.String()
    currency = fields.String()
    status = fields.String()
    total = fields.Integer(metadata=MINOR)
    paid_amount = fields.Integer(metadata=MINOR)
    line_count = fields.Integer()
    skus = fields.List(fields.String())
    products = fields.List(fields.String(), metadata={"description": "the lines' product names"})
    source = fields.String()
    external_id = fields.String(allow_none=True)
    placed_at = fields.String(metadata=TIMESTAMP)
    updated_at = fields.String(metadata=TIMESTAMP)
    version = fields.Integer()


class OrderPage(Schema):
    items = fields.List(fields.Nested(OrderSummary))
    next_cursor = fields.String(allow_none=True)


class StatusList(fields.String):
    """``status=paid,fulfilled``: one or more statuses, comma-separated."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        values = [part.strip() for part in text.split(",") if part.strip()]
        wrong = [v for v in values if v not in STATUSES]
        if wrong or not values:
            raise ValidationError(f"Must be one of: {', '.join(STATUSES)}.")
        return values


class OrderQuery(Schema):
    customer_id = fields.UUID()
    status = StatusList(metadata={"description": "comma-separated statuses"})
    id = IdList("order", metadata={"description": f"comma-separated order ids (at most {MAX_IDS})"})
    placed_from = fields.AwareDateTime()
    placed_to = fields.AwareDateTime()
    total_min = fields.Integer(validate=MONEY, metadata=MINOR)
    total_max = fields.Integer(validate=MONEY, metadata=MINOR)
    currency = fields.String(validate=CURRENCY)
    product_id = fields.UUID()
    q = _text(100, metadata={"description": "an order number or external id"})
    sort = fields.String(
        load_default="-placed_at",
        validate=validate.OneOf(["-placed_at", "placed_at", "-total", "total"]),
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = _text(500)


class OrderHistoryEntry(Schema):
    position = fields.Integer()
    version = fields.Integer()
    type = fields.String()
    status = fields.String()
    previous_status = fields.String(allow_none=True)
    status_changed = fields.Boolean()
    occurred_at = fields.String(metadata=TIMESTAMP)
    actor_id = fields.String(allow_none=True)
    placed_at = fields.String(metadata=TIMESTAMP)
    reason = fields.String(allow_none=True)
    kind = fields.String()
    amount = fields.Integer(metadata=MINOR)
    paid_amount = fields.Integer(metadata=MINOR)
    total = fields.Integer(metadata=MINOR)
    payment_id = fields.String()


class OrderHistory(Schema):
    items = fields.List(fields.Nested(OrderHistoryEntry))


class OrderChangesQuery(Schema):
    after = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "the last_position of the previous answer; absent: start now"},
    )
    wait = fields.Float(
        load_default=0,
        validate=validate.Range(min=0, max=4),
        metadata={"description": "seconds to wait for a change (long poll), at most 4"},
    )
    order_id = fields.UUID()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class OrderChange(Schema):
    position = fields.Integer()
    order_id = fields.String()
    type = fields.String()
    status = fields.String()
    status_changed = fields.Boolean()
    version = fields.Integer()
    paid_amount = fields.Integer(metadata=MINOR)
    total = fields.Integer(metadata=MINOR)
    occurred_at = fields.String(metadata=TIMESTAMP)


class OrderChangeFeed(Schema):
    items = fields.List(fields.Nested(OrderChange))
    last_position = fields.Integer()


# -- imports ------------------------------------------------------------------------------------


class OrderImportQuery(Schema):
    filename = _text(200, load_default="orders.csv")


class OrderImportRejection(Schema):
    row = fields.Integer()
    reasons = fields.Dict(keys=fields.String(), values=fields.Raw())


class OrderImport(Schema):
    id = fields.String()
    filename = fields.String()
    status = fields.String()
    total_rows = fields.Integer()
    processed_rows = fields.Integer()
    created = fields.Integer()
    skipped = fields.Integer()
    rejected = fields.Integer()
    rejections = fields.List(fields.Nested(OrderImportRejection))
    actor_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    started_at = fields.String(metadata=TIMESTAMP)
    finished_at = fields.String(allow_none=True, metadata=TIMESTAMP)
