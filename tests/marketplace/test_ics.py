"""iCalendar feeds: every feed is parsed with icalendar and recurring_ical_events and
every occurrence (start, end, UID, SEQUENCE, STATUS) is compared with the database."""
from __future__ import annotations

import re
from datetime import timedelta

import icalendar
import pytest
import recurring_ical_events
from sqlalchemy import select

from core.audit import Actor
from core.db import utcnow
from core.models import AuditEntry
from marketplace.booking import ics
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingState, MaintenanceWindow
from marketplace.registry.models import InstrumentState
from tests.marketplace.booking_fixtures import appointment_instrument, workday_at  # noqa: F401  (fixtures)

FEED_URL = re.compile(r'data-testid="feed-url">([^<]+)<')


@pytest.fixture
def cancel(session, demo_user):
    def make(booking: Booking, user="enterprise") -> None:
        person = demo_user(user)
        bookings.cancel_booking(session, booking, actor=Actor.of(person, None), user=person, now=utcnow())

    return make


@pytest.fixture
def book_series(session, demo_user, monday_at):
    """A weekly series of `weeks` Mondays 09:00–10:00 by the demo enterprise, from next week:
    (series, the bookings, the instants skipped)."""

    def make(instrument, weeks: int = 4):
        user = demo_user("enterprise")
        series, booked, skipped = bookings.book_series(
            session, actor=Actor.of(user, None), user=user, instrument_id=instrument.id, start_at=monday_at(9),
            end_at=monday_at(10), weeks=weeks, now=utcnow())
        return series, booked, [when for when, _refusal in skipped]

    return make


def parse(body: bytes) -> icalendar.Calendar:
    calendar = icalendar.Calendar.from_ical(body)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    for line in body.split(b"\r\n"):
        assert len(line) <= 75, line  # folded as RFC 5545 asks
    return calendar


def occurrences(body: bytes) -> list[tuple]:
    """What a calendar client shows: (UID, start, end, SEQUENCE, STATUS) of every occurrence."""
    calendar = parse(body)
    shown = recurring_ical_events.of(calendar).between(utcnow() - timedelta(days=400), utcnow() + timedelta(days=400))
    return sorted((str(e["UID"]), e["DTSTART"].dt, e["DTEND"].dt, int(e["SEQUENCE"]), str(e["STATUS"])) for e in shown)


def expected_private(session, user) -> list[tuple]:
    """The user's bookings as the feed must show them: a booking alone under its own UID; an occurrence of
    a series under the series' UID with the series' SEQUENCE (the sum of its bookings'), a cancelled
    occurrence left out (an EXDATE) unless every occurrence is cancelled."""
    rows = session.scalars(select(Booking).where(Booking.booker_id == user.id)).all()
    series_rows: dict[int, list[Booking]] = {}
    result = []
    for booking in rows:
        if booking.series_id is None:
            result.append((f"booking-{booking.id}@kequip", booking.start_at, booking.end_at, booking.sequence,
                           ics.ICS_STATUS[booking.state]))
        else:
            series_rows.setdefault(booking.series_id, []).append(booking)
    for series_id, members in series_rows.items():
        sequence = sum(b.sequence for b in members)
        all_cancelled = all(ics.ICS_STATUS[b.state] == "CANCELLED" for b in members)
        result += [(f"series-{series_id}@kequip", b.start_at, b.end_at, sequence, ics.ICS_STATUS[b.state])
                   for b in members if all_cancelled or ics.ICS_STATUS[b.state] != "CANCELLED"]
    return sorted(result)


