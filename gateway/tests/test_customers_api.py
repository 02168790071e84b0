"""Customers through the gateway: what each role sees and may do, search, edits, CSV."""

import csv
import io
import uuid

import pytest

from gateway.tests.conftest import PASSWORD


@pytest.fixture(scope="module")
def staff(api, admin):
    """Tokens and ids of a manager, two sales users and an analyst."""
    people = {"admin": {"token": admin[1]}}
    for name in ("manager", "sales", "sales2", "analyst"):
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        role = "sales" if name.startswith("sales") else name
        created = api.call(
            "POST",
            "/api/v1/users",
            token=admin[1],
            json={"email": email, "name": name, "role": role, "password": PASSWORD},
        ).json()
        people[name] = {"token": api.login(email)["access_token"], "id": created["id"]}
    return people


def _create(api, token, **fields):
    body = {"kind": "person", "name": "客户", **fields}
    response = api.call("POST", "/api/v1/customers", token=token, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_deeply_nested_attribute_is_a_400_not_a_500(api, staff):
    for levels in (1000, 990, 40):
        deep = "[" * levels + "]" * levels
        response = api.call(
            "POST",
            "/api/v1/customers",
            token=staff["manager"]["token"],
            data=f'{{"kind": "person", "name": "x", "attributes": {{"a": {deep}}}}}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text[:300]
        assert list(response.json()["errors"]) == ["body"]


def test_create_validates_fields_and_answers_duplicates_with_the_existing_id(api, staff):
    token = staff["manager"]["token"]
    bad = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={
            "kind": "person",
            "name": "X",
            "emails": [{"address": "not-an-email"}],
            "phones": [{"number": "12"}],
        },
    )
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) >= {"emails.0.address", "phones.0.number"}
    # contacts given as plain strings are told the shape they must have
    plain = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": "X", "emails": ["a@example.com"], "phones": ["1380013"]},
    )
    assert plain.status_code == 400
    errors = plain.json()["errors"]
    assert '{"address": "name@example.com"}' in errors["emails.0"][0]
    assert '{"number":' in errors["phones.0"][0]
    # only the name is needed: a customer is a person unless said otherwise (as the form says)
    named = api.call("POST", "/api/v1/customers", token=token, json={"name": "只有姓名"})
    assert (named.status_code, named.json().get("kind")) == (201, "person"), named.text
    # a price preference is integer minor units: a fraction is refused, never truncated
    fraction = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": "X", "preferences": {"currency": "CNY", "price_min": 10.5}},
    )
    assert fraction.status_code == 400, fraction.text
    assert list(fraction.json()["errors"]) == ["preferences.price_min"]
    email = f"dup-{uuid.uuid4().hex[:6]}@example.com"
    first = _create(api, token, name="Dup One", emails=[{"address": email}])
    again = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": "Dup Two", "emails": [{"address": email}]},
    )
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate" and again.json()["existing_id"] == first["id"]
    forced = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": "Dup Two", "force": True, "emails": [{"address": email}]},
    )
    assert forced.status_code == 201
    sneaky = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": "Mass", "status": "erased", "version": 9},
    )
    assert sneaky.status_code == 400 and set(sneaky.json()["errors"]) == {"status", "version"}


def test_sales_see_only_their_own_customers_and_analysts_no_contacts(api, staff):
    marker = uuid.uuid4().hex[:8]
    mine = _create(
        api, staff["sales"]["token"], name=f"Mine {marker}", phones=[{"number": "+8613812345678"}]
    )
    theirs = _create(api, staff["sales2"]["token"], name=f"Theirs {marker}")
    assert mine["owner_id"] == staff["sales"]["id"]
    found = api.call("GET", f"/api/v1/customers?q={marker}", token=staff["sales"]["token"])
    assert [c["id"] for c in found.json()["items"]] == [mine["id"]]
    other = api.call("GET", f"/api/v1/customers/{theirs['id']}", token=staff["sales"]["token"])
    assert other.status_code == 404
    seen = api.call("GET", f"/api/v1/customers/{mine['id']}", token=staff["analyst"]["token"])
    assert seen.status_code == 200
    assert seen.json()["phones"] == [] and seen.json()["contact_hidden"] is True
    refused = api.call(
        "POST",
        "/api/v1/customers",
        token=staff["analyst"]["token"],
        json={"kind": "person", "name": "No"},
    )
    assert refused.status_code == 403


