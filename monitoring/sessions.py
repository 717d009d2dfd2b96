"""Usage sessions: the one record of real use. Check-in and check-out on the day sheet open and close
one; a walk-in without a booking needs a reason and is flagged; the platform admin enters or corrects
one with a reason (audited). Each session is tied to the booking it fulfils, when one covers it, and is
external when its user is outside the instrument's own platform."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.errors import NotFound, RuleBroken
from core.models import User
from marketplace.booking.models import Booking, BookingState
from marketplace.registry.models import Instrument, UserType
from monitoring.models import UsageSession, UsageSource

# Bookings whose time a session of use can fulfil
FULFILLED_STATES = (BookingState.CONFIRMED, BookingState.IN_PROGRESS, BookingState.COMPLETED)
MAX_MANUAL_SPAN = timedelta(days=7)


def attribute(session: Session, usage: UsageSession, *, until: datetime) -> None:
    """Tie the session to the booking of its instrument that it overlaps most (its booker, organisation
    and whether they are outside the platform follow); without one, it is use without a booking, flagged
    unless the platform admin entered it."""
    end = usage.end_at or until
    candidates = session.scalars(select(Booking).where(
        Booking.instrument_id == usage.instrument_id, Booking.state.in_(FULFILLED_STATES),
        Booking.start_at < max(end, usage.start_at + timedelta(seconds=1)), Booking.end_at > usage.start_at)).all()
    if not candidates:
        usage.booking_id = None
        usage.is_flagged = usage.source != UsageSource.MANUAL
        return
    best = max(candidates, key=lambda b: (min(b.end_at, end) - max(b.start_at, usage.start_at), -b.id))
    usage.booking_id, usage.user_id = best.id, best.booker_id
    usage.organisation_id = best.enterprise_id or best.instrument.platform_id
    usage.is_external = best.user_type != UserType.OWN_STAFF
    usage.is_flagged = False


def _person(session: Session, user: User | None, instrument: Instrument) -> tuple[int | None, bool]:
    """The organisation a named person uses the instrument for, and whether it is outside the platform."""
    if user is None:
        return None, False
    organisation_ids = {grant.organisation_id for grant in user.grants if grant.organisation_id}
    if instrument.platform_id in organisation_ids:
        return instrument.platform_id, False
    return (min(organisation_ids) if organisation_ids else None), True


# --- check-in and check-out (signals of the booking calendar) --------------------------------------

def open_for_booking(session: Session, booking: Booking, *, at: datetime) -> UsageSession:
    usage = UsageSession(instrument_id=booking.instrument_id, source=UsageSource.CHECK_IN, start_at=at,
                         last_seen_at=at, user_id=booking.booker_id)
    session.add(usage)
    attribute(session, usage, until=booking.end_at)
    usage.booking_id = booking.id  # the booking checked in, whatever else overlaps
    return usage


def close_for_booking(session: Session, booking: Booking, *, at: datetime) -> UsageSession | None:
    usage = session.scalar(select(UsageSession).where(
        UsageSession.booking_id == booking.id, UsageSession.source == UsageSource.CHECK_IN,
        UsageSession.end_at.is_(None)).with_for_update())
    if usage is None:  # checked in before sessions were recorded: the booking's own times are the use
        usage = open_for_booking(session, booking, at=booking.checked_in_at or booking.start_at)
    usage.end_at = usage.last_seen_at = max(at, usage.start_at)
    return usage


def on_checked_in(booking: Booking, *, session: Session, at: datetime) -> None:
    open_for_booking(session, booking, at=at)


def on_checked_out(booking: Booking, *, session: Session, at: datetime) -> None:
    close_for_booking(session, booking, at=at)


# --- walk-ins and the platform admin's entries ----------------------------------------------------

def start_walk_in(session: Session, instrument: Instrument, *, user: User | None, reason: str, actor: Actor,
                  now: datetime) -> UsageSession:
    """Use without a booking, started by the operator: it needs a reason and is flagged."""
    reason = reason.strip()
    if not reason:
        raise RuleBroken("reason_required", _("Say why the instrument is used without a booking."), field="reason")
    organisation_id, external = _person(session, user, instrument)
    usage = UsageSession(instrument_id=instrument.id, source=UsageSource.CHECK_IN, start_at=now, last_seen_at=now,
                         user_id=user.id if user else None, organisation_id=organisation_id, is_external=external,
                         reason=reason[:500], is_flagged=True, created_by_id=actor.user_id)
    session.add(usage)
    session.flush()
    record_audit(session, actor, "usage.walk_in", usage, after=usage.audit_view())
    return usage


def stop(session: Session, usage_id: int, *, instrument_id: int, actor: Actor, now: datetime) -> UsageSession:
    """End an open walk-in."""
    usage = _locked(session, usage_id, instrument_id)
    if not usage.is_open:
        raise RuleBroken("usage_closed", _("This use has already ended."))
    before = usage.audit_view()
    usage.end_at = usage.last_seen_at = max(now, usage.start_at)
    record_audit(session, actor, "usage.stopped", usage, before=before, after=usage.audit_view())
    return usage


def _check_span(start_at: datetime, end_at: datetime, now: datetime) -> None:
    if end_at <= start_at:
        raise RuleBroken("end_before_start", _("The end must be after the start."), field="end_at")
    if end_at > now:
        raise RuleBroken("in_the_future", _("Only use that has happened can be entered."), field="end_at")
    if end_at - start_at > MAX_MANUAL_SPAN:
        raise RuleBroken("span_too_long", _("One entry spans at most %(n)s days.", n=MAX_MANUAL_SPAN.days),
                         field="end_at")


def enter(session: Session, instrument: Instrument, *, start_at: datetime, end_at: datetime, user: User | None,
          reason: str, actor: Actor, now: datetime) -> UsageSession:
    """A session the platform admin enters by hand, with a reason; audited."""
    reason = reason.strip()
    if not reason:
        raise RuleBroken("reason_required", _("Give the reason for this entry."), field="reason")
    _check_span(start_at, end_at, now)
    organisation_id, external = _person(session, user, instrument)
    usage = UsageSession(instrument_id=instrument.id, source=UsageSource.MANUAL, start_at=start_at, end_at=end_at,
                         last_seen_at=end_at, user_id=user.id if user else None, organisation_id=organisation_id,
                         is_external=external, reason=reason[:500], created_by_id=actor.user_id)
    session.add(usage)
    if user is None:
        attribute(session, usage, until=end_at)
    session.flush()
    record_audit(session, actor, "usage.entered", usage, after=usage.audit_view())
    return usage


def correct(session: Session, usage_id: int, *, instrument_id: int, start_at: datetime, end_at: datetime,
            reason: str, actor: Actor, now: datetime) -> UsageSession:
    """Correct a session's times, with a reason; audited with what it was."""
    reason = reason.strip()
    if not reason:
        raise RuleBroken("reason_required", _("Give the reason for this correction."), field="reason")
    _check_span(start_at, end_at, now)
    usage = _locked(session, usage_id, instrument_id)
    before = usage.audit_view()
    usage.start_at, usage.end_at, usage.last_seen_at = start_at, end_at, end_at
    usage.reason = reason[:500]
    record_audit(session, actor, "usage.corrected", usage, before=before, after=usage.audit_view())
    return usage


def find(session: Session, usage_id: int, *, instrument_id: int, lock: bool = False) -> UsageSession:
    statement = select(UsageSession).where(UsageSession.id == usage_id, UsageSession.instrument_id == instrument_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    usage = session.scalar(statement)
    if usage is None:
        raise NotFound("usage_not_found", _("There is no such use of this instrument."))
    return usage


def _locked(session: Session, usage_id: int, instrument_id: int) -> UsageSession:
    return find(session, usage_id, instrument_id=instrument_id, lock=True)


def sessions_of(session: Session, instrument_id: int, *, start: datetime, end: datetime) -> list[UsageSession]:
    """The instrument's sessions that meet [start, end), oldest first."""
    return list(session.scalars(select(UsageSession).where(
        UsageSession.instrument_id == instrument_id, UsageSession.start_at < end,
        sa.or_(UsageSession.end_at.is_(None), UsageSession.end_at > start)).order_by(UsageSession.start_at)))
