"""Marketplace pages for the platforms' staff and the bureau: bookings to approve, the day sheet with
check-in (an early or late one confirmed on a step of its own), check-out and no-shows (marked and
undone with a reason), each instrument's schedule, booking rules (an instrument's own, the district's
defaults), maintenance windows, qualifications and service terms. The rules are in
marketplace/booking/services.py and marketplace/booking/calendar_admin.py; these views load, call and render."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm

from core.auth import AccessRule, current_actor, current_principal, requires
from core.clock import from_local, local_midnight, to_local
from core.db import end_reads, unit_of_work, utcnow
from core.errors import Conflict, Forbidden, KequipError, RuleBroken
from core.extensions import db
from core.forms import show_rule_error
from core.models import Platform, Role
from core.services import administers
from core.templating import NavItem
from marketplace.blueprints import bp, my_platform
from marketplace.booking import calendar_admin
from marketplace.booking import services as bookings
from marketplace.booking.availability import district_rules, effective_rules
from marketplace.booking.forms import (
    BookingRulesForm,
    CheckInForm,
    MaintenanceImportForm,
    MaintenanceWindowForm,
    NoShowForm,
    QualificationForm,
    ServiceTermsForm,
)
from marketplace.booking.models import BOOKING_STATE_LABELS, QUALIFICATION_RULE_LABELS, MaintenanceWindow, Qualification
from marketplace.payments.models import PAYMENT_STATE_LABELS
from marketplace.registry import services
from marketplace.registry.forms import RejectForm
from marketplace.registry.models import Instrument, InstrumentState

ADMIN, STAFF = frozenset({Role.PLATFORM_ADMIN}), frozenset({Role.PLATFORM_ADMIN, Role.PLATFORM_OPERATOR})
NAV = [
    NavItem("marketplace.booking_approvals", _l("Bookings to approve"), AccessRule(ADMIN)),
    NavItem("marketplace.day_sheet", _l("Day sheet"), AccessRule(STAFF)),
    NavItem("marketplace.district_booking_rules", _l("Booking rules"), AccessRule(frozenset({Role.BUREAU_ADMIN}))),
]
BOOKING = "/platform/bookings/<id:booking_id>"
INSTRUMENT = "/instruments/<id:instrument_id>"
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)  # days a sheet or a schedule may show
LABELS = {"STATE_LABELS": BOOKING_STATE_LABELS, "PAYMENT_STATE_LABELS": PAYMENT_STATE_LABELS}


# --- helpers ------------------------------------------------------------------------------------

def _staff_platform() -> Platform:
    """The platform an admin or operator works for (?platform_id= picks one when they have several)."""
    platform_ids = sorted(current_principal().organisation_ids(*STAFF))
    wanted = request.values.get("platform_id", type=int) or platform_ids[0]
    if wanted not in platform_ids:
        raise Forbidden("forbidden", _("You are not on the staff of this platform."))
    return db.session.get(Platform, wanted)


def _day_arg(name: str = "day") -> date:
    """?day=YYYY-MM-DD, else today (Asia/Shanghai)."""
    day = request.args.get(name, type=date.fromisoformat)
    return day if day is not None and FIRST_DAY <= day <= LAST_DAY else to_local(utcnow()).date()


def _local_range(first: date, days: int) -> tuple[datetime, datetime]:
    return from_local(local_midnight(first)), from_local(local_midnight(first + timedelta(days=days)))


def _came_from() -> str:
    """The page the button was on: the form's `back` (set by a step in between), else the referrer."""
    return request.form.get("back") or request.referrer or ""


def _back(default: str):
    """Back to the page the button was on (same site only), else to default."""
    target = _came_from()
    return redirect(target if target.startswith(request.host_url) else default)


def _show(form: FlaskForm, error: KequipError) -> None:
    """A service's refusal beside its fields (every field it names), else as a flash."""
    errors = error.details if isinstance(error.details, dict) else {error.field: error.message}
    for field_name, message in errors.items():
        if not show_rule_error(form, RuleBroken(error.code, message, field=field_name)):
            flash(message, "danger")


def _managed_instrument(instrument_id: int) -> Instrument:
    instrument = db.get_or_404(Instrument, instrument_id)
    calendar_admin.ensure_may_manage_calendar(current_principal(), instrument.platform_id)
    return instrument


