"""Browser flows of orders and products: the catalogue managed from its page, an order written
with a customer and products (totals shown before it is placed), its detail page with the
actions its state allows, the status changing live without a reload, the history, and the
list's filters; in Chinese and English."""

# ruff: noqa: F811 - pytest fixtures imported from ui_flows are the tests' arguments

from __future__ import annotations

import re
import time
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


def pick(page: Page, select, text: str) -> None:
    """Choose ``text`` in an Element Plus remote select (type, then click the option)."""
    select.click()
    select.locator("input").fill(text)
    page.locator(".el-select-dropdown__item:visible", has_text=text).first.click()


def make_product(page: Page, **extra) -> dict:
    sku = f"UI-{uuid.uuid4().hex[:8]}"
    body = {"sku": sku, "name": f"Tea {sku}", "price": 1999, "currency": "CNY", **extra}
    created = api_as_page_user(page, "POST", "/api/v1/products", body)
    assert created["status"] == 201, created
    return created["body"]


def test_manager_manages_the_catalogue(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    expect(page.get_by_test_id("nav-products")).to_have_text("产品目录")
    page.get_by_test_id("nav-products").click()
    expect(page.get_by_test_id("products-page")).to_be_visible()

    sku = f"BLC-{uuid.uuid4().hex[:6]}"
    page.get_by_test_id("product-create").click()
    dialog = page.get_by_test_id("product-dialog")
    dialog.get_by_test_id("product-sku").fill(sku)
    dialog.get_by_test_id("product-name").fill("碧螺春 250g")
    dialog.get_by_test_id("product-category").fill("绿茶")
    dialog.get_by_test_id("product-price").fill("88.50")
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/products") and r.request.method == "POST"
    ) as created:
        dialog.get_by_test_id("product-save").click()
    assert created.value.status == 201
    assert created.value.request.post_data_json["price"] == 8850  # yuan typed, fen sent

    page.get_by_test_id("products-search").fill(sku)
    row = page.get_by_test_id("products-table").locator("tr", has_text=sku)
    expect(row).to_contain_text("碧螺春 250g")
    expect(row).to_contain_text("88.50")

    # A new price: recorded as a change, shown in the list.
    page.get_by_test_id(f"product-edit-{sku}").click()
    dialog.get_by_test_id("product-price").fill("90")
    with page.expect_response(lambda r: "/api/v1/products/" in r.url) as changed:
        dialog.get_by_test_id("product-save").click()
    assert changed.value.status == 200 and changed.value.request.method == "PATCH"
    expect(row).to_contain_text("90.00")


def test_order_written_placed_and_followed_live(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    name = f"Order Buyer {uuid.uuid4().hex[:6]}"
    create_customer_via_api(page, {"kind": "person", "name": name, "force": True})
    tea = make_product(page)

    page.get_by_test_id("nav-orders").click()
    expect(page.get_by_test_id("orders-page")).to_be_visible()
    page.get_by_test_id("order-create").click()
    expect(page.get_by_test_id("order-create-page")).to_be_visible()

    pick(page, page.get_by_test_id("customer-select"), name)
    pick(page, page.get_by_test_id("line-product-0"), tea["sku"])
    page.get_by_test_id("line-quantity-0").locator("input").fill("3")
    page.get_by_test_id("line-quantity-0").locator("input").blur()
    page.get_by_test_id("order-discount").fill("0.97")
    # 3 * 19.99 - 0.97 = 59.00: the preview follows the server's rule before anything is sent.
    expect(page.get_by_test_id("order-preview-total")).to_contain_text("59.00")

    page.get_by_test_id("order-address-toggle").click()
    page.get_by_test_id("address-city").fill("Hangzhou")
    page.get_by_test_id("order-notes").fill("Leave at the door")
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/orders") and r.request.method == "POST"
    ) as placed:
        page.get_by_test_id("order-submit").click()
    assert placed.value.status == 201, placed.value.text()
    order = placed.value.json()
    assert order["total"] == 5900

    expect(page).to_have_url(re.compile(rf"/orders/{order['id']}$"))
    expect(page.get_by_test_id("order-number")).to_have_text(order["number"])
    status = page.get_by_test_id("order-header").get_by_test_id("order-status")
    expect(status).to_have_attribute("data-status", "placed")
    expect(page.get_by_test_id("order-total")).to_contain_text("59.00")
    expect(page.get_by_test_id("order-address-text")).to_contain_text("Hangzhou")
    # A placed, unpaid order can be cancelled or edited, not fulfilled.
    actions = page.get_by_test_id("order-actions")
    expect(actions.get_by_test_id("order-action-cancel")).to_be_visible()
    expect(actions.get_by_test_id("order-action-fulfil")).to_have_count(0)
    expect(page.get_by_test_id("order-edit-lines")).to_be_visible()

    # Someone else cancels the order (another client of the API): this page shows it without
    # a reload, through the changes feed.
    page.evaluate("window.__sameDocument = true")
    cancelled = api_as_page_user(
        page, "POST", f"/api/v1/orders/{order['id']}/cancel", {"reason": "customer called"}
    )
    assert cancelled["status"] == 200, cancelled
    expect(status).to_have_attribute("data-status", "cancelled")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    expect(actions.get_by_test_id("order-action-cancel")).to_have_count(0)
    history = page.get_by_test_id("order-history")
    expect(history).to_contain_text("Cancelled")
    expect(history).to_contain_text("customer called")

    # The list finds it by status and customer.
    page.get_by_test_id("nav-orders").click()
    pick(page, page.get_by_test_id("orders-page").get_by_test_id("customer-select"), name)
    row = page.get_by_test_id("orders-table").locator("tr", has_text=order["number"])
    expect(row).to_contain_text("Cancelled")
    expect(row).to_contain_text("59.00")
    expect(row).to_contain_text(tea["name"])  # what was bought, by name

    # The customer's page lists the order, and its timeline shows it (from the orders
    # service's events, through the customers service).
    page.goto(f"/customers/{order['customer_id']}?tab=orders")
    expect(page.get_by_test_id("customer-orders")).to_contain_text(order["number"])
    page.goto(f"/customers/{order['customer_id']}?tab=timeline")
    activity = page.get_by_test_id("timeline-activity").filter(has_text=order["number"])
    expect(activity.first).to_be_visible(timeout=40_000)  # the catch-up runs every 30 s at most


