"""Money staff received outside any processor (cash at the counter, a bank transfer seen on
the company's statement): recorded as captured at once; a refund is money staff paid back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.engine import Connection

from services.payments.config import PaymentsConfig
from services.payments.domain import Payment
from services.payments.providers.base import CAPTURED, StartResult, WebhookEvent, unsupported


class ManualProvider:
    name: ClassVar[str] = "manual"
    methods: ClassVar[frozenset[str]] = frozenset()
    recorded_methods: ClassVar[frozenset[str]] = frozenset({"cash", "bank_transfer"})

    def __init__(self, config: PaymentsConfig) -> None:
        self.config = config

    def start(
        self, conn: Connection, payment: Payment, details: Mapping[str, Any], now: datetime
    ) -> StartResult:
        return StartResult(outcome=CAPTURED, reference=None)

    def confirm(self, conn, payment, reference, now) -> None:
        raise unsupported(self.name, "a confirmation step")

    def simulate(self, conn, payment, reference, now) -> None:
        raise unsupported(self.name, "simulated customer actions")

    def capture(self, conn, payment, reference, now) -> None:
        raise unsupported(self.name, "a separate capture")

    def cancel(self, conn, payment, reference, now) -> None:
        raise unsupported(self.name, "cancelling (the money was received; refund it)")

    def refund(self, conn, payment, reference, amount, now) -> str | None:
        return None

    def parse_webhook(self, headers, body, now) -> WebhookEvent:
        raise unsupported(self.name, "webhooks")


PROVIDER_CLASS = ManualProvider
