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
from core.holidays import DAY_KIND_LABELS
from core.models import User
from core.money import format_yuan
from core.templating import NavItem
from marketplace.blueprints import bp
from marketplace.booking import availability
from marketplace.booking import services as bookings
from marketplace.booking.forms import BookingForm, CancelBookingForm
from marketplace.booking.models import BOOKING_STATE_LABELS, Booking, BookingRules, BookingState, CancellationTerms
from marketplace.booking.week import FIRST_DAY, LAST_DAY, calendar_days, monday_of, slot_reason_texts
from marketplace.payments import services as payments
from marketplace.payments.models import PAYMENT_METHOD_LABELS, PAYMENT_STATE_LABELS
from marketplace.registry import services
from marketplace.registry.models import Instrument, UserType
from vouchers import services as vouchers

NAV = [NavItem("marketplace.my_bookings", _l("My bookings"), AccessRule(frozenset()))]

SKIP_KIND_LABELS = {"conflict": _l("Taken by another booking"), "holiday": _l("Public holiday"),
                    "maintenance": _l("Under maintenance"), "rule": _l("Outside the booking rules")}


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

def voucher_choices(enterprise_id: int | None) -> list[tuple[int, str]]:
    """The vouchers the enterprise may pay with now, as a booking form's choices (0: none)."""
    usable = vouchers.usable_vouchers(db.session, enterprise_id, now=utcnow())
    return [(0, _("No voucher"))] + [
        (v.id, _("%(serial)s · %(balance)s left · valid until %(day)s", serial=v.serial,
                 balance=format_yuan(v.balance_fen), day=to_local(v.expires_at).date().isoformat())) for v in usable]


def _fill_vouchers(form: BookingForm, booker: Booker) -> None:
    form.voucher_id.choices = voucher_choices(booker.enterprise_id)


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
    rows, grid = calendar_days(db.session, instrument, rules, [first] if view == "day" else week_days, now=now,
                               viewer=current_principal())
    selection = _selection(instrument, booker.user_type, *chosen)
    breakdown = None
    try:
        breakdown = _voucher_breakdown(instrument, booker, form.voucher_id.data, selection and selection.quote)
    except RuleBroken as error:
        if error.message not in form.voucher_id.errors:
            form.voucher_id.errors = [*form.voucher_id.errors, error.message]
    return render_template(
        "marketplace/booking_calendar.html", instrument=instrument, form=form, booker=booker, rules=rules,
        cancel_rules=rules, cancel_terms=_cancel_terms(rules, selection, breakdown), now=now,
        rows=rows, grid=grid, view=view, monday=monday, week_days=week_days, today=today,
        step=timedelta(days=1 if view == "day" else 7), terms=bookings.current_terms(db.session, instrument.platform_id),
        selection=selection, breakdown=breakdown, alert=alert, conflict=conflict, STATE_LABELS=BOOKING_STATE_LABELS,
        needs_approval=bookings.needs_approval(instrument, rules, booker.user_type),
        waitlist_url=_waitlist_url(instrument.id), SLOT_REASONS=slot_reason_texts(), DAY_KIND_LABELS=DAY_KIND_LABELS,
        first_day=FIRST_DAY, last_day=LAST_DAY), status


def _cancel_terms(rules: BookingRules, selection: Selection | None, breakdown: VoucherBreakdown | None
                  ) -> CancellationTerms | None:
    """The cancellation terms a booking of the chosen slot would get (BookingRules.cancellation_terms, as
    book_instrument fixes them), or None before a slot is chosen."""
    if selection is None or selection.quote is None:
        return None
    return rules.cancellation_terms(selection.start, price_fen=selection.quote.price_fen,
                                    payable_fen=breakdown.payable_fen if breakdown else selection.quote.price_fen,
                                    voucher_fen=breakdown.voucher_fen if breakdown else 0)


def _booking_args(form: BookingForm, instrument_id: int, user: User) -> dict:
    return {"actor": current_actor(), "user": user, "instrument_id": instrument_id,
            "start_at": from_local(form.start.data), "end_at": from_local(form.end.data), "now": utcnow(),
            "terms_id": form.terms_id.data or 0, "purpose": (form.purpose.data or "").strip(),
            "voucher_id": form.voucher_id.data or None}


def _preview_series(form: BookingForm, instrument: Instrument, user: User, *, status: int = 200,
                    alert: str | None = None):
    """The weeks a series would book and skip, and what it costs, with the button that books it."""
    with unit_of_work() as session:
        plan = bookings.preview_series(session, weeks=form.weeks.data, **_booking_args(form, instrument.id, user))
    form.expected.data = " ".join(o.start_at.isoformat() for o in plan.booked)
    return render_template("marketplace/booking_series_preview.html", instrument=instrument, form=form, plan=plan,
                           alert=alert, SKIP_KIND_LABELS=SKIP_KIND_LABELS), status


