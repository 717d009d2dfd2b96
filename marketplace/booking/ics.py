"""iCalendar (RFC 5545) for the booking calendar: an instrument's public busy
times, a user's own bookings behind a secret token the user can regenerate, and one booking as a file.

How the files are made. `icalendar` makes the VTIMEZONE of Asia/Shanghai from zoneinfo (once a process)
and escapes TEXT values (vText); the content lines around them are written here, because with
icalendar's object model a member's year of bookings took several times the private feed's figure in
docs/benchmarks.md. What is written is checked by parsing every feed back with `icalendar` and
`recurring_ical_events` (tests/marketplace/test_ics.py).

What a calendar client needs to stay right:
- Times are local (DTSTART;TZID=Asia/Shanghai) with the VTIMEZONE included, so a weekly series stays at
  the same wall-clock time; DTSTAMP and LAST-MODIFIED are UTC. There is no METHOD, so DTSTAMP is
  when the booking was last revised (RFC 5545 3.8.7.2) and a feed reads the same until something
  changes (the views send an ETag).
- Each booking keeps one UID, booking-<id>@kequip, and its SEQUENCE is Booking.sequence, which every
  change raises. The public feed calls the same booking busy-<id>@kequip: it is another event (no
  person, buffer included), and one UID in two subscribed calendars confuses some clients.
- A weekly series is one VEVENT, series-<id>@kequip, with RRULE:FREQ=WEEKLY;COUNT=n and DTSTART at
  the first occurrence asked for; occurrences that were skipped at booking time, and occurrences
  cancelled since (also rejected or expired), are EXDATEs; an occurrence whose state differs from the
  series' (most occurrences') state gets an override with RECURRENCE-ID. Cancelled occurrences are
  EXDATEs, not overrides with STATUS:CANCELLED: every client honours EXDATE, while a cancelled override
  is hidden by some, struck through by others and shown as a live event by a few. Only when every
  booked occurrence is cancelled does the series itself carry STATUS:CANCELLED, so it reads like a
  single cancelled booking. Every component of a series carries the series' SEQUENCE, the sum of its
  bookings' SEQUENCEs: it rises whenever any occurrence changes, and an override is never below its
  master (Google Calendar drops such overrides; nextcloud/calendar#4727).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import cache, lru_cache

from flask_babel import gettext as _
from icalendar import Timezone, vText
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.auth import hash_secret, new_secret
from core.clock import LOCAL_ZONE
from core.errors import NotFound
from core.models import User
from marketplace.booking.availability import effective_rules
from marketplace.booking.models import (
    ACTIVE_BOOKING_STATES,
    BOOKING_STATE_LABELS,
    Booking,
    BookingSeries,
    BookingState,
    CalendarFeed,
    MaintenanceWindow,
)
from marketplace.registry.models import Instrument

PRODID = "-//Kequip//Booking calendar//ZH"
UID_DOMAIN = "kequip"
TZID = "Asia/Shanghai"
REFRESH = "PT1H"  # how often a subscribed client should fetch the feed again
PUBLIC_PAST = timedelta(days=30)  # the public feed: from 30 days back to the booking horizon
PRIVATE_PAST = timedelta(days=365)  # a user's feed: their bookings ending in the last year, and all later ones

ICS_STATUS = {
    BookingState.REQUESTED: "TENTATIVE",
    BookingState.APPROVED: "TENTATIVE",  # approved, not yet paid for
    BookingState.CONFIRMED: "CONFIRMED",
    BookingState.IN_PROGRESS: "CONFIRMED",
    BookingState.COMPLETED: "CONFIRMED",
    BookingState.NO_SHOW: "CONFIRMED",  # the time was held (and charged for)
    BookingState.CANCELLED: "CANCELLED",
    BookingState.REJECTED: "CANCELLED",
    BookingState.EXPIRED: "CANCELLED",
}
# Bookings that hold or held the instrument's time: the public feed's busy times. Cancelled, rejected
# and expired ones leave it; a subscribed client removes what a feed no longer lists.
PUBLIC_STATES = (*ACTIVE_BOOKING_STATES, BookingState.COMPLETED, BookingState.NO_SHOW)


# --- the private feed's token ---------------------------------------------------------------------

def find_feed(session: Session, user: User) -> CalendarFeed | None:
    return session.get(CalendarFeed, user.id)


def issue_feed_token(session: Session, user: User, *, actor: Actor, now: datetime) -> str:
    """A new secret for the user's feed URL, returned once (only its SHA-256 is kept); the old URL,
    if there was one, stops working."""
    session.scalar(select(User.id).where(User.id == user.id).with_for_update())  # two clicks: one after the other
    token, token_hash = new_secret()
    feed = session.get(CalendarFeed, user.id)
    action = "calendar_feed.issued" if feed is None else "calendar_feed.regenerated"
    if feed is None:
        feed = CalendarFeed(user_id=user.id)
        session.add(feed)
    feed.token_hash, feed.created_at = token_hash, now
    session.flush()
    # the subject is the user: the feed's key is the user's id
    record_audit(session, actor, action, user, after={"calendar_feed_created_at": now.isoformat()})
    return token


def get_feed_owner(session: Session, token: str) -> User:
    """Whose feed a URL's token opens; an unknown or replaced token, or an inactive user: NotFound."""
    owner = session.scalar(select(User).join(CalendarFeed, CalendarFeed.user_id == User.id)
                           .where(CalendarFeed.token_hash == hash_secret(token)))
    if owner is None or not owner.is_active:
        raise NotFound("not_found", _("There is no such calendar."))
    return owner