def _maintained_instrument(instrument_id: int) -> Instrument:
    """An instrument whose maintenance the user enters: an admin's or operator's of its platform."""
    instrument = db.get_or_404(Instrument, instrument_id)
    calendar_admin.ensure_may_manage_maintenance(current_principal(), instrument.platform_id)
    return instrument


# --- bookings: approval, day sheet, check-in and -out -------------------------------------------

@bp.route("/platform/bookings/approvals")
@requires(*ADMIN)
def booking_approvals():
    platform = my_platform()
    rows = bookings.pending_approvals(db.session, {platform.id})
    return render_template("marketplace/platform_approvals.html", platform=platform, rows=rows,
                           reject_form=RejectForm(), **LABELS)


def _act_on_booking(booking_id: int, action, done: str, back: str = "marketplace.booking_approvals",
                    step: FlaskForm | None = None):
    """Make the change; a refusal is flashed, or, with `step` (the action's form), one the operator can
    answer on the form (a reason, a confirmation) shows the form again with the message by its field."""
    user = current_principal()
    try:
        with bookings.booking_change(actor=current_actor(), now=utcnow()) as session:
            booking = bookings.get_booking(session, booking_id, user)
            action(session, booking, actor=current_actor(), user=user, now=utcnow())
    except (RuleBroken, Conflict) as error:
        if step is not None and show_rule_error(step, error):
            return _step_page(booking_id, step, error)
        flash(error.message, "danger")
    else:
        flash(done, "success")
    return _back(url_for(back))


def _step_page(booking_id: int, form: FlaskForm, error: KequipError):
    """The booking with the form of the step it waits for: the confirmation of an early or late
    check-in (200), or a reason to give again (422)."""
    booking = bookings.get_booking(db.session, booking_id, current_principal())
    form.back.data = _came_from()
    confirming = error.code == "check_in_unconfirmed"
    if confirming:
        form.confirm.errors, form.confirm.data = [], True
    return render_template("marketplace/platform_booking_step.html", booking=booking, form=form, message=error.message,
                           confirming=confirming, **LABELS), 200 if confirming else 422


@bp.post(f"{BOOKING}/approve")
@requires(*ADMIN)
def approve_booking(booking_id: int):
    return _act_on_booking(booking_id, bookings.approve_booking, _("Approved; the booker has been told."))


@bp.post(f"{BOOKING}/reject")
@requires(*ADMIN)
def reject_booking(booking_id: int):
    form = RejectForm()
    if not form.validate_on_submit():
        flash(_("Give the booker a reason."), "danger")
        return _back(url_for("marketplace.booking_approvals"))
    return _act_on_booking(booking_id,
                           lambda *args, **kw: bookings.reject_booking(*args, **kw, reason=form.reason.data),
                           _("Rejected; the booker has been told why."))


@bp.post(f"{BOOKING}/check-in")
@requires(*STAFF)
def check_in_booking(booking_id: int):
    form = CheckInForm()
    return _act_on_booking(booking_id, lambda *args, **kw: bookings.check_in(*args, **kw, confirm=form.confirm.data),
                           _("Checked in."), "marketplace.day_sheet", step=form)


@bp.post(f"{BOOKING}/check-out")
@requires(*STAFF)
def check_out_booking(booking_id: int):
    return _act_on_booking(booking_id, bookings.check_out, _("Checked out."), "marketplace.day_sheet")


@bp.post(f"{BOOKING}/no-show")
@requires(*STAFF)
def report_no_show(booking_id: int):
    form = NoShowForm()
    return _act_on_booking(booking_id,
                           lambda *args, **kw: bookings.report_no_show(*args, **kw, reason=form.reason.data),
                           _("Marked as a no-show; the no-show fee is charged by the rules."), "marketplace.day_sheet",
                           step=form)


@bp.post(f"{BOOKING}/undo-no-show")
@requires(*STAFF)
def undo_no_show(booking_id: int):
    form = NoShowForm()
    return _act_on_booking(booking_id,
                           lambda *args, **kw: bookings.undo_no_show(*args, **kw, reason=form.reason.data),
                           _("The no-show is undone: the booking is cancelled without a fee and the fee is "
                             "refunded."), "marketplace.day_sheet", step=form)


