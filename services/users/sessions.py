"""Sessions (refresh-token families): opening one, rotating its refresh token, revoking.

A session is opened by a login and holds a chain of refresh tokens; each works once and is
replaced by the next. The database keeps only SHA-256 digests of the tokens.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Row

from services.users import tables, tokens
from services.users.config import users_config
from services.users.domain import LoginActivity
from services.users.events import AUTH_STREAM, auth_stream_id
from services.users.uow import UnitOfWork
from services.users.views import security_settings, user_json

MAX_USER_AGENT = 300


def _uuid_or_none(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None


def open_session(
    uow: UnitOfWork, user_id: str, client_ip: str | None, user_agent: str | None
) -> tuple[str, str]:
    """A new session and its first refresh token: ``(session_id, refresh_token)``."""
    session_id = str(uuid.uuid4())
    uow.conn.execute(
        insert(tables.sessions).values(
            id=session_id,
            user_id=user_id,
            created_at=uow.now,
            client_ip=client_ip,
            user_agent=(user_agent or None) and user_agent[:MAX_USER_AGENT],
        )
    )
    return session_id, issue_refresh_token(uow, session_id)


def issue_refresh_token(uow: UnitOfWork, session_id: str) -> str:
    token = tokens.new_refresh_token()
    uow.conn.execute(
        insert(tables.refresh_tokens).values(
            token_hash=tokens.digest(token),
            session_id=session_id,
            issued_at=uow.now,
            expires_at=uow.now + timedelta(seconds=users_config().refresh_token_ttl),
        )
    )
    return token


def revoke_sessions(
    uow: UnitOfWork,
    user_id: str,
    reason: str,
    *,
    keep: str | None = None,
    only: str | None = None,
) -> list[str]:
    """Revoke the user's live sessions (all, all but ``keep``, or just ``only``) in one
    statement and record it. The caller holds the user's row lock."""
    sessions = tables.sessions
    statement = (
        update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=uow.now, revoked_reason=reason)
        .returning(sessions.c.id)
    )
    keep, only = _uuid_or_none(keep), _uuid_or_none(only)
    if keep:
        statement = statement.where(sessions.c.id != keep)
    if only:
        statement = statement.where(sessions.c.id == only)
    revoked = sorted(str(row.id) for row in uow.conn.execute(statement))
    uow.record(
        AUTH_STREAM,
        auth_stream_id(user_id),
        LoginActivity.revoke_sessions(user_id, revoked, reason),
        None,  # revocations commute; the user's row lock orders them with logins
    )
    return revoked


def token_response(uow: UnitOfWork, user: Row, session_id: str, refresh_token: str) -> dict:
    """The answer to a login or refresh."""
    ttl = users_config().access_token_ttl
    return {
        "access_token": tokens.issue_access_token(
            str(user.id), session_id, user.role, uow.now, ttl
        ),
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "user": user_json(user, security_settings(uow.conn)),
    }
