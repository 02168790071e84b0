"""Browser flows of the web UI, driven by Playwright in Debian's Chromium.

These run in a process of their own, without the eventlet monkey patch that the root conftest
applies (Playwright's sync API hangs under it): test_ui.py starts them with
``python -m pytest --noconftest tests/browser/ui_flows.py`` and the running stack's address in
the environment. Against a stack you started yourself:

    CMS_UI_URL=http://127.0.0.1:8000 CMS_UI_ADMIN_EMAIL=... CMS_UI_ADMIN_PASSWORD=... \
        .venv/bin/python -m pytest --noconftest tests/browser/ui_flows.py

Chromium: /usr/bin/chromium (``apt-get install -y chromium``), or CMS_CHROMIUM. On a failure a
screenshot and the page's HTML go to CMS_UI_ARTIFACTS (default /tmp/cms-ui-artifacts).
"""

from __future__ import annotations

import os
import re
import types
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = os.environ.get("CMS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("CMS_UI_ARTIFACTS", "/tmp/cms-ui-artifacts"))
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CMS_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live_stack():
    url = os.environ.get("CMS_UI_URL")
    if not url:
        pytest.skip("CMS_UI_URL is not set (test_ui.py sets it from the live_stack fixture)")
    return types.SimpleNamespace(
        url=url.rstrip("/"),
        admin_email=os.environ["CMS_UI_ADMIN_EMAIL"],
        admin_password=os.environ["CMS_UI_ADMIN_PASSWORD"],
    )


@pytest.fixture
def page(live_stack, browser, request):
    # A fresh context: empty localStorage/sessionStorage, so the UI starts in the browser's
    # language (English here) until a choice is saved.
    context = browser.new_context(
        base_url=live_stack.url, viewport={"width": 1440, "height": 900}, locale="en-US"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = ARTIFACTS / request.node.name
        try:
            page.screenshot(path=f"{stem}.png", full_page=True)
            Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
            print(f"screenshot and HTML of the failed page: {stem}.png, {stem}.html")
        except Exception as error:  # noqa: BLE001 - the page may be gone; the failure matters more
            print(f"could not save the failed page: {error}")
    context.close()


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0]


def enrol_totp_if_forced(page: Page) -> None:
    """A role listed in mfa_required_roles is sent to 2FA enrolment first: go through it."""
    if _path(page.url) != "/mfa-setup":
        return
    import pyotp

    secret = page.get_by_test_id("mfa-secret").inner_text().replace(" ", "")
    page.locator("input[name=totp-code]").fill(pyotp.TOTP(secret).now())
    page.get_by_test_id("mfa-confirm").click()
    expect(page.get_by_test_id("recovery-codes")).to_be_visible()
    page.get_by_test_id("mfa-done").click()


def login(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(lambda url: _path(url) != "/login")
    enrol_totp_if_forced(page)
    expect(page.get_by_test_id("home-page")).to_be_visible()


def switch_language(page: Page, code: str) -> None:
    page.get_by_test_id("language-switch").click()
    page.get_by_test_id(f"lang-{code}").click()
    expect(page.locator("html")).to_have_attribute("lang", code)
    # the choice is then saved to the profile; the switch is disabled (loading) until it is,
    # and a second switch right after timed out on its click on a busy machine
    expect(page.get_by_test_id("language-switch").locator(".is-loading")).to_have_count(0)


def api_as_page_user(page: Page, method: str, path: str, body: dict | None = None) -> dict:
    """Call the API from the page with the signed-in user's own token: {status, body}."""
    return page.evaluate(
        """async ([method, path, body]) => {
            const s = JSON.parse(sessionStorage.getItem('cms.session'))
            const headers = { Authorization: 'Bearer ' + s.accessToken }
            const init = { method, headers }
            if (body !== null) {
                headers['Content-Type'] = 'application/json'
                init.body = JSON.stringify(body)
            }
            const r = await fetch(path, init)
            let answer = null
            try { answer = await r.json() } catch (e) {}
            return { status: r.status, body: answer }
        }""",
        [method, path, body],
    )


def sign_out(page: Page) -> None:
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("menu-logout").click()
    expect(page).to_have_url(re.compile(r"/login"))


def test_admin_creates_analyst_who_cannot_manage_users(page: Page, live_stack):
    # The sign-in page starts in the browser's language (this one's is en-US).
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_test_id("login-submit")).to_have_text("Sign in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    login(page, live_stack.admin_email, live_stack.admin_password)

    # Chinese, then English, from the top bar; the choice is saved on the user's record.
    switch_language(page, "zh-CN")
    expect(page.get_by_test_id("nav-users")).to_have_text("用户管理")
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/me") and r.request.method == "PATCH"
    ) as saved:
        switch_language(page, "en")
    assert saved.value.ok, saved.value.status
    expect(page.get_by_test_id("nav-users")).to_have_text("Users")
    expect(page.get_by_test_id("nav-audit")).to_have_text("Audit log")
    assert api_as_page_user(page, "GET", "/api/v1/me")["body"]["language"] == "en"

    # Create an analyst.
    page.get_by_test_id("nav-users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    email = f"analyst-{uuid.uuid4().hex[:8]}@example.com"
    password = "Analyst-Passw0rd-2024!"
    page.get_by_test_id("user-create").click()
    dialog = page.get_by_role("dialog", name="New user")
    expect(dialog).to_be_visible()
    dialog.locator("input[name=email]").fill(email)
    dialog.locator("input[name=name]").fill("Ana Lyst")
    dialog.get_by_test_id("role-analyst").click()
    dialog.locator("input[name=password]").fill(password)
    page.get_by_test_id("user-create-submit").click()
    expect(dialog).to_be_hidden()
    page.get_by_test_id("users-search").fill(email)  # Element Plus puts the attribute on <input>
    row = page.get_by_test_id("users-table").locator("tr", has_text=email)
    expect(row).to_be_visible()
    expect(row).to_contain_text("Analyst")
    expect(row).to_contain_text("Active")

    # Sign out: back on the sign-in page, still in English (remembered in this browser).
    sign_out(page)
    expect(page.get_by_test_id("login-submit")).to_have_text("Sign in")

    # The analyst has no user administration, in the menu or by address.
    login(page, email, password)
    expect(page.get_by_test_id("side-nav")).to_be_visible()
    expect(page.get_by_test_id("nav-home")).to_be_visible()
    expect(page.get_by_test_id("nav-users")).to_have_count(0)
    expect(page.get_by_test_id("nav-audit")).to_have_count(0)
    page.goto("/users")
    expect(page.get_by_test_id("forbidden")).to_be_visible()
    expect(page.get_by_test_id("users-page")).to_have_count(0)
    assert api_as_page_user(page, "GET", "/api/v1/users")["status"] == 403


def test_session_is_renewed_and_its_loss_leads_to_login(page: Page, live_stack):
    # A wrong password is answered on the form, from the problem document.
    page.goto("/login")
    # (an unknown address, so that no real account moves towards a lockout)
    page.locator("input[name=email]").fill(f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    page.locator("input[name=password]").fill("not-the-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"))

    login(page, live_stack.admin_email, live_stack.admin_password)

    # An access token past its lifetime is renewed with the refresh token before it is used.
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem('cms.session'))
            s.expiresAt = 0
            sessionStorage.setItem('cms.session', JSON.stringify(s))
        }"""
    )
    with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/refresh")) as refreshed:
        page.reload()
    assert refreshed.value.status == 200, refreshed.value.status
    expect(page.get_by_test_id("home-page")).to_be_visible()
    expect(page.get_by_test_id("nav-users")).to_be_visible()

    # A token the gateway no longer accepts ends the session: back to the sign-in page.
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem('cms.session'))
            s.accessToken = 'not-a-valid-token'
            s.refreshToken = 'not-a-valid-refresh-token'
            s.expiresAt = Date.now() + 3600 * 1000
            sessionStorage.setItem('cms.session', JSON.stringify(s))
        }"""
    )
    page.reload()
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_test_id("login-notice")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('cms.session')") is None


