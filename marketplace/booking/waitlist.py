"""The waitlist of a busy slot: when it frees, the first in line is offered it by e-mail for a limited
time (the instrument rules' waitlist_offer_minutes), then the next."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import to_local
from core.errors import NotFound, RuleBroken
from core.models import User
from core.outbox import enqueue_mail
from core.states import move
from marketplace.booking import services as bookings
from marketplace.booking.availability import busy_bookings, effective_rules, maintenance_windows
from marketplace.booking.models import (
    WAITLIST_STATE_LABELS,
    WAITLIST_TRANSITIONS,
    Booking,
    WaitlistEntry,
    WaitlistState,
)
from marketplace.registry.models import Instrument

OPEN_STATES = (WaitlistState.WAITING, WaitlistState.OFFERED)
SHOWN_ENTRIES = 200


def _move(session: Session, entry: WaitlistEntry, to: WaitlistState, *, actor: Actor,
          after: dict | None = None) -> None:
    before = entry.state.value
    move(entry, to, WAITLIST_TRANSITIONS, WAITLIST_STATE_LABELS)
    session.flush()
    record_audit(session, actor, f"waitlist_entry.{to.value}", entry, before={"state": before},
                 after={"state": entry.state.value} | (after or {}))


def _get_own_entry(session: Session, user: User, entry_id: int) -> WaitlistEntry:
    """The user's own entry, locked: a double click waits for the first and finds it done."""
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.id == entry_id)
                           .with_for_update(of=WaitlistEntry))
    if entry is None or entry.user_id != user.id:
        raise NotFound("not_found", _("There is no such waitlist entry."))
    return entry


# --- the user's side ----------------------------------------------------------------------------

def join_waitlist(session: Session, *, actor: Actor, user: User, instrument_id: int, start_at: datetime,
                  end_at: datetime, now: datetime) -> WaitlistEntry:
    """Wait for a busy slot. The slot must be one the user could book were it free (the booking rules
    apply); a free slot is refused (code slot_free: book it). Joining twice gives the same entry."""
    instrument = session.get(Instrument, instrument_id)
    if instrument is None:
        raise NotFound("not_found", _("There is no such instrument."))
    user_type, _enterprise = bookings.classify_booker(session, user, instrument)
    bookings.check_instrument_bookable(instrument, user_type)
    rules = effective_rules(session, instrument)
    bookings.check_time_rules(session, rules, instrument, start_at, end_at, now=now)
    bookings.check_qualification(session, rules, user, instrument, user_type, now=now)
    existing = _open_entry(session, instrument.id, user.id, start_at, end_at)
    if existing is not None:
        return existing
    blocking = busy_bookings(session, instrument.id, start_at, rules.block_end(end_at))
    if not blocking:
        raise RuleBroken("slot_free", _("This time is free: book it instead of joining the waitlist."),
                         field="start")
    if all(booking.booker_id == user.id for booking in blocking):
        raise RuleBroken("own_booking", _("You have booked this time yourself."), field="start")
    entry = WaitlistEntry(instrument_id=instrument.id, user_id=user.id, start_at=start_at, end_at=end_at,
                          state=WaitlistState.WAITING, created_at=now)
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:  # the same person joined the same slot in a request that won the race
        return _open_entry(session, instrument.id, user.id, start_at, end_at)
    record_audit(session, actor, "waitlist_entry.waiting", entry,
                 after={"state": entry.state.value, "instrument_id": instrument.id,
                        "start_at": start_at.isoformat(), "end_at": end_at.isoformat()})
    return entry


def _open_entry(session: Session, instrument_id: int, user_id: int, start_at: datetime,
                end_at: datetime) -> WaitlistEntry | None:
    return session.scalar(select(WaitlistEntry).where(
        WaitlistEntry.instrument_id == instrument_id, WaitlistEntry.user_id == user_id,
        WaitlistEntry.start_at == start_at, WaitlistEntry.end_at == end_at, WaitlistEntry.state.in_(OPEN_STATES)))


def withdraw_waitlist_entry(session: Session, *, actor: Actor, user: User, entry_id: int,
                            now: datetime) -> WaitlistEntry:
    """Leave the waitlist (a waiting entry or an open offer); withdrawing twice changes nothing."""
    entry = _get_own_entry(session, user, entry_id)
    if entry.state != WaitlistState.WITHDRAWN:
        _move(session, entry, WaitlistState.WITHDRAWN, actor=actor, after={"at": now.isoformat()})
    return entry


