"""marshmallow schemas of the RPC arguments, and the helpers that turn a failed validation into
``BadRequest`` with per-field messages.

Errors are keyed by the fields of the data a caller sends (``{"emails": {"0": {"address":
[...]}}}``), never nested under the RPC parameter that carries it (``data``, ``changes``,
``values``), so a form can put each message beside its field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from services.customers.codes import COUNTRIES, CURRENCIES
from services.customers.domain import (
    ADDRESS_LABELS,
    ATTRIBUTE_TYPES,
    CONSENT_CHANNELS,
    CONSENT_METHODS,
    EMAIL_LABELS,
    KINDS,
    PHONE_LABELS,
    PREFERRED_CHANNELS,
    STATUSES,
    default_region,
    preference_errors,
)
from services.customers.events import UtcDateTime
from services.customers.segments import SEGMENTS
from services.customers.validation import normalise_phones
from shared.errors import BadRequest
from shared.schemas import as_instance

ROLES = ("admin", "manager", "sales", "analyst")
ACTOR_KINDS = ("user", "api_key", "system")
MAX_LIST_LIMIT = 200
MAX_CONTACTS = 10
#: A preferred price in minor units: as high as the orders service takes an amount (10**13,
#: far above any real price, far below what a 64-bit or JavaScript reader of the event would
#: get wrong; 10**30 went into the log).
PRICE = validate.Range(min=0, max=10**13)
SORTS = ("created_at", "-created_at", "name", "-name", "updated_at", "-updated_at")
_LANGUAGE = re.compile(r"^([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|\d{3}))?$")
_TAG = re.compile(r"^[^\W_](?:[\w\-]{0,48}[^\W_])?$")
_ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
_POSTAL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 \-]{0,19}$")


class Text(fields.String):
    """A string with surrounding whitespace removed; empty means none (when allowed)."""

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if isinstance(value, str) and value.strip() == "" and self.allow_none:
            value = None
        return super().deserialize(value, attr, data, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def _text(max_length: int, required: bool = False, **kwargs: Any) -> Text:
    if required:
        return Text(required=True, validate=validate.Length(min=1, max=max_length), **kwargs)
    kwargs.setdefault("allow_none", True)
    return Text(validate=validate.Length(max=max_length), **kwargs)


class EmailAddress(fields.String):
    """An e-mail address, trimmed, its domain lower-cased (the local part is the owner's)."""

    _check = validate.Email(error="Not a valid e-mail address.")

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if len(text) > 254:
            raise ValidationError("At most 254 characters.")
        self._check(text)
        local, _, domain = text.rpartition("@")
        return f"{local}@{domain.lower()}"


class Country(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if code not in COUNTRIES:
            raise ValidationError("Not an ISO 3166-1 alpha-2 country code, like CN.")
        return code


class Currency(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if code not in CURRENCIES:
            raise ValidationError("Not an ISO 4217 currency code, like CNY.")
        return code


class Language(fields.String):
    """A short BCP 47 tag (language, optional script, optional region): zh-CN, en, zh-Hant-TW."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip().replace("_", "-")
        match = _LANGUAGE.match(text.lower())
        if not match:
            raise ValidationError("Not a language tag, like zh-CN or en.")
        language, script, region = match.groups()
        parts = [language]
        if script:
            parts.append(script.title())
        if region:
            parts.append(region.upper())
        return "-".join(parts)


class Tag(fields.String):
    """A lower-case slug: letters (any script), digits, '-' and '_', at most 50."""

    def _deserialize(self, value, attr, data, **kwargs):
        tag = super()._deserialize(value, attr, data, **kwargs).strip().lower()
        if not _TAG.match(tag):
            raise ValidationError(
                "A tag is 1 to 50 letters or digits, joined by '-' or '_', like vip or key-account."
            )
        return tag


class UuidString(fields.UUID):
    """A UUID, handed on as its canonical string."""

    def _deserialize(self, value, attr, data, **kwargs):
        return str(super()._deserialize(value, attr, data, **kwargs))


def _id(**kwargs: Any) -> UuidString:
    return UuidString(**kwargs)


def _primary_once(entries: list[dict[str, Any]]) -> None:
    if sum(1 for entry in entries if entry.get("primary")) > 1:
        raise ValidationError("At most one entry may be primary.")


def _distinct(key: Callable[[dict], Any], message: str):
    def check(entries: list[dict[str, Any]]) -> None:
        seen = [key(entry) for entry in entries]
        if len(seen) != len(set(seen)):
            raise ValidationError(message)

    return check


def with_primary(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first entry is primary when none is."""
    if entries and not any(entry.get("primary") for entry in entries):
        entries = [{**entries[0], "primary": True}, *entries[1:]]
    return entries


#: what a contact entry that is not an object is told (``"emails": ["a@b.cn"]`` is a natural
#: first guess)
EMAIL_ENTRY = 'Must be an object such as {"address": "name@example.com"}.'
PHONE_ENTRY = 'Must be an object such as {"number": "+86 138 0013 8000"}.'


class EmailEntry(Schema):
    error_messages = {"type": EMAIL_ENTRY}

    address = EmailAddress(required=True)
    label = fields.String(load_default="other", validate=validate.OneOf(EMAIL_LABELS))
    primary = fields.Boolean(load_default=False)


class PhoneEntry(Schema):
    """The number as typed; made E.164 against the record's region (``normalise_phones``)."""

    error_messages = {"type": PHONE_ENTRY}

    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    label = fields.String(load_default="mobile", validate=validate.OneOf(PHONE_LABELS))
    primary = fields.Boolean(load_default=False)


class AddressEntry(Schema):
    label = fields.String(load_default="home", validate=validate.OneOf(ADDRESS_LABELS))
    country = Country(required=True)
    region = _text(100, load_default=None)
    city = _text(100, load_default=None)
    district = _text(100, load_default=None)
    street = _text(200, load_default=None)
    postal_code = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(_POSTAL_CODE, error="Not a postal code."),
    )
    primary = fields.Boolean(load_default=False)


def _contacts(schema: type[Schema], **kwargs: Any) -> fields.List:
    checks = [validate.Length(max=MAX_CONTACTS), _primary_once]
    if schema is EmailEntry:
        checks.append(_distinct(lambda e: e["address"].lower(), "The same address is given twice."))
    return fields.List(fields.Nested(schema), validate=checks, **kwargs)


class PreferencesData(Schema):
    categories = fields.List(_text(50, required=True), validate=validate.Length(max=50))
    brands = fields.List(_text(50, required=True), validate=validate.Length(max=50))
    price_min = fields.Integer(allow_none=True, strict=True, validate=PRICE)
    price_max = fields.Integer(allow_none=True, strict=True, validate=PRICE)
    currency = Currency(allow_none=True)
    notes = _text(2000)

    @post_load
    def _unique_lists(self, data, **kwargs):
        for name in ("categories", "brands"):
            if name in data:
                data[name] = list(dict.fromkeys(data[name]))
        return data


class ConsentEntry(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CONSENT_CHANNELS))
    granted = fields.Boolean(required=True)
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))
    note = _text(500, load_default=None)


