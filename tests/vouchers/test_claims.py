"""Redemption claims: a claim gathers exactly the unclaimed voucher uses of its period, a use
is never in two claims (even when two claims are filed at once), lines returned and dropped are free to be
claimed again, payment writes redeem entries, both redemption modes end to end, XLSX and PDF downloads,
and who may see and do what."""
from __future__ import annotations

import io
import re
import threading
import uuid
from datetime import date, timedelta

import openpyxl
import pytest
import sqlalchemy as sa
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import unit_of_work, utcnow
from core.errors import Conflict, Forbidden, IllegalTransition, KequipError, RuleBroken
from core.extensions import db
from core.models import AuditEntry, Platform, Role, User
from marketplace.registry.models import InstrumentState
from tests.marketplace.conftest import create_instrument, monday_at  # noqa: F401  (fixtures)
from tests.vouchers.conftest import enterprise_of, page_of
from vouchers import ledger
from vouchers.claims import services as claims
from vouchers.models import (
    Claim,
    ClaimKind,
    ClaimLine,
    ClaimState,
    EntryKind,
    LedgerEntry,
    RedemptionMode,
    Voucher,
)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), "white").save(buffer, "PNG")
    return buffer.getvalue()


def actor(user: User) -> Actor:
    return Actor.of(user, "127.0.0.1")


@pytest.fixture
def platform(session, demo_user) -> Platform:
    found = session.get(Platform, demo_user("platform").grants[0].organisation_id)
    found.bank_account_name, found.bank_name, found.bank_account_number = "柯桥测试平台", "中国银行柯桥支行", "6216610000001"
    return found


@pytest.fixture
def instrument(create_instrument):
    """A published instrument of the demo platform: ¥400 an hour for district enterprises, no setup fee."""
    return create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                             hourly_rate_district_enterprise_fen=40_000)


@pytest.fixture
def voucher(session, demo_user, issue_voucher) -> Voucher:
    enterprise_of(demo_user("enterprise")).is_tech_sme = False  # 50 %: 2 h at ¥400 → a voucher part of ¥400
    return issue_voucher("enterprise", amount_fen=100_000_00)


def served_on(booking) -> date:
    return to_local(booking.checked_out_at).date()


def provider_claim(session, user, platform, start: date, end: date, **changes) -> Claim:
    values = {"period_start": start, "period_end": end, "declaration_accepted": True,
              "now": utcnow() + timedelta(weeks=6)} | changes
    return claims.create_provider_claim(session, actor=actor(user), user=user, platform_id=platform.id, **values)


# --- gathering ----------------------------------------------------------------------------------------------

def test_a_provider_claim_gathers_exactly_the_unclaimed_uses_of_its_period(
        session, demo_user, platform, instrument, voucher, serve_booking, monday_at):
    admin = demo_user("platform")
    first = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    second = serve_booking(voucher, instrument, monday_at(14, weeks=-1))
    later = serve_booking(voucher, instrument, monday_at(9))  # outside the period
    claim = provider_claim(session, admin, platform, served_on(first), served_on(second))
    assert sorted(line.booking_id for line in claim.lines) == [first.id, second.id]
    assert [line.amount_fen for line in claim.lines] == [40_000, 40_000] == [first.final_voucher_fen,
                                                                               second.final_voucher_fen]
    assert claim.total_fen == 80_000 and claim.state == ClaimState.SUBMITTED
    assert (claim.bank_account_name, claim.bank_name, claim.bank_account_number) == (
        "柯桥测试平台", "中国银行柯桥支行", "6216610000001")
    assert claim.signed_by_id == admin.id and claim.declaration == str(claims.DECLARATION)
    assert {line.served_on for line in claim.lines} == {served_on(first)}
    rows = claims.claim_rows(session, claim)
    assert {(r.serial, r.enterprise_name, r.instrument_name) for r in rows} == {
        (voucher.serial, voucher.enterprise.name, instrument.name_zh)}
    # the later use is left for a later claim; none of the claimed two is offered again
    assert [u.booking_id for u in claims.unclaimed_uses(session, ClaimKind.PROVIDER, platform.id)] == [later.id]
    audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "voucher_claim.submitted",
                                                    AuditEntry.subject_id == claim.id))
    assert sorted(audit.after["bookings"]) == [first.id, second.id]


