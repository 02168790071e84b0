"""Payments end to end through the gateway, with every service running and the sandbox
provider delivering its webhooks over HTTP to the gateway (latency 0 here). Most orders come
from contract-shaped orders.events envelopes fed to the payments service's consumer (a
manager acts on them: the orders service does not know them); the last tests use real orders
of the orders service, taken by a sales user."""

import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from services.payments.tests.support import (
    CARD,
    CONFIRM_CARD,
    DECLINED_CARD,
    SUCCESS_CARD,
    feed,
    order_envelope,
    place_order,
    wait_for,
)

BASE = "/api/v1/payments"


@pytest.fixture(scope="module")
def nameko_config(nameko_config):
    """The sandbox without latency, transfers settling at once."""
    return {
        **nameko_config,
        "PAYMENTS": {"SANDBOX_LATENCY_MS": 0, "SANDBOX_TRANSFER_DELAY_SECONDS": 0},
    }


@pytest.fixture(scope="module")
def tokens(api, admin):
    """An access token per role."""
    from gateway.tests.conftest import PASSWORD

    found = {"admin": admin[1]}
    for role in ("manager", "sales", "analyst"):
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        created = api.call(
            "POST",
            "/api/v1/users",
            token=admin[1],
            json={"email": email, "name": role.title(), "role": role, "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        found[role] = api.login(email)["access_token"]
    return found


@pytest.fixture(scope="module")
def customer(api, tokens):
    """A customer of the sales user (sales see only their own customers' payments)."""
    created = api.call(
        "POST",
        "/api/v1/customers",
        token=tokens["sales"],
        json={"kind": "person", "name": f"Payer {uuid.uuid4().hex[:6]}", "force": True},
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def new_order(nameko_config, customer_id, total, currency="CNY"):
    return place_order(nameko_config, total, currency, customer_id)


@pytest.fixture(scope="module")
def admin_engine(cms_settings):
    engine = create_engine(cms_settings.database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def pay(api, token, order, amount, method="card", number=SUCCESS_CARD, key=None, **extra):
    body = {"order_id": order["order_id"], "method": method, "amount": amount, "currency": "CNY"}
    if method == "card":
        body["card"] = {"number": number, **CARD}
    body.update(extra)
    headers = {"Idempotency-Key": key} if key else {}
    return api.call("POST", BASE, token=token, json=body, headers=headers)


def get(api, token, payment_id):
    response = api.call("GET", f"{BASE}/{payment_id}", token=token)
    assert response.status_code == 200, response.text
    return response.json()


def settled(api, token, payment_id, status="captured"):
    return wait_for(lambda: (p := get(api, token, payment_id))["status"] == status and p)


def balance(api, token, order):
    response = api.call("GET", BASE, token=token, params={"order_id": order["order_id"]})
    assert response.status_code == 200, response.text
    return response.json()["order"]


def event_types(engine, payment_id):
    with engine.connect() as conn:
        return [
            row.event_type
            for row in conn.execute(
                text(
                    "SELECT event_type FROM payments.events WHERE stream_id = :id "
                    "ORDER BY stream_version"
                ),
                {"id": payment_id},
            )
        ]


def test_a_sandbox_card_payment_is_authorised_and_captured_by_webhook(
    api, tokens, nameko_config, customer, admin_engine
):
    order = new_order(nameko_config, customer, 10000)
    created = pay(api, tokens["manager"], order, 4000)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "pending"
    assert payment["provider"] == "sandbox"
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    captured = settled(api, tokens["manager"], payment["id"])
    assert captured["captured_amount"] == 4000
    assert event_types(admin_engine, payment["id"]) == [
        "payment.initiated",
        "payment.authorized",
        "payment.captured",
    ]
    assert balance(api, tokens["manager"], order)["outstanding"] == 6000
    with admin_engine.connect() as conn:
        outcome = conn.execute(
            text("SELECT outcome FROM payments.provider_webhook_events WHERE payment_id = :id"),
            {"id": payment["id"]},
        ).scalar()
    assert outcome == "captured"  # it came through the gateway's public webhook endpoint


def test_partial_payments_are_allowed_and_an_over_payment_is_refused(
    api, tokens, nameko_config, customer
):
    order = new_order(nameko_config, customer, 5000)
    first = pay(api, tokens["manager"], order, 3000)
    assert first.status_code == 201
    # the pending 3000 counts: 2001 more would over-pay even before it is captured
    over = pay(api, tokens["manager"], order, 2001)
    assert over.status_code == 422, over.text
    assert over.json()["code"] == "overpayment"
    cash = api.call(
        "POST",
        f"{BASE}/manual",
        token=tokens["manager"],
        json={"order_id": order["order_id"], "method": "cash", "amount": 2000, "currency": "CNY"},
    )
    assert cash.status_code == 201, cash.text
    assert cash.json()["status"] == "captured"
    assert cash.json()["provider"] == "manual"
    settled(api, tokens["manager"], first.json()["id"])
    after = balance(api, tokens["manager"], order)
    assert (after["paid_amount"], after["outstanding"]) == (5000, 0)
    assert pay(api, tokens["manager"], order, 1).status_code == 422
    wrong_currency = pay(
        api, tokens["manager"], new_order(nameko_config, customer, 100), 100, currency="USD"
    )
    assert wrong_currency.status_code == 422


def test_concurrent_payments_of_one_order_cannot_over_pay_it(api, tokens, nameko_config, customer):
    order = new_order(nameko_config, customer, 1000)
    results = []

    def attempt():
        results.append(
            api.call(
                "POST",
                f"{BASE}/manual",
                token=tokens["manager"],
                json={
                    "order_id": order["order_id"],
                    "method": "cash",
                    "amount": 400,
                    "currency": "CNY",
                },
            ).status_code
        )

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 201, 422, 422, 422, 422]
    assert balance(api, tokens["manager"], order)["paid_amount"] == 800


def test_fifty_concurrent_requests_with_one_key_make_one_payment(
    api, tokens, nameko_config, customer, admin_engine
):
    order = new_order(nameko_config, customer, 9000)
    key = f"key-{uuid.uuid4().hex}"
    responses = []

    def attempt():
        responses.append(pay(api, tokens["manager"], order, 9000, key=key))

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status_code for r in responses} == {201}, {r.status_code for r in responses}
    assert len({r.json()["id"] for r in responses}) == 1
    with admin_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM payments.payments WHERE order_id = :id"),
            {"id": order["order_id"]},
        ).scalar()
    assert count == 1
    # the same key with another body is refused; the same body answers the same payment
    other = pay(api, tokens["manager"], order, 8999, key=key)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    again = pay(api, tokens["manager"], order, 9000, key=key)
    assert again.status_code == 201 and again.json()["id"] == responses[0].json()["id"]
    # a key is kept 24 hours: after that it is a new key
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE payments.idempotency_keys SET created_at = now() - interval '25 hours' "
                "WHERE key = :key"
            ),
            {"key": key},
        )
    settled(api, tokens["manager"], again.json()["id"])
    url = f"{BASE}/{again.json()['id']}/refunds"
    assert api.call("POST", url, token=tokens["manager"], json={}).status_code == 201
    fresh = pay(api, tokens["manager"], order, 8999, key=key)
    assert fresh.status_code == 201 and fresh.json()["id"] != again.json()["id"]


