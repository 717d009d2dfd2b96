"""The bureau's pages of the holiday calendar: a year's days, a day added, changed or removed, a year's
arrangement imported (core/holidays.py holds the rules)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core import clock, holidays
from core.auth import AccessRule, current_actor, requires
from core.db import end_reads, unit_of_work
from core.errors import RuleBroken
from core.extensions import db
from core.forms import HolidayChangeForm, HolidayDayForm, HolidayImportForm, show_rule_error
from core.holidays import ARRANGEMENT_SOURCE_LABELS, DAY_KIND_LABELS, DayKind, HolidayDay
from core.models import Role
from core.templating import NavItem

bp = Blueprint("holidays", __name__, url_prefix="/holidays")
NAV = [NavItem("holidays.calendar", _l("Holiday calendar"), AccessRule(frozenset({Role.BUREAU_ADMIN})))]
MAX_UPLOAD_BYTES = 64 * 1024  # a year's arrangement is a few dozen lines


def _shown(year: int | None) -> int:
    """The year asked for, else this one (the lunar calendar knows no other)."""
    if year is not None and holidays.FIRST_YEAR <= year <= holidays.LAST_YEAR:
        return year
    return clock.to_local(clock.utcnow()).year


def _page(year: int, *, day_form: HolidayDayForm | None = None, import_form: HolidayImportForm | None = None,
          line_errors: list | None = None, status: int = 200) -> ResponseReturnValue:
    today, year = clock.to_local(clock.utcnow()).date(), _shown(year)
    return render_template(
        "core/holidays.html", year=year, years=holidays.year_summaries(db.session, today=today),
        arrangement=holidays.arrangement_of(db.session, year), days=holidays.year_days(db.session, year),
        day_form=day_form or HolidayDayForm(), import_form=import_form or HolidayImportForm(),
        line_errors=line_errors or [], DAY_KIND_LABELS=DAY_KIND_LABELS,
        ARRANGEMENT_SOURCE_LABELS=ARRANGEMENT_SOURCE_LABELS), status


@bp.route("/")
@requires(Role.BUREAU_ADMIN)
def calendar() -> ResponseReturnValue:
    return _page(_shown(request.args.get("year", type=int)))


@bp.route("/days", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def add_day() -> ResponseReturnValue:
    form = HolidayDayForm()
    year = _shown(form.day.data.year if form.day.data else None)
    if not form.validate_on_submit():
        return _page(year, day_form=form, status=422)
    try:
        with unit_of_work() as session:
            holidays.add_day(session, actor=current_actor(), now=clock.utcnow(), day=form.day.data,
                             kind=DayKind(form.kind.data), name=form.name.data)
    except RuleBroken as error:
        if not show_rule_error(form, error):
            flash(error.message, "danger")
        return _page(year, day_form=form, status=422)
    flash(_("The day is saved."), "success")
    return redirect(url_for(".calendar", year=year))


@bp.route("/days/<id:day_id>", methods=["GET", "POST"])
@requires(Role.BUREAU_ADMIN)
def change_day(day_id: int) -> ResponseReturnValue:
    row = db.get_or_404(HolidayDay, day_id)
    form = HolidayChangeForm(obj=row)
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                holidays.change_day(session, row, actor=current_actor(), now=clock.utcnow(),
                                    kind=DayKind(form.kind.data), name=form.name.data)
        except RuleBroken as error:
            if not show_rule_error(form, error):
                flash(error.message, "danger")
        else:
            flash(_("The day is saved."), "success")
            return redirect(url_for(".calendar", year=row.day.year))
    return render_template("core/holiday_day.html", row=row, form=form), 422 if form.errors else 200


@bp.route("/days/<id:day_id>/remove", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def remove_day(day_id: int) -> ResponseReturnValue:
    row = db.get_or_404(HolidayDay, day_id)
    year = row.day.year
    with unit_of_work() as session:
        holidays.remove_day(session, row, actor=current_actor(), now=clock.utcnow())
    flash(_("The day is removed."), "success")
    return redirect(url_for(".calendar", year=year))


@bp.route("/<int:year>/import", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def import_arrangement(year: int) -> ResponseReturnValue:
    if year != _shown(year):
        abort(404)
    form = HolidayImportForm()
    if not form.validate_on_submit():
        return _page(year, import_form=form, status=422)
    upload = form.file.data
    data = upload.read(MAX_UPLOAD_BYTES + 1) if upload else b""
    end_reads()
    try:
        if len(data) > MAX_UPLOAD_BYTES:
            raise RuleBroken("holiday_import_too_large", _("The file is too large for a year's arrangement."),
                             field="file")
        try:
            text = data.decode("utf-8-sig") if data else (form.text.data or "")
        except UnicodeDecodeError:
            raise RuleBroken("holiday_import_not_utf8", _("Save the CSV file as UTF-8."), field="file") from None
        days = holidays.read_arrangement(text, year=year)
        with unit_of_work() as session:
            holidays.import_arrangement(session, year, days, actor=current_actor(), now=clock.utcnow())
    except RuleBroken as error:
        if not show_rule_error(form, error):
            flash(error.message, "danger")
        return _page(year, import_form=form, line_errors=getattr(error, "details", None), status=422)
    flash(_("The arrangement of %(year)s is imported: %(n)s days.", year=year, n=len(days)), "success")
    return redirect(url_for(".calendar", year=year))
