"""What the monitoring dashboards show, for the bureau (the district) and a platform (its own
instruments): figures over time, by platform, industry and category, the best and least used
instruments, large instruments against the reference lines, and the charts and CSV of each."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import pygal
import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.charts import chart_options
from core.clock import to_local
from core.db import utcnow
from core.errors import RuleBroken
from core.exports import csv_bytes
from core.models import INDUSTRY_LABELS, Industry, Platform
from marketplace.registry.models import Instrument, InstrumentCategory
from monitoring import metrics
from monitoring.metrics import PeriodFigures
from vouchers import listing as voucher_listing
from vouchers import reports as voucher_reports
from vouchers.models import Programme
from vouchers.reports import ProgrammeFigures

CHART_PERIODS = ("week", "month", "quarter", "year")
MAX_DAYS = 3 * 366 + 1
TOP = 20
# Reference lines for large instruments, in effective hours a year: the national evaluation's 2025
# averages, and what counts as full use
FULL_USE_HOURS = 1_200
NATIONAL_EFFECTIVE_HOURS = 1_599
NATIONAL_EXTERNAL_HOURS = 273


@dataclass(frozen=True)
class Window:
    """The dashboard's time: a period to group by and the days [first, last], all from the URL."""

    period: str
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def args(self) -> dict[str, str]:
        return {"period": self.period, "start": self.first.isoformat(), "end": self.last.isoformat()}


def window_from(args, *, today: date | None = None) -> Window:
    """?period=week|month|quarter|year&start=YYYY-MM-DD&end=YYYY-MM-DD; by default this year by month.
    A bad value is a RuleBroken on its field."""
    today = today or to_local(utcnow()).date()
    period = args.get("period") or "month"
    if period not in CHART_PERIODS:
        raise RuleBroken("bad_period", _("Choose a period: week, month, quarter or year."), field="period")
    first = _date_arg(args, "start", date(today.year, 1, 1))
    last = _date_arg(args, "end", today)
    if last < first:
        raise RuleBroken("bad_range", _("The end must not be before the start."), field="end")
    if (last - first).days + 1 > MAX_DAYS:
        raise RuleBroken("bad_range", _("A range spans at most three years."), field="end")
    return Window(period, first, last)


def _date_arg(args, name: str, default: date) -> date:
    text = args.get(name)
    if not text:
        return default
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise RuleBroken("bad_date", _("Give a date as YYYY-MM-DD."), field=name) from None
    if not date(2000, 1, 1) <= day <= date(2099, 12, 31):
        raise RuleBroken("bad_date", _("Give a date between the years 2000 and 2099."), field=name)
    return day


# --- rows -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One line of a breakdown: a platform, industry, category or instrument over the whole window."""

    key: str
    label: str
    figures: PeriodFigures


def _totals(start: date, values: dict[str, int]) -> PeriodFigures:
    return PeriodFigures(start, **values)


def breakdown(session: Session, window: Window, by: str, conditions: list | None = None) -> list[Row]:
    """The window's figures per platform, category, industry or instrument, most effective hours first."""
    conditions = conditions or []
    per_instrument = metrics.instrument_totals(session, conditions, window.first, window.last)
    if by == "instrument":
        names = dict(session.execute(select(Instrument.id, Instrument.name_zh)
                                     .where(Instrument.id.in_([i for i, _v in per_instrument]))).all())
        rows = [Row(str(i), names.get(i, str(i)), _totals(window.first, v)) for i, v in per_instrument]
    else:
        owner = _owners(session, by, [i for i, _v in per_instrument])
        summed: dict[str, dict[str, int]] = {}
        for instrument_id, values in per_instrument:
            for key in owner.get(instrument_id, ()):
                target = summed.setdefault(key, dict.fromkeys(values, 0))
                for name, value in values.items():
                    target[name] += value
        labels = _labels(session, by, summed)
        rows = [Row(key, labels.get(key, key), _totals(window.first, values)) for key, values in summed.items()]
    return sorted(rows, key=lambda row: (-row.figures.effective_seconds, row.label))


