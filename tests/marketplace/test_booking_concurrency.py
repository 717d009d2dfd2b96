"""The double-booking guarantee against a running server (issue 5, "Done when"): 50 simultaneous
POST /api/v1/bookings for one slot give exactly one 201 and 49 × 409 booking_conflict, never a 5xx,
and the database holds no two overlapping active bookings afterwards.

(a) the server `make run` starts: gunicorn with gunicorn.conf.py and its own worker count, over a SQLite
file prepared as `make run` prepares it (flask db upgrade, flask demo load, into an instance folder);
(b) gunicorn with 4 workers over PostgreSQL."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import flask_migrate
import pytest
import requests
import sqlalchemy as sa

from bench.server import AppServer
from config import TestingConfig
from core.app import create_app
from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.demo import load as load_demo
from core.extensions import db
from core.models import Platform, User
from marketplace import bookings, services
from marketplace.models import ACTIVE_BOOKING_STATES, Booking
from tests.marketplace.conftest import instrument_values

pytestmark = pytest.mark.live

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 50
BOOKERS = ("enterprise@kequip.test", "platform@kequip.test", "operator@kequip.test")


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
    """What `make run` does before serving: migrate, then load the whole demo district."""
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


def publish_free_instrument(database_url: str, instance_dir: Path) -> int:
    """A published instrument with nothing to pay (no gateway involved), through the registry's services."""
    with app_on(database_url, instance_dir), unit_of_work() as session:
        admin = session.scalar(sa.select(User).where(User.email == "platform@kequip.test"))
        bureau = session.scalar(sa.select(User).where(User.email == "bureau@kequip.test"))
        platform = session.get(Platform, admin.grants[0].organisation_id)
        values = instrument_values(session, name_zh="并发预约测试仪", **{name: 0 for name in services.FEE_FIELDS})
        instrument = services.create_instrument(session, platform, admin, actor=Actor.system("test"),
                                                values=values, submit=True, now=utcnow())
        services.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
        return instrument.id


def database_facts(database_url: str, instance_dir: Path, instrument_id: int) -> tuple[int, int]:
    """(overlapping pairs of active bookings anywhere, active bookings of the instrument)."""
    with app_on(database_url, instance_dir):
        return bookings.count_active_overlaps(db.session), db.session.scalar(
            sa.select(sa.func.count()).select_from(Booking).where(Booking.instrument_id == instrument_id,
                                                                 Booking.state.in_(ACTIVE_BOOKING_STATES)))


def gunicorn_conf_workers() -> int:
    """The worker count gunicorn.conf.py chooses in this environment."""
    settings: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), settings)
    return settings["workers"]


def workers_booted(server: Server) -> int:
    return server.log_path.read_text().count("Booting worker with pid")


def first_free_hour(base_url: str, instrument_id: int) -> tuple[str, str]:
    """The first free hour from tomorrow on, from the server's own availability."""
    start = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    answer = requests.get(f"{base_url}/api/v1/instruments/{instrument_id}/availability", timeout=30, params={
        "start": start.isoformat(), "end": (start + timedelta(days=14)).isoformat()})
    assert answer.status_code == 200, answer.text
    for period in answer.json()["free"]:
        opens = datetime.fromisoformat(period["start"])
        opens += timedelta(minutes=-opens.minute % 30, seconds=-opens.second)
        if datetime.fromisoformat(period["end"]) - opens >= timedelta(hours=1):
            return opens.isoformat(), (opens + timedelta(hours=1)).isoformat()
    raise AssertionError(f"no free hour in {answer.json()}")


def race(server: Server, instrument_id: int) -> list[requests.Response]:
    """REQUESTS bookings of one slot at once, from three bookers, each on its own connection."""
    tokens = []
    for email in BOOKERS:
        answer = requests.post(f"{server.base_url}/api/v1/tokens", timeout=30,
                               json={"email": email, "password": "kequip-demo"})
        assert answer.status_code == 201, answer.text
        tokens.append(answer.json()["token"])
    start, end = first_free_hour(server.base_url, instrument_id)
    answers: list[requests.Response | requests.RequestException | None] = [None] * REQUESTS
    ready = threading.Barrier(REQUESTS)

    def book(n: int) -> None:
        with requests.Session() as http:
            ready.wait()
            try:
                answers[n] = http.post(f"{server.base_url}/api/v1/bookings", timeout=60,
                                       headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}"},
                                       json={"instrument_id": instrument_id, "start": start, "end": end})
            except requests.RequestException as error:
                answers[n] = error

    threads = [threading.Thread(target=book, args=(n,)) for n in range(REQUESTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    log.info("%d concurrent bookings of one slot answered in %.2f s", REQUESTS, time.monotonic() - began)
    failures = [answer for answer in answers if not isinstance(answer, requests.Response)]
    assert not failures, failures
    return answers


def check_one_wins(answers: list[requests.Response], server: Server, database_url: str, instrument_id: int) -> None:
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {201: 1, 409: REQUESTS - 1}, (statuses, server.log_path.read_text()[-3000:])
    assert {answer.json()["error"]["code"] for answer in answers if answer.status_code == 409} == {"booking_conflict"}
    winner = next(answer.json() for answer in answers if answer.status_code == 201)
    assert (winner["state"], winner["price_fen"]) == ("confirmed", 0)
    assert server.exit_status() is None  # no worker brought the server down
    assert database_facts(database_url, server.instance_dir, instrument_id) == (0, 1)


def test_one_of_50_concurrent_bookings_wins_on_the_make_run_server_over_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)  # as `make run`: gunicorn.conf.py decides
    instance = tmp_path / "instance"
    instance.mkdir()
    url = f"sqlite:///{instance / 'kequip.sqlite'}"
    prepare_as_make_run(url, instance)
    instrument_id = publish_free_instrument(url, instance)
    with Server(url, instance) as server:
        check_one_wins(race(server, instrument_id), server, url, instrument_id)
        assert workers_booted(server) == gunicorn_conf_workers() >= 2


def test_one_of_50_concurrent_bookings_wins_on_four_workers_over_postgresql(pg_server, tmp_path):
    url = pg_server.create_database("kequip_booking_race")
    prepare_accounts(url, tmp_path)
    instrument_id = publish_free_instrument(url, tmp_path)
    with Server(url, tmp_path, workers=4) as server:
        check_one_wins(race(server, instrument_id), server, url, instrument_id)
        assert workers_booted(server) == 4
