"""The booking API, an instrument's availability and the catalogue's free-time filter,
on both databases: every rule code through POST /api/v1/bookings, who sees which booking, the
cancellation fee, times in +08:00."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from core.audit import Actor
from core.clock import LOCAL_ZONE
from core.db import utcnow
from core.models import Enterprise, Role, VerificationState
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, MaintenanceWindow, QualificationRule
from marketplace.catalogue.services import search_catalogue
from marketplace.registry.models import InstrumentState, SharingMode
from marketplace.registry.services import FEE_FIELDS
from tests.marketplace.test_bookings import local

ZERO_FEES = {name: 0 for name in FEE_FIELDS}


def post(api, instrument, start_at: datetime, end_at: datetime, **extra):
    return api.post("/api/v1/bookings", json={"instrument_id": getattr(instrument, "id", instrument),
                                              "start": start_at.isoformat(), "end": end_at.isoformat(), **extra})


def error_of(response) -> tuple[int, str]:
    return response.status_code, response.json["error"]["code"]


def shanghai(instant: datetime) -> str:
    return instant.astimezone(LOCAL_ZONE).isoformat()


# --- POST /api/v1/bookings ------------------------------------------------------------------------

def test_a_booking_is_created_with_its_price_terms_and_local_times(api_as, session, create_instrument, monday_at):
    instrument = create_instrument(state=InstrumentState.PUBLISHED)  # enterprises: ¥100 + ¥400/h
    response = post(api_as("enterprise"), instrument, monday_at(9), monday_at(11, 30), purpose="检测农药残留")
    assert response.status_code == 201, response.json
    body = response.json
    booking = session.get(Booking, body["id"])
    assert booking.booker.email == "enterprise@kequip.test"
    terms = bookings.current_terms(session, instrument.platform_id)
    assert body == body | {
        "instrument_id": instrument.id, "instrument_name": "液相色谱-质谱联用仪", "state": "approved",
        "start": monday_at(9).astimezone(LOCAL_ZONE).isoformat(), "end": shanghai(monday_at(11, 30)),
        "block_end": shanghai(monday_at(11, 30)), "purpose": "检测农药残留", "user_type": "district_enterprise",
        "needs_operator": False, "setup_fee_fen": 10_000, "hourly_rate_fen": 40_000,
        "price_fen": 110_000, "voucher_fen": 0, "payable_fen": 110_000, "payment_method": "none",
        "payment_state": "due", "cancellation_fee_fen": 0, "final_price_fen": None, "series_id": None,
        "terms_id": terms.id, "terms_version": terms.version, "decision_note": None,
        "free_cancel_until": shanghai(monday_at(9, days=-1)), "late_cancel_fee_fen": 55_000, "no_show_fee_fen": 110_000}
    assert body["start"].endswith("T09:00:00+08:00")


def test_with_nothing_to_pay_the_booking_is_confirmed_at_once(api_as, free_instrument, monday_at):
    body = post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(10)).json
    assert (body["state"], body["price_fen"], body["payment_state"]) == ("confirmed", 0, "not_due")


def test_an_overlapping_booking_is_409_booking_conflict(api_as, free_instrument, monday_at, session):
    assert post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(11)).status_code == 201
    response = post(api_as("operator"), free_instrument, monday_at(10), monday_at(12))
    assert error_of(response) == (409, "booking_conflict")
    assert response.json["error"]["message"]
    assert bookings.find_overlapping_use(session) == []


def test_a_clash_with_the_users_own_booking_says_so(api_as, free_instrument, monday_at, session):
    enterprise = api_as("enterprise")
    assert post(enterprise, free_instrument, monday_at(9), monday_at(11)).status_code == 201
    own = post(enterprise, free_instrument, monday_at(10), monday_at(12))
    assert error_of(own) == (409, "booking_conflict")
    assert own.json["error"]["message"] == "您在该时段已有预约。"
    other = post(api_as("operator"), free_instrument, monday_at(10), monday_at(12))
    assert error_of(other) == (409, "booking_conflict")
    assert other.json["error"]["message"] == "该时段刚刚被他人预约，请选择其他时段。"
    assert session.scalar(select(func.count()).select_from(Booking)) == 1


@pytest.mark.parametrize("code, field", [
    ("outside_open_hours", "start"), ("too_short", "end"), ("too_long", "end"), ("lead_time", "start"),
    ("beyond_horizon", "start"), ("maintenance", "start"), ("not_qualified", "instrument_id"),
    ("instrument_unavailable", "instrument_id"), ("enterprise_not_verified", None),
    ("slot_granularity", "start"), ("invalid_range", "end"), ("terms_changed", "accept_terms"),
])
def test_every_rule_refuses_with_422_and_its_code(api_as, session, free_instrument, create_instrument, own_rules,
                                                  monday_at, demo_user, code, field):
    instrument, start, end, extra = free_instrument, monday_at(9), monday_at(10), {}
    if code == "outside_open_hours":
        start, end = monday_at(7), monday_at(8)
    elif code == "too_short":
        own_rules(instrument, min_minutes=60)
        end = monday_at(9, 30)
    elif code == "too_long":
        own_rules(instrument, max_minutes=120)
        end = monday_at(11, 30)
    elif code == "lead_time":
        own_rules(instrument, lead_minutes=60 * 24 * 30)
    elif code == "beyond_horizon":
        start, end = monday_at(9, weeks=20), monday_at(10, weeks=20)  # 90 days ahead at most
    elif code == "maintenance":
        session.add(MaintenanceWindow(instrument_id=instrument.id, start_at=monday_at(8), end_at=monday_at(12),
                                      reason="校准"))
    elif code == "not_qualified":
        own_rules(instrument, qualification=QualificationRule.REQUIRED)
    elif code == "instrument_unavailable":
        instrument = create_instrument(state=InstrumentState.MAINTENANCE, **ZERO_FEES)
    elif code == "enterprise_not_verified":
        enterprise = session.get(Enterprise, demo_user("enterprise").organisation_ids(Role.ENTERPRISE_MEMBER).pop())
        enterprise.verification_state = VerificationState.PENDING
    elif code == "slot_granularity":
        start, end = monday_at(9, 10), monday_at(10, 10)
    elif code == "invalid_range":
        end = start
    elif code == "terms_changed":
        extra = {"terms_id": bookings.current_terms(session, instrument.platform_id).id + 999}
    session.flush()
    response = post(api_as("enterprise"), instrument, start, end, **extra)
    assert error_of(response) == (422, code), response.json
    if field:
        assert list(response.json["error"]["fields"]) == [field]
    assert session.query(Booking).filter_by(instrument_id=instrument.id).count() == 0


def test_an_internal_instrument_is_unavailable_to_enterprises_but_not_to_its_staff(api_as, create_instrument,
                                                                                  monday_at):
    instrument = create_instrument(state=InstrumentState.PUBLISHED, sharing_mode=SharingMode.INTERNAL, **ZERO_FEES)
    assert error_of(post(api_as("enterprise"), instrument, monday_at(9), monday_at(10))) == \
        (422, "instrument_unavailable")
    assert post(api_as("operator"), instrument, monday_at(9), monday_at(10)).json["user_type"] == "own_staff"


def test_holiday_is_refused_with_its_code(session, free_instrument, own_rules, demo_user):
    """The API books against the clock; the holiday code is shown through the service the API calls, with a
    clock in September 2026 and the 2026 arrangement seeded from the State Council's notice."""
    own_rules(free_instrument, horizon_days=365)
    person = demo_user("enterprise")
    with pytest.raises(bookings.RuleBroken) as refused:  # National Day, a Thursday
        bookings.book_instrument(session, actor=Actor.of(person, "127.0.0.1"), user=person,
                                 instrument_id=free_instrument.id, start_at=local(2026, 10, 1, 9),
                                 end_at=local(2026, 10, 1, 10), now=local(2026, 9, 1, 9))
    assert (refused.value.code, refused.value.field) == ("holiday", "start")


