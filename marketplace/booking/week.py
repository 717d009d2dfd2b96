"""An instrument's calendar as the pages draw it: one slot per row and day from the free and busy time
(marketplace/booking/availability.py), and its booking rules in words. The booking page and the
instrument's public page show the same grid; neither says who holds a busy slot."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy.orm import Session

from core.clock import local_midnight
from core.holidays import DayKind
from core.models import User
from marketplace.booking import availability
from marketplace.booking.models import ACTIVE_BOOKING_STATES, WEEKDAYS, Booking, BookingRules
from marketplace.booking.services import list_instrument_bookings
from marketplace.registry.models import Instrument

FIRST_DAY, LAST_DAY = date(2000, 1, 3), date(2099, 12, 28)  # weeks a calendar may show (Mondays)
SLOT_REASONS = {"holiday": _l("Public holiday"), "maintenance": _l("Under maintenance"), "hours": _l("Closed"),
                "past": _l("Past"), "lead_time": _l("Too soon to book"), "beyond_horizon": _l("Not bookable yet"),
                "busy": _l("Booked"), "free": _l("Free"), "mine": _l("Your booking")}
WEEKDAY_NAMES = (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun"))


def slot_reason_texts() -> dict[str, str]:
    """SLOT_REASONS in the request's language, translated once for the grid's many cells."""
    return {key: str(label) for key, label in SLOT_REASONS.items()}


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # aware, Asia/Shanghai
    end: datetime
    state: str  # free | busy | closed | unavailable (open and free, but past, too soon or too far ahead)
    reason: str  # the SLOT_REASONS key
    bookable: bool  # within lead time and horizon: a free slot can be booked, a busy one waited for
    booking: Booking | None = None  # the viewer's own booking that holds this slot (reason "mine")


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    kind: DayKind
    slots: list[Slot]


def monday_of(day: date) -> date:
    """The Monday of the day's week, within the weeks a calendar may show."""
    return max(min(day - timedelta(days=day.weekday()), LAST_DAY), FIRST_DAY)


def _overlaps(start: datetime, end: datetime, pairs: list[tuple[datetime, datetime]]) -> bool:
    return any(a < end and start < b for a, b in pairs)


def _row_minutes(rules: BookingRules) -> list[int]:
    """The rows of the grid: from the earliest opening to the latest closing of the instrument's week,
    on the slot grid (counted from midnight, as the rules count it)."""
    ranges = [(int(a[:2]) * 60 + int(a[3:]), int(b[:2]) * 60 + int(b[3:]))
              for hours in rules.open_hours.values() for a, b in hours]
    if not ranges:
        return []
    step = rules.slot_minutes
    first = min(a for a, _b in ranges) // step * step
    return list(range(first, max(b for _a, b in ranges), step))


def _covered(start: datetime, end: datetime, periods: list[tuple[datetime, datetime]], starts: list[datetime]) -> bool:
    """Whether one of the sorted, disjoint periods (starting at `starts`) holds [start, end) whole."""
    index = bisect_right(starts, start) - 1
    return index >= 0 and end <= periods[index][1]


def _slot(start: datetime, end: datetime, kind: DayKind, free_busy: availability.Availability,
          maintenance: list[tuple[datetime, datetime]], *, now: datetime, bookable_from: datetime,
          bookable_until: datetime, free_starts: list[datetime]) -> tuple[str, str, bool]:
    """(state, reason, bookable) of the slot [start, end), all instants in UTC (compared as such: an
    aware comparison across zones asks the zone its offset each time)."""
    bookable = bookable_from <= start <= bookable_until
    if _covered(start, end, free_busy.free, free_starts):
        if bookable:
            return "free", "free", True
        reason = "beyond_horizon" if start > bookable_until else "past" if end <= now else "lead_time"
        return "unavailable", reason, False
    if kind == DayKind.HOLIDAY:
        return "closed", "holiday", False
    if _overlaps(start, end, maintenance):
        return "closed", "maintenance", False
    if _overlaps(start, end, free_busy.busy):
        return "busy", "busy", bookable
    return "closed", "hours", False