@bp.route("/platform/day-sheet")
@requires(*STAFF)
def day_sheet():
    platform, day, now, user = _staff_platform(), _day_arg(), utcnow(), current_principal()
    rows = bookings.day_sheet(db.session, platform.id, *_local_range(day, 1))
    return render_template("marketplace/platform_day_sheet.html", platform=platform, day=day, rows=rows,
                           actions=calendar_admin.actions_by_booking(db.session, user, rows, now=now),
                           previous_day=day - timedelta(days=1), next_day=day + timedelta(days=1), **LABELS)


# --- the platform's instruments: schedule, rules, maintenance, qualifications ---------------------

@bp.route("/platform/calendar")
@requires(*STAFF)
def platform_calendar():
    platform = _staff_platform()
    instruments = db.session.scalars(services.list_platform_instruments(db.session, platform.id).where(
        Instrument.state.in_((InstrumentState.PUBLISHED, InstrumentState.MAINTENANCE)))).all()
    return render_template("marketplace/platform_calendar.html", platform=platform, instruments=instruments,
                           own_rules=calendar_admin.instruments_with_own_rules(db.session, [i.id for i in instruments]),
                           may_manage=administers(current_principal(), platform.id))


@bp.route(f"{INSTRUMENT}/schedule")
@requires(*STAFF)
def instrument_schedule(instrument_id: int):
    instrument, user, now = db.get_or_404(Instrument, instrument_id), current_principal(), utcnow()
    if not bookings.is_platform_staff(user, instrument.platform_id):
        raise Forbidden("forbidden", _("Only the staff of the instrument's platform see its schedule."))
    day = _day_arg("week")
    monday = day - timedelta(days=day.weekday())
    start, end = _local_range(monday, 7)
    rows = bookings.list_instrument_bookings(db.session, instrument.id, start, end)
    first_days = {b.id: max(to_local(b.start_at).date(), monday) for b in rows}  # a booking from last week: Monday
    days = [(monday + timedelta(days=n), [b for b in rows if first_days[b.id] == monday + timedelta(days=n)])
            for n in range(7)]
    return render_template("marketplace/platform_schedule.html", instrument=instrument, days=days, monday=monday,
                           windows=calendar_admin.list_maintenance_windows(db.session, instrument.id, now=start,
                                                                           until=end),
                           actions=calendar_admin.actions_by_booking(db.session, user, rows, now=now),
                           previous_week=monday - timedelta(weeks=1), next_week=monday + timedelta(weeks=1),
                           may_manage=administers(user, instrument.platform_id), **LABELS)


def _rules_page(form: BookingRulesForm, instrument: Instrument | None, status: int = 200):
    own = calendar_admin.own_rules(db.session, instrument) if instrument is not None else None
    return render_template("marketplace/rules_edit.html", form=form, instrument=instrument, own=own,
                           rules=effective_rules(db.session, instrument) if instrument else None,
                           QUALIFICATION_RULE_LABELS=QUALIFICATION_RULE_LABELS), status


def _save_rules(instrument: Instrument | None, done_url: str):
    form = BookingRulesForm()
    if not form.is_submitted():
        form.load(effective_rules(db.session, instrument) if instrument else district_rules(db.session))
    if not form.validate_on_submit():
        return _rules_page(form, instrument, 422 if form.is_submitted() else 200)
    try:
        with unit_of_work() as session:
            calendar_admin.save_booking_rules(session, actor=current_actor(), user=current_principal(),
                                              instrument=instrument, values=form.values())
    except RuleBroken as error:
        _show(form, error)
        return _rules_page(form, instrument, 422)
    flash(_("The booking rules are saved."), "success")
    return redirect(done_url)


@bp.route(f"{INSTRUMENT}/booking-rules", methods=["GET", "POST"])
@requires(*ADMIN)
def instrument_booking_rules(instrument_id: int):
    instrument = _managed_instrument(instrument_id)
    return _save_rules(instrument, url_for("marketplace.instrument_booking_rules", instrument_id=instrument.id))


