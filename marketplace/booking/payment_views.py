"""Marketplace pages: paying a booking's share by card or by bank transfer, and the platform's record
of a transfer that arrived.

The card is entered on our own page in the card field of Stripe.js; in development and tests that is
the stand-in localstripe serves at <STRIPE_API_BASE>/js.stripe.com/v3/, which works in a headless
browser. Its createPaymentMethod() does nothing, so the page falls back on createToken() and sends the
card's id; the server then creates (or reuses) the intent, attaches the card and confirms it. The two
forms live here, beside their only view (the calendar's are in marketplace/booking/forms.py)."""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Regexp, ValidationError

from core.auth import current_actor, current_principal, requires
from core.db import utcnow
from core.errors import Conflict, RuleBroken
from core.extensions import db
from core.models import Role, User
from core.money import format_yuan, yuan_to_fen
from marketplace.blueprints import bp
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking
from marketplace.payments import services as payments

NAV: list = []


class CardPaymentForm(FlaskForm):
    # the PaymentMethod (pm_…) or card (card_…) the page's Stripe.js made of the card field
    payment_method = HiddenField(validators=[DataRequired(_l("Enter the card's details.")), Length(max=100),
                                             Regexp(r"^(pm|card)_\w+$")])
    submit = SubmitField(_l("Pay by card"))


class TransferChoiceForm(FlaskForm):
    submit = SubmitField(_l("Pay by bank transfer"))


class TransferRecordForm(FlaskForm):
    amount = DecimalField(_l("Amount received (yuan)"), places=2,
                          validators=[DataRequired(), NumberRange(min=Decimal("0.01"), max=Decimal("100000000"))])
    received_on = DateField(_l("Received on"), validators=[DataRequired()])
    reference = StringField(_l("Bank reference"), validators=[DataRequired(), Length(max=100)])
    submit = SubmitField(_l("Record the transfer"))

    def validate_amount(self, field: DecimalField) -> None:
        try:
            yuan_to_fen(field.data)
        except ValueError:
            raise ValidationError(_("At most two decimals (fen).")) from None


def _booking_page(booking_id: int) -> ResponseReturnValue:
    return redirect(url_for(".booking_detail", booking_id=booking_id))


def _load(booking_id: int, may: Callable[[User, Booking], bool], refusal: str
          ) -> tuple[User, Booking, ResponseReturnValue | None]:
    """The booking (404 to those who may not see it), and the way back to it when this page is not for now."""
    user = current_principal()
    booking = bookings.get_booking(db.session, booking_id, user)
    if may(user, booking):
        return user, booking, None
    flash(refusal, "info")
    return user, booking, _booking_page(booking.id)


@bp.route("/bookings/<id:booking_id>/pay", methods=["GET", "POST"])
@requires()
def pay_booking(booking_id: int) -> ResponseReturnValue:
    user, booking, elsewhere = _load(booking_id, payments.can_pay, _("This booking has nothing to pay now."))
    if elsewhere:
        return elsewhere
    card_form, transfer_form = CardPaymentForm(prefix="card"), TransferChoiceForm(prefix="transfer")
    status = 200
    chosen = card_form if "card-payment_method" in request.form else transfer_form
    if request.method == "POST" and chosen.validate_on_submit():
        try:
            if chosen is transfer_form:
                with bookings.booking_change(actor=current_actor(), now=utcnow()) as session:
                    bookings.choose_transfer(session, booking, actor=current_actor(), user=user, now=utcnow())
            else:
                bookings.pay_by_card(booking.id, actor=current_actor(), user=user, now=utcnow(),
                                     card=card_form.payment_method.data)
        except (RuleBroken, Conflict, payments.PaymentGatewayUnavailable) as problem:  # what happened is committed
            flash(problem.message, "danger")
            status = problem.status
            card_form.payment_method.data = ""  # the next try tokenises the card field afresh
        else:
            flash(_("Paid: the amount is held on your card and charged at the end of the booking.")
                  if chosen is card_form else
                  _("Please transfer the amount; the booking is confirmed when the platform has received it."),
                  "success")
            return _booking_page(booking.id) if chosen is card_form else redirect(request.url)
    elif request.method == "POST":
        status = 422
    return render_template("marketplace/booking_pay.html", booking=booking, card_form=card_form,
                           transfer_form=transfer_form, expected=payments.expected_transfer(booking),
                           expires_at=booking.expires_at, cancel_terms=booking.cancellation_terms, now=utcnow(),
                           **_stripe_js()), status


def _stripe_js() -> dict[str, str]:
    return {"stripe_js_url": current_app.config["STRIPE_JS_URL"]
            or f"{current_app.config['STRIPE_API_BASE']}/js.stripe.com/v3/",
            "publishable_key": current_app.config["STRIPE_PUBLISHABLE_KEY"]}


@bp.route("/booking-series/<id:series_id>/pay", methods=["GET", "POST"])
@requires()
def pay_series(series_id: int) -> ResponseReturnValue:
    """Every share of a series still due, in one card payment."""
    user = current_principal()
    series, booked = bookings.get_series(db.session, series_id, user)
    due = payments.due_in_group(user, booked)
    if not due:
        flash(_("This series has nothing to pay now."), "info")
        return redirect(url_for(".booking_series", series_id=series.id))
    card_form, status = CardPaymentForm(prefix="card"), 200
    if card_form.validate_on_submit():
        try:
            bookings.pay_series_by_card(series.id, actor=current_actor(), user=user, now=utcnow(),
                                        card=card_form.payment_method.data)
        except (RuleBroken, Conflict, payments.PaymentGatewayUnavailable) as problem:  # what happened is committed
            flash(problem.message, "danger")
            status = problem.status
            card_form.payment_method.data = ""
        else:
            flash(_("Paid: %(amount)s for %(n)d bookings, charged to your card in one payment.",
                    amount=format_yuan(sum(b.payable_fen for b in due)), n=len(due)), "success")
            return redirect(url_for(".booking_series", series_id=series.id))
    elif card_form.is_submitted():
        status = 422
    return render_template("marketplace/series_pay.html", series=series, instrument=booked[0].instrument, due=due,
                           total_fen=sum(b.payable_fen for b in due), card_form=card_form, **_stripe_js()), status


@bp.route("/bookings/<id:booking_id>/transfer", methods=["GET", "POST"])
@requires(Role.PLATFORM_ADMIN)
def record_transfer(booking_id: int) -> ResponseReturnValue:
    user, booking, elsewhere = _load(booking_id, bookings.can_record_transfer,
                                     _("This booking is not waiting for a payment."))
    if elsewhere:
        return elsewhere
    form, status = TransferRecordForm(), 200
    if form.validate_on_submit():
        try:
            with bookings.booking_change(actor=current_actor(), now=utcnow()) as session:
                bookings.record_transfer(session, booking, actor=current_actor(), user=user, now=utcnow(),
                                         amount_fen=yuan_to_fen(form.amount.data), received_on=form.received_on.data,
                                         reference=form.reference.data)
        except (RuleBroken, Conflict) as error:
            field = {"amount_fen": "amount"}.get(error.field, error.field)
            if field in form:
                form[field].errors.append(error.message)
            else:
                flash(error.message, "danger")
            status = error.status
        else:
            flash(_("Transfer recorded: the booking is confirmed."), "success")
            return _booking_page(booking.id)
    elif form.is_submitted():
        status = 422
    return render_template("marketplace/booking_transfer.html", booking=booking, form=form,
                           expected=payments.expected_transfer(booking)), status
