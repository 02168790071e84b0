"""marshmallow schemas of the integration operations: the event feed, webhooks, bulk writes."""

from __future__ import annotations

import os

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway import customer_schemas as cs

FEED_MAX_LIMIT = 1000
#: Items in one bulk request (``CMS_BULK_MAX_ITEMS``).
BULK_MAX_ITEMS = int(os.environ.get("CMS_BULK_MAX_ITEMS") or 100)


# -- the event feed -----------------------------------------------------------------------------


class FeedQuery(Schema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "The cursor: events after this position (0: from the start)."},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=FEED_MAX_LIMIT))
    types = fields.String(
        load_default=None,
        validate=validate.Length(max=2000),
        metadata={"description": "Comma-separated event types, e.g. customer.registered"},
    )


class Envelope(Schema):
    event_id = fields.String()
    type = fields.String()
    schema_version = fields.Integer()
    source = fields.String()
    stream_type = fields.String()
    stream_id = fields.String()
    stream_version = fields.Integer()
    position = fields.Integer()
    occurred_at = fields.String()
    metadata = fields.Dict()
    payload = fields.Dict(
        metadata={
            "description": "As in docs/events.md; sealed values of erased people read "
            '{"$erased": {"subject": id}}.'
        }
    )


class FeedPage(Schema):
    items = fields.List(fields.Nested(Envelope))
    next_after = fields.Integer(
        metadata={"description": "Pass as `after` for the next page (and to follow live)."}
    )
    has_more = fields.Boolean(
        metadata={"description": "A full page: ask again at once. Otherwise you are caught up."}
    )


# -- webhooks -----------------------------------------------------------------------------------

EVENT_FILTER = validate.Regexp(
    r"^(\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*))$",
    error="An event type (customer.updated), a prefix (customer.*) or *.",
)


class _EndpointFields(Schema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    description = fields.String(validate=validate.Length(max=500))
    event_types = fields.List(
        fields.String(validate=EVENT_FILTER), validate=validate.Length(min=1, max=100)
    )
    fields_ = fields.List(
        fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]*$")),
        data_key="fields",
        attribute="fields",
        allow_none=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Only events whose `changes` touch one of these fields."},
    )
    secret = fields.String(
        validate=validate.Length(min=16, max=200),
        metadata={"description": "Signing secret; generated when left out (shown once)."},
    )
    active = fields.Boolean()


class WebhookCreate(_EndpointFields):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    event_types = fields.List(
        fields.String(validate=EVENT_FILTER), required=True, validate=validate.Length(min=1)
    )


class WebhookChanges(_EndpointFields):
    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one field.", "body")


class Webhook(Schema):
    id = fields.String()
    url = fields.String()
    description = fields.String()
    event_types = fields.List(fields.String())
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields", allow_none=True)
    active = fields.Boolean()
    status = fields.String(metadata={"description": "active, paused (see paused_reason), inactive"})
    paused_at = fields.String(allow_none=True)
    paused_reason = fields.String(allow_none=True)
    consecutive_failures = fields.Integer(
        metadata={"description": "Failed attempts since the last success."}
    )
    failing_since = fields.String(
        allow_none=True,
        metadata={
            "description": "When it started failing (null after a success); it is paused "
            "after failing this long without a success (CMS_WEBHOOK_PAUSE_AFTER_HOURS)."
        },
    )
    secret_hint = fields.String()
    version = fields.Integer()
    created_by = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class WebhookList(Schema):
    items = fields.List(fields.Nested(Webhook))


class WebhookCreated(Webhook):
    secret = fields.String(metadata={"description": "Shown only now: keep it to verify."})


class Delivery(Schema):
    id = fields.String(metadata={"description": "Sent as CMS-Webhook-Id: de-duplicate on it."})
    endpoint_id = fields.String()
    event_id = fields.String()
    event_type = fields.String()
    source = fields.String()
    position = fields.Integer()
    stream_id = fields.String()
    status = fields.String(
        metadata={"description": "pending (also while it is retried), delivered or failed"}
    )
    retrying = fields.Boolean(
        metadata={"description": "Pending after a failed attempt: see last_error, attempts."}
    )
    attempts = fields.Integer()
    next_attempt_at = fields.String(allow_none=True)
    last_attempt_at = fields.String(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    created_at = fields.String()


class Attempt(Schema):
    at = fields.String()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()
    resent = fields.Boolean()


class DeliveryDetail(Delivery):
    envelope = fields.Dict()
    attempt_log = fields.List(fields.Nested(Attempt))


class DeliveryPage(Schema):
    items = fields.List(fields.Nested(Delivery))
    next_cursor = fields.String(allow_none=True)


class DeliveryQuery(Schema):
    status = fields.String(
        validate=validate.OneOf(["pending", "retrying", "delivered", "failed"]),
        metadata={
            "description": "retrying: pending after a failed attempt (failing, to be tried "
            "again); failed: retries ran out (re-send by hand)."
        },
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=500))


# -- bulk ---------------------------------------------------------------------------------------


class EtagVersion(fields.Integer):
    """A version as a number (``3``) or as the ETag a GET answered (``\"3\"``, ``W/\"3\"``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            text = value.strip().removeprefix("W/").strip('"')
            if not text.isascii() or not text.isdigit() or len(text) > 18:
                raise ValidationError('Must be a version such as 3, or the ETag "3".')
            value = int(text)
        return super()._deserialize(value, attr, data, **kwargs)


class BulkCustomerItem(Schema):
    op = fields.String(required=True, validate=validate.OneOf(["create", "update"]))
    id = fields.String(metadata={"description": "The customer to update."})
    version = EtagVersion(
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "Updates: the version read, or its ETag; a stale one is 412."},
    )
    force = fields.Boolean(
        load_default=False,
        metadata={"description": "Creates: this one even when a duplicate is found."},
    )
    data = fields.Dict(required=True, metadata={"description": "As for create or edit."})

    @validates_schema
    def _update_names_a_customer(self, data, **kwargs):
        if data.get("op") == "update" and not data.get("id"):
            raise ValidationError("An update names the customer.", "id")
        if data.get("op") == "update" and not data.get("version"):
            raise ValidationError("An update says which version it changes (ETag).", "version")


class BulkCustomers(Schema):
    items = fields.List(
        fields.Nested(BulkCustomerItem),
        required=True,
        validate=validate.Length(min=1, max=BULK_MAX_ITEMS),
    )
    force = fields.Boolean(
        load_default=False, metadata={"description": "Create even when a duplicate is found."}
    )


class BulkResult(Schema):
    index = fields.Integer()
    op = fields.String()
    status = fields.Integer(metadata={"description": "The HTTP status this item alone would get."})
    id = fields.String(allow_none=True)
    version = fields.Integer(allow_none=True)
    error = fields.Dict(allow_none=True, metadata={"description": "problem+json of a failure"})


class BulkResults(Schema):
    results = fields.List(fields.Nested(BulkResult))
    succeeded = fields.Integer()
    failed = fields.Integer()


class BulkOrderItem(Schema):
    op = fields.String(load_default="place", validate=validate.OneOf(["place"]))
    data = fields.Dict(required=True, metadata={"description": "As for POST /orders."})


class BulkOrders(Schema):
    items = fields.List(
        fields.Nested(BulkOrderItem),
        required=True,
        validate=validate.Length(min=1, max=BULK_MAX_ITEMS),
    )


CUSTOMER_CREATE = cs.CustomerCreate
CUSTOMER_CHANGES = cs.CustomerChanges