def test_a_use_is_never_in_two_claims(session, demo_user, platform, instrument, voucher, serve_booking, monday_at):
    admin = demo_user("platform")
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    claim = provider_claim(session, admin, platform, served_on(booking), served_on(booking))
    with pytest.raises(RuleBroken) as refused:
        provider_claim(session, admin, platform, served_on(booking), served_on(booking))
    assert refused.value.code == "nothing_to_claim"
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():  # the database holds the line too
        session.add(ClaimLine(claim_id=claim.id, booking_id=booking.id, voucher_id=voucher.id, amount_fen=1,
                              served_on=served_on(booking)))
        session.flush()


def test_a_use_another_claim_took_meanwhile_is_a_conflict(session, demo_user, platform, instrument, voucher,
                                                          serve_booking, monday_at):
    """The race's loser, when its gathering read before the winner committed: the unique key answers."""
    admin = demo_user("platform")
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    uses = claims.unclaimed_uses(session, ClaimKind.PROVIDER, platform.id)
    provider_claim(session, admin, platform, served_on(booking), served_on(booking))
    stale = Claim(kind=ClaimKind.PROVIDER, platform_id=platform.id, period_start=served_on(booking),
                  period_end=served_on(booking), declaration="…", signed_by_id=admin.id, signed_at=utcnow(),
                  bank_account_name="a", bank_name="b", bank_account_number="c")
    with pytest.raises(Conflict) as refused:
        claims._file_claim(session, stale, uses, actor=actor(admin))
    assert refused.value.code == "claim_conflict"


def test_a_claim_needs_the_declaration_a_bank_account_uses_and_the_platforms_admin(
        session, demo_user, platform, instrument, voucher, serve_booking, monday_at, create_member):
    admin = demo_user("platform")
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    day = served_on(booking)
    for changes, code in (({"declaration_accepted": False}, "declaration_required"),
                          ({"period_start": day + timedelta(days=1)}, "invalid"),
                          ({"period_end": to_local(utcnow()).date() + timedelta(days=1), "now": utcnow()},
                           "invalid"),  # a period that has not passed yet
                          ({"period_start": day - timedelta(days=9), "period_end": day - timedelta(days=8)},
                           "nothing_to_claim")):
        with pytest.raises(RuleBroken) as refused:
            provider_claim(session, admin, platform, day, day, **changes)
        assert refused.value.code == code
    platform.bank_account_number = None
    with pytest.raises(RuleBroken) as refused:
        provider_claim(session, admin, platform, day, day)
    assert (refused.value.code, refused.value.field) == ("bank_account_required", "bank_account_number")
    with pytest.raises(Forbidden):
        provider_claim(session, create_member(), platform, day, day)


# --- review, resubmission, payment ------------------------------------------------------------------------

def test_a_returned_line_is_dropped_on_resubmission_and_can_be_claimed_again(
        session, demo_user, platform, instrument, voucher, serve_booking, monday_at):
    admin, bureau = demo_user("platform"), demo_user("bureau")
    kept = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    returned = serve_booking(voucher, instrument, monday_at(14, weeks=-1))
    claim = provider_claim(session, admin, platform, served_on(kept), served_on(kept))
    line = next(line for line in claim.lines if line.booking_id == returned.id)
    with pytest.raises(RuleBroken) as refused:
        claims.return_claim(session, claim, actor=actor(bureau), user=bureau, now=utcnow())
    assert refused.value.code == "reason_required"
    claims.return_claim(session, claim, actor=actor(bureau), user=bureau, now=utcnow(),
                        line_reasons={line.id: "无上机记录"})
    assert claim.state == ClaimState.RETURNED and line.returned_reason == "无上机记录"
    with pytest.raises(IllegalTransition):
        claims.approve_claim(session, claim, actor=actor(bureau), user=bureau, now=utcnow())
    with pytest.raises(RuleBroken) as refused:
        claims.resubmit_claim(session, claim, actor=actor(admin), user=admin, declaration_accepted=False, now=utcnow())
    assert refused.value.code == "declaration_required"
    claims.resubmit_claim(session, claim, actor=actor(admin), user=admin, declaration_accepted=True, now=utcnow(),
                          bank_account_number="6216610000002")
    assert claim.state == ClaimState.SUBMITTED
    assert [line.booking_id for line in claim.lines] == [kept.id] and claim.total_fen == 40_000
    assert claim.bank_account_number == "6216610000002" and claim.review_note is None
    assert session.scalar(select(ClaimLine.id).where(ClaimLine.booking_id == returned.id)) is None
    again = provider_claim(session, admin, platform, served_on(kept), served_on(kept))
    assert [line.booking_id for line in again.lines] == [returned.id]


