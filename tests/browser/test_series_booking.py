"""A weekly series in a real browser against the live server and a real localstripe, on SQLite and
PostgreSQL: the booker asks for three weeks, reads the preview (a week taken by someone else is
skipped, the total to the fen), confirms, reloads the result without booking again, pays the series in
one card payment, and finds the bookings marked as theirs in the week grid."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from core.audit import Actor
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.models import User
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking
from marketplace.payments.models import Payment, PaymentState
from tests.browser.test_booking_flow import ENTERPRISE, next_monday_at, published_instrument
from tests.browser.test_payment_page import type_card

pytestmark = pytest.mark.live


def test_a_series_is_previewed_confirmed_paid_at_once_and_marked_as_mine(page, live_server, live_session, log_in):
    url = live_server.url
    instrument_id = published_instrument(live_session)
    start, end = next_monday_at(9), next_monday_at(10)
    operator = live_session.scalar(select(User).where(User.email == "operator@kequip.test"))
    bookings.book_instrument(live_session, actor=Actor.system("test"), user=operator, instrument_id=instrument_id,
                             start_at=start + timedelta(weeks=1), end_at=end + timedelta(weeks=1), now=utcnow())
    live_session.commit()
    log_in(page, ENTERPRISE, DEMO_PASSWORD)

    page.goto(f"{url}/instruments/{instrument_id}/book?start={start.isoformat()}&end={end.isoformat()}".replace(
        "+", "%2B"))
    page.locator("#weeks").fill("3")
    page.locator("#accept_terms").check()
    page.locator("#submit").click()

    expect(page.get_by_test_id("series-booked-row")).to_have_count(2)
    skipped = page.get_by_test_id("series-skipped-row")
    expect(skipped).to_have_count(1)
    expect(skipped).to_have_attribute("data-kind", "conflict")
    expect(page.get_by_test_id("series-payable")).to_have_text("¥1,000.00")
    if os.environ.get("KEQUIP_SCREENSHOTS"):
        page.screenshot(path=os.environ["KEQUIP_SCREENSHOTS"] + "/series-preview.png", full_page=True)
    assert live_session.scalar(select(func.count()).select_from(Booking).where(
        Booking.instrument_id == instrument_id)) == 1  # the preview booked nothing
    live_session.rollback()

    page.get_by_test_id("series-confirm").click()
    expect(page).to_have_url(re.compile(r"/booking-series/\d+$"))
    page.reload()
    expect(page.get_by_test_id("series-booked-row")).to_have_count(2)
    mine = live_session.scalars(select(Booking).where(Booking.instrument_id == instrument_id,
                                                      Booking.booker.has(email=ENTERPRISE))).all()
    assert len(mine) == 2  # the reload booked nothing more
    live_session.rollback()

    page.get_by_test_id("series-pay-link").click()
    expect(page.get_by_test_id("series-due-total")).to_have_text("¥1,000.00")
    type_card(page, "4242424242424242")
    expect(page).to_have_url(re.compile(r"/booking-series/\d+$"))
    parts = live_session.scalars(select(Payment).where(Payment.booking_id.in_([b.id for b in mine]))).all()
    assert len(parts) == 2 and len({p.intent_id for p in parts}) == 1
    assert [live_session.get(Booking, b.id).payment_state for b in mine] == [PaymentState.PAID] * 2
    live_session.rollback()

    page.goto(f"{url}/instruments/{instrument_id}/book?week={start.date().isoformat()}")
    own = page.locator(f'td[data-start="{start.isoformat()}"]')
    expect(own).to_have_attribute("data-reason", "mine")
    expect(own.get_by_test_id("own-booking")).to_contain_text("我的")
    if os.environ.get("KEQUIP_SCREENSHOTS"):
        page.screenshot(path=os.environ["KEQUIP_SCREENSHOTS"] + "/series-grid.png", full_page=True)
