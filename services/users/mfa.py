"""Second factor: TOTP enrolment (begin → confirm with a code), recovery codes, removal.

Only the user may enrol their own authenticator (nobody else should ever see the secret). It
may be removed by the user (with their password) or by an admin (with the admin's own
password, for a lost phone). The secret (encrypted, see ``totp.encrypt_secret``) and the
recovery codes (hashed) stay in private tables; events only say that MFA was enabled or
disabled.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.users import passwords, tables, totp
from services.users.config import users_config
from services.users.uow import UnitOfWork, event_metadata
from shared.errors import BadRequest, Conflict, Forbidden, RuleViolation

#: How long a begun enrolment waits for its confirming code.
ENROLMENT_TTL = timedelta(minutes=15)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Forbidden("the actor is not a user", {"code": "not_allowed"}) from None


def _only_self(actor: dict, user_id: str) -> None:
    if actor.get("kind") != "user" or actor.get("id") != user_id:
        raise Forbidden("only the user can set up their own authenticator", {"code": "not_self"})


class Mfa:
    def __init__(self, session: Session, request_id: str | None = None):
        self.session = session
        self.request_id = request_id

    def begin(self, actor: dict, user_id: str) -> dict[str, Any]:
        _only_self(actor, user_id)
        uow = UnitOfWork(self.session, event_metadata(actor, self.request_id))
        try:
            row = uow.lock_user_row(user_id)
            if row.mfa_enabled:
                raise Conflict(
                    "two-factor sign-in is already enabled; disable it first",
                    {"code": "mfa_already_enabled"},
                )
            secret = totp.new_secret()
            stored = totp.encrypt_secret(secret, user_id)
            statement = pg_insert(tables.user_totp).values(
                user_id=user_id, secret_encrypted=stored, created_at=uow.now, confirmed_at=None
            )
            uow.conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["user_id"],
                    set_={
                        "secret_encrypted": stored,
                        "created_at": uow.now,
                        "confirmed_at": None,
                        "last_used_step": None,
                    },
                )
            )
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        uri = totp.provisioning_uri(secret, row.email, users_config().totp_issuer)
        return {"secret": secret, "otpauth_uri": uri, "qr_svg": totp.qr_svg(uri)}

    def confirm(self, actor: dict, user_id: str, code: str) -> dict[str, Any]:
        _only_self(actor, user_id)
        uow = UnitOfWork(self.session, event_metadata(actor, self.request_id))
        try:
            user = uow.lock_and_load_user(user_id)
            if user.mfa_enabled:
                raise Conflict(
                    "two-factor sign-in is already enabled", {"code": "mfa_already_enabled"}
                )
            pending = uow.conn.execute(
                select(tables.user_totp).where(
                    tables.user_totp.c.user_id == user_id,
                    tables.user_totp.c.confirmed_at.is_(None),
                )
            ).first()
            if pending is None or pending.created_at + ENROLMENT_TTL <= uow.now:
                raise RuleViolation(
                    "start the authenticator set-up first (or again: it expired)",
                    {"code": "mfa_not_started"},
                )
            secret = totp.decrypt_secret(pending.secret_encrypted, user_id)
            step = totp.matching_step(secret, code, uow.now)
            if step is None:
                raise BadRequest.for_fields(
                    {"code": ["The code is not valid. Check the time on your device."]}
                )
            uow.conn.execute(
                tables.user_totp.update()
                .where(tables.user_totp.c.user_id == user_id)
                .values(confirmed_at=uow.now, last_used_step=step)
            )
            codes = totp.new_recovery_codes()
            uow.conn.execute(
                delete(tables.recovery_codes).where(tables.recovery_codes.c.user_id == user_id)
            )
            uow.conn.execute(
                insert(tables.recovery_codes),
                [
                    {
                        "user_id": user_id,
                        "code_hash": totp.recovery_code_hash(c),
                        "created_at": uow.now,
                    }
                    for c in codes
                ],
            )
            uow.record_user(user, user.enable_mfa())
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return {"recovery_codes": codes}

    def disable(self, actor: dict, user_id: str, password: str) -> None:
        is_self = actor.get("kind") == "user" and actor.get("id") == user_id
        is_admin = actor.get("kind") == "user" and actor.get("role") == "admin"
        if not (is_self or is_admin):
            raise Forbidden(
                "only the user or an administrator can remove two-factor sign-in",
                {"code": "not_allowed"},
            )
        uow = UnitOfWork(self.session, event_metadata(actor, self.request_id))
        try:
            user = uow.lock_and_load_user(user_id)
            # Re-authentication: the password of whoever acts (the admin's own, for another user).
            password_hash = uow.conn.execute(
                select(tables.user_credentials.c.password_hash).where(
                    tables.user_credentials.c.user_id == _uuid(actor["id"])
                )
            ).scalar()
            if not passwords.verify_password(password_hash, password):
                raise BadRequest.for_fields({"password": ["The password is not correct."]})
            for table in (tables.user_totp, tables.recovery_codes):
                uow.conn.execute(delete(table).where(table.c.user_id == user_id))
            uow.record_user(user, user.disable_mfa())
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
