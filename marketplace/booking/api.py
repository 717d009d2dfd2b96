"""Marketplace API: an instrument's free and busy time, and bookings. Times go in as
ISO 8601 with an offset (a naive time is refused) and come out in Asia/Shanghai (+08:00)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import marshmallow as ma
from flask import jsonify
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.api import text
from core.auth import current_actor, current_principal, public, requires
from core.clock import to_local
from core.db import unit_of_work, utcnow
from core.errors import NotFound
from core.extensions import ErrorBody, db
from core.inputs import MAX_ID, MAX_PAGE
from marketplace.blueprints import api_bp as bp
from marketplace.booking import services as bookings
from marketplace.booking.availability import MAX_RANGE, Period, catalogue_rules, compute_availability
from marketplace.booking.models import Booking, BookingState
from marketplace.payments.models import PaymentMethod, PaymentState
from marketplace.registry.models import UserType

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
MAX_PER_PAGE = 100
BOOKING_ID = "<id:booking_id>"


# --- times ----------------------------------------------------------------------------------------

class Instant(ma.fields.AwareDateTime):
    """An instant given with its offset ("2026-12-07T09:00:00+08:00"); a naive time is refused. Loads
    as aware UTC, within the years 2000 to 2099 (beyond them the calendar arithmetic would overflow)."""

    default_error_messages = {"out_of_range": _l("Give a time between the years 2000 and 2099.")}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        instant = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST <= instant < LATEST:
            raise self.make_error("out_of_range")
        return instant.astimezone(timezone.utc)


class LocalTime(ma.fields.AwareDateTime):
    """An instant written in Asia/Shanghai time with its offset: "2026-12-07T09:00:00+08:00"."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return super()._serialize(None if value is None else to_local(value), attr, obj, **kwargs)


def instant(description: str, **kwargs: Any) -> Instant:
    return Instant(metadata={"description": f"{description}; ISO 8601 with offset, e.g. 2026-12-07T09:00:00+08:00"},
                   **kwargs)


def check_range(start: datetime | None, end: datetime | None, *, end_field: str = "end") -> None:
    """A time range of a query: the end after the start, at most MAX_RANGE long (422 on the end field)."""
    if start is None or end is None:
        return
    if end <= start:
        raise ma.ValidationError(_("The end must be after the start."), end_field)
    if end - start > MAX_RANGE:
        raise ma.ValidationError(_("A range spans at most %(n)s days.", n=MAX_RANGE.days), end_field)


class PeriodOut(ma.Schema):
    start = LocalTime(required=True)
    end = LocalTime(required=True)


# --- availability ---------------------------------------------------------------------------------

class AvailabilityQuery(ma.Schema):
    start = instant("From", required=True)
    end = instant(f"Until (exclusive); at most {MAX_RANGE.days} days after start", required=True)

    @ma.validates_schema
    def range_is_valid(self, data: dict, **_kwargs: Any) -> None:
        check_range(data.get("start"), data.get("end"))


class AvailabilityOut(ma.Schema):
    free = ma.fields.List(ma.fields.Nested(PeriodOut), required=True, metadata={
        "description": "Open time no booking, buffer or maintenance takes"})
    busy = ma.fields.List(ma.fields.Nested(PeriodOut), required=True, metadata={
        "description": "Bookings with their buffers, and maintenance, merged; without personal data"})


@bp.route("/instruments/<id:instrument_id>/availability", methods=["GET"])
@public
@bp.arguments(AvailabilityQuery, location="query", as_kwargs=True)
@bp.response(200, AvailabilityOut)
@bp.alt_response(404, schema=ErrorBody, description="No such instrument in the catalogue")
def instrument_availability(instrument_id: int, *, start: datetime, end: datetime):
    """Free and busy time of a catalogue instrument in [start, end): open hours (Asia/Shanghai), closed on
    Chinese public holidays and open on make-up working days, less bookings, buffers and maintenance.
    In the query string the offset's + is written %2B (a bare + reads as a space)."""
    rules = catalogue_rules(db.session, instrument_id)
    if rules is None:
        raise NotFound("not_found", _("There is no such instrument."))
    found = compute_availability(db.session, instrument_id, start, end, rules=rules)
    # written here as AvailabilityOut documents it: a busy week has hundreds of periods, and a schema's
    # dump walks each one's fields
    return jsonify(free=_periods_out(found.free), busy=_periods_out(found.busy))


def _periods_out(periods: list[Period]) -> list[dict[str, str]]:
    """Periods as PeriodOut writes them: ISO 8601 in Asia/Shanghai, with the offset."""
    return [{"start": to_local(lower).isoformat(), "end": to_local(upper).isoformat()} for lower, upper in periods]


# --- bookings -------------------------------------------------------------------------------------

class RecurrenceIn(ma.Schema):
    weeks = ma.fields.Integer(required=True, strict=True,
                              validate=ma.validate.Range(min=2, max=bookings.MAX_SERIES_WEEKS), metadata={
                                  "description": "Occurrences, one a week at the same time, the first included"})