def test_refunds_never_exceed_what_was_captured(api, tokens, nameko_config, customer, admin_engine):
    order = new_order(nameko_config, customer, 8000)
    payment = pay(api, tokens["manager"], order, 8000).json()
    settled(api, tokens["manager"], payment["id"])
    url = f"{BASE}/{payment['id']}/refunds"
    assert api.call("POST", url, token=tokens["sales"], json={"amount": 100}).status_code == 403
    key = {"Idempotency-Key": f"refund-{uuid.uuid4().hex}"}
    part = api.call("POST", url, token=tokens["manager"], json={"amount": 3000}, headers=key)
    assert part.status_code == 201, part.text
    assert part.json()["status"] == "partially_refunded"
    # the same refund request again is the same refund, not a second one
    repeat = api.call("POST", url, token=tokens["manager"], json={"amount": 3000}, headers=key)
    assert repeat.json()["refunded_amount"] == 3000
    too_much = api.call("POST", url, token=tokens["manager"], json={"amount": 5001})
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "refund_exceeds_captured"
    rest = api.call("POST", url, token=tokens["admin"], json={"reason": "customer asked"})
    assert rest.status_code == 201
    assert (rest.json()["status"], rest.json()["refunded_amount"]) == ("refunded", 8000)
    assert api.call("POST", url, token=tokens["admin"], json={"amount": 1}).status_code == 422
    assert event_types(admin_engine, payment["id"])[-2:] == ["payment.refunded"] * 2
    assert balance(api, tokens["manager"], order)["outstanding"] == 8000


