"""What the platform and the bureau set for the booking calendar: booking rules (the district's defaults
and per-instrument overrides), maintenance windows (by hand or from an ICS file), qualifications and
versioned service terms. Bookings themselves live in marketplace/booking/services.py."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Any

import icalendar
import recurring_ical_events
import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import LOCAL_ZONE, to_local
from core.errors import Forbidden, RuleBroken
from core.models import Platform, Role, User
from core.outbox import enqueue_mail
from core.services import administers
from marketplace.booking.availability import busy_bookings, district_rules, effective_rules
from marketplace.booking.models import (
    ACTIVE_BOOKING_STATES,
    BOOKING_TRANSITIONS,
    WEEKDAYS,
    Booking,
    BookingRules,
    BookingState,
    MaintenanceWindow,
    Qualification,
    QualificationRule,
    ServiceTerms,
)
from marketplace.booking.services import (
    can_manage,
    can_operate,
    check_in_timing,
    current_terms,
    is_platform_staff,
    mail_context,
    no_show_opens_at,
)
from marketplace.registry.models import Instrument

MAX_ICS_BYTES = 1024 * 1024
MAX_ICS_OCCURRENCES = 1000  # windows one import may add: a minutely RRULE must not flood the table
MAX_REASON = 200  # MaintenanceWindow.reason
MAX_TERMS_TEXT = 20_000
EXTERNAL_UID_LENGTH = 300  # MaintenanceWindow.external_uid

# Whole-number rules and the range each may take (the database's CHECKs hold the looser line).
RULE_LIMITS: dict[str, tuple[int, int]] = {
    "slot_minutes": (1, 1440), "min_minutes": (1, 31 * 1440), "max_minutes": (1, 31 * 1440),
    "lead_minutes": (0, 365 * 1440), "horizon_days": (1, 730), "buffer_minutes": (0, 1440),
    "free_cancel_hours": (0, 365 * 24), "late_cancel_fee_pct": (0, 100), "no_show_fee_pct": (0, 100),
    "no_show_grace_minutes": (0, 1440), "waitlist_offer_minutes": (1, 7 * 1440), "check_in_window_minutes": (0, 240),
}
RULE_FLAGS = ("closed_on_holidays", "requires_approval", "requires_operator", "allows_overnight")
RULE_FIELDS = ("open_hours", *RULE_FLAGS, *RULE_LIMITS, "qualification")
TERMS_FIELDS = ("scope", "confidentiality", "intellectual_property", "liability")

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_RANGE_SEPARATORS = re.compile(r"[,;，；、\s]+")
_DASH = re.compile(r"\s*[-–—~～至]\s*")


# --- who ----------------------------------------------------------------------------------------

def can_edit_rules(user: User | None, instrument: Instrument | None) -> bool:
    """The bureau sets the district's defaults; a platform's admins set their instruments' own rules."""
    if user is None:
        return False
    if instrument is None:
        return user.has_role(Role.BUREAU_ADMIN)
    return administers(user, instrument.platform_id)


def ensure_may_manage_calendar(user: User | None, platform_id: int) -> None:
    if not administers(user, platform_id):
        raise Forbidden("forbidden", _("Only the admins of the instrument's platform manage its calendar."))


def ensure_may_manage_maintenance(user: User | None, platform_id: int) -> None:
    """Maintenance windows are the platform's staff's: its admins and its operators, who run the instruments."""
    if not is_platform_staff(user, platform_id):
        raise Forbidden("forbidden", _("Only the staff of the instrument's platform enter its maintenance."))


