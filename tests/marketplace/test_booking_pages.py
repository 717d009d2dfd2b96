"""The booking pages as a booker uses them: the instrument's week and day calendar, the booking form
(price, terms, rules shown beside their fields, conflicts), weekly series, the booker's list and one
booking's page with its cancellation. Times are chosen relative to now (next Monday and later), so the
lead-time and horizon rules pass; holidays and make-up days are read in weeks already past."""
from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import LOCAL_ZONE, to_local
from core.db import utcnow
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingRules, BookingState, MaintenanceWindow
from marketplace.payments import services as payments
from marketplace.payments.models import PaymentState
from marketplace.registry.models import InstrumentState, UserType

ALL_DAY = [["00:00", "24:00"]]


class Page(HTMLParser):
    """The parts of a page the tests read: every start tag's attributes in order, the error shown under
    each form field (Bootstrap's invalid-feedback after the input) and the texts of data-testid elements."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.field_errors: dict[str, list[str]] = {}
        self.texts: dict[str, str] = {}
        self._field: str | None = None
        self._open: list[tuple[str, str | None, bool]] = []  # (tag, testid, is feedback)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if tag in ("input", "textarea", "select") and attributes.get("id"):
            self._field = attributes["id"]
        if tag in ("input", "br", "img", "meta", "link", "hr"):
            return
        feedback = "invalid-feedback" in attributes.get("class", "")
        self._open.append((tag, attributes.get("data-testid"), feedback))
        if attributes.get("data-testid"):
            self.texts.setdefault(attributes["data-testid"], "")
        if feedback and self._field:
            self.field_errors.setdefault(self._field, []).append("")

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _tag, testid, feedback in self._open:
            if testid:
                self.texts[testid] += data
            if feedback and self._field:
                self.field_errors[self._field][-1] += data.strip()

    def text(self, testid: str) -> str:
        return " ".join(self.texts.get(testid, "").split())

    def find(self, tag: str, **attributes) -> list[dict]:
        wanted = {name.replace("_", "-"): value for name, value in attributes.items()}
        return [attrs for name, attrs in self.tags
                if name == tag and all(attrs.get(key) == value for key, value in wanted.items())]

    def slot(self, start: datetime) -> dict:
        """The calendar cell of the slot starting at this instant."""
        found = self.find("td", data_start=to_local(start).isoformat())
        assert len(found) == 1, start
        return found[0]


def page(response) -> Page:
    return Page(response.get_data(as_text=True))


def local_input(instant: datetime) -> str:
    """As a datetime-local input sends it: Asia/Shanghai wall clock."""
    return to_local(instant).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def instrument(create_instrument):
    """Published; district enterprises pay ¥100.00 + ¥400.00 an hour (tests/marketplace/conftest.py)."""
    return create_instrument(state=InstrumentState.PUBLISHED)


@pytest.fixture
def terms_id(session, instrument):
    return bookings.current_terms(session, instrument.platform_id).id


@pytest.fixture
def form(terms_id):
    def make(start: datetime, end: datetime, **changes) -> dict:
        return {"start": local_input(start), "end": local_input(end), "terms_id": str(terms_id),
                "accept_terms": "y", "purpose": "", "submit": "Book"} | changes

    return make


@pytest.fixture
def book_as(session, demo_user, terms_id):
    """book_as(name, instrument, start, end): a booking made through the service, as that demo user."""

    def make(name: str, instrument, start: datetime, end: datetime, *, now: datetime | None = None) -> Booking:
        user = demo_user(name)
        return bookings.book_instrument(session, actor=Actor.of(user, "127.0.0.1"), user=user,
                                        instrument_id=instrument.id, start_at=start, end_at=end,
                                        now=now or utcnow(), terms_id=terms_id)

    return make


def own_rules(session, instrument, **values) -> BookingRules:
    """Rules of the instrument's own: open round the clock, every day, unless values say otherwise."""
    rules = BookingRules(instrument_id=instrument.id, open_hours={str(d): ALL_DAY for d in range(7)},
                         closed_on_holidays=False, **values)
    session.add(rules)
    session.flush()
    return rules


