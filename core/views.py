"""Pages of core: home, accounts, profile, and the bureau's organisations, roles, audit log and jobs."""
from __future__ import annotations

import io
import logging
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask import session as http_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_user, logout_user
from flask_login.config import COOKIE_NAME
from werkzeug.exceptions import HTTPException

from core import audit_log as audit_log_labels
from core import forms, job_runs, ratelimit, services
from core.audit import AUDIT_READERS
from core.auth import current_actor, current_principal, public, requires
from core.clock import local_midnight
from core.db import end_reads, unit_of_work, utcnow
from core.errors import KequipError, RuleBroken
from core.exports import XLSX_MIMETYPE, xlsx_bytes
from core.extensions import current_language, db
from core.inputs import chosen_ids, page_number
from core.models import (
    JOB_OUTCOME_LABELS,
    KEY_FIELDS,
    ApiToken,
    Enterprise,
    Organisation,
    OrganisationChange,
    OrganisationKind,
    Platform,
    Role,
    RoleGrant,
    User,
    VerificationState,
)
from core.scheduler import Job, registered_jobs, run_recorded
from core.templating import local_datetime, todos_for

log = logging.getLogger(__name__)
bp = Blueprint("core", __name__)
PER_PAGE = 50


def _safe_next(target: str | None) -> str:
    """Only a path on this site, never another host. Control characters are refused: browsers and
    urllib drop a tab or newline, so ?next=/%09/evil.example would lead to //evil.example."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)):
        return target
    return url_for("core.dashboard")


def error_page(error: Exception) -> ResponseReturnValue:
    if isinstance(error, KequipError):
        status, message = error.status, error.message
    elif isinstance(error, HTTPException) and error.code and error.code < 500:
        status, message = error.code, None
    else:
        if not isinstance(error, HTTPException):
            log.exception("unhandled error on a page", exc_info=error)
        status, message = 500, None
    if status == 401:
        form = forms.LoginForm()
        return render_template("core/login.html", form=form, next=request.full_path.rstrip("?"),
                               must_log_in=True), 401
    template = f"errors/{status}.html" if status in (403, 404, 429, 500) else "errors/other.html"
    headers = getattr(error, "headers", None) if status == 429 else None
    return render_template(template, status=status, message=message), status, headers or {}


# --- public pages -----------------------------------------------------------------------------

@bp.route("/")
@public
def home():
    return render_template("core/home.html")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = forms.LoginForm()
    if form.validate_on_submit():
        def check() -> User | None:
            with unit_of_work() as session:
                return services.authenticate(session, email=form.email.data, password=form.password.data)

        user = ratelimit.limited_login(form.email.data, check)
        if user is not None:
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong e-mail or password."), "danger")
    return render_template("core/login.html", form=form, next=request.args.get("next"))


@bp.route("/logout", methods=["POST"])
@requires()
def logout():
    """Ends every session of the person, a copy of this one's cookie too (the session version)."""
    with unit_of_work() as session:
        services.end_sessions(session, current_principal(), actor=current_actor())
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("core.home"))


@bp.route("/register", methods=["GET", "POST"])
@public
def register():
    form = forms.RegistrationForm()
    if form.validate_on_submit():
        data = services.Registration(
            email=form.email.data, name=form.name.data, phone=form.phone.data or None,
            password=form.password.data, locale=current_language(),
            enterprise_name=form.enterprise_name.data, credit_code=form.credit_code.data,
            legal_representative=form.legal_representative.data, address=form.address.data or None,
            is_tech_sme=form.is_tech_sme.data)
        try:
            with unit_of_work() as session:
                user = services.register_enterprise(session, data, actor=current_actor())
        except RuleBroken as error:
            forms.show_error(form, error)
        else:
            login_user(user)
            flash(_("Welcome! The bureau verifies your enterprise before you may book."), "success")
            return redirect(url_for("core.dashboard"))
    return render_template("core/register.html", form=form)