def test_the_sandbox_confirmation_step_decline_and_wallet_scan(
    api, tokens, nameko_config, customer
):
    order = new_order(nameko_config, customer, 30000)
    confirm = pay(api, tokens["manager"], order, 1000, number=CONFIRM_CARD).json()
    assert confirm["next_action"] == {"type": "confirm"}
    assert get(api, tokens["manager"], confirm["id"])["status"] == "pending"
    confirmed = api.call("POST", f"{BASE}/{confirm['id']}/confirm", token=tokens["manager"])
    assert confirmed.status_code == 200, confirmed.text
    settled(api, tokens["manager"], confirm["id"])

    declined = pay(api, tokens["manager"], order, 1000, number=DECLINED_CARD).json()
    failed = settled(api, tokens["manager"], declined["id"], "failed")
    assert failed["failure_reason"] == "card_declined"

    invalid = pay(api, tokens["manager"], order, 1000, number="4242424242424241")
    assert invalid.status_code == 400
    assert "card.number" in invalid.json()["errors"]

    wallet = pay(api, tokens["manager"], order, 2000, method="alipay").json()
    assert wallet["next_action"]["type"] == "qr"
    assert wallet["next_action"]["qr_content"].startswith("sandbox://alipay/")
    scan = api.call("POST", f"{BASE}/{wallet['id']}/sandbox-scan", token=tokens["manager"])
    assert scan.status_code == 200, scan.text
    settled(api, tokens["manager"], wallet["id"])
    again = api.call("POST", f"{BASE}/{wallet['id']}/sandbox-scan", token=tokens["manager"])
    assert again.status_code == 422

    transfer = pay(api, tokens["manager"], order, 3000, method="bank_transfer").json()
    assert transfer["next_action"]["type"] == "bank_transfer"
    settled(api, tokens["manager"], transfer["id"])  # settles "later" (0 s here)

    wechat = pay(api, tokens["manager"], order, 500, method="wechat_pay").json()
    cancelled = api.call("POST", f"{BASE}/{wechat['id']}/cancel", token=tokens["manager"], json={})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (
        api.call("POST", f"{BASE}/{wechat['id']}/sandbox-scan", token=tokens["manager"]).status_code
        == 422
    )


def test_manual_capture_and_expiry(api, tokens, nameko_config, customer):
    order = new_order(nameko_config, customer, 5000)
    held = pay(api, tokens["manager"], order, 1000, capture_method="manual").json()
    authorised = settled(api, tokens["manager"], held["id"], "authorized")
    assert authorised["captured_amount"] == 0
    key = {"Idempotency-Key": f"cap-{uuid.uuid4().hex}"}
    url = f"{BASE}/{held['id']}/capture"
    captured = api.call("POST", url, token=tokens["manager"], headers=key)
    assert captured.status_code == 200 and captured.json()["status"] == "captured"
    assert api.call("POST", url, token=tokens["manager"], headers=key).status_code == 200
    assert api.call("POST", url, token=tokens["manager"]).status_code == 422

    waiting = pay(api, tokens["manager"], order, 1000, method="wechat_pay").json()
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        expired = cluster.payments.expire_pending(now=later)["expired"]
    assert waiting["id"] in expired
    assert get(api, tokens["manager"], waiting["id"])["status"] == "expired"
    # the money it held back is available again
    assert balance(api, tokens["manager"], order)["outstanding"] == 4000


