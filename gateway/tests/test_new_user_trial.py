"""What an integrator trying the API with curl ran into: text that is not Unicode, a body sent
to an operation that takes none, challenges on 401 and 429, ``If-Match: *``, bad query
parameters, an import sent as JSON, and phone numbers in the CSV export."""

import csv
import io
import logging
import uuid

import pytest

from gateway.tests.test_payments_api import new_order, pay, settled

SURROGATE_NAME = b'{"name": "\\ud800x"}'
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def nameko_config(nameko_config):
    """The sandbox payment provider without latency."""
    return {**nameko_config, "PAYMENTS": {"SANDBOX_LATENCY_MS": 0}}


@pytest.fixture(scope="module")
def manager(api, admin):
    from gateway.tests.conftest import PASSWORD

    email = f"trial-{uuid.uuid4().hex[:8]}@example.com"
    created = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": email, "name": "Trial", "role": "manager", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    return {"id": created.json()["id"], "token": api.login(email)["access_token"]}


def _customer(api, token, **fields):
    body = {"name": f"Trial {uuid.uuid4().hex[:8]}", "force": True, **fields}
    created = api.call("POST", "/api/v1/customers", token=token, json=body)
    assert created.status_code == 201, created.text
    return created.json(), created.headers["ETag"]


def _problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "Traceback" not in response.text
    return response.json()


# 1. text that UTF-8 cannot hold -------------------------------------------------------------


def test_a_lone_surrogate_anywhere_in_a_body_is_a_400_naming_its_field(api, manager):
    token = manager["token"]
    sent = api.call("POST", "/api/v1/customers", token=token, data=SURROGATE_NAME, headers=JSON)
    assert _problem(sent, 400)["errors"] == {"name": [sent.json()["errors"]["name"][0]]}
    nested = b'{"name": "ok", "emails": [{"address": "a\\udc00@example.com"}]}'
    sent = api.call("POST", "/api/v1/customers", token=token, data=nested, headers=JSON)
    assert list(_problem(sent, 400)["errors"]) == ["emails.0.address"]
    # a key: named as it was sent, its surrogate spelt out
    sent = api.call("POST", "/api/v1/customers", token=token, data=b'{"\\ud800": 1}', headers=JSON)
    assert list(_problem(sent, 400)["errors"]) == ["\\ud800"]
    customer, etag = _customer(api, token)
    edit = api.call(
        "PATCH",
        f"/api/v1/customers/{customer['id']}",
        token=token,
        data=SURROGATE_NAME,
        headers={**JSON, "If-Match": etag},
    )
    assert list(_problem(edit, 400)["errors"]) == ["name"]
    # an operation without a body schema, too
    archive = api.call(
        "POST",
        f"/api/v1/customers/{customer['id']}/archive",
        token=token,
        data=SURROGATE_NAME,
        headers=JSON,
    )
    assert list(_problem(archive, 400)["errors"]) == ["name"]


def test_a_query_value_that_is_not_utf8_is_a_400_naming_its_parameter(api, manager):
    token = manager["token"]
    for query in ("q=%ff", "q=%ED%A0%80", "tag=x&q=%E5%BC"):
        response = api.call("GET", f"/api/v1/customers?{query}", token=token)
        assert list(_problem(response, 400)["errors"]) == ["q"], query
    assert api.call("GET", "/api/v1/customers?q=%E5%BC%A0", token=token).status_code == 200


# 2. a body sent to an operation that takes none --------------------------------------------


def test_an_operation_without_a_body_refuses_fields_but_takes_none_or_an_empty_object(api, manager):
    token = manager["token"]
    customer, _ = _customer(api, token)
    url = f"/api/v1/customers/{customer['id']}"
    refused = api.call("POST", f"{url}/archive", token=token, json={"reason": "gone"})
    body = _problem(refused, 400)
    assert body["errors"] == {"reason": ["Unknown field."]}
    assert api.call("GET", url, token=token).json()["status"] == "active"
    assert _problem(api.call("POST", f"{url}/archive", token=token, json=[1]), 400)["errors"]
    assert api.call("POST", f"{url}/archive", token=token, json={}).status_code == 200
    assert api.call("POST", f"{url}/restore", token=token).status_code == 200
    empty = api.call("POST", f"{url}/archive", token=token, data=b"", headers=JSON)
    assert empty.status_code == 200, empty.text


