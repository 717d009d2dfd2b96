"""An instrument's page in a real browser, on SQLite and on PostgreSQL: a visitor sees the week's free
and busy time (never who booked), the rules in words, the calendar feed and the photo, and is asked to
log in to book, then comes back to the booking page; an operator of the platform goes from the page's
calendar settings to its maintenance, enters a window, imports a recurring one from an ICS file, is
told how far it reaches and removes the series."""
from __future__ import annotations

import io
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from core.audit import Actor
from core.clock import LOCAL_ZONE, to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.models import User
from marketplace.booking import services as bookings
from marketplace.booking.availability import DayKind, day_kind
from marketplace.booking.models import MaintenanceWindow
from marketplace.registry import services
from tests.browser.test_booking_flow import PLATFORM_ADMIN, published_instrument

pytestmark = pytest.mark.live

ENTERPRISE, OPERATOR = "enterprise@kequip.test", "operator@kequip.test"


def ordinary_monday() -> date:
    """The first Monday from next week on that is an ordinary working day (no public holiday)."""
    today = to_local(utcnow()).date()
    monday = today + timedelta(days=7 - today.weekday())
    while day_kind(monday) != DayKind.ORDINARY:
        monday += timedelta(weeks=1)
    return monday


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=LOCAL_ZONE)


def test_a_visitor_sees_the_week_rules_feed_and_photo_and_logs_in_to_book(page, live_server, live_app,
                                                                          live_session):
    url, monday = live_server.url, ordinary_monday()
    instrument_id = published_instrument(live_session)
    instrument = services.get_instrument(live_session, instrument_id, None)
    admin = live_session.scalar(select(User).where(User.email == PLATFORM_ADMIN))
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "purple").save(buffer, "JPEG")
    services.add_photo(live_session, instrument, admin, actor=Actor.system("test"),
                       photo=services.prepare_photo(buffer.getvalue()), upload_dir=Path(live_app.config["UPLOAD_DIR"]))
    booker = live_session.scalar(select(User).where(User.email == ENTERPRISE))
    purpose = f"保密样品-{uuid.uuid4().hex[:6]}"
    bookings.book_instrument(live_session, actor=Actor.of(booker, None), user=booker, instrument_id=instrument_id,
                             start_at=at(monday, 9), end_at=at(monday, 10), now=utcnow(), purpose=purpose)
    live_session.commit()

    page.goto(f"{url}/instruments/{instrument_id}?week={monday.isoformat()}")
    grid = page.get_by_test_id("week-grid")
    expect(grid).to_be_visible()
    expect(grid.locator(f'td[data-start="{at(monday, 9).isoformat()}"]')).to_have_attribute("data-state", "busy")
    expect(grid.locator(f'td[data-start="{at(monday, 10).isoformat()}"]')).to_have_attribute("data-state", "free")
    body = page.locator("body").inner_text()
    assert booker.name not in body and booker.email not in body and purpose not in body
    expect(page.get_by_test_id("booking-rules")).to_contain_text("最短 30 分钟，最长 8 小时")
    expect(page.get_by_test_id("booking-rules")).to_contain_text("预约提交即生效，无需平台审批。")
    feed_url = page.get_by_test_id("ics-link").get_attribute("href")
    assert feed_url == f"{url}/instruments/{instrument_id}/calendar.ics"
    feed = page.request.get(feed_url)
    assert feed.status == 200 and feed.headers["content-type"].startswith("text/calendar")
    assert booker.name not in feed.text() and purpose not in feed.text()
    photo = page.get_by_test_id("photos").locator("img")
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 64
    expect(page.get_by_test_id("calendar-settings")).to_have_count(0)

    page.get_by_test_id("book-link").click()
    expect(page).to_have_url(f"{url}/instruments/{instrument_id}/book")
    page.locator("#email").fill(ENTERPRISE)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("main form").get_by_role("button").click()
    expect(page).to_have_url(f"{url}/instruments/{instrument_id}/book")
    expect(page.get_by_test_id("booking-form")).to_be_visible()


def test_an_operator_enters_maintenance_imports_a_series_and_removes_it(page, live_server, live_session, log_in):
    url, monday = live_server.url, ordinary_monday()
    instrument_id = published_instrument(live_session)
    log_in(page, OPERATOR, DEMO_PASSWORD)

    page.goto(f"{url}/instruments/{instrument_id}")
    settings = page.get_by_test_id("calendar-settings")
    expect(settings).to_be_visible()
    expect(settings.get_by_test_id("settings-rules")).to_have_count(0)
    settings.get_by_test_id("settings-maintenance").click()
    expect(page).to_have_url(f"{url}/instruments/{instrument_id}/maintenance-windows")
    page.locator("#start_at").fill(f"{monday.isoformat()}T13:30")
    page.locator("#end_at").fill(f"{monday.isoformat()}T15:00")
    page.locator("#reason").fill("真空泵换油")
    page.locator("#start_at").locator("xpath=ancestor::form").locator("[type=submit]").click()
    expect(page.get_by_test_id("window-row")).to_have_count(1)
    expect(page.get_by_test_id("window-row")).to_contain_text("真空泵换油")

    page.goto(f"{url}/instruments/{instrument_id}?week={monday.isoformat()}")
    expect(page.locator(f'td[data-start="{at(monday, 14).isoformat()}"]')).to_have_attribute("data-reason",
                                                                                            "maintenance")

    first = at(monday + timedelta(days=1), 8)
    ics = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uuid.uuid4()}@kequip.test\r\n"
           f"SUMMARY:周保养\r\nDTSTART;TZID=Asia/Shanghai:{first:%Y%m%dT%H%M%S}\r\nDTEND;TZID=Asia/Shanghai:"
           f"{first + timedelta(hours=1):%Y%m%dT%H%M%S}\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    page.goto(f"{url}/instruments/{instrument_id}/maintenance-windows")
    page.locator("#file").set_input_files(files=[{"name": "pm.ics", "mimeType": "text/calendar",
                                                  "buffer": ics.encode()}])
    page.locator("#file").locator("xpath=ancestor::form").locator("[type=submit]").click()
    until = to_local(utcnow() + timedelta(days=90)).date().isoformat()
    expect(page.locator("main")).to_contain_text(f"导入至 {until}（可预约期限）")
    expect(page.locator("main")).to_contain_text("之后的重复未导入")
    rows = page.get_by_test_id("window-row")
    series = rows.filter(has_text="周保养")
    count = series.count()
    assert count >= 10
    series.first.get_by_role("button", name=f"删除整个系列（{count}）").click()
    expect(page.locator("main")).to_contain_text(f"已删除该系列的 {count} 个维护时段")
    expect(page.get_by_test_id("window-row")).to_have_count(1)
    left = live_session.scalars(select(MaintenanceWindow.reason).where(
        MaintenanceWindow.instrument_id == instrument_id)).all()
    assert left == ["真空泵换油"]
