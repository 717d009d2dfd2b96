"""Paying in a real browser against the live server and a real localstripe, on SQLite and PostgreSQL:
the card is typed into the card field of the Stripe.js stand-in that localstripe serves, on our own
page; a declined card is refused with the booking still payable, a good one confirms the booking."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.audit import Actor
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.models import User
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingState
from marketplace.payments.models import PaymentState
from tests.browser.test_booking_flow import ENTERPRISE, next_monday_at, published_instrument

pytestmark = pytest.mark.live


def approved_booking(session) -> int:
    """An approved booking of an instrument of its own: ¥100.00 + 2 h × ¥400.00 to pay."""
    instrument_id = published_instrument(session)
    booker = session.scalar(select(User).where(User.email == ENTERPRISE))
    booking = bookings.book_instrument(session, actor=Actor.system("test"), user=booker, instrument_id=instrument_id,
                                       start_at=next_monday_at(14), end_at=next_monday_at(16), now=utcnow())
    booking_id = booking.id
    session.commit()
    return booking_id


def type_card(page: Page, number: str) -> None:
    """The stand-in's inputs, as a person types them (its year field takes two digits)."""
    field = page.get_by_test_id("card-element")
    for placeholder, value in (("number", number), ("exp_month", "12"), ("exp_year", "30"), ("cvc", "123"),
                               ("postal_code", "31200")):
        field.locator(f'input[placeholder="{placeholder}"]').fill(value)
    page.get_by_test_id("card-form").get_by_role("button").click()


def test_an_enterprise_pays_by_card_on_our_page(page, live_server, live_session, log_in):
    booking_id = approved_booking(live_session)
    log_in(page, ENTERPRISE, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/bookings/{booking_id}/pay")
    expect(page.get_by_test_id("amount-due")).to_have_text("¥900.00")

    type_card(page, "4000000000000341")
    expect(page.locator(".alert-danger")).to_be_visible()
    booking = live_session.get(Booking, booking_id)
    assert (booking.state, booking.payment_state) == (BookingState.APPROVED, PaymentState.DUE)
    live_session.rollback()

    type_card(page, "4242424242424242")
    expect(page).to_have_url(re.compile(rf"/bookings/{booking_id}$"))
    booking = live_session.get(Booking, booking_id)
    assert (booking.state, booking.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    assert [p.status.value for p in booking.payments] == ["failed", "requires_capture"]
    live_session.rollback()