def platform_actions(user: User | None, booking: Booking, *, rules: BookingRules, now: datetime) -> frozenset[str]:
    """What the platform's pages offer on a booking for this user now: approve, reject, check_in,
    check_out, no_show (once the check-in window after the start has passed) and undo_no_show (the
    services check again when the button is pressed)."""
    moves = BOOKING_TRANSITIONS.get(booking.state, set())
    actions = set()
    if can_manage(user, booking) and booking.state == BookingState.REQUESTED:
        actions |= {"approve", "reject"}
    if can_operate(user, booking) and BookingState.IN_PROGRESS in moves:
        if check_in_timing(booking, rules, now=now) is not None:
            actions.add("check_in")
        if now > no_show_opens_at(booking, rules):
            actions.add("no_show")
    if can_operate(user, booking) and BookingState.COMPLETED in moves:
        actions.add("check_out")
    if can_operate(user, booking) and booking.state == BookingState.NO_SHOW:
        actions.add("undo_no_show")
    return frozenset(actions)


def actions_by_booking(session: Session, user: User | None, rows: list[Booking], *,
                       now: datetime) -> dict[int, frozenset[str]]:
    """platform_actions of each booking, under its instrument's rules."""
    rules = {instrument_id: effective_rules(session, instrument_id) for instrument_id in {b.instrument_id for b in rows}}
    return {b.id: platform_actions(user, b, rules=rules[b.instrument_id], now=now) for b in rows}


def _lock(session: Session, instrument: Instrument) -> None:
    """Serialise with bookings of this instrument (bookings.book_instrument takes the same row lock)."""
    session.execute(select(Instrument.id).where(Instrument.id == instrument.id).with_for_update())


# --- booking rules ------------------------------------------------------------------------------

def _minutes(text: str, *, is_end: bool) -> int | None:
    """'08:30' → 510; '24:00' only as an end; None when it is no time of day."""
    match = _CLOCK.match(text)
    if match is None:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not is_end)):
        return None
    return hours * 60 + minutes


def parse_day_hours(value: str | Iterable[Iterable[str]]) -> list[list[str]]:
    """One weekday's open hours, as text ("08:30-12:00, 13:30-17:30") or pairs, → sorted pairs of
    "HH:MM". Raises ValueError with the message for the user."""
    if isinstance(value, str):
        texts = [part for part in _RANGE_SEPARATORS.split(_DASH.sub("-", value.strip())) if part]
    else:
        texts = ["-".join(str(end) for end in pair) for pair in value]
    ranges: list[tuple[int, int]] = []
    for text in texts:
        parts = text.split("-")
        bounds = (_minutes(parts[0], is_end=False), _minutes(parts[1], is_end=True)) if len(parts) == 2 else (None,)
        if None in bounds:
            raise ValueError(_("“%(range)s” is not a range like 08:30-12:00 (24:00 may end a day).", range=text))
        opens, closes = bounds
        if closes <= opens:
            raise ValueError(_("“%(range)s” ends before it starts.", range=text))
        ranges.append((opens, closes))
    for (_opens, previous_close), (opens, _closes) in pairwise(ranges):
        if opens < previous_close:
            raise ValueError(_("List the ranges in order of the day, without overlaps."))
    return [[f"{opens // 60:02d}:{opens % 60:02d}", f"{closes // 60:02d}:{closes % 60:02d}"]
            for opens, closes in ranges]


