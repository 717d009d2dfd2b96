"""The daily figures on a hand-computed week around 国庆 2026 (district rules: weekdays 08:30–12:00 and
13:30–17:30, 7.5 hours; closed on public holidays; open with Monday's hours on make-up working days):
a maintenance window, a holiday, a make-up Saturday, a session over midnight by an external user and one
by the platform's own operator, a booking; then the roll-ups and the incremental job."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import LOCAL_ZONE
from core.db import utcnow
from marketplace.booking import calendar_admin
from marketplace.booking.models import BookingState
from monitoring import jobs, metrics, sessions
from monitoring.models import InstrumentDay

WORKDAY = 27_000  # 7.5 hours in seconds


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_ZONE)


@pytest.fixture
def week(session, instrument, demo_user, book):
    admin, operator, enterprise = demo_user("platform"), demo_user("operator"), demo_user("enterprise")
    actor = Actor.of(admin, None)
    calendar_admin.add_maintenance_window(session, actor=actor, user=admin, instrument=instrument,
                                          start_at=local("2026-09-30T09:00"), end_at=local("2026-09-30T11:00"),
                                          reason="年度保养", now=local("2026-09-01T09:00"))
    sessions.enter(session, instrument, start_at=local("2026-09-29T22:00"), end_at=local("2026-09-30T02:00"),
                   user=enterprise, reason="夜间连续测样", actor=actor, now=utcnow())
    sessions.enter(session, instrument, start_at=local("2026-09-30T14:00"), end_at=local("2026-09-30T15:30"),
                   user=operator, reason="内部方法开发", actor=actor, now=utcnow())
    booking = book(instrument, local("2026-09-30T14:00"), local("2026-09-30T16:00"),
                   now=local("2026-09-25T09:00"))
    assert booking.state == BookingState.CONFIRMED
    return instrument


def stored(session, instrument_id: int) -> dict[date, InstrumentDay]:
    return {row.day: row for row in session.scalars(select(InstrumentDay).where(
        InstrumentDay.instrument_id == instrument_id))}


def test_each_day_of_the_week_to_the_second(session, week):
    result = metrics.recompute(session, date(2026, 9, 28), date(2026, 10, 11), now=utcnow(),
                               instrument_ids=[week.id])
    assert result.days == 14 and result.changed == 14
    days = stored(session, week.id)
    assert days[date(2026, 9, 28)].available_seconds == WORKDAY  # Monday
    tuesday = days[date(2026, 9, 29)]
    assert (tuesday.available_seconds, tuesday.effective_seconds, tuesday.external_seconds) == (WORKDAY, 7200, 7200)
    wednesday = days[date(2026, 9, 30)]
    assert wednesday.available_seconds == WORKDAY - 7200  # the maintenance window
    assert wednesday.effective_seconds == 7200 + 5400  # after midnight, and the operator's 1.5 hours
    assert wednesday.external_seconds == 7200
    assert (wednesday.booked_seconds, wednesday.bookings) == (7200, 1)
    assert days[date(2026, 10, 1)].available_seconds == 0  # 国庆
    assert days[date(2026, 10, 10)].available_seconds == WORKDAY  # 调休上班: a Monday's hours
    assert days[date(2026, 10, 11)].available_seconds == 0  # Sunday
    assert wednesday.week == date(2026, 9, 28) and wednesday.month == date(2026, 9, 1)
    assert wednesday.quarter == date(2026, 7, 1) and wednesday.year == 2026


def test_recomputing_twice_changes_nothing(session, week):
    metrics.recompute(session, date(2026, 9, 28), date(2026, 10, 11), now=utcnow(), instrument_ids=[week.id])
    again = metrics.recompute(session, date(2026, 9, 28), date(2026, 10, 11), now=utcnow(), instrument_ids=[week.id])
    assert (again.days, again.changed) == (14, 0)


def test_weeks_months_and_rates(session, week):
    metrics.recompute(session, date(2026, 9, 28), date(2026, 10, 11), now=utcnow(), instrument_ids=[week.id])
    by_week = metrics.figures(session, metrics.scope_filter("instrument", week.id), "week",
                              date(2026, 9, 28), date(2026, 10, 11))
    assert [row.start for row in by_week] == [date(2026, 9, 28), date(2026, 10, 5)]
    first = by_week[0]
    # Mon, Tue, Wed (less maintenance), Thu 1 Oct and Fri 2 Oct closed, weekend closed
    assert first.available_seconds == 3 * WORKDAY - 7200
    assert first.effective_seconds == 7200 + 7200 + 5400
    assert first.utilization == pytest.approx(19_800 / 73_800)
    assert first.sharing_rate == pytest.approx(14_400 / 19_800)
    # 5–7 Oct holiday, Thu 8 and Fri 9 open, Sat 10 made up, Sun 11 closed
    assert by_week[1].available_seconds == 3 * WORKDAY and by_week[1].utilization == 0
    by_month = metrics.figures(session, metrics.scope_filter("instrument", week.id), "month",
                               date(2026, 9, 28), date(2026, 10, 11))
    assert [(row.start, row.effective_seconds) for row in by_month] == [(date(2026, 9, 1), 19_800),
                                                                        (date(2026, 10, 1), 0)]
    platform = metrics.figures(session, metrics.scope_filter("platform", week.platform_id), "year",
                               date(2026, 9, 28), date(2026, 10, 11))
    assert platform[0].start == date(2026, 1, 1) and platform[0].effective_seconds >= 19_800


def test_revenue_is_the_final_price_of_completed_bookings_and_the_fees(session):
    completed = SimpleNamespace(state=BookingState.COMPLETED, price_fen=90_000, voucher_fen=45_000,
                                final_price_fen=70_000, final_voucher_fen=35_000, cancellation_fee_fen=0)
    assert metrics.revenue(completed) == (35_000, 35_000)
    missed = SimpleNamespace(state=BookingState.NO_SHOW, price_fen=90_000, voucher_fen=45_000, final_price_fen=None,
                             final_voucher_fen=None, cancellation_fee_fen=45_000)
    assert metrics.revenue(missed) == (45_000, 0)
    confirmed = SimpleNamespace(state=BookingState.CONFIRMED, price_fen=90_000, voucher_fen=0, final_price_fen=None,
                                final_voucher_fen=None, cancellation_fee_fen=0)
    assert metrics.revenue(confirmed) == (0, 0)


def test_the_job_recomputes_only_the_days_that_changed(session, week, demo_user):
    session.commit()
    jobs.roll_up_metrics(now=utcnow())  # the first run: this year so far
    before = stored(session, week.id)[date(2026, 9, 30)].effective_seconds
    admin = demo_user("platform")
    sessions.enter(session, week, start_at=local("2026-09-30T16:00"), end_at=local("2026-09-30T16:30"),
                   user=admin, reason="补录", actor=Actor.of(admin, None), now=utcnow())
    session.commit()
    changed = jobs.roll_up_metrics(now=utcnow() + timedelta(minutes=10))
    assert changed >= 1
    session.expire_all()
    assert stored(session, week.id)[date(2026, 9, 30)].effective_seconds == before + 1800
    assert jobs.roll_up_metrics(now=utcnow() + timedelta(minutes=20)) == 0
