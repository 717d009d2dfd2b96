"""Anti-abuse flags: many voucher bookings between one enterprise and one platform, completed
bookings with no usage recorded, the same amounts repeated, claims filed long after the service; the
bureau's flags page and related-party declarations, and the organisation fields they rest on."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.models import AuditEntry, Enterprise, Platform
from marketplace.booking import services as bookings
from marketplace.registry.models import InstrumentState
from tests.marketplace.conftest import create_instrument, monday_at  # noqa: F401  (fixtures)
from tests.vouchers.conftest import enterprise_of, page_of
from vouchers import flags, services
from vouchers.claims import services as claims
from vouchers.models import RelatedParty


@pytest.fixture
def instrument(create_instrument):
    return create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                             hourly_rate_district_enterprise_fen=40_000)


@pytest.fixture
def member(create_member):
    """A new enterprise of its own, so that no other voucher use counts in its flags."""
    return create_member()


@pytest.fixture
def voucher(member, issue_voucher):
    return issue_voucher(member, amount_fen=100_000_00)


def book(session, voucher, instrument, member, start, hours=1):
    return bookings.book_instrument(session, actor=Actor.of(member, None), user=member, instrument_id=instrument.id,
                                    start_at=start, end_at=start + timedelta(hours=hours),
                                    now=start - timedelta(days=1), voucher_id=voucher.id)


def pairs_of(session, enterprise_id):
    return [f for f in flags.frequent_pairs(session, now=utcnow()) if f.enterprise_id == enterprise_id]


def test_five_voucher_bookings_within_thirty_days_flag_the_pair(session, instrument, member, voucher, monday_at):
    enterprise = enterprise_of(member)
    booked = [book(session, voucher, instrument, member, monday_at(hour)) for hour in (9, 10, 11, 14)]
    assert pairs_of(session, enterprise.id) == []
    booked.append(book(session, voucher, instrument, member, monday_at(15)))
    [flag] = pairs_of(session, enterprise.id)
    assert (flag.platform_id, flag.count, sorted(flag.booking_ids)) == (instrument.platform_id, 5,
                                                                        sorted(b.id for b in booked))
    assert flag.voucher_ids == [voucher.id] and flag.enterprise_name == enterprise.name
    # the same five, spread over more than the window, are not flagged
    assert [f for f in flags.frequent_pairs(session, now=utcnow(), window=timedelta(seconds=0))
            if f.enterprise_id == enterprise.id] == []


def test_completed_bookings_with_little_or_no_usage_are_flagged(app, session, instrument, member, voucher,
                                                                serve_booking, monday_at, monkeypatch):
    used = serve_booking(voucher, instrument, monday_at(9, weeks=-1), member=member)
    short = serve_booking(voucher, instrument, monday_at(14, weeks=-1), member=member,
                          used=timedelta(minutes=11))  # 11 minutes of 2 hours: under 10 %
    unrecorded = serve_booking(voucher, instrument, monday_at(9, weeks=-2), member=member)
    # no check-in recorded (as a usage source may have none): what the flag reads is the voucher use
    session.execute(sa.text("UPDATE voucher_uses SET checked_in_at = NULL WHERE booking_id = :id"), {"id": unrecorded.id})
    session.expire_all()
    found = {f.booking_id: f for f in flags.unused_completions(session, now=utcnow())}
    assert used.id not in found
    assert (found[short.id].booked_seconds, found[short.id].used_seconds) == (7_200, 660)
    assert found[unrecorded.id].used_seconds is None
    # monitoring's hook: a usage source registered by a higher package replaces check-in and check-out
    monkeypatch.setitem(app.extensions, flags.USAGE_EXTENSION, lambda s, ids: {i: 7_200 for i in ids})
    source = flags.usage_source(app)
    assert not {short.id, unrecorded.id} & {f.booking_id for f in flags.unused_completions(
        session, now=utcnow(), usage=source)}


def test_the_same_consumption_amount_three_times_flags_the_pair(session, instrument, member, voucher, serve_booking,
                                                                monday_at):
    enterprise = enterprise_of(member)
    serve_booking(voucher, instrument, monday_at(9, weeks=-1), member=member)
    serve_booking(voucher, instrument, monday_at(14, weeks=-1), member=member)

    def mine():
        return [f for f in flags.repeated_amounts(session, now=utcnow()) if f.enterprise_id == enterprise.id]

    assert mine() == []
    serve_booking(voucher, instrument, monday_at(9, weeks=-2), member=member)
    [flag] = mine()
    assert (flag.platform_id, flag.amount_fen, flag.count, flag.voucher_ids) == (
        instrument.platform_id, 40_000, 3, [voucher.id])


def test_a_claim_filed_more_than_ninety_days_after_the_service_is_flagged(session, demo_user, login_as, instrument,
                                                                           member, voucher, serve_booking, monday_at):
    admin = demo_user("platform")
    platform = session.get(Platform, instrument.platform_id)
    platform.bank_account_name, platform.bank_name, platform.bank_account_number = "平台", "银行", "6222"
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1), member=member)
    served = booking.checked_out_at
    day = to_local(served).date()

    def claim_at(now):
        return claims.create_provider_claim(session, actor=Actor.of(admin, None), user=admin, platform_id=platform.id,
                                            period_start=day, period_end=day, declaration_accepted=True, now=now)

    on_time = claim_at(served + timedelta(days=90))
    assert flags.late_claims(session, now=utcnow(), claim_id=on_time.id) == []
    other = serve_booking(voucher, instrument, monday_at(14, weeks=-1), member=member)
    late = claim_at(served + timedelta(days=92))
    assert [line.booking_id for line in late.lines] == [other.id]
    [flag] = flags.late_claims(session, now=served + timedelta(days=92), claim_id=late.id)
    assert (flag.booking_id, flag.days) == (other.id, 92)
    page = page_of(login_as("bureau").get(f"/voucher-claims/{late.id}"))
    assert page.one("late")["text"]
    assert not page_of(login_as("platform").get(f"/voucher-claims/{late.id}")).all("late")


def test_the_flags_page_is_the_bureaus_and_the_auditors(session, login_as, instrument, member, voucher, monday_at):
    for hour in (9, 10, 11, 14, 15):
        book(session, voucher, instrument, member, monday_at(hour))
    page = page_of(login_as("bureau").get("/voucher-flags"))
    assert str(enterprise_of(member).id) in [r["data-enterprise"] for r in page.all("frequent-pair")]
    assert login_as("auditor").get("/voucher-flags").status_code == 200
    for name in ("platform", "enterprise", "finance"):
        assert login_as(name).get("/voucher-flags").status_code == 403


# --- related parties and the fields they rest on ---------------------------------------------------------------

def test_the_bureau_declares_related_parties_on_their_page(session, demo_user, login_as, member):
    enterprise = enterprise_of(member)
    platform = session.get(Platform, demo_user("platform").grants[0].organisation_id)
    bureau = login_as("bureau")
    assert page_of(bureau.get("/voucher-related-parties")).all("declare-form")
    response = bureau.post("/voucher-related-parties", data={"enterprise_id": enterprise.id,
                                                             "platform_id": platform.id, "note": "同一集团"})
    assert response.status_code == 302
    relation = session.scalar(select(RelatedParty).where(RelatedParty.enterprise_id == enterprise.id))
    assert (relation.platform_id, relation.note) == (platform.id, "同一集团")
    assert services.is_related(session, enterprise, platform)
    listed = page_of(bureau.get("/voucher-related-parties"))
    assert [(r["data-enterprise"], r["data-platform"]) for r in listed.all("declared-relation")
            if r["data-enterprise"] == str(enterprise.id)] == [(str(enterprise.id), str(platform.id))]
    auditor = login_as("auditor").get("/voucher-related-parties")
    assert auditor.status_code == 200 and not page_of(auditor).all("declare-form")
    assert login_as("auditor").post("/voucher-related-parties", data={}).status_code == 403
    assert login_as("platform").get("/voucher-related-parties").status_code == 403


def test_organisation_pages_take_the_controller_the_legal_entity_and_the_bank_account(session, demo_user, login_as,
                                                                                     member):
    enterprise = enterprise_of(member)
    platform = session.get(Platform, demo_user("platform").grants[0].organisation_id)
    response = login_as("bureau").post(f"/organisations/{enterprise.id}/edit", data={
        "name": enterprise.name, "legal_representative": enterprise.legal_representative,
        "credit_code": enterprise.credit_code, "actual_controller": " 王五 "})
    assert response.status_code == 302
    session.expire_all()
    assert enterprise.actual_controller == "王五"
    response = login_as("platform").post(f"/organisations/{platform.id}/edit", data={
        "name": platform.name, "platform_type": platform.platform_type.value, "legal_form": platform.legal_form.value,
        "industries": [i.value for i in platform.industries], "credit_code": enterprise.credit_code,
        "legal_representative": "", "actual_controller": "王五", "bank_account_name": "柯桥平台",
        "bank_name": "中国银行", "bank_account_number": "6216 0000"})
    assert response.status_code == 302
    session.expire_all()
    assert (platform.credit_code, platform.legal_representative, platform.actual_controller) == (
        enterprise.credit_code, None, "王五")
    assert (platform.bank_account_name, platform.bank_name, platform.bank_account_number) == (
        "柯桥平台", "中国银行", "6216 0000")
    audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "platform.updated",
                                                    AuditEntry.subject_id == platform.id).order_by(AuditEntry.id.desc()))
    assert audit.after["bank_account_number"] == "6216 0000" and audit.after["actual_controller"] == "王五"
    assert services.is_related(session, enterprise, platform)
    implied = page_of(login_as("bureau").get("/voucher-related-parties")).all("implied-relation")
    assert (str(enterprise.id), str(platform.id)) in [(r["data-enterprise"], r["data-platform"]) for r in implied]
    # a platform's credit code is checked, like an enterprise's
    bad = login_as("platform").post(f"/organisations/{platform.id}/edit", data={
        "name": platform.name, "platform_type": platform.platform_type.value, "legal_form": platform.legal_form.value,
        "industries": [i.value for i in platform.industries], "credit_code": "91330621MA20000010"})
    assert bad.status_code != 302
    session.expire_all()
    assert session.get(Platform, platform.id).credit_code == enterprise.credit_code
    assert session.get(Enterprise, enterprise.id).actual_controller == "王五"
