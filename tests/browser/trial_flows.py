"""Browser flows of what a new user reported (the operations manager of a B2B distributor,
English UI, a 1280x800 laptop and a 768 px wide tablet): the layout at 768 px, tables that fit
at 1280 px in both languages, custom attributes defined by an admin and filled in under their
labels, the sign-in page in the browser's language, a new order delivered to the shipping
address, every period on the revenue chart, a warning on a lifetime-value fit of few customers
and the top customers by name, and the payment list's CSV export."""

# ruff: noqa: F811 - pytest fixtures imported from ui_flows are the tests' arguments

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect
from ui_flows import (  # noqa: F401 - fixtures
    api_as_page_user,
    browser,
    create_customer_via_api,
    create_user_via_api,
    live_stack,
    login,
    page,
    switch_language,
)

LONG_DOMAIN = "verylongdistributordomain.example.com"


def _product(page: Page, price: int = 123456) -> dict:
    body = {
        "sku": f"TR-{uuid.uuid4().hex[:8]}",
        "name": "Industrial widget assembly kit",
        "price": price,
        "currency": "CNY",
        "category": "Hardware",
    }
    created = api_as_page_user(page, "POST", "/api/v1/products", body)
    assert created["status"] == 201, created
    return created["body"]


def _order(page: Page, customer_id: str, product: dict, **extra) -> dict:
    body = {"customer_id": customer_id, "lines": [{"product_id": product["id"], "quantity": 3}]}
    placed = api_as_page_user(page, "POST", "/api/v1/orders", {**body, **extra})
    assert placed["status"] == 201, placed
    return placed["body"]


def _retry(page: Page, call, ok, what: str, seconds: float = 20):
    """The payments service learns of an order from its event, a moment after it is placed."""
    deadline = time.monotonic() + seconds
    while True:
        answer = call()
        if ok(answer):
            return answer
        assert time.monotonic() < deadline, f"{what}: {answer}"
        page.wait_for_timeout(300)


def _company(page: Page, marker: str, **extra) -> dict:
    return create_customer_via_api(
        page,
        {
            "kind": "company",
            "name": f"Northwind Industrial Supplies {marker}",
            "emails": [{"address": f"procurement.department.{marker}@{LONG_DOMAIN}"}],
            "force": True,
            **extra,
        },
    )


def _overflow(page: Page) -> dict:
    """How far the page and its content reach past the window, and the rightmost edge of the
    order page's panels (0 when none is shown)."""
    return page.evaluate(
        """() => {
            const main = document.querySelector('.content')
            const right = (id) => {
              const el = document.querySelector(`[data-testid=${id}]`)
              return el ? Math.round(el.getBoundingClientRect().right) : 0
            }
            return {
              page: document.documentElement.scrollWidth - window.innerWidth,
              content: main.scrollWidth - main.clientWidth,
              totals: right('order-totals'),
              address: right('order-address-text'),
              summary: right('payments-summary'),
            }
        }"""
    )


CLIPPED_JS = """(testid) => {
    const table = document.querySelector(`[data-testid=${testid}]`)
    const cut = (el) => el.scrollWidth > el.clientWidth + 1
    const cells = [...table.querySelectorAll('.el-table__cell .cell, .el-tag__content')]
      .filter(cut).map((c) => c.textContent.trim())
    // a table wider than its card scrolls sideways: its last columns are out of sight
    const wraps = [...table.querySelectorAll('.el-table__body-wrapper .el-scrollbar__wrap')]
      .filter((w) => !w.closest('.el-table__expanded-cell')).filter(cut)
      .map((w) => `scrolls sideways by ${w.scrollWidth - w.clientWidth}px`)
    return [...cells, ...wraps]
}"""


