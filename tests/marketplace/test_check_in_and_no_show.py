"""Check-in tied to the booked slot, and no-shows the operator marks and undoes, on SQLite and PostgreSQL.

Check-in opens the check-in window (a booking rule, 15 minutes by default) before the booking's own start
and closes at its end; never while another booking of the instrument holds that moment. Before the start,
or later than the window after it, the operator confirms. A no-show may be marked by the operator later
than the window after the start, with a reason, and undone (the job's or an operator's) with a reason:
the booking is cancelled without fee and the fee refunded, at localstripe to the fen."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import LOCAL_ZONE, to_local
from core.db import utcnow
from core.errors import Conflict, Forbidden, RuleBroken
from core.models import AuditEntry
from marketplace.booking import jobs
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState
from marketplace.payments.models import PaymentState, PaymentStatus
from marketplace.registry.models import InstrumentState
from tests.marketplace.booking_fixtures import workday_at
from tests.marketplace.test_payments import (  # noqa: F401  (fixtures)
    PAYABLE,
    approved,
    card_share,
    enterprise,
    pay,
    settled,
)
from tests.vouchers.test_ledger import programme, voucher  # noqa: F401  (fixtures)
from vouchers import ledger
from vouchers.models import EntryKind, LedgerEntry

AROUND_THE_CLOCK = {day: [["00:00", "24:00"]] for day in "0123456"}


@pytest.fixture
def operator(demo_user):
    return demo_user("operator")


@pytest.fixture
def fine_grained(create_instrument, own_rules):
    """A priced instrument (¥100 setup and ¥400 an hour for district enterprises) booked on a 5-minute
    grid, around the clock: the morning of the issue's two bookings."""
    instrument = create_instrument(state=InstrumentState.PUBLISHED)
    own_rules(instrument, slot_minutes=5, min_minutes=5, open_hours=AROUND_THE_CLOCK, closed_on_holidays=False,
              lead_minutes=0)
    return instrument


@pytest.fixture
def paid_booking(session, book, demo_user):
    """paid_booking(instrument, start, end) → a confirmed booking made three days before, its share
    paid by a transfer the platform recorded."""
    admin = demo_user("platform")

    def make(instrument, start, end):
        booking = book(instrument, start, end, now=start - timedelta(days=3))
        if booking.payable_fen:
            bookings.record_transfer(session, booking, actor=Actor.of(admin, None), user=admin,
                                     now=start - timedelta(days=2), amount_fen=booking.payable_fen,
                                     received_on=(start - timedelta(days=2)).date(), reference="ICBC 2026-0262")
        assert booking.state == BookingState.CONFIRMED
        return booking

    return make


def refusal(call) -> RuleBroken | Conflict:
    with pytest.raises((RuleBroken, Conflict)) as refused:
        call()
    return refused.value


def check_in(session, booking, who, at, **kw):
    return bookings.check_in(session, booking, actor=Actor.of(who, None), user=who, now=at, **kw)


def audit_of(session, booking) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.subject_type == "bookings",
                                                         AuditEntry.subject_id == booking.id).order_by(AuditEntry.id)))


# --- the slot's own time --------------------------------------------------------------------------

def test_an_early_check_in_during_the_previous_booking_is_refused_and_that_booking_is_not_charged(
        session, fine_grained, paid_booking, operator):
    """Booking 263 (06:10–06:25) and 262 (06:25–06:40): at 06:12 262 cannot be checked in, since it is
    263's time; 263 is checked in and out, and the no-show job charges it nothing."""
    at = lambda hour, minute: workday_at(hour, minute, days=-14)  # noqa: E731  (a one-line helper of this test)
    earlier = paid_booking(fine_grained, at(6, 10), at(6, 25))  # "263"
    later = paid_booking(fine_grained, at(6, 25), at(6, 40))  # "262"
    assert earlier.payable_fen == later.payable_fen == 10_000 + 10_000  # ¥100 setup and a quarter hour at ¥400

    refused = refusal(lambda: check_in(session, later, operator, at(6, 12), confirm=True))
    assert refused.code == "check_in_other_booking"
    assert "06:10–06:25" in refused.message and str(earlier.id) in refused.message and "06:25–06:40" in refused.message
    assert (later.state, later.checked_in_at) == (BookingState.CONFIRMED, None)

    check_in(session, earlier, operator, at(6, 12))  # on time for its own slot: no confirmation
    actor = Actor.of(operator, None)
    with settled(actor, at(6, 24)):
        bookings.check_out(session, earlier, actor=actor, user=operator, now=at(6, 24))
    check_in(session, later, operator, at(6, 25))
    assert later.checked_in_at == at(6, 25)

    assert jobs.mark_no_shows(now=at(7, 0)) == 0
    session.expire_all()
    assert (earlier.state, earlier.cancellation_fee_fen, earlier.final_price_fen) == (BookingState.COMPLETED, 0, 20_000)
    assert earlier.payments[0].refunded_fen == 0  # 12 minutes used, rounded up to the booked quarter hour
    assert later.state == BookingState.IN_PROGRESS


