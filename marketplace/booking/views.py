"""Marketplace pages for people who book: an instrument's week (or day) calendar with the booking form,
their own bookings, and one booking's page with what they may do with it. The rules are in
marketplace/booking/services.py and marketplace/booking/availability.py; these views load, call and render."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from core.auth import AccessRule, current_actor, current_principal, requires
from core.clock import from_local, to_local
from core.db import unit_of_work, utcnow
from core.errors import Conflict, RuleBroken
from core.extensions import db
from core.forms import show_rule_error
from core.models import User
from core.money import format_yuan
from core.templating import NavItem
from marketplace.blueprints import bp
from marketplace.booking import availability
from marketplace.booking import services as bookings
from marketplace.booking.forms import BookingForm, CancelBookingForm
from marketplace.booking.models import BOOKING_STATE_LABELS, BookingState
from marketplace.booking.week import DAY_KIND_LABELS, FIRST_DAY, LAST_DAY, calendar_days, monday_of, slot_reason_texts
from marketplace.payments import services as payments
from marketplace.payments.models import PAYMENT_METHOD_LABELS, PAYMENT_STATE_LABELS
from marketplace.registry import services
from marketplace.registry.models import Instrument, UserType
from vouchers import services as vouchers

NAV = [NavItem("marketplace.my_bookings", _l("My bookings"), AccessRule(frozenset()))]


def _day_arg(name: str) -> date | None:
    try:
        day = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


# --- price --------------------------------------------------------------------------------------

def price_text(quote: bookings.Quote) -> str:
    """"¥120.00 + ¥200.00 × 2.5 hours = ¥620.00": the booker's setup fee and hourly rate (quote_price)."""
    hours = (Decimal(quote.minutes) / 60).quantize(Decimal("0.01")).normalize()
    return _("%(setup)s + %(rate)s × %(hours)s hours = %(total)s", setup=format_yuan(quote.setup_fee_fen),
             rate=format_yuan(quote.hourly_rate_fen), hours=f"{hours:f}", total=format_yuan(quote.price_fen))


@dataclass(frozen=True, slots=True)
class Selection:
    """The slot range the booker chose, with its price and whether someone holds (part of) it."""

    start: datetime  # aware UTC
    end: datetime
    quote: bookings.Quote | None
    text: str
    busy: bool


def _selection(instrument: Instrument, user_type: UserType | None, start: datetime | None,
               end: datetime | None) -> Selection | None:
    if start is None or end is None or end <= start:
        return None
    quote = bookings.quote_price(instrument, user_type, start, end) if user_type is not None else None
    busy = availability.is_taken(db.session, instrument.id, start, end)
    return Selection(start, end, quote, price_text(quote) if quote else "", busy)


def _aware_arg(name: str) -> datetime | None:
    """?start=2026-12-07T09:00:00+08:00 (a slot's link) or a datetime-local value → aware UTC."""
    try:
        value = datetime.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    return from_local(value) if FIRST_DAY <= value.date() <= LAST_DAY else None


def _waitlist_url(instrument_id: int) -> str | None:
    """The waitlist's join route, once it exists (marketplace/booking/waitlist_views.py)."""
    if "marketplace.join_waitlist" not in current_app.view_functions:
        return None
    return url_for("marketplace.join_waitlist", instrument_id=instrument_id)


# --- the booking page ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Booker:
    """Who is booking and at which rate; `refusal` says why they cannot book this instrument."""

    user_type: UserType | None
    refusal: str | None
    enterprise_id: int | None = None  # the enterprise booked for, whose vouchers may pay


def _booker(user: User, instrument: Instrument) -> Booker:
    try:
        user_type, enterprise = bookings.classify_booker(db.session, user, instrument)
        bookings.check_instrument_bookable(instrument, user_type)
    except RuleBroken as error:
        return Booker(None, error.message)
    return Booker(user_type, None, enterprise.id if enterprise else None)


# --- the voucher part (vouchers.services.quote_voucher_part) --------------------------------------

