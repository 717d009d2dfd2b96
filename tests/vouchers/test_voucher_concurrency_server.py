"""A voucher is never overspent by a running server: 100 simultaneous
POST /api/v1/bookings drawing on one voucher, each for a different free slot of one of ten instruments
(so no booking_conflict), hold no more than its balance: the voucher pays its full part on as many
bookings as its balance covers and the rest of it on one more; every other answer is
422 voucher_insufficient, never a 5xx; afterwards the voucher's balance is not negative and equals its
ledger, and what it holds is the sum of the accepted bookings' voucher parts.

(a) the server `make run` starts: gunicorn with gunicorn.conf.py and its own worker count, over a SQLite
file prepared as `make run` prepares it; (b) gunicorn with 4 workers over PostgreSQL."""
from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from core.audit import Actor
from core.clock import to_local
from core.db import unit_of_work, utcnow
from core.extensions import db
from core.models import Platform, User
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking
from marketplace.registry import services as catalogue
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
from tests.vouchers.conftest import programme_values
from vouchers import ledger, services
from vouchers.models import EntryKind, LedgerEntry, Voucher

pytestmark = pytest.mark.live

ENTERPRISE, PLATFORM_ADMIN, BUREAU = "enterprise@kequip.test", "platform@kequip.test", "bureau@kequip.test"
REQUESTS, INSTRUMENTS = 100, 10
SLOT = timedelta(minutes=30)
# Half an hour at the district enterprise rate of instrument_values: ¥100.00 + ¥400.00 / 2 = ¥300.00;
# at 50 % the voucher pays ¥150.00. Its balance covers 30 such parts and ¥70.00 of a 31st.
PRICE_FEN, PART_FEN, FULL_PARTS, REST_FEN = 300_00, 150_00, 30, 70_00
AMOUNT_FEN = FULL_PARTS * PART_FEN + REST_FEN


@dataclass(frozen=True)
class Setup:
    instrument_ids: list[int]
    voucher_id: int


def prepare_voucher(database_url: str, instance_dir: Path) -> Setup:
    """INSTRUMENTS published instruments of the demo platform, and a voucher of AMOUNT_FEN for the demo
    enterprise in a programme of its own (50 % for every enterprise; no cap below the balance), issued
    through the bureau's approval of the enterprise's application."""
    with app_on(database_url, instance_dir), unit_of_work() as session:
        users = {u.email: u for u in session.scalars(sa.select(User).where(
            User.email.in_((ENTERPRISE, PLATFORM_ADMIN, BUREAU))))}
        admin, bureau, member = users[PLATFORM_ADMIN], users[BUREAU], users[ENTERPRISE]
        platform = session.get(Platform, admin.grants[0].organisation_id)
        instrument_ids = []
        for n in range(INSTRUMENTS):
            instrument = catalogue.create_instrument(
                session, platform, admin, actor=Actor.system("test"), submit=True, now=utcnow(),
                values=instrument_values(session, asset_number=f"KQ-VR-{uuid.uuid4().hex[:10]}",
                                         model=f"Voucher-race-{n}"))
            catalogue.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
            instrument_ids.append(instrument.id)
        programme = services.create_programme(session, actor=Actor.system("test"), user=bureau, values=programme_values(
            name=f"并发用券 {uuid.uuid4().hex[:8]}", coverage_bp=5_000, sme_coverage_bp=5_000,
            enterprise_year_cap_fen=10 * AMOUNT_FEN, order_cap_fen=10 * PART_FEN, pool_fen=10 * AMOUNT_FEN))
        application = services.apply_for_voucher(
            session, actor=Actor.system("test"), user=member, programme_id=programme.id,
            enterprise_id=bookings.booker_enterprise(session, member).id, requested_fen=AMOUNT_FEN,
            purpose="并发测试", planned_instruments="", now=utcnow())
        voucher = services.approve_application(session, application, actor=Actor.system("test"), user=bureau,
                                               amount_fen=AMOUNT_FEN, now=utcnow())
        return Setup(instrument_ids, voucher.id)


