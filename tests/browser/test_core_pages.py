"""The core pages in a real browser against the live server, on SQLite and on PostgreSQL: logging in and
out, the navigation each role sees, registering an enterprise, the language switch and the phone layout.

Texts differ while the Chinese translation is being written, so the tests look at addresses, field ids,
Bootstrap's classes and `html[lang]`, or ask the live app for a text in the language the page shows."""
from __future__ import annotations

import re
import uuid

import pytest
from flask import url_for
from flask_babel import lazy_gettext as _l
from playwright.sync_api import Page, expect
from sqlalchemy import select
from stdnum.cn import uscc

from core.demo import ACCOUNTS, DEMO_PASSWORD
from core.models import VERIFICATION_STATE_LABELS, Enterprise, User, VerificationState
from core.templating import NAV_EXTENSION

pytestmark = pytest.mark.live

ROLE_OF = {email: role for email, _name, role, _org in ACCOUNTS}
PHONE = {"width": 390, "height": 844}


def nav_hrefs_for(live_app, email: str) -> list[str]:
    """The links the navigation should offer this demo account: the items the app registers (CORE_NAV
    and any later module's) whose rule lets the account's role in."""
    role = ROLE_OF[email]
    with live_app.test_request_context():
        return [url_for(item.endpoint) for item in live_app.extensions[NAV_EXTENSION]
                if not item.rule.roles or role in item.rule.roles]


def role_nav_links(page: Page):
    """Every link of the menu, those folded in a drop-down included."""
    return page.get_by_test_id("role-nav").get_by_role("link", include_hidden=True)


def role_nav_hrefs(page: Page) -> list[str]:
    return role_nav_links(page).evaluate_all(
        "links => links.map(link => link.getAttribute('href'))")


def unique_credit_code() -> str:
    body = f"91330621{uuid.uuid4().int % 10**9:09d}"
    return body + uscc.calc_check_digit(body)


def fill_registration(page: Page, *, email: str, credit_code: str, enterprise_name: str) -> None:
    for field, value in {"name": "王测试", "email": email, "phone": "0575-81234567", "password": "kequip-new-1",
                         "password_again": "kequip-new-1", "enterprise_name": enterprise_name,
                         "credit_code": credit_code, "legal_representative": "王法人",
                         "address": "柯桥区测试路 1 号"}.items():
        page.locator(f"#{field}").fill(value)
    page.locator("main form").get_by_role("button").click()


@pytest.mark.parametrize("email", list(ROLE_OF))
def test_each_demo_account_logs_in_and_sees_exactly_its_own_navigation(page, live_server, live_app, log_in,
                                                                       email):
    expected = nav_hrefs_for(live_app, email)
    assert "/dashboard" in expected

    log_in(page, email, DEMO_PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/dashboard")
    expect(role_nav_links(page)).to_have_count(len(expected))
    assert role_nav_hrefs(page) == expected


def test_wrong_password_and_unknown_email_get_the_same_error_on_the_login_page(page, live_server, log_in,
                                                                               in_locale):
    log_in(page, "expert@kequip.test", "not-the-password")
    error = page.locator(".alert-danger")
    expect(error).to_have_text(in_locale("zh_CN", _l("Wrong e-mail or password.")))
    shown_for_wrong_password = error.inner_text()
    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.locator("#password")).to_be_visible()

    log_in(page, f"nobody-{uuid.uuid4().hex[:8]}@kequip.test", DEMO_PASSWORD)
    expect(error).to_have_text(shown_for_wrong_password)
    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.locator("#password")).to_be_visible()


def test_registration_with_a_wrong_check_digit_marks_the_credit_code_and_creates_nothing(
        page, live_server, live_session, in_locale):
    email = f"wrong-code-{uuid.uuid4().hex[:8]}@example.com"
    bad_code = "91330621MA20000010"
    assert not uscc.is_valid(bad_code)
    page.goto(f"{live_server.url}/register")

    fill_registration(page, email=email, credit_code=bad_code,
                      enterprise_name=f"错码测试{uuid.uuid4().int % 10**6:06d}有限公司")

    credit_code = page.locator("#credit_code")
    expect(credit_code).to_have_class(re.compile(r"\bis-invalid\b"))
    feedback = page.locator("#credit_code ~ .invalid-feedback")
    expect(feedback).to_be_visible()
    expect(feedback).to_have_text(in_locale("zh_CN", _l("The check digit of this credit code is wrong.")))
    expect(page.locator("main .is-invalid")).to_have_count(1)
    expect(page).to_have_url(f"{live_server.url}/register")
    assert live_session.scalar(select(User.id).where(User.email == email)) is None
    assert live_session.scalar(select(Enterprise.id).where(Enterprise.credit_code == bad_code)) is None


