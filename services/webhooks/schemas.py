"""RPC payloads of the webhooks service."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

EVENT_PATTERN = r"^(\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*))$"
FIELD_PATTERN = r"^[a-z][a-z0-9_]*$"
#: A delivery's status; ``retrying`` finds the pending ones whose last attempt failed.
STATUSES = ("pending", "retrying", "delivered", "failed")


def _event_types(**kwargs):
    return fields.List(
        fields.String(
            validate=validate.Regexp(
                EVENT_PATTERN, error="An event type (customer.updated), customer.* or *."
            )
        ),
        validate=validate.Length(min=1, max=100),
        **kwargs,
    )


def _fields(**kwargs):
    return fields.List(
        fields.String(validate=validate.Regexp(FIELD_PATTERN)),
        validate=validate.Length(min=1, max=100),
        allow_none=True,
        **kwargs,
    )


class EndpointCreate(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    description = fields.String(load_default="", validate=validate.Length(max=500))
    event_types = _event_types(required=True)
    fields_ = _fields(data_key="fields", attribute="fields", load_default=None)
    secret = fields.String(load_default=None, validate=validate.Length(min=16, max=200))
    active = fields.Boolean(load_default=True)


class EndpointChanges(Schema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    description = fields.String(validate=validate.Length(max=500))
    event_types = _event_types()
    fields_ = _fields(data_key="fields", attribute="fields")
    secret = fields.String(validate=validate.Length(min=16, max=200))
    active = fields.Boolean()

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one field.", "changes")


class DeliveryQuery(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None)