def test_a_user_without_a_token_gets_401(api_as, free_instrument, monday_at):
    assert error_of(post(api_as(None), free_instrument, monday_at(9), monday_at(10))) == (401, "unauthorized")


@pytest.mark.parametrize("start, end, field", [
    ("2026-12-07T09:00:00", "2026-12-07T10:00:00+08:00", "start"),  # naive
    ("2026-12-07T09:00:00+08:00", "soon", "end"),
    ("0001-01-01T00:00:00+08:00", "2026-12-07T10:00:00+08:00", "start"),  # would overflow in UTC
])
def test_naive_or_unparsable_times_are_422_with_the_field(api_as, free_instrument, start, end, field):
    response = api_as("enterprise").post("/api/v1/bookings", json={
        "instrument_id": free_instrument.id, "start": start, "end": end})
    assert error_of(response) == (422, "validation_error")
    assert list(response.json["error"]["fields"]) == [field]


def test_an_unknown_instrument_is_404(api_as, monday_at):
    assert error_of(post(api_as("enterprise"), 2_000_000_000, monday_at(9), monday_at(10))) == (404, "not_found")


def test_a_weekly_series_books_the_free_weeks_and_lists_the_skipped(api_as, session, free_instrument, monday_at):
    assert post(api_as("operator"), free_instrument, monday_at(9, weeks=2), monday_at(10, weeks=2)).status_code == 201
    response = post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(10), recurrence={"weeks": 3})
    assert response.status_code == 201, response.json
    body = response.json
    assert [b["start"] for b in body["booked"]] == [shanghai(monday_at(9)), shanghai(monday_at(9, weeks=3))]
    assert {b["series_id"] for b in body["booked"]} == {body["series_id"]}
    assert len(body["skipped"]) == 1
    assert body["skipped"][0] | {"message": ""} == {"start": shanghai(monday_at(9, weeks=2)),
                                                    "code": "booking_conflict", "message": ""}
    assert error_of(post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(10),
                         recurrence={"weeks": 1})) == (422, "validation_error")


