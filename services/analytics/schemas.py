"""Arguments of the analytics RPCs (plain JSON in, validated here; errors name the field)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from services.analytics.projector import SEGMENTS
from shared.currencies import CurrencyCode
from shared.errors import BadRequest
from shared.schemas import as_instance

#: The currency figures are given in when a caller names none.
DEFAULT_CURRENCY = os.environ.get("CMS_ANALYTICS_CURRENCY", "CNY")
MAX_LIMIT = 1000


class UtcDateTime(fields.DateTime):
    """An ISO 8601 time; a naive one is UTC; a bare date is its midnight UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) == 10:
            value += "T00:00:00"
        result = super()._deserialize(value, attr, data, **kwargs)
        return result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)


def _currency(default: str | None = None) -> fields.String:
    return fields.String(
        load_default=default,
        allow_none=default is None,
        validate=CurrencyCode(),
    )


class RangeArgs(Schema):
    date_from = UtcDateTime(load_default=None, allow_none=True)
    date_to = UtcDateTime(load_default=None, allow_none=True)
    currency = _currency()


class RevenueArgs(RangeArgs):
    granularity = fields.String(
        load_default="day", validate=validate.OneOf(("day", "week", "month"))
    )


class ProductArgs(RangeArgs):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LIMIT))


class CohortArgs(RangeArgs):
    currency = _currency(DEFAULT_CURRENCY)


class CustomerFiguresArgs(Schema):
    currency = _currency(DEFAULT_CURRENCY)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^-?\d+:[0-9A-Za-z-]{1,100}$", error="Not a cursor."),
    )


class SegmentArgs(Schema):
    segment = fields.String(required=True, validate=validate.OneOf(SEGMENTS))
    currency = _currency(DEFAULT_CURRENCY)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class SegmentsOfArgs(Schema):
    customer_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        required=True,
        validate=validate.Length(max=MAX_LIMIT),
    )
    currency = _currency(DEFAULT_CURRENCY)


class ClvArgs(Schema):
    currency = _currency(DEFAULT_CURRENCY)
    as_of = fields.Date(load_default=None, allow_none=True)
    unit = fields.String(load_default="weeks", validate=validate.OneOf(("days", "weeks")))
    horizon = fields.Float(load_default=52.0, validate=validate.Range(min=0.0, max=10000.0))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    bins = fields.Integer(load_default=20, validate=validate.Range(min=2, max=100))


class FreshnessArgs(Schema):
    window_seconds = fields.Integer(load_default=900, validate=validate.Range(min=1, max=7 * 86400))


def load(schema: Schema | type[Schema], args: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded = as_instance(schema).load({k: v for k, v in args.items() if v is not None})
    except ValidationError as exc:
        raise BadRequest.for_fields(exc.messages) from exc
    date_from, date_to = loaded.get("date_from"), loaded.get("date_to")
    if isinstance(date_from, datetime) and isinstance(date_to, datetime) and date_to < date_from:
        raise BadRequest.for_fields({"date_to": ["Must not be before date_from."]})
    return loaded