# --- booking through the page ---------------------------------------------------------------------

def test_enterprise_books_a_slot_and_lands_on_the_booking_with_its_price_to_the_fen(
        login_as, session, demo_user, instrument, form, monday_at):
    client = login_as("enterprise")
    calendar = page(client.get(f"/instruments/{instrument.id}/book?week={monday_at(9).date().isoformat()}"))
    assert calendar.slot(monday_at(9))["data-state"] == "free"
    assert "第 1 版" in calendar.text("terms") or "version 1" in calendar.text("terms")
    assert calendar.find("input", name="terms_id")[0]["value"] == form(monday_at(9), monday_at(10))["terms_id"]

    response = client.post(f"/instruments/{instrument.id}/book",
                           data=form(monday_at(9), monday_at(11, 30), purpose="染料样品 LC-MS 定量"))

    booking = session.scalar(select(Booking).where(Booking.instrument_id == instrument.id))
    assert response.status_code == 302 and response.location.endswith(f"/bookings/{booking.id}")
    assert (booking.booker_id, booking.user_type, booking.start_at, booking.end_at) == (
        demo_user("enterprise").id, UserType.DISTRICT_ENTERPRISE, monday_at(9), monday_at(11, 30))
    assert (booking.setup_fee_fen, booking.hourly_rate_fen, booking.price_fen, booking.payable_fen) == (
        10_000, 40_000, 110_000, 110_000)  # ¥100.00 + ¥400.00 × 2.5 h
    assert booking.state == BookingState.APPROVED and booking.payment_state == PaymentState.DUE
    assert booking.purpose == "染料样品 LC-MS 定量"
    detail = page(client.get(response.location))
    assert detail.text("price").startswith("¥100.00 + ¥400.00 × 2.5 ") and detail.text("price").endswith("= ¥1,100.00")
    assert detail.text("payable") == "¥1,100.00"
    assert detail.find("span", data_testid="state")[0]["data-state"] == "approved"


def test_a_slot_link_and_the_preview_button_show_the_price_without_booking(
        login_as, session, instrument, form, monday_at):
    client = login_as("enterprise")
    start, end = to_local(monday_at(14)).isoformat(), to_local(monday_at(15, 30)).isoformat()
    linked = page(client.get(f"/instruments/{instrument.id}/book", query_string={"start": start, "end": end}))
    assert linked.find("input", id="start")[0]["value"] == local_input(monday_at(14))
    assert linked.text("price").startswith("¥100.00 + ¥400.00 × 1.5 ")
    assert linked.text("price").endswith("= ¥700.00")
    assert "slot-selected" in linked.slot(monday_at(15))["class"]

    previewed = client.post(f"/instruments/{instrument.id}/book",
                            data=form(monday_at(9), monday_at(10), accept_terms="", submit="", preview="Preview"))
    assert previewed.status_code == 200
    assert page(previewed).text("price").endswith("= ¥500.00")
    quoted = client.get(f"/instruments/{instrument.id}/book/quote",
                        query_string={"start": local_input(monday_at(9)), "end": local_input(monday_at(9, 30))})
    assert quoted.json["price_fen"] == 30_000 and quoted.json["busy"] is False
    assert quoted.json["text"].endswith("= ¥300.00")
    assert client.get(f"/instruments/{instrument.id}/book/quote?start=x").status_code == 422
    assert session.scalar(select(Booking).where(Booking.instrument_id == instrument.id)) is None


def test_platform_staff_book_their_own_instrument_at_the_staff_rate(login_as, session, instrument, form, monday_at):
    response = login_as("platform").post(f"/instruments/{instrument.id}/book",
                                         data=form(monday_at(9), monday_at(10)))
    booking = session.scalar(select(Booking).where(Booking.instrument_id == instrument.id))
    assert response.status_code == 302
    assert (booking.user_type, booking.price_fen) == (UserType.OWN_STAFF, 20_000)


