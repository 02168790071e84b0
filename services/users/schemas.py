"""marshmallow schemas of the RPC arguments, and the helpers that turn a failed validation into
``BadRequest`` with per-field messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from services.users.config import LANGUAGES, ROLES
from services.users.events import UtcDateTime
from services.users.passwords import MAX_INPUT_LENGTH
from shared.errors import BadRequest
from shared.phones import normalise_phone
from shared.schemas import as_instance

ACTOR_KINDS = ("user", "api_key", "system")
MAX_LIST_LIMIT = 200


class Trimmed(fields.String):
    """A string with surrounding whitespace removed."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class EmailAddress(fields.Email):
    """An e-mail address, trimmed and lower-cased (addresses are unique case-insensitively)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = value.strip().lower()
        return super()._deserialize(value, attr, data, **kwargs)


class Phone(fields.String):
    """A phone number as E.164, read as the customers service reads one (``shared.phones``):
    "+86 138-1234-5678", "0086 138…" (CN's international prefix) or a national number of the
    default region ("13812345678"). Empty means none."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if text == "":
            return None
        try:
            return normalise_phone(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


def _email(**kwargs) -> EmailAddress:
    return EmailAddress(validate=validate.Length(max=254), **kwargs)


def _name(**kwargs) -> Trimmed:
    return Trimmed(validate=validate.Length(min=1, max=100), **kwargs)


def _role(**kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(ROLES), **kwargs)


def _language(**kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(LANGUAGES), **kwargs)


def _secret(**kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=MAX_INPUT_LENGTH), **kwargs)


class UuidString(fields.UUID):
    """A UUID, handed on as its canonical string."""

    def _deserialize(self, value, attr, data, **kwargs):
        return str(super()._deserialize(value, attr, data, **kwargs))


def _id(**kwargs) -> UuidString:
    return UuidString(**kwargs)


class ActorSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(ACTOR_KINDS))
    role = fields.String(load_default=None, allow_none=True)
    ip = fields.String(load_default=None, allow_none=True)
    request_id = fields.String(load_default=None, allow_none=True)
    session_id = fields.String(load_default=None, allow_none=True)


def _actor() -> fields.Nested:
    return fields.Nested(ActorSchema, required=True)


class EnsureAdminArgs(Schema):
    email = _email(required=True)
    password = _secret(required=True)
    name = _name(load_default="Administrator")


class CreateUserArgs(Schema):
    actor = _actor()
    email = _email(required=True)
    name = _name(required=True)
    role = _role(required=True)
    password = _secret(required=True)
    phone = Phone(load_default=None, allow_none=True)
    language = _language(load_default="zh-CN")


class RegisterArgs(Schema):
    email = _email(required=True)
    name = _name(required=True)
    password = _secret(required=True)
    client_ip = fields.String(load_default=None, allow_none=True)


class LoginArgs(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = _secret(required=True)
    client_ip = fields.String(load_default=None, allow_none=True)
    otp = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    user_agent = fields.String(load_default=None, allow_none=True)


class RefreshArgs(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))
    client_ip = fields.String(load_default=None, allow_none=True)


class LogoutArgs(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class AuthenticateArgs(Schema):
    access_token = fields.String(required=True, validate=validate.Length(min=1, max=8192))


class AuthenticateApiKeyArgs(Schema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=200))


class UserIdArgs(Schema):
    user_id = _id(required=True)


class DisplayNamesArgs(Schema):
    user_ids = fields.List(_id(), required=True, validate=validate.Length(max=200))


class NamesByRoleArgs(Schema):
    role = _role(required=True)


class ListUsersArgs(Schema):
    q = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    role = _role(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIST_LIMIT))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ProfileChangesArgs(Schema):
    email = _email()
    name = _name()
    phone = Phone(allow_none=True)
    language = _language()


