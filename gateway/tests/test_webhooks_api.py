"""Webhook administration through the gateway: validation, the secret shown once, If-Match,
not found, and the delivery log of an endpoint."""

import uuid

import pytest


@pytest.fixture(scope="module")
def token(admin):
    return admin[1]


def _create(api, token, **body):
    payload = {"url": "https://erp.example.com/hooks/cms", "event_types": ["order.*"], **body}
    return api.call("POST", "/api/v1/webhooks", token=token, json=payload)


def test_register_read_change_and_delete_an_endpoint(api, token):
    created = _create(api, token, description="ERP", fields=["status"], active=False)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert hook["status"] == "inactive" and hook["fields"] == ["status"]
    assert created.headers["Location"] == f"/api/v1/webhooks/{hook['id']}"
    fetched = api.call("GET", f"/api/v1/webhooks/{hook['id']}", token=token)
    assert fetched.status_code == 200
    assert "secret" not in fetched.json()
    assert fetched.json()["secret_hint"] == "…" + hook["secret"][-4:]
    assert fetched.headers["ETag"] == f'"{hook["version"]}"'
    listed = api.call("GET", "/api/v1/webhooks", token=token).json()
    assert hook["id"] in [item["id"] for item in listed["items"]]  # as every list: {"items"}
    path = f"/api/v1/webhooks/{hook['id']}"
    no_match = api.call("PATCH", path, token=token, json={"active": True})
    assert no_match.status_code == 428
    stale = api.call(
        "PATCH", path, token=token, json={"active": True}, headers={"If-Match": '"99"'}
    )
    assert stale.status_code == 412
    changed = api.call(
        "PATCH",
        path,
        token=token,
        json={"event_types": ["customer.registered", "order.*"], "description": "ERP 2"},
        headers={"If-Match": fetched.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["customer.registered", "order.*"]
    assert changed.json()["version"] == hook["version"] + 1
    deliveries = api.call("GET", f"{path}/deliveries", token=token)
    assert deliveries.status_code == 200 and deliveries.json()["items"] == []
    assert api.call("DELETE", path, token=token).status_code == 204
    assert api.call("GET", path, token=token).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://erp.example.com/hook"}, "url"),
        ({"url": "http://127.0.0.1:9000/hook"}, "url"),  # loopback http: dev/test setting only
        ({"url": "ftp://erp.example.com/"}, "url"),
        ({"url": "https://[::1"}, "url"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["Customer Registered"]}, "event_types"),
        ({"secret": "short"}, "secret"),
        # private and internal targets (SSRF), and credentials in the URL
        ({"url": "https://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "https://10.0.0.8/hook"}, "url"),
        ({"url": "https://192.168.0.10/hook"}, "url"),
        ({"url": "https://172.20.1.1/hook"}, "url"),
        ({"url": "https://127.0.0.1/hook"}, "url"),
        ({"url": "https://localhost:8443/hook"}, "url"),
        ({"url": "https://[::1]/hook"}, "url"),
        ({"url": "https://[fd12:3456::1]/hook"}, "url"),
        ({"url": "https://[fe80::1]/hook"}, "url"),
        ({"url": "https://0.0.0.0/hook"}, "url"),
        ({"url": "https://admin:hunter22@erp.example.com/hook"}, "url"),
        # event types the catalogue does not have, and prefixes that match none
        ({"event_types": ["order.paidd"]}, "event_types"),
        ({"event_types": ["order.*", "orderz.*"]}, "event_types"),
        # fields the API does not have
        ({"events": ["order.paid"]}, "events"),
    ],
)
def test_bad_endpoints_are_refused_naming_the_field(api, token, body, field):
    response = _create(api, token, **body)
    assert response.status_code == 400, response.text
    assert {path.split(".")[0] for path in response.json()["errors"]} == {field}
    assert "hunter22" not in response.text


def test_a_change_is_checked_as_a_registration_is(api, token):
    hook = _create(api, token, active=False).json()
    path = f"/api/v1/webhooks/{hook['id']}"
    for body, field in (
        ({"url": "https://169.254.169.254/"}, "url"),
        ({"event_types": ["customer.updatedd"]}, "event_types"),
        ({"active": True, "colour": "red"}, "colour"),
    ):
        etag = api.call("GET", path, token=token).headers["ETag"]
        response = api.call("PATCH", path, token=token, json=body, headers={"If-Match": etag})
        assert response.status_code == 400, response.text
        assert set(response.json()["errors"]) == {field}
        if field == "event_types":
            assert "Did you mean customer.updated?" in response.text
    api.call("DELETE", path, token=token)


def test_deliveries_being_retried_can_be_listed(api, token):
    hook = _create(api, token, active=False).json()
    path = f"/api/v1/webhooks/{hook['id']}/deliveries"
    retrying = api.call("GET", path, token=token, params={"status": "retrying"})
    assert retrying.status_code == 200, retrying.text
    assert retrying.json() == {"items": [], "next_cursor": None}
    api.call("DELETE", f"/api/v1/webhooks/{hook['id']}", token=token)


def test_unknown_endpoints_and_deliveries_are_not_found(api, token):
    unknown = str(uuid.uuid4())
    assert api.call("GET", f"/api/v1/webhooks/{unknown}", token=token).status_code == 404
    assert api.call("GET", "/api/v1/webhooks/not-an-id", token=token).status_code == 404
    hook = _create(api, token, active=False).json()
    response = api.call(
        "POST", f"/api/v1/webhooks/{hook['id']}/deliveries/{unknown}/resend", token=token
    )
    assert response.status_code == 404
    bad_cursor = api.call(
        "GET", f"/api/v1/webhooks/{hook['id']}/deliveries", token=token, params={"cursor": "x"}
    )
    assert bad_cursor.status_code == 400
    api.call("DELETE", f"/api/v1/webhooks/{hook['id']}", token=token)
