"""The Payment aggregate: commands return events, ``apply`` folds events into state. Pure.

States::

    pending ──► authorized ──► captured ──► partially_refunded ──► refunded
       │            │
       ├► failed    └► cancelled
       ├► cancelled
       └► expired
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import RuleViolation
from shared.events import isoformat

PENDING = "pending"
AUTHORIZED = "authorized"
CAPTURED = "captured"
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"
FAILED = "failed"
CANCELLED = "cancelled"
EXPIRED = "expired"

STATUSES = (
    PENDING,
    AUTHORIZED,
    CAPTURED,
    PARTIALLY_REFUNDED,
    REFUNDED,
    FAILED,
    CANCELLED,
    EXPIRED,
)
#: money may still arrive: counts against the order's outstanding balance
OPEN = (PENDING, AUTHORIZED)
#: money was taken and some of it may be given back
REFUNDABLE = (CAPTURED, PARTIALLY_REFUNDED)

Change = tuple[str, dict[str, Any]]


def invalid_state(payment: Payment, action: str) -> RuleViolation:
    return RuleViolation(
        f"a {payment.status} payment cannot be {action}",
        {"code": "invalid_payment_state", "payment_status": payment.status},
    )


@dataclass
class Payment:
    id: str
    order_id: str = ""
    customer_id: str = ""
    method: str = ""
    provider: str = ""
    amount: int = 0
    currency: str = ""
    status: str = ""
    card: dict[str, str] | None = None
    captured_amount: int = 0
    refunded_amount: int = 0
    failure_reason: str | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0

    @classmethod
    def from_events(cls, payment_id: str, events: Iterable[Any]) -> Payment:
        payment = cls(payment_id)
        for event in events:
            payment.apply(event.type, event.payload, event.occurred_at)
        return payment

    @property
    def refundable(self) -> int:
        return self.captured_amount - self.refunded_amount

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    # -- commands ----------------------------------------------------------------------------

    def _common(self) -> dict[str, Any]:
        return {
            "payment_id": self.id,
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "method": self.method,
            "amount": self.amount,
            "currency": self.currency,
        }

    @staticmethod
    def initiate(
        payment_id: str,
        order_id: str,
        customer_id: str,
        method: str,
        provider: str,
        amount: int,
        currency: str,
        card: dict[str, str] | None = None,
    ) -> list[Change]:
        if amount <= 0:
            raise RuleViolation("the amount must be positive", {"code": "invalid_amount"})
        return [
            (
                "payment.initiated",
                {
                    "payment_id": payment_id,
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "method": method,
                    "provider": provider,
                    "amount": amount,
                    "currency": currency,
                    "card": {"brand": card["brand"], "last4": card["last4"]} if card else None,
                },
            )
        ]

    def authorize(self) -> list[Change]:
        if self.status != PENDING:
            raise invalid_state(self, "authorised")
        return [("payment.authorized", self._common())]

    def capture(self, at: datetime) -> list[Change]:
        if self.status != AUTHORIZED:
            raise invalid_state(self, "captured")
        return [("payment.captured", {**self._common(), "captured_at": isoformat(at)})]

    def authorize_and_capture(self, at: datetime) -> list[Change]:
        """An outcome that authorises and settles at once (wallets, transfers, cash)."""
        if self.status != PENDING:
            raise invalid_state(self, "captured")
        return [
            ("payment.authorized", self._common()),
            ("payment.captured", {**self._common(), "captured_at": isoformat(at)}),
        ]

    def fail(self, reason: str) -> list[Change]:
        if self.status != PENDING:
            raise invalid_state(self, "failed")
        return [("payment.failed", {**self._common(), "reason": reason})]

    def cancel(self, reason: str) -> list[Change]:
        if self.status not in OPEN:
            raise invalid_state(self, "cancelled")
        return [("payment.cancelled", {**self._common(), "reason": reason})]

    def expire(self) -> list[Change]:
        if self.status != PENDING:
            raise invalid_state(self, "expired")
        return [("payment.expired", self._common())]

    def refund(self, refund_id: str, amount: int, reason: str) -> list[Change]:
        if self.status not in REFUNDABLE:
            raise invalid_state(self, "refunded")
        if amount <= 0:
            raise RuleViolation("a refund must be positive", {"code": "invalid_amount"})
        if amount > self.refundable:
            raise RuleViolation(
                f"at most {self.refundable} can be refunded",
                {"code": "refund_exceeds_captured", "refundable": self.refundable},
            )
        return [
            (
                "payment.refunded",
                {
                    **self._common(),
                    "refund_id": refund_id,
                    "amount": amount,
                    "refunded_total": self.refunded_amount + amount,
                    "captured_amount": self.captured_amount,
                    "reason": reason,
                },
            )
        ]

    # -- state -------------------------------------------------------------------------------

    def apply(self, event_type: str, payload: dict[str, Any], occurred_at: datetime) -> None:
        self.version += 1
        if event_type == "payment.initiated":
            self.order_id = str(payload["order_id"])
            self.customer_id = str(payload["customer_id"])
            self.method = payload["method"]
            self.provider = payload["provider"]
            self.amount = payload["amount"]
            self.currency = payload["currency"]
            self.card = payload.get("card")
            self.status = PENDING
        elif event_type == "payment.authorized":
            self.status = AUTHORIZED
        elif event_type == "payment.captured":
            self.status = CAPTURED
            self.captured_amount = self.amount
        elif event_type == "payment.failed":
            self.status = FAILED
            self.failure_reason = payload["reason"]
        elif event_type == "payment.cancelled":
            self.status = CANCELLED
            self.failure_reason = payload["reason"]
        elif event_type == "payment.expired":
            self.status = EXPIRED
        elif event_type == "payment.refunded":
            self.refunded_amount = payload["refunded_total"]
            self.status = (
                REFUNDED if self.refunded_amount >= self.captured_amount else (PARTIALLY_REFUNDED)
            )
            self.refunds.append(
                {
                    "refund_id": str(payload["refund_id"]),
                    "amount": payload["amount"],
                    "reason": payload["reason"],
                    "created_at": isoformat(occurred_at),
                }
            )
        else:
            raise ValueError(f"unknown payment event {event_type}")


def outstanding(total: int, payments: Iterable[Payment | dict[str, Any]]) -> int:
    """What an order still needs: its total less what was kept (captured - refunded) and less
    what open payments may still bring."""
    owed = total
    for payment in payments:
        if isinstance(payment, Payment):
            status, amount = payment.status, payment.amount
            captured, refunded = payment.captured_amount, payment.refunded_amount
        else:
            status, amount = payment["status"], payment["amount"]
            captured, refunded = payment["captured_amount"], payment["refunded_amount"]
        owed -= captured - refunded
        if status in OPEN:
            owed -= amount
    return owed
