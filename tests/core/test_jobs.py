"""Jobs: listed and run by name from the CLI, idempotent, and scheduled by exactly one process."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy import func, select

from core.extensions import db
from core.jobs import send_outbox
from core.models import OutboxMessage
from core.outbox import enqueue_mail
from testsupport.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_jobs_list_and_run_by_name(app, session):
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert "send_outbox" in listed.output and "purge_rate_limit_counters" in listed.output
    ran = runner.invoke(args=["jobs", "run", "send_outbox"])
    assert ran.exit_code == 0 and "send_outbox: 0" in ran.output
    unknown = runner.invoke(args=["jobs", "run", "no_such_job"])
    assert unknown.exit_code != 0 and "no job" in unknown.output


def test_outbox_keeps_mail_when_smtp_is_down_and_sends_it_later(app, session, mailbox):
    enqueue_mail(session, to="later@example.com", locale="en", template="password_reset",
                 context={"name": "L", "path": "/password/reset/x", "minutes": 60})
    session.flush()
    app.config["MAIL_PORT"] = 1  # nothing listens there
    try:
        assert send_outbox() == 0
    finally:
        app.config["MAIL_PORT"] = mailbox.port
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.to == "later@example.com"))
    assert message.sent_at is None and message.attempts == 1 and message.last_error
    assert send_outbox() == 1
    assert mailbox.wait_for("later@example.com")["Subject"]
    assert session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))) == 0


def test_a_message_that_cannot_be_rendered_does_not_block_the_others(app, session, mailbox):
    broken = enqueue_mail(session, to="broken@example.com", locale="en", template="no_such_template",
                          context={})
    enqueue_mail(session, to="fine@example.com", locale="en", template="password_reset",
                 context={"name": "F", "path": "/password/reset/x", "minutes": 60})
    session.flush()
    assert send_outbox() == 1
    assert mailbox.wait_for("fine@example.com")["Subject"]
    session.refresh(broken)
    assert broken.sent_at is None and broken.attempts == 1 and "no_such_template" in broken.last_error
    assert send_outbox() == 0  # tried again on the next run, without resending the good one
    session.refresh(broken)
    assert broken.attempts == 2 and len([m for m in mailbox.messages if m["To"] == "fine@example.com"]) == 1


class _LockProbingSmtpHandler:
    """While a message is being handed over, writes to its outbox row from a connection of its own,
    waiting for no lock: it succeeds only if the sending job holds no transaction on that row (on SQLite,
    no transaction at all: any holds the database's write lock)."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url, connect_args={"timeout": 0} if url.startswith("sqlite") else {})
        self.probes: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        if "probe@example.com" not in envelope.rcpt_tos:  # mail other tests left in the live database
            return "250 Message accepted for delivery"
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL lock_timeout = '50ms'")
                connection.execute(sa.update(OutboxMessage).where(OutboxMessage.to.in_(envelope.rcpt_tos))
                                   .values(last_error=None))
            self.probes.append("written")
        except sa.exc.OperationalError as error:
            self.probes.append(f"locked: {error}")
        return "250 Message accepted for delivery"


@pytest.mark.live
def test_smtp_is_talked_to_with_no_transaction_open(live_app):
    from aiosmtpd.controller import Controller

    from core.db import unit_of_work

    with live_app.app_context():
        send_outbox()  # what other tests left waiting goes to the suite's SMTP server first
        db.session.remove()
    handler = _LockProbingSmtpHandler(live_app.config["SQLALCHEMY_DATABASE_URI"])
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    port = live_app.config["MAIL_PORT"]
    live_app.config["MAIL_PORT"] = controller.port
    try:
        with live_app.app_context():
            with unit_of_work() as session:
                enqueue_mail(session, to="probe@example.com", locale="en", template="password_reset",
                             context={"name": "P", "path": "/password/reset/x", "minutes": 60})
            assert send_outbox() == 1
            sent = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to == "probe@example.com"))
            assert sent.sent_at is not None and sent.claimed_until is None and sent.attempts == 1
            db.session.remove()
        assert handler.probes == ["written"]
    finally:
        live_app.config["MAIL_PORT"] = port
        controller.stop()
        handler.engine.dispose()


def test_a_message_claimed_by_another_job_is_left_to_it_until_the_claim_lapses(app, session, mailbox):
    from datetime import timedelta

    from core import outbox
    from core.db import utcnow

    message = enqueue_mail(session, to="claimed@example.com", locale="en", template="password_reset",
                           context={"name": "C", "path": "/password/reset/x", "minutes": 60})
    session.flush()
    now = utcnow()
    assert [letter.to for letter in outbox.claim_pending(session, now=now)] == ["claimed@example.com"]
    assert outbox.claim_pending(session, now=now + timedelta(minutes=1)) == []  # another job: nothing to take
    assert send_outbox(now=now + timedelta(minutes=5)) == 0
    assert send_outbox(now=now + outbox.CLAIM) == 1  # the first job died: its claim lapsed
    session.refresh(message)
    assert message.sent_at is not None and message.attempts == 2 and message.claimed_until is None


