"""Booking in a real browser against the live server, on SQLite and on PostgreSQL: an enterprise member
opens an instrument's week, clicks a free slot and a later one to extend it, sees the price for their
rate, accepts the service terms and books. The live database is shared and committed, so the test books
an instrument of its own. Selectors are ids, data-testid and the slots' data-start (ISO with offset)."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core.audit import Actor
from core.clock import LOCAL_ZONE, to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.models import Platform, User
from marketplace.booking.models import Booking, BookingState
from marketplace.registry import services
from marketplace.registry.models import UserType
from tests.marketplace.conftest import instrument_values

pytestmark = pytest.mark.live

ENTERPRISE, PLATFORM_ADMIN, BUREAU_ADMIN = "enterprise@kequip.test", "platform@kequip.test", "bureau@kequip.test"


def published_instrument(session, **changes) -> int:
    """A published instrument of the demo platform: ¥100.00 + ¥400.00 an hour for district enterprises."""
    admin = session.scalar(select(User).where(User.email == PLATFORM_ADMIN))
    bureau = session.scalar(select(User).where(User.email == BUREAU_ADMIN))
    platform = session.get(Platform, admin.grants[0].organisation_id)
    instrument = services.create_instrument(
        session, platform, admin, actor=Actor.system("test"), submit=True, now=utcnow(),
        values=instrument_values(session, **{"asset_number": f"KQ-BK-{uuid.uuid4().hex[:10]}",
                                             "model": f"Booking-{uuid.uuid4().hex[:8]}", **changes}))
    services.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
    instrument_id = instrument.id
    session.commit()  # and no read after it: on SQLite a live transaction would hold the write lock
    return instrument_id


def next_monday_at(hour: int) -> datetime:
    """Monday of next week at this Asia/Shanghai hour: within the default lead time and horizon."""
    today = to_local(utcnow()).date()
    return datetime.combine(today + timedelta(days=7 - today.weekday()), time(hour), tzinfo=LOCAL_ZONE)


def test_an_enterprise_member_books_a_free_slot_on_the_week_view(page, live_server, live_session, log_in):
    url = live_server.url
    instrument_id = published_instrument(live_session)
    start, last_slot = next_monday_at(9), next_monday_at(10) + timedelta(minutes=30)
    log_in(page, ENTERPRISE, DEMO_PASSWORD)

    page.goto(f"{url}/instruments/{instrument_id}")
    page.get_by_test_id("book-link").click()
    expect(page).to_have_url(f"{url}/instruments/{instrument_id}/book")
    page.get_by_test_id("next").click()
    expect(page.get_by_test_id("calendar-range")).to_contain_text(start.date().isoformat())

    first = page.locator(f'td[data-start="{start.isoformat()}"]')
    expect(first).to_have_attribute("data-state", "free")
    first.click()
    page.locator(f'td[data-start="{last_slot.isoformat()}"]').click()  # extends the selection to 11:00
    expect(page.locator("#start")).to_have_value(start.strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator("#end")).to_have_value(next_monday_at(11).strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator("td.slot-selected")).to_have_count(4)
    expect(page.get_by_test_id("price")).to_contain_text(re.compile(r"¥100\.00 \+ ¥400\.00 × 2 .*= ¥900\.00"))

    page.get_by_test_id("terms").scroll_into_view_if_needed()
    page.locator("#accept_terms").check()
    page.locator("#submit").click()

    expect(page).to_have_url(re.compile(rf"{re.escape(url)}/bookings/\d+$"))
    expect(page.get_by_test_id("state")).to_have_attribute("data-state", BookingState.APPROVED.value)
    expect(page.get_by_test_id("payable")).to_have_text("¥900.00")
    booking_id = int(page.url.rsplit("/", 1)[1])
    booking = live_session.get(Booking, booking_id)
    assert (booking.instrument_id, booking.start_at, booking.end_at) == (instrument_id, start, next_monday_at(11))
    assert (booking.user_type, booking.price_fen, booking.booker.email) == (
        UserType.DISTRICT_ENTERPRISE, 90_000, ENTERPRISE)
    live_session.rollback()
