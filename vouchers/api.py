"""Voucher API under /api/v1: the caller's vouchers (everyone's for the bureau, the finance
officer and the auditor), one voucher with its ledger, applying for a voucher and withdrawing the
application. Money in fen, times in Asia/Shanghai with their offset. Attachments are added on the application's page."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import Flask
from flask_babel import gettext as _
from flask_smorest import Blueprint

from core.api import page_of, text
from core.auth import current_actor, current_principal, requires
from core.clock import to_local
from core.db import unit_of_work, utcnow
from core.errors import Forbidden
from core.extensions import ErrorBody, db
from core.inputs import MAX_ID, MAX_PAGE
from core.models import Role
from core.money import MAX_FEN
from vouchers import listing, services
from vouchers.models import ApplicationState, EntryKind, RedemptionMode, Voucher, VoucherState

bp = Blueprint("vouchers_api", __name__, url_prefix="/api/v1", description="Innovation vouchers")

MAX_PER_PAGE = 100
SECURITY = [{"bearer": []}]


class LocalTime(ma.fields.AwareDateTime):
    """An instant written in Asia/Shanghai time with its offset: "2026-12-07T09:00:00+08:00"."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return super()._serialize(None if value is None else to_local(value), attr, obj, **kwargs)


def _id(*, strict: bool = True, **kwargs: Any) -> ma.fields.Integer:
    """An id: a JSON number in a body (strict), digits in a query string."""
    return ma.fields.Integer(strict=strict, validate=ma.validate.Range(min=1, max=MAX_ID), **kwargs)


class VoucherQuery(ma.Schema):
    programme_id = _id(strict=False, load_default=None)
    enterprise_id = _id(strict=False, load_default=None)
    state = ma.fields.Enum(VoucherState, by_value=True, load_default=None)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))


class ProgrammeRefOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    year = ma.fields.Integer(required=True)
    redemption_mode = ma.fields.Enum(RedemptionMode, by_value=True, required=True, metadata={
        "description": "provider: the enterprise pays its share and the platform claims the voucher part; "
                       "enterprise: the enterprise pays in full and claims the voucher part back"})


class VoucherOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    serial = ma.fields.String(required=True, metadata={"description": "e.g. KQ2026-000123"})
    programme = ma.fields.Nested(ProgrammeRefOut, required=True)
    enterprise_id = ma.fields.Integer(required=True)
    enterprise_name = ma.fields.String(required=True)
    application_id = ma.fields.Integer(required=True)
    state = ma.fields.Enum(VoucherState, by_value=True, required=True)
    amount_fen = ma.fields.Integer(required=True, metadata={"description": "Issued"})
    balance_fen = ma.fields.Integer(required=True, metadata={"description": "Still to spend"})
    held_fen = ma.fields.Integer(required=True, metadata={"description": "Set aside for bookings not completed"})
    consumed_fen = ma.fields.Integer(required=True, metadata={"description": "Spent on completed bookings"})
    redeemed_fen = ma.fields.Integer(required=True, metadata={"description": "Of the consumed, paid out by claims"})
    issued_at = LocalTime(required=True)
    expires_at = LocalTime(required=True)
    void_reason = ma.fields.String(required=True, allow_none=True)

    @ma.pre_dump
    def to_record(self, voucher: Voucher | dict, **_kwargs: Any) -> dict:
        return voucher if isinstance(voucher, dict) else voucher_record(voucher)


VOUCHER_FIELDS = ("id", "serial", "programme", "enterprise_id", "application_id", "state", "amount_fen", "balance_fen",
                  "held_fen", "consumed_fen", "redeemed_fen", "issued_at", "expires_at", "void_reason")


def voucher_record(voucher: Voucher, **more: Any) -> dict[str, Any]:
    return {**{name: getattr(voucher, name) for name in VOUCHER_FIELDS}, "enterprise_name": voucher.enterprise.name,
            **more}


class LedgerEntryOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.Enum(EntryKind, by_value=True, required=True)
    amount_fen = ma.fields.Integer(required=True)
    booking_id = ma.fields.Integer(required=True, allow_none=True)
    claim_id = ma.fields.Integer(required=True, allow_none=True)
    platform_id = ma.fields.Integer(required=True, allow_none=True, metadata={"description": "Who served"})
    actor = ma.fields.String(required=True, attribute="actor_label")
    at = LocalTime(required=True)


class VoucherDetailOut(VoucherOut):
    ledger = ma.fields.List(ma.fields.Nested(LedgerEntryOut), required=True, metadata={
        "description": "Every entry, oldest first: issue, hold, release, consume, expire, redeem, void"})


VoucherPageOut = page_of(VoucherOut)


