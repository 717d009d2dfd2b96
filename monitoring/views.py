"""Usage pages of an instrument for its platform's staff: sessions of use, walk-ins (operators and
admins), the admin's manual entries and corrections, device tokens and the offline time. The rules are
in monitoring/sessions.py and monitoring/telemetry.py."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.auth import AccessRule, current_actor, current_principal, requires
from core.clock import from_local, to_local
from core.db import end_reads, unit_of_work, utcnow
from core.errors import Forbidden, RuleBroken
from core.extensions import db
from core.forms import show_rule_error
from core.models import Role, User
from core.services import administers
from core.templating import NavItem, register_instrument_tab, register_nav
from marketplace.registry.models import Instrument
from monitoring import dashboard, metrics, sessions, telemetry
from monitoring.forms import DeviceTokenForm, MonitoringSettingsForm, UsageCorrectionForm, UsageEntryForm, WalkInForm
from monitoring.models import USAGE_SOURCE_LABELS

bp = Blueprint("monitoring", __name__)
STAFF = (Role.PLATFORM_ADMIN, Role.PLATFORM_OPERATOR)
USAGE = "/instruments/<id:instrument_id>/usage"
SHOWN = timedelta(days=30)
TIMELINE_DAYS = 30


def _staff_instrument(instrument_id: int) -> Instrument:
    instrument = db.get_or_404(Instrument, instrument_id)
    if instrument.platform_id not in current_principal().organisation_ids(*STAFF):
        raise Forbidden("forbidden", _("You are not on the staff of this instrument's platform."))
    return instrument


def _admin_instrument(instrument_id: int) -> Instrument:
    instrument = db.get_or_404(Instrument, instrument_id)
    if not administers(current_principal(), instrument.platform_id):
        raise Forbidden("forbidden", _("Only the admins of the instrument's platform manage its monitoring."))
    return instrument


def _person(form) -> User | None:
    """The user a form names by e-mail, if any; an unknown address is the form's error."""
    email = (form.email.data or "").strip().lower()
    if not email:
        return None
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        raise RuleBroken("unknown_user", _("No account has this e-mail address."), field="email")
    return user


def _timeline(instrument_id: int) -> list:
    """The instrument's figures day by day over the last TIMELINE_DAYS."""
    today = to_local(utcnow()).date()
    return metrics.figures(db.session, metrics.scope_filter("instrument", instrument_id), "day",
                           today - timedelta(days=TIMELINE_DAYS - 1), today)


def _page(instrument: Instrument, status: int = 200, new_secret: str | None = None, **forms):
    now = utcnow()
    may_manage = administers(current_principal(), instrument.platform_id)
    forms = {"entry_form": UsageEntryForm(formdata=None), "walk_in_form": WalkInForm(formdata=None),
             "token_form": DeviceTokenForm(formdata=None),
             "settings_form": MonitoringSettingsForm(formdata=None, obj=telemetry.settings_of(db.session, instrument.id))
             if may_manage else None} | forms
    return render_template(
        "monitoring/instrument_usage.html", instrument=instrument, may_manage=may_manage, now=now,
        usages=sessions.sessions_of(db.session, instrument.id, start=now - SHOWN, end=now + timedelta(days=1)),
        tokens=telemetry.tokens_of(db.session, instrument.id) if may_manage else [], new_secret=new_secret,
        timeline=[(f"{row.start:%m-%d}", row) for row in _timeline(instrument.id)],
        columns=dashboard.figure_columns(),
        SOURCE_LABELS=USAGE_SOURCE_LABELS, **forms), status


def _correction_page(instrument: Instrument, usage, form: UsageCorrectionForm, status: int):
    return render_template("monitoring/usage_correct.html", instrument=instrument, usage=usage, form=form,
                           SOURCE_LABELS=USAGE_SOURCE_LABELS), status


def to_local_naive(instant):
    return to_local(instant).replace(tzinfo=None)


def _refused(instrument: Instrument, form, name: str, error: RuleBroken):
    if not show_rule_error(form, error):
        flash(error.message, "danger")
    return _page(instrument, 422, **{name: form})


@bp.route(USAGE)
@requires(*STAFF)
def instrument_usage(instrument_id: int):
    return _page(_staff_instrument(instrument_id))


@bp.route(f"{USAGE}/timeline.<any(svg, csv):file_format>")
@requires(*STAFF)
def usage_timeline(instrument_id: int, file_format: str):
    instrument = _staff_instrument(instrument_id)
    series = _timeline(instrument.id)
    end_reads()  # drawn with no transaction open
    if file_format == "svg":
        return Response(dashboard.timeline_chart(series, title=_("Booked and effective hours, day by day")),
                        mimetype="image/svg+xml")
    body = dashboard.figures_csv(_("Day"), [(row.start.isoformat(), row) for row in series])
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=kequip-usage-{instrument.id}.csv"})