def free_slots(base_url: str, instrument_id: int, count: int) -> list[tuple[str, str]]:
    """The first `count` free half hours from tomorrow on, from the server's own availability (every test
    instrument follows the district's rules, so they are free on each)."""
    start = to_local(utcnow() + timedelta(days=1)).replace(microsecond=0)
    answer = requests.get(f"{base_url}/api/v1/instruments/{instrument_id}/availability", timeout=30, params={
        "start": start.isoformat(), "end": (start + timedelta(days=14)).isoformat()})
    assert answer.status_code == 200, answer.text
    slots = []
    for period in answer.json()["free"]:
        opens, closes = datetime.fromisoformat(period["start"]), datetime.fromisoformat(period["end"])
        opens += timedelta(minutes=-opens.minute % 30, seconds=-opens.second)
        while opens + SLOT <= closes and len(slots) < count:
            slots.append((opens.isoformat(), (opens + SLOT).isoformat()))
            opens += SLOT
    assert len(slots) == count, answer.json()
    return slots


def race(server: Server, setup: Setup) -> list[requests.Response]:
    """REQUESTS bookings at once by the enterprise's member, all with the voucher: each instrument's first
    REQUESTS / INSTRUMENTS free half hours."""
    token = server.token(ENTERPRISE)
    slots = free_slots(server.base_url, setup.instrument_ids[0], REQUESTS // INSTRUMENTS)
    return post_at_once(f"{server.base_url}/api/v1/bookings", [
        (token, {"instrument_id": instrument_id, "start": start, "end": end, "voucher_id": setup.voucher_id})
        for instrument_id in setup.instrument_ids for start, end in slots])


def check_never_overspent(answers: list[requests.Response], server: Server, database_url: str, setup: Setup) -> None:
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {201: FULL_PARTS + 1, 422: REQUESTS - FULL_PARTS - 1}, (
        statuses, server.log_path.read_text()[-3000:])
    refused = {answer.json()["error"]["code"] for answer in answers if answer.status_code == 422}
    assert refused == {"voucher_insufficient"}
    accepted = [answer.json() for answer in answers if answer.status_code == 201]
    assert sorted(b["voucher_fen"] for b in accepted) == [REST_FEN] + [PART_FEN] * FULL_PARTS
    assert all(b["price_fen"] == PRICE_FEN and b["payable_fen"] == PRICE_FEN - b["voucher_fen"] for b in accepted)
    assert sum(b["voucher_fen"] for b in accepted) <= AMOUNT_FEN
    assert server.exit_status() is None  # no worker brought the server down

    with app_on(database_url, server.instance_dir):
        session = db.session
        voucher = session.get(Voucher, setup.voucher_id)
        totals = ledger.ledger_totals(session, voucher.id)
        columns = (voucher.balance_fen, voucher.held_fen, voucher.consumed_fen, voucher.redeemed_fen)
        assert columns == (totals.balance_fen, totals.held_fen, totals.consumed_fen, totals.redeemed_fen)
        assert voucher.balance_fen >= 0
        assert voucher.balance_fen == AMOUNT_FEN - sum(b["voucher_fen"] for b in accepted) == 0
        held = dict(session.execute(sa.select(Booking.id, Booking.voucher_fen).where(
            Booking.voucher_id == voucher.id)).all())
        assert held == {b["id"]: b["voucher_fen"] for b in accepted}  # refused bookings left nothing behind
        assert voucher.held_fen == sum(held.values()) == AMOUNT_FEN
        kinds = session.scalars(sa.select(LedgerEntry.kind).where(LedgerEntry.voucher_id == voucher.id)).all()
        assert Counter(kinds) == {EntryKind.ISSUE: 1, EntryKind.HOLD: FULL_PARTS + 1}
        assert voucher.id not in ledger.mismatched_vouchers(session)


def test_100_concurrent_bookings_never_overspend_a_voucher_on_the_make_run_server_over_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)  # as `make run`: gunicorn.conf.py decides
    url, instance = make_run_sqlite(tmp_path)
    setup = prepare_voucher(url, instance)
    with Server(url, instance) as server:
        check_never_overspent(race(server, setup), server, url, setup)
        assert workers_booted(server) == gunicorn_conf_workers() >= 2


def test_100_concurrent_bookings_never_overspend_a_voucher_on_four_workers_over_postgresql(pg_server, tmp_path):
    url = pg_server.create_database("kequip_voucher_race")
    prepare_accounts(url, tmp_path)
    setup = prepare_voucher(url, tmp_path)
    with Server(url, tmp_path, workers=4) as server:
        check_never_overspent(race(server, setup), server, url, setup)
        assert workers_booted(server) == 4
