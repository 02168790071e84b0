"""The sandbox provider: a simulation of an external payment processor, named "sandbox"
everywhere. It keeps its own side in tables of its own (``sandbox_cards``: its card vault;
``sandbox_ledger``: what it processed, i.e. its settlement report; ``sandbox_webhooks``: the
notifications it is to send), and reports outcomes asynchronously through signed webhooks
posted to the gateway's public endpoint by :mod:`services.payments.sandbox_courier`.

Test cards (any future expiry, any 3-digit CVC):

==================== =========== ================================================
number               brand       outcome
==================== =========== ================================================
4242 4242 4242 4242  visa        authorised (then captured)
5555 5555 5555 4444  mastercard  authorised (then captured)
6200 0000 0000 0005  unionpay    authorised (then captured)
4000 0025 0000 3155  visa        needs the customer's confirmation, then authorised
4000 0000 0000 0002  visa        declined (card_declined)
4000 0000 0000 9995  visa        declined (insufficient_funds)
==================== =========== ================================================

Any other valid number is declined (``unknown_test_card``). Wallets (alipay, wechat_pay) wait
for a simulated QR scan; bank transfers settle after ``CMS_SANDBOX_TRANSFER_DELAY_SECONDS``.
``CMS_SANDBOX_FAILURE_RATE`` makes that share of otherwise successful payments fail with
``processing_error``; ``CMS_SANDBOX_LATENCY_MS`` delays every outcome.

Webhooks carry ``Sandbox-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
keyed with ``CMS_SANDBOX_WEBHOOK_SECRET``; one older or newer than the replay window is
refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import qrcode
from qrcode.image.svg import SvgPathImage
from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.payments.config import PaymentsConfig
from services.payments.domain import Payment
from services.payments.providers.base import PENDING, StartResult, WebhookEvent, unsupported
from shared import jsontext
from shared.errors import BadRequest, RuleViolation, Unauthorized

SIGNATURE_HEADER = "Sandbox-Signature"

#: number → (brand, behaviour)
TEST_CARDS: dict[str, tuple[str, str]] = {
    "4242424242424242": ("visa", "success"),
    "5555555555554444": ("mastercard", "success"),
    "6200000000000005": ("unionpay", "success"),
    "4000002500003155": ("visa", "confirm"),
    "4000000000000002": ("visa", "card_declined"),
    "4000000000009995": ("visa", "insufficient_funds"),
}

SANDBOX_BANK = {"bank": "CMS Sandbox Bank", "account": "6222 0000 0000 0042", "name": "CMS Sandbox"}

#: ledger states in which the sandbox still may void the charge
_VOIDABLE = (
    "processing",
    "requires_confirmation",
    "awaiting_scan",
    "awaiting_transfer",
    "authorized",
)


def luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("51", "52", "53", "54", "55") or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith("62"):
        return "unionpay"
    if number[:2] in ("34", "37"):
        return "amex"
    return "unknown"


def qr_data_url(content: str) -> str:
    """The QR code the customer would scan, as an SVG data URL the UI can show."""
    image = qrcode.make(content, image_factory=SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def sign(secret: str, timestamp: int, body: str) -> str:
    """The ``Sandbox-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _card_errors(card: Mapping[str, Any] | None, now: datetime) -> tuple[dict, dict]:
    errors: dict[str, list[str]] = {}
    card = card or {}
    number = "".join(str(card.get("number") or "").split())
    if not number.isdigit() or not 12 <= len(number) <= 19 or not luhn_ok(number):
        errors["number"] = ["Not a valid card number."]
    cvc = str(card.get("cvc") or "")
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        errors["cvc"] = ["Must be 3 or 4 digits."]
    try:
        month, year = int(card.get("exp_month")), int(card.get("exp_year"))
        if not 1 <= month <= 12:
            raise ValueError
        if year < 100:
            year += 2000
        if (year, month) < (now.year, now.month):
            errors["exp_year"] = ["The card has expired."]
    except (TypeError, ValueError):
        errors["exp_month"] = ["Must be a month 1-12 with a year."]
        month = year = 0
    return errors, {"number": number, "exp_month": month, "exp_year": year}


