"""What a booking's mail carries: when it was written, where the instrument stands, and for a confirmed
booking a calendar file that any calendar program imports."""
from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime

import icalendar

from core.jobs import send_outbox
from core.models import OutboxMessage
from marketplace.booking.models import BookingState
from tests.marketplace.booking_fixtures import appointment_instrument, workday_at  # noqa: F401  (fixtures)


def test_a_confirmation_carries_its_date_the_location_and_the_booking_as_a_calendar_file(
        session, free_instrument, book, mailbox):
    start = workday_at(10, days=7)
    booking = book(free_instrument, start, start + timedelta(hours=2))
    assert booking.state == BookingState.CONFIRMED
    written = session.query(OutboxMessage).filter_by(template="booking_confirmed").one().created_at
    session.commit()

    assert send_outbox() >= 1
    mail = mailbox.wait_for("enterprise@kequip.test")
    assert abs(parsedate_to_datetime(mail["Date"]) - written) < timedelta(seconds=1)
    text = mail.get_body(preferencelist=("plain",)).get_content()
    platform = free_instrument.platform
    assert f"地点：{platform.name}" in text and "A 楼 301" in text
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "A 楼 301" in html

    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == f"booking-{booking.id}.ics"
    [event] = icalendar.Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    assert event.decoded("dtstart") == start and event.decoded("dtend") == start + timedelta(hours=2)
    assert str(event["location"]) == "A 楼 301"
    assert str(event["url"]).endswith(f"/bookings/{booking.id}")


def test_a_request_that_waits_for_approval_has_no_calendar_file_and_the_platform_hears_of_it(
        session, appointment_instrument, book, mailbox):
    start = workday_at(10, days=7)
    book(appointment_instrument, start, start + timedelta(hours=1))
    templates = sorted(m.template for m in session.query(OutboxMessage))
    assert templates == ["booking_requested", "booking_requested_platform"]
    session.commit()
    send_outbox()
    assert not list(mailbox.wait_for("enterprise@kequip.test").iter_attachments())


def test_a_booking_confirmed_at_once_does_not_tell_the_platform_it_waits_for_approval(
        session, free_instrument, book):
    start = workday_at(10, days=7)
    book(free_instrument, start, start + timedelta(hours=1))
    assert [m.template for m in session.query(OutboxMessage)] == ["booking_confirmed"]
