"""API keys for other systems: issued with a role, shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from services.users import tables, tokens, views
from services.users.events import API_KEY_STREAM
from services.users.uow import UnitOfWork, event_metadata
from shared.errors import NotFound, Unauthorized
from shared.events import utcnow

#: ``last_used_at`` is written at most this often per key (it is not worth a write per call).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _invalid() -> Unauthorized:
    return Unauthorized("invalid API key", {"code": "api_key_invalid"})


class ApiKeys:
    def __init__(self, session: Session, request_id: str | None = None):
        self.session = session
        self.request_id = request_id

    def create(self, actor: dict, name: str, role: str) -> dict[str, Any]:
        uow = UnitOfWork(self.session, event_metadata(actor, self.request_id))
        key_id, key = str(uuid.uuid4()), tokens.new_api_key()
        try:
            uow.record(
                API_KEY_STREAM,
                key_id,
                [
                    (
                        "api_key.issued",
                        {
                            "api_key_id": key_id,
                            "name": name,
                            "role": role,
                            "prefix": tokens.api_key_display_prefix(key),
                            "created_by": actor.get("id"),
                        },
                    )
                ],
                expected_version=0,
            )
            uow.conn.execute(
                insert(tables.api_key_secrets).values(
                    api_key_id=key_id, key_hash=tokens.digest(key)
                )
            )
            answer = views.api_key(uow.conn, key_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return {**answer, "key": key}

    def list(self) -> list[dict[str, Any]]:
        try:
            return views.list_api_keys(self.session.connection())
        finally:
            self.session.rollback()

    def revoke(self, actor: dict, key_id: str) -> dict[str, Any]:
        uow = UnitOfWork(self.session, event_metadata(actor, self.request_id))
        try:
            row = uow.conn.execute(
                select(tables.api_keys).where(tables.api_keys.c.id == key_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(
                    "API key not found", {"resource_type": "api_key", "resource_id": key_id}
                )
            if row.revoked_at is None:
                uow.record(
                    API_KEY_STREAM,
                    key_id,
                    [("api_key.revoked", {"api_key_id": key_id, "revoked_by": actor.get("id")})],
                    expected_version=row.version,
                )
            answer = views.api_key(uow.conn, key_id)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return answer

    def authenticate(self, key: Any) -> dict[str, Any]:
        if not tokens.looks_like_api_key(key):
            raise _invalid()
        keys, secrets = tables.api_keys, tables.api_key_secrets
        try:
            conn = self.session.connection()
            row = conn.execute(
                select(keys, secrets.c.last_used_at)
                .select_from(secrets.join(keys, keys.c.id == secrets.c.api_key_id))
                .where(secrets.c.key_hash == tokens.digest(key))
            ).first()
            if row is None:
                raise _invalid()
            if row.revoked_at is not None:
                raise Unauthorized("this API key was revoked", {"code": "api_key_revoked"})
            now = utcnow()
            if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
                conn.execute(
                    update(secrets)
                    .where(secrets.c.api_key_id == row.id)
                    .where(
                        or_(
                            secrets.c.last_used_at.is_(None),
                            secrets.c.last_used_at <= now - LAST_USED_RESOLUTION,
                        )
                    )
                    .values(last_used_at=now)
                )
                self.session.commit()
        finally:
            self.session.rollback()
        return {
            "kind": "api_key",
            "api_key_id": str(row.id),
            "name": row.name,
            "role": row.role,
            "user_id": None,
        }
