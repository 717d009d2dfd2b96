"""Voucher pages: the enterprise's vouchers and a voucher's ledger, the bureau's list with filters,
voiding; the menu of each role; and the booking page with a voucher: the price in two parts (the
voucher's and the enterprise's share) to the fen before booking, then the booking holds the part."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking
from marketplace.registry.models import InstrumentState
from tests.marketplace.booking_fixtures import workday_at
from tests.vouchers.conftest import enterprise_of, page_of
from vouchers.models import EntryKind, LedgerEntry, VoucherState


def test_my_vouchers_show_balance_held_consumed_and_expiry(login_as, session, create_member, issue_voucher):
    voucher = issue_voucher(amount_fen=1_234_56)
    issue_voucher(enterprise_user=create_member())
    page = page_of(login_as("enterprise").get("/my/vouchers"))
    [card] = page.all("voucher-card")
    assert voucher.serial in card["text"] and "¥1,234.56" in card["text"]
    assert to_local(voucher.expires_at).strftime("%Y-%m-%d") in card["text"]
    assert page.one("balance")["data-fen"] == "123456"


def test_a_voucher_page_shows_its_ledger_with_booking_links(login_as, session, demo_user, issue_voucher,
                                                            create_instrument):
    voucher = issue_voucher(amount_fen=2_000_00)
    instrument = create_instrument(state=InstrumentState.PUBLISHED)
    member = demo_user("enterprise")
    booking = bookings.book_instrument(session, actor=Actor.of(member, None), user=member,
                                       instrument_id=instrument.id, start_at=workday_at(9, days=3),
                                       end_at=workday_at(10, days=3), now=utcnow(), voucher_id=voucher.id)
    bookings.cancel_booking(session, booking, actor=Actor.of(member, None), user=member, now=utcnow(), reason="")
    response = login_as("enterprise").get(f"/vouchers/{voucher.id}")
    assert response.status_code == 200
    page = page_of(response)
    kinds = [row["data-kind"] for row in page.all("ledger-entry")]
    assert kinds == ["issue", "hold", "release"]
    assert f'href="/bookings/{booking.id}"' in response.get_data(as_text=True)
    assert "enterprise@kequip.test" in page.one("ledger")["text"]
    assert page.one("balance")["data-fen"] == "200000" and page.one("held")["data-fen"] == "0"
    assert not page.all("void-form")


@pytest.mark.parametrize("who, status", [("bureau", 200), ("auditor", 200), ("finance", 200), ("platform", 403),
                                         ("operator", 403)])
def test_a_voucher_page_is_for_its_enterprise_and_the_readers(login_as, issue_voucher, who, status):
    voucher = issue_voucher()
    assert login_as(who).get(f"/vouchers/{voucher.id}").status_code == status


def test_another_enterprise_s_voucher_does_not_exist_for_a_member(login_as, create_member, issue_voucher):
    voucher = issue_voucher(enterprise_user=create_member())
    assert login_as("enterprise").get(f"/vouchers/{voucher.id}").status_code == 404
    assert login_as("enterprise").get("/vouchers/999999").status_code == 404


@pytest.mark.parametrize("who, status", [("bureau", 200), ("auditor", 200), ("finance", 200), ("enterprise", 403),
                                         ("platform", 403)])
def test_the_list_of_every_voucher_is_for_the_readers(login_as, who, status):
    assert login_as(who).get("/vouchers").status_code == status


def test_the_bureau_filters_vouchers_by_programme_enterprise_and_state(login_as, session, create_member,
                                                                       create_programme, issue_voucher):
    other = create_programme()
    first = issue_voucher()
    stranger = create_member()
    second = issue_voucher(enterprise_user=stranger, programme=other)
    client = login_as("bureau")

    def serials(query: str) -> set[str]:
        rows = page_of(client.get(f"/vouchers?{query}")).all("voucher-row")
        return {serial for serial in (first.serial, second.serial) if any(serial in row["text"] for row in rows)}

    assert serials("") == {first.serial, second.serial}
    assert serials(f"programme_id={other.id}") == {second.serial}
    assert serials(f"enterprise_id={enterprise_of(stranger).id}") == {second.serial}
    assert serials("state=void") == set()
    assert serials("state=bad&programme_id=x") == {first.serial, second.serial}


def test_the_bureau_voids_a_voucher_with_a_reason_and_its_entries_stay(login_as, session, issue_voucher):
    voucher = issue_voucher(amount_fen=500_00)
    client = login_as("bureau")
    assert page_of(client.get(f"/vouchers/{voucher.id}")).all("void-form")
    client.post(f"/vouchers/{voucher.id}/void", data={"reason": ""})
    session.refresh(voucher)
    assert voucher.state == VoucherState.ACTIVE
    client.post(f"/vouchers/{voucher.id}/void", data={"reason": "串通骗取"})
    session.refresh(voucher)
    assert (voucher.state, voucher.balance_fen, voucher.void_reason) == (VoucherState.VOID, 0, "串通骗取")
    kinds = session.scalars(select(LedgerEntry.kind).where(LedgerEntry.voucher_id == voucher.id)
                            .order_by(LedgerEntry.id)).all()
    assert kinds == [EntryKind.ISSUE, EntryKind.VOID]
    page = page_of(client.get(f"/vouchers/{voucher.id}"))
    assert page.text("void-reason") == "串通骗取" and not page.all("void-form")


@pytest.mark.parametrize("who", ["auditor", "finance", "enterprise"])
def test_only_the_bureau_voids(login_as, session, issue_voucher, who):
    voucher = issue_voucher()
    assert login_as(who).post(f"/vouchers/{voucher.id}/void", data={"reason": "x"}).status_code == 403
    session.refresh(voucher)
    assert voucher.state == VoucherState.ACTIVE


@pytest.mark.parametrize("who, present, absent", [
    ("bureau", {"/voucher-programmes", "/voucher-applications", "/vouchers"}, {"/my/vouchers"}),
    ("auditor", {"/voucher-programmes", "/voucher-applications", "/vouchers"}, {"/my/vouchers"}),
    ("finance", {"/voucher-programmes", "/vouchers"}, {"/my/vouchers", "/voucher-applications"}),
    ("enterprise", {"/voucher-programmes/open", "/my/vouchers"}, {"/voucher-programmes", "/vouchers"}),
    ("platform", set(), {"/voucher-programmes", "/vouchers", "/my/vouchers", "/voucher-programmes/open"}),
])
def test_each_role_finds_its_voucher_pages_in_the_menu(login_as, who, present, absent):
    html = login_as(who).get("/dashboard").get_data(as_text=True)
    nav = html.split('data-testid="role-nav"', 1)[1].split('<ul class="navbar-nav">', 1)[0]  # drop-downs included
    links = {part.split('"', 1)[0] for part in nav.split('href="')[1:]}
    assert present <= links and not (absent & links), links


# --- the booking page with a voucher ---------------------------------------------------------------

@pytest.fixture
def booking_page(login_as, session, demo_user, create_instrument):
    """post(voucher, hours=2, **fields) → the booking page's answer for a slot three working days ahead, as
    the demo enterprise's member; ¥500.00 an hour (plus `setup_fen`) for district enterprises."""

    def make(*, setup_fen: int = 0, tech_sme: bool = False):
        enterprise_of(demo_user("enterprise")).is_tech_sme = tech_sme
        instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=setup_fen,
                                       hourly_rate_district_enterprise_fen=500_00)
        session.flush()
        terms = bookings.current_terms(session, instrument.platform_id)
        client = login_as("enterprise")

        def post(voucher_id, *, hours: int = 2, preview: bool = True, **fields):
            start, end = workday_at(9, days=3), workday_at(9 + hours, days=3)
            data = {"start": to_local(start).strftime("%Y-%m-%dT%H:%M"),
                    "end": to_local(end).strftime("%Y-%m-%dT%H:%M"), "terms_id": str(terms.id), "voucher_id": str(voucher_id or 0), "accept_terms": "y"} | fields
            data["preview" if preview else "submit"] = "y"
            return client.post(f"/instruments/{instrument.id}/book", data=data)

        return instrument, client, post

    return make


