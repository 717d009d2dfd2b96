"""The booking rules, each with its code; the price to the fen; the booking life and its transitions;
the double-booking guarantee in the database."""
from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.audit import Actor
from core.clock import LOCAL_ZONE
from core.db import utcnow
from core.errors import Conflict, Forbidden, IllegalTransition, NotFound, RuleBroken
from core.holidays import DayKind, day_kind
from core.models import Enterprise, Role, User, VerificationState
from core.states import move
from marketplace.booking import services as bookings
from marketplace.booking.availability import compute_availability
from marketplace.booking.models import (
    BOOKING_TRANSITIONS,
    Booking,
    BookingRules,
    BookingState,
    MaintenanceWindow,
    Qualification,
    QualificationRule,
)
from marketplace.payments.models import PaymentState
from marketplace.registry.models import InstrumentState, SharingMode, UserType


def local(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_ZONE).astimezone(timezone.utc)






def refusal_code(call) -> str:
    with pytest.raises((RuleBroken, Conflict)) as caught:
        call()
    return caught.value.code


# --- price ----------------------------------------------------------------------------------------

def test_price_is_setup_fee_plus_rate_times_hours_for_the_bookers_user_type(create_instrument, book, monday_at):
    instrument = create_instrument(state=InstrumentState.PUBLISHED)  # enterprises: ¥100 + ¥400/h
    booking = book(instrument, monday_at(9), monday_at(11, 30))
    assert (booking.user_type, booking.setup_fee_fen, booking.hourly_rate_fen) == (UserType.DISTRICT_ENTERPRISE,
                                                                                  10_000, 40_000)
    assert booking.price_fen == booking.payable_fen == 10_000 + 40_000 * 5 // 2 == 110_000
    assert (booking.state, booking.payment_state) == (BookingState.APPROVED, PaymentState.DUE)


def test_platform_staff_pay_the_own_staff_rate(create_instrument, book, monday_at):
    instrument = create_instrument(state=InstrumentState.PUBLISHED)  # own staff: ¥0 + ¥200/h
    booking = book(instrument, monday_at(9), monday_at(10), user="operator")
    assert (booking.user_type, booking.price_fen) == (UserType.OWN_STAFF, 20_000)


def test_hours_are_rounded_half_up_to_the_fen(create_instrument):
    instrument = create_instrument(hourly_rate_district_enterprise_fen=33_333, setup_fee_district_enterprise_fen=1)
    start = local(2026, 12, 7, 9)
    quote = bookings.quote_price(instrument, UserType.DISTRICT_ENTERPRISE, start, start + timedelta(minutes=50))
    assert quote.hours_fen == 27_778  # 33,333 × 50 / 60 = 27,777.5
    assert quote.price_fen == 27_779


def test_a_booking_with_nothing_to_pay_is_confirmed_at_once(free_instrument, book, monday_at):
    booking = book(free_instrument, monday_at(9), monday_at(10))
    assert (booking.state, booking.payment_state, booking.price_fen) == (BookingState.CONFIRMED,
                                                                        PaymentState.NOT_DUE, 0)


# --- the rules, one code each --------------------------------------------------------------------

def test_outside_open_hours(free_instrument, book, monday_at):
    assert refusal_code(lambda: book(free_instrument, monday_at(7), monday_at(8))) == "outside_open_hours"
    # across the lunch break, and on an ordinary Saturday
    assert refusal_code(lambda: book(free_instrument, monday_at(11), monday_at(14))) == "outside_open_hours"
    assert refusal_code(lambda: book(free_instrument, monday_at(9, days=5), monday_at(10, days=5))) == \
        "outside_open_hours"


def test_overnight_bookings_run_past_closing_where_the_rules_allow(free_instrument, book, own_rules, monday_at):
    own_rules(free_instrument, allows_overnight=True, max_minutes=1440)
    booking = book(free_instrument, monday_at(16), monday_at(10, days=1))
    assert booking.state == BookingState.CONFIRMED
    # the start must still be within open hours
    assert refusal_code(lambda: book(free_instrument, monday_at(20, days=2), monday_at(9, days=3))) == \
        "outside_open_hours"


def test_duration_limits(free_instrument, book, own_rules, monday_at):
    own_rules(free_instrument, min_minutes=60, max_minutes=120)
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(9, 30))) == "too_short"
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(11, 30))) == "too_long"


