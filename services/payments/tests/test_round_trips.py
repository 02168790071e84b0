"""A sandbox card payment's round trips to PostgreSQL, counted against the real database: the
budget of statements its creation and its authorisation webhook may send (each statement is a
wait on the database while the order's row is locked; docs/performance.md). The payment, its
events, its row and its money movement are checked too. One transaction, rolled back."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.payments.commands import PaymentCommands
from services.payments.config import load_config
from services.payments.providers import build_providers
from services.payments.providers.base import WebhookEvent
from shared.idempotency import run_idempotent
from shared.testing import statements_sent

#: idempotency key, lock the order, its payments, card vault, ledger, webhook, append (2),
#: the payment's row, the key's response
CREATE_BUDGET = 10
#: the webhook's event, the payment by reference, lock the order, lock the payment, its
#: stream, the ledger's capture, append (2), the movement, the payment's row, the outcome
WEBHOOK_BUDGET = 11

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


def test_a_card_payment_and_its_webhook_keep_to_their_round_trips(service_engine):
    engine = service_engine("payments")
    config = load_config({"PAYMENTS": {"SANDBOX_FAILURE_RATE": 0}})
    actor = {"id": str(uuid.uuid4()), "kind": "user"}
    order_id = str(uuid.uuid4())
    with engine.connect() as conn:
        trans = conn.begin()
        session = Session(bind=conn)
        commands = PaymentCommands(session, build_providers(config), config, now=datetime.now(UTC))
        order = {"order_id": order_id, "customer_id": str(uuid.uuid4()), "currency": "CNY"}
        commands.upsert_order({**order, "total": 5000, "status": "placed"}, 1)
        data = {**order, "method": "card", "amount": 5000, "card": CARD}
        idempotency = {"key": f"key-{uuid.uuid4().hex}", "hash": "h"}

        with statements_sent(engine) as create:
            view = run_idempotent(
                session,
                actor,
                idempotency,
                "create_payment",
                lambda: commands.create(actor, data, recorded=False),
            )
        assert (view["status"], view["amount"], view["version"]) == ("pending", 5000, 1)
        assert view["card"] == {"brand": "visa", "last4": "4242"}
        assert view["expires_at"] and view["next_action"] is None
        assert len(create) <= CREATE_BUDGET, "\n".join(create)

        # the sandbox authorises the charge (its courier moves its ledger as it sends this)
        reference = view["provider_reference"]
        conn.execute(
            text("UPDATE sandbox_ledger SET status = 'authorized' WHERE reference = :ref"),
            {"ref": reference},
        )
        event = WebhookEvent(
            f"evt_{uuid.uuid4().hex}", "authorized", reference, view["id"], 5000, "CNY"
        )
        with statements_sent(engine) as webhook:
            outcome = commands.webhook("sandbox", event)
        assert outcome["status"] == "captured"
        assert len(webhook) <= WEBHOOK_BUDGET, "\n".join(webhook)

        row = conn.execute(
            text(
                "SELECT status, captured_amount, version, expires_at, next_action FROM payments "
                "WHERE id = :id"
            ),
            {"id": view["id"]},
        ).one()
        assert tuple(row) == ("captured", 5000, 3, row.expires_at, None)
        types = (
            conn.execute(
                text("SELECT event_type FROM events WHERE stream_id = :id ORDER BY stream_version"),
                {"id": view["id"]},
            )
            .scalars()
            .all()
        )
        assert types == ["payment.initiated", "payment.authorized", "payment.captured"]
        movement = conn.execute(
            text(
                "SELECT kind, amount, currency, provider_reference FROM payment_movements "
                "WHERE payment_id = :id"
            ),
            {"id": view["id"]},
        ).one()
        assert tuple(movement) == ("capture", 5000, "CNY", reference)
        ledger = conn.execute(
            text("SELECT status FROM sandbox_ledger WHERE reference = :ref"), {"ref": reference}
        ).scalar()
        assert ledger == "succeeded"
        # the same webhook again changes nothing
        assert commands.webhook("sandbox", event)["status"] == "duplicate"
        trans.rollback()
