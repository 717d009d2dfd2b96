"""Claim pages: a platform's claims and the claim form, an enterprise's claims (with
proof of payment), a claim with its lines, review (approve, return per line or whole), resubmission,
payment, XLSX and PDF downloads; the bureau's flags and related-party declarations. The auditor and the
finance officer read what the bureau reads. Rules are in vouchers/claims/services.py, vouchers/flags.py and
vouchers/services.py; these views load, call and render."""
from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from wtforms.fields.choices import SelectChoice

from core.auth import AccessRule, current_actor, current_principal, requires
from core.clock import to_local
from core.db import end_reads, unit_of_work, utcnow
from core.errors import KequipError, RuleBroken
from core.extensions import current_language, db
from core.forms import show_error
from core.inputs import page_number
from core.models import Enterprise, Platform, Role
from core.templating import NavItem, TodoCounter, register_nav, register_todo
from vouchers import attachments, flags, related, services
from vouchers.claims import documents as claim_documents
from vouchers.claims import services as claims
from vouchers.claims.forms import (
    ApproveClaimForm,
    ClaimAttachmentForm,
    ClaimFilterForm,
    EnterpriseClaimForm,
    PaidForm,
    ProviderClaimForm,
    RelatedPartyForm,
    ResubmitForm,
    ReturnClaimForm,
    line_reasons,
)
from vouchers.models import CLAIM_STATE_LABELS, Claim, ClaimKind, ClaimState, Voucher

bp = Blueprint("voucher_claims", __name__)

PER_PAGE = 50
BUREAU, FINANCE, AUDITOR = Role.BUREAU_ADMIN, Role.FINANCE_OFFICER, Role.AUDITOR
READERS = claims.READERS
CLAIMANTS = (Role.PLATFORM_ADMIN, Role.ENTERPRISE_MEMBER)

NAV = [
    NavItem("voucher_claims.platform_claims", _l("Voucher claims"), AccessRule(frozenset({Role.PLATFORM_ADMIN}))),
    NavItem("voucher_claims.my_claims", _l("My claims"), AccessRule(frozenset({Role.ENTERPRISE_MEMBER}))),
    NavItem("voucher_claims.to_review", _l("Claims to review"), AccessRule(frozenset({BUREAU}))),
    NavItem("voucher_claims.to_pay", _l("Claims to pay"), AccessRule(frozenset({FINANCE}))),
    NavItem("voucher_claims.claims", _l("Voucher claims"), AccessRule(frozenset({AUDITOR}))),
    NavItem("voucher_claims.flags", _l("Voucher flags"), AccessRule(frozenset({BUREAU, AUDITOR}))),
    NavItem("voucher_claims.related_parties", _l("Related parties"), AccessRule(frozenset({BUREAU, AUDITOR}))),
]
TODO = [
    TodoCounter(_l("Claims waiting for review"), AccessRule(frozenset({BUREAU})),
                partial(claims.count_claims, state=ClaimState.SUBMITTED), "voucher_claims.to_review"),
    TodoCounter(_l("Claims waiting to be paid"), AccessRule(frozenset({FINANCE})),
                partial(claims.count_claims, state=ClaimState.APPROVED), "voucher_claims.to_pay"),
]


def _upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def _uploads(files: list[FileStorage] | None) -> list[attachments.Upload]:
    """The files chosen, read up to one byte past the limit; a browser sends an empty part for none."""
    return [attachments.Upload(f.filename or "", f.read(attachments.MAX_ATTACHMENT_BYTES + 1))
            for f in files or [] if f and f.filename]


def _today() -> date:
    return to_local(utcnow()).date()


# --- lists ------------------------------------------------------------------------------------------