def test_a_cancelled_order_cancels_open_payments_and_refunds_captured_ones(
    api, tokens, nameko_config, customer
):
    order = new_order(nameko_config, customer, 6000)
    captured = pay(api, tokens["manager"], order, 2000).json()
    settled(api, tokens["manager"], captured["id"])
    waiting = pay(api, tokens["manager"], order, 1000, method="alipay").json()
    cancel = order_envelope("order.cancelled", total=6000, version=3, **order)
    assert feed(nameko_config, cancel) == 1
    assert feed(nameko_config, cancel) == 0  # a redelivery changes nothing
    assert get(api, tokens["manager"], waiting["id"])["status"] == "cancelled"
    refunded = get(api, tokens["manager"], captured["id"])
    assert (refunded["status"], refunded["refunded_amount"]) == ("refunded", 2000)
    assert refunded["refunds"][0]["reason"] == "order_cancelled"
    assert pay(api, tokens["manager"], order, 100).status_code == 422


def test_a_returned_order_refunds_and_a_new_total_changes_the_balance(
    api, tokens, nameko_config, customer
):
    order = new_order(nameko_config, customer, 3000)
    feed(nameko_config, order_envelope("order.lines_changed", total=2500, version=2, **order))
    assert pay(api, tokens["manager"], order, 2501).status_code == 422
    payment = pay(api, tokens["manager"], order, 2500).json()
    settled(api, tokens["manager"], payment["id"])
    feed(nameko_config, order_envelope("order.returned", total=2500, version=5, **order))
    assert get(api, tokens["manager"], payment["id"])["status"] == "refunded"


def test_no_card_number_or_cvc_in_the_database_the_event_log_or_the_logs(
    api, tokens, nameko_config, customer, admin_engine, caplog
):
    caplog.set_level(logging.DEBUG)
    pan = "5555555555554444"
    order = new_order(nameko_config, customer, 700)
    body = {
        "order_id": order["order_id"],
        "method": "card",
        "amount": 700,
        "currency": "CNY",
        "card": {"number": pan, "exp_month": 11, "exp_year": 2031, "cvc": "8642"},
    }
    created = api.call(
        "POST", BASE, token=tokens["manager"], json=body, headers={"Idempotency-Key": "pan-test"}
    )
    assert created.status_code == 201
    assert created.json()["card"] == {"brand": "mastercard", "last4": "4444"}
    assert pan not in created.text
    settled(api, tokens["manager"], created.json()["id"])
    found = []
    with admin_engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('payments', 'users', 'customers', 'orders', 'analytics') "
                "AND table_type = 'BASE TABLE'"
            )
        ).all()
        for schema, table in tables:
            hits = conn.execute(
                text(
                    f'SELECT count(*) FROM "{schema}"."{table}" AS t '
                    "WHERE t::text LIKE :pan OR t::text LIKE :cvc"
                ),
                {"pan": f"%{pan}%", "cvc": '%"8642"%'},
            ).scalar()
            if hits:
                found.append(f"{schema}.{table}")
    assert found == []
    logged = [r for r in caplog.records if pan in r.getMessage() or "8642" in r.getMessage()]
    assert logged == []
    assert len(caplog.records) > 0  # the services' logs were captured


