"""marshmallow schemas of the HTTP API: they validate requests and shape responses, and the
OpenAPI document is generated from them."""

from __future__ import annotations

import uuid

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

ROLE = validate.OneOf(["admin", "manager", "sales", "analyst"])
LANGUAGE = validate.OneOf(["zh-CN", "en"])
TIMESTAMP = {"format": "date-time"}


def _password(**kwargs):
    return fields.String(validate=validate.Length(min=1, max=1024), **kwargs)


class Problem(Schema):
    """RFC 9457 problem details, with extension members where a case has more to say
    (``existing_id``, ``expected_version``, ``resource_id``, ...)."""

    class Meta:
        unknown = INCLUDE

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(
        keys=fields.String(), values=fields.Raw(), metadata={"description": "field → messages"}
    )
    code = fields.String(metadata={"description": "machine-readable reason, when there is one"})
    retry_after = fields.Integer()


class User(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    phone = fields.String(allow_none=True)
    language = fields.String()
    role = fields.String()
    active = fields.Boolean()
    mfa_enabled = fields.Boolean()
    mfa_setup_required = fields.Boolean()
    created_at = fields.String(metadata=TIMESTAMP)
    updated_at = fields.String(metadata=TIMESTAMP)
    last_login_at = fields.String(allow_none=True, metadata=TIMESTAMP)
    erased_at = fields.String(allow_none=True, metadata=TIMESTAMP)
    version = fields.Integer(metadata={"description": "stream version; also the ETag"})


class UserPage(Schema):
    items = fields.List(fields.Nested(User))
    next_cursor = fields.String(allow_none=True)


class Tokens(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    user = fields.Nested(User)


class LoginRequest(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = _password(required=True)
    otp = fields.String(validate=validate.Length(min=6, max=32))


class RefreshRequest(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class RegisterRequest(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    password = _password(required=True)


class AuthConfig(Schema):
    self_registration = fields.Boolean()


class CreateUserRequest(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=ROLE)
    password = _password(required=True)
    phone = fields.String(allow_none=True, validate=validate.Length(max=32))
    language = fields.String(validate=LANGUAGE)


class ProfileChanges(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.String(allow_none=True, validate=validate.Length(max=32))
    language = fields.String(validate=LANGUAGE)

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one field.", "_schema")


MAX_IDS = 200


class IdList(fields.String):
    """``id=<uuid>,<uuid>``: up to :data:`MAX_IDS` ids of one kind (``noun``), comma-separated."""

    def __init__(self, noun: str, **kwargs):
        super().__init__(**kwargs)
        self.noun = noun

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        values = [part.strip() for part in text.split(",") if part.strip()]
        if not values or len(values) > MAX_IDS:
            raise ValidationError(f"Give 1 to {MAX_IDS} {self.noun} ids, comma-separated.")
        try:
            return [str(uuid.UUID(part)) for part in values]
        except ValueError:
            raise ValidationError(f"Must be {self.noun} ids (UUIDs), comma-separated.") from None


class EraseRequest(Schema):
    confirm = fields.Boolean(
        required=True,
        validate=validate.Equal(True, error="Send true to erase: it cannot be undone."),
        metadata={"description": "true: erase the personal data for good (it cannot be undone)"},
    )


class DisplayNamesQuery(Schema):
    id = IdList("user", metadata={"description": "comma-separated user ids"})
    role = fields.String(
        validate=ROLE,
        metadata={"description": "instead of ids: every active user of this role (a picker)"},
    )

    @validates_schema
    def _ids_or_role(self, data, **kwargs):
        if ("id" in data) == ("role" in data):
            raise ValidationError("Give either id (user ids) or role.", "id")


class DisplayNames(Schema):
    names = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "id → name"}
    )


class UserListQuery(Schema):
    q = fields.String(validate=validate.Length(max=200))
    role = fields.String(validate=ROLE)
    active = fields.Boolean()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=500))


class ChangePasswordRequest(Schema):
    current_password = _password(required=True)
    new_password = _password(required=True)


class ResetPasswordRequest(Schema):
    new_password = _password(required=True)


class RoleChange(Schema):
    role = fields.String(required=True, validate=ROLE)


class TotpEnrolment(Schema):
    secret = fields.String()
    otpauth_uri = fields.String()
    qr_svg = fields.String(metadata={"description": "the otpauth URI as an SVG QR code"})


class TotpConfirm(Schema):
    code = fields.String(required=True, validate=validate.Length(min=6, max=10))


class RecoveryCodes(Schema):
    recovery_codes = fields.List(fields.String())


class PasswordConfirm(Schema):
    password = _password(required=True)


class SecuritySettings(Schema):
    self_registration = fields.Boolean()
    mfa_required_roles = fields.List(fields.String(validate=ROLE))
    lockout_threshold = fields.Integer(validate=validate.Range(min=1, max=100))
    lockout_window_seconds = fields.Integer(validate=validate.Range(min=60, max=86400))
    lockout_duration_seconds = fields.Integer(validate=validate.Range(min=60, max=86400))


class SecuritySettingsChanges(SecuritySettings):
    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one setting.", "_schema")


class ApiKey(Schema):
    id = fields.String()
    name = fields.String()
    role = fields.String()
    prefix = fields.String()
    created_at = fields.String(metadata=TIMESTAMP)
    created_by = fields.String(allow_none=True)
    last_used_at = fields.String(allow_none=True, metadata=TIMESTAMP)
    revoked_at = fields.String(allow_none=True, metadata=TIMESTAMP)


class ApiKeyCreated(ApiKey):
    key = fields.String(metadata={"description": "the secret; shown only in this response"})


class ApiKeyPage(Schema):
    items = fields.List(fields.Nested(ApiKey))


class CreateApiKeyRequest(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=ROLE)


class AuditEntry(Schema):
    id = fields.String()
    at = fields.String(metadata=TIMESTAMP)
    actor_id = fields.String(allow_none=True)
    actor_kind = fields.String()
    actor_role = fields.String(allow_none=True)
    action = fields.String()
    method = fields.String()
    path = fields.String()
    resource_type = fields.String(allow_none=True)
    resource_id = fields.String(allow_none=True)
    status = fields.Integer()
    ip = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEntry))
    next_cursor = fields.String(allow_none=True)


class AuditQuery(Schema):
    actor_id = fields.String(validate=validate.Length(max=100))
    action = fields.String(validate=validate.Length(max=100))
    resource_type = fields.String(validate=validate.Length(max=100))
    resource_id = fields.String(validate=validate.Length(max=100))
    since = fields.AwareDateTime(default_timezone=None)
    until = fields.AwareDateTime(default_timezone=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=500))
