"""The whole booking journey in a real browser, against the live server and a real localstripe, on SQLite
and PostgreSQL: an enterprise member books a slot on the week view of an instrument shared by
appointment, pays its share with a test card on our page, the platform's admin approves it, and the
booking appears, confirmed, in the member's private calendar feed."""
from __future__ import annotations

import re
from datetime import timedelta

import icalendar
import pytest
import recurring_ical_events
import requests
from playwright.sync_api import expect

from core.demo import DEMO_PASSWORD
from marketplace.booking.models import Booking, BookingState
from marketplace.payments.models import PaymentState
from tests.browser.test_booking_flow import ENTERPRISE, PLATFORM_ADMIN, next_monday_at, published_instrument
from tests.browser.test_payment_page import type_card

pytestmark = pytest.mark.live


def test_book_pay_approve_and_find_it_in_the_calendar_feed(page, browser, browser_context_args, live_server,
                                                           live_session, log_in):
    url = live_server.url
    instrument_id = published_instrument(live_session, sharing_mode="appointment")  # the platform approves
    start, end = next_monday_at(14), next_monday_at(15) + timedelta(minutes=30)

    # the enterprise member books 14:00–15:30 on next week's view
    log_in(page, ENTERPRISE, DEMO_PASSWORD)
    page.goto(f"{url}/instruments/{instrument_id}/book")
    page.get_by_test_id("next").click()
    page.locator(f'td[data-start="{start.isoformat()}"]').click()
    page.locator(f'td[data-start="{(end - timedelta(minutes=30)).isoformat()}"]').click()
    expect(page.get_by_test_id("price")).to_contain_text("¥700.00")
    page.locator("#accept_terms").check()
    page.locator("#submit").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(url)}/bookings/\d+$"))
    booking_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("state")).to_have_attribute("data-state", BookingState.REQUESTED.value)

    # and pays its share with a test card while the platform decides
    page.get_by_test_id("pay-link").click()
    expect(page.get_by_test_id("amount-due")).to_have_text("¥700.00")
    type_card(page, "4242424242424242")
    expect(page).to_have_url(re.compile(rf"/bookings/{booking_id}$"))
    booking = live_session.get(Booking, booking_id)
    assert (booking.state, booking.payment_state) == (BookingState.REQUESTED, PaymentState.AUTHORISED)
    live_session.rollback()

    # the platform's admin approves it in the queue
    admin_context = browser.new_context(**browser_context_args)
    admin_page = admin_context.new_page()
    log_in(admin_page, PLATFORM_ADMIN, DEMO_PASSWORD)
    admin_page.goto(f"{url}/platform/bookings/approvals")
    row = admin_page.locator(f'[data-testid="approval-row"][data-booking-id="{booking_id}"]')
    row.get_by_role("button", name=re.compile("批准|Approve")).click()
    expect(admin_page.locator(f'[data-testid="approval-row"][data-booking-id="{booking_id}"]')).to_have_count(0)
    admin_context.close()
    booking = live_session.get(Booking, booking_id)
    assert (booking.state, booking.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    live_session.rollback()

    # the member makes a private feed address; the booking is in the feed, confirmed, at its time
    page.goto(f"{url}/calendar")
    page.locator("main form").get_by_role("button").click()
    feed_url = page.get_by_test_id("feed-url").inner_text().strip()
    feed = requests.get(feed_url, timeout=10)
    assert feed.status_code == 200 and feed.headers["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(feed.content)
    ours = [event for event in recurring_ical_events.of(calendar).between(start - timedelta(days=1),
                                                                         end + timedelta(days=1))
            if str(event["UID"]) == f"booking-{booking_id}@kequip"]
    assert len(ours) == 1
    assert (ours[0].decoded("DTSTART"), ours[0].decoded("DTEND")) == (start, end)
    assert str(ours[0]["STATUS"]) == "CONFIRMED"
