"""The voucher API: the caller's vouchers (all of them for the bureau, finance and the auditor) with
filters and pages, one voucher with its ledger, applying; and POST /api/v1/bookings with a voucher: the
part held to the fen, and each refusal's code."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.models import Platform
from marketplace.booking import services as bookings
from marketplace.registry.models import InstrumentState
from tests.marketplace.booking_fixtures import workday_at
from tests.vouchers.conftest import enterprise_of
from vouchers import services
from vouchers.models import Voucher

VOUCHER_KEYS = {"id", "serial", "programme", "enterprise_id", "enterprise_name", "application_id", "state",
                "amount_fen", "balance_fen", "held_fen", "consumed_fen", "redeemed_fen", "issued_at", "expires_at",
                "void_reason"}


def test_a_member_lists_only_their_enterprise_s_vouchers(api_as, create_member, issue_voucher):
    mine = issue_voucher(amount_fen=300_00)
    issue_voucher(enterprise_user=create_member(), amount_fen=100_00)
    response = api_as("enterprise").get("/api/v1/vouchers")
    assert response.status_code == 200
    body = response.json
    assert (body["total"], body["page"], body["per_page"]) == (1, 1, 20)
    [item] = body["items"]
    assert set(item) == VOUCHER_KEYS
    assert (item["id"], item["serial"], item["amount_fen"], item["balance_fen"], item["state"]) == (
        mine.id, mine.serial, 300_00, 300_00, "active")
    assert item["programme"]["redemption_mode"] == "provider" and item["expires_at"].endswith("+08:00")


@pytest.mark.parametrize("who", ["bureau", "finance", "auditor"])
def test_the_bureau_finance_and_the_auditor_list_every_voucher_with_filters(api_as, create_member, create_programme,
                                                                           issue_voucher, who):
    other_programme = create_programme()
    first = issue_voucher(amount_fen=300_00)
    stranger = create_member()
    second = issue_voucher(enterprise_user=stranger, amount_fen=100_00, programme=other_programme)
    client = api_as(who)
    def ids(query):
        body = client.get(f"/api/v1/vouchers?{query}").json
        assert "items" in body, body
        return {item["id"] for item in body["items"]}

    assert {first.id, second.id} <= ids("per_page=100")
    assert ids(f"programme_id={other_programme.id}") == {second.id}
    assert ids(f"enterprise_id={enterprise_of(stranger).id}") == {second.id}
    assert ids(f"programme_id={other_programme.id}&state=void") == set()
    page = client.get(f"/api/v1/vouchers?programme_id={other_programme.id}&page=2&per_page=1").json
    assert (page["items"], page["total"], page["page"]) == ([], 1, 2)


def test_others_see_no_vouchers_and_bad_queries_are_422(api_as, issue_voucher):
    issue_voucher()
    assert api_as("platform").get("/api/v1/vouchers").json["items"] == []
    assert api_as(None).get("/api/v1/vouchers").status_code == 401
    for query in ("state=nope", "per_page=101", "page=0", "programme_id=x"):
        response = api_as("bureau").get(f"/api/v1/vouchers?{query}")
        assert (response.status_code, response.json["error"]["code"]) == (422, "validation_error"), query


def test_one_voucher_comes_with_its_ledger(api_as, session, demo_user, issue_voucher):
    voucher = issue_voucher(amount_fen=300_00)
    bureau = demo_user("bureau")
    services.void_voucher(session, voucher, actor=Actor.of(bureau, None), user=bureau, reason="骗取", now=utcnow())
    body = api_as("enterprise").get(f"/api/v1/vouchers/{voucher.id}").json
    assert set(body) == VOUCHER_KEYS | {"ledger"}
    assert (body["state"], body["balance_fen"], body["void_reason"]) == ("void", 0, "骗取")
    assert [(e["kind"], e["amount_fen"]) for e in body["ledger"]] == [("issue", 300_00), ("void", 300_00)]
    assert set(body["ledger"][0]) == {"id", "kind", "amount_fen", "booking_id", "claim_id", "platform_id", "actor",
                                      "at"}
    assert body["ledger"][0]["actor"] == "bureau@kequip.test"
    assert api_as("auditor").get(f"/api/v1/vouchers/{voucher.id}").status_code == 200


def test_another_enterprise_s_voucher_is_404(api_as, create_member, issue_voucher):
    voucher = issue_voucher(enterprise_user=create_member())
    for who in ("enterprise", "platform"):
        response = api_as(who).get(f"/api/v1/vouchers/{voucher.id}")
        assert (response.status_code, response.json["error"]["code"]) == (404, "not_found"), who
    assert api_as("bureau").get("/api/v1/vouchers/99999999999").status_code == 404


# --- applying ---------------------------------------------------------------------------------------

def test_a_member_applies_through_the_api(api_as, session, demo_user, create_programme):
    programme = create_programme()
    response = api_as("enterprise").post("/api/v1/voucher-applications", json={
        "programme_id": programme.id, "requested_fen": 50_000_00, "purpose": "检测", "planned_instruments": "质谱"})
    assert response.status_code == 201
    body = response.json
    assert set(body) == {"id", "programme_id", "enterprise_id", "state", "requested_fen", "approved_fen", "purpose",
                         "planned_instruments", "decision_note", "created_at"}
    assert (body["state"], body["requested_fen"], body["approved_fen"]) == ("submitted", 50_000_00, None)
    assert body["enterprise_id"] == enterprise_of(demo_user("enterprise")).id


def test_applying_refusals_come_with_their_codes(api_as, session, create_member, create_programme):
    today = to_local(utcnow()).date()
    closed = create_programme(applications_open_on=today - timedelta(days=9),
                              applications_close_on=today - timedelta(days=1))
    open_one = create_programme()
    unverified = create_member(verified=False)
    cases = [
        (api_as("enterprise"), {"programme_id": closed.id}, 422, "programme_closed"),
        (api_as(unverified.email), {"programme_id": open_one.id}, 422, "enterprise_not_verified"),
        (api_as("enterprise"), {"programme_id": 999999}, 404, "not_found"),
        (api_as("enterprise"), {"programme_id": open_one.id, "enterprise_id": enterprise_of(unverified).id}, 403,
         "forbidden"),
        (api_as("enterprise"), {"programme_id": open_one.id, "requested_fen": 0}, 422, "validation_error"),
        (api_as("enterprise"), {"programme_id": open_one.id, "purpose": ""}, 422, "validation_error"),
        (api_as("enterprise"), {"programme_id": open_one.id, "requested_fen": "100"}, 422, "validation_error"),
        (api_as("platform"), {"programme_id": open_one.id}, 403, "forbidden"),
        (api_as(None), {"programme_id": open_one.id}, 401, "unauthorized"),
    ]
    for client, changes, status, code in cases:
        response = client.post("/api/v1/voucher-applications",
                               json={"requested_fen": 100_00, "purpose": "检测"} | changes)
        assert (response.status_code, response.json["error"]["code"]) == (status, code), changes


def test_the_api_is_in_the_openapi_document_with_its_codes(api_as):
    document = api_as(None).get("/api/v1/openapi.json").json
    assert {"/api/v1/vouchers", "/api/v1/vouchers/{voucher_id}", "/api/v1/voucher-applications"} <= set(
        document["paths"])
    booking = document["paths"]["/api/v1/bookings"]["post"]
    for code in ("voucher_expired", "voucher_not_eligible", "voucher_insufficient", "related_party"):
        assert code in booking["responses"]["422"]["description"]
    assert "voucher_id" in document["components"]["schemas"]["BookingIn"]["properties"]
    assert "programme_closed" in document["paths"]["/api/v1/voucher-applications"]["post"]["responses"]["422"][
        "description"]


# --- booking with a voucher -------------------------------------------------------------------------

@pytest.fixture
def priced_instrument(create_instrument):
    """¥500.00 an hour for district enterprises, no setup fee: two hours cost ¥1,000.00."""
    return create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                             hourly_rate_district_enterprise_fen=500_00)


def set_tech_sme(session, demo_user, value: bool) -> None:
    """The demo enterprise is a technology-based SME; some tests want the general ratio."""
    enterprise_of(demo_user("enterprise")).is_tech_sme = value
    session.flush()


def book(client, instrument, voucher_id, hours: int = 2, start_hour: int = 9, days: int = 3):
    return client.post("/api/v1/bookings", json={
        "instrument_id": instrument.id, "start": workday_at(start_hour, days=days).isoformat(),
        "end": workday_at(start_hour + hours, days=days).isoformat(), "voucher_id": voucher_id})


@pytest.mark.parametrize("tech_sme, voucher_fen, payable_fen", [(False, 500_00, 500_00), (True, 700_00, 300_00)])
def test_booking_with_a_voucher_holds_its_part_to_the_fen(api_as, session, demo_user, issue_voucher,
                                                          priced_instrument, tech_sme, voucher_fen, payable_fen):
    set_tech_sme(session, demo_user, tech_sme)
    voucher = issue_voucher(amount_fen=2_000_00)
    response = book(api_as("enterprise"), priced_instrument, voucher.id)
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["price_fen"], body["voucher_fen"], body["payable_fen"]) == (1_000_00, voucher_fen, payable_fen)
    session.refresh(voucher)
    assert (voucher.balance_fen, voucher.held_fen) == (2_000_00 - voucher_fen, voucher_fen)


def test_the_per_order_cap_and_the_balance_limit_the_voucher_part(api_as, session, demo_user, create_programme,
                                                                  issue_voucher, priced_instrument):
    set_tech_sme(session, demo_user, False)
    capped = issue_voucher(programme=create_programme(order_cap_fen=300_00), amount_fen=2_000_00)
    client = api_as("enterprise")
    first = book(client, priced_instrument, capped.id).json
    assert (first["voucher_fen"], first["payable_fen"]) == (300_00, 700_00)
    small = issue_voucher(programme=create_programme(), amount_fen=200_00)
    second = book(client, priced_instrument, small.id, start_hour=14).json
    assert (second["voucher_fen"], second["payable_fen"]) == (200_00, 800_00)


def test_the_voucher_part_rounds_down_on_an_odd_fen(api_as, session, demo_user, issue_voucher, create_instrument):
    set_tech_sme(session, demo_user, False)
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=1,
                                   hourly_rate_district_enterprise_fen=500_00)
    voucher = issue_voucher(amount_fen=2_000_00)
    body = book(api_as("enterprise"), instrument, voucher.id).json
    assert (body["price_fen"], body["voucher_fen"], body["payable_fen"]) == (1_000_01, 500_00, 500_01)


def test_an_enterprise_reimbursed_voucher_leaves_the_whole_price_to_pay(api_as, session, demo_user, create_programme,
                                                                       issue_voucher, priced_instrument):
    set_tech_sme(session, demo_user, False)
    voucher = issue_voucher(programme=create_programme(redemption_mode="enterprise"), amount_fen=2_000_00)
    body = book(api_as("enterprise"), priced_instrument, voucher.id).json
    assert (body["voucher_fen"], body["payable_fen"]) == (500_00, 1_000_00)


def _voided(session, demo_user, voucher: Voucher) -> Voucher:
    bureau = demo_user("bureau")
    return services.void_voucher(session, voucher, actor=Actor.of(bureau, None), user=bureau, reason="x",
                                 now=utcnow())


def test_booking_refusals_come_with_their_codes(api_as, session, demo_user, create_member, create_programme,
                                                issue_voucher, priced_instrument):
    today = to_local(utcnow()).date()
    long_ago = utcnow() - timedelta(days=400)
    old_programme = create_programme(applications_open_on=today - timedelta(days=500), validity_days=30)
    platform = session.get(Platform, priced_instrument.platform_id)
    bureau = demo_user("bureau")
    cases = {
        "voucher_expired": issue_voucher(programme=old_programme, now=long_ago),
        "voided": _voided(session, demo_user, issue_voucher(programme=create_programme())),
        "voucher_not_eligible": issue_voucher(programme=create_programme(eligible_category_codes=["99"])),
        "not_this_platform": issue_voucher(programme=create_programme(eligible_platform_ids=[platform.id + 100000])),
        "another_enterprise": issue_voucher(enterprise_user=create_member()),
    }
    expected = {"voucher_expired": "voucher_expired", "voided": "voucher_expired",
                "voucher_not_eligible": "voucher_not_eligible", "not_this_platform": "voucher_not_eligible",
                "another_enterprise": "voucher_not_eligible"}
    client = api_as("enterprise")
    for name, voucher in cases.items():
        response = book(client, priced_instrument, voucher.id)
        assert (response.status_code, response.json["error"]["code"]) == (422, expected[name]), name
        assert response.json["error"]["fields"] == {"voucher_id": [response.json["error"]["message"]]}
    assert book(client, priced_instrument, 999999).json["error"]["code"] == "voucher_not_eligible"

    spent = issue_voucher(programme=create_programme(), amount_fen=100_00)
    assert book(client, priced_instrument, spent.id).status_code == 201  # holds the whole ¥100.00
    response = book(client, priced_instrument, spent.id, start_hour=14)
    assert (response.status_code, response.json["error"]["code"]) == (422, "voucher_insufficient")

    related = issue_voucher(programme=create_programme())
    services.declare_related(session, actor=Actor.of(bureau, None), user=bureau,
                             enterprise=enterprise_of(demo_user("enterprise")), platform=platform)
    response = book(client, priced_instrument, related.id, days=4)
    assert (response.status_code, response.json["error"]["code"]) == (422, "related_party")


def test_a_weekly_series_takes_no_voucher(api_as, issue_voucher, priced_instrument):
    voucher = issue_voucher()
    response = api_as("enterprise").post("/api/v1/bookings", json={
        "instrument_id": priced_instrument.id, "start": workday_at(9, days=3).isoformat(),
        "end": workday_at(10, days=3).isoformat(), "voucher_id": voucher.id, "recurrence": {"weeks": 2}})
    assert (response.status_code, response.json["error"]["code"]) == (422, "voucher_single_booking")


def test_a_refused_voucher_books_nothing_and_holds_nothing(api_as, session, create_member, issue_voucher,
                                                          priced_instrument):
    voucher = issue_voucher(enterprise_user=create_member())
    book(api_as("enterprise"), priced_instrument, voucher.id)
    session.refresh(voucher)
    assert (voucher.balance_fen, voucher.held_fen) == (voucher.amount_fen, 0)
    assert bookings.list_instrument_bookings(session, priced_instrument.id, utcnow(), utcnow() + timedelta(days=30)) \
        == []