def _owners(session: Session, by: str, instrument_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Which platform, category (first level) or industries each instrument counts under."""
    if by == "platform":
        return {i: (str(p),) for i, p in session.execute(
            select(Instrument.id, Instrument.platform_id).where(Instrument.id.in_(instrument_ids)))}
    if by == "category":
        parent = sa.func.coalesce(InstrumentCategory.parent_id, InstrumentCategory.id)
        return {i: (str(c),) for i, c in session.execute(
            select(Instrument.id, parent).join(InstrumentCategory, InstrumentCategory.id == Instrument.category_id)
            .where(Instrument.id.in_(instrument_ids)))}
    from core.models import PlatformIndustry

    found: dict[int, tuple[str, ...]] = {}
    for instrument_id, industry in session.execute(
            select(Instrument.id, PlatformIndustry.industry)
            .join(PlatformIndustry, PlatformIndustry.platform_id == Instrument.platform_id)
            .where(Instrument.id.in_(instrument_ids))):
        found[instrument_id] = (*found.get(instrument_id, ()), Industry(industry).value)
    return found


def _labels(session: Session, by: str, keys: Iterable[str]) -> dict[str, str]:
    ids = [int(key) for key in keys if key.isdigit()]
    if by == "platform":
        return {str(i): name for i, name in session.execute(select(Platform.id, Platform.name).where(Platform.id.in_(ids)))}
    if by == "category":
        return {str(i): f"{code} {name}" for i, code, name in session.execute(
            select(InstrumentCategory.id, InstrumentCategory.code, InstrumentCategory.name_zh)
            .where(InstrumentCategory.id.in_(ids)))}
    return {industry.value: str(INDUSTRY_LABELS[industry]) for industry in Industry}


def ranked(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """The TOP most and least utilized instruments among those that were open at all."""
    open_rows = sorted((row for row in rows if row.figures.available_seconds),
                       key=lambda row: (-(row.figures.utilization or 0), row.label))
    return open_rows[:TOP], list(reversed(open_rows[-TOP:])) if open_rows else []


@dataclass(frozen=True)
class LargeInstrument:
    row: Row
    original_value_fen: int
    effective_hours_a_year: float
    external_hours_a_year: float

    @property
    def fully_used(self) -> bool:
        return self.effective_hours_a_year >= FULL_USE_HOURS


def large_instruments(session: Session, window: Window, rows: list[Row], line_fen: int) -> list[LargeInstrument]:
    """Instruments at or above the district's line, their hours scaled to a year, least used first."""
    values = dict(session.execute(select(Instrument.id, Instrument.original_value_fen).where(
        Instrument.original_value_fen >= line_fen, Instrument.id.in_([int(row.key) for row in rows]))).all())
    scale = 365 / window.days
    found = [LargeInstrument(row, values[int(row.key)], row.figures.effective_seconds / 3600 * scale,
                             row.figures.external_seconds / 3600 * scale)
             for row in rows if int(row.key) in values]
    return sorted(found, key=lambda large: (large.effective_hours_a_year, large.row.label))


@dataclass(frozen=True)
class ProgrammeSpending:
    programme: Programme
    figures: ProgrammeFigures

    @property
    def spent_share(self) -> float:
        """What the vouchers of the pool have consumed or hold, of the pool."""
        spent = self.figures.consumed_fen + self.figures.held_fen
        return spent / self.figures.pool_fen if self.figures.pool_fen else 0.0


def voucher_spending(session: Session, *, year: int, language: str) -> list[ProgrammeSpending]:
    """The voucher programmes of a year with what their pools gave and what the vouchers spent."""
    return [ProgrammeSpending(programme, voucher_reports.programme_figures(session, programme, language=language))
            for programme in voucher_listing.list_programmes(session) if programme.year == year]


# --- charts and CSV -------------------------------------------------------------------------------

def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def period_label(start: date, period: str) -> str:
    if period == "year":
        return f"{start.year}"
    if period == "quarter":
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    if period == "month":
        return f"{start:%Y-%m}"
    return f"{start:%m-%d}"


def rates_chart(series: list[PeriodFigures], period: str, *, title: str) -> str:
    """Utilization and sharing rate per period, in percent."""
    chart = pygal.Line(**chart_options(title, height=320, value_formatter=lambda v: f"{v:.1f}%"),
                       show_minor_x_labels=True, x_label_rotation=0 if len(series) <= 12 else 30)
    chart.x_labels = [period_label(row.start, period) for row in series]
    chart.add(_("Utilization"), [None if row.utilization is None else row.utilization * 100 for row in series])
    chart.add(_("Sharing rate"), [None if row.sharing_rate is None else row.sharing_rate * 100 for row in series])
    if not series:
        chart.no_data_text = _("No figures for this time yet.")
    return chart.render(is_unicode=True)


def hours_chart(rows: list[Row], *, title: str) -> str:
    """Effective and external hours of each row (the first 12), the largest on top."""
    shown = rows[:12][::-1]
    longest = max((len(row.label) for row in shown), default=0)
    chart = pygal.HorizontalBar(**chart_options(title, height=max(260, 100 + 40 * len(shown)),
                                                value_formatter=lambda v: f"{v:,.1f} h"),
                                truncate_label=-1, margin_left=min(12 * longest, 360))
    chart.x_labels = [row.label for row in shown]
    chart.add(_("Effective hours"), [row.figures.effective_seconds / 3600 for row in shown])
    chart.add(_("External service hours"), [row.figures.external_seconds / 3600 for row in shown])
    if not shown:
        chart.no_data_text = _("No figures for this time yet.")
    return chart.render(is_unicode=True)


def timeline_chart(series: list[PeriodFigures], *, title: str) -> str:
    """An instrument's booked against effective hours, day by day."""
    chart = pygal.Bar(**chart_options(title, height=300, value_formatter=lambda v: f"{v:.1f} h"),
                      x_label_rotation=45, show_minor_x_labels=False)
    chart.x_labels = [f"{row.start:%m-%d}" for row in series]
    chart.x_labels_major = chart.x_labels[::7]
    chart.add(_("Booked hours"), [row.booked_seconds / 3600 for row in series])
    chart.add(_("Effective hours"), [row.effective_seconds / 3600 for row in series])
    if not series:
        chart.no_data_text = _("No figures for this time yet.")
    return chart.render(is_unicode=True)


def figure_columns() -> list[tuple[str, Callable[[PeriodFigures], str]]]:
    """The columns of every table of figures, on screen and in CSV: hours with two decimals, money in yuan."""
    return [
        (_("Available hours"), lambda f: f"{f.available_seconds / 3600:.2f}"),
        (_("Booked hours"), lambda f: f"{f.booked_seconds / 3600:.2f}"),
        (_("Effective hours"), lambda f: f"{f.effective_seconds / 3600:.2f}"),
        (_("External service hours"), lambda f: f"{f.external_seconds / 3600:.2f}"),
        (_("Utilization"), lambda f: _percent(f.utilization)),
        (_("Sharing rate"), lambda f: _percent(f.sharing_rate)),
        (_("Revenue paid by enterprises (yuan)"), lambda f: f"{f.revenue_enterprise_fen / 100:.2f}"),
        (_("Revenue paid by vouchers (yuan)"), lambda f: f"{f.revenue_voucher_fen / 100:.2f}"),
        (_("Bookings"), lambda f: str(f.bookings)),
        (_("No-shows"), lambda f: str(f.no_shows)),
        (_("Cancellations"), lambda f: str(f.cancellations)),
    ]


def figures_csv(first_heading: str, labelled: list[tuple[str, PeriodFigures]]) -> bytes:
    """A table of figures as CSV, its columns as on the screen."""
    columns = figure_columns()
    return csv_bytes([first_heading, *(heading for heading, _value in columns)],
                     ([label, *(value(figures) for _heading, value in columns)] for label, figures in labelled))


def whole(series: list[PeriodFigures], first: date) -> PeriodFigures:
    """The sum of a series (distinct users are not summed: left at zero)."""
    names = metrics.InstrumentDay.FIGURES
    return PeriodFigures(first, *(sum(getattr(row, name) for row in series) for name in names))