def test_approved_then_paid_writes_a_redeem_entry_per_line(session, demo_user, platform, instrument, voucher,
                                                           serve_booking, monday_at):
    admin, bureau, finance = demo_user("platform"), demo_user("bureau"), demo_user("finance")
    first = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    second = serve_booking(voucher, instrument, monday_at(14, weeks=-1))
    claim = provider_claim(session, admin, platform, served_on(first), served_on(first))
    with pytest.raises(IllegalTransition):
        claims.mark_claim_paid(session, claim, actor=actor(finance), user=finance, paid_on=date.today(),
                               reference="X", now=utcnow())
    with pytest.raises(Forbidden):
        claims.approve_claim(session, claim, actor=actor(finance), user=finance, now=utcnow())
    claims.approve_claim(session, claim, actor=actor(bureau), user=bureau, now=utcnow(), note="材料齐全")
    with pytest.raises(Forbidden):
        claims.mark_claim_paid(session, claim, actor=actor(bureau), user=bureau, paid_on=date.today(),
                               reference="X", now=utcnow())
    with pytest.raises(RuleBroken):
        claims.mark_claim_paid(session, claim, actor=actor(finance), user=finance, paid_on=date.today(),
                               reference=" ", now=utcnow())
    today = to_local(utcnow()).date()
    claims.mark_claim_paid(session, claim, actor=actor(finance), user=finance, paid_on=today,
                           reference="国库支付 2026-001", now=utcnow())
    assert (claim.state, claim.paid_on, claim.payment_reference) == (ClaimState.PAID, today, "国库支付 2026-001")
    entries = session.scalars(select(LedgerEntry).where(LedgerEntry.claim_id == claim.id)).all()
    assert sorted((e.kind, e.booking_id, e.amount_fen) for e in entries) == [
        (EntryKind.REDEEM, first.id, 40_000), (EntryKind.REDEEM, second.id, 40_000)]
    assert voucher.redeemed_fen == 80_000 and voucher.consumed_fen == 80_000
    assert ledger.ledger_totals(session, voucher.id).redeemed_fen == 80_000
    assert voucher.id not in ledger.mismatched_vouchers(session)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "voucher_claims",
                                                              AuditEntry.subject_id == claim.id)
                              .order_by(AuditEntry.id)).all()
    assert actions == ["voucher_claim.submitted", "voucher_claim.approved", "voucher_claim.paid"]


# --- enterprise-reimbursed ---------------------------------------------------------------------------------

