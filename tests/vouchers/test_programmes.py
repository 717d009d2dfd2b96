"""Programmes through the bureau's pages: yuan and percent in, fen and basis points stored, each rule's
error beside its field; the programme page's figures by platform, category and industry, and its charts;
suspending a platform; who may see and change what."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.errors import RuleBroken
from core.models import Platform
from marketplace.booking import services as bookings
from marketplace.registry.models import InstrumentState
from tests.marketplace.booking_fixtures import workday_at
from tests.vouchers.conftest import Page, page_of
from vouchers import services
from vouchers.models import Programme, ProgrammeSuspension


def form(**changes) -> dict:
    today = to_local(utcnow()).date()
    return {"name": "2026 年度科技创新券", "year": str(today.year), "pool_fen": "5000000.00", "coverage_bp": "50",
            "sme_coverage_bp": "70.5", "enterprise_year_cap_fen": "200000", "order_cap_fen": "20000.50",
            "validity_days": "365", "applications_open_on": today.isoformat(),
            "applications_close_on": (today + timedelta(days=60)).isoformat(), "redemption_mode": "provider"} | changes


def demo_platform(session, demo_user) -> Platform:
    return session.get(Platform, demo_user("platform").grants[0].organisation_id)


def test_bureau_creates_a_programme_in_yuan_and_percent(login_as, session, demo_user):
    platform = demo_platform(session, demo_user)
    response = login_as("bureau").post("/voucher-programmes/new", data=form(
        eligible_category_codes=["01", "0203"], eligible_platform_ids=[str(platform.id)], redemption_mode="enterprise"))
    assert response.status_code == 302
    programme = session.scalar(select(Programme).where(Programme.name == "2026 年度科技创新券"))
    assert response.headers["Location"].endswith(f"/voucher-programmes/{programme.id}")
    assert (programme.pool_fen, programme.enterprise_year_cap_fen, programme.order_cap_fen) == (
        500_000_000, 20_000_000, 2_000_050)
    assert (programme.coverage_bp, programme.sme_coverage_bp) == (5_000, 7_050)
    assert programme.eligible_category_codes == ["01", "0203"] and programme.eligible_platform_ids == [platform.id]
    assert programme.redemption_mode.value == "enterprise"


@pytest.mark.parametrize("field, value", [
    ("name", ""), ("year", "1999"), ("pool_fen", "0"), ("pool_fen", "100.001"), ("pool_fen", "abc"),
    ("pool_fen", "1e26"), ("order_cap_fen", "1e999999999"), ("year", "9" * 5001), ("coverage_bp", "1e999999999"),
    ("coverage_bp", "0"), ("coverage_bp", "100.01"), ("coverage_bp", "50.005"),
    ("sme_coverage_bp", "40"),  # below the general ratio: the service's rule
    ("enterprise_year_cap_fen", "0"), ("order_cap_fen", ""), ("order_cap_fen", "-5"), ("validity_days", "0"),
    ("applications_open_on", "not a date"),
    ("applications_close_on", (to_local(utcnow()).date() - timedelta(days=1)).isoformat()),  # the service's rule
])
def test_each_bad_value_is_shown_beside_its_own_field_and_nothing_is_saved(login_as, session, field, value):
    response = login_as("bureau").post("/voucher-programmes/new", data=form(**{field: value}))
    assert response.status_code == 422
    assert page_of(response).invalid == {field}
    assert session.scalar(select(Programme).where(Programme.name == "2026 年度科技创新券")) is None


def test_the_edit_form_shows_yuan_and_percent_and_saves_changes(login_as, session, create_programme):
    programme = create_programme(pool_fen=123_456_78, coverage_bp=3_333, sme_coverage_bp=6_650)
    client = login_as("bureau")
    html = client.get(f"/voucher-programmes/{programme.id}/edit").get_data(as_text=True)
    assert 'value="123456.78"' in html and 'value="33.33"' in html and 'value="66.50"' in html
    response = client.post(f"/voucher-programmes/{programme.id}/edit",
                           data=form(name=programme.name, order_cap_fen="99.99"))
    assert response.status_code == 302
    session.refresh(programme)
    assert programme.order_cap_fen == 9_999 and programme.pool_fen == 500_000_000


def test_the_pool_cannot_be_edited_below_what_was_issued(login_as, session, create_programme, issue_voucher):
    programme = create_programme(pool_fen=1_000_00)
    issue_voucher(programme=programme, amount_fen=600_00)
    response = login_as("bureau").post(f"/voucher-programmes/{programme.id}/edit",
                                       data=form(name=programme.name, pool_fen="599.99"))
    assert response.status_code == 422 and page_of(response).invalid == {"pool_fen"}
    session.refresh(programme)
    assert programme.pool_fen == 1_000_00


@pytest.mark.parametrize("who, status", [("enterprise", 403), ("platform", 403), ("operator", 403),
                                         ("auditor", 200), ("finance", 200), ("bureau", 200)])
def test_programme_pages_are_for_the_bureau_the_auditor_and_finance(login_as, create_programme, who, status):
    programme = create_programme()
    client = login_as(who)
    for url in ("/voucher-programmes", f"/voucher-programmes/{programme.id}",
                f"/voucher-programmes/{programme.id}/chart-pool.svg"):
        assert client.get(url).status_code == status, url


@pytest.mark.parametrize("who", ["auditor", "finance", "enterprise"])
def test_only_the_bureau_creates_edits_and_suspends(login_as, session, demo_user, create_programme, who):
    programme = create_programme()
    client = login_as(who)
    platform = demo_platform(session, demo_user)
    assert client.get("/voucher-programmes/new").status_code == 403
    assert client.post("/voucher-programmes/new", data=form()).status_code == 403
    assert client.post(f"/voucher-programmes/{programme.id}/edit", data=form()).status_code == 403
    assert client.post(f"/voucher-programmes/{programme.id}/suspensions",
                       data={"platform_id": platform.id, "reason": "串通"}).status_code == 403
    assert session.scalar(select(ProgrammeSuspension)) is None


def test_the_auditor_reads_the_programme_page_without_the_bureau_s_buttons(login_as, create_programme):
    programme = create_programme()
    page = page_of(login_as("auditor").get(f"/voucher-programmes/{programme.id}"))
    assert not page.all("suspend-form")
    assert not page_of(login_as("auditor").get("/voucher-programmes")).all("new-programme")
    assert page_of(login_as("bureau").get(f"/voucher-programmes/{programme.id}")).all("suspend-form")


def test_a_missing_programme_is_404(login_as):
    assert login_as("bureau").get("/voucher-programmes/999999").status_code == 404
    assert login_as("bureau").get("/voucher-programmes/99999999999").status_code == 404


@pytest.fixture
def used_programme(session, demo_user, create_programme, issue_voucher, create_instrument):
    """A programme with two vouchers: one spent on a completed booking (¥1,000.00 at 70 %: ¥700.00
    consumed), one holding ¥350.00 for a booking not yet done."""
    programme = create_programme(pool_fen=10_000_00)
    spent = issue_voucher(programme=programme, amount_fen=2_000_00)
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                                   hourly_rate_district_enterprise_fen=500_00)
    member = demo_user("enterprise")
    actor = Actor.of(member, "127.0.0.1")
    first = bookings.book_instrument(session, actor=actor, user=member, instrument_id=instrument.id,
                                     start_at=workday_at(9, days=3), end_at=workday_at(11, days=3), now=utcnow(),
                                     voucher_id=spent.id)
    services.consume_for_booking(session, booking_id=first.id, final_price_fen=1_000_00, actor=actor, now=utcnow())
    second = bookings.book_instrument(session, actor=actor, user=member, instrument_id=instrument.id,
                                      start_at=workday_at(14, days=3), end_at=workday_at(15, days=3), now=utcnow(),
                                      voucher_id=spent.id)
    return programme, instrument, first, second


def test_the_programme_page_shows_its_figures_to_the_fen(login_as, session, used_programme):
    programme, instrument, first, second = used_programme
    assert (first.voucher_fen, second.voucher_fen) == (700_00, 350_00)  # the demo enterprise is a tech SME: 70 %
    page = page_of(login_as("bureau").get(f"/voucher-programmes/{programme.id}"))
    figures = {key: int(page.one(f"figure-{key}")["data-fen"])
               for key in ("pool", "issued", "held", "consumed", "redeemed", "remaining")}
    assert figures == {"pool": 10_000_00, "issued": 2_000_00, "held": 350_00, "consumed": 700_00, "redeemed": 0,
                       "remaining": 8_000_00}


def test_the_programme_is_broken_down_by_platform_category_and_industry(login_as, session, used_programme):
    programme, instrument, _first, _second = used_programme
    html = login_as("bureau").get(f"/voucher-programmes/{programme.id}").get_data(as_text=True)
    page = Page(html)
    platform_table = page.one("by-platform")["text"]
    assert instrument.platform.name in platform_table and "¥350.00" in platform_table and "¥700.00" in platform_table
    assert f'data-key="{instrument.category.code[:2]}"' in html  # the first-level category of the instrument
    industries = page.one("by-industry")["text"]
    assert "¥700.00" in industries and industries.count("¥700.00") == len(instrument.platform.industries)


def test_the_charts_are_svg_drawn_on_the_server_with_nothing_from_elsewhere(login_as, used_programme):
    programme = used_programme[0]
    client = login_as("bureau")
    for kind in ("pool", "platforms"):
        response = client.get(f"/voucher-programmes/{programme.id}/chart-{kind}.svg")
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"
        svg = response.get_data(as_text=True)
        assert svg.lstrip().startswith("<svg") and "¥700.00" in svg
        assert re.findall(r'(?:src|href)="(?:https?:)?//', svg) == []
    assert client.get(f"/voucher-programmes/{programme.id}/chart-other.svg").status_code == 404


def test_an_unused_programme_has_empty_breakdowns_and_charts(login_as, create_programme):
    programme = create_programme()
    client = login_as("bureau")
    page = page_of(client.get(f"/voucher-programmes/{programme.id}"))
    assert page.one("figure-remaining")["data-fen"] == str(programme.pool_fen)
    assert client.get(f"/voucher-programmes/{programme.id}/chart-platforms.svg").status_code == 200


def test_bureau_suspends_a_platform_and_its_instruments_take_no_voucher_of_the_programme(
        login_as, session, demo_user, create_programme, issue_voucher, create_instrument):
    programme = create_programme()
    voucher = issue_voucher(programme=programme)
    platform = demo_platform(session, demo_user)
    client = login_as("bureau")
    response = client.post(f"/voucher-programmes/{programme.id}/suspensions",
                           data={"platform_id": platform.id, "reason": "虚开发票"})
    assert response.status_code == 302
    suspended = page_of(client.get(f"/voucher-programmes/{programme.id}")).one("suspensions")["text"]
    assert platform.name in suspended and "虚开发票" in suspended
    with pytest.raises(RuleBroken) as refused:
        services.quote_voucher_part(session, voucher.id, enterprise_id=voucher.enterprise_id, platform_id=platform.id,
                                    category_code="0101", price_fen=1_000_00, now=utcnow())
    assert refused.value.code == "voucher_not_eligible"
    again = client.post(f"/voucher-programmes/{programme.id}/suspensions",
                        data={"platform_id": platform.id, "reason": "again"}, follow_redirects=True)
    assert len(session.scalars(select(ProgrammeSuspension)).all()) == 1 and again.status_code == 200