def test_search_finds_chinese_names_by_two_characters_and_by_pinyin(api, staff):
    token = staff["manager"]["token"]
    tag = f"t{uuid.uuid4().hex[:6]}"
    customer = _create(api, token, name="穆琳", tags=[tag])
    for q in ("穆琳", "mulin", "ml"):
        response = api.call("GET", f"/api/v1/customers?q={q}&tag={tag}", token=token)
        assert [c["id"] for c in response.json()["items"]] == [customer["id"]], q


def test_a_stale_edit_is_412_and_changes_nothing(api, staff):
    token = staff["manager"]["token"]
    customer = _create(api, token, name="Before")
    url = f"/api/v1/customers/{customer['id']}"
    etag = api.call("GET", url, token=token).headers["ETag"]
    changed = api.call(
        "PATCH", url, token=token, headers={"If-Match": etag}, json={"name": "After"}
    )
    assert changed.status_code == 200 and changed.json()["name"] == "After"
    stale = api.call(
        "PATCH", url, token=token, headers={"If-Match": etag}, json={"name": "Lost update"}
    )
    assert stale.status_code == 412
    assert api.call("GET", url, token=token).json()["name"] == "After"
    timeline = api.call("GET", f"{url}/timeline", token=token).json()["items"]
    assert [e["type"] for e in timeline][:2] == ["customer.updated", "customer.registered"]


def test_csv_export_follows_the_role_and_defuses_formulas(api, staff):
    marker = uuid.uuid4().hex[:8]
    _create(
        api,
        staff["manager"]["token"],
        name=f"=HYPERLINK(1) {marker}",
        emails=[{"address": f"csv-{marker}@example.com"}],
    )
    for role, sees_email in (("manager", True), ("analyst", False)):
        response = api.call(
            "GET", f"/api/v1/customers/export.csv?q={marker}", token=staff[role]["token"]
        )
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "text/csv"
        )
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert len(rows) == 1
        assert rows[0]["name"].startswith("'=HYPERLINK")
        assert (rows[0]["email"] == f"csv-{marker}@example.com") is sees_email


def test_privacy_export_and_erasure(api, staff):
    customer = _create(
        api,
        staff["manager"]["token"],
        name="Erase Me",
        emails=[{"address": f"erase-{uuid.uuid4().hex[:6]}@example.com"}],
    )
    url = f"/api/v1/customers/{customer['id']}"
    export = api.call("GET", f"{url}/privacy-export", token=staff["manager"]["token"])
    assert export.status_code == 200 and "Erase Me" in export.text
    assert (
        api.call(
            "POST", f"{url}/erase", token=staff["manager"]["token"], json={"confirm": True}
        ).status_code
        == 403
    )
    # it cannot be undone: a call without the confirmation erases nothing
    for body in (None, {}, {"confirm": False}):
        unconfirmed = api.call("POST", f"{url}/erase", token=staff["admin"]["token"], json=body)
        assert unconfirmed.status_code == 400, body
        assert list(unconfirmed.json()["errors"]) == ["confirm"]
    assert api.call("GET", url, token=staff["admin"]["token"]).json()["status"] == "active"
    erased = api.call("POST", f"{url}/erase", token=staff["admin"]["token"], json={"confirm": True})
    assert erased.status_code == 200 and "Erase Me" not in erased.text
    assert "Erase Me" not in api.call("GET", f"{url}/timeline", token=staff["admin"]["token"]).text


def test_consent_is_recorded_as_history(api, staff):
    token = staff["sales"]["token"]
    customer = _create(
        api, token, name="Consent", emails=[{"address": f"c-{uuid.uuid4().hex[:6]}@example.com"}]
    )
    url = f"/api/v1/customers/{customer['id']}/consents"
    for granted in (True, False):
        response = api.call(
            "POST",
            url,
            token=token,
            json={"channel": "email", "granted": granted, "method": "web_form"},
        )
        assert response.status_code == 200, response.text
    assert response.json()["consents"]["email"]["granted"] is False
    history = api.call("GET", url, token=token).json()["items"]
    assert [entry["granted"] for entry in history][-2:] in ([True, False], [False, True])
    assert len(history) == 2