def test_the_recorded_use_never_starts_before_the_window(session, fine_grained, paid_booking, operator):
    start = workday_at(6, 25, days=-14)
    booking = paid_booking(fine_grained, start, start + timedelta(minutes=15))
    assert refusal(lambda: check_in(session, booking, operator, start - timedelta(minutes=16),
                                    confirm=True)).code == "check_in_time"
    check_in(session, booking, operator, start - timedelta(minutes=13), confirm=True)
    assert booking.checked_in_at == start - timedelta(minutes=13) >= start - timedelta(minutes=15)


@pytest.mark.parametrize(("minutes", "outcome"), [
    (-16, "check_in_time"), (-15, "check_in_unconfirmed"), (-1, "check_in_unconfirmed"), (0, "on_time"),
    (15, "on_time"), (16, "check_in_unconfirmed"), (59, "check_in_unconfirmed"), (60, "check_in_time")])
def test_check_in_window_to_the_minute(session, free_instrument, paid_booking, operator, minutes, outcome):
    """09:00–10:00 with the district's 15-minute window: from 08:45 (early, confirmed) to 09:15 on time,
    late after that, closed at 10:00."""
    start = workday_at(9, days=-14)
    booking = paid_booking(free_instrument, start, start + timedelta(hours=1))
    at = start + timedelta(minutes=minutes)
    if outcome == "on_time":
        check_in(session, booking, operator, at)
        assert (booking.state, booking.checked_in_at) == (BookingState.IN_PROGRESS, at)
        assert audit_of(session, booking)[-1].after["timing"] == "on_time"
        return
    refused = refusal(lambda: check_in(session, booking, operator, at))
    assert refused.code == outcome and booking.state == BookingState.CONFIRMED
    if outcome == "check_in_unconfirmed":
        assert refused.field == "confirm"
        assert refused.details == {"timing": "early" if minutes < 0 else "late"}
        assert ("提前" if minutes < 0 else "迟到") in refused.message and f"{abs(minutes)} 分钟" in refused.message
        check_in(session, booking, operator, at, confirm=True)
        assert booking.state == BookingState.IN_PROGRESS
        entry = audit_of(session, booking)[-1]
        assert (entry.action, entry.after["confirmed"]) == ("booking.in_progress", True)


def test_the_window_is_an_instrument_rule(session, free_instrument, own_rules, paid_booking, operator):
    own_rules(free_instrument, check_in_window_minutes=5)
    start = workday_at(9, days=-14)
    booking = paid_booking(free_instrument, start, start + timedelta(hours=1))
    assert refusal(lambda: check_in(session, booking, operator, start - timedelta(minutes=6),
                                    confirm=True)).code == "check_in_time"
    assert refusal(lambda: check_in(session, booking, operator, start + timedelta(minutes=6))).code \
        == "check_in_unconfirmed"
    check_in(session, booking, operator, start + timedelta(minutes=5))
    assert booking.state == BookingState.IN_PROGRESS


def test_only_the_platforms_staff_check_in(session, free_instrument, paid_booking, demo_user):
    start = workday_at(9, days=-14)
    booking = paid_booking(free_instrument, start, start + timedelta(hours=1))
    enterprise_user = demo_user("enterprise")
    with pytest.raises(Forbidden):
        check_in(session, booking, enterprise_user, start)
    assert booking.state == BookingState.CONFIRMED