# --- the calendars --------------------------------------------------------------------------------

@dataclass(slots=True)
class FeedEvent:
    """One VEVENT as it will be written."""

    uid: str
    start_at: datetime
    end_at: datetime
    status: str
    sequence: int
    revised_at: datetime  # DTSTAMP and LAST-MODIFIED
    summary: str
    description: str | None = None
    location: str | None = None
    url: str | None = None
    count: int | None = None  # RRULE:FREQ=WEEKLY;COUNT=n
    exdates: tuple[datetime, ...] = ()
    recurrence_id: datetime | None = None


def instrument_calendar(session: Session, instrument: Instrument, *, now: datetime, language: str) -> bytes:
    """An instrument's busy times from 30 days back to its booking horizon: bookings (buffer included)
    and maintenance windows, without the booker, the purpose or anything else about a person."""
    since = now - PUBLIC_PAST
    until = now + timedelta(days=effective_rules(session, instrument).horizon_days + 1)
    bookings = session.execute(
        select(Booking.id, Booking.start_at, Booking.block_end_at, Booking.state, Booking.sequence,
               Booking.updated_at)
        .where(Booking.instrument_id == instrument.id, Booking.state.in_(PUBLIC_STATES),
               Booking.start_at < until, Booking.block_end_at > since).order_by(Booking.start_at))
    windows = session.execute(
        select(MaintenanceWindow.id, MaintenanceWindow.start_at, MaintenanceWindow.end_at, MaintenanceWindow.created_at)
        .where(MaintenanceWindow.instrument_id == instrument.id, MaintenanceWindow.start_at < until,
               MaintenanceWindow.end_at > since).order_by(MaintenanceWindow.start_at))
    booked, maintenance = _("Booked"), _("Maintenance window")
    events = [FeedEvent(uid=_uid("busy", row.id), start_at=row.start_at, end_at=row.block_end_at,
                        status=ICS_STATUS[row.state], sequence=row.sequence, revised_at=row.updated_at,
                        summary=booked) for row in bookings]
    events += [FeedEvent(uid=_uid("maintenance", row.id), start_at=row.start_at, end_at=row.end_at,
                         status="CONFIRMED", sequence=0, revised_at=row.created_at, summary=maintenance)
               for row in windows]
    name = _("%(instrument)s: booked times", instrument=instrument_name(instrument, language))
    return write_calendar(name, _uid("instrument", instrument.id), events)


def user_calendar(session: Session, user: User, *, now: datetime, language: str,
                  booking_url: Callable[[int], str] | None = None) -> bytes:
    """The bookings a user made, in every state (cancelled ones as STATUS:CANCELLED), ending in the
    last year or later; a weekly series as one recurring event. booking_url(id) links each to its page."""
    since = now - PRIVATE_PAST
    recent_series = select(Booking.series_id).where(Booking.booker_id == user.id, Booking.series_id.is_not(None),
                                                    Booking.end_at > since)
    rows = session.execute(
        _booking_columns().where(Booking.booker_id == user.id,
                                 or_(Booking.end_at > since, Booking.series_id.in_(recent_series)))
        .order_by(Booking.start_at)).all()
    words = _Wording(language, booking_url)
    return write_calendar(_("My instrument bookings"), _uid("user", user.id),
                          list(_booking_events(session, rows, words)))


