"""Browser flows of payments: a manager takes payments of an order through the sandbox
(a card that needs the customer's confirmation, an Alipay QR code scanned in simulation),
records cash for the rest, refunds part of it after confirming, sees it in Chinese, and opens
the reconciliation page and its CSV export, and the list of every payment."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect
from ui_flows import (  # noqa: F401 - fixtures
    api_as_page_user,
    browser,
    create_customer_via_api,
    live_stack,
    login,
    page,
    switch_language,
)


def _order(page: Page) -> dict:  # noqa: F811
    customer = create_customer_via_api(
        page, {"kind": "person", "name": f"付款人 {uuid.uuid4().hex[:6]}", "force": True}
    )
    product = api_as_page_user(
        page,
        "POST",
        "/api/v1/products",
        {
            "sku": f"UI-PAY-{uuid.uuid4().hex[:8]}",
            "name": "龙井茶",
            "price": 5000,
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
            "lines": [{"product_id": product["body"]["id"], "quantity": 2}],
        },
    )
    assert order["status"] == 201, order
    return order["body"]


def _follow_until(page: Page, status: str) -> None:  # noqa: F811
    dialog = page.get_by_test_id("payment-follow")
    expect(dialog.locator(f"[data-status={status}]")).to_be_visible()
    page.get_by_test_id("payment-follow-close").click()
    expect(dialog).to_be_hidden()


def test_take_confirm_scan_record_and_refund_payments_of_an_order(page: Page, live_stack):  # noqa: F811
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    order = _order(page)
    total = order["total"]
    page.goto(f"/orders/{order['id']}")  # the order's page shows its payments
    panel = page.get_by_test_id("order-payments")
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("payments-outstanding")).to_contain_text(f"{total / 100:,.2f}")

    # a sandbox card that needs the customer's confirmation
    page.get_by_test_id("payments-take").click()
    dialog = page.get_by_test_id("payment-dialog")
    expect(dialog.get_by_test_id("sandbox-cards")).to_contain_text("4000 0025 0000 3155")
    page.get_by_test_id("payment-amount").fill("30.00")
    page.get_by_test_id("card-number").fill("4000 0025 0000 3155")
    page.get_by_test_id("card-expiry").fill("12/39")
    page.get_by_test_id("card-cvc").fill("123")
    page.get_by_test_id("payment-submit").click()
    expect(page.get_by_test_id("sandbox-confirm-step")).to_be_visible()
    page.get_by_test_id("sandbox-confirm").click()
    _follow_until(page, "captured")

    # an over-payment is refused with words, not a crash
    page.get_by_test_id("payments-take").click()
    page.get_by_test_id("payment-method-alipay").click()
    page.get_by_test_id("payment-amount").fill(f"{total:.2f}")
    page.get_by_test_id("payment-submit").click()
    expect(dialog.locator(".el-alert")).to_contain_text("more than the order still needs")

    # Alipay: the sandbox's QR code, scanned in simulation
    page.get_by_test_id("payment-amount").fill("20.00")
    page.get_by_test_id("payment-submit").click()
    qr = page.get_by_test_id("sandbox-qr")
    expect(qr.locator("img")).to_be_visible()
    expect(qr).to_contain_text("sandbox://alipay/")
    page.get_by_test_id("sandbox-scan").click()
    _follow_until(page, "captured")

    # cash for the rest (the form offers what is outstanding)
    page.get_by_test_id("payments-record-manual").click()
    page.get_by_test_id("manual-reference").fill("收据 0042")
    page.get_by_test_id("manual-submit").click()
    expect(page.get_by_test_id("payments-take")).to_be_hidden()
    status = page.get_by_test_id("order-header").get_by_test_id("order-status")
    expect(status).to_have_attribute("data-status", "paid")  # moved by the orders service
    # paid in full: nothing is due, and nothing was refunded
    expect(page.get_by_test_id("payments-outstanding")).to_contain_text("0.00")
    expect(page.get_by_test_id("payments-refunded")).to_have_count(0)
    expect(page.get_by_test_id("order-balance")).to_have_count(0)

    # refund part of the cash, after confirming
    listed = api_as_page_user(page, "GET", f"/api/v1/payments?order_id={order['id']}")
    cash = next(p for p in listed["body"]["items"] if p["method"] == "cash")
    page.get_by_test_id(f"payment-refund-{cash['id']}").click()
    page.get_by_test_id("refund-partial").click()
    page.get_by_test_id("refund-amount").fill("5")
    page.get_by_test_id("refund-reason").fill("少发一件")
    page.get_by_test_id("refund-submit").click()
    box = page.locator(".el-message-box")
    expect(box).to_contain_text("cannot be undone")
    box.locator(".el-button--primary").click()
    row = page.get_by_test_id(f"payment-row-{cash['id']}")
    expect(row.locator("[data-status=partially_refunded]")).to_be_visible()
    # a goodwill refund: still paid, and the 5.00 the total is short of was refunded, not owed
    expect(page.get_by_test_id("payments-refunded")).to_contain_text("5.00")
    expect(page.get_by_test_id("order-refunded")).to_contain_text("5.00")
    expect(page.get_by_test_id("payments-take")).to_be_hidden()
    expect(status).to_have_attribute("data-status", "paid")

    switch_language(page, "zh-CN")
    expect(panel).to_contain_text("支付管理")
    expect(row).to_contain_text("部分退款")
    expect(panel).to_contain_text("现金")
    expect(page.get_by_test_id("order-totals")).to_contain_text("已退款")
    expect(page.get_by_test_id("order-totals")).not_to_contain_text("待付金额")


def test_manager_reconciles_the_day_and_exports_it(page: Page, live_stack):  # noqa: F811
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    page.get_by_role("menuitem", name="支付对账").click()
    expect(page).to_have_url(re.compile(r"/payments/reconciliation"))
    expect(page.get_by_role("heading", name="支付对账")).to_be_visible()
    expect(page.get_by_test_id("reconciliation-summary")).to_be_visible()
    table = page.get_by_test_id("reconciliation-table")
    expect(table.locator("[data-status=matched]").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("reconciliation-export").click()
    assert download.value.suggested_filename.startswith("reconciliation-")
    switch_language(page, "en")
    expect(page.get_by_role("heading", name="Payment reconciliation")).to_be_visible()
    # every payment, newest first, each linking to its order
    page.get_by_role("menuitem", name="Payments").click()
    listed = page.get_by_test_id("payments-list")
    expect(listed.locator("[data-status=partially_refunded]").first).to_be_visible()
    # each order is named by its number, asked for in one request for the page
    expect(listed.get_by_test_id("payment-order").first).to_have_text(re.compile(r"^SO\d+$"))
    listed.locator("a").first.click()
    expect(page.get_by_test_id("order-payments")).to_be_visible()


def test_new_order_payments_panel_syncs_and_a_declined_card_is_in_chinese(page: Page, live_stack):  # noqa: F811
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    order = _order(page)
    # The payments service learns of a new order from its order.placed event, a moment after
    # the order is placed: its first answers say `order: null`. The panel asks again by itself.
    stale = []

    def not_yet_known(route):
        if len(stale) < 3:
            stale.append(route.request.url)
            route.fulfill(
                status=200, content_type="application/json", body='{"items": [], "order": null}'
            )
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/payments\?order_id="), not_yet_known)
    page.goto(f"/orders/{order['id']}")
    page.evaluate("window.__sameDocument = true")
    expect(page.get_by_test_id("payments-syncing")).to_contain_text("正在同步订单到支付服务")
    expect(page.get_by_test_id("payments-summary")).to_be_visible()
    expect(page.get_by_test_id("payments-syncing")).to_have_count(0)
    expect(page.get_by_test_id("payments-unknown")).to_have_count(0)
    assert len(stale) == 3
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    page.unroute(re.compile(r"/api/v1/payments\?order_id="))

    # a declined card: the provider's reason in words, not its code
    page.get_by_test_id("payments-take").click()
    page.get_by_test_id("payment-amount").fill("10.00")
    page.get_by_test_id("card-number").fill("4000 0000 0000 0002")
    page.get_by_test_id("card-expiry").fill("12/39")
    page.get_by_test_id("card-cvc").fill("123")
    page.get_by_test_id("payment-submit").click()
    follow = page.get_by_test_id("payment-follow")
    expect(follow.locator("[data-status=failed]")).to_be_visible()
    expect(follow).to_contain_text("支付失败：银行卡被拒绝")
    expect(follow).not_to_contain_text("card_declined")
