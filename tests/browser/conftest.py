"""Browser fixtures: a clean slate of login-failure counters per test, logging in through the form,
the live database, and texts as the live app renders them in a language."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask_babel import force_locale
from playwright.sync_api import BrowserContext, ConsoleMessage, Page
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
