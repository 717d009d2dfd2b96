"""Cancelling in a real browser, on SQLite and PostgreSQL, against a real localstripe: the booking form
shows the cancellation terms of the slot as it is chosen, the booking is paid by card, and cancelling asks
for confirmation, stating the fee and what goes back to the card, before it cancels."""
from __future__ import annotations

import re
from datetime import timedelta, timezone

import pytest
from playwright.sync_api import expect

from core.demo import DEMO_PASSWORD
from marketplace.booking.models import Booking, BookingState
from marketplace.payments.models import PaymentState
from tests.browser.test_booking_flow import ENTERPRISE, next_monday_at, published_instrument
from tests.browser.test_payment_page import type_card

pytestmark = pytest.mark.live


def test_an_enterprise_sees_the_terms_pays_and_cancels_after_confirming(page, live_server, live_session, log_in):
    url = live_server.url
    instrument_id = published_instrument(live_session)
    start, last_slot = next_monday_at(9), next_monday_at(10) + timedelta(minutes=30)
    log_in(page, ENTERPRISE, DEMO_PASSWORD)

    page.goto(f"{url}/instruments/{instrument_id}")
    expect(page.get_by_test_id("cancellation-terms")).to_contain_text("24")
    page.goto(f"{url}/instruments/{instrument_id}/book?week={start.date().isoformat()}")
    page.locator(f'td[data-start="{start.isoformat()}"]').click()
    page.locator(f'td[data-start="{last_slot.isoformat()}"]').click()  # 09:00–11:00, ¥900.00
    terms = page.get_by_test_id("cancellation-terms")
    expect(terms).to_have_attribute("data-late-fee-fen", "45000")  # the slot's terms, as the server quotes them
    expect(terms).to_have_attribute("data-free-until", (start - timedelta(hours=24)).astimezone(timezone.utc).isoformat())
    expect(terms.get_by_test_id("late-fee")).to_contain_text("¥450.00")
    page.locator("#accept_terms").check()
    page.locator("#submit").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(url)}/bookings/\d+$"))
    booking_id = int(page.url.rsplit("/", 1)[1])

    page.get_by_test_id("pay-link").click()
    type_card(page, "4242424242424242")
    expect(page).to_have_url(re.compile(rf"/bookings/{booking_id}$"))
    expect(page.get_by_test_id("state")).to_have_attribute("data-state", BookingState.CONFIRMED.value)
    expect(page.get_by_test_id("cancellation-terms")).to_have_attribute("data-late-fee-fen", "45000")

    page.get_by_test_id("cancel-button").click()  # asks first
    expect(page).to_have_url(re.compile(rf"/bookings/{booking_id}/cancel"))
    expect(page.get_by_test_id("outcome-fee")).to_have_text(re.compile(r"\S"))
    expect(page.get_by_test_id("outcome-card")).to_have_text("¥900.00")
    page.get_by_test_id("keep-booking").click()  # changes their mind: nothing happens
    expect(page.get_by_test_id("state")).to_have_attribute("data-state", BookingState.CONFIRMED.value)

    page.locator("#reason").fill("项目推迟")
    page.get_by_test_id("cancel-button").click()
    expect(page.locator("#reason")).to_have_value("项目推迟")
    page.get_by_test_id("confirm-cancel-button").click()
    expect(page).to_have_url(re.compile(rf"/bookings/{booking_id}$"))
    expect(page.get_by_test_id("state")).to_have_attribute("data-state", BookingState.CANCELLED.value)
    expect(page.get_by_test_id("card-returned")).to_have_text("¥900.00")
    booking = live_session.get(Booking, booking_id)
    assert (booking.state, booking.cancellation_fee_fen, booking.payment_state, booking.cancel_reason) == (
        BookingState.CANCELLED, 0, PaymentState.RELEASED, "项目推迟")
    live_session.rollback()