def test_reconciliation_matches_the_sandbox_report_and_flags_mismatches(
    api, tokens, nameko_config, customer, admin_engine
):
    order = new_order(nameko_config, customer, 4000)
    payment = pay(api, tokens["manager"], order, 1500, method="wechat_pay").json()
    api.call("POST", f"{BASE}/{payment['id']}/sandbox-scan", token=tokens["manager"])
    payment = settled(api, tokens["manager"], payment["id"])
    # the sandbox reports a charge CMS never heard of (its webhook lost for good)
    stray = f"sbx_ch_stray{uuid.uuid4().hex[:12]}"
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO payments.sandbox_ledger (reference, kind, merchant_reference, "
                "method, amount, currency, status, created_at, settled_at) VALUES "
                "(:ref, 'charge', :payment, 'wechat_pay', 999, 'CNY', 'succeeded', now(), now())"
            ),
            {"ref": stray, "payment": str(uuid.uuid4())},
        )
    today = datetime.now(UTC).date().isoformat()
    url = f"{BASE}/reconciliation"
    assert api.call("GET", url, token=tokens["sales"]).status_code == 403
    assert api.call("GET", url, token=tokens["analyst"]).status_code == 403
    report = api.call("GET", url, token=tokens["manager"], params={"date": today})
    assert report.status_code == 200, report.text
    rows = {(r["provider"], r["method"], r["currency"]): r for r in report.json()["rows"]}
    wechat = rows[("sandbox", "wechat_pay", "CNY")]
    assert wechat["status"] == "mismatch"
    reasons = {m["reference"]: m["reason"] for m in wechat["mismatches"]}
    assert reasons[stray] == "missing_in_cms"
    assert payment["provider_reference"] not in reasons  # the scanned payment matches
    assert rows[("manual", "cash", "CNY")]["status"] == "no_provider_report"
    exported = api.call("GET", f"{url}.csv", token=tokens["admin"], params={"date": today})
    assert exported.status_code == 200
    assert exported.headers["Content-Type"].startswith("text/csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("date,provider,method,currency")
    assert any(stray in line and "missing_in_cms" in line for line in lines[1:])
    earlier = api.call("GET", url, token=tokens["manager"], params={"date": "2020-01-01"})
    assert earlier.json()["rows"] == []


def test_analysts_read_and_unknown_payments_are_404(api, tokens, nameko_config, customer):
    order = new_order(nameko_config, customer, 100)
    payment = pay(api, tokens["manager"], order, 100, method="alipay").json()
    assert get(api, tokens["analyst"], payment["id"])["id"] == payment["id"]
    assert pay(api, tokens["analyst"], order, 100).status_code == 403
    missing = api.call("GET", f"{BASE}/{uuid.uuid4()}", token=tokens["manager"])
    assert missing.status_code == 404
    unknown_order = pay(api, tokens["manager"], {"order_id": str(uuid.uuid4())}, 100)
    assert unknown_order.status_code == 404


def test_the_order_becomes_paid_exactly_when_covered_and_not_before(api, tokens, customer):
    """With the real orders service: the order moves from the payments service's events."""
    product = api.call(
        "POST",
        "/api/v1/products",
        token=tokens["admin"],
        json={
            "sku": f"PAY-{uuid.uuid4().hex[:8]}",
            "name": "Tea",
            "price": 2500,
            "currency": "CNY",
        },
    )
    assert product.status_code == 201, product.text
    placed = api.call(
        "POST",
        "/api/v1/orders",
        token=tokens["sales"],
        json={
            "customer_id": customer,
            "lines": [{"product_id": product.json()["id"], "quantity": 2}],
        },
    )
    assert placed.status_code == 201, placed.text
    order = {"order_id": placed.json()["id"]}
    total = placed.json()["total"]

    def order_state():
        return api.call("GET", f"/api/v1/orders/{order['order_id']}", token=tokens["sales"]).json()

    first = pay(api, tokens["sales"], order, total - 1000)
    assert first.status_code == 201, first.text
    settled(api, tokens["sales"], first.json()["id"])
    partly = wait_for(lambda: (o := order_state())["status"] == "partially_paid" and o)
    assert partly["paid_amount"] == total - 1000
    assert pay(api, tokens["sales"], order, 1001).status_code == 422
    rest = api.call(
        "POST",
        f"{BASE}/manual",
        token=tokens["sales"],
        json={
            "order_id": order["order_id"],
            "method": "bank_transfer",
            "amount": 1000,
            "currency": "CNY",
            "reference": "statement 42",
        },
    )
    assert rest.status_code == 201, rest.text
    paid = wait_for(lambda: (o := order_state())["status"] == "paid" and o)
    assert paid["paid_amount"] == total
    refund = api.call(
        "POST", f"{BASE}/{rest.json()['id']}/refunds", token=tokens["manager"], json={"amount": 1}
    )
    assert refund.status_code == 201
    # a refund of a paid order is a concession: the order stays paid, short of the refund
    again = wait_for(lambda: (o := order_state())["paid_amount"] == total - 1 and o)
    assert (again["status"], again["balance"]) == ("paid", 1)


def test_sales_reach_only_the_payments_of_their_own_customers_orders(api, tokens, admin):
    from gateway.tests.conftest import PASSWORD

    email = f"sales2-{uuid.uuid4().hex[:8]}@example.com"
    created = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": email, "name": "Other", "role": "sales", "password": PASSWORD},
    )
    assert created.status_code == 201
    other = api.login(email)["access_token"]
    stranger = api.call(
        "POST",
        "/api/v1/customers",
        token=other,
        json={"kind": "person", "name": f"Not yours {uuid.uuid4().hex[:6]}", "force": True},
    ).json()
    product = api.call(
        "POST",
        "/api/v1/products",
        token=tokens["admin"],
        json={"sku": f"VIS-{uuid.uuid4().hex[:8]}", "name": "Cup", "price": 800, "currency": "CNY"},
    ).json()
    placed = api.call(
        "POST",
        "/api/v1/orders",
        token=other,
        json={
            "customer_id": stranger["id"],
            "lines": [{"product_id": product["id"], "quantity": 1}],
        },
    )
    assert placed.status_code == 201, placed.text
    order = {"order_id": placed.json()["id"]}
    mine = pay(api, other, order, 300, method="alipay")
    assert mine.status_code == 201, mine.text
    payment_id = mine.json()["id"]
    # another sales user: neither the order's payments nor the payment exist for them
    assert pay(api, tokens["sales"], order, 100, method="alipay").status_code == 404
    listed = api.call("GET", BASE, token=tokens["sales"], params={"order_id": order["order_id"]})
    assert listed.status_code == 404
    assert api.call("GET", BASE, token=tokens["sales"]).status_code == 400  # must name the order
    assert api.call("GET", f"{BASE}/{payment_id}", token=tokens["sales"]).status_code == 404
    scan = api.call("POST", f"{BASE}/{payment_id}/sandbox-scan", token=tokens["sales"])
    assert scan.status_code == 404
    assert get(api, tokens["manager"], payment_id)["status"] == "pending"