def test_user_turns_on_two_factor_and_signs_in_with_a_recovery_code(page: Page, live_stack):
    import pyotp

    login(page, live_stack.admin_email, live_stack.admin_password)
    email = f"sales-{uuid.uuid4().hex[:8]}@example.com"
    password = "Sales-Passw0rd-2024!"
    create_user_via_api(page, email, "Sam Sales", "sales", password)
    sign_out(page)

    login(page, email, password)
    switch_language(page, "zh-CN")
    page.goto("/profile?tab=security")
    page.get_by_test_id("mfa-start").click()
    expect(page.get_by_test_id("mfa-qr")).to_be_visible()
    secret = page.get_by_test_id("mfa-secret").inner_text().replace(" ", "")
    page.locator("input[name=totp-code]").fill(pyotp.TOTP(secret).now())
    page.get_by_test_id("mfa-confirm").click()
    codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(codes.first).to_be_visible()
    recovery_code = codes.first.inner_text().strip()
    page.get_by_test_id("mfa-done").click()
    expect(page.get_by_test_id("mfa-disable")).to_be_visible()
    sign_out(page)

    # The password alone is not enough any more; a recovery code stands in for the app's code.
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.get_by_test_id("login-submit").click()
    otp = page.locator("input[name=otp]")
    expect(otp).to_be_visible()
    otp.fill("000000")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_text("验证码不正确或已过期。")).to_be_visible()
    otp.fill(recovery_code)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("home-page")).to_be_visible()
    expect(page.get_by_test_id("nav-users")).to_have_count(0)


