"""A running Kequip server for tests that need one (concurrency against real workers): gunicorn as
`make run` starts it, over a database prepared as `make run` prepares it (or with the demo accounts
only), and an app context on that database for the test's own setup and checks."""
from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import flask_migrate
import requests

from bench.server import AppServer
from config import TestingConfig
from core.app import create_app
from core.demo import DEMO_PASSWORD
from core.demo import load as load_demo
from core.extensions import db

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


class Server(AppServer):
    """gunicorn with gunicorn.conf.py, as `make run` starts it: the instance folder, the scheduler and the
    rate-limit counters in the database as there; the worker count of gunicorn.conf.py unless given."""

    def __init__(self, database_url: str, instance_dir: Path, *, workers: int | None = None) -> None:
        super().__init__(database_url, instance_dir / "gunicorn.log", workers=workers or 0)
        self.instance_dir = instance_dir

    def environment(self) -> dict[str, str]:
        inherited = {name: value for name, value in os.environ.items()
                     if name not in ("WEB_CONCURRENCY", "SECRET_KEY", "RATELIMIT_STORAGE_URI", "SCHEDULER_ENABLED")}
        return inherited | {"DATABASE_URL": self.database_url, "KEQUIP_INSTANCE_DIR": str(self.instance_dir),
                            "HOST": "127.0.0.1", "PORT": str(self.port), "MAIL_PORT": "1",
                            "PYTHONDONTWRITEBYTECODE": "1"} | (
            {"WEB_CONCURRENCY": str(self.workers)} if self.workers else {})

    def token(self, email: str) -> str:
        """A bearer token of a demo account, from the server's own token endpoint."""
        answer = requests.post(f"{self.base_url}/api/v1/tokens", timeout=30,
                               json={"email": email, "password": DEMO_PASSWORD})
        assert answer.status_code == 201, answer.text
        return answer.json()["token"]


@contextmanager
def app_on(database_url: str, instance_dir: Path) -> Iterator[None]:
    """An app context on that database, its connections closed at the end (the server's are its own)."""
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, UPLOAD_DIR=str(instance_dir / "uploads"))
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()
            db.engine.dispose()


def prepare_as_make_run(database_url: str, instance_dir: Path) -> None:
    """What `make run` does before serving: migrate, then load the whole demo district. A SQLite database
    at instance_dir/kequip.sqlite is prepared so once per test run, into an instance folder of its own,
    and each caller gets a copy of that folder (the demo district takes most of such a test's time)."""
    if database_url != f"sqlite:///{instance_dir / 'kequip.sqlite'}":
        _run_make_run_steps(database_url, instance_dir)
        return
    shutil.copytree(_make_run_instance(), instance_dir, dirs_exist_ok=True)


def make_run_sqlite(tmp_path: Path) -> tuple[str, Path]:
    """(URL, instance folder) of a SQLite database under tmp_path prepared as `make run` prepares it."""
    instance_dir = tmp_path / "instance"
    instance_dir.mkdir()
    database_url = f"sqlite:///{instance_dir / 'kequip.sqlite'}"
    prepare_as_make_run(database_url, instance_dir)
    return database_url, instance_dir


@functools.cache
def _make_run_instance() -> Path:
    instance_dir = Path(tempfile.mkdtemp(prefix="kequip-make-run-"))
    atexit.register(shutil.rmtree, instance_dir, ignore_errors=True)
    _run_make_run_steps(f"sqlite:///{instance_dir / 'kequip.sqlite'}", instance_dir)
    return instance_dir


def _run_make_run_steps(database_url: str, instance_dir: Path) -> None:
    environment = os.environ | {"FLASK_APP": "core.app:create_app", "DATABASE_URL": database_url,
                                "KEQUIP_INSTANCE_DIR": str(instance_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    flask = str(Path(sys.executable).with_name("flask"))
    for command in (["db", "upgrade"], ["demo", "load"]):
        subprocess.run([flask, *command], cwd=ROOT, env=environment, check=True, capture_output=True, timeout=300)


def prepare_accounts(database_url: str, instance_dir: Path) -> None:
    """Migrated, with the demo accounts and organisations only (quicker than the whole district)."""
    with app_on(database_url, instance_dir):
        flask_migrate.upgrade()
        load_demo()


def gunicorn_conf_workers() -> int:
    """The worker count gunicorn.conf.py chooses in this environment."""
    settings: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), settings)
    return settings["workers"]


def workers_booted(server: Server) -> int:
    return server.log_path.read_text().count("Booting worker with pid")


def post_at_once(url: str, calls: list[tuple[str, dict]], *, timeout: float = 60.0) -> list[requests.Response]:
    """POST each (bearer token, JSON body) to url at the same moment, each from its own thread on its own
    connection; the answers in the order of the calls. A call left unanswered fails the test."""
    answers: list[requests.Response | requests.RequestException | None] = [None] * len(calls)
    ready = threading.Barrier(len(calls))

    def call(n: int) -> None:
        token, body = calls[n]
        with requests.Session() as http:
            ready.wait()
            try:
                answers[n] = http.post(url, json=body, timeout=timeout, headers={"Authorization": f"Bearer {token}"})
            except requests.RequestException as error:
                answers[n] = error

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(calls))]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout * 1.5)
    log.info("%d concurrent POST %s answered in %.2f s", len(calls), url, time.monotonic() - began)
    failures = [answer for answer in answers if not isinstance(answer, requests.Response)]
    assert not failures, failures
    return answers