@bp.post(f"{INSTRUMENT}/booking-rules/reset")
@requires(*ADMIN)
def reset_instrument_booking_rules(instrument_id: int):
    instrument = _managed_instrument(instrument_id)
    with unit_of_work() as session:
        calendar_admin.reset_booking_rules(session, actor=current_actor(), user=current_principal(),
                                           instrument=instrument)
    flash(_("The instrument follows the district's default rules again."), "success")
    return redirect(url_for("marketplace.instrument_booking_rules", instrument_id=instrument.id))


@bp.route("/booking-rules", methods=["GET", "POST"])
@requires(Role.BUREAU_ADMIN)
def district_booking_rules():
    return _save_rules(None, url_for("marketplace.district_booking_rules"))


def _maintenance_page(instrument: Instrument, *, add_form: MaintenanceWindowForm | None = None,
                      import_form: MaintenanceImportForm | None = None, status: int = 200):
    now = utcnow()
    windows = calendar_admin.list_maintenance_windows(db.session, instrument.id, now=now)
    return render_template("marketplace/platform_maintenance.html", instrument=instrument, windows=windows,
                           series_sizes=Counter(w.series_uid for w in windows if w.series_uid),
                           may_manage=administers(current_principal(), instrument.platform_id),
                           until=to_local(now).date() + timedelta(
                               days=calendar_admin.maintenance_horizon_days(db.session, instrument)),
                           conflicts=calendar_admin.list_maintenance_conflicts(db.session, instrument.id, now=now),
                           add_form=add_form or MaintenanceWindowForm(formdata=None),
                           import_form=import_form or MaintenanceImportForm(formdata=None),
                           max_mb=calendar_admin.MAX_ICS_BYTES // (1024 * 1024), **LABELS), status


def _add_windows(instrument: Instrument, form: FlaskForm, form_name: str, add, read=dict):
    """Add windows (by hand or from a file); the bookings they meet are then listed on the page. `read`
    returns what `add` takes besides the usual: a file's content, read before the unit of work begins."""
    if not form.validate_on_submit():
        return _maintenance_page(instrument, **{form_name: form}, status=422)
    try:
        read_before = read()
        with unit_of_work() as session:
            result = add(session, actor=current_actor(), user=current_principal(), instrument=instrument, now=utcnow(),
                         **read_before)
    except RuleBroken as error:
        _show(form, error)
        return _maintenance_page(instrument, **{form_name: form}, status=422)
    flash(ngettext("%(num)d maintenance window added.", "%(num)d maintenance windows added.", len(result.windows)),
          "success")
    if result.skipped:
        flash(ngettext("%(num)d occurrence was imported before and is left as it is.",
                       "%(num)d occurrences were imported before and are left as they are.", result.skipped), "info")
    if result.until is not None:
        flash(_("Imported up to %(day)s (the booking horizon).", day=result.until.isoformat()), "info")
    if result.cut:
        flash(_("A recurring event goes on after %(day)s: its later occurrences were not imported. Import the "
                "same file again later to add them.", day=result.until.isoformat()), "warning")
    if result.hit:
        flash(ngettext("%(num)d booking meets the new maintenance; its booker has been told. Handle it below.",
                       "%(num)d bookings meet the new maintenance; their bookers have been told. Handle them below.",
                       len(result.hit)), "warning")
    return redirect(url_for("marketplace.maintenance_windows", instrument_id=instrument.id))


def _remove(row: MaintenanceWindow | Qualification, remove, done: str, endpoint: str):
    instrument_id = row.instrument_id
    with unit_of_work() as session:
        remove(session, row, actor=current_actor(), user=current_principal())
    flash(done, "success")
    return redirect(url_for(endpoint, instrument_id=instrument_id))


@bp.route(f"{INSTRUMENT}/maintenance-windows")
@requires(*STAFF)
def maintenance_windows(instrument_id: int):
    return _maintenance_page(_maintained_instrument(instrument_id))


@bp.post(f"{INSTRUMENT}/maintenance-windows")
@requires(*STAFF)
def add_maintenance_window(instrument_id: int):
    form = MaintenanceWindowForm()
    return _add_windows(_maintained_instrument(instrument_id), form, "add_form", lambda session, **kw: (
        calendar_admin.add_maintenance_window(session, start_at=from_local(form.start_at.data),
                                              end_at=from_local(form.end_at.data), reason=form.reason.data or "",
                                              **kw)))


@bp.post(f"{INSTRUMENT}/maintenance-windows/import")
@requires(*STAFF)
def import_maintenance_windows(instrument_id: int):
    instrument, form = _maintained_instrument(instrument_id), MaintenanceImportForm()

    def read_file() -> dict:
        horizon_days = calendar_admin.maintenance_horizon_days(db.session, instrument)
        data = form.file.data.read(calendar_admin.MAX_ICS_BYTES + 1)
        end_reads()  # the file is parsed with no transaction open
        return {"reading": calendar_admin.read_maintenance_ics(data, now=utcnow(), horizon_days=horizon_days)}

    return _add_windows(instrument, form, "import_form", calendar_admin.import_maintenance_ics, read=read_file)


@bp.post("/maintenance-windows/<id:window_id>/delete")
@requires(*STAFF)
def remove_maintenance_window(window_id: int):
    return _remove(db.get_or_404(MaintenanceWindow, window_id), calendar_admin.remove_maintenance_window,
                   _("The maintenance window is removed."), "marketplace.maintenance_windows")


@bp.post("/maintenance-windows/<id:window_id>/delete-series")
@requires(*STAFF)
def remove_maintenance_series(window_id: int):
    """The recurring series the window came with, from now on."""
    window = db.get_or_404(MaintenanceWindow, window_id)
    instrument_id = window.instrument_id
    try:
        with unit_of_work() as session:
            removed = calendar_admin.remove_maintenance_series(session, window, actor=current_actor(),
                                                               user=current_principal(), now=utcnow())
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(ngettext("%(num)d maintenance window of the series is removed.",
                       "%(num)d maintenance windows of the series are removed.", len(removed)), "success")
    return redirect(url_for("marketplace.maintenance_windows", instrument_id=instrument_id))


def _qualifications_page(instrument: Instrument, form: QualificationForm, status: int = 200):
    return render_template("marketplace/platform_qualifications.html", instrument=instrument, form=form,
                           rows=calendar_admin.list_qualifications(db.session, instrument.id),
                           rule=effective_rules(db.session, instrument).qualification,
                           today=to_local(utcnow()).date(), QUALIFICATION_RULE_LABELS=QUALIFICATION_RULE_LABELS), status


@bp.route(f"{INSTRUMENT}/qualifications", methods=["GET", "POST"])
@requires(*ADMIN)
def qualifications(instrument_id: int):
    instrument = _managed_instrument(instrument_id)
    form = QualificationForm()
    if not form.validate_on_submit():
        return _qualifications_page(instrument, form, 422 if form.is_submitted() else 200)
    try:
        with unit_of_work() as session:
            calendar_admin.grant_qualification(session, actor=current_actor(), user=current_principal(),
                                               instrument=instrument, email=form.email.data,
                                               expires_on=form.expires_on.data, now=utcnow())
    except RuleBroken as error:
        _show(form, error)
        return _qualifications_page(instrument, form, 422)
    flash(_("The qualification is recorded."), "success")
    return redirect(url_for("marketplace.qualifications", instrument_id=instrument.id))


@bp.post("/qualifications/<id:qualification_id>/revoke")
@requires(*ADMIN)
def revoke_qualification(qualification_id: int):
    return _remove(db.get_or_404(Qualification, qualification_id), calendar_admin.revoke_qualification,
                   _("The qualification is revoked."), "marketplace.qualifications")


# --- service terms ------------------------------------------------------------------------------

@bp.route("/platform/service-terms", methods=["GET", "POST"])
@requires(*ADMIN)
def service_terms():
    platform = my_platform()
    current = bookings.current_terms(db.session, platform.id)
    form = ServiceTermsForm(obj=current if request.method == "GET" else None)
    status = 422 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                terms = calendar_admin.publish_service_terms(
                    session, actor=current_actor(), user=current_principal(), platform=platform,
                    texts={name: getattr(form, name).data for name in calendar_admin.TERMS_FIELDS}, now=utcnow())
        except RuleBroken as error:
            _show(form, error)
        else:
            flash(_("Version %(n)s of the service terms is published; new bookings accept it.", n=terms.version),
                  "success")
            return redirect(url_for("marketplace.service_terms", platform_id=platform.id))
    return render_template("marketplace/platform_terms.html", platform=platform, current=current, form=form,
                           versions=calendar_admin.list_service_terms(db.session, platform.id)), status