def breakdown(response) -> tuple[int, int]:
    page = page_of(response)
    return int(page.one("voucher-part")["data-fen"]), int(page.one("enterprise-share")["data-fen"])


def test_the_booking_page_offers_the_enterprise_s_usable_vouchers(booking_page, create_member, issue_voucher):
    instrument, client, _post = booking_page()
    usable = issue_voucher(amount_fen=300_00)
    other = issue_voucher(enterprise_user=create_member())
    html = client.get(f"/instruments/{instrument.id}/book").get_data(as_text=True)
    assert f'<option value="{usable.id}"' in html and usable.serial in html and "¥300.00" in html
    assert other.serial not in html


@pytest.mark.parametrize("setup, tech_sme, amount, cap, expected", [
    (0, False, 2_000_00, 10_000_00, (500_00, 500_00)),  # ¥1,000.00 at 50 %: ¥500.00 each
    (0, True, 2_000_00, 10_000_00, (700_00, 300_00)),  # a technology-based SME: 70 %
    (0, False, 2_000_00, 300_00, (300_00, 700_00)),  # the per-order cap
    (0, False, 200_00, 10_000_00, (200_00, 800_00)),  # the balance
    (1, False, 2_000_00, 10_000_00, (500_00, 500_01)),  # ¥1,000.01 at 50 %: the voucher part rounds down
])
def test_the_booking_page_shows_both_parts_to_the_fen_before_booking(booking_page, create_programme, issue_voucher,
                                                                     session, setup, tech_sme, amount, cap, expected):
    instrument, client, post = booking_page(setup_fen=setup, tech_sme=tech_sme)
    voucher = issue_voucher(programme=create_programme(order_cap_fen=cap), amount_fen=amount)
    response = post(voucher.id)
    assert response.status_code == 200
    assert breakdown(response) == expected
    session.refresh(voucher)
    assert voucher.held_fen == 0  # a preview holds nothing


