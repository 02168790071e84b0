"""Browser flows of the UI's security posture: markup in customer data is shown as text and
never runs; the session lives in the page's storage and travels in a header, not a cookie."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect
from ui_flows import (  # noqa: F401 - fixtures
    api_as_page_user,
    browser,
    create_customer_via_api,
    customer_row,
    live_stack,
    login,
    page,
    switch_language,
)

IMG = '<img src=x onerror="window.__pwned = (window.__pwned || 0) + 1">'
SCRIPT = "<script>window.__pwned = (window.__pwned || 0) + 1</script>"
SVG = '<svg onload="window.__pwned = (window.__pwned || 0) + 1"></svg>'


def _no_script_ran(page: Page, dialogs: list) -> None:  # noqa: F811
    assert page.evaluate("window.__pwned") is None, "injected markup ran"
    assert dialogs == [], dialogs
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("svg[onload]").count() == 0


def test_markup_in_customer_fields_renders_as_text_and_never_runs(page: Page, live_stack):  # noqa: F811
    dialogs: list = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    marker = f"xss{uuid.uuid4().hex[:8]}"
    customer = create_customer_via_api(
        page,
        {
            "kind": "company",
            "name": f"{IMG} {marker}",
            "company": SCRIPT,
            "source": SVG,
            "preferences": {"notes": IMG, "categories": ["<b>bold</b>"]},
            "addresses": [{"country": "CN", "city": SVG, "street": IMG}],
        },
    )

    page.get_by_test_id("nav-customers").click()
    page.get_by_test_id("customers-search").fill(marker)
    row = customer_row(page, marker)
    expect(row).to_be_visible()
    expect(row).to_contain_text(IMG)  # the markup, as characters on the screen
    _no_script_ran(page, dialogs)

    page.goto(f"/customers/{customer['id']}")
    expect(page.get_by_test_id("customer-name")).to_have_text(f"{IMG} {marker}")
    expect(page.get_by_test_id("profile-company")).to_have_text(SCRIPT)
    expect(page.get_by_test_id("customer-page")).to_contain_text(SVG)
    _no_script_ran(page, dialogs)

    # the timeline shows the registered values as text too
    page.get_by_test_id("customer-tabs").get_by_text("Timeline").click()
    page.wait_for_load_state("networkidle")
    _no_script_ran(page, dialogs)


def test_the_session_is_not_a_cookie(page: Page, live_stack):  # noqa: F811
    login(page, live_stack.admin_email, live_stack.admin_password)
    assert page.context.cookies() == [], page.context.cookies()
    # the page's own calls carry the token in a header; a bare credentialed fetch is refused
    assert api_as_page_user(page, "GET", "/api/v1/me")["status"] == 200
    status = page.evaluate(
        "async () => (await fetch('/api/v1/me', { credentials: 'include' })).status"
    )
    assert status == 401