def test_a_partial_capture_request_is_refused_not_captured_in_full(api, manager, nameko_config):
    token = manager["token"]
    customer, _ = _customer(api, token)
    order = new_order(nameko_config, customer["id"], 4550)
    held = pay(api, token, order, 4550, capture_method="manual").json()
    settled(api, token, held["id"], "authorized")
    url = f"/api/v1/payments/{held['id']}/capture"
    refused = api.call("POST", url, token=token, json={"amount": 5000})
    assert _problem(refused, 400)["errors"] == {"amount": ["Unknown field."]}
    payment = api.call("GET", f"/api/v1/payments/{held['id']}", token=token).json()
    assert (payment["status"], payment["captured_amount"]) == ("authorized", 0)
    captured = api.call("POST", url, token=token, json={})
    assert captured.status_code == 200 and captured.json()["captured_amount"] == 4550


# 3. challenges ------------------------------------------------------------------------------


def test_a_401_says_how_to_authenticate_and_whether_the_token_was_refused(api):
    none = api.call("GET", "/api/v1/customers")
    _problem(none, 401)
    assert none.headers["WWW-Authenticate"] == 'Bearer realm="cms"'
    bad = api.call("GET", "/api/v1/customers", token="not-a-token")
    _problem(bad, 401)
    assert bad.headers["WWW-Authenticate"] == 'Bearer realm="cms", error="invalid_token"'
    basic = api.call("GET", "/api/v1/customers", headers={"Authorization": "Basic eDp5"})
    assert _problem(basic, 401)["code"] == "token_invalid"
    assert basic.headers["WWW-Authenticate"] == 'Bearer realm="cms", error="invalid_request"'
    wrong = api.call(
        "POST", "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}
    )
    assert _problem(wrong, 401)["code"] == "invalid_credentials"
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="cms"'


def test_a_sign_in_refused_for_too_many_attempts_says_when_to_retry(api):
    client = api.client()
    login = {"email": f"nobody-{uuid.uuid4().hex[:6]}@example.com", "password": "x" * 12}
    for _ in range(40):
        response = client.call("POST", "/api/v1/auth/login", json=login)
        if response.status_code == 429:
            break
    body = _problem(response, 429)
    assert body["code"] == "rate_limited"
    assert response.headers["Retry-After"] == str(body["retry_after"])
    assert int(response.headers["Retry-After"]) >= 1