def test_role_required_to_use_two_factor_is_sent_to_enrolment(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    before = api_as_page_user(page, "GET", "/api/v1/settings/security")["body"]
    try:
        # Admin requires two-factor for managers, from the security settings page.
        page.get_by_test_id("nav-security-settings").click()
        manager = page.locator("label.el-checkbox", has_text="Manager")
        expect(manager).to_be_visible()
        if not manager.locator("input").is_checked():
            manager.click()
        expect(manager.locator("input")).to_be_checked()
        with page.expect_response(
            lambda r: r.url.endswith("/api/v1/settings/security") and r.request.method == "PATCH"
        ) as saved:
            page.get_by_test_id("security-save").click()
        assert saved.value.ok, saved.value.status
        after = api_as_page_user(page, "GET", "/api/v1/settings/security")["body"]
        assert "manager" in after["mfa_required_roles"]

        email = f"manager-{uuid.uuid4().hex[:8]}@example.com"
        password = "Manager-Passw0rd-2024!"
        create_user_via_api(page, email, "Mia Manager", "manager", password)
        sign_out(page)

        # The manager cannot go anywhere before enrolling an authenticator.
        page.locator("input[name=email]").fill(email)
        page.locator("input[name=password]").fill(password)
        page.get_by_test_id("login-submit").click()
        expect(page).to_have_url(re.compile(r"/mfa-setup"))
        page.goto("/profile")
        expect(page).to_have_url(re.compile(r"/mfa-setup"))
        enrol_totp_if_forced(page)
        # ... and then lands where they were going.
        expect(page).to_have_url(re.compile(r"/profile"))
        expect(page.get_by_test_id("profile-form")).to_be_visible()
        assert api_as_page_user(page, "GET", "/api/v1/me")["body"]["mfa_enabled"] is True
        sign_out(page)
    finally:
        # Leave the shared stack's settings as they were.
        if _path(page.url) == "/login" or not page.evaluate(
            "() => sessionStorage.getItem('cms.session')"
        ):
            login(page, live_stack.admin_email, live_stack.admin_password)
        restored = api_as_page_user(
            page,
            "PATCH",
            "/api/v1/settings/security",
            {"mfa_required_roles": before["mfa_required_roles"]},
        )
        assert restored["status"] == 200, restored


def test_admin_manages_a_user_an_api_key_and_reads_the_audit_log(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    email = f"sam-{uuid.uuid4().hex[:8]}@example.com"
    create_user_via_api(page, email, "Sam Sample", "sales", "Sample-Passw0rd-1")

    page.get_by_test_id("nav-users").click()
    page.get_by_test_id("users-search").fill(email)
    row = page.get_by_test_id("users-table").locator("tr", has_text=email)
    expect(row).to_contain_text("Sales")

    def row_action(name: str) -> None:
        # the table may render again (the search's answer) between the click and the menu
        # opening, which closes the menu: open it again until its item shows
        item = page.get_by_role("menuitem", name=name).locator("visible=true")
        for _ in range(4):
            row.get_by_role("button", name="More").click()
            try:
                item.wait_for(state="visible", timeout=5000)
                break
            except PlaywrightTimeout:
                page.keyboard.press("Escape")
        item.click()

    # Role.
    row_action("Change role")
    dialog = page.get_by_role("dialog", name=re.compile("Change the role"))
    dialog.locator("label", has_text="Manager").click()
    dialog.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("Manager")

    # Details, with If-Match.
    row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit user")
    dialog.locator("input[name=phone]").fill("+8613800138000")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("+86 138 0013 8000")  # stored as E.164, read in groups

    # Deactivate (confirmed), then reactivate.
    row_action("Deactivate")
    page.get_by_role("dialog").get_by_role("button", name="Deactivate").click()
    expect(row).to_contain_text("Deactivated")
    row_action("Reactivate")
    expect(row).to_contain_text("Active")

    # Reset the password to a generated one, which then signs in.
    row_action("Reset password")
    dialog = page.get_by_role("dialog", name=re.compile("Reset the password"))
    dialog.get_by_role("button", name="Generate").click()
    new_password = dialog.locator(".secret-box .mono").inner_text()
    dialog.get_by_role("button", name="Reset password").click()
    expect(dialog).to_be_hidden()
    signed_in = page.evaluate(
        """async ([email, password]) => (await fetch('/api/v1/auth/login', {
            method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ email, password }) })).status""",
        [email, new_password],
    )
    assert signed_in == 200

    # An API key: shown once, then revoked.
    page.get_by_test_id("nav-api-keys").click()
    page.get_by_test_id("api-key-create").click()
    dialog = page.get_by_role("dialog", name="New API key")
    key_name = f"ERP sync {uuid.uuid4().hex[:6]}"
    dialog.locator("input[name=name]").fill(key_name)
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_test_id("api-key-secret")).not_to_be_empty()
    page.get_by_role("dialog", name="API key created").get_by_role(
        "button", name="I have stored it"
    ).click()
    key_row = page.get_by_test_id("api-keys-table").locator("tr", has_text=key_name)
    expect(key_row).to_contain_text("Active")
    key_row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(key_row).to_have_count(0)
    page.get_by_text("Show revoked keys").click()
    expect(key_row).to_contain_text("Revoked")

    # The audit log shows what was done, in words.
    page.get_by_test_id("nav-audit").click()
    table = page.get_by_test_id("audit-table")
    expect(table).to_contain_text("Revoke API key")
    expect(table).to_contain_text("Change role")
    expect(table).to_contain_text("Deactivate user")


# -- customers (客户信息管理) ------------------------------------------------------------------


def create_user_via_api(page: Page, email: str, name: str, role: str, password: str) -> dict:
    """A staff account, made by the signed-in admin through the API."""
    created = api_as_page_user(
        page,
        "POST",
        "/api/v1/users",
        {"email": email, "name": name, "role": role, "password": password},
    )
    assert created["status"] == 201, created
    return created["body"]


def create_customer_via_api(page: Page, body: dict) -> dict:
    created = api_as_page_user(page, "POST", "/api/v1/customers", body)
    assert created["status"] == 201, created
    return created["body"]


def unique_email(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}@example.com"


def unique_phone() -> str:
    return "+86139" + str(uuid.uuid4().int)[:8]


def customer_row(page: Page, text: str):
    return page.get_by_test_id("customers-table").locator("tr", has_text=text)


def test_customer_search_finds_a_chinese_name_by_two_characters_and_by_pinyin(
    page: Page, live_stack
):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    marker = f"搜索测试 {uuid.uuid4().hex[:8]}"
    create_customer_via_api(
        page,
        {
            "kind": "person",
            "name": "欧阳晓岚",
            "company": marker,
            "emails": [{"address": unique_email("ouyang"), "primary": True}],
        },
    )

    expect(page.get_by_test_id("nav-customers")).to_have_text("客户信息管理")
    page.get_by_test_id("nav-customers").click()
    expect(page.get_by_test_id("customers-page")).to_be_visible()
    search = page.get_by_test_id("customers-search")

    # Two characters out of the middle of the name (too short for a trigram index).
    search.fill("晓岚")
    expect(customer_row(page, marker)).to_be_visible()
    expect(customer_row(page, marker)).to_contain_text("欧阳晓岚")

    # Something that matches nobody empties the list...
    search.fill(f"zz{uuid.uuid4().hex[:12]}")
    expect(customer_row(page, marker)).to_have_count(0)

    # ... and the name's pinyin, as typed on a Latin keyboard, finds it again.
    search.fill("ouyangxiaolan")
    expect(customer_row(page, marker)).to_be_visible()

    # The row opens the customer.
    customer_row(page, marker).get_by_role("link", name="欧阳晓岚").click()
    expect(page.get_by_test_id("customer-name")).to_have_text("欧阳晓岚")
    expect(page.get_by_test_id("profile-company")).to_have_text(marker)


def test_customer_created_through_the_form_after_an_inline_field_error(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    page.get_by_test_id("nav-customers").click()
    page.get_by_test_id("customer-create").click()
    form = page.get_by_test_id("customer-form")
    expect(form).to_be_visible()

    name = f"Form Person {uuid.uuid4().hex[:6]}"
    form.locator("input[name=name]").fill(name)
    # Enter in a single-line field does not submit the half-filled form: only the button does.
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    form.locator("input[name=external_id]").fill(f"EXT-{uuid.uuid4().hex[:6]}")
    form.locator("input[name=external_id]").press("Enter")
    form.locator("input[name=source]").press("Enter")
    page.wait_for_timeout(500)
    assert not [u for u in posts if u.endswith("/api/v1/customers")], posts
    expect(page).to_have_url(re.compile(r"/customers/new"))
    found = api_as_page_user(page, "GET", f"/api/v1/customers?q={name.replace(' ', '%20')}")
    assert found["body"]["items"] == [], found
    form.locator("input[name=external_id]").fill("")
    form.locator('input[name="emails.0.address"]').fill("not-an-email")
    form.locator('input[name="phones.0.number"]').fill(unique_phone())
    form.locator("input[name=price_min]").fill("100")
    form.locator("input[name=price_max]").fill("199.99")

    # The server's answer for the first e-mail row lands under that row's field.
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/customers") and r.request.method == "POST"
    ) as refused:
        page.get_by_test_id("customer-save").click()
    assert refused.value.status == 400, refused.value.status
    email_error = page.get_by_test_id("field-emails.0.address").locator(".el-form-item__error")
    expect(email_error).to_be_visible()
    expect(page).to_have_url(re.compile(r"/customers/new"))

    email = unique_email("form")
    form.locator('input[name="emails.0.address"]').fill(email)
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/customers") and r.request.method == "POST"
    ) as created:
        page.get_by_test_id("customer-save").click()
    assert created.value.status == 201, created.value.status
    sent = created.value.request.post_data_json
    # Amounts typed in yuan are sent as integer fen, never as floats.
    assert sent["preferences"]["price_min"] == 10000
    assert sent["preferences"]["price_max"] == 19999
    assert sent["preferences"]["currency"] == "CNY"

    customer = created.value.json()
    expect(page).to_have_url(re.compile(rf"/customers/{customer['id']}$"))
    expect(page.get_by_test_id("customer-name")).to_have_text(name)
    expect(page.get_by_test_id("profile-emails")).to_contain_text(email)
    stored = api_as_page_user(page, "GET", f"/api/v1/customers/{customer['id']}")["body"]
    assert stored["preferences"]["price_max"] == 19999


