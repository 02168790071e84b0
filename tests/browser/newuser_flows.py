"""Browser flows of what a new user (a tea-shop owner, Chinese UI, a 1400 px wide window)
reported: the customer list's segment and orders filters, picking an owner by name as a
manager, nothing due on a cancelled order, import reasons in Chinese, landlines, company
wording, analytics by product and category, payment wording, the delivery address filled from
the customer, the product list's order, and a new tab that keeps the session."""

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

PASSWORD = "Tea-shop-pass-2026!"


def _product(page: Page, name: str, price: int = 5000, category: str | None = "绿茶") -> dict:
    body = {"sku": f"NU-{uuid.uuid4().hex[:8]}", "name": name, "price": price, "currency": "CNY"}
    if category:
        body["category"] = category
    created = api_as_page_user(page, "POST", "/api/v1/products", body)
    assert created["status"] == 201, created
    return created["body"]


def _order(page: Page, customer_id: str, product: dict, quantity: int = 2) -> dict:
    placed = api_as_page_user(
        page,
        "POST",
        "/api/v1/orders",
        {
            "customer_id": customer_id,
            "lines": [{"product_id": product["id"], "quantity": quantity}],
        },
    )
    assert placed["status"] == 201, placed
    return placed["body"]


def _until(page: Page, path: str, ready, what: str, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        answer = api_as_page_user(page, "GET", path)
        if answer["status"] == 200 and ready(answer["body"]):
            return answer["body"]
        assert time.monotonic() < deadline, f"{what}: {answer}"
        page.wait_for_timeout(300)


def _cancel(page: Page, order_id: str) -> None:
    order = api_as_page_user(page, "GET", f"/api/v1/orders/{order_id}")["body"]
    cancelled = page.evaluate(
        """async ([id, version]) => {
            const s = JSON.parse(sessionStorage.getItem('cms.session'))
            const r = await fetch(`/api/v1/orders/${id}/cancel`, { method: 'POST',
              headers: { Authorization: 'Bearer ' + s.accessToken,
                         'Content-Type': 'application/json', 'If-Match': `"${version}"` },
              body: JSON.stringify({ reason: '客户不要了' }) })
            return r.status
        }""",
        [order_id, order["version"]],
    )
    assert cancelled == 200, cancelled


def test_segment_and_orders_filters_reach_the_list_and_the_export(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    tag = f"nu-{uuid.uuid4().hex[:8]}"
    buyer = create_customer_via_api(page, {"name": f"买过 {tag}", "tags": [tag], "force": True})
    create_customer_via_api(page, {"name": f"没买 {tag}", "tags": [tag], "force": True})
    _order(page, buyer["id"], _product(page, f"龙井 {tag}"))
    _until(
        page,
        f"/api/v1/customers?tag={tag}&has_orders=true",
        lambda body: len(body["items"]) == 1,
        "the customers service counts the order",
    )

    with page.expect_request(lambda r: "/api/v1/customers?" in r.url) as listed:
        page.goto(f"/customers?tag={tag}&has_orders=true")
    assert "has_orders=true" in listed.value.url, listed.value.url
    table = page.get_by_test_id("customers-table")
    expect(table).to_contain_text(f"买过 {tag}")
    expect(table).not_to_contain_text(f"没买 {tag}")

    with page.expect_request(lambda r: "/customers/export.csv" in r.url) as exported:
        page.get_by_test_id("customers-export").click()
    assert "has_orders=true" in exported.value.url and f"tag={tag}" in exported.value.url

    with page.expect_request(lambda r: "/api/v1/customers?" in r.url) as listed:
        page.goto(f"/customers?tag={tag}&segment=champions")
    assert "segment=champions" in listed.value.url, listed.value.url
    with page.expect_request(lambda r: "/customers/export.csv" in r.url) as exported:
        page.get_by_test_id("customers-export").click()
    assert "segment=champions" in exported.value.url


def test_manager_assigns_an_owner_and_filters_by_a_sales_rep_by_name(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    marker = uuid.uuid4().hex[:6]
    rep = create_user_via_api(
        page, f"rep-{marker}@example.com", f"销售小王{marker}", "sales", PASSWORD
    )
    create_user_via_api(page, f"mgr-{marker}@example.com", f"店长{marker}", "manager", PASSWORD)
    customer = create_customer_via_api(page, {"name": f"待分配 {marker}", "force": True})
    sign_out(page)

    login(page, f"mgr-{marker}@example.com", PASSWORD)
    switch_language(page, "zh-CN")
    page.goto(f"/customers/{customer['id']}")
    page.get_by_test_id("owner-assign").click()
    dialog = page.get_by_test_id("assign-dialog")
    expect(dialog.get_by_test_id("owner-id-input")).to_have_count(0)  # no user id to type
    select = dialog.get_by_test_id("owner-select")
    select.click()
    select.locator("input").fill(f"小王{marker}")
    page.locator(".el-select-dropdown__item:visible", has_text=f"销售小王{marker}").click()
    with page.expect_response(lambda r: r.url.endswith("/owner")) as assigned:
        dialog.get_by_test_id("assign-save").click()
    assert assigned.value.status == 200
    assert assigned.value.request.post_data_json == {"owner_id": rep["id"]}
    expect(page.get_by_test_id("customer-page")).to_contain_text(f"销售小王{marker}")

    # the list's owner filter picks the same rep by name
    page.goto("/customers")
    owner = page.get_by_test_id("owner-select")
    owner.click()
    owner.locator("input").fill(marker)
    with page.expect_request(lambda r: f"owner_id={rep['id']}" in r.url):
        page.locator(".el-select-dropdown__item:visible", has_text=f"销售小王{marker}").click()
    expect(page.get_by_test_id("customers-table")).to_contain_text(f"待分配 {marker}")


def test_cancelled_order_owes_nothing_and_payments_read_as_received_and_refunded(
    page: Page, live_stack
):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    customer = create_customer_via_api(
        page, {"name": f"茶客 {uuid.uuid4().hex[:6]}", "force": True}
    )
    product = _product(page, "龙井 250g", price=34400)
    unpaid = _order(page, customer["id"], product)
    paid = _order(page, customer["id"], product)
    for order in (unpaid, paid):
        _until(page, f"/api/v1/payments?order_id={order['id']}", lambda b: b.get("order"), "synced")

    # a cancelled unpaid order: nothing due, in the totals and in the payments panel
    _cancel(page, unpaid["id"])
    page.goto(f"/orders/{unpaid['id']}")
    expect(page.get_by_test_id("order-nothing-due")).to_contain_text("无需支付（订单已取消）")
    expect(page.get_by_test_id("order-balance")).to_have_count(0)
    expect(page.get_by_test_id("payments-nothing-due")).to_contain_text("无需支付")
    expect(page.get_by_test_id("payments-outstanding")).to_have_count(0)
    expect(page.get_by_test_id("order-page")).to_contain_text("下单时间")
    expect(page.get_by_test_id("order-page")).not_to_contain_text("购买时间")

    # half by a UnionPay card, half in cash: 银联, and cash is received (已收款), not debited
    card = api_as_page_user(
        page,
        "POST",
        "/api/v1/payments",
        {
            "order_id": paid["id"],
            "method": "card",
            "amount": paid["total"] // 2,
            "currency": "CNY",
            "card": {"number": "6200000000000005", "exp_month": 12, "exp_year": 2039, "cvc": "123"},
        },
    )
    assert card["status"] == 201, card
    cash = api_as_page_user(
        page,
        "POST",
        "/api/v1/payments/manual",
        {
            "order_id": paid["id"],
            "method": "cash",
            "amount": paid["total"] - paid["total"] // 2,
            "currency": "CNY",
            "reference": "收据 1",
        },
    )
    assert cash["status"] == 201, cash
    _until(page, f"/api/v1/orders/{paid['id']}", lambda b: b["status"] == "paid", "paid")
    page.goto(f"/orders/{paid['id']}")
    expect(page.get_by_test_id("payment-card")).to_contain_text("银联")
    cash_row = page.get_by_test_id(f"payment-row-{cash['body']['id']}")
    expect(cash_row).to_contain_text("已收款")

    # cancelled after payment: the money goes back, and the history calls it a refund
    _cancel(page, paid["id"])
    page.goto(f"/orders/{paid['id']}")
    expect(page.get_by_test_id("order-nothing-due")).to_be_visible()
    history = page.get_by_test_id("order-history")
    expect(
        history.get_by_test_id("order-history-label").filter(has_text=re.compile("^退款$")).first
    ).to_be_visible(timeout=30_000)


def test_customer_import_reasons_are_in_chinese(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    marker = uuid.uuid4().hex[:6]
    csv = f"name,email,phone\n坏号 {marker},bad-{marker}@example.com,12345\n"
    import_id = page.evaluate(
        """async (csv) => {
            const s = JSON.parse(sessionStorage.getItem('cms.session'))
            const query = 'mode=create&match_on=email&filename=a.csv'
            const r = await fetch('/api/v1/customers/imports?' + query,
              { method: 'POST', headers: { Authorization: 'Bearer ' + s.accessToken,
                'Content-Type': 'text/csv' }, body: csv })
            return (await r.json()).id
        }""",
        csv,
    )
    page.goto(f"/customers/imports/{import_id}")
    reason = page.get_by_test_id("import-rejection-reason").first
    expect(reason).to_contain_text("不是有效的")
    expect(reason).to_contain_text("12345")
    expect(reason).not_to_contain_text("Not a valid")


def test_company_landline_labels_and_columns_at_1400_px(page: Page, live_stack):
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    marker = uuid.uuid4().hex[:6]
    company = create_customer_via_api(
        page,
        {
            "kind": "company",
            "name": f"茶香贸易 {marker}",
            "phones": [{"number": "+861066668888"}],
            "force": True,
        },
    )
    page.goto(f"/customers/{company['id']}")
    profile = page.get_by_test_id("customer-profile")
    expect(profile).to_contain_text("公司名称")
    expect(page.get_by_test_id("profile-phones")).to_contain_text("+86 10 6666 8888")
    expect(page.get_by_test_id("profile-phone-label")).to_contain_text("座机")

    # a company's new address is its office; a landline typed is no mobile
    page.goto("/customers/new")
    page.get_by_test_id("customer-kind").get_by_text("企业").click()
    page.get_by_test_id("add-address").click()
    expect(page.get_by_test_id("address-label-0")).to_contain_text("公司/办公")
    page.locator("input[name='phones.0.number']").fill("010-6666 8888")
    expect(page.get_by_test_id("phone-label-0")).to_contain_text("工作")

    # the list's phone and creation time fit their columns
    page.goto(f"/customers?q={marker}")
    expect(page.get_by_test_id("customers-table")).to_contain_text(marker)
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=customers-table] td .cell')]
              .filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.textContent.trim())"""
    )
    assert clipped == [], clipped


def test_analytics_shows_sales_by_product_and_category_and_explains_new_customers(
    page: Page, live_stack
):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    page.goto("/analytics")
    for card in ("sales-products", "sales-categories"):
        expect(page.get_by_test_id(card)).to_be_visible()
    expect(page.get_by_test_id("sales-products")).to_contain_text("商品销售额排行")
    expect(page.get_by_test_id("sales-categories")).to_contain_text("品类销售额")
    page.get_by_test_id("kpi-help-newCustomers").hover()
    expect(page.locator(".kpi-help-popper:visible")).to_contain_text("首次购买")


def test_new_order_takes_the_customers_address_and_products_read_in_name_order(
    page: Page, live_stack
):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    marker = uuid.uuid4().hex[:6]
    customer = create_customer_via_api(
        page,
        {
            "name": f"收货人 {marker}",
            "addresses": [
                {
                    "country": "CN",
                    "region": "浙江省",
                    "city": "杭州市",
                    "street": f"龙井路 {marker} 号",
                }
            ],
            "force": True,
        },
    )
    page.goto(f"/orders/new?customer={customer['id']}")
    expect(page.get_by_test_id("address-street")).to_have_value(f"龙井路 {marker} 号")
    expect(page.get_by_test_id("address-city")).to_have_value("杭州市")
    expect(page.get_by_test_id("order-address-prefilled")).to_be_visible()

    # by name as a Chinese reader sorts (pinyin): 龙井 (long) before 普洱 (pu)
    _product(page, f"普洱 {marker}")
    _product(page, f"龙井 {marker}")
    page.goto("/products")
    page.get_by_test_id("products-search").fill(marker)
    rows = page.get_by_test_id("products-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(f"龙井 {marker}")
    expect(page.get_by_test_id("products-table").locator("th.ascending")).to_have_count(1)

    # the order list's links are the app's links (no browser-default underline)
    page.goto("/orders")
    link = page.get_by_test_id("orders-table").locator("a").first
    expect(link).to_be_visible()
    assert link.evaluate("a => getComputedStyle(a).textDecorationLine") == "none"


def test_a_new_tab_keeps_the_session_and_signing_out_ends_it_everywhere(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    other = page.context.new_page()
    other.goto("/customers")
    expect(other.get_by_test_id("customers-page")).to_be_visible()
    assert other.evaluate("() => localStorage.getItem('cms.session')") is None  # nothing on disk
    sign_out(other)
    page.goto("/customers")
    expect(page).to_have_url(re.compile(r"/login"))
    other.close()
