"""Monitoring API under /api/v1: a device reports the use of its instrument; the usage figures; people read
their alerts."""
from __future__ import annotations

from datetime import date, datetime

import marshmallow as ma
from flask import Flask, request
from flask_babel import gettext as _
from flask_smorest import Blueprint
from sqlalchemy import select

from core.auth import current_principal, public, requires
from core.db import utcnow
from core.errors import Forbidden, NotFound
from core.extensions import ErrorBody, db
from core.inputs import MAX_ID, MAX_PAGE
from core.models import Platform, Role
from marketplace.booking import services as bookings
from marketplace.booking.api import MAX_PER_PAGE, LocalTime, instant
from marketplace.registry.models import Instrument
from monitoring import alerts, metrics, telemetry
from monitoring.dashboard import MAX_DAYS
from monitoring.metrics import PeriodFigures
from monitoring.models import AlertKind, AlertState, DeviceEventKind

bp = Blueprint("monitoring_api", __name__, url_prefix="/api/v1", description="Usage monitoring")


class UsageEventIn(ma.Schema):
    event = ma.fields.Enum(DeviceEventKind, by_value=True, required=True, metadata={
        "description": "start: use begins; heartbeat: still in use; stop: use ends"})
    at = instant("When it happened on the device, at most 5 minutes ahead of the server", required=True)


class UsageSessionOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    start = LocalTime(required=True, attribute="start_at")
    end = LocalTime(required=True, allow_none=True, attribute="end_at",
                    metadata={"description": "Empty while the session is open"})
    last_seen = LocalTime(required=True, attribute="last_seen_at")
    booking_id = ma.fields.Integer(required=True, allow_none=True,
                                   metadata={"description": "The booking this use fulfils"})


class UsageEventOut(ma.Schema):
    event = ma.fields.String(required=True)
    at = LocalTime(required=True)
    duplicate = ma.fields.Boolean(required=True, metadata={"description": "The same event was received before"})
    session = ma.fields.Nested(UsageSessionOut, required=True, allow_none=True,
                               metadata={"description": "The session the event belongs to (none for a stray stop)"})


def _device_secret() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


@bp.route("/instruments/<id:instrument_id>/usage", methods=["POST"])
@public  # not a person: the device's own token, checked below
@bp.arguments(UsageEventIn, as_kwargs=True)
@bp.response(200, UsageEventOut)
@bp.alt_response(401, schema=ErrorBody, description="The device token is wrong or revoked")
@bp.alt_response(403, schema=ErrorBody, description="The device token belongs to another instrument")
@bp.alt_response(422, schema=ErrorBody, description="A naive time, one in the future or before the instrument")
@bp.doc(security=[{"device": []}])
def report_usage(instrument_id: int, *, event: DeviceEventKind, at: datetime):
    """A device's event (`Authorization: Bearer <device token>`). Events may arrive late or out of order:
    they are applied in the order of `at`. Sending the same event again answers 200 with the same session."""
    now = utcnow()
    with bookings.booking_change(actor=telemetry.DEVICE, now=now) as session:  # a completed booking is settled after
        token = telemetry.authenticate(session, instrument_id, _device_secret())
        reported = telemetry.record_event(session, token, kind=event, at=at, now=now)
        return {"event": reported.event.kind.value, "at": reported.event.at, "duplicate": reported.duplicate,
                "session": reported.usage}


# --- metrics --------------------------------------------------------------------------------------

class MetricsQuery(ma.Schema):
    scope = ma.fields.String(required=True, validate=ma.validate.OneOf(("district", "platform", "instrument")))
    id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1, max=MAX_ID),
                           metadata={"description": "The platform's or instrument's id (not for the district)"})
    period = ma.fields.String(load_default="month", validate=ma.validate.OneOf(("month", "quarter", "year")))
    start = ma.fields.Date(required=True, metadata={"description": "First day, Asia/Shanghai"})
    end = ma.fields.Date(required=True, metadata={"description": "Last day, included; at most three years on"})

    @ma.validates_schema
    def consistent(self, data: dict, **_kwargs) -> None:
        if data["scope"] != "district" and data.get("id") is None:
            raise ma.ValidationError(_("Give the id of the platform or instrument."), "id")
        if data["end"] < data["start"]:
            raise ma.ValidationError(_("The end must not be before the start."), "end")
        if (data["end"] - data["start"]).days >= MAX_DAYS:
            raise ma.ValidationError(_("A range spans at most three years."), "end")
        if data["start"] < date(2000, 1, 1) or data["end"] > date(2099, 12, 31):
            raise ma.ValidationError(_("Give a date between the years 2000 and 2099."), "start")


class MetricsPeriodOut(ma.Schema):
    start = ma.fields.Date(required=True, metadata={"description": "The period's first day"})
    available_hours = ma.fields.Float(required=True, metadata={"description": "Open hours less holidays and maintenance"})
    booked_hours = ma.fields.Float(required=True)
    effective_hours = ma.fields.Float(required=True, metadata={"description": "有效工作机时, from usage sessions"})
    external_hours = ma.fields.Float(required=True, metadata={"description": "Of those, for users outside the platform"})
    utilization = ma.fields.Float(required=True, allow_none=True, metadata={"description": "effective ÷ available"})
    sharing_rate = ma.fields.Float(required=True, allow_none=True, metadata={"description": "external ÷ effective"})
    revenue_enterprise_fen = ma.fields.Integer(required=True)
    revenue_voucher_fen = ma.fields.Integer(required=True)
    users_served = ma.fields.Integer(required=True)
    enterprises_served = ma.fields.Integer(required=True)
    bookings = ma.fields.Integer(required=True)
    no_shows = ma.fields.Integer(required=True)
    cancellations = ma.fields.Integer(required=True)