def test_slot_granularity(free_instrument, book, monday_at):
    assert refusal_code(lambda: book(free_instrument, monday_at(9, 10), monday_at(10, 10))) == "slot_granularity"


def test_lead_time_and_horizon(free_instrument, book, monday_at):
    start = monday_at(9)
    assert refusal_code(lambda: book(free_instrument, start, start + timedelta(hours=1),
                                     now=start - timedelta(minutes=119))) == "lead_time"
    assert refusal_code(lambda: book(free_instrument, start, start + timedelta(hours=1),
                                     now=start - timedelta(days=91))) == "beyond_horizon"


def test_closed_on_public_holidays_and_open_on_make_up_working_days(session, free_instrument, book):
    now = local(2026, 9, 14, 9)
    assert day_kind(date(2026, 10, 1)) == DayKind.HOLIDAY  # National Day, a Thursday
    assert day_kind(date(2026, 10, 10)) == DayKind.MAKEUP_WORKDAY  # a Saturday worked in lieu
    assert refusal_code(lambda: book(free_instrument, local(2026, 10, 1, 9), local(2026, 10, 1, 10), now=now)) == \
        "holiday"
    worked = book(free_instrument, local(2026, 10, 10, 9), local(2026, 10, 10, 10), now=now)
    assert worked.state == BookingState.CONFIRMED
    free = compute_availability(session, free_instrument, local(2026, 9, 28, 0), local(2026, 10, 12, 0)).free
    free_days = {start.astimezone(LOCAL_ZONE).date() for start, _end in free}
    assert date(2026, 10, 1) not in free_days and date(2026, 10, 5) not in free_days
    assert {date(2026, 9, 28), date(2026, 10, 9), date(2026, 10, 10)} <= free_days


def test_a_year_without_an_arrangement_closes_its_computed_statutory_holidays(session):
    assert day_kind(date(2031, 1, 1)) == DayKind.HOLIDAY  # 元旦
    assert day_kind(date(2031, 1, 2)) == DayKind.ORDINARY


def test_maintenance_windows_are_refused(session, free_instrument, book, monday_at):
    session.add(MaintenanceWindow(instrument_id=free_instrument.id, start_at=monday_at(10), end_at=monday_at(12),
                                  reason="年度校准"))
    session.flush()
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(11))) == "maintenance"
    assert book(free_instrument, monday_at(9), monday_at(10)).state == BookingState.CONFIRMED


def test_qualification_rules(session, free_instrument, book, own_rules, monday_at, demo_user):
    rules = own_rules(free_instrument, qualification=QualificationRule.REQUIRED)
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(10))) == "not_qualified"
    qualification = Qualification(instrument_id=free_instrument.id, user_id=demo_user("enterprise").id,
                                  expires_on=date.today() - timedelta(days=1))
    session.add(qualification)
    session.flush()
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(10))) == "not_qualified"  # expired
    qualification.expires_on = date.today() + timedelta(days=365)
    assert book(free_instrument, monday_at(9), monday_at(10)).needs_operator is False
    rules.qualification = QualificationRule.OPERATOR
    session.delete(qualification)
    session.flush()
    assert book(free_instrument, monday_at(10), monday_at(11)).needs_operator is True


@pytest.mark.parametrize("case", ["maintenance_state", "internal", "draft"])
def test_instrument_unavailable(create_instrument, book, monday_at, case):
    zero = {"setup_fee_district_enterprise_fen": 0, "hourly_rate_district_enterprise_fen": 0}
    instrument = {"maintenance_state": lambda: create_instrument(state=InstrumentState.MAINTENANCE, **zero),
                  "internal": lambda: create_instrument(state=InstrumentState.PUBLISHED,
                                                        sharing_mode=SharingMode.INTERNAL.value, **zero),
                  "draft": lambda: create_instrument(**zero)}[case]()
    assert refusal_code(lambda: book(instrument, monday_at(9), monday_at(10))) == "instrument_unavailable"


