"""The sandbox provider's public webhook endpoint: signature over "timestamp.body",
replay window, idempotency by the provider's event id, and nothing changes on a refusal."""

import time
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from services.payments.config import load_config
from services.payments.providers.sandbox import SIGNATURE_HEADER, sign
from services.payments.tests.support import place_order, webhook_body

URL = "/api/v1/webhooks/sandbox"


@pytest.fixture(scope="module")
def nameko_config(nameko_config):
    return {**nameko_config, "PAYMENTS": {"SANDBOX_LATENCY_MS": 0}}


@pytest.fixture(scope="module")
def secret(nameko_config):
    return load_config(nameko_config).sandbox_webhook_secret


@pytest.fixture(scope="module")
def engine(cms_settings):
    engine = create_engine(cms_settings.database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def waiting(api, admin, nameko_config):
    """An alipay payment waiting for its QR code to be scanned (no webhook of its own yet)."""
    order = place_order(nameko_config, 2000)
    created = api.call(
        "POST",
        "/api/v1/payments",
        token=admin[1],
        json={
            "order_id": order["order_id"],
            "method": "alipay",
            "amount": 2000,
            "currency": "CNY",
        },
    )
    assert created.status_code == 201, created.text
    return created.json()


def post(api, body, signature):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return api.call("POST", URL, data=body.encode(), headers=headers)


def state(api, admin, engine, payment_id):
    payment = api.call("GET", f"/api/v1/payments/{payment_id}", token=admin[1]).json()
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT count(*) FROM payments.events WHERE stream_id = :id"), {"id": payment_id}
        ).scalar()
    return payment["status"], events


def test_a_bad_signature_or_an_old_timestamp_is_401_and_changes_nothing(
    api, admin, engine, secret, waiting
):
    body = webhook_body(waiting["provider_reference"], waiting)
    before = state(api, admin, engine, waiting["id"])
    assert before == ("pending", 1)
    now = int(time.time())
    forged = post(api, body, sign("not-the-secret", now, body))
    assert forged.status_code == 401
    assert forged.json()["code"] == "bad_signature"
    tampered = post(api, body.replace('"amount":2000', '"amount":1'), sign(secret, now, body))
    assert tampered.status_code == 401
    old = post(api, body, sign(secret, now - 400, body))
    assert old.status_code == 401
    assert old.json()["code"] == "stale_webhook"
    future = post(api, body, sign(secret, now + 400, body))
    assert future.status_code == 401
    assert post(api, body, "t=abc,v1=00").status_code == 401
    assert post(api, body, None).status_code == 400
    assert state(api, admin, engine, waiting["id"]) == before
    with engine.connect() as conn:
        recorded = conn.execute(
            text("SELECT count(*) FROM payments.provider_webhook_events WHERE payment_id = :id"),
            {"id": waiting["id"]},
        ).scalar()
    assert recorded == 0


def test_a_replayed_webhook_has_no_second_effect(api, admin, engine, secret, waiting):
    body = webhook_body(waiting["provider_reference"], waiting)
    first = post(api, body, sign(secret, int(time.time()), body))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "captured"
    after = state(api, admin, engine, waiting["id"])
    assert after == ("captured", 3)
    # the provider retries the same event (same id, signed afresh): acknowledged, no effect
    again = post(api, body, sign(secret, int(time.time()), body))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert state(api, admin, engine, waiting["id"]) == after


def test_events_for_unknown_or_finished_payments_are_acknowledged_without_effect(
    api, admin, engine, secret, waiting
):
    stranger = webhook_body(f"sbx_ch_{uuid.uuid4().hex}", waiting)
    response = post(api, stranger, sign(secret, int(time.time()), stranger))
    assert response.status_code == 200
    assert response.json()["status"] == "unknown_payment"
    wrong_amount = webhook_body(waiting["provider_reference"], {**waiting, "amount": 1})
    response = post(api, wrong_amount, sign(secret, int(time.time()), wrong_amount))
    assert response.json()["status"] == "amount_mismatch"
    cancelled = api.call(
        "POST", f"/api/v1/payments/{waiting['id']}/cancel", token=admin[1], json={}
    )
    assert cancelled.status_code == 200
    late = webhook_body(waiting["provider_reference"], waiting, kind="failed")
    response = post(api, late, sign(secret, int(time.time()), late))
    assert response.json()["status"] == "ignored_cancelled"
    assert state(api, admin, engine, waiting["id"]) == ("cancelled", 2)