def private_feed(app, session, user) -> bytes:
    token = ics.issue_feed_token(session, user, actor=Actor.of(user, None), now=utcnow())
    response = app.test_client().get(f"/calendar/{token}.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    return response.data


def the_series(calendar: icalendar.Calendar, series_id: int) -> tuple[icalendar.Event, list[icalendar.Event]]:
    components = [e for e in calendar.walk("VEVENT") if str(e["UID"]) == f"series-{series_id}@kequip"]
    masters = [e for e in components if "RECURRENCE-ID" not in e]
    assert len(masters) == 1
    return masters[0], [e for e in components if "RECURRENCE-ID" in e]


def exdates(event: icalendar.Event) -> set:
    values = event.get("EXDATE", [])
    return {when.dt for prop in (values if isinstance(values, list) else [values]) for when in prop.dts}


# --- the private feed -----------------------------------------------------------------------------

def test_private_feed_matches_every_booking_and_a_weekly_series_with_skipped_and_cancelled_occurrences(
        app, session, free_instrument, book, cancel, book_series, monday_at, demo_user, login_as):
    user = demo_user("enterprise")
    single = book(free_instrument, workday_at(14, days=7), workday_at(16, days=7))
    dropped = book(free_instrument, workday_at(16, days=8), workday_at(17, days=8))
    cancel(dropped)
    session.add(MaintenanceWindow(instrument_id=free_instrument.id, start_at=monday_at(8, weeks=3),
                                  end_at=monday_at(12, weeks=3)))
    series, booked, skipped = book_series(free_instrument, weeks=4)
    assert monday_at(9, weeks=3) in skipped  # (a public holiday may skip another Monday)
    cancelled, kept = booked[1], [booked[0], *booked[2:]]
    cancel(cancelled)

    body = private_feed(app, session, user)
    assert occurrences(body) == expected_private(session, user)
    shown = {(uid, start) for uid, start, *_rest in occurrences(body)}
    assert (f"booking-{single.id}@kequip", single.start_at) in shown
    assert (f"booking-{dropped.id}@kequip", dropped.start_at) in shown  # as STATUS:CANCELLED
    assert {start for uid, start in shown if uid.startswith("series-")} == {b.start_at for b in kept}

    master, overrides = the_series(parse(body), series.id)
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=4"
    assert master["DTSTART"].dt == monday_at(9) and str(master["DTSTART"].params["TZID"]) == "Asia/Shanghai"
    assert exdates(master) == {cancelled.start_at, *skipped}
    assert overrides == []  # the occurrences kept are all confirmed
    assert int(master["SEQUENCE"]) == sum(b.sequence for b in booked)
    alone = parse(login_as("enterprise").get(f"/bookings/{cancelled.id}.ics").data)  # one occurrence, as a file
    assert [(str(e["UID"]), "RRULE" in e, str(e["STATUS"])) for e in alone.walk("VEVENT")] == [
        (f"booking-{cancelled.id}@kequip", False, "CANCELLED")]


def test_an_occurrence_whose_state_differs_is_an_override_with_recurrence_id(
        app, session, appointment_instrument, book_series, demo_user):
    user, admin = demo_user("enterprise"), demo_user("platform")
    series, booked, _skipped = book_series(appointment_instrument, weeks=3)
    assert {b.state for b in booked} == {BookingState.REQUESTED}
    bookings.approve_booking(session, booked[1], actor=Actor.of(admin, None), user=admin, now=utcnow())
    assert booked[1].state == BookingState.CONFIRMED  # nothing to pay: confirmed at once

    body = private_feed(app, session, user)
    assert occurrences(body) == expected_private(session, user)
    master, overrides = the_series(parse(body), series.id)
    assert str(master["STATUS"]) == "TENTATIVE"
    assert [(o["RECURRENCE-ID"].dt, str(o["STATUS"]), int(o["SEQUENCE"])) for o in overrides] == [
        (booked[1].start_at, "CONFIRMED", int(master["SEQUENCE"]))]  # never below its master's


def test_a_series_cancelled_whole_is_one_cancelled_event(app, session, free_instrument, book_series, demo_user):
    user = demo_user("enterprise")
    series, booked, skipped = book_series(free_instrument, weeks=3)
    bookings.cancel_series(session, booked[0], actor=Actor.of(user, None), user=user, now=utcnow())

    body = private_feed(app, session, user)
    assert occurrences(body) == expected_private(session, user)
    master, overrides = the_series(parse(body), series.id)
    assert (str(master["STATUS"]), exdates(master), overrides) == ("CANCELLED", set(skipped), [])


def test_cancelling_raises_the_sequence_and_gives_status_cancelled(app, session, free_instrument, book, cancel,
                                                                  demo_user, login_as):
    user = demo_user("enterprise")
    start, end = workday_at(9, days=7), workday_at(11, days=7)
    booking = book(free_instrument, start, end)
    before = occurrences(private_feed(app, session, user))
    assert before == [(f"booking-{booking.id}@kequip", start, end, booking.sequence, "CONFIRMED")]
    cancel(booking)
    after = occurrences(private_feed(app, session, user))
    assert after == [(f"booking-{booking.id}@kequip", start, end, before[0][3] + 1, "CANCELLED")]
    download = login_as("enterprise").get(f"/bookings/{booking.id}.ics")
    assert occurrences(download.data) == after


def test_private_feed_speaks_its_owners_language_and_links_each_booking(app, session, free_instrument, book, demo_user):
    user = demo_user("enterprise")
    booking = book(free_instrument, workday_at(9, days=7), workday_at(10, days=7))
    user.locale = "en"
    event = next(iter(parse(private_feed(app, session, user)).walk("VEVENT")))
    assert str(event["SUMMARY"]) == free_instrument.name_en
    assert str(event["DESCRIPTION"]) == "Booking status: Confirmed"
    assert str(event["LOCATION"]) == "A 楼 301"
    assert str(event["URL"]).endswith(f"/bookings/{booking.id}")


# --- the public feed ------------------------------------------------------------------------------

def test_public_feed_shows_busy_times_without_personal_data(client, session, free_instrument, book, cancel,
                                                            book_series, monday_at, demo_user):
    user = demo_user("enterprise")
    kept = book(free_instrument, workday_at(14, days=7), workday_at(16, days=7), purpose="绝密配方 X-17 的验证")
    cancel(book(free_instrument, workday_at(16, days=8), workday_at(17, days=8)))
    window = MaintenanceWindow(instrument_id=free_instrument.id, start_at=monday_at(8, weeks=2),
                               end_at=monday_at(12, weeks=2), reason="更换离子源")
    session.add(window)
    session.flush()
    _series, booked, _skipped = book_series(free_instrument, weeks=3)

    response = client.get(f"/instruments/{free_instrument.id}/calendar.ics?lang=en")
    assert (response.status_code, response.headers["Content-Type"]) == (200, "text/calendar; charset=utf-8")
    body = response.data.decode()
    enterprise = bookings.booker_enterprise(session, user)
    for personal in (user.name, user.email, enterprise.name, "X-17", "绝密", "更换离子源"):
        assert personal not in body
    assert not re.search(r"^(ORGANIZER|ATTENDEE|CONTACT|DESCRIPTION|LOCATION)", body, re.MULTILINE)

    busy = [b for b in session.scalars(select(Booking).where(Booking.instrument_id == free_instrument.id))
            if b.state in ics.PUBLIC_STATES]
    assert {b.id for b in busy} == {kept.id, *(b.id for b in booked)}  # the cancelled one has left
    assert occurrences(response.data) == sorted(
        [(f"busy-{b.id}@kequip", b.start_at, b.block_end_at, b.sequence, "CONFIRMED") for b in busy]
        + [(f"maintenance-{window.id}@kequip", window.start_at, window.end_at, 0, "CONFIRMED")])
    summaries = {str(e["SUMMARY"]) for e in parse(response.data).walk("VEVENT")}
    assert summaries == {"Booked", "Maintenance window"}


def test_public_feed_is_only_for_instruments_in_the_catalogue(client, create_instrument):
    draft = create_instrument()
    assert client.get(f"/instruments/{draft.id}/calendar.ics").status_code == 404
    assert client.get("/instruments/2147483647/calendar.ics").status_code == 404


def test_a_feed_that_has_not_changed_answers_304(client, free_instrument, book):
    book(free_instrument, workday_at(9, days=7), workday_at(10, days=7))
    url = f"/instruments/{free_instrument.id}/calendar.ics"
    first = client.get(url)
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


# --- the token ------------------------------------------------------------------------------------

def test_regenerating_the_feed_address_retires_the_old_one(app, session, login_as, free_instrument, book, demo_user):
    booking = book(free_instrument, workday_at(9, days=7), workday_at(10, days=7))
    page = login_as("enterprise")
    assert 'data-testid="no-feed"' in page.get("/calendar").get_data(as_text=True)
    old_url = FEED_URL.search(page.post("/calendar/regenerate").get_data(as_text=True)).group(1)
    anonymous = app.test_client()
    old = anonymous.get(old_url)
    assert old.status_code == 200 and f"booking-{booking.id}@kequip" in old.get_data(as_text=True)
    assert 'data-testid="feed-exists"' in page.get("/calendar").get_data(as_text=True)  # never shown again

    new_url = FEED_URL.search(page.post("/calendar/regenerate").get_data(as_text=True)).group(1)
    assert new_url != old_url
    assert anonymous.get(old_url).status_code == 404
    assert anonymous.get(new_url).status_code == 200
    assert anonymous.get("/calendar/" + "x" * 43 + ".ics").status_code == 404
    user = demo_user("enterprise")
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "users",
                                                              AuditEntry.subject_id == user.id,
                                                              AuditEntry.action.like("calendar_feed.%"))
                              .order_by(AuditEntry.id)).all()
    assert actions == ["calendar_feed.issued", "calendar_feed.regenerated"]


