"""The double-booking guarantee against a running server: 50 simultaneous
POST /api/v1/bookings for one slot give exactly one 201 and 49 × 409 booking_conflict, never a 5xx,
and the database holds no two overlapping active bookings afterwards.

(a) the server `make run` starts: gunicorn with gunicorn.conf.py and its own worker count, over a SQLite
file prepared as `make run` prepares it (flask db upgrade, flask demo load, into an instance folder);
(b) gunicorn with 4 workers over PostgreSQL."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.extensions import db
from core.models import Platform, User
from marketplace.booking import services as bookings
from marketplace.booking.models import ACTIVE_BOOKING_STATES, Booking
from marketplace.registry import services
from tests.app_servers import (
    Server,
    app_on,
    gunicorn_conf_workers,
    make_run_sqlite,
    post_at_once,
    prepare_accounts,
    workers_booted,
)
from tests.marketplace.conftest import instrument_values

pytestmark = pytest.mark.live

REQUESTS = 50
BOOKERS = ("enterprise@kequip.test", "platform@kequip.test", "operator@kequip.test")


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
    """(overlapping pairs of bookings in use anywhere, active bookings of the instrument)."""
    with app_on(database_url, instance_dir):
        return len(bookings.find_overlapping_use(db.session)), db.session.scalar(
            sa.select(sa.func.count()).select_from(Booking).where(Booking.instrument_id == instrument_id,
                                                                 Booking.state.in_(ACTIVE_BOOKING_STATES)))


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
    tokens = [server.token(email) for email in BOOKERS]
    start, end = first_free_hour(server.base_url, instrument_id)
    return post_at_once(f"{server.base_url}/api/v1/bookings", [
        (tokens[n % len(tokens)], {"instrument_id": instrument_id, "start": start, "end": end})
        for n in range(REQUESTS)])


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
    url, instance = make_run_sqlite(tmp_path)
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
