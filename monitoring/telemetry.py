"""Devices report use over the telemetry API: start, stop and heartbeat events with the device's own
time. Events are folded into usage sessions in the order of their times, whatever order they arrive in:
a heartbeat keeps a session open, a stop ends it, and a session that hears nothing for the instrument's
offline time ends at its last heartbeat. The same event sent twice is one event, answered with the same
session. Tokens are per instrument, made and revoked by the platform admin, shown once, kept hashed."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.auth import hash_secret, new_secret
from core.errors import Forbidden, NotFound, RuleBroken, Unauthorized
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking
from marketplace.registry.models import Instrument
from monitoring.models import (
    DEFAULT_OFFLINE_AFTER_MINUTES,
    DeviceEvent,
    DeviceEventKind,
    DeviceToken,
    InstrumentMonitoring,
    UsageSession,
    UsageSource,
)
from monitoring.sessions import attribute

FUTURE_TOLERANCE = timedelta(minutes=5)  # a device's clock may run this far ahead
# Of events at the same instant, a start comes first and a stop last
KIND_ORDER = {DeviceEventKind.START: 0, DeviceEventKind.HEARTBEAT: 1, DeviceEventKind.STOP: 2}


# --- tokens ---------------------------------------------------------------------------------------

def settings_of(session: Session, instrument_id: int) -> InstrumentMonitoring:
    """The instrument's settings, made with the defaults when first asked."""
    settings = session.get(InstrumentMonitoring, instrument_id)
    if settings is None:
        settings = InstrumentMonitoring(instrument_id=instrument_id)
        session.add(settings)
        session.flush()
    return settings


def save_settings(session: Session, instrument_id: int, *, offline_after_minutes: int, actor: Actor) -> None:
    settings = session.scalar(select(InstrumentMonitoring).where(
        InstrumentMonitoring.instrument_id == instrument_id).with_for_update()) or settings_of(session, instrument_id)
    before = {"offline_after_minutes": settings.offline_after_minutes}
    settings.offline_after_minutes = offline_after_minutes
    session.flush()
    record_audit(session, actor, "monitoring.settings_saved", settings, before=before,
                 after={"offline_after_minutes": offline_after_minutes})


def issue_token(session: Session, instrument: Instrument, *, label: str, actor: Actor) -> tuple[DeviceToken, str]:
    """A new device token; the secret is returned this once and only its hash is kept."""
    label = label.strip()
    if not label:
        raise RuleBroken("label_required", _("Name the device."), field="label")
    settings_of(session, instrument.id)
    secret, digest = new_secret()
    token = DeviceToken(instrument_id=instrument.id, label=label[:100], token_hash=digest, created_by_id=actor.user_id)
    session.add(token)
    session.flush()
    record_audit(session, actor, "device_token.issued", token, after=token.audit_view())
    return token, secret


def revoke_token(session: Session, token_id: int, *, instrument_id: int, actor: Actor, now: datetime) -> DeviceToken:
    token = session.scalar(select(DeviceToken).where(DeviceToken.id == token_id,
                                                     DeviceToken.instrument_id == instrument_id).with_for_update())
    if token is None:
        raise NotFound("token_not_found", _("There is no such device token."))
    if token.revoked_at is None:
        before = token.audit_view()
        token.revoked_at = now
        record_audit(session, actor, "device_token.revoked", token, before=before, after=token.audit_view())
    return token


def tokens_of(session: Session, instrument_id: int) -> list[DeviceToken]:
    return list(session.scalars(select(DeviceToken).where(DeviceToken.instrument_id == instrument_id)
                                .order_by(DeviceToken.revoked_at.is_not(None), DeviceToken.id.desc())))