# --- no-shows by the operator ---------------------------------------------------------------------

def test_operator_marks_a_no_show_after_the_window_with_a_reason(session, create_instrument, paid_booking, operator):
    start = workday_at(9, days=-14)
    booking = paid_booking(create_instrument(state=InstrumentState.PUBLISHED), start, start + timedelta(hours=1))
    actor = Actor.of(operator, None)
    mark = lambda at, reason="预约人未到，电话未接": bookings.report_no_show(  # noqa: E731  (a one-line helper of this test)
        session, booking, actor=actor, user=operator, now=at, reason=reason)
    early = refusal(lambda: mark(start + timedelta(minutes=15)))
    assert (early.code, early.field) == ("no_show_too_early", "reason") and "09:15" in early.message
    assert refusal(lambda: mark(start + timedelta(minutes=16), "  ")).code == "reason_required"
    with settled(actor, start + timedelta(minutes=16)):
        mark(start + timedelta(minutes=16))
    assert (booking.state, booking.cancellation_fee_fen) == (BookingState.NO_SHOW, 50_000)
    entry = audit_of(session, booking)[-1]
    assert (entry.action, entry.after["reason"], entry.actor_id) == ("booking.no_show", "预约人未到，电话未接",
                                                                     operator.id)
    assert refusal(lambda: mark(start + timedelta(minutes=20))).code == "booking_state_changed"


def test_undoing_a_job_no_show_cancels_without_fee_and_records_the_refund_due(session, create_instrument, paid_booking,
                                                                           operator):
    """Paid by transfer: the no-show kept ¥500 of it; undoing records those ¥500 as due back to the
    enterprise, the booking is cancelled without fee, and the job never marks it again."""
    start = workday_at(9, days=-14)
    booking = paid_booking(create_instrument(state=InstrumentState.PUBLISHED), start, start + timedelta(hours=1))
    jobs.mark_no_shows(now=start + timedelta(minutes=31))
    session.expire_all()
    assert (booking.state, booking.cancellation_fee_fen, booking.payments[0].refunded_fen) == (
        BookingState.NO_SHOW, 50_000, 0)
    actor = Actor.of(operator, None)
    undo = lambda reason="预约人当天已来电改期": bookings.undo_no_show(  # noqa: E731  (a one-line helper of this test)
        session, booking, actor=actor, user=operator, now=start + timedelta(hours=3), reason=reason)
    assert refusal(lambda: undo("")).code == "reason_required"
    with settled(actor):
        refunded = undo()
    assert refunded == 50_000
    assert (booking.state, booking.cancellation_fee_fen, booking.cancel_reason, booking.cancelled_by_id) == (
        BookingState.CANCELLED, 0, "预约人当天已来电改期", operator.id)
    assert (booking.payments[0].refunded_fen, booking.payment_state) == (50_000, PaymentState.REFUNDED)
    entry = audit_of(session, booking)[-1]
    assert (entry.action, entry.before["state"], entry.after["state"], entry.after["refunded_fee_fen"]) == (
        "booking.no_show_undone", "no_show", "cancelled", 50_000)
    assert refusal(undo).code == "booking_state_changed"  # undone once
    assert jobs.mark_no_shows(now=start + timedelta(hours=4)) == 0
    session.expire_all()
    assert (booking.state, booking.cancellation_fee_fen) == (BookingState.CANCELLED, 0)


def test_the_booker_cannot_cancel_a_no_show_to_get_the_fee_back(session, create_instrument, paid_booking, demo_user):
    start = workday_at(9, days=-14)
    booking = paid_booking(create_instrument(state=InstrumentState.PUBLISHED), start, start + timedelta(hours=1))
    jobs.mark_no_shows(now=start + timedelta(minutes=31))
    session.expire_all()
    booker = demo_user("enterprise")
    assert not bookings.can_cancel(booker, booking)
    assert refusal(lambda: bookings.cancel_booking(session, booking, actor=Actor.of(booker, None), user=booker,
                                                   now=start + timedelta(hours=2))).code == "booking_state_changed"
    assert (booking.state, booking.cancellation_fee_fen) == (BookingState.NO_SHOW, 50_000)


