"""Marketplace pages: the XLSX bulk import of a platform's instruments."""
from __future__ import annotations

import io

from flask import flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SubmitField

from core.auth import AccessRule, current_actor, current_principal, requires
from core.db import end_reads, unit_of_work, utcnow
from core.errors import RuleBroken
from core.extensions import db
from core.models import Platform, Role
from core.templating import NavItem
from marketplace.blueprints import bp, my_platform
from marketplace.registry import imports

NAV = [NavItem("marketplace.import_instruments", _l("Import instruments"), AccessRule(frozenset({Role.PLATFORM_ADMIN})))]
ERRORS_SHOWN = 500  # a page lists at most this many row errors; the count says how many there are


class ImportForm(FlaskForm):
    file = FileField(_l("XLSX file"), validators=[FileRequired(_l("Choose the filled-in template (.xlsx)."))])
    submit_for_review = BooleanField(_l("Submit every instrument for the bureau's review at once"))
    submit = SubmitField(_l("Import"))


def _platforms() -> tuple[list[Platform], Platform]:
    """The platforms the admin manages, and the one chosen (platform_id, else the first)."""
    platform_ids = current_principal().organisation_ids(Role.PLATFORM_ADMIN)
    platforms = sorted((db.session.get(Platform, pid) for pid in platform_ids), key=lambda platform: platform.name)
    return platforms, my_platform()


def _render(form: ImportForm, platforms: list[Platform], platform: Platform, *, error: RuleBroken | None = None,
            status: int = 200):
    result = error.details if error is not None and isinstance(error.details, imports.ImportResult) else None
    return render_template("marketplace/import.html", form=form, platforms=platforms, platform=platform,
                           error=error, row_errors=result.errors[:ERRORS_SHOWN] if result else [],
                           error_count=len(result.errors) if result else 0,
                           limits=imports.ImportLimits.configured()), status


@bp.route("/instruments/import", methods=["GET", "POST"])
@requires(Role.PLATFORM_ADMIN)
def import_instruments():
    platforms, platform = _platforms()
    form = ImportForm()
    if not form.validate_on_submit():
        return _render(form, platforms, platform, status=422 if form.is_submitted() else 200)
    limits = imports.ImportLimits.configured()
    data = form.file.data.read(limits.max_bytes + 1)
    end_reads()  # the file is read outside any transaction; the unit of work below reloads what it needs
    try:
        rows = imports.read_workbook(data, limits)
        with unit_of_work() as session:
            result = imports.import_instruments(session, platform, current_principal(), actor=current_actor(),
                                                rows=rows, submit=form.submit_for_review.data, now=utcnow())
    except RuleBroken as error:
        return _render(form, platforms, platform, error=error, status=422)
    flash(ngettext("%(num)d instrument imported.", "%(num)d instruments imported.", result.imported), "success")
    target = url_for("marketplace.my_instruments", platform_id=platform.id)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":  # instrument-import.js goes there itself
        return jsonify(redirect=target)
    return redirect(target)


@bp.route("/instruments/import/template.xlsx")
@requires(Role.PLATFORM_ADMIN)
def import_template():
    choices = imports.category_choices(db.session)
    end_reads()  # the workbook is written outside any transaction
    return send_file(io.BytesIO(imports.template_xlsx(choices, imports.ImportLimits.configured())),
                     mimetype=imports.XLSX_MIMETYPE,
                     as_attachment=True, download_name=imports.TEMPLATE_FILENAME, max_age=0)