def test_enterprise_reimbursed_claim_end_to_end(session, demo_user, login_as, platform, instrument, create_programme,
                                                issue_voucher, serve_booking, monday_at):
    member, bureau, finance = demo_user("enterprise"), demo_user("bureau"), demo_user("finance")
    enterprise = enterprise_of(member)
    enterprise.is_tech_sme = False
    issued = issue_voucher("enterprise", amount_fen=100_000_00,
                           programme=create_programme(redemption_mode=RedemptionMode.ENTERPRISE))
    booking = serve_booking(issued, instrument, monday_at(9, weeks=-1))
    assert (booking.price_fen, booking.payable_fen, booking.final_voucher_fen) == (80_000, 80_000, 40_000)
    assert booking.payment_state.value == "paid"
    # the platform has nothing to claim: the enterprise paid in full and claims the voucher part back
    assert claims.unclaimed_uses(session, ClaimKind.PROVIDER, platform.id) == []
    day = served_on(booking)
    values = {"enterprise_id": enterprise.id, "period_start": day, "period_end": day, "bank_account_name": "企业账户",
              "bank_name": "工商银行", "bank_account_number": "1211000000", "declaration_accepted": True,
              "now": utcnow() + timedelta(weeks=6)}
    with pytest.raises(RuleBroken) as refused:
        claims.create_enterprise_claim(session, actor=actor(member), user=member, has_proof=False, **values)
    assert refused.value.code == "proof_required"

    client = login_as("enterprise")
    form = client.get("/my/voucher-claims/new")
    assert form.status_code == 200
    assert [r["data-booking"] for r in page_of(form).all("unclaimed-use")] == [str(booking.id)]
    response = client.post("/my/voucher-claims/new", data={
        "enterprise_id": enterprise.id, "period_start": day.isoformat(), "period_end": day.isoformat(),
        "bank_account_name": "企业账户", "bank_name": "工商银行", "bank_account_number": "1211000000",
        "declaration_accepted": "y", "attachments": (io.BytesIO(png()), "付款凭证.png")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    claim = session.scalar(select(Claim).where(Claim.enterprise_id == enterprise.id))
    assert response.headers["Location"].endswith(f"/voucher-claims/{claim.id}")
    assert [a.original_name for a in claims.claim_attachments(session, claim)] == ["付款凭证.png"]
    assert (claim.kind, claim.total_fen, [line.booking_id for line in claim.lines]) == (ClaimKind.ENTERPRISE, 40_000,
                                                                                  [booking.id])
    upload = client.post(f"/voucher-claims/{claim.id}/attachments", data={"attachments": (io.BytesIO(png()), "凭证.png")},
                         content_type="multipart/form-data")
    assert upload.status_code == 302
    assert [a.original_name for a in claims.claim_attachments(session, claim)] == ["付款凭证.png", "凭证.png"]
    claims.approve_claim(session, claim, actor=actor(bureau), user=bureau, now=utcnow())
    claims.mark_claim_paid(session, claim, actor=actor(finance), user=finance, paid_on=to_local(utcnow()).date(),
                           reference="退付 001", now=utcnow())
    assert issued.redeemed_fen == 40_000
    page = client.get(f"/voucher-claims/{claim.id}")
    assert page_of(page).one("claim-state")["data-state"] == "paid"
    assert len(page_of(page).all("redeem-entries")) == 1


# --- pages -------------------------------------------------------------------------------------------------

def test_claim_pages_from_filing_to_payment(session, demo_user, login_as, platform, instrument, voucher,
                                            serve_booking, monday_at):
    first = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    second = serve_booking(voucher, instrument, monday_at(14, weeks=-1))
    admin = login_as("platform")
    new = admin.get("/platform/voucher-claims/new")
    assert new.status_code == 200
    assert sorted(int(r["data-booking"]) for r in page_of(new).all("unclaimed-use")) == [first.id, second.id]
    assert 'value="6216610000001"' in new.get_data(as_text=True)  # the platform's account, filled in
    filed = admin.post("/platform/voucher-claims/new", data={
        "platform_id": platform.id, "period_start": served_on(first).isoformat(),
        "period_end": served_on(first).isoformat(), "bank_account_name": "柯桥测试平台", "bank_name": "中国银行柯桥支行",
        "bank_account_number": "6216610000001", "declaration_accepted": "y"})
    assert filed.status_code == 302
    claim = session.scalar(select(Claim).where(Claim.platform_id == platform.id).order_by(Claim.id.desc()))
    assert sorted(line.booking_id for line in claim.lines) == [first.id, second.id]
    refused = admin.post("/platform/voucher-claims/new", data={
        "platform_id": platform.id, "period_start": served_on(first).isoformat(),
        "period_end": served_on(first).isoformat(), "bank_account_name": "柯桥测试平台", "bank_name": "中国银行柯桥支行",
        "bank_account_number": "6216610000001", "declaration_accepted": "y"})
    assert refused.status_code == 422  # nothing left to claim
    listed = admin.get("/platform/voucher-claims")
    assert [r["data-claim"] for r in page_of(listed).all("claim-row")] == [str(claim.id)]

    bureau = login_as("bureau")
    queue = bureau.get("/voucher-claims/to-review")
    assert str(claim.id) in [r["data-claim"] for r in page_of(queue).all("claim-row")]
    detail = page_of(bureau.get(f"/voucher-claims/{claim.id}"))
    assert len(detail.all("line-reason")) == 2 and detail.all("return-form")
    line = next(item for item in claim.lines if item.booking_id == second.id)
    assert bureau.post(f"/voucher-claims/{claim.id}/return", data={f"line-{line.id}": "时间对不上"}).status_code == 302
    session.expire_all()
    assert claim.state == ClaimState.RETURNED and line.returned_reason == "时间对不上"
    shown = page_of(admin.get(f"/voucher-claims/{claim.id}"))
    assert [r["text"] for r in shown.all("returned-reason") if r["text"]] == ["时间对不上"]
    assert shown.all("resubmit-form")
    assert admin.post(f"/voucher-claims/{claim.id}/resubmit", data={"declaration_accepted": "y"}).status_code == 302
    session.expire_all()
    assert claim.state == ClaimState.SUBMITTED and [line.booking_id for line in claim.lines] == [first.id]
    assert bureau.post(f"/voucher-claims/{claim.id}/approve", data={"note": "同意"}).status_code == 302
    session.expire_all()
    assert claim.state == ClaimState.APPROVED
    finance = login_as("finance")
    assert page_of(finance.get(f"/voucher-claims/{claim.id}")).all("paid-form")
    assert str(claim.id) in [r["data-claim"] for r in page_of(finance.get("/voucher-claims/to-pay")).all("claim-row")]
    paid = finance.post(f"/voucher-claims/{claim.id}/paid", data={
        "paid_on": to_local(utcnow()).date().isoformat(), "payment_reference": "BANK-77"})
    session.expire_all()
    assert paid.status_code == 302 and claim.state == ClaimState.PAID and voucher.redeemed_fen == 40_000


def test_who_sees_and_does_what_with_a_claim(session, demo_user, login_as, platform, instrument, voucher,
                                            serve_booking, monday_at):
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    claim = provider_claim(session, demo_user("platform"), platform, served_on(booking), served_on(booking))
    url = f"/voucher-claims/{claim.id}"
    for name, status in (("platform", 200), ("bureau", 200), ("finance", 200), ("auditor", 200),
                         ("enterprise", 404), ("operator", 403), ("expert", 403)):
        assert login_as(name).get(url).status_code == status, name
        assert login_as(name).get(url + ".xlsx").status_code == status, name
    auditor = page_of(login_as("auditor").get(url))
    assert not auditor.all("review-forms") and not auditor.all("paid-form") and not auditor.all("line-reason")
    assert not page_of(login_as("finance").get(url)).all("paid-form")  # not approved yet
    for name, action in (("auditor", "approve"), ("platform", "approve"), ("finance", "return"),
                         ("bureau", "paid"), ("bureau", "resubmit")):
        assert login_as(name).post(f"{url}/{action}", data={"note": "x"}).status_code == 403, (name, action)
    assert claim.state == ClaimState.SUBMITTED
    for name, endpoint in (("platform", "/platform/voucher-claims"), ("enterprise", "/my/voucher-claims"),
                           ("bureau", "/voucher-claims/to-review"), ("finance", "/voucher-claims/to-pay"),
                           ("auditor", "/voucher-claims"), ("auditor", "/voucher-claims/to-review")):
        assert login_as(name).get(endpoint).status_code == 200, endpoint
    assert login_as("enterprise").get("/voucher-claims").status_code == 403
    assert login_as("platform").get("/voucher-claims/to-review").status_code == 403


def test_the_api_lists_a_platforms_own_claims_and_every_claim_to_the_bureau(
        session, demo_user, api_as, platform, instrument, voucher, serve_booking, monday_at):
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    claim = provider_claim(session, demo_user("platform"), platform, served_on(booking), served_on(booking))
    mine = api_as("platform").get("/api/v1/voucher-claims").json
    assert claim.id in [c["id"] for c in mine["items"]]
    [found] = [c for c in mine["items"] if c["id"] == claim.id]
    assert (found["kind"], found["state"], found["total_fen"], found["platform_id"]) == (
        "provider", "submitted", 40_000, platform.id)
    assert found["lines"] == [{"id": claim.lines[0].id, "booking_id": booking.id, "voucher_id": voucher.id,
                               "voucher_serial": voucher.serial, "amount_fen": 40_000,
                               "served_on": served_on(booking).isoformat(), "returned_reason": None}]
    assert found["signed_at"].endswith("+08:00")
    assert claim.id not in [c["id"] for c in api_as("enterprise").get("/api/v1/voucher-claims").json["items"]]
    bureau = api_as("bureau")
    assert claim.id in [c["id"] for c in bureau.get(f"/api/v1/voucher-claims?platform_id={platform.id}").json["items"]]
    assert claim.id not in [c["id"] for c in bureau.get("/api/v1/voucher-claims?state=paid").json["items"]]
    assert bureau.get("/api/v1/voucher-claims?state=nonsense").status_code == 422
    assert api_as(None).get("/api/v1/voucher-claims").status_code == 401


# --- downloads ----------------------------------------------------------------------------------------------

def test_the_claim_downloads_as_xlsx_with_formulas_kept_as_text(session, demo_user, login_as, platform, instrument,
                                                                create_member, issue_voucher, serve_booking,
                                                                monday_at):
    member = create_member(name="=HYPERLINK(\"http://x\") 测试企业")
    issued = issue_voucher(member, amount_fen=100_000_00)
    booking = serve_booking(issued, instrument, monday_at(9, weeks=-1), member=member)
    claim = provider_claim(session, demo_user("platform"), platform, served_on(booking), served_on(booking))
    response = login_as("platform").get(f"/voucher-claims/{claim.id}.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f"claim-{claim.id}.xlsx" in response.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(response.data))
    facts, lines = workbook.worksheets
    assert ["合计", "¥400.00"] in [[c.value for c in row] for row in facts.iter_rows()]  # zh_CN, the default
    rows = [[c.value for c in row] for row in lines.iter_rows()]
    assert rows[1][:5] == [issued.serial, booking.id, "'=HYPERLINK(\"http://x\") 测试企业", instrument.name_zh,
                           served_on(booking).isoformat()]
    assert rows[1][6] == booking.final_voucher_fen and rows[-1][6] == claim.total_fen


@pytest.mark.parametrize("fmt", ["pdf", "xlsx"])
def test_the_claim_file_is_made_with_no_transaction_open(session, demo_user, login_as, platform, instrument, voucher,
                                                         serve_booking, monday_at, transaction_spy, fmt):
    from vouchers.claims import documents as claim_documents

    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    claim = provider_claim(session, demo_user("platform"), platform, served_on(booking), served_on(booking))
    transaction_spy.watch(claim_documents, f"claim_{fmt}")
    assert login_as("bureau").get(f"/voucher-claims/{claim.id}.{fmt}").status_code == 200
    assert transaction_spy.open_at_calls == [False]


def test_the_claim_downloads_as_pdf_with_chinese_text(session, demo_user, login_as, platform, instrument, voucher,
                                                      serve_booking, monday_at):
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    claim = provider_claim(session, demo_user("platform"), platform, served_on(booking), served_on(booking))
    response = login_as("bureau").get(f"/voucher-claims/{claim.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    # fpdf2 embeds the font's encoding as a CMap stream, which pypdf reads one byte at a time: drop the NULs
    text = re.sub(r"[\s\x00]+", "", "".join(page.extract_text()
                                             for page in PdfReader(io.BytesIO(response.data)).pages))
    for expected in (f"创新券兑付申请 第 {claim.id} 号", "本单位承诺", voucher.enterprise.name, instrument.name_zh,
                     "中国银行柯桥支行", "柯桥测试平台", voucher.serial, "¥400.00"):
        assert re.sub(r"\s+", "", expected) in text, expected


def test_a_missing_font_is_said_plainly(app, session, demo_user, login_as, platform, instrument, voucher,
                                        serve_booking, monday_at, monkeypatch, tmp_path):
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    claim = provider_claim(session, demo_user("platform"), platform, served_on(booking), served_on(booking))
    monkeypatch.setitem(app.config, "CJK_FONT_PATH", str(tmp_path / "no-such-font.ttc"))
    response = login_as("bureau").get(f"/voucher-claims/{claim.id}.pdf")
    assert response.status_code == 503 and "fonts-noto-cjk" in response.get_data(as_text=True)


# --- two claims at once, on committed data --------------------------------------------------------------------

@pytest.mark.live
def test_two_claims_filed_at_once_never_share_a_use(live_app):
    """Each thread gathers and files in its own transaction: one claim takes the uses; the other finds none
    left (SQLite serialises writers) or meets the unique key (PostgreSQL) and answers with a Conflict."""
    from marketplace.booking import services as bookings
    from marketplace.registry import services as registry
    from tests.marketplace.conftest import instrument_values
    from vouchers import services

    tag = uuid.uuid4().hex[:8]
    with live_app.app_context():
        with unit_of_work() as session:
            users = {u.email.split("@")[0]: u for u in session.scalars(select(User).where(User.email.in_(
                ["bureau@kequip.test", "platform@kequip.test", "operator@kequip.test", "enterprise@kequip.test"])))}
            admin, member, operator = users["platform"], users["enterprise"], users["operator"]
            platform = session.get(Platform, admin.grants[0].organisation_id)
            platform.bank_account_name, platform.bank_name, platform.bank_account_number = "平台", "银行", "622"
            instrument = registry.create_instrument(session, platform, admin, actor=Actor.system("test"), submit=True,
                                                    values=instrument_values(session, asset_number=f"RACE-{tag}"),
                                                    now=utcnow())
            registry.publish_instrument(session, instrument, users["bureau"], actor=Actor.system("test"), now=utcnow())
            programme = services.create_programme(session, actor=Actor.system("test"), user=users["bureau"], values={
                "name": f"并发兑付 {tag}", "year": 2026, "pool_fen": 10_000_000, "coverage_bp": 5_000,
                "sme_coverage_bp": 5_000, "enterprise_year_cap_fen": 10_000_000, "order_cap_fen": 10_000_000,
                "validity_days": 365, "applications_open_on": date.today() - timedelta(days=1),
                "applications_close_on": date.today() + timedelta(days=1), "redemption_mode": "provider",
                "eligible_category_codes": [], "eligible_platform_ids": []})
            enterprise_id = sorted(member.organisation_ids(Role.ENTERPRISE_MEMBER))[0]
            application = services.apply_for_voucher(session, actor=Actor.system("test"), user=member,
                                                     programme_id=programme.id, enterprise_id=enterprise_id,
                                                     requested_fen=1_000_000, purpose="并发", planned_instruments="",
                                                     now=utcnow())
            voucher = services.approve_application(session, application, actor=Actor.system("test"),
                                                   user=users["bureau"], amount_fen=1_000_000, now=utcnow())
            local_now = to_local(utcnow())
            monday = local_now.date() - timedelta(days=local_now.weekday()) + timedelta(weeks=3)
            served = []
            for hour in (9, 14):
                start = to_local(utcnow()).replace(year=monday.year, month=monday.month, day=monday.day, hour=hour,
                                                   minute=0, second=0, microsecond=0)
                booking = bookings.book_instrument(session, actor=Actor.system("test"), user=member,
                                                   instrument_id=instrument.id, start_at=start,
                                                   end_at=start + timedelta(hours=1), now=utcnow(),
                                                   voucher_id=voucher.id)
                if booking.payable_fen:
                    bookings.choose_transfer(session, booking, actor=Actor.system("test"), user=member, now=utcnow())
                    bookings.record_transfer(session, booking, actor=Actor.system("test"), user=admin, now=utcnow(),
                                             amount_fen=booking.payable_fen, received_on=local_now.date(),
                                             reference=f"R-{tag}-{hour}")
                bookings.check_in(session, booking, actor=Actor.system("test"), user=operator, now=start)
                bookings.check_out(session, booking, actor=Actor.system("test"), user=operator,
                                   now=start + timedelta(hours=1))
                served.append(booking.id)
            platform_id, admin_id = platform.id, admin.id
        db.session.remove()

        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def file_claim() -> None:
            with live_app.app_context():
                barrier.wait()
                try:
                    with unit_of_work() as session:
                        user = session.get(User, admin_id)
                        claims.create_provider_claim(session, actor=Actor.system("test"), user=user,
                                                     platform_id=platform_id, period_start=monday, period_end=monday,
                                                     declaration_accepted=True, now=utcnow() + timedelta(weeks=5))
                    outcomes.append("filed")
                except KequipError as error:
                    outcomes.append(error.code)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=file_claim) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert outcomes.count("filed") == 1 and set(outcomes) - {"filed"} <= {"claim_conflict", "nothing_to_claim"}
        lines = db.session.scalars(select(ClaimLine).where(ClaimLine.booking_id.in_(served))).all()
        assert sorted(line.booking_id for line in lines) == sorted(served)
        assert len({line.claim_id for line in lines}) == 1
        db.session.remove()