def authenticate(session: Session, instrument_id: int, secret: str | None) -> DeviceToken:
    """The live token the device sent: 401 when it is wrong or revoked, 403 when it is another instrument's."""
    token = session.scalar(select(DeviceToken).where(DeviceToken.token_hash == hash_secret(secret))) if secret else None
    if token is None or not token.is_live:
        raise Unauthorized("device_token_invalid", _("The device token is wrong or has been revoked."))
    if token.instrument_id != instrument_id:
        raise Forbidden("device_token_other_instrument", _("This device token belongs to another instrument."))
    return token


# --- events into sessions -------------------------------------------------------------------------

@dataclass
class Stretch:
    """A session being folded from events."""

    start: datetime
    last_seen: datetime
    end: datetime | None = None
    row: UsageSession | None = None
    events: list[DeviceEvent] = field(default_factory=list)


def fold(stretches: list[Stretch], kind: DeviceEventKind, at: datetime, offline_after: timedelta) -> Stretch | None:
    """Apply one event, in time order, to the stretches so far; the stretch it belongs to, if any."""
    current = stretches[-1] if stretches and stretches[-1].end is None else None
    if current is not None and at - current.last_seen > offline_after:
        current.end, current = current.last_seen, None  # the device went silent: ended at its last word
    if kind == DeviceEventKind.STOP:
        if current is not None:
            current.end = current.last_seen = at
        return current
    if current is None:
        current = Stretch(start=at, last_seen=at)
        stretches.append(current)
    current.last_seen = max(current.last_seen, at)
    return current


@dataclass(frozen=True)
class Reported:
    event: DeviceEvent
    usage: UsageSession | None
    duplicate: bool


def record_event(session: Session, token: DeviceToken, *, kind: DeviceEventKind, at: datetime,
                 now: datetime) -> Reported:
    """Take one event of the token's instrument into its sessions. The caller's unit of work holds the
    transaction; the instrument's settings row is locked so that its events are applied one at a time."""
    instrument = session.get(Instrument, token.instrument_id)
    if at > now + FUTURE_TOLERANCE:
        raise RuleBroken("at_in_future", _("The time lies more than 5 minutes in the future."), field="at")
    if at < instrument.created_at:
        raise RuleBroken("at_before_instrument", _("The time lies before the instrument was registered."),
                         field="at")
    settings = session.scalar(select(InstrumentMonitoring).where(
        InstrumentMonitoring.instrument_id == instrument.id).with_for_update()) or settings_of(session, instrument.id)
    token.last_used_at = now
    existing = session.scalar(select(DeviceEvent).where(DeviceEvent.instrument_id == instrument.id,
                                                        DeviceEvent.kind == kind, DeviceEvent.at == at))
    if existing is not None:
        return Reported(existing, session.get(UsageSession, existing.session_id) if existing.session_id else None,
                        duplicate=True)
    latest = session.scalar(select(func.max(DeviceEvent.at)).where(DeviceEvent.instrument_id == instrument.id))
    event = DeviceEvent(instrument_id=instrument.id, kind=kind, at=at, token_id=token.id, received_at=now)
    session.add(event)
    if latest is None or at >= latest:
        usage = _apply_in_order(session, settings, event)
    else:
        usage = _replay(session, settings, event)
    session.flush()
    return Reported(event, usage, duplicate=False)


def _device_sessions(session: Session, instrument_id: int):
    return select(UsageSession).where(UsageSession.instrument_id == instrument_id,
                                      UsageSession.source == UsageSource.DEVICE)


def _apply_in_order(session: Session, settings: InstrumentMonitoring, event: DeviceEvent) -> UsageSession | None:
    """The common case: the event is the newest, so only the open session (if any) can change."""
    open_row = session.scalar(_device_sessions(session, settings.instrument_id)
                              .where(UsageSession.end_at.is_(None)).order_by(UsageSession.start_at.desc()).limit(1))
    stretches = [Stretch(open_row.start_at, open_row.last_seen_at, row=open_row)] if open_row else []
    stretch = fold(stretches, event.kind, event.at, settings.offline_after)
    _write(session, settings.instrument_id, stretches, until=event.at, now=event.received_at)
    event.session_id = stretch.row.id if stretch else None
    return stretch.row if stretch else None