def _list(title: str, *, state: ClaimState | None = None, own_only: bool = False, new_endpoint: str | None = None):
    user = current_principal()
    form = ClaimFilterForm(request.args)
    form.platform_id.choices = [SelectChoice(0, _("Every platform"))] + [SelectChoice(p.id, p.name) for p in _platforms()]
    form.validate()
    chosen_state = ClaimState(form.state.data) if form.state.data and not form.state.errors else state
    platform_id = None if form.platform_id.errors else form.platform_id.data or None
    page = db.paginate(claims.claims_query(user, state=chosen_state, platform_id=platform_id, own_only=own_only),
                       page=page_number(), per_page=PER_PAGE, error_out=False)
    names = _claimant_names(page.items)
    return render_template("vouchers/claim_list.html", title=title, page=page, form=form, names=names,
                           chosen_state=chosen_state, new_endpoint=new_endpoint, show_filter=not own_only)


def _platforms() -> list[Platform]:
    return list(db.session.scalars(select(Platform).order_by(Platform.name)))


def _claimant_names(items: list[Claim]) -> dict[int, str]:
    platform_ids = {c.platform_id for c in items if c.platform_id}
    enterprise_ids = {c.enterprise_id for c in items if c.enterprise_id}
    names = {}
    if platform_ids:
        names.update({("p", i): n for i, n in db.session.execute(
            select(Platform.id, Platform.name).where(Platform.id.in_(platform_ids)))})
    if enterprise_ids:
        names.update({("e", i): n for i, n in db.session.execute(
            select(Enterprise.id, Enterprise.name).where(Enterprise.id.in_(enterprise_ids)))})
    return {c.id: names.get(("p", c.platform_id) if c.kind == ClaimKind.PROVIDER else ("e", c.enterprise_id), "")
            for c in items}


@bp.route("/voucher-claims", endpoint="claims")
@requires(*READERS)
def claims_list():
    return _list(_("Voucher claims"))


@bp.route("/voucher-claims/to-review")
@requires(BUREAU, AUDITOR)
def to_review():
    return _list(_("Claims to review"), state=ClaimState.SUBMITTED)


@bp.route("/voucher-claims/to-pay")
@requires(FINANCE, BUREAU, AUDITOR)
def to_pay():
    return _list(_("Claims to pay"), state=ClaimState.APPROVED)


@bp.route("/platform/voucher-claims")
@requires(Role.PLATFORM_ADMIN)
def platform_claims():
    return _list(_("Our voucher claims"), own_only=True, new_endpoint="voucher_claims.new_provider_claim")


@bp.route("/my/voucher-claims")
@requires(Role.ENTERPRISE_MEMBER)
def my_claims():
    return _list(_("My claims"), own_only=True, new_endpoint="voucher_claims.new_enterprise_claim")


# --- filing a claim -----------------------------------------------------------------------------------

def _default_period(form, uses: list[claims.Use]) -> None:
    if request.method == "GET":
        form.period_start.data = min((u.served_on for u in uses), default=_today().replace(day=1))
        form.period_end.data = _today()


@bp.route("/platform/voucher-claims/new", methods=["GET", "POST"])
@requires(Role.PLATFORM_ADMIN)
def new_provider_claim():
    user = current_principal()
    platforms = claims.claimable_platforms(db.session, user)
    form = ProviderClaimForm()
    form.platform_id.choices = [SelectChoice(p.id, p.name) for p in platforms]
    chosen = request.args.get("platform_id", type=int) if request.method == "GET" else form.platform_id.data
    platform = next((p for p in platforms if p.id == chosen), platforms[0] if platforms else None)
    uses = claims.unclaimed_uses(db.session, ClaimKind.PROVIDER, platform.id) if platform else []
    if request.method == "GET" and platform is not None:
        form.platform_id.data = platform.id
        form.bank_account_name.data = platform.bank_account_name
        form.bank_name.data = platform.bank_name
        form.bank_account_number.data = platform.bank_account_number
    _default_period(form, uses)
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                claim = claims.create_provider_claim(
                    session, actor=current_actor(), user=user, platform_id=form.platform_id.data,
                    period_start=form.period_start.data, period_end=form.period_end.data,
                    bank_account_name=form.bank_account_name.data, bank_name=form.bank_name.data,
                    bank_account_number=form.bank_account_number.data,
                    declaration_accepted=form.declaration_accepted.data, now=utcnow())
        except KequipError as error:
            show_error(form, error)
        else:
            flash(_("The claim is submitted; the bureau reviews it."), "success")
            return redirect(url_for("voucher_claims.claim", claim_id=claim.id))
    return render_template("vouchers/claim_new.html", form=form, uses=uses, kind="provider",
                           rows=_use_rows(uses)), 422 if form.is_submitted() else 200


