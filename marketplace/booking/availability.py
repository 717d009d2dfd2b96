"""When an instrument can be booked: open hours, Chinese public holidays (core/holidays.py), maintenance,
buffers and active bookings, combined in one function."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cache

import portion
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import local_midnight, to_local
from core.holidays import DayKind, day_kind
from marketplace.booking.models import ACTIVE_BOOKING_STATES, USE_STATES, Booking, BookingRules, MaintenanceWindow
from marketplace.registry.models import CATALOGUE_STATES, Instrument

MAX_RANGE = timedelta(days=62)
Period = tuple[datetime, datetime]  # [lower, upper): from the first instant, until the second
# On an official make-up working day (调休上班) the instrument keeps a Monday's hours.
MAKEUP_DAY_HOURS_FROM = "0"


# The statements of this module are built once and run with their values bound: on the availability API
# and at every booking, building and keying them each time cost about as much as running them.
INSTRUMENT_ID = sa.bindparam("instrument_id", type_=sa.Integer)
START, END = sa.bindparam("start", type_=Booking.start_at.type), sa.bindparam("end", type_=Booking.start_at.type)


def _booking_meets(instrument_id, start, end, states=ACTIVE_BOOKING_STATES) -> tuple[sa.ColumnElement[bool], ...]:
    """A booking of the instrument in one of `states` whose time, its buffer included, meets [start, end)."""
    return (Booking.instrument_id == instrument_id, Booking.state.in_(states),
            Booking.start_at < end, Booking.block_end_at > start)


def _maintenance_meets(instrument_id, start, end) -> tuple[sa.ColumnElement[bool], ...]:
    """A maintenance window of the instrument that meets [start, end)."""
    return (MaintenanceWindow.instrument_id == instrument_id, MaintenanceWindow.start_at < end,
            MaintenanceWindow.end_at > start)


@cache
def _rules_statement(*, in_catalogue_only: bool) -> sa.Select:
    """The rules of instrument `instrument_id`: its own row first, else the district's."""
    statement = (select(BookingRules).where(sa.or_(BookingRules.instrument_id == INSTRUMENT_ID,
                                                   BookingRules.instrument_id.is_(None)))
                 .order_by(BookingRules.instrument_id.is_(None)).limit(1))
    if in_catalogue_only:
        statement = statement.where(select(Instrument.id).where(
            Instrument.id == INSTRUMENT_ID, Instrument.state.in_(CATALOGUE_STATES)).exists())
    return statement


def effective_rules(session: Session, instrument: Instrument | int) -> BookingRules:
    """The instrument's own rules, else the district's defaults."""
    return session.scalar(_rules_statement(in_catalogue_only=False),
                          {"instrument_id": getattr(instrument, "id", instrument)})


def catalogue_rules(session: Session, instrument_id: int) -> BookingRules | None:
    """effective_rules of an instrument in the catalogue; None for any other id. One query, for the
    public availability API, which needs nothing else of the instrument."""
    return session.scalar(_rules_statement(in_catalogue_only=True), {"instrument_id": instrument_id})


def longest_horizon(session: Session) -> int:
    """How many days ahead a booking may lie at most, under any rules: where the holiday calendar must reach."""
    return session.scalar(select(sa.func.max(BookingRules.horizon_days))) or 0


def district_rules(session: Session) -> BookingRules:
    return session.scalar(select(BookingRules).where(BookingRules.instrument_id.is_(None)))


def _wall_clock(day: date, text: str) -> datetime:
    """'08:30' on a local day → aware UTC; '24:00' is the end of that day."""
    hours, minutes = (int(part) for part in text.split(":"))
    local = local_midnight(day) + timedelta(hours=hours, minutes=minutes)
    return local.astimezone(timezone.utc)


def local_days(start: datetime, end: datetime) -> Iterator[date]:
    """Every Asia/Shanghai calendar day that [start, end) touches."""
    day, last = to_local(start).date(), to_local(end - timedelta(microseconds=1)).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def hours_of_day(rules: BookingRules, day: date) -> list[list[str]]:
    kind = day_kind(day) if rules.closed_on_holidays else DayKind.ORDINARY
    if kind == DayKind.HOLIDAY:
        return []
    key = MAKEUP_DAY_HOURS_FROM if kind == DayKind.MAKEUP_WORKDAY else str(day.weekday())
    return rules.open_hours.get(key, [])


def open_periods(rules: BookingRules, start: datetime, end: datetime) -> list[Period]:
    """The open time within [start, end) as sorted, disjoint periods of aware UTC instants."""
    pairs = ((_wall_clock(day, opens), _wall_clock(day, closes))
             for day in local_days(start - timedelta(days=1), end) for opens, closes in hours_of_day(rules, day))
    return merged((max(opens, start), min(closes, end)) for opens, closes in pairs if opens < end and closes > start)


