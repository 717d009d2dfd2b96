"""The platform's calendar pages: approvals, the day sheet with check-in and -out, schedules, booking
rules, maintenance, qualifications and service terms; and who may see them."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.models import OutboxMessage
from marketplace.booking import calendar_admin
from marketplace.booking import services as bookings
from marketplace.booking.availability import effective_rules
from marketplace.booking.models import BookingState, MaintenanceWindow, Qualification, ServiceTerms
from marketplace.registry.models import InstrumentState
from tests.marketplace.calendar_fixtures import other_admin, workday_at  # noqa: F401  (fixtures)


@pytest.fixture
def other_client(login_as, other_admin):
    """A client logged in as the admin of a second platform."""
    return login_as(other_admin.email)


@pytest.fixture
def to_approve(create_instrument):
    """A free instrument whose bookings the platform approves (by appointment)."""
    return create_instrument(state=InstrumentState.PUBLISHED, sharing_mode="appointment",
                             **{name: 0 for name in ("setup_fee_district_enterprise_fen",
                                                     "hourly_rate_district_enterprise_fen")})


@pytest.fixture
def open_now(session, demo_user, free_instrument):
    """The free instrument, open around the clock with no lead time: bookable from the next slot on, and
    its check-in open half an hour before the start (so the next slot can always be checked in, early)."""
    admin = demo_user("platform")
    calendar_admin.save_booking_rules(session, actor=Actor.of(admin, None), user=admin, instrument=free_instrument,
                                      values={"open_hours": {day: "00:00-24:00" for day in "0123456"},
                                              "closed_on_holidays": False, "lead_minutes": 0,
                                              "check_in_window_minutes": 30})
    return free_instrument


def text(response) -> str:
    return response.get_data(as_text=True)


# --- approvals ----------------------------------------------------------------------------------

def test_platform_approves_a_requested_booking(session, login_as, to_approve, workday_at, book):
    booking = book(to_approve, workday_at(9), workday_at(10))
    assert booking.state == BookingState.REQUESTED
    client = login_as("platform")
    page = client.get("/platform/bookings/approvals")
    assert page.status_code == 200 and f'data-booking-id="{booking.id}"' in text(page) and "纤维成分分析" in text(page)

    response = client.post(f"/platform/bookings/{booking.id}/approve")
    assert response.status_code == 302
    session.refresh(booking)
    assert booking.state == BookingState.CONFIRMED, "nothing to pay: approved and confirmed at once"
    assert f'data-booking-id="{booking.id}"' not in text(client.get("/platform/bookings/approvals"))


def test_platform_rejects_with_a_reason(session, login_as, to_approve, workday_at, book):
    booking = book(to_approve, workday_at(9), workday_at(10))
    client = login_as("platform")
    client.post(f"/platform/bookings/{booking.id}/reject", data={"reason": " "})
    session.refresh(booking)
    assert booking.state == BookingState.REQUESTED, "no reason, no rejection"

    client.post(f"/platform/bookings/{booking.id}/reject", data={"reason": "样品不符合要求"})
    session.refresh(booking)
    assert (booking.state, booking.decision_note) == (BookingState.REJECTED, "样品不符合要求")
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.template == "booking_rejected")
                          .order_by(OutboxMessage.id.desc()).limit(1))
    assert mail.to == "enterprise@kequip.test" and mail.context["note"] == "样品不符合要求"


def test_another_platforms_admin_cannot_act_on_or_see_the_booking(session, other_client, login_as, to_approve,
                                                                  workday_at, book):
    booking = book(to_approve, workday_at(9), workday_at(10))
    assert f'data-booking-id="{booking.id}"' not in text(other_client.get("/platform/bookings/approvals"))
    assert other_client.post(f"/platform/bookings/{booking.id}/approve").status_code == 404
    assert other_client.post(f"/platform/bookings/{booking.id}/reject", data={"reason": "x"}).status_code == 404
    assert login_as("operator").post(f"/platform/bookings/{booking.id}/approve").status_code == 403
    session.refresh(booking)
    assert booking.state == BookingState.REQUESTED


# --- day sheet, check-in and check-out ----------------------------------------------------------

def test_day_sheet_lists_who_comes_when_with_operator_flags(session, login_as, free_instrument, workday_at, book,
                                                           demo_user):
    admin = demo_user("platform")
    calendar_admin.save_booking_rules(session, actor=Actor.of(admin, None), user=admin, instrument=free_instrument,
                                      values={"requires_operator": True})
    morning = book(free_instrument, workday_at(9), workday_at(10))
    afternoon = book(free_instrument, workday_at(14), workday_at(15, 30))
    elsewhere = book(free_instrument, workday_at(9, weeks=3), workday_at(10, weeks=3))
    day = to_local(workday_at(9)).date().isoformat()
    for who in ("platform", "operator"):
        page = text(login_as(who).get(f"/platform/day-sheet?day={day}"))
        assert page.index(f'data-booking-id="{morning.id}"') < page.index(f'data-booking-id="{afternoon.id}"')
        assert f'data-booking-id="{elsewhere.id}"' not in page
        assert "企业用户" in page and "09:00–10:00" in page and "14:00–15:30" in page
        assert page.count('data-testid="needs-operator"') == 2
    assert login_as("enterprise").get(f"/platform/day-sheet?day={day}").status_code == 403
    assert login_as("platform").get("/platform/day-sheet?day=not-a-day").status_code == 200


def test_operator_checks_a_user_in_and_out(session, login_as, open_now, book, demo_user):
    start = to_local(utcnow()).replace(second=0, microsecond=0)
    start = start + timedelta(minutes=30 - start.minute % 30)  # the next slot, within the hour
    booking = book(open_now, start, start + timedelta(hours=1))
    assert booking.state == BookingState.CONFIRMED
    client = login_as("operator")
    page = text(client.get(f"/platform/day-sheet?day={start.date().isoformat()}"))
    assert f"/platform/bookings/{booking.id}/check-in" in page
    assert f"/platform/bookings/{booking.id}/check-out" not in page

    step = client.post(f"/platform/bookings/{booking.id}/check-in")  # before the start: the operator confirms
    assert step.status_code == 200 and 'data-testid="check-in-confirm"' in text(step) and "提前" in text(step)
    session.refresh(booking)
    assert booking.state == BookingState.CONFIRMED
    assert client.post(f"/platform/bookings/{booking.id}/check-in", data={"confirm": "y"}).status_code == 302
    session.refresh(booking)
    assert booking.state == BookingState.IN_PROGRESS and booking.checked_in_at is not None
    assert booking.operator_id == demo_user("operator").id
    page = text(client.get(f"/platform/day-sheet?day={start.date().isoformat()}"))
    assert f"/platform/bookings/{booking.id}/check-out" in page

    assert client.post(f"/platform/bookings/{booking.id}/check-out").status_code == 302
    session.refresh(booking)
    assert booking.state == BookingState.COMPLETED and booking.checked_out_at >= booking.checked_in_at
    assert booking.final_price_fen == 0


def test_check_in_too_early_is_refused_with_a_message(session, login_as, free_instrument, workday_at, book):
    booking = book(free_instrument, workday_at(9, weeks=2), workday_at(10, weeks=2))
    client = login_as("operator")
    response = client.post(f"/platform/bookings/{booking.id}/check-in", follow_redirects=True)
    assert response.status_code == 200 and "alert-danger" in text(response)
    session.refresh(booking)
    assert booking.state == BookingState.CONFIRMED


def test_another_platforms_admin_cannot_check_in(session, other_client, open_now, book):
    start = to_local(utcnow()).replace(second=0, microsecond=0)
    start = start + timedelta(minutes=30 - start.minute % 30)
    booking = book(open_now, start, start + timedelta(hours=1))
    assert other_client.post(f"/platform/bookings/{booking.id}/check-in").status_code == 404
    session.refresh(booking)
    assert booking.state == BookingState.CONFIRMED


# --- schedule and calendar settings -------------------------------------------------------------

def test_schedule_shows_the_week_with_states_bookers_and_maintenance(session, login_as, free_instrument, workday_at,
                                                                     book, other_client, demo_user):
    booking = book(free_instrument, workday_at(9), workday_at(10))
    admin = demo_user("platform")
    calendar_admin.add_maintenance_window(session, actor=Actor.of(admin, None), user=admin, instrument=free_instrument,
                                          start_at=workday_at(14), end_at=workday_at(16), reason="季度保养",
                                          now=utcnow())
    week = to_local(workday_at(9)).date().isoformat()
    for who in ("platform", "operator"):
        page = text(login_as(who).get(f"/instruments/{free_instrument.id}/schedule?week={week}"))
        assert f'data-booking-id="{booking.id}"' in page and 'data-state="confirmed"' in page and "企业用户" in page
        assert 'data-testid="schedule-maintenance"' in page and "季度保养" in page
    assert other_client.get(f"/instruments/{free_instrument.id}/schedule").status_code == 403
    assert login_as("enterprise").get(f"/instruments/{free_instrument.id}/schedule").status_code == 403


def test_platform_calendar_lists_instruments_and_their_rules_source(login_as, free_instrument):
    page = text(login_as("platform").get("/platform/calendar"))
    assert free_instrument.name_zh in page and f"/instruments/{free_instrument.id}/booking-rules" in page


RULES_FORM = {f"open_hours_{day}": "08:00-12:00, 13:00-18:00" for day in "01234"} | {
    "open_hours_5": "09:00-12:00", "open_hours_6": "", "closed_on_holidays": "y", "slot_minutes": "15",
    "min_minutes": "30", "max_minutes": "240", "lead_minutes": "60", "horizon_days": "60", "buffer_minutes": "15",
    "qualification": "operator", "free_cancel_hours": "12", "late_cancel_fee_pct": "30", "no_show_fee_pct": "80",
    "no_show_grace_minutes": "20", "waitlist_offer_minutes": "60", "check_in_window_minutes": "10"}


def test_instrument_rules_form_saves_own_rules_and_resets_to_defaults(session, login_as, create_instrument):
    instrument = create_instrument()
    client = login_as("platform")
    url = f"/instruments/{instrument.id}/booking-rules"
    page = text(client.get(url))
    assert 'data-testid="rules-source"' in page and "08:30-12:00, 13:30-17:30" in page
    assert calendar_admin.own_rules(session, instrument) is None

    assert client.post(url, data=RULES_FORM).status_code == 302
    rules = calendar_admin.own_rules(session, instrument)
    assert rules.open_hours["0"] == [["08:00", "12:00"], ["13:00", "18:00"]] and rules.open_hours["6"] == []
    assert (rules.slot_minutes, rules.buffer_minutes, rules.qualification.value) == (15, 15, "operator")
    assert rules.requires_approval is False and rules.closed_on_holidays is True

    assert client.post(f"{url}/reset").status_code == 302
    assert calendar_admin.own_rules(session, instrument) is None


def test_bad_rules_are_shown_beside_their_fields(session, login_as, create_instrument):
    instrument = create_instrument()
    response = login_as("platform").post(f"/instruments/{instrument.id}/booking-rules",
                                         data=RULES_FORM | {"open_hours_1": "12:00-08:00", "slot_minutes": "7"})
    assert response.status_code == 422
    page = text(response)
    assert page.count("invalid-feedback") >= 2 and "12:00-08:00" in page
    assert calendar_admin.own_rules(session, instrument) is None


def test_bureau_edits_the_district_defaults(session, login_as, create_instrument):
    instrument = create_instrument()
    client = login_as("bureau")
    assert "08:30-12:00, 13:30-17:30" in text(client.get("/booking-rules"))
    assert client.post("/booking-rules", data=RULES_FORM | {"buffer_minutes": "5"}).status_code == 302
    assert effective_rules(session, instrument).buffer_minutes == 5
    assert login_as("platform").get("/booking-rules").status_code == 403


def test_another_platforms_admin_cannot_open_the_settings(other_client, create_instrument):
    instrument = create_instrument()
    for path in ("booking-rules", "maintenance-windows", "qualifications"):
        assert other_client.get(f"/instruments/{instrument.id}/{path}").status_code == 403
    assert other_client.post(f"/instruments/{instrument.id}/booking-rules", data=RULES_FORM).status_code == 403


def test_maintenance_page_adds_imports_lists_hits_and_removes(session, login_as, free_instrument, workday_at, book):
    booking = book(free_instrument, workday_at(9), workday_at(10))
    client = login_as("platform")
    url = f"/instruments/{free_instrument.id}/maintenance-windows"
    local = to_local(workday_at(9, 30))
    response = client.post(url, data={"start_at": f"{local:%Y-%m-%dT%H:%M}",
                                      "end_at": f"{local + timedelta(hours=2):%Y-%m-%dT%H:%M}", "reason": "校准"},
                           follow_redirects=True)
    page = text(response)
    assert response.status_code == 200 and 'data-testid="maintenance-conflicts"' in page
    assert f'data-booking-id="{booking.id}"' in page and "校准" in page

    start = to_local(workday_at(14, weeks=2))
    ics = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:pm@kequip.test\r\n"
           f"DTSTART;TZID=Asia/Shanghai:{start:%Y%m%dT%H%M%S}\r\nDTEND;TZID=Asia/Shanghai:"
           f"{start + timedelta(hours=1):%Y%m%dT%H%M%S}\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\n"
           f"END:VCALENDAR\r\n").encode()
    for _attempt in range(2):
        client.post(f"{url}/import", data={"file": (io.BytesIO(ics), "pm.ics")}, content_type="multipart/form-data")
    windows = calendar_admin.list_maintenance_windows(session, free_instrument.id, now=utcnow())
    assert len(windows) == 3

    bad = client.post(f"{url}/import", data={"file": (io.BytesIO(b"not a calendar"), "x.ics")},
                      content_type="multipart/form-data")
    assert bad.status_code == 422 and "invalid-feedback" in text(bad)
    assert len(calendar_admin.list_maintenance_windows(session, free_instrument.id, now=utcnow())) == 3

    assert client.post(f"/maintenance-windows/{windows[0].id}/delete").status_code == 302
    assert session.scalar(select(MaintenanceWindow).where(MaintenanceWindow.id == windows[0].id)) is None
    assert 'data-testid="maintenance-conflicts"' not in text(client.get(url))


def test_an_operator_imports_a_series_sees_how_far_it_reaches_and_removes_it(session, login_as, free_instrument,
                                                                           workday_at):
    start = to_local(workday_at(8))
    ics = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:weekly-pm@kequip.test\r\n"
           f"SUMMARY:周保养\r\nDTSTART;TZID=Asia/Shanghai:{start:%Y%m%dT%H%M%S}\r\nDTEND;TZID=Asia/Shanghai:"
           f"{start + timedelta(hours=1):%Y%m%dT%H%M%S}\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    client = login_as("operator")
    url = f"/instruments/{free_instrument.id}/maintenance-windows"
    until = to_local(utcnow() + timedelta(days=90)).date().isoformat()
    assert f"重复事件展开至 {until}" in text(client.get(url))
    response = client.post(f"{url}/import", data={"file": (io.BytesIO(ics), "pm.ics")},
                           content_type="multipart/form-data", follow_redirects=True)
    page = text(response)
    assert response.status_code == 200 and f"导入至 {until}（可预约期限）" in page
    assert f"重复事件在 {until} 之后仍有后续：之后的重复未导入" in page
    windows = calendar_admin.list_maintenance_windows(session, free_instrument.id, now=utcnow())
    assert 12 <= len(windows) <= 13 and {w.series_uid for w in windows} == {"weekly-pm@kequip.test"}
    assert f"删除整个系列（{len(windows)}）" in page

    removed = client.post(f"/maintenance-windows/{windows[3].id}/delete-series", follow_redirects=True)
    assert f"已删除该系列的 {len(windows)} 个维护时段" in text(removed)
    assert calendar_admin.list_maintenance_windows(session, free_instrument.id, now=utcnow()) == []
    assert client.post(f"/maintenance-windows/{windows[3].id}/delete-series").status_code == 404
    assert login_as("enterprise").post(f"/maintenance-windows/{windows[0].id}/delete-series").status_code == 403


def test_an_ics_file_is_parsed_with_no_transaction_open(session, login_as, free_instrument, workday_at,
                                                       transaction_spy):
    start = to_local(workday_at(14, weeks=1))
    ics = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:spy@kequip.test\r\n"
           f"DTSTART;TZID=Asia/Shanghai:{start:%Y%m%dT%H%M%S}\r\nDTEND;TZID=Asia/Shanghai:"
           f"{start + timedelta(hours=1):%Y%m%dT%H%M%S}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    transaction_spy.watch(calendar_admin, "read_maintenance_ics")
    response = login_as("platform").post(f"/instruments/{free_instrument.id}/maintenance-windows/import",
                                         data={"file": (io.BytesIO(ics), "spy.ics")}, content_type="multipart/form-data")
    assert response.status_code == 302 and transaction_spy.open_at_calls == [False]
    assert len(calendar_admin.list_maintenance_windows(session, free_instrument.id, now=utcnow())) == 1


def test_qualifications_page_grants_and_revokes(session, login_as, create_instrument):
    instrument = create_instrument()
    client = login_as("platform")
    url = f"/instruments/{instrument.id}/qualifications"
    expiry = (to_local(utcnow()).date() + timedelta(days=30)).isoformat()
    assert client.post(url, data={"email": "enterprise@kequip.test", "expires_on": expiry}).status_code == 302
    page = text(client.get(url))
    assert "企业用户" in page and expiry in page
    assert client.post(url, data={"email": "nobody@kequip.test"}).status_code == 422

    qualification = session.scalar(select(Qualification).where(Qualification.instrument_id == instrument.id))
    assert client.post(f"/qualifications/{qualification.id}/revoke").status_code == 302
    assert session.scalar(select(Qualification).where(Qualification.id == qualification.id)) is None


def test_service_terms_page_publishes_new_versions(session, login_as, demo_user):
    platform_id = demo_user("platform").grants[0].organisation_id
    client = login_as("platform")
    page = text(client.get("/platform/service-terms"))
    assert 'data-testid="current-terms"' in page and "保密义务" in page  # the district's model terms, to start from
    texts = {"scope": "检测服务", "confidentiality": "保密", "intellectual_property": "数据归用户",
             "liability": "照价赔偿"}
    assert client.post("/platform/service-terms", data=texts).status_code == 302
    assert client.post("/platform/service-terms", data=texts).status_code == 422  # nothing changed
    assert client.post("/platform/service-terms", data=texts | {"liability": "另议"}).status_code == 302
    versions = session.scalars(select(ServiceTerms.version).where(ServiceTerms.platform_id == platform_id)
                               .order_by(ServiceTerms.version)).all()
    assert versions == [1, 2]
    assert bookings.current_terms(session, platform_id).liability == "另议"
    page = text(client.get("/platform/service-terms"))
    assert 'data-testid="terms-versions"' in page and "另议" in page


def test_nav_shows_the_calendar_pages_by_role(login_as):
    assert "/platform/bookings/approvals" in text(login_as("platform").get("/platform/day-sheet"))
    operator = text(login_as("operator").get("/platform/day-sheet"))
    assert 'href="/platform/day-sheet"' in operator and "/platform/bookings/approvals" not in operator
    assert 'href="/booking-rules"' in text(login_as("bureau").get("/booking-rules"))
