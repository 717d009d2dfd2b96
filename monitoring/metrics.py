"""Utilization metrics: each instrument's figures per local day (available, booked, effective and
external hours; revenue by the enterprise and by vouchers; bookings, no-shows, cancellations), computed
from the booking calendar and usage sessions, stored per day and summed to weeks, months, quarters and
years per instrument, platform, category, industry or the district.

Available hours are the open hours of the instrument's rules (closed on public holidays, open on the
official make-up working days) less maintenance. Utilization = effective ÷ available; sharing rate =
external ÷ effective. Recomputing a range gives the same rows however often it runs."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import from_local, local_midnight, to_local
from core.models import PlatformIndustry
from marketplace.booking.availability import Period, merged, open_periods, subtracted
from marketplace.booking.models import Booking, BookingRules, BookingState, MaintenanceWindow
from marketplace.registry.models import Instrument
from monitoring.models import InstrumentDay, UsageSession, UsageSource

BOOKED_STATES = (BookingState.CONFIRMED, BookingState.IN_PROGRESS, BookingState.COMPLETED, BookingState.NO_SHOW)
PERIODS = ("day", "week", "month", "quarter", "year")
SCOPES = ("district", "platform", "instrument", "category", "industry")


# --- days and periods -----------------------------------------------------------------------------

def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[00:00 of first, 00:00 after last) in Asia/Shanghai, as aware UTC."""
    return from_local(local_midnight(first)), from_local(local_midnight(last + timedelta(days=1)))


def period_start(day: date, period: str) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


@lru_cache(maxsize=4096)
def _midnight_after(day: date) -> datetime:
    return from_local(local_midnight(day + timedelta(days=1)))


def seconds_by_day(periods: Iterable[Period]) -> dict[date, int]:
    """Seconds of each local day that the periods cover (a period over midnight counts on both days)."""
    found: dict[date, int] = defaultdict(int)
    for lower, upper in periods:
        at = lower
        while at < upper:
            day = to_local(at).date()
            cut = min(upper, _midnight_after(day))
            found[day] += int((cut - at).total_seconds())
            at = cut
    return found


# --- recomputing ----------------------------------------------------------------------------------

def _clip(lower: datetime, upper: datetime, start: datetime, end: datetime) -> Period | None:
    lower, upper = max(lower, start), min(upper, end)
    return (lower, upper) if lower < upper else None


def _rules_by_instrument(session: Session, instrument_ids: list[int]) -> tuple[dict[int, BookingRules], BookingRules]:
    rows = session.scalars(select(BookingRules).where(sa.or_(BookingRules.instrument_id.is_(None),
                                                             BookingRules.instrument_id.in_(instrument_ids)))).all()
    district = next(rules for rules in rows if rules.instrument_id is None)
    return {rules.instrument_id: rules for rules in rows if rules.instrument_id is not None}, district


def compute_days(session: Session, first: date, last: date, instrument_ids: list[int], *,
                 now: datetime) -> dict[tuple[int, date], dict[str, int]]:
    """The figures of each instrument and day in [first, last], from the calendar and the sessions."""
    start, end = day_bounds(first, last)
    figures: dict[tuple[int, date], dict[str, int]] = {}

    def add(instrument_id: int, day: date, name: str, amount: int) -> None:
        if first <= day <= last:
            row = figures.setdefault((instrument_id, day), dict.fromkeys(InstrumentDay.FIGURES, 0))
            row[name] += amount

    own_rules, district = _rules_by_instrument(session, instrument_ids)
    maintenance: dict[int, list[Period]] = defaultdict(list)
    for window in session.execute(select(MaintenanceWindow.instrument_id, MaintenanceWindow.start_at,
                                         MaintenanceWindow.end_at).where(
            MaintenanceWindow.instrument_id.in_(instrument_ids), MaintenanceWindow.start_at < end,
            MaintenanceWindow.end_at > start)):
        maintenance[window.instrument_id].append((window.start_at, window.end_at))
    # the open hours of each day on the district's rules, shared by every instrument that keeps them
    district_days = seconds_by_day(open_periods(district, start, end))
    days, nothing = list(_days(first, last)), dict.fromkeys(InstrumentDay.FIGURES, 0)
    for instrument_id in instrument_ids:
        rules, windows = own_rules.get(instrument_id), maintenance.get(instrument_id)
        if rules is None and not windows:
            available = district_days
        else:
            opened = open_periods(rules if rules is not None else district, start, end)
            available = seconds_by_day(subtracted(opened, merged(windows)) if windows else opened)
        for day in days:
            figures[(instrument_id, day)] = {**nothing, "available_seconds": available.get(day, 0)}

    for booking in session.execute(select(
            Booking.instrument_id, Booking.state, Booking.start_at, Booking.end_at, Booking.price_fen,
            Booking.voucher_fen, Booking.payable_fen, Booking.final_price_fen, Booking.final_voucher_fen,
            Booking.cancellation_fee_fen).where(Booking.instrument_id.in_(instrument_ids), Booking.start_at < end,
                                                Booking.end_at > start)):
        day = to_local(booking.start_at).date()
        if booking.state in BOOKED_STATES:
            clipped = _clip(booking.start_at, booking.end_at, start, end)
            for booked_day, seconds in seconds_by_day([clipped] if clipped else []).items():
                add(booking.instrument_id, booked_day, "booked_seconds", seconds)
            add(booking.instrument_id, day, "bookings", 1)
        if booking.state == BookingState.NO_SHOW:
            add(booking.instrument_id, day, "no_shows", 1)
        elif booking.state == BookingState.CANCELLED:
            add(booking.instrument_id, day, "cancellations", 1)
        enterprise, voucher = revenue(booking)
        add(booking.instrument_id, day, "revenue_enterprise_fen", enterprise)
        add(booking.instrument_id, day, "revenue_voucher_fen", voucher)

    for usage in session.execute(select(
            UsageSession.instrument_id, UsageSession.source, UsageSession.start_at, UsageSession.end_at,
            UsageSession.last_seen_at, UsageSession.is_external).where(
            UsageSession.instrument_id.in_(instrument_ids), UsageSession.start_at < end,
            sa.or_(UsageSession.end_at.is_(None), UsageSession.end_at > start))):
        until = usage.end_at or (usage.last_seen_at if usage.source == UsageSource.DEVICE else now)
        clipped = _clip(usage.start_at, until, start, end)
        for day, seconds in seconds_by_day([clipped] if clipped else []).items():
            add(usage.instrument_id, day, "effective_seconds", seconds)
            if usage.is_external:
                add(usage.instrument_id, day, "external_seconds", seconds)
    return figures