def test_tablet_768_collapses_the_sidebar_and_the_order_page_fits(page: Page, live_stack):
    page.set_viewport_size({"width": 768, "height": 1024})
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    sidebar = page.locator("aside.sidebar")
    # below 1024 px the menu is its icons only, and the user can still open it
    assert sidebar.bounding_box()["width"] <= 64, sidebar.bounding_box()
    expect(sidebar).to_have_class(re.compile(r"\bcollapsed\b"))
    page.get_by_test_id("sidebar-toggle").click()
    expect(sidebar).not_to_have_class(re.compile(r"\bcollapsed\b"))
    expect(page.get_by_test_id("nav-customers")).to_contain_text("Customers")
    page.get_by_test_id("nav-orders").click()  # it folds again on the next page
    expect(sidebar).to_have_class(re.compile(r"\bcollapsed\b"))

    marker = uuid.uuid4().hex[:6]
    customer = _company(page, marker)
    product = _product(page)
    order = _order(
        page,
        customer["id"],
        product,
        lines=[{"product_id": product["id"], "quantity": 3, "line_discount": 1000}],
        order_discount=500,
        tax_rate=1300,
        delivery_address={
            "recipient": "Warehouse receiving dock manager",
            "country": "CN",
            "city": "Hangzhou",
            "street": "99 Warehouse Street, Building 7, Logistics Park North Gate",
        },
    )
    page.goto(f"/orders/{order['id']}")
    expect(page.get_by_test_id("order-totals")).to_be_visible()
    expect(page.get_by_test_id("payments-summary")).to_be_visible()
    # the lines table scrolls inside its card; totals, address and payments stay on screen
    reach = _overflow(page)
    assert reach["page"] <= 0 and reach["content"] <= 0, reach
    for panel in ("totals", "address", "summary"):
        assert 0 < reach[panel] <= 768, reach

    page.goto("/analytics")
    expect(page.get_by_test_id("analytics-kpis")).to_be_visible()
    reach = _overflow(page)
    assert reach["page"] <= 0 and reach["content"] <= 0, reach


def test_tables_fit_a_1280_px_laptop_in_both_languages(page: Page, live_stack):
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_stack.admin_email, live_stack.admin_password)
    marker = uuid.uuid4().hex[:6]
    create_user_via_api(
        page,
        f"regional.operations.manager.{marker}@{LONG_DOMAIN}",
        f"Operations Manager {marker}",
        "manager",
        "Distributor-Passw0rd-2026!",
    )
    customer = _company(page, marker, phones=[{"number": "+8613800138000"}])
    order = _order(page, customer["id"], _product(page, price=5000))
    # a cash payment: "No provider report (staff recorded)" on the reconciliation page
    _retry(
        page,
        lambda: api_as_page_user(
            page,
            "POST",
            "/api/v1/payments/manual",
            {"order_id": order["id"], "method": "cash", "amount": 1000, "currency": "CNY"},
        ),
        lambda answer: answer["status"] == 201,
        "record a cash payment",
    )
    pages = [
        ("/users", "users-table", f"regional.operations.manager.{marker}"),
        (f"/customers?q={marker}", "customers-table", marker),
        ("/payments/reconciliation", "reconciliation-table", None),
    ]
    for language in ("en", "zh-CN"):
        switch_language(page, language)
        for path, testid, text in pages:
            page.goto(path)
            if testid == "users-table":
                page.get_by_test_id("users-search").fill(marker)
            table = page.get_by_test_id(testid)
            if text:
                expect(table).to_contain_text(text)
            else:
                expect(table.locator("[data-status=no_provider_report]").first).to_be_visible()
            page.wait_for_timeout(300)  # the columns' widths settle after the rows
            clipped = page.evaluate(CLIPPED_JS, testid)
            assert clipped == [], (language, path, clipped)