def check_rules(values: dict[str, Any], *, base: BookingRules) -> dict[str, Any]:
    """Every rule of `values` (the others from `base`) checked: the cleaned whole set, or RuleBroken
    code invalid_rules with one message per field in `details` (open hours as open_hours_<weekday>)."""
    cleaned: dict[str, Any] = {name: getattr(base, name) for name in RULE_FIELDS}
    cleaned.update({name: values[name] for name in RULE_FIELDS if name in values})
    errors: dict[str, str] = {}
    hours = cleaned["open_hours"] if isinstance(cleaned["open_hours"], dict) else {}
    open_hours = {}
    for day in WEEKDAYS:
        try:
            open_hours[day] = parse_day_hours(hours.get(day) or [])
        except (ValueError, TypeError) as error:
            errors[f"open_hours_{day}"] = str(error) if isinstance(error, ValueError) else _("Not a list of ranges.")
    cleaned["open_hours"] = open_hours
    for name, (low, high) in RULE_LIMITS.items():
        number = cleaned[name]
        if not isinstance(number, int) or isinstance(number, bool):
            errors[name] = _("Enter a whole number.")
        elif not low <= number <= high:
            errors[name] = _("Enter a number from %(low)s to %(high)s.", low=low, high=high)
    slot = cleaned["slot_minutes"]
    if "slot_minutes" not in errors and 1440 % slot:
        errors["slot_minutes"] = _("A slot must divide a day (1,440 minutes): 5, 10, 15, 20, 30, 60, 120 … minutes.")
    if "slot_minutes" not in errors:
        for name in ("min_minutes", "max_minutes"):
            if name not in errors and (cleaned[name] < slot or cleaned[name] % slot):
                errors[name] = _("A whole number of slots (%(n)s minutes each).", n=slot)
    if "min_minutes" not in errors and "max_minutes" not in errors and cleaned["max_minutes"] < cleaned["min_minutes"]:
        errors["max_minutes"] = _("The longest booking cannot be shorter than the shortest.")
    for name in RULE_FLAGS:
        if not isinstance(cleaned[name], bool):
            errors[name] = _("Yes or no.")
    try:
        cleaned["qualification"] = QualificationRule(cleaned["qualification"])
    except ValueError:
        errors["qualification"] = _("Choose one of the listed rules.")
    if errors:
        field_name, message = next(iter(errors.items()))
        raise RuleBroken("invalid_rules", message, field=field_name, details=errors)
    return cleaned


def instruments_with_own_rules(session: Session, instrument_ids: list[int]) -> set[int]:
    """Which of these instruments have rules of their own (the others follow the district)."""
    if not instrument_ids:
        return set()
    return set(session.scalars(select(BookingRules.instrument_id)
                               .where(BookingRules.instrument_id.in_(instrument_ids))))


def own_rules(session: Session, instrument: Instrument) -> BookingRules | None:
    """The instrument's own rules row, or None when it follows the district's defaults."""
    return session.scalar(select(BookingRules).where(BookingRules.instrument_id == instrument.id))


def save_booking_rules(session: Session, *, actor: Actor, user: User, instrument: Instrument | None,
                       values: dict[str, Any]) -> BookingRules:
    """Save the district's defaults (instrument None: the bureau) or an instrument's own rules (its
    platform's admins). An instrument's row is a whole copy: the first save starts from the defaults
    and every later change of the defaults passes it by (BookingRules)."""
    if not can_edit_rules(user, instrument):
        raise Forbidden("forbidden", _("Only the bureau sets the district's booking rules.") if instrument is None
                        else _("Only the admins of the instrument's platform set its booking rules."))
    row = district_rules(session) if instrument is None else own_rules(session, instrument)
    base = row if row is not None else effective_rules(session, instrument)
    cleaned = check_rules(values, base=base)
    before = row.audit_view() if row is not None else None
    if row is None:
        row = BookingRules(instrument_id=instrument.id)
        session.add(row)
    for name, value in cleaned.items():
        setattr(row, name, value)
    row.updated_by_id = actor.user_id
    session.flush()
    record_audit(session, actor, "booking_rules.saved", row, before=before, after=row.audit_view())
    return row


def reset_booking_rules(session: Session, *, actor: Actor, user: User, instrument: Instrument) -> bool:
    """The instrument follows the district's defaults again (its own row goes); False if it did already."""
    if not can_edit_rules(user, instrument):
        raise Forbidden("forbidden", _("Only the admins of the instrument's platform set its booking rules."))
    row = own_rules(session, instrument)
    if row is None:
        return False
    record_audit(session, actor, "booking_rules.reset", row, before=row.audit_view(),
                 after={"instrument_id": instrument.id, "uses": "district_defaults"})
    session.delete(row)
    session.flush()
    return True


# --- maintenance windows ------------------------------------------------------------------------

@dataclass
class MaintenanceResult:
    windows: list[MaintenanceWindow]  # the windows added
    hit: list[Booking]  # active bookings a new window meets (buffers included): the platform handles them
    skipped: int = 0  # occurrences of the file imported before
    notified: list[str] = field(default_factory=list)  # bookers' e-mail addresses
    until: date | None = None  # an import: the last day (Asia/Shanghai) it reached
    cut: bool = False  # an import: a recurring event goes on after `until`, not imported