def revenue(booking) -> tuple[int, int]:
    """What a booking earned, as (the enterprise's part, the voucher's part) in fen: a completed booking
    its final price, a cancelled or missed one its fee; nothing else."""
    if booking.state == BookingState.COMPLETED:
        price = booking.final_price_fen if booking.final_price_fen is not None else booking.price_fen
        voucher = booking.final_voucher_fen if booking.final_voucher_fen is not None else booking.voucher_fen
        return price - voucher, voucher
    if booking.state in (BookingState.CANCELLED, BookingState.NO_SHOW):
        return booking.cancellation_fee_fen, 0
    return 0, 0


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True)
class Recomputed:
    days: int  # instrument-days looked at
    changed: int  # of them, rows whose figures changed (or that were new)


def recompute(session: Session, first: date, last: date, *, now: datetime,
              instrument_ids: list[int] | None = None, batch: int = 500) -> Recomputed:
    """Compute and store the figures of [first, last] (every instrument, or those given), in batches of
    instruments; rows whose figures did not change are left as they are, new ones are inserted in bulk."""
    if instrument_ids is None:
        instrument_ids = list(session.scalars(select(Instrument.id).order_by(Instrument.id)))
    looked = changed = 0
    for offset in range(0, len(instrument_ids), batch):
        ids = instrument_ids[offset:offset + batch]
        computed = compute_days(session, first, last, ids, now=now)
        stored = {(row.instrument_id, row.day): row for row in session.scalars(select(InstrumentDay).where(
            InstrumentDay.instrument_id.in_(ids), InstrumentDay.day.between(first, last)))}
        new = []
        for key, values in computed.items():
            looked += 1
            row = stored.get(key)
            if row is None:
                instrument_id, day = key
                new.append({"instrument_id": instrument_id, "day": day, **_periods_of(day), **values})
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                changed += 1
        session.flush()
        if new:
            session.execute(sa.insert(InstrumentDay.__table__), new)
            changed += len(new)
    return Recomputed(days=looked, changed=changed)


@lru_cache(maxsize=4096)
def _periods_of(day: date) -> dict[str, date | int]:
    """The period columns of a day's row."""
    return {"week": period_start(day, "week"), "month": period_start(day, "month"),
            "quarter": period_start(day, "quarter"), "year": day.year}


def touched_since(session: Session, since: datetime, *, now: datetime) -> dict[int, set[date]]:
    """The days of each instrument whose bookings or sessions changed since `since`, and today's (open
    sessions and the day's hours go on changing): what an incremental run recomputes."""
    touched: dict[int, set[date]] = defaultdict(set)
    for model in (Booking, UsageSession):
        end_column = model.end_at if model is Booking else sa.func.coalesce(model.end_at, model.last_seen_at)
        for instrument_id, start_at, end_at in session.execute(select(model.instrument_id, model.start_at, end_column)
                                                               .where(model.updated_at >= since)):
            touched[instrument_id].update(_days(to_local(start_at).date(), to_local(max(end_at, start_at)).date()))
    today = to_local(now).date()
    for instrument_id in session.scalars(select(UsageSession.instrument_id).where(UsageSession.end_at.is_(None))):
        touched[instrument_id].add(today)
    return touched


