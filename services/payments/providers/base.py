"""The interface every payment provider adapter implements.

A provider module in this package defines ``PROVIDER_CLASS`` (a :class:`Provider`); the
package finds them all, so a new provider (or a new method of an existing one) is one module.
Adapters work inside the payments service's transaction (``conn``): what they record is
committed together with the payment's events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy.engine import Connection

from services.payments.config import PaymentsConfig
from services.payments.domain import Payment
from shared.errors import RuleViolation

#: what a start ends in: the outcome comes later (webhook, customer step), or it is final now
PENDING = "pending"
CAPTURED = "captured"


@dataclass(frozen=True)
class StartResult:
    outcome: str  # PENDING or CAPTURED
    reference: str | None = None
    card: dict[str, str] | None = None  # token, brand, last4: never the number or the CVC
    next_action: dict[str, Any] | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """A provider's notification, verified and parsed."""

    event_id: str
    type: str  # "authorized" | "succeeded" | "failed"
    reference: str
    payment_id: str | None
    amount: int
    currency: str
    reason: str | None = None


class Provider(Protocol):
    name: ClassVar[str]
    #: methods customers pay with through this provider (API ``POST /payments``)
    methods: ClassVar[frozenset[str]]
    #: methods staff record by hand through this provider (``POST /payments/manual``)
    recorded_methods: ClassVar[frozenset[str]]

    def __init__(self, config: PaymentsConfig) -> None: ...

    def start(
        self, conn: Connection, payment: Payment, details: Mapping[str, Any], now: datetime
    ) -> StartResult:
        """Begin collecting ``payment`` (``details``: what the method needs, e.g. a card)."""

    def confirm(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        """The customer completed an extra step the provider asked for."""

    def simulate(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        """Sandbox only: play the customer's side (scan a QR code)."""

    def capture(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        """Take authorised money; raises when the provider refuses."""

    def cancel(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        """Void an open payment; raises when the money was already taken."""

    def refund(
        self, conn: Connection, payment: Payment, reference: str | None, amount: int, now: datetime
    ) -> str | None:
        """Give back ``amount`` of a captured payment; returns the provider's refund reference."""

    def parse_webhook(self, headers: Mapping[str, str], body: str, now: datetime) -> WebhookEvent:
        """Verify a webhook's signature and freshness (raises ``Unauthorized``) and parse it."""


def unsupported(provider: str, action: str) -> RuleViolation:
    return RuleViolation(
        f"the {provider} provider does not support {action}", {"code": "unsupported_by_provider"}
    )
