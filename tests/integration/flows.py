"""Business flows driven through the gateway, as another system or a person would."""

import time
import uuid


def _ok(response, *statuses):
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json() if response.content else None


def create_customer(api, token, name=None, **extra):
    marker = uuid.uuid4().hex[:8]
    body = {
        "kind": "person",
        "name": name or f"Integration {marker}",
        "emails": [{"address": f"int-{marker}@example.com"}],
        "phones": [{"number": f"+861380{int(marker, 16) % 10**7:07d}"}],
        "addresses": [{"country": "CN", "city": "上海", "street": "南京西路 1 号"}],
        "force": True,
        **extra,
    }
    return _ok(api.call("POST", "/api/v1/customers", token=token, json=body), 201)


def customer_flows(api, token) -> dict:
    """A customer's life: created, edited, tagged, consent, archived and restored, merged with
    a duplicate and un-merged, and one more created and erased. Returns the ids."""
    first = create_customer(api, token)
    cid = first["id"]
    edited = _ok(
        api.call(
            "PATCH",
            f"/api/v1/customers/{cid}",
            token=token,
            json={"name": "Integration Renamed", "company": "集成有限公司"},
            headers={"If-Match": f'"{first["version"]}"'},
        )
    )
    assert edited["version"] > first["version"]
    _ok(
        api.call(
            "POST",
            f"/api/v1/customers/{cid}/tags",
            token=token,
            json={"add": ["vip", "erp"], "remove": []},
        )
    )
    _ok(
        api.call(
            "POST",
            f"/api/v1/customers/{cid}/consents",
            token=token,
            json={"channel": "email", "granted": True, "method": "web_form", "note": "form"},
        ),
        200,
        201,
    )
    _ok(api.call("POST", f"/api/v1/customers/{cid}/archive", token=token))
    _ok(api.call("POST", f"/api/v1/customers/{cid}/restore", token=token))
    duplicate = create_customer(api, token)
    merged = _ok(
        api.call(
            "POST",
            f"/api/v1/customers/{cid}/merge",
            token=token,
            json={"source_id": duplicate["id"]},
        )
    )
    _ok(api.call("POST", f"/api/v1/customers/merges/{merged['merge_id']}/undo", token=token))
    erased = create_customer(api, token)
    _ok(
        api.call(
            "POST", f"/api/v1/customers/{erased['id']}/erase", token=token, json={"confirm": True}
        ),
        200,
        204,
    )
    return {"customer": cid, "duplicate": duplicate["id"], "erased": erased["id"]}


def order_payment_refund_flows(api, token, customer_id) -> dict:
    """A product, an order of it for the customer, paid in cash, then partly refunded."""
    product = _ok(
        api.call(
            "POST",
            "/api/v1/products",
            token=token,
            json={
                "sku": f"INT-{uuid.uuid4().hex[:8]}",
                "name": "乌龙茶",
                "price": 1999,
                "currency": "CNY",
            },
        ),
        201,
    )
    body = {"customer_id": customer_id, "lines": [{"product_id": product["id"], "quantity": 2}]}
    deadline = time.monotonic() + 20
    while True:  # the orders service learns of the customer from its events
        placed = api.call("POST", "/api/v1/orders", token=token, json=body)
        if placed.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    order = _ok(placed, 201)
    payment = _ok(
        api.call(
            "POST",
            "/api/v1/payments/manual",
            token=token,
            json={
                "order_id": order["id"],
                "method": "cash",
                "amount": order["total"],
                "currency": order["currency"],
            },
        ),
        201,
    )
    refund = _ok(
        api.call(
            "POST",
            f"/api/v1/payments/{payment['id']}/refunds",
            token=token,
            json={"amount": 500, "reason": "one cup broken"},
            headers={"Idempotency-Key": f"refund-{uuid.uuid4().hex}"},
        ),
        201,
    )
    return {"product": product["id"], "order": order["id"], "payment": payment["id"], **refund}