class MetricsOut(ma.Schema):
    scope = ma.fields.String(required=True)
    id = ma.fields.Integer(required=True, allow_none=True)
    period = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(MetricsPeriodOut), required=True)


def _hours(seconds: int) -> float:
    return round(seconds / 3600, 2)


def _period_out(row: PeriodFigures) -> dict:
    return {"start": row.start, "available_hours": _hours(row.available_seconds),
            "booked_hours": _hours(row.booked_seconds), "effective_hours": _hours(row.effective_seconds),
            "external_hours": _hours(row.external_seconds),
            "utilization": None if row.utilization is None else round(row.utilization, 4),
            "sharing_rate": None if row.sharing_rate is None else round(row.sharing_rate, 4),
            **{name: getattr(row, name) for name in (
                "revenue_enterprise_fen", "revenue_voucher_fen", "users_served", "enterprises_served", "bookings",
                "no_shows", "cancellations")}}


@bp.route("/metrics", methods=["GET"])
@requires(Role.BUREAU_ADMIN, Role.AUDITOR, Role.PLATFORM_ADMIN)
@bp.arguments(MetricsQuery, location="query", as_kwargs=True)
@bp.response(200, MetricsOut)
@bp.alt_response(403, schema=ErrorBody, description="Another platform's figures")
@bp.alt_response(404, schema=ErrorBody, description="No such platform or instrument")
@bp.doc(security=[{"bearer": []}])
def get_metrics(*, scope: str, id: int | None, period: str, start: date, end: date):
    """The usage figures per period: hours as decimals, money in fen. The bureau and the auditor read any
    scope; a platform admin their own platform and its instruments."""
    conditions = metrics.scope_filter(scope, id)
    _check_reader(scope, id)
    rows = metrics.figures(db.session, conditions, period, start, end)
    return {"scope": scope, "id": id, "period": period, "items": [_period_out(row) for row in rows]}


def _check_reader(scope: str, scope_id: int | None) -> None:
    user = current_principal()
    if scope == "platform":
        platform_id = scope_id if db.session.get(Platform, scope_id) else None
    elif scope == "instrument":
        platform_id = db.session.scalar(select(Instrument.platform_id).where(Instrument.id == scope_id))
    else:
        platform_id = None
    if scope != "district" and platform_id is None:
        raise NotFound("not_found", _("There is no such platform or instrument."))
    if user.has_role(Role.BUREAU_ADMIN, Role.AUDITOR):
        return
    if platform_id is None or platform_id not in user.organisation_ids(Role.PLATFORM_ADMIN):
        raise Forbidden("forbidden", _("You may see the figures of your own platform only."))


# --- alerts ---------------------------------------------------------------------------------------

class AlertQuery(ma.Schema):
    state = ma.fields.Enum(AlertState, by_value=True, load_default=None,
                           metadata={"description": "open, acknowledged or resolved; all when absent"})
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    per_page = ma.fields.Integer(load_default=MAX_PER_PAGE, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))


class AlertOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    rule = ma.fields.Enum(AlertKind, by_value=True, required=True, attribute="kind",
                          metadata={"description": "The rule that found it"})
    subject_type = ma.fields.String(required=True, metadata={"description": "instruments, bookings, usage_sessions, "
                                                                           "users, programmes, enterprises, claim_lines"})
    subject_id = ma.fields.Integer(required=True)
    subject_key = ma.fields.String(required=True, metadata={"description": "Tells apart findings of one subject"})
    platform_id = ma.fields.Integer(required=True, allow_none=True,
                                    metadata={"description": "The platform it concerns; none: the district"})
    state = ma.fields.Enum(AlertState, by_value=True, required=True)
    reason = ma.fields.Function(lambda alert: alerts.describe(alert.kind, alert.figures), required=True,
                                metadata={"type": "string",
                                          "description": "Why, with the figures, in the caller's language"})
    figures = ma.fields.Dict(required=True, metadata={"description": "What the rule found, by name"})
    opened = LocalTime(required=True, attribute="opened_at")
    acknowledged = LocalTime(required=True, allow_none=True, attribute="acknowledged_at")
    resolved = LocalTime(required=True, allow_none=True, attribute="resolved_at")
    resolution_note = ma.fields.String(required=True)


class AlertPageOut(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AlertOut), required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    has_more = ma.fields.Boolean(required=True, metadata={"description": "Another page follows"})


@bp.route("/alerts", methods=["GET"])
@requires(Role.BUREAU_ADMIN, Role.AUDITOR, Role.PLATFORM_ADMIN)
@bp.arguments(AlertQuery, location="query", as_kwargs=True)
@bp.response(200, AlertPageOut)
@bp.alt_response(403, schema=ErrorBody, description="Neither the bureau, the auditor nor a platform admin")
@bp.doc(security=[{"bearer": []}])
def list_alerts(*, state: AlertState | None, page: int, per_page: int):
    """The caller's alerts, unresolved first, newest first: the bureau and the auditor see all, a platform
    admin their platforms'."""
    statement = alerts.alerts_for(current_principal(), state=state).offset((page - 1) * per_page).limit(per_page + 1)
    found = list(db.session.scalars(statement))
    return {"items": found[:per_page], "page": page, "per_page": per_page, "has_more": len(found) > per_page}


def register(app: Flask) -> None:
    from core.extensions import api, csrf

    csrf.exempt(bp)  # a device token, no cookies: nothing for CSRF to protect
    api.register_blueprint(bp)
