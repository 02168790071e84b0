"""The payments command layer: one method per command, run inside the caller's transaction
(the caller commits). Every command on a payment first locks its order's replica row, so all
money movements of one order serialise and concurrent payments cannot over-pay it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from services.payments.config import PaymentsConfig
from services.payments.domain import OPEN, PENDING, REFUNDABLE, Change, Payment, outstanding
from services.payments.events import PAYMENT_STREAM, registry
from services.payments.providers import provider_for
from services.payments.providers.base import CAPTURED, Provider, WebhookEvent
from services.payments.views import payment_view
from shared.errors import BadRequest, NotFound, RuleViolation
from shared.events import utcnow
from shared.eventstore import EventStore

#: order statuses that accept payments
PAYABLE = ("placed", "partially_paid", "paid")

FetchOrder = Callable[[str], dict[str, Any] | None]


def payment_not_found(payment_id: str) -> NotFound:
    return NotFound("payment not found", {"resource_type": "payment", "resource_id": payment_id})


def order_not_found(order_id: str) -> NotFound:
    return NotFound("order not found", {"resource_type": "order", "resource_id": order_id})


def _uuid(value: Any, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise BadRequest.for_fields({field: ["Not a valid UUID."]}) from None


class PaymentCommands:
    def __init__(
        self,
        session: Session,
        providers: Mapping[str, Provider],
        config: PaymentsConfig,
        metadata: dict[str, Any] | None = None,
        fetch_order: FetchOrder | None = None,
        now: datetime | None = None,
    ):
        self.session = session
        self.providers = providers
        self.config = config
        self.metadata = metadata or {}
        self.fetch_order = fetch_order
        self.now = now or utcnow()
        self.store = EventStore(session)

    @property
    def conn(self) -> Connection:
        return self.session.connection()

    # -- orders --------------------------------------------------------------------------------

    def upsert_order(self, order: Mapping[str, Any], version: int) -> None:
        """Write the replica row unless it already holds a newer version of the order."""
        self.conn.execute(
            text(
                "INSERT INTO order_replica (order_id, customer_id, currency, total, status, "
                "source_version, updated_at) VALUES (:order_id, :customer_id, :currency, "
                ":total, :status, :version, now()) ON CONFLICT (order_id) DO UPDATE SET "
                "customer_id = EXCLUDED.customer_id, currency = EXCLUDED.currency, "
                "total = EXCLUDED.total, status = EXCLUDED.status, "
                "source_version = EXCLUDED.source_version, updated_at = now() "
                "WHERE order_replica.source_version < EXCLUDED.source_version"
            ),
            {
                "order_id": str(order["order_id"]),
                "customer_id": str(order["customer_id"]),
                "currency": order["currency"],
                "total": int(order["total"]),
                "status": order["status"],
                "version": version,
            },
        )

    def lock_order(self, order_id: str) -> Row:
        """The order's replica row, locked; fetched from the orders service when the replica
        has not seen the order yet."""
        order_id = _uuid(order_id, "order_id")
        query = text("SELECT * FROM order_replica WHERE order_id = :id FOR UPDATE")
        row = self.conn.execute(query, {"id": order_id}).one_or_none()
        if row is None and self.fetch_order is not None:
            fetched = self.fetch_order(order_id)
            if fetched:
                # the order as the orders service has it now, at its stream version
                self.upsert_order(
                    {**fetched, "order_id": order_id}, int(fetched.get("version") or 0)
                )
                row = self.conn.execute(query, {"id": order_id}).one_or_none()
        if row is None:
            raise order_not_found(order_id)
        return row

    def order_payments(self, order_id: str) -> list[Row]:
        return self.conn.execute(
            text("SELECT * FROM payments WHERE order_id = :id ORDER BY created_at, id"),
            {"id": order_id},
        ).all()

    def balance(self, order: Row) -> dict[str, Any]:
        rows = self.order_payments(str(order.order_id))
        paid = sum(row.captured_amount - row.refunded_amount for row in rows)
        pending = sum(row.amount for row in rows if row.status in OPEN)
        return {
            "order_id": str(order.order_id),
            "customer_id": str(order.customer_id),
            "currency": order.currency,
            "total": order.total,
            "status": order.status,
            "paid_amount": paid,
            "pending_amount": pending,
            "outstanding": outstanding(order.total, [dict(row._mapping) for row in rows]),
        }

    # -- payments ------------------------------------------------------------------------------

    def _payment_row(self, payment_id: str, lock: bool = False) -> Row:
        payment_id = _uuid(payment_id, "payment_id")
        row = self.conn.execute(
            text(f"SELECT * FROM payments WHERE id = :id{' FOR UPDATE' if lock else ''}"),  # noqa: S608
            {"id": payment_id},
        ).one_or_none()
        if row is None:
            raise payment_not_found(payment_id)
        return row

    def load(self, payment_id: str, order_id: str | None = None) -> tuple[Payment, Row, Row]:
        """``(payment, its row, its order's row)``, order first, both locked. ``order_id``:
        the payment's order, when the caller has read it already."""
        if order_id is None:
            order_id = str(self._payment_row(payment_id).order_id)
        order = self.lock_order(order_id)
        row = self._payment_row(payment_id, lock=True)
        events = self.store.load_stream(str(row.id))
        return Payment.from_events(str(row.id), events), row, order

    def record(
        self, payment: Payment, changes: list[Change], reference: str | None = None, **columns: Any
    ) -> Row:
        """Append ``changes``, fold them into ``payment``, and update its row; the row as
        written. ``reference``: the provider's reference of a capture or a refund in them."""
        self._append(payment, changes, reference)
        if payment.status != PENDING:
            columns.setdefault("next_action", None)
        columns.update(
            status=payment.status,
            captured_amount=payment.captured_amount,
            refunded_amount=payment.refunded_amount,
            failure_reason=payment.failure_reason,
            refunds=json.dumps(payment.refunds),
            version=payment.version,
            updated_at=self.now,
        )
        if "next_action" in columns and columns["next_action"] is not None:
            columns["next_action"] = json.dumps(columns["next_action"])
        assignments = ", ".join(
            f"{key} = CAST(:{key} AS jsonb)"
            if key in ("refunds", "next_action")
            else f"{key} = :{key}"
            for key in columns
        )
        statement = f"UPDATE payments SET {assignments} WHERE id = :id RETURNING *"  # noqa: S608
        return self.conn.execute(text(statement), {**columns, "id": payment.id}).one()

    def _append(self, payment: Payment, changes: list[Change], reference: str | None) -> None:
        """Append ``changes`` to the payment's stream and fold them into ``payment``; a
        capture or a refund among them is also written as a money movement."""
        events = [
            registry.new_event(event_type, payload, occurred_at=self.now)
            for event_type, payload in changes
        ]
        recorded = self.store.append(
            PAYMENT_STREAM, payment.id, events, payment.version, self.metadata
        )
        for event in recorded:
            payment.apply(event.type, event.payload, event.occurred_at)
            if event.type in ("payment.captured", "payment.refunded"):
                self._movement(payment, event.type, event.payload, reference)

    def _movement(
        self, payment: Payment, event_type: str, payload: dict, reference: str | None
    ) -> None:
        refund = event_type == "payment.refunded"
        self.conn.execute(
            text(
                "INSERT INTO payment_movements (payment_id, kind, refund_id, provider, "
                "provider_reference, method, amount, currency, occurred_at) VALUES "
                "(:payment_id, :kind, :refund_id, :provider, :reference, :method, :amount, "
                ":currency, :at)"
            ),
            {
                "payment_id": payment.id,
                "kind": "refund" if refund else "capture",
                "refund_id": payload.get("refund_id") if refund else None,
                "provider": payment.provider,
                "reference": reference,
                "method": payment.method,
                "amount": payload["amount"],
                "currency": payment.currency,
                "at": self.now,
            },
        )

    # -- commands ------------------------------------------------------------------------------

    def create(self, actor: Mapping[str, Any], data: Mapping[str, Any], recorded: bool) -> dict:
        """A payment of an order: through a provider (``recorded`` False) or recorded by staff
        (cash, a transfer received)."""
        method = data["method"]
        provider = provider_for(dict(self.providers), method, recorded)
        if provider is None:
            where = "recorded by staff" if recorded else "taken through a provider"
            raise BadRequest.for_fields({"method": [f"{method} cannot be {where}."]})
        if method == "card" and not data.get("card"):
            raise BadRequest.for_fields({"card": ["Required for card payments."]})
        if method != "card" and data.get("card"):
            raise BadRequest.for_fields({"card": ["Only for card payments."]})
        order = self.lock_order(data["order_id"])
        if order.status not in PAYABLE:
            raise RuleViolation(
                f"a {order.status} order takes no payments",
                {"code": "order_not_payable", "order_status": order.status},
            )
        if data["currency"] != order.currency:
            raise RuleViolation(
                f"the order is in {order.currency}",
                {
                    "code": "currency_mismatch",
                    "errors": {"currency": [f"Must be {order.currency}."]},
                },
            )
        balance = self.balance(order)
        if data["amount"] > balance["outstanding"]:
            raise RuleViolation(
                f"the amount exceeds what the order still needs ({balance['outstanding']})",
                {"code": "overpayment", "outstanding": balance["outstanding"]},
            )
        payment_id = str(uuid.uuid4())
        payment = Payment(
            payment_id,
            order_id=str(order.order_id),
            customer_id=str(order.customer_id),
            method=method,
            provider=provider.name,
            amount=data["amount"],
            currency=data["currency"],
        )
        result = provider.start(self.conn, payment, data, self.now)
        changes = Payment.initiate(
            payment_id,
            payment.order_id,
            payment.customer_id,
            method,
            provider.name,
            payment.amount,
            payment.currency,
            result.card,
        )
        self._append(payment, changes, None)
        if result.outcome == CAPTURED:
            self._append(payment, payment.authorize_and_capture(self.now), result.reference)
        pending = payment.status == PENDING
        # the row written once, as the events left it, and answered from what was written
        row = self.conn.execute(
            text(
                "INSERT INTO payments (id, order_id, customer_id, method, provider, amount, "
                "currency, status, captured_amount, refunded_amount, failure_reason, refunds, "
                "capture_method, card_token, card_brand, card_last4, provider_reference, "
                "next_action, reference, expires_at, created_by, created_at, updated_at, "
                "version) VALUES (:id, :order_id, :customer_id, :method, :provider, :amount, "
                ":currency, :status, :captured, :refunded, :failure_reason, "
                "CAST(:refunds AS jsonb), :capture_method, :token, :brand, :last4, "
                ":provider_reference, CAST(:next_action AS jsonb), :reference, :expires_at, "
                ":created_by, :now, :now, :version) RETURNING *"
            ),
            {
                "id": payment_id,
                "order_id": payment.order_id,
                "customer_id": payment.customer_id,
                "method": method,
                "provider": provider.name,
                "amount": payment.amount,
                "currency": payment.currency,
                "status": payment.status,
                "captured": payment.captured_amount,
                "refunded": payment.refunded_amount,
                "failure_reason": payment.failure_reason,
                "refunds": json.dumps(payment.refunds),
                "capture_method": data.get("capture_method") or "automatic",
                "token": (result.card or {}).get("token"),
                "brand": (result.card or {}).get("brand"),
                "last4": (result.card or {}).get("last4"),
                "provider_reference": result.reference,
                "next_action": json.dumps(result.next_action)
                if pending and result.next_action
                else None,
                "reference": data.get("reference"),
                "expires_at": self.now + timedelta(seconds=self.config.pending_ttl_seconds)
                if pending
                else None,
                "created_by": actor.get("id"),
                "now": self.now,
                "version": payment.version,
            },
        ).one()
        return payment_view(row)

    def capture(self, payment_id: str) -> dict:
        payment, row, _ = self.load(payment_id)
        if payment.status != "authorized":
            payment.capture(self.now)  # raises the state error
        self.providers[payment.provider].capture(
            self.conn, payment, row.provider_reference, self.now
        )
        return payment_view(self.record(payment, payment.capture(self.now), row.provider_reference))

    def cancel(self, payment_id: str, reason: str) -> dict:
        payment, row, _ = self.load(payment_id)
        if payment.status not in OPEN:
            payment.cancel(reason)  # raises the state error
        self.providers[payment.provider].cancel(
            self.conn, payment, row.provider_reference, self.now
        )
        return payment_view(self.record(payment, payment.cancel(reason)))

    def refund(self, payment_id: str, amount: int | None, reason: str) -> dict:
        payment, row, _ = self.load(payment_id)
        return payment_view(self._refund(payment, row, amount, reason))

    def _refund(self, payment: Payment, row: Row, amount: int | None, reason: str) -> Row:
        amount = payment.refundable if amount is None else amount
        changes = payment.refund(str(uuid.uuid4()), amount, reason)  # checks the cap first
        reference = self.providers[payment.provider].refund(
            self.conn, payment, row.provider_reference, amount, self.now
        )
        return self.record(payment, changes, reference)

    def confirm(self, payment_id: str) -> dict:
        payment, row, _ = self.load(payment_id)
        if payment.status != PENDING:
            raise RuleViolation(
                f"a {payment.status} payment needs no confirmation",
                {"code": "invalid_payment_state", "payment_status": payment.status},
            )
        self.providers[payment.provider].confirm(
            self.conn, payment, row.provider_reference, self.now
        )
        return payment_view(self._set_next_action(payment.id, {"type": "processing"}))

    def simulate_scan(self, payment_id: str) -> dict:
        payment, row, _ = self.load(payment_id)
        if payment.status != PENDING:
            raise RuleViolation(
                f"a {payment.status} payment waits for no scan",
                {"code": "invalid_payment_state", "payment_status": payment.status},
            )
        self.providers[payment.provider].simulate(
            self.conn, payment, row.provider_reference, self.now
        )
        return payment_view(self._set_next_action(payment.id, {"type": "processing"}))

    def _set_next_action(self, payment_id: str, action: dict | None) -> Row:
        return self.conn.execute(
            text(
                "UPDATE payments SET next_action = CAST(:action AS jsonb) WHERE id = :id "
                "RETURNING *"
            ),
            {"id": payment_id, "action": json.dumps(action) if action else None},
        ).one()

    def webhook(self, provider_name: str, event: WebhookEvent) -> dict[str, Any]:
        """Apply a verified provider event once (by its event id)."""
        inserted = self.conn.execute(
            text(
                "INSERT INTO provider_webhook_events (provider, event_id, event_type, outcome) "
                "VALUES (:provider, :id, :type, 'received') "
                "ON CONFLICT (provider, event_id) DO NOTHING RETURNING 1"
            ),
            {"provider": provider_name, "id": event.event_id, "type": event.type},
        ).scalar()
        if not inserted:
            return {"status": "duplicate", "event_id": event.event_id}
        found = self.conn.execute(
            text(
                "SELECT id, order_id FROM payments "
                "WHERE provider = :p AND provider_reference = :ref"
            ),
            {"p": provider_name, "ref": event.reference},
        ).one_or_none()
        payment_id = found.id if found else None
        outcome = (
            self._apply_webhook(str(found.id), str(found.order_id), event)
            if found
            else "unknown_payment"
        )
        self.conn.execute(
            text(
                "UPDATE provider_webhook_events SET outcome = :outcome, payment_id = :payment "
                "WHERE provider = :provider AND event_id = :id"
            ),
            {
                "outcome": outcome,
                "payment": str(payment_id) if payment_id else None,
                "provider": provider_name,
                "id": event.event_id,
            },
        )
        return {"status": outcome, "event_id": event.event_id}

    def _apply_webhook(self, payment_id: str, order_id: str, event: WebhookEvent) -> str:
        payment, row, order = self.load(payment_id, order_id)
        if event.amount != payment.amount or event.currency != payment.currency:
            return "amount_mismatch"
        if payment.status != PENDING:
            return f"ignored_{payment.status}"
        if event.type == "failed":
            self.record(payment, payment.fail(event.reason or "declined"))
            return "failed"
        if event.type == "authorized" and row.capture_method != "automatic":
            self.record(payment, payment.authorize())
            return "authorized"
        if event.type == "authorized":  # captured at once: both events in one append
            self.providers[payment.provider].capture(
                self.conn, payment, row.provider_reference, self.now
            )
        self.record(payment, payment.authorize_and_capture(self.now), row.provider_reference)
        if order.status not in PAYABLE:  # the order went away while the money was on its way
            self._refund(payment, row, None, f"order_{order.status}")
            return "captured_and_refunded"
        return "captured"

    def expire(self, payment_id: str) -> bool:
        payment, row, _ = self.load(payment_id)
        if payment.status != PENDING:
            return False
        try:
            self.providers[payment.provider].cancel(
                self.conn, payment, row.provider_reference, self.now
            )
        except RuleViolation:
            return False  # the provider has taken the money: its webhook will capture it
        self.record(payment, payment.expire())
        return True

    def order_event(self, envelope: Mapping[str, Any]) -> None:
        """Apply one of the orders service's events to the replica (and its consequences)."""
        payload = envelope["payload"]
        order_id = str(payload["order_id"])
        version = int(envelope.get("stream_version") or 0)
        kind = envelope["type"]
        if kind == "order.placed":
            self.upsert_order({**payload, "status": "placed"}, version)
            return
        try:
            order = self.lock_order(order_id)
        except NotFound:
            return  # an order the orders service does not have: nothing of it to follow
        if order.source_version >= version > 0:
            return  # the replica already reflects a newer state of the order
        if kind == "order.lines_changed":
            self.conn.execute(
                text(
                    "UPDATE order_replica SET total = :total, source_version = :v, "
                    "updated_at = now() WHERE order_id = :id"
                ),
                {"total": int(payload["total"]), "v": version, "id": order_id},
            )
            return
        status = "cancelled" if kind == "order.cancelled" else "returned"
        self.conn.execute(
            text(
                "UPDATE order_replica SET status = :status, source_version = :v, "
                "updated_at = now() WHERE order_id = :id"
            ),
            {"status": status, "v": version, "id": order_id},
        )
        reason = f"order_{status}"
        for row in self.order_payments(order_id):
            payment = Payment.from_events(str(row.id), self.store.load_stream(str(row.id)))
            locked = self._payment_row(str(row.id), lock=True)
            if payment.status in OPEN and status == "cancelled":
                try:
                    self.providers[payment.provider].cancel(
                        self.conn, payment, locked.provider_reference, self.now
                    )
                except RuleViolation:
                    continue  # already settled: its webhook captures and then refunds it
                self.record(payment, payment.cancel(reason))
            elif payment.status in REFUNDABLE:
                self._refund(payment, locked, None, reason)