@bp.route("/password/reset", methods=["GET", "POST"])
@public
def request_password_reset():
    form = forms.ResetRequestForm()
    if form.validate_on_submit():
        ratelimit.count_reset_request(form.email.data)
        ttl = timedelta(minutes=current_app.config["PASSWORD_RESET_TTL_MINUTES"])
        with unit_of_work() as session:
            services.request_password_reset(session, email=form.email.data, now=utcnow(), ttl=ttl)
        flash(_("If an account has this address, a link to set a new password is on its way."), "info")
        return redirect(url_for("core.login"))
    return render_template("core/reset_request.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str):
    if services.find_reset_token(db.session, token, now=utcnow()) is None:
        flash(_("This link has expired or was used already. Ask for a new one."), "danger")
        return redirect(url_for("core.request_password_reset"))
    form = forms.ResetPasswordForm()
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                services.reset_password(session, token=token, password=form.password.data, now=utcnow(),
                                        actor=current_actor())
        except RuleBroken as error:
            forms.show_error(form, error)
        else:
            flash(_("Your password is set. Log in with it."), "success")
            return redirect(url_for("core.login"))
    return render_template("core/reset_password.html", form=form)


# --- for everyone logged in -------------------------------------------------------------------

@bp.route("/dashboard")
@requires()
def dashboard():
    user = current_principal()
    return render_template("core/dashboard.html", summary=services.dashboard_summary(db.session, user),
                           todos=todos_for(db.session, user))


@bp.route("/profile", methods=["GET", "POST"])
@requires()
def profile():
    user = current_principal()
    form = forms.ProfileForm(obj=user)
    new_token = None
    if form.validate_on_submit():
        with unit_of_work() as session:
            services.update_profile(session, user, actor=current_actor(), name=form.name.data,
                                    phone=form.phone.data or None, locale=form.locale.data)
        http_session.pop("lang", None)  # the saved preference now decides
        flash(_("Your profile is saved."), "success")
        return redirect(url_for("core.profile"))
    return render_template("core/profile.html", form=form, new_token=new_token,
                           tokens=services.list_api_tokens(db.session, user), now=utcnow())


@bp.route("/profile/password", methods=["GET", "POST"])
@requires()
def change_password():
    """Every other session of the person ends; this one goes on with the new session version."""
    user = current_principal()
    form = forms.PasswordChangeForm()
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                services.change_password(session, user, current=form.current_password.data,
                                         new=form.password.data, now=utcnow(), actor=current_actor())
        except RuleBroken as error:
            forms.show_error(form, error)
        else:
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME) in request.cookies
            login_user(user, remember=remembered)  # this session, and its remember-me cookie, live on
            flash(_("Your password is changed. You are logged out everywhere else."), "success")
            return redirect(url_for("core.profile"))
    return render_template("core/password_change.html", form=form)


@bp.route("/profile/tokens", methods=["POST"])
@requires()
def create_api_token():
    user = current_principal()
    ttl = timedelta(days=current_app.config["API_TOKEN_TTL_DAYS"])
    with unit_of_work() as session:
        token, _row = services.issue_api_token(session, user, actor=current_actor(), now=utcnow(), ttl=ttl)
    return render_template("core/profile.html", form=forms.ProfileForm(obj=user),
                           new_token=token, tokens=services.list_api_tokens(db.session, user), now=utcnow())


@bp.route("/profile/tokens/<id:token_id>/revoke", methods=["POST"])
@requires()
def revoke_api_token(token_id: int):
    row = db.get_or_404(ApiToken, token_id)
    with unit_of_work() as session:
        services.revoke_api_token(session, row, actor=current_actor(), now=utcnow())
    flash(_("The token is revoked."), "success")
    return redirect(url_for("core.profile"))


# --- organisations ----------------------------------------------------------------------------