def test_admin_defines_attributes_and_the_profile_shows_their_labels(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    marker = uuid.uuid4().hex[:6]
    licence, region = f"licence_no_{marker}", f"region_{marker}"

    # Administration > Customer attributes: a text one, its key following its label
    page.get_by_test_id("nav-customer-attributes").click()
    expect(page.get_by_role("heading", name="Customer attributes")).to_be_visible()
    page.get_by_test_id("attribute-create").click()
    dialog = page.get_by_test_id("attribute-dialog")
    dialog.locator("input[name=attribute-label]").fill(f"Licence no {marker}")
    expect(dialog.locator("input[name=attribute-key]")).to_have_value(licence)
    page.get_by_test_id("attribute-save").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id(f"attribute-row-{licence}")).to_have_text(f"Licence no {marker}")

    # a choice, its options typed in
    page.get_by_test_id("attribute-create").click()
    dialog.locator("input[name=attribute-label]").fill(f"Region {marker}")
    page.get_by_test_id("attribute-type").click()
    page.get_by_test_id("attribute-type-choice").click()
    dialog.locator("textarea[name=attribute-options]").fill("North\nSouth\n")
    page.get_by_test_id("attribute-save").click()
    expect(dialog).to_be_hidden()
    row = page.get_by_test_id("attributes-table").locator("tr", has_text=region)
    expect(row).to_contain_text("Choice")
    expect(row).to_contain_text("North")
    expect(row).to_contain_text("South")
    defined = api_as_page_user(page, "GET", "/api/v1/customer-attributes")["body"]["items"]
    assert {"key": region, "type": "choice", "label": f"Region {marker}"}.items() <= next(
        d for d in defined if d["key"] == region
    ).items(), defined
    assert next(d for d in defined if d["key"] == region)["options"] == ["North", "South"]

    # its label changed (the key and the type stay)
    page.get_by_test_id(f"attribute-edit-{region}").click()
    expect(dialog.locator("input[name=attribute-key]")).to_be_disabled()
    dialog.locator("input[name=attribute-label]").fill(f"Sales region {marker}")
    page.get_by_test_id("attribute-save").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id(f"attribute-row-{region}")).to_have_text(f"Sales region {marker}")

    # values filled in on the customer's page, shown under their labels, not their keys
    customer = _company(page, marker)
    page.goto(f"/customers/{customer['id']}")
    page.get_by_test_id("attributes-edit").click()
    values = page.get_by_test_id("attributes-dialog")
    values.get_by_test_id(f"attribute-input-{licence}").fill("ZJ-2026-0042")
    values.get_by_test_id(f"attribute-input-{region}").click()
    page.locator(".el-select-dropdown__item:visible", has_text="South").click()
    page.get_by_test_id("attributes-save").click()
    expect(values).to_be_hidden()
    shown = page.get_by_test_id("profile-attributes")
    expect(shown).to_contain_text(f"Licence no {marker}")
    expect(shown).to_contain_text(f"Sales region {marker}")
    expect(shown).not_to_contain_text(licence)
    expect(page.get_by_test_id(f"attribute-{licence}")).to_have_text("ZJ-2026-0042")
    expect(page.get_by_test_id(f"attribute-{region}")).to_have_text("South")
    saved = api_as_page_user(page, "GET", f"/api/v1/customers/{customer['id']}")["body"]
    assert saved["attributes"] == {licence: "ZJ-2026-0042", region: "South"}, saved


def test_sign_in_page_follows_the_browser_language_until_one_is_chosen(browser, live_stack):
    for locale, text in (
        ("en-US", "Sign in"),
        ("zh-CN", "登录"),
        ("zh-TW", "登录"),
        ("fr", "Sign in"),
    ):
        context = browser.new_context(base_url=live_stack.url, locale=locale)
        try:
            page = context.new_page()
            page.goto("/login")
            expect(page.get_by_test_id("login-submit")).to_have_text(text)
            expect(page.locator("html")).to_have_attribute(
                "lang", "en" if text == "Sign in" else "zh-CN"
            )
            if locale == "en-US":
                # a choice made in this browser wins over the browser's language
                page.get_by_test_id("language-switch").click()
                page.get_by_test_id("lang-zh-CN").click()
                page.reload()
                expect(page.get_by_test_id("login-submit")).to_have_text("登录")
        finally:
            context.close()