def accept_offer(session: Session, *, actor: Actor, user: User, entry_id: int, now: datetime,
                 terms_id: int | None, voucher_id: int | None = None) -> Booking:
    """Book the offered slot under the normal rules (bookings.book_instrument, which marks the offer
    booked), with a voucher if the holder chose one: Conflict when someone else has taken it meanwhile.
    Accepting twice gives the same booking."""
    entry = _get_own_entry(session, user, entry_id)
    if entry.state == WaitlistState.BOOKED and entry.booking_id is not None:
        return session.get(Booking, entry.booking_id)
    if entry.state != WaitlistState.OFFERED or entry.offer_expires_at <= now:
        raise RuleBroken("offer_not_open", _("This offer is no longer open."))
    return bookings.book_instrument(session, actor=actor, user=user, instrument_id=entry.instrument_id,
                                    start_at=entry.start_at, end_at=entry.end_at, now=now, terms_id=terms_id,
                                    voucher_id=voucher_id)


def list_user_entries(session: Session, user: User) -> list[WaitlistEntry]:
    """A user's entries: open offers first, then waiting ones (soonest first), then the rest (latest first)."""
    entries = session.scalars(select(WaitlistEntry).where(WaitlistEntry.user_id == user.id)
                              .order_by(WaitlistEntry.start_at.desc()).limit(SHOWN_ENTRIES)).all()
    rank = {WaitlistState.OFFERED: 0, WaitlistState.WAITING: 1}
    opened = sorted((e for e in entries if e.state in rank), key=lambda e: (rank[e.state], e.start_at))
    return opened + [e for e in entries if e.state not in rank]


# --- the job's side -----------------------------------------------------------------------------

def lapse_offers(session: Session, *, now: datetime) -> int:
    """Offers past their expiry lapse (the next in line is offered by offer_freed_slots); entries
    still waiting when their slot has begun lapse too. Returns the number of offers lapsed."""
    actor = Actor.system("job:offer_waitlist_slots")
    expired = session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.state == WaitlistState.OFFERED, WaitlistEntry.offer_expires_at <= now)
        .order_by(WaitlistEntry.id)).all()
    for entry in expired:
        _move(session, entry, WaitlistState.LAPSED, actor=actor)
    stale = session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.state == WaitlistState.WAITING, WaitlistEntry.start_at <= now)
        .order_by(WaitlistEntry.id)).all()
    for entry in stale:
        _move(session, entry, WaitlistState.LAPSED, actor=actor)
    return len(expired)


def _live_offer_overlaps(session: Session, entry: WaitlistEntry, block_end_at: datetime, now: datetime) -> bool:
    return session.scalar(select(WaitlistEntry.id).where(
        WaitlistEntry.instrument_id == entry.instrument_id, WaitlistEntry.state == WaitlistState.OFFERED,
        WaitlistEntry.offer_expires_at > now, WaitlistEntry.start_at < block_end_at,
        WaitlistEntry.end_at > entry.start_at).limit(1)) is not None


def offer_freed_slots(session: Session, *, now: datetime) -> int:
    """For each waiting entry whose slot is free again (no active booking, buffer or maintenance in
    [start, end + buffer)) and still bookable by the lead time, offer it to the first in line (by
    created_at) by e-mail until now + waitlist_offer_minutes (at most until the lead time closes
    bookings of the slot). One live offer at a time for a slot (or any overlapping one). Returns the
    number of offers made."""
    actor = Actor.system("job:offer_waitlist_slots")
    waiting = session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.state == WaitlistState.WAITING, WaitlistEntry.start_at > now)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)).all()
    offered = 0
    for entry in waiting:
        rules = effective_rules(session, entry.instrument_id)
        if entry.start_at <= now + timedelta(minutes=rules.lead_minutes):
            continue  # too late to book: it lapses when the slot begins
        block_end_at = rules.block_end(entry.end_at)
        if (busy_bookings(session, entry.instrument_id, entry.start_at, block_end_at)
                or maintenance_windows(session, entry.instrument_id, entry.start_at, block_end_at)
                or _live_offer_overlaps(session, entry, block_end_at, now)):
            continue
        entry.offered_at = now  # open for the rules' time, and never past the last moment to book the slot
        entry.offer_expires_at = min(now + timedelta(minutes=rules.waitlist_offer_minutes),
                                     entry.start_at - timedelta(minutes=rules.lead_minutes))
        _move(session, entry, WaitlistState.OFFERED, actor=actor,
              after={"offer_expires_at": entry.offer_expires_at.isoformat()})
        enqueue_mail(session, to=entry.user.email, locale=entry.user.locale, template="waitlist_offer",
                     context=offer_mail_context(entry))
        offered += 1
    return offered


def offer_mail_context(entry: WaitlistEntry) -> dict:
    return {"entry_id": entry.id, "instrument_name": entry.instrument.name_zh,
            "instrument_name_en": entry.instrument.name_en or entry.instrument.name_zh,
            "start": f"{to_local(entry.start_at):%Y-%m-%d %H:%M}", "end": f"{to_local(entry.end_at):%Y-%m-%d %H:%M}",
            "expires": f"{to_local(entry.offer_expires_at):%Y-%m-%d %H:%M}", "user_name": entry.user.name}
