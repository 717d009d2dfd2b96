"""A weekly series as a booker books it: the preview lists the weeks to book, the weeks skipped with
their reason and the total to the fen, books nothing, and its confirmation books exactly what it showed;
the result is a page of its own, so reloading it shows it again and books nothing more."""
from __future__ import annotations

import math

from sqlalchemy import func, select

from core.db import utcnow
from marketplace.booking.models import Booking, BookingSeries
from tests.marketplace.test_booking_pages import (  # noqa: F401 (fixtures)
    _maintenance,
    book_as,
    confirm_series,
    form,
    instrument,
    own_rules,
    page,
    terms_id,
)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_the_preview_shows_the_weeks_skipped_and_the_total_and_books_nothing(
        login_as, session, instrument, form, monday_at, book_as):
    book_as("platform", instrument, monday_at(9, weeks=2), monday_at(10, weeks=2))
    _maintenance(session, instrument, monday_at(8, weeks=3), monday_at(12, weeks=3))
    client = login_as("enterprise")

    response = client.post(f"/instruments/{instrument.id}/book",
                           data=form(monday_at(9), monday_at(10, 30), weeks="4"))

    assert response.status_code == 200
    shown = page(response)
    assert [(row["data-start"], row["data-kind"]) for row in shown.find("tr", data_testid="series-skipped-row")] == [
        (monday_at(9, weeks=2).isoformat(), "conflict"), (monday_at(9, weeks=3).isoformat(), "maintenance")]
    assert [row["data-start"] for row in shown.find("tr", data_testid="series-booked-row")] == [
        monday_at(9).isoformat(), monday_at(9, weeks=4).isoformat()]
    # ¥100.00 setup + ¥400.00 an hour × 1.5 hours = ¥700.00 a week, two weeks
    assert shown.find("dd", data_testid="series-payable")[0]["data-fen"] == "140000"
    assert shown.find("dd", data_testid="series-voucher")[0]["data-fen"] == "0"
    assert "¥1,400.00" in shown.text("series-total")
    assert count(session, Booking) == 1 and count(session, BookingSeries) == 0


def test_confirming_books_and_charges_what_the_preview_showed_and_a_reload_books_nothing_more(
        login_as, session, instrument, form, monday_at, book_as):
    book_as("platform", instrument, monday_at(9, weeks=2), monday_at(10, weeks=2))
    client = login_as("enterprise")

    preview, response = confirm_series(client, instrument, form(monday_at(9), monday_at(10, 30), weeks="3"))

    assert response.status_code == 302
    result_url = response.headers["Location"]
    series = session.scalar(select(BookingSeries))
    assert result_url == f"/booking-series/{series.id}"
    booked = session.scalars(select(Booking).where(Booking.series_id == series.id).order_by(Booking.start_at)).all()
    assert [b.start_at.isoformat() for b in booked] == [
        row["data-start"] for row in preview.find("tr", data_testid="series-booked-row")]
    assert sum(b.payable_fen for b in booked) == int(preview.find("dd", data_testid="series-payable")[0]["data-fen"])
    assert series.skip_codes == {monday_at(9, weeks=2).isoformat(): "booking_conflict"}
    for _reload in range(2):
        again = client.get(result_url)
        assert again.status_code == 200
        shown = page(again)
        assert [int(r["data-booking-id"]) for r in shown.find("tr", data_testid="series-booked-row")] == [
            b.id for b in booked]
        assert [r["data-kind"] for r in shown.find("tr", data_testid="series-skipped-row")] == ["conflict"]
    assert count(session, Booking) == 3 and count(session, BookingSeries) == 1
    # the browser's "send again" of the confirmation finds the weeks taken by this very series
    resent = client.post(f"/instruments/{instrument.id}/book", data={
        i["name"]: i["value"] for i in preview.find("input", type="hidden")} | {"submit": "confirm"})
    assert resent.status_code == 409
    assert count(session, Booking) == 3 and count(session, BookingSeries) == 1


def test_a_week_taken_between_preview_and_confirmation_shows_the_new_preview_and_books_nothing(
        login_as, session, instrument, form, monday_at, book_as):
    client = login_as("enterprise")
    preview = page(client.post(f"/instruments/{instrument.id}/book", data=form(monday_at(9), monday_at(10), weeks="3")))
    book_as("platform", instrument, monday_at(9, weeks=2), monday_at(10, weeks=2))

    response = client.post(f"/instruments/{instrument.id}/book", data={
        i["name"]: i["value"] for i in preview.find("input", type="hidden")} | {"submit": "confirm"})

    assert response.status_code == 409
    shown = page(response)
    assert shown.text("series-alert")
    assert [r["data-code"] for r in shown.find("tr", data_testid="series-skipped-row")] == ["booking_conflict"]
    assert count(session, Booking) == 1 and count(session, BookingSeries) == 0


def test_weeks_beyond_the_horizon_are_skipped_by_rule_and_approval_is_said_before_booking(
        login_as, session, instrument, form, monday_at):
    days = math.ceil((monday_at(9, weeks=2) - utcnow()).total_seconds() / 86_400)
    own_rules(session, instrument, horizon_days=days, requires_approval=True)
    client = login_as("enterprise")

    shown = page(client.post(f"/instruments/{instrument.id}/book", data=form(monday_at(9), monday_at(10), weeks="4")))

    assert [(r["data-code"], r["data-kind"]) for r in shown.find("tr", data_testid="series-skipped-row")] == [
        ("beyond_horizon", "rule"), ("beyond_horizon", "rule")]
    assert "此仪器的预约需经平台审批" in shown.text("needs-approval")


def test_a_series_result_is_seen_only_by_its_booker_the_platform_and_the_bureau(
        app, login_as, session, instrument, form, monday_at):
    _preview, response = confirm_series(login_as("enterprise"), instrument, form(monday_at(9), monday_at(10), weeks="2"))
    url = response.headers["Location"]
    assert login_as("expert").get(url).status_code == 404
    assert login_as("platform").get(url).status_code == 200
    assert app.test_client().get(url).status_code == 401
    assert login_as("enterprise").get("/booking-series/999999").status_code == 404


def test_damaged_previewed_dates_are_refused_beside_the_form_and_book_nothing(login_as, session, instrument, form,
                                                                              monday_at):
    client = login_as("enterprise")
    for damaged in ("not-a-date", monday_at(9).replace(tzinfo=None).isoformat(), "x" * 3_000):
        response = client.post(f"/instruments/{instrument.id}/book",
                               data=form(monday_at(9), monday_at(10), weeks="3", expected=damaged))
        assert response.status_code == 422
        assert page(response).text("booking-alert")
    assert count(session, Booking) == 0 and count(session, BookingSeries) == 0
