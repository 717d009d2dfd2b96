"""The operator's day sheet in a real browser, on SQLite and on PostgreSQL: checking a user in before
the booking's start asks the operator to confirm on a step of its own, and the check-in is made only
once they do. The live database is shared and committed, so the test books an instrument of its own."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.models import User
from marketplace.booking import calendar_admin
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingState
from marketplace.registry import services
from marketplace.registry.models import Instrument
from tests.browser.test_booking_flow import ENTERPRISE, PLATFORM_ADMIN, published_instrument

pytestmark = pytest.mark.live

OPERATOR = "operator@kequip.test"


def booking_in_the_next_slot(session) -> int:
    """A free instrument open around the clock, its check-in open half an hour before the start, and the
    enterprise's confirmed booking of the next half-hour slot: checking in now is early."""
    instrument_id = published_instrument(session, **{name: 0 for name in services.FEE_FIELDS})
    admin = session.scalar(select(User).where(User.email == PLATFORM_ADMIN))
    enterprise = session.scalar(select(User).where(User.email == ENTERPRISE))
    instrument = session.get(Instrument, instrument_id)
    calendar_admin.save_booking_rules(session, actor=Actor.system("test"), user=admin, instrument=instrument,
                                      values={"open_hours": {day: "00:00-24:00" for day in "0123456"},
                                              "closed_on_holidays": False, "lead_minutes": 0,
                                              "check_in_window_minutes": 30})
    start = to_local(utcnow()).replace(second=0, microsecond=0)
    start += timedelta(minutes=30 - start.minute % 30)
    booking = bookings.book_instrument(session, actor=Actor.system("test"), user=enterprise,
                                       instrument_id=instrument_id, start_at=start, end_at=start + timedelta(hours=1),
                                       now=utcnow(), purpose="签到确认测试")
    assert booking.state == BookingState.CONFIRMED
    booking_id = booking.id
    session.commit()
    return booking_id


def test_an_early_check_in_is_confirmed_on_its_own_step(page, live_server, live_session, log_in):
    booking_id = booking_in_the_next_slot(live_session)
    day = to_local(live_session.get(Booking, booking_id).start_at).date().isoformat()
    live_session.rollback()
    log_in(page, OPERATOR, DEMO_PASSWORD)

    page.goto(f"{live_server.url}/platform/day-sheet?day={day}")
    row = page.locator(f'tr[data-booking-id="{booking_id}"]')
    expect(row.get_by_test_id("state")).to_have_attribute("data-state", "confirmed")
    row.get_by_role("button", name="签到").click()

    expect(page.get_by_test_id("check-in-confirm")).to_contain_text("提前")
    expect(page.get_by_test_id("step-booking")).to_have_attribute("data-booking-id", str(booking_id))
    assert live_session.get(Booking, booking_id).state == BookingState.CONFIRMED  # nothing yet
    live_session.rollback()

    page.get_by_role("button", name="确认签到").click()
    expect(page).to_have_url(f"{live_server.url}/platform/day-sheet?day={day}")
    expect(page.locator(".alert-success")).to_contain_text("已签到")
    expect(page.locator(f'tr[data-booking-id="{booking_id}"]').get_by_test_id("state")).to_have_attribute(
        "data-state", "in_progress")
    booking = live_session.get(Booking, booking_id)
    assert booking.state == BookingState.IN_PROGRESS and booking.checked_in_at < booking.start_at
