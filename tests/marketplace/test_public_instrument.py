"""An instrument's page as anyone sees it: the week's free and busy time (never who booked), the booking
rules in words, the public calendar feed and the photos; booking asks to log in. And the calendar
settings its platform's staff reach from it (marketplace/catalogue/views.py: instrument)."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.models import AuditEntry
from marketplace.booking import calendar_admin
from marketplace.booking.models import MaintenanceWindow
from marketplace.registry import services
from tests.marketplace.calendar_fixtures import other_admin, workday_at  # noqa: F401  (fixtures)
from tests.marketplace.test_booking_pages import page


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def busy_week(app, session, demo_user, free_instrument, workday_at, book, tmp_path, monkeypatch):
    """The free instrument with a photo, a booking at 09:00–10:00 and maintenance at 14:00–15:00 of one
    working Monday; returns (instrument, booking, the Monday's ISO date, photo's stored name)."""
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    admin = demo_user("platform")
    photo = services.add_photo(session, free_instrument, admin, actor=Actor.of(admin, None),
                               photo=services.prepare_photo(jpeg()), upload_dir=tmp_path)
    booking = book(free_instrument, workday_at(9), workday_at(10), purpose="机密配方成分分析")
    calendar_admin.add_maintenance_window(session, actor=Actor.of(admin, None), user=admin, instrument=free_instrument,
                                          start_at=workday_at(14), end_at=workday_at(15), reason="更换灯丝",
                                          now=utcnow())
    session.commit()
    return free_instrument, booking, to_local(workday_at(9)).date().isoformat(), photo.stored_name


def test_anyone_sees_the_week_rules_feed_and_photos_but_never_who_booked(client, busy_week, workday_at):
    instrument, booking, monday, stored_name = busy_week
    response = client.get(f"/instruments/{instrument.id}?week={monday}")
    assert response.status_code == 200
    shown, html = page(response), response.get_data(as_text=True)
    assert shown.text("week-range").startswith(monday)
    assert shown.slot(workday_at(9))["data-state"] == "busy"
    assert shown.slot(workday_at(9, 30))["data-reason"] == "busy"
    assert shown.slot(workday_at(10))["data-state"] == "free"
    assert (shown.slot(workday_at(14))["data-state"], shown.slot(workday_at(14))["data-reason"]) == (
        "closed", "maintenance")
    assert shown.slot(workday_at(12))["data-reason"] == "hours", "closed over lunch under the district's hours"
    for secret in (booking.booker.name, booking.booker.email, "机密配方成分分析", "更换灯丝"):
        assert secret not in html
    rules = shown.text("booking-rules")
    assert "周一–周五 08:30–12:00, 13:30–17:30" in rules and "周六–周日 不开放" in rules
    assert "最短 30 分钟，最长 8 小时，以 30 分钟 为单位。" in rules
    assert "须在开始前至少 2 小时 预约。" in rules and "最多可提前 90 天预约。" in rules
    assert "预约提交即生效，无需平台审批。" in rules and "法定节假日不开放" in rules
    assert shown.find("a", data_testid="ics-link")[0]["href"] == f"http://localhost/instruments/{instrument.id}/calendar.ics"
    assert shown.find("img", src=f"/instruments/photos/{stored_name}")
    assert not shown.find("div", data_testid="calendar-settings")
    assert shown.text("book-link") == "登录后预约"
    feed = client.get(f"/instruments/{instrument.id}/calendar.ics")
    assert feed.status_code == 200 and booking.booker.name not in feed.get_data(as_text=True)


def test_the_rules_say_when_the_platform_approves(client, create_instrument, own_rules):
    instrument = create_instrument(state="published")
    own_rules(instrument, requires_approval=True, lead_minutes=0, horizon_days=1, min_minutes=60, max_minutes=1500,
              slot_minutes=60, allows_overnight=True, closed_on_holidays=False)
    rules = page(client.get(f"/instruments/{instrument.id}")).text("booking-rules")
    assert "每个预约须经平台审批后生效。" in rules and "开始前均可预约。" in rules and "最多可提前 1 天预约。" in rules
    assert "最短 1 小时，最长 1 天 1 小时，以 1 小时 为单位。" in rules
    assert "预约可跨越关门时间并过夜运行。" in rules and "法定节假日照常开放。" in rules


def test_the_week_moves_and_bad_weeks_fall_back_to_this_one(client, free_instrument):
    this_week = page(client.get(f"/instruments/{free_instrument.id}"))
    monday = to_local(utcnow()).date() - timedelta(days=to_local(utcnow()).weekday())
    assert this_week.text("week-range").startswith(monday.isoformat())
    later = this_week.find("a", data_testid="next-week")[0]["href"]
    assert later.endswith(f"week={(monday + timedelta(days=7)).isoformat()}")
    assert page(client.get(later)).text("week-range").startswith((monday + timedelta(days=7)).isoformat())
    for bad in ("not-a-day", "1999-01-01", "2100-01-04", "2026-02-30", "2026-13-01"):
        response = client.get(f"/instruments/{free_instrument.id}", query_string={"week": bad})
        assert response.status_code == 200 and page(response).text("week-range").startswith(monday.isoformat())
    last = page(client.get(f"/instruments/{free_instrument.id}?week=2099-12-28"))
    assert last.text("week-range").startswith("2099-12-28") and not last.find("a", data_testid="next-week")


def test_booking_asks_a_visitor_to_log_in_and_comes_back(client, free_instrument):
    link = page(client.get(f"/instruments/{free_instrument.id}")).find("a", data_testid="book-link")[0]["href"]
    asked = client.get(link)
    assert asked.status_code == 401
    login_form = page(asked).find("form")[0]
    assert login_form["action"] == f"/login?next=/instruments/{free_instrument.id}/book"
    back = client.post(login_form["action"], data={"email": "enterprise@kequip.test", "password": "kequip-demo"})
    assert back.status_code == 302 and back.location == f"/instruments/{free_instrument.id}/book"
    booking_page = page(client.get(back.location))
    assert booking_page.find("form", data_testid="booking-form")
    assert page(client.get(f"/instruments/{free_instrument.id}")).text("book-link") == "预约"


def test_calendar_settings_are_linked_for_the_platforms_staff_only(login_as, free_instrument, other_admin):
    url = f"/instruments/{free_instrument.id}"
    admin = page(login_as("platform").get(url))
    links = {testid: admin.find("a", data_testid=testid)[0]["href"] for testid in (
        "settings-schedule", "settings-rules", "settings-maintenance", "settings-qualifications", "settings-terms")}
    assert links == {"settings-schedule": f"{url}/schedule", "settings-rules": f"{url}/booking-rules",
                     "settings-maintenance": f"{url}/maintenance-windows",
                     "settings-qualifications": f"{url}/qualifications",
                     "settings-terms": f"/platform/service-terms?platform_id={free_instrument.platform_id}"}
    client = login_as("platform")
    assert all(client.get(href).status_code == 200 for href in links.values())
    operator = page(login_as("operator").get(url))
    assert operator.find("a", data_testid="settings-maintenance") and operator.find("a", data_testid="settings-schedule")
    assert not operator.find("a", data_testid="settings-rules") and not operator.find("a", data_testid="settings-terms")
    for outsider in ("enterprise", "bureau", other_admin.email):
        assert not page(login_as(outsider).get(url)).find("div", data_testid="calendar-settings")


def test_an_operator_enters_and_removes_maintenance_but_cannot_change_rules(session, login_as, free_instrument,
                                                                            workday_at, demo_user, other_admin):
    client, operator = login_as("operator"), demo_user("operator")
    url = f"/instruments/{free_instrument.id}/maintenance-windows"
    assert client.get(url).status_code == 200
    local = to_local(workday_at(9))
    added = client.post(url, data={"start_at": f"{local:%Y-%m-%dT%H:%M}",
                                   "end_at": f"{local + timedelta(hours=3):%Y-%m-%dT%H:%M}", "reason": "真空泵换油"})
    assert added.status_code == 302
    window = session.scalar(select(MaintenanceWindow).where(MaintenanceWindow.instrument_id == free_instrument.id))
    assert (window.reason, window.start_at, window.created_by_id) == ("真空泵换油", workday_at(9), operator.id)

    rules = f"/instruments/{free_instrument.id}/booking-rules"
    assert client.get(rules).status_code == 403
    assert client.post(rules, data={"buffer_minutes": "30"}).status_code == 403
    assert client.post(f"{rules}/reset").status_code == 403
    assert client.get(f"/instruments/{free_instrument.id}/qualifications").status_code == 403
    assert client.get("/platform/service-terms").status_code == 403
    assert calendar_admin.own_rules(session, free_instrument) is None

    assert login_as(other_admin.email).post(f"/maintenance-windows/{window.id}/delete").status_code == 403
    assert client.post(f"/maintenance-windows/{window.id}/delete").status_code == 302
    assert session.scalar(select(MaintenanceWindow).where(MaintenanceWindow.id == window.id)) is None
    trail = session.execute(select(AuditEntry.action, AuditEntry.actor_id).where(
        AuditEntry.subject_type == "maintenance_windows", AuditEntry.subject_id == window.id)
        .order_by(AuditEntry.id)).all()
    assert trail == [("maintenance_window.added", operator.id), ("maintenance_window.removed", operator.id)]
    assert login_as("enterprise").get(url).status_code == 403
