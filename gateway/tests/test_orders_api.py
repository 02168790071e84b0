"""Orders through the gateway: placing, reading, editing with If-Match, the workflow's actions
(422 naming the state), payments arriving as events over RabbitMQ, the long-poll changes feed,
two concurrent status changes, who sees what, and the historical import."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from nameko.standalone.events import event_dispatcher

from gateway.tests.conftest import PASSWORD


@pytest.fixture(scope="module")
def users(api, admin):
    found = {"admin": {"token": admin[1]}}
    for role in ("manager", "sales", "analyst"):
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        created = api.call(
            "POST",
            "/api/v1/users",
            token=admin[1],
            json={"email": email, "name": role, "role": role, "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        found[role] = {"token": api.login(email)["access_token"], "id": created.json()["id"]}
    return found


@pytest.fixture(scope="module")
def product(api, users):
    body = {"sku": f"P-{uuid.uuid4().hex[:8]}", "name": "Oolong", "price": 1999, "currency": "CNY"}
    created = api.call("POST", "/api/v1/products", token=users["admin"]["token"], json=body)
    assert created.status_code == 201, created.text
    return created.json()


def customer(api, token, **data):
    created = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": f"Buyer {uuid.uuid4().hex[:6]}", "force": True, **data},
    )
    assert created.status_code == 201, created.text
    return created.json()


def place(api, token, customer_id, product, quantity=1, **data):
    return api.call(
        "POST",
        "/api/v1/orders",
        token=token,
        json={
            "customer_id": customer_id,
            "lines": [{"product_id": product["id"], "quantity": quantity}],
            **data,
        },
    )


def pay(nameko_config, order, amount=None):
    """A payments service's payment.captured, as the contract describes it, on the bus.

    Its position lies past any real payments log: orders skips a live event at or behind its
    catch-up cursor, which an earlier module's real payments (same database) have moved."""
    payment_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event_dispatcher(nameko_config)(
        "payments",
        "payment.captured",
        {
            "event_id": str(uuid.uuid4()),
            "type": "payment.captured",
            "schema_version": 1,
            "source": "payments",
            "stream_type": "payment",
            "stream_id": payment_id,
            "stream_version": 3,
            "position": time.time_ns() // 1000,
            "occurred_at": now,
            "metadata": {},
            "payload": {
                "payment_id": payment_id,
                "order_id": order["id"],
                "customer_id": order["customer_id"],
                "method": "alipay",
                "amount": order["total"] if amount is None else amount,
                "currency": order["currency"],
                "captured_at": now,
            },
        },
    )


