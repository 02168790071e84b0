"""nameko entrypoints of the users service (thin: validate arguments, hand over to the
application modules beside this one, answer JSON).

Every argument is a keyword argument with a JSON value; every answer is JSON. Errors are the
classes of ``shared.errors`` (they cross RPC as themselves), with a machine-readable
``extra["code"]`` where a client must tell cases apart.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy import delete

from services.users import ratelimit, schemas, tables, views
from services.users.accounts import Accounts, password_errors
from services.users.admin import AuditLog, SecuritySettings
from services.users.apikeys import ApiKeys
from services.users.auth import Auth
from services.users.config import users_config
from services.users.mfa import Mfa
from services.users.schemas import load_args
from shared.errors import CmsError, Unauthorized
from shared.events import utcnow
from shared.schemas import schema_instance
from shared.service import EventSourcedService
from shared.subscriptions import durable_event_handler

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 600
#: What the gateway publishes for each write through the API (docs/service-contracts.md).
AUDIT_ENTRY = "audit.entry"

#: The entrypoint of every RPC here: errors meant for the caller (``CmsError``) are expected,
#: and nameko logs them as warnings, not as failures of the service.
api = rpc(expected_exceptions=(CmsError,))


class RequestId(DependencyProvider):
    """The request id the caller passed in nameko's context data, if any (the gateway's
    ``X-Request-ID``): it goes into event metadata as request and correlation id."""

    def get_dependency(self, worker_ctx) -> str | None:
        data = worker_ctx.data or {}
        return data.get("request_id") or data.get("correlation_id")


def _password_check(field: str = "password"):
    def check(loaded: dict[str, Any]) -> dict[str, list[str]]:
        password = loaded.get(field)
        if password is None:
            return {}
        return password_errors(field, password, loaded.get("email"), loaded.get("name"))

    return check


class UsersService(EventSourcedService):
    """Accounts, sign-in, sessions, second factor, API keys, security settings, audit log."""

    name = "users"
    request_id = RequestId()

    # -- accounts ----------------------------------------------------------------------------

    @api
    def ensure_admin(self, email, password, name="Administrator") -> dict[str, Any]:
        args = load_args(
            schemas.EnsureAdminArgs, {"email": email, "password": password, "name": name}
        )
        return Accounts(self.db, self.request_id).ensure_admin(**args)

    @api
    def create_user(
        self, actor, email, name, role, password, phone=None, language="zh-CN"
    ) -> dict[str, Any]:
        args = load_args(
            schemas.CreateUserArgs,
            {
                "actor": actor,
                "email": email,
                "name": name,
                "role": role,
                "password": password,
                "phone": phone,
                "language": language,
            },
            _password_check(),
        )
        return Accounts(self.db, self.request_id).create_user(**args)

    @api
    def register(self, email, name, password, client_ip=None) -> dict[str, Any]:
        args = load_args(
            schemas.RegisterArgs,
            {"email": email, "name": name, "password": password, "client_ip": client_ip},
            _password_check(),
        )
        return Accounts(self.db, self.request_id).register(**args)

    @api
    def get_user(self, user_id) -> dict[str, Any]:
        args = load_args(schemas.UserIdArgs, {"user_id": user_id})
        try:
            return views.get_user(self.db.connection(), args["user_id"])
        finally:
            self.db.rollback()

    @api
    def display_names(self, user_ids) -> dict[str, str]:
        """Names of colleagues, for any signed-in staff member (owners, actors): no e-mail,
        role or anything else of the account."""
        args = load_args(schemas.DisplayNamesArgs, {"user_ids": user_ids})
        try:
            return views.display_names(self.db.connection(), [str(i) for i in args["user_ids"]])
        finally:
            self.db.rollback()

    @api
    def names_by_role(self, role) -> dict[str, str]:
        """Names of the active users of ``role``, for any signed-in staff member (a manager
        assigning a customer to a sales rep): no e-mail or anything else of the accounts."""
        args = load_args(schemas.NamesByRoleArgs, {"role": role})
        try:
            return views.names_by_role(self.db.connection(), args["role"])
        finally:
            self.db.rollback()

    @api
    def list_users(self, q=None, role=None, active=None, limit=50, cursor=None) -> dict[str, Any]:
        args = load_args(
            schemas.ListUsersArgs,
            {"q": q, "role": role, "active": active, "limit": limit, "cursor": cursor},
        )
        try:
            return views.list_users(self.db.connection(), **args)
        finally:
            self.db.rollback()

    @api
    def update_profile(self, actor, user_id, changes, expected_version=None) -> dict[str, Any]:
        args = load_args(
            schemas.UpdateProfileArgs,
            {
                "actor": actor,
                "user_id": user_id,
                "changes": changes,
                "expected_version": expected_version,
            },
        )
        return Accounts(self.db, self.request_id).update_profile(**args)

    @api
    def change_password(self, actor, user_id, current_password, new_password) -> None:
        args = load_args(
            schemas.ChangePasswordArgs,
            {
                "actor": actor,
                "user_id": user_id,
                "current_password": current_password,
                "new_password": new_password,
            },
        )
        Accounts(self.db, self.request_id).change_password(**args)

    @api
    def reset_password(self, actor, user_id, new_password) -> None:
        args = load_args(
            schemas.ResetPasswordArgs,
            {"actor": actor, "user_id": user_id, "new_password": new_password},
        )
        Accounts(self.db, self.request_id).reset_password(**args)

    @api
    def change_role(self, actor, user_id, role) -> dict[str, Any]:
        args = load_args(schemas.ChangeRoleArgs, {"actor": actor, "user_id": user_id, "role": role})
        return Accounts(self.db, self.request_id).change_role(**args)

    @api
    def deactivate(self, actor, user_id) -> dict[str, Any]:
        args = load_args(schemas.ActorUserArgs, {"actor": actor, "user_id": user_id})
        return Accounts(self.db, self.request_id).deactivate(**args)

    @api
    def reactivate(self, actor, user_id) -> dict[str, Any]:
        args = load_args(schemas.ActorUserArgs, {"actor": actor, "user_id": user_id})
        return Accounts(self.db, self.request_id).reactivate(**args)

    @api
    def erase_user(self, actor, user_id) -> dict[str, Any]:
        """Erase a user's personal data (admins only: the gateway checks). Answers the user as
        the read model now has them: placeholders, inactive, ``erased_at`` set."""
        args = load_args(schemas.ActorUserArgs, {"actor": actor, "user_id": user_id})
        return Accounts(self.db, self.request_id).erase(**args)

    # -- sign-in -----------------------------------------------------------------------------

    @api
    def login(self, email, password, client_ip=None, otp=None, user_agent=None) -> dict[str, Any]:
        args = load_args(
            schemas.LoginArgs,
            {
                "email": email,
                "password": password,
                "client_ip": client_ip,
                "otp": otp,
                "user_agent": user_agent,
            },
        )
        return Auth(self.db, self.request_id).login(**args)

    @api
    def refresh(self, refresh_token, client_ip=None) -> dict[str, Any]:
        args = load_args(
            schemas.RefreshArgs, {"refresh_token": refresh_token, "client_ip": client_ip}
        )
        return Auth(self.db, self.request_id).refresh(**args)

    @api
    def logout(self, refresh_token) -> None:
        args = load_args(schemas.LogoutArgs, {"refresh_token": refresh_token})
        Auth(self.db, self.request_id).logout(**args)

    @api
    def authenticate(self, access_token) -> dict[str, Any]:
        try:
            args = schema_instance(schemas.AuthenticateArgs).load({"access_token": access_token})
        except ValidationError:  # a credential of the wrong shape is no credential: 401
            raise Unauthorized("invalid access token", {"code": "token_invalid"}) from None
        return Auth(self.db, self.request_id).authenticate(**args)

    @api
    def authenticate_api_key(self, key) -> dict[str, Any]:
        try:
            args = schema_instance(schemas.AuthenticateApiKeyArgs).load({"key": key})
        except ValidationError:
            raise Unauthorized("invalid API key", {"code": "api_key_invalid"}) from None
        return ApiKeys(self.db, self.request_id).authenticate(**args)

    # -- second factor -----------------------------------------------------------------------

    @api
    def totp_begin(self, actor, user_id) -> dict[str, Any]:
        args = load_args(schemas.ActorUserArgs, {"actor": actor, "user_id": user_id})
        return Mfa(self.db, self.request_id).begin(**args)

    @api
    def totp_confirm(self, actor, user_id, code) -> dict[str, Any]:
        args = load_args(
            schemas.TotpConfirmArgs, {"actor": actor, "user_id": user_id, "code": code}
        )
        return Mfa(self.db, self.request_id).confirm(**args)

    @api
    def totp_disable(self, actor, user_id, password) -> None:
        args = load_args(
            schemas.TotpDisableArgs, {"actor": actor, "user_id": user_id, "password": password}
        )
        Mfa(self.db, self.request_id).disable(**args)

    # -- security settings -------------------------------------------------------------------

    @api
    def get_security_settings(self) -> dict[str, Any]:
        return SecuritySettings(self.db, self.request_id).get()

    @api
    def update_security_settings(self, actor, changes) -> dict[str, Any]:
        args = load_args(schemas.UpdateSecuritySettingsArgs, {"actor": actor, "changes": changes})
        return SecuritySettings(self.db, self.request_id).update(**args)

    # -- API keys ----------------------------------------------------------------------------

    @api
    def create_api_key(self, actor, name, role) -> dict[str, Any]:
        args = load_args(schemas.CreateApiKeyArgs, {"actor": actor, "name": name, "role": role})
        return ApiKeys(self.db, self.request_id).create(**args)

    @api
    def list_api_keys(self) -> list[dict[str, Any]]:
        return ApiKeys(self.db, self.request_id).list()

    @api
    def revoke_api_key(self, actor, key_id) -> dict[str, Any]:
        args = load_args(schemas.RevokeApiKeyArgs, {"actor": actor, "key_id": key_id})
        return ApiKeys(self.db, self.request_id).revoke(**args)

    # -- audit log ---------------------------------------------------------------------------

    @api
    def record_audit(self, entry) -> None:
        args = load_args(schemas.RecordAuditArgs, {"entry": entry})
        AuditLog(self.db).record(args["entry"])

    @durable_event_handler("gateway", AUDIT_ENTRY, batched=True)
    def on_audit_entries(self, entries: list[dict[str, Any]]) -> None:
        """The gateway's audit entries, from the bus (one per write through the API): a batch
        in one transaction, each entry once (``entry_id``). An entry that breaks its contract
        is logged and dropped, never retried for ever."""
        valid = []
        for entry in entries:
            try:
                valid.append(load_args(schemas.RecordAuditArgs, {"entry": entry})["entry"])
            except CmsError as exc:
                entry_id = entry.get("entry_id") if isinstance(entry, dict) else None
                log.error("audit entry %s refused: %s", entry_id, exc)
        if valid:
            AuditLog(self.db).record_all(valid)

    @api
    def list_audit(
        self,
        actor_id=None,
        action=None,
        resource_type=None,
        resource_id=None,
        since=None,
        until=None,
        limit=50,
        cursor=None,
    ) -> dict[str, Any]:
        args = load_args(
            schemas.ListAuditArgs,
            {
                "actor_id": actor_id,
                "action": action,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "since": since,
                "until": until,
                "limit": limit,
                "cursor": cursor,
            },
        )
        return AuditLog(self.db).list(**args)

    # -- housekeeping ------------------------------------------------------------------------

    @timer(interval=HOUSEKEEPING_INTERVAL)
    def housekeeping(self) -> None:
        """Forget expired refresh tokens and per-client attempts no window can see any more."""
        now = utcnow()
        config = users_config()
        purged = ratelimit.purge(self.db, now - timedelta(seconds=config.login_rate_window_seconds))
        expired = self.db.execute(
            delete(tables.refresh_tokens).where(tables.refresh_tokens.c.expires_at < now)
        ).rowcount
        self.db.commit()
        if purged or expired:
            log.info("purged %d client attempts and %d expired refresh tokens", purged, expired)
