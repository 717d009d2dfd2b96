"""Usage sessions from the day sheet and the platform admin: check-in opens one and check-out ends it; a
walk-in without a booking needs a reason and is flagged; manual entries and corrections need a reason
and are audited; the usage page shows a new device token once, and only to the platform's admins."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.errors import RuleBroken
from core.models import AuditEntry
from marketplace.booking import services as bookings
from monitoring import sessions
from monitoring.models import UsageSession, UsageSource
from tests.marketplace.booking_fixtures import workday_at

HOUR = timedelta(hours=1)


def test_check_in_opens_a_session_and_check_out_ends_it(session, instrument, book, demo_user):
    start = workday_at(9, days=-7)
    booking = book(instrument, start, start + 2 * HOUR, now=start - timedelta(days=3))
    operator = demo_user("operator")
    actor = Actor.of(operator, None)
    bookings.check_in(session, booking, actor=actor, user=operator, now=start + timedelta(minutes=5))
    [usage] = session.scalars(select(UsageSession).where(UsageSession.booking_id == booking.id)).all()
    assert usage.source == UsageSource.CHECK_IN and usage.is_open
    assert usage.start_at == start + timedelta(minutes=5) and usage.user_id == booking.booker_id
    assert usage.is_external and not usage.is_flagged
    bookings.check_out(session, booking, actor=actor, user=operator, now=start + 90 * timedelta(minutes=1))
    session.flush()
    session.expire_all()
    assert usage.end_at == start + timedelta(minutes=90)


def test_a_walk_in_needs_a_reason_is_flagged_and_ends_by_hand(session, instrument, demo_user):
    operator = demo_user("operator")
    actor = Actor.of(operator, None)
    with pytest.raises(RuleBroken) as refused:
        sessions.start_walk_in(session, instrument, user=None, reason="  ", actor=actor, now=utcnow())
    assert refused.value.field == "reason"
    now = utcnow()
    usage = sessions.start_walk_in(session, instrument, user=demo_user("enterprise"), reason="设备调试", actor=actor,
                                   now=now)
    assert usage.is_flagged and usage.is_external and usage.booking_id is None
    sessions.stop(session, usage.id, instrument_id=instrument.id, actor=actor, now=now + HOUR)
    assert usage.end_at == now + HOUR
    with pytest.raises(RuleBroken):
        sessions.stop(session, usage.id, instrument_id=instrument.id, actor=actor, now=now + 2 * HOUR)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "usage_sessions",
                                                              AuditEntry.subject_id == usage.id)).all()
    assert sorted(actions) == ["usage.stopped", "usage.walk_in"]


def test_a_manual_entry_and_a_correction_need_a_reason_and_are_audited(session, instrument, demo_user):
    admin = demo_user("platform")
    actor = Actor.of(admin, None)
    start = utcnow() - timedelta(days=2)
    with pytest.raises(RuleBroken) as no_reason:
        sessions.enter(session, instrument, start_at=start, end_at=start + HOUR, user=None, reason="",
                       actor=actor, now=utcnow())
    assert no_reason.value.code == "reason_required"
    with pytest.raises(RuleBroken) as backwards:
        sessions.enter(session, instrument, start_at=start, end_at=start - HOUR, user=None, reason="补录",
                       actor=actor, now=utcnow())
    assert backwards.value.field == "end_at"
    with pytest.raises(RuleBroken) as ahead:
        sessions.enter(session, instrument, start_at=start, end_at=utcnow() + HOUR, user=None, reason="补录",
                       actor=actor, now=utcnow())
    assert ahead.value.code == "in_the_future"
    usage = sessions.enter(session, instrument, start_at=start, end_at=start + HOUR, user=demo_user("operator"),
                           reason="设备断网，补录", actor=actor, now=utcnow())
    assert usage.source == UsageSource.MANUAL and not usage.is_external and not usage.is_flagged
    sessions.correct(session, usage.id, instrument_id=instrument.id, start_at=start, end_at=start + 2 * HOUR,
                     reason="结束时间记错", actor=actor, now=utcnow())
    corrected = session.scalar(select(AuditEntry).where(AuditEntry.action == "usage.corrected"))
    assert corrected.before["end_at"] == (start + HOUR).isoformat()
    assert corrected.after["end_at"] == (start + 2 * HOUR).isoformat()


def test_the_usage_page_shows_a_new_device_token_once_and_only_admins_make_one(login_as, session, instrument):
    session.commit()
    admin = login_as("platform")
    page = admin.get(f"/instruments/{instrument.id}/usage")
    assert page.status_code == 200 and "使用监测" in page.get_data(as_text=True)
    made = admin.post(f"/instruments/{instrument.id}/usage/tokens", data={"label": "色谱工作站"})
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and 'data-testid="new-device-token"' in html
    secret = re.search(r'<code class="fs-6 user-select-all">([^<]+)</code>', html).group(1)
    again = admin.get(f"/instruments/{instrument.id}/usage").get_data(as_text=True)
    assert "色谱工作站" in again and secret not in again
    operator = login_as("operator")
    assert operator.get(f"/instruments/{instrument.id}/usage").status_code == 200
    assert operator.post(f"/instruments/{instrument.id}/usage/tokens", data={"label": "x"}).status_code == 403
    assert login_as("enterprise").get(f"/instruments/{instrument.id}/usage").status_code == 403


def test_the_admin_enters_use_on_the_page_with_errors_by_field(login_as, session, instrument):
    session.commit()
    admin = login_as("platform")
    start = to_local(utcnow() - timedelta(days=1)).replace(tzinfo=None, second=0, microsecond=0)
    refused = admin.post(f"/instruments/{instrument.id}/usage/entries", data={
        "start_at": f"{start:%Y-%m-%dT%H:%M}", "end_at": f"{start - HOUR:%Y-%m-%dT%H:%M}", "reason": "补录"})
    assert refused.status_code == 422 and "结束时间必须晚于开始时间" in refused.get_data(as_text=True)
    entered = admin.post(f"/instruments/{instrument.id}/usage/entries", data={
        "start_at": f"{start:%Y-%m-%dT%H:%M}", "end_at": f"{start + HOUR:%Y-%m-%dT%H:%M}", "reason": "补录",
        "email": "enterprise@kequip.test"})
    assert entered.status_code == 302
    rows = session.scalars(select(UsageSession).where(UsageSession.instrument_id == instrument.id)).all()
    assert [(r.source, r.is_external) for r in rows] == [(UsageSource.MANUAL, True)]


def test_the_usage_page_sets_the_days_use_against_its_bookings(login_as, session, instrument, book, demo_user):
    from monitoring import metrics

    start = workday_at(9, days=-3)
    book(instrument, start, start + 2 * HOUR, now=start - timedelta(days=3))
    admin = demo_user("platform")
    sessions.enter(session, instrument, start_at=start, end_at=start + 90 * timedelta(minutes=1), user=None,
                   reason="补录", actor=Actor.of(admin, None), now=utcnow())
    day = to_local(start).date()
    metrics.recompute(session, day, day, now=utcnow(), instrument_ids=[instrument.id])
    session.commit()
    client = login_as("operator")
    page = client.get(f"/instruments/{instrument.id}/usage").get_data(as_text=True)
    assert 'data-testid="usage-timeline-table"' in page and f"{day:%m-%d}" in page
    rows = client.get(f"/instruments/{instrument.id}/usage/timeline.csv").get_data(as_text=True).splitlines()
    line = next(row for row in rows if row.startswith(day.isoformat()))
    assert ",2.00,1.50," in line  # booked 2 hours, used 1.5
    svg = client.get(f"/instruments/{instrument.id}/usage/timeline.svg")
    assert svg.mimetype == "image/svg+xml" and "<svg" in svg.get_data(as_text=True)
