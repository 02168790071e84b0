"""marshmallow schemas of the customer operations. The gateway checks shape, types and
lengths and refuses unknown fields; the customers service checks the rest (e-mail syntax,
E.164 phones, country and currency codes, duplicates)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas import TIMESTAMP

MINOR_UNITS = {"description": "integer minor units (1999 = 19.99)"}
KIND = validate.OneOf(["person", "company"])
CHANNEL = validate.OneOf(["email", "phone", "sms", "wechat", "mail", "none"])
CONSENT_CHANNEL = validate.OneOf(["email", "phone", "sms", "wechat", "mail"])
STATUS = validate.OneOf(["active", "archived", "merged", "erased", "all"])
#: The analytics service's named RFM segments (README "Analytics").
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
SORT = validate.OneOf(["-created_at", "created_at", "name", "-name", "-updated_at", "updated_at"])


#: what a contact entry that is not an object is told (``"emails": ["a@b.cn"]`` is a natural
#: first guess)
EMAIL_ENTRY = 'Must be an object such as {"address": "name@example.com"}.'
PHONE_ENTRY = 'Must be an object such as {"number": "+86 138 0013 8000"}.'


def _text(maximum: int, **kwargs):
    return fields.String(validate=validate.Length(max=maximum), **kwargs)


class EmailEntry(Schema):
    error_messages = {"type": EMAIL_ENTRY}

    address = fields.String(required=True, validate=validate.Length(min=3, max=254))
    label = fields.String(validate=validate.OneOf(["work", "home", "other"]))
    primary = fields.Boolean()


class PhoneEntry(Schema):
    error_messages = {"type": PHONE_ENTRY}

    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    label = fields.String(validate=validate.OneOf(["mobile", "work", "home", "other"]))
    primary = fields.Boolean()


class AddressEntry(Schema):
    label = _text(30)
    country = fields.String(required=True, validate=validate.Length(equal=2))
    region = _text(100, allow_none=True)
    city = _text(100, allow_none=True)
    district = _text(100, allow_none=True)
    street = _text(200, allow_none=True)
    postal_code = _text(20, allow_none=True)
    primary = fields.Boolean()


class Preferences(Schema):
    categories = fields.List(_text(50), validate=validate.Length(max=50))
    brands = fields.List(_text(50), validate=validate.Length(max=50))
    price_min = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=0), metadata=MINOR_UNITS
    )
    price_max = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=0), metadata=MINOR_UNITS
    )
    currency = fields.String(allow_none=True, validate=validate.Length(equal=3))
    notes = _text(2000, allow_none=True)


class _Writable(Schema):
    kind = fields.String(validate=KIND)
    name = fields.String(validate=validate.Length(min=1, max=200))
    company = _text(200, allow_none=True)
    emails = fields.List(fields.Nested(EmailEntry), validate=validate.Length(max=10))
    phones = fields.List(fields.Nested(PhoneEntry), validate=validate.Length(max=10))
    addresses = fields.List(fields.Nested(AddressEntry), validate=validate.Length(max=10))
    preferred_channel = fields.String(allow_none=True, validate=CHANNEL)
    language = fields.String(allow_none=True, validate=validate.Length(min=2, max=10))
    preferences = fields.Nested(Preferences)
    source = _text(100, allow_none=True)
    external_id = _text(100, allow_none=True)


class CustomerCreate(_Writable):
    kind = fields.String(
        load_default="person",
        validate=KIND,
        metadata={"description": "person (default) or company"},
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    tags = fields.List(_text(50), validate=validate.Length(max=50))
    owner_id = fields.String(allow_none=True, validate=validate.Length(max=64))
    force = fields.Boolean(
        load_default=False,
        metadata={"description": "create even though an e-mail or phone matches a customer"},
    )


class CustomerChanges(_Writable):
    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one field.", "_schema")


class Consent(Schema):
    granted = fields.Boolean()
    at = fields.String(metadata=TIMESTAMP)
    method = fields.String()


class Customer(Schema):
    id = fields.String()
    kind = fields.String()
    name = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    emails = fields.List(fields.Nested(EmailEntry))
    phones = fields.List(fields.Nested(PhoneEntry))
    addresses = fields.List(fields.Nested(AddressEntry))
    preferred_channel = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    preferences = fields.Nested(Preferences, allow_none=True)
    tags = fields.List(fields.String())
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw())
    owner_id = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    external_id = fields.String(allow_none=True)
    consents = fields.Dict(keys=fields.String(), values=fields.Nested(Consent))
    status = fields.String()
    merged_into = fields.String(allow_none=True)
    order_count = fields.Integer()
    segment = fields.String(
        allow_none=True,
        metadata={"description": "Marketing segment from the analytics service (RFM), if scored"},
    )
    created_at = fields.String(metadata=TIMESTAMP)
    updated_at = fields.String(metadata=TIMESTAMP)
    version = fields.Integer()
    contact_hidden = fields.Boolean()
    redirected_from = fields.String(allow_none=True)
    erased_at = fields.String(allow_none=True, metadata=TIMESTAMP)


class CustomerPage(Schema):
    items = fields.List(fields.Nested(Customer))
    next_cursor = fields.String(allow_none=True)


#: A user's id, as the users service makes them (a UUID in lower case)
USER_ID = validate.Regexp(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    error="Must be a user's id (a UUID).",
)


class CustomerQuery(Schema):
    q = _text(200)
    tag = _text(50)
    owner_id = fields.String(validate=USER_ID)
    status = fields.String(load_default="active", validate=STATUS)
    created_from = fields.AwareDateTime()
    created_to = fields.AwareDateTime()
    consent = fields.String(validate=CONSENT_CHANNEL)
    has_orders = fields.Boolean(metadata={"description": "Only customers with (or without) orders"})
    segment = fields.String(
        validate=validate.OneOf(SEGMENTS),
        metadata={"description": "Only the customers of this marketing segment (analytics, RFM)"},
    )
    sort = fields.String(load_default="-created_at", validate=SORT)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = _text(500)


class ExportQuery(CustomerQuery):
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=200))


class AsOfQuery(Schema):
    as_of = fields.AwareDateTime()


class TagChanges(Schema):
    add = fields.List(_text(50), load_default=list, validate=validate.Length(max=50))
    remove = fields.List(_text(50), load_default=list, validate=validate.Length(max=50))


class OwnerChange(Schema):
    owner_id = fields.String(required=True, allow_none=True, validate=validate.Length(max=64))


class ConsentRecord(Schema):
    channel = fields.String(required=True, validate=CONSENT_CHANNEL)
    granted = fields.Boolean(required=True)
    method = fields.String(required=True, validate=validate.Length(min=1, max=50))
    note = _text(500, allow_none=True)


class ConsentEntry(Schema):
    channel = fields.String()
    granted = fields.Boolean()
    at = fields.String(metadata=TIMESTAMP)
    method = fields.String()
    by = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class ConsentPage(Schema):
    items = fields.List(fields.Nested(ConsentEntry))


class MergeRequest(Schema):
    source_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class MergeResult(Schema):
    merge_id = fields.String()
    customer = fields.Nested(Customer)


class UndoMergeResult(Schema):
    target = fields.Nested(Customer)
    source = fields.Nested(Customer)


class TimelineEntry(Schema):
    event_id = fields.String()
    type = fields.String()
    source = fields.String(
        metadata={"description": "customers, or orders / payments for the customer's buying"}
    )
    at = fields.String(metadata=TIMESTAMP)
    actor_id = fields.String(allow_none=True)
    actor_kind = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    changes = fields.Raw(allow_none=True)


class TimelinePage(Schema):
    items = fields.List(fields.Nested(TimelineEntry))
    next_cursor = fields.String(allow_none=True)


class PageQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = _text(500)


class AttributeDefinition(Schema):
    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$"))
    type = fields.String(
        required=True, validate=validate.OneOf(["string", "number", "boolean", "date", "choice"])
    )
    label = fields.String(required=True, validate=validate.Length(min=1, max=100))
    options = fields.List(_text(100), allow_none=True, validate=validate.Length(max=100))


class AttributeDefinitionPage(Schema):
    items = fields.List(fields.Nested(AttributeDefinition))


class AttributeValues(Schema):
    values = fields.Dict(
        keys=fields.String(validate=validate.Length(max=40)), values=fields.Raw(), required=True
    )


class ImportQuery(Schema):
    mode = fields.String(
        load_default="upsert", validate=validate.OneOf(["create", "update", "upsert"])
    )
    match_on = fields.String(
        load_default="email", validate=validate.OneOf(["email", "phone", "external_id"])
    )
    filename = fields.String(load_default="upload.csv", validate=validate.Length(min=1, max=200))
    import_id = fields.UUID(metadata={"description": "choose it to follow the progress at once"})


class Import(Schema):
    id = fields.String()
    filename = fields.String()
    mode = fields.String()
    match_on = fields.String()
    status = fields.String(metadata={"description": "running, completed, failed or reverted"})
    total_rows = fields.Integer()
    processed_rows = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    rejected = fields.Integer()
    actor_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    started_at = fields.String(metadata=TIMESTAMP)
    finished_at = fields.String(allow_none=True, metadata=TIMESTAMP)
    reverted_at = fields.String(allow_none=True, metadata=TIMESTAMP)
    revert_conflicts = fields.Integer(
        allow_none=True,
        metadata={"description": "fields changed again since the import, kept on revert"},
    )


class ImportPage(Schema):
    items = fields.List(fields.Nested(Import))
    next_cursor = fields.String(allow_none=True)


class Rejection(Schema):
    row = fields.Integer()
    reasons = fields.Dict(keys=fields.String(), values=fields.Raw())
    values = fields.Dict(keys=fields.String(), values=fields.String())


class RejectionPage(Schema):
    items = fields.List(fields.Nested(Rejection))
    next_cursor = fields.String(allow_none=True)
