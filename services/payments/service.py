"""nameko entrypoints of the payments service (thin: the command layer and views do the work).

Every argument is a keyword argument with a JSON value. ``actor`` is who acts
(``{"id", "kind", "role", "ip", "request_id"}``, into event metadata); ``idempotency`` is
``{"key", "hash"}`` from the gateway when the caller sent an ``Idempotency-Key``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy import text

from services.payments import schemas
from services.payments.commands import PaymentCommands
from services.payments.config import load_config
from services.payments.providers import build_providers
from services.payments.sandbox_courier import SandboxCourier
from services.payments.views import list_payments, payment_view, reconciliation
from shared.consumer import apply_all_once, apply_once, catch_up
from shared.errors import BadRequest, CmsError, NotFound, ServiceUnavailable
from shared.events import utcnow
from shared.idempotency import purge_expired, run_idempotent
from shared.rpc import Rpc
from shared.service import EventSourcedService, load_rpc_payload
from shared.subscriptions import durable_event_handler

log = logging.getLogger(__name__)

api = rpc(expected_exceptions=(CmsError,))

#: the orders service's events this service keeps its order replica from
ORDER_EVENTS = ("order.placed", "order.lines_changed", "order.cancelled", "order.returned")
ORDERS_CONSUMER = "payments.order_replica"
#: The order events that can void or refund a sandbox payment (they wake the courier).
VOIDING_EVENTS = ("order.cancelled", "order.returned")
EXPIRY_INTERVAL = float(load_config().expiry_interval_seconds)
CATCH_UP_INTERVAL = 60.0
HOUSEKEEPING_INTERVAL = 3600.0


class Settings(DependencyProvider):
    """The payments config and the provider adapters, built once per container."""

    def setup(self) -> None:
        self.config = load_config(self.container.config)
        self.providers = build_providers(self.config)

    def get_dependency(self, worker_ctx):
        return self


def event_metadata(context: Any, actor: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = dict(context.event_metadata(actor)) if context else {}
    if actor and actor.get("request_id") and "request_id" not in meta:
        meta["request_id"] = actor["request_id"]
        meta.setdefault("correlation_id", actor["request_id"])
    return meta


class PaymentsService(EventSourcedService):
    """Payments of orders: providers, refunds, webhooks, reconciliation."""

    name = "payments"
    settings = Settings()
    rpc_client = Rpc()
    courier = SandboxCourier()

    # -- plumbing ------------------------------------------------------------------------------

    def _fetch_order(self, order_id: str) -> dict[str, Any] | None:
        try:
            order = self.rpc_client.call("orders", "get_order", order_id=order_id)
        except NotFound:
            return None
        except CmsError:
            raise
        except Exception as exc:
            raise ServiceUnavailable(
                "the orders service could not say what the order is", {"service": "orders"}
            ) from exc
        return order or None

    def _commands(self, actor: dict[str, Any] | None = None, now=None) -> PaymentCommands:
        return PaymentCommands(
            self.db,
            self.settings.providers,
            self.settings.config,
            event_metadata(self.context, actor),
            self._fetch_order,
            now=now,
        )

    def _write(
        self,
        actor: dict[str, Any],
        operation: str,
        idempotency: dict | None,
        command: Callable[[PaymentCommands], dict],
    ) -> dict[str, Any]:
        try:
            result = run_idempotent(
                self.db, actor, idempotency, operation, lambda: command(self._commands(actor))
            )
            self.db.commit()
        except Exception:
            self.db.rollback()
            raise
        self.courier.wake()
        return result

    def _read(self, read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return read(self.db.connection(), *args, **kwargs)
        finally:
            self.db.rollback()

    # -- payments ------------------------------------------------------------------------------

    @api
    def create_payment(self, actor, data, idempotency=None) -> dict[str, Any]:
        data = load_rpc_payload(schemas.CreatePayment, data)
        return self._write(
            actor, "create_payment", idempotency, lambda c: c.create(actor, data, recorded=False)
        )

    @api
    def record_manual_payment(self, actor, data, idempotency=None) -> dict[str, Any]:
        data = load_rpc_payload(schemas.ManualPayment, data)
        return self._write(
            actor, "record_manual_payment", idempotency, lambda c: c.create(actor, data, True)
        )

    @api
    def capture_payment(self, actor, payment_id, idempotency=None) -> dict[str, Any]:
        return self._write(
            actor, f"capture_payment:{payment_id}", idempotency, lambda c: c.capture(payment_id)
        )

    @api
    def cancel_payment(self, actor, payment_id, reason=None) -> dict[str, Any]:
        return self._write(
            actor, "cancel_payment", None, lambda c: c.cancel(payment_id, reason or "requested")
        )

    @api
    def refund_payment(
        self, actor, payment_id, amount=None, reason=None, idempotency=None
    ) -> dict[str, Any]:
        args = load_rpc_payload(schemas.Refund, {"amount": amount, "reason": reason})
        return self._write(
            actor,
            f"refund_payment:{payment_id}",
            idempotency,
            lambda c: c.refund(payment_id, args["amount"], args["reason"] or "requested"),
        )

    @api
    def confirm_payment(self, actor, payment_id) -> dict[str, Any]:
        return self._write(actor, "confirm_payment", None, lambda c: c.confirm(payment_id))

    @api
    def sandbox_scan(self, actor, payment_id) -> dict[str, Any]:
        """Sandbox only: the customer scanned the QR code (a simulation)."""
        return self._write(actor, "sandbox_scan", None, lambda c: c.simulate_scan(payment_id))

    @api
    def get_payment(self, payment_id) -> dict[str, Any]:
        commands = self._commands()
        try:
            return payment_view(commands._payment_row(payment_id))
        finally:
            self.db.rollback()

    @api
    def list_payments(self, order_id=None, status=None, method=None, limit=50, cursor=None):
        args = load_rpc_payload(
            schemas.ListArgs,
            {
                "order_id": order_id,
                "status": status,
                "method": method,
                "limit": limit,
                "cursor": cursor,
            },
        )
        page = self._read(list_payments, **args)
        if args.get("order_id"):
            page["order"] = self.order_balance(str(args["order_id"]))
        return page

    @api
    def order_balance(self, order_id) -> dict[str, Any] | None:
        """What the order costs, what was paid, what open payments may bring, what is left."""
        commands = self._commands()
        try:
            row = commands.conn.execute(
                text("SELECT * FROM order_replica WHERE order_id = CAST(:id AS uuid)"),
                {"id": str(order_id)},
            ).one_or_none()
            return commands.balance(row) if row is not None else None
        finally:
            self.db.rollback()

    # -- webhooks ------------------------------------------------------------------------------

    @api
    def handle_webhook(self, provider, headers, body) -> dict[str, Any]:
        """A provider's notification: verified (signature, replay window), then applied once."""
        adapter = self.settings.providers.get(provider)
        if adapter is None:
            raise NotFound(f"no provider {provider}", {"resource_type": "provider"})
        event = adapter.parse_webhook(headers or {}, body or "", utcnow())
        try:
            result = self._commands({"id": provider, "kind": "provider"}).webhook(provider, event)
            self.db.commit()
        except Exception:
            self.db.rollback()
            raise
        self.courier.wake()
        return result

    # -- reconciliation ------------------------------------------------------------------------

    @api
    def reconciliation(self, day=None) -> dict[str, Any]:
        """One UTC day (``YYYY-MM-DD``, default today): the provider's report against CMS."""
        try:
            moment = date.fromisoformat(str(day)) if day else utcnow().date()
        except ValueError:
            raise BadRequest.for_fields({"date": ["Not a date (YYYY-MM-DD)."]}) from None
        return self._read(reconciliation, moment, utcnow())

    # -- time ----------------------------------------------------------------------------------

    @api
    def expire_pending(self, now=None) -> dict[str, Any]:
        """Expire pending payments past their deadline (``now``: tests look ahead)."""
        moment = datetime.fromisoformat(now.replace("Z", "+00:00")) if now else utcnow()
        ids = [
            str(row.id)
            for row in self.db.execute(
                text(
                    "SELECT id FROM payments WHERE status = 'pending' AND expires_at <= :now "
                    "ORDER BY expires_at LIMIT 200"
                ),
                {"now": moment},
            )
        ]
        self.db.rollback()
        expired = []
        for payment_id in ids:
            try:
                if self._commands({"id": "system", "kind": "system"}, now=moment).expire(
                    payment_id
                ):
                    expired.append(payment_id)
                self.db.commit()
            except Exception:
                self.db.rollback()
                log.exception("could not expire payment %s", payment_id)
        return {"expired": expired}

    @timer(interval=EXPIRY_INTERVAL)
    def expire_due(self) -> None:
        self.expire_pending()

    @timer(interval=HOUSEKEEPING_INTERVAL)
    def housekeeping(self) -> None:
        purge_expired(self.db)

    # -- the order replica ---------------------------------------------------------------------

    def _apply_order_event(self, session, envelope) -> None:
        self._commands({"id": "orders", "kind": "system"}).order_event(envelope)

    def _on_order_events(self, envelopes: list[dict[str, Any]]) -> None:
        """A batch of deliveries (``batched``), each applied once, in one transaction."""
        applied = apply_all_once(self.db, ORDERS_CONSUMER, envelopes, self._apply_order_event)
        if any(envelope.get("type") in VOIDING_EVENTS for envelope in applied):
            self.courier.wake()

    @durable_event_handler("orders", "order.placed", batched=True)
    def on_order_placed(self, envelopes):
        self._on_order_events(envelopes)

    @durable_event_handler("orders", "order.lines_changed", batched=True)
    def on_order_lines_changed(self, envelopes):
        self._on_order_events(envelopes)

    @durable_event_handler("orders", "order.cancelled", batched=True)
    def on_order_cancelled(self, envelopes):
        self._on_order_events(envelopes)

    @durable_event_handler("orders", "order.returned", batched=True)
    def on_order_returned(self, envelopes):
        self._on_order_events(envelopes)

    @api
    def apply_order_events(self, envelopes) -> dict[str, int]:
        """Apply orders' event envelopes (each once): what catch-up and the tests feed."""
        applied = 0
        for envelope in envelopes:
            if envelope.get("type") in ORDER_EVENTS:
                applied += apply_once(self.db, ORDERS_CONSUMER, envelope, self._apply_order_event)
        self.courier.wake()
        return {"applied": applied}

    def _catch_up(self) -> int:
        def fetch(after: int, limit: int):
            return self.rpc_client.read_events("orders", after, limit, ORDER_EVENTS)

        applied = catch_up(self.db, ORDERS_CONSUMER, "orders", fetch, self._apply_order_event)
        self.courier.wake()
        return applied

    @timer(interval=CATCH_UP_INTERVAL, eager=True)
    def catch_up_orders(self) -> None:
        """Whatever live delivery missed (a queue not yet bound, the service away)."""
        try:
            self._catch_up()
        except ServiceUnavailable as exc:
            self.db.rollback()
            log.info("order catch-up skipped: %s", exc)
        except Exception:
            self.db.rollback()
            log.exception("order catch-up failed")

    @api
    def catch_up_order_replica(self) -> dict[str, int]:
        """Catch up on the orders service's events now (operations; what the timer does)."""
        try:
            return {"applied": self._catch_up()}
        except Exception:
            self.db.rollback()
            raise