def test_a_weekly_series_paid_by_a_voucher_is_refused_and_books_nothing(api_as, session, free_instrument,
                                                                        monday_at):
    before = session.scalar(select(func.count()).select_from(Booking))
    response = post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(10), recurrence={"weeks": 3},
                    voucher_id=1)
    assert error_of(response) == (422, "voucher_single_booking")
    assert "voucher_id" in response.json["error"]["fields"]
    assert session.scalar(select(func.count()).select_from(Booking)) == before


# --- reading and cancelling -------------------------------------------------------------------------

def test_my_bookings_upcoming_past_by_state_and_paged(api_as, session, free_instrument, monday_at, demo_user):
    person = demo_user("enterprise")
    actor = Actor.of(person, "127.0.0.1")
    past = bookings.book_instrument(session, actor=actor, user=person, instrument_id=free_instrument.id,
                                    start_at=monday_at(9, weeks=-1), end_at=monday_at(10, weeks=-1),
                                    now=monday_at(0, weeks=-2))
    api = api_as("enterprise")
    first = post(api, free_instrument, monday_at(9), monday_at(10)).json
    second = post(api, free_instrument, monday_at(14), monday_at(15)).json
    post(api_as("operator"), free_instrument, monday_at(9, days=1), monday_at(10, days=1))  # not mine
    bookings.cancel_booking(session, session.get(Booking, second["id"]), actor=actor, user=person, now=utcnow())
    session.flush()

    def ids(**query) -> list[int]:
        response = api.get("/api/v1/bookings", query_string=query)
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"] if item["instrument_id"] == free_instrument.id]

    assert ids() == [first["id"], second["id"]]
    assert ids(state="confirmed") == [first["id"]]
    assert ids(state="cancelled") == [second["id"]]
    assert ids(when="past") == [past.id]
    assert ids(when="all") == [second["id"], first["id"], past.id]
    page = api.get("/api/v1/bookings", query_string={"per_page": 1}).json
    assert (len(page["items"]), page["has_more"], page["page"]) == (1, True, 1)
    assert error_of(api.get("/api/v1/bookings", query_string={"when": "soon"})) == (422, "validation_error")


@pytest.mark.parametrize("who, status", [("enterprise", 200), ("platform", 200), ("operator", 200), ("bureau", 200),
                                         ("expert", 404), ("introducer", 404), ("finance", 404)])
def test_a_booking_is_seen_by_its_booker_its_platform_and_the_bureau_only(api_as, free_instrument, monday_at,
                                                                         who, status):
    booking = post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(10)).json
    response = api_as(who).get(f"/api/v1/bookings/{booking['id']}")
    assert response.status_code == status
    if status == 200:
        assert response.json == booking
    else:
        assert response.json["error"]["code"] == "not_found"
        assert api_as(who).post(f"/api/v1/bookings/{booking['id']}/cancel", json={}).status_code == 404


