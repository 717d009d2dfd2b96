"""Browser fixtures: a clean slate of login-failure counters per test, logging in through the form,
the live database, texts as the live app renders them in a language, and axe-core on every page."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from flask_babel import force_locale
from playwright.sync_api import BrowserContext, ConsoleMessage, Page
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy.orm import Session

from core.extensions import db, limiter


@pytest.fixture(scope="session")
def base_url(live_server) -> str:
    """Replaces pytest-playwright 0.10's fallback `base_url`, an instance-method session fixture that
    pytest 9 refuses (PytestRemovedIn10Warning under filterwarnings = error); it is the live server
    anyway. Drop this when pytest-playwright defines its fallback as a plain function."""
    return live_server.url


@pytest.fixture(autouse=True)
def fresh_login_limits(live_app: Flask) -> None:
    """The live server counts login failures per account and per address (127.0.0.1 for every test):
    start each test from zero so no test depends on the failures of those before it."""
    with live_app.app_context():
        limiter.reset()


@pytest.fixture
def csp_violations(context: BrowserContext) -> Iterator[list[str]]:
    """What the browser refused under our content security policy (an inline script or style, a script
    or connection from elsewhere), as Chromium reports it on the console: every browser test fails on
    any. A test that provokes one on purpose empties the list."""
    refused: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    context.on("console", note)
    yield refused
    assert not refused, refused


@pytest.fixture(autouse=True)
def _no_csp_violations(request: pytest.FixtureRequest) -> None:
    if "page" in request.fixturenames:
        request.getfixturevalue("csp_violations")


@pytest.fixture
def live_session(live_app: Flask) -> Iterator[Session]:
    """A session on the live server's committed database, to check what the pages stored."""
    with live_app.app_context():
        yield db.session
        db.session.remove()


@pytest.fixture
def in_locale(live_app: Flask) -> Callable[[str, object], str]:
    """in_locale("zh_CN", lazy_text) → the text as the live app shows it in that language now (the
    msgid itself while its translation is missing)."""

    def render(locale: str, text: object) -> str:
        with live_app.test_request_context(), force_locale(locale):
            return str(text)

    return render


@pytest.fixture
def log_in(live_server) -> Callable[..., None]:
    """Fill and send the login form as a person would."""

    def submit(page: Page, email: str, password: str) -> None:
        page.goto(f"{live_server.url}/login")
        page.locator("#email").fill(email)
        page.locator("#password").fill(password)
        page.locator("main form").get_by_role("button").click()

    return submit


# --- accessibility: axe-core on every page a browser test visits ---------------------------------

AXE = Axe()
# WCAG 2.1 levels A and AA, the national standard GB/T 37668 follows.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
               "resultTypes": ["violations"]}
AXE_FAILING_IMPACTS = {"serious", "critical"}


class AccessibilityCheck:
    """Runs axe-core once on each distinct address (path and query) a test's page loads, whether reached
    by goto, a link or a form post, and keeps what it found at serious or critical impact. Playwright
    calls the load handler while the test goes on: a load during a check is checked after it."""

    def __init__(self, page: Page):
        self.page = page
        self.checked: set[str] = set()
        self.violations: list[str] = []
        self._running = self._again = False

    def check(self, *_event) -> None:
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._check_page_in_view()
        finally:
            self._running = False

    def _check_page_in_view(self) -> None:
        parts = urlsplit(self.page.url)
        if parts.scheme not in ("http", "https"):
            return
        address = parts.path + (f"?{parts.query}" if parts.query else "")
        if address in self.checked:
            return
        try:
            found = AXE.run(self.page, options=AXE_OPTIONS).response["violations"]
        except PlaywrightError:  # the page went on before axe finished: its load checks where it is now
            return
        self.checked.add(address)
        self.violations += [f"{address}: {rule['id']} ({rule['impact']}) at {node['target']}: {rule['help']}"
                            for rule in found if rule["impact"] in AXE_FAILING_IMPACTS for node in rule["nodes"]]


@pytest.fixture
def accessibility(page: Page) -> Iterator[AccessibilityCheck]:
    """Every browser test fails on any serious or critical WCAG 2.1 A/AA violation axe-core finds on a page
    it visited, named by address, rule and element."""
    check = AccessibilityCheck(page)
    page.on("load", check.check)
    yield check
    check.check()
    assert not check.violations, "\n".join(check.violations)


@pytest.fixture(autouse=True)
def _accessible_pages(request: pytest.FixtureRequest) -> None:
    if "page" in request.fixturenames:
        request.getfixturevalue("accessibility")
