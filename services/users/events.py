"""The users service's event catalogue: every event type it appends, one marshmallow schema per
schema version.

No payload ever holds a password, a hash, a TOTP secret, a recovery code, a refresh token or
an API key: those live only in the service's private tables. Events say *that* something
happened (a password was changed, a session was revoked), never the secret itself.

Personal data (a user's name, e-mail address, phone number, the client address they signed in
from) is in the log only sealed under that user's key (``shared.sealing``, DESIGN §2): the
schemas declare those fields as :class:`Sealed`, which accepts nothing else, so a plain value
cannot be appended by mistake. Erasing a user destroys the key (``user.erased``); their sealed
values then read as None for ever, in this service and for every consumer. Consumers outside
the service only ever see the sealed form. :data:`SEALED_FIELDS` lists them per event type.

Streams:
- ``user`` / ``<user id>``: the account (profile, role, status, password and MFA changes).
- ``user_auth`` / ``<user id>:auth``: sign-in activity (logins, failures, locks, revoked
  sessions). Kept apart so that signing in does not move the account's version, which clients
  use for optimistic concurrency (ETag) on edits.
- ``api_key`` / ``<key id>`` and ``security_settings`` / ``security-settings``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.users.config import LANGUAGES, ROLES
from shared.events import EventRegistry, isoformat
from shared.sealing import ALGORITHM, SEALED, is_sealed

registry = EventRegistry("users")

USER_STREAM = "user"
AUTH_STREAM = "user_auth"
API_KEY_STREAM = "api_key"
SETTINGS_STREAM = "security_settings"
SETTINGS_STREAM_ID = "security-settings"

REGISTRATION_SOURCES = ("bootstrap", "admin", "self_registration")
LOGIN_METHODS = ("password", "totp", "recovery_code")
FAILURE_REASONS = ("invalid_password", "invalid_otp")
REVOCATION_REASONS = (
    "logout",
    "refresh_reused",
    "password_changed",
    "password_reset",
    "deactivated",
    "erased",
)


def auth_stream_id(user_id: str) -> str:
    return f"{user_id}:auth"


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
    data = fields.String(required=True, validate=_base64(16))  # at least the GCM tag


class Sealed(fields.Field):
    """Personal data, sealed: ``{"$sealed": {"subject", "alg", "nonce", "data"}}`` (or null
    when ``allow_none`` and there is no value: null is never sealed). ``plain`` describes the
    value inside; only the users service, and only while the subject's key exists, can read it.
    A plain value here is rejected: personal data never enters the log unsealed."""

    def __init__(self, plain: fields.Field, **kwargs: Any):
        self.plain = plain
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "personal data sealed with the user's key (crypto-shredding)"
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_sealed(value):
            raise ValidationError("Personal data must be sealed.")
        inner = value[SEALED]
        if not isinstance(inner, dict):
            raise ValidationError("Not a sealed value.")
        errors = SealedValueV1().validate(inner)
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


def _id() -> fields.UUID:
    return fields.UUID(required=True)


def _role() -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(ROLES))


class _UserEvent(Schema):
    user_id = _id()

    @validates_schema
    def _sealed_for_this_user(self, data, **kwargs):
        """A user's personal data is sealed under that user's key, never anyone else's."""
        subject = str(data.get("user_id"))
        if any(value["subject"] != subject for value in sealed_values(data)):
            raise ValidationError("Sealed for another subject than user_id.")


@registry.register("user.registered", 1, "A user account was created.")
class UserRegisteredV1(_UserEvent):
    email = Sealed(fields.String(), required=True)
    name = Sealed(fields.String(), required=True)
    phone = Sealed(fields.String(), required=True, allow_none=True)
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    role = _role()
    source = fields.String(required=True, validate=validate.OneOf(REGISTRATION_SOURCES))


class ProfileChangesV1(Schema):
    email = Sealed(fields.String())
    name = Sealed(fields.String())
    phone = Sealed(fields.String(), allow_none=True)  # null: the phone number was removed
    language = fields.String(validate=validate.OneOf(LANGUAGES))

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("At least one field must change.")


@registry.register("user.profile_updated", 1, "Profile fields changed; only changed fields.")
class UserProfileUpdatedV1(_UserEvent):
    changes = fields.Nested(ProfileChangesV1, required=True)


@registry.register("user.password_changed", 1, "The user changed their own password.")
class UserPasswordChangedV1(_UserEvent):
    pass