def _book(form: BookingForm, instrument: Instrument, user: User):
    """Book one slot, or the weekly series whose preview the booker confirms; redirects to the result."""
    with unit_of_work() as session:
        if form.weeks.data is None:
            booking = bookings.book_instrument(session, **_booking_args(form, instrument.id, user))
        else:
            series, booked, skipped = bookings.book_series(session, weeks=form.weeks.data,
                                                           expected=form.expected_starts(),
                                                           **_booking_args(form, instrument.id, user))
    if form.weeks.data is None:
        flash(_("Booked. The booking's state and what comes next are shown below."), "success")
        return redirect(url_for("marketplace.booking_detail", booking_id=booking.id))
    flash(_("The weekly series is booked: %(booked)d booked, %(skipped)d skipped.", booked=len(booked),
            skipped=len(skipped)), "success" if not skipped else "warning")
    return redirect(url_for("marketplace.booking_series", series_id=series.id))


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
    if not form.validate():  # the previewed dates are a hidden field: their error is said above the form
        return _render_booking_page(instrument, form, booker, status=422,
                                    alert=form.expected.errors[0] if form.expected.errors else None)
    if form.preview.data:
        return _render_booking_page(instrument, form, booker)
    try:
        if form.weeks.data is not None and form.expected_starts() is None:
            return _preview_series(form, instrument, user)
        return _book(form, instrument, user)
    except Conflict as error:
        if error.code == "series_changed":
            return _preview_series(form, instrument, user, status=409, alert=error.message)
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
    answer, breakdown = {"price_fen": selection.quote.price_fen, "text": selection.text, "busy": selection.busy}, None
    try:
        breakdown = _voucher_breakdown(instrument, booker, request.args.get("voucher_id", type=int),
                                       selection.quote)
        answer["voucher"] = breakdown.as_json() if breakdown else None
    except RuleBroken as error:
        answer["voucher_error"] = {"code": error.code, "message": error.message}
    rules = availability.effective_rules(db.session, instrument)
    answer["cancellation_html"] = render_template(
        "marketplace/_cancellation_terms.html", cancel_rules=rules, now=utcnow(),
        cancel_terms=_cancel_terms(rules, selection, breakdown))
    return jsonify(answer)


# --- the booker's bookings ----------------------------------------------------------------------

@bp.route("/booking-series/<id:series_id>")
@requires()
def booking_series(series_id: int):
    """A weekly series as booked: its bookings, the weeks skipped and why, and the total to pay."""
    user = current_principal()
    series, booked = bookings.get_series(db.session, series_id, user)
    skipped = [(datetime.fromisoformat(when), series.skip_codes.get(when, "")) for when in series.skipped]
    due = payments.due_in_group(user, booked)
    return render_template("marketplace/booking_series.html", series=series, booked=booked, skipped=skipped,
                           instrument=booked[0].instrument, skip_kind=bookings.skip_kind,
                           due_fen=sum(b.payable_fen for b in due), due_count=len(due),
                           pay_url=_link_if("marketplace.pay_series", bool(due), series_id=series.id),
                           SKIP_KIND_LABELS=SKIP_KIND_LABELS, STATE_LABELS=BOOKING_STATE_LABELS,
                           PAYMENT_STATE_LABELS=PAYMENT_STATE_LABELS)



@bp.route("/bookings")
@requires()
def my_bookings():
    when = request.args.get("when")
    when = when if when in bookings.BOOKING_LIST_WHEN else "upcoming"
    state = request.args.get("state")
    state = BookingState(state) if state in set(BookingState) else None
    rows = bookings.list_user_bookings(db.session, current_principal(), now=utcnow(), when=when, state=state)
    return render_template("marketplace/booking_list.html", rows=rows, when=when, state=state,
                           settled={booking.id: payments.settled_amounts(booking) for booking in rows},
                           STATE_LABELS=BOOKING_STATE_LABELS, PAYMENT_STATE_LABELS=PAYMENT_STATE_LABELS)


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
        "marketplace/booking_detail.html", booking=booking, may_cancel=may_cancel, now=now,
        outcome=bookings.quote_cancellation(booking, user, now=now) if may_cancel else None,
        series_rest=series_rest, series_outcome=_total(series_rest, user, now=now),
        cancel_terms=booking.cancellation_terms, settled=payments.settled_amounts(booking),
        hours_text=price_text(bookings.Quote(booking.user_type, int((booking.end_at - booking.start_at)
                                                                    .total_seconds() // 60),
                                             booking.setup_fee_fen, booking.hourly_rate_fen)),
        pay_url=_link_if("marketplace.pay_booking", may_pay, booking_id=booking.id),
        expected=payments.expected_transfer(booking), expires_at=booking.expires_at,
        ics_url=_link_if("marketplace.booking_ics", True, booking_id=booking.id),
        cancel_form=CancelBookingForm(formdata=None), STATE_LABELS=BOOKING_STATE_LABELS,
        PAYMENT_STATE_LABELS=PAYMENT_STATE_LABELS, PAYMENT_METHOD_LABELS=PAYMENT_METHOD_LABELS)