class BookingIn(ma.Schema):
    class Meta:
        description = ("A booking of one slot, or of the same slot every week (recurrence). Sending it accepts the "
                       "platform's service terms: the version terms_id names, which must be the current one "
                       "(else 422 terms_changed); without terms_id, the caller accepts the current terms, "
                       "whichever version they are.")

    instrument_id = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID))
    start = instant("Start", required=True)
    end = instant("End (exclusive)", required=True)
    recurrence = ma.fields.Nested(RecurrenceIn, load_default=None, metadata={
        "description": "Book every week: each free occurrence is booked, the others are listed as skipped"})
    purpose = text(max_length=500, load_default="", metadata={"description": "What the instrument is used for"})
    terms_id = ma.fields.Integer(load_default=None, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID),
                                 metadata={"description": "The id of the service terms the caller accepted; "
                                                          "omitted: the caller accepts the current terms"})
    voucher_id = ma.fields.Integer(load_default=None, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID),
                                   metadata={"description": "One of the caller's enterprise's innovation vouchers: "
                                                            "its part of the price is held from now (single bookings "
                                                            "only, not with recurrence)"})


class BookingOut(ma.Schema):
    """A booking; money in fen, times in Asia/Shanghai."""

    id = ma.fields.Integer(required=True)
    instrument_id = ma.fields.Integer(required=True)
    instrument_name = ma.fields.String(required=True)
    booker_id = ma.fields.Integer(required=True)
    series_id = ma.fields.Integer(required=True, allow_none=True)
    state = ma.fields.Enum(BookingState, by_value=True, required=True)
    start = LocalTime(required=True)
    end = LocalTime(required=True)
    block_end = LocalTime(required=True, metadata={"description": "The end with the instrument's buffer after it"})
    purpose = ma.fields.String(required=True)
    user_type = ma.fields.Enum(UserType, by_value=True, required=True,
                               metadata={"description": "Whose rate applies"})
    needs_operator = ma.fields.Boolean(required=True, metadata={"description": "An operator must be present"})
    setup_fee_fen = ma.fields.Integer(required=True)
    hourly_rate_fen = ma.fields.Integer(required=True)
    price_fen = ma.fields.Integer(required=True, metadata={"description": "Setup fee + rate × booked hours"})
    voucher_fen = ma.fields.Integer(required=True, metadata={"description": "The innovation voucher's part"})
    payable_fen = ma.fields.Integer(required=True, metadata={"description": "The enterprise's share"})
    payment_method = ma.fields.Enum(PaymentMethod, by_value=True, required=True)
    payment_state = ma.fields.Enum(PaymentState, by_value=True, required=True)
    cancellation_fee_fen = ma.fields.Integer(required=True, metadata={
        "description": "Late-cancellation or no-show fee charged"})
    final_price_fen = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "On the actual time, once completed"})
    free_cancel_until = LocalTime(required=True, metadata={
        "description": "Cancelling is free before this instant (fixed when the booking was made)"})
    late_cancel_fee_fen = ma.fields.Integer(required=True, metadata={
        "description": "What cancelling a confirmed booking costs from free_cancel_until on"})
    no_show_fee_fen = ma.fields.Integer(required=True, metadata={"description": "What a no-show costs"})
    terms_id = ma.fields.Integer(required=True)
    terms_version = ma.fields.Integer(required=True, metadata={"description": "The service terms accepted"})
    decision_note = ma.fields.String(required=True, allow_none=True, metadata={"description": "Why it was rejected"})
    created_at = LocalTime(required=True)

    @ma.pre_dump
    def to_record(self, booking: Booking | dict, **_kwargs: Any) -> dict:
        return booking if isinstance(booking, dict) else booking_record(booking)


def booking_record(booking: Booking) -> dict[str, Any]:
    """What BookingOut shows, read while the booking's transaction is open (so nothing reloads after it)."""
    return {**{name: getattr(booking, name) for name in (
        "id", "instrument_id", "booker_id", "series_id", "state", "purpose", "user_type", "needs_operator",
        "setup_fee_fen", "hourly_rate_fen", "price_fen", "voucher_fen", "payable_fen", "payment_method",
        "payment_state", "cancellation_fee_fen", "final_price_fen", "terms_id", "decision_note", "created_at",
        "free_cancel_until", "late_cancel_fee_fen", "no_show_fee_fen")},
        "instrument_name": booking.instrument.name_zh, "start": booking.start_at, "end": booking.end_at,
        "block_end": booking.block_end_at, "terms_version": booking.terms.version}


class SkippedOut(ma.Schema):
    start = LocalTime(required=True)
    code = ma.fields.String(required=True, metadata={"description": "The rule's code, or booking_conflict"})
    message = ma.fields.String(required=True)


class SeriesOut(ma.Schema):
    series_id = ma.fields.Integer(required=True)
    booked = ma.fields.List(ma.fields.Nested(BookingOut), required=True)
    skipped = ma.fields.List(ma.fields.Nested(SkippedOut), required=True)


CREATED = {"description": "The booking; with recurrence, the series: its bookings and the weeks skipped",
           "content": {"application/json": {"schema": {"oneOf": [BookingOut, SeriesOut]}}}}