@registry.register("user.password_reset", 1, "An administrator set a new password.")
class UserPasswordResetV1(_UserEvent):
    pass


@registry.register("user.role_changed", 1, "The user's role changed.")
class UserRoleChangedV1(_UserEvent):
    role = _role()
    previous_role = _role()


@registry.register("user.deactivated", 1, "The account can no longer sign in.")
class UserDeactivatedV1(_UserEvent):
    pass


@registry.register("user.reactivated", 1, "A deactivated account may sign in again.")
class UserReactivatedV1(_UserEvent):
    pass


@registry.register(
    "user.erased",
    1,
    "The user's personal data was erased: their key is destroyed, so every sealed value of "
    "theirs reads as null; the account is inactive for good and has no second factor.",
)
class UserErasedV1(_UserEvent):
    pass


@registry.register("user.mfa_enabled", 1, "The user enrolled a second factor.")
class UserMfaEnabledV1(_UserEvent):
    method = fields.String(required=True, validate=validate.OneOf(("totp",)))


@registry.register("user.mfa_disabled", 1, "The user's second factor was removed.")
class UserMfaDisabledV1(_UserEvent):
    pass


@registry.register("user.login_succeeded", 1, "The user signed in; a session was opened.")
class UserLoginSucceededV1(_UserEvent):
    session_id = _id()
    method = fields.String(required=True, validate=validate.OneOf(LOGIN_METHODS))
    client_ip = Sealed(fields.String(), required=True, allow_none=True)


@registry.register("user.login_failed", 1, "A sign-in with a wrong password or code.")
class UserLoginFailedV1(_UserEvent):
    reason = fields.String(required=True, validate=validate.OneOf(FAILURE_REASONS))
    client_ip = Sealed(fields.String(), required=True, allow_none=True)
    failures = fields.Integer(required=True, validate=validate.Range(min=1))


@registry.register("user.locked", 1, "Too many failed sign-ins: locked until a time.")
class UserLockedV1(_UserEvent):
    locked_until = UtcDateTime(required=True)
    failures = fields.Integer(required=True, validate=validate.Range(min=1))


@registry.register("user.session_revoked", 1, "Sessions (refresh-token families) were revoked.")
class UserSessionRevokedV1(_UserEvent):
    session_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1))
    reason = fields.String(required=True, validate=validate.OneOf(REVOCATION_REASONS))


@registry.register("api_key.issued", 1, "An API key was issued (the key itself is not here).")
class ApiKeyIssuedV1(Schema):
    api_key_id = _id()
    name = fields.String(required=True)
    role = _role()
    prefix = fields.String(required=True)
    created_by = fields.String(required=True, allow_none=True)


@registry.register("api_key.revoked", 1, "An API key was revoked.")
class ApiKeyRevokedV1(Schema):
    api_key_id = _id()
    revoked_by = fields.String(required=True, allow_none=True)


class SecuritySettingsChangesV1(Schema):
    self_registration = fields.Boolean()
    mfa_required_roles = fields.List(fields.String(validate=validate.OneOf(ROLES)))
    lockout_threshold = fields.Integer(validate=validate.Range(min=1))
    lockout_window_seconds = fields.Integer(validate=validate.Range(min=1))
    lockout_duration_seconds = fields.Integer(validate=validate.Range(min=1))

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("At least one setting must change.")


@registry.register("security_settings.updated", 1, "Security settings changed; only changes.")
class SecuritySettingsUpdatedV1(Schema):
    changes = fields.Nested(SecuritySettingsChangesV1, required=True)


USER_EVENTS = frozenset(
    {
        "user.registered",
        "user.profile_updated",
        "user.password_changed",
        "user.password_reset",
        "user.role_changed",
        "user.deactivated",
        "user.reactivated",
        "user.mfa_enabled",
        "user.mfa_disabled",
        "user.erased",
    }
)
AUTH_EVENTS = frozenset(
    {"user.login_succeeded", "user.login_failed", "user.locked", "user.session_revoked"}
)


#: Which fields of a payload are sealed: name → the :class:`Sealed` field, or → the same kind of
#: map for a nested payload (``changes``).
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

#: The sealed fields per event type, as dotted paths: ``{"user.registered": ("email", ...)}``.
SEALED_FIELDS: dict[str, tuple[str, ...]] = {
    event_type: _paths(spec) for (event_type, _version), spec in SEALED_SPECS.items()
}
