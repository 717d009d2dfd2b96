"""The innovation voucher's whole journey in a real browser, against the live server, on SQLite and
PostgreSQL: an enterprise member applies to an open programme, the bureau approves
the application in its queue (issuing less than asked), the member books an instrument on its week view
with the voucher, seeing the voucher's part and its own share before booking, and pays its share by bank
transfer, which the platform's admin records; the operator checks the member in and out on the day sheet;
the platform's admin claims the voucher part for the period, signing the declaration; the bureau approves
the claim and the finance officer marks it paid. Each person has a browser context of their own. At the
end the voucher's ledger tells the whole story to the fen."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from core.audit import Actor
from core.clock import LOCAL_ZONE, to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.holidays import DayKind, day_kind
from core.models import User
from core.money import fen_to_yuan, format_yuan
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingState
from marketplace.payments.models import PaymentState
from tests.browser.test_booking_flow import BUREAU_ADMIN, ENTERPRISE, PLATFORM_ADMIN, published_instrument
from tests.vouchers.conftest import programme_values
from vouchers import ledger, services
from vouchers.models import ApplicationState, Claim, ClaimState, EntryKind, LedgerEntry, Voucher

pytestmark = pytest.mark.live

OPERATOR, FINANCE = "operator@kequip.test", "finance@kequip.test"
ASKED_FEN, ISSUED_FEN = 1_000_00, 800_00  # the bureau issues less than was asked
COVERAGE_BP, SME_COVERAGE_BP = 3_000, 3_333  # the demo enterprise is a technology-based SME: 33.33 %


def open_programme(session) -> tuple[int, str]:
    """A programme of the bureau open for applications today, under a name no other test uses."""
    bureau = session.scalar(select(User).where(User.email == BUREAU_ADMIN))
    name = f"创新券全程 {uuid.uuid4().int % 10**8:08d}"
    programme = services.create_programme(session, actor=Actor.system("test"), user=bureau, values=programme_values(
        name=name, coverage_bp=COVERAGE_BP, sme_coverage_bp=SME_COVERAGE_BP))
    programme_id = programme.id
    session.commit()
    return programme_id, name


def working_day_at(hour: int) -> tuple[datetime, int]:
    """(the first working day from next week on that is no public holiday, at this Asia/Shanghai hour;
    how many weeks ahead of this one it is): within the default lead time and horizon, open under the
    district's hours."""
    today = to_local(utcnow()).date()
    monday = today - timedelta(days=today.weekday())
    day = next(d for d in (monday + timedelta(days=n) for n in range(7, 35))
               if d.weekday() < 5 and day_kind(d) == DayKind.ORDINARY)
    return datetime.combine(day, time(hour), tzinfo=LOCAL_ZONE), (day - monday).days // 7


def voucher_part_bp(session) -> int:
    member = session.scalar(select(User).where(User.email == ENTERPRISE))
    is_sme = bookings.booker_enterprise(session, member).is_tech_sme
    session.rollback()
    return SME_COVERAGE_BP if is_sme else COVERAGE_BP


@pytest.fixture
def person(browser, browser_context_args, log_in) -> Iterator[Callable[[str], Page]]:
    """person(email) → a page in a browser context of that person's own, logged in."""
    contexts = []

    def open_for(email: str) -> Page:
        contexts.append(browser.new_context(**browser_context_args))
        page = contexts[-1].new_page()
        log_in(page, email, DEMO_PASSWORD)
        return page

    yield open_for
    for context in contexts:
        context.close()