def test_cancelling_in_time_is_free(api_as, session, free_instrument, monday_at):
    booking = post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(10)).json
    response = api_as("enterprise").post(f"/api/v1/bookings/{booking['id']}/cancel", json={"reason": "改期"})
    assert response.status_code == 200, response.json
    assert (response.json["fee_fen"], response.json["booking"]["state"]) == (0, "cancelled")
    assert session.get(Booking, booking["id"]).cancel_reason == "改期"
    again = api_as("enterprise").post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert error_of(again) == (409, "booking_state_changed")


def test_a_late_cancellation_charges_the_policys_fee_to_the_fen(api_as, session, create_instrument, own_rules,
                                                                monday_at):
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=1,
                                   hourly_rate_district_enterprise_fen=33_333)
    own_rules(instrument, free_cancel_hours=24 * 30, late_cancel_fee_pct=35)  # next week is "late"
    booking = post(api_as("enterprise"), instrument, monday_at(9), monday_at(10, 30)).json
    assert booking["price_fen"] == 1 + 49_999 + 1  # 33,333 × 1.5 = 49,999.5, rounded half up
    bookings.confirm_booking(session, session.get(Booking, booking["id"]), actor=Actor.system("test"),
                             now=utcnow())
    session.flush()
    response = api_as("enterprise").post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert response.status_code == 200, response.json
    assert response.json["fee_fen"] == 50_001 * 35 // 100 == 17_500
    assert response.json["booking"]["cancellation_fee_fen"] == 17_500
    assert session.get(Booking, booking["id"]).cancellation_fee_fen == 17_500


def test_the_platform_cancels_without_a_fee_and_the_bureau_may_not_cancel(api_as, create_instrument, own_rules,
                                                                          monday_at, session):
    instrument = create_instrument(state=InstrumentState.PUBLISHED)
    own_rules(instrument, free_cancel_hours=24 * 30)
    booking = post(api_as("enterprise"), instrument, monday_at(9), monday_at(10)).json
    assert error_of(api_as("bureau").post(f"/api/v1/bookings/{booking['id']}/cancel")) == (403, "forbidden")
    response = api_as("platform").post(f"/api/v1/bookings/{booking['id']}/cancel", json={"reason": "设备故障"})
    assert (response.status_code, response.json["fee_fen"]) == (200, 0)


# --- availability --------------------------------------------------------------------------------

def test_availability_gives_free_and_busy_time_in_shanghai_time(api_as, session, free_instrument, own_rules,
                                                                 monday_at):
    own_rules(free_instrument, buffer_minutes=30)
    post(api_as("enterprise"), free_instrument, monday_at(9), monday_at(10))
    session.add(MaintenanceWindow(instrument_id=free_instrument.id, start_at=monday_at(16), end_at=monday_at(17)))
    session.flush()
    response = api_as(None).get(f"/api/v1/instruments/{free_instrument.id}/availability", query_string={
        "start": shanghai(monday_at(0)), "end": shanghai(monday_at(0, days=1))})
    assert response.status_code == 200, response.json

    def periods(*pairs) -> list[dict]:
        return [{"start": shanghai(a), "end": shanghai(b)} for a, b in pairs]

    assert response.json == {
        "free": periods((monday_at(8, 30), monday_at(9)), (monday_at(10, 30), monday_at(12)),
                        (monday_at(13, 30), monday_at(16)), (monday_at(17), monday_at(17, 30))),
        "busy": periods((monday_at(9), monday_at(10, 30)), (monday_at(16), monday_at(17)))}
    assert response.json["free"][0]["start"].endswith("T08:30:00+08:00")


@pytest.mark.parametrize("query, field", [
    ({"start": "2026-12-07T00:00:00+08:00", "end": "2027-02-08T00:00:00+08:00"}, "end"),  # 63 days
    ({"start": "2026-12-07T00:00:00+08:00", "end": "2026-12-07T00:00:00+08:00"}, "end"),
    ({"start": "2026-12-07T00:00:00", "end": "2026-12-08T00:00:00+08:00"}, "start"),
    ({"start": "yesterday", "end": "2026-12-08T00:00:00+08:00"}, "start"),
    ({"end": "2026-12-08T00:00:00+08:00"}, "start"),
])
def test_a_bad_range_is_422_with_the_field(api_as, free_instrument, query, field):
    response = api_as(None).get(f"/api/v1/instruments/{free_instrument.id}/availability", query_string=query)
    assert error_of(response) == (422, "validation_error")
    assert list(response.json["error"]["fields"]) == [field]