def test_the_order_replica_catches_up_through_orders_read_events(
    api, tokens, customer, nameko_config, admin_engine
):
    product = api.call(
        "POST",
        "/api/v1/products",
        token=tokens["admin"],
        json={"sku": f"CU-{uuid.uuid4().hex[:8]}", "name": "Pot", "price": 1200, "currency": "CNY"},
    ).json()
    placed = api.call(
        "POST",
        "/api/v1/orders",
        token=tokens["sales"],
        json={"customer_id": customer, "lines": [{"product_id": product["id"], "quantity": 1}]},
    ).json()
    order = {"order_id": placed["id"]}
    wait_for(lambda: balance(api, tokens["manager"], order))  # live, from orders.events
    # as if the payments service had never seen the order's events
    with admin_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM payments.order_replica WHERE order_id = :id"), {"id": placed["id"]}
        )
        conn.execute(
            text(
                "DELETE FROM payments.processed_events WHERE event_id IN "
                "(SELECT event_id FROM orders.events WHERE stream_id = :id)"
            ),
            {"id": placed["id"]},
        )
        conn.execute(text("UPDATE payments.consumer_positions SET position = 0"))
    assert balance(api, tokens["manager"], order) is None
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        assert cluster.payments.catch_up_order_replica()["applied"] == 1
        assert cluster.payments.catch_up_order_replica()["applied"] == 0
    caught = balance(api, tokens["manager"], order)
    assert (caught["total"], caught["customer_id"], caught["outstanding"]) == (1200, customer, 1200)


def test_cancelling_a_paid_order_refunds_its_payments(api, tokens, customer):
    """With the real orders service: its order.cancelled reaches the payments service, which
    cancels the open payment and refunds the captured one."""
    product = api.call(
        "POST",
        "/api/v1/products",
        token=tokens["admin"],
        json={
            "sku": f"CX-{uuid.uuid4().hex[:8]}",
            "name": "Tray",
            "price": 3000,
            "currency": "CNY",
        },
    ).json()
    placed = api.call(
        "POST",
        "/api/v1/orders",
        token=tokens["sales"],
        json={"customer_id": customer, "lines": [{"product_id": product["id"], "quantity": 1}]},
    ).json()
    order = {"order_id": placed["id"]}
    captured = pay(api, tokens["sales"], order, 2000).json()
    settled(api, tokens["sales"], captured["id"])
    waiting = pay(api, tokens["sales"], order, 1000, method="wechat_pay").json()
    url = f"/api/v1/orders/{order['order_id']}"
    wait_for(lambda: api.call("GET", url, token=tokens["sales"]).json()["paid_amount"] == 2000)
    why = {"reason": "customer changed their mind"}
    # cancelling refunds what was paid, and refunds are for admins and managers
    refused = api.call("POST", f"{url}/cancel", token=tokens["sales"], json=why)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "manager_only"
    cancelled = api.call("POST", f"{url}/cancel", token=tokens["manager"], json=why)
    assert cancelled.status_code == 200, cancelled.text
    refunded = settled(api, tokens["sales"], captured["id"], "refunded")
    assert refunded["refunds"][0]["reason"] == "order_cancelled"
    assert get(api, tokens["sales"], waiting["id"])["status"] == "cancelled"
    final = api.call("GET", f"/api/v1/orders/{order['order_id']}", token=tokens["sales"]).json()
    assert final["status"] == "cancelled"
    assert pay(api, tokens["sales"], order, 100).status_code == 422


