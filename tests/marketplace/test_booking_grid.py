"""The week grid marks the viewer's own bookings as theirs, by a label and a pattern as well as colour,
with a link to the booking; to everyone else the same slots are just booked."""
from __future__ import annotations

from tests.marketplace.test_booking_pages import book_as, instrument, page, terms_id  # noqa: F401 (fixtures)


def test_own_bookings_are_marked_in_the_grid_and_only_for_their_booker(login_as, session, instrument, monday_at,
                                                                       book_as):
    mine = book_as("enterprise", instrument, monday_at(9), monday_at(10))
    theirs = book_as("operator", instrument, monday_at(14), monday_at(15))
    week = f"/instruments/{instrument.id}/book?week={monday_at(9).date().isoformat()}"

    shown = page(login_as("enterprise").get(week))

    for start in (monday_at(9), monday_at(9, 30)):
        cell = shown.slot(start)
        assert (cell["data-state"], cell["data-reason"], cell["data-booking-id"]) == ("busy", "mine", str(mine.id))
        assert "slot-mine" in cell["class"].split()
    assert [a["href"] for a in shown.find("a", data_testid="own-booking")] == [f"/bookings/{mine.id}"] * 2
    assert "我的" in shown.text("own-booking") and "您的预约: 已批准" in shown.text("own-booking")
    other = shown.slot(monday_at(14))
    assert (other["data-state"], other["data-reason"], other.get("data-booking-id")) == ("busy", "busy", None)

    seen_by_other = page(login_as("operator").get(week))
    cell = seen_by_other.slot(monday_at(9))
    assert (cell["data-reason"], cell.get("data-booking-id")) == ("busy", None)
    assert seen_by_other.find("a", data_testid="own-booking") and all(
        a["href"] == f"/bookings/{theirs.id}" for a in seen_by_other.find("a", data_testid="own-booking"))