def wait_for_status(api, token, order, status, after):
    """Follow the changes feed (long poll) until the order reaches ``status``."""
    for _ in range(10):
        page = api.call(
            "GET",
            f"/api/v1/orders/changes?after={after}&wait=3&order_id={order['id']}",
            token=token,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        after = body["last_position"]
        if any(item["status"] == status for item in body["items"]):
            return after
    raise AssertionError(f"order never became {status}")


def test_an_order_from_placement_to_return(api, users, product, nameko_config):
    token = users["manager"]["token"]
    buyer = customer(api, token)
    start = api.call("GET", "/api/v1/orders/changes", token=token).json()["last_position"]
    placed = place(
        api,
        token,
        buyer["id"],
        product,
        quantity=3,
        order_discount=97,
        tax_rate=600,
        delivery_address={"country": "CN", "city": "杭州", "street": "龙井路 8 号"},
        notes="after 6 pm",
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert (order["subtotal"], order["tax"], order["total"]) == (5997, 354, 6254)
    assert placed.headers["ETag"] == '"1"'
    assert order["actions"] == ["cancel", "change_lines", "change_address"]
    path = f"/api/v1/orders/{order['id']}"

    refused = api.call("POST", f"{path}/fulfil", token=token, json={})
    assert refused.status_code == 422
    assert refused.json()["state"] == "placed" and "placed" in refused.json()["detail"]

    edited = api.call(
        "PATCH",
        path,
        token=token,
        json={"lines": [{"product_id": product["id"], "quantity": 1}]},
        headers={"If-Match": '"1"'},
    )
    assert edited.status_code == 200 and edited.json()["total"] == 2016  # 1999 - 97 + 6 %
    stale = api.call(
        "PATCH", path, token=token, json={"delivery_address": None}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert api.call("PATCH", path, token=token, json={"notes": "x"}).status_code == 400

    order = edited.json()
    pay(nameko_config, order, amount=999)
    after = wait_for_status(api, token, order, "partially_paid", start)
    pay(nameko_config, order, amount=1017)
    wait_for_status(api, token, order, "paid", after)

    no_edit = api.call(
        "PATCH",
        path,
        token=token,
        json={"delivery_address": None},
        headers={"If-Match": api.call("GET", path, token=token).headers["ETag"]},
    )
    assert no_edit.status_code == 422
    for action, status in (
        ("fulfil", "fulfilled"),
        ("complete", "completed"),
        ("return", "returned"),
    ):
        done = api.call("POST", f"{path}/{action}", token=token, json={"reason": "damaged"})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == status
    history = api.call("GET", f"{path}/history", token=users["analyst"]["token"]).json()["items"]
    changed = [entry["status"] for entry in history if entry["status_changed"]]
    assert changed == ["placed", "partially_paid", "paid", "fulfilled", "completed", "returned"]
    seen = api.call("GET", path, token=users["analyst"]["token"]).json()
    assert seen["delivery_address"] is None and seen["personal_hidden"] is True
    assert api.call("GET", path, token=token).json()["notes"] == "after 6 pm"


def test_two_concurrent_status_changes_one_wins(api, users, product, nameko_config):
    token = users["admin"]["token"]
    buyer = customer(api, token)
    start = api.call("GET", "/api/v1/orders/changes", token=token).json()["last_position"]
    order = place(api, token, buyer["id"], product).json()
    pay(nameko_config, order)
    wait_for_status(api, token, order, "paid", start)
    path = f"/api/v1/orders/{order['id']}"
    etag = api.call("GET", path, token=token).headers["ETag"]

    def act(action):
        return api.call(
            "POST", f"{path}/{action}", token=token, json={}, headers={"If-Match": etag}
        )

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(r.status_code for r in pool.map(act, ["cancel", "fulfil"]))
    assert codes[0] == 200 and codes[1] in (409, 412), codes


def test_orders_only_for_active_known_customers(api, users, product):
    token = users["admin"]["token"]
    assert place(api, token, str(uuid.uuid4()), product).status_code == 404
    archived = customer(api, token)
    api.call(
        "POST",
        f"/api/v1/customers/{archived['id']}/archive",
        token=token,
        headers={"If-Match": '"1"'},
    )
    refused = place(api, token, archived["id"], product)
    assert refused.status_code == 422 and refused.json()["state"] == "archived"
    bad = api.call("POST", "/api/v1/orders", token=token, json={"customer_id": "x", "lines": []})
    assert bad.status_code == 400 and {"customer_id", "lines"} <= set(bad.json()["errors"])


def test_sales_see_only_orders_of_their_customers(api, users, product):
    sales = users["sales"]
    mine = customer(api, sales["token"])
    others = customer(api, users["admin"]["token"])
    own = place(api, sales["token"], mine["id"], product)
    assert own.status_code == 201, own.text
    assert place(api, sales["token"], others["id"], product).status_code == 404
    theirs = place(api, users["admin"]["token"], others["id"], product).json()
    assert (
        api.call("GET", f"/api/v1/orders/{theirs['id']}", token=sales["token"]).status_code == 404
    )
    listed = api.call("GET", "/api/v1/orders?limit=200", token=sales["token"]).json()["items"]
    assert {item["customer_id"] for item in listed} == {mine["id"]}
    assert place(api, users["analyst"]["token"], mine["id"], product).status_code == 403


def test_list_filters_and_pages(api, users, product):
    token = users["admin"]["token"]
    buyer = customer(api, token)
    ids = [place(api, token, buyer["id"], product, quantity=n).json()["id"] for n in (1, 2, 3)]
    page = api.call("GET", f"/api/v1/orders?customer_id={buyer['id']}&limit=2", token=token).json()
    assert [item["id"] for item in page["items"]] == ids[:0:-1]
    assert page["items"][0]["products"] == ["Oolong"]  # the list names what was bought
    rest = api.call(
        "GET",
        f"/api/v1/orders?customer_id={buyer['id']}&limit=2&cursor={page['next_cursor']}",
        token=token,
    ).json()
    assert [item["id"] for item in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    ranged = api.call(
        "GET",
        f"/api/v1/orders?customer_id={buyer['id']}&total_min=3000&total_max=4000"
        f"&product_id={product['id']}&status=placed,paid&placed_from=2020-01-01T00:00:00Z",
        token=token,
    ).json()
    assert [item["total"] for item in ranged["items"]] == [3998]
    by_total = api.call(
        "GET", f"/api/v1/orders?customer_id={buyer['id']}&sort=-total&limit=2", token=token
    ).json()
    assert [item["total"] for item in by_total["items"]] == [5997, 3998]
    wrong = api.call("GET", "/api/v1/orders?status=lost", token=token)
    assert wrong.status_code == 400 and "status" in wrong.json()["errors"]
    # several orders by id at once (the web UI's payments list shows their numbers)
    by_id = api.call("GET", f"/api/v1/orders?id={ids[0]},{ids[2]}", token=token).json()["items"]
    assert sorted(item["id"] for item in by_id) == sorted([ids[0], ids[2]])
    for bad in ("nope", ",".join([ids[0]] * 201)):
        refused = api.call("GET", f"/api/v1/orders?id={bad}", token=token)
        assert refused.status_code == 400 and "id" in refused.json()["errors"], refused.text


def test_orders_by_id_are_still_only_those_the_caller_may_see(api, users, product):
    sales = users["sales"]
    own = place(api, sales["token"], customer(api, sales["token"])["id"], product).json()
    admin = users["admin"]["token"]
    theirs = place(api, admin, customer(api, admin)["id"], product).json()
    listed = api.call(
        "GET", f"/api/v1/orders?id={own['id']},{theirs['id']}", token=sales["token"]
    ).json()["items"]
    assert [item["id"] for item in listed] == [own["id"]]


def test_import_past_orders_twice(api, users, product):
    token = users["manager"]["token"]
    buyer = customer(api, token)
    tag = uuid.uuid4().hex[:8]
    csv = (
        "external_id,customer_id,placed_at,currency,lines,amount,paid\n"
        f"X-{tag}-1,{buyer['id']},2022-02-02,CNY,{product['sku']}*2@15.00,,yes\n"
        f"X-{tag}-2,{buyer['id']},2022-03-03T08:00:00Z,CNY,,120,no\n"
    ).encode()
    first = api.call("POST", "/api/v1/orders/imports?filename=old.csv", token=token, data=csv)
    assert first.status_code == 201, first.text
    assert (first.json()["created"], first.json()["skipped"]) == (2, 0)
    second = api.call("POST", "/api/v1/orders/imports", token=token, data=csv).json()
    assert (second["created"], second["skipped"]) == (0, 2)
    listed = api.call("GET", f"/api/v1/orders?customer_id={buyer['id']}", token=token).json()
    assert sorted((i["external_id"], i["status"], i["total"]) for i in listed["items"]) == [
        (f"X-{tag}-1", "paid", 3000),
        (f"X-{tag}-2", "placed", 12000),
    ]
    assert listed["items"][-1]["placed_at"].startswith("2022-02-02")
    got = api.call("GET", f"/api/v1/orders/imports/{first.json()['id']}", token=token)
    assert got.status_code == 200 and got.json()["status"] == "completed"
    assert (
        api.call(
            "POST", "/api/v1/orders/imports", token=users["sales"]["token"], data=csv
        ).status_code
        == 403
    )


def test_a_retried_order_with_one_idempotency_key_is_placed_once(api, users, product):
    token = users["sales"]["token"]
    buyer = customer(api, token)
    key = f"order-{uuid.uuid4()}"

    def attempt(_):
        return api.call(
            "POST",
            "/api/v1/orders",
            token=token,
            headers={"Idempotency-Key": key},
            json={
                "customer_id": buyer["id"],
                "lines": [{"product_id": product["id"], "quantity": 2}],
            },
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(8)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    listed = api.call("GET", f"/api/v1/orders?customer_id={buyer['id']}", token=token).json()
    assert len(listed["items"]) == 1
    # the same key with another request is refused and places nothing
    other = api.call(
        "POST",
        "/api/v1/orders",
        token=token,
        headers={"Idempotency-Key": key},
        json={"customer_id": buyer["id"], "lines": [{"product_id": product["id"], "quantity": 3}]},
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    # a key is the caller's own: another user's identical request places its own order
    again = api.call(
        "POST",
        "/api/v1/orders",
        token=users["manager"]["token"],
        headers={"Idempotency-Key": key},
        json={"customer_id": buyer["id"], "lines": [{"product_id": product["id"], "quantity": 2}]},
    )
    assert again.status_code == 201 and again.json()["id"] != answers[0].json()["id"]
    # without a key every request is its own order
    assert place(api, token, buyer["id"], product).json()["id"] != answers[0].json()["id"]
    too_long = api.call(
        "POST",
        "/api/v1/orders",
        token=token,
        headers={"Idempotency-Key": "k" * 256},
        json={"customer_id": buyer["id"], "lines": [{"product_id": product["id"], "quantity": 1}]},
    )
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.json()["errors"]
    spec = api.call("GET", "/api/openapi.json").json()
    parameters = spec["paths"]["/api/v1/orders"]["post"]["parameters"]
    assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)