def test_returning_a_fulfilled_order_refunds_its_payments(api, tokens, customer):
    product = api.call(
        "POST",
        "/api/v1/products",
        token=tokens["admin"],
        json={
            "sku": f"RT-{uuid.uuid4().hex[:8]}",
            "name": "Bowl",
            "price": 1500,
            "currency": "CNY",
        },
    ).json()
    placed = api.call(
        "POST",
        "/api/v1/orders",
        token=tokens["sales"],
        json={"customer_id": customer, "lines": [{"product_id": product["id"], "quantity": 1}]},
    ).json()
    order = {"order_id": placed["id"]}
    cash = api.call(
        "POST",
        f"{BASE}/manual",
        token=tokens["sales"],
        json={"order_id": placed["id"], "method": "cash", "amount": 1500, "currency": "CNY"},
    ).json()
    url = f"/api/v1/orders/{placed['id']}"
    wait_for(lambda: api.call("GET", url, token=tokens["sales"]).json()["status"] == "paid")
    assert api.call("POST", f"{url}/fulfil", token=tokens["sales"], json={}).status_code == 200
    refused = api.call("POST", f"{url}/return", token=tokens["sales"], json={"reason": "broken"})
    assert refused.status_code == 403, refused.text  # a return refunds: a manager's call
    returned = api.call("POST", f"{url}/return", token=tokens["manager"], json={"reason": "x"})
    assert returned.status_code == 200, returned.text
    refunded = settled(api, tokens["sales"], cash["id"], "refunded")
    assert refunded["refunds"][0]["reason"] == "order_returned"
    assert balance(api, tokens["sales"], order)["paid_amount"] == 0


def test_payments_export_as_csv_with_the_list_filters(api, tokens, nameko_config, customer):
    """The payment list as a spreadsheet (there was none: only the day's reconciliation):
    amounts in minor units, a card only as brand and last four digits; not for sales."""
    import csv
    import io

    order = new_order(nameko_config, customer, 5000)
    card = settled(api, tokens["manager"], pay(api, tokens["manager"], order, 3000).json()["id"])
    cash = api.call(
        "POST",
        f"{BASE}/manual",
        token=tokens["manager"],
        json={"order_id": order["order_id"], "method": "cash", "amount": 2000, "currency": "CNY"},
    ).json()
    response = api.call(
        "GET", f"{BASE}/export.csv", token=tokens["analyst"], params={"order_id": order["order_id"]}
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {card["id"], cash["id"]}
    assert by_id[card["id"]]["card_last4"] == "4242" and by_id[card["id"]]["status"] == "captured"
    assert by_id[card["id"]]["captured_amount"] == "3000"
    assert by_id[cash["id"]]["method"] == "cash" and by_id[cash["id"]]["card_brand"] == ""
    assert SUCCESS_CARD not in response.text
    only_cash = api.call(
        "GET",
        f"{BASE}/export.csv",
        token=tokens["manager"],
        params={"order_id": order["order_id"], "method": "cash"},
    )
    assert [
        row["id"] for row in csv.DictReader(io.StringIO(only_cash.content.decode("utf-8-sig")))
    ] == [cash["id"]]
    assert api.call("GET", f"{BASE}/export.csv", token=tokens["sales"]).status_code == 403
    bad = api.call("GET", f"{BASE}/export.csv", token=tokens["manager"], params={"status": "x"})
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["status"]