def test_undo_refunds_the_card_capture_to_the_fen_at_localstripe(session, approved, pay, card, stripe, own_rules,
                                                                 operator, monday_at):
    own_rules(approved.instrument, no_show_fee_pct=37)
    fee = PAYABLE * 37 // 100
    approved.no_show_fee_fen = fee  # the terms are fixed when a booking is made: as if made under this rule
    payment = pay(approved, card())
    actor = Actor.of(operator, "127.0.0.1")
    with settled(actor, monday_at(9, 16)):
        bookings.report_no_show(session, approved, actor=actor, user=operator, now=monday_at(9, 16), reason="未到场")
    session.expire_all()
    payment = card_share(approved)
    assert (approved.state, approved.cancellation_fee_fen, payment.status, payment.captured_fen) == (
        BookingState.NO_SHOW, fee, PaymentStatus.SUCCEEDED, 33_300)
    assert stripe.get(f"/v1/payment_intents/{payment.intent_id}")["latest_charge"]["amount_refunded"] == PAYABLE - fee

    with settled(actor, monday_at(10)):
        assert bookings.undo_no_show(session, approved, actor=actor, user=operator, now=monday_at(10),
                                     reason="仪器故障，用户无法使用") == 33_300
    session.expire_all()
    payment = card_share(approved)
    assert (approved.state, approved.payment_state, approved.cancellation_fee_fen) == (
        BookingState.CANCELLED, PaymentState.REFUNDED, 0)
    assert (payment.captured_fen, payment.refunded_fen, payment.pending_action, len(payment.refund_ids)) == (
        33_300, 33_300, None, 1)
    refund = stripe.get(f"/v1/refunds/{payment.refund_ids[0]}")
    assert (refund["amount"], refund["payment_intent"]) == (33_300, payment.intent_id)
    assert stripe.get(f"/v1/payment_intents/{payment.intent_id}")["latest_charge"]["amount_refunded"] == PAYABLE
    actions = [entry.action for entry in audit_of(session, approved)]
    assert actions[-2:] == ["booking.no_show", "booking.no_show_undone"]


# --- the day sheet --------------------------------------------------------------------------------

def test_day_sheet_marks_and_undoes_a_no_show_with_reasons_by_field(session, login_as, create_instrument,
                                                                    paid_booking):
    start = workday_at(9, days=-14)
    booking = paid_booking(create_instrument(state=InstrumentState.PUBLISHED), start, start + timedelta(hours=1))
    client = login_as("operator")
    sheet = lambda: client.get(f"/platform/day-sheet?day={start.astimezone(LOCAL_ZONE).date()}").get_data(  # noqa: E731  (a one-line helper of this test)
        as_text=True)
    assert f"/platform/bookings/{booking.id}/no-show" in sheet()

    missing = client.post(f"/platform/bookings/{booking.id}/no-show", data={"reason": " "})
    assert missing.status_code == 422 and "请填写原因" in missing.get_data(as_text=True)
    assert 'id="reason"' in missing.get_data(as_text=True) and "is-invalid" in missing.get_data(as_text=True)
    session.refresh(booking)
    assert booking.state == BookingState.CONFIRMED

    assert client.post(f"/platform/bookings/{booking.id}/no-show", data={"reason": "预约人未到"}).status_code == 302
    session.refresh(booking)
    assert (booking.state, booking.cancellation_fee_fen) == (BookingState.NO_SHOW, 50_000)
    page = sheet()
    assert f"/platform/bookings/{booking.id}/undo-no-show" in page and f"/platform/bookings/{booking.id}/no-show\"" \
        not in page

    assert client.post(f"/platform/bookings/{booking.id}/undo-no-show", data={"reason": ""}).status_code == 422
    assert login_as("enterprise").post(f"/platform/bookings/{booking.id}/undo-no-show",
                                       data={"reason": "x"}).status_code == 403
    client = login_as("operator")
    done = client.post(f"/platform/bookings/{booking.id}/undo-no-show", data={"reason": "仪器故障"},
                       follow_redirects=True)
    assert done.status_code == 200 and "已撤销爽约" in done.get_data(as_text=True)
    session.refresh(booking)
    assert (booking.state, booking.cancellation_fee_fen, booking.payments[0].refunded_fen) == (
        BookingState.CANCELLED, 0, 50_000)
    again = client.post(f"/platform/bookings/{booking.id}/undo-no-show", data={"reason": "仪器故障"},
                        follow_redirects=True)
    assert again.status_code == 200 and "不是爽约状态" in again.get_data(as_text=True)


