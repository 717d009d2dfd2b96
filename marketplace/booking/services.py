"""The booking life: rules, price, the double-booking guarantee, approval, payment, check-in and -out,
cancellation, expiry and no-shows.

Every change of a booking's state takes the booking's row lock and reads its state afresh under it
(lock_booking), so that of two racing changes the second sees the first and is refused with 409. This
module owns the booking's life and calls marketplace/payments/services.py for the money, never the other way: a
change schedules what is to be done at the payment gateway, and booking_change (or pay_by_card) makes
those calls after the change has committed, with no transaction open, recording each answer in a unit
of work of its own."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import to_local
from core.db import unit_of_work
from core.errors import Conflict, Forbidden, NotFound, RuleBroken
from core.models import Enterprise, Role, RoleGrant, User
from core.money import format_yuan
from core.outbox import Attachment, enqueue_mail
from core.services import administers
from core.states import can_move, move
from marketplace.booking import ics, signals
from marketplace.booking.availability import (
    busy_bookings,
    effective_rules,
    holiday_days,
    is_taken,
    maintenance_windows,
    open_intervals,
)
from marketplace.booking.models import (
    ACTIVE_BOOKING_STATES,
    BOOKING_STATE_LABELS,
    BOOKING_TRANSITIONS,
    USE_STATES,
    WAITLIST_STATE_LABELS,
    WAITLIST_TRANSITIONS,
    Booking,
    BookingRules,
    BookingSeries,
    BookingState,
    CancellationTerms,
    Qualification,
    QualificationRule,
    ServiceTerms,
    WaitlistEntry,
    WaitlistState,
)
from marketplace.payments import services as payments
from marketplace.payments.models import Payment, PaymentState, PaymentStatus
from marketplace.registry.models import INSTRUMENT_STATE_LABELS, Instrument, InstrumentState, SharingMode, UserType
from vouchers import services as vouchers

MAX_SERIES_WEEKS = 26


# --- who ----------------------------------------------------------------------------------------

def is_platform_staff(user: User | None, platform_id: int) -> bool:
    return user is not None and platform_id in user.organisation_ids(Role.PLATFORM_ADMIN, Role.PLATFORM_OPERATOR)


def can_manage(user: User | None, booking: Booking) -> bool:
    """The owning platform's admins approve, reject, cancel and handle payments."""
    return administers(user, booking.instrument.platform_id)


def can_operate(user: User | None, booking: Booking) -> bool:
    """Admins and operators of the owning platform check users in and out."""
    return is_platform_staff(user, booking.instrument.platform_id)


def can_see(user: User | None, booking: Booking) -> bool:
    return user is not None and (booking.booker_id == user.id or can_operate(user, booking)
                                 or user.has_role(Role.BUREAU_ADMIN, Role.AUDITOR))


def is_cancellable(booking: Booking) -> bool:
    """A booking that still holds its time may be cancelled (a no-show is cancelled only by undoing it)."""
    return booking.is_active and can_move(booking, BookingState.CANCELLED, BOOKING_TRANSITIONS)


def can_cancel(user: User | None, booking: Booking) -> bool:
    return (is_cancellable(booking) and user is not None and (booking.booker_id == user.id or can_manage(user, booking)))


def get_booking(session: Session, booking_id: int, user: User | None) -> Booking:
    """Only its booker, the owning platform and the bureau see a booking; to others it does not exist."""
    booking = session.get(Booking, booking_id)
    if booking is None or not can_see(user, booking):
        raise NotFound("not_found", _("There is no such booking."))
    return booking


def _ensure(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden("forbidden", message)


def booker_enterprise(session: Session, user: User) -> Enterprise | None:
    """The enterprise a member books for: their first verified one, else their first one."""
    ids = sorted(user.organisation_ids(Role.ENTERPRISE_MEMBER))
    enterprises = list(session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)))) if ids else []
    return next((e for e in enterprises if e.is_verified), enterprises[0] if enterprises else None)


def classify_booker(session: Session, user: User, instrument: Instrument) -> tuple[UserType, Enterprise | None]:
    """Which rate a booker pays: the platform's own staff, a district enterprise (verified), or others
    (staff of another platform). Anyone else may not book."""
    if is_platform_staff(user, instrument.platform_id):
        return UserType.OWN_STAFF, None
    enterprise = booker_enterprise(session, user)
    if enterprise is not None and enterprise.is_verified:
        return UserType.DISTRICT_ENTERPRISE, enterprise
    if enterprise is None and user.organisation_ids(Role.PLATFORM_ADMIN, Role.PLATFORM_OPERATOR):
        return UserType.OTHER, None
    raise RuleBroken("enterprise_not_verified",
                     _("Bookings are made for an enterprise the bureau has verified; yours is not verified yet.")
                     if enterprise is not None else
                     _("Bookings are made for a verified enterprise; your account belongs to none."))


def is_qualified(session: Session, user: User, instrument_id: int, on: date) -> bool:
    qualification = session.scalar(select(Qualification).where(
        Qualification.instrument_id == instrument_id, Qualification.user_id == user.id))
    return qualification is not None and (qualification.expires_on is None or qualification.expires_on >= on)


def current_terms(session: Session, platform_id: int) -> ServiceTerms:
    """The platform's latest service terms, else the district's model terms (one query: the platform's
    versions first)."""
    terms = session.scalar(select(ServiceTerms).where(sa.or_(ServiceTerms.platform_id == platform_id,
                                                             ServiceTerms.platform_id.is_(None)))
                           .order_by(ServiceTerms.platform_id.is_(None), ServiceTerms.version.desc()).limit(1))
    if terms is None:
        raise NotFound("not_found", _("There are no service terms."))
    return terms


# --- price --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Quote:
    user_type: UserType
    minutes: int
    setup_fee_fen: int
    hourly_rate_fen: int

    @property
    def hours_fen(self) -> int:
        """Rate × hours, rounded half up to the fen."""
        return (self.hourly_rate_fen * self.minutes + 30) // 60

    @property
    def price_fen(self) -> int:
        return self.setup_fee_fen + self.hours_fen


