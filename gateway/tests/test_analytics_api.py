"""The analytics API end to end: the gateway, users, customers and analytics services, and the
orders and payments event logs filled with a generated contract-shaped history of the
customers created here; every figure through HTTP equals the independent recomputation, for
the roles that may read it, with date range and currency filters; a segment's CSV export
composes the customers' records as the caller may see them; an admin rebuilds while it runs.

Runs on a database and virtual host of its own, so the figures are exactly this history's.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
import uuid
from datetime import UTC, date, datetime

import pytest
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.engine import make_url

from gateway.tests.conftest import PASSWORD, Api, _free_port
from services.analytics.tests.conftest import (
    _rabbitmqctl,
    processed,
    source_service,
    store_events,
    wait_until,
)
from services.analytics.tests.dataset import Generator, Reference
from shared.db import create_service_engine

AS_OF = date(2026, 11, 15)
READERS = ("admin", "manager", "analyst")


@pytest.fixture(scope="module")
def stack(cms_settings, nameko_config):
    from urllib.parse import quote, urlsplit, urlunsplit

    from gateway.service import GatewayService
    from services.analytics.service import AnalyticsService
    from services.customers.service import CustomersService
    from services.users.service import UsersService
    from shared.provision import drop_database, provision

    url = make_url(cms_settings.database_url).set(database=f"cms_test_{uuid.uuid4().hex[:10]}")
    parts = urlsplit(cms_settings.amqp_uri)
    vhost = f"cms_test_{uuid.uuid4().hex[:10]}"
    amqp = cms_settings.amqp_uri
    if parts.hostname in ("127.0.0.1", "localhost") and _rabbitmqctl("add_vhost", vhost):
        _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        amqp = urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    else:
        vhost = None
    current = dataclasses.replace(
        cms_settings, database_url=url.render_as_string(hide_password=False), amqp_uri=amqp
    )
    provision(current)
    port = _free_port()
    config = dict(
        nameko_config,
        AMQP_URI=amqp,
        DB_URIS={name: current.service_url(name) for name in nameko_config["DB_URIS"]},
        WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
        TRUSTED_PROXIES=["127.0.0.1"],
    )
    runner = ServiceRunner(config)
    for service in (
        GatewayService,
        UsersService,
        CustomersService,
        AnalyticsService,
        source_service("orders"),
        source_service("payments"),
    ):
        runner.add_service(service)
    runner.start()
    engines = {
        name: create_service_engine(current.service_url(name), schema=name, pool_size=2)
        for name in ("orders", "payments", "analytics")
    }
    yield Api(f"http://127.0.0.1:{port}"), config, engines
    runner.stop()
    for engine in engines.values():
        engine.dispose()
    drop_database(current)
    if vhost:
        _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="module")
def tokens(stack):
    api, config, _ = stack
    actor = {"id": "system", "kind": "system", "role": "admin", "ip": None, "request_id": None}
    found = {}
    with ClusterRpcProxy(config, timeout=15) as cluster:
        for role in ("admin", "manager", "sales", "analyst"):
            email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
            cluster.users.create_user(
                actor=actor, email=email, name=role.title(), role=role, password=PASSWORD
            )
            found[role] = api.login(email)["access_token"]
    return found


@pytest.fixture(scope="module")
def history(stack, tokens):
    """Customers created through the API, and their orders and payments as events."""
    api, config, engines = stack
    ids = []
    for index in range(40):
        created = api.call(
            "POST",
            "/api/v1/customers",
            token=tokens["admin"],
            json={
                "kind": "person",
                "name": f"客户 {index}",
                "emails": [{"address": f"buyer{index}-{uuid.uuid4().hex[:6]}@example.com"}],
                "force": True,
            },
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    events = Generator(seed=5, orders=300, existing=ids).build()
    for source in ("orders", "payments"):
        store_events(engines[source], events[source])
    total = len(events["orders"]) + len(events["payments"])
    wait_until(lambda: processed(engines["analytics"]) >= total + len(ids), what="analytics")
    with ClusterRpcProxy(config, timeout=30) as cluster:
        cluster.analytics.refresh_segments(as_of=AS_OF.isoformat())
    return events


@pytest.fixture(scope="module")
def reference(history):
    return Reference(history)


def _get(api, token, path, **params):
    response = api.call("GET", path, token=token, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _day(text):
    return datetime.fromisoformat(text + "T00:00:00+00:00")


def test_every_reader_gets_the_figures_of_the_history(stack, tokens, reference):
    api = stack[0]
    for role in READERS:
        token = tokens[role]
        assert _get(api, token, "/api/v1/analytics/revenue", granularity="month") == (
            reference.revenue("month")
        )
        assert _get(api, token, "/api/v1/analytics/overview") == reference.overview()
    token = tokens["analyst"]
    assert _get(api, token, "/api/v1/analytics/revenue/methods") == reference.by_method()
    assert _get(api, token, "/api/v1/analytics/sales/products") == reference.products()
    assert _get(api, token, "/api/v1/analytics/sales/categories") == reference.categories()
    assert _get(api, token, "/api/v1/analytics/payments/rates") == reference.payment_rates()
    assert _get(api, token, "/api/v1/analytics/cohorts", currency="CNY") == {
        "currency": "CNY",
        "cohorts": reference.cohorts("CNY"),
    }


def test_date_range_and_currency_filters(stack, tokens, reference):
    api, token = stack[0], tokens["manager"]
    window = {"date_from": "2025-06-01", "date_to": "2026-01-01", "currency": "CNY"}
    expected = {
        "date_from": _day(window["date_from"]),
        "date_to": _day(window["date_to"]),
        "currency": "CNY",
    }
    got = _get(api, token, "/api/v1/analytics/revenue", granularity="week", **window)
    assert got == reference.revenue("week", **expected)
    assert got and all(row["currency"] == "CNY" for row in got)
    assert _get(api, token, "/api/v1/analytics/overview", **window) == reference.overview(
        **expected
    )
    assert _get(api, token, "/api/v1/analytics/payments/rates", **window) == (
        reference.payment_rates(**expected)
    )
    bad = api.call("GET", "/api/v1/analytics/revenue", token=token, params={"currency": "yuan"})
    assert bad.status_code == 400 and "currency" in bad.json()["errors"]
    backwards = api.call(
        "GET",
        "/api/v1/analytics/revenue",
        token=token,
        params={"date_from": "2026-02-01", "date_to": "2026-01-01"},
    )
    assert backwards.status_code == 400 and "date_to" in backwards.json()["errors"]


def test_sales_cannot_read_analytics(stack, tokens):
    api = stack[0]
    for path in ("/api/v1/analytics/overview", "/api/v1/analytics/segments/lost/export.csv"):
        assert api.call("GET", path, token=tokens["sales"]).status_code == 403


def test_customer_figures_segments_and_their_paging(stack, tokens, reference):
    api, token = stack[0], tokens["analyst"]
    stats = reference.customer_stats()
    seen, cursor = [], None
    while True:
        page = _get(
            api,
            token,
            "/api/v1/analytics/customers",
            limit=7,
            **({"cursor": cursor} if cursor else {}),
        )
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    cny = {key: value for key, value in stats.items() if key[1] == "CNY"}
    assert len(seen) == len(cny)
    spent = [item["total_spent"] for item in seen]
    assert spent == sorted(spent, reverse=True)
    for item in seen:
        assert item["total_spent"] == cny[(item["customer_id"], "CNY")]["total_spent"]
    one = seen[0]["customer_id"]
    detail = _get(api, token, f"/api/v1/analytics/customers/{one}")
    assert {f["currency"] for f in detail["figures"]} == {
        currency for (customer, currency) in stats if customer == one
    }
    rfm = reference.rfm(AS_OF)
    sizes = _get(api, token, "/api/v1/analytics/segments", currency="CNY")
    expected_sizes = {}
    for (currency, _), row in rfm.items():
        if currency == "CNY":
            expected_sizes[row["segment"]] = expected_sizes.get(row["segment"], 0) + 1
    assert {s["segment"]: s["customers"] for s in sizes["segments"] if s["customers"]} == (
        expected_sizes
    )
    biggest = max(expected_sizes, key=expected_sizes.get)
    members = _get(api, token, f"/api/v1/analytics/segments/{biggest}/customers", limit=1000)
    assert sorted(m["customer_id"] for m in members["items"]) == sorted(
        customer
        for (currency, customer), row in rfm.items()
        if currency == "CNY" and row["segment"] == biggest
    )
    unknown = api.call("GET", "/api/v1/analytics/segments/vip/customers", token=token)
    assert unknown.status_code == 404


def test_segment_export_shows_contacts_only_to_whom_may_see_them(stack, tokens, reference):
    api = stack[0]
    rfm = reference.rfm(AS_OF)
    segment = max(
        {row["segment"] for (c, _), row in rfm.items() if c == "CNY"},
        key=lambda name: sum(1 for (c, _), r in rfm.items() if c == "CNY" and r["segment"] == name),
    )
    members = sorted(
        customer for (c, customer), row in rfm.items() if c == "CNY" and row["segment"] == segment
    )
    exports = {}
    for role in ("manager", "analyst"):
        response = api.call(
            "GET", f"/api/v1/analytics/segments/{segment}/export.csv", token=tokens[role]
        )
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [row["customer_id"] for row in rows] == members
        assert all(row["segment"] == segment and row["name"].startswith("客户") for row in rows)
        exports[role] = rows
    assert all("@example.com" in row["email"] for row in exports["manager"])
    assert all(row["email"] == "" for row in exports["analyst"])


def test_lifetime_value_freshness_and_metrics(stack, tokens):
    api, token = stack[0], tokens["manager"]
    clv = _get(
        api, token, "/api/v1/analytics/clv", as_of=AS_OF.isoformat(), unit="weeks", horizon=52
    )
    assert set(clv["bgnbd"]) == {"r", "alpha", "a", "b", "log_likelihood"}
    assert clv["bgnbd"]["log_likelihood"] < 0 and clv["customers"] > 20
    assert sum(b["customers"] for b in clv["distribution"]) == clv["customers"]
    top = [row["predicted_value"] for row in clv["top"]]
    assert top == sorted(top, reverse=True)
    page = _get(api, token, "/api/v1/analytics/clv/predictions", as_of=AS_OF.isoformat(), limit=5)
    assert len(page["items"]) == 5 and page["next_cursor"]
    freshness = _get(api, token, "/api/v1/analytics/freshness", window_seconds=3600)
    assert freshness["last_ms"] is not None
    assert freshness["events"] + freshness["by_path"].get("catch_up", {}).get("events", 0) > 0
    metrics = api.call("GET", "/api/v1/analytics/metrics", token=token)
    assert metrics.status_code == 200
    assert "cms_analytics_freshness_lag_seconds" in metrics.text


def test_an_admin_rebuilds_while_the_system_runs(stack, tokens, reference):
    api = stack[0]
    before = _get(api, tokens["admin"], "/api/v1/analytics/overview")
    refused = api.call("POST", "/api/v1/analytics/rebuild", token=tokens["manager"], json={})
    assert refused.status_code == 403
    missing = api.call("POST", "/api/v1/analytics/rebuild", token=tokens["admin"], json={})
    assert missing.status_code == 400
    started = api.call(
        "POST", "/api/v1/analytics/rebuild", token=tokens["admin"], json={"confirm": True}
    )
    assert started.status_code == 202, started.text
    location = started.headers["Location"].removeprefix("/api/v1")
    deadline = time.monotonic() + 120
    while True:
        state = _get(api, tokens["admin"], "/api/v1" + location)
        if state["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert state["status"] == "succeeded", state
    assert state["events"] > 0
    assert (
        _get(api, tokens["admin"], "/api/v1/analytics/overview") == before == (reference.overview())
    )
    assert datetime.fromisoformat(state["finished_at"]) <= datetime.now(UTC)
