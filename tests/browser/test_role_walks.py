"""Each role walks its pages in Chromium, in the Chinese interface, on SQLite and on PostgreSQL: anonymous,
enterprise member, platform admin, operator, bureau, finance and auditor. Every step opens an address or
follows a link or button as a person would, and the walk fails on any answer of 500 or more, on any
missing heading or element named in the step (by ARIA role and accessible name, as the live app says it
in Chinese), and on any English word left untranslated in the page's navigation, headings, buttons,
labels and table headers. axe-core checks every page on the way (tests/browser/conftest.py).

A walk is a list of steps: to walk a new page, add a Step to its role's list."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from flask_babel import lazy_gettext as _l
from playwright.sync_api import Page, Response, expect
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.extensions import db
from core.models import User
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState
from marketplace.demo import INSTRUMENTS
from marketplace.registry.models import Instrument
from tests.browser.test_booking_flow import published_instrument
from tests.browser.test_voucher_journey import working_day_at
from tests.conftest import DEMO_EMAILS
from tests.vouchers.conftest import enterprise_of, programme_values
from vouchers import services as voucher_services
from vouchers.claims import services as voucher_claims

pytestmark = pytest.mark.live


@dataclass(frozen=True)
class Step:
    """Open `go` (an address that may name the walk's rows: {instrument}, {booking}, {programme}, {claim},
    {voucher}) or follow `click` (an ARIA role and accessible name in the page's main part; give `at` too,
    which the new address contains) after filling `fill` (label → value); then the page's first heading
    holds `heading` and each (role, name) of `shows` is visible."""
    go: str | None = None
    click: tuple[str, object] | None = None
    fill: dict[object, str] = field(default_factory=dict)
    at: str | None = None
    heading: object | None = None
    shows: tuple[tuple[str, object], ...] = ()


CATALOGUE = [
    Step(go="/catalogue", heading=_l("Instrument catalogue"),
         shows=(("button", _l("Search")), ("navigation", _l("Main navigation")))),
    Step(go="/instruments/{instrument}", shows=(("heading", _l("Free and busy time")),)),
]
BOOKING = [
    Step(click=("link", _l("Book")), at="/instruments/{instrument}/book", heading=_l("Book %(name)s", name=""),
         shows=(("region", _l("Service terms")), ("region", _l("Open hours by slot of %(n)d minutes", n=30)))),
    Step(go="/bookings", heading=_l("My bookings"), shows=(("link", _l("Upcoming")),)),
    Step(click=("link", _l("All")), at="when=all", heading=_l("My bookings"), shows=(("link", _l("Details")),)),
    Step(click=("link", _l("Past")), at="when=past", heading=_l("My bookings")),
    Step(go="/bookings/{booking}"),
    Step(go="/calendar", heading=_l("My calendar feed")),
    Step(go="/waitlist/mine", heading=_l("My waitlist")),
]
AUDIT_LOG = [
    Step(go="/audit", heading=_l("Audit log"),
         shows=(("button", _l("Filter")), ("link", _l("Export XLSX")), ("textbox", _l("Person")))),
    Step(fill={_l("Person (e-mail or name)"): "平台管理员"}, click=("button", _l("Filter")), at="person=",
         heading=_l("Audit log"),
         shows=(("link", _l("Export XLSX")),)),
]

WALKS: dict[str, list[Step]] = {
    "anonymous": [
        Step(go="/", heading=_l("Keqiao Research Instrument Sharing Platform")),
        *CATALOGUE,
        Step(go="/instruments/{instrument}", shows=(("link", _l("Log in to book")),)),
        Step(go="/catalogue/releases", heading=_l("Catalogue releases")),
        Step(go="/login", heading=_l("Log in"), shows=(("textbox", _l("E-mail")),)),
        Step(go="/register", heading=_l("Register your enterprise")),
    ],
    "enterprise": [
        Step(go="/dashboard", heading=_l("Welcome, %(name)s", name="")),
        *CATALOGUE,
        Step(go="/instruments/{instrument}", shows=(("link", _l("Book")),)),
        *BOOKING,
        Step(go="/voucher-programmes/open", heading=_l("Innovation vouchers")),
        Step(go="/voucher-programmes/{programme}/apply", heading=_l("Apply: %(name)s", name=""),
             shows=(("button", _l("Apply")),)),
        Step(go="/my/voucher-applications", heading=_l("My applications")),
        Step(go="/my/vouchers", heading=_l("My vouchers")),
        Step(go="/vouchers/{voucher}"),
        Step(go="/my/voucher-claims", heading=_l("My claims")),
        Step(go="/my/voucher-claims/new", heading=_l("New claim")),
        Step(go="/profile", heading=_l("Your profile")),
    ],
    "platform": [
        Step(go="/dashboard", heading=_l("Welcome, %(name)s", name="")),
        Step(go="/instruments/mine", heading=_l("Our instruments")),
        Step(go="/instruments/new", heading=_l("Register an instrument")),
        Step(go="/instruments/{instrument}/edit"),
        Step(go="/platform/calendar", heading=_l("Instruments and their calendars")),
        Step(go="/instruments/{instrument}/schedule"),
        Step(go="/instruments/{instrument}/booking-rules"),
        Step(go="/instruments/{instrument}/maintenance-windows"),
        Step(go="/instruments/{instrument}/qualifications"),
        Step(go="/platform/service-terms", heading=_l("Service terms")),
        Step(go="/platform/bookings/approvals", heading=_l("Bookings to approve")),
        Step(go="/platform/day-sheet", heading=_l("Day sheet")),
        Step(go="/instruments/import", heading=_l("Import instruments")),
        Step(go="/platform/voucher-claims", heading=_l("Voucher claims")),
        Step(go="/voucher-claims/{claim}"),
        Step(go="/platform/voucher-claims/new", heading=_l("New claim")),
        Step(go="/instruments/{instrument}", shows=(("heading", _l("Calendar settings")),)),
        Step(go="/instruments/{instrument}/usage", shows=(("heading", _l("Use in the last 30 days")),
                                                          ("heading", _l("Device tokens")),
                                                          ("button", _l("Make a device token")))),
        Step(go="/monitoring", heading=_l("Utilization"), shows=(("heading", _l("Over time")),)),
        Step(go="/monitoring/sharing-report", shows=(("link", _l("Download XLSX")),)),
    ],
    "operator": [
        Step(go="/dashboard", heading=_l("Welcome, %(name)s", name="")),
        Step(go="/platform/day-sheet", heading=_l("Day sheet")),
        Step(go="/platform/calendar", heading=_l("Instruments and their calendars")),
        Step(go="/instruments/{instrument}/schedule"),
        Step(go="/instruments/{instrument}/maintenance-windows"),
        Step(go="/instruments/{instrument}/usage", shows=(("button", _l("Start use without a booking")),)),
    ],
    "bureau": [
        Step(go="/dashboard", heading=_l("Welcome, %(name)s", name=""),
             shows=(("heading", _l("To do")), ("link", _l("Instruments waiting for review")),
                    ("link", _l("Voucher applications waiting for a decision")),
                    ("link", _l("Claims waiting for review")))),
        Step(click=("link", _l("Instruments waiting for review")), at="/review", heading=_l("Instrument review")),
        Step(go="/voucher-applications", heading=_l("Voucher applications")),
        Step(go="/voucher-programmes", heading=_l("Voucher programmes")),
        Step(go="/voucher-programmes/{programme}"),
        Step(go="/vouchers", heading=_l("Vouchers")),
        Step(go="/vouchers/{voucher}"),
        Step(go="/voucher-claims/to-review", heading=_l("Claims to review")),
        Step(go="/voucher-claims/{claim}",
             shows=(("button", _l("Approve the claim")), ("button", _l("Return to the claimant")))),
        Step(go="/organisations", heading=_l("Organisations")),
        Step(go="/users", heading=_l("People and roles")),
        Step(go="/booking-rules", heading=_l("District default booking rules")),
        Step(go="/holidays/", heading=_l("Holiday calendar")),
        Step(go="/organisation-changes", heading=_l("Organisation changes")),
        Step(go="/monitoring", heading=_l("Utilization"),
             shows=(("heading", _l("By platform")), ("heading", _l("Large instruments against the reference lines")),
                    ("link", _l("Quarterly sharing report")))),
        Step(click=("link", _l("Quarterly sharing report")), at="/monitoring/sharing-report",
             shows=(("link", _l("Download XLSX")), ("link", _l("Download CSV")))),
        *AUDIT_LOG,
    ],
    "finance": [
        Step(go="/dashboard", heading=_l("Welcome, %(name)s", name=""),
             shows=(("link", _l("Claims waiting to be paid")),)),
        *AUDIT_LOG,
        Step(go="/voucher-claims/to-pay", heading=_l("Claims to pay")),
        Step(go="/voucher-claims/{claim}"),
    ],
    "auditor": [
        Step(go="/dashboard", heading=_l("Welcome, %(name)s", name="")),
        *AUDIT_LOG,
        Step(go="/voucher-claims", heading=_l("Voucher claims")),
        Step(go="/voucher-claims/{claim}"),
        Step(go="/voucher-flags", heading=_l("Voucher flags")),
        Step(go="/voucher-related-parties", heading=_l("Related parties")),
        Step(go="/monitoring", heading=_l("Utilization"), shows=(("heading", _l("By industry")),)),
    ],
}

# English a Chinese page may show: codes, formats, brands and the language switch, and the models and
# makers of the demo's instruments (data, not interface).
ALLOWED_WORDS = {"sem", "tem", "pdf", "xlsx", "csv", "json", "ics", "icalendar", "api", "atom", "jpeg", "jpg", "png",
                 "kequip", "english", "uscc", "webcal", "http", "https",
                 "date", "kind", "name", "holiday", "makeup", "workday"}  # the holiday import's columns and kinds
ALLOWED_WORDS |= {word.lower() for row in INSTRUMENTS for text in (row[3], row[4])
                  for word in re.findall(r"[A-Za-z]+", text)}
INTERFACE_TEXT = """() => {
    const parts = Array.from(document.querySelectorAll(
        "nav, h1, h2, h3, h4, h5, h6, button, label, legend, caption, th, .btn, .nav-link, .badge, .form-text"),
        element => element.innerText);
    for (const element of document.querySelectorAll("[aria-label], [placeholder]")) {
        parts.push(element.getAttribute("aria-label") || "", element.getAttribute("placeholder") || "");
    }
    return [document.title, ...parts].join("\\n");
}"""


def untranslated_words(page: Page) -> set[str]:
    """ASCII words of three letters or more in the interface text that are not on the allowed list."""
    text = re.sub(r"\S+@\S+|https?://\S+", " ", page.evaluate(INTERFACE_TEXT))
    return {word for word in re.findall(r"\b[A-Za-z]{3,}\b", text) if word.lower() not in ALLOWED_WORDS}


@pytest.fixture(scope="module")
def walk_rows(live_app) -> dict[str, int]:
    """The rows the walks open, made once per database: a published instrument of the demo platform (named
    as a real model is, so its name is data the check allows); an approved booking of it by the demo
    enterprise's member; a voucher programme open for applications; and a claim of the platform for a
    use of a voucher of that programme, served and paid."""
    with live_app.app_context():
        session = db.session
        users = {role: session.scalar(select(User).where(User.email == DEMO_EMAILS[role]))
                 for role in ("bureau", "enterprise", "platform", "operator")}
        member, admin = users["enterprise"], users["platform"]
        actor = Actor.system("test")
        programme = voucher_services.create_programme(session, actor=actor, user=users["bureau"],
                                                      values=programme_values(name=f"创新券巡检 {uuid.uuid4().int % 10**8}"))
        application = voucher_services.apply_for_voucher(
            session, actor=actor, user=member, programme_id=programme.id, enterprise_id=enterprise_of(member).id,
            requested_fen=2_000_00, purpose="材料成分检测", planned_instruments="液相色谱-质谱联用仪", now=utcnow())
        voucher = voucher_services.approve_application(session, application, actor=actor, user=users["bureau"],
                                                       amount_fen=2_000_00, now=utcnow())
        instrument_id = published_instrument(session, model="TSQ Altis Plus")
        start, _weeks = working_day_at(9)
        served = bookings.book_instrument(session, actor=actor, user=member, instrument_id=instrument_id,
                                          start_at=start, end_at=start + timedelta(hours=2), now=utcnow(),
                                          voucher_id=voucher.id)
        if served.state == BookingState.REQUESTED:
            bookings.approve_booking(session, served, actor=actor, user=admin, now=utcnow())
        bookings.choose_transfer(session, served, actor=actor, user=member, now=utcnow())
        bookings.record_transfer(session, served, actor=actor, user=admin, now=utcnow(), amount_fen=served.payable_fen,
                                 received_on=to_local(utcnow()).date(), reference=f"TRANSFER-{served.id}")
        bookings.check_in(session, served, actor=actor, user=users["operator"], now=start)
        bookings.check_out(session, served, actor=actor, user=users["operator"], now=start + timedelta(hours=2))
        claim = voucher_claims.create_provider_claim(
            session, actor=actor, user=admin, platform_id=instrument_platform(session, instrument_id),
            period_start=start.date(), period_end=start.date(), declaration_accepted=True,
            now=start + timedelta(days=1), bank_account_name="柯桥测试平台", bank_name="中国银行柯桥支行",
            bank_account_number="6216610000001")
        booking = bookings.book_instrument(session, actor=actor, user=member, instrument_id=instrument_id,
                                           start_at=start + timedelta(hours=5), end_at=start + timedelta(hours=7),
                                           now=utcnow())
        rows = {"instrument": instrument_id, "booking": booking.id, "programme": programme.id, "claim": claim.id,
                "voucher": voucher.id}
        session.commit()
        db.session.remove()
    return rows


def instrument_platform(session, instrument_id: int) -> int:
    return session.get(Instrument, instrument_id).platform_id


def walk(page: Page, base_url: str, steps: list[Step], rows: dict[str, int], zh: Callable[[object], str]) -> None:
    failed: list[str] = []
    page.on("response", lambda response: response.status >= 500 and failed.append(f"{response.status} {response.url}"))
    for step in steps:
        where = step.go or f"{page.url} → {zh(step.click[1])}"
        if step.go:
            response: Response | None = page.goto(base_url + step.go.format(**rows))
            assert response is not None and response.ok, f"{where}: {response and response.status}"
        for label, value in step.fill.items():
            page.get_by_label(zh(label)).fill(value)
        if step.click:
            role, name = step.click
            page.locator("main").get_by_role(role, name=zh(name)).first.click()
            page.wait_for_load_state()
        if step.at:
            expect(page).to_have_url(re.compile(re.escape(step.at.format(**rows))))
        if step.heading is not None:
            expect(page.get_by_role("heading", level=1), where).to_contain_text(zh(step.heading).strip(" ·,:：，"))
        for role, name in step.shows:
            expect(page.get_by_role(role, name=zh(name)).first, f"{where}: {role} {zh(name)}").to_be_visible()
        words = untranslated_words(page)
        assert not words, f"{where}: untranslated {sorted(words)}"
    assert not failed, failed


@pytest.mark.parametrize("role", list(WALKS))
def test_each_role_walks_its_pages_in_chinese(page: Page, live_server, walk_rows, log_in, in_locale, role):
    page.set_viewport_size({"width": 1366, "height": 900})
    if role != "anonymous":
        log_in(page, DEMO_EMAILS[role], DEMO_PASSWORD)
        expect(page).to_have_url(f"{live_server.url}/dashboard")
    walk(page, live_server.url, WALKS[role], walk_rows, lambda text: in_locale("zh_CN", text))


def test_on_a_phone_the_booking_grid_scrolls_from_the_keyboard(page: Page, live_server, live_session, log_in,
                                                                 in_locale):
    """The week view (asked for: a phone opens on the day) is wider than a phone: its scroll region is in the
    tab order, named, takes the focus, and the arrow keys scroll it."""
    instrument_id = published_instrument(live_session)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, DEMO_EMAILS["enterprise"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/instruments/{instrument_id}/book?view=week")
    grid = page.get_by_role("region", name=in_locale("zh_CN", _l("Open hours by slot of %(n)d minutes", n=30)))
    assert grid.evaluate("region => region.scrollWidth > region.clientWidth")
    expect(grid).to_have_attribute("tabindex", "0")  # in the page's tab order
    grid.focus()
    expect(grid).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.activeElement.scrollLeft > 0")


def test_the_english_interface_fails_the_untranslated_check(page: Page, live_server):
    page.goto(f"{live_server.url}/catalogue?lang=en")
    assert {"Instrument", "catalogue", "Search"} <= untranslated_words(page)


def wait_until_checked(page: Page, accessibility, addresses: set[str]) -> None:
    """The load event's check runs as Playwright hands events over, while the test goes on."""
    for _ in range(100):
        if addresses <= accessibility.checked:
            return
        page.wait_for_timeout(100)
    assert addresses <= accessibility.checked, accessibility.checked


