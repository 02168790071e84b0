"""Machines: bulk customer writes with per-item results, and per-API-key rate limits."""

import time
import uuid

import pytest

from gateway.ratelimit import LIMITER


@pytest.fixture(scope="module")
def token(admin):
    return admin[1]


def _item(name=None, **data):
    marker = uuid.uuid4().hex[:8]
    return {
        "op": "create",
        "data": {
            "kind": "person",
            "name": name or f"Bulk {marker}",
            "emails": [{"address": f"bulk-{marker}@example.com"}],
            **data,
        },
    }


def test_bulk_creates_and_updates_with_a_result_per_item(api, token):
    items = [_item(), _item(), _item(emails=[{"address": "not an address"}]), {"op": "create"}]
    response = api.call("POST", "/api/v1/customers/bulk", token=token, json={"items": items[:3]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["succeeded"] == 2 and body["failed"] == 1
    first, second, bad = body["results"]
    assert [first["index"], second["index"], bad["index"]] == [0, 1, 2]
    assert first["status"] == 201 and first["version"] >= 1
    assert bad["status"] == 400 and bad["id"] is None
    assert "emails" in str(bad["error"]["errors"])
    fetched = api.call("GET", f"/api/v1/customers/{first['id']}", token=token)
    assert fetched.status_code == 200
    updates = {
        "items": [
            {"op": "update", "id": first["id"], "version": first["version"], "data": {"name": "A"}},
            {"op": "update", "id": second["id"], "version": 99, "data": {"name": "B"}},
            {"op": "update", "id": str(uuid.uuid4()), "version": 1, "data": {"name": "C"}},
        ]
    }
    response = api.call("POST", "/api/v1/customers/bulk", token=token, json=updates)
    assert response.status_code == 200, response.text
    ok, stale, missing = response.json()["results"]
    assert ok["status"] == 200 and ok["version"] > first["version"]
    assert stale["status"] == 412
    assert missing["status"] == 404
    assert api.call("GET", f"/api/v1/customers/{first['id']}", token=token).json()["name"] == "A"


def test_bulk_items_take_force_and_an_etag_and_fail_as_full_problems(api, token):
    """An item forces its own creation (as ``force`` in its data, as POST /customers takes
    it), an update's version may be the ETag a GET answered, and a failed item's problem
    has its ``type`` like any other. Each of these was refused or missing."""
    first = _item()
    created = api.call("POST", "/api/v1/customers/bulk", token=token, json={"items": [first]})
    original = created.json()["results"][0]
    twins = [
        {**first, "force": True},
        {**first, "data": {**first["data"], "force": True}},
        first,
    ]
    response = api.call("POST", "/api/v1/customers/bulk", token=token, json={"items": twins})
    assert response.status_code == 200, response.text
    item_forced, data_forced, duplicate = response.json()["results"]
    assert item_forced["status"] == data_forced["status"] == 201
    assert duplicate["status"] == 409
    assert duplicate["error"]["type"].endswith("/conflict")
    etag = api.call("GET", f"/api/v1/customers/{original['id']}", token=token).headers["ETag"]
    update = {"op": "update", "id": original["id"], "version": etag, "data": {"name": "By ETag"}}
    response = api.call("POST", "/api/v1/customers/bulk", token=token, json={"items": [update]})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == 200


def test_bulk_refuses_a_malformed_request_as_a_whole(api, token):
    too_many = {"items": [_item() for _ in range(101)]}
    response = api.call("POST", "/api/v1/customers/bulk", token=token, json=too_many)
    assert response.status_code == 400
    assert "items" in response.json()["errors"]
    response = api.call(
        "POST",
        "/api/v1/customers/bulk",
        token=token,
        json={"items": [{"op": "update", "id": str(uuid.uuid4()), "data": {"name": "x"}}]},
    )
    assert response.status_code == 400
    assert "version" in str(response.json()["errors"])


@pytest.fixture
def tight_limit():
    before = (LIMITER.limit, LIMITER.window, LIMITER.overrides)
    LIMITER.configure(limit=3, window=60)
    yield
    LIMITER.configure(*before)


def test_an_api_key_beyond_its_rate_limit_gets_429_with_retry_after(api, token, tight_limit):
    key = api.call(
        "POST", "/api/v1/api-keys", token=token, json={"name": "erp-sync", "role": "manager"}
    ).json()["key"]
    other = api.call(
        "POST", "/api/v1/api-keys", token=token, json={"name": "wms", "role": "manager"}
    ).json()["key"]
    statuses = [
        api.call("GET", "/api/v1/customers", api_key=key, params={"limit": 1}).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = api.call("GET", "/api/v1/customers", api_key=key)
    assert limited.status_code == 429
    assert limited.headers["Content-Type"] == "application/problem+json"
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 20  # 3 per 60 s: one request back every 20 s
    assert limited.json()["retry_after"] == retry_after
    # another key, and people signed in, are not held back by this key
    assert api.call("GET", "/api/v1/customers", api_key=other).status_code == 200
    assert api.call("GET", "/api/v1/customers", token=token).status_code == 200


def test_the_bucket_refills_evenly():
    limiter = type(LIMITER)(limit=2, window=10)
    assert limiter.hit("k", now=0) == 0
    assert limiter.hit("k", now=0) == 0
    assert limiter.hit("k", now=0) == 5
    assert limiter.hit("k", now=5) == 0
    limiter.configure(limit=0, window=10)
    assert all(limiter.hit("k", now=0) == 0 for _ in range(10))


def _customer_and_product(api, token, price):
    """A customer made through bulk, and a product of ``price`` (CNY)."""
    created = api.call("POST", "/api/v1/customers/bulk", token=token, json={"items": [_item()]})
    product = api.call(
        "POST",
        "/api/v1/products",
        token=token,
        json={"sku": f"B-{uuid.uuid4().hex[:8]}", "name": "Tea", "price": price, "currency": "CNY"},
    ).json()
    return created.json()["results"][0]["id"], product


def test_bulk_places_orders_with_a_result_per_item(api, token):
    customer_id, product = _customer_and_product(api, token, 1200)
    lines = [{"product_id": product["id"], "quantity": 2}]
    good = {"data": {"customer_id": customer_id, "lines": lines}}
    unknown_customer = {"data": {"customer_id": str(uuid.uuid4()), "lines": lines}}
    no_lines = {"data": {"customer_id": customer_id, "lines": []}}
    body = {"items": [good, unknown_customer, no_lines]}
    deadline = time.monotonic() + 20
    while True:  # the orders service learns of new customers from their events
        response = api.call("POST", "/api/v1/orders/bulk", token=token, json=body)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        if results[0]["status"] != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    placed, missing, bad = results
    assert placed["status"] == 201, placed
    order = api.call("GET", f"/api/v1/orders/{placed['id']}", token=token).json()
    assert order["total"] >= 2400 and order["customer_id"] == customer_id
    assert missing["status"] == 404
    assert bad["status"] == 400 and "lines" in bad["error"]["errors"]


def test_a_bulk_order_request_retried_with_its_idempotency_key_places_each_order_once(api, token):
    """An ERP that lost the answer retries the same request with the same key: each item
    answers with the order it placed the first time; the key sent with other items is
    refused item by item. Without it, the retry placed every order again."""
    customer_id, product = _customer_and_product(api, token, 900)

    def item(quantity):
        lines = [{"product_id": product["id"], "quantity": quantity}]
        return {"data": {"customer_id": customer_id, "lines": lines}}

    def send(body, key):
        response = api.call(
            "POST", "/api/v1/orders/bulk", token=token, json=body, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 200, response.text
        return response.json()["results"]

    deadline = time.monotonic() + 20
    while send({"items": [item(1)]}, uuid.uuid4().hex)[0]["status"] == 404:
        assert time.monotonic() < deadline, "the orders service never learnt of the customer"
        time.sleep(0.1)
    key = uuid.uuid4().hex
    body = {"items": [item(1), item(2)]}
    first = send(body, key)
    assert [r["status"] for r in first] == [201, 201]
    again = send(body, key)
    assert [r["id"] for r in again] == [r["id"] for r in first]
    listed = api.call(
        "GET", "/api/v1/orders", token=token, params={"customer_id": customer_id, "limit": 50}
    ).json()["items"]
    assert len(listed) == 3  # the order that waited for the customer, and these two, once
    other = send({"items": [item(5), item(2)]}, key)
    assert other[0]["status"] == 422
    assert other[0]["error"]["code"] == "idempotency_key_reused"
    assert other[1]["id"] == first[1]["id"]
