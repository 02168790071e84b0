"""marshmallow schemas of the orders service's RPC arguments (the gateway checks the same
shapes; these are the service's own guard, for any caller)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.orders.domain import ACTION_EVENTS, MAX_AMOUNT, MAX_QUANTITY, STATUSES
from shared.currencies import CurrencyCode
from shared.errors import BadRequest
from shared.schemas import as_instance

MONEY = validate.Range(min=0, max=MAX_AMOUNT)
ORDER_SORTS = ("-placed_at", "placed_at", "-total", "total")
CURRENCY = CurrencyCode()


class Text(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def load(schema: Schema | type[Schema], payload: dict[str, Any]) -> dict[str, Any]:
    try:
        return as_instance(schema).load(payload)
    except ValidationError as exc:
        raise BadRequest.for_fields(exc.messages) from exc


class Principal(Schema):
    id = fields.String(required=True, allow_none=True)
    role = fields.String(required=True, allow_none=True)
    kind = fields.String(load_default="user", allow_none=True)

    class Meta:
        unknown = "exclude"


class ProductData(Schema):
    sku = Text(required=True, validate=validate.Length(min=1, max=64))
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    category = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    brand = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    price = fields.Integer(required=True, strict=True, validate=MONEY)
    currency = fields.String(required=True, validate=CURRENCY)
    active = fields.Boolean(load_default=True)


class ProductChanges(Schema):
    name = Text(validate=validate.Length(min=1, max=200))
    category = Text(allow_none=True, validate=validate.Length(max=100))
    brand = Text(allow_none=True, validate=validate.Length(max=100))
    price = fields.Integer(strict=True, validate=MONEY)
    currency = fields.String(validate=CURRENCY)
    active = fields.Boolean()

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one field.", "_schema")


class ProductQuery(Schema):
    q = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    category = Text(load_default=None, allow_none=True)
    brand = Text(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=None, allow_none=True)
    currency = fields.String(load_default=None, allow_none=True, validate=CURRENCY)
    cursor = fields.String(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class LineInput(Schema):
    line_id = fields.String(validate=validate.Length(max=64))
    product_id = fields.UUID(required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(1, MAX_QUANTITY))
    line_discount = fields.Integer(load_default=0, strict=True, validate=MONEY)


class DeliveryAddress(Schema):
    recipient = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    phone = Text(load_default=None, allow_none=True, validate=validate.Length(max=40))
    country = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))
    region = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    city = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    district = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    street = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    postal_code = Text(load_default=None, allow_none=True, validate=validate.Length(max=20))


class _Lines(Schema):
    lines = fields.List(
        fields.Nested(LineInput), required=True, validate=validate.Length(min=1, max=200)
    )
    order_discount = fields.Integer(load_default=0, strict=True, validate=MONEY)
    tax_rate = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 10000))


class OrderData(_Lines):
    customer_id = fields.UUID(required=True)
    currency = fields.String(load_default=None, allow_none=True, validate=CURRENCY)
    delivery_address = fields.Nested(DeliveryAddress, load_default=None, allow_none=True)
    notes = Text(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class LinesChange(_Lines):
    order_discount = fields.Integer(strict=True, validate=MONEY)
    tax_rate = fields.Integer(strict=True, validate=validate.Range(0, 10000))


class AddressChange(Schema):
    delivery_address = fields.Nested(DeliveryAddress, required=True, allow_none=True)


class ActionArgs(Schema):
    action = fields.String(required=True, validate=validate.OneOf(list(ACTION_EVENTS)))
    reason = Text(load_default=None, allow_none=True, validate=validate.Length(max=500))
    expected_version = fields.Integer(load_default=None, allow_none=True)


class OrderQuery(Schema):
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = fields.List(
        fields.String(validate=validate.OneOf(STATUSES)), load_default=None, allow_none=True
    )
    id = fields.List(
        fields.UUID(), load_default=None, allow_none=True, validate=validate.Length(max=200)
    )
    placed_from = fields.AwareDateTime(load_default=None, allow_none=True)
    placed_to = fields.AwareDateTime(load_default=None, allow_none=True)
    total_min = fields.Integer(load_default=None, allow_none=True, validate=MONEY)
    total_max = fields.Integer(load_default=None, allow_none=True, validate=MONEY)
    currency = fields.String(load_default=None, allow_none=True, validate=CURRENCY)
    product_id = fields.UUID(load_default=None, allow_none=True)
    q = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    sort = fields.String(load_default="-placed_at", validate=validate.OneOf(ORDER_SORTS))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class ChangesQuery(Schema):
    after = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    wait = fields.Float(load_default=0.0, validate=validate.Range(min=0, max=4))
    order_id = fields.UUID(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
