"""The public-holiday calendar: each year's holiday arrangement (放假调休) as the State Council publishes
it, kept as data the bureau sees and corrects. A year's arrangement holds the days dated in that year:
its public holidays (weekend days inside a holiday period included) and its make-up working days. A
year without one recorded has the statutory public holidays computed from the lunar calendar, closed,
and no make-up working days; the bureau is warned once the booking horizon reaches it."""
from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from itertools import chain

import chinese_calendar
import sqlalchemy as sa
from flask import Flask, current_app, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from lunardate import LunarDate
from sqlalchemy import select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core import clock
from core.audit import Actor, record_audit
from core.clock import to_local
from core.db import UTCTime, str_enum
from core.errors import RuleBroken
from core.extensions import db
from core.models import Role, RoleGrant, User
from core.outbox import enqueue_mail

HORIZON_EXTENSION = "kequip.booking_horizon"
NAME_LENGTH = 40
FIRST_YEAR, LAST_YEAR = 1901, 2099  # the years the lunar calendar (lunardate) covers


class DayKind(StrEnum):
    ORDINARY = "ordinary"
    HOLIDAY = "holiday"  # a public holiday (法定节假日), weekend days of its period included
    MAKEUP_WORKDAY = "makeup_workday"  # a weekend day worked in lieu (调休上班)


DAY_KIND_LABELS = {DayKind.ORDINARY: _l("Ordinary day"), DayKind.HOLIDAY: _l("Public holiday"),
                   DayKind.MAKEUP_WORKDAY: _l("Make-up working day")}


class ArrangementSource(StrEnum):
    LIBRARY = "library"  # seeded from the chinesecalendar package's copy of the State Council's notices
    BUREAU = "bureau"  # entered, corrected or imported by the bureau


ARRANGEMENT_SOURCE_LABELS = {ArrangementSource.LIBRARY: _l("State Council notice (seeded)"),
                             ArrangementSource.BUREAU: _l("Entered by the bureau")}


