"""Voucher pages: the bureau's programmes with their figures and charts, the
application queue with the controller group beside each application, vouchers and their ledgers, voiding
and suspensions; the enterprise's open programmes, applications and vouchers. The auditor and the
finance officer read what the bureau reads. Rules are in vouchers/services.py; these views load, call
and render."""
from __future__ import annotations

from functools import partial
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from werkzeug.datastructures import FileStorage

from core.auth import AccessRule, current_actor, current_principal, requires
from core.clock import to_local
from core.db import end_reads, unit_of_work, utcnow
from core.errors import Conflict, KequipError, NotFound, RuleBroken
from core.extensions import current_language, db
from core.forms import show_error
from core.inputs import chosen_ids, page_number
from core.models import Platform, Role
from core.money import fen_to_yuan, yuan_to_fen
from core.states import can_move
from core.templating import NavItem, TodoCounter, register_nav, register_todo
from vouchers import attachments, listing, reports, services
from vouchers.forms import (
    ApplicationFilterForm,
    ApplicationForm,
    ApproveForm,
    AttachmentForm,
    ProgrammeForm,
    RejectForm,
    SuspendForm,
    VoidForm,
    VoucherFilterForm,
    bp_to_percent,
)
from vouchers.models import (
    APPLICATION_STATE_LABELS,
    ENTRY_KIND_LABELS,
    REDEMPTION_MODE_LABELS,
    VOUCHER_STATE_LABELS,
    VOUCHER_TRANSITIONS,
    Application,
    ApplicationState,
    Programme,
    VoucherState,
)

bp = Blueprint("vouchers", __name__)

PER_PAGE = 50
READERS = listing.READERS
BUREAU = Role.BUREAU_ADMIN

NAV = [
    NavItem("vouchers.programmes", _l("Voucher programmes"), AccessRule(frozenset(READERS))),
    NavItem("vouchers.applications", _l("Voucher applications"), AccessRule(frozenset({BUREAU, Role.AUDITOR}))),
    NavItem("vouchers.vouchers", _l("Vouchers"), AccessRule(frozenset(READERS))),
    NavItem("vouchers.open_programmes", _l("Apply for a voucher"), AccessRule(frozenset({Role.ENTERPRISE_MEMBER}))),
    NavItem("vouchers.my_vouchers", _l("My vouchers"), AccessRule(frozenset({Role.ENTERPRISE_MEMBER}))),
]
TODO = [TodoCounter(_l("Voucher applications waiting for a decision"), AccessRule(frozenset({BUREAU})),
                    partial(listing.count_applications, state=ApplicationState.SUBMITTED), "vouchers.applications",
                    {"state": ApplicationState.SUBMITTED.value})]


def _back(default: str) -> Response:
    """Back where the button was (the queue or the detail page), never to another site."""
    referrer = request.referrer or ""
    return redirect(referrer if referrer.startswith(request.host_url) else default)


def _upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def _uploads(files: list[FileStorage]) -> list[attachments.Upload]:
    """The files chosen, read up to one byte past the limit; a browser sends an empty part for none."""
    return [attachments.Upload(f.filename or "", f.read(attachments.MAX_ATTACHMENT_BYTES + 1))
            for f in files if f and f.filename]


# --- programmes (the bureau; the finance officer and the auditor read) --------------------------------

@bp.route("/voucher-programmes")
@requires(*READERS)
def programmes():
    return render_template("vouchers/programmes.html", programmes=listing.list_programmes(db.session),
                           may_edit=current_principal().has_role(BUREAU))


def _programme_form(programme: Programme | None) -> ProgrammeForm:
    form = ProgrammeForm()
    form.fill_choices(listing.category_choices(db.session, current_language()), listing.platform_choices(db.session))
    if programme is not None and request.method == "GET":
        form.load(programme)
    elif programme is None and request.method == "GET":
        today = to_local(utcnow()).date()
        form.year.data, form.coverage_bp.data, form.sme_coverage_bp.data = today.year, 50, 70
        form.validity_days.data = 365
    return form