def test_registration_lands_on_the_dashboard_with_the_enterprise_awaiting_verification(
        page, live_server, live_session, in_locale):
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    code = unique_credit_code()
    page.goto(f"{live_server.url}/register")

    fill_registration(page, email=email, credit_code=code,
                      enterprise_name=f"新注册{uuid.uuid4().int % 10**6:06d}科技有限公司")

    expect(page).to_have_url(f"{live_server.url}/dashboard")
    expect(page.get_by_test_id("verification")).to_have_text(
        in_locale("zh_CN", VERIFICATION_STATE_LABELS[VerificationState.PENDING]))
    enterprise = live_session.scalar(select(Enterprise).where(Enterprise.credit_code == code))
    assert enterprise.verification_state == VerificationState.PENDING
    assert live_session.scalar(select(User.id).where(User.email == email)) is not None


def test_language_switch_goes_to_english_and_back(page, live_server, in_locale):
    page.goto(f"{live_server.url}/login")
    html, log_in_link = page.locator("html"), page.locator('#main-nav a[href="/login"]')
    expect(html).to_have_attribute("lang", "zh-CN")

    page.get_by_test_id("lang-switch").click()
    expect(html).to_have_attribute("lang", "en")
    expect(log_in_link).to_have_text("Log in")

    page.get_by_test_id("lang-switch").click()
    expect(html).to_have_attribute("lang", "zh-CN")
    expect(log_in_link).to_have_text(in_locale("zh_CN", _l("Log in")))


def test_on_a_phone_the_navigation_folds_into_a_toggler_and_the_login_form_fits(page, live_server, live_app,
                                                                                 log_in):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/login")
    toggler, log_in_link = page.locator(".navbar-toggler"), page.locator('#main-nav a[href="/login"]')
    expect(toggler).to_be_visible()
    expect(log_in_link).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    toggler.click()
    expect(log_in_link).to_be_visible()

    log_in(page, "enterprise@kequip.test", DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/dashboard")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    nav_links = page.get_by_test_id("role-nav").get_by_role("link")
    expect(nav_links.first).to_be_hidden()
    page.locator(".navbar-toggler").click()
    for link in nav_links.all():
        expect(link).to_be_visible()
    assert role_nav_hrefs(page) == nav_hrefs_for(live_app, "enterprise@kequip.test")


def test_logout_ends_the_session_and_the_dashboard_then_asks_to_log_in_with_401(page, live_server, live_app, log_in):
    log_in(page, "finance@kequip.test", DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/dashboard")

    page.locator('#main-nav form[action="/logout"]').get_by_role("button").click()
    expect(page.locator('#main-nav a[href="/login"]')).to_be_visible()

    response = page.goto(f"{live_server.url}/dashboard")
    assert response is not None and response.status == 401
    expect(page.locator("#email")).to_be_visible()
    expect(page.locator("#password")).to_be_visible()
    with live_app.test_request_context():  # logged out: only the public items (the catalogue)
        public_hrefs = [url_for(item.endpoint) for item in live_app.extensions[NAV_EXTENSION] if item.rule.is_public]
    expect(page.get_by_test_id("role-nav").get_by_role("link")).to_have_count(len(public_hrefs))
    assert role_nav_hrefs(page) == public_hrefs


def test_the_browser_refuses_an_inline_script_and_style_that_the_policy_does_not_allow(page, live_server,
                                                                                     csp_violations):
    """As an injected script would be: the page's own scripts (Bootstrap's menu) still work."""
    page.goto(f"{live_server.url}/login")
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.appendChild(script);
        document.body.insertAdjacentHTML("beforeend", '<p id="styled" style="color: rgb(255, 0, 0)">x</p>');
    }""")
    assert page.evaluate("window.injected") is None
    assert page.evaluate("getComputedStyle(document.getElementById('styled')).color") != "rgb(255, 0, 0)"
    for _ in range(50):  # the console's reports arrive after the page's work
        if sum(kind in " ".join(csp_violations) for kind in ("inline script", "inline style")) == 2:
            break
        page.wait_for_timeout(100)
    assert any("inline script" in text for text in csp_violations), csp_violations
    assert any("inline style" in text for text in csp_violations), csp_violations
    csp_violations.clear()
    page.set_viewport_size(PHONE)
    page.locator(".navbar-toggler").click()
    expect(page.locator("#main-nav")).to_be_visible()