class _ClosingSmtpHandler:
    """Answers 421 (and closes the connection) to a message for drop@example.com, accepts the others."""

    def __init__(self):
        self.received: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        if "drop@example.com" in envelope.rcpt_tos:
            return "421 Closing the connection"
        self.received.extend(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def test_a_closed_smtp_connection_does_not_count_an_attempt_for_the_messages_behind(app, session):
    from aiosmtpd.controller import Controller

    handler = _ClosingSmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = controller.port
    try:
        for to in ("drop@example.com", "next@example.com", "last@example.com"):
            enqueue_mail(session, to=to, locale="en", template="password_reset",
                         context={"name": "N", "path": "/password/reset/x", "minutes": 60})
        session.flush()
        assert send_outbox() == 0
        attempts = dict(session.execute(select(OutboxMessage.to, OutboxMessage.attempts)).all())
        assert attempts == {"drop@example.com": 1, "next@example.com": 0, "last@example.com": 0}
        for _ in range(app.config["MAIL_MAX_ATTEMPTS"] - 1):
            send_outbox()
        assert send_outbox() == 2  # the message the server refuses has used its attempts; the others go
        assert sorted(handler.received) == ["last@example.com", "next@example.com"]
    finally:
        app.config["MAIL_PORT"] = port
        controller.stop()


def _scheduler(app, tmp_path: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SCHEDULER_LOCK_FILE": str(tmp_path / "scheduler.lock"), "SCHEDULER_RETRY_SECONDS": "1",
           "KEQUIP_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x", "FLASK_APP": "core.app:create_app",
           "MAIL_PORT": "1", "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / f"{name}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "flask", "jobs", "scheduler"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def _wait_for(path: Path, text: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.2)
    return False


def test_one_scheduler_runs_however_many_processes_start(app, tmp_path):
    first = _scheduler(app, tmp_path, "first")
    try:
        assert _wait_for(tmp_path / "first.log", "scheduler started"), (tmp_path / "first.log").read_text()
        second = _scheduler(app, tmp_path, "second")
        try:
            assert _wait_for(tmp_path / "second.log", "standing by"), (tmp_path / "second.log").read_text()
            assert "scheduler started" not in (tmp_path / "second.log").read_text()
            first.terminate()
            first.wait(10)
            # the stand-by process takes over once the holder is gone
            assert _wait_for(tmp_path / "second.log", "scheduler started"), (tmp_path / "second.log").read_text()
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)


def test_gunicorn_workers_run_one_scheduler_and_share_login_limits(app, tmp_path):
    """As `make run` serves: several workers, each tries to start the scheduler, one holds the lock;
    and the login-failure counters live in the database, so the limit holds whichever worker answers."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "PORT": str(port),
           "WEB_CONCURRENCY": "3", "SCHEDULER_ENABLED": "1", "SCHEDULER_RETRY_SECONDS": "1", "SCHEDULER_LOCK_FILE": str(tmp_path / "s.lock"),
           "KEQUIP_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x", "MAIL_PORT": "1", "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py",
                                   "core.app:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _wait_for(log_path, "scheduler started"), log_path.read_text()
        deadline = time.monotonic() + 30
        while log_path.read_text().count("scheduler standing by") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        gc_and_wait = time.monotonic() + 3  # a lost reference would free the lock within this time
        while time.monotonic() < gc_and_wait:
            time.sleep(0.2)
        text = log_path.read_text()
        assert text.count("scheduler started") == 1 and text.count("scheduler standing by") == 2, text
        url = f"http://127.0.0.1:{port}/api/v1/tokens"
        statuses = [requests.post(url, json={"email": "introducer@kequip.test", "password": "wrong"}, timeout=10)
                    .status_code for _ in range(5)]
        assert statuses == [401] * 5
        sixth = requests.post(url, json={"email": "introducer@kequip.test", "password": "kequip-demo"}, timeout=10)
        assert sixth.status_code == 429 and sixth.json()["error"]["code"] == "rate_limited"
        # a page log-in, checked against the counters while its own transaction is open, answers at once
        browser = requests.Session()
        login_page = browser.get(f"http://127.0.0.1:{port}/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
        started = time.monotonic()
        answer = browser.post(f"http://127.0.0.1:{port}/login", data={
            "email": "expert@kequip.test", "password": "kequip-demo", "csrf_token": csrf}, timeout=10)
        assert answer.status_code == 200 and answer.url.endswith("/dashboard") and time.monotonic() - started < 5
    finally:
        server.terminate()
        server.wait(20)


def test_optimize_database_refreshes_sqlite_statistics(app, db_kind):
    from core.jobs import optimize_database

    assert optimize_database() == (1 if db_kind == "sqlite" else 0)
    assert optimize_database() == (1 if db_kind == "sqlite" else 0)  # safe to run twice