def test_62_days_is_the_longest_range(api_as, free_instrument):
    response = api_as(None).get(f"/api/v1/instruments/{free_instrument.id}/availability", query_string={
        "start": "2026-12-07T00:00:00+08:00", "end": "2027-02-07T00:00:00+08:00"})
    assert response.status_code == 200 and len(response.json["free"]) > 40


def test_availability_of_an_unknown_or_unpublished_instrument_is_404(api_as, create_instrument):
    query = {"start": "2026-12-07T00:00:00+08:00", "end": "2026-12-08T00:00:00+08:00"}
    draft = create_instrument()
    for instrument_id in (draft.id, 2_000_000_000):
        response = api_as("platform").get(f"/api/v1/instruments/{instrument_id}/availability", query_string=query)
        assert error_of(response) == (404, "not_found")


def test_the_openapi_document_has_the_booking_paths(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/bookings", "/api/v1/bookings/{booking_id}", "/api/v1/bookings/{booking_id}/cancel",
            "/api/v1/instruments/{instrument_id}/availability"} <= set(spec["paths"])
    created = spec["paths"]["/api/v1/bookings"]["post"]["responses"]
    assert {"201", "409", "422"} <= set(created)
    assert "terms_id" in spec["components"]["schemas"]["BookingIn"]["properties"]
    assert "current terms" in spec["components"]["schemas"]["BookingIn"]["description"]
    parameters = {p["name"] for p in spec["paths"]["/api/v1/instruments"]["get"]["parameters"]}
    assert {"available_from", "available_to"} <= parameters


# --- the catalogue's free-time filter ---------------------------------------------------------------

NAME = "空闲筛选测试仪"


@pytest.fixture
def searchable(create_instrument):
    """A published, fee-free instrument found by the keyword NAME."""
    return create_instrument(state=InstrumentState.PUBLISHED, name_zh=NAME, **ZERO_FEES)


def free_ids(session, start: datetime, end: datetime) -> set[int]:
    found = search_catalogue(session, q=NAME, free_from=start, free_to=end, per_page=100, large_line_fen=1,
                             dialect=session.get_bind().dialect.name)
    return {instrument.id for instrument in found.items}


def test_free_filter_keeps_instruments_open_and_unbooked_for_the_whole_time(api_as, session, searchable,
                                                                            create_instrument, own_rules, monday_at):
    other = create_instrument(state=InstrumentState.PUBLISHED, name_zh=NAME, **ZERO_FEES)
    own_rules(other, buffer_minutes=30)
    assert free_ids(session, monday_at(9), monday_at(10)) == {searchable.id, other.id}
    post(api_as("enterprise"), other, monday_at(8, 30), monday_at(9))  # its buffer runs to 09:30
    post(api_as("enterprise"), searchable, monday_at(10), monday_at(11))  # from the end on: still free
    assert free_ids(session, monday_at(9), monday_at(10)) == {searchable.id}
    assert free_ids(session, monday_at(9, 30), monday_at(10)) == {searchable.id, other.id}
    assert free_ids(session, monday_at(10, 30), monday_at(11, 30)) == {other.id}
    # closed: before opening, over the lunch break, on an ordinary Saturday
    assert free_ids(session, monday_at(8), monday_at(9)) == set()
    assert free_ids(session, monday_at(11), monday_at(14)) == set()
    assert free_ids(session, monday_at(9, days=5), monday_at(10, days=5)) == set()
    # a cancelled booking frees its time
    booked = session.query(Booking).filter_by(instrument_id=other.id).one()
    bookings.cancel_booking(session, booked, actor=Actor.system("test"), user=booked.booker, now=utcnow())
    assert free_ids(session, monday_at(9), monday_at(10)) == {searchable.id, other.id}


def test_free_filter_leaves_out_maintenance_and_instruments_not_published(session, searchable, create_instrument,
                                                                          monday_at):
    create_instrument(state=InstrumentState.MAINTENANCE, name_zh=NAME)
    session.add(MaintenanceWindow(instrument_id=searchable.id, start_at=monday_at(9, 45), end_at=monday_at(12)))
    session.flush()
    assert free_ids(session, monday_at(9), monday_at(9, 30)) == {searchable.id}
    assert free_ids(session, monday_at(9), monday_at(10)) == set()