@bp.route("/voucher-programmes/new", methods=["GET", "POST"])
@requires(BUREAU)
def new_programme():
    return _save_programme(None)


@bp.route("/voucher-programmes/<id:programme_id>/edit", methods=["GET", "POST"])
@requires(BUREAU)
def edit_programme(programme_id: int):
    return _save_programme(listing.get_programme(db.session, programme_id))


def _save_programme(programme: Programme | None):
    form = _programme_form(programme)
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                if programme is None:
                    saved = services.create_programme(session, actor=current_actor(), user=current_principal(),
                                                      values=form.values())
                else:
                    saved = services.update_programme(session, programme, actor=current_actor(),
                                                      user=current_principal(), values=form.values())
        except RuleBroken as error:
            show_error(form, error)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("vouchers.programme", programme_id=saved.id))
    return render_template("vouchers/programme_form.html", form=form, programme=programme), \
        422 if form.is_submitted() else 200


@bp.route("/voucher-programmes/<id:programme_id>")
@requires(*READERS)
def programme(programme_id: int):
    found = listing.get_programme(db.session, programme_id)
    user = current_principal()
    suspend_form = SuspendForm()
    suspended = listing.suspensions(db.session, found.id)
    suspended_ids = {s.platform_id for s in suspended}
    suspend_form.platform_id.choices = [(pid, name) for pid, name in listing.platform_choices(db.session)
                                        if pid not in suspended_ids]
    return render_template("vouchers/programme.html", programme=found, suspensions=suspended,
                           figures=reports.programme_figures(db.session, found, language=current_language()),
                           suspend_form=suspend_form, may_edit=user.has_role(BUREAU),
                           categories=dict(listing.category_choices(db.session, current_language())),
                           platforms=dict(listing.platform_choices(db.session)))


@bp.route("/voucher-programmes/<id:programme_id>/chart-<any(pool, platforms):kind>.svg")
@requires(*READERS)
def programme_chart(programme_id: int, kind: str):
    found = listing.get_programme(db.session, programme_id)
    figures = reports.programme_figures(db.session, found, language=current_language())
    pool_title = _("The pool of %(name)s", name=found.name)
    end_reads()  # the chart is drawn with no transaction open
    svg = reports.pool_chart(figures, title=pool_title) if kind == "pool" else \
        reports.platform_chart(figures, title=_("Voucher use by platform"))
    response = Response(svg, mimetype="image/svg+xml")
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response


@bp.route("/voucher-programmes/<id:programme_id>/suspensions", methods=["POST"])
@requires(BUREAU)
def suspend_platform(programme_id: int):
    found = listing.get_programme(db.session, programme_id)
    form = SuspendForm()
    form.platform_id.choices = listing.platform_choices(db.session)
    if not form.validate_on_submit():
        flash(_("Choose the platform and give the reason."), "danger")
    else:
        try:
            with unit_of_work() as session:
                platform = session.get(Platform, form.platform_id.data)
                services.suspend_platform(session, found, platform, actor=current_actor(), user=current_principal(),
                                          reason=form.reason.data)
        except RuleBroken as error:
            flash(error.message, "danger")
        else:
            flash(_("The platform is suspended from the programme: its instruments take no vouchers of it."),
                  "success")
    return redirect(url_for("vouchers.programme", programme_id=programme_id))


# --- applications: the enterprise applies ---------------------------------------------------------

@bp.route("/voucher-programmes/open")
@requires(Role.ENTERPRISE_MEMBER)
def open_programmes():
    user = current_principal()
    return render_template("vouchers/open_programmes.html",
                           programmes=services.open_programmes(db.session, on=to_local(utcnow()).date()),
                           enterprises=listing.member_enterprises(db.session, user))


