"""Claim API under /api/v1: GET /api/v1/voucher-claims, the caller's platforms' or
enterprises' claims; the bureau, the finance officer and the auditor: every claim. GET
/api/v1/voucher-claims/{id}: one claim with its history. Money in fen, times in
Asia/Shanghai with their offset."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask
from flask_smorest import Blueprint

from core.api import page_of
from core.auth import current_principal, requires
from core.extensions import ErrorBody, db
from core.inputs import MAX_ID, MAX_PAGE
from vouchers.api import LocalTime
from vouchers.claims import services as claims
from vouchers.models import Claim, ClaimKind, ClaimState

bp = Blueprint("voucher_claims_api", __name__, url_prefix="/api/v1", description="Innovation voucher claims")

MAX_PER_PAGE = 100
SECURITY = [{"bearer": []}]


class ClaimQuery(ma.Schema):
    state = ma.fields.Enum(ClaimState, by_value=True, load_default=None)
    platform_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_ID), load_default=None)
    kind = ma.fields.Enum(ClaimKind, by_value=True, load_default=None)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))


class ClaimLineOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    booking_id = ma.fields.Integer(required=True)
    voucher_id = ma.fields.Integer(required=True)
    voucher_serial = ma.fields.String(required=True)
    amount_fen = ma.fields.Integer(required=True)
    served_on = ma.fields.Date(required=True, metadata={"description": "The date of the service (its completion)"})
    returned_reason = ma.fields.String(required=True, allow_none=True)


class ClaimOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.Enum(ClaimKind, by_value=True, required=True, metadata={
        "description": "provider: a platform claims the voucher parts of bookings it served; enterprise: an "
                       "enterprise claims back the voucher parts of bookings it paid in full"})
    platform_id = ma.fields.Integer(required=True, allow_none=True)
    enterprise_id = ma.fields.Integer(required=True, allow_none=True)
    period_start = ma.fields.Date(required=True)
    period_end = ma.fields.Date(required=True)
    state = ma.fields.Enum(ClaimState, by_value=True, required=True)
    total_fen = ma.fields.Integer(required=True)
    bank_account_name = ma.fields.String(required=True)
    bank_name = ma.fields.String(required=True)
    bank_account_number = ma.fields.String(required=True)
    signed_by_id = ma.fields.Integer(required=True)
    signed_at = LocalTime(required=True)
    review_note = ma.fields.String(required=True, allow_none=True)
    reviewed_at = LocalTime(required=True, allow_none=True)
    paid_on = ma.fields.Date(required=True, allow_none=True)
    payment_reference = ma.fields.String(required=True, allow_none=True)
    created_at = LocalTime(required=True)
    lines = ma.fields.List(ma.fields.Nested(ClaimLineOut), required=True)

    @ma.pre_dump
    def to_record(self, claim: Claim, **_kwargs: Any) -> dict:
        return {**{name: getattr(claim, name) for name in self.fields if name not in ("lines", "history")},
                "lines": [{"id": line.id, "booking_id": line.booking_id, "voucher_id": line.voucher_id,
                           "voucher_serial": line.voucher.serial, "amount_fen": line.amount_fen,
                           "served_on": line.served_on, "returned_reason": line.returned_reason}
                          for line in claim.lines]}


ClaimPageOut = page_of(ClaimOut)


class StepLineOut(ma.Schema):
    booking_id = ma.fields.Integer(required=True)
    reason = ma.fields.String(required=True)


class ClaimStepOut(ma.Schema):
    step = ma.fields.String(required=True, validate=ma.validate.OneOf(list(claims.STEP_LABELS)), metadata={
        "description": "submitted (filed), returned, resubmitted, approved or paid"})
    at = LocalTime(required=True)
    actor_id = ma.fields.Integer(required=True, allow_none=True)
    actor_name = ma.fields.String(required=True, metadata={"description": "Who took the step"})
    note = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "The bureau's note on a return or an approval; the payment's reference"})
    total_fen = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "The claim's total after the step, where the step changed or confirmed it"})
    lines = ma.fields.List(ma.fields.Nested(StepLineOut), required=True, metadata={
        "description": "The lines a return sent back, or a resubmission dropped, with the bureau's reasons"})


class ClaimDetailOut(ClaimOut):
    history = ma.fields.List(ma.fields.Nested(ClaimStepOut), required=True, metadata={
        "description": "Every step of the claim in order, kept across any number of return and resubmit rounds"})

    @ma.pre_dump
    def to_record(self, found: dict, **_kwargs: Any) -> dict:
        """`found`: {"claim": the claim, "history": its steps}."""
        return super().to_record(found["claim"]) | {"history": found["history"]}


@bp.route("/voucher-claims", methods=["GET"])
@requires()
@bp.arguments(ClaimQuery, location="query", as_kwargs=True)
@bp.response(200, ClaimPageOut)
@bp.doc(security=SECURITY)
def list_claims(*, state: ClaimState | None, platform_id: int | None, kind: ClaimKind | None, page: int,
                per_page: int):
    """Redemption claims with their lines, newest first: the caller's platforms' claims (platform admins)
    and enterprises' claims (enterprise members); the bureau, the finance officer and the auditor: every
    claim. Filters: state, platform_id, kind."""
    found = db.paginate(claims.claims_query(current_principal(), state=state, platform_id=platform_id, kind=kind),
                        page=page, per_page=per_page, error_out=False)
    return {"items": found.items, "total": found.total, "page": page, "per_page": per_page}


@bp.route("/voucher-claims/<id:claim_id>", methods=["GET"])
@requires()
@bp.response(200, ClaimDetailOut)
@bp.alt_response(404, schema=ErrorBody, description="No such claim, or not one the caller may see")
@bp.doc(security=SECURITY)
def get_claim(claim_id: int):
    """One redemption claim with its lines and its history."""
    claim = claims.get_claim(db.session, claim_id, current_principal())
    return {"claim": claim, "history": claims.claim_history(db.session, claim)}


def register(app: Flask) -> None:
    from core.extensions import api, csrf

    csrf.exempt(bp)  # bearer tokens, no cookies: nothing for CSRF to protect
    api.register_blueprint(bp)
