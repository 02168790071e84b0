"""The provider adapters: discovery, the sandbox's card checks, tokenisation and signatures."""

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.payments.config import load_config
from services.payments.domain import Payment
from services.payments.providers import build_providers, provider_for, provider_names
from services.payments.providers.sandbox import (
    SIGNATURE_HEADER,
    TEST_CARDS,
    brand_of,
    luhn_ok,
    sign,
)
from shared.errors import BadRequest, RuleViolation, Unauthorized

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def providers():
    return build_providers(load_config({"PAYMENTS": {"SANDBOX_WEBHOOK_SECRET": "s3cret"}}))


def test_every_provider_module_is_found_and_methods_map_to_one():
    assert provider_names() == ["manual", "sandbox"]
    providers = build_providers(load_config())
    assert provider_for(providers, "card", recorded=False).name == "sandbox"
    assert provider_for(providers, "wechat_pay", recorded=False).name == "sandbox"
    assert provider_for(providers, "cash", recorded=True).name == "manual"
    assert provider_for(providers, "cash", recorded=False) is None


def test_the_documented_test_cards_are_valid_numbers_of_their_brand():
    for number, (brand, _) in TEST_CARDS.items():
        assert luhn_ok(number), number
        assert brand_of(number) == brand
    assert not luhn_ok("4242424242424241")


def _payment(method="card", amount=500):
    return Payment(
        str(uuid.uuid4()),
        order_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        method=method,
        provider="sandbox",
        amount=amount,
        currency="CNY",
    )


def test_the_sandbox_tokenises_cards_and_keeps_only_brand_and_last_four(providers, service_engine):
    sandbox = providers["sandbox"]
    card = {"number": "4000 0025 0000 3155", "exp_month": 1, "exp_year": NOW.year + 1, "cvc": "321"}
    engine = service_engine("payments")
    with engine.connect() as conn:
        trans = conn.begin()
        result = sandbox.start(conn, _payment(), {"card": card}, NOW)
        assert result.card["brand"] == "visa" and result.card["last4"] == "3155"
        assert result.card["token"].startswith("tok_sbx_")
        assert result.next_action == {"type": "confirm"}
        stored = conn.execute(
            text("SELECT * FROM sandbox_cards WHERE token = :t"), {"t": result.card["token"]}
        ).one()
        assert "4000002500003155" not in str(tuple(stored))
        assert "321" not in (stored.brand, stored.last4)
        with pytest.raises(BadRequest) as invalid:
            sandbox.start(conn, _payment(), {"card": {**card, "number": "1234", "cvc": "1"}}, NOW)
        assert set(invalid.value.extra["errors"]["card"]) == {"number", "cvc"}
        with pytest.raises(BadRequest):
            sandbox.start(conn, _payment(), {"card": {**card, "exp_year": NOW.year - 1}}, NOW)
        trans.rollback()


def test_the_sandbox_refuses_what_its_ledger_does_not_allow(providers, service_engine):
    sandbox = providers["sandbox"]
    with service_engine("payments").connect() as conn:
        trans = conn.begin()
        payment = _payment("alipay")
        reference = sandbox.start(conn, payment, {}, NOW).reference
        with pytest.raises(RuleViolation):
            sandbox.capture(conn, payment, reference, NOW)  # nothing authorised
        with pytest.raises(RuleViolation):
            sandbox.confirm(conn, payment, reference, NOW)
        sandbox.simulate(conn, payment, reference, NOW)
        with pytest.raises(RuleViolation):
            sandbox.simulate(conn, payment, reference, NOW)  # scanned once only
        webhook = conn.execute(
            text("SELECT body, ledger_status FROM sandbox_webhooks WHERE charge_reference = :r"),
            {"r": reference},
        ).one()
        assert webhook.ledger_status == "succeeded"
        assert json.loads(webhook.body)["data"]["merchant_reference"] == payment.id
        trans.rollback()


def test_webhook_signatures_and_the_replay_window(providers):
    sandbox = providers["sandbox"]
    body = json.dumps(
        {
            "id": "evt_1",
            "type": "charge.succeeded",
            "data": {"reference": "sbx_ch_1", "amount": 5, "currency": "CNY"},
        }
    )
    now = int(time.time())
    at = datetime.fromtimestamp(now, UTC)  # not the module's NOW: the run may outlast the window
    event = sandbox.parse_webhook({SIGNATURE_HEADER: sign("s3cret", now, body)}, body, at)
    assert (event.event_id, event.type, event.amount) == ("evt_1", "succeeded", 5)
    for header in (
        sign("wrong", now, body),
        sign("s3cret", now - 400, body),
        sign("s3cret", now, body + " "),
        "v1=abc",
        "",
    ):
        with pytest.raises(Unauthorized):
            sandbox.parse_webhook({SIGNATURE_HEADER: header}, body, at)
    deep = "[" * 5000  # signed, but no event: a 400, not a RecursionError
    with pytest.raises(BadRequest):
        sandbox.parse_webhook({SIGNATURE_HEADER: sign("s3cret", now, deep)}, deep, at)


def test_the_failure_rate_and_latency_are_configurable(service_engine):
    config = load_config({"PAYMENTS": {"SANDBOX_FAILURE_RATE": 1.0, "SANDBOX_LATENCY_MS": 60000}})
    sandbox = build_providers(config)["sandbox"]
    card = {"number": "4242424242424242", "exp_month": 1, "exp_year": NOW.year + 1, "cvc": "321"}
    with service_engine("payments").connect() as conn:
        trans = conn.begin()
        result = sandbox.start(conn, _payment(), {"card": card}, NOW)
        webhook = conn.execute(
            text(
                "SELECT body, deliver_after, ledger_status FROM sandbox_webhooks "
                "WHERE charge_reference = :r"
            ),
            {"r": result.reference},
        ).one()
        assert webhook.ledger_status == "declined"
        assert json.loads(webhook.body)["data"]["failure_reason"] == "processing_error"
        assert (webhook.deliver_after - NOW).total_seconds() == pytest.approx(60, abs=1)
        trans.rollback()
    with pytest.raises(ValueError):
        load_config({"PAYMENTS": {"SANDBOX_FAILURE_RATE": 2}})