def test_day_sheet_names_the_other_booking_when_it_is_its_time(session, login_as, fine_grained, paid_booking):
    """The check-in button of the next booking while the current one's time runs: refused, naming it."""
    now = to_local(utcnow()).replace(second=0, microsecond=0)
    slot = now - timedelta(minutes=now.minute % 5)
    current = paid_booking(fine_grained, slot, slot + timedelta(minutes=10))
    upcoming = paid_booking(fine_grained, slot + timedelta(minutes=10), slot + timedelta(minutes=25))
    response = login_as("operator").post(f"/platform/bookings/{upcoming.id}/check-in", data={"confirm": "y"},
                                         follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "alert-danger" in page and f"预约 {current.id}" in page
    assert f"{to_local(current.start_at):%H:%M}–{to_local(current.end_at):%H:%M}" in page
    session.refresh(upcoming)
    assert upcoming.state == BookingState.CONFIRMED


def test_the_job_never_marks_a_no_show_while_a_check_in_is_on_time(session, free_instrument, own_rules, paid_booking):
    own_rules(free_instrument, no_show_grace_minutes=5, check_in_window_minutes=15)
    start = workday_at(9, days=-14)
    booking = paid_booking(free_instrument, start, start + timedelta(hours=1))
    assert jobs.mark_no_shows(now=start + timedelta(minutes=15)) == 0
    session.expire_all()
    assert booking.state == BookingState.CONFIRMED
    assert jobs.mark_no_shows(now=start + timedelta(minutes=16)) >= 1
    session.expire_all()
    assert booking.state == BookingState.NO_SHOW


def test_undoing_a_no_show_leaves_the_voucher_ledger_as_a_cancellation_does(session, create_instrument, voucher,
                                                                           demo_user, operator, monday_at):
    """The voucher's hold is released at the no-show (a fee is never paid by a voucher); undoing it
    releases nothing twice and consumes nothing; the enterprise's share kept as the fee is due back."""
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                                   hourly_rate_district_enterprise_fen=40_000)
    issued, member, admin = voucher(1_000_000), demo_user("enterprise"), demo_user("platform")
    booking = bookings.book_instrument(session, actor=Actor.of(member, None), user=member, instrument_id=instrument.id,
                                       start_at=monday_at(9), end_at=monday_at(11), now=utcnow(), voucher_id=issued.id)
    share = booking.payable_fen
    assert (booking.price_fen, booking.voucher_fen, issued.held_fen) == (80_000, 80_000 - share, 80_000 - share)
    bookings.record_transfer(session, booking, actor=Actor.of(admin, None), user=admin, now=utcnow(),
                             amount_fen=share, received_on=to_local(utcnow()).date(), reference="ICBC 2026-0263")
    actor = Actor.of(operator, None)
    with settled(actor, monday_at(9, 16)):
        bookings.report_no_show(session, booking, actor=actor, user=operator, now=monday_at(9, 16), reason="未到场")
    assert (booking.cancellation_fee_fen, issued.held_fen, issued.balance_fen) == (share, 0, 1_000_000)
    with settled(actor, monday_at(10)):
        assert bookings.undo_no_show(session, booking, actor=actor, user=operator, now=monday_at(10),
                                     reason="仪器故障") == share
    session.expire_all()
    assert (issued.held_fen, issued.consumed_fen, issued.balance_fen) == (0, 0, 1_000_000)
    releases = session.scalars(select(LedgerEntry).where(LedgerEntry.booking_id == booking.id,
                                                         LedgerEntry.kind == EntryKind.RELEASE)).all()
    assert [entry.amount_fen for entry in releases] == [80_000 - share]
    assert ledger.ledger_totals(session, issued.id) == ledger.Totals(1_000_000, 0, 0, 0)
    assert (booking.payments[0].captured_fen, booking.payments[0].refunded_fen) == (share, share)