@bp.route("/my/voucher-claims/new", methods=["GET", "POST"])
@requires(Role.ENTERPRISE_MEMBER)
def new_enterprise_claim():
    user = current_principal()
    enterprises = claims.claimable_enterprises(db.session, user)
    form = EnterpriseClaimForm()
    form.enterprise_id.choices = [SelectChoice(e.id, e.name) for e in enterprises]
    chosen = request.args.get("enterprise_id", type=int) if request.method == "GET" else form.enterprise_id.data
    enterprise = next((e for e in enterprises if e.id == chosen), enterprises[0] if enterprises else None)
    uses = claims.unclaimed_uses(db.session, ClaimKind.ENTERPRISE, enterprise.id) if enterprise else []
    if request.method == "GET" and enterprise is not None:
        form.enterprise_id.data = enterprise.id
    _default_period(form, uses)
    if form.validate_on_submit():
        try:
            end_reads()  # the files are checked and written with no transaction open
            checked = [attachments.check_upload(upload) for upload in _uploads(form.attachments.data)]
            with attachments.saved(checked, _upload_dir()) as files, unit_of_work() as session:
                claim = claims.create_enterprise_claim(
                    session, actor=current_actor(), user=user, enterprise_id=form.enterprise_id.data,
                    period_start=form.period_start.data, period_end=form.period_end.data,
                    bank_account_name=form.bank_account_name.data, bank_name=form.bank_name.data,
                    bank_account_number=form.bank_account_number.data,
                    declaration_accepted=form.declaration_accepted.data, has_proof=bool(checked), now=utcnow())
                attachments.store(session, files, owner_type="claim", owner_id=claim.id, actor=current_actor(),
                                  user=user)
        except KequipError as error:
            show_error(form, error)
        else:
            flash(_("The claim is submitted; the bureau reviews it."), "success")
            return redirect(url_for("voucher_claims.claim", claim_id=claim.id))
    return render_template("vouchers/claim_new.html", form=form, uses=uses, kind="enterprise",
                           rows=_use_rows(uses)), 422 if form.is_submitted() else 200


def _use_rows(uses: list[claims.Use]) -> list[tuple[claims.Use, str]]:
    serials = dict(db.session.execute(select(Voucher.id, Voucher.serial).where(
        Voucher.id.in_({u.voucher_id for u in uses}))).all()) if uses else {}
    return [(use, serials.get(use.voucher_id, "")) for use in uses]


# --- one claim ------------------------------------------------------------------------------------------

def _document(claim: Claim) -> claim_documents.ClaimDocument:
    return claim_documents.ClaimDocument(
        claim=claim, claimant=claims.claimant_name(db.session, claim), signed_by=claim.signed_by.name,
        rows=claims.claim_rows(db.session, claim, language=current_language()))