def _window_view(window: MaintenanceWindow) -> dict[str, Any]:
    return {"instrument_id": window.instrument_id, "start_at": window.start_at.isoformat(),
            "end_at": window.end_at.isoformat(), "reason": window.reason, "external_uid": window.external_uid,
            "series_uid": window.series_uid}


def _add_windows(session: Session, actor: Actor, instrument: Instrument, windows: list[MaintenanceWindow],
                 *, skipped: int = 0, until: date | None = None, cut: bool = False) -> MaintenanceResult:
    session.add_all(windows)
    session.flush()
    hit: dict[int, tuple[Booking, MaintenanceWindow]] = {}
    for window in windows:
        record_audit(session, actor, "maintenance_window.added", window, after=_window_view(window))
        for booking in busy_bookings(session, instrument.id, window.start_at, window.end_at):
            hit.setdefault(booking.id, (booking, window))
    notified = []
    for booking, window in sorted(hit.values(), key=lambda pair: pair[0].start_at):
        enqueue_mail(session, to=booking.booker.email, locale=booking.booker.locale, template="maintenance_conflict",
                     context=mail_context(booking) | {
                         "window_start": f"{to_local(window.start_at):%Y-%m-%d %H:%M}",
                         "window_end": f"{to_local(window.end_at):%Y-%m-%d %H:%M}", "reason": window.reason})
        notified.append(booking.booker.email)
    return MaintenanceResult(windows=windows, hit=sorted((b for b, _w in hit.values()), key=lambda b: b.start_at),
                             skipped=skipped, notified=notified, until=until, cut=cut)


def add_maintenance_window(session: Session, *, actor: Actor, user: User, instrument: Instrument,
                           start_at: datetime, end_at: datetime, reason: str, now: datetime) -> MaintenanceResult:
    """A window entered by hand. Bookings it meets stay as they are (listed, their bookers notified):
    the platform decides whether to move or cancel them."""
    ensure_may_manage_maintenance(user, instrument.platform_id)
    if end_at <= start_at:
        raise RuleBroken("invalid_range", _("The end must be after the start."), field="end_at")
    if end_at <= now:
        raise RuleBroken("window_in_past", _("This window is over already."), field="end_at")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise RuleBroken("reason_too_long", _("At most %(n)s characters.", n=MAX_REASON), field="reason")
    _lock(session, instrument)
    window = MaintenanceWindow(instrument_id=instrument.id, start_at=start_at, end_at=end_at, reason=reason,
                               created_by_id=actor.user_id)
    return _add_windows(session, actor, instrument, [window])


@dataclass(frozen=True, slots=True)
class IcsOccurrence:
    external_uid: str  # the event's UID and this occurrence's start: stable across re-imports
    start_at: datetime
    end_at: datetime
    summary: str
    series_uid: str | None = None  # a recurring event's UID (RRULE or RDATE): its occurrences are one series


@dataclass(frozen=True, slots=True)
class IcsReading:
    """What an ICS file gives over a span: its occurrences, and whether a recurring event goes on past it."""

    occurrences: list[IcsOccurrence]
    cut: bool  # a recurring event has occurrences after the span's end: they are not imported
    until: date | None = None  # the span's last day, Asia/Shanghai (read_maintenance_ics)