def test_apply_approve_book_with_the_voucher_serve_claim_and_pay_the_claim(page, person, live_server, live_session,
                                                                           log_in):
    url = live_server.url
    programme_id, programme_name = open_programme(live_session)
    instrument_id = published_instrument(live_session)  # ¥100.00 + ¥400.00 an hour for district enterprises
    ratio_bp = voucher_part_bp(live_session)
    start, weeks_ahead = working_day_at(14)
    live_session.rollback()  # day_kind read the holiday calendar through this session: end that read
    price_fen = 100_00 + 400_00  # one hour
    part_fen = price_fen * ratio_bp // 10_000  # rounded down: 16,665 fen at 33.33 %
    share_fen = price_fen - part_fen
    bureau = person(BUREAU_ADMIN)
    admin = person(PLATFORM_ADMIN)
    operator = person(OPERATOR)
    finance = person(FINANCE)

    # the enterprise member applies to the open programme
    log_in(page, ENTERPRISE, DEMO_PASSWORD)
    page.goto(f"{url}/voucher-programmes/open")
    page.get_by_test_id("open-programme").filter(has_text=programme_name).get_by_role("link").click()
    expect(page).to_have_url(f"{url}/voucher-programmes/{programme_id}/apply")
    page.locator("#requested_fen").fill(str(fen_to_yuan(ASKED_FEN)))
    page.locator("#purpose").fill("新材料成分检测")
    page.locator("#planned_instruments").fill("液相色谱-质谱联用仪")
    page.get_by_test_id("apply-form").locator("#submit").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(url)}/voucher-applications/\d+$"))
    application_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("state")).to_have_attribute("data-state", ApplicationState.SUBMITTED.value)
    expect(page.get_by_test_id("requested")).to_have_text(format_yuan(ASKED_FEN))

    # the bureau approves it in the queue, for less than was asked
    bureau.goto(f"{url}/voucher-applications?programme_id={programme_id}")
    decision = bureau.locator(f'form[action="/voucher-applications/{application_id}/approve"]')
    expect(decision.locator(f"#a{application_id}-amount_fen")).to_have_value(str(fen_to_yuan(ASKED_FEN)))
    decision.locator(f"#a{application_id}-amount_fen").fill(str(fen_to_yuan(ISSUED_FEN)))
    decision.get_by_role("button").click()
    row = bureau.locator(f'[data-testid="application-row"][data-id="{application_id}"]')
    expect(row.get_by_test_id("state")).to_have_attribute("data-state", ApplicationState.APPROVED.value)
    voucher = live_session.scalar(select(Voucher).where(Voucher.application_id == application_id))
    voucher_id, serial = voucher.id, voucher.serial
    assert (voucher.amount_fen, voucher.balance_fen) == (ISSUED_FEN, ISSUED_FEN)
    live_session.rollback()

    # the member books 14:00–15:00 on next week's view with the voucher, seeing both parts before booking
    page.goto(f"{url}/instruments/{instrument_id}/book")
    for _week in range(weeks_ahead):
        page.get_by_test_id("next").click()
    page.locator(f'td[data-start="{start.isoformat()}"]').click()
    page.locator(f'td[data-start="{(start + timedelta(minutes=30)).isoformat()}"]').click()
    expect(page.get_by_test_id("price")).to_contain_text(format_yuan(price_fen))
    page.locator("#voucher_id").select_option(str(voucher_id))
    expect(page.locator("#voucher_id option:checked")).to_contain_text(serial)
    expect(page.get_by_test_id("voucher-breakdown")).to_be_visible()
    expect(page.get_by_test_id("voucher-part")).to_have_text(format_yuan(part_fen))
    expect(page.get_by_test_id("enterprise-share")).to_have_text(format_yuan(share_fen))
    page.locator("#accept_terms").check()
    page.locator("#submit").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(url)}/bookings/\d+$"))
    booking_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("state")).to_have_attribute("data-state", BookingState.APPROVED.value)
    expect(page.get_by_test_id("payable")).to_have_text(format_yuan(share_fen))

    # and chooses to pay its share by bank transfer
    page.get_by_test_id("pay-link").click()
    expect(page.get_by_test_id("amount-due")).to_have_text(format_yuan(share_fen))
    page.get_by_test_id("transfer-form").get_by_role("button").click()
    expect(page.get_by_test_id("transfer-expected")).to_contain_text(format_yuan(share_fen))

    # the platform's admin records the transfer that arrived: the booking is confirmed
    today = to_local(utcnow()).date()
    admin.goto(f"{url}/bookings/{booking_id}/transfer")
    admin.locator("#amount").fill(str(fen_to_yuan(share_fen)))
    admin.locator("#received_on").fill(today.isoformat())
    admin.locator("#reference").fill(f"BANK-{booking_id}")
    admin.get_by_test_id("transfer-record-form").get_by_role("button").click()
    expect(admin).to_have_url(f"{url}/bookings/{booking_id}")
    expect(admin.get_by_test_id("state")).to_have_attribute("data-state", BookingState.CONFIRMED.value)
    booking = live_session.get(Booking, booking_id)
    assert (booking.voucher_id, booking.voucher_fen, booking.payable_fen, booking.payment_state) == (
        voucher_id, part_fen, share_fen, PaymentState.PAID)
    # The day of the service comes now: the booking is next week, and check-in opens an hour before the
    # start. Its times move to the present, keeping its length and buffer; nothing else of it changes
    # (the time rules were checked when it was booked). The operator's pages take it from here.
    moved_start = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    live_session.execute(update(Booking).where(Booking.id == booking_id).values(
        start_at=moved_start, end_at=moved_start + (booking.end_at - booking.start_at),
        block_end_at=moved_start + (booking.block_end_at - booking.start_at)))
    live_session.commit()

    # the operator checks the member in and, soon after, out on today's day sheet
    operator.goto(f"{url}/platform/day-sheet")
    sheet_row = operator.locator(f'[data-testid="sheet-row"][data-booking-id="{booking_id}"]')
    sheet_row.locator(f'form[action="/platform/bookings/{booking_id}/check-in"] button').click()
    expect(sheet_row.get_by_test_id("state")).to_have_attribute("data-state", BookingState.IN_PROGRESS.value)
    sheet_row.locator(f'form[action="/platform/bookings/{booking_id}/check-out"] button').click()
    expect(sheet_row.get_by_test_id("state")).to_have_attribute("data-state", BookingState.COMPLETED.value)
    booking = live_session.get(Booking, booking_id)
    final_fen = booking.final_price_fen
    used_fen = final_fen * ratio_bp // 10_000  # the voucher pays its ratio of the final price
    assert final_fen == 100_00 + 400_00 // 2  # used for minutes: the minimum of half an hour
    assert (booking.state, booking.final_voucher_fen) == (BookingState.COMPLETED, used_fen)
    live_session.rollback()

    # the platform's admin claims the period's voucher uses, signing the declaration
    admin.goto(f"{url}/platform/voucher-claims/new")
    expect(admin.locator(f'[data-testid="unclaimed-use"][data-booking="{booking_id}"] td[data-fen]')).to_have_attribute(
        "data-fen", str(used_fen))
    admin.locator("#period_start").fill(today.isoformat())
    admin.locator("#period_end").fill(today.isoformat())
    admin.locator("#bank_account_name").fill("柯桥区示范检测平台")
    admin.locator("#bank_name").fill("中国工商银行绍兴柯桥支行")
    admin.locator("#bank_account_number").fill("1211012309200123456")
    admin.locator("#declaration_accepted").check()
    admin.get_by_test_id("claim-form").locator("#submit").click()
    expect(admin).to_have_url(re.compile(rf"{re.escape(url)}/voucher-claims/\d+$"))
    claim_id = int(admin.url.rsplit("/", 1)[1])
    expect(admin.get_by_test_id("claim-state")).to_have_attribute("data-state", ClaimState.SUBMITTED.value)
    line = admin.locator(f'[data-testid="claim-line"][data-booking="{booking_id}"]')
    expect(line).to_contain_text(serial)
    expect(line.locator("td[data-fen]")).to_have_attribute("data-fen", str(used_fen))

    # the bureau approves the claim
    bureau.goto(f"{url}/voucher-claims/{claim_id}")
    bureau.get_by_test_id("approve-form").get_by_role("button").click()
    expect(bureau.get_by_test_id("claim-state")).to_have_attribute("data-state", ClaimState.APPROVED.value)

    # the finance officer marks it paid, with the date and the reference of the payment
    finance.goto(f"{url}/voucher-claims/{claim_id}")
    paid_form = finance.get_by_test_id("paid-form")
    expect(paid_form.locator("#paid_on")).to_have_value(today.isoformat())
    paid_form.locator("#payment_reference").fill(f"CZ-{claim_id}")
    paid_form.get_by_role("button").click()
    expect(finance.get_by_test_id("claim-state")).to_have_attribute("data-state", ClaimState.PAID.value)
    expect(finance.get_by_test_id("paid")).to_contain_text(f"CZ-{claim_id}")

    # the ledger: issued, held at booking, consumed on the final price with the rest released, redeemed
    entries = live_session.execute(select(LedgerEntry.kind, LedgerEntry.amount_fen, LedgerEntry.booking_id)
                                   .where(LedgerEntry.voucher_id == voucher_id).order_by(LedgerEntry.id)).all()
    assert [tuple(entry) for entry in entries] == [
        (EntryKind.ISSUE, ISSUED_FEN, None), (EntryKind.HOLD, part_fen, booking_id),
        (EntryKind.CONSUME, used_fen, booking_id), (EntryKind.RELEASE, part_fen - used_fen, booking_id),
        (EntryKind.REDEEM, used_fen, booking_id)]
    voucher = live_session.get(Voucher, voucher_id)
    columns = (voucher.balance_fen, voucher.held_fen, voucher.consumed_fen, voucher.redeemed_fen)
    assert columns == (ISSUED_FEN - used_fen, 0, used_fen, used_fen)
    assert ledger.ledger_totals(live_session, voucher_id) == ledger.Totals(*columns)
    claim = live_session.get(Claim, claim_id)
    assert (claim.state, claim.paid_on, claim.payment_reference) == (ClaimState.PAID, today, f"CZ-{claim_id}")
    assert {line.booking_id: line.amount_fen for line in claim.lines}[booking_id] == used_fen
    live_session.rollback()
