"""The Payment aggregate's state machine, and the balance rule (pure, no I/O)."""

import uuid
from datetime import UTC, datetime

import pytest

from services.payments.domain import Payment, outstanding
from services.payments.events import registry
from shared.errors import RuleViolation

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _apply(payment, changes):
    for event_type, payload in changes:
        registry.new_event(event_type, payload)  # every payload matches the catalogue
        payment.apply(event_type, payload, NOW)
    return payment


def new_payment(amount=1000, method="card"):
    payment_id = str(uuid.uuid4())
    payment = Payment(payment_id)
    card = {"token": "tok", "brand": "visa", "last4": "4242"} if method == "card" else None
    changes = Payment.initiate(
        payment_id, str(uuid.uuid4()), str(uuid.uuid4()), method, "sandbox", amount, "CNY", card
    )
    assert changes[0][1]["card"] == ({"brand": "visa", "last4": "4242"} if card else None)
    return _apply(payment, changes)


def test_the_happy_path_and_refunds():
    payment = new_payment()
    assert (payment.status, payment.version) == ("pending", 1)
    _apply(payment, payment.authorize())
    _apply(payment, payment.capture(NOW))
    assert (payment.status, payment.captured_amount) == ("captured", 1000)
    _apply(payment, payment.refund(str(uuid.uuid4()), 400, "damaged"))
    assert (payment.status, payment.refundable) == ("partially_refunded", 600)
    with pytest.raises(RuleViolation) as exceeded:
        payment.refund(str(uuid.uuid4()), 601, "too much")
    assert exceeded.value.extra["code"] == "refund_exceeds_captured"
    _apply(payment, payment.refund(str(uuid.uuid4()), 600, "rest"))
    assert (payment.status, payment.refunded_amount, len(payment.refunds)) == ("refunded", 1000, 2)
    with pytest.raises(RuleViolation):
        payment.refund(str(uuid.uuid4()), 1, "nothing left")


@pytest.mark.parametrize(
    ("steps", "forbidden"),
    [
        ((), ("capture", "refund")),
        (("authorize",), ("authorize", "expire", "fail", "refund")),
        (("fail",), ("authorize", "cancel", "expire", "capture")),
        (("expire",), ("authorize", "cancel", "fail")),
        (("cancel",), ("authorize", "capture", "cancel")),
        (("authorize", "capture"), ("cancel", "expire", "authorize", "capture")),
    ],
)
def test_transitions_that_are_not_allowed_are_422(steps, forbidden):
    payment = new_payment()
    calls = {
        "authorize": lambda: payment.authorize(),
        "capture": lambda: payment.capture(NOW),
        "fail": lambda: payment.fail("declined"),
        "cancel": lambda: payment.cancel("requested"),
        "expire": lambda: payment.expire(),
        "refund": lambda: payment.refund(str(uuid.uuid4()), 1, "r"),
    }
    for step in steps:
        _apply(payment, calls[step]())
    for action in forbidden:
        with pytest.raises(RuleViolation):
            calls[action]()


def test_wallets_authorise_and_capture_at_once_and_states_fold_from_events():
    payment = new_payment(method="alipay")
    _apply(payment, payment.authorize_and_capture(NOW))
    assert payment.status == "captured"
    assert payment.version == 3


def test_outstanding_counts_kept_money_and_open_payments():
    open_one = new_payment(300)
    kept = _apply(new_payment(500), [])
    _apply(kept, kept.authorize_and_capture(NOW))
    _apply(kept, kept.refund(str(uuid.uuid4()), 200, "r"))
    failed = new_payment(900)
    _apply(failed, failed.fail("card_declined"))
    assert outstanding(1000, [open_one, kept, failed]) == 1000 - 300 - 300