def _fill_vouchers(form: BookingForm, booker: Booker) -> None:
    usable = vouchers.usable_vouchers(db.session, booker.enterprise_id, now=utcnow())
    form.voucher_id.choices = [(0, _("No voucher"))] + [
        (v.id, _("%(serial)s · %(balance)s left · valid until %(day)s", serial=v.serial,
                 balance=format_yuan(v.balance_fen), day=to_local(v.expires_at).date().isoformat())) for v in usable]


@dataclass(frozen=True, slots=True)
class VoucherBreakdown:
    """The price in two parts before booking: what the voucher pays and the enterprise's share."""

    voucher_fen: int
    share_fen: int  # the price less the voucher part
    payable_fen: int  # what the enterprise pays now: its share, or the whole price when it claims the part back
    ratio: str  # "50.00 %"
    note: str

    def as_json(self) -> dict:
        return {"voucher_fen": self.voucher_fen, "share_fen": self.share_fen, "payable_fen": self.payable_fen,
                "voucher_text": format_yuan(self.voucher_fen), "share_text": format_yuan(self.share_fen),
                "ratio": self.ratio, "note": self.note}


def _voucher_breakdown(instrument: Instrument, booker: Booker, voucher_id: int | None,
                       quote: bookings.Quote | None) -> VoucherBreakdown | None:
    """None without a voucher or a price; RuleBroken (voucher_expired, voucher_not_eligible,
    voucher_insufficient, related_party) when the voucher cannot pay here."""
    if not voucher_id or quote is None:
        return None
    part = vouchers.quote_voucher_part(db.session, voucher_id, enterprise_id=booker.enterprise_id,
                                       platform_id=instrument.platform_id, category_code=instrument.category.code,
                                       price_fen=quote.price_fen, now=utcnow())
    share = quote.price_fen - part.amount_fen
    note = "" if part.enterprise_pays_fen == share else _(
        "This programme is enterprise-reimbursed: you pay %(price)s and claim %(part)s back after the service.",
        price=format_yuan(part.enterprise_pays_fen), part=format_yuan(part.amount_fen))
    return VoucherBreakdown(part.amount_fen, share, part.enterprise_pays_fen,
                            f"{Decimal(part.ratio_bp).scaleb(-2)} %", note)


def _render_booking_page(instrument: Instrument, form: BookingForm, booker: Booker, *, status: int = 200,
                         alert: str | None = None, conflict: bool = False):
    now = utcnow()
    rules = availability.effective_rules(db.session, instrument)
    chosen = tuple(from_local(field.data) if field.data is not None and not field.errors else None
                   for field in (form.start, form.end))
    today = to_local(now).date()
    view = "day" if request.args.get("view") == "day" else "week"
    first = _day_arg(view) or (to_local(chosen[0]).date() if chosen[0] else today)
    monday = monday_of(first)
    week_days = [monday + timedelta(days=n) for n in range(7)]
    rows, grid = calendar_days(db.session, instrument, rules, [first] if view == "day" else week_days, now=now)
    selection = _selection(instrument, booker.user_type, *chosen)
    breakdown = None
    try:
        breakdown = _voucher_breakdown(instrument, booker, form.voucher_id.data, selection and selection.quote)
    except RuleBroken as error:
        if error.message not in form.voucher_id.errors:
            form.voucher_id.errors = [*form.voucher_id.errors, error.message]
    return render_template(
        "marketplace/booking_calendar.html", instrument=instrument, form=form, booker=booker, rules=rules,
        rows=rows, grid=grid, view=view, monday=monday, week_days=week_days, today=today,
        step=timedelta(days=1 if view == "day" else 7), terms=bookings.current_terms(db.session, instrument.platform_id),
        selection=selection, breakdown=breakdown, alert=alert, conflict=conflict,
        needs_approval=bookings.needs_approval(instrument, rules, booker.user_type),
        waitlist_url=_waitlist_url(instrument.id), SLOT_REASONS=slot_reason_texts(), DAY_KIND_LABELS=DAY_KIND_LABELS,
        first_day=FIRST_DAY, last_day=LAST_DAY), status


