"""Delivers the sandbox provider's webhooks through the real HTTP path: a background
greenthread of the payments service posts each due ``sandbox_webhooks`` row, signed, to
``CMS_SANDBOX_WEBHOOK_URL`` (by default the local gateway's public endpoint), and retries
with backoff until the gateway answers 2xx. Like a real provider it has several deliveries
in flight at once (:data:`SENDERS`), one charge's webhooks in order.

Sending is when the simulated outcome happens: the courier moves the sandbox's ledger to the
webhook's outcome as it claims the row (a charge the merchant voided meanwhile is not sent).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import eventlet
import requests
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from requests.adapters import HTTPAdapter
from sqlalchemy import text

from services.payments.config import PaymentsConfig, load_config
from services.payments.providers.sandbox import SIGNATURE_HEADER, sign
from shared.db import create_service_engine, service_database_url
from shared.events import utcnow

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 15
BATCH = 20
#: Webhooks in flight at once. One at a time, the courier delivered about 23 webhooks/s on
#: an idle machine and 4-6/s under load (a delivery is an HTTP request, an RPC and a
#: transaction): above that every card payment's capture fell further behind, and the
#: payments' work piled up for after the load (docs/performance.md).
SENDERS = 8
#: How long stopping waits for the deliveries in flight: a send's own timeout, and a margin.
STOP_WAIT = 15.0


class Courier:
    def __init__(self, engine, config: PaymentsConfig):
        self.engine = engine
        self.config = config
        self._event = Event()
        self._finished = Event()
        self.running = False
        # Kept-alive connections to the gateway instead of one per webhook; a pooled
        # connection the gateway closed meanwhile is tried once more on a new one (a
        # delivery is idempotent: the webhook's event id is its key).
        self.http = requests.Session()
        for scheme in ("http://", "https://"):
            self.http.mount(scheme, HTTPAdapter(max_retries=1, pool_maxsize=SENDERS))

    def wake(self) -> None:
        if not self._event.ready():
            self._event.send()

    def claim(self) -> list[tuple[str, str, int, str | None]]:
        """Due webhooks, leased to this courier; applies their outcome to the ledger."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT event_id, body, attempts, charge_reference, ledger_status "
                    "FROM sandbox_webhooks WHERE delivered_at IS NULL AND NOT cancelled "
                    "AND deliver_after <= now() ORDER BY deliver_after LIMIT :batch "
                    "FOR UPDATE SKIP LOCKED"
                ),
                {"batch": BATCH},
            ).all()
            due, cancelled = [], []
            for row in rows:
                if row.attempts == 0 and row.ledger_status:
                    # the outcome happens now, unless the merchant voided the charge meanwhile
                    moved = conn.execute(
                        text(
                            "UPDATE sandbox_ledger SET status = :status, failure_reason = "
                            "CASE WHEN :status = 'declined' THEN :reason ELSE failure_reason END, "
                            "settled_at = CASE WHEN :status = 'succeeded' THEN now() "
                            "ELSE settled_at END WHERE reference = :ref AND status <> 'voided' "
                            "RETURNING 1"
                        ),
                        {
                            "status": row.ledger_status,
                            "reason": json.loads(row.body)["data"].get("failure_reason"),
                            "ref": row.charge_reference,
                        },
                    ).scalar()
                    if not moved:
                        cancelled.append(row.event_id)
                        continue
                due.append((row.event_id, row.body, row.attempts + 1, row.charge_reference))
            if cancelled:
                conn.execute(
                    text("UPDATE sandbox_webhooks SET cancelled = true WHERE event_id = ANY(:ids)"),
                    {"ids": cancelled},
                )
            if due:
                conn.execute(
                    text(
                        "UPDATE sandbox_webhooks SET attempts = attempts + 1, "
                        "deliver_after = now() + :lease WHERE event_id = ANY(:ids)"
                    ),
                    {"ids": [event_id for event_id, *_ in due], "lease": LEASE},
                )
            return due

    def send(self, event_id: str, body: str, attempt: int) -> bool:
        signature = sign(self.config.sandbox_webhook_secret, int(time.time()), body)
        error = None
        try:
            response = self.http.post(
                self.config.sandbox_webhook_url,
                data=body.encode(),
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
                timeout=10,
            )
            if 200 <= response.status_code < 300:
                return True
            error = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            error = str(exc)[:200]
        backoff = timedelta(seconds=min(2**attempt, 300))
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE sandbox_webhooks SET last_error = :error, deliver_after = now() + "
                    ":backoff, cancelled = (attempts >= :max) WHERE event_id = :id"
                ),
                {"id": event_id, "error": error, "backoff": backoff, "max": MAX_ATTEMPTS},
            )
        log.warning("sandbox webhook %s not delivered (attempt %s): %s", event_id, attempt, error)
        return False

    def send_all(self, batch: list[tuple[str, str, int, str | None]]) -> None:
        """Deliver a claimed batch, :data:`SENDERS` at a time, each charge's in order, and
        mark what was delivered in one statement (one not marked, if this process dies
        first, is sent again when its lease ends: the receiver takes it once by its id)."""
        by_charge: dict[str, list[tuple[str, str, int]]] = {}
        for event_id, body, attempt, charge in batch:
            by_charge.setdefault(charge or event_id, []).append((event_id, body, attempt))
        delivered: list[str] = []
        pool = eventlet.GreenPool(SENDERS)
        for deliveries in by_charge.values():
            pool.spawn_n(self._send_in_order, deliveries, delivered)
        pool.waitall()
        if delivered:
            self.mark_delivered(delivered)

    def _send_in_order(self, deliveries: list[tuple[str, str, int]], delivered: list[str]) -> None:
        for event_id, body, attempt in deliveries:
            if not self.send(event_id, body, attempt):
                return  # the rest wait for the next claim, after this one's backoff
            delivered.append(event_id)

    def mark_delivered(self, event_ids: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE sandbox_webhooks SET delivered_at = now() WHERE event_id = ANY(:ids)"),
                {"ids": event_ids},
            )

    def next_due_in(self) -> float:
        with self.engine.connect() as conn:
            due = conn.execute(
                text(
                    "SELECT min(deliver_after) FROM sandbox_webhooks "
                    "WHERE delivered_at IS NULL AND NOT cancelled"
                )
            ).scalar()
        if due is None:
            return POLL_SECONDS
        return max(0.0, min(POLL_SECONDS, (due - utcnow()).total_seconds()))

    def run(self) -> None:
        self.running = True
        try:
            while self.running:
                try:
                    batch = self.claim()
                    self.send_all(batch)
                    if batch:
                        continue
                    wait = self.next_due_in()
                except Exception:
                    log.exception("sandbox courier failed; retrying")
                    wait = POLL_SECONDS
                if wait > 0 and self.running:
                    with eventlet.Timeout(wait, False):
                        self._event.wait()
                self._event = Event()
        finally:
            self._finished.send()

    def stop(self, wait: float = STOP_WAIT) -> None:
        """Claim nothing more, let the batch in flight be sent and marked (up to ``wait``
        seconds), then close the connections. Unmarked deliveries are sent again after their
        lease by whichever courier runs next; the receiver takes each once by its id."""
        was_running, self.running = self.running, False
        self.wake()
        if was_running and wait > 0:
            with eventlet.Timeout(wait, False):
                self._finished.wait()
        self.http.close()
        if self.engine is not None:
            self.engine.dispose()


class SandboxCourier(DependencyProvider):
    """Runs the courier in the payments service; the dependency is the courier (``wake()``
    after a commit that scheduled a webhook)."""

    def setup(self) -> None:
        config = self.container.config
        self.courier = Courier(
            create_service_engine(
                service_database_url(config, "payments"), schema="payments", pool_size=SENDERS // 2
            ),
            load_config(config),
        )

    def start(self) -> None:
        self.container.spawn_managed_thread(self.courier.run)

    def stop(self) -> None:
        self.courier.stop()

    def kill(self) -> None:
        self.courier.stop(wait=0)

    def get_dependency(self, worker_ctx) -> Courier:
        return self.courier