@bp.route("/voucher-programmes/<id:programme_id>/apply", methods=["GET", "POST"])
@requires(Role.ENTERPRISE_MEMBER)
def apply(programme_id: int):
    found = listing.get_programme(db.session, programme_id)
    user = current_principal()
    form = ApplicationForm()
    form.enterprise_id.choices = [(e.id, e.name) for e in listing.member_enterprises(db.session, user)]
    if request.method == "GET":
        form.enterprise_id.data = listing.default_enterprise_id(db.session, user)
    if form.validate_on_submit():
        try:
            values = form.values()
            values["enterprise_id"] = values["enterprise_id"] or listing.default_enterprise_id(db.session, user)
            programme_id = found.id
            end_reads()  # the files are checked and written with no transaction open
            checked = [attachments.check_upload(upload) for upload in _uploads(form.attachments.data or [])]
            with attachments.saved(checked, _upload_dir()) as files, unit_of_work() as session:
                application = services.apply_for_voucher(session, actor=current_actor(), user=user,
                                                         programme_id=programme_id, now=utcnow(), **values)
                attachments.store(session, files, owner_type="application", owner_id=application.id,
                                  actor=current_actor(), user=user)
        except KequipError as error:
            show_error(form, error)
        else:
            flash(_("Your application is submitted; the bureau reviews it."), "success")
            return redirect(url_for("vouchers.application", application_id=application.id))
    is_open = found.is_open_for_applications(to_local(utcnow()).date())
    return render_template("vouchers/apply.html", form=form, programme=found, is_open=is_open), \
        422 if form.is_submitted() else 200


@bp.route("/my/voucher-applications")
@requires(Role.ENTERPRISE_MEMBER)
def my_applications():
    page = db.paginate(listing.applications_query(current_principal(), own_only=True), page=page_number(),
                       per_page=PER_PAGE, error_out=False)
    return render_template("vouchers/my_applications.html", page=page)


@bp.route("/voucher-applications/<id:application_id>/withdraw", methods=["POST"])
@requires(Role.ENTERPRISE_MEMBER)
def withdraw_application(application_id: int):
    user = current_principal()
    found = listing.get_application(db.session, application_id, user)
    try:
        with unit_of_work() as session:
            services.withdraw_application(session, found, actor=current_actor(), user=user)
    except KequipError as error:
        flash(error.message, "danger")
    else:
        flash(_("The application is withdrawn."), "success")
    return redirect(url_for("vouchers.application", application_id=found.id))


@bp.route("/voucher-applications/<id:application_id>/attachments", methods=["POST"])
@requires(Role.ENTERPRISE_MEMBER)
def add_attachments(application_id: int):
    user = current_principal()
    application = listing.get_application(db.session, application_id, user)
    form = AttachmentForm()
    uploads = _uploads(form.attachments.data or []) if form.validate_on_submit() else []
    if not uploads:
        flash(_("Choose a file first."), "danger")
        return redirect(url_for("vouchers.application", application_id=application.id))
    try:
        attachments.ensure_may_attach_to_application(user, application)
        end_reads()  # the files are checked and written with no transaction open
        checked = [attachments.check_upload(upload) for upload in uploads]
        with attachments.saved(checked, _upload_dir()) as files, unit_of_work() as session:
            attachments.store(session, files, owner_type="application", owner_id=application.id,
                              actor=current_actor(), user=user)
    except KequipError as error:
        flash(error.message, "danger")
    else:
        flash(_("The files are added."), "success")
    return redirect(url_for("vouchers.application", application_id=application.id))