def test_customer_edit_shows_on_the_detail_page_and_in_the_timeline(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    customer = create_customer_via_api(
        page,
        {"kind": "company", "name": f"Edit Co {uuid.uuid4().hex[:6]}", "company": "Old Name Ltd"},
    )
    page.goto(f"/customers/{customer['id']}")
    expect(page.get_by_test_id("profile-company")).to_have_text("Old Name Ltd")

    page.get_by_test_id("customer-edit").click()
    form = page.get_by_test_id("customer-form")
    company = form.locator("input[name=company]")
    expect(company).to_have_value("Old Name Ltd")
    new_company = f"New Name {uuid.uuid4().hex[:6]} Ltd"
    company.fill(new_company)
    with page.expect_request(
        lambda r: r.method == "PATCH" and f"/api/v1/customers/{customer['id']}" in r.url
    ) as patched:
        page.get_by_test_id("customer-save").click()
    assert patched.value.headers.get("if-match"), "an edit is sent with If-Match"
    assert patched.value.post_data_json == {"company": new_company}

    expect(page).to_have_url(re.compile(rf"/customers/{customer['id']}$"))
    expect(page.get_by_test_id("profile-company")).to_have_text(new_company)

    page.get_by_role("tab", name="Timeline").click()
    events = page.get_by_test_id("timeline-event")
    expect(events.first).to_contain_text("Profile edited")
    expect(events.first).to_contain_text(new_company)
    expect(events.last).to_contain_text("Created")


def test_duplicate_customer_is_flagged_and_can_be_created_anyway(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    email = unique_email("dup")
    existing = create_customer_via_api(
        page,
        {"kind": "person", "name": "First Holder", "emails": [{"address": email, "primary": True}]},
    )

    page.goto("/customers/new")
    form = page.get_by_test_id("customer-form")
    form.locator("input[name=name]").fill("Second Holder")
    form.locator('input[name="emails.0.address"]').fill(email)
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/customers") and r.request.method == "POST"
    ) as refused:
        page.get_by_test_id("customer-save").click()
    assert refused.value.status == 409, refused.value.status

    warning = page.get_by_test_id("customer-duplicate")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("already exists")
    expect(page.get_by_test_id("duplicate-link")).to_have_attribute(
        "href", f"/customers/{existing['id']}"
    )

    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/customers") and r.request.method == "POST"
    ) as forced:
        page.get_by_test_id("duplicate-force").click()
    assert forced.value.status == 201, forced.value.status
    assert forced.value.request.post_data_json["force"] is True
    created = forced.value.json()
    assert created["id"] != existing["id"]
    expect(page).to_have_url(re.compile(rf"/customers/{created['id']}$"))
    expect(page.get_by_test_id("customer-name")).to_have_text("Second Holder")