@bp.route("/voucher-claims/<id:claim_id>")
@requires(*CLAIMANTS, *READERS)
def claim(claim_id: int):
    user = current_principal()
    found = claims.get_claim(db.session, claim_id, user)
    late = {flag.line_id: flag.days for flag in flags.late_claims(db.session, now=utcnow(), claim_id=found.id)} \
        if claims.reads_all(user) else {}
    resubmit_form = None
    if claims.can_resubmit(user, found):
        resubmit_form = ResubmitForm(formdata=None)
    paid_form = PaidForm(formdata=None) if claims.can_mark_paid(user, found) else None
    if paid_form is not None:
        paid_form.paid_on.data = _today()
    return render_template(
        "vouchers/claim_detail.html", claim=found, document=_document(found),
        files=claims.claim_attachments(db.session, found), history=claims.claim_history(db.session, found),
        redeemed=claims.redeem_entries(db.session, found),
        late=late, may_review=claims.can_review(user, found), approve_form=ApproveClaimForm(formdata=None),
        return_form=ReturnClaimForm(formdata=None), resubmit_form=resubmit_form, paid_form=paid_form,
        attachment_form=ClaimAttachmentForm() if claims.can_attach(user, found) else None)


def _back_to(claim_id: int) -> Response:
    return redirect(url_for("voucher_claims.claim", claim_id=claim_id))


@bp.route("/voucher-claims/<id:claim_id>/approve", methods=["POST"])
@requires(BUREAU)
def approve_claim(claim_id: int):
    found = claims.get_claim(db.session, claim_id, current_principal())
    form = ApproveClaimForm()
    if not form.validate_on_submit():
        flash(_("The note is too long."), "danger")
        return _back_to(claim_id)
    try:
        with unit_of_work() as session:
            claims.approve_claim(session, found, actor=current_actor(), user=current_principal(), now=utcnow(),
                                 note=form.note.data or "")
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(_("The claim is approved; the finance officer pays it."), "success")
    return _back_to(claim_id)


@bp.route("/voucher-claims/<id:claim_id>/return", methods=["POST"])
@requires(BUREAU)
def return_claim(claim_id: int):
    found = claims.get_claim(db.session, claim_id, current_principal())
    form = ReturnClaimForm()
    if not form.validate_on_submit():
        flash(_("The reason is too long."), "danger")
        return _back_to(claim_id)
    try:
        with unit_of_work() as session:
            claims.return_claim(session, found, actor=current_actor(), user=current_principal(), now=utcnow(),
                                note=form.note.data or "",
                                line_reasons=line_reasons(request.form, [line.id for line in found.lines]))
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(_("The claim is returned to the claimant."), "success")
    return _back_to(claim_id)


@bp.route("/voucher-claims/<id:claim_id>/resubmit", methods=["POST"])
@requires(*CLAIMANTS)
def resubmit_claim(claim_id: int):
    found = claims.get_claim(db.session, claim_id, current_principal())
    form = ResubmitForm()
    if not form.validate_on_submit():
        flash(_("Sign the declaration that the services were provided."), "danger")
        return _back_to(claim_id)
    try:
        with unit_of_work() as session:
            claims.resubmit_claim(session, found, actor=current_actor(), user=current_principal(),
                                  declaration_accepted=form.declaration_accepted.data, now=utcnow(),
                                  bank_account_name=form.bank_account_name.data, bank_name=form.bank_name.data,
                                  bank_account_number=form.bank_account_number.data)
    except KequipError as error:
        flash(error.message, "danger")
    else:
        flash(_("The claim is submitted again, without the returned lines."), "success")
    return _back_to(claim_id)


@bp.route("/voucher-claims/<id:claim_id>/paid", methods=["POST"])
@requires(FINANCE)
def mark_paid(claim_id: int):
    found = claims.get_claim(db.session, claim_id, current_principal())
    form = PaidForm()
    if not form.validate_on_submit():
        flash(_("Give the date and the reference of the payment."), "danger")
        return _back_to(claim_id)
    try:
        with unit_of_work() as session:
            claims.mark_claim_paid(session, found, actor=current_actor(), user=current_principal(),
                                   paid_on=form.paid_on.data, reference=form.payment_reference.data, now=utcnow())
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(_("The claim is paid; the vouchers' redeemed amounts are recorded."), "success")
    return _back_to(claim_id)