@bp.route("/voucher-attachments/<id:attachment_id>")
@requires()
def attachment(attachment_id: int):
    found = attachments.get_downloadable(db.session, attachment_id, current_principal())
    path = attachments.path_of(_upload_dir(), found.stored_name)
    if not path.is_file():
        raise NotFound("not_found", _("There is no such file."))
    response = current_app.response_class(path.read_bytes(), mimetype=found.content_type)
    response.headers.set("Content-Disposition", "attachment", filename=found.original_name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


# --- applications: the bureau decides -----------------------------------------------------------------

def _decision_forms(application: Application) -> tuple[ApproveForm, RejectForm]:
    approve = ApproveForm(formdata=None, prefix=f"a{application.id}")
    approve.amount_fen.data = fen_to_yuan(application.requested_fen)
    return approve, RejectForm(formdata=None, prefix=f"r{application.id}")


@bp.route("/voucher-applications")
@requires(*READERS)
def applications():
    user = current_principal()
    form = ApplicationFilterForm(request.args)
    form.programme_id.choices = [(0, _("Every programme"))] + [
        (p.id, f"{p.year} {p.name}") for p in listing.list_programmes(db.session)]
    form.validate()
    programme_id = None if form.programme_id.errors else form.programme_id.data or None
    state = None if form.state.errors or not form.state.data else ApplicationState(form.state.data)
    page = db.paginate(listing.applications_query(user, programme_id=programme_id, state=state), page=page_number(),
                       per_page=PER_PAGE, error_out=False)
    groups = {a.id: listing.controller_group(db.session, a) for a in page.items}
    forms = {a.id: _decision_forms(a) for a in page.items if a.state == ApplicationState.SUBMITTED}
    return render_template("vouchers/applications.html", form=form, page=page, groups=groups, forms=forms,
                           may_decide=user.has_role(BUREAU))


@bp.route("/voucher-applications/<id:application_id>")
@requires(Role.ENTERPRISE_MEMBER, *READERS)
def application(application_id: int):
    user = current_principal()
    found = listing.get_application(db.session, application_id, user)
    may_decide = user.has_role(BUREAU) and found.state == ApplicationState.SUBMITTED
    is_applicant = found.enterprise_id in listing.member_enterprise_ids(user)
    waits = found.state == ApplicationState.SUBMITTED
    return render_template(
        "vouchers/application.html", application=found, voucher=listing.voucher_of(db.session, found),
        group=listing.controller_group(db.session, found) if listing.reads_all(user) else None,
        forms=_decision_forms(found) if may_decide else None, may_decide=may_decide,
        may_attach=is_applicant and waits, attachment_form=AttachmentForm(),
        may_withdraw=is_applicant and waits)


def _submitted_application(application_id: int) -> Application:
    return listing.get_application(db.session, application_id, current_principal())


@bp.route("/voucher-applications/<id:application_id>/approve", methods=["POST"])
@requires(BUREAU)
def approve_application(application_id: int):
    found = _submitted_application(application_id)
    form = ApproveForm(prefix=f"a{found.id}")
    if not form.validate_on_submit():
        flash(" ".join(str(e) for e in form.amount_fen.errors) or _("Give the amount to issue."), "danger")
        return _back(url_for("vouchers.application", application_id=found.id))
    try:
        with unit_of_work() as session:
            voucher = services.approve_application(session, found, actor=current_actor(), user=current_principal(),
                                                   amount_fen=yuan_to_fen(form.amount_fen.data), now=utcnow())
    except (RuleBroken, Conflict) as error:
        flash(error.message, "danger")
    else:
        flash(_("Approved: the voucher %(serial)s is issued.", serial=voucher.serial), "success")
    return _back(url_for("vouchers.application", application_id=found.id))


@bp.route("/voucher-applications/approve-chosen", methods=["POST"])
@requires(BUREAU)
def approve_chosen_applications():
    """The chosen applications of the list, each at the amount it asks: all of them or none."""
    ids = chosen_ids("application_id")
    if not ids:
        flash(_("Choose the applications to approve."), "danger")
    else:
        try:
            with unit_of_work() as session:
                issued = services.approve_applications(session, ids, actor=current_actor(), user=current_principal(),
                                                       now=utcnow())
        except KequipError as error:
            flash(error.message, "danger")
        else:
            flash(ngettext("%(num)d application approved; its voucher is issued.",
                           "%(num)d applications approved; their vouchers are issued.", len(issued)), "success")
    return _back(url_for("vouchers.applications"))


@bp.route("/voucher-applications/<id:application_id>/reject", methods=["POST"])
@requires(BUREAU)
def reject_application(application_id: int):
    found = _submitted_application(application_id)
    form = RejectForm(prefix=f"r{found.id}")
    if not form.validate_on_submit():
        flash(_("Give the applicant a reason."), "danger")
        return _back(url_for("vouchers.application", application_id=found.id))
    try:
        with unit_of_work() as session:
            services.reject_application(session, found, actor=current_actor(), user=current_principal(),
                                        reason=form.reason.data, now=utcnow())
    except (RuleBroken, Conflict) as error:
        flash(error.message, "danger")
    else:
        flash(_("The application is rejected."), "success")
    return _back(url_for("vouchers.application", application_id=found.id))


# --- vouchers -----------------------------------------------------------------------------------------

@bp.route("/vouchers")
@requires(*READERS)
def vouchers():
    form = VoucherFilterForm(request.args)
    form.programme_id.choices = [(0, _("Every programme"))] + [
        (p.id, f"{p.year} {p.name}") for p in listing.list_programmes(db.session)]
    form.enterprise_id.choices = [(0, _("Every enterprise"))] + listing.enterprises_with_vouchers(db.session)
    form.validate()
    chosen = {name: None if form[name].errors else form[name].data or None
              for name in ("programme_id", "enterprise_id", "state")}
    state = VoucherState(chosen["state"]) if chosen["state"] else None
    page = db.paginate(listing.vouchers_query(current_principal(), programme_id=chosen["programme_id"],
                                              enterprise_id=chosen["enterprise_id"], state=state),
                       page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("vouchers/vouchers.html", form=form, page=page)


@bp.route("/my/vouchers")
@requires(Role.ENTERPRISE_MEMBER)
def my_vouchers():
    page = db.paginate(listing.vouchers_query(current_principal(), own_only=True), page=page_number(), per_page=PER_PAGE,
                       error_out=False)
    return render_template("vouchers/my_vouchers.html", page=page, now=utcnow())


@bp.route("/vouchers/<id:voucher_id>")
@requires(Role.ENTERPRISE_MEMBER, *READERS)
def voucher(voucher_id: int):
    user = current_principal()
    found = services.get_voucher(db.session, voucher_id, user)
    may_void = user.has_role(BUREAU) and can_move(found, VoucherState.VOID, VOUCHER_TRANSITIONS)
    return render_template("vouchers/voucher.html", voucher=found, entries=listing.ledger(db.session, found),
                           void_form=VoidForm() if may_void else None, now=utcnow())


@bp.route("/vouchers/<id:voucher_id>/void", methods=["POST"])
@requires(BUREAU)
def void_voucher(voucher_id: int):
    found = services.get_voucher(db.session, voucher_id, current_principal())
    form = VoidForm()
    if not form.validate_on_submit():
        flash(_("Give the reason for voiding."), "danger")
    else:
        try:
            with unit_of_work() as session:
                services.void_voucher(session, found, actor=current_actor(), user=current_principal(),
                                      reason=form.reason.data, now=utcnow())
        except RuleBroken as error:
            flash(error.message, "danger")
        else:
            flash(_("The voucher is void; its remaining balance is voided and its entries are kept."), "success")
    return redirect(url_for("vouchers.voucher", voucher_id=voucher_id))


def percent(basis_points: int) -> str:
    """The `percent` filter: basis points as a percentage to two decimals, 5000 → "50.00 %"."""
    return f"{bp_to_percent(basis_points)} %"


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(app, NAV, group=_l("Innovation vouchers"))
    register_todo(app, TODO)
    app.add_template_filter(percent)
    app.context_processor(lambda: {
        "APPLICATION_STATE_LABELS": APPLICATION_STATE_LABELS, "VOUCHER_STATE_LABELS": VOUCHER_STATE_LABELS,
        "ENTRY_KIND_LABELS": ENTRY_KIND_LABELS, "REDEMPTION_MODE_LABELS": REDEMPTION_MODE_LABELS})