def test_after_erasure_no_personal_value_is_left_in_any_schema(api, staff, cms_settings):
    from sqlalchemy import create_engine, text

    marker = uuid.uuid4().hex[:10]
    name, email, phone = f"Shred{marker}", f"shred-{marker}@example.com", "+8613912345678"
    customer = _create(
        api,
        staff["manager"]["token"],
        name=name,
        emails=[{"address": email}],
        phones=[{"number": phone}],
        addresses=[{"country": "CN", "street": f"Road {marker}"}],
    )
    url = f"/api/v1/customers/{customer['id']}"
    etag = api.call("GET", url, token=staff["manager"]["token"]).headers["ETag"]
    api.call(
        "PATCH",
        url,
        token=staff["manager"]["token"],
        headers={"If-Match": etag},
        json={"company": f"Company {marker}"},
    )
    assert (
        api.call(
            "POST", f"{url}/erase", token=staff["admin"]["token"], json={"confirm": True}
        ).status_code
        == 200
    )
    engine = create_engine(cms_settings.database_url)
    found = []
    with engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                "('pg_catalog', 'information_schema', 'extensions')"
            )
        ).all()
        assert {schema for schema, _ in tables} >= {"users", "customers"}
        for schema, table in tables:
            for value in (marker, email, phone):
                hits = conn.execute(
                    text(f'SELECT count(*) FROM "{schema}"."{table}" t WHERE t::text LIKE :v'),
                    {"v": f"%{value}%"},
                ).scalar()
                if hits:
                    found.append(f"{schema}.{table} holds {value!r}")
    engine.dispose()
    assert not found, found


def test_nul_characters_are_a_field_error_and_times_any_offset(api, staff):
    token = staff["manager"]["token"]
    response = api.call("GET", "/api/v1/customers?q=a%00b", token=token)
    assert response.status_code == 400
    assert response.json()["errors"] == {"q": ["Must not contain NUL characters."]}
    far = "0458-12-03T00:30:15+20:51"  # an offset PostgreSQL itself would refuse
    response = api.call(
        "GET", "/api/v1/customers", token=token, params={"created_from": far, "limit": 1}
    )
    assert response.status_code == 200, response.text


def test_every_role_reads_colleagues_names_and_nothing_else_of_their_accounts(api, staff):
    """The customer list's owner and the timeline's actor by name, for sales and analysts too
    (who may not read users): names only."""
    ids = [staff["sales"]["id"], staff["manager"]["id"], str(uuid.uuid4())]
    for who in ("analyst", "sales"):
        answer = api.call(
            "GET", f"/api/v1/users/names?id={','.join(ids)}", token=staff[who]["token"]
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"names": {ids[0]: "sales", ids[1]: "manager"}}
    assert api.call("GET", f"/api/v1/users/names?id={ids[0]}").status_code == 401
    bad = api.call("GET", "/api/v1/users/names?id=nope", token=staff["sales"]["token"])
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["id"], bad.text


def test_a_manager_picks_a_sales_rep_by_name(api, staff):
    """The owner picker lists the active sales users by name for a manager, who may not read
    users (GET /users?role=sales is admin only, so the picker asked for a raw id)."""
    assert (
        api.call("GET", "/api/v1/users?role=sales", token=staff["manager"]["token"]).status_code
        == 403
    )
    answer = api.call(
        "GET", "/api/v1/users/names", params={"role": "sales"}, token=staff["manager"]["token"]
    )
    assert answer.status_code == 200, answer.text
    names = answer.json()["names"]
    assert names[staff["sales"]["id"]] == "sales" and names[staff["sales2"]["id"]] == "sales2"
    assert staff["manager"]["id"] not in names
    for wrong in ({}, {"role": "boss"}, {"role": "sales", "id": staff["sales"]["id"]}):
        bad = api.call("GET", "/api/v1/users/names", params=wrong, token=staff["manager"]["token"])
        assert bad.status_code == 400, (wrong, bad.text)