def _total(rows: list[Booking], user: User, *, now: datetime) -> bookings.CancellationOutcome | None:
    """What cancelling these bookings at once does with the money, summed (quote_cancellation of each)."""
    outcomes = [bookings.quote_cancellation(booking, user, now=now) for booking in rows]
    if not outcomes:
        return None
    return bookings.CancellationOutcome(
        terms=outcomes[0].terms, fee_fen=sum(o.fee_fen for o in outcomes), card_fen=sum(o.card_fen for o in outcomes),
        transfer_fen=sum(o.transfer_fen for o in outcomes), voucher_fen=sum(o.voucher_fen for o in outcomes),
        by_platform=outcomes[0].by_platform)


def _confirm_cancel(booking_id: int, *, series: bool, status: int = 200, reason: str | None = None):
    """The page that asks before cancelling: what cancelling now costs and gives back, to the fen."""
    user, now = current_principal(), utcnow()
    booking = bookings.get_booking(db.session, booking_id, user)
    rows = bookings.list_series_rest(db.session, booking, user) if series else \
        [booking] if bookings.can_cancel(user, booking) else []
    if not rows:
        flash(_("Nothing was left to cancel.") if series else _("This booking cannot be cancelled any more."), "info")
        return redirect(url_for("marketplace.booking_detail", booking_id=booking.id))
    outcome = _total(rows, user, now=now)
    form = CancelBookingForm(formdata=None, reason=(request.args.get("reason", "") if reason is None else reason)[:500],
                             fee_fen=outcome.fee_fen)
    return render_template("marketplace/booking_cancel.html", booking=booking, rows=rows, outcome=outcome,
                           series=series, form=form, now=now, STATE_LABELS=BOOKING_STATE_LABELS), status


def _cancel(booking_id: int, *, series: bool):
    """Cancel one booking or the rest of its series at the fee the confirmation page showed, and say what
    it cost; a fee that changed since (the free-cancellation limit passed) shows the page again."""
    form = CancelBookingForm()
    if not form.validate_on_submit():
        flash(next(iter(form.errors.values()))[0], "danger")
        return redirect(url_for("marketplace.booking_detail", booking_id=booking_id))
    user = current_principal()
    try:
        with bookings.booking_change(actor=current_actor(), now=utcnow()) as session:
            booking = bookings.get_booking(session, booking_id, user)
            done = {"actor": current_actor(), "user": user, "now": utcnow(), "reason": form.reason.data or "",
                    "expected_fee_fen": form.fee_fen.data}
            if series:
                fees = [b.cancellation_fee_fen for b in bookings.cancel_series(session, booking, **done)]
            else:
                fees = [bookings.cancel_booking(session, booking, **done)]
    except Conflict as error:
        if error.code == "cancellation_fee_changed":
            flash(error.message, "warning")
            return _confirm_cancel(booking_id, series=series, status=409, reason=form.reason.data or "")
        flash(error.message, "danger")
        return redirect(url_for("marketplace.booking_detail", booking_id=booking_id))
    except RuleBroken as error:
        flash(error.message, "danger")
        return redirect(url_for("marketplace.booking_detail", booking_id=booking_id))
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
    return redirect(url_for("marketplace.booking_detail", booking_id=booking_id))


@bp.route("/bookings/<id:booking_id>/cancel", methods=["GET", "POST"])
@requires()
def cancel_booking(booking_id: int):
    """GET asks for confirmation, stating the fee and what goes back; POST cancels."""
    if request.method == "GET":
        return _confirm_cancel(booking_id, series=False)
    return _cancel(booking_id, series=False)


@bp.route("/bookings/<id:booking_id>/cancel-series", methods=["GET", "POST"])
@requires()
def cancel_series(booking_id: int):
    """This occurrence and every later one of its series: GET asks for confirmation, POST cancels."""
    if request.method == "GET":
        return _confirm_cancel(booking_id, series=True)
    return _cancel(booking_id, series=True)
