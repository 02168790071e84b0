"""The deliverer: a background loop in each webhooks process that sends due deliveries through
a bounded pool of green threads, signs them, records every attempt, retries with exponential
backoff for ``RETRY_HOURS`` and pauses an endpoint after ``PAUSE_AFTER`` consecutive failures.

Order: a delivery is due only when no earlier delivery of the same stream (same endpoint,
source and stream id, lower position) is still pending, so each stream reaches an endpoint in
order even while it fails and recovers. Several processes share the work: a delivery is leased
(``lease_until``) with ``FOR UPDATE SKIP LOCKED`` before it is sent, so no two send it at once;
a crashed process's lease runs out and the delivery is sent again (receivers de-duplicate on
``CMS-Webhook-Id``).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import eventlet
from eventlet.event import Event
from eventlet.greenpool import GreenPool
from nameko.extensions import DependencyProvider
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.webhooks import secret_store, signing
from services.webhooks.config import WebhookSettings, load
from shared.db import create_service_engine, service_database_url

log = logging.getLogger(__name__)

USER_AGENT = "CMS-Webhooks/1.0"
MAX_ERROR = 500

CLAIM = text(
    """
    UPDATE deliveries SET lease_until = now() + make_interval(secs => :lease)
    WHERE id IN (
        SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND (d.lease_until IS NULL OR d.lease_until < now())
          AND e.active AND e.paused_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM deliveries p
              WHERE p.endpoint_id = d.endpoint_id AND p.source = d.source
                AND p.stream_id = d.stream_id AND p.status = 'pending'
                AND p.position < d.position)
        ORDER BY d.next_attempt_at, d.position
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED)
    RETURNING id, endpoint_id, envelope, attempts, first_attempt_at, event_type
    """
)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer, not a success
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send(url: str, secret: str, delivery_id: str, envelope: dict, timeout: float):
    """POST one signed delivery; ``(status code or None, error text or None)``."""
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 - the URL was checked at registration
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.ID_HEADER: delivery_id,
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, body),
            signing.EVENT_TYPE_HEADER: envelope.get("type", ""),
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(4096)
            return response.status, None
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
        return exc.code, f"HTTP {exc.code} {exc.reason}: {detail}".strip()[:MAX_ERROR]
    except (urllib.error.URLError, OSError, ValueError, eventlet.Timeout) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(reason).__name__}: {reason}"[:MAX_ERROR]


class Deliverer(DependencyProvider):
    """Runs the delivery loop in a managed thread; ``self.deliverer.wake()`` from a worker
    makes it look for due deliveries now."""

    def setup(self) -> None:
        config = self.container.config
        self.settings: WebhookSettings = load(config)
        service = self.container.service_name
        self.engine: Engine = create_service_engine(
            service_database_url(config, service),
            schema=service,
            pool_size=self.settings.concurrency + 1,
            max_overflow=2,
        )
        self.pool = GreenPool(self.settings.concurrency)
        self._event = Event()
        self._running = False

    def start(self) -> None:
        self._running = True
        self.container.spawn_managed_thread(self._run)

    def stop(self) -> None:
        self._running = False
        self.wake()
        self.pool.waitall()
        self.engine.dispose()

    def kill(self) -> None:
        self._running = False
        self.wake()

    def get_dependency(self, worker_ctx) -> Deliverer:
        return self

    def wake(self) -> None:
        if not self._event.ready():
            self._event.send()

    def _sleep(self, seconds: float) -> None:
        with eventlet.Timeout(seconds, False):
            self._event.wait()
        self._event = Event()

    def _run(self) -> None:
        while self._running:
            claimed = 0
            try:
                free = self.pool.free()
                if free:
                    rows = self.claim(free)
                    claimed = len(rows)
                    for row in rows:
                        self.pool.spawn_n(self._deliver_safely, row)
            except Exception:
                log.exception("webhook delivery loop failed; retrying")
                self._sleep(min(5.0, self.settings.poll_interval * 5))
                continue
            if not claimed and self._running:
                self._sleep(self.settings.poll_interval)

    def claim(self, limit: int) -> list[Any]:
        lease = self.settings.timeout + 30
        with self.engine.begin() as conn:
            return list(conn.execute(CLAIM, {"lease": lease, "limit": limit}))

    def _deliver_safely(self, row: Any) -> None:
        try:
            self.deliver(row)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", row.id)
        finally:
            self.wake()  # the stream's next delivery may be due now

    def deliver(self, row: Any) -> None:
        with self.engine.connect() as conn:
            endpoint = conn.execute(
                text("SELECT url, secret FROM endpoints WHERE id = :id"), {"id": row.endpoint_id}
            ).first()
        if endpoint is None:
            return
        started = time.monotonic()
        secret = secret_store.open_(endpoint.secret, str(row.endpoint_id))
        status_code, error = send(
            endpoint.url, secret, str(row.id), row.envelope, self.settings.timeout
        )
        duration = int((time.monotonic() - started) * 1000)
        succeeded = status_code is not None and 200 <= status_code < 300
        self.record(row, status_code, None if succeeded else error, duration, succeeded)

    def record(self, row, status_code, error, duration_ms, succeeded) -> None:
        now = datetime.now(UTC)
        attempts = row.attempts + 1
        first = row.first_attempt_at or now
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO attempts (delivery_id, attempted_at, status_code, error, "
                    "duration_ms, resent) VALUES (:id, :at, :code, :error, :ms, :resent)"
                ),
                {
                    "id": row.id,
                    "at": now,
                    "code": status_code,
                    "error": error,
                    "ms": duration_ms,
                    "resent": row.attempts > 0 and row.first_attempt_at is None,
                },
            )
            if succeeded:
                conn.execute(
                    text(
                        "UPDATE deliveries SET status = 'delivered', attempts = :attempts, "
                        "first_attempt_at = :first, last_attempt_at = :now, delivered_at = :now, "
                        "last_status_code = :code, last_error = NULL, lease_until = NULL "
                        "WHERE id = :id"
                    ),
                    {
                        "attempts": attempts,
                        "first": first,
                        "now": now,
                        "code": status_code,
                        "id": row.id,
                    },
                )
                conn.execute(
                    text(
                        "UPDATE endpoints SET consecutive_failures = 0 "
                        "WHERE id = :id AND consecutive_failures <> 0"
                    ),
                    {"id": row.endpoint_id},
                )
                return
            give_up = now - first >= timedelta(hours=self.settings.retry_hours)
            conn.execute(
                text(
                    "UPDATE deliveries SET status = :status, attempts = :attempts, "
                    "first_attempt_at = :first, last_attempt_at = :now, next_attempt_at = :next, "
                    "last_status_code = :code, last_error = :error, lease_until = NULL "
                    "WHERE id = :id"
                ),
                {
                    "status": "failed" if give_up else "pending",
                    "attempts": attempts,
                    "first": first,
                    "now": now,
                    "next": now + timedelta(seconds=self.settings.backoff(attempts)),
                    "code": status_code,
                    "error": error,
                    "id": row.id,
                },
            )
            pause_after = self.settings.pause_after
            reason = (
                f"Paused after {pause_after} consecutive failed deliveries; the last one "
                f"({row.event_type}, {now.strftime('%Y-%m-%d %H:%M:%S')} UTC): {error}. "
                "Fix the endpoint, then resume it: pending deliveries are kept and sent in order."
            )
            conn.execute(
                text(
                    "UPDATE endpoints SET consecutive_failures = consecutive_failures + 1, "
                    "paused_at = CASE WHEN :pause_after > 0 AND paused_at IS NULL "
                    "  AND consecutive_failures + 1 >= :pause_after THEN now() ELSE paused_at END, "
                    "paused_reason = CASE WHEN :pause_after > 0 AND paused_at IS NULL "
                    "  AND consecutive_failures + 1 >= :pause_after THEN :reason "
                    "  ELSE paused_reason END "
                    "WHERE id = :id"
                ),
                {"pause_after": pause_after, "reason": reason, "id": row.endpoint_id},
            )