def _book(form: BookingForm, instrument_id: int, user: User):
    """Book one slot, or a weekly series when the form asks for repeats; returns the page to show."""
    start_at, end_at = from_local(form.start.data), from_local(form.end.data)
    common = {"actor": current_actor(), "user": user, "instrument_id": instrument_id, "start_at": start_at,
              "end_at": end_at, "now": utcnow(), "terms_id": form.terms_id.data or 0,
              "purpose": (form.purpose.data or "").strip(), "voucher_id": form.voucher_id.data or None}
    with unit_of_work() as session:
        if form.weeks.data is None:
            booking = bookings.book_instrument(session, **common)
        else:
            series, booked, skipped = bookings.book_series(session, weeks=form.weeks.data, **common)
    if form.weeks.data is None:
        flash(_("Booked. The booking's state and what comes next are shown below."), "success")
        return redirect(url_for("marketplace.booking_detail", booking_id=booking.id))
    flash(_("The weekly series is booked: %(booked)d booked, %(skipped)d skipped.", booked=len(booked),
            skipped=len(skipped)), "success" if not skipped else "warning")
    return render_template("marketplace/booking_series.html", series=series, booked=booked, skipped=skipped,
                           instrument=booked[0].instrument, STATE_LABELS=BOOKING_STATE_LABELS)


@bp.route("/instruments/<id:instrument_id>/book", methods=["GET", "POST"])
@requires()
def book_instrument(instrument_id: int):
    user = current_principal()
    instrument = services.get_instrument(db.session, instrument_id, user)
    booker = _booker(user, instrument)
    form = BookingForm()
    _fill_vouchers(form, booker)
    if not form.is_submitted():
        start, end = _aware_arg("start"), _aware_arg("end")
        form.start.data = to_local(start).replace(tzinfo=None) if start else None
        form.end.data = to_local(end).replace(tzinfo=None) if end else None
        return _render_booking_page(instrument, form, booker)
    if booker.refusal is not None:
        return _render_booking_page(instrument, form, booker, status=422, alert=booker.refusal)
    if not form.validate():
        return _render_booking_page(instrument, form, booker, status=422)
    if form.preview.data:
        return _render_booking_page(instrument, form, booker)
    try:
        return _book(form, instrument_id, user)
    except Conflict as error:
        return _render_booking_page(instrument, form, booker, status=409, alert=error.message, conflict=True)
    except RuleBroken as error:
        if error.code == "terms_changed":
            form.accept_terms.data = False
        shown = show_rule_error(form, error)
        return _render_booking_page(instrument, form, booker, status=422, alert=None if shown else error.message)


@bp.route("/instruments/<id:instrument_id>/book/quote")
@requires()
def booking_quote(instrument_id: int):
    """The price of ?start=&end= for the caller, for the calendar's script: {price_fen, text, busy}, and
    with ?voucher_id= the voucher's part ({voucher: …}) or why it cannot pay ({voucher_error: {code, message}})."""
    user = current_principal()
    instrument = services.get_instrument(db.session, instrument_id, user)
    booker = _booker(user, instrument)
    if booker.refusal is not None:
        return jsonify(error={"code": "cannot_book", "message": booker.refusal}), 422
    selection = _selection(instrument, booker.user_type, _aware_arg("start"), _aware_arg("end"))
    if selection is None:
        return jsonify(error={"code": "invalid_range", "message": _("The end must be after the start.")}), 422
    answer = {"price_fen": selection.quote.price_fen, "text": selection.text, "busy": selection.busy}
    try:
        breakdown = _voucher_breakdown(instrument, booker, request.args.get("voucher_id", type=int),
                                       selection.quote)
        answer["voucher"] = breakdown.as_json() if breakdown else None
    except RuleBroken as error:
        answer["voucher_error"] = {"code": error.code, "message": error.message}
    return jsonify(answer)


# --- the booker's bookings ----------------------------------------------------------------------

