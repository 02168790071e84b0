"""The event feed through the gateway: cursor and paging, type filter, who may read it."""

import uuid

import pytest

from gateway.tests.conftest import PASSWORD


@pytest.fixture(scope="module")
def token(admin):
    return admin[1]


def _customer(api, token):
    response = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": f"Feed {uuid.uuid4().hex[:6]}", "force": True},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _read_all(api, token, after=0, limit=1000, types=None):
    items = []
    while True:
        params = {"after": after, "limit": limit, **({"types": types} if types else {})}
        page = api.call("GET", "/api/v1/events/customers", token=token, params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        after = page.json()["next_after"]
        if not page.json()["has_more"]:
            return items, after


def test_pages_follow_the_cursor_without_gaps_or_repeats(api, token):
    _, start = _read_all(api, token)  # the database is shared by the run: skip what it holds
    for _ in range(3):
        _customer(api, token)
    everything, _ = _read_all(api, token, start)
    assert len(everything) >= 3
    paged, last = _read_all(api, token, start, limit=2)
    assert [e["event_id"] for e in paged] == [e["event_id"] for e in everything]
    after = api.call("GET", "/api/v1/events/customers", token=token, params={"after": last})
    assert after.json() == {"items": [], "next_after": last, "has_more": False}
    registered = api.call(
        "GET",
        "/api/v1/events/customers",
        token=token,
        params={"types": "customer.registered", "after": start},
    ).json()["items"]
    assert registered and {e["type"] for e in registered} == {"customer.registered"}
    first = registered[0]
    assert set(first) >= {"event_id", "position", "stream_id", "schema_version", "payload"}
    assert first["payload"]["name"].startswith("Feed ")  # opened for an admin


def test_unknown_service_and_bad_parameters(api, token):
    assert api.call("GET", "/api/v1/events/nobody", token=token).status_code == 404
    for params in ({"types": "not a type"}, {"after": -1}, {"limit": 0}, {"limit": 5000}):
        response = api.call("GET", "/api/v1/events/customers", token=token, params=params)
        assert response.status_code == 400, params


def test_analysts_read_the_feed_sales_do_not(api, token):
    tokens = {}
    for role in ("analyst", "sales"):
        email = f"feed-{role}-{uuid.uuid4().hex[:6]}@example.com"
        created = api.call(
            "POST",
            "/api/v1/users",
            token=token,
            json={"email": email, "name": role, "role": role, "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        tokens[role] = api.login(email)["access_token"]
    assert api.call("GET", "/api/v1/events/orders", token=tokens["analyst"]).status_code == 200
    assert api.call("GET", "/api/v1/events/orders", token=tokens["sales"]).status_code == 403
    customer = _customer(api, token)
    seen = {}
    for role, who in (("admin", token), ("analyst", tokens["analyst"])):
        items, _ = _read_all(api, who, types="customer.registered")
        seen[role] = next(e for e in items if e["stream_id"] == customer["id"])["payload"]
    assert seen["admin"]["name"] == customer["name"]
    assert "$sealed" in seen["analyst"]["name"]  # analysts see no personal data


def test_an_erased_person_reads_as_erased_for_every_role(api, token):
    customer = _customer(api, token)
    erased = api.call(
        "POST", f"/api/v1/customers/{customer['id']}/erase", token=token, json={"confirm": True}
    )
    assert erased.status_code == 200, erased.text
    items, _ = _read_all(api, token, types="customer.registered")
    payload = next(e for e in items if e["stream_id"] == customer["id"])["payload"]
    assert payload["name"] == {"$erased": {"subject": customer["id"]}}


def test_staff_data_in_the_users_log_is_opened_for_admins_only(api, token):
    """Managers read customers' data in the feed, as in the API, but not staff accounts'
    (``GET /users`` is admin only): the users log stays sealed for them."""
    email = f"feed-manager-{uuid.uuid4().hex[:6]}@example.com"
    created = api.call(
        "POST",
        "/api/v1/users",
        token=token,
        json={"email": email, "name": "Manager", "role": "manager", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    manager = api.login(email)["access_token"]
    seen = {}
    for role, who in (("admin", token), ("manager", manager)):
        page = api.call(
            "GET",
            "/api/v1/events/users",
            token=who,
            params={"after": 0, "limit": 1000, "types": "user.registered"},
        )
        assert page.status_code == 200, page.text
        mine = [e for e in page.json()["items"] if e["stream_id"] == created.json()["id"]]
        seen[role] = mine[0]["payload"]
    assert seen["admin"]["email"] == email
    assert "$sealed" in seen["manager"]["email"]
    customer = _customer(api, token)
    items, _ = _read_all(api, manager, types="customer.registered")
    payload = next(e for e in items if e["stream_id"] == customer["id"])["payload"]
    assert payload["name"] == customer["name"]  # customers' data, as the API shows managers


def test_types_take_a_prefix_and_refuse_a_type_the_service_does_not_publish(api, token):
    """``customer.*`` as webhooks take it; a misspelt type is a 400, where it read as a feed
    with nothing in it."""
    customer = _customer(api, token)
    items, _ = _read_all(api, token, types="customer.*")
    mine = [e["type"] for e in items if e["stream_id"] == customer["id"]]
    assert mine == ["customer.registered"]
    assert {e["type"].split(".")[0] for e in items} == {"customer"}
    for wrong in ("customer.registred", "order.placed", "custommer.*"):
        response = api.call("GET", "/api/v1/events/customers", token=token, params={"types": wrong})
        assert response.status_code == 400, wrong
        assert wrong in response.json()["errors"]["types"][0]
