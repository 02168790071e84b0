"""The payments service's event catalogue (docs/service-contracts.md, "payments").

Stream ``payment`` / ``<payment id>``: one payment of an order. No card number or CVC is
ever part of a payload: a card travels only as ``{"brand", "last4"}``.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events import EventRegistry

registry = EventRegistry("payments")

PAYMENT_STREAM = "payment"

METHODS = ("card", "bank_transfer", "cash", "alipay", "wechat_pay")
PROVIDERS = ("sandbox", "manual")


def _money(**kwargs):
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=0), **kwargs)


class _Common(Schema):
    payment_id = fields.UUID(required=True)
    order_id = fields.UUID(required=True)
    customer_id = fields.UUID(required=True)
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    amount = _money()
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))


class CardSummary(Schema):
    brand = fields.String(required=True)
    last4 = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{4}$"))


@registry.register("payment.initiated", 1, "A payment of an order was started")
class PaymentInitiated(_Common):
    provider = fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    card = fields.Nested(CardSummary, allow_none=True, load_default=None)


@registry.register("payment.authorized", 1, "The provider authorised the payment")
class PaymentAuthorized(_Common):
    pass


@registry.register("payment.captured", 1, "The money was taken (counts towards the order)")
class PaymentCaptured(_Common):
    captured_at = fields.String(required=True)


@registry.register("payment.failed", 1, "The provider refused the payment")
class PaymentFailed(_Common):
    reason = fields.String(required=True)


@registry.register("payment.cancelled", 1, "The payment was cancelled before capture")
class PaymentCancelled(_Common):
    reason = fields.String(required=True)


@registry.register("payment.expired", 1, "A pending payment was not completed in time")
class PaymentExpired(_Common):
    pass


@registry.register("payment.refunded", 1, "Part or all of a captured payment was refunded")
class PaymentRefunded(_Common):
    refund_id = fields.UUID(required=True)
    refunded_total = _money()
    captured_amount = _money()
    reason = fields.String(required=True)
