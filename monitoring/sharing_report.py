"""The quarterly sharing report in the columns the national instrument-sharing network asks for: each
instrument's name, model, manufacturer, asset number, original value, platform, category and sharing
mode, with its effective and external service hours, service income and users served over the year
to the quarter's end. The same rows on the screen, in XLSX and in CSV."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import RuleBroken
from core.exports import csv_bytes, xlsx_bytes
from core.models import Platform
from marketplace.booking.models import Booking, BookingState
from marketplace.registry.models import SHARING_MODE_LABELS, Instrument, InstrumentCategory, InstrumentState
from monitoring import metrics
from monitoring.metrics import day_bounds

REPORTED_STATES = (InstrumentState.PUBLISHED, InstrumentState.MAINTENANCE, InstrumentState.RETIRED)


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int  # 1 to 4

    @property
    def first(self) -> date:
        """The first day of the year: the report's hours are the year's to the quarter's end."""
        return date(self.year, 1, 1)

    @property
    def last(self) -> date:
        following = date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)
        return following - timedelta(days=1)


def quarter_from(args, *, today: date) -> Quarter:
    """?year=&quarter=, by default the last quarter that has ended."""
    default = Quarter(today.year, (today.month - 1) // 3) if today.month > 3 else Quarter(today.year - 1, 4)
    try:
        year = int(args.get("year") or default.year)
        number = int(args.get("quarter") or default.number)
    except ValueError:
        raise RuleBroken("bad_quarter", _("Give the year and the quarter as numbers."), field="quarter") from None
    if not 2000 <= year <= 2099 or not 1 <= number <= 4:
        raise RuleBroken("bad_quarter", _("Give a year from 2000 to 2099 and a quarter from 1 to 4."), field="quarter")
    return Quarter(year, number)


@dataclass(frozen=True)
class ReportRow:
    name: str
    model: str
    manufacturer: str
    asset_number: str
    original_value_fen: int
    platform: str
    category: str
    sharing_mode: str
    effective_hours: float
    external_hours: float
    income_fen: int
    users_served: int


def columns() -> list[tuple[str, Callable[[ReportRow], object]]]:
    """The report's columns: hours with two decimals, money in yuan with two, as on the screen."""
    return [(_("Instrument name"), lambda r: r.name), (_("Model"), lambda r: r.model),
            (_("Manufacturer"), lambda r: r.manufacturer), (_("Asset number"), lambda r: r.asset_number),
            (_("Original value (yuan)"), lambda r: f"{r.original_value_fen / 100:.2f}"),
            (_("Platform"), lambda r: r.platform), (_("Category"), lambda r: r.category),
            (_("Sharing mode"), lambda r: r.sharing_mode),
            (_("Annual effective hours"), lambda r: f"{r.effective_hours:.2f}"),
            (_("Annual external service hours"), lambda r: f"{r.external_hours:.2f}"),
            (_("Service income (yuan)"), lambda r: f"{r.income_fen / 100:.2f}"),
            (_("Users served"), lambda r: r.users_served)]


def rows(session: Session, quarter: Quarter, conditions: list[sa.ColumnElement[bool]]) -> list[ReportRow]:
    """One row per registered instrument the conditions select, by platform and asset number."""
    totals = dict(metrics.instrument_totals(session, conditions, quarter.first, quarter.last))
    start, end = day_bounds(quarter.first, quarter.last)
    served = dict(session.execute(
        select(Booking.instrument_id, func.count(sa.distinct(Booking.booker_id)))
        .join(Instrument, Instrument.id == Booking.instrument_id)
        .where(Booking.state == BookingState.COMPLETED, Booking.start_at >= start, Booking.start_at < end, *conditions)
        .group_by(Booking.instrument_id)).all())
    found = []
    for instrument, platform, category_code, category_name in session.execute(
            select(Instrument, Platform.name, InstrumentCategory.code, InstrumentCategory.name_zh)
            .join(Platform, Platform.id == Instrument.platform_id)
            .join(InstrumentCategory, InstrumentCategory.id == Instrument.category_id)
            .where(Instrument.state.in_(REPORTED_STATES), *conditions)
            .order_by(Platform.name, Instrument.asset_number)):
        figures = totals.get(instrument.id, {})
        found.append(ReportRow(
            instrument.name_zh, instrument.model, instrument.manufacturer, instrument.asset_number,
            instrument.original_value_fen, platform, f"{category_code} {category_name}",
            str(SHARING_MODE_LABELS[instrument.sharing_mode]), figures.get("effective_seconds", 0) / 3600,
            figures.get("external_seconds", 0) / 3600,
            figures.get("revenue_enterprise_fen", 0) + figures.get("revenue_voucher_fen", 0),
            served.get(instrument.id, 0)))
    return found


def as_csv(found: list[ReportRow]) -> bytes:
    shown = columns()
    return csv_bytes([title for title, _value in shown], ([value(row) for _title, value in shown] for row in found))


def as_xlsx(found: list[ReportRow], *, title: str) -> bytes:
    shown = columns()
    return xlsx_bytes([(title, [heading for heading, _value in shown],
                        ([value(row) for _heading, value in shown] for row in found))])