def _replay(session: Session, settings: InstrumentMonitoring, event: DeviceEvent) -> UsageSession | None:
    """An event older than the newest: fold again every event from the start of the session the event
    falls in (or the next one), reusing the existing session rows in order."""
    instrument_id = settings.instrument_id
    since = session.scalar(select(func.max(UsageSession.start_at)).where(
        UsageSession.instrument_id == instrument_id, UsageSession.source == UsageSource.DEVICE,
        UsageSession.start_at <= event.at)) or event.at
    rows = list(session.scalars(_device_sessions(session, instrument_id).where(UsageSession.start_at >= since)
                                .order_by(UsageSession.start_at)))
    session.flush()  # the new event is among those replayed
    events = sorted(session.scalars(select(DeviceEvent).where(DeviceEvent.instrument_id == instrument_id,
                                                              DeviceEvent.at >= since)),
                    key=lambda e: (e.at, KIND_ORDER[e.kind]))
    stretches: list[Stretch] = []
    for replayed in events:
        stretch = fold(stretches, replayed.kind, replayed.at, settings.offline_after)
        if stretch is not None:
            stretch.events.append(replayed)
        else:
            replayed.session_id = None
    for stretch, row in zip(stretches, rows, strict=False):
        stretch.row = row
    for leftover in rows[len(stretches):]:
        for replayed in events:
            if replayed.session_id == leftover.id:
                replayed.session_id = None
        session.delete(leftover)
    _write(session, instrument_id, stretches, until=events[-1].at, now=event.received_at)
    for stretch in stretches:
        for replayed in stretch.events:
            replayed.session_id = stretch.row.id
    owner = next((s for s in stretches if event in s.events), None)
    return owner.row if owner else None


def _write(session: Session, instrument_id: int, stretches: list[Stretch], *, until: datetime, now: datetime) -> None:
    """Store the stretches as device sessions, each tied to the booking it fulfils, which the use checks in
    and, once it ends, completes on its actual time."""
    for stretch in stretches:
        if stretch.row is None:
            stretch.row = UsageSession(instrument_id=instrument_id, source=UsageSource.DEVICE, start_at=stretch.start,
                                       last_seen_at=stretch.last_seen)
            session.add(stretch.row)
        row = stretch.row
        row.start_at, row.last_seen_at, row.end_at = stretch.start, stretch.last_seen, stretch.end
        attribute(session, row, until=max(until, stretch.last_seen))
    session.flush()
    for stretch in stretches:
        fulfil(session, stretch.row, now=now)


DEVICE = Actor.system("device")


def fulfil(session: Session, usage: UsageSession, *, now: datetime) -> None:
    """The booking a device session covers follows the use: checked in at its start, completed at its end."""
    if usage.booking_id is None:
        return
    booking = session.get(Booking, usage.booking_id)
    bookings.start_use(session, booking, at=usage.start_at, actor=DEVICE)
    if usage.end_at is not None:
        bookings.end_use(session, booking, at=usage.end_at, actor=DEVICE, now=now)


def close_silent_sessions(session: Session, *, now: datetime) -> int:
    """End each device session that has heard nothing for its instrument's offline time, at its last
    heartbeat; the number ended."""
    silent = session.execute(
        select(UsageSession, InstrumentMonitoring.offline_after_minutes)
        .join(InstrumentMonitoring, InstrumentMonitoring.instrument_id == UsageSession.instrument_id, isouter=True)
        .where(UsageSession.source == UsageSource.DEVICE, UsageSession.end_at.is_(None))
        .with_for_update(of=UsageSession)).all()
    ended = 0
    for usage, minutes in silent:
        offline_after = timedelta(minutes=minutes or DEFAULT_OFFLINE_AFTER_MINUTES)
        if now - usage.last_seen_at > offline_after:
            usage.end_at = usage.last_seen_at
            fulfil(session, usage, now=now)
            ended += 1
    return ended
