"""The monitoring dashboards: the bureau's (and the auditor's) for the district, a platform admin's for
their platform; each chart as SVG and each table as CSV, for the same window, chosen in the URL."""
from __future__ import annotations

from flask import Response, current_app, render_template, request
from flask_babel import gettext as _

from core.auth import current_principal, requires
from core.clock import to_local
from core.db import end_reads, utcnow
from core.errors import Forbidden, RuleBroken
from core.exports import XLSX_MIMETYPE
from core.extensions import current_language, db
from core.models import Platform, Role
from monitoring import alerts, dashboard, metrics, sharing_report
from monitoring.alert_views import subject_url
from monitoring.dashboard import Window
from monitoring.models import ALERT_KIND_LABELS, AlertState
from monitoring.views import bp

DISTRICT_READERS = (Role.BUREAU_ADMIN, Role.AUDITOR)
BREAKDOWNS = ("platform", "industry", "category", "instrument")
OPEN_ALERTS_SHOWN = 10
INSTRUMENTS_SHOWN = 100  # the page's table; the CSV holds every instrument (a district has 20,000)


def _window() -> Window:
    return dashboard.window_from(request.args)


def _scope() -> tuple[str, int | None, list]:
    """The district for its readers; a platform (?platform_id=, else their first) for its admins."""
    user = current_principal()
    platform_id = request.args.get("platform_id", type=int)
    if platform_id is None and user.has_role(*DISTRICT_READERS):
        return "district", None, []
    admin_of = sorted(user.organisation_ids(Role.PLATFORM_ADMIN))
    platform_id = platform_id or (admin_of[0] if admin_of else None)
    if platform_id is None or not (platform_id in admin_of or user.has_role(*DISTRICT_READERS)):
        raise Forbidden("forbidden", _("You may see the figures of your own platform only."))
    return "platform", platform_id, metrics.scope_filter("platform", platform_id)


def _page(template: str):
    try:
        window = _window()
    except RuleBroken as error:
        return render_template("monitoring/dashboard_error.html", error=error), 422
    scope, platform_id, conditions = _scope()
    series = metrics.figures(db.session, conditions, window.period, window.first, window.last)
    instruments = dashboard.breakdown(db.session, window, "instrument", conditions)
    top, bottom = dashboard.ranked(instruments)
    context = {
        "window": window, "scope": scope, "platform": db.session.get(Platform, platform_id) if platform_id else None,
        "series": series, "total": dashboard.whole(series, window.first), "instruments": instruments,
        "top": top, "bottom": bottom, "columns": dashboard.figure_columns(), "period_label": dashboard.period_label,
        "large": dashboard.large_instruments(db.session, window, instruments,
                                             current_app.config["LARGE_INSTRUMENT_LINE_FEN"]),
        "full_use_hours": dashboard.FULL_USE_HOURS, "national_effective_hours": dashboard.NATIONAL_EFFECTIVE_HOURS,
        "national_external_hours": dashboard.NATIONAL_EXTERNAL_HOURS,
        "breakdowns": {by: dashboard.breakdown(db.session, window, by) for by in ("platform", "industry", "category")}
        if scope == "district" else {},
        "instruments_shown": INSTRUMENTS_SHOWN,
        "open_alerts": list(db.session.scalars(alerts.alerts_for(current_principal(), state=AlertState.OPEN)
                                               .limit(OPEN_ALERTS_SHOWN))),
        "describe": alerts.describe, "KIND_LABELS": ALERT_KIND_LABELS, "subject_url": subject_url,
        "programmes": dashboard.voucher_spending(db.session, year=window.last.year, language=current_language())
        if scope == "district" else [],
    }
    return render_template(template, **context)


@bp.route("/monitoring")
@requires(*DISTRICT_READERS, Role.PLATFORM_ADMIN)
def dashboard_page():
    return _page("monitoring/dashboard.html")


@bp.route("/monitoring/chart-<any(rates, hours):chart>.svg")
@requires(*DISTRICT_READERS, Role.PLATFORM_ADMIN)
def dashboard_chart(chart: str):
    window = _window()
    _scope_name, _platform_id, conditions = _scope()
    if chart == "rates":
        series = metrics.figures(db.session, conditions, window.period, window.first, window.last)
        end_reads()  # drawn with no transaction open
        svg = dashboard.rates_chart(series, window.period, title=_("Utilization and sharing rate"))
    else:
        by = request.args.get("by", "platform")
        if by not in BREAKDOWNS:
            raise RuleBroken("bad_breakdown", _("No such breakdown."), field="by")
        rows = dashboard.breakdown(db.session, window, by, conditions)
        end_reads()
        svg = dashboard.hours_chart(rows, title=_("Effective and external service hours"))
    response = Response(svg, mimetype="image/svg+xml")
    response.cache_control.private = True
    return response


@bp.route("/monitoring/sharing-report", defaults={"file_format": "html"})
@bp.route("/monitoring/sharing-report.<any(xlsx, csv):file_format>")
@requires(*DISTRICT_READERS, Role.PLATFORM_ADMIN)
def sharing_report_page(file_format: str):
    try:
        quarter = sharing_report.quarter_from(request.args, today=to_local(utcnow()).date())
    except RuleBroken as error:
        return render_template("monitoring/dashboard_error.html", error=error), 422
    _scope_name, platform_id, conditions = _scope()
    platform = db.session.get(Platform, platform_id) if platform_id else None
    found = sharing_report.rows(db.session, quarter, conditions)
    if file_format == "html":
        return render_template("monitoring/sharing_report.html", quarter=quarter, rows=found, platform=platform,
                               columns=sharing_report.columns())
    end_reads()  # the file is written with no transaction open
    name = f"kequip-sharing-{quarter.year}Q{quarter.number}" + (f"-platform-{platform_id}" if platform_id else "")
    title = _("Sharing report %(year)s Q%(quarter)s", year=quarter.year, quarter=quarter.number)
    if file_format == "xlsx":
        return Response(sharing_report.as_xlsx(found, title=title), mimetype=XLSX_MIMETYPE,
                        headers={"Content-Disposition": f"attachment; filename={name}.xlsx"})
    return Response(sharing_report.as_csv(found), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}.csv"})


@bp.route("/monitoring/figures.csv")
@requires(*DISTRICT_READERS, Role.PLATFORM_ADMIN)
def dashboard_csv():
    window = _window()
    _scope_name, _platform_id, conditions = _scope()
    by = request.args.get("by", "period")
    if by == "period":
        series = metrics.figures(db.session, conditions, window.period, window.first, window.last)
        labelled = [(dashboard.period_label(row.start, window.period), row) for row in series]
        heading = _("Period")
    elif by in BREAKDOWNS:
        labelled = [(row.label, row.figures) for row in dashboard.breakdown(db.session, window, by, conditions)]
        heading = {"platform": _("Platform"), "industry": _("Industry"), "category": _("Category"),
                   "instrument": _("Instrument")}[by]
    else:
        raise RuleBroken("bad_breakdown", _("No such breakdown."), field="by")
    end_reads()
    body = dashboard.figures_csv(heading, labelled)
    name = f"kequip-figures-{by}-{window.first}-{window.last}.csv"
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f"attachment; filename={name}"})