def test_enterprise_not_verified(session, free_instrument, book, monday_at, demo_user):
    loner = User(email="loner@example.com", name="散客", password_hash="x")
    session.add(loner)
    session.flush()
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(10), user=loner)) == \
        "enterprise_not_verified"
    enterprise = session.get(Enterprise, demo_user("enterprise").organisation_ids(Role.ENTERPRISE_MEMBER).pop())
    enterprise.verification_state = VerificationState.PENDING
    session.flush()
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(10))) == "enterprise_not_verified"


def test_the_accepted_terms_must_be_the_current_ones(free_instrument, book, monday_at, session):
    terms = bookings.current_terms(session, free_instrument.platform_id)
    assert refusal_code(lambda: book(free_instrument, monday_at(9), monday_at(10), terms_id=terms.id + 999)) == \
        "terms_changed"
    assert book(free_instrument, monday_at(9), monday_at(10), terms_id=terms.id).terms.version == terms.version


# --- no double booking ---------------------------------------------------------------------------

def test_an_overlapping_booking_is_a_conflict_and_buffers_count(free_instrument, book, own_rules, monday_at):
    own_rules(free_instrument, buffer_minutes=30)
    first = book(free_instrument, monday_at(9), monday_at(10))
    assert first.block_end_at == monday_at(10, 30)
    assert refusal_code(lambda: book(free_instrument, monday_at(9, 30), monday_at(10, 30))) == "booking_conflict"
    assert refusal_code(lambda: book(free_instrument, monday_at(10), monday_at(11))) == "booking_conflict"
    assert book(free_instrument, monday_at(10, 30), monday_at(11)).state == BookingState.CONFIRMED


def test_a_cancelled_booking_frees_its_time(free_instrument, book, monday_at, session, demo_user):
    first = book(free_instrument, monday_at(9), monday_at(10))
    user = demo_user("enterprise")
    assert bookings.cancel_booking(session, first, actor=Actor.of(user, None), user=user, now=utcnow()) == 0
    assert book(free_instrument, monday_at(9), monday_at(10)).state == BookingState.CONFIRMED


