"""The customers service's event catalogue: every event type it appends, one marshmallow schema
per schema version.

Personal data (name, company, e-mail addresses, phone numbers, postal addresses, preference
notes, consent notes, attribute values, the external id) is in the log only sealed under the
customer's key (``shared.sealing``, DESIGN §2): the schemas declare those fields
:class:`Sealed`, which accepts nothing else, so a plain value cannot be appended by mistake.
Erasing a customer destroys the key (``customer.erased``); their sealed values then read as
null for ever, here and for every consumer. :data:`SEALED_FIELDS` lists them per event type.

What a merge moves into the target (``customer.merged``'s ``absorbed``) stays sealed under the
*source's* key: it is the source person's data, and erasing them shreds it in both streams.

Streams:
- ``customer`` / ``<customer id>``: one customer's record.
- ``attribute`` / ``attribute:<key>``: one admin-defined attribute (no personal data).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.customers.domain import (
    ADDRESS_LABELS,
    ARCHIVE_REASONS,
    ATTRIBUTE_TYPES,
    CONSENT_CHANNELS,
    CONSENT_METHODS,
    EMAIL_LABELS,
    KINDS,
    PHONE_LABELS,
    PREFERRED_CHANNELS,
    STATUSES,
)
from shared.events import EventRegistry, isoformat
from shared.sealing import ALGORITHM, SEALED, is_sealed

registry = EventRegistry("customers")

CUSTOMER_STREAM = "customer"
ATTRIBUTE_STREAM = "attribute"

#: Sealed values inside these nested payloads belong to the subject named by another field.
NESTED_SUBJECTS = {"absorbed": "source_id"}


class UtcDateTime(fields.Field):
    """An aware datetime on the wire as UTC ISO-8601 with ``Z``."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if isinstance(value, str):
            value = self._deserialize(value, attr, obj)
        return isoformat(value)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValidationError("Not a valid ISO-8601 datetime.") from exc
        if moment.tzinfo is None:
            raise ValidationError("A timezone is required (UTC, ending in Z).")
        return moment.astimezone(UTC)


def _base64(min_bytes: int, max_bytes: int | None = None):
    def check(value: str) -> None:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("Not valid base64.") from None
        if len(raw) < min_bytes or (max_bytes is not None and len(raw) > max_bytes):
            raise ValidationError("Wrong length.")

    return check


class SealedValueV1(Schema):
    """What ``shared.sealing.Vault.seal`` makes of a value: AES-256-GCM under the subject's key,
    the subject bound in as associated data."""

    subject = fields.String(required=True, validate=validate.Length(min=1))
    alg = fields.String(required=True, validate=validate.Equal(ALGORITHM))
    nonce = fields.String(required=True, validate=_base64(12, 12))
    data = fields.String(required=True, validate=_base64(16))


_SEALED_VALUE = SealedValueV1()


class Sealed(fields.Field):
    """Personal data, sealed: ``{"$sealed": {"subject", "alg", "nonce", "data"}}`` (or null
    when ``allow_none``: null is never sealed). ``plain`` describes the value inside, checked
    before sealing; a plain value here is rejected."""

    def __init__(self, plain: fields.Field, **kwargs: Any):
        self.plain = plain
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "personal data sealed with the customer's key (crypto-shredding)"
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_sealed(value):
            raise ValidationError("Personal data must be sealed.")
        inner = value[SEALED]
        if not isinstance(inner, dict):
            raise ValidationError("Not a sealed value.")
        errors = _SEALED_VALUE.validate(inner)
        if errors:
            raise ValidationError({SEALED: errors})
        return {SEALED: dict(inner)}

    def _serialize(self, value, attr, obj, **kwargs):
        return value


def sealed_values(value: Any) -> Iterator[dict]:
    """Every sealed value inside a (loaded) payload, at any depth."""
    if is_sealed(value):
        yield value[SEALED]
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from sealed_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from sealed_values(item)


# -- plain shapes of the sealed values ----------------------------------------------------------


class EmailV1(Schema):
    address = fields.String(required=True)
    label = fields.String(required=True, validate=validate.OneOf(EMAIL_LABELS))
    primary = fields.Boolean(required=True)


class PhoneV1(Schema):
    number = fields.String(required=True, validate=validate.Regexp(r"^\+[1-9]\d{6,14}$"))
    label = fields.String(required=True, validate=validate.OneOf(PHONE_LABELS))
    primary = fields.Boolean(required=True)


class AddressV1(Schema):
    label = fields.String(required=True, validate=validate.OneOf(ADDRESS_LABELS))
    country = fields.String(required=True, validate=validate.Length(equal=2))
    region = fields.String(required=True, allow_none=True)
    city = fields.String(required=True, allow_none=True)
    district = fields.String(required=True, allow_none=True)
    street = fields.String(required=True, allow_none=True)
    postal_code = fields.String(required=True, allow_none=True)
    primary = fields.Boolean(required=True)


