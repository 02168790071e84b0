"""Security settings (environment defaults + admin overrides, as events) and the audit log
(an append-only journal the gateway writes to)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.users import tables, views
from services.users.events import SETTINGS_STREAM, SETTINGS_STREAM_ID
from services.users.uow import UnitOfWork, event_metadata
from shared.events import utcnow


class SecuritySettings:
    def __init__(self, session: Session, request_id: str | None = None):
        self.session = session
        self.request_id = request_id

    def get(self) -> dict[str, Any]:
        try:
            return views.security_settings(self.session.connection())
        finally:
            self.session.rollback()

    def update(self, actor: dict, changes: dict[str, Any]) -> dict[str, Any]:
        uow = UnitOfWork(self.session, event_metadata(actor, self.request_id))
        try:
            current = views.security_settings(uow.conn)
            if "mfa_required_roles" in changes:
                changes["mfa_required_roles"] = sorted(set(changes["mfa_required_roles"]))
            changed = {key: value for key, value in changes.items() if current.get(key) != value}
            if changed:
                uow.record(
                    SETTINGS_STREAM,
                    SETTINGS_STREAM_ID,
                    [("security_settings.updated", {"changes": changed})],
                    expected_version=None,  # changes to different keys commute
                )
            answer = views.security_settings(uow.conn)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return answer


#: What an audit entry holds (the table's columns but its serial id and recording time).
AUDIT_FIELDS = tuple(
    column.name for column in tables.audit_log.columns if column.name not in ("id", "recorded_at")
)


class AuditLog:
    def __init__(self, session: Session):
        self.session = session

    def record(self, entry: dict[str, Any]) -> None:
        """Once per ``entry_id`` (when the gateway gives one): a retried entry is not doubled."""
        self.record_all([entry])

    def record_all(self, entries: Sequence[dict[str, Any]]) -> None:
        """:meth:`record` for several entries, in one statement and one transaction."""
        rows = []
        for entry in entries:
            values = {field: entry.get(field) for field in AUDIT_FIELDS}
            values["at"] = values["at"] or utcnow()
            if values["entry_id"] is not None:
                values["entry_id"] = str(values["entry_id"])
            rows.append(values)
        try:
            self.session.execute(
                insert(tables.audit_log).on_conflict_do_nothing(index_elements=["entry_id"]),
                rows,
            )
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise

    def list(self, **filters: Any) -> dict[str, Any]:
        try:
            return views.list_audit(self.session.connection(), **filters)
        finally:
            self.session.rollback()