class HolidayArrangement(db.Model):
    """A year's holiday arrangement as recorded; a year without a row has its holidays computed."""

    __tablename__ = "holiday_arrangements"
    __table_args__ = (sa.CheckConstraint(f"year BETWEEN {FIRST_YEAR} AND {LAST_YEAR}", name="year_in_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(unique=True)
    source: Mapped[ArrangementSource] = mapped_column(str_enum(ArrangementSource))
    updated_at: Mapped[UTCTime]
    days: Mapped[list[HolidayDay]] = relationship(back_populates="arrangement", order_by="HolidayDay.day",
                                                  cascade="all, delete-orphan")


class HolidayDay(db.Model):
    """One day of an arrangement: a public holiday or a make-up working day, with the holiday's name."""

    __tablename__ = "holiday_days"
    __table_args__ = (sa.CheckConstraint("kind <> 'ordinary'", name="kind_not_ordinary"),
                      sa.CheckConstraint("name <> ''", name="name_not_empty"))

    id: Mapped[int] = mapped_column(primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(sa.ForeignKey("holiday_arrangements.id", ondelete="CASCADE"),
                                                index=True)
    day: Mapped[date] = mapped_column(unique=True)
    kind: Mapped[DayKind] = mapped_column(str_enum(DayKind))
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    arrangement: Mapped[HolidayArrangement] = relationship(back_populates="days")


class HolidayWarning(db.Model):
    """The bureau was mailed that this year has no arrangement: a year is mailed about once."""

    __tablename__ = "holiday_warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(unique=True)
    mailed_at: Mapped[UTCTime]


# --- the statutory holidays of a year without an arrangement -----------------------------------------
# The current statutory days (全国年节及纪念日放假办法): 元旦 1, 春节 4 (除夕 to 初三), 清明 1, 劳动节 2,
# 端午 1, 中秋 1, 国庆 3. Without the State Council's arrangement nobody knows the make-up days.

@cache
def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory public holidays of a year, from the lunar calendar and the solar term 清明."""
    spring = LunarDate(year, 1, 1).to_solar_date()
    qingming = next(day for day, term in chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 10))
                    if term == "清明")
    days = {date(year, 1, 1): "元旦"}
    days |= {spring + timedelta(days=n): "春节" for n in range(-1, 3)}
    days[qingming] = "清明"
    days |= {date(year, 5, 1): "劳动节", date(year, 5, 2): "劳动节"}
    days[LunarDate(year, 5, 5).to_solar_date()] = "端午"
    days[LunarDate(year, 8, 15).to_solar_date()] = "中秋"
    days |= {date(year, 10, n): "国庆节" for n in (1, 2, 3)}
    return dict(sorted(days.items()))


def library_years() -> range:
    """The years the chinesecalendar package holds the State Council's arrangement of."""
    return range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)


def library_days() -> Iterable[tuple[date, DayKind, str]]:
    """Every day of the chinesecalendar package's arrangements, named in Chinese (the seed of the table)."""
    chinese = {holiday.value: holiday.chinese for holiday in chinese_calendar.Holiday}
    yield from ((day, DayKind.HOLIDAY, chinese[name]) for day, name in chinese_calendar.holidays.items())
    yield from ((day, DayKind.MAKEUP_WORKDAY, chinese[name]) for day, name in chinese_calendar.workdays.items())


# --- the calendar as each process keeps it ----------------------------------------------------------------
# day_kind answers for every day of every availability question (booking, the catalogue's free-time
# filter), and the calendar changes a few times a year: each process keeps it CALENDAR_SECONDS. A change
# this process commits shows at once (_forget_on_commit), one that another worker commits within that time.

CALENDAR_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Calendar:
    days: dict[date, tuple[DayKind, str]]  # the recorded days of the arranged years
    arranged_years: frozenset[int]

    def entry(self, day: date) -> tuple[DayKind, str | None]:
        if day.year in self.arranged_years:
            return self.days.get(day, (DayKind.ORDINARY, None))
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            return DayKind.ORDINARY, None  # beyond the lunar calendar's years: the weekly hours alone
        name = statutory_holidays(day.year).get(day)
        return (DayKind.HOLIDAY, name) if name else (DayKind.ORDINARY, None)


def load_calendar(session: Session) -> Calendar:
    rows = session.execute(select(HolidayDay.day, HolidayDay.kind, HolidayDay.name))
    years = session.scalars(select(HolidayArrangement.year))
    return Calendar({day: (kind, name) for day, kind, name in rows}, frozenset(years))


def _clock() -> float:
    return time.monotonic()


# database URI → (when it goes stale, the calendar); a plain dict rather than a TTLCache, whose lock and
# bookkeeping cost more than the rest of day_kind: a read of a dict is atomic, and two threads that load
# at once store the same calendar.
_calendars: dict[str, tuple[float, Calendar]] = {}


def kept_calendar() -> Calendar:
    """The calendar of the app's database, as read at most CALENDAR_SECONDS ago."""
    key = current_app.config["SQLALCHEMY_DATABASE_URI"]
    found = _calendars.get(key)
    if found is None or found[0] < _clock():
        found = _calendars[key] = (_clock() + CALENDAR_SECONDS, load_calendar(db.session))
    return found[1]


def forget_calendar() -> None:
    _calendars.clear()


@sa.event.listens_for(Session, "after_flush")
def _note_calendar_change(session: Session, _flush_context) -> None:
    if any(isinstance(obj, (HolidayArrangement, HolidayDay)) for obj in chain(session.new, session.dirty,
                                                                             session.deleted)):
        session.info["holiday_calendar_changed"] = True


@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_rollback")
def _forget_on_commit(session: Session) -> None:
    """After a commit the kept calendar is old; after a rollback it may hold what was flushed, then undone."""
    if session.info.pop("holiday_calendar_changed", False):
        forget_calendar()


def day_kind(day: date) -> DayKind:
    """What a local calendar day is: the one question every opening-hours rule asks."""
    return kept_calendar().entry(day)[0]


# --- the bureau's pages: what a year holds ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class YearSummary:
    year: int
    source: ArrangementSource | None  # None: no arrangement, the holidays are computed
    days: int


@dataclass(frozen=True, slots=True)
class ShownDay:
    day: date
    kind: DayKind
    name: str
    row: HolidayDay | None  # None: a computed holiday


def arrangement_of(session: Session, year: int) -> HolidayArrangement | None:
    return session.scalar(select(HolidayArrangement).where(HolidayArrangement.year == year))


def year_days(session: Session, year: int) -> list[ShownDay]:
    """The recorded days of the year, or its computed statutory holidays when it has no arrangement."""
    arrangement = arrangement_of(session, year)
    if arrangement is None:
        return [ShownDay(day, DayKind.HOLIDAY, name, None) for day, name in statutory_holidays(year).items()]
    return [ShownDay(row.day, row.kind, row.name, row) for row in arrangement.days]


def year_summaries(session: Session, *, today: date) -> list[YearSummary]:
    """Every arranged year, and each year from this one to the booking horizon's, newest first."""
    counts = dict(session.execute(select(HolidayArrangement.year, sa.func.count(HolidayDay.id))
                                  .outerjoin(HolidayDay).group_by(HolidayArrangement.year)).all())
    sources = dict(session.execute(select(HolidayArrangement.year, HolidayArrangement.source)).all())
    last = (today + timedelta(days=booking_horizon(session))).year
    years = sorted(set(sources) | set(range(today.year, last + 1)), reverse=True)
    return [YearSummary(year, sources.get(year), counts.get(year, len(statutory_holidays(year))))
            for year in years]


# --- the bureau's changes ------------------------------------------------------------------------------------

def _ensure_year(year: int, field: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise RuleBroken("holiday_year_out_of_range",
                         _("The year must lie between %(first)s and %(last)s.", first=FIRST_YEAR, last=LAST_YEAR),
                         field=field)


def _ensure_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_LENGTH:
        raise RuleBroken("holiday_name_invalid",
                         _("Name the holiday in 1 to %(n)s characters.", n=NAME_LENGTH), field="name")
    return name


def _locked_arrangement(session: Session, year: int, *, actor: Actor, now: datetime) -> HolidayArrangement:
    """The year's arrangement under a row lock, to change; a year without one gets one, begun with its
    computed statutory holidays (the bureau then corrects them to the published notice)."""
    _ensure_year(year, "day")
    query = select(HolidayArrangement).where(HolidayArrangement.year == year).with_for_update()
    arrangement = session.scalar(query)
    if arrangement is None:
        try:
            with session.begin_nested():
                arrangement = HolidayArrangement(year=year, source=ArrangementSource.BUREAU, updated_at=now,
                                                 days=[HolidayDay(day=day, kind=DayKind.HOLIDAY, name=name)
                                                       for day, name in statutory_holidays(year).items()])
                session.add(arrangement)
        except sa.exc.IntegrityError:  # another change began the year's arrangement meanwhile: change that one
            arrangement = session.scalar(query)
        else:
            record_audit(session, actor, "holiday_arrangement.created", arrangement,
                         after={"year": year, "days": len(arrangement.days)})
    arrangement.source, arrangement.updated_at = ArrangementSource.BUREAU, now
    return arrangement


def _day_record(row: HolidayDay) -> dict:
    return {"day": row.day.isoformat(), "kind": row.kind.value, "name": row.name}


def add_day(session: Session, *, actor: Actor, now: datetime, day: date, kind: DayKind, name: str) -> HolidayDay:
    name = _ensure_name(name)
    arrangement = _locked_arrangement(session, day.year, actor=actor, now=now)
    taken = RuleBroken("holiday_day_taken", _("This day is already in the calendar: change it instead."),
                       field="day")
    if session.scalar(select(HolidayDay.id).where(HolidayDay.day == day)) is not None:
        raise taken
    row = HolidayDay(day=day, kind=kind, name=name)
    try:
        with session.begin_nested():
            arrangement.days.append(row)
    except sa.exc.IntegrityError:  # added by another change meanwhile (the unique day)
        raise taken from None
    record_audit(session, actor, "holiday_day.added", row, after=_day_record(row))
    return row


def change_day(session: Session, row: HolidayDay, *, actor: Actor, now: datetime, kind: DayKind,
               name: str) -> HolidayDay:
    name = _ensure_name(name)
    _locked_arrangement(session, row.day.year, actor=actor, now=now)
    before = _day_record(row)
    row.kind, row.name = kind, name
    session.flush()
    record_audit(session, actor, "holiday_day.updated", row, before=before, after=_day_record(row))
    return row


def remove_day(session: Session, row: HolidayDay, *, actor: Actor, now: datetime) -> None:
    _locked_arrangement(session, row.day.year, actor=actor, now=now)
    record_audit(session, actor, "holiday_day.removed", row, before=_day_record(row))
    session.delete(row)
    session.flush()


# --- importing a year's arrangement: read (no transaction), then replace the year's days ------------------

KIND_WORDS = {"holiday": DayKind.HOLIDAY, "放假": DayKind.HOLIDAY, "休": DayKind.HOLIDAY,
              "makeup_workday": DayKind.MAKEUP_WORKDAY, "调休上班": DayKind.MAKEUP_WORKDAY,
              "上班": DayKind.MAKEUP_WORKDAY, "班": DayKind.MAKEUP_WORKDAY}
MAX_IMPORT_LINES = 366
LINE_FIELD_LABELS = {"date": _l("Date"), "kind": _l("Kind"), "name": _l("Holiday")}


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    field: str  # "date", "kind" or "name"
    message: str

    def __str__(self) -> str:
        return _("Line %(line)s, %(field)s: %(message)s", line=self.line, field=LINE_FIELD_LABELS[self.field],
                 message=self.message)


class ArrangementInvalid(RuleBroken):
    """The pasted or uploaded arrangement has faulty lines; `details` lists them (LineError)."""


def read_arrangement(text: str, *, year: int) -> list[tuple[date, DayKind, str]]:
    """Lines "date,kind,name" (kind: holiday/放假 or makeup_workday/调休上班); blank lines and a header
    line are skipped. Every faulty line is reported, by line and field."""
    _ensure_year(year, "year")
    days: list[tuple[date, DayKind, str]] = []
    errors: list[LineError] = []
    seen: set[date] = set()
    for number, cells in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells) or (number == 1 and cells[0].lower() in ("date", "日期")):
            continue
        if len(days) + len(errors) >= MAX_IMPORT_LINES:
            errors.append(LineError(number, "date", _("More than %(n)s lines.", n=MAX_IMPORT_LINES)))
            break
        found = _read_line(number, [*cells, "", ""][:3], year=year, seen=seen)
        if isinstance(found, list):
            errors.extend(found)
        else:
            days.append(found)
            seen.add(found[0])
    if errors:
        raise ArrangementInvalid("holiday_import_invalid",
                                 _("%(n)s lines are faulty; nothing was saved.", n=len(errors)),
                                 field="text", details=errors)
    if not days:
        raise RuleBroken("holiday_import_empty", _("The arrangement lists no days."), field="text")
    return sorted(days)


def _read_line(number: int, cells: list[str], *, year: int,
               seen: set[date]) -> tuple[date, DayKind, str] | list[LineError]:
    text_day, text_kind, name = cells
    errors = []
    try:
        day = date.fromisoformat(text_day)
    except ValueError:
        day = None
        errors.append(LineError(number, "date", _("Not a date of the form 2027-01-01.")))
    if day is not None and day.year != year:
        errors.append(LineError(number, "date", _("Not a day of %(year)s.", year=year)))
    elif day is not None and day in seen:
        errors.append(LineError(number, "date", _("This day is listed twice.")))
    kind = KIND_WORDS.get(text_kind.lower())
    if kind is None:
        errors.append(LineError(number, "kind", _("Write holiday (放假) or makeup_workday (调休上班).")))
    elif kind == DayKind.MAKEUP_WORKDAY and day is not None and day.weekday() < 5:
        errors.append(LineError(number, "kind", _("A make-up working day falls on a Saturday or Sunday.")))
    if not name or len(name) > NAME_LENGTH:
        errors.append(LineError(number, "name", _("Name the holiday in 1 to %(n)s characters.", n=NAME_LENGTH)))
    return errors or (day, kind, name)


def import_arrangement(session: Session, year: int, days: list[tuple[date, DayKind, str]], *, actor: Actor,
                       now: datetime) -> HolidayArrangement:
    """The year's arrangement becomes exactly the days read (read_arrangement, outside the transaction)."""
    arrangement = _locked_arrangement(session, year, actor=actor, now=now)
    before = {"days": len(arrangement.days)}
    arrangement.days.clear()
    session.flush()  # the old days go before the new ones take their dates
    arrangement.days.extend(HolidayDay(day=day, kind=kind, name=name) for day, kind, name in days)
    session.flush()
    record_audit(session, actor, "holiday_arrangement.imported", arrangement, before=before,
                 after={"days": len(days), "year": year})
    return arrangement


# --- the warning: from the day the booking horizon reaches a year without an arrangement -----------------

def register_horizon(app: Flask, horizon: Callable[[Session], int]) -> None:
    """A package that takes bookings says how many days ahead they may lie (its longest horizon)."""
    app.extensions.setdefault(HORIZON_EXTENSION, []).append(horizon)


def booking_horizon(session: Session) -> int:
    return max((horizon(session) for horizon in current_app.extensions.get(HORIZON_EXTENSION, [])), default=0)


def years_without_arrangement(session: Session, *, now: datetime) -> list[int]:
    """The years from this one to the one the booking horizon reaches that have no arrangement."""
    today = to_local(now).date()
    last = (today + timedelta(days=booking_horizon(session))).year
    arranged = set(session.scalars(select(HolidayArrangement.year).where(
        HolidayArrangement.year.between(today.year, last))))
    return [year for year in range(today.year, last + 1) if year not in arranged]


def warn_bureau(session: Session, *, now: datetime) -> int:
    """Mail the bureau's administrators about each year without an arrangement that the horizon reaches,
    once per year (a row per year mailed): the messages queued."""
    mailed = set(session.scalars(select(HolidayWarning.year)))
    years = [year for year in years_without_arrangement(session, now=now) if year not in mailed]
    if not years:
        return 0
    admins = list(session.scalars(select(User).join(RoleGrant, RoleGrant.user_id == User.id).where(
        RoleGrant.role == Role.BUREAU_ADMIN, User.is_active.is_(True)).distinct().order_by(User.id)))
    for year in years:
        session.add(HolidayWarning(year=year, mailed_at=now))
        session.flush()  # a second run at the same moment stops here, on the unique year
        for admin in admins:
            enqueue_mail(session, to=admin.email, locale=admin.locale, template="holidays_missing",
                         context={"name": admin.name, "year": year,
                                  "holidays": [f"{day.isoformat()} {name}"
                                               for day, name in statutory_holidays(year).items()]})
    return len(years) * len(admins)


def register(app: Flask) -> None:
    """The bureau's pages carry a banner while a year the horizon reaches has no arrangement."""
    from core.auth import current_principal

    @app.context_processor
    def inject() -> dict:
        user = current_principal() if has_request_context() else None
        if user is None or not user.has_role(Role.BUREAU_ADMIN):
            return {}
        return {"holiday_years_missing": years_without_arrangement(db.session, now=clock.utcnow())}