def _sealed_list(schema: type[Schema], **kwargs: Any) -> Sealed:
    return Sealed(fields.List(fields.Nested(schema)), **kwargs)


def _sealed_text(**kwargs: Any) -> Sealed:
    return Sealed(fields.String(), **kwargs)


def _sealed_attributes(**kwargs: Any) -> Sealed:
    return Sealed(fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=False)), **kwargs)


class ConsentStateV1(Schema):
    granted = fields.Boolean(required=True)
    at = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))


class PreferencesV1(Schema):
    categories = fields.List(fields.String(), required=True)
    brands = fields.List(fields.String(), required=True)
    price_min = fields.Integer(required=True, allow_none=True, strict=True)
    price_max = fields.Integer(required=True, allow_none=True, strict=True)
    currency = fields.String(required=True, allow_none=True, validate=validate.Length(equal=3))
    notes = _sealed_text(required=True, allow_none=True)


class PreferenceChangesV1(Schema):
    categories = fields.List(fields.String())
    brands = fields.List(fields.String())
    price_min = fields.Integer(allow_none=True, strict=True)
    price_max = fields.Integer(allow_none=True, strict=True)
    currency = fields.String(allow_none=True, validate=validate.Length(equal=3))
    notes = _sealed_text(allow_none=True)

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("At least one preference must change.")


class ProfileChangesV1(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    name = _sealed_text()
    company = _sealed_text(allow_none=True)
    emails = _sealed_list(EmailV1)
    phones = _sealed_list(PhoneV1)
    addresses = _sealed_list(AddressV1)
    preferred_channel = fields.String(allow_none=True, validate=validate.OneOf(PREFERRED_CHANNELS))
    language = fields.String()
    source = fields.String(allow_none=True)
    external_id = _sealed_text(allow_none=True)

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("At least one field must change.")


class AbsorbedV1(Schema):
    """What the target took from the source: only what it lacked (sealed under the source's
    key)."""

    emails = _sealed_list(EmailV1, required=True)
    phones = _sealed_list(PhoneV1, required=True)
    addresses = _sealed_list(AddressV1, required=True)
    tags = fields.List(fields.String(), required=True)
    categories = fields.List(fields.String(), required=True)
    brands = fields.List(fields.String(), required=True)
    price_min = fields.Integer(required=True, allow_none=True, strict=True)
    price_max = fields.Integer(required=True, allow_none=True, strict=True)
    currency = fields.String(required=True, allow_none=True)
    notes = _sealed_text(required=True, allow_none=True)
    attributes = _sealed_attributes(required=True)
    consents = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CONSENT_CHANNELS)),
        values=fields.Nested(ConsentStateV1),
        required=True,
    )
    company = _sealed_text(required=True, allow_none=True)
    preferred_channel = fields.String(required=True, allow_none=True)
    source = fields.String(required=True, allow_none=True)


# -- customer events ----------------------------------------------------------------------------


class _CustomerEvent(Schema):
    customer_id = fields.UUID(required=True)

    @validates_schema
    def _sealed_for_the_right_subject(self, data, **kwargs):
        """Personal data is sealed under the key of the customer it belongs to."""
        subject = str(data.get("customer_id"))
        for name, value in data.items():
            owner = str(data.get(NESTED_SUBJECTS[name])) if name in NESTED_SUBJECTS else subject
            if any(sealed["subject"] != owner for sealed in sealed_values(value)):
                raise ValidationError(f"{name}: sealed for another subject.")


@registry.register("customer.registered", 1, "A customer was created, with its whole record.")
class CustomerRegisteredV1(_CustomerEvent):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    name = _sealed_text(required=True)
    company = _sealed_text(required=True, allow_none=True)
    emails = _sealed_list(EmailV1, required=True)
    phones = _sealed_list(PhoneV1, required=True)
    addresses = _sealed_list(AddressV1, required=True)
    preferred_channel = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(PREFERRED_CHANNELS)
    )
    language = fields.String(required=True)
    preferences = fields.Nested(PreferencesV1, required=True)
    tags = fields.List(fields.String(), required=True)
    attributes = _sealed_attributes(required=True)
    owner_id = fields.String(required=True, allow_none=True)
    source = fields.String(required=True, allow_none=True)
    external_id = _sealed_text(required=True, allow_none=True)


@registry.register("customer.updated", 1, "Profile fields changed; only the changed fields.")
class CustomerUpdatedV1(_CustomerEvent):
    changes = fields.Nested(ProfileChangesV1, required=True)


@registry.register(
    "customer.preferences_updated", 1, "Purchase preferences changed; only the changed keys."
)
class CustomerPreferencesUpdatedV1(_CustomerEvent):
    changes = fields.Nested(PreferenceChangesV1, required=True)


@registry.register("customer.tagged", 1, "Tags were added.")
class CustomerTaggedV1(_CustomerEvent):
    tags = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


@registry.register("customer.untagged", 1, "Tags were removed.")
class CustomerUntaggedV1(_CustomerEvent):
    tags = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