def calendar_days(session: Session, instrument: Instrument, rules: BookingRules, days: list[date], *,
                  now: datetime, viewer: User | None = None) -> tuple[list[int], list[Day]]:
    """(row minutes, days with one slot per row) from compute_availability, in Asia/Shanghai; the
    viewer's own active bookings are marked as theirs (to them alone: others see a booked slot)."""
    start, end = local_midnight(days[0]), local_midnight(days[-1] + timedelta(days=1))
    start_utc, end_utc = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    free_busy = availability.compute_availability(session, instrument, start_utc, end_utc, rules=rules)
    maintenance = [(m.start_at, m.end_at)
                   for m in availability.maintenance_windows(session, instrument.id, start_utc, end_utc)]
    bookable_from, bookable_until = rules.bookable_starts(now)
    rows, step = _row_minutes(rules), timedelta(minutes=rules.slot_minutes)
    free_starts = [a for a, _b in free_busy.free]
    mine = list_instrument_bookings(session, instrument.id, start_utc, end_utc, states=ACTIVE_BOOKING_STATES,
                                    booker_id=viewer.id) if viewer else []
    grid = []
    for day in days:
        kind = availability.day_kind(day) if rules.closed_on_holidays else DayKind.ORDINARY
        slots = []
        for minute in rows:
            slot_start = local_midnight(day) + timedelta(minutes=minute)
            utc_start = slot_start.astimezone(timezone.utc)
            own = next((b for b in mine if b.start_at < utc_start + step and utc_start < b.end_at), None)
            if own is not None:
                slots.append(Slot(slot_start, slot_start + step, "busy", "mine", False, own))
                continue
            state, reason, bookable = _slot(utc_start, utc_start + step, kind, free_busy, maintenance, now=now,
                                            bookable_from=bookable_from, bookable_until=bookable_until,
                                            free_starts=free_starts)
            slots.append(Slot(slot_start, slot_start + step, state, reason, bookable))
        grid.append(Day(day, kind, slots))
    return rows, grid


# --- the rules in words -------------------------------------------------------------------------

def duration_text(minutes: int) -> str:
    """90 → "1 hour 30 minutes", 2880 → "2 days"."""
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [ngettext("%(num)d day", "%(num)d days", days) if days else "",
             ngettext("%(num)d hour", "%(num)d hours", hours) if hours else "",
             ngettext("%(num)d minute", "%(num)d minutes", minutes) if minutes else ""]
    return " ".join(part for part in parts if part) or ngettext("%(num)d minute", "%(num)d minutes", 0)


def open_hours_text(rules: BookingRules) -> list[str]:
    """One line per run of weekdays with the same hours: "Mon–Fri 08:30–12:00, 13:30–17:30"."""
    lines, run = [], [WEEKDAYS[0]]
    for day in (*WEEKDAYS[1:], None):
        if day is not None and rules.open_hours.get(day, []) == rules.open_hours.get(run[0], []):
            run.append(day)
            continue
        days = str(WEEKDAY_NAMES[int(run[0])]) if len(run) == 1 else \
            f"{WEEKDAY_NAMES[int(run[0])]}–{WEEKDAY_NAMES[int(run[-1])]}"
        hours = rules.open_hours.get(run[0], [])
        lines.append(f"{days} " + (", ".join(f"{a}–{b}" for a, b in hours) if hours else _("closed")))
        run = [day]
    return lines


@dataclass(frozen=True, slots=True)
class RuleLine:
    key: str  # for tests and styles: hours, length, lead_time, horizon, approval, …
    label: str
    text: str


def rules_in_words(rules: BookingRules, *, needs_approval: bool) -> list[RuleLine]:
    """The rules a visitor needs before booking, in plain words."""
    lines = [RuleLine("hours", _("Open hours"), "\n".join(open_hours_text(rules))),
             RuleLine("holidays", _("Public holidays"), _("Closed on public holidays, open on make-up working days.")
                      if rules.closed_on_holidays else _("Open on public holidays as on other days.")),
             RuleLine("length", _("Length of a booking"), _(
                 "From %(min)s to %(max)s, in steps of %(slot)s.", min=duration_text(rules.min_minutes),
                 max=duration_text(rules.max_minutes), slot=duration_text(rules.slot_minutes))),
             RuleLine("lead_time", _("Lead time"), _("Book at least %(time)s before the start.",
                                                     time=duration_text(rules.lead_minutes))
                      if rules.lead_minutes else _("Bookable up to the start.")),
             RuleLine("horizon", _("Booking horizon"), ngettext("Bookable up to %(num)d day ahead.",
                                                                "Bookable up to %(num)d days ahead.",
                                                                rules.horizon_days)),
             RuleLine("approval", _("Approval"), _("The platform approves each booking before it holds.")
                      if needs_approval else _("A booking holds at once; the platform does not approve it first."))]
    if rules.allows_overnight:
        lines.append(RuleLine("overnight", _("Overnight"), _("A booking may run past closing time and overnight.")))
    return lines