@bp.route("/bookings")
@requires()
def my_bookings():
    when = request.args.get("when")
    when = when if when in bookings.BOOKING_LIST_WHEN else "upcoming"
    state = request.args.get("state")
    state = BookingState(state) if state in set(BookingState) else None
    rows = bookings.list_user_bookings(db.session, current_principal(), now=utcnow(), when=when, state=state)
    return render_template("marketplace/booking_list.html", rows=rows, when=when, state=state,
                           STATE_LABELS=BOOKING_STATE_LABELS)


def _link_if(endpoint: str, allowed: bool, **values) -> str | None:
    """A link to a route other pages own, when it exists and the viewer may use it."""
    return url_for(endpoint, **values) if allowed and endpoint in current_app.view_functions else None


@bp.route("/bookings/<id:booking_id>")
@requires()
def booking_detail(booking_id: int):
    user = current_principal()
    booking = bookings.get_booking(db.session, booking_id, user)
    now = utcnow()
    may_cancel = bookings.can_cancel(user, booking)
    series_rest = bookings.list_series_rest(db.session, booking, user) if may_cancel else []
    may_pay = payments.can_pay(user, booking)
    return render_template(
        "marketplace/booking_detail.html", booking=booking, may_cancel=may_cancel,
        cancel_fee=bookings.quote_cancellation(db.session, booking, user, now=now) if may_cancel else None,
        series_rest=series_rest,
        series_fee=sum(bookings.quote_cancellation(db.session, b, user, now=now) for b in series_rest),
        hours_text=price_text(bookings.Quote(booking.user_type, int((booking.end_at - booking.start_at)
                                                                    .total_seconds() // 60),
                                             booking.setup_fee_fen, booking.hourly_rate_fen)),
        pay_url=_link_if("marketplace.pay_booking", may_pay, booking_id=booking.id),
        expected=payments.expected_transfer(booking), expires_at=booking.expires_at,
        ics_url=_link_if("marketplace.booking_ics", True, booking_id=booking.id),
        cancel_form=CancelBookingForm(), STATE_LABELS=BOOKING_STATE_LABELS,
        PAYMENT_STATE_LABELS=PAYMENT_STATE_LABELS, PAYMENT_METHOD_LABELS=PAYMENT_METHOD_LABELS)


def _cancel(booking_id: int, *, series: bool) -> None:
    """Cancel one booking or the rest of its series, and say what it cost."""
    form = CancelBookingForm()
    if not form.validate_on_submit():
        flash(next(iter(form.errors.values()))[0], "danger")
        return
    user = current_principal()
    try:
        with bookings.booking_change(actor=current_actor(), now=utcnow()) as session:
            booking = bookings.get_booking(session, booking_id, user)
            done = {"actor": current_actor(), "user": user, "now": utcnow(), "reason": form.reason.data or ""}
            if series:
                fees = [b.cancellation_fee_fen for b in bookings.cancel_series(session, booking, **done)]
            else:
                fees = [bookings.cancel_booking(session, booking, **done)]
    except (RuleBroken, Conflict) as error:
        flash(error.message, "danger")
        return
    if not fees:
        flash(_("Nothing was left to cancel."), "info")
    elif sum(fees):
        flash(ngettext("%(num)d booking cancelled. The cancellation fee is %(fee)s.",
                       "%(num)d bookings cancelled. The cancellation fees are %(fee)s in all.", len(fees),
                       fee=format_yuan(sum(fees))), "warning")
    else:
        flash(ngettext("%(num)d booking cancelled free of charge.", "%(num)d bookings cancelled free of charge.",
                       len(fees)),
              "success")


@bp.post("/bookings/<id:booking_id>/cancel")
@requires()
def cancel_booking(booking_id: int):
    _cancel(booking_id, series=False)
    return redirect(url_for("marketplace.booking_detail", booking_id=booking_id))


@bp.post("/bookings/<id:booking_id>/cancel-series")
@requires()
def cancel_series(booking_id: int):
    """This occurrence and every later one of its series."""
    _cancel(booking_id, series=True)
    return redirect(url_for("marketplace.booking_detail", booking_id=booking_id))