def booking_calendar(session: Session, booking: Booking, *, language: str,
                     booking_url: Callable[[int], str] | None = None) -> bytes:
    """One booking as a file to import. An occurrence of a series comes alone, under its own UID."""
    row = session.execute(_booking_columns().where(Booking.id == booking.id)).one()
    event = _booking_event(row, _Wording(language, booking_url))
    return write_calendar(event.summary, _uid("booking", booking.id), [event])


def instrument_name(instrument: Instrument, language: str) -> str:
    return instrument.name_en if language == "en" and instrument.name_en else instrument.name_zh


def _uid(kind: str, key: int) -> str:
    return f"{kind}-{key}@{UID_DOMAIN}"


def _booking_columns() -> Select:
    """What a booking's event needs, in one query without loading objects (a feed may have thousands)."""
    return (select(Booking.id, Booking.series_id, Booking.state, Booking.start_at, Booking.end_at, Booking.sequence,
                   Booking.updated_at, Instrument.name_zh, Instrument.name_en,
                   Instrument.building, Instrument.room)
            .join(Instrument, Instrument.id == Booking.instrument_id))


class _Wording:
    """The words of one feed's events, in its language: looked up once, not once per event."""

    def __init__(self, language: str, booking_url: Callable[[int], str] | None):
        self.language, self.booking_url = language, booking_url
        self.status = {state: _("Booking status: %(state)s", state=label)
                       for state, label in BOOKING_STATE_LABELS.items()}

    def name(self, row) -> str:
        return row.name_en if self.language == "en" and row.name_en else row.name_zh

    def url(self, booking_id: int) -> str | None:
        return self.booking_url(booking_id) if self.booking_url else None


def _booking_event(row, words: _Wording, *, uid: str | None = None, state: BookingState | None = None,
                   sequence: int | None = None, recurrence_id: datetime | None = None) -> FeedEvent:
    """A booking's event; an occurrence of a series takes the series' UID and SEQUENCE (and may speak
    for the series' state)."""
    state = state or row.state
    return FeedEvent(uid=uid or _uid("booking", row.id), start_at=row.start_at, end_at=row.end_at,
                     status=ICS_STATUS[state], sequence=row.sequence if sequence is None else sequence,
                     revised_at=row.updated_at, summary=words.name(row),
                     description=words.status[state],
                     location=" ".join(part for part in (row.building, row.room) if part) or None,
                     url=words.url(row.id), recurrence_id=recurrence_id)


def _booking_events(session: Session, rows: list, words: _Wording) -> Iterator[FeedEvent]:
    by_series: dict[int, list] = {}
    for row in rows:
        if row.series_id is None:
            yield _booking_event(row, words)
        else:
            by_series.setdefault(row.series_id, []).append(row)
    if by_series:
        for series in session.scalars(select(BookingSeries).where(BookingSeries.id.in_(by_series))
                                      .order_by(BookingSeries.id)):
            yield from _series_events(series, by_series[series.id], words)


def _series_events(series: BookingSeries, rows: list, words: _Wording) -> Iterator[FeedEvent]:
    """One recurring VEVENT for a weekly series, and its overrides (see the module's docstring)."""
    step = timedelta(weeks=1)  # Asia/Shanghai keeps no daylight saving: a week is the same wall-clock time
    instants = [series.first_start_at + step * week for week in range(series.count)]
    on_grid_at = set(instants)
    yield from (_booking_event(row, words) for row in rows if row.start_at not in on_grid_at)  # none expected
    booked = {row.start_at: row for row in rows}
    on_grid = [booked[instant] for instant in instants if instant in booked]
    if not on_grid:
        return
    all_cancelled = all(ICS_STATUS[row.state] == "CANCELLED" for row in on_grid)
    kept = on_grid if all_cancelled else [row for row in on_grid if ICS_STATUS[row.state] != "CANCELLED"]
    kept_at = {row.start_at for row in kept}
    state = Counter(row.state for row in kept).most_common(1)[0][0]  # ties: the earliest occurrence's
    uid, sequence = _uid("series", series.id), sum(row.sequence for row in rows)
    duration = timedelta(minutes=series.duration_minutes)
    yield replace(_booking_event(kept[0], words, uid=uid, state=state, sequence=sequence),
                  start_at=series.first_start_at, end_at=series.first_start_at + duration,
                  revised_at=max(row.updated_at for row in rows), count=series.count,
                  exdates=tuple(instant for instant in instants if instant not in kept_at))
    yield from (_booking_event(row, words, uid=uid, sequence=sequence, recurrence_id=row.start_at)
                for row in kept if row.state != state or row.end_at - row.start_at != duration)