def test_new_order_is_delivered_to_the_shipping_address(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    marker = uuid.uuid4().hex[:6]
    customer = _company(
        page,
        marker,
        addresses=[
            {"label": "work", "country": "CN", "city": "Shanghai", "street": "1 Head Office Rd"},
            {
                "label": "shipping",
                "country": "CN",
                "city": "Hangzhou",
                "street": f"{marker} Warehouse St",
            },
        ],
    )
    assert customer["addresses"][0]["primary"], customer["addresses"]  # the office is primary
    page.goto(f"/orders/new?customer={customer['id']}")
    expect(page.get_by_test_id("address-street")).to_have_value(f"{marker} Warehouse St")
    expect(page.get_by_test_id("address-city")).to_have_value("Hangzhou")


def test_revenue_chart_has_every_period_and_the_lifetime_value_warns_and_names(
    page: Page, live_stack
):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    marker = uuid.uuid4().hex[:6]
    customer = _company(page, marker)

    def revenue(route):  # revenue in January and April only
        rows = [
            {"period": p, "currency": "CNY", "captured": 10000, "refunded": 0, "net": 10000}
            for p in ("2026-01-01", "2026-04-01")
        ]
        route.fulfill(json=rows)

    def clv(route):  # what the API answers with a handful of customers: a degenerate fit
        prediction = {
            "customer_id": customer["id"],
            "frequency": 1,
            "recency": 2.0,
            "age": 10.0,
            "expected_purchases": 3.2,
            "p_alive": 1.0,
            "expected_order_value": 5000,
            "predicted_value": 16000,
        }
        route.fulfill(
            json={
                "currency": "CNY",
                "as_of": "2026-11-28",
                "unit": "weeks",
                "horizon": 52,
                "customers": 4,
                "repeat_customers": 2,
                "reliable": False,
                "warnings": [
                    "fitted on 2 customers with a repeat purchase; at least 30 are needed",
                    "the purchase model is degenerate (r, alpha at the optimiser's bound)",
                ],
                "bgnbd": {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0, "log_likelihood": -3.0},
                "gamma_gamma": {"p": 1.0, "q": 2.0, "v": 100.0, "v_major_units": 1.0},
                "total_predicted_value": 16000,
                "distribution": [{"from": 0, "to": 20000, "customers": 4}],
                "top": [prediction],
            }
        )

    page.route(re.compile(r"/api/v1/analytics/revenue\?"), revenue)
    page.route(re.compile(r"/api/v1/analytics/clv\?"), clv)
    page.goto("/analytics")
    chart = page.get_by_test_id("chart-revenue")
    expect(chart).to_have_attribute("data-periods", "2026-01,2026-02,2026-03,2026-04")
    expect(chart).to_have_attribute("data-smooth", "false")
    warning = page.get_by_test_id("clv-warning")
    expect(warning).to_contain_text("2 customers with a repeat purchase")
    expect(warning).to_contain_text("degenerate")
    top = page.get_by_test_id("clv-top").locator("a").first
    expect(top).to_have_text(f"Northwind Industrial Supplies {marker}")
    top.click()
    expect(page.get_by_test_id("profile-name")).to_have_text(
        f"Northwind Industrial Supplies {marker}"
    )


def test_payments_list_exports_its_filters_as_csv(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    page.goto("/payments")
    page.get_by_test_id("payments-filter-method").click()
    page.locator(".el-select-dropdown__item:visible", has_text="Cash").click()
    with page.expect_request(re.compile(r"/api/v1/payments/export\.csv")) as asked:
        with page.expect_download() as download:
            page.get_by_test_id("payments-export").click()
    assert "method=cash" in asked.value.url, asked.value.url
    assert download.value.suggested_filename == "payments.csv"
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) >= 2 and "cash" in lines[1], lines[:2]
