"""Account commands: creating users (bootstrap admin, by an admin, self-registration), profile,
passwords, role and status, erasure. Each runs in one transaction: lock, load the aggregate,
decide, append + project, commit.

Slow work (argon2) happens while holding only the user's row lock, never after an append: an
append holds the event table's lock until commit, and every writer of the service waits on it.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg2 import errors as pg_errors
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.users import passwords, ratelimit, tables, views
from services.users.config import users_config
from services.users.domain import User
from services.users.events import USER_STREAM
from services.users.sessions import revoke_sessions
from services.users.uow import UnitOfWork, event_metadata
from shared.errors import BadRequest, ConcurrencyError, Conflict, Forbidden

EMAIL_INDEX = "users_email_key"


def _duplicate_email() -> Conflict:
    return Conflict(
        "a user with this e-mail address already exists",
        {"field": "email", "code": "email_taken", "errors": {"email": ["Already in use."]}},
    )


def _is_duplicate_email(exc: IntegrityError) -> bool:
    orig = exc.orig
    return isinstance(orig, pg_errors.UniqueViolation) and (
        getattr(getattr(orig, "diag", None), "constraint_name", None) == EMAIL_INDEX
    )


def password_errors(field: str, password: Any, email: str | None, name: str | None) -> dict:
    problems = passwords.policy_errors(password, email=email, name=name)
    return {field: problems} if problems else {}


class Accounts:
    def __init__(self, session: Session, request_id: str | None = None):
        self.session = session
        self.request_id = request_id

    def _uow(self, actor: dict | None = None, **meta: Any) -> UnitOfWork:
        return UnitOfWork(self.session, event_metadata(actor, self.request_id, **meta))

    # -- creating ----------------------------------------------------------------------------

    def _create(
        self,
        uow: UnitOfWork,
        *,
        email: str,
        name: str,
        role: str,
        password_hash: str,
        phone: str | None,
        language: str,
        source: str,
    ) -> str:
        if views.user_row_by_email(uow.conn, email) is not None:
            raise _duplicate_email()
        user_id = str(uuid.uuid4())
        changes = User.register(user_id, email, name, role, language, phone, source)
        try:
            uow.record(USER_STREAM, user_id, changes, expected_version=0)
        except IntegrityError as exc:
            if _is_duplicate_email(exc):
                raise _duplicate_email() from exc
            raise
        uow.conn.execute(
            insert(tables.user_credentials).values(
                user_id=user_id, password_hash=password_hash, updated_at=uow.now
            )
        )
        return user_id

    def ensure_admin(self, email: str, password: str, name: str) -> dict[str, Any]:
        """Create the first administrator, only when there is no admin at all (active or not)."""
        existing = self._first_admin()
        self.session.rollback()
        if existing is not None:
            return {"created": False, "user": existing}
        errors = password_errors("password", password, email, name)
        if errors:
            raise BadRequest.for_fields(errors)
        password_hash = passwords.hash_password(password)
        uow = self._uow(actor_kind="system")
        try:
            uow.lock_admins()
            existing = self._first_admin()
            if existing is not None:
                uow.rollback()
                return {"created": False, "user": existing}
            user_id = self._create(
                uow,
                email=email,
                name=name,
                role="admin",
                password_hash=password_hash,
                phone=None,
                language="zh-CN",
                source="bootstrap",
            )
            user = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return {"created": True, "user": user}

    def _first_admin(self) -> dict[str, Any] | None:
        conn = self.session.connection()
        row = conn.execute(
            select(tables.users)
            .where(tables.users.c.role == "admin")
            .order_by(tables.users.c.active.desc(), tables.users.c.created_at)
            .limit(1)
        ).first()
        return views.user_json(row, views.security_settings(conn)) if row is not None else None

    def create_user(
        self,
        actor: dict,
        email: str,
        name: str,
        role: str,
        password: str,
        phone: str | None,
        language: str,
    ) -> dict[str, Any]:
        password_hash = passwords.hash_password(password)
        uow = self._uow(actor)
        try:
            user_id = self._create(
                uow,
                email=email,
                name=name,
                role=role,
                password_hash=password_hash,
                phone=phone,
                language=language,
                source="admin",
            )
            user = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return user

    def register(
        self, email: str, name: str, password: str, client_ip: str | None
    ) -> dict[str, Any]:
        uow = self._uow(actor_kind="anonymous")
        settings = views.security_settings(uow.conn)
        uow.rollback()
        if not settings["self_registration"]:
            raise Forbidden(
                "self-registration is disabled; ask an administrator for an account",
                {"code": "registration_disabled"},
            )
        config = users_config()
        ratelimit.hit(
            self.session,
            "register",
            client_ip,
            config.login_rate_limit,
            config.login_rate_window_seconds,
            uow.now,
        )
        password_hash = passwords.hash_password(password)
        try:
            user_id = self._create(
                uow,
                email=email,
                name=name,
                role="sales",
                password_hash=password_hash,
                phone=None,
                language="zh-CN",
                source="self_registration",
            )
            user = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return user

    # -- changing ----------------------------------------------------------------------------

    def update_profile(
        self,
        actor: dict,
        user_id: str,
        changes: dict[str, Any],
        expected_version: int | None,
    ) -> dict[str, Any]:
        uow = self._uow(actor)
        try:
            user = uow.lock_and_load_user(user_id)
            if expected_version is not None and expected_version != user.version:
                raise ConcurrencyError.for_stream(user_id, expected_version, user.version)
            decided = user.update_profile(changes)
            if decided and "email" in decided[0][1]["changes"]:
                owner = views.user_row_by_email(uow.conn, decided[0][1]["changes"]["email"])
                if owner is not None and str(owner.id) != user_id:
                    raise _duplicate_email()
            try:
                uow.record_user(user, decided)
            except IntegrityError as exc:
                if _is_duplicate_email(exc):
                    raise _duplicate_email() from exc
                raise
            result = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return result

    def change_password(
        self, actor: dict, user_id: str, current_password: str, new_password: str
    ) -> None:
        uow = self._uow(actor)
        try:
            row = uow.lock_user_row(user_id)
            user = uow.load_user(user_id)
            errors = password_errors("new_password", new_password, row.email, row.name)
            if not passwords.verify_password(self._password_hash(uow, user_id), current_password):
                errors["current_password"] = ["The current password is not correct."]
            elif not errors and current_password == new_password:
                errors["new_password"] = ["Must differ from the current password."]
            if errors:
                raise BadRequest.for_fields(errors)
            self._set_password(uow, user_id, passwords.hash_password(new_password))
            uow.record_user(user, user.change_password())
            revoke_sessions(uow, user_id, "password_changed", keep=actor.get("session_id"))
            uow.commit()
        except BaseException:
            uow.rollback()
            raise

    def reset_password(self, actor: dict, user_id: str, new_password: str) -> None:
        uow = self._uow(actor)
        try:
            row = uow.lock_user_row(user_id)
            user = uow.load_user(user_id)
            errors = password_errors("new_password", new_password, row.email, row.name)
            if errors:
                raise BadRequest.for_fields(errors)
            self._set_password(uow, user_id, passwords.hash_password(new_password))
            uow.record_user(user, user.reset_password())
            revoke_sessions(uow, user_id, "password_reset")
            uow.commit()
        except BaseException:
            uow.rollback()
            raise

    @staticmethod
    def _password_hash(uow: UnitOfWork, user_id: str) -> str | None:
        return uow.conn.execute(
            select(tables.user_credentials.c.password_hash).where(
                tables.user_credentials.c.user_id == user_id
            )
        ).scalar()

    @staticmethod
    def _set_password(uow: UnitOfWork, user_id: str, password_hash: str) -> None:
        uow.conn.execute(
            update(tables.user_credentials)
            .where(tables.user_credentials.c.user_id == user_id)
            .values(password_hash=password_hash, updated_at=uow.now)
        )

    def change_role(self, actor: dict, user_id: str, role: str) -> dict[str, Any]:
        uow = self._uow(actor)
        try:
            uow.lock_admins()
            user = uow.lock_and_load_user(user_id)
            uow.record_user(user, user.change_role(role, uow.other_active_admins(user_id)))
            result = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return result

    def deactivate(self, actor: dict, user_id: str) -> dict[str, Any]:
        uow = self._uow(actor)
        try:
            uow.lock_admins()
            user = uow.lock_and_load_user(user_id)
            decided = user.deactivate(actor.get("id"), uow.other_active_admins(user_id))
            uow.record_user(user, decided)
            if decided:
                revoke_sessions(uow, user_id, "deactivated")
            result = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return result

    def reactivate(self, actor: dict, user_id: str) -> dict[str, Any]:
        uow = self._uow(actor)
        try:
            user = uow.lock_and_load_user(user_id)
            uow.record_user(user, user.reactivate())
            result = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return result

    def erase(self, actor: dict, user_id: str) -> dict[str, Any]:
        """Erase a user's personal data (crypto-shredding, DESIGN §2): deactivate the account,
        end its sessions, destroy the user's key (every sealed value of theirs in the log now
        reads as null), record ``user.erased`` (which puts placeholders in the read model), and
        forget what the private tables hold about them (password hash, second factor, the
        addresses their sessions came from). Not yourself, not the last active admin. Erasing
        an erased user changes nothing."""
        uow = self._uow(actor)
        try:
            uow.lock_admins()
            user = uow.lock_and_load_user(user_id)
            decided = user.erase(actor.get("id"), uow.other_active_admins(user_id))
            if decided:
                revoke_sessions(uow, user_id, "erased")
                uow.record_user(user, decided)
                self._forget_private_state(uow, user_id)
                uow.vault.destroy(user_id)
            result = views.get_user(uow.conn, user_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return result

    @staticmethod
    def _forget_private_state(uow: UnitOfWork, user_id: str) -> None:
        for table in (tables.user_credentials, tables.user_totp, tables.recovery_codes):
            uow.conn.execute(delete(table).where(table.c.user_id == user_id))
        uow.conn.execute(
            update(tables.sessions)
            .where(tables.sessions.c.user_id == user_id)
            .values(client_ip=None, user_agent=None)
        )
