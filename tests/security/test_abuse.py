"""Abuse through the gateway: other people's records (BOLA/IDOR), mass assignment, oversized
input, injection, JWT tampering, CSRF posture and security headers."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
import requests
from sqlalchemy import create_engine, text

from gateway.operations import registry
from shared.config import SERVICES, settings

SQL = "x'); DROP TABLE customers; --"
SQL_OR = "' OR '1'='1"
HTML = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "</script><script>alert(1)</script>"
CONTROL = "\u202enull\x01byte"
PAYLOADS = (SQL, SQL_OR, HTML, SCRIPT, "%_\\%", CONTROL)


def _customer(api, token, **fields):
    body = {"kind": "person", "name": f"Abuse {uuid.uuid4().hex[:6]}", **fields}
    response = api.call("POST", "/api/v1/customers", token=token, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    return response.json()


def _fields(problem) -> set[str]:
    """The top-level fields a 400 names (its ``errors`` are dotted paths: ``lines.0.quantity``)."""
    return {path.split(".")[0] for path in problem["errors"]}


# --- BOLA / IDOR -----------------------------------------------------------------------------


def test_a_sales_user_can_neither_read_nor_change_another_sales_users_customer(api, people):
    theirs = _customer(
        api,
        people["sales2"]["token"],
        emails=[{"address": f"idor-{uuid.uuid4().hex[:6]}@example.com"}],
        tags=["mine"],
    )
    base = f"/api/v1/customers/{theirs['id']}"
    token = people["sales"]["token"]
    attempts = [
        ("GET", base, None),
        ("GET", f"{base}/timeline", None),
        ("GET", f"{base}/consents", None),
        ("PATCH", base, {"name": "Stolen"}),
        ("POST", f"{base}/tags", {"add": ["stolen"]}),
        ("POST", f"{base}/consents", {"channel": "email", "granted": False, "method": "web_form"}),
        ("POST", f"{base}/archive", {}),
        ("POST", f"{base}/attributes", {"values": {}}),
    ]
    for method, path, body in attempts:
        headers = {"If-Match": '"1"'} if method == "PATCH" else {}
        response = api.call(method, path, token=token, json=body, headers=headers)
        # not 403: a sales user must not even learn that the id exists
        assert response.status_code == 404, (method, path, response.status_code, response.text)
    # nor through the list, a filter on the other owner, or the CSV export
    listed = api.call(
        "GET", f"/api/v1/customers?owner_id={people['sales2']['id']}&status=all", token=token
    )
    assert listed.status_code == 200 and listed.json()["items"] == []
    exported = api.call("GET", f"/api/v1/customers/export.csv?q={theirs['name']}", token=token)
    assert exported.status_code == 200 and theirs["id"] not in exported.text
    # and nothing changed
    after = api.call("GET", base, token=people["sales2"]["token"]).json()
    assert after["version"] == theirs["version"] and after["tags"] == ["mine"]
    assert after["status"] == "active" and after["name"] == theirs["name"]


def test_a_sales_user_cannot_give_a_customer_to_someone_else_or_take_one(api, people):
    token = people["sales"]["token"]
    refused = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": "Gift", "owner_id": people["sales2"]["id"]},
    )
    assert refused.status_code in (400, 403), refused.text
    mine = _customer(api, token)
    assign = api.call(
        "POST",
        f"/api/v1/customers/{mine['id']}/owner",
        token=token,
        json={"owner_id": people["sales2"]["id"]},
    )
    assert assign.status_code == 403
    theirs = _customer(api, people["sales2"]["token"])
    take = api.call(
        "POST",
        f"/api/v1/customers/{theirs['id']}/merge",
        token=token,
        json={"source_id": mine["id"]},
    )
    assert take.status_code == 403
    assert (
        api.call("GET", f"/api/v1/customers/{mine['id']}", token=token).json()["owner_id"]
        == (people["sales"]["id"])
    )


def test_an_analyst_sees_no_contact_details_anywhere(api, people):
    marker = uuid.uuid4().hex[:8]
    email, phone = f"contact-{marker}@example.com", "+8613811112222"
    customer = _customer(
        api,
        people["manager"]["token"],
        name=f"Contact {marker}",
        emails=[{"address": email}],
        phones=[{"number": phone}],
        addresses=[{"country": "CN", "street": f"Street {marker}"}],
    )
    url = f"/api/v1/customers/{customer['id']}"
    token = people["analyst"]["token"]
    for path in (
        url,
        f"{url}/timeline",
        f"{url}/consents",
        f"/api/v1/customers?q={marker}",
        f"/api/v1/customers/export.csv?q={marker}",
    ):
        response = api.call("GET", path, token=token)
        assert response.status_code == 200, (path, response.text)
        assert marker in response.text or path.endswith("consents")
        for secret in (email, phone, f"Street {marker}", "8613811112222"):
            assert secret not in response.text, (path, secret)
    assert api.call("GET", f"{url}/privacy-export", token=token).status_code == 403
    # searching by a contact does not reveal who has it either
    by_mail = api.call("GET", f"/api/v1/customers?q={email}", token=token).json()["items"]
    assert all(email not in json.dumps(item) for item in by_mail)


def test_non_admins_reach_no_admin_operation_and_cannot_raise_their_own_role(api, people):
    admin_only = [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"email": "x@example.com", "name": "x", "role": "admin"}),
        ("GET", "/api/v1/api-keys", None),
        ("POST", "/api/v1/api-keys", {"name": "mine", "role": "admin"}),
        ("GET", "/api/v1/audit", None),
        ("GET", "/api/v1/settings/security", None),
        ("PATCH", "/api/v1/settings/security", {"self_registration": True}),
    ]
    for name in ("manager", "sales", "analyst"):
        person = people[name]
        own = f"/api/v1/users/{person['id']}"
        for method, path, body in [
            *admin_only,
            ("GET", own, None),
            ("POST", f"{own}/role", {"role": "admin"}),
            ("POST", f"{own}/password", {"password": "Another-Long-Passphrase-9"}),
            ("POST", f"/api/v1/users/{people['admin']['id']}/deactivate", {}),
        ]:
            response = api.call(method, path, token=person["token"], json=body)
            assert response.status_code == 403, (name, method, path, response.status_code)
        me = api.call("GET", "/api/v1/me", token=person["token"]).json()
        assert me["role"] == ("sales" if name.startswith("sales") else name)


def test_api_keys_and_sessions_belong_to_their_owner(api, people):
    admin = people["admin"]["token"]
    key = api.call(
        "POST",
        "/api/v1/api-keys",
        token=admin,
        json={"name": f"k{uuid.uuid4().hex[:4]}", "role": "sales"},
    ).json()
    # a key with a lesser role cannot mint keys or list them, and is not a person
    for method, path, body in (
        ("GET", "/api/v1/api-keys", None),
        ("POST", "/api/v1/api-keys", {"name": "escalate", "role": "admin"}),
        ("POST", f"/api/v1/api-keys/{key['id']}/revoke", {}),
        ("GET", "/api/v1/me", None),
    ):
        response = api.call(method, path, api_key=key["key"], json=body)
        assert response.status_code == 403, (method, path, response.status_code)
    # a user cannot revoke a key, and revoked keys stop working at once
    revoke = f"/api/v1/api-keys/{key['id']}/revoke"
    assert api.call("POST", revoke, token=people["manager"]["token"]).status_code == 403
    assert api.call("GET", "/api/v1/customers", api_key=key["key"]).status_code == 200
    assert api.call("POST", revoke, token=admin).status_code in (200, 204)
    assert api.call("GET", "/api/v1/customers", api_key=key["key"]).status_code == 401
    # one user's access token cannot end another's session: logout needs the refresh token
    victim = people["sales2"]
    stranger = api.call("POST", "/api/v1/auth/logout", token=people["sales"]["token"], json={})
    assert stranger.status_code == 400
    guessed = api.call(
        "POST", "/api/v1/auth/logout", json={"refresh_token": victim["refresh"][:-2] + "xx"}
    )
    assert guessed.status_code in (204, 401)
    assert api.call("GET", "/api/v1/me", token=victim["token"]).status_code == 200


# --- mass assignment -------------------------------------------------------------------------


def test_a_client_cannot_set_fields_it_may_not(api, people):
    token = people["sales"]["token"]
    forbidden = {
        "id": str(uuid.uuid4()),
        "status": "erased",
        "version": 42,
        "created_at": "2000-01-01T00:00:00Z",
        "merged_into": str(uuid.uuid4()),
        "contact_hidden": False,
        "order_count": 999,
        "erased_at": "2000-01-01T00:00:00Z",
        "attributes": {"vip": True},
        "consents": {"email": {"granted": True}},
    }
    created = api.call(
        "POST", "/api/v1/customers", token=token, json={"kind": "person", "name": "M", **forbidden}
    )
    body = _problem(created, 400)
    assert set(body["errors"]) == set(forbidden)
    customer = _customer(api, token)
    url = f"/api/v1/customers/{customer['id']}"
    for field, value in {**forbidden, "owner_id": people["sales2"]["id"]}.items():
        response = api.call(
            "PATCH",
            url,
            token=token,
            headers={"If-Match": f'"{customer["version"]}"'},
            json={field: value},
        )
        assert _problem(response, 400)["errors"] == {field: ["Unknown field."]}, field
    after = api.call("GET", url, token=token).json()
    assert after["version"] == customer["version"] and after["owner_id"] == people["sales"]["id"]
    # a person's own profile: no role, no activation, no second factor through /me
    me = api.call("GET", "/api/v1/me", token=token)
    for field, value in (("role", "admin"), ("active", True), ("mfa_enabled", False), ("id", "x")):
        response = api.call(
            "PATCH",
            "/api/v1/me",
            token=token,
            headers={"If-Match": me.headers["ETag"]},
            json={field: value},
        )
        assert _problem(response, 400)["errors"] == {field: ["Unknown field."]}
    assert api.call("GET", "/api/v1/me", token=token).json()["role"] == "sales"
    # self-registration cannot pick a role, and an admin cannot plant ids or versions
    register = api.call(
        "POST",
        "/api/v1/auth/register",
        json={
            "email": f"r{uuid.uuid4().hex[:6]}@example.com",
            "name": "R",
            "role": "admin",
            "password": "Plenty-Long-Passphrase-7",
        },
    )
    assert register.status_code in (400, 403)
    if register.status_code == 400:
        assert "role" in register.json()["errors"]
    planted = api.call(
        "POST",
        "/api/v1/users",
        token=people["admin"]["token"],
        json={
            "email": f"p{uuid.uuid4().hex[:6]}@example.com",
            "name": "P",
            "role": "sales",
            "password": "Plenty-Long-Passphrase-7",
            "id": str(uuid.uuid4()),
            "version": 7,
            "active": False,
            "mfa_enabled": True,
        },
    )
    assert set(_problem(planted, 400)["errors"]) == {"id", "version", "active", "mfa_enabled"}


# --- oversized input -------------------------------------------------------------------------


def test_oversized_bodies_are_413_declared_or_chunked(api, people):
    token = people["manager"]["token"]
    big = b'{"kind": "person", "name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    declared = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        data=big,
        headers={"Content-Type": "application/json"},
    )
    _problem(declared, 413)

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    chunked = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    _problem(chunked, 413)
    # and a small chunked body is read, not taken for an empty one
    small = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        data=iter([b'{"kind": "person", ', b'"name": "Chunked"}']),
        headers={"Content-Type": "application/json"},
    )
    assert small.status_code == 201, small.text


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "n" * 201}, "name"),
        ({"company": "c" * 201}, "company"),
        ({"source": "s" * 101}, "source"),
        ({"external_id": "e" * 101}, "external_id"),
        ({"tags": ["t" * 51]}, "tags"),
        ({"tags": ["t"] * 51}, "tags"),
        ({"preferences": {"notes": "n" * 2001}}, "preferences"),
        ({"addresses": [{"country": "CN", "street": "s" * 201}]}, "addresses"),
        ({"emails": [{"address": "a" * 250 + "@x.io"}]}, "emails"),
    ],
)
def test_overlong_strings_are_400_naming_the_field(api, people, body, field):
    response = api.call(
        "POST",
        "/api/v1/customers",
        token=people["manager"]["token"],
        json={"kind": "person", "name": "Long", **body},
    )
    assert _fields(_problem(response, 400)) == {field}


def test_overlong_query_strings_are_400_naming_the_parameter(api, people):
    token = people["manager"]["token"]
    response = api.call("GET", "/api/v1/customers?q=" + "q" * 201, token=token)
    assert "q" in _problem(response, 400)["errors"]
    response = api.call("GET", "/api/v1/users?q=" + "q" * 201, token=people["admin"]["token"])
    assert "q" in _problem(response, 400)["errors"]


# --- injection -------------------------------------------------------------------------------


def _texts(payload):
    return {
        "name": f"N{payload}",
        "company": f"C{payload}",
        "source": f"S{payload}"[:100],
        "external_id": f"X{uuid.uuid4().hex[:6]}{payload}"[:100],
        "addresses": [
            {
                "country": "CN",
                "label": "home",
                "region": f"R{payload}",
                "city": f"Ci{payload}",
                "district": f"D{payload}",
                "street": f"St{payload}",
            }
        ],
        "preferences": {
            "categories": [f"cat{payload}"[:60]],
            "brands": [f"b{payload}"[:60]],
            "notes": f"notes{payload}",
        },
    }


@pytest.mark.parametrize("payload", PAYLOADS, ids=["sql", "sql-or", "img", "script", "like", "ctl"])
def test_injection_in_every_text_field_is_stored_verbatim(api, people, payload):
    token = people["manager"]["token"]
    sent = _texts(payload)
    created = api.call(
        "POST", "/api/v1/customers", token=token, json={"kind": "company", "force": True, **sent}
    )
    if payload == CONTROL:
        # control characters: either refused naming a field, or stored as sent
        if created.status_code == 400:
            assert created.json()["errors"]
            return
    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"].startswith("application/json")
    customer = api.call("GET", f"/api/v1/customers/{created.json()['id']}", token=token).json()
    for field, value in sent.items():
        if field == "addresses":
            got = {k: customer["addresses"][0].get(k) for k in value[0] if k != "primary"}
            assert got == value[0]
        elif field == "preferences":
            assert {k: customer["preferences"][k] for k in value} == value
        else:
            assert customer[field] == value, field
    # search treats the payload as text: it finds this customer and nothing else
    found = api.call(
        "GET", "/api/v1/customers", token=token, params={"q": sent["name"], "status": "all"}
    )
    assert found.status_code == 200, found.text
    ids = [c["id"] for c in found.json()["items"]]
    # (punctuation is no search term: a name of wildcards is found among others)
    assert ids == [customer["id"]] if payload != "%_\\%" else customer["id"] in ids


def test_sql_in_queries_and_ids_is_only_text(api, people):
    token = people["manager"]["token"]
    marker = uuid.uuid4().hex[:8]
    _customer(api, token, name=f"Wild {marker}")
    everything = api.call("GET", "/api/v1/customers?limit=200", token=token).json()["items"]
    for q in (SQL_OR, "%", "_", "%%%", "\\", f"{marker}' OR 1=1 --", "'; SELECT pg_sleep(5); --"):
        response = api.call("GET", "/api/v1/customers", token=token, params={"q": q, "limit": 200})
        assert response.status_code in (200, 400), (q, response.text)
        if response.status_code != 200:
            continue
        found = response.json()["items"]
        # the text is searched for (LIKE wildcards escaped), or is no search term at all
        literal = [c for c in found if q.lower() in f"{c['name']} {c.get('company')}".lower()]
        assert found == literal or [c["id"] for c in found] == [c["id"] for c in everything], q
        if marker in q:
            assert all(marker in c["name"] for c in found), q
    for bad_id in ("1 OR 1=1", "' OR ''='", "../users", "00000000-0000-0000-0000-00000000000'"):
        response = api.call(
            "GET", f"/api/v1/customers/{requests.utils.quote(bad_id, safe='')}", token=token
        )
        assert response.status_code in (400, 404), (bad_id, response.text)
    users = api.call("GET", "/api/v1/users", token=people["admin"]["token"], params={"q": SQL_OR})
    assert users.status_code == 200 and users.json()["items"] == []


def test_user_names_keep_markup_as_text(api, people):
    me = api.call("GET", "/api/v1/me", token=people["analyst"]["token"])
    changed = api.call(
        "PATCH",
        "/api/v1/me",
        token=people["analyst"]["token"],
        headers={"If-Match": me.headers["ETag"]},
        json={"name": HTML},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["Content-Type"].startswith("application/json")
    assert api.call("GET", "/api/v1/me", token=people["analyst"]["token"]).json()["name"] == HTML


# --- JWT tampering ---------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def _real_key():
    return hmac.new(settings().secret_key.encode(), b"jwt-access", hashlib.sha256).digest()


def test_tampered_tokens_are_refused(api, people):
    sales = people["sales"]
    claims = _claims(sales["token"])
    escalated = {**claims, "role": "admin"}
    header, _payload, signature = sales["token"].split(".")
    tokens = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(escalated)}.",
        "alg None": f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(escalated)}.",
        "wrong key": jwt.encode(escalated, b"k" * 32, algorithm="HS256"),
        "raw secret key": jwt.encode(escalated, settings().secret_key, algorithm="HS256"),
        "HS512 with the real key": jwt.encode(escalated, _real_key(), algorithm="HS512"),
        "payload swapped": f"{header}.{_b64(escalated)}.{signature}",
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 5}, _real_key(), "HS256"),
        "refresh token": sales["refresh"],
        "other type": jwt.encode({**claims, "typ": "refresh"}, _real_key(), "HS256"),
        "no session": jwt.encode(
            {k: v for k, v in claims.items() if k != "sid"}, _real_key(), "HS256"
        ),
        "unknown session": jwt.encode({**claims, "sid": str(uuid.uuid4())}, _real_key(), "HS256"),
        "garbage": "a.b.c",
    }
    for name, token in tokens.items():
        for method, path in (("GET", "/api/v1/users"), ("GET", "/api/v1/me")):
            response = api.call(method, path, token=token)
            assert response.status_code == 401, (name, path, response.status_code)
            code = response.json().get("code")
            assert code in ("token_invalid", "token_expired", "session_revoked"), (name, code)
        if name == "expired":
            assert code == "token_expired"
    # a role claim re-signed with the real key still does not outrank the session's role
    forged = jwt.encode(escalated, _real_key(), "HS256")
    assert api.call("GET", "/api/v1/users", token=forged).status_code in (401, 403)


# --- CSRF posture ----------------------------------------------------------------------------


def test_credentials_travel_only_in_headers_never_cookies(api, people):
    tokens = api.call(
        "POST",
        "/api/v1/auth/login",
        json={"email": people["admin"]["email"], "password": "Plenty-Long-Passphrase-7"},
    )
    assert tokens.status_code == 200
    assert "Set-Cookie" not in tokens.headers
    token = people["admin"]["token"]
    for cookie in ("access_token", "token", "session", "Authorization", "jwt"):
        response = requests.get(
            api.base + "/api/v1/me",
            cookies={cookie: token},
            timeout=10,
            headers={"X-Forwarded-For": api.ip},
        )
        assert response.status_code == 401, cookie
        response = requests.post(
            api.base + "/api/v1/customers",
            cookies={cookie: token},
            timeout=10,
            json={"kind": "person", "name": "CSRF"},
            headers={"X-Forwarded-For": api.ip},
        )
        assert response.status_code == 401, cookie
    # no CORS grant for a foreign origin
    preflight = requests.options(
        api.base + "/api/v1/customers",
        timeout=10,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    simple = api.call("GET", "/api/v1/me", token=token, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in simple.headers


def _event_counts(cms_settings):
    engine = create_engine(cms_settings.admin_url)
    try:
        with engine.connect() as conn:
            return {
                service: conn.execute(text(f'SELECT count(*) FROM "{service}".events')).scalar()
                for service in SERVICES
                if conn.execute(
                    text("SELECT to_regclass(:t)"), {"t": f'"{service}".events'}
                ).scalar()
            }
    finally:
        engine.dispose()


def test_no_get_changes_state(api, people, cms_settings):
    """Every GET operation, called by an admin with real ids, appends no event anywhere."""
    token = people["admin"]["token"]
    customer = _customer(api, people["manager"]["token"])
    values = {
        "user_id": people["sales"]["id"],
        "customer_id": customer["id"],
        "key_id": str(uuid.uuid4()),
        "merge_id": str(uuid.uuid4()),
        "import_id": str(uuid.uuid4()),
    }
    gets = [o for o in registry.operations.values() if o.method == "GET"]
    assert gets
    before = _event_counts(cms_settings)
    for operation in gets:
        path = operation.rule
        for name, value in values.items():
            path = path.replace(f"<{name}>", value)
        if "<" in path:
            path = path.replace(path[path.index("<") : path.index(">") + 1], str(uuid.uuid4()))
        response = api.call("GET", path, token=token)
        assert response.status_code < 500, (operation.operation_id, response.text)
        assert operation.audit is None, operation.operation_id
    assert _event_counts(cms_settings) == before


# --- security headers ------------------------------------------------------------------------


def test_security_headers_on_ui_and_api_responses(api, people):
    responses = {
        "ui index": requests.get(api.base + "/", timeout=10),
        "ui route": requests.get(api.base + "/customers/123", timeout=10),
        "api ok": api.call("GET", "/api/v1/me", token=people["admin"]["token"]),
        "api 401": api.call("GET", "/api/v1/me"),
        "api 404": api.call("GET", "/api/v1/nothing-here"),
        "api 413": api.call("POST", "/api/v1/auth/login", data=b"x" * (1024 * 1024 + 1)),
        "openapi": requests.get(api.base + "/api/openapi.json", timeout=10),
        "healthz": requests.get(api.base + "/healthz", timeout=10),
        "ui wrong method": requests.post(api.base + "/", timeout=10),
    }
    for name, response in responses.items():
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, name
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp, name
        assert "default-src 'self'" in csp and "object-src 'none'" in csp, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Referrer-Policy") == "no-referrer", name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert "Server" not in headers or "Python" not in headers["Server"], (name, headers)
    assert responses["ui index"].headers["Content-Type"].startswith("text/html")
    assert responses["api ok"].headers["Content-Type"].startswith("application/json")


# --- orders and payments ---------------------------------------------------------------------


def _order(api, token, customer_id, product_id):
    body = {"customer_id": customer_id, "lines": [{"product_id": product_id, "quantity": 1}]}
    deadline = time.monotonic() + 30
    while True:  # the orders service learns of the customer from its events
        placed = api.call("POST", "/api/v1/orders", token=token, json=body)
        if placed.status_code not in (404, 422) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert placed.status_code == 201, placed.text
    return placed.json()


@pytest.fixture(scope="module")
def sold(api, people):
    """A product, and an order of a customer of ``sales2`` with a cash payment of part of it."""
    product = api.call(
        "POST",
        "/api/v1/products",
        token=people["manager"]["token"],
        json={
            "sku": f"SEC-{uuid.uuid4().hex[:8]}",
            "name": "绿茶",
            "price": 3000,
            "currency": "CNY",
        },
    )
    assert product.status_code == 201, product.text
    token = people["sales2"]["token"]
    customer = _customer(api, token)
    order = _order(api, token, customer["id"], product.json()["id"])
    payment = api.call(
        "POST",
        "/api/v1/payments/manual",
        token=token,
        json={"order_id": order["id"], "method": "cash", "amount": 1000, "currency": "CNY"},
    )
    assert payment.status_code == 201, payment.text
    return {
        "product": product.json(),
        "customer": customer,
        "order": order,
        "payment": payment.json(),
    }


def test_a_sales_user_cannot_reach_another_sales_users_orders_or_payments(api, people, sold):
    token = people["sales"]["token"]
    order, payment = sold["order"], sold["payment"]
    base = f"/api/v1/orders/{order['id']}"
    for method, path, body in (
        ("GET", base, None),
        ("GET", f"{base}/history", None),
        ("PATCH", base, {"lines": [{"product_id": sold["product"]["id"], "quantity": 9}]}),
        ("POST", f"{base}/cancel", {"reason": "stolen"}),
        ("GET", f"/api/v1/payments/{payment['id']}", None),
        ("POST", f"/api/v1/payments/{payment['id']}/cancel", {}),
    ):
        headers = {"If-Match": f'"{order["version"]}"'} if method == "PATCH" else {}
        response = api.call(method, path, token=token, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
    # nor pay it, nor order for the other's customer, nor find them in lists
    pay = api.call(
        "POST",
        "/api/v1/payments/manual",
        token=token,
        json={"order_id": order["id"], "method": "cash", "amount": 1, "currency": "CNY"},
    )
    assert pay.status_code == 404, pay.text
    place = api.call(
        "POST",
        "/api/v1/orders",
        token=token,
        json={
            "customer_id": sold["customer"]["id"],
            "lines": [{"product_id": sold["product"]["id"], "quantity": 1}],
        },
    )
    assert place.status_code in (403, 404), place.text
    listed = api.call(
        "GET", f"/api/v1/orders?customer_id={sold['customer']['id']}", token=token
    ).json()
    assert listed["items"] == []
    payments = api.call("GET", f"/api/v1/payments?order_id={order['id']}", token=token)
    assert payments.status_code in (200, 404), payments.text
    assert payment["id"] not in payments.text
    # the owner still sees them unchanged
    mine = api.call("GET", base, token=people["sales2"]["token"]).json()
    assert mine["status"] in ("placed", "partially_paid"), mine
    assert [line["quantity"] for line in mine["lines"]] == [1]
    # refunds and reconciliation are for managers
    refund = api.call(
        "POST",
        f"/api/v1/payments/{payment['id']}/refunds",
        token=people["sales2"]["token"],
        json={"amount": 100, "reason": "x"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refund.status_code == 403


def test_a_client_cannot_set_order_or_payment_fields_it_may_not(api, people, sold):
    token = people["manager"]["token"]
    lines = [{"product_id": sold["product"]["id"], "quantity": 1}]
    forbidden = {
        "id": str(uuid.uuid4()),
        "status": "paid",
        "paid_amount": 999999,
        "total": 1,
        "subtotal": 1,
        "number": "X-1",
        "version": 5,
    }
    placed = api.call(
        "POST",
        "/api/v1/orders",
        token=token,
        json={"customer_id": sold["customer"]["id"], "lines": lines, **forbidden},
    )
    assert set(_problem(placed, 400)["errors"]) == set(forbidden)
    priced = api.call(
        "POST",
        "/api/v1/orders",
        token=token,
        json={
            "customer_id": sold["customer"]["id"],
            "lines": [{**lines[0], "unit_price": 1, "line_total": 1}],
        },
    )
    assert set(_problem(priced, 400)["errors"]) == {"lines.0.unit_price", "lines.0.line_total"}
    paid = api.call(
        "POST",
        "/api/v1/payments/manual",
        token=token,
        json={
            "order_id": sold["order"]["id"],
            "method": "cash",
            "amount": 100,
            "currency": "CNY",
            "status": "captured",
            "refunded_amount": 0,
            "provider": "sandbox",
        },
    )
    assert set(_problem(paid, 400)["errors"]) == {"status", "refunded_amount", "provider"}
    negative = api.call(
        "POST",
        "/api/v1/payments/manual",
        token=token,
        json={"order_id": sold["order"]["id"], "method": "cash", "amount": -100, "currency": "CNY"},
    )
    assert "amount" in _problem(negative, 400)["errors"]
    after = api.call("GET", f"/api/v1/orders/{sold['order']['id']}", token=token).json()
    assert after["paid_amount"] == 1000 and after["total"] == sold["order"]["total"]