def test_successful_sign_ins_do_not_use_up_an_address_allowance(api, admin):
    """Scripts behind one address sign in often: only failures count against the address, so
    30 good sign-ins (over the limit of 20) leave a wrong password a 401, not a 429."""
    from gateway.tests.conftest import PASSWORD

    email = f"script-{uuid.uuid4().hex[:8]}@example.com"
    created = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": email, "name": "Script", "role": "analyst", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    client = api.client()
    for _ in range(30):
        signed_in = client.call(
            "POST", "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
    wrong = client.call("POST", "/api/v1/auth/login", json={"email": email, "password": "x" * 12})
    assert _problem(wrong, 401)["code"] == "invalid_credentials"


# 5. If-Match: * -----------------------------------------------------------------------------


def test_if_match_star_is_a_428_asking_for_the_etag_read(api, manager):
    token = manager["token"]
    customer, etag = _customer(api, token)
    url = f"/api/v1/customers/{customer['id']}"
    star = api.call("PATCH", url, token=token, json={"source": "x"}, headers={"If-Match": "*"})
    body = _problem(star, 428)
    assert body["code"] == "etag_required" and list(body["errors"]) == ["If-Match"]
    # a digit that is not ASCII ("²", which str.isdigit() takes) is no ETag of ours
    odd = api.call("PATCH", url, token=token, json={"source": "x"}, headers={"If-Match": '"\xb2"'})
    assert list(_problem(odd, 400)["errors"]) == ["If-Match"]
    edited = api.call("PATCH", url, token=token, json={"source": "x"}, headers={"If-Match": etag})
    assert edited.status_code == 200, edited.text


# 6. query parameters ------------------------------------------------------------------------


def test_an_owner_filter_that_is_no_user_id_is_a_400_naming_it(api, manager):
    token = manager["token"]
    for path in ("/api/v1/customers", "/api/v1/customers/export.csv"):
        response = api.call("GET", f"{path}?owner_id=nope", token=token)
        assert list(_problem(response, 400)["errors"]) == ["owner_id"], path
    mine = api.call("GET", f"/api/v1/customers?owner_id={manager['id']}", token=token)
    assert mine.status_code == 200, mine.text


# 7. the declared type of an import ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/customers/imports?filename=c.csv", "/api/v1/orders/imports?filename=o.csv"]
)
def test_an_import_sent_as_json_or_a_form_is_a_415_naming_content_type(api, manager, path):
    marker = uuid.uuid4().hex[:8]
    data = f"name,email\nImported {marker},{marker}@example.com\n".encode()
    for declared in ("application/json", "application/x-www-form-urlencoded"):
        response = api.call(
            "POST", path, token=manager["token"], data=data, headers={"Content-Type": declared}
        )
        assert list(_problem(response, 415)["errors"]) == ["Content-Type"], declared
    found = api.call("GET", f"/api/v1/customers?q={marker}", token=manager["token"]).json()
    assert found["items"] == []
    # the web UI sends a file whose type the browser does not know as octet-stream
    if "customers" in path:
        taken = api.call(
            "POST",
            path + "&mode=create",
            token=manager["token"],
            data=f"name\nOctet {marker}\n".encode(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert taken.status_code == 201 and taken.json()["created"] == 1, taken.text


# 8. the CSV export --------------------------------------------------------------------------


def test_the_export_leaves_phone_numbers_as_they_are_and_still_defuses_formulas(api, manager):
    marker = uuid.uuid4().hex[:8]
    _customer(
        api,
        manager["token"],
        name=f"-1+cmd {marker}",
        phones=[{"number": "+86 138 0013 8000"}],
        source="+SUM(1)",
    )
    response = api.call("GET", f"/api/v1/customers/export.csv?q={marker}", token=manager["token"])
    assert response.status_code == 200, response.text
    (row,) = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    assert row["phone"] == "+8613800138000"
    assert row["name"] == f"'-1+cmd {marker}"
    assert row["source"] == "'+SUM(1)"


def test_spreadsheet_cells_quote_what_could_start_a_formula():
    from shared.tabular import spreadsheet_cell

    for plain in ("+8613800138000", "-45.50", "-3", "张三", "", "a=b"):
        assert spreadsheet_cell(plain) == plain
    for risky in (
        "=1+1",
        "+1+1",
        "-2-3",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "+",
        "-",
        "+1e5",
        "-1.",
        "+\u0661",
    ):
        assert spreadsheet_cell(risky) == "'" + risky
    assert spreadsheet_cell(None) == ""


# 10. the development secret key -------------------------------------------------------------


def test_the_gateway_warns_once_at_start_when_the_development_secret_is_in_use(monkeypatch, caplog):
    from gateway.server import warn_if_development_secret
    from shared.config import DEV_SECRET_KEY

    monkeypatch.delenv("CMS_SECRET_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        assert warn_if_development_secret() is True
    warnings = [r for r in caplog.records if "CMS_SECRET_KEY" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    caplog.clear()
    monkeypatch.setenv("CMS_SECRET_KEY", DEV_SECRET_KEY)
    assert warn_if_development_secret() is True
    monkeypatch.setenv("CMS_SECRET_KEY", "a-real-" + uuid.uuid4().hex)
    assert warn_if_development_secret() is False
    assert len(caplog.records) == 1


def test_starting_the_gateway_logs_the_warning(monkeypatch, caplog, runner_factory, gateway_config):
    from gateway.service import GatewayService

    monkeypatch.delenv("CMS_SECRET_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        runner_factory(gateway_config[0], GatewayService).start()
    warned = [r for r in caplog.records if r.name == "gateway" and "CMS_SECRET_KEY" in r.message]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
