"""marshmallow schemas of the payment operations. Amounts are integer minor units with an
ISO 4217 currency. Card details are accepted only to be handed to the sandbox provider, which
tokenises them: no response ever carries more than the brand and the last four digits."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.currencies import CurrencyCode

METHODS = ["card", "bank_transfer", "cash", "alipay", "wechat_pay"]
STATUSES = [
    "pending",
    "authorized",
    "captured",
    "partially_refunded",
    "refunded",
    "failed",
    "cancelled",
    "expired",
]
CURRENCY = CurrencyCode()


def _amount(description: str = "minor units (1999 = 19.99)", **kwargs):
    return fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=10**12),
        metadata={"description": description},
        **kwargs,
    )


class CardInput(Schema):
    number = fields.String(required=True, validate=validate.Length(min=12, max=23))
    exp_month = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    exp_year = fields.Integer(required=True, strict=True)
    cvc = fields.String(required=True, validate=validate.Length(min=3, max=4))
    holder = fields.String(validate=validate.Length(max=200))


class PaymentCreate(Schema):
    order_id = fields.UUID(required=True)
    method = fields.String(
        required=True, validate=validate.OneOf(["card", "alipay", "wechat_pay", "bank_transfer"])
    )
    amount = _amount(required=True)
    currency = fields.String(required=True, validate=CURRENCY)
    card = fields.Nested(CardInput, metadata={"description": "card payments only (sandbox)"})
    capture_method = fields.String(validate=validate.OneOf(["automatic", "manual"]))


class ManualPaymentCreate(Schema):
    order_id = fields.UUID(required=True)
    method = fields.String(required=True, validate=validate.OneOf(["cash", "bank_transfer"]))
    amount = _amount(required=True)
    currency = fields.String(required=True, validate=CURRENCY)
    reference = fields.String(
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "receipt or bank statement reference"},
    )


class RefundCreate(Schema):
    amount = _amount("minor units; default: everything still refundable")
    reason = fields.String(validate=validate.Length(max=500))


class CancelRequest(Schema):
    reason = fields.String(validate=validate.Length(max=500))


class PaymentExportQuery(Schema):
    order_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(STATUSES))
    method = fields.String(validate=validate.OneOf(METHODS))


class PaymentQuery(PaymentExportQuery):
    limit = fields.Integer(validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=500))


class ReconciliationQuery(Schema):
    date = fields.Date(metadata={"description": "UTC day, default today"})


class CardSummary(Schema):
    brand = fields.String()
    last4 = fields.String()


class RefundEntry(Schema):
    refund_id = fields.String()
    amount = fields.Integer()
    reason = fields.String()
    created_at = fields.String()


class Payment(Schema):
    id = fields.String()
    order_id = fields.String()
    customer_id = fields.String()
    method = fields.String()
    provider = fields.String(metadata={"description": "sandbox (simulated) or manual"})
    amount = fields.Integer()
    currency = fields.String()
    status = fields.String()
    captured_amount = fields.Integer()
    refunded_amount = fields.Integer()
    refundable_amount = fields.Integer()
    capture_method = fields.String()
    card = fields.Nested(CardSummary, allow_none=True)
    next_action = fields.Dict(
        allow_none=True,
        metadata={"description": "what the customer must do: confirm, qr (scan), bank_transfer"},
    )
    failure_reason = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    provider_reference = fields.String(allow_none=True)
    refunds = fields.List(fields.Nested(RefundEntry))
    expires_at = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    version = fields.Integer()


class OrderBalance(Schema):
    order_id = fields.String()
    customer_id = fields.String()
    currency = fields.String()
    total = fields.Integer()
    status = fields.String()
    paid_amount = fields.Integer()
    pending_amount = fields.Integer()
    outstanding = fields.Integer()


class PaymentPage(Schema):
    items = fields.List(fields.Nested(Payment))
    next_cursor = fields.String(allow_none=True)
    order = fields.Nested(OrderBalance, allow_none=True)


class ReconciliationMismatch(Schema):
    reference = fields.String(allow_none=True)
    payment_id = fields.String(allow_none=True)
    reason = fields.String()
    provider_amount = fields.Integer(allow_none=True)
    cms_amount = fields.Integer(allow_none=True)


class ReconciliationRow(Schema):
    date = fields.String()
    provider = fields.String()
    method = fields.String()
    currency = fields.String()
    provider_count = fields.Integer(allow_none=True)
    provider_captured = fields.Integer(allow_none=True)
    provider_refunded = fields.Integer(allow_none=True)
    provider_net = fields.Integer(allow_none=True)
    cms_count = fields.Integer()
    cms_captured = fields.Integer()
    cms_refunded = fields.Integer()
    cms_net = fields.Integer()
    difference = fields.Integer(allow_none=True)
    status = fields.String(metadata={"description": "matched, mismatch or no_provider_report"})
    mismatches = fields.List(fields.Nested(ReconciliationMismatch))


class Reconciliation(Schema):
    date = fields.String()
    generated_at = fields.String()
    rows = fields.List(fields.Nested(ReconciliationRow))
    mismatch_count = fields.Integer()


class WebhookAck(Schema):
    status = fields.String()
    event_id = fields.String()