def test_the_feed_page_needs_a_login(client):
    assert client.get("/calendar").status_code in (302, 401)
    assert client.post("/calendar/regenerate").status_code in (302, 401)


# --- one booking ----------------------------------------------------------------------------------

def test_a_booking_downloads_for_its_booker_platform_and_bureau_only(login_as, session, free_instrument, book):
    booking = book(free_instrument, workday_at(9, days=7), workday_at(10, days=7))
    for name in ("enterprise", "platform", "bureau"):
        response = login_as(name).get(f"/bookings/{booking.id}.ics")
        assert response.status_code == 200
        assert response.headers["Content-Disposition"] == f'attachment; filename="booking-{booking.id}.ics"'
        assert occurrences(response.data) == [(f"booking-{booking.id}@kequip", booking.start_at, booking.end_at,
                                               booking.sequence, "CONFIRMED")]
    for name in ("finance", "expert"):
        assert login_as(name).get(f"/bookings/{booking.id}.ics").status_code == 404


def test_long_names_are_folded_and_escaped_and_read_back_whole(login_as, create_instrument, book):
    from marketplace.registry.services import FEE_FIELDS

    name = "高分辨率飞行时间质谱仪，配备电喷雾离子源；用于蛋白质组学\\代谢组学分析" * 3
    instrument = create_instrument(state=InstrumentState.PUBLISHED, name_zh=name, name_en="",
                                   **{field: 0 for field in FEE_FIELDS})
    booking = book(instrument, workday_at(9, days=7), workday_at(10, days=7))
    event = next(iter(parse(login_as("enterprise").get(f"/bookings/{booking.id}.ics").data).walk("VEVENT")))
    assert str(event["SUMMARY"]) == name

