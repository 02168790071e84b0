"""Signing in and out: login (password, second factor, lockout, per-client limit), refresh
token rotation with reuse detection, logout, and access-token authentication."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.users import passwords, ratelimit, tables, tokens, totp, views
from services.users.config import users_config
from services.users.domain import LockoutPolicy, LoginActivity
from services.users.sessions import (
    issue_refresh_token,
    open_session,
    revoke_sessions,
    token_response,
)
from services.users.uow import UnitOfWork, event_metadata
from shared.errors import NotFound, Unauthorized

log = logging.getLogger(__name__)


def _unauthorized(detail: str, code: str, **extra: Any) -> Unauthorized:
    return Unauthorized(detail, {"code": code, **extra})


def invalid_credentials() -> Unauthorized:
    return _unauthorized("invalid email or password", "invalid_credentials")


def _locked(activity: LoginActivity, uow: UnitOfWork) -> Unauthorized:
    return _unauthorized(
        "too many failed sign-ins; the account is locked for a while",
        "account_locked",
        retry_after=activity.retry_after(uow.now),
    )


class Auth:
    def __init__(self, session: Session, request_id: str | None = None):
        self.session = session
        self.request_id = request_id

    # -- login -------------------------------------------------------------------------------

    def login(
        self,
        email: str,
        password: str,
        client_ip: str | None,
        otp: str | None,
        user_agent: str | None,
    ) -> dict[str, Any]:
        uow = UnitOfWork(self.session, event_metadata(None, self.request_id))
        config = users_config()
        ratelimit.hit(
            self.session,
            "login",
            client_ip,
            config.login_rate_limit,
            config.login_rate_window_seconds,
            uow.now,
        )
        candidate = views.user_row_by_email(uow.conn, email)
        if candidate is None:
            uow.rollback()
            passwords.verify_password(None, password)  # same time as a real check
            raise invalid_credentials()
        user_id = str(candidate.id)
        failure: Unauthorized | None = None
        try:
            row = uow.lock_user_row(user_id)
            if row.erased_at is not None:
                # Nothing of the person is left to sign in with (nor to record attempts under).
                passwords.verify_password(None, password)
                raise invalid_credentials()
            settings = views.security_settings(uow.conn)
            activity = uow.load_activity(user_id)
            if activity.locked(uow.now):
                raise _locked(activity, uow)
            password_hash = self._password_hash(uow, user_id)
            if not passwords.verify_password(password_hash, password):
                failure = self._fail(uow, activity, "invalid_password", client_ip, settings)
            elif not row.active:
                raise _unauthorized("this account is deactivated", "account_inactive")
            else:
                method = "password"
                if row.mfa_enabled:
                    if not otp:
                        raise _unauthorized(
                            "a one-time code from the authenticator app is required",
                            "mfa_required",
                        )
                    method = self._check_second_factor(uow, user_id, otp)
                    if method is None:
                        failure = self._fail(uow, activity, "invalid_otp", client_ip, settings)
            if failure is not None:
                uow.commit()
            else:
                answer = self._succeed(
                    uow, row, activity, method, password, password_hash, client_ip, user_agent
                )
                uow.commit()
                ratelimit.forget(self.session, "login", client_ip, uow.now)
                return answer
        except BaseException:
            uow.rollback()
            raise
        raise failure

    @staticmethod
    def _password_hash(uow: UnitOfWork, user_id: str) -> str | None:
        return uow.conn.execute(
            select(tables.user_credentials.c.password_hash).where(
                tables.user_credentials.c.user_id == user_id
            )
        ).scalar()

    def _fail(
        self,
        uow: UnitOfWork,
        activity: LoginActivity,
        reason: str,
        client_ip: str | None,
        settings: dict[str, Any],
    ) -> Unauthorized:
        """Record a failed attempt (and the lock it may cause); the error to answer with."""
        uow.metadata = event_metadata(None, self.request_id, actor_kind="anonymous")
        changes = activity.fail(uow.now, reason, client_ip, LockoutPolicy.from_settings(settings))
        uow.record_activity(activity, changes)
        if any(event_type == "user.locked" for event_type, _ in changes):
            for event_type, payload in changes:
                activity.apply(event_type, payload, uow.now)
            log.warning("user %s locked after repeated failed sign-ins", activity.user_id)
            return _locked(activity, uow)
        if reason == "invalid_otp":
            return _unauthorized("the one-time code is not valid", "invalid_otp")
        return invalid_credentials()

    def _check_second_factor(self, uow: UnitOfWork, user_id: str, otp: str) -> str | None:
        """``totp`` or ``recovery_code`` when ``otp`` is good (and now spent), else None."""
        enrolment = uow.conn.execute(
            select(tables.user_totp)
            .where(tables.user_totp.c.user_id == user_id)
            .where(tables.user_totp.c.confirmed_at.is_not(None))
        ).first()
        if enrolment is None:
            return None
        if totp.is_totp_code(otp):
            secret = totp.decrypt_secret(enrolment.secret_encrypted, user_id)
            step = totp.matching_step(secret, otp, uow.now, enrolment.last_used_step)
            if step is None:
                return None
            uow.conn.execute(
                update(tables.user_totp)
                .where(tables.user_totp.c.user_id == user_id)
                .values(last_used_step=step)
            )
            return "totp"
        codes = tables.recovery_codes
        spent = uow.conn.execute(
            update(codes)
            .where(
                codes.c.user_id == user_id,
                codes.c.code_hash == totp.recovery_code_hash(otp),
                codes.c.used_at.is_(None),
            )
            .values(used_at=uow.now)
            .returning(codes.c.code_hash)
        ).first()
        return "recovery_code" if spent is not None else None

    def _succeed(
        self,
        uow: UnitOfWork,
        row: Row,
        activity: LoginActivity,
        method: str,
        password: str,
        password_hash: str,
        client_ip: str | None,
        user_agent: str | None,
    ) -> dict[str, Any]:
        user_id = str(row.id)
        if passwords.needs_rehash(password_hash):
            uow.conn.execute(
                update(tables.user_credentials)
                .where(tables.user_credentials.c.user_id == user_id)
                .values(password_hash=passwords.hash_password(password), updated_at=uow.now)
            )
        session_id, refresh_token = open_session(uow, user_id, client_ip, user_agent)
        uow.metadata = event_metadata(None, self.request_id, actor_id=user_id, actor_kind="user")
        uow.record_activity(activity, activity.succeed(session_id, method, client_ip))
        return token_response(uow, views.user_row(uow.conn, user_id), session_id, refresh_token)

    # -- refresh and logout ------------------------------------------------------------------

    def _find_token(self, uow: UnitOfWork, refresh_token: str) -> Row | None:
        rt, sessions = tables.refresh_tokens, tables.sessions
        return uow.conn.execute(
            select(rt.c.token_hash, rt.c.session_id, sessions.c.user_id)
            .select_from(rt.join(sessions, sessions.c.id == rt.c.session_id))
            .where(rt.c.token_hash == tokens.digest(refresh_token))
        ).first()

    def refresh(self, refresh_token: str, client_ip: str | None) -> dict[str, Any]:
        uow = UnitOfWork(self.session, event_metadata(None, self.request_id))
        invalid = _unauthorized("the refresh token is not valid", "invalid_refresh")
        found = self._find_token(uow, refresh_token)
        if found is None:
            uow.rollback()
            raise invalid
        user_id, session_id = str(found.user_id), str(found.session_id)
        uow.metadata = event_metadata(None, self.request_id, actor_id=user_id, actor_kind="user")
        failure: Unauthorized | None = None
        try:
            try:
                row = uow.lock_user_row(user_id)
            except NotFound:
                raise invalid from None
            rt, sessions = tables.refresh_tokens, tables.sessions
            token = uow.conn.execute(
                select(rt.c.used_at, rt.c.expires_at, sessions.c.revoked_at)
                .select_from(rt.join(sessions, sessions.c.id == rt.c.session_id))
                .where(rt.c.token_hash == found.token_hash)
                .with_for_update(of=rt)
            ).one()
            if token.used_at is not None:
                # Presented twice: one of the two holders stole it. End the whole family.
                log.warning(
                    "refresh token reused: revoking session %s of user %s", session_id, user_id
                )
                revoke_sessions(uow, user_id, "refresh_reused", only=session_id)
                failure = _unauthorized(
                    "this refresh token was already used; the session has been revoked",
                    "refresh_reused",
                )
                uow.commit()
            elif token.revoked_at is not None or token.expires_at <= uow.now or not row.active:
                raise invalid
            else:
                uow.conn.execute(
                    update(rt).where(rt.c.token_hash == found.token_hash).values(used_at=uow.now)
                )
                uow.conn.execute(
                    update(sessions)
                    .where(sessions.c.id == session_id)
                    .values(last_refreshed_at=uow.now)
                )
                answer = token_response(uow, row, session_id, issue_refresh_token(uow, session_id))
                uow.commit()
                return answer
        except BaseException:
            uow.rollback()
            raise
        raise failure

    def logout(self, refresh_token: str) -> None:
        """End the session the token belongs to. Unknown or spent tokens: nothing to do."""
        uow = UnitOfWork(self.session, event_metadata(None, self.request_id))
        found = self._find_token(uow, refresh_token)
        if found is None:
            uow.rollback()
            return
        user_id = str(found.user_id)
        uow.metadata = event_metadata(None, self.request_id, actor_id=user_id, actor_kind="user")
        try:
            uow.lock_user_row(user_id)
            revoke_sessions(uow, user_id, "logout", only=str(found.session_id))
            uow.commit()
        except NotFound:
            uow.rollback()
        except BaseException:
            uow.rollback()
            raise

    # -- authenticate ------------------------------------------------------------------------

    def authenticate(self, access_token: str) -> dict[str, Any]:
        claims = tokens.decode_access_token(access_token)
        users, sessions = tables.users, tables.sessions
        conn = self.session.connection()
        try:
            row = conn.execute(
                select(users, sessions.c.revoked_at)
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(sessions.c.id == claims.session_id, users.c.id == claims.user_id)
            ).first()
            if row is None or row.revoked_at is not None or not row.active:
                raise _unauthorized("the session has ended; sign in again", "session_revoked")
            settings = views.security_settings(conn)
        finally:
            self.session.rollback()
        return {
            "kind": "user",
            "user_id": claims.user_id,
            "role": row.role,
            "session_id": claims.session_id,
            "mfa_setup_required": views.mfa_setup_required(row, settings),
            "language": row.language,
        }