class _Record(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    name = _text(200, required=True)
    company = _text(200)
    emails = _contacts(EmailEntry)
    phones = _contacts(PhoneEntry)
    addresses = _contacts(AddressEntry)
    preferred_channel = fields.String(allow_none=True, validate=validate.OneOf(PREFERRED_CHANNELS))
    language = Language()
    preferences = fields.Nested(PreferencesData)
    source = _text(100)
    external_id = _text(100)


class CustomerData(_Record):
    """``create_customer``'s ``data``: the record, with tags, attribute values, owner and
    consents given at creation."""

    kind = fields.String(load_default="person", validate=validate.OneOf(KINDS))
    emails = _contacts(EmailEntry, load_default=list)
    phones = _contacts(PhoneEntry, load_default=list)
    addresses = _contacts(AddressEntry, load_default=list)
    preferred_channel = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(PREFERRED_CHANNELS)
    )
    language = Language(load_default="zh-CN")
    preferences = fields.Nested(PreferencesData, load_default=dict)
    tags = fields.List(Tag(), load_default=list, validate=validate.Length(max=50))
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))
    owner_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=200)
    )
    consents = fields.List(
        fields.Nested(ConsentEntry), load_default=list, validate=validate.Length(max=20)
    )

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        """Reported with the fields' own errors: the price range, and phone numbers read in
        the country of the primary address (else China)."""
        errors: dict[str, Any] = {}
        if isinstance(data.get("preferences"), dict):
            problems = preference_errors(data["preferences"])
            if problems:
                errors["preferences"] = problems
        if isinstance(data.get("phones"), list):
            _, problems = normalise_phones(
                data["phones"], default_region(data.get("addresses") or [])
            )
            if problems:
                errors["phones"] = problems
        if errors:
            raise ValidationError(errors)

    @post_load
    def _normalise(self, data, **kwargs):
        """Primary flags, and phone numbers in E.164."""
        for name in ("emails", "phones", "addresses"):
            data[name] = with_primary(data[name])
        data["phones"], _ = normalise_phones(data["phones"], default_region(data["addresses"]))
        data.setdefault("attributes", {})
        return data