def test_an_instrument_with_nothing_to_pay_is_confirmed_at_once(login_as, session, free_instrument, terms_id,
                                                               monday_at):
    response = login_as("enterprise").post(f"/instruments/{free_instrument.id}/book", data={
        "start": local_input(monday_at(9)), "end": local_input(monday_at(10)), "terms_id": terms_id,
        "accept_terms": "y"})
    assert response.status_code == 302
    booking = session.scalar(select(Booking).where(Booking.instrument_id == free_instrument.id))
    assert (booking.state, booking.price_fen, booking.payment_state) == (BookingState.CONFIRMED, 0,
                                                                          PaymentState.NOT_DUE)


# --- errors beside their fields -----------------------------------------------------------------

def _maintenance(session, instrument, start, end):
    session.add(MaintenanceWindow(instrument_id=instrument.id, start_at=start, end_at=end, reason="年度校准"))
    session.flush()


@pytest.mark.parametrize("case, field, fragment", [
    ("no_terms", "accept_terms", ""),
    ("old_terms", "accept_terms", ""),
    ("off_grid", "start", "30"),
    ("end_first", "end", ""),
    ("too_long", "end", "480"),
    ("too_soon", "start", "120"),
    ("beyond_horizon", "start", "90"),
    ("lunch_break", "start", ""),
    ("saturday", "start", ""),
    ("maintenance", "start", "12:00"),
    ("one_week", "weeks", "26"),
    ("not_a_time", "start", "2026"),
    ("year_one", "end", "2099"),
])
def test_every_broken_rule_shows_beside_its_field_and_books_nothing(login_as, session, instrument, form, monday_at,
                                                                   case, field, fragment):
    nine, ten = monday_at(9), monday_at(10)
    data = {
        "no_terms": form(nine, ten, accept_terms=""),
        "old_terms": form(nine, ten, terms_id="999999"),
        "off_grid": form(monday_at(9, 10), ten),
        "end_first": form(ten, nine),
        "too_long": form(monday_at(8, 30), monday_at(17, 30)),
        "too_soon": form(nine - timedelta(days=14), ten - timedelta(days=14)),
        "beyond_horizon": form(monday_at(9, weeks=20), monday_at(10, weeks=20)),
        "lunch_break": form(monday_at(11, 30), monday_at(14)),
        "saturday": form(monday_at(9, days=5), monday_at(10, days=5)),
        "maintenance": form(nine, ten),
        "one_week": form(nine, ten, weeks="1"),
        "not_a_time": form(nine, ten) | {"start": "next monday"},
        "year_one": form(nine, ten) | {"end": "0001-01-01T10:00"},
    }[case]
    if case == "maintenance":
        _maintenance(session, instrument, monday_at(9, 30), monday_at(12))
    response = login_as("enterprise").post(f"/instruments/{instrument.id}/book", data=data)

    assert response.status_code == 422
    shown = page(response)
    assert shown.field_errors.get(field), (case, shown.field_errors, shown.text("booking-alert"))
    assert fragment in " ".join(shown.field_errors[field])
    assert "is-invalid" in shown.find("input", id=field)[0]["class"]
    assert shown.find("table", data_testid="booking-calendar")
    assert session.scalar(select(Booking).where(Booking.instrument_id == instrument.id)) is None


def test_messages_beside_the_fields_are_in_the_page_s_language(app, login_as, instrument, form, monday_at):
    from flask_babel import force_locale, gettext

    response = login_as("enterprise").post(f"/instruments/{instrument.id}/book",
                                           data=form(monday_at(9, 10), monday_at(10), accept_terms=""))
    with app.test_request_context(), force_locale("zh_CN"):
        expected = {"accept_terms": [gettext("Read the service terms and tick the box to accept them.")]}
    assert page(response).field_errors == expected  # the form's own check first; the rules once it passes


def test_an_enterprise_not_verified_sees_why_it_cannot_book(login_as, session, demo_user, instrument, form,
                                                            monday_at):
    from core.models import Enterprise, VerificationState

    enterprise = session.get(Enterprise, demo_user("enterprise").grants[0].organisation_id)
    enterprise.verification_state = VerificationState.PENDING
    session.flush()
    client = login_as("enterprise")
    shown = page(client.get(f"/instruments/{instrument.id}/book"))
    assert shown.text("booking-refusal") and not shown.find("form", id="booking-form")
    response = client.post(f"/instruments/{instrument.id}/book", data=form(monday_at(9), monday_at(10)))
    assert response.status_code == 422 and page(response).text("booking-alert")