def test_the_database_itself_guards_against_double_booking(session, db_kind, free_instrument, book, monday_at):
    """PostgreSQL: an exclusion constraint refuses overlapping active bookings whatever the code does.
    SQLite: every transaction holds the write lock from its BEGIN, so the service's check and its insert
    can never interleave with another writer's."""
    first = book(free_instrument, monday_at(9), monday_at(10))
    if db_kind == "sqlite":
        import sqlite3

        other = sqlite3.connect(session.get_bind().engine.url.database, timeout=0.1, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
        return
    values = {c.key: getattr(first, c.key) for c in Booking.__table__.columns if c.key != "id"}
    with pytest.raises(IntegrityError, match="ex_bookings_no_overlap"), session.begin_nested():
        session.add(Booking(**values | {"start_at": monday_at(9, 30), "end_at": monday_at(10, 30),
                                        "block_end_at": monday_at(10, 30)}))
        session.flush()
    # a cancelled one may lie under it
    session.add(Booking(**values | {"state": BookingState.CANCELLED}))
    session.flush()
    assert bookings.find_overlapping_use(session) == []



def _used(session, booking, operator) -> Booking:
    """Checked in and out on time: completed."""
    actor = Actor.of(operator, None)
    bookings.check_in(session, booking, actor=actor, user=operator, now=booking.start_at)
    return bookings.check_out(session, booking, actor=actor, user=operator, now=booking.end_at)


def test_a_completed_booking_keeps_its_time_and_a_no_show_frees_it(session, free_instrument, book, monday_at,
                                                                   demo_user):
    used = _used(session, book(free_instrument, monday_at(9), monday_at(11)), demo_user("operator"))
    assert used.state == BookingState.COMPLETED
    with pytest.raises(Conflict) as refused, session.begin_nested():
        book(free_instrument, monday_at(10), monday_at(12))
    assert refused.value.code == "booking_conflict"
    missed = book(free_instrument, monday_at(14), monday_at(15))
    bookings.mark_no_show(session, missed, rules=bookings.effective_rules(session, free_instrument),
                          actor=Actor.system("job:mark_no_shows"), now=monday_at(14, 30))
    assert missed.state == BookingState.NO_SHOW
    assert book(free_instrument, monday_at(14), monday_at(15)).state == BookingState.CONFIRMED
    assert bookings.find_overlapping_use(session) == []


def test_two_completed_bookings_never_overlap_and_the_check_finds_a_planted_pair(
        app, session, db_kind, free_instrument, book, monday_at, demo_user):
    """PostgreSQL refuses a completed booking written over another; SQLite has no such constraint, and
    `flask bookings check-overlaps` finds the pair, prints it and exits 1."""
    runner = app.test_cli_runner()
    used = _used(session, book(free_instrument, monday_at(14, 30), monday_at(16)), demo_user("operator"))
    clean = runner.invoke(args=["bookings", "check-overlaps"])
    assert (clean.exit_code, clean.output) == (0, "0 overlapping pairs\n")
    values = {c.key: getattr(used, c.key) for c in Booking.__table__.columns if c.key != "id"}
    planted = values | {"start_at": monday_at(13, 30), "end_at": monday_at(16, 30), "block_end_at": monday_at(16, 30)}
    if db_kind == "postgresql":
        with pytest.raises(IntegrityError, match="ex_bookings_no_overlap"), session.begin_nested():
            session.add(Booking(**planted))
            session.flush()
        session.add(Booking(**planted | {"state": BookingState.NO_SHOW}))  # a no-show used nothing
        session.flush()
        assert bookings.find_overlapping_use(session) == []
        return
    second = Booking(**planted)
    session.add(second)
    session.flush()
    assert bookings.find_overlapping_use(session) == [(used, second)]
    found = runner.invoke(args=["bookings", "check-overlaps"])
    assert found.exit_code == 1
    assert f"#{used.id} completed" in found.output and f"#{second.id} completed" in found.output
    assert found.output.endswith("1 overlapping pairs\n")


# --- the life ------------------------------------------------------------------------------------

ALL_STATES = list(BookingState)


@pytest.mark.parametrize(("start", "to"), list(itertools.product(ALL_STATES, ALL_STATES)))
def test_every_transition_is_allowed_or_refused_by_the_one_table(start, to):
    booking = Booking(state=start)
    if to in BOOKING_TRANSITIONS.get(start, set()):
        move(booking, to, BOOKING_TRANSITIONS)
        assert booking.state == to
    else:
        with pytest.raises(IllegalTransition):
            move(booking, to, BOOKING_TRANSITIONS)
        assert booking.state == start


def test_approval_by_the_platform_with_a_reason_to_reject(session, free_instrument, book, own_rules, monday_at,
                                                          demo_user):
    own_rules(free_instrument, requires_approval=True)
    admin, operator = demo_user("platform"), demo_user("operator")
    first = book(free_instrument, monday_at(9), monday_at(10))
    assert first.state == BookingState.REQUESTED
    with pytest.raises(Forbidden):
        bookings.approve_booking(session, first, actor=Actor.of(operator, None), user=operator, now=utcnow())
    bookings.approve_booking(session, first, actor=Actor.of(admin, None), user=admin, now=utcnow())
    assert first.state == BookingState.CONFIRMED  # approved, nothing to pay: confirmed
    second = book(free_instrument, monday_at(10), monday_at(11))
    assert refusal_code(lambda: bookings.reject_booking(session, second, actor=Actor.of(admin, None), user=admin,
                                                        now=utcnow(), reason="  ")) == "reason_required"
    bookings.reject_booking(session, second, actor=Actor.of(admin, None), user=admin, now=utcnow(),
                            reason="当天仪器校准")
    assert (second.state, second.decision_note) == (BookingState.REJECTED, "当天仪器校准")
    actions = session.scalars(sa.text("SELECT action FROM audit_entries WHERE subject_type = 'bookings' "
                                      "AND subject_id = :id ORDER BY id"), {"id": second.id}).all()
    assert actions == ["booking.requested", "booking.rejected"]


def test_check_in_and_out_price_the_actual_time(session, create_instrument, book, monday_at, demo_user):
    operator = demo_user("operator")
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_own_staff_fen=0,
                                   hourly_rate_own_staff_fen=0, setup_fee_district_enterprise_fen=0,
                                   hourly_rate_district_enterprise_fen=0)
    booking = book(instrument, monday_at(9), monday_at(11))
    actor = Actor.of(operator, None)
    with pytest.raises(RuleBroken):
        bookings.check_in(session, booking, actor=actor, user=operator, now=monday_at(7, 30))
    bookings.check_in(session, booking, actor=actor, user=operator, now=monday_at(9, 5))
    assert booking.state == BookingState.IN_PROGRESS
    bookings.check_out(session, booking, actor=actor, user=operator, now=monday_at(10, 10))
    assert (booking.state, booking.checked_out_at, booking.final_price_fen) == (
        BookingState.COMPLETED, monday_at(10, 10), 0)