@bp.route("/vouchers", methods=["GET"])
@requires()
@bp.arguments(VoucherQuery, location="query", as_kwargs=True)
@bp.response(200, VoucherPageOut)
@bp.doc(security=SECURITY)
def list_vouchers(*, programme_id: int | None, enterprise_id: int | None, state: VoucherState | None, page: int,
                  per_page: int):
    """The caller's enterprises' vouchers; the bureau, the finance officer and the auditor: every voucher.
    Newest first."""
    found = db.paginate(listing.vouchers_query(current_principal(), programme_id=programme_id,
                                               enterprise_id=enterprise_id, state=state),
                        page=page, per_page=per_page, error_out=False)
    return {"items": found.items, "total": found.total, "page": page, "per_page": per_page}


@bp.route("/vouchers/<id:voucher_id>", methods=["GET"])
@requires()
@bp.response(200, VoucherDetailOut)
@bp.alt_response(404, schema=ErrorBody, description="No such voucher, or not one the caller may see")
@bp.doc(security=SECURITY)
def get_voucher(voucher_id: int):
    """One voucher with its ledger."""
    voucher = services.get_voucher(db.session, voucher_id, current_principal())
    return voucher_record(voucher, ledger=listing.ledger(db.session, voucher))


class ApplicationIn(ma.Schema):
    programme_id = _id(required=True)
    enterprise_id = _id(load_default=None, metadata={
        "description": "The enterprise applying; omitted: the caller's (their first verified one)"})
    requested_fen = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_FEN),
                                      metadata={"description": "The amount asked, in fen"})
    purpose = text(required=True, min_length=1, max_length=2000)
    planned_instruments = text(max_length=2000, load_default="",
                               metadata={"description": "The instruments or kinds of test planned"})


class ApplicationOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    programme_id = ma.fields.Integer(required=True)
    enterprise_id = ma.fields.Integer(required=True)
    state = ma.fields.Enum(ApplicationState, by_value=True, required=True)
    requested_fen = ma.fields.Integer(required=True)
    approved_fen = ma.fields.Integer(required=True, allow_none=True)
    purpose = ma.fields.String(required=True)
    planned_instruments = ma.fields.String(required=True)
    decision_note = ma.fields.String(required=True, allow_none=True)
    created_at = LocalTime(required=True)


@bp.route("/voucher-applications", methods=["POST"])
@requires(Role.ENTERPRISE_MEMBER)
@bp.arguments(ApplicationIn)
@bp.response(201, ApplicationOut)
@bp.alt_response(403, schema=ErrorBody, description="forbidden: the caller is not a member of the enterprise")
@bp.alt_response(404, schema=ErrorBody, description="not_found: no such programme")
@bp.alt_response(422, schema=ErrorBody, description=(
    "programme_closed: the application window is not open; enterprise_not_verified: the enterprise's credit code "
    "is not valid or not verified; enterprise_cap_exceeded: the amount is more than the enterprise (with its "
    "controller group) may still be issued this programme year, the message says how much; application_pending: the enterprise already has an application in review in "
    "this programme; validation_error, invalid: a field is not valid"))
@bp.doc(security=SECURITY)
def create_application(data: dict):
    """Apply for a voucher of a programme open for applications, for one of the caller's enterprises."""
    user = current_principal()
    enterprise_id = data["enterprise_id"] or listing.default_enterprise_id(db.session, user)
    if enterprise_id is None:
        raise Forbidden("forbidden", _("You are not a member of this enterprise."))
    with unit_of_work() as session:
        application = services.apply_for_voucher(
            session, actor=current_actor(), user=user, programme_id=data["programme_id"], enterprise_id=enterprise_id,
            requested_fen=data["requested_fen"], purpose=data["purpose"],
            planned_instruments=data["planned_instruments"], now=utcnow())
    return application


@bp.route("/voucher-applications/<id:application_id>/withdraw", methods=["POST"])
@requires(Role.ENTERPRISE_MEMBER)
@bp.response(200, ApplicationOut)
@bp.alt_response(403, schema=ErrorBody, description="forbidden: the caller is not a member of the applicant enterprise")
@bp.alt_response(404, schema=ErrorBody, description="not_found: no such application, or not the caller's enterprise's")
@bp.alt_response(409, schema=ErrorBody, description=(
    "already_approved, already_rejected, already_withdrawn: the application no longer waits (the code names its "
    "state now); a decision taken meanwhile wins"))
@bp.doc(security=SECURITY)
def withdraw_application(application_id: int):
    """Withdraw one of the caller's enterprise's applications while it waits for the bureau."""
    user = current_principal()
    application = listing.get_application(db.session, application_id, user)
    with unit_of_work() as session:
        services.withdraw_application(session, application, actor=current_actor(), user=user)
    return application


def register(app: Flask) -> None:
    from core.extensions import api, csrf

    csrf.exempt(bp)  # bearer tokens, no cookies: nothing for CSRF to protect
    api.register_blueprint(bp)
