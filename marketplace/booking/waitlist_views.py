"""Marketplace pages of the waitlist: join a busy slot (from the booking calendar), see one's entries,
withdraw, and accept an offer under the current service terms. The rules are in marketplace/booking/waitlist.py."""
from __future__ import annotations

from datetime import datetime

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Optional
from wtforms.widgets import HiddenInput

from core.auth import AccessRule, current_actor, current_principal, requires
from core.clock import from_local, to_local
from core.db import unit_of_work, utcnow
from core.errors import Conflict, RuleBroken
from core.extensions import db
from core.inputs import MAX_ID
from core.templating import NavItem
from marketplace.blueprints import bp
from marketplace.booking import services as bookings
from marketplace.booking import waitlist
from marketplace.booking.models import WAITLIST_STATE_LABELS, WaitlistState
from marketplace.booking.views import voucher_choices

NAV = [NavItem("marketplace.my_waitlist", _l("My waitlist"), AccessRule(frozenset()))]

ENTRY = "<id:entry_id>"


class InstantField(StringField):
    """An ISO 8601 instant with its offset ("2026-12-07T09:00:00+08:00", "…Z"), or a wall-clock
    Asia/Shanghai time as a datetime-local input sends it ("2026-12-07T09:00") → aware UTC."""

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = None
        text = valuelist[0].strip() if valuelist else ""
        if not text:
            return
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(_l("Enter a date and time, e.g. 2026-12-07 09:00.")) from None
        if not 2000 <= value.year <= 2099:
            raise ValueError(_l("Choose a date between the years 2000 and 2099."))
        self.data = from_local(value)


class WaitlistForm(FlaskForm):
    instrument_id = IntegerField(_l("Instrument"), validators=[InputRequired()])
    start = InstantField(_l("Start"), validators=[DataRequired()])
    end = InstantField(_l("End"), validators=[DataRequired()])


class AcceptOfferForm(FlaskForm):
    terms_id = IntegerField(widget=HiddenInput(), validators=[Optional()])
    # as on the booking form: any id is passed on, and the voucher rules refuse with a reason
    voucher_id = SelectField(_l("Innovation voucher"), choices=[], coerce=int, validate_choice=False,
                             validators=[Optional()])
    accept_terms = BooleanField(_l("I have read and accept the service terms above"), validators=[
        DataRequired(_l("Read the service terms and tick the box to accept them."))])


def _calendar_url(instrument_id: int, start: datetime | None, end: datetime | None) -> str:
    """The instrument's booking calendar, with the slot selected."""
    selected = {"start": to_local(start).isoformat(), "end": to_local(end).isoformat()} if start and end else {}
    return url_for("marketplace.book_instrument", instrument_id=instrument_id, **selected)


def _flash_form_errors(form: FlaskForm) -> None:
    for field in form:
        for error in field.errors:
            flash(str(error) if field.name == "csrf_token" else f"{field.label.text}: {error}", "danger")


@bp.route("/waitlist", methods=["POST"])
@requires()
def join_waitlist() -> ResponseReturnValue:
    """Fields instrument_id (in the form or the query), start and end; a free slot sends the user back
    to book it."""
    form = WaitlistForm(formdata=request.values)
    if not form.validate():
        _flash_form_errors(form)
        if form.instrument_id.data and 0 < form.instrument_id.data <= MAX_ID:
            return redirect(_calendar_url(form.instrument_id.data, None, None))
        return redirect(url_for(".my_waitlist"))
    instrument_id, start_at, end_at = form.instrument_id.data, form.start.data, form.end.data
    if not 0 < instrument_id <= MAX_ID:
        return redirect(url_for(".my_waitlist"))
    try:
        with unit_of_work() as session:
            waitlist.join_waitlist(session, actor=current_actor(), user=current_principal(),
                                   instrument_id=instrument_id, start_at=start_at, end_at=end_at, now=utcnow())
    except RuleBroken as error:
        flash(error.message, "warning" if error.code == "slot_free" else "danger")
        return redirect(_calendar_url(instrument_id, start_at, end_at))
    flash(_("You are on the waitlist. Should this time become free, we will offer it to you by e-mail."),
          "success")
    return redirect(url_for(".my_waitlist"))


@bp.route("/waitlist/mine")
@requires()
def my_waitlist() -> ResponseReturnValue:
    entries = waitlist.list_user_entries(db.session, current_principal())
    offered = [entry for entry in entries if entry.state == WaitlistState.OFFERED]
    terms = {entry.instrument.platform_id: bookings.current_terms(db.session, entry.instrument.platform_id)
             for entry in offered}
    enterprise = bookings.booker_enterprise(db.session, current_principal()) if offered else None
    choices = voucher_choices(enterprise.id) if enterprise is not None and enterprise.is_verified else []
    return render_template("marketplace/my_waitlist.html", entries=entries, terms=terms, voucher_choices=choices,
                           STATE_LABELS=WAITLIST_STATE_LABELS)


@bp.route(f"/waitlist/{ENTRY}/withdraw", methods=["POST"])
@requires()
def withdraw_waitlist_entry(entry_id: int) -> ResponseReturnValue:
    try:
        with unit_of_work() as session:
            waitlist.withdraw_waitlist_entry(session, actor=current_actor(), user=current_principal(),
                                             entry_id=entry_id, now=utcnow())
    except RuleBroken as error:
        flash(error.message, "danger")
    else:
        flash(_("You have left the waitlist for this time."), "success")
    return redirect(url_for(".my_waitlist"))


@bp.route(f"/waitlist/{ENTRY}/accept", methods=["POST"])
@requires()
def accept_waitlist_offer(entry_id: int) -> ResponseReturnValue:
    form = AcceptOfferForm()
    if not form.validate():
        _flash_form_errors(form)
        return redirect(url_for(".my_waitlist"))
    try:
        with unit_of_work() as session:
            booking = waitlist.accept_offer(session, actor=current_actor(), user=current_principal(),
                                            entry_id=entry_id, now=utcnow(), terms_id=form.terms_id.data,
                                            voucher_id=form.voucher_id.data or None)
            booking_id = booking.id
    except (RuleBroken, Conflict) as error:
        flash(error.message, "danger")
        return redirect(url_for(".my_waitlist"))
    flash(_("Booked: the time you waited for is yours. The booking's state and what comes next are shown below."),
          "success")
    return redirect(url_for(".booking_detail", booking_id=booking_id))