def open_intervals(rules: BookingRules, start: datetime, end: datetime) -> portion.Interval:
    """open_periods as an interval set, for checks of one time (is it open, within one open period)."""
    return as_intervals(open_periods(rules, start, end))


def holiday_days(rules: BookingRules, start: datetime, end: datetime) -> list[date]:
    if not rules.closed_on_holidays:
        return []
    return [day for day in local_days(start, end) if day_kind(day) == DayKind.HOLIDAY]


def busy_bookings(session: Session, instrument_id: int, start: datetime, end: datetime,
                  *, exclude_id: int | None = None) -> list[Booking]:
    """Active bookings whose time (buffer included) meets [start, end)."""
    query = select(Booking).where(*_booking_meets(instrument_id, start, end)).order_by(Booking.start_at)
    if exclude_id is not None:
        query = query.where(Booking.id != exclude_id)
    return list(session.scalars(query))


def is_taken(session: Session, instrument_id: int, start: datetime, end: datetime) -> bool:
    """Whether a booking's time held or used (buffer included) meets [start, end): one EXISTS, no objects.
    Completed bookings count: a slot once used is never booked again."""
    return bool(session.scalar(_taken_statement(), {"instrument_id": instrument_id, "start": start, "end": end}))


def maintenance_windows(session: Session, instrument_id: int, start: datetime, end: datetime
                        ) -> list[MaintenanceWindow]:
    return list(session.scalars(_maintenance_statement(),
                                {"instrument_id": instrument_id, "start": start, "end": end}))


@cache
def _taken_statement() -> sa.Select:
    return select(sa.exists().where(*_booking_meets(INSTRUMENT_ID, START, END, USE_STATES)))


@cache
def _maintenance_statement() -> sa.Select:
    return select(MaintenanceWindow).where(*_maintenance_meets(INSTRUMENT_ID, START, END)).order_by(
        MaintenanceWindow.start_at)


def as_intervals(periods: Iterable[Period]) -> portion.Interval:
    """The union of [lower, upper) periods as an interval set."""
    return portion.Interval(*(portion.closedopen(lower, upper) for lower, upper in periods))


# --- time as sorted lists of [lower, upper) periods -------------------------------------------------
# A week's free and busy time is worked out on plain sorted lists, each in one pass: a busy instrument's
# week holds hundreds of periods, and set operations on interval objects cost a comparison of every
# period with every other.

def merged(periods: Iterable[Period]) -> list[Period]:
    """The union of [lower, upper) periods, as sorted, disjoint ones: periods that overlap or touch
    (one ends when the next starts) become one; empty ones are left out."""
    union: list[Period] = []
    for lower, upper in sorted(periods):
        if lower >= upper:
            continue
        if union and lower <= union[-1][1]:
            if upper > union[-1][1]:
                union[-1] = (union[-1][0], upper)
        else:
            union.append((lower, upper))
    return union


def subtracted(periods: list[Period], taken: list[Period]) -> list[Period]:
    """What of `periods` no period of `taken` covers. Both sorted and disjoint (as `merged` gives them),
    walked once side by side; so is the answer."""
    left: list[Period] = []
    first = 0  # the first taken period that ends after the current period starts
    for lower, upper in periods:
        while first < len(taken) and taken[first][1] <= lower:
            first += 1
        at, index = lower, first
        while index < len(taken) and taken[index][0] < upper:
            taken_lower, taken_upper = taken[index]
            if taken_lower > at:
                left.append((at, taken_lower))
            at = max(at, taken_upper)
            index += 1
        if at < upper:
            left.append((at, upper))
    return left


@dataclass(frozen=True, slots=True)
class Availability:
    free: list[Period]
    busy: list[Period]  # bookings with their buffers, and maintenance, merged


@cache
def _busy_times_statement() -> sa.Select:
    """(start, end) of the active bookings (buffers included) and maintenance windows of instrument
    `instrument_id` that meet [`start`, `end`)."""
    return sa.union_all(
        select(Booking.start_at, Booking.block_end_at).where(*_booking_meets(INSTRUMENT_ID, START, END)),
        select(MaintenanceWindow.start_at, MaintenanceWindow.end_at).where(
            *_maintenance_meets(INSTRUMENT_ID, START, END)))


def compute_availability(session: Session, instrument: Instrument | int, start: datetime, end: datetime,
                         *, rules: BookingRules | None = None) -> Availability:
    """Free and busy time of an instrument (or the instrument of that id) in [start, end): free is open
    time (weekly hours, less holidays, plus make-up days) that no active booking, buffer or maintenance
    window takes."""
    instrument_id = getattr(instrument, "id", instrument)
    rules = rules or effective_rules(session, instrument_id)
    # the times alone, both kinds in one query; each meets [start, end), so clipping keeps what is inside
    busy = merged((max(lower, start), min(upper, end)) for lower, upper in session.execute(
        _busy_times_statement(), {"instrument_id": instrument_id, "start": start, "end": end}))
    return Availability(free=subtracted(open_periods(rules, start, end), busy), busy=busy)
