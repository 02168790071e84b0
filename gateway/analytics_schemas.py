"""marshmallow schemas of the analytics operations (queries in, figures out)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas import TIMESTAMP
from shared.currencies import CurrencyCode

SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
)
CURRENCY = CurrencyCode()
MONEY = {"description": "integer minor units of the row's currency"}


def _date(**kwargs):
    return fields.Date(
        metadata={"description": "UTC day; date_from inclusive, date_to exclusive"}, **kwargs
    )


class RangeQuery(Schema):
    date_from = _date()
    date_to = _date()
    currency = fields.String(validate=CURRENCY)

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            raise ValidationError("Must not be before date_from.", "date_to")


class RevenueQuery(RangeQuery):
    granularity = fields.String(
        load_default="day", validate=validate.OneOf(("day", "week", "month"))
    )


class ProductQuery(RangeQuery):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class CurrencyQuery(Schema):
    currency = fields.String(validate=CURRENCY)


class CohortQuery(RangeQuery):
    pass


class PageQuery(Schema):
    currency = fields.String(validate=CURRENCY)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    cursor = fields.String(validate=validate.Length(max=200))


class ClvQuery(Schema):
    currency = fields.String(validate=CURRENCY)
    as_of = fields.Date(metadata={"description": "the model's calibration end (default today)"})
    unit = fields.String(load_default="weeks", validate=validate.OneOf(("days", "weeks")))
    horizon = fields.Float(
        load_default=52.0,
        validate=validate.Range(min=0, max=10000),
        metadata={"description": "prediction horizon, in the time unit"},
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=1000))
    cursor = fields.String(validate=validate.Length(max=200))
    bins = fields.Integer(load_default=20, validate=validate.Range(min=2, max=100))


class FreshnessQuery(Schema):
    window_seconds = fields.Integer(load_default=900, validate=validate.Range(min=1, max=604800))


class RebuildRequest(Schema):
    confirm = fields.Boolean(
        required=True,
        validate=validate.Equal(True),
        metadata={"description": "true: rebuild every analytics projection from the events"},
    )


# -- responses ---------------------------------------------------------------------------------


class RevenuePoint(Schema):
    period = fields.String(metadata={"description": "first day of the period (UTC)"})
    currency = fields.String()
    captured = fields.Integer(metadata=MONEY)
    refunded = fields.Integer(metadata=MONEY)
    net = fields.Integer(metadata=MONEY)


class MethodRevenue(Schema):
    method = fields.String(metadata={"description": "payment method, or imported"})
    currency = fields.String()
    net = fields.Integer(metadata=MONEY)
    captures = fields.Integer()


class ProductSales(Schema):
    currency = fields.String()
    product_key = fields.String()
    product_id = fields.String(allow_none=True)
    sku = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    quantity = fields.Integer()
    amount = fields.Integer(metadata=MONEY)
    orders = fields.Integer()


class CategorySales(Schema):
    currency = fields.String()
    category = fields.String(allow_none=True)
    quantity = fields.Integer()
    amount = fields.Integer(metadata=MONEY)
    orders = fields.Integer()


class PaymentRate(Schema):
    method = fields.String()
    attempts = fields.Integer()
    succeeded = fields.Integer()
    failed = fields.Integer()
    abandoned = fields.Integer()
    pending = fields.Integer()
    success_rate = fields.Float(allow_none=True)
    failure_rate = fields.Float(allow_none=True)


class Overview(Schema):
    currency = fields.String()
    revenue = fields.Integer(metadata=MONEY)
    purchases = fields.Integer()
    sales = fields.Integer(metadata=MONEY)
    customers = fields.Integer()
    new_customers = fields.Integer()
    average_order_value = fields.Integer(allow_none=True, metadata=MONEY)
    repeat_customers = fields.Integer()
    repeat_purchase_rate = fields.Float(allow_none=True)


class Cohort(Schema):
    cohort = fields.String(metadata={"description": "YYYY-MM of the first purchase"})
    size = fields.Integer()
    counts = fields.List(fields.Integer())
    retention = fields.List(fields.Float(allow_none=True))


class Cohorts(Schema):
    currency = fields.String()
    cohorts = fields.List(fields.Nested(Cohort))


class CustomerFigures(Schema):
    customer_id = fields.String()
    currency = fields.String()
    orders = fields.Integer()
    total_spent = fields.Integer(metadata=MONEY)
    first_purchase = fields.String(metadata=TIMESTAMP)
    last_purchase = fields.String(metadata=TIMESTAMP)
    average_order_value = fields.Integer(metadata=MONEY)
    favourite_categories = fields.List(fields.String())
    favourite_products = fields.List(fields.String())
    segment = fields.String(allow_none=True)
    r = fields.Integer(allow_none=True)
    f = fields.Integer(allow_none=True)
    m = fields.Integer(allow_none=True)
    recency_days = fields.Integer(allow_none=True)


class CustomerFiguresPage(Schema):
    items = fields.List(fields.Nested(CustomerFigures))
    next_cursor = fields.String(allow_none=True)


class CustomerAnalytics(Schema):
    customer_id = fields.String()
    merged_into = fields.String(allow_none=True)
    figures = fields.List(fields.Nested(CustomerFigures))


class SegmentSize(Schema):
    segment = fields.String()
    customers = fields.Integer()
    monetary = fields.Integer(metadata=MONEY)


class Segments(Schema):
    currency = fields.String()
    as_of = fields.String(allow_none=True)
    segments = fields.List(fields.Nested(SegmentSize))


class SegmentMember(Schema):
    customer_id = fields.String()
    r = fields.Integer()
    f = fields.Integer()
    m = fields.Integer()
    recency_days = fields.Integer()
    frequency = fields.Integer()
    monetary = fields.Integer(metadata=MONEY)


class SegmentPage(Schema):
    segment = fields.String()
    currency = fields.String()
    items = fields.List(fields.Nested(SegmentMember))
    next_cursor = fields.String(allow_none=True)


class Prediction(Schema):
    customer_id = fields.String()
    frequency = fields.Integer()
    recency = fields.Float()
    age = fields.Float()
    expected_purchases = fields.Float()
    p_alive = fields.Float()
    expected_order_value = fields.Integer(metadata=MONEY)
    predicted_value = fields.Integer(metadata=MONEY)


class BgNbd(Schema):
    r = fields.Float()
    alpha = fields.Float()
    a = fields.Float()
    b = fields.Float()
    log_likelihood = fields.Float()


class GammaGamma(Schema):
    p = fields.Float()
    q = fields.Float()
    v = fields.Float(metadata={"description": "scale, in minor units"})
    v_major_units = fields.Float()
    log_likelihood = fields.Float()


class Bin(Schema):
    from_ = fields.Integer(data_key="from", attribute="from", metadata=MONEY)
    to = fields.Integer(metadata=MONEY)
    customers = fields.Integer()


class Clv(Schema):
    currency = fields.String()
    as_of = fields.String()
    unit = fields.String()
    horizon = fields.Float()
    customers = fields.Integer()
    repeat_customers = fields.Integer()
    reliable = fields.Boolean(
        metadata={"description": "false: see warnings before acting on the predictions"}
    )
    warnings = fields.List(fields.String())
    bgnbd = fields.Nested(BgNbd)
    gamma_gamma = fields.Nested(GammaGamma)
    total_predicted_value = fields.Integer(metadata=MONEY)
    distribution = fields.List(fields.Nested(Bin))
    top = fields.List(fields.Nested(Prediction))


class PredictionPage(Schema):
    items = fields.List(fields.Nested(Prediction))
    next_cursor = fields.String(allow_none=True)


class PathFreshness(Schema):
    events = fields.Integer()
    p50_ms = fields.Float()
    p99_ms = fields.Float()
    last_applied_at = fields.String(metadata=TIMESTAMP)


class Freshness(Schema):
    window_seconds = fields.Integer()
    events = fields.Integer(metadata={"description": "live deliveries in the window"})
    p50_ms = fields.Float(allow_none=True)
    p99_ms = fields.Float(allow_none=True)
    last_ms = fields.Float(allow_none=True)
    last_applied_at = fields.String(allow_none=True, metadata=TIMESTAMP)
    last_event_type = fields.String(allow_none=True)
    by_path = fields.Dict(keys=fields.String(), values=fields.Nested(PathFreshness))
    measured_at = fields.String(metadata=TIMESTAMP)


class Rebuild(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "running, succeeded or failed"})
    requested_by = fields.String(allow_none=True)
    started_at = fields.String(metadata=TIMESTAMP)
    finished_at = fields.String(allow_none=True, metadata=TIMESTAMP)
    events = fields.Integer()
    total = fields.Integer()
    events_per_second = fields.Float(allow_none=True)
    error = fields.String(allow_none=True)
