"""The deliverer: a background loop in each webhooks process that sends due deliveries through
a bounded pool of green threads, signs them, records every attempt, retries with exponential
backoff for ``RETRY_HOURS`` and pauses an endpoint that has failed for ``PAUSE_AFTER_HOURS``
without a single success (the README's promise: retried for 72 hours, not paused by a burst).
Connections go only to public addresses, resolved once and checked (``targets``).

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

from services.webhooks import secret_store, signing, targets
from services.webhooks.config import WebhookSettings, load
from shared.db import create_service_engine, service_database_url

log = logging.getLogger(__name__)

USER_AGENT = "CMS-Webhooks/1.0"
MAX_ERROR = 500
#: How much of a failing target's answer the delivery log keeps (characters).
MAX_ANSWER = 200

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


class _Guarded:
    """Connects through :func:`targets.guarded_connection` (public addresses only)."""

    def __init__(self, create_connection, **kwargs):
        super().__init__(**kwargs)
        self._create = create_connection

    def do_open(self, http_class, req, **kwargs):
        def connection(*args, **options):
            conn = http_class(*args, **options)
            conn._create_connection = self._create
            return conn

        return super().do_open(connection, req, **kwargs)


class _GuardedHTTP(_Guarded, urllib.request.HTTPHandler):
    pass


class _GuardedHTTPS(_Guarded, urllib.request.HTTPSHandler):
    pass


def _opener(allow_loopback: bool) -> urllib.request.OpenerDirector:
    """No redirects, no proxy from the environment (the connection must go where we
    checked), and only to public addresses (the loopback too where allowed)."""
    create = targets.guarded_connection(allow_loopback)
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _NoRedirect,
        _GuardedHTTP(create),
        _GuardedHTTPS(create),
    )


_OPENERS = {allow: _opener(allow) for allow in (False, True)}


def answer_excerpt(raw: bytes, secret: str) -> str:
    """The start of a failing target's answer, for the delivery log.

    Kept on purpose: it is the target's own answer about our request ("invalid signature",
    "unknown event type"), which is what lets an admin fix the endpoint without access to
    its logs, and only admins read the delivery log. It cannot carry our secrets: the signing
    secret never leaves this process (only an HMAC of one body does), and since targets are
    public addresses only, it cannot be an internal service's answer read back through us.
    Still, as a belt to those braces, it is cut short, control characters are blanked (it is
    shown in a browser and in logs) and the endpoint's secret is masked should it appear."""
    text = raw.decode("utf-8", "replace")
    if secret:
        text = text.replace(secret, "[secret]")
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())[:MAX_ANSWER]


def send(
    url: str,
    secret: str,
    delivery_id: str,
    envelope: dict,
    timeout: float,
    allow_loopback: bool = False,
):
    """POST one signed delivery; ``(status code or None, error text or None)``."""
    refused = targets.refusal(url, allow_loopback)
    if refused:  # registered before the rules were what they are: never sent
        return None, f"Not sent: {refused}"
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 - checked above and at each connection
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
        with _OPENERS[allow_loopback].open(request, timeout=timeout) as response:
            response.read(4096)
            return response.status, None
    except urllib.error.HTTPError as exc:
        detail = answer_excerpt(exc.read(MAX_ANSWER * 4), secret) if exc.fp else ""
        return exc.code, f"HTTP {exc.code} {exc.reason}: {detail}".strip(" :")[:MAX_ERROR]
    except (urllib.error.URLError, OSError, ValueError, eventlet.Timeout) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, targets.UnsafeAddress):
            return None, f"Not sent: {reason}"[:MAX_ERROR]
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
            endpoint.url,
            secret,
            str(row.id),
            row.envelope,
            self.settings.timeout,
            self.settings.allow_http_loopback,
        )
        duration = int((time.monotonic() - started) * 1000)
        succeeded = status_code is not None and 200 <= status_code < 300
        record(self.engine, self.settings, row, status_code, error, duration, succeeded)


def record(
    engine: Engine,
    settings: WebhookSettings,
    row: Any,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    succeeded: bool,
    now: datetime | None = None,
) -> None:
    """Record one attempt of the claimed delivery ``row``: delivered, retried later, or given
    up after ``RETRY_HOURS``; and the endpoint's health. An endpoint is paused only when it has
    failed without one success for ``PAUSE_AFTER_HOURS`` (``failing_since``): a burst of
    failures across many pending deliveries (each retried on its own schedule) is minutes of
    trouble, not a dead endpoint. ``now``: the time of the attempt (tests set it)."""
    now = now or datetime.now(UTC)
    attempts = row.attempts + 1
    first = row.first_attempt_at or now
    if not succeeded:
        error = error or f"HTTP {status_code}"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO attempts (delivery_id, attempted_at, status_code, error, "
                "duration_ms, resent) VALUES (:id, :at, :code, :error, :ms, :resent)"
            ),
            {
                "id": row.id,
                "at": now,
                "code": status_code,
                "error": None if succeeded else error,
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
                    "UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL "
                    "WHERE id = :id AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)"
                ),
                {"id": row.endpoint_id},
            )
            return
        give_up = now - first >= timedelta(hours=settings.retry_hours)
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
                "next": now + timedelta(seconds=settings.backoff(attempts)),
                "code": status_code,
                "error": error,
                "id": row.id,
            },
        )
        hours = settings.pause_after_hours
        failing = conn.execute(
            text(
                "UPDATE endpoints SET consecutive_failures = consecutive_failures + 1, "
                "failing_since = COALESCE(failing_since, :now) WHERE id = :id "
                "RETURNING failing_since, consecutive_failures, paused_at"
            ),
            {"now": now, "id": row.endpoint_id},
        ).first()
        if (
            failing is None
            or failing.paused_at is not None
            or hours <= 0
            or now - failing.failing_since < timedelta(hours=hours)
        ):
            return
        reason = (
            f"Paused after failing for {hours:g} hours without a success (since "
            f"{failing.failing_since.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC, "
            f"{failing.consecutive_failures} failed attempts); the last one ({row.event_type}, "
            f"{now.strftime('%Y-%m-%d %H:%M:%S')} UTC): {error}. Fix the endpoint, then resume "
            "it: pending deliveries are kept and sent in order."
        )
        conn.execute(
            text(
                "UPDATE endpoints SET paused_at = :now, paused_reason = :reason "
                "WHERE id = :id AND paused_at IS NULL"
            ),
            {"now": now, "reason": reason, "id": row.endpoint_id},
        )
