"""Fixtures: every database test runs on SQLite and on a real PostgreSQL server this suite starts.

`app` is migrated once per database and holds the demo district, committed; `session` wraps each
test in an outer transaction that is rolled back. `live_server` serves a separate
database from a real thread for the browser and schemathesis, where data must be committed."""
from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from config import TestingConfig
from core.app import create_app
from core.audit import Actor
from core.db import utcnow
from core.demo import load as load_demo
from core.extensions import db, limiter
from core.holidays import forget_calendar
from core.models import User
from marketplace.catalogue.queries import forget_lists
from testsupport.servers import LocalStripeServer, PostgresServer, SmtpServer, free_port

DATABASES = ("sqlite", "postgresql")
DEMO_EMAILS = {
    "bureau": "bureau@kequip.test", "finance": "finance@kequip.test", "auditor": "auditor@kequip.test",
    "expert": "expert@kequip.test", "introducer": "introducer@kequip.test", "platform": "platform@kequip.test",
    "operator": "operator@kequip.test", "enterprise": "enterprise@kequip.test",
}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[LocalStripeServer]:
    """The payment gateway: a real localstripe process on 127.0.0.1, shared by the session's apps."""
    server = LocalStripeServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server) -> SmtpServer:
    """The SMTP server, emptied for this test."""
    smtp_server.messages.clear()
    return smtp_server


@pytest.fixture(scope="session")
def new_database(request, tmp_path_factory):
    """A factory of empty databases of the session's kind: new_database(kind, name) → URL."""

    def make(kind: str, name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp(name) / 'kequip.sqlite'}"
        return request.getfixturevalue("pg_server").create_database(name)

    return make


@pytest.fixture(scope="session", params=DATABASES)
def db_kind(request) -> str:
    return request.param


# A test about one database's own behaviour runs on that database only (never returns early elsewhere).
only_sqlite = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
only_postgresql = pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (so its own `g` and session), as in production, while the
    test keeps one open for its own queries; both use the test's connection and transaction."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def make_app(database_url: str, smtp_server: SmtpServer, tmp_dir, **overrides) -> Flask:
    return create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, MAIL_PORT=smtp_server.port,
                      SCHEDULER_LOCK_FILE=str(tmp_dir / "scheduler.lock"), UPLOAD_DIR=str(tmp_dir / "uploads"),
                      **overrides)


@pytest.fixture(scope="session")
def app(db_kind, new_database, smtp_server, stripe_server, tmp_path_factory) -> Iterator[Flask]:
    app = make_app(new_database(db_kind, "kequip_test"), smtp_server, tmp_path_factory.mktemp("app"),
                   STRIPE_API_BASE=stripe_server.url)
    app.test_client_class = FreshContextClient
    with app.app_context():
        flask_migrate.upgrade()
        load_demo()
        db.session.remove()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def session(app, monkeypatch):
    """One outer transaction per test, rolled back at the end; a commit under test is a savepoint."""
    connection = db.engine.connect()
    outer = connection.begin()
    monkeypatch.setitem(db.engines, None, connection)
    db.session.remove()
    db.session.configure(join_transaction_mode="create_savepoint")
    limiter.reset()  # one Limiter serves every app of the session: keep them all on memory://
    forget_lists()  # what earlier tests committed, then rolled back, is not the catalogue's
    forget_calendar()  # nor the holiday calendar
    yield db.session
    db.session.remove()
    outer.rollback()
    connection.close()


@pytest.fixture
def client(app, session):
    return app.test_client()


@pytest.fixture
def demo_user(session):
    def get(name: str) -> User:
        return session.scalar(db.select(User).where(User.email == DEMO_EMAILS.get(name, name)))

    return get


@pytest.fixture
def login_as(app, session, demo_user):
    """A test client logged in as a demo account ("bureau", "platform", …) or any user's e-mail."""

    def make(name: str):
        user = demo_user(name)
        client = app.test_client()
        with client.session_transaction() as http_session:
            http_session["_user_id"] = user.get_id()
            http_session["_fresh"] = True
        return client

    return make


class ApiClient:
    def __init__(self, client, token: str | None):
        self.client, self.token = client, token

    def __getattr__(self, method: str):
        def call(url: str, **kwargs):
            headers = dict(kwargs.pop("headers", {}) or {})
            if self.token:
                headers.setdefault("Authorization", f"Bearer {self.token}")
            return getattr(self.client, method)(url, headers=headers, **kwargs)

        return call


@pytest.fixture
def api_as(app, session, demo_user):
    """A test client that sends a demo account's bearer token; api_as(None) sends none."""
    from core import services

    def make(name: str | None):
        if name is None:
            return ApiClient(app.test_client(), None)
        user = demo_user(name)
        token, _row = services.issue_api_token(session, user, actor=Actor.of(user, "127.0.0.1"), now=utcnow(),
                                               ttl=timedelta(days=1))
        session.flush()
        return ApiClient(app.test_client(), token)

    return make


class TransactionSpy:
    """Wraps real functions (slow work: parsing an upload, making a file) and notes, at each call,
    whether the request's session had a transaction open: on SQLite any holds the write lock."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.open_at_calls: list[bool] = []

    def watch(self, module, name: str) -> None:
        real = getattr(module, name)

        def spy(*args, **kwargs):
            self.open_at_calls.append(db.session().in_transaction())
            return real(*args, **kwargs)

        self.monkeypatch.setattr(module, name, spy)


@pytest.fixture
def transaction_spy(monkeypatch) -> TransactionSpy:
    return TransactionSpy(monkeypatch)


# --- a real server thread, committed data -----------------------------------------------------

class LiveServer:
    def __init__(self, app: Flask):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="session")
def live_app(db_kind, new_database, smtp_server, stripe_server, tmp_path_factory) -> Iterator[Flask]:
    app = make_app(new_database(db_kind, "kequip_live"), smtp_server, tmp_path_factory.mktemp("live"),
                   WTF_CSRF_ENABLED=True, STRIPE_API_BASE=stripe_server.url)
    with app.app_context():
        flask_migrate.upgrade()
        load_demo()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app) -> Iterator[LiveServer]:
    server = LiveServer(live_app).start()
    live_app.config["PUBLIC_URL"] = server.url
    yield server
    server.stop()


# --- the browser: the system's Chromium, since browsers cannot be downloaded here -------------

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
    return {**browser_type_launch_args, "executable_path": executable, "args": [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


