"""The alerts pages: the list (the bureau and the auditor see all, a platform admin their platforms'),
acknowledging and resolving with a note, each person's mail preference, and the bureau's rules. The rules
are in monitoring/alerts.py and monitoring/alert_rules.py."""
from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.auth import current_actor, current_principal, requires
from core.db import unit_of_work, utcnow
from core.errors import RuleBroken
from core.extensions import db
from core.inputs import page_number
from core.models import Role
from core.templating import HeaderLink, register_header_link
from marketplace.registry.models import InstrumentCategory
from monitoring import alerts
from monitoring.alert_rules import THRESHOLDS, load_rulebook
from monitoring.models import (
    ALERT_KIND_LABELS,
    ALERT_MAIL_MODE_LABELS,
    ALERT_STATE_LABELS,
    Alert,
    AlertKind,
    AlertMailMode,
    AlertState,
)

bp = Blueprint("alerts", __name__)
READERS = (Role.BUREAU_ADMIN, Role.AUDITOR, Role.PLATFORM_ADMIN)
HANDLERS = (Role.BUREAU_ADMIN, Role.PLATFORM_ADMIN)
PER_PAGE = 50


def subject_url(alert: Alert) -> str | None:
    """Where the alert's subject is shown."""
    match alert.subject_type:
        case "instruments":
            return url_for("marketplace.instrument", instrument_id=alert.subject_id)
        case "bookings":
            return url_for("marketplace.booking_detail", booking_id=alert.subject_id)
        case "usage_sessions":
            return url_for("monitoring.instrument_usage", instrument_id=alert.figures["instrument_id"])
        case "users":
            return url_for("core.user_detail", user_id=alert.subject_id)
        case "programmes":
            return url_for("vouchers.programme", programme_id=alert.subject_id)
        case "enterprises" | "claim_lines":
            return url_for("voucher_claims.flags")
        case "job_runs":
            return url_for("core.job_detail", job_id=alert.subject_key)
    return None


def _state_arg() -> AlertState | None:
    value = request.args.get("state") or None
    if value is None:
        return None
    try:
        return AlertState(value)
    except ValueError:
        abort(422)


def _list_page(status: int = 200, errors: dict[int, str] | None = None):
    user = current_principal()
    state = _state_arg()
    page = db.paginate(alerts.alerts_for(user, state=state), page=page_number(), per_page=PER_PAGE, error_out=False)
    found = page.items
    return render_template(
        "monitoring/alerts.html", alerts=found, page=page, state=state, errors=errors or {},
        may_handle={alert.id: alerts.can_handle(user, alert) for alert in found}, subject_url=subject_url,
        mode=alerts.preference_of(db.session, user), may_set_rules=user.has_role(Role.BUREAU_ADMIN),
        KIND_LABELS=ALERT_KIND_LABELS, STATE_LABELS=ALERT_STATE_LABELS, MODE_LABELS=ALERT_MAIL_MODE_LABELS,
        STATES=list(AlertState), MODES=list(AlertMailMode)), status


@bp.route("/alerts")
@requires(*READERS)
def alert_list():
    return _list_page()


@bp.route("/alerts/<id:alert_id>/acknowledge", methods=["POST"])
@requires(*HANDLERS)
def acknowledge_alert(alert_id: int):
    with unit_of_work() as session:
        alerts.acknowledge(session, alert_id, user=current_principal(), actor=current_actor(), now=utcnow())
    flash(_("The alert is acknowledged."), "success")
    return redirect(url_for(".alert_list"))


@bp.route("/alerts/<id:alert_id>/resolve", methods=["POST"])
@requires(*HANDLERS)
def resolve_alert(alert_id: int):
    try:
        with unit_of_work() as session:
            alerts.resolve(session, alert_id, user=current_principal(), note=request.form.get("note", ""),
                           actor=current_actor(), now=utcnow())
    except RuleBroken as error:
        return _list_page(422, errors={alert_id: error.message})
    flash(_("The alert is resolved."), "success")
    return redirect(url_for(".alert_list"))


@bp.route("/alerts/mail-preference", methods=["POST"])
@requires(*READERS)
def save_mail_preference():
    try:
        mode = AlertMailMode(request.form.get("mode", ""))
    except ValueError:
        flash(_("Choose how alert mail reaches you."), "danger")
        return _list_page(422)
    with unit_of_work() as session:
        alerts.save_preference(session, current_principal(), mode=mode, actor=current_actor(), now=utcnow())
    flash(_("Saved."), "success")
    return redirect(url_for(".alert_list"))


# --- the bureau's rules -----------------------------------------------------------------------------

def _rules_page(status: int = 200, failed: tuple[str, int | None, str, str] | None = None):
    book = load_rulebook(db.session)
    categories = list(db.session.scalars(select(InstrumentCategory).order_by(InstrumentCategory.code)))
    overrides = sorted((rule for (kind, category), rule in book.rules.items() if category is not None),
                       key=lambda rule: (list(AlertKind).index(rule.kind), rule.category_id))
    new_override = None
    if request.method == "GET" and request.args.get("kind") in {kind.value for kind in AlertKind}:
        category = db.session.get(InstrumentCategory, request.args.get("category_id", 0, type=int))
        new_override = (AlertKind(request.args["kind"]), category) if category is not None else None
    return render_template(
        "monitoring/alert_rules.html", book=book, new_override=new_override,
        may_edit=current_principal().has_role(Role.BUREAU_ADMIN), THRESHOLDS=THRESHOLDS, KIND_LABELS=ALERT_KIND_LABELS,
        kinds=list(AlertKind), categories=categories, by_id={c.id: c for c in categories}, overrides=overrides,
        failed=failed, form=request.form if failed else {}), status


@bp.route("/alerts/rules")
@requires(Role.BUREAU_ADMIN, Role.AUDITOR)
def alert_rules():
    return _rules_page()


@bp.route("/alerts/rules", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def save_alert_rule():
    try:
        kind = AlertKind(request.form.get("kind", ""))
    except ValueError:
        abort(422)
    category_id = request.form.get("category_id", type=int) or None
    if category_id is not None and db.session.get(InstrumentCategory, category_id) is None:
        abort(422)
    try:
        with unit_of_work() as session:
            alerts.save_rule(session, kind=kind, category_id=category_id,
                             is_enabled=request.form.get("is_enabled") == "on",
                             thresholds={t.name: request.form.get(t.name) for t in THRESHOLDS[kind]},
                             actor=current_actor())
    except RuleBroken as error:
        return _rules_page(422, failed=(kind.value, category_id, error.field or "", error.message))
    flash(_("The rule is saved; it applies from the next evaluation."), "success")
    return redirect(url_for(".alert_rules"))


@bp.route("/alerts/rules/<id:rule_id>/remove", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def remove_alert_rule(rule_id: int):
    with unit_of_work() as session:
        alerts.remove_override(session, rule_id, actor=current_actor())
    flash(_("The override is removed: the district's rule applies."), "success")
    return redirect(url_for(".alert_rules"))


def _header_count(session, user) -> int | None:
    return alerts.count_open(session, user) if alerts.can_read(user) else None


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    register_header_link(app, HeaderLink("alerts.alert_list", _l("Alerts"), _header_count))
    app.add_template_global(alerts.describe, "describe_alert")
    app.add_template_global(alerts.kind_label, "alert_kind_label")
    app.add_template_global(alerts.subject_label, "alert_subject")
    app.add_template_global(alerts.mail_time, "alert_time")