@bp.route("/voucher-claims/<id:claim_id>/attachments", methods=["POST"])
@requires(*CLAIMANTS)
def add_claim_attachments(claim_id: int):
    user = current_principal()
    found = claims.get_claim(db.session, claim_id, user)
    form = ClaimAttachmentForm()
    uploads = _uploads(form.attachments.data) if form.validate_on_submit() else []
    if not claims.can_attach(user, found):
        flash(_("This claim takes no more files."), "danger")
        return _back_to(claim_id)
    if not uploads:
        flash(_("Choose a file first."), "danger")
        return _back_to(claim_id)
    try:
        end_reads()  # the files are checked and written with no transaction open
        checked = [attachments.check_upload(upload) for upload in uploads]
        with attachments.saved(checked, _upload_dir()) as files, unit_of_work() as session:
            attachments.store(session, files, owner_type="claim", owner_id=claim_id, actor=current_actor(),
                              user=user)
    except KequipError as error:
        flash(error.message, "danger")
    else:
        flash(_("The files are added."), "success")
    return _back_to(claim_id)


def _download(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


@bp.route("/voucher-claims/<id:claim_id>.xlsx")
@requires(*CLAIMANTS, *READERS)
def claim_xlsx(claim_id: int):
    found = claims.get_claim(db.session, claim_id, current_principal())
    document = _document(found)
    end_reads(found)  # the file is made with no transaction open
    return _download(claim_documents.claim_xlsx(document),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", f"claim-{found.id}.xlsx")


@bp.route("/voucher-claims/<id:claim_id>.pdf")
@requires(*CLAIMANTS, *READERS)
def claim_pdf(claim_id: int):
    found = claims.get_claim(db.session, claim_id, current_principal())
    document = _document(found)
    end_reads(found)  # the file is made with no transaction open
    return _download(claim_documents.claim_pdf(document), "application/pdf", f"claim-{found.id}.pdf")


# --- flags and related parties ------------------------------------------------------------------------

@bp.route("/voucher-flags", endpoint="flags")
@requires(BUREAU, AUDITOR)
def flags_page():
    found = flags.flags_for_bureau(db.session, now=utcnow(), usage=flags.usage_source(current_app))
    return render_template("vouchers/flags.html", flags=found, rules=flags)


@bp.route("/voucher-related-parties")
@requires(BUREAU, AUDITOR)
def related_parties():
    return _related_page(RelatedPartyForm(formdata=None))


def _related_page(form: RelatedPartyForm, status: int = 200):
    _fill_related_choices(form)
    return render_template("vouchers/related_parties.html", form=form,
                           declared=related.declared_relations(db.session),
                           implied=related.implied_relations(db.session), shared_labels=related.SHARED_FIELDS,
                           may_declare=current_principal().has_role(BUREAU)), status


def _fill_related_choices(form: RelatedPartyForm) -> None:
    form.enterprise_id.choices = [SelectChoice(i, n) for i, n in db.session.execute(
        select(Enterprise.id, Enterprise.name).order_by(Enterprise.name))]
    form.platform_id.choices = [SelectChoice(p.id, p.name) for p in _platforms()]


@bp.route("/voucher-related-parties", methods=["POST"])
@requires(BUREAU)
def declare_related():
    form = RelatedPartyForm()
    _fill_related_choices(form)
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                services.declare_related(session, actor=current_actor(), user=current_principal(),
                                         enterprise=session.get(Enterprise, form.enterprise_id.data),
                                         platform=session.get(Platform, form.platform_id.data),
                                         note=form.note.data or "")
        except KequipError as error:
            show_error(form, error)
        else:
            flash(_("The two are declared related: no voucher of the enterprise pays at the platform."), "success")
            return redirect(url_for("voucher_claims.related_parties"))
    return _related_page(form, 422)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(app, NAV, group=_l("Innovation vouchers"))
    register_todo(app, TODO)
    app.context_processor(lambda: {"CLAIM_STATE_LABELS": CLAIM_STATE_LABELS})
