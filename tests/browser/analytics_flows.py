"""Browser flow of the analytics dashboard: an admin records a cash payment for a new order,
opens 客户信息分析 / Analytics, sees the revenue, payment-method, cohort and segment charts
draw (offline: the bundled ECharts), rebuilds the projections from the page, exports a
segment as CSV, and reads the dashboard in English; an analyst opens it too, a sales user may
not."""

from __future__ import annotations

import json
import re
import uuid

from playwright.sync_api import Page, expect
from ui_flows import (  # noqa: F401 - fixtures
    api_as_page_user,
    browser,
    create_customer_via_api,
    create_user_via_api,
    live_stack,
    login,
    page,
    sign_out,
    switch_language,
)

PASSWORD = "Analytics-Flow-Pass-42"


def _paid_order(page: Page) -> dict:  # noqa: F811
    customer = create_customer_via_api(
        page, {"kind": "person", "name": f"分析客户 {uuid.uuid4().hex[:6]}", "force": True}
    )
    product = api_as_page_user(
        page,
        "POST",
        "/api/v1/products",
        {
            "sku": f"UI-AN-{uuid.uuid4().hex[:8]}",
            "name": "碧螺春",
            "category": "茶叶",
            "price": 8800,
            "currency": "CNY",
        },
    )
    assert product["status"] == 201, product
    order = api_as_page_user(
        page,
        "POST",
        "/api/v1/orders",
        {
            "customer_id": customer["id"],
            "lines": [{"product_id": product["body"]["id"], "quantity": 1}],
        },
    )
    assert order["status"] == 201, order
    paid = api_as_page_user(
        page,
        "POST",
        "/api/v1/payments/manual",
        {
            "order_id": order["body"]["id"],
            "method": "cash",
            "amount": order["body"]["total"],
            "currency": "CNY",
        },
    )
    assert paid["status"] == 201, paid
    return order["body"]


def _chart_drawn(page: Page, testid: str) -> None:  # noqa: F811
    expect(page.get_by_test_id(testid).locator("canvas").first).to_be_visible()


def test_dashboard_charts_rebuild_export_and_english(page: Page, live_stack):  # noqa: F811
    login(page, live_stack.admin_email, live_stack.admin_password)
    _paid_order(page)
    page.get_by_test_id("nav-analytics").click()
    expect(page.get_by_role("heading", name="客户信息分析")).to_be_visible()
    # the payment reaches the projections through RabbitMQ: refresh until it shows
    purchases = page.get_by_test_id("kpi-purchases").locator(".kpi-value")
    for _ in range(60):
        if purchases.inner_text().strip() not in ("0", ""):
            break
        page.wait_for_timeout(500)
        page.get_by_test_id("analytics-refresh").click()
    assert purchases.inner_text().strip() not in ("0", "")
    _chart_drawn(page, "chart-revenue")
    _chart_drawn(page, "chart-methods")
    _chart_drawn(page, "chart-cohorts")
    _chart_drawn(page, "chart-rates")
    expect(page.get_by_test_id("analytics-freshness")).to_contain_text("p50")

    page.get_by_test_id("analytics-rebuild").click()
    page.locator(".el-message-box__btns .el-button--primary").click()
    expect(page.get_by_text("已从")).to_be_visible(timeout=60_000)
    _chart_drawn(page, "chart-segments")
    table = page.get_by_test_id("segments-table")
    expect(table).to_contain_text("重要价值客户")
    expect(page.get_by_test_id("segments-as-of")).to_contain_text("评分日期")
    enabled = table.locator("button:not([disabled])").first
    with page.expect_download() as download:
        enabled.click()
    path = download.value.path()
    with open(path, encoding="utf-8-sig") as handle:
        header = handle.readline()
    assert header.startswith("customer_id,segment,r,f,m")

    switch_language(page, "en")
    expect(page.get_by_role("heading", name="Customer analytics")).to_be_visible()
    expect(page.get_by_test_id("segments-table")).to_contain_text("Champions")
    _chart_drawn(page, "chart-revenue")


def test_analysts_open_the_dashboard_and_sales_cannot(page: Page, live_stack):  # noqa: F811
    login(page, live_stack.admin_email, live_stack.admin_password)
    emails, ids = {}, {}
    for role in ("analyst", "sales"):
        emails[role] = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        ids[role] = create_user_via_api(page, emails[role], f"{role.title()} 同事", role, PASSWORD)[
            "id"
        ]
    owned = f"分析看客户 {uuid.uuid4().hex[:6]}"
    made = api_as_page_user(
        page, "POST", "/api/v1/customers", {"name": owned, "owner_id": ids["sales"], "force": True}
    )
    assert made["status"] == 201, made
    sign_out(page)
    login(page, emails["analyst"], PASSWORD)
    # an analyst may not read users, but sees a customer's owner by name
    page.goto(f"/customers?q={owned}")
    expect(page.get_by_test_id("customers-table")).to_contain_text("Sales 同事")
    # Right after the first orders the segments are not scored yet (every minute): as_of null
    # and zeros, said in words rather than as a table of zeros.
    unscored = {
        "currency": "CNY",
        "as_of": None,
        "segments": [{"segment": "champions", "customers": 0, "monetary": 0}],
    }
    page.route(
        re.compile(r"/api/v1/analytics/segments\?"),
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(unscored)
        ),
    )
    page.get_by_test_id("nav-analytics").click()
    expect(page.get_by_test_id("analytics-kpis")).to_be_visible()
    expect(page.get_by_test_id("segments-pending")).to_contain_text("细分每分钟更新，尚未计算")
    expect(page.get_by_test_id("segments-table")).to_have_count(0)
    expect(page.get_by_test_id("analytics-rebuild")).to_have_count(0)
    sign_out(page)
    login(page, emails["sales"], PASSWORD)
    expect(page.get_by_test_id("nav-analytics")).to_have_count(0)
    page.goto("/analytics")
    expect(page.get_by_test_id("analytics-page")).to_have_count(0)