def test_axe_checks_pages_reached_by_a_form_post_a_redirect_and_a_click(page: Page, live_server, log_in, accessibility):
    log_in(page, DEMO_EMAILS["auditor"], DEMO_PASSWORD)  # posts the form, redirected to the dashboard
    expect(page).to_have_url(f"{live_server.url}/dashboard")
    wait_until_checked(page, accessibility, {"/login", "/dashboard"})  # before leaving it, as a person reads it
    page.get_by_test_id("role-nav").get_by_role("link").last.click()
    page.wait_for_load_state()
    clicked = page.url.removeprefix(live_server.url)
    assert clicked != "/dashboard"
    wait_until_checked(page, accessibility, {"/login", "/dashboard", clicked})


def test_axe_names_the_rule_element_and_address_of_a_violation(page: Page, live_server, accessibility):
    """An input without a label, as a template might leave one: axe's `label` rule, critical."""
    page.goto(f"{live_server.url}/login")
    wait_until_checked(page, accessibility, {"/login"})
    page.evaluate("""() => document.querySelector("main").insertAdjacentHTML("beforeend", '<input id="unnamed">')""")
    accessibility.checked.discard("/login")
    accessibility.check()
    assert any(found.startswith("/login: label (critical) at ['#unnamed']") for found in accessibility.violations), \
        accessibility.violations
    accessibility.violations.clear()
