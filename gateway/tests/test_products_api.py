"""The product catalogue through the gateway."""

import uuid

import pytest

from gateway.tests.conftest import PASSWORD
from shared.currencies import NOT_A_CURRENCY


@pytest.fixture(scope="module")
def tokens(api, admin):
    found = {"admin": admin[1]}
    for role in ("manager", "sales", "analyst"):
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        created = api.call(
            "POST",
            "/api/v1/users",
            token=admin[1],
            json={"email": email, "name": role, "role": role, "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        found[role] = api.login(email)["access_token"]
    return found


def test_a_currency_must_be_an_iso_4217_code_in_use(api, tokens):
    for currency in ("XYZ", "XTS", "cny", "CN"):
        body = {"sku": f"X-{uuid.uuid4().hex[:6]}", "name": "x", "price": 1, "currency": currency}
        refused = api.call("POST", "/api/v1/products", token=tokens["manager"], json=body)
        assert refused.status_code == 400, (currency, refused.text)
        assert refused.json()["errors"] == {"currency": [NOT_A_CURRENCY]}
    body = {"sku": f"X-{uuid.uuid4().hex[:6]}", "name": "x", "price": 1, "currency": "KWD"}
    created = api.call("POST", "/api/v1/products", token=tokens["manager"], json=body)
    assert created.status_code == 201, created.text


def test_managers_create_and_edit_products_everyone_reads_them(api, tokens):
    sku = f"TEA-{uuid.uuid4().hex[:6]}"
    body = {"sku": sku, "name": "碧螺春", "category": "tea", "price": 3800, "currency": "CNY"}
    assert api.call("POST", "/api/v1/products", token=tokens["sales"], json=body).status_code == 403
    created = api.call("POST", "/api/v1/products", token=tokens["manager"], json=body)
    assert created.status_code == 201, created.text
    product = created.json()
    assert created.headers["ETag"] == '"1"' and product["active"] is True
    duplicate = api.call("POST", "/api/v1/products", token=tokens["admin"], json=body)
    assert duplicate.status_code == 409 and "sku" in duplicate.json()["errors"]

    path = f"/api/v1/products/{product['id']}"
    assert api.call("PATCH", path, token=tokens["manager"], json={"price": 4200}).status_code == 428
    changed = api.call(
        "PATCH", path, token=tokens["manager"], json={"price": 4200}, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200 and changed.json()["price"] == 4200
    stale = api.call(
        "PATCH", path, token=tokens["manager"], json={"name": "x"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    fixed = api.call(
        "PATCH", path, token=tokens["admin"], json={"currency": "USD"}, headers={"If-Match": '"2"'}
    )
    assert fixed.status_code == 400  # the currency is not an editable field

    read = api.call("GET", path, token=tokens["analyst"])
    assert read.status_code == 200 and read.headers["ETag"] == '"2"'
    listed = api.call("GET", f"/api/v1/products?q={sku.lower()}", token=tokens["sales"]).json()
    assert [item["sku"] for item in listed["items"]] == [sku]
    assert api.call("GET", "/api/v1/products/nope", token=tokens["sales"]).status_code == 404
    bad = api.call(
        "POST", "/api/v1/products", token=tokens["admin"], json={**body, "price": 1.5, "sku": "Z"}
    )
    assert bad.status_code == 400 and "price" in bad.json()["errors"]
