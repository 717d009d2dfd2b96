"""Marketplace pages: the registry — a platform's instruments, and the bureau's review queue."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from core.auth import AccessRule, current_actor, current_principal, requires
from core.db import end_reads, unit_of_work, utcnow
from core.errors import KequipError, RuleBroken
from core.extensions import current_language, db
from core.forms import show_rule_error
from core.inputs import chosen_ids, page_number
from core.models import Platform, Role
from core.templating import NavItem, TodoCounter
from marketplace.blueprints import bp, my_platform
from marketplace.registry import services
from marketplace.registry.forms import FEE_FIELDS, InstrumentForm, RejectForm, ReviewFilterForm
from marketplace.registry.models import (
    SHARING_MODE_LABELS,
    Instrument,
    InstrumentCategory,
    InstrumentPhoto,
    InstrumentState,
    SharingMode,
)

NAV = [
    NavItem("marketplace.my_instruments", _l("Our instruments"), AccessRule(frozenset({Role.PLATFORM_ADMIN}))),
    NavItem("marketplace.review_queue", _l("Instrument review"), AccessRule(frozenset({Role.BUREAU_ADMIN}))),
]
TODO = [TodoCounter(_l("Instruments waiting for review"), AccessRule(frozenset({Role.BUREAU_ADMIN})),
                    services.count_in_review, "marketplace.review_queue")]
PER_PAGE = 50
MAX_QUERY = 100  # characters of a search


def _instrument_form(instrument: Instrument | None = None) -> InstrumentForm:
    form = InstrumentForm()
    form.fill_categories(services.list_categories(db.session), current_language())
    if instrument is not None and not form.is_submitted():
        form.load(instrument)
    return form


def _show(form: InstrumentForm, error: KequipError) -> None:
    if isinstance(error.details, dict):  # every field the record rules refused
        for field, message in error.details.items():
            show_rule_error(form, RuleBroken(error.code, message, field=field))
    elif not show_rule_error(form, error):
        flash(error.message, "danger")


def _render_form(form: InstrumentForm, instrument: Instrument | None, platform: Platform, status: int = 200):
    return render_template("marketplace/instrument_form.html", form=form, instrument=instrument, platform=platform,
                           fee_fields=FEE_FIELDS), status


# --- the platform's pages ---------------------------------------------------------------------

@bp.route("/instruments/mine")
@requires(Role.PLATFORM_ADMIN)
def my_instruments():
    platform = my_platform()
    state = request.args.get("state")
    query = request.args.get("q", "").strip()[:MAX_QUERY]
    stmt = services.list_platform_instruments(
        db.session, platform.id, state=InstrumentState(state) if state in set(InstrumentState) else None, query=query)
    page = db.paginate(stmt, page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("marketplace/my_instruments.html", platform=platform, page=page, state=state, q=query)


def _chosen_ids() -> list[int]:
    return chosen_ids("instrument_id")


@bp.route("/instruments/bulk-submit", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def bulk_submit():
    platform = my_platform()
    ids = _chosen_ids()
    if not ids:
        flash(_("Choose the instruments to submit."), "danger")
    else:
        try:
            with unit_of_work() as session:
                submitted = services.bulk_submit(session, ids, current_principal(), actor=current_actor(), now=utcnow())
        except RuleBroken as error:
            flash(error.message, "danger")
        else:
            flash(ngettext("%(num)d instrument submitted for review.", "%(num)d instruments submitted for review.",
                           len(submitted)), "success")
    return redirect(url_for("marketplace.my_instruments", platform_id=platform.id))


@bp.route("/instruments/new", methods=["GET", "POST"])
@requires(Role.PLATFORM_ADMIN)
def new_instrument():
    platform = my_platform()
    form = _instrument_form()
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                instrument = services.create_instrument(session, platform, current_principal(), actor=current_actor(),
                                                        values=form.values(), submit=form.save_and_submit.data,
                                                        now=utcnow())
        except RuleBroken as error:
            _show(form, error)
            return _render_form(form, None, platform, 422)
        flash(_("Submitted for review.") if form.save_and_submit.data else _("Saved as a draft."), "success")
        return redirect(url_for("marketplace.my_instruments", platform_id=instrument.platform_id))
    return _render_form(form, None, platform, 422 if form.is_submitted() else 200)


@bp.route("/instruments/<id:instrument_id>/edit", methods=["GET", "POST"])
@requires(Role.PLATFORM_ADMIN)
def edit_instrument(instrument_id: int):
    instrument = db.get_or_404(Instrument, instrument_id)
    user = current_principal()
    services.ensure_may_manage(user, instrument)
    form = _instrument_form(instrument)
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                services.update_instrument(session, instrument, user, actor=current_actor(), values=form.values(),
                                           now=utcnow())
                if form.save_and_submit.data and instrument.state == InstrumentState.DRAFT:
                    services.submit_instrument(session, instrument, user, actor=current_actor(), now=utcnow())
        except RuleBroken as error:
            _show(form, error)
            return _render_form(form, instrument, instrument.platform, 422)
        if instrument.pending_changes:
            flash(_("The change waits for the bureau's review; the published record stays as it is until then."),
                  "info")
        else:
            flash(_("Saved."), "success")
        return redirect(url_for("marketplace.my_instruments", platform_id=instrument.platform_id))
    return _render_form(form, instrument, instrument.platform, 422 if form.is_submitted() else 200)


def _act(instrument_id: int, action, done: str):
    instrument = db.get_or_404(Instrument, instrument_id)
    try:
        with unit_of_work() as session:
            action(session, instrument, current_principal(), actor=current_actor())
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(done, "success")
    return redirect(request.referrer if (request.referrer or "").startswith(request.host_url)
                    else url_for("marketplace.my_instruments", platform_id=instrument.platform_id))


@bp.route("/instruments/<id:instrument_id>/submit", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def submit_instrument(instrument_id: int):
    return _act(instrument_id, lambda s, i, u, actor: services.submit_instrument(s, i, u, actor=actor, now=utcnow()),
                _("Submitted for review."))


@bp.route("/instruments/<id:instrument_id>/maintenance", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def start_maintenance(instrument_id: int):
    return _act(instrument_id, lambda s, i, u, actor: services.set_maintenance(s, i, u, actor=actor, on=True),
                _("The instrument is under maintenance."))


@bp.route("/instruments/<id:instrument_id>/resume", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def end_maintenance(instrument_id: int):
    return _act(instrument_id, lambda s, i, u, actor: services.set_maintenance(s, i, u, actor=actor, on=False),
                _("The instrument is back in service."))


@bp.route("/instruments/<id:instrument_id>/retire", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def retire_instrument(instrument_id: int):
    return _act(instrument_id, services.retire_instrument, _("The instrument is retired."))


@bp.route("/instruments/<id:instrument_id>/photos", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def upload_photo(instrument_id: int):
    instrument = db.get_or_404(Instrument, instrument_id)
    services.ensure_may_manage(current_principal(), instrument)
    upload = request.files.get("photo")
    if upload is None or not upload.filename:
        flash(_("Choose a photo first."), "danger")
    else:
        data = upload.read(services.MAX_PHOTO_BYTES + 1)
        end_reads()  # the photo is decoded and re-encoded outside any transaction
        try:
            photo = services.prepare_photo(data)
            with unit_of_work() as session:
                services.add_photo(session, instrument, current_principal(), actor=current_actor(), photo=photo,
                                   upload_dir=Path(current_app.config["UPLOAD_DIR"]))
        except RuleBroken as error:
            flash(error.message, "danger")
        else:
            flash(_("The photo is added."), "success")
    return redirect(url_for("marketplace.edit_instrument", instrument_id=instrument.id))


@bp.route("/instruments/photos/<id:photo_id>/delete", methods=["POST"])
@requires(Role.PLATFORM_ADMIN)
def delete_photo(photo_id: int):
    photo = db.get_or_404(InstrumentPhoto, photo_id)
    instrument_id, stored_name = photo.instrument_id, photo.stored_name
    with unit_of_work() as session:
        services.remove_photo(session, photo, current_principal(), actor=current_actor())
    # the file goes once the removal is committed (a rolled-back removal keeps it)
    services.photo_path(Path(current_app.config["UPLOAD_DIR"]), stored_name).unlink(missing_ok=True)
    flash(_("The photo is removed."), "success")
    return redirect(url_for("marketplace.edit_instrument", instrument_id=instrument_id))


# --- the bureau's review ----------------------------------------------------------------------

@bp.route("/review")
@requires(Role.BUREAU_ADMIN)
def review_queue():
    form = ReviewFilterForm(request.args)
    categories = services.list_categories(db.session)
    language = current_language()
    form.platform_id.choices = [(0, _("Every platform"))] + [(p.id, p.name) for p in db.session.scalars(
        db.select(Platform).order_by(Platform.name))]
    form.category.choices = [("", _("Every category"))] + [(c.code, f"{c.code} {c.name(language)}") for c in categories]
    form.validate()
    chosen = {name: None if field.errors else field.data or None for name, field in form._fields.items()}
    stmt = services.review_queue(db.session, platform_id=chosen["platform_id"], category_code=chosen["category"],
                                 older_than_days=chosen["older_than_days"], now=utcnow())
    page = db.paginate(stmt, page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("marketplace/review_queue.html", form=form, page=page)


@bp.route("/review/<id:instrument_id>")
@requires(Role.BUREAU_ADMIN)
def review_instrument(instrument_id: int):
    instrument = db.get_or_404(Instrument, instrument_id)
    return render_template("marketplace/review_instrument.html", instrument=instrument,
                           diff=services.review_diff(instrument), in_review=services.is_in_review(instrument),
                           reject_form=RejectForm())


@bp.route("/review/<id:instrument_id>/publish", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def publish_instrument(instrument_id: int):
    instrument = db.get_or_404(Instrument, instrument_id)
    try:
        with unit_of_work() as session:
            services.publish_instrument(session, instrument, current_principal(), actor=current_actor(), now=utcnow())
    except RuleBroken as error:
        flash(error.message, "danger")
        return redirect(url_for("marketplace.review_instrument", instrument_id=instrument.id))
    flash(_("Published: %(name)s", name=instrument.name_zh), "success")
    return redirect(url_for("marketplace.review_queue"))


@bp.route("/review/<id:instrument_id>/reject", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def reject_instrument(instrument_id: int):
    instrument = db.get_or_404(Instrument, instrument_id)
    form = RejectForm()
    if form.validate_on_submit():
        try:
            with unit_of_work() as session:
                services.reject_instrument(session, instrument, current_principal(), actor=current_actor(),
                                           reason=form.reason.data)
        except RuleBroken as error:
            if not show_rule_error(form, error):
                flash(error.message, "danger")
        else:
            flash(_("Returned to the platform with your reason."), "success")
            return redirect(url_for("marketplace.review_queue"))
    return render_template("marketplace/review_instrument.html", instrument=instrument,
                           diff=services.review_diff(instrument), in_review=services.is_in_review(instrument),
                           reject_form=form), 422


@bp.route("/review/bulk-publish", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def bulk_publish():
    ids = _chosen_ids()
    if not ids:
        flash(_("Choose the instruments to publish."), "danger")
        return redirect(url_for("marketplace.review_queue"))
    try:
        with unit_of_work() as session:
            published = services.bulk_publish(session, ids, current_principal(), actor=current_actor(), now=utcnow())
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(ngettext("%(num)d instrument published.", "%(num)d instruments published.", len(published)), "success")
    return redirect(url_for("marketplace.review_queue"))


def field_value(value: Any, field: str) -> str:
    """An instrument field's value as a person reads it (review diffs, releases): a template filter."""
    from core.money import format_yuan

    if value is None or value == "":
        return "—"
    if field.endswith("_fen"):
        return format_yuan(int(value))
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if field == "category_id":
        category = db.session.get(InstrumentCategory, value)
        return f"{category.code} {category.name(current_language())}" if category else str(value)
    if field == "sharing_mode":
        return str(SHARING_MODE_LABELS[SharingMode(value)])
    if isinstance(value, list):
        return "；".join(str(v) for v in value)
    return str(value)
