"""Webhook endpoints and their delivery log: what admins register, see, change and re-send."""

from __future__ import annotations

import difflib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.webhooks import secret_store, targets
from services.webhooks.config import WebhookSettings
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import BadRequest, ConcurrencyError, NotFound
from shared.events import isoformat

GET_ENDPOINT = "SELECT * FROM endpoints WHERE id = :id"
LOCK_ENDPOINT = GET_ENDPOINT + " FOR UPDATE"
GET_DELIVERY = "SELECT * FROM deliveries WHERE id = :id AND endpoint_id = :endpoint"
LOCK_DELIVERY = GET_DELIVERY + " FOR UPDATE"
#: The columns an update may set (names from EndpointChanges, never from the caller).
UPDATABLE = ("url", "description", "event_types", "fields", "secret", "active")


def check_url(url: str, settings: WebhookSettings) -> str:
    """HTTPS to a public address, without credentials in the URL; the loopback (also over
    plain http) only where the setting allows it (dev, tests). See ``targets``."""
    url = url.strip()
    refused = targets.refusal(url, settings.allow_http_loopback)
    if refused:
        raise BadRequest.for_fields({"url": [refused]})
    return url


def check_event_types(patterns: Iterable[str], known: frozenset[str] | None = None) -> list[str]:
    """The patterns, sorted and once each; a 400 naming ``event_types`` when one is not an
    event type of the catalogue, or is a prefix (``order.*``) that matches none."""
    if known is None:
        from shared.catalogue import event_types

        known = event_types()
    patterns = sorted(set(patterns))
    errors = []
    for pattern in patterns:
        if pattern == "*":
            continue
        if pattern.endswith(".*"):
            if not any(event_type.startswith(pattern[:-1]) for event_type in known):
                errors.append(f"{pattern} matches no event type (see docs/events.md).")
        elif pattern not in known:
            close = difflib.get_close_matches(pattern, sorted(known), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            errors.append(f"Unknown event type {pattern} (see docs/events.md).{hint}")
    if errors:
        raise BadRequest.for_fields({"event_types": errors})
    return patterns


def _time(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def endpoint_view(row: Any) -> dict[str, Any]:
    if not row.active:
        status = "inactive"
    elif row.paused_at is not None:
        status = "paused"
    else:
        status = "active"
    return {
        "id": str(row.id),
        "url": targets.mask(row.url),
        "description": row.description,
        "event_types": list(row.event_types),
        "fields": list(row.fields) if row.fields is not None else None,
        "active": row.active,
        "status": status,
        "paused_at": _time(row.paused_at),
        "paused_reason": row.paused_reason,
        "consecutive_failures": row.consecutive_failures,
        "failing_since": _time(row.failing_since),
        "secret_hint": "…" + secret_store.open_(row.secret, str(row.id))[-4:],
        "version": row.version,
        "created_by": row.created_by,
        "created_at": _time(row.created_at),
        "updated_at": _time(row.updated_at),
    }


def delivery_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "endpoint_id": str(row.endpoint_id),
        "event_id": str(row.event_id),
        "event_type": row.event_type,
        "source": row.source,
        "position": row.position,
        "stream_id": row.stream_id,
        "status": row.status,
        "retrying": row.status == "pending" and row.last_error is not None,
        "attempts": row.attempts,
        "next_attempt_at": _time(row.next_attempt_at) if row.status == "pending" else None,
        "last_attempt_at": _time(row.last_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "delivered_at": _time(row.delivered_at),
        "created_at": _time(row.created_at),
    }


class Endpoints:
    def __init__(self, session: Session, settings: WebhookSettings):
        self.session = session
        self.settings = settings

    def _row(self, endpoint_id: str, lock: bool = False):
        try:
            key = uuid.UUID(str(endpoint_id))
        except ValueError:
            raise NotFound("no such webhook endpoint", {"id": endpoint_id}) from None
        row = self.session.execute(
            text(LOCK_ENDPOINT if lock else GET_ENDPOINT),
            {"id": key},
        ).first()
        if row is None:
            raise NotFound("no such webhook endpoint", {"id": endpoint_id})
        return row

    def create(self, actor: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
        secret = data.get("secret") or "whsec_" + secrets.token_urlsafe(32)
        endpoint_id = uuid.uuid4()
        row = self.session.execute(
            text(
                "INSERT INTO endpoints (id, url, description, event_types, fields, secret, "
                "active, created_by) VALUES (:id, :url, :description, :event_types, :fields, "
                ":secret, :active, :created_by) RETURNING *"
            ),
            {
                "id": endpoint_id,
                "url": check_url(data["url"], self.settings),
                "description": data.get("description") or "",
                "event_types": check_event_types(data["event_types"]),
                "fields": sorted(set(data["fields"])) if data.get("fields") else None,
                "secret": secret_store.seal(secret, str(endpoint_id)),
                "active": data.get("active", True),
                "created_by": actor.get("id"),
            },
        ).one()
        self.session.commit()
        return {**endpoint_view(row), "secret": secret}

    def get(self, endpoint_id: str) -> dict[str, Any]:
        return endpoint_view(self._row(endpoint_id))

    def list(self) -> list[dict[str, Any]]:
        rows = self.session.execute(text("SELECT * FROM endpoints ORDER BY created_at, id"))
        return [endpoint_view(row) for row in rows]

    def update(
        self, endpoint_id: str, changes: Mapping[str, Any], expected_version: int | None
    ) -> dict[str, Any]:
        row = self._row(endpoint_id, lock=True)
        if expected_version is not None and row.version != expected_version:
            raise ConcurrencyError.for_stream(str(row.id), expected_version, row.version)
        values = dict(changes)
        if "url" in values:
            values["url"] = check_url(values["url"], self.settings)
        if "event_types" in values:
            values["event_types"] = check_event_types(values["event_types"])
        if "fields" in values:
            values["fields"] = sorted(set(values["fields"])) if values["fields"] else None
        if "secret" in values:
            values["secret"] = secret_store.seal(values["secret"], str(row.id))
        assignments = ", ".join(f"{name} = :{name}" for name in UPDATABLE if name in values)
        if values.get("active") is True and not row.active:
            assignments += (
                ", paused_at = NULL, paused_reason = NULL, consecutive_failures = 0, "
                "failing_since = NULL"
            )
        updated = self.session.execute(
            text(
                f"UPDATE endpoints SET {assignments}, version = version + 1, "  # noqa: S608
                "updated_at = now() WHERE id = :id RETURNING *"
            ),
            {**values, "id": row.id},
        ).one()
        self.session.commit()
        return endpoint_view(updated)

    def resume(self, endpoint_id: str) -> dict[str, Any]:
        """Un-pause: pending deliveries are tried again now, in order, with those that ran
        out of retries while the endpoint was failing (the oldest does as it is paused)."""
        row = self._row(endpoint_id, lock=True)
        updated = self.session.execute(
            text(
                "UPDATE endpoints SET paused_at = NULL, paused_reason = NULL, "
                "consecutive_failures = 0, failing_since = NULL, version = version + 1, "
                "updated_at = now() WHERE id = :id RETURNING *"
            ),
            {"id": row.id},
        ).one()
        self.session.execute(
            text(
                "UPDATE deliveries SET next_attempt_at = now(), status = 'pending', "
                "first_attempt_at = CASE WHEN status = 'failed' THEN NULL "
                "  ELSE first_attempt_at END "
                "WHERE endpoint_id = :id AND (status = 'pending' OR (status = 'failed' "
                "  AND :since IS NOT NULL AND last_attempt_at >= :since))"
            ),
            {"id": row.id, "since": row.failing_since},
        )
        self.session.commit()
        return endpoint_view(updated)

    def delete(self, endpoint_id: str) -> None:
        row = self._row(endpoint_id, lock=True)
        self.session.execute(text("DELETE FROM endpoints WHERE id = :id"), {"id": row.id})
        self.session.commit()

    # -- the delivery log -----------------------------------------------------------------------

    def deliveries(
        self, endpoint_id: str, status: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        row = self._row(endpoint_id)
        params: dict[str, Any] = {"endpoint": row.id, "limit": limit + 1}
        where = ["endpoint_id = :endpoint"]
        if status == "retrying":  # pending, and its last attempt failed
            where.append("status = 'pending' AND last_error IS NOT NULL")
        elif status:
            where.append("status = :status")
            params["status"] = status
        if cursor:
            params["after_at"], params["after_id"] = decode_cursor(
                cursor, (datetime.fromisoformat, lambda value: uuid.UUID(str(value)))
            )
            where.append("(created_at, id) < (:after_at, :after_id)")
        rows = self.session.execute(
            text(
                f"SELECT * FROM deliveries WHERE {' AND '.join(where)} "  # noqa: S608
                "ORDER BY created_at DESC, id DESC LIMIT :limit"
            ),
            params,
        ).all()
        items = [delivery_view(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(isoformat(last.created_at), str(last.id))
        return {"items": items, "next_cursor": next_cursor}

    def _delivery(self, endpoint_id: str, delivery_id: str, lock: bool = False):
        endpoint = self._row(endpoint_id)
        try:
            key = uuid.UUID(str(delivery_id))
        except ValueError:
            raise NotFound("no such delivery", {"id": delivery_id}) from None
        row = self.session.execute(
            text(LOCK_DELIVERY if lock else GET_DELIVERY),
            {"id": key, "endpoint": endpoint.id},
        ).first()
        if row is None:
            raise NotFound("no such delivery", {"id": delivery_id})
        return row

    def delivery(self, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        row = self._delivery(endpoint_id, delivery_id)
        attempts = self.session.execute(
            text("SELECT * FROM attempts WHERE delivery_id = :id ORDER BY id"), {"id": row.id}
        )
        return {
            **delivery_view(row),
            "envelope": row.envelope,
            "attempt_log": [
                {
                    "at": isoformat(a.attempted_at),
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                    "resent": a.resent,
                }
                for a in attempts
            ],
        }

    def resend(self, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        """Deliver again now (same delivery id: a receiver that has it already may drop it)."""
        row = self._delivery(endpoint_id, delivery_id, lock=True)
        updated = self.session.execute(
            text(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = now(), "
                "first_attempt_at = NULL, lease_until = NULL WHERE id = :id RETURNING *"
            ),
            {"id": row.id},
        ).one()
        self.session.commit()
        return delivery_view(updated)


def purge_delivered(session: Session, days: int) -> int:
    """Forget deliveries that succeeded more than ``days`` ago (with their attempts); pending
    and failed ones stay until they are delivered or their endpoint is deleted."""
    result = session.execute(
        text(
            "DELETE FROM deliveries WHERE status = 'delivered' "
            "AND delivered_at < now() - make_interval(days => :days)"
        ),
        {"days": days},
    )
    session.commit()
    return result.rowcount or 0