def test_orders_in_chinese_with_a_refused_action(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    customer = create_customer_via_api(
        page, {"kind": "person", "name": f"订单客户{uuid.uuid4().hex[:4]}", "force": True}
    )
    tea = make_product(page, price=1000)
    placed = api_as_page_user(
        page,
        "POST",
        "/api/v1/orders",
        {"customer_id": customer["id"], "lines": [{"product_id": tea["id"], "quantity": 2}]},
    )
    assert placed["status"] == 201, placed
    order = placed["body"]
    page.goto(f"/orders/{order['id']}")
    expect(page.get_by_test_id("order-header")).to_contain_text("已下单")
    expect(page.get_by_test_id("order-action-cancel")).to_have_text("取消订单")

    # The API refuses an action the state does not allow, naming the state.
    refused = api_as_page_user(page, "POST", f"/api/v1/orders/{order['id']}/fulfil", {})
    assert refused["status"] == 422 and refused["body"]["state"] == "placed"

    page.get_by_test_id("order-action-cancel").click()
    box = page.locator(".el-message-box")
    # "返回" / "确认取消订单", not "取消" beside "取消订单"
    expect(box.locator(".el-button--primary")).to_have_text("确认取消订单")
    expect(box.get_by_role("button", name="返回")).to_be_visible()
    expect(box.get_by_role("button", name="取消", exact=True)).to_have_count(0)
    page.locator(".el-message-box input").fill("重复下单")
    page.locator(".el-message-box .el-button--primary").click()
    expect(page.get_by_test_id("order-header")).to_contain_text("已取消")
    expect(page.get_by_test_id("order-history")).to_contain_text("重复下单")

    page.get_by_test_id("nav-orders").click()
    expect(page.get_by_test_id("orders-page")).to_contain_text("订单管理")
    page.get_by_test_id("orders-search").fill(order["number"])
    row = page.get_by_test_id("orders-table").locator("tr", has_text=order["number"])
    expect(row).to_contain_text("已取消")
    expect(row).to_contain_text("20.00")


def _until(page: Page, path: str, ready, what: str) -> dict:
    """GET ``path`` as the page's user until ``ready(body)`` (events take a moment)."""
    deadline = time.monotonic() + 30
    while True:
        answer = api_as_page_user(page, "GET", path)
        if answer["status"] == 200 and ready(answer["body"]):
            return answer["body"]
        assert time.monotonic() < deadline, f"{what}: {answer}"
        time.sleep(0.3)


def test_sales_user_is_not_offered_a_refunding_cancel_nor_sees_others_orders(
    page: Page, live_stack
):
    login(page, live_stack.admin_email, live_stack.admin_password)
    email = f"sales-{uuid.uuid4().hex[:8]}@example.com"
    password = "Sales-Passw0rd-2024!"
    user = create_user_via_api(page, email, "Sally Sales", "sales", password)
    mine = create_customer_via_api(
        page,
        {
            "kind": "person",
            "name": f"销售客户{uuid.uuid4().hex[:4]}",
            "force": True,
            "owner_id": user["id"],
        },
    )
    others = create_customer_via_api(
        page, {"kind": "person", "name": f"他人客户{uuid.uuid4().hex[:4]}", "force": True}
    )
    tea = make_product(page, price=1000)
    placed = {}
    for key, customer in (("mine", mine), ("others", others)):
        answer = api_as_page_user(
            page,
            "POST",
            "/api/v1/orders",
            {"customer_id": customer["id"], "lines": [{"product_id": tea["id"], "quantity": 2}]},
        )
        assert answer["status"] == 201, answer
        placed[key] = answer["body"]
    order = placed["mine"]
    # part of it paid in cash (the payments service learns of the order from its event)
    _until(page, f"/api/v1/payments?order_id={order['id']}", lambda b: b["order"], "payments")
    cash = api_as_page_user(
        page,
        "POST",
        "/api/v1/payments/manual",
        {"order_id": order["id"], "method": "cash", "amount": 500, "currency": "CNY"},
    )
    assert cash["status"] in (200, 201), cash
    sign_out(page)

    login(page, email, password)
    switch_language(page, "zh-CN")
    _until(page, f"/api/v1/orders/{order['id']}", lambda b: b["paid_amount"] > 0, "paid")
    page.goto(f"/orders/{order['id']}")
    expect(page.get_by_test_id("order-header")).to_contain_text("部分付款")
    # cancelling it would refund the cash: a manager's job, said instead of a refused button
    expect(page.get_by_test_id("order-refund-hint")).to_contain_text("经理")
    expect(page.get_by_test_id("order-action-cancel")).to_have_count(0)
    expect(page.get_by_test_id("order-action-return")).to_have_count(0)

    # another user's order, opened by its address: a not-found page in words, not "order not found"
    page.goto(f"/orders/{placed['others']['id']}")
    missing = page.get_by_test_id("record-not-found")
    expect(missing).to_contain_text("未找到该订单")
    expect(page.get_by_test_id("order-page")).not_to_contain_text("order not found")
    page.goto(f"/customers/{others['id']}")
    expect(page.get_by_test_id("record-not-found")).to_contain_text("未找到该客户")


def test_order_import_page_shows_its_column_rules_in_both_languages(page: Page, live_stack):
    # A message vue-i18n cannot compile (a bare "@" in "SKU*数量@单价") threw while rendering and
    # left this page blank; the console said only "SyntaxError: 10".
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    page.get_by_test_id("nav-orders").click()
    expect(page.get_by_test_id("orders-page")).to_be_visible()
    page.goto("/orders/imports")
    imports = page.get_by_test_id("order-import-page")
    expect(imports.locator("h1")).to_have_text("导入历史订单")
    expect(page.get_by_test_id("order-import-rules")).to_contain_text("SKU*数量@单价")
    expect(imports).to_contain_text("external_id,customer_id,placed_at")
    switch_language(page, "en")
    expect(page.get_by_test_id("order-import-rules")).to_contain_text("SKU*quantity@unit price")
    assert not errors, errors

    # The audit log names order actions in words, as it does customer actions (it showed the
    # raw code orders.place and the resource type "order").
    switch_language(page, "zh-CN")
    page.get_by_test_id("nav-audit").click()
    action = page.get_by_test_id("audit-action-filter")
    action.click()
    action.locator("input").fill("下单")
    page.locator(".el-select-dropdown__item:visible", has_text="orders.place").first.click()
    page.get_by_test_id("audit-search").click()
    table = page.get_by_test_id("audit-table")
    expect(table.locator("tbody tr").first).to_contain_text("下单")
    expect(table.locator("tbody tr").first).to_contain_text("订单 #")
    assert not errors, errors


def test_ticked_but_empty_delivery_address_is_not_sent(page: Page, live_stack):
    # Ticking 填写收货地址 fills in the country (CN); with nothing else typed the order was saved
    # with an address that read just "CN".
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    name = f"地址客户{uuid.uuid4().hex[:4]}"
    create_customer_via_api(page, {"kind": "person", "name": name, "force": True})
    tea = make_product(page)
    page.goto("/orders/new")
    expect(page.get_by_test_id("order-create-page")).to_be_visible()
    pick(page, page.get_by_test_id("customer-select"), name)
    pick(page, page.get_by_test_id("line-product-0"), tea["sku"])
    page.get_by_test_id("order-address-toggle").click()
    expect(page.get_by_test_id("address-street")).to_be_visible()
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/orders") and r.request.method == "POST"
    ) as placed:
        page.get_by_test_id("order-submit").click()
    assert placed.value.status == 201, placed.value.text()
    assert placed.value.request.post_data_json["delivery_address"] is None
    assert placed.value.json()["delivery_address"] is None
    expect(page.get_by_test_id("order-number")).to_have_text(placed.value.json()["number"])
    expect(page.get_by_test_id("order-address-text")).to_have_text("—")