def test_people_who_do_not_book_see_the_calendar_but_no_form(login_as, instrument):
    shown = page(login_as("bureau").get(f"/instruments/{instrument.id}/book"))
    assert shown.find("table", data_testid="booking-calendar") and not shown.find("form", id="booking-form")
    assert shown.text("booking-refusal")


def test_a_taken_slot_gives_a_clear_conflict_and_the_calendar_again(login_as, session, instrument, form, monday_at,
                                                                    book_as):
    book_as("platform", instrument, monday_at(9), monday_at(10))
    response = login_as("enterprise").post(f"/instruments/{instrument.id}/book",
                                           data=form(monday_at(9, 30), monday_at(10, 30)))
    assert response.status_code == 409
    shown = page(response)
    assert shown.text("booking-conflict")
    assert shown.slot(monday_at(9, 30))["data-state"] == "busy"
    assert shown.slot(monday_at(10))["data-state"] == "free"
    assert shown.find("input", id="start")[0]["value"] == local_input(monday_at(9, 30))
    assert "d-none" not in shown.find("div", data_testid="selection-busy")[0]["class"]
    waitlist = shown.find("form", data_testid="waitlist-form")
    if waitlist:  # once marketplace.join_waitlist exists
        assert "d-none" not in waitlist[0]["class"]
        assert shown.find("input", name="start")[-1]["value"] == monday_at(9, 30).isoformat()
    assert len(session.scalars(select(Booking).where(Booking.instrument_id == instrument.id)).all()) == 1


# --- weekly series ------------------------------------------------------------------------------

def confirm_series(client, instrument, data: dict):
    """Post the booking form of a weekly series: its preview, then the preview's confirmation; returns
    (the preview page, the confirmation's response)."""
    preview = client.post(f"/instruments/{instrument.id}/book", data=data)
    assert preview.status_code == 200, preview.get_data(as_text=True)[:2000]
    shown = page(preview)
    hidden = {i["name"]: i["value"] for i in shown.find("input", type="hidden")}
    return shown, client.post(f"/instruments/{instrument.id}/book", data=hidden | {"submit": "confirm"})


def test_a_weekly_series_books_the_free_weeks_and_lists_the_skipped_ones_with_reasons(
        login_as, session, instrument, form, monday_at, book_as, demo_user):
    book_as("platform", instrument, monday_at(9, weeks=2), monday_at(10, weeks=2))
    _maintenance(session, instrument, monday_at(8, weeks=3), monday_at(12, weeks=3))
    client = login_as("enterprise")

    preview, response = confirm_series(client, instrument, form(monday_at(9), monday_at(10), weeks="4"))

    assert "12:00" in preview.text("series-skipped")
    assert response.status_code == 302 and "/booking-series/" in response.headers["Location"]
    shown = page(client.get(response.headers["Location"]))
    booked = [row["data-start"] for row in shown.find("tr", data_testid="series-booked-row")]
    skipped = [(row["data-start"], row["data-code"]) for row in shown.find("tr", data_testid="series-skipped-row")]
    assert booked == [monday_at(9).isoformat(), monday_at(9, weeks=4).isoformat()]
    assert skipped == [(monday_at(9, weeks=2).isoformat(), "booking_conflict"),
                       (monday_at(9, weeks=3).isoformat(), "maintenance")]
    mine = session.scalars(select(Booking).where(Booking.booker_id == demo_user("enterprise").id,
                                                 Booking.instrument_id == instrument.id)
                           .order_by(Booking.start_at)).all()
    assert [b.start_at for b in mine] == [monday_at(9), monday_at(9, weeks=4)]
    assert mine[0].series_id == mine[1].series_id is not None