@bp.route(f"{USAGE}/walk-ins", methods=["POST"])
@requires(*STAFF)
def start_walk_in(instrument_id: int):
    instrument = _staff_instrument(instrument_id)
    form = WalkInForm()
    if not form.validate_on_submit():
        return _page(instrument, 422, walk_in_form=form)
    try:
        with unit_of_work() as session:
            sessions.start_walk_in(session, instrument, user=_person(form), reason=form.reason.data,
                                   actor=current_actor(), now=utcnow())
    except RuleBroken as error:
        return _refused(instrument, form, "walk_in_form", error)
    flash(_("Use without a booking started; it is flagged for the platform."), "warning")
    return redirect(url_for(".instrument_usage", instrument_id=instrument.id))


@bp.route(f"{USAGE}/<id:usage_id>/stop", methods=["POST"])
@requires(*STAFF)
def stop_use(instrument_id: int, usage_id: int):
    instrument = _staff_instrument(instrument_id)
    try:
        with unit_of_work() as session:
            sessions.stop(session, usage_id, instrument_id=instrument.id, actor=current_actor(), now=utcnow())
    except RuleBroken as error:
        flash(error.message, "danger")
    return redirect(url_for(".instrument_usage", instrument_id=instrument.id))


@bp.route(f"{USAGE}/entries", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def enter_use(instrument_id: int):
    instrument = _admin_instrument(instrument_id)
    form = UsageEntryForm()
    if not form.validate_on_submit():
        return _page(instrument, 422, entry_form=form)
    try:
        with unit_of_work() as session:
            sessions.enter(session, instrument, start_at=from_local(form.start_at.data),
                           end_at=from_local(form.end_at.data), user=_person(form), reason=form.reason.data,
                           actor=current_actor(), now=utcnow())
    except RuleBroken as error:
        return _refused(instrument, form, "entry_form", error)
    flash(_("The use is entered."), "success")
    return redirect(url_for(".instrument_usage", instrument_id=instrument.id))


@bp.route(f"{USAGE}/<id:usage_id>/correct", methods=["GET", "POST"])
@requires(Role.PLATFORM_ADMIN)
def correct_use(instrument_id: int, usage_id: int):
    instrument = _admin_instrument(instrument_id)
    usage = sessions.find(db.session, usage_id, instrument_id=instrument.id)
    form = UsageCorrectionForm()
    if not form.is_submitted():
        form.start_at.data, form.end_at.data = to_local_naive(usage.start_at), to_local_naive(usage.end_at or utcnow())
    if not form.validate_on_submit():
        return _correction_page(instrument, usage, form, 422 if form.is_submitted() else 200)
    try:
        with unit_of_work() as session:
            sessions.correct(session, usage_id, instrument_id=instrument.id, start_at=from_local(form.start_at.data),
                             end_at=from_local(form.end_at.data), reason=form.reason.data, actor=current_actor(),
                             now=utcnow())
    except RuleBroken as error:
        if not show_rule_error(form, error):
            flash(error.message, "danger")
        return _correction_page(instrument, usage, form, 422)
    flash(_("The use is corrected."), "success")
    return redirect(url_for(".instrument_usage", instrument_id=instrument.id))


@bp.route(f"{USAGE}/tokens", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def issue_device_token(instrument_id: int):
    instrument = _admin_instrument(instrument_id)
    form = DeviceTokenForm()
    if not form.validate_on_submit():
        return _page(instrument, 422, token_form=form)
    with unit_of_work() as session:
        _token, secret = telemetry.issue_token(session, instrument, label=form.label.data, actor=current_actor())
    # shown on this answer only: it is kept as a hash
    return _page(db.session.get(Instrument, instrument_id), new_secret=secret)


@bp.route(f"{USAGE}/tokens/<id:token_id>/revoke", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def revoke_device_token(instrument_id: int, token_id: int):
    instrument = _admin_instrument(instrument_id)
    with unit_of_work() as session:
        telemetry.revoke_token(session, token_id, instrument_id=instrument.id, actor=current_actor(), now=utcnow())
    flash(_("The device token is revoked: the device can no longer report."), "success")
    return redirect(url_for(".instrument_usage", instrument_id=instrument.id))


@bp.route(f"{USAGE}/settings", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def save_monitoring_settings(instrument_id: int):
    instrument = _admin_instrument(instrument_id)
    form = MonitoringSettingsForm()
    if not form.validate_on_submit():
        return _page(instrument, 422, settings_form=form)
    with unit_of_work() as session:
        telemetry.save_settings(session, instrument.id, offline_after_minutes=form.offline_after_minutes.data,
                                actor=current_actor())
    flash(_("Saved."), "success")
    return redirect(url_for(".instrument_usage", instrument_id=instrument.id))


NAV = [NavItem("monitoring.dashboard_page", _l("Utilization"),
               AccessRule(frozenset({Role.BUREAU_ADMIN, Role.AUDITOR, Role.PLATFORM_ADMIN})))]


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    register_instrument_tab(app, "monitoring.instrument_usage", _l("Usage"))
    register_nav(app, NAV)