def _instant(value: date | datetime) -> datetime:
    """An ICS DTSTART/DTEND → aware UTC: a date is Asia/Shanghai midnight, a floating time is local."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_ZONE)
    return value.astimezone(timezone.utc)


def _event_uid(event: icalendar.Event) -> str:
    """The event's UID, hashed when it would not fit external_uid beside an occurrence's start."""
    uid = str(event.get("UID") or "").strip()
    if len(uid) + len("/YYYYMMDDTHHMMSSZ") > EXTERNAL_UID_LENGTH:
        uid = "sha256:" + hashlib.sha256(uid.encode()).hexdigest()
    return uid


def _uid(event: icalendar.Event, start_at: datetime) -> str:
    uid = _event_uid(event)
    if not uid:  # a file without UIDs: the event's own content names it
        uid = "sha256:" + hashlib.sha256(f"{event.get('SUMMARY', '')}|{start_at.isoformat()}".encode()).hexdigest()
    return f"{uid}/{start_at:%Y%m%dT%H%M%SZ}"


def _recurring_uids(calendar: icalendar.Calendar) -> set[str]:
    """The UIDs of the file's recurring events (an RRULE or RDATE); an event without a UID is no series."""
    return {_event_uid(event) for event in calendar.walk("VEVENT")
            if _event_uid(event) and (event.get("RRULE") is not None or event.get("RDATE") is not None)}


def _not_icalendar() -> RuleBroken:
    return RuleBroken("ics_invalid", _("This file is not an iCalendar (.ics) calendar."), field="file")