@bp.route("/bookings", methods=["POST"])
@requires()
@bp.arguments(BookingIn)
@bp.response(201)
@bp.doc(security=[{"bearer": []}], responses={201: CREATED})
@bp.alt_response(404, schema=ErrorBody, description="No such instrument")
@bp.alt_response(409, schema=ErrorBody, description="booking_conflict: the time is taken")
@bp.alt_response(422, schema=ErrorBody, description=(
    "A field is not valid (validation_error), or a rule refuses the booking and its code names it: "
    "outside_open_hours, too_short, too_long, lead_time, beyond_horizon, holiday, maintenance, not_qualified, "
    "instrument_unavailable, enterprise_not_verified, slot_granularity, invalid_range, terms_changed; "
    "with voucher_id: voucher_expired (expired or void), voucher_not_eligible (another enterprise's, or an "
    "instrument or platform the programme does not cover), voucher_insufficient (nothing left to pay here), "
    "related_party (the enterprise and the platform are related), voucher_single_booking (with recurrence)"))
def create_booking(data: dict):
    """Book an instrument for the caller (for their verified enterprise, or as the platform's staff).
    Without approval and with nothing to pay, the booking is confirmed at once; else it waits for the
    platform's approval and the payment. With recurrence, every free week is booked and the others listed."""
    user, actor = current_principal(), current_actor()
    common = {"actor": actor, "user": user, "instrument_id": data["instrument_id"], "start_at": data["start"],
              "end_at": data["end"], "now": utcnow(), "terms_id": data["terms_id"], "purpose": data["purpose"],
              "voucher_id": data["voucher_id"]}
    with unit_of_work() as session:
        if data["recurrence"] is None:
            answer = BookingOut().dump(bookings.book_instrument(session, **common))
        else:
            series, booked, skipped = bookings.book_series(session, weeks=data["recurrence"]["weeks"], **common)
            answer = SeriesOut().dump({
                "series_id": series.id, "booked": [booking_record(b) for b in booked],
                "skipped": [{"start": when, "code": refusal.code, "message": refusal.message}
                            for when, refusal in skipped]})
    return answer, 201


class BookingQuery(ma.Schema):
    when = ma.fields.String(load_default="upcoming", validate=ma.validate.OneOf(bookings.BOOKING_LIST_WHEN),
                            metadata={"description": "upcoming: not ended yet, soonest first; past: ended, "
                                                     "latest first; all: both, latest start first"})
    state = ma.fields.Enum(BookingState, by_value=True, load_default=None)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))


class BookingPageOut(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(BookingOut), required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    has_more = ma.fields.Boolean(required=True, metadata={"description": "Another page follows"})


@bp.route("/bookings", methods=["GET"])
@requires()
@bp.arguments(BookingQuery, location="query", as_kwargs=True)
@bp.response(200, BookingPageOut)
@bp.doc(security=[{"bearer": []}])
def list_bookings(*, when: str, state: BookingState | None, page: int, per_page: int):
    """The caller's own bookings."""
    skip = (page - 1) * per_page
    found = bookings.list_user_bookings(db.session, current_principal(), now=utcnow(), when=when, state=state,
                                        limit=skip + per_page + 1)[skip:]
    return {"items": found[:per_page], "page": page, "per_page": per_page, "has_more": len(found) > per_page}


@bp.route(f"/bookings/{BOOKING_ID}", methods=["GET"])
@requires()
@bp.response(200, BookingOut)
@bp.alt_response(404, schema=ErrorBody, description="No such booking, or not one the caller may see")
@bp.doc(security=[{"bearer": []}])
def get_booking(booking_id: int):
    """One booking: for its booker, the owning platform's staff and the bureau."""
    return bookings.get_booking(db.session, booking_id, current_principal())


class CancelIn(ma.Schema):
    reason = text(max_length=500, load_default="")


class CancelOut(ma.Schema):
    booking = ma.fields.Nested(BookingOut, required=True)
    fee_fen = ma.fields.Integer(required=True, metadata={
        "description": "The late-cancellation fee charged by the cancellation policy"})


@bp.route(f"/bookings/{BOOKING_ID}/cancel", methods=["POST"])
@requires()
@bp.arguments(CancelIn)
@bp.response(200, CancelOut)
@bp.alt_response(403, schema=ErrorBody, description="Only the booker and the platform's admins cancel")
@bp.alt_response(404, schema=ErrorBody, description="No such booking, or not one the caller may see")
@bp.alt_response(409, schema=ErrorBody,
                 description="booking_state_changed: the booking cannot be cancelled any more (cancelled, "
                             "completed, or changed by someone else meanwhile)")
@bp.doc(security=[{"bearer": []}])
def cancel_booking(data: dict, booking_id: int):
    """Cancel a booking, by the booker or the platform, under the instrument's cancellation policy."""
    user = current_principal()
    with bookings.booking_change(actor=current_actor(), now=utcnow()) as session:
        booking = bookings.get_booking(session, booking_id, user)
        fee = bookings.cancel_booking(session, booking, actor=current_actor(), user=user, now=utcnow(),
                                      reason=data["reason"])
    return {"booking": booking_record(booking), "fee_fen": fee}