def recompute_touched(session: Session, since: datetime, *, now: datetime) -> Recomputed:
    """An incremental run: only the days that changed, instrument by instrument's own range."""
    looked = changed = 0
    by_range: dict[tuple[date, date], list[int]] = defaultdict(list)
    for instrument_id, days in touched_since(session, since, now=now).items():
        by_range[(min(days), max(days))].append(instrument_id)
    for (first, last), ids in by_range.items():
        result = recompute(session, first, last, now=now, instrument_ids=ids)
        looked, changed = looked + result.days, changed + result.changed
    return Recomputed(days=looked, changed=changed)


# --- reading --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeriodFigures:
    start: date
    available_seconds: int
    booked_seconds: int
    effective_seconds: int
    external_seconds: int
    revenue_enterprise_fen: int
    revenue_voucher_fen: int
    bookings: int
    no_shows: int
    cancellations: int
    users_served: int = 0
    enterprises_served: int = 0

    @property
    def utilization(self) -> float | None:
        """Effective ÷ available hours; None when the instrument was never open."""
        return self.effective_seconds / self.available_seconds if self.available_seconds else None

    @property
    def sharing_rate(self) -> float | None:
        """External ÷ effective hours; None when it was not used."""
        return self.external_seconds / self.effective_seconds if self.effective_seconds else None

    @property
    def revenue_fen(self) -> int:
        return self.revenue_enterprise_fen + self.revenue_voucher_fen


def scope_filter(scope: str, scope_id: int | None) -> list[sa.ColumnElement[bool]]:
    """Conditions on Instrument for a scope."""
    if scope == "district":
        return []
    if scope == "platform":
        return [Instrument.platform_id == scope_id]
    if scope == "instrument":
        return [Instrument.id == scope_id]
    if scope == "category":
        return [Instrument.category_id == scope_id]
    raise ValueError(scope)


def industry_filter(industry: str) -> sa.ColumnElement[bool]:
    return Instrument.platform_id.in_(select(PlatformIndustry.platform_id).where(PlatformIndustry.industry == industry))


def _of_instruments(statement: sa.Select, conditions: list[sa.ColumnElement[bool]]) -> sa.Select:
    """The instrument-day rows of the instruments the conditions select: joined to the instruments only
    when there are conditions (the district's are every row)."""
    if not conditions:
        return statement
    return statement.join(Instrument, Instrument.id == InstrumentDay.instrument_id).where(*conditions)


def figures(session: Session, conditions: list[sa.ColumnElement[bool]], period: str, first: date,
            last: date) -> list[PeriodFigures]:
    """The summed figures per period (its first day) of the instruments the conditions select."""
    bucket = InstrumentDay.day if period == "day" else getattr(InstrumentDay, period)
    sums = [sa.func.sum(getattr(InstrumentDay, name)) for name in InstrumentDay.FIGURES]
    statement = (_of_instruments(select(bucket, *sums), conditions)
                 .where(InstrumentDay.day.between(first, last)).group_by(bucket).order_by(bucket))
    served = _served(session, conditions, period, first, last)
    rows = []
    for start, *values in session.execute(statement):
        start = date(start, 1, 1) if period == "year" else start
        users, enterprises = served.get(start, (0, 0))
        rows.append(PeriodFigures(start, *(int(value or 0) for value in values), users_served=users,
                                  enterprises_served=enterprises))
    return rows


def _served(session: Session, conditions, period: str, first: date, last: date) -> dict[date, tuple[int, int]]:
    """Distinct users and enterprises whose bookings were completed, per period."""
    start, end = day_bounds(first, last)
    users: dict[date, set[int]] = defaultdict(set)
    enterprises: dict[date, set[int]] = defaultdict(set)
    for booker_id, enterprise_id, start_at in session.execute(
            select(Booking.booker_id, Booking.enterprise_id, Booking.start_at)
            .join(Instrument, Instrument.id == Booking.instrument_id)
            .where(Booking.state == BookingState.COMPLETED, Booking.start_at >= start, Booking.start_at < end,
                   *conditions)):
        key = period_start(to_local(start_at).date(), period)
        users[key].add(booker_id)
        if enterprise_id is not None:
            enterprises[key].add(enterprise_id)
    return {key: (len(users[key]), len(enterprises[key])) for key in users}


def instrument_totals(session: Session, conditions: list[sa.ColumnElement[bool]], first: date,
                      last: date) -> list[tuple[int, dict[str, int]]]:
    """Each selected instrument's figures summed over [first, last]: for rankings and the sharing report."""
    sums = [sa.func.sum(getattr(InstrumentDay, name)).label(name) for name in InstrumentDay.FIGURES]
    statement = (_of_instruments(select(InstrumentDay.instrument_id, *sums), conditions)
                 .where(InstrumentDay.day.between(first, last)).group_by(InstrumentDay.instrument_id))
    return [(row.instrument_id, {name: int(getattr(row, name) or 0) for name in InstrumentDay.FIGURES})
            for row in session.execute(statement)]