def test_final_price_rounds_the_actual_time_up_to_the_slot(create_instrument, monday_at):
    instrument = create_instrument()
    rules = BookingRules(slot_minutes=30, min_minutes=60)
    booking = Booking(instrument=instrument, user_type=UserType.DISTRICT_ENTERPRISE, setup_fee_fen=10_000,
                      hourly_rate_fen=40_000, checked_in_at=monday_at(9), checked_out_at=monday_at(10, 31))
    assert bookings.final_price(booking, rules) == 10_000 + 40_000 * 2  # 91 min → 120 min
    booking.checked_out_at = monday_at(9, 10)
    assert bookings.final_price(booking, rules) == 10_000 + 40_000  # at least the minimum hour


def test_cancellation_fee_follows_the_policy_to_the_fen(monday_at):
    rules = BookingRules(free_cancel_hours=24, late_cancel_fee_pct=50, no_show_fee_pct=100)
    booking = Booking(state=BookingState.CONFIRMED, start_at=monday_at(9), price_fen=90_001, payable_fen=90_001)
    booking.fix_cancellation_terms(rules.cancellation_terms(booking.start_at, price_fen=90_001, payable_fen=90_001,
                                                            voucher_fen=0))
    early, late = monday_at(8, days=-1), monday_at(10, days=-1)
    assert booking.free_cancel_until == monday_at(9, days=-1)
    assert bookings.cancellation_fee(booking, by_platform=False, now=early) == 0
    assert bookings.cancellation_fee(booking, by_platform=False, now=monday_at(9, days=-1)) == 45_000
    assert bookings.cancellation_fee(booking, by_platform=False, now=late) == 45_000  # rounded down
    assert bookings.cancellation_fee(booking, by_platform=True, now=late) == 0
    rules.late_cancel_fee_pct = 100  # the rules change after booking: the booking keeps its terms
    assert bookings.cancellation_fee(booking, by_platform=False, now=late) == 45_000
    booking.state = BookingState.APPROVED  # not confirmed (not paid for): free
    assert bookings.cancellation_fee(booking, by_platform=False, now=late) == 0
    # a voucher pays the rest: it never pays a fee
    paid_in_part = rules.cancellation_terms(booking.start_at, price_fen=90_001, payable_fen=20_000, voucher_fen=70_001)
    assert (paid_in_part.late_fee_fen, paid_in_part.no_show_fee_fen) == (20_000, 20_000)


def test_weekly_series_books_the_free_occurrences_and_lists_the_skipped(session, free_instrument, monday_at,
                                                                        demo_user):
    user = demo_user("enterprise")
    session.add(MaintenanceWindow(instrument_id=free_instrument.id, start_at=monday_at(8, weeks=2),
                                  end_at=monday_at(18, weeks=2)))
    series, booked, skipped = bookings.book_series(
        session, actor=Actor.of(user, None), user=user, instrument_id=free_instrument.id, start_at=monday_at(9),
        end_at=monday_at(10), weeks=3, now=utcnow())
    assert [b.start_at for b in booked] == [monday_at(9), monday_at(9, weeks=3)]
    assert [(when, refusal.code) for when, refusal in skipped] == [(monday_at(9, weeks=2), "maintenance")]
    assert series.skipped == [monday_at(9, weeks=2).isoformat()]
    cancelled = bookings.cancel_series(session, booked[0], actor=Actor.of(user, None), user=user, now=utcnow())
    assert [b.state for b in cancelled] == [BookingState.CANCELLED] * 2


def test_others_do_not_see_a_booking(session, free_instrument, book, monday_at, demo_user):
    booking = book(free_instrument, monday_at(9), monday_at(10))
    for name in ("enterprise", "platform", "operator", "bureau", "auditor"):
        assert bookings.get_booking(session, booking.id, demo_user(name)) is booking
    for name in ("expert", "finance", "introducer"):
        with pytest.raises(NotFound):
            bookings.get_booking(session, booking.id, demo_user(name))