@bp.route("/organisations")
@requires(Role.BUREAU_ADMIN, Role.AUDITOR, Role.FINANCE_OFFICER)
def organisations():
    kind = request.args.get("kind")
    state = request.args.get("state")
    stmt = services.list_organisations(
        db.session, kind=OrganisationKind(kind) if kind in set(OrganisationKind) else None,
        state=VerificationState(state) if state in set(VerificationState) else None, q=request.args.get("q"))
    page = db.paginate(stmt, page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("core/organisations.html", page=page, kind=kind, state=state,
                           q=request.args.get("q", ""))


@bp.route("/organisations/<id:org_id>")
@requires()
def organisation(org_id: int):
    org = db.get_or_404(Organisation, org_id)
    user = current_principal()
    services.ensure_may_view_organisation(user, org)
    members = services.list_members(db.session, org)
    may_edit = services.can_manage_organisation(user, org)
    return render_template("core/organisation.html", org=org, members=members, may_edit=may_edit,
                           pending=services.pending_change(db.session, org.id) if may_edit else None,
                           decided=services.last_decided_change(db.session, org.id) if may_edit else None,
                           may_verify=isinstance(org, Enterprise) and user.has_role(Role.BUREAU_ADMIN),
                           verification_form=forms.VerificationForm())


def _organisation_form(org: Organisation, user: User) -> forms.OrganisationForm:
    if isinstance(org, Platform):
        form = forms.PlatformForm(obj=org)
        if not form.is_submitted():
            form.industries.data = [i.value for i in org.industries]
        return form
    if isinstance(org, Enterprise):
        form_class = forms.BureauEnterpriseForm if user.has_role(Role.BUREAU_ADMIN) else forms.EnterpriseForm
        return form_class(obj=org)
    return forms.OrganisationForm(obj=org)


@bp.route("/organisations/<id:org_id>/edit", methods=["GET", "POST"])
@requires(Role.BUREAU_ADMIN, Role.PLATFORM_ADMIN, Role.ENTERPRISE_MEMBER)
def edit_organisation(org_id: int):
    org = db.get_or_404(Organisation, org_id)
    user = current_principal()
    services.ensure_may_manage_organisation(user, org)
    form = _organisation_form(org, user)
    if form.validate_on_submit():
        changes = {name: field.data for name, field in form._fields.items()
                   if name not in ("submit", "csrf_token")}
        if "address" in changes:
            changes["address"] = changes["address"] or None
        try:
            with unit_of_work() as session:
                change = services.update_organisation(session, org, user, actor=current_actor(), changes=changes,
                                                      now=utcnow())
        except RuleBroken as error:
            forms.show_error(form, error)
        else:
            flash(_("Saved. The change of the key fields waits for the bureau's review; until it is approved the "
                    "current values stay.") if change else _("Saved."), "success")
            return redirect(url_for("core.organisation", org_id=org.id))
    return render_template("core/organisation_edit.html", org=org, form=form,
                           pending=services.pending_change(db.session, org.id),
                           reviewed=() if user.has_role(Role.BUREAU_ADMIN) else KEY_FIELDS.get(org.kind, ()))


# --- changes of key fields: the bureau's review -----------------------------------------------

@bp.route("/organisation-changes")
@requires(Role.BUREAU_ADMIN)
def organisation_changes():
    page = db.paginate(services.change_queue(db.session), page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("core/organisation_changes.html", page=page)


def _change_page(change: OrganisationChange, reject_form: forms.ChangeRejectForm, status: int = 200):
    return render_template("core/organisation_change.html", change=change, reject_form=reject_form), status


@bp.route("/organisation-changes/<id:change_id>")
@requires(Role.BUREAU_ADMIN)
def organisation_change(change_id: int):
    return _change_page(db.get_or_404(OrganisationChange, change_id), forms.ChangeRejectForm())


@bp.route("/organisation-changes/<id:change_id>/approve", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def approve_organisation_change(change_id: int):
    change = db.get_or_404(OrganisationChange, change_id)
    try:
        with unit_of_work() as session:
            services.approve_change(session, change, current_principal(), actor=current_actor(), now=utcnow())
    except KequipError as error:
        flash(error.message, "danger")
        return redirect(url_for("core.organisation_change", change_id=change.id))
    flash(_("Approved: the new values of %(name)s apply now.", name=change.organisation.name), "success")
    return redirect(url_for("core.organisation_changes"))


@bp.route("/organisation-changes/<id:change_id>/reject", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def reject_organisation_change(change_id: int):
    change = db.get_or_404(OrganisationChange, change_id)
    form = forms.ChangeRejectForm()
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                services.reject_change(session, change, current_principal(), actor=current_actor(),
                                       reason=form.reason.data, now=utcnow())
        except KequipError as error:
            forms.show_error(form, error)
        else:
            flash(_("Rejected: the organisation keeps its values and the requester is told why."), "success")
            return redirect(url_for("core.organisation_changes"))
    return _change_page(change, form, 422)


@bp.route("/organisation-changes/approve-chosen", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def approve_chosen_organisation_changes():
    ids = chosen_ids("change_id")
    if not ids:
        flash(_("Choose the changes to approve."), "danger")
        return redirect(url_for("core.organisation_changes"))
    try:
        with unit_of_work() as session:
            approved = services.bulk_approve_changes(session, ids, current_principal(), actor=current_actor(),
                                                     now=utcnow())
    except KequipError as error:
        flash(error.message, "danger")
    else:
        flash(ngettext("%(num)d change approved.", "%(num)d changes approved.", len(approved)), "success")
    return redirect(url_for("core.organisation_changes"))


@bp.route("/organisations/<id:org_id>/verify", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def verify_organisation(org_id: int):
    enterprise = db.get_or_404(Enterprise, org_id)
    form = forms.VerificationForm()
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                services.verify_enterprise(session, enterprise, actor=current_actor(),
                                           to=VerificationState(form.decision.data), note=form.note.data,
                                           now=utcnow())
        except RuleBroken as error:
            flash(error.message, "danger")
        else:
            flash(_("The decision is recorded."), "success")
    else:
        flash(_("Choose a decision."), "danger")
    return redirect(url_for("core.organisation", org_id=enterprise.id))


# --- people and roles -------------------------------------------------------------------------

@bp.route("/users")
@requires(Role.BUREAU_ADMIN)
def users():
    stmt = services.list_users(db.session, q=request.args.get("q"))
    page = db.paginate(stmt, page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("core/users.html", page=page, q=request.args.get("q", ""))


def _grant_form() -> forms.RoleGrantForm:
    form = forms.RoleGrantForm()
    form.fill_organisations(services.list_scoped_organisations(db.session))
    return form


@bp.route("/users/<id:user_id>")
@requires(Role.BUREAU_ADMIN)
def user_detail(user_id: int):
    person = db.get_or_404(User, user_id)
    return render_template("core/user.html", person=person, form=_grant_form())


@bp.route("/users/<id:user_id>/roles", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def grant_role(user_id: int):
    person = db.get_or_404(User, user_id)
    form = _grant_form()
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data) if form.organisation_id.data else None
        try:
            with unit_of_work() as session:
                services.grant_role(session, person, actor=current_actor(), role=Role(form.role.data),
                                    organisation=organisation)
        except RuleBroken as error:
            forms.show_error(form, error)
        else:
            flash(_("The role is granted."), "success")
            return redirect(url_for("core.user_detail", user_id=person.id))
    return render_template("core/user.html", person=person, form=form), 422


@bp.route("/roles/<id:grant_id>/revoke", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def revoke_role(grant_id: int):
    grant = db.get_or_404(RoleGrant, grant_id)
    user_id = grant.user_id
    try:
        with unit_of_work() as session:
            services.revoke_role(session, grant, actor=current_actor())
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(_("The role is revoked."), "success")
    return redirect(url_for("core.user_detail", user_id=user_id))


# --- audit log --------------------------------------------------------------------------------

def _audit_query(form: forms.AuditFilterForm):
    form.fill_choices(services.audit_actions(db.session))
    form.validate()
    values = form.filters()
    since, until = values.pop("since"), values.pop("until")
    return services.list_audit_entries(
        db.session, **values, since=local_midnight(since) if since else None,
        until=local_midnight(until + timedelta(days=1)) if until else None)


@bp.route("/audit")
@requires(*AUDIT_READERS)
def audit_log():
    form = forms.AuditFilterForm(request.args)
    page = db.paginate(_audit_query(form), page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("core/audit.html", form=form, page=page, audit_log=audit_log_labels,
                           row_cap=audit_log_labels.EXPORT_ROW_CAP)


@bp.route("/audit.xlsx")
@requires(*AUDIT_READERS)
def audit_log_xlsx():
    """The filtered log, newest first, up to EXPORT_ROW_CAP rows."""
    entries = db.session.scalars(_audit_query(forms.AuditFilterForm(request.args))
                                 .limit(audit_log_labels.EXPORT_ROW_CAP)).all()
    end_reads()  # the workbook is written with no transaction open
    header = [_("Time"), _("Actor"), _("Action"), _("Object"), _("Before"), _("After"), "IP"]
    rows = ([local_datetime(e.at, "yyyy-MM-dd HH:mm:ss"), e.actor_label,
             audit_log_labels.action_label(e.action), audit_log_labels.subject_label(e.subject_type, e.subject_id),
             "\n".join(audit_log_labels.field_lines(e.before)), "\n".join(audit_log_labels.field_lines(e.after)),
             e.ip or ""] for e in entries)
    return send_file(io.BytesIO(xlsx_bytes([(_("Audit log"), header, rows)])), mimetype=XLSX_MIMETYPE,
                     as_attachment=True, download_name="audit-log.xlsx", max_age=0)


# --- periodic jobs ----------------------------------------------------------------------------

JOB_READERS = (Role.BUREAU_ADMIN, Role.AUDITOR)


def _job_or_404(job_id: str) -> Job:
    job = registered_jobs(current_app).get(job_id)
    if job is None:
        abort(404)
    return job


@bp.route("/jobs")
@requires(*JOB_READERS)
def jobs():
    listed = sorted(registered_jobs(current_app).values(), key=lambda job: job.id)
    latest = job_runs.latest_runs(db.session, [job.id for job in listed])
    rows = [(job, job_runs.describe_schedule(job.trigger, job.trigger_args), latest.get(job.id)) for job in listed]
    return render_template("core/jobs.html", rows=rows, JOB_OUTCOME_LABELS=JOB_OUTCOME_LABELS)


@bp.route("/jobs/<job_id>")
@requires(*JOB_READERS)
def job_detail(job_id: str):
    job = _job_or_404(job_id)
    return render_template("core/job.html", job=job, schedule=job_runs.describe_schedule(job.trigger, job.trigger_args),
                           runs=job_runs.recent_runs(db.session, job.id), JOB_OUTCOME_LABELS=JOB_OUTCOME_LABELS)


@bp.route("/jobs/<job_id>/run", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def run_job_now(job_id: str):
    """The job runs in this request, as the scheduler runs it; the run is recorded and audited, and its own
    outcome (not a scheduled run's of the same moment) is shown."""
    job = _job_or_404(job_id)
    actor = current_actor()
    end_reads()  # the job's own transactions follow; the request keeps none open meanwhile
    run = run_recorded(current_app._get_current_object(), job, actor=actor)
    if run.error is None:
        flash(_("The job ran: %(result)s.", result=run.result), "success")
    else:
        flash(_("The job failed; its error is below."), "danger")
    return redirect(url_for("core.job_detail", job_id=job.id))