# --- writing ------------------------------------------------------------------------------------

def write_calendar(name: str, uid: str, events: Iterable[FeedEvent]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", f"UID:{uid}",
             _text_line("NAME", name), _text_line("X-WR-CALNAME", name), f"X-WR-TIMEZONE:{TZID}",
             f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}", f"X-PUBLISHED-TTL:{REFRESH}", _vtimezone()]
    lines += [_event_text(event) for event in events]
    lines.append("END:VCALENDAR\r\n")
    return "\r\n".join(lines).encode()


def _event_text(event: FeedEvent) -> str:
    """One VEVENT's content lines (UIDs, dates and status words need no escaping)."""
    revised = _utc(event.revised_at)
    lines = ["BEGIN:VEVENT", f"UID:{event.uid}", f"DTSTAMP:{revised}"]
    if event.recurrence_id is not None:
        lines.append(f"RECURRENCE-ID;TZID={TZID}:{_local(event.recurrence_id)}")
    lines += [f"DTSTART;TZID={TZID}:{_local(event.start_at)}", f"DTEND;TZID={TZID}:{_local(event.end_at)}"]
    if event.count is not None:
        lines.append(f"RRULE:FREQ=WEEKLY;COUNT={event.count}")
        if event.exdates:
            lines.append(_fold(f"EXDATE;TZID={TZID}:" + ",".join(_local(when) for when in event.exdates)))
    lines += [f"SEQUENCE:{event.sequence}", f"STATUS:{event.status}", _text_line("SUMMARY", event.summary)]
    if event.description:
        lines.append(_text_line("DESCRIPTION", event.description))
    if event.location:
        lines.append(_text_line("LOCATION", event.location))
    if event.url:
        lines.append(_fold(f"URL:{event.url}"))
    lines += ["TRANSP:TRANSPARENT" if event.status == "CANCELLED" else "TRANSP:OPAQUE", f"LAST-MODIFIED:{revised}",
              "END:VEVENT"]
    return "\r\n".join(lines)


@cache
def _vtimezone() -> str:
    """Asia/Shanghai from zoneinfo, by icalendar: one STANDARD rule, +0800 since 1992 (made once)."""
    component = Timezone.from_tzid(TZID, first_date=date(1992, 1, 1), last_date=date(2100, 1, 1))
    return component.to_ical().decode().rstrip("\r\n")


def _local(when: datetime) -> str:
    """20261130T090000 in Asia/Shanghai (sliced from isoformat: strftime costs more, thousands of times)."""
    text = when.astimezone(LOCAL_ZONE).isoformat()
    return f"{text[0:4]}{text[5:7]}{text[8:10]}T{text[11:13]}{text[14:16]}{text[17:19]}"


def _utc(when: datetime) -> str:
    text = when.astimezone(timezone.utc).isoformat()
    return f"{text[0:4]}{text[5:7]}{text[8:10]}T{text[11:13]}{text[14:16]}{text[17:19]}Z"


@lru_cache(maxsize=4096)
def _text_line(name: str, value: str) -> str:
    """A TEXT property, escaped by icalendar and folded; cached, as a feed repeats its names."""
    return _fold(f"{name}:{vText(value).to_ical().decode()}")


def _fold(line: str, limit: int = 75) -> str:
    """RFC 5545 3.1: lines longer than 75 octets continue on lines that start with a space; a UTF-8
    character is never split, nor a backslash escape (as icalendar folds)."""
    if len(line) <= limit and line.isascii():
        return line
    parts, current, size = [], [], 0
    for char in line:
        width = len(char.encode())
        if current and size + width > limit - (1 if parts else 0):
            carry = current.pop() if len(current) > 1 and current[-1] == "\\" else None
            parts.append("".join(current))
            current, size = ([carry], 1) if carry else ([], 0)
        current.append(char)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts)