class CustomerChanges(_Record):
    """``update_customer``'s ``changes``: any of the record's fields; owner, tags, consents and
    attributes have their own RPCs, and status, version or ids are nobody's to set (an unknown
    field is an error, not ignored)."""

    name = Text(validate=validate.Length(min=1, max=200))

    @post_load
    def _normalise(self, data, **kwargs):
        for name in ("emails", "phones", "addresses"):
            if name in data:
                data[name] = with_primary(data[name])
        return data


# -- RPC envelopes ------------------------------------------------------------------------------


class ActorSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(ACTOR_KINDS))
    role = fields.String(load_default=None, allow_none=True)
    ip = fields.String(load_default=None, allow_none=True)
    request_id = fields.String(load_default=None, allow_none=True)
    session_id = fields.String(load_default=None, allow_none=True)


class ViewerSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    kind = fields.String(load_default="user", allow_none=True)


def _actor() -> fields.Nested:
    return fields.Nested(ActorSchema, required=True)


def _viewer() -> fields.Nested:
    return fields.Nested(ViewerSchema, required=True)


def _version(required: bool = False) -> fields.Integer:
    if required:
        return fields.Integer(required=True, validate=validate.Range(min=1), strict=True)
    return fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1), strict=True
    )


def _limit() -> fields.Integer:
    return fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIST_LIMIT))


def _cursor() -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class CreateArgs(Schema):
    actor = _actor()
    viewer = _viewer()
    force = fields.Boolean(load_default=False)


class GetArgs(Schema):
    viewer = _viewer()
    customer_id = _id(required=True)
    as_of = UtcDateTime(load_default=None, allow_none=True)


class UpdateArgs(Schema):
    actor = _actor()
    viewer = _viewer()
    customer_id = _id(required=True)
    expected_version = _version(required=True)


class SetTagsArgs(Schema):
    actor = _actor()
    viewer = _viewer()
    customer_id = _id(required=True)
    add = fields.List(Tag(), load_default=list, validate=validate.Length(max=50))
    remove = fields.List(Tag(), load_default=list, validate=validate.Length(max=50))
    expected_version = _version()


class AssignArgs(Schema):
    actor = _actor()
    viewer = _viewer()
    customer_id = _id(required=True)
    owner_id = fields.String(required=True, allow_none=True, validate=validate.Length(1, 200))
    expected_version = _version()


class ConsentArgs(Schema):
    actor = _actor()
    viewer = _viewer()
    customer_id = _id(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CONSENT_CHANNELS))
    granted = fields.Boolean(required=True)
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))
    note = _text(500, load_default=None)


class SetAttributesArgs(Schema):
    actor = _actor()
    viewer = _viewer()
    customer_id = _id(required=True)
    expected_version = _version()


class AttributeValues(Schema):
    """``set_attributes``'s ``values``: attribute key → value, or null to remove it (checked
    against the definitions once they are read)."""

    class Meta:
        unknown = EXCLUDE

    @post_load(pass_original=True)
    def _keep(self, data, original_data, **kwargs):
        return dict(original_data)


class StatusArgs(Schema):
    actor = _actor()
    viewer = _viewer()
    customer_id = _id(required=True)
    expected_version = _version()


class MergeArgs(Schema):
    actor = _actor()
    target_id = _id(required=True)
    source_id = _id(required=True)

    @validates_schema
    def _two(self, data, **kwargs):
        if data.get("target_id") and data.get("target_id") == data.get("source_id"):
            raise ValidationError("Must differ from target_id.", "source_id")


class UndoMergeArgs(Schema):
    actor = _actor()
    merge_id = _id(required=True)


class EraseArgs(Schema):
    actor = _actor()
    customer_id = _id(required=True)


class SearchArgs(Schema):
    viewer = _viewer()
    q = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    tag = Tag(load_default=None, allow_none=True)
    owner_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    status = fields.String(
        load_default="active", allow_none=True, validate=validate.OneOf((*STATUSES, "all"))
    )
    created_from = UtcDateTime(load_default=None, allow_none=True)
    created_to = UtcDateTime(load_default=None, allow_none=True)
    consent = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(CONSENT_CHANNELS)
    )
    has_orders = fields.Boolean(load_default=None, allow_none=True)
    segment = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SEGMENTS))
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORTS))
    limit = _limit()
    cursor = _cursor()


