"""Read models of the users service, kept in the same transaction as each append, and rebuilt
from the event log with :func:`rebuild` (the same :func:`project` runs in both cases, so a
rebuilt read model equals the live one).

Read models: ``users`` (the user list and profile), ``api_keys`` (without the keys) and
``security_settings`` (the overrides an admin made). Everything secret lives in private tables
that events never feed (see the 0002 migration).

:func:`project` folds *opened* events (personal fields unsealed, see ``personal.py``);
:func:`project_all` and :func:`rebuild` open them. The personal fields of an erased user open
as None and are projected as their placeholders, which ``user.erased`` also sets live: so a
rebuild after an erasure gives the same rows as the live read model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import delete, insert, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.users import tables
from services.users.domain import erased_profile, readable_profile
from services.users.events import AUTH_EVENTS, USER_EVENTS
from services.users.personal import open_event
from shared.events import RecordedEvent
from shared.eventstore import EventStore
from shared.sealing import Vault

log = logging.getLogger(__name__)

API_KEY_EVENTS = frozenset({"api_key.issued", "api_key.revoked"})
SETTINGS_EVENTS = frozenset({"security_settings.updated"})
PROJECTED_EVENTS = USER_EVENTS | AUTH_EVENTS | API_KEY_EVENTS | SETTINGS_EVENTS

REBUILD_BATCH = 1000


def project(conn: Connection, event: RecordedEvent) -> None:
    """Fold one recorded, opened event into the read models."""
    kind, payload, at = event.type, event.payload, event.occurred_at
    if kind in USER_EVENTS:
        _project_user(conn, event)
    elif kind == "user.login_succeeded":
        conn.execute(
            update(tables.users)
            .where(tables.users.c.id == payload["user_id"])
            .values(last_login_at=at, locked_until=None)
        )
    elif kind == "user.locked":
        conn.execute(
            update(tables.users)
            .where(tables.users.c.id == payload["user_id"])
            .values(locked_until=payload["locked_until"])
        )
    elif kind == "api_key.issued":
        conn.execute(
            insert(tables.api_keys).values(
                id=payload["api_key_id"],
                name=payload["name"],
                role=payload["role"],
                prefix=payload["prefix"],
                created_at=at,
                created_by=payload["created_by"],
                version=event.stream_version,
            )
        )
    elif kind == "api_key.revoked":
        conn.execute(
            update(tables.api_keys)
            .where(tables.api_keys.c.id == payload["api_key_id"])
            .values(revoked_at=at, revoked_by=payload["revoked_by"], version=event.stream_version)
        )
    elif kind == "security_settings.updated":
        for key, value in payload["changes"].items():
            statement = pg_insert(tables.security_settings).values(
                key=key, value=value, updated_at=at
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["key"],
                    set_={"value": statement.excluded.value, "updated_at": at},
                )
            )
    # user.login_failed and user.session_revoked change no read model.


def _project_user(conn: Connection, event: RecordedEvent) -> None:
    kind, payload, at = event.type, event.payload, event.occurred_at
    user_id = str(payload["user_id"])
    if kind == "user.registered":
        profile = readable_profile(user_id, payload)
        conn.execute(
            insert(tables.users).values(
                id=user_id,
                email=profile["email"],
                name=profile["name"],
                phone=profile["phone"],
                language=payload["language"],
                role=payload["role"],
                active=True,
                mfa_enabled=False,
                created_at=at,
                updated_at=at,
                version=event.stream_version,
            )
        )
        return
    values: dict = {"updated_at": at, "version": event.stream_version}
    if kind == "user.profile_updated":
        values.update(readable_profile(user_id, payload["changes"]))
    elif kind == "user.role_changed":
        values["role"] = payload["role"]
    elif kind == "user.deactivated":
        values["active"] = False
    elif kind == "user.reactivated":
        values["active"] = True
    elif kind == "user.mfa_enabled":
        values["mfa_enabled"] = True
    elif kind == "user.mfa_disabled":
        values["mfa_enabled"] = False
    elif kind == "user.erased":
        values.update(erased_profile(user_id), active=False, mfa_enabled=False, erased_at=at)
    conn.execute(update(tables.users).where(tables.users.c.id == user_id).values(**values))


def project_all(
    conn: Connection, events: Iterable[RecordedEvent], vault: Vault | None = None
) -> None:
    """Open and fold ``events`` (with the appending transaction's ``vault``, when given)."""
    vault = vault or Vault(conn)
    for event in events:
        project(conn, open_event(vault, event))


def rebuild(session: Session) -> int:
    """Empty the read models and replay every event into them, in one transaction, holding
    the event table's append lock so no command commits meanwhile. Returns the number of
    events replayed. The caller commits."""
    conn = session.connection()
    conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
    for table in tables.READ_MODELS:
        conn.execute(delete(table))
    store, vault = EventStore(conn), Vault(conn)
    position, replayed = 0, 0
    while True:
        page = store.read_events(position, REBUILD_BATCH, types=sorted(PROJECTED_EVENTS))
        for event in page:
            project(conn, open_event(vault, event))
            position = event.global_position
        replayed += len(page)
        if len(page) < REBUILD_BATCH:
            break
    log.info("rebuilt the users read models from %d events", replayed)
    return replayed