def test_cancelling_the_rest_of_a_series_keeps_the_earlier_occurrences(login_as, session, instrument, form,
                                                                       monday_at, demo_user):
    client = login_as("enterprise")
    confirm_series(client, instrument, form(monday_at(9), monday_at(10), weeks="3"))
    first, second, third = session.scalars(select(Booking).where(Booking.instrument_id == instrument.id)
                                           .order_by(Booking.start_at)).all()
    detail = page(client.get(f"/bookings/{second.id}"))
    assert detail.find("button", data_testid="cancel-series-button")
    assert not page(client.get(f"/bookings/{third.id}")).find("button", data_testid="cancel-series-button")

    response = client.post(f"/bookings/{second.id}/cancel-series", data={"reason": "项目延期"})

    assert response.status_code == 302
    for booking in (first, second, third):
        session.refresh(booking)
    assert [b.state for b in (first, second, third)] == [BookingState.APPROVED, BookingState.CANCELLED,
                                                         BookingState.CANCELLED]
    assert second.cancel_reason == "项目延期"


# --- one booking: detail, cancellation, access ----------------------------------------------------

def test_the_cancellation_fee_is_shown_before_cancelling_and_charged_to_the_fen(
        login_as, session, instrument, monday_at, book_as, demo_user):
    own_rules(session, instrument, free_cancel_hours=24 * 60, late_cancel_fee_pct=35)
    booking = book_as("enterprise", instrument, monday_at(9), monday_at(11, 30))  # ¥1,100.00
    bookings.confirm_booking(session, booking, actor=Actor.system("test"), now=utcnow())
    client = login_as("enterprise")

    detail = page(client.get(f"/bookings/{booking.id}"))
    assert detail.find("p", data_testid="cancel-fee")[0]["data-fee-fen"] == "38500"  # 35 % of ¥1,100.00
    assert "¥385.00" in detail.text("cancel-fee")
    response = client.post(f"/bookings/{booking.id}/cancel", data={"reason": "样品未到"})

    assert response.status_code == 302
    session.refresh(booking)
    assert (booking.state, booking.cancellation_fee_fen, booking.cancel_reason) == (
        BookingState.CANCELLED, 38_500, "样品未到")
    after = page(client.get(f"/bookings/{booking.id}"))
    assert after.text("cancellation-fee") == "¥385.00"
    assert not after.find("form", data_testid="cancel-form")


def test_cancelling_early_is_free(login_as, session, instrument, monday_at, book_as):
    booking = book_as("enterprise", instrument, monday_at(9), monday_at(10))
    client = login_as("enterprise")
    assert page(client.get(f"/bookings/{booking.id}")).find("p", data_testid="cancel-fee")[0]["data-fee-fen"] == "0"
    client.post(f"/bookings/{booking.id}/cancel", data={})
    session.refresh(booking)
    assert (booking.state, booking.cancellation_fee_fen) == (BookingState.CANCELLED, 0)
    again = client.post(f"/bookings/{booking.id}/cancel", data={}, follow_redirects=True)
    assert again.status_code == 200  # a second cancel is refused with a message, not a 500


def test_the_detail_page_shows_everything_about_the_booking(app, login_as, session, instrument, monday_at, book_as):
    booking = book_as("enterprise", instrument, monday_at(9), monday_at(10))
    shown = page(login_as("enterprise").get(f"/bookings/{booking.id}"))
    facts = shown.text("booking-facts")
    for expected in (instrument.name_zh, instrument.platform.name, "¥500.00", str(booking.id)):
        assert expected in facts
    assert shown.find("span", data_testid="state")[0]["data-state"] == "approved"
    assert str(booking.terms.version) in shown.text("terms-version")
    assert shown.text("booking-time") == f"{to_local(monday_at(9)):%Y-%m-%d %H:%M} – {to_local(monday_at(10)):%H:%M}"
    assert shown.find("form", data_testid="cancel-form")
    if "marketplace.booking_ics" in app.view_functions:  # the calendar pages link their .ics here
        assert shown.find("a", data_testid="ics-link")[0]["href"] == f"/bookings/{booking.id}.ics"
    if "marketplace.pay_booking" in app.view_functions and payments.can_pay(booking.booker, booking):
        assert shown.find("a", data_testid="pay-link")[0]["href"] == f"/bookings/{booking.id}/pay"