# -- customer import (导入客户) ----------------------------------------------------------------


def test_admin_imports_customers_sees_the_rejected_row_and_reverts_the_import(
    page: Page, live_stack, tmp_path
):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "en")
    marker = uuid.uuid4().hex[:8]
    company = f"Import Co {marker}"
    first, second = f"导入甲 {marker}", f"导入乙 {marker}"
    # Chinese headers, UTF-8 with a BOM (as Excel saves it); the third data row is broken.
    lines = [
        "姓名,邮箱,手机,公司,标签",
        f"{first},{unique_email('import-a')},{unique_phone()},{company},VIP",
        f"{second},{unique_email('import-b')},,{company},",
        f"坏行 {marker},not-an-email,,{company},",
    ]
    upload = tmp_path / f"customers-{marker}.csv"
    upload.write_text("\ufeff" + "\r\n".join(lines) + "\r\n", encoding="utf-8")

    # Admins reach the page from the customer list.
    page.get_by_test_id("nav-customers").click()
    page.get_by_test_id("customers-import").click()
    expect(page).to_have_url(re.compile(r"/customers/imports$"))
    expect(page.get_by_role("heading", name="Import customers")).to_be_visible()
    expect(page.get_by_test_id("import-columns-help")).to_contain_text("external_id")
    # every column README.md's "Importing and exporting customers" lists
    for column in ("language", "preferred_channel", "postal_code", "kind"):
        expect(page.get_by_test_id("import-columns-help")).to_contain_text(column)
    # The example file is made in the browser: UTF-8 with a BOM, Chinese headers.
    with page.expect_download() as template:
        page.get_by_test_id("import-template").click()
    example = Path(template.value.path()).read_bytes()
    assert example.startswith(b"\xef\xbb\xbf"), example[:10]
    assert example.decode("utf-8-sig").startswith("姓名,邮箱,手机,公司,标签,外部编号"), example[:80]

    page.get_by_test_id("import-file-input").set_input_files(str(upload))
    expect(page.get_by_test_id("import-file-name")).to_have_text(upload.name)
    page.get_by_test_id("import-mode-upsert").click()
    page.get_by_test_id("import-match-email").click()

    polls: list[str] = []

    def note_poll(request) -> None:
        if request.method == "GET" and re.search(r"/customers/imports/[0-9a-f-]{36}$", request.url):
            polls.append(request.url)

    page.on("request", note_poll)
    with page.expect_response(
        lambda r: "/api/v1/customers/imports?" in r.url and r.request.method == "POST",
        timeout=120_000,
    ) as uploaded:
        page.get_by_test_id("import-start").click()
    assert uploaded.value.status == 201, uploaded.value.status
    query = dict(
        pair.split("=", 1) for pair in uploaded.value.request.url.split("?", 1)[1].split("&")
    )
    assert query["mode"] == "upsert" and query["match_on"] == "email", query
    assert query["filename"] == upload.name, query
    # (Chromium keeps no body of an XHR that carried a file: ask the API for the import)
    import_id = query["import_id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", import_id)
    summary = api_as_page_user(page, "GET", f"/api/v1/customers/imports/{import_id}")["body"]
    assert (summary["created"], summary["rejected"], summary["status"]) == (2, 1, "completed")
    # The page followed the import while the upload request was open.
    assert any(url.endswith(f"/customers/imports/{import_id}") for url in polls), polls

    # The progress reaches the end, with the counters.
    progress = page.get_by_test_id("import-progress")
    expect(progress).to_have_attribute("data-total", "3")
    expect(progress).to_have_attribute("data-processed", "3")
    expect(page.get_by_test_id("import-status")).to_have_text("Completed")
    expect(page.get_by_test_id("import-counter-created")).to_contain_text("2")
    expect(page.get_by_test_id("import-counter-rejected")).to_contain_text("1")
    expect(page.get_by_test_id("import-done")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/customers/imports/{import_id}(\?.*)?$"))

    # The rejected row, with its reason and what it held.
    rejected = page.get_by_test_id("import-rejections-table").locator("tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected.first).to_contain_text("not-an-email")
    # (reasons are keyed by the file's own header)
    reason = page.get_by_test_id("import-rejection-reason")
    expect(reason).to_have_count(1)
    expect(reason).to_contain_text("邮箱")

    # ... also as CSV.
    with page.expect_download() as downloaded:
        page.get_by_test_id("import-rejections-csv").click()
    rejected_csv = Path(downloaded.value.path()).read_text(encoding="utf-8-sig")
    assert "not-an-email" in rejected_csv, rejected_csv

    # The import is in the history.
    history_row = page.get_by_test_id("import-history-table").locator("tr", has_text=upload.name)
    expect(history_row).to_contain_text("Completed")

    # An imported customer is in the list.
    page.get_by_test_id("nav-customers").click()
    page.get_by_test_id("customers-search").fill(marker)
    expect(customer_row(page, first)).to_be_visible()
    expect(customer_row(page, second)).to_be_visible()
    expect(customer_row(page, "坏行")).to_have_count(0)

    # Revert it from the history, after a confirmation...
    page.get_by_test_id("customers-import").click()
    history_row = page.get_by_test_id("import-history-table").locator("tr", has_text=upload.name)
    history_row.get_by_role("button", name=upload.name).click()
    expect(page).to_have_url(re.compile(rf"/customers/imports/{import_id}(\?.*)?$"))
    page.get_by_test_id("import-revert").click()
    with page.expect_response(
        lambda r: r.url.endswith(f"/api/v1/customers/imports/{import_id}/revert")
    ) as reverted:
        page.get_by_role("dialog").get_by_role("button", name="Revert this import").click()
    assert reverted.value.status == 200, reverted.value.status
    assert reverted.value.json()["status"] == "reverted"
    expect(page.get_by_test_id("import-status")).to_have_text("Reverted")
    expect(page.get_by_test_id("import-reverted")).to_be_visible()
    expect(page.get_by_test_id("import-revert")).to_have_count(0)
    expect(history_row).to_contain_text("Reverted")

    # ... and the imported customers are gone from the list.
    page.get_by_test_id("nav-customers").click()
    page.get_by_test_id("customers-search").fill(marker)
    expect(page.get_by_test_id("customers-table")).to_contain_text("No data")
    expect(customer_row(page, first)).to_have_count(0)
    expect(customer_row(page, second)).to_have_count(0)


def test_server_field_messages_are_shown_in_chinese(page: Page, live_stack):
    login(page, live_stack.admin_email, live_stack.admin_password)
    switch_language(page, "zh-CN")
    page.goto("/customers/new")
    form = page.get_by_test_id("customer-form")
    form.locator("input[name=name]").fill(f"字段错误 {uuid.uuid4().hex[:6]}")
    form.locator('input[name="emails.0.address"]').fill("not-an-email")
    page.get_by_test_id("customer-save").click()
    email_error = page.get_by_test_id("field-emails.0.address").locator(".el-form-item__error")
    expect(email_error).to_have_text("邮箱地址格式不正确。")

    form.locator('input[name="emails.0.address"]').fill(unique_email("zh"))
    form.locator('input[name="phones.0.number"]').fill("12345")
    page.get_by_test_id("customer-save").click()
    phone_error = page.get_by_test_id("field-phones.0.number").locator(".el-form-item__error")
    expect(phone_error).to_contain_text("请使用国际格式，例如 +8613812345678")
    expect(phone_error).not_to_contain_text("Not a valid")
