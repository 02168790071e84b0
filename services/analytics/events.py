"""The events the analytics service publishes (docs/service-contracts.md), with their
marshmallow schemas: the event catalogue (docs/events.md) is generated from this registry."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events import EventRegistry

registry = EventRegistry("analytics")

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


def _score() -> fields.Integer:
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))


@registry.register(
    "segment.changed",
    1,
    "A customer's RFM segment changed after a scoring run (published only on a change). "
    "``currency`` (additive) names the currency the scores are in.",
)
class SegmentChangedV1(Schema):
    customer_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    segment = fields.String(required=True, validate=validate.OneOf(SEGMENTS))
    previous_segment = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(SEGMENTS)
    )
    r_score = _score()
    f_score = _score()
    m_score = _score()
    recency = fields.Integer(
        required=True, strict=True, metadata={"description": "days since the last purchase"}
    )
    frequency = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "purchases"},
    )
    monetary = fields.Integer(
        required=True,
        strict=True,
        metadata={"description": "total spent, integer minor units of ``currency``"},
    )
    as_of = fields.String(required=True, metadata={"description": "the scoring day (UTC)"})
    currency = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{3}$"))


@registry.register(
    "segment.cleared",
    1,
    "A customer left every RFM segment after a scoring run: no purchase of theirs counts any "
    "more (each was cancelled, returned or refunded in full). Published once, after a "
    "``segment.changed``; a later purchase brings a ``segment.changed`` again.",
)
class SegmentClearedV1(Schema):
    customer_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    previous_segment = fields.String(required=True, validate=validate.OneOf(SEGMENTS))
    as_of = fields.String(required=True, metadata={"description": "the scoring day (UTC)"})
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))