def parse_maintenance_ics(data: bytes, *, start: datetime, end: datetime) -> IcsReading:
    """Every occurrence of the file's events that meets [start, end), recurring events expanded
    (RRULE, RDATE, EXDATE), cancelled ones left out; and whether a recurring event goes on after `end`
    (never cut silently). Raises RuleBroken for what is no calendar."""
    if len(data) > MAX_ICS_BYTES:
        raise RuleBroken("ics_too_big", _("The file is larger than %(n)s MB.", n=MAX_ICS_BYTES // (1024 * 1024)),
                         field="file")
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError:  # UnicodeDecodeError included
        raise _not_icalendar() from None
    if calendar.name != "VCALENDAR":
        raise _not_icalendar()
    if not calendar.walk("VEVENT"):
        raise RuleBroken("ics_no_events", _("The calendar holds no events."), field="file")
    occurrences: dict[str, IcsOccurrence] = {}
    recurring, cut = _recurring_uids(calendar), False
    try:
        for event in recurring_ical_events.of(calendar).after(start):
            start_at = _instant(event["DTSTART"].dt)
            series_uid = _event_uid(event) if _event_uid(event) in recurring else None
            if start_at >= end:  # occurrences come in order of start: the rest lie beyond too
                if series_uid is not None:
                    cut = True
                    break
                continue
            end_at = _instant(event["DTEND"].dt) if event.get("DTEND") is not None else start_at
            if end_at <= start_at or end_at <= start or str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            uid = _uid(event, start_at)
            occurrences[uid] = IcsOccurrence(uid, start_at, end_at, str(event.get("SUMMARY", "")).strip()[:MAX_REASON],
                                             series_uid)
            if len(occurrences) > MAX_ICS_OCCURRENCES:
                raise RuleBroken("ics_too_many", _("The file gives more than %(n)s maintenance windows in the "
                                                   "booking horizon.", n=MAX_ICS_OCCURRENCES), field="file")
    except (ValueError, KeyError, recurring_ical_events.InvalidCalendar):
        raise RuleBroken("ics_invalid", _("An event of this calendar cannot be read (its start, end or "
                                          "recurrence)."), field="file") from None
    return IcsReading(list(occurrences.values()), cut)


def maintenance_horizon_days(session: Session, instrument: Instrument) -> int:
    """How far ahead an ICS import reaches: the instrument's booking horizon."""
    return effective_rules(session, instrument).horizon_days


def read_maintenance_ics(data: bytes, *, now: datetime, horizon_days: int) -> IcsReading:
    """The occurrences of an ICS file over the next horizon_days (maintenance_horizon_days), and how far
    that reaches. Needs no database: the caller parses the upload before its transaction begins."""
    end = now + timedelta(days=horizon_days)
    reading = parse_maintenance_ics(data, start=now, end=end)
    if not reading.occurrences:
        raise RuleBroken("ics_nothing_ahead", _("No event of this calendar falls within the next %(n)s days.",
                                                n=horizon_days), field="file")
    return IcsReading(reading.occurrences, reading.cut, to_local(end).date())


def import_maintenance_ics(session: Session, *, actor: Actor, user: User, instrument: Instrument,
                           reading: IcsReading, now: datetime) -> MaintenanceResult:
    """Maintenance windows from the occurrences read_maintenance_ics gave, a recurring event's with its
    series. Importing the same file again adds nothing: an occurrence imported before (UID and start) is
    skipped; imported later, it adds the occurrences the horizon has come to reach."""
    ensure_may_manage_maintenance(user, instrument.platform_id)
    occurrences = reading.occurrences
    _lock(session, instrument)
    known = set(session.scalars(select(MaintenanceWindow.external_uid).where(
        MaintenanceWindow.instrument_id == instrument.id,
        MaintenanceWindow.external_uid.in_([o.external_uid for o in occurrences]))))
    windows = [MaintenanceWindow(instrument_id=instrument.id, start_at=o.start_at, end_at=o.end_at,
                                 reason=o.summary, external_uid=o.external_uid, series_uid=o.series_uid,
                                 created_by_id=actor.user_id)
               for o in occurrences if o.external_uid not in known]
    return _add_windows(session, actor, instrument, windows, skipped=len(occurrences) - len(windows),
                        until=reading.until, cut=reading.cut)


def remove_maintenance_window(session: Session, window: MaintenanceWindow, *, actor: Actor, user: User) -> None:
    instrument = session.get(Instrument, window.instrument_id)
    ensure_may_manage_maintenance(user, instrument.platform_id)
    record_audit(session, actor, "maintenance_window.removed", window, before=_window_view(window))
    session.delete(window)
    session.flush()


def remove_maintenance_series(session: Session, window: MaintenanceWindow, *, actor: Actor, user: User,
                              now: datetime) -> list[MaintenanceWindow]:
    """Remove the recurring series this window belongs to: every window of it not over at `now` (the past
    ones stay on record), each with its audit row. RuleBroken not_a_series for a window of no series."""
    instrument = session.get(Instrument, window.instrument_id)
    ensure_may_manage_maintenance(user, instrument.platform_id)
    if window.series_uid is None:
        raise RuleBroken("not_a_series", _("This maintenance window belongs to no recurring series."))
    _lock(session, instrument)
    removed = list(session.scalars(select(MaintenanceWindow).where(
        MaintenanceWindow.instrument_id == instrument.id, MaintenanceWindow.series_uid == window.series_uid,
        MaintenanceWindow.end_at > now).order_by(MaintenanceWindow.start_at)))
    for row in removed:
        record_audit(session, actor, "maintenance_window.removed", row, before=_window_view(row))
        session.delete(row)
    session.flush()
    return removed


def list_maintenance_windows(session: Session, instrument_id: int, *, now: datetime,
                             until: datetime | None = None) -> list[MaintenanceWindow]:
    """The windows not over at `now` (and starting before `until`), soonest first."""
    query = select(MaintenanceWindow).where(MaintenanceWindow.instrument_id == instrument_id,
                                            MaintenanceWindow.end_at > now)
    if until is not None:
        query = query.where(MaintenanceWindow.start_at < until)
    return list(session.scalars(query.order_by(MaintenanceWindow.start_at)))


def list_maintenance_conflicts(session: Session, instrument_id: int, *, now: datetime) -> list[Booking]:
    """Active bookings, not over yet, that a maintenance window meets: for the platform to handle."""
    overlapping = sa.exists().where(MaintenanceWindow.instrument_id == Booking.instrument_id,
                                    MaintenanceWindow.start_at < Booking.block_end_at,
                                    MaintenanceWindow.end_at > Booking.start_at)
    return list(session.scalars(select(Booking).where(
        Booking.instrument_id == instrument_id, Booking.state.in_(ACTIVE_BOOKING_STATES), Booking.end_at > now,
        overlapping).order_by(Booking.start_at)))


# --- qualifications -----------------------------------------------------------------------------

def _qualification_view(qualification: Qualification) -> dict[str, Any]:
    return {"instrument_id": qualification.instrument_id, "user_id": qualification.user_id,
            "expires_on": qualification.expires_on.isoformat() if qualification.expires_on else None}


def grant_qualification(session: Session, *, actor: Actor, user: User, instrument: Instrument, email: str,
                        expires_on: date | None, now: datetime) -> Qualification:
    """Record that the person with this e-mail is qualified on the instrument, until expires_on
    (inclusive) or for good; granting again changes the expiry."""
    ensure_may_manage_calendar(user, instrument.platform_id)
    person = session.scalar(select(User).where(User.email == email.strip().lower()))
    if person is None:
        raise RuleBroken("unknown_user", _("No account has this e-mail address."), field="email")
    if expires_on is not None and expires_on < to_local(now).date():
        raise RuleBroken("expiry_in_past", _("The expiry date has passed already."), field="expires_on")
    qualification = session.scalar(select(Qualification).where(Qualification.instrument_id == instrument.id,
                                                               Qualification.user_id == person.id))
    before = _qualification_view(qualification) if qualification is not None else None
    if qualification is None:
        qualification = Qualification(instrument_id=instrument.id, user_id=person.id, user=person)
        session.add(qualification)
    qualification.expires_on = expires_on
    qualification.granted_by_id, qualification.granted_at = actor.user_id, now
    session.flush()
    record_audit(session, actor, "qualification.granted", qualification, before=before,
                 after=_qualification_view(qualification))
    return qualification


def revoke_qualification(session: Session, qualification: Qualification, *, actor: Actor, user: User) -> None:
    instrument = session.get(Instrument, qualification.instrument_id)
    ensure_may_manage_calendar(user, instrument.platform_id)
    record_audit(session, actor, "qualification.revoked", qualification, before=_qualification_view(qualification))
    session.delete(qualification)
    session.flush()


def list_qualifications(session: Session, instrument_id: int) -> list[Qualification]:
    return list(session.scalars(select(Qualification).join(Qualification.user)
                                .where(Qualification.instrument_id == instrument_id).order_by(User.email)))


# --- service terms ------------------------------------------------------------------------------

def publish_service_terms(session: Session, *, actor: Actor, user: User, platform: Platform,
                          texts: dict[str, str], now: datetime) -> ServiceTerms:
    """A new version of the platform's terms (scope, confidentiality, IP, liability). Versions are
    never changed (append-only): bookings keep the version their booker accepted, and a booking made
    on an older one is refused with terms_changed."""
    if not administers(user, platform.id):
        raise Forbidden("forbidden", _("Only the platform's admins publish its service terms."))
    cleaned = {name: (texts.get(name) or "").strip() for name in TERMS_FIELDS}
    errors = {name: _("This part of the terms cannot be empty.") for name, text in cleaned.items() if not text}
    errors |= {name: _("At most %(n)s characters.", n=MAX_TERMS_TEXT)
               for name, text in cleaned.items() if len(text) > MAX_TERMS_TEXT}
    if errors:
        field_name, message = next(iter(errors.items()))
        raise RuleBroken("invalid_terms", message, field=field_name, details=errors)
    session.execute(select(Platform.id).where(Platform.id == platform.id).with_for_update())  # one version at a time
    current = current_terms(session, platform.id)
    if all(getattr(current, name) == text for name, text in cleaned.items()):
        raise RuleBroken("terms_unchanged", _("These are the current terms word for word: nothing to publish."),
                         field="scope")
    latest = session.scalar(select(sa.func.max(ServiceTerms.version)).where(ServiceTerms.platform_id == platform.id))
    terms = ServiceTerms(platform_id=platform.id, version=(latest or 0) + 1, published_at=now,
                         published_by_id=actor.user_id, **cleaned)
    session.add(terms)
    session.flush()
    record_audit(session, actor, "service_terms.published", terms,
                 after={"platform_id": platform.id, "version": terms.version})
    return terms


def list_service_terms(session: Session, platform_id: int) -> list[ServiceTerms]:
    """The platform's own versions, newest first."""
    return list(session.scalars(select(ServiceTerms).where(ServiceTerms.platform_id == platform_id)
                                .order_by(ServiceTerms.version.desc())))
