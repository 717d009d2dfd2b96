"""Monitoring's part of the demo district: months of use beside the bookings the marketplace's demo
checked in and out (their sessions come from the check-in signals): an instrument its own platform keeps
to itself, a booking overrun, a device that reports heartbeats now, walk-ins without a booking; then the
daily figures of the last half year and the alerts they raise, so that every dashboard is filled."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import Actor
from core.clock import LOCAL_ZONE, to_local
from core.db import utcnow
from core.models import Role, RoleGrant, User
from marketplace.booking.models import Booking, BookingState
from marketplace.registry.models import CATALOGUE_STATES, Instrument, InstrumentState
from monitoring import alerts, metrics, sessions, telemetry
from monitoring.alert_rules import Context
from monitoring.models import DeviceToken, MetricsWatermark, UsageSession, UsageSource
from vouchers import flags as voucher_flags

HISTORY_DAYS = 180
HOARDED_WEEKS = 12
SILENCE = timedelta(minutes=40)


def load_into(session: Session) -> int:
    if session.scalar(select(func.count()).select_from(DeviceToken)):
        return 0
    now = utcnow()
    admin = session.scalar(select(User).where(User.email == "platform@kequip.test"))
    platform_id = admin.grants[0].organisation_id
    actor = Actor.of(admin, None)
    operator = session.scalar(select(User).join(RoleGrant).where(
        RoleGrant.role == Role.PLATFORM_OPERATOR, RoleGrant.organisation_id == platform_id))
    booked = select(func.count(Booking.id)).where(Booking.instrument_id == Instrument.id).scalar_subquery()
    quiet = list(session.scalars(select(Instrument).where(  # the platform's least booked instruments
        Instrument.platform_id == platform_id, Instrument.state.in_(CATALOGUE_STATES)).order_by(booked, Instrument.id)
        .limit(3)))
    idle = _idle(session, platform_id)
    _published_long_ago(session, [quiet[0], *idle], now=now)
    created = _hoarded(session, quiet[0], operator, actor, now=now)
    created += _overrun(session, platform_id, actor, now=now)
    created += _device(session, quiet[1], actor, now=now)
    created += _walk_in(session, quiet[2], operator, now=now)
    created += _silent_device(session, actor, now=now)
    idle[-1].updated_at = now - timedelta(days=400)  # a catalogue entry nobody has looked after for a year
    today = to_local(now).date()
    metrics.recompute(session, today - timedelta(days=HISTORY_DAYS), today, now=now)
    session.add(MetricsWatermark(taken_until=now))
    alerts.evaluate(session, context=Context(now=now, large_line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"],
                                             voucher_usage=voucher_flags.usage_source(current_app)))
    return created


def _idle(session: Session, platform_id: int) -> list[Instrument]:
    """Two instruments of other platforms that nobody books or uses."""
    booked = select(Booking.id).where(Booking.instrument_id == Instrument.id).exists()
    return list(session.scalars(select(Instrument).where(
        Instrument.platform_id != platform_id, Instrument.state == InstrumentState.PUBLISHED, ~booked)
        .order_by(Instrument.id).limit(2)))


def _published_long_ago(session: Session, instruments: list[Instrument], *, now: datetime) -> None:
    """The demo publishes its instruments as it loads; these are judged over half a year of history (the
    idle and hoarded rules look back 180 days), so they were published before it."""
    for instrument in instruments:
        instrument.published_at = instrument.created_at = now - timedelta(days=HISTORY_DAYS + 20)


def _at(day: date, clock: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=LOCAL_ZONE)


def _hoarded(session: Session, instrument: Instrument, operator: User, actor: Actor, *, now: datetime) -> int:
    """Used every working morning by the platform's own staff, never by anyone outside it."""
    today = to_local(now).date()
    created = 0
    for back in range(7 * HOARDED_WEEKS, 0, -1):
        day = today - timedelta(days=back)
        if day.weekday() < 5:
            sessions.enter(session, instrument, start_at=_at(day, "08:30"), end_at=_at(day, "12:00"), user=operator,
                           reason="本平台课题组内部测试", actor=actor, now=now)
            created += 1
    return created


def _overrun(session: Session, platform_id: int, actor: Actor, *, now: datetime) -> int:
    """The latest completed booking of the platform ran 50 minutes past its end."""
    booking = session.scalar(select(Booking).join(Instrument).where(
        Instrument.platform_id == platform_id, Booking.state == BookingState.COMPLETED)
        .order_by(Booking.end_at.desc()).limit(1))
    usage = session.scalar(select(UsageSession).where(UsageSession.booking_id == booking.id,
                                                      UsageSession.source == UsageSource.CHECK_IN))
    if usage is None:
        return 0
    sessions.correct(session, usage.id, instrument_id=booking.instrument_id, start_at=usage.start_at,
                     end_at=booking.end_at + timedelta(minutes=50), reason="样品未测完，操作员确认延时",
                     actor=actor, now=now)
    return 1


def _device(session: Session, instrument: Instrument, actor: Actor, *, now: datetime) -> int:
    """A device that reported a run last week and reports heartbeats now: an open session."""
    _published_long_ago(session, [instrument], now=now)
    token, _secret = telemetry.issue_token(session, instrument, label="在线监测终端 A1", actor=actor)
    last_week = now - timedelta(days=7)
    events = [("start", last_week)] + [("heartbeat", last_week + timedelta(minutes=m)) for m in range(5, 95, 5)]
    events.append(("stop", last_week + timedelta(minutes=95)))
    started = now - timedelta(minutes=90)
    events += [("start", started)] + [("heartbeat", started + timedelta(minutes=m)) for m in range(5, 90, 5)]
    for kind, at in events:
        telemetry.record_event(session, token, kind=telemetry.DeviceEventKind(kind), at=at.replace(microsecond=0),
                               now=now)
    return len(events)


def _silent_device(session: Session, actor: Actor, *, now: datetime) -> int:
    """A device that went silent during the booking in progress now: it last reported 40 minutes ago."""
    booking = session.scalar(select(Booking).where(Booking.state == BookingState.IN_PROGRESS,
                                                   Booking.start_at <= now - SILENCE, Booking.end_at > now)
                             .order_by(Booking.id).limit(1))
    if booking is None:
        return 0
    _published_long_ago(session, [booking.instrument], now=now)
    token, _secret = telemetry.issue_token(session, booking.instrument, label="在线监测终端 B2", actor=actor)
    telemetry.record_event(session, token, kind=telemetry.DeviceEventKind.HEARTBEAT,
                           at=(now - SILENCE).replace(microsecond=0), now=now)
    return 1


def _walk_in(session: Session, instrument: Instrument, operator: User, *, now: datetime) -> int:
    """Use without a booking, started by the operator two days ago and ended after an hour."""
    started = now - timedelta(days=2)
    usage = sessions.start_walk_in(session, instrument, user=operator, reason="设备故障排查后试运行",
                                   actor=Actor.of(operator, None), now=started)
    sessions.stop(session, usage.id, instrument_id=instrument.id, actor=Actor.of(operator, None),
                  now=started + timedelta(hours=1))
    return 1
