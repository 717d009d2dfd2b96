"""A device reports use over POST /api/v1/instruments/{id}/usage with its own token: events become
usage sessions in the order of their times; the same event twice is one; a silent device's session ends
at its last heartbeat; bad tokens and bad times are refused with their codes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.models import AuditEntry
from monitoring import jobs, telemetry
from monitoring.models import DeviceEvent, UsageSession, UsageSource
from tests.marketplace.booking_fixtures import workday_at

MINUTE = timedelta(minutes=1)


@pytest.fixture
def report(app, device, session):
    """report(event, at, secret=…, instrument_id=…) → the response."""
    token, secret = device
    session.commit()  # the API runs its own unit of work
    client = app.test_client()

    def send(event: str, at: datetime | str, *, secret: str | None = secret, instrument_id: int | None = None):
        body = {"event": event, "at": at if isinstance(at, str) else to_local(at).isoformat()}
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return client.post(f"/api/v1/instruments/{instrument_id or token.instrument_id}/usage", json=body,
                           headers=headers)

    return send


def device_sessions(session, instrument_id: int) -> list[UsageSession]:
    session.expire_all()
    return list(session.scalars(select(UsageSession).where(UsageSession.instrument_id == instrument_id,
                                                           UsageSession.source == UsageSource.DEVICE)
                                .order_by(UsageSession.start_at)))


def test_start_heartbeats_and_stop_make_one_session(report, session, instrument):
    t0 = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
    started = report("start", t0)
    assert started.status_code == 200, started.json
    assert started.json["duplicate"] is False and started.json["session"]["end"] is None
    for minutes in (5, 10, 15):
        assert report("heartbeat", t0 + minutes * MINUTE).status_code == 200
    stopped = report("stop", t0 + 20 * MINUTE)
    assert stopped.json["session"]["id"] == started.json["session"]["id"]
    [usage] = device_sessions(session, instrument.id)
    assert (usage.start_at, usage.end_at) == (t0, t0 + 20 * MINUTE)


def test_the_same_event_twice_is_answered_with_the_same_session(report, session, instrument):
    t0 = (utcnow() - timedelta(hours=2)).replace(microsecond=0)
    first = report("start", t0)
    again = report("start", t0)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert again.json["session"] == first.json["session"]
    assert session.scalar(select(DeviceEvent.id).where(DeviceEvent.instrument_id == instrument.id).limit(2)) is not None
    assert len(session.scalars(select(DeviceEvent).where(DeviceEvent.instrument_id == instrument.id)).all()) == 1
    assert len(device_sessions(session, instrument.id)) == 1


def test_events_out_of_order_are_applied_in_the_order_of_their_times(report, session, instrument):
    t0 = (utcnow() - timedelta(hours=5)).replace(microsecond=0)
    # sent: stop, heartbeat, start — happened: start, heartbeat, stop
    report("stop", t0 + 20 * MINUTE)
    report("heartbeat", t0 + 10 * MINUTE)
    late_start = report("start", t0)
    [usage] = device_sessions(session, instrument.id)
    assert (usage.start_at, usage.end_at) == (t0, t0 + 20 * MINUTE)
    assert late_start.json["session"]["id"] == usage.id


def test_a_late_heartbeat_in_a_silent_gap_joins_the_two_sessions(report, session, instrument):
    t0 = (utcnow() - timedelta(hours=6)).replace(microsecond=0)
    report("start", t0)
    report("heartbeat", t0 + 10 * MINUTE)
    report("heartbeat", t0 + 30 * MINUTE)  # 20 minutes of silence: the first session ended at 10
    first, second = device_sessions(session, instrument.id)
    assert (first.start_at, first.end_at) == (t0, t0 + 10 * MINUTE)
    assert (second.start_at, second.end_at) == (t0 + 30 * MINUTE, None)
    report("heartbeat", t0 + 20 * MINUTE)  # arrives late: the device was heard all along
    [joined] = device_sessions(session, instrument.id)
    assert (joined.start_at, joined.end_at, joined.last_seen_at) == (t0, None, t0 + 30 * MINUTE)


def test_a_device_silent_for_its_offline_time_ends_at_its_last_heartbeat(report, session, instrument):
    t0 = (utcnow() - timedelta(hours=4)).replace(microsecond=0)
    report("start", t0)
    report("heartbeat", t0 + 12 * MINUTE)
    assert jobs.close_silent_sessions(now=t0 + 26 * MINUTE) == 0  # 14 minutes: still in use
    assert jobs.close_silent_sessions(now=t0 + 28 * MINUTE) == 1
    [usage] = device_sessions(session, instrument.id)
    assert usage.end_at == t0 + 12 * MINUTE
    assert jobs.close_silent_sessions(now=t0 + 60 * MINUTE) == 0  # run twice, changes nothing


def test_the_offline_time_is_set_per_instrument(report, session, instrument, demo_user):
    t0 = (utcnow() - timedelta(hours=4)).replace(microsecond=0)
    admin = demo_user("platform")
    telemetry.save_settings(session, instrument.id, offline_after_minutes=60, actor=Actor.of(admin, None))
    session.commit()
    report("start", t0)
    report("heartbeat", t0 + 50 * MINUTE)
    [usage] = device_sessions(session, instrument.id)
    assert usage.end_at is None and usage.last_seen_at == t0 + 50 * MINUTE
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "monitoring.settings_saved")) is not None


@pytest.mark.parametrize(("at", "code"), [
    ("2026-12-07T09:00:00", "validation_error"),  # naive
    ("not a time", "validation_error"),
])
def test_a_time_without_offset_or_unreadable_is_refused(report, at, code):
    response = report("start", at)
    assert response.status_code == 422
    assert response.json["error"]["code"] == code


def test_a_time_in_the_future_or_before_the_instrument_is_refused(report, instrument):
    future = report("start", utcnow() + 6 * MINUTE)
    assert future.status_code == 422 and future.json["error"]["code"] == "at_in_future"
    assert report("start", utcnow() + 4 * MINUTE).status_code == 200  # a clock a little ahead is fine
    before = report("start", instrument.created_at - MINUTE)
    assert before.status_code == 422 and before.json["error"]["code"] == "at_before_instrument"


def test_an_unknown_event_is_refused(report):
    response = report("pause", utcnow())
    assert response.status_code == 422


def test_wrong_revoked_and_foreign_tokens(report, session, device, create_instrument, demo_user):
    assert report("start", utcnow(), secret="not-a-token").status_code == 401
    assert report("start", utcnow(), secret=None).json["error"]["code"] == "device_token_invalid"
    other = create_instrument(state="published")
    session.commit()
    foreign = report("start", utcnow(), instrument_id=other.id)
    assert foreign.status_code == 403 and foreign.json["error"]["code"] == "device_token_other_instrument"
    token, _secret = device
    telemetry.revoke_token(session, token.id, instrument_id=token.instrument_id,
                           actor=Actor.of(demo_user("platform"), None), now=utcnow())
    session.commit()
    assert report("start", utcnow()).status_code == 401


def test_a_token_is_kept_hashed_and_its_making_and_revoking_audited(session, device):
    token, secret = device
    assert secret not in token.token_hash and len(token.token_hash) == 64
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "device_token.issued",
                                                   AuditEntry.subject_id == token.id)) is not None


def test_a_device_session_over_a_booking_is_tied_to_it(report, session, instrument, book, demo_user):
    start = workday_at(9, days=-7)
    booking = book(instrument, start, start + timedelta(hours=2), now=start - timedelta(days=3))
    session.commit()
    report("start", start + 5 * MINUTE)
    report("stop", start + 100 * MINUTE)
    [usage] = device_sessions(session, instrument.id)
    assert usage.booking_id == booking.id and usage.user_id == demo_user("enterprise").id
    assert usage.is_external and not usage.is_flagged


def test_device_use_without_a_booking_is_flagged(report, session, instrument):
    t0 = workday_at(7, days=-3)  # before the open hours: nobody booked it
    report("start", t0)
    report("stop", t0 + 30 * MINUTE)
    [usage] = device_sessions(session, instrument.id)
    assert usage.booking_id is None and usage.is_flagged and not usage.is_external


def test_naive_times_never_reach_the_service(report):
    assert report("start", datetime(2026, 12, 7, 9, 0).isoformat()).status_code == 422
    assert report("start", datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc).isoformat()).status_code in (200, 422)


def test_a_device_session_over_a_booking_checks_it_in_and_completes_it_on_the_actual_time(
        report, session, instrument, book):
    from marketplace.booking.models import Booking, BookingState

    start = workday_at(9, days=-7)
    booking = book(instrument, start, start + timedelta(hours=2), now=start - timedelta(days=3))
    session.commit()
    report("start", start + 10 * MINUTE)
    session.expire_all()
    booking = session.get(Booking, booking.id)
    assert booking.state == BookingState.IN_PROGRESS and booking.checked_in_at == start + 10 * MINUTE
    for minutes in (20, 30, 40, 50, 60):
        report("heartbeat", start + minutes * MINUTE)
    report("stop", start + 70 * MINUTE)
    session.expire_all()
    booking = session.get(Booking, booking.id)
    assert booking.state == BookingState.COMPLETED
    assert (booking.checked_in_at, booking.checked_out_at) == (start + 10 * MINUTE, start + 70 * MINUTE)
    assert booking.final_price_fen == 0  # the free instrument: priced on the hour used
    report("stop", start + 70 * MINUTE)  # sent again: nothing changes
    session.expire_all()
    assert session.get(Booking, booking.id).state == BookingState.COMPLETED