@pytest.mark.parametrize("viewer, status", [("expert", 404), ("bureau", 200), ("platform", 200), (None, 401)])
def test_a_booking_is_seen_only_by_its_booker_the_platform_and_the_bureau(app, login_as, session, instrument,
                                                                          monday_at, book_as, viewer, status):
    booking = book_as("enterprise", instrument, monday_at(9), monday_at(10))
    client = login_as(viewer) if viewer else app.test_client()
    assert client.get(f"/bookings/{booking.id}").status_code == status
    if status != 200:
        assert client.post(f"/bookings/{booking.id}/cancel").status_code == status
        session.refresh(booking)
        assert booking.state == BookingState.APPROVED


def test_the_booker_s_list_has_upcoming_and_past_tabs_and_a_state_filter(login_as, session, instrument, monday_at,
                                                                         book_as):
    past = book_as("enterprise", instrument, monday_at(9, weeks=-1), monday_at(10, weeks=-1),
                   now=monday_at(9, weeks=-2))
    upcoming = book_as("enterprise", instrument, monday_at(9), monday_at(10))
    cancelled = book_as("enterprise", instrument, monday_at(11), monday_at(12))
    enterprise = cancelled.booker
    bookings.cancel_booking(session, cancelled, actor=Actor.of(enterprise, None), user=enterprise, now=utcnow())
    client = login_as("enterprise")

    def ids(query: str) -> list[int]:
        return [int(row["data-booking-id"]) for row in page(client.get(f"/bookings{query}")).find(
            "tr", data_testid="booking-row")]

    assert ids("") == [upcoming.id, cancelled.id]
    assert ids("?when=past") == [past.id]
    assert ids("?state=cancelled") == [cancelled.id]
    assert ids("?state=nonsense") == [upcoming.id, cancelled.id]
    assert ids("") == ids("?when=upcoming") == ids("?when=nonsense")
    assert login_as("expert").get("/bookings").status_code == 200 and ids("?when=past&state=cancelled") == []


def test_the_all_tab_lists_past_and_upcoming_bookings_latest_first(login_as, session, instrument, monday_at,
                                                                   book_as):
    past = book_as("enterprise", instrument, monday_at(9, weeks=-1), monday_at(10, weeks=-1),
                   now=monday_at(9, weeks=-2))
    upcoming = book_as("enterprise", instrument, monday_at(9), monday_at(10))
    later = book_as("enterprise", instrument, monday_at(9, weeks=2), monday_at(10, weeks=2))
    client = login_as("enterprise")

    def ids(query: str) -> list[int]:
        return [int(row["data-booking-id"]) for row in page(client.get(f"/bookings{query}")).find(
            "tr", data_testid="booking-row")]

    assert ids("?when=all") == [later.id, upcoming.id, past.id]
    assert ids("?when=past") == [past.id]
    assert past.id not in ids("?when=upcoming")
    assert ids("?when=all&state=approved") == [later.id, upcoming.id, past.id]
    assert ids("?when=all&state=cancelled") == []
    shown = page(client.get("/bookings?when=all"))
    assert "active" in shown.find("a", data_testid="tab-all")[0]["class"]
    assert shown.text("tab-all") == "全部"


# --- the calendar ---------------------------------------------------------------------------------

def test_the_week_view_marks_free_busy_and_maintenance_slots(login_as, session, instrument, monday_at, book_as):
    book_as("platform", instrument, monday_at(9), monday_at(10))
    _maintenance(session, instrument, monday_at(14, days=1), monday_at(15, days=1))
    shown = page(login_as("enterprise").get(f"/instruments/{instrument.id}/book",
                                             query_string={"week": to_local(monday_at(9, days=3)).date().isoformat()}))
    assert [th["data-day"] for th in shown.find("th") if "data-day" in th] == [
        to_local(monday_at(0, days=n)).date().isoformat() for n in range(7)]
    states = {when: (shown.slot(when)["data-state"], shown.slot(when)["data-reason"]) for when in (
        monday_at(9), monday_at(9, 30), monday_at(10), monday_at(12), monday_at(14, days=1), monday_at(9, days=5))}
    assert states == {monday_at(9): ("busy", "busy"), monday_at(9, 30): ("busy", "busy"),
                      monday_at(10): ("free", "free"), monday_at(12): ("closed", "hours"),
                      monday_at(14, days=1): ("closed", "maintenance"), monday_at(9, days=5): ("closed", "hours")}
    assert shown.find("a", data_testid="previous") and shown.find("a", data_testid="next")