class UpdateProfileArgs(Schema):
    actor = _actor()
    user_id = _id(required=True)
    changes = fields.Nested(ProfileChangesArgs, required=True)
    expected_version = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1)
    )


class ChangePasswordArgs(Schema):
    actor = _actor()
    user_id = _id(required=True)
    current_password = _secret(required=True)
    new_password = _secret(required=True)


class ResetPasswordArgs(Schema):
    actor = _actor()
    user_id = _id(required=True)
    new_password = _secret(required=True)


class ChangeRoleArgs(Schema):
    actor = _actor()
    user_id = _id(required=True)
    role = _role(required=True)


class ActorUserArgs(Schema):
    actor = _actor()
    user_id = _id(required=True)


class TotpConfirmArgs(Schema):
    actor = _actor()
    user_id = _id(required=True)
    code = fields.String(required=True, validate=validate.Length(min=1, max=64))


class TotpDisableArgs(Schema):
    actor = _actor()
    user_id = _id(required=True)
    password = _secret(required=True)


class SecuritySettingsChanges(Schema):
    self_registration = fields.Boolean()
    mfa_required_roles = fields.List(_role())
    lockout_threshold = fields.Integer(validate=validate.Range(min=1, max=100))
    lockout_window_seconds = fields.Integer(validate=validate.Range(min=60, max=86400))
    lockout_duration_seconds = fields.Integer(validate=validate.Range(min=60, max=86400))


class UpdateSecuritySettingsArgs(Schema):
    actor = _actor()
    changes = fields.Nested(SecuritySettingsChanges, required=True)


class CreateApiKeyArgs(Schema):
    actor = _actor()
    name = _name(required=True)
    role = _role(required=True)


class RevokeApiKeyArgs(Schema):
    actor = _actor()
    key_id = _id(required=True)


class AuditEntry(Schema):
    class Meta:
        unknown = EXCLUDE

    actor_id = fields.String(load_default=None, allow_none=True)
    actor_kind = fields.String(load_default=None, allow_none=True)
    actor_role = fields.String(load_default=None, allow_none=True)
    action = fields.String(required=True, validate=validate.Length(min=1, max=200))
    method = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16))
    path = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    resource_type = fields.String(load_default=None, allow_none=True)
    resource_id = fields.String(load_default=None, allow_none=True)
    status = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(100, 599))
    ip = fields.String(load_default=None, allow_none=True)
    request_id = fields.String(load_default=None, allow_none=True)
    at = UtcDateTime(load_default=None, allow_none=True)
    entry_id = fields.UUID(load_default=None, allow_none=True)


class RecordAuditArgs(Schema):
    entry = fields.Nested(AuditEntry, required=True)


class ListAuditArgs(Schema):
    actor_id = fields.String(load_default=None, allow_none=True)
    action = fields.String(load_default=None, allow_none=True)
    resource_type = fields.String(load_default=None, allow_none=True)
    resource_id = fields.String(load_default=None, allow_none=True)
    since = UtcDateTime(load_default=None, allow_none=True)
    until = UtcDateTime(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIST_LIMIT))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


# -- helpers ------------------------------------------------------------------------------------


def load_args(
    schema: Schema | type[Schema],
    data: dict[str, Any],
    checks: Callable[[dict[str, Any]], dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    """Validate RPC arguments; ``checks(valid_data)`` may add field errors (password policy).
    Every problem is reported at once as ``BadRequest`` ``{field: [messages]}``."""
    errors: dict[str, Any] = {}
    try:
        loaded = as_instance(schema).load(data)
    except ValidationError as exc:
        errors = dict(exc.messages) if isinstance(exc.messages, dict) else {"_": exc.messages}
        loaded = exc.valid_data if isinstance(exc.valid_data, dict) else {}
    if checks is not None:
        for field_name, messages in checks(loaded).items():
            if messages and field_name not in errors:
                errors[field_name] = list(messages)
    if errors:
        raise BadRequest.for_fields(errors)
    return loaded