class TimelineArgs(Schema):
    viewer = _viewer()
    customer_id = _id(required=True)
    limit = _limit()
    cursor = _cursor()


class ViewerCustomerArgs(Schema):
    viewer = _viewer()
    customer_id = _id(required=True)


class DefineAttributeArgs(Schema):
    actor = _actor()
    key = fields.String(
        required=True,
        validate=validate.Regexp(
            _ATTRIBUTE_KEY, error="Lower-case letters, digits and '_', starting with a letter."
        ),
    )
    type = fields.String(required=True, validate=validate.OneOf(ATTRIBUTE_TYPES))
    label = _text(100, required=True)
    options = fields.List(
        _text(100, required=True),
        load_default=None,
        allow_none=True,
        validate=[
            validate.Length(min=1, max=100),
            _distinct(lambda option: option, "An option is given twice."),
        ],
    )

    @validates_schema(skip_on_field_errors=False)
    def _options(self, data, **kwargs):
        if data.get("type") == "choice" and not data.get("options"):
            raise ValidationError("A choice needs its options.", "options")
        if data.get("type") not in (None, "choice") and data.get("options") is not None:
            raise ValidationError("Only a choice has options.", "options")


# -- bulk imports -------------------------------------------------------------------------------

IMPORT_MODES = ("create", "update", "upsert")
IMPORT_MATCH_ON = ("email", "phone", "external_id")
#: Most rows one ``import_rows`` call takes (the driver sends 500).
MAX_IMPORT_BATCH = 1000
MAX_IMPORT_COLUMNS = 200


class BeginImportArgs(Schema):
    actor = _actor()
    import_id = _id(required=True)
    filename = _text(200, required=True)
    mode = fields.String(required=True, validate=validate.OneOf(IMPORT_MODES))
    match_on = fields.String(required=True, validate=validate.OneOf(IMPORT_MATCH_ON))
    columns = fields.List(
        fields.String(validate=validate.Length(max=200)),
        required=True,
        validate=validate.Length(min=1, max=MAX_IMPORT_COLUMNS),
    )
    total_rows = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class ImportRow(Schema):
    row = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    values = fields.Dict(
        keys=fields.String(validate=validate.Length(max=200)),
        values=fields.String(allow_none=True),
        required=True,
        validate=validate.Length(max=MAX_IMPORT_COLUMNS + 1),
    )


class ImportRowsArgs(Schema):
    actor = _actor()
    import_id = _id(required=True)
    rows = fields.List(
        fields.Nested(ImportRow), required=True, validate=validate.Length(max=MAX_IMPORT_BATCH)
    )


class FinishImportArgs(Schema):
    actor = _actor()
    import_id = _id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("completed", "failed")))
    error = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ImportArgs(Schema):
    viewer = _viewer()
    import_id = _id(required=True)


class ImportPageArgs(Schema):
    viewer = _viewer()
    limit = _limit()
    cursor = _cursor()


class RejectionPageArgs(ImportPageArgs):
    import_id = _id(required=True)


class RevertImportArgs(Schema):
    actor = _actor()
    import_id = _id(required=True)


# -- helpers ------------------------------------------------------------------------------------


def _messages(exc: ValidationError) -> dict[str, Any]:
    return dict(exc.messages) if isinstance(exc.messages, dict) else {"_schema": exc.messages}


def load_args(
    schema: Schema | type[Schema],
    args: dict[str, Any],
    payload: tuple[str, Schema | type[Schema], Any] | None = None,
) -> dict[str, Any]:
    """Validate an RPC's arguments, and (``payload``: its name, schema and value) the data it
    carries, whose errors are keyed by the data's own fields. Every problem is reported at
    once as ``BadRequest`` ``{field: messages}`` (keys as strings, as they arrive over RPC)."""
    errors: dict[str, Any] = {}
    try:
        loaded = as_instance(schema).load(args)
    except ValidationError as exc:
        errors.update(_messages(exc))
        loaded = exc.valid_data if isinstance(exc.valid_data, dict) else {}
    if payload is not None:
        name, payload_schema, value = payload
        if not isinstance(value, Mapping):
            errors[name] = ["Must be an object."]
        else:
            try:
                loaded[name] = as_instance(payload_schema).load(dict(value))
            except ValidationError as exc:
                errors.update(_messages(exc))
    if errors:
        raise BadRequest.for_fields(json.loads(json.dumps(errors, default=str)))
    return loaded