def test_the_week_view_shows_the_national_day_holiday_closed(login_as, instrument):
    shown = page(login_as("enterprise").get(f"/instruments/{instrument.id}/book?week=2026-09-30"))
    assert shown.text("calendar-range") == "2026-09-28 – 2026-10-04"
    kinds = {th["data-day"]: th["data-day-kind"] for th in shown.find("th") if "data-day" in th}
    assert kinds["2026-10-01"] == kinds["2026-10-02"] == "holiday" and kinds["2026-09-28"] == "ordinary"
    national_day = datetime(2026, 10, 1, 9, tzinfo=LOCAL_ZONE)
    assert (shown.slot(national_day)["data-state"], shown.slot(national_day)["data-reason"]) == ("closed", "holiday")
    monday = datetime(2026, 9, 28, 9, tzinfo=LOCAL_ZONE)
    assert shown.slot(monday)["data-state"] == "unavailable"  # open that day, but past


def test_the_make_up_working_day_is_open_with_a_monday_s_hours(login_as, instrument):
    shown = page(login_as("enterprise").get(f"/instruments/{instrument.id}/book?week=2026-10-05"))
    kinds = {th["data-day"]: th["data-day-kind"] for th in shown.find("th") if "data-day" in th}
    assert kinds["2026-10-10"] == "makeup_workday"
    saturday, sunday = (datetime(2026, 10, day, 9, tzinfo=LOCAL_ZONE) for day in (10, 11))
    assert shown.slot(saturday)["data-state"] == "unavailable"  # open, and past
    assert (shown.slot(sunday)["data-state"], shown.slot(sunday)["data-reason"]) == ("closed", "hours")


def test_the_day_view_shows_one_day_and_moves_a_day_at_a_time(login_as, instrument, monday_at):
    day = to_local(monday_at(0, days=2)).date()
    shown = page(login_as("enterprise").get(f"/instruments/{instrument.id}/book?view=day&day={day.isoformat()}"))
    assert [th["data-day"] for th in shown.find("th") if "data-day" in th] == [day.isoformat()]
    assert shown.slot(monday_at(9, days=2))["data-state"] == "free"
    assert f"day={(day + timedelta(days=1)).isoformat()}" in shown.find("a", data_testid="next")[0]["href"]
    for bad in ("?week=not-a-date", "?week=0001-01-01", "?view=day&day=9999-12-31", "?start=x&end=1"):
        assert login_as("enterprise").get(f"/instruments/{instrument.id}/book{bad}").status_code == 200


@pytest.mark.parametrize("requires_approval", [True, False])
def test_the_booking_and_instrument_pages_say_before_booking_that_the_platform_approves(
        app, login_as, session, instrument, requires_approval):
    own_rules(session, instrument, requires_approval=requires_approval)
    booking_page = page(login_as("enterprise").get(f"/instruments/{instrument.id}/book"))
    public_page = page(app.test_client().get(f"/instruments/{instrument.id}"))
    for shown in (booking_page, public_page):
        assert bool(shown.find("div", data_testid="needs-approval") or shown.find("p", data_testid="needs-approval")) \
            is requires_approval
        if requires_approval:
            assert "此仪器的预约需经平台审批" in shown.text("needs-approval")
    assert booking_page.find("form", data_testid="booking-form")


def test_the_instrument_page_links_to_booking_and_the_menu_to_my_bookings(app, login_as, instrument):
    public = page(app.test_client().get(f"/instruments/{instrument.id}"))
    assert public.find("a", data_testid="book-link")[0]["href"] == f"/instruments/{instrument.id}/book"
    assert not public.find("a", href="/bookings")
    assert login_as("enterprise").get("/").get_data(as_text=True).count('href="/bookings"') == 1
    assert app.test_client().get(f"/instruments/{instrument.id}/book").status_code == 401
