"""Marshmallow schemas of the payments service's RPC arguments (the gateway validates the
HTTP body with its own; these are the service's own guard)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from services.payments.domain import STATUSES
from services.payments.events import METHODS
from shared.currencies import CurrencyCode

CURRENCY = CurrencyCode()
AMOUNT = {"strict": True, "required": True, "validate": validate.Range(min=1, max=10**12)}


class Card(Schema):
    class Meta:
        unknown = RAISE

    number = fields.String(required=True, validate=validate.Length(min=12, max=23))
    exp_month = fields.Integer(required=True, strict=True)
    exp_year = fields.Integer(required=True, strict=True)
    cvc = fields.String(required=True, validate=validate.Length(min=3, max=4))
    holder = fields.String(validate=validate.Length(max=200))


class CreatePayment(Schema):
    class Meta:
        unknown = RAISE

    order_id = fields.UUID(required=True)
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    amount = fields.Integer(**AMOUNT)
    currency = fields.String(required=True, validate=CURRENCY)
    card = fields.Nested(Card, load_default=None, allow_none=True)
    capture_method = fields.String(
        load_default="automatic", validate=validate.OneOf(("automatic", "manual"))
    )


class ManualPayment(Schema):
    class Meta:
        unknown = RAISE

    order_id = fields.UUID(required=True)
    method = fields.String(required=True, validate=validate.OneOf(("cash", "bank_transfer")))
    amount = fields.Integer(**AMOUNT)
    currency = fields.String(required=True, validate=CURRENCY)
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class Refund(Schema):
    amount = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(min=1)
    )
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ListArgs(Schema):
    order_id = fields.UUID(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(STATUSES))
    method = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(METHODS))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, allow_none=True)