def test_free_filter_follows_each_instruments_own_hours(session, searchable, create_instrument, own_rules,
                                                        monday_at):
    weekends = create_instrument(state=InstrumentState.PUBLISHED, name_zh=NAME)
    own_rules(weekends, open_hours={str(day): [["00:00", "24:00"]] for day in range(7)})
    saturday = monday_at(10, days=5), monday_at(11, days=5)
    assert free_ids(session, *saturday) == {weekends.id}
    assert free_ids(session, monday_at(22), monday_at(10, days=1)) == {weekends.id}  # overnight, open throughout
    assert free_ids(session, monday_at(9), monday_at(10)) == {searchable.id, weekends.id}


def test_free_filter_knows_holidays_and_make_up_days(session, searchable, create_instrument, own_rules):
    every_day = create_instrument(state=InstrumentState.PUBLISHED, name_zh=NAME)
    own_rules(every_day, closed_on_holidays=False,
              open_hours={str(day): [["08:30", "12:00"]] for day in range(7)})
    national_day = local(2026, 10, 1, 9), local(2026, 10, 1, 10)  # a Thursday
    assert free_ids(session, *national_day) == {every_day.id}
    make_up_sunday = local(2026, 9, 20, 9), local(2026, 9, 20, 10)  # worked with a Monday's hours
    assert free_ids(session, *make_up_sunday) == {searchable.id, every_day.id}


def test_free_filter_reaches_back_to_long_bookings_where_the_rules_allow_them(api_as, session, searchable,
                                                                              own_rules, monday_at):
    own_rules(searchable, allows_overnight=True, max_minutes=3 * 1440,
              open_hours={str(day): [["00:00", "24:00"]] for day in range(7)})
    post(api_as("enterprise"), searchable, monday_at(9), monday_at(9, days=2))
    assert free_ids(session, monday_at(20, days=1), monday_at(21, days=1)) == set()
    assert free_ids(session, monday_at(9, days=2), monday_at(10, days=2)) == {searchable.id}


def test_free_filter_in_the_api(api_as, searchable, monday_at):
    def search(**query):
        return api_as(None).get("/api/v1/instruments", query_string={"q": NAME, **query})

    response = search(available_from=shanghai(monday_at(9)), available_to=shanghai(monday_at(10)))
    assert [item["id"] for item in response.json["items"]] == [searchable.id]
    assert search(available_from=shanghai(monday_at(8)), available_to=shanghai(monday_at(9))).json["items"] == []
    for query, field in [({"available_from": shanghai(monday_at(9))}, "available_to"),
                         ({"available_to": shanghai(monday_at(9))}, "available_from"),
                         ({"available_from": shanghai(monday_at(9)), "available_to": shanghai(monday_at(9))},
                          "available_to"),
                         ({"available_from": shanghai(monday_at(9)), "available_to": shanghai(monday_at(9, weeks=10))},
                          "available_to"),
                         ({"available_from": "2026-12-07T09:00:00", "available_to": shanghai(monday_at(9))},
                          "available_from")]:
        response = search(**query)
        assert error_of(response) == (422, "validation_error"), query
        assert list(response.json["error"]["fields"]) == [field], query


def test_free_filter_on_the_catalogue_page(client, searchable, monday_at):
    def page(**query) -> str:
        response = client.get("/catalogue", query_string={"q": NAME, **query})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def local_input(instant: datetime) -> str:
        return instant.astimezone(LOCAL_ZONE).strftime("%Y-%m-%dT%H:%M")

    found = page(free_from=local_input(monday_at(9)), free_to=local_input(monday_at(10)))
    assert f"/instruments/{searchable.id}" in found and 'type="datetime-local"' in found
    closed = page(free_from=local_input(monday_at(7)), free_to=local_input(monday_at(8)))
    assert f"/instruments/{searchable.id}" not in closed and 'data-testid="no-results"' in closed
    half = page(free_from=local_input(monday_at(9)))
    assert f"/instruments/{searchable.id}" not in half and "invalid-feedback" in half
    backwards = page(free_from=local_input(monday_at(10)), free_to=local_input(monday_at(9)))
    assert "invalid-feedback" in backwards and f"/instruments/{searchable.id}" not in backwards
    assert "invalid-feedback" in page(free_from="0001-01-01T00:00", free_to=local_input(monday_at(9)))


def test_search_refuses_half_a_free_range(session):
    with pytest.raises(bookings.RuleBroken) as refused:
        search_catalogue(session, free_from=utcnow(), large_line_fen=1, dialect="sqlite")
    assert (refused.value.code, refused.value.field) == ("invalid_range", "free_to")