def test_booking_with_a_voucher_holds_its_part(booking_page, session, issue_voucher):
    instrument, client, post = booking_page()
    voucher = issue_voucher(amount_fen=2_000_00)
    response = post(voucher.id, preview=False)
    assert response.status_code == 302
    booking = session.scalar(select(Booking).where(Booking.instrument_id == instrument.id))
    assert (booking.voucher_id, booking.voucher_fen, booking.payable_fen) == (voucher.id, 500_00, 500_00)
    session.refresh(voucher)
    assert (voucher.balance_fen, voucher.held_fen) == (1_500_00, 500_00)
    detail = page_of(client.get(response.headers["Location"]))
    assert detail.one("payable")["text"].strip() == "¥500.00"


def test_a_voucher_that_cannot_pay_is_refused_beside_its_field(booking_page, session, demo_user, create_member,
                                                              issue_voucher):
    instrument, client, post = booking_page()
    strangers = issue_voucher(enterprise_user=create_member())
    for preview in (True, False):
        response = post(strangers.id, preview=preview)
        assert response.status_code == (200 if preview else 422)
        page = page_of(response)
        assert page.invalid == {"voucher_id"} and "d-none" in page.one("voucher-breakdown")["class"]
    assert session.scalar(select(Booking).where(Booking.instrument_id == instrument.id)) is None
    mine = issue_voucher()
    response = post(mine.id, preview=False, weeks="2")
    assert response.status_code == 422 and page_of(response).invalid == {"voucher_id"}


def test_the_quote_for_the_calendar_script_carries_the_voucher_part(booking_page, create_member, issue_voucher):
    instrument, client, _post = booking_page()
    voucher = issue_voucher(amount_fen=2_000_00)
    start = to_local(workday_at(9, days=3)).replace(tzinfo=None).isoformat()
    end = to_local(workday_at(11, days=3)).replace(tzinfo=None).isoformat()
    body = client.get(f"/instruments/{instrument.id}/book/quote?start={start}&end={end}&voucher_id={voucher.id}").json
    assert body["price_fen"] == 1_000_00
    assert (body["voucher"]["voucher_fen"], body["voucher"]["share_fen"], body["voucher"]["payable_fen"]) == (
        500_00, 500_00, 500_00)
    assert body["voucher"]["ratio"] == "50.00 %"
    assert client.get(f"/instruments/{instrument.id}/book/quote?start={start}&end={end}").json["voucher"] is None
    other = issue_voucher(enterprise_user=create_member())
    refused = client.get(f"/instruments/{instrument.id}/book/quote?start={start}&end={end}&voucher_id={other.id}").json
    assert refused["voucher_error"]["code"] == "voucher_not_eligible"


def test_an_enterprise_reimbursed_programme_says_the_whole_price_is_paid_first(booking_page, create_programme,
                                                                               issue_voucher):
    _instrument, _client, post = booking_page()
    voucher = issue_voucher(programme=create_programme(redemption_mode="enterprise"), amount_fen=2_000_00)
    response = post(voucher.id)
    assert breakdown(response) == (500_00, 500_00)
    assert "¥1,000.00" in page_of(response).text("voucher-note")


def test_expired_vouchers_are_not_offered(booking_page, create_programme, issue_voucher):
    instrument, client, _post = booking_page()
    today = to_local(utcnow()).date()
    old = issue_voucher(programme=create_programme(applications_open_on=today - timedelta(days=500),
                                                   validity_days=30), now=utcnow() - timedelta(days=400))
    assert old.serial not in client.get(f"/instruments/{instrument.id}/book").get_data(as_text=True)
