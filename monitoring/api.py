"""Monitoring API under /api/v1: a device reports the use of its instrument; people read their alerts."""
from __future__ import annotations

from datetime import datetime

import marshmallow as ma
from flask import Flask, request
from flask_smorest import Blueprint

from core.auth import current_principal, public, requires
from core.db import unit_of_work, utcnow
from core.extensions import ErrorBody, db
from core.inputs import MAX_PAGE
from core.models import Role
from marketplace.booking.api import MAX_PER_PAGE, LocalTime, instant
from monitoring import alerts, telemetry
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
    with unit_of_work() as session:
        token = telemetry.authenticate(session, instrument_id, _device_secret())
        reported = telemetry.record_event(session, token, kind=event, at=at, now=now)
        return {"event": reported.event.kind.value, "at": reported.event.at, "duplicate": reported.duplicate,
                "session": reported.usage}


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
