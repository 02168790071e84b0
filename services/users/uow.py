"""One command's unit of work: the session it runs in, the time it happens at, the metadata its
events carry, and the one way to record events (seal personal data + append + project, in the
same transaction)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from services.users import tables
from services.users.domain import Change, LoginActivity, User
from services.users.events import AUTH_STREAM, USER_STREAM, auth_stream_id, registry
from services.users.personal import open_event, seal_payload
from services.users.projections import project_all
from shared.errors import NotFound
from shared.events import RecordedEvent, utcnow
from shared.eventstore import EventStore
from shared.sealing import Vault

#: Advisory lock serialising every decision that depends on the set of active admins.
ADMINS_LOCK = zlib.crc32(b"cms.users.admins")


def event_metadata(
    actor: dict[str, Any] | None = None,
    request_id: str | None = None,
    *,
    actor_id: str | None = None,
    actor_kind: str | None = None,
) -> dict[str, Any]:
    """Who caused the events and which request they belong to (never a secret)."""
    meta: dict[str, Any] = {}
    if actor:
        meta["actor_id"] = actor.get("id")
        meta["actor_kind"] = actor.get("kind")
        request_id = actor.get("request_id") or request_id
    if actor_id is not None:
        meta["actor_id"] = actor_id
    if actor_kind is not None:
        meta["actor_kind"] = actor_kind
    if request_id:
        meta["request_id"] = request_id
        meta["correlation_id"] = request_id
    return meta


class UnitOfWork:
    def __init__(
        self,
        session: Session,
        metadata: dict[str, Any] | None = None,
        now: datetime | None = None,
    ):
        self.session = session
        self.metadata = metadata or {}
        self.now = now or utcnow()
        self.store = EventStore(session)
        self._vault: Vault | None = None

    @property
    def conn(self) -> Connection:
        return self.session.connection()

    @property
    def vault(self) -> Vault:
        """Subject keys of this transaction (cached per transaction: a key created in a
        transaction that rolls back must not be used after it)."""
        if self._vault is None:
            self._vault = Vault(self.session)
        return self._vault

    def commit(self) -> None:
        self.session.commit()
        self._vault = None

    def rollback(self) -> None:
        self.session.rollback()
        self._vault = None

    # -- events ------------------------------------------------------------------------------

    def record(
        self,
        stream_type: str,
        stream_id: str,
        changes: Sequence[Change],
        expected_version: int | None,
    ) -> list[RecordedEvent]:
        """Append the events of ``changes``, their personal fields sealed, and fold them into
        the read models."""
        if not changes:
            return []
        events = []
        for event_type, payload in changes:
            version = registry.latest_version(event_type)
            sealed = seal_payload(self.vault, event_type, version, payload)
            events.append(
                registry.new_event(event_type, sealed, version=version, occurred_at=self.now)
            )
        recorded = self.store.append(
            stream_type, stream_id, events, expected_version, self.metadata
        )
        project_all(self.conn, recorded, self.vault)
        return recorded

    def record_user(self, user: User, changes: Sequence[Change]) -> list[RecordedEvent]:
        return self.record(USER_STREAM, user.id, changes, user.version)

    def record_activity(
        self, activity: LoginActivity, changes: Sequence[Change]
    ) -> list[RecordedEvent]:
        return self.record(AUTH_STREAM, auth_stream_id(activity.user_id), changes, activity.version)

    # -- loading and locking -----------------------------------------------------------------

    def lock_user_row(self, user_id: str) -> Row:
        """The user's read-model row, locked for this transaction: every command on a user
        (account or sign-in) takes this lock first, so they serialise and never deadlock."""
        row = self.conn.execute(
            select(tables.users).where(tables.users.c.id == user_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound("user not found", {"resource_type": "user", "resource_id": user_id})
        return row

    def load_stream(self, stream_id: str) -> list[RecordedEvent]:
        """A stream's events, opened (personal fields unsealed)."""
        return [open_event(self.vault, event) for event in self.store.load_stream(stream_id)]

    def load_user(self, user_id: str) -> User:
        user = User.from_events(user_id, self.load_stream(user_id))
        if not user.exists:
            raise NotFound("user not found", {"resource_type": "user", "resource_id": user_id})
        return user

    def lock_and_load_user(self, user_id: str) -> User:
        self.lock_user_row(user_id)
        return self.load_user(user_id)

    def load_activity(self, user_id: str) -> LoginActivity:
        return LoginActivity.from_events(user_id, self.load_stream(auth_stream_id(user_id)))

    def lock_admins(self) -> None:
        self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMINS_LOCK})

    def other_active_admins(self, user_id: str | None) -> int:
        query = text(
            "SELECT count(*) FROM users WHERE role = 'admin' AND active "
            "AND (CAST(:user_id AS uuid) IS NULL OR id <> CAST(:user_id AS uuid))"
        )
        return self.conn.execute(query, {"user_id": user_id}).scalar_one()