@registry.register("customer.assigned", 1, "The owning sales user changed (null: nobody).")
class CustomerAssignedV1(_CustomerEvent):
    owner_id = fields.String(required=True, allow_none=True)
    previous_owner_id = fields.String(required=True, allow_none=True)


@registry.register(
    "customer.consent_recorded",
    1,
    "Marketing consent for a channel was granted or withdrawn (a history: every record kept).",
)
class CustomerConsentRecordedV1(_CustomerEvent):
    channel = fields.String(required=True, validate=validate.OneOf(CONSENT_CHANNELS))
    granted = fields.Boolean(required=True)
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))
    note = _sealed_text(required=True, allow_none=True)
    recorded_by = fields.String(required=True, allow_none=True)


@registry.register("customer.attributes_updated", 1, "Custom attribute values were set or removed.")
class CustomerAttributesUpdatedV1(_CustomerEvent):
    set = _sealed_attributes(required=True)
    unset = fields.List(fields.String(), required=True)


@registry.register(
    "customer.archived",
    1,
    "The customer was archived (hidden from lists). ``reason`` is absent for an archive by "
    "hand; ``import_reverted`` (with ``import_id``) when the import that created the customer "
    "was reverted.",
)
class CustomerArchivedV1(_CustomerEvent):
    reason = fields.String(validate=validate.OneOf(ARCHIVE_REASONS))
    import_id = fields.UUID()


@registry.register("customer.restored", 1, "An archived customer is active again.")
class CustomerRestoredV1(_CustomerEvent):
    pass


@registry.register(
    "customer.merged",
    1,
    "Two customers were merged; appended to both streams. On the target's stream ``absorbed`` "
    "holds what it took from the source; on the source's, ``previous_status`` what undoing "
    "restores. The source's id then resolves to the target.",
)
class CustomerMergedV1(_CustomerEvent):
    merge_id = fields.UUID(required=True)
    source_id = fields.UUID(required=True)
    target_id = fields.UUID(required=True)
    absorbed = fields.Nested(AbsorbedV1, load_default=None, allow_none=True)
    previous_status = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(STATUSES)
    )


@registry.register(
    "customer.merge_undone",
    1,
    "A merge was undone (on both streams): the target gives back what it absorbed, the source "
    "has its previous status again.",
)
class CustomerMergeUndoneV1(_CustomerEvent):
    merge_id = fields.UUID(required=True)
    source_id = fields.UUID(required=True)
    target_id = fields.UUID(required=True)


@registry.register(
    "customer.erased",
    1,
    "The customer's personal data was erased: their key is destroyed, so every sealed value "
    "of theirs reads as null; the record keeps only non-personal fields.",
)
class CustomerErasedV1(_CustomerEvent):
    pass


# -- attribute definitions ----------------------------------------------------------------------


class _AttributeEvent(Schema):
    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,49}$"))


@registry.register("attribute.defined", 1, "An admin defined a custom customer attribute.")
class AttributeDefinedV1(_AttributeEvent):
    type = fields.String(required=True, validate=validate.OneOf(ATTRIBUTE_TYPES))
    label = fields.String(required=True)
    options = fields.List(fields.String(), required=True, allow_none=True)


class AttributeChangesV1(Schema):
    label = fields.String()
    options = fields.List(fields.String(), allow_none=True)

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("At least one field must change.")


@registry.register("attribute.updated", 1, "An attribute's label or options changed.")
class AttributeUpdatedV1(_AttributeEvent):
    changes = fields.Nested(AttributeChangesV1, required=True)


CUSTOMER_EVENTS = frozenset(key[0] for key in registry if key[0].startswith("customer."))
ATTRIBUTE_EVENTS = frozenset(key[0] for key in registry if key[0].startswith("attribute."))


#: Which fields of a payload are sealed: name → the :class:`Sealed` field, or → the same kind of
#: map for a nested payload (``changes``, ``preferences``, ``absorbed``).
SealedSpec = dict[str, Any]


def sealed_spec(schema: Schema) -> SealedSpec:
    spec: SealedSpec = {}
    for name, field in schema.fields.items():
        if isinstance(field, Sealed):
            spec[name] = field
        elif isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            inner = sealed_spec(field.schema)
            if inner:
                spec[name] = inner
    return spec


def _paths(spec: SealedSpec, prefix: str = "") -> tuple[str, ...]:
    return tuple(
        path
        for name, inner in spec.items()
        for path in (
            _paths(inner, f"{prefix}{name}.") if isinstance(inner, dict) else (prefix + name,)
        )
    )


#: ``(event type, version)`` → what to seal, read from the schemas (the one source of truth).
SEALED_SPECS: dict[tuple[str, int], SealedSpec] = {
    key: spec for key in registry if (spec := sealed_spec(registry.schema(*key)))
}

#: The sealed fields per event type, as dotted paths: ``{"customer.registered": ("name", ...)}``.
SEALED_FIELDS: dict[str, tuple[str, ...]] = {
    event_type: _paths(spec) for (event_type, _version), spec in SEALED_SPECS.items()
}