class SandboxProvider:
    name: ClassVar[str] = "sandbox"
    methods: ClassVar[frozenset[str]] = frozenset({"card", "alipay", "wechat_pay", "bank_transfer"})
    recorded_methods: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: PaymentsConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def latency(self) -> timedelta:
        return timedelta(milliseconds=self.config.sandbox_latency_ms)

    def _failing(self) -> bool:
        rate = self.config.sandbox_failure_rate
        return rate > 0 and self.rng.random() < rate

    def _ledger(self, conn: Connection, reference: str) -> Any:
        row = conn.execute(
            text("SELECT * FROM sandbox_ledger WHERE reference = :ref FOR UPDATE"),
            {"ref": reference},
        ).one_or_none()
        if row is None:
            raise RuleViolation(
                "the sandbox does not know this payment", {"code": "unknown_charge"}
            )
        return row

    def _set_status(self, conn: Connection, reference: str, status: str) -> None:
        conn.execute(
            text("UPDATE sandbox_ledger SET status = :status WHERE reference = :ref"),
            {"ref": reference, "status": status},
        )

    def _schedule(
        self,
        conn: Connection,
        payment: Payment,
        reference: str,
        event_type: str,
        ledger_status: str,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """A webhook to send at ``at``; sending it is when the simulated outcome happens (the
        courier moves the ledger to ``ledger_status`` then)."""
        event_id = f"evt_sbx_{secrets.token_hex(12)}"
        body = json.dumps(
            {
                "id": event_id,
                "type": f"charge.{event_type}",
                "created": int(at.timestamp()),
                "data": {
                    "reference": reference,
                    "merchant_reference": payment.id,
                    "method": payment.method,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "failure_reason": reason,
                },
            },
            separators=(",", ":"),
        )
        conn.execute(
            text(
                "INSERT INTO sandbox_webhooks (event_id, body, deliver_after, charge_reference, "
                "ledger_status) VALUES (:id, :body, :at, :ref, :status)"
            ),
            {"id": event_id, "body": body, "at": at, "ref": reference, "status": ledger_status},
        )

    def _authorise_later(
        self, conn: Connection, payment: Payment, reference: str, now: datetime
    ) -> None:
        """The authorisation's webhook (or, at the failure rate, a decline), scheduled; the
        charge's ledger row must already be ``processing``."""
        if self._failing():
            self._schedule(
                conn,
                payment,
                reference,
                "failed",
                "declined",
                now + self.latency,
                "processing_error",
            )
        else:
            self._schedule(conn, payment, reference, "authorized", "authorized", now + self.latency)

    # -- the provider interface --------------------------------------------------------------

    def start(
        self, conn: Connection, payment: Payment, details: Mapping[str, Any], now: datetime
    ) -> StartResult:
        reference = f"sbx_ch_{uuid.uuid4().hex[:24]}"
        card_summary = None
        status = "processing"
        next_action: dict[str, Any] | None = None
        if payment.method == "card":
            errors, card = _card_errors(details.get("card"), now)
            if errors:
                raise BadRequest.for_fields({"card": errors}, "the card is invalid")
            brand, behaviour = TEST_CARDS.get(
                card["number"], (brand_of(card["number"]), "unknown_test_card")
            )
            token = f"tok_sbx_{secrets.token_hex(12)}"
            conn.execute(
                text(
                    "INSERT INTO sandbox_cards (token, brand, last4, exp_month, exp_year, "
                    "behaviour) VALUES (:token, :brand, :last4, :month, :year, :behaviour)"
                ),
                {
                    "token": token,
                    "brand": brand,
                    "last4": card["number"][-4:],
                    "month": card["exp_month"],
                    "year": card["exp_year"],
                    "behaviour": behaviour,
                },
            )
            card_summary = {"token": token, "brand": brand, "last4": card["number"][-4:]}
            if behaviour == "confirm":
                status = "requires_confirmation"
                next_action = {"type": "confirm"}
        elif payment.method in ("alipay", "wechat_pay"):
            status = "awaiting_scan"
            content = f"sandbox://{payment.method}/pay/{reference}"
            next_action = {"type": "qr", "qr_content": content, "qr_image": qr_data_url(content)}
        elif payment.method == "bank_transfer":
            status = "awaiting_transfer"
            next_action = {"type": "bank_transfer", "reference": reference, **SANDBOX_BANK}
        else:
            raise unsupported(self.name, payment.method)
        conn.execute(
            text(
                "INSERT INTO sandbox_ledger (reference, kind, merchant_reference, method, amount, "
                "currency, status, created_at) VALUES (:ref, 'charge', :payment, :method, "
                ":amount, :currency, :status, :now)"
            ),
            {
                "ref": reference,
                "payment": payment.id,
                "method": payment.method,
                "amount": payment.amount,
                "currency": payment.currency,
                "status": status,
                "now": now,
            },
        )
        if payment.method == "card" and status == "processing":
            if behaviour == "success":
                self._authorise_later(conn, payment, reference, now)
            else:
                self._schedule(
                    conn, payment, reference, "failed", "declined", now + self.latency, behaviour
                )
        elif payment.method == "bank_transfer":
            delay = timedelta(seconds=self.config.sandbox_transfer_delay_seconds)
            self._schedule(conn, payment, reference, "succeeded", "succeeded", now + delay)
        return StartResult(PENDING, reference, card_summary, next_action)

    def confirm(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        if self._ledger(conn, reference).status != "requires_confirmation":
            raise RuleViolation(
                "this payment needs no confirmation", {"code": "no_confirmation_needed"}
            )
        self._set_status(conn, reference, "processing")
        self._authorise_later(conn, payment, reference, now)

    def simulate(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        if self._ledger(conn, reference).status != "awaiting_scan":
            raise RuleViolation(
                "there is no QR code waiting for a scan", {"code": "nothing_to_scan"}
            )
        if self._failing():
            self._schedule(
                conn,
                payment,
                reference,
                "failed",
                "declined",
                now + self.latency,
                "processing_error",
            )
        else:
            self._schedule(conn, payment, reference, "succeeded", "succeeded", now + self.latency)
        self._set_status(conn, reference, "processing")

    def capture(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        captured = conn.execute(
            text(
                "UPDATE sandbox_ledger SET status = 'succeeded', settled_at = :now "
                "WHERE reference = :ref AND status = 'authorized' RETURNING 1"
            ),
            {"ref": reference, "now": now},
        ).scalar()
        if not captured:
            self._ledger(conn, reference)  # an unknown charge is refused as one
            raise RuleViolation(
                "the sandbox holds no authorisation to capture", {"code": "not_authorized"}
            )

    def cancel(self, conn: Connection, payment: Payment, reference: str, now: datetime) -> None:
        row = self._ledger(conn, reference)
        if row.status == "succeeded":
            raise RuleViolation(
                "the sandbox has already taken this money; wait for it and refund it",
                {"code": "provider_already_settled"},
            )
        if row.status in _VOIDABLE:
            self._set_status(conn, reference, "voided")
        conn.execute(
            text(
                "UPDATE sandbox_webhooks SET cancelled = true "
                "WHERE charge_reference = :ref AND delivered_at IS NULL"
            ),
            {"ref": reference},
        )

    def refund(
        self, conn: Connection, payment: Payment, reference: str | None, amount: int, now: datetime
    ) -> str | None:
        refund_reference = f"sbx_re_{uuid.uuid4().hex[:24]}"
        conn.execute(
            text(
                "INSERT INTO sandbox_ledger (reference, kind, charge_reference, "
                "merchant_reference, method, amount, currency, status, created_at, settled_at) "
                "VALUES (:ref, 'refund', :charge, :payment, :method, :amount, :currency, "
                "'succeeded', :now, :now)"
            ),
            {
                "ref": refund_reference,
                "charge": reference,
                "payment": payment.id,
                "method": payment.method,
                "amount": amount,
                "currency": payment.currency,
                "now": now,
            },
        )
        return refund_reference

    def parse_webhook(self, headers: Mapping[str, str], body: str, now: datetime) -> WebhookEvent:
        header = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
        parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            raise Unauthorized(
                "missing or malformed signature", {"code": "bad_signature"}
            ) from None
        expected = sign(self.config.sandbox_webhook_secret, timestamp, body).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise Unauthorized("the signature does not match", {"code": "bad_signature"})
        if abs(now.timestamp() - timestamp) > self.config.sandbox_webhook_tolerance_seconds:
            raise Unauthorized(
                "the webhook is outside the replay window", {"code": "stale_webhook"}
            )
        try:
            event = jsontext.loads(body)
            data = event["data"]
            kind = str(event["type"]).removeprefix("charge.")
            if kind not in ("authorized", "succeeded", "failed"):
                raise ValueError(kind)
            return WebhookEvent(
                event_id=str(event["id"]),
                type=kind,
                reference=str(data["reference"]),
                payment_id=data.get("merchant_reference"),
                amount=int(data["amount"]),
                currency=str(data["currency"]),
                reason=data.get("failure_reason"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest.for_fields({"body": ["Not a sandbox event."]}) from exc


def now_utc() -> datetime:
    return datetime.now(UTC)


PROVIDER_CLASS = SandboxProvider