def quote_price(instrument: Instrument, user_type: UserType, start_at: datetime, end_at: datetime) -> Quote:
    setup, hourly = instrument.fee(user_type)
    return Quote(user_type, int((end_at - start_at).total_seconds() // 60), setup, hourly)


def cancellation_fee(booking: Booking, *, by_platform: bool, now: datetime) -> int:
    """The late-cancellation fee in fen, by the terms fixed when the booking was made: nothing when the
    platform cancels, before the free-cancellation limit, or before the booking is confirmed (nothing is
    charged for a booking the platform has not accepted and paid for)."""
    terms = booking.cancellation_terms
    if by_platform or booking.state != BookingState.CONFIRMED or terms.is_free_at(now):
        return 0
    return terms.late_fee_fen


@dataclass(frozen=True, slots=True)
class CancellationOutcome:
    """What cancelling a booking at a moment does with its money: the fee kept, what goes back to the
    card and by bank transfer, and the voucher's part released."""

    terms: CancellationTerms
    fee_fen: int
    card_fen: int
    transfer_fen: int
    voucher_fen: int
    by_platform: bool

    def mail_context(self) -> dict:
        return {"fee_fen": self.fee_fen, "card_refund_fen": self.card_fen, "transfer_refund_fen": self.transfer_fen,
                "voucher_released_fen": self.voucher_fen, "by_platform": self.by_platform}


def quote_cancellation(booking: Booking, user: User, *, now: datetime) -> CancellationOutcome:
    """What cancel_booking would do if this user cancelled now: the page shows it before the booker
    confirms, the cancellation charges it and its mail tells it."""
    by_platform = booking.booker_id != user.id
    fee = cancellation_fee(booking, by_platform=by_platform, now=now)
    returned = payments.quote_return(booking, fee)
    return CancellationOutcome(terms=booking.cancellation_terms, fee_fen=fee, card_fen=returned.card_fen,
                               transfer_fen=returned.transfer_fen,
                               voucher_fen=booking.voucher_fen, by_platform=by_platform)


def needs_approval(instrument: Instrument, rules: BookingRules, user_type: UserType | None = None) -> bool:
    """Whether the platform approves a booking before it holds: the instrument's rules say so or it is
    shared by appointment, except for the platform's own staff. Without a user type (a visitor), the
    instrument's rule alone."""
    return (rules.requires_approval or instrument.sharing_mode == SharingMode.APPOINTMENT) \
        and user_type != UserType.OWN_STAFF


# --- the rules ----------------------------------------------------------------------------------

def _refuse(code: str, message: str, field: str = "start") -> RuleBroken:
    return RuleBroken(code, message, field=field)


def check_instrument_bookable(instrument: Instrument, user_type: UserType) -> None:
    if instrument.state != InstrumentState.PUBLISHED:
        raise _refuse("instrument_unavailable", _("This instrument cannot be booked now (%(state)s).",
                                                  state=str(INSTRUMENT_STATE_LABELS[instrument.state])),
                      "instrument_id")
    if instrument.sharing_mode == SharingMode.INTERNAL and user_type != UserType.OWN_STAFF:
        raise _refuse("instrument_unavailable", _("This instrument is for its platform's internal use only."),
                      "instrument_id")


def check_time_rules(session: Session, rules: BookingRules, instrument: Instrument, start_at: datetime,
                     end_at: datetime, *, now: datetime) -> None:
    """Every rule of time, in the order a user fixes them; raises RuleBroken with the rule's code."""
    if end_at <= start_at:
        raise _refuse("invalid_range", _("The end must be after the start."), "end")
    minutes = (end_at - start_at).total_seconds() / 60
    local_start = to_local(start_at)
    if minutes % rules.slot_minutes or (local_start.hour * 60 + local_start.minute) % rules.slot_minutes \
            or local_start.second or local_start.microsecond:
        raise _refuse("slot_granularity", _("Bookings start and end on the %(n)s-minute grid.",
                                            n=rules.slot_minutes))
    if minutes < rules.min_minutes:
        raise _refuse("too_short", _("A booking lasts at least %(n)s minutes.", n=rules.min_minutes), "end")
    if minutes > rules.max_minutes:
        raise _refuse("too_long", _("A booking lasts at most %(n)s minutes.", n=rules.max_minutes), "end")
    earliest, latest = rules.bookable_starts(now)
    if start_at < earliest:
        raise _refuse("lead_time", _("Book at least %(n)s minutes ahead.", n=rules.lead_minutes))
    if start_at > latest:
        raise _refuse("beyond_horizon", _("Bookings open %(n)s days ahead.", n=rules.horizon_days))
    holidays = holiday_days(rules, start_at, end_at)
    if holidays:
        raise _refuse("holiday", _("The instrument is closed on the public holiday %(day)s.",
                                   day=holidays[0].isoformat()))
    opened = open_intervals(rules, start_at - timedelta(days=1), end_at + timedelta(days=1))
    inside = start_at in opened and (rules.allows_overnight or
                                     any(a.lower <= start_at and end_at <= a.upper for a in opened))
    if not inside:
        raise _refuse("outside_open_hours", _("The instrument is not open for the whole of this time."))
    block_end = rules.block_end(end_at)
    windows = maintenance_windows(session, instrument.id, start_at, block_end)
    if windows:
        raise _refuse("maintenance", _("The instrument is under maintenance from %(start)s to %(end)s.",
                                       start=f"{to_local(windows[0].start_at):%Y-%m-%d %H:%M}",
                                       end=f"{to_local(windows[0].end_at):%Y-%m-%d %H:%M}"))


def check_qualification(session: Session, rules: BookingRules, user: User, instrument: Instrument,
                        user_type: UserType, *, now: datetime) -> bool:
    """Whether an operator must be present; refuses the unqualified where the rule says so."""
    if user_type == UserType.OWN_STAFF or rules.qualification == QualificationRule.NONE:
        return rules.requires_operator
    qualified = is_qualified(session, user, instrument.id, to_local(now).date())
    if not qualified and rules.qualification == QualificationRule.REQUIRED:
        raise _refuse("not_qualified", _("Only users qualified on this instrument may book it."), "instrument_id")
    return rules.requires_operator or not qualified


def _lock_instrument(session: Session, instrument_id: int) -> Instrument:
    """Serialise bookings of one instrument: a row lock on PostgreSQL (the exclusion constraint is the
    guarantee; the lock turns a race into a clear answer); SQLite holds its write lock already."""
    instrument = session.scalar(select(Instrument).where(Instrument.id == instrument_id)  # with its category's code
                                .options(sa.orm.lazyload("*"), sa.orm.joinedload(Instrument.category).lazyload("*"))
                                .with_for_update(of=Instrument))
    if instrument is None:
        raise NotFound("not_found", _("There is no such instrument."))
    return instrument


def _conflict(session: Session, user: User, instrument_id: int, start: datetime, end: datetime) -> Conflict:
    """The time is taken: by one of the user's own active bookings, or by someone else's."""
    if any(booking.booker_id == user.id for booking in busy_bookings(session, instrument_id, start, end)):
        return Conflict("booking_conflict", _("You already have a booking at this time."))
    return Conflict("booking_conflict", _("This time has just been booked by someone else. Choose another slot."))


def _race_conflict() -> Conflict:
    """A booking committed between the check and the insert; the failed statement leaves nothing to ask whose."""
    return Conflict("booking_conflict", _("This time has just been booked. Choose another slot."))


def _is_overlap_violation(error: IntegrityError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "23P01" or "ex_bookings_no_overlap" in str(error.orig)


# --- one change at a time, and the gateway after commit -------------------------------------------

def lock_booking(session: Session, booking: Booking, *, to: BookingState | None = None) -> Booking:
    """Take the booking's row lock (FOR UPDATE on PostgreSQL; on SQLite the unit of work's write
    transaction serialises writers) and read the booking and its payments afresh under it: a concurrent
    request may have changed them while this one waited. With `to`, a move its state no longer allows
    is refused with 409 booking_state_changed: of racing changes, one is made and the others are told."""
    session.flush()
    session.execute(select(Booking).where(Booking.id == booking.id).with_for_update(of=Booking)
                    .execution_options(populate_existing=True)).scalar_one()
    if to is not None and not can_move(booking, to, BOOKING_TRANSITIONS):
        raise _state_changed(booking, to)
    return booking


def _state_changed(booking: Booking, to: BookingState) -> Conflict:
    return Conflict("booking_state_changed", _(
        "This booking is %(state)s now, so it cannot become %(to)s. Reload the page to see it.",
        state=str(BOOKING_STATE_LABELS[booking.state]), to=str(BOOKING_STATE_LABELS[to])))


@contextmanager
def booking_change(*, actor: Actor, now: datetime) -> Iterator[Session]:
    """The unit of work of a change of bookings (the edge's, in place of core.db.unit_of_work): it
    commits, then the gateway calls the change scheduled (a release, a capture, a refund) are made with
    no transaction open, each answer recorded in a unit of work of its own; what the gateway does not
    answer is left pending for reconciliation."""
    with unit_of_work() as session:
        payments.forget_scheduled(session)
        yield session
        calls = payments.scheduled_calls(session)
    carry_out(calls, actor=actor, now=now)


def carry_out(calls: list[payments.GatewayCall], *, actor: Actor, now: datetime) -> list[payments.Recorded]:
    """Make each call (no transaction is open), then record its answer under the booking's lock: an
    authorisation for an approved booking confirms it, and the calls an answer leads to (the release of
    an authorisation a cancellation overtook) are made next. Stops at the first call left unanswered:
    the gateway is not answering, and reconciliation takes over."""
    queue, recorded = list(calls), []
    while queue:
        call = queue.pop(0)
        answer = payments.call_gateway(call)
        with unit_of_work() as session:
            payments.forget_scheduled(session)
            booking = lock_booking(session, session.get(Booking, call.booking_id))
            result = payments.record_answer(session, booking, call, answer, actor=actor)
            _confirm_if_paid(session, booking, result, actor=actor, now=now)
            queue += payments.scheduled_calls(session)
        recorded.append(result)
        if not result.settled:
            break
    return recorded


def _confirm_if_paid(session: Session, booking: Booking, result: payments.Recorded, *, actor: Actor,
                     now: datetime) -> None:
    if result.authorised and booking.state == BookingState.APPROVED:
        confirm_booking(session, booking, actor=actor, now=now)


def pay_by_card(booking_id: int, *, actor: Actor, user: User, now: datetime, card: str | None) -> None:
    """The booker pays the share by card: the authorisation is recorded and committed, made at the
    gateway with no transaction open, and its answer recorded: authorised → the booking is confirmed
    (once approved). Raises what the booker reads, after everything is committed: card_declined,
    payment_gateway_unavailable (503; the booking is PENDING until reconciled or paid again),
    booking_state_changed (cancelled meanwhile: the authorisation is released), payment_in_progress."""
    with unit_of_work() as session:
        payments.forget_scheduled(session)
        booking = lock_booking(session, get_booking(session, booking_id, user))
        payments.begin_card_payment(session, booking, actor=actor, user=user, now=now)
        calls = payments.scheduled_calls(session, card=card)
    problem = next((r.problem for r in carry_out(calls, actor=actor, now=now) if r.problem), None)
    if problem is not None:
        raise problem


def pay_series_by_card(series_id: int, *, actor: Actor, user: User, now: datetime, card: str) -> None:
    """The booker pays every share of a series still due in one card payment, captured at once: the
    charge is recorded and committed, made with no transaction open, and its answer recorded for each
    booking under its lock (an approved one is confirmed; one cancelled meanwhile gets its share back).
    Raises what the booker reads, after everything is committed (as pay_by_card)."""
    with unit_of_work() as session:
        payments.forget_scheduled(session)
        _series, booked = get_series(session, series_id, user)
        locked = [lock_booking(session, booking) for booking in sorted(booked, key=lambda b: b.id)]
        call = payments.begin_group_charge(session, locked, group=f"series-{series_id}", actor=actor, user=user,
                                           card=card)
    answer = payments.call_gateway(call)
    with unit_of_work() as session:
        payments.forget_scheduled(session)
        for booking_id in sorted({p.booking_id for p in payments.group_payments(session, call.key)}):
            lock_booking(session, session.get(Booking, booking_id))
        parts = payments.group_payments(session, call.key)  # read afresh under the locks
        result = payments.record_charge(session, parts, call, answer, actor=actor)
        for payment in parts:
            if payment.status == PaymentStatus.SUCCEEDED and payment.booking.state == BookingState.APPROVED:
                confirm_booking(session, payment.booking, actor=actor, now=now)
        calls = payments.scheduled_calls(session)
    carry_out(calls, actor=actor, now=now)
    if result.problem is not None:
        raise result.problem


def choose_transfer(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime) -> Payment:
    """The booker pays by bank transfer: the booking waits for the platform to record it."""
    return payments.choose_transfer(session, lock_booking(session, booking), actor=actor, user=user, now=now)


def can_record_transfer(user: User | None, booking: Booking) -> bool:
    """The owning platform's admins record a transfer for a booking still to be paid."""
    return can_manage(user, booking) and payments.awaits_payment(booking)


def record_transfer(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                    amount_fen: int, received_on: date, reference: str) -> Payment:
    """The platform admin records the transfer that arrived: the booking is paid and confirmed."""
    lock_booking(session, booking)
    _ensure(can_manage(user, booking), _("Only the admins of the instrument's platform record transfers."))
    payment = payments.record_transfer(session, booking, actor=actor, user=user, now=now, amount_fen=amount_fen,
                                       received_on=received_on, reference=reference)
    if booking.state == BookingState.APPROVED:
        confirm_booking(session, booking, actor=actor, now=now)
    return payment


def reconcile_payments(*, actor: Actor, now: datetime) -> int:
    """Settle against the gateway every pending action no request is waiting for (an authorisation whose
    answer was lost is found by its metadata, attached to a booking that still waits for it and released
    otherwise), then the intents made for our bookings that no payment holds as its own. Idempotent;
    returns how many it settled."""
    with unit_of_work() as session:
        calls = payments.calls_to_reconcile(session, now=now)
    done = carry_out(calls, actor=actor, now=now)
    if done and not done[-1].settled:
        return sum(result.settled for result in done)  # the gateway does not answer: the next run goes on
    return sum(result.settled for result in done) + _settle_orphans(actor=actor, now=now)


def _settle_orphans(*, actor: Actor, now: datetime) -> int:
    """Open intents for our bookings that no payment holds (payments.sort_orphans): an authorisation whose
    payment never committed is recorded and attached to a booking still waiting for it (confirmed once
    approved) or released; the others are released."""
    intents = payments.open_intents(now=now)
    if not intents:
        return 0
    with unit_of_work() as session:
        tagged = session.scalars(select(Booking).where(Booking.id.in_(payments.tagged_booking_ids(intents))))
        release, record = payments.sort_orphans(list(tagged), intents)
    calls: list[payments.GatewayCall] = []
    for intent in record:
        with unit_of_work() as session:
            payments.forget_scheduled(session)
            booking = lock_booking(session, session.get(Booking, int(intent["metadata"]["booking_id"])))
            if not any(p.idempotency_key == intent["metadata"]["idempotency_key"] for p in booking.payments):
                result = payments.record_unrecorded(session, booking, intent, actor=actor)
                _confirm_if_paid(session, booking, result, actor=actor, now=now)
            calls += payments.scheduled_calls(session)
    carry_out(calls, actor=actor, now=now)
    return len(record) + payments.release_orphans(release, actor=actor)


# --- booking ------------------------------------------------------------------------------------

def book_instrument(session: Session, *, actor: Actor, user: User, instrument_id: int, start_at: datetime,
                    end_at: datetime, now: datetime, terms_id: int | None = None, purpose: str = "",
                    series: BookingSeries | None = None, voucher_id: int | None = None) -> Booking:
    """Book a slot under the instrument's rules. terms_id is the version of the service terms the
    user accepted; it must be the current one. With a voucher, its part of the price is held from now
    (so the share the enterprise sees and pays stays true) until the booking completes or ends.
    Raises RuleBroken (a rule's code) or Conflict."""
    instrument = _lock_instrument(session, instrument_id)
    user_type, enterprise = classify_booker(session, user, instrument)
    check_instrument_bookable(instrument, user_type)
    rules = effective_rules(session, instrument)
    check_time_rules(session, rules, instrument, start_at, end_at, now=now)
    needs_operator = check_qualification(session, rules, user, instrument, user_type, now=now)
    terms = current_terms(session, instrument.platform_id)
    if terms_id is not None and terms_id != terms.id:
        raise _refuse("terms_changed", _("The service terms have changed; read and accept the current ones."),
                      "accept_terms")
    block_end_at = rules.block_end(end_at)
    if is_taken(session, instrument.id, start_at, block_end_at):
        raise _conflict(session, user, instrument.id, start_at, block_end_at)
    quote = quote_price(instrument, user_type, start_at, end_at)
    part = None if voucher_id is None else vouchers.quote_voucher_part(
        session, voucher_id, enterprise_id=enterprise.id if enterprise else None, platform_id=instrument.platform_id,
        category_code=instrument.category.code, price_fen=quote.price_fen, now=now)
    payable = quote.price_fen if part is None else part.enterprise_pays_fen
    booking = Booking(instrument=instrument, booker=user, enterprise_id=enterprise.id if enterprise else None,
                      series=series, state=BookingState.REQUESTED, start_at=start_at, end_at=end_at,
                      block_end_at=block_end_at, purpose=purpose, user_type=user_type, needs_operator=needs_operator,
                      terms=terms, setup_fee_fen=quote.setup_fee_fen, hourly_rate_fen=quote.hourly_rate_fen,
                      price_fen=quote.price_fen, voucher_id=voucher_id, voucher_fen=part.amount_fen if part else 0,
                      payable_fen=payable, sequence=0)
    booking.fix_cancellation_terms(rules.cancellation_terms(start_at, price_fen=quote.price_fen, payable_fen=payable,
                                                            voucher_fen=booking.voucher_fen))
    payments.sync_payment_state(booking)
    requested = booking.audit_view()
    approval = needs_approval(instrument, rules, user_type)
    # Without approval the rule approves at once, and with nothing to pay the booking is confirmed: it is
    # written in the state it ends in (one INSERT, no UPDATE of a row just written), each step audited.
    rule, steps = Actor.system("rule:no_approval_needed"), []
    if not approval:
        steps.append(_advance(booking, BookingState.APPROVED, actor=rule, now=now))
        if booking.payable_fen == 0:
            steps.append(_advance(booking, BookingState.CONFIRMED, actor=rule, now=now))
    session.add(booking)
    try:  # no savepoint: a conflict ends the request's transaction (callers that go on hold one of their own)
        session.flush()
    except IntegrityError as error:
        if _is_overlap_violation(error):
            raise _race_conflict() from None
        raise
    if part is not None:  # before the audit entries are added: they are written with the hold's in one batch
        vouchers.hold_for_booking(session, part, vouchers.BookedService(
            booking_id=booking.id, platform_id=instrument.platform_id, instrument_name_zh=instrument.name_zh,
            instrument_name_en=instrument.name_en, asset_number=instrument.asset_number,
            category_code=instrument.category.code, start_at=start_at, end_at=end_at, price_fen=quote.price_fen),
            actor=actor, now=now)
    record_audit(session, actor, "booking.requested", booking, after=requested)
    for action, before, after in steps:
        record_audit(session, rule, action, booking, before=before, after=after)
    _take_own_offers(session, booking, actor=actor)
    if approval:
        _notify_platform(session, booking, "booking_requested")
    # confirmed at once: the confirmation is the only mail
    _notify(session, booking, "booking_confirmed" if booking.state == BookingState.CONFIRMED else "booking_requested")
    return booking


SKIP_KINDS = ("conflict", "holiday", "maintenance", "rule")  # why a week of a series is not booked


def skip_kind(code: str) -> str:
    """The kind of a refusal that skips a week: taken by another booking, a public holiday, maintenance,
    or another booking rule (lead time, horizon, open hours…)."""
    return {"booking_conflict": "conflict", "holiday": "holiday", "maintenance": "maintenance"}.get(code, "rule")


def _take_own_offers(session: Session, booking: Booking, *, actor: Actor) -> list[WaitlistEntry]:
    """The booker's open waitlist offers that this booking meets are taken, by the booker: they end as
    booked (with this booking), so they are neither accepted twice nor passed on as a free slot."""
    offers = session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.instrument_id == booking.instrument_id, WaitlistEntry.user_id == booking.booker_id,
        WaitlistEntry.state == WaitlistState.OFFERED, WaitlistEntry.start_at < booking.block_end_at,
        WaitlistEntry.end_at > booking.start_at).order_by(WaitlistEntry.id).with_for_update(of=WaitlistEntry)).all()
    for entry in offers:
        move(entry, WaitlistState.BOOKED, WAITLIST_TRANSITIONS, WAITLIST_STATE_LABELS)
        entry.booking_id = booking.id
        session.flush()
        record_audit(session, actor, "waitlist_entry.booked", entry, before={"state": WaitlistState.OFFERED.value},
                     after={"state": entry.state.value, "booking_id": booking.id})
    return offers


def book_series(session: Session, *, actor: Actor, user: User, instrument_id: int, start_at: datetime,
                end_at: datetime, weeks: int, now: datetime, terms_id: int | None = None, purpose: str = "",
                voucher_id: int | None = None, expected: list[datetime] | None = None
                ) -> tuple[BookingSeries, list[Booking], list[tuple[datetime, RuleBroken | Conflict]]]:
    """Book the same slot every week, `weeks` times: every occurrence that is free and within the rules
    is booked; the others are listed (with the reason) and kept as the series' skipped dates. A voucher
    pays for single bookings only. With `expected` (the starts a preview showed), a series that would
    book other weeks now is refused with 409 series_changed and books nothing."""
    if voucher_id is not None:
        raise RuleBroken("voucher_single_booking", _("A voucher pays for single bookings, not weekly series."),
                         field="voucher_id")
    if not 2 <= weeks <= MAX_SERIES_WEEKS:
        raise RuleBroken("invalid_recurrence", _("A weekly series has 2 to %(n)s occurrences.", n=MAX_SERIES_WEEKS),
                         field="weeks")
    series = BookingSeries(instrument_id=instrument_id, booker_id=user.id, first_start_at=start_at,
                           duration_minutes=int((end_at - start_at).total_seconds() // 60), count=weeks, skipped=[])
    session.add(series)
    session.flush()
    booked, skipped = [], []
    for week in range(weeks):
        shift = timedelta(weeks=week)  # the same wall-clock time: Asia/Shanghai keeps no daylight saving
        try:
            with session.begin_nested():
                booked.append(book_instrument(session, actor=actor, user=user, instrument_id=instrument_id,
                                              start_at=start_at + shift, end_at=end_at + shift, now=now,
                                              terms_id=terms_id, purpose=purpose, series=series))
        except (RuleBroken, Conflict) as refusal:
            if week == 0 and isinstance(refusal, RuleBroken) and refusal.field == "instrument_id":
                raise  # nothing of the series can be booked
            skipped.append((start_at + shift, refusal))
    series.skipped = [when.isoformat() for when, _refusal in skipped]
    series.skip_codes = {when.isoformat(): refusal.code for when, refusal in skipped}
    if not booked:
        raise skipped[0][1]
    if expected is not None and [b.start_at for b in booked] != expected:
        raise Conflict("series_changed", _("The weeks that can be booked have changed since you looked: check "
                                           "the dates again before you confirm."))
    record_audit(session, actor, "booking_series.created", series,
                 after={"weeks": weeks, "booked": [b.id for b in booked], "skipped": series.skipped})
    return series, booked, skipped


@dataclass(frozen=True, slots=True)
class SeriesOccurrence:
    start_at: datetime
    end_at: datetime
    price_fen: int
    voucher_fen: int
    payable_fen: int


@dataclass(frozen=True, slots=True)
class SeriesSkip:
    start_at: datetime
    code: str
    kind: str  # one of SKIP_KINDS
    message: str


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    """What book_series would book now, and what it would skip and why."""

    booked: list[SeriesOccurrence]
    skipped: list[SeriesSkip]
    needs_approval: bool

    @property
    def price_fen(self) -> int:
        return sum(o.price_fen for o in self.booked)

    @property
    def voucher_fen(self) -> int:
        return sum(o.voucher_fen for o in self.booked)

    @property
    def payable_fen(self) -> int:
        return sum(o.payable_fen for o in self.booked)


def preview_series(session: Session, **series_args) -> SeriesPlan:
    """The series book_series(**series_args) would make now, made and rolled back: the preview is the
    booking itself (every rule, conflict and price), and leaves nothing behind. Raises what book_series
    raises."""
    savepoint = session.begin_nested()
    try:
        _series, booked, skipped = book_series(session, **series_args)
        plan = SeriesPlan(
            booked=[SeriesOccurrence(b.start_at, b.end_at, b.price_fen, b.voucher_fen, b.payable_fen) for b in booked],
            skipped=[SeriesSkip(when, refusal.code, skip_kind(refusal.code), refusal.message)
                     for when, refusal in skipped],
            needs_approval=any(b.state == BookingState.REQUESTED for b in booked))
    finally:
        savepoint.rollback()
    return plan


def get_series(session: Session, series_id: int, user: User | None) -> tuple[BookingSeries, list[Booking]]:
    """A series and its bookings, for those who may see its bookings (its booker, the platform, the bureau)."""
    series = session.get(BookingSeries, series_id)
    booked = list(session.scalars(select(Booking).where(Booking.series_id == series_id).order_by(Booking.start_at))) \
        if series is not None else []
    if not booked or not can_see(user, booked[0]):
        raise NotFound("not_found", _("There is no such series."))
    return series, booked


def _advance(booking: Booking, to: BookingState, *, actor: Actor, now: datetime, note: str | None = None
             ) -> tuple[str, dict, dict]:
    """Move a booking on (approved, rejected, confirmed), in memory; returns its audit entry's action,
    before and after."""
    before = booking.state.value
    move(booking, to, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
    booking.sequence += 1
    if to in (BookingState.APPROVED, BookingState.REJECTED):
        booking.decided_by_id, booking.decided_at, booking.decision_note = actor.user_id, now, note
    if to == BookingState.CONFIRMED:
        booking.confirmed_at = now
    return f"booking.{to.value}", {"state": before}, booking.audit_view() | ({"note": note} if note else {})


def _decide(session: Session, booking: Booking, to: BookingState, *, actor: Actor, now: datetime,
            note: str | None = None) -> None:
    action, before, after = _advance(booking, to, actor=actor, now=now, note=note)
    record_audit(session, actor, action, booking, before=before, after=after)
    if to == BookingState.REJECTED:
        _give_back(session, booking, actor=actor, now=now)
    # paid for (or nothing to pay) while waiting for approval: confirmed on approval
    if to == BookingState.APPROVED and (booking.payable_fen == 0 or booking.payment_state in (
            PaymentState.AUTHORISED, PaymentState.PAID)):
        confirm_booking(session, booking, actor=actor, now=now)


def _give_back(session: Session, booking: Booking, *, actor: Actor, now: datetime) -> None:
    """A booking that ended unserved: any authorisation or payment goes back, and the voucher's hold."""
    if booking.payments:
        payments.settle_cancellation(session, booking, fee_fen=0, actor=actor, now=now)
    vouchers.release_for_booking(session, booking_id=booking.id, actor=actor, now=now)


def approve_booking(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime) -> Booking:
    lock_booking(session, booking, to=BookingState.APPROVED)
    _ensure(can_manage(user, booking), _("Only the admins of the instrument's platform approve its bookings."))
    _decide(session, booking, BookingState.APPROVED, actor=actor, now=now)
    _notify(session, booking, "booking_approved")
    return booking


def reject_booking(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                   reason: str) -> Booking:
    lock_booking(session, booking, to=BookingState.REJECTED)
    _ensure(can_manage(user, booking), _("Only the admins of the instrument's platform reject its bookings."))
    if not reason.strip():
        raise RuleBroken("reason_required", _("Give the booker a reason."), field="reason")
    _decide(session, booking, BookingState.REJECTED, actor=actor, now=now, note=reason.strip())
    _notify(session, booking, "booking_rejected")
    return booking


def confirm_booking(session: Session, booking: Booking, *, actor: Actor, now: datetime) -> Booking:
    """Approved and paid for (authorised, transferred, or nothing due): the slot is the booker's. The
    caller holds the booking's lock."""
    action, before, after = _advance(booking, BookingState.CONFIRMED, actor=actor, now=now)
    record_audit(session, actor, action, booking, before=before, after=after)
    _notify(session, booking, "booking_confirmed")
    return booking


class CheckInTiming(StrEnum):
    EARLY = "early"  # within the window before the start: the operator confirms
    ON_TIME = "on_time"  # from the start to the window after it
    LATE = "late"  # later than the window after the start, before the end: the operator confirms


def check_in_timing(booking: Booking, rules: BookingRules, *, now: datetime) -> CheckInTiming | None:
    """Where `now` falls for the booking's check-in: None outside [start − the window, end)."""
    window = rules.check_in_window
    if not booking.start_at - window <= now < booking.end_at:
        return None
    if now < booking.start_at:
        return CheckInTiming.EARLY
    return CheckInTiming.LATE if now > booking.start_at + window else CheckInTiming.ON_TIME


def _span(booking: Booking) -> str:
    return f"{to_local(booking.start_at):%H:%M}–{to_local(booking.end_at):%H:%M}"


def slot_holder(session: Session, booking: Booking, now: datetime) -> Booking | None:
    """Another active booking of the instrument whose slot holds the moment `now`."""
    return session.scalar(select(Booking).where(
        Booking.instrument_id == booking.instrument_id, Booking.id != booking.id,
        Booking.state.in_(ACTIVE_BOOKING_STATES), Booking.start_at <= now, Booking.end_at > now).limit(1))


def check_in(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
             confirm: bool = False) -> Booking:
    """Check-in opens the check-in window (a booking rule) before the booking's own start and closes at
    its end, never at a moment another active booking of the instrument holds: the use recorded never
    starts before start − the window, nor in another booking's time. Before the start, or later than the
    window after it, the operator confirms (confirm=True; else check_in_unconfirmed, with the timing in
    `details`)."""
    lock_booking(session, booking, to=BookingState.IN_PROGRESS)
    _ensure(can_operate(user, booking), _("Only the platform's operators check users in."))
    rules = effective_rules(session, booking.instrument_id)
    timing = check_in_timing(booking, rules, now=now)
    if timing is None:
        raise RuleBroken("check_in_time", _(
            "Check-in for this booking (%(span)s) opens at %(opens)s, %(n)s minutes before its start, and closes "
            "at its end.", span=_span(booking), opens=f"{to_local(booking.start_at - rules.check_in_window):%H:%M}",
            n=rules.check_in_window_minutes))
    holder = slot_holder(session, booking, now)
    if holder is not None:
        raise RuleBroken("check_in_other_booking", _(
            "It is another booking's time now (%(other)s, booking %(id)s); this booking (%(span)s) can be checked "
            "in once that one's time is over.", other=_span(holder), id=holder.id, span=_span(booking)))
    minutes = abs(int((now - booking.start_at).total_seconds() // 60))
    if timing != CheckInTiming.ON_TIME and not confirm:
        message = _("This booking starts at %(start)s: checking in %(n)s minutes early. Confirm the check-in.",
                    start=f"{to_local(booking.start_at):%H:%M}", n=minutes) if timing == CheckInTiming.EARLY else \
            _("This booking started at %(start)s: checking in %(n)s minutes late. Confirm the check-in.",
              start=f"{to_local(booking.start_at):%H:%M}", n=minutes)
        raise RuleBroken("check_in_unconfirmed", message, field="confirm", details={"timing": timing.value})
    before = booking.state.value
    move(booking, BookingState.IN_PROGRESS, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
    booking.checked_in_at, booking.operator_id = now, user.id
    booking.sequence += 1
    session.flush()
    record_audit(session, actor, "booking.in_progress", booking, before={"state": before},
                 after={"checked_in_at": now.isoformat(), "timing": timing.value, "confirmed": confirm})
    signals.checked_in.send(booking, session=session, at=booking.checked_in_at)
    return booking


def final_price(booking: Booking, rules: BookingRules) -> int:
    """On the actual time, rounded up to the slot and at least the minimum duration."""
    seconds = (booking.checked_out_at - booking.checked_in_at).total_seconds()
    slots = -(-int(seconds) // (rules.slot_minutes * 60))
    minutes = max(slots * rules.slot_minutes, rules.min_minutes)
    return Quote(booking.user_type, minutes, booking.setup_fee_fen, booking.hourly_rate_fen).price_fen


def check_out(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime) -> Booking:
    """Completed: the final price on the actual time is captured (or the difference charged)."""
    lock_booking(session, booking, to=BookingState.COMPLETED)
    _ensure(can_operate(user, booking), _("Only the platform's operators check users out."))
    _complete(session, booking, actor=actor, at=now, now=now)
    signals.checked_out.send(booking, session=session, at=booking.checked_out_at)
    return booking


def start_use(session: Session, booking: Booking, *, at: datetime, actor: Actor) -> bool:
    """A device reports use in a confirmed booking's time: the booking is checked in at the use's start,
    never before the check-in window opens (as an operator's check-in). False when it is not confirmed."""
    lock_booking(session, booking)
    if booking.state != BookingState.CONFIRMED:
        return False
    window = effective_rules(session, booking.instrument_id).check_in_window
    move(booking, BookingState.IN_PROGRESS, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
    booking.checked_in_at = max(at, booking.start_at - window)
    booking.sequence += 1
    session.flush()
    record_audit(session, actor, "booking.in_progress", booking, before={"state": BookingState.CONFIRMED.value},
                 after={"checked_in_at": booking.checked_in_at.isoformat(), "source": "device"})
    return True


def end_use(session: Session, booking: Booking, *, at: datetime, actor: Actor, now: datetime) -> bool:
    """The device's use ended: the booking in progress is completed on the actual time, as a check-out.
    False when it is not in progress."""
    lock_booking(session, booking)
    if booking.state != BookingState.IN_PROGRESS:
        return False
    _complete(session, booking, actor=actor, at=max(at, booking.checked_in_at), now=now)
    return True


def _complete(session: Session, booking: Booking, *, actor: Actor, at: datetime, now: datetime) -> None:
    """The booking in progress ends at `at`: priced on its actual time, the voucher part consumed, the
    enterprise's part settled. The caller holds the booking's lock."""
    before = booking.state.value
    move(booking, BookingState.COMPLETED, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
    booking.checked_out_at = at
    booking.final_price_fen = final_price(booking, effective_rules(session, booking.instrument_id))
    booking.sequence += 1
    final_payable = booking.final_price_fen
    if booking.voucher_id is not None:
        booking.final_voucher_fen = vouchers.consume_for_booking(
            session, booking_id=booking.id, actor=actor, now=now, final_price_fen=booking.final_price_fen,
            checked_in_at=booking.checked_in_at, checked_out_at=booking.checked_out_at)
        if not vouchers.pays_in_full(session, booking.voucher_id):
            final_payable -= booking.final_voucher_fen
    session.flush()
    record_audit(session, actor, "booking.completed", booking, before={"state": before}, after=booking.audit_view())
    if booking.payable_fen or final_payable:
        payments.settle_completion(session, booking, final_payable_fen=final_payable, actor=actor, now=now)


def cancel_booking(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                   reason: str = "", expected_fee_fen: int | None = None) -> int:
    """Cancel by the booker or the platform, by the terms fixed at booking (quote_cancellation); returns
    the fee in fen. With expected_fee_fen (the fee the booker was shown), a different fee refuses with 409
    cancellation_fee_changed and nothing is cancelled."""
    lock_booking(session, booking, to=BookingState.CANCELLED)
    if not is_cancellable(booking):
        raise _state_changed(booking, BookingState.CANCELLED)
    _ensure(booking.booker_id == user.id or can_manage(user, booking),
            _("Only the booker and the platform's admins cancel a booking."))
    outcome = quote_cancellation(booking, user, now=now)
    _ensure_fee_as_shown(outcome.fee_fen, expected_fee_fen)
    by_platform, fee = outcome.by_platform, outcome.fee_fen
    before = booking.state.value
    move(booking, BookingState.CANCELLED, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
    booking.cancelled_at, booking.cancelled_by_id = now, user.id
    booking.cancel_reason = reason.strip()[:500] or None
    booking.cancellation_fee_fen = fee
    booking.sequence += 1
    session.flush()
    record_audit(session, actor, "booking.cancelled", booking, before={"state": before},
                 after=booking.audit_view() | {"by_platform": by_platform})
    payments.settle_cancellation(session, booking, fee_fen=fee, actor=actor, now=now)
    vouchers.release_for_booking(session, booking_id=booking.id, actor=actor, now=now)
    _notify(session, booking, "booking_cancelled", outcome.mail_context())
    if by_platform is False:
        _notify_platform(session, booking, "booking_cancelled", outcome.mail_context())
    return fee


def _ensure_fee_as_shown(fee_fen: int, expected_fee_fen: int | None) -> None:
    if expected_fee_fen is not None and fee_fen != expected_fee_fen:
        raise Conflict("cancellation_fee_changed", _(
            "Cancelling now costs %(fee)s, not %(shown)s as shown before: nothing was cancelled. Check the amounts "
            "and confirm again.", fee=format_yuan(fee_fen), shown=format_yuan(expected_fee_fen)))


def cancel_series(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                  reason: str = "", expected_fee_fen: int | None = None) -> list[Booking]:
    """Cancel this occurrence and every later one of its series that can still be cancelled; with
    expected_fee_fen, at that total fee or not at all."""
    if booking.series_id is None:
        raise RuleBroken("not_a_series", _("This booking is not part of a series."))
    cancelled = list_series_rest(session, booking, user)
    fees = [cancel_booking(session, occurrence, actor=actor, user=user, now=now, reason=reason)
            for occurrence in cancelled]
    _ensure_fee_as_shown(sum(fees), expected_fee_fen)
    return cancelled


# --- jobs ---------------------------------------------------------------------------------------

def expire_bookings(session: Session, *, now: datetime) -> int:
    """Requested bookings never approved, and approved ones never paid, expire at Booking.expires_at."""
    due = session.scalars(select(Booking).where(
        Booking.state.in_((BookingState.REQUESTED, BookingState.APPROVED)), Booking.expires_at <= now,
        Booking.payment_state != PaymentState.PENDING)).all()
    actor, expired = Actor.system("job:expire_bookings"), 0
    for booking in due:
        lock_booking(session, booking)
        if not can_move(booking, BookingState.EXPIRED, BOOKING_TRANSITIONS) \
                or booking.payment_state == PaymentState.PENDING:
            continue  # approved, paid or being paid meanwhile
        expired += 1
        before = booking.state.value
        move(booking, BookingState.EXPIRED, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
        booking.sequence += 1
        record_audit(session, actor, "booking.expired", booking, before={"state": before},
                     after={"state": booking.state.value})
        _give_back(session, booking, actor=actor, now=now)
    session.flush()
    return expired


def mark_no_shows(session: Session, *, now: datetime) -> int:
    """Confirmed bookings with no check-in within the grace period: no-show, with its fee. Never while
    a check-in would still be on time (the check-in window after the start), whatever the grace period."""
    candidates = session.scalars(select(Booking).where(Booking.state == BookingState.CONFIRMED,
                                                       Booking.start_at <= now)).all()
    actor, marked = Actor.system("job:mark_no_shows"), 0
    for booking in candidates:
        rules = effective_rules(session, booking.instrument_id)
        if now < booking.start_at + timedelta(minutes=rules.no_show_grace_minutes) \
                or now <= no_show_opens_at(booking, rules):
            continue
        if lock_booking(session, booking).state != BookingState.CONFIRMED:
            continue  # checked in or cancelled meanwhile
        mark_no_show(session, booking, rules=rules, actor=actor, now=now)
        marked += 1
    return marked


def mark_no_show(session: Session, booking: Booking, *, rules: BookingRules, actor: Actor, now: datetime,
                 reason: str | None = None) -> None:
    """A confirmed booking nobody checked in to: no-show, its fee (by the rules) kept from what was paid
    and the rest given back, a voucher's hold released (fees are never paid by a voucher)."""
    lock_booking(session, booking, to=BookingState.NO_SHOW)
    move(booking, BookingState.NO_SHOW, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
    booking.cancellation_fee_fen = booking.no_show_fee_fen
    booking.sequence += 1
    session.flush()
    record_audit(session, actor, "booking.no_show", booking, before={"state": "confirmed"},
                 after=booking.audit_view() | ({"reason": reason} if reason else {}))
    payments.settle_cancellation(session, booking, fee_fen=booking.cancellation_fee_fen, actor=actor, now=now)
    vouchers.release_for_booking(session, booking_id=booking.id, actor=actor, now=now)


def _reason(text: str | None) -> str:
    reason = (text or "").strip()[:500]
    if not reason:
        raise RuleBroken("reason_required", _("Give a reason."), field="reason")
    return reason


def no_show_opens_at(booking: Booking, rules: BookingRules) -> datetime:
    """An operator may mark a booking a no-show once the check-in window after its start has passed."""
    return booking.start_at + rules.check_in_window


def report_no_show(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                   reason: str) -> Booking:
    """The operator marks a confirmed booking nobody came to a no-show, with a reason, later than the
    check-in window after its start: as the job marks it (mark_no_show), without waiting for the job's
    grace period."""
    lock_booking(session, booking, to=BookingState.NO_SHOW)
    _ensure(can_operate(user, booking), _("Only the platform's operators mark no-shows."))
    reason = _reason(reason)
    rules = effective_rules(session, booking.instrument_id)
    if now <= no_show_opens_at(booking, rules):
        raise RuleBroken("no_show_too_early", _(
            "A no-show may be marked after %(time)s, %(n)s minutes after the start, when nobody has checked in.",
            time=f"{to_local(no_show_opens_at(booking, rules)):%H:%M}", n=rules.check_in_window_minutes),
            field="reason")
    mark_no_show(session, booking, rules=rules, actor=actor, now=now, reason=reason)
    return booking


def undo_no_show(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                 reason: str) -> int:
    """The operator undoes a no-show (the job's or an operator's), with a reason: the booking is cancelled
    without fee and its no-show fee given back in full (a card's capture refunded at the gateway after
    commit, a transfer's refund recorded as due). It is not confirmed again: its time was given up when
    it became a no-show and may be booked by someone else since. The voucher's hold, released at the
    no-show, stays released, as at any cancellation. Returns the fee refunded, in fen."""
    lock_booking(session, booking)
    if booking.state != BookingState.NO_SHOW:
        raise Conflict("booking_state_changed", _(
            "This booking is %(state)s now, not a no-show. Reload the page to see it.",
            state=str(BOOKING_STATE_LABELS[booking.state])))
    _ensure(can_operate(user, booking), _("Only the platform's operators undo no-shows."))
    reason = _reason(reason)
    if booking.payment_state == PaymentState.PENDING:
        raise Conflict("payment_in_progress", _(
            "The no-show fee is still being settled with the payment service; try again in a few minutes."))
    fee, before = booking.cancellation_fee_fen, booking.audit_view()
    move(booking, BookingState.CANCELLED, BOOKING_TRANSITIONS, BOOKING_STATE_LABELS)
    booking.cancelled_at, booking.cancelled_by_id, booking.cancel_reason = now, user.id, reason
    booking.cancellation_fee_fen = 0
    booking.sequence += 1
    session.flush()
    record_audit(session, actor, "booking.no_show_undone", booking, before=before,
                 after=booking.audit_view() | {"refunded_fee_fen": fee, "reason": reason})
    payments.settle_cancellation(session, booking, fee_fen=0, actor=actor, now=now)
    vouchers.release_for_booking(session, booking_id=booking.id, actor=actor, now=now)
    _notify(session, booking, "booking_cancelled")
    return fee


def send_reminders(session: Session, *, now: datetime) -> int:
    """The day before: one reminder per confirmed booking starting within the next 24 hours."""
    due = session.scalars(select(Booking).where(
        Booking.state == BookingState.CONFIRMED, Booking.reminder_sent_at.is_(None),
        Booking.start_at > now, Booking.start_at <= now + timedelta(hours=24))).all()
    for booking in due:
        booking.reminder_sent_at = now
        _notify(session, booking, "booking_reminder")
    session.flush()
    return len(due)


# --- lists --------------------------------------------------------------------------------------

BOOKING_LIST_WHEN = ("upcoming", "past", "all")


def list_user_bookings(session: Session, user: User, *, now: datetime, when: str = "upcoming",
                       state: BookingState | None = None, limit: int = 200) -> list[Booking]:
    """A user's own bookings: upcoming (not yet ended, soonest first), past (latest first) or all of
    them (latest start first)."""
    query = select(Booking).where(Booking.booker_id == user.id)
    if when == "past":
        query = query.where(Booking.end_at <= now).order_by(Booking.start_at.desc())
    elif when == "all":
        query = query.order_by(Booking.start_at.desc())
    else:
        query = query.where(Booking.end_at > now).order_by(Booking.start_at)
    if state is not None:
        query = query.where(Booking.state == state)
    return list(session.scalars(query.limit(limit)))


def list_instrument_bookings(session: Session, instrument_id: int, start: datetime, end: datetime,
                             *, states: tuple[BookingState, ...] | None = None,
                             booker_id: int | None = None) -> list[Booking]:
    """The instrument's bookings that meet [start, end), in `states`, of one booker when given."""
    query = select(Booking).where(Booking.instrument_id == instrument_id, Booking.start_at < end,
                                  Booking.end_at > start).order_by(Booking.start_at)
    if states:
        query = query.where(Booking.state.in_(states))
    if booker_id is not None:
        query = query.where(Booking.booker_id == booker_id)
    return list(session.scalars(query))


def day_sheet(session: Session, platform_id: int, start: datetime, end: datetime) -> list[Booking]:
    """Who comes when to a platform's instruments in [start, end): the active and finished bookings."""
    return list(session.scalars(
        select(Booking).join(Booking.instrument).where(
            Instrument.platform_id == platform_id, Booking.start_at < end, Booking.end_at > start,
            Booking.state.in_((*ACTIVE_BOOKING_STATES, BookingState.COMPLETED, BookingState.NO_SHOW)))
        .order_by(Booking.start_at, Instrument.name_zh)))


def pending_approvals(session: Session, platform_ids: set[int]) -> list[Booking]:
    return list(session.scalars(
        select(Booking).join(Booking.instrument).where(Instrument.platform_id.in_(platform_ids),
                                                       Booking.state == BookingState.REQUESTED)
        .order_by(Booking.start_at))) if platform_ids else []


# --- mail ---------------------------------------------------------------------------------------

def mail_context(booking: Booking) -> dict:
    local_start, local_end = to_local(booking.start_at), to_local(booking.end_at)
    instrument = booking.instrument
    return {"booking_id": booking.id, "instrument_name": instrument.name_zh,
            "instrument_name_en": instrument.name_en or instrument.name_zh,
            "location": " ".join(part for part in (instrument.platform.name, instrument.platform.address,
                                                    f"{instrument.building} {instrument.room}".strip()) if part),
            "start": f"{local_start:%Y-%m-%d %H:%M}", "end": f"{local_end:%Y-%m-%d %H:%M}",
            "state": booking.state.value, "payable_fen": booking.payable_fen,
            "cancellation_fee_fen": booking.cancellation_fee_fen, "note": booking.decision_note or "",
            "cancel_reason": booking.cancel_reason or "",
            "booker_name": booking.booker.name,
            "free_cancel_until": f"{to_local(booking.free_cancel_until):%Y-%m-%d %H:%M}",
            "late_cancel_fee_fen": booking.late_cancel_fee_fen, "no_show_fee_fen": booking.no_show_fee_fen,
            "voucher_fen": booking.voucher_fen}


def _notify(session: Session, booking: Booking, template: str, extra: dict | None = None) -> None:
    """The booker's mail; a confirmation carries the booking as a calendar file to import."""
    booker = booking.booker
    attachments = (_calendar_attachment(session, booking, booker.locale),) if template == "booking_confirmed" else ()
    enqueue_mail(session, to=booker.email, locale=booker.locale, template=template,
                 context=mail_context(booking) | (extra or {}), attachments=attachments)


def _calendar_attachment(session: Session, booking: Booking, locale: str) -> Attachment:
    public_url = current_app.config["PUBLIC_URL"].rstrip("/")
    with force_locale(locale):
        calendar = ics.booking_calendar(session, booking, language=locale,
                                        booking_url=lambda booking_id: f"{public_url}/bookings/{booking_id}")
    return Attachment(filename=f"booking-{booking.id}.ics", subtype="calendar", content=calendar.decode(),
                      params=(("method", "PUBLISH"),))


def _notify_platform(session: Session, booking: Booking, template: str, extra: dict | None = None) -> None:
    """The platform's admins hear of new requests and of cancellations by bookers."""
    admins = session.scalars(select(User).join(RoleGrant).where(
        RoleGrant.role == Role.PLATFORM_ADMIN, RoleGrant.organisation_id == booking.instrument.platform_id,
        User.is_active.is_(True))).all()
    for admin in admins:
        enqueue_mail(session, to=admin.email, locale=admin.locale, template=f"{template}_platform",
                     context=mail_context(booking) | (extra or {}))


def find_overlapping_use(session: Session) -> list[tuple[Booking, Booking]]:
    """Pairs of bookings of one instrument, both holding or having used their time, that overlap (buffers
    included), the earlier-made first: there should be none."""
    first, second = sa.orm.aliased(Booking), sa.orm.aliased(Booking)
    return [tuple(row) for row in session.execute(select(first, second).join(
        second, sa.and_(first.instrument_id == second.instrument_id, first.id < second.id,
                        first.start_at < second.block_end_at, second.start_at < first.block_end_at))
        .where(first.state.in_(USE_STATES), second.state.in_(USE_STATES)).order_by(first.id, second.id))]


# --- for the booker's pages -----------------------------------------------------------------------

def list_series_rest(session: Session, booking: Booking, user: User) -> list[Booking]:
    """This occurrence and the later ones of its series that cancel_series would cancel for this user."""
    if booking.series_id is None:
        return []
    later = session.scalars(select(Booking).where(Booking.series_id == booking.series_id,
                                                  Booking.start_at >= booking.start_at,
                                                  Booking.state.in_(ACTIVE_BOOKING_STATES))
                            .order_by(Booking.start_at)).all()
    return [b for b in later if can_cancel(user, b)]
