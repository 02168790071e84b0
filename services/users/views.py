"""Reads: the JSON shapes the service answers with, and the queries behind them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Row

from services.users import tables
from services.users.config import users_config
from services.users.events import UtcDateTime
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import NotFound
from shared.events import isoformat


def _iso(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


def _parse_time(value: Any) -> datetime:
    return UtcDateTime().deserialize(value)


# -- security settings --------------------------------------------------------------------------


def security_settings(conn: Connection) -> dict[str, Any]:
    """The settings in force: the environment's defaults, overridden by what admins changed."""
    current = users_config().security_defaults()
    for row in conn.execute(select(tables.security_settings)):
        if row.key in current:
            current[row.key] = row.value
    current["mfa_required_roles"] = sorted(current["mfa_required_roles"])
    return current


# -- users --------------------------------------------------------------------------------------


def user_json(row: Row, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "email": row.email,
        "name": row.name,
        "phone": row.phone,
        "language": row.language,
        "role": row.role,
        "active": row.active,
        "mfa_enabled": row.mfa_enabled,
        "mfa_setup_required": mfa_setup_required(row, settings),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "last_login_at": _iso(row.last_login_at),
        "version": row.version,
        "erased_at": _iso(row.erased_at),
    }


def mfa_setup_required(row: Row, settings: dict[str, Any]) -> bool:
    return row.role in settings["mfa_required_roles"] and not row.mfa_enabled


def user_row(conn: Connection, user_id: str) -> Row:
    row = conn.execute(select(tables.users).where(tables.users.c.id == user_id)).first()
    if row is None:
        raise NotFound("user not found", {"resource_type": "user", "resource_id": user_id})
    return row


def user_row_by_email(conn: Connection, email: str) -> Row | None:
    return conn.execute(
        select(tables.users).where(func.lower(tables.users.c.email) == email.strip().lower())
    ).first()


def get_user(conn: Connection, user_id: str) -> dict[str, Any]:
    return user_json(user_row(conn, user_id), security_settings(conn))


def display_names(conn: Connection, user_ids: list[str]) -> dict[str, str]:
    """``{id: name}`` of the users among ``user_ids`` (an erased user's name is erased)."""
    users = tables.users
    rows = conn.execute(select(users.c.id, users.c.name).where(users.c.id.in_(user_ids))).all()
    return {str(row.id): row.name for row in rows}


def names_by_role(conn: Connection, role: str, limit: int = 1000) -> dict[str, str]:
    """``{id: name}`` of the active users of ``role``, by name (at most ``limit``)."""
    users = tables.users
    rows = conn.execute(
        select(users.c.id, users.c.name)
        .where(users.c.role == role, users.c.active.is_(True), users.c.erased_at.is_(None))
        .order_by(users.c.name, users.c.id)
        .limit(limit)
    ).all()
    return {str(row.id): row.name for row in rows}


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_users(
    conn: Connection,
    q: str | None,
    role: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Oldest first, keyset-paginated on ``(created_at, id)``."""
    users = tables.users
    query = select(users)
    if q and q.strip():
        pattern = _like(q.strip())
        query = query.where(
            or_(users.c.email.ilike(pattern, escape="\\"), users.c.name.ilike(pattern, escape="\\"))
        )
    if role is not None:
        query = query.where(users.c.role == role)
    if active is not None:
        query = query.where(users.c.active == active)
    if cursor:
        after_created, after_id = decode_cursor(cursor, (_parse_time, _uuid_text))
        query = query.where(
            or_(
                users.c.created_at > after_created,
                and_(users.c.created_at == after_created, users.c.id > after_id),
            )
        )
    rows = conn.execute(query.order_by(users.c.created_at, users.c.id).limit(limit + 1)).all()
    settings = security_settings(conn)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(isoformat(last.created_at), str(last.id))
    return {"items": [user_json(row, settings) for row in page], "next_cursor": next_cursor}


def _uuid_text(value: Any) -> str:
    return str(uuid.UUID(str(value)))


# -- API keys -----------------------------------------------------------------------------------


def api_key_json(row: Row, last_used_at: datetime | None) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "role": row.role,
        "prefix": row.prefix,
        "created_at": _iso(row.created_at),
        "created_by": row.created_by,
        "last_used_at": _iso(last_used_at),
        "revoked_at": _iso(row.revoked_at),
    }


def api_key(conn: Connection, key_id: str) -> dict[str, Any]:
    keys, secrets = tables.api_keys, tables.api_key_secrets
    row = conn.execute(
        select(keys, secrets.c.last_used_at)
        .select_from(keys.outerjoin(secrets, secrets.c.api_key_id == keys.c.id))
        .where(keys.c.id == key_id)
    ).first()
    if row is None:
        raise NotFound("API key not found", {"resource_type": "api_key", "resource_id": key_id})
    return api_key_json(row, row.last_used_at)


def list_api_keys(conn: Connection) -> list[dict[str, Any]]:
    keys, secrets = tables.api_keys, tables.api_key_secrets
    rows = conn.execute(
        select(keys, secrets.c.last_used_at)
        .select_from(keys.outerjoin(secrets, secrets.c.api_key_id == keys.c.id))
        .order_by(keys.c.created_at.desc(), keys.c.id.desc())
    ).all()
    return [api_key_json(row, row.last_used_at) for row in rows]


# -- audit log ----------------------------------------------------------------------------------


def audit_json(row: Row) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "at": _iso(row.at),
        "actor_id": row.actor_id,
        "actor_kind": row.actor_kind,
        "actor_role": row.actor_role,
        "action": row.action,
        "method": row.method,
        "path": row.path,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "status": row.status,
        "ip": row.ip,
        "request_id": row.request_id,
    }


def list_audit(
    conn: Connection,
    actor_id: str | None,
    action: str | None,
    resource_type: str | None,
    resource_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Newest first, keyset-paginated on ``(at, id)`` descending. ``since`` inclusive,
    ``until`` exclusive."""
    log = tables.audit_log
    query = select(log)
    for column, value in (
        (log.c.actor_id, actor_id),
        (log.c.action, action),
        (log.c.resource_type, resource_type),
        (log.c.resource_id, resource_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(log.c.at >= since)
    if until is not None:
        query = query.where(log.c.at < until)
    if cursor:
        before_at, before_id = decode_cursor(cursor, (_parse_time, int))
        query = query.where(
            or_(log.c.at < before_at, and_(log.c.at == before_at, log.c.id < before_id))
        )
    rows = conn.execute(query.order_by(log.c.at.desc(), log.c.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(isoformat(last.at), last.id)
    return {"items": [audit_json(row) for row in page], "next_cursor": next_cursor}
