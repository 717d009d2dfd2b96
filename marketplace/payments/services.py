"""Payments: the enterprise's share of a booking, authorised by card (a PaymentIntent with
manual capture) or paid by bank transfer (对公转账), captured at completion, cancelled or refunded by the
cancellation policy, and reconciled when the gateway (marketplace/payments/gateway.py) did not answer.

A payment's status moves only along PAYMENT_TRANSITIONS (core.states.move); the booking's payment_state
is derived from its payments in one place (sync_payment_state). This module keeps the payment records
and talks to the gateway; the booking's life, its row lock and the units of work are marketplace/
bookings.py's, which calls this module and is never called back.

The gateway is never called inside a database transaction. What is to be done is recorded first, in
the caller's unit of work: the payment's pending_action ("authorise", "charge", "cancel", "capture" or
"refund") with its idempotency key. After that commits, call_gateway carries it out from a GatewayCall copied out
of the session, with no transaction open; record_answer writes the answer in a new unit of work, under
the booking's lock. An action whose answer never arrived (a timeout, a crash) stays pending: the
reconciliation reads what the gateway did (the intent by its id, or by the booking's metadata when its
creation was never recorded) and settles it.

Every POST to the gateway carries an Idempotency-Key made of the payment's own key (booking, action,
number: booking-7-authorise-1), the call and its attempt. localstripe ignores that header, so the app is
idempotent on its own side too: a call whose answer was lost is settled by first reading what the
gateway did. The app also enforces what localstripe does not: it never captures a cancelled intent (it
reads the intent's status first) and never refunds more than it captured.

Several bookings (a weekly series) may be paid at once: one intent for the sum of their shares, captured
at once (an authorisation would lapse long before the last week, and an intent is captured only once),
and one payment per booking holding its share of it (group_key names the intent). Each booking's
payment then lives as a single booking's captured payment does: a cancellation refunds its share (less
any fee) from the common intent, a completion on a shorter time refunds the difference."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from core.audit import Actor, record_audit
from core.clock import to_local
from core.db import unit_of_work
from core.errors import Conflict, Forbidden, KequipError, RuleBroken
from core.models import User
from core.money import format_yuan
from core.states import move
from marketplace.payments.gateway import GatewayError, StripeClient, gateway
from marketplace.payments.models import (
    PAYMENT_TRANSITIONS,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentState,
    PaymentStatus,
)
from vouchers import services as vouchers

if TYPE_CHECKING:  # booking calls this module and is never called back: the type only
    from marketplace.booking.models import Booking

log = logging.getLogger(__name__)
CURRENCY = "cny"  # amounts in fen, the minor unit of CNY
CANCELLABLE = {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
INTENT_STATUS = {"requires_payment_method": PaymentStatus.REQUIRES_CONFIRMATION,
                 "requires_confirmation": PaymentStatus.REQUIRES_CONFIRMATION,
                 "requires_action": PaymentStatus.REQUIRES_CONFIRMATION,
                 "requires_capture": PaymentStatus.REQUIRES_CAPTURE,
                 "succeeded": PaymentStatus.SUCCEEDED, "canceled": PaymentStatus.CANCELED}
KEY_ACTIONS = {(PaymentMethod.CARD, PaymentPurpose.SHARE): "authorise",
               (PaymentMethod.CARD, PaymentPurpose.DIFFERENCE): "charge-difference",
               (PaymentMethod.TRANSFER, PaymentPurpose.SHARE): "transfer",
               (PaymentMethod.TRANSFER, PaymentPurpose.DIFFERENCE): "transfer-difference"}
SETTLED = {"cancel": "payment.canceled", "capture": "payment.captured", "refund": "payment.refunded"}
ORPHAN_WINDOW = timedelta(days=2)  # reconciliation looks for unrecorded intents of payments this recent
# An action recorded this recently, and not answered "unavailable" since, may still be on its way to the
# gateway (a request waiting for its answer): reconciliation leaves it, and a second payment waits for it.
IN_FLIGHT = timedelta(minutes=1)
SCHEDULED = "scheduled_payments"  # the session's list of payments whose action is to be made after commit
FAULT_EXIT = 70  # the exit status of a process stopped at its FAULT_POINT


class PaymentGatewayUnavailable(KequipError):
    status = 503

    def __init__(self) -> None:
        super().__init__("payment_gateway_unavailable", _(
            "The payment service is not answering; nothing was charged. Your booking is kept: try again in a few "
            "minutes."))


# --- who may ------------------------------------------------------------------------------------

def can_pay(user: User | None, booking: Booking) -> bool:
    """The booker pays a requested or approved booking's share until it is authorised or paid."""
    return user is not None and booking.booker_id == user.id and awaits_payment(booking)


def awaits_payment(booking: Booking) -> bool:
    """A share may be paid as soon as the booking is made: while it waits for approval too (confirmed on
    approval, the authorisation released on rejection or expiry)."""
    return (booking.awaits_confirmation and booking.payable_fen > 0
            and booking.payment_state in (PaymentState.DUE, PaymentState.PENDING))


def ensure_may_pay(user: User, booking: Booking) -> None:
    if booking.booker_id != user.id:
        raise Forbidden("forbidden", _("Only the booker pays for a booking."))
    if not can_pay(user, booking):
        raise RuleBroken("nothing_to_pay", _("This booking has nothing to pay now."))


def expected_transfer(booking: Booking) -> Payment | None:
    """The transfer the booker announced; its key is the note the transfer should carry."""
    return next((p for p in booking.payments if p.status == PaymentStatus.TRANSFER_EXPECTED), None)


# --- the calls, recorded before they are made ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class GatewayCall:
    """A payment's pending action with all that carrying it out needs, copied out of the session: the
    call reads no database row, so it runs with no transaction open."""

    payment_id: int
    booking_id: int
    action: str  # "authorise", "charge" (a group's, captured at once), "cancel", "capture" or "refund"
    attempt: int
    key: str  # the payment's idempotency key
    tags: dict[str, str]  # the intent's metadata: whose it is
    intent_id: str | None
    amount_fen: int  # to authorise, capture or refund
    purpose: PaymentPurpose = PaymentPurpose.SHARE
    card: str | None = None  # authorise: the card (pm_… or card_…) to attach
    confirm: bool = True  # authorise: attach and confirm; False (reconciliation): read what the gateway has
    search: bool = False  # look for an intent made by an unanswered call before making one
    card_of: str | None = None  # a difference: the share's intent, whose card it is charged to
    refund_number: int = 1


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    intent: dict | None = None  # the intent as the last call left it (None: there is none)
    refund: dict | None = None
    error: GatewayError | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What an answer did: whether it settled the action (False: the gateway did not answer, the action
    stays pending), what the person who asked reads (a decline, no answer), and whether an authorisation
    now holds the booking's share."""

    settled: bool = True
    problem: KequipError | None = None
    authorised: bool = False


def _schedule(payment: Payment, action: str | None, amount_fen: int | None = None, *, own_call: bool = True) -> None:
    """The one place a payment's pending action is set (to be made after this unit of work commits: see
    scheduled_calls; own_call=False when one call is made for a group of payments) or cleared (None: done)."""
    payment.pending_action, payment.pending_amount_fen = action, amount_fen
    if action is not None:
        payment.last_error = None
        if own_call:
            sa.orm.object_session(payment).info.setdefault(SCHEDULED, []).append(payment)


def _to(payment: Payment, status: PaymentStatus) -> None:
    """Follow the gateway (or the transfer) to `status` along PAYMENT_TRANSITIONS."""
    if payment.status != status:
        move(payment, status, PAYMENT_TRANSITIONS)


def scheduled_calls(session: Session, *, card: str | None = None) -> list[GatewayCall]:
    """The calls this unit of work scheduled: taken before its commit, made after it (an authorisation
    with the card the booker entered)."""
    payments = dict.fromkeys(session.info.pop(SCHEDULED, []))
    return [_call(payment, card=card if payment.pending_action == "authorise" else None) for payment in payments
            if payment.pending_action is not None]


def forget_scheduled(session: Session) -> None:
    """A unit of work starts with nothing scheduled (what a rolled-back one scheduled is void)."""
    session.info.pop(SCHEDULED, None)


def _call(payment: Payment, *, card: str | None = None, confirm: bool = True, search: bool = False) -> GatewayCall:
    action = payment.pending_action
    amount = payment.pending_amount_fen or payment.amount_fen
    if action == "refund":
        amount = min(amount, payment.captured_fen - payment.refunded_fen)
    card_of = None
    if payment.purpose == PaymentPurpose.DIFFERENCE and payment.intent_id is None:
        card_of = _charged_card(payment.booking).intent_id
    return GatewayCall(payment_id=payment.id, booking_id=payment.booking_id, action=action, attempt=payment.attempt,
                       key=payment.idempotency_key, tags=_tags(payment), intent_id=payment.intent_id,
                       amount_fen=amount, purpose=payment.purpose, card=card, confirm=confirm,
                       search=search or payment.attempt > 0, card_of=card_of,
                       refund_number=len(payment.refund_ids) + 1)


# --- paying -------------------------------------------------------------------------------------

def begin_card_payment(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime) -> Payment:
    """Schedule the card authorisation of the booking's share, made after commit (scheduled_calls): one
    PaymentIntent with manual capture, however often this is called (a double click, a reload, a
    retry); nothing is scheduled when the share is authorised already. The caller holds the booking's
    lock."""
    live = _live_card(booking)
    if live is not None and live.status == PaymentStatus.REQUIRES_CAPTURE:
        return live
    ensure_may_pay(user, booking)
    if any(p.pending_action == "charge" for p in booking.payments):
        raise _payment_in_progress()
    if live is not None and live.pending_action == "authorise":
        if _in_flight(live, now):
            raise _payment_in_progress()
        live.attempt += 1  # its answer never came: a new call, which reads first what the last one did
    _drop_expected_transfer(session, booking, actor=actor)
    payment = live or _new_payment(session, booking, PaymentMethod.CARD, PaymentPurpose.SHARE, booking.payable_fen)
    booking.payment_method = PaymentMethod.CARD
    _schedule(payment, "authorise", payment.amount_fen)
    sync_payment_state(booking)
    session.flush()
    record_audit(session, actor, "payment.started", payment, after=_view(payment))
    return payment


def _payment_in_progress() -> Conflict:
    return Conflict("payment_in_progress", _("Your payment is on its way to the payment service; reload this page "
                                             "in a moment."))


# --- several bookings in one payment (a weekly series) --------------------------------------------

def due_in_group(user: User | None, bookings: list[Booking]) -> list[Booking]:
    """The bookings of a group (a series) whose shares their booker may pay now, at once."""
    return [booking for booking in bookings if can_pay(user, booking) and booking.payment_state == PaymentState.DUE]


def begin_group_charge(session: Session, bookings: list[Booking], *, group: str, actor: Actor, user: User,
                       card: str) -> GatewayCall:
    """Schedule one card charge, captured at once, for the shares still due of `bookings` (a series):
    one payment per booking with its share, all under the key `group` ("series-3") and a number, and
    one call, made after commit, for their sum. Bookings already paid or on their way are left out; a
    share being paid meanwhile makes this wait (payment_in_progress). The caller holds the bookings' locks."""
    if any(p.pending_action for b in bookings for p in b.payments if can_pay(user, b)):
        raise _payment_in_progress()
    due = due_in_group(user, bookings)
    if not due:
        raise RuleBroken("nothing_to_pay", _("This series has nothing to pay now."))
    number = 1 + session.scalar(select(sa.func.count(sa.distinct(Payment.group_key))).where(
        Payment.group_key.like(f"{group}-charge-%")))
    key, parts = f"{group}-charge-{number}", []
    for booking in due:
        _drop_card_attempts(booking)
        _drop_expected_transfer(session, booking, actor=actor)
        payment = _new_payment(session, booking, PaymentMethod.CARD, PaymentPurpose.SHARE, booking.payable_fen)
        payment.group_key = key
        booking.payment_method = PaymentMethod.CARD
        _schedule(payment, "charge", payment.amount_fen, own_call=False)
        sync_payment_state(booking)
        parts.append(payment)
    session.flush()
    for payment in parts:
        record_audit(session, actor, "payment.started", payment, after=_view(payment) | {"group_key": key})
    lead = parts[0]
    return GatewayCall(payment_id=lead.id, booking_id=lead.booking_id, action="charge", attempt=0, key=key,
                       tags=_tags(lead), intent_id=None, amount_fen=sum(p.amount_fen for p in parts), card=card)


def group_payments(session: Session, key: str) -> list[Payment]:
    """The payments of one group, as the database has them now."""
    return list(session.scalars(select(Payment).where(Payment.group_key == key).order_by(Payment.id)
                                .execution_options(populate_existing=True)))


def record_charge(session: Session, parts: list[Payment], call: GatewayCall, answer: GatewayAnswer, *,
                  actor: Actor) -> Recorded:
    """Write what the gateway answered to a charge, for each payment of its group (or the one payment
    reconciliation reads it for), each booking locked by the caller: charged → each payment captured
    its share (and gives it back at once if its booking was cancelled meanwhile); declined or refused →
    failed, nothing charged; no answer → left pending for reconciliation."""
    intent, error = answer.intent, answer.error
    parts = [p for p in parts if p.pending_action == "charge"]  # not settled meanwhile
    if error is not None and error.kind not in ("declined", "invalid"):
        for payment in parts:
            _adopt(payment, intent)
            payment.attempt += 1
            payment.last_error = error.message[:500]
        log.warning("payments %s: charge left pending: %s", [p.id for p in parts], error.message)
        return Recorded(settled=False, problem=PaymentGatewayUnavailable() if call.confirm else None)
    failure = error.message if error is not None else (intent or {}).get("last_payment_error", {}).get("message") \
        if intent is not None and intent.get("last_payment_error") else None
    charged = failure is None and intent is not None and intent["status"] == "succeeded"
    for payment in parts:
        before = _view(payment)
        _adopt(payment, intent)
        _schedule(payment, None)
        if charged:
            _to(payment, PaymentStatus.SUCCEEDED)
            payment.captured_fen = payment.amount_fen
        elif intent is None and error is None:  # reconciliation: the charge never reached the gateway
            _to(payment, PaymentStatus.CANCELED)
        else:
            payment.last_error = (failure or f"intent {intent['status']}")[:500]
            _to(payment, PaymentStatus.FAILED)
        booking = payment.booking
        sync_payment_state(booking)
        session.flush()
        record_audit(session, actor, "payment.captured" if charged else "payment.failed", payment, before=before,
                     after=_view(payment) | {"group_key": payment.group_key})
        if charged and not booking.awaits_confirmation:  # cancelled or expired while it was charged
            _schedule(payment, "refund", payment.captured_fen)
            sync_payment_state(booking)
    if charged or (intent is None and error is None):
        return Recorded(authorised=charged)
    if intent is not None and intent["status"] in ("requires_payment_method", "requires_confirmation") \
            and failure is None and not call.confirm:
        return Recorded()
    return Recorded(problem=RuleBroken("card_declined", _(
        "The card was declined and nothing was charged. Try another card, or pay by bank transfer."), field="card"))


def choose_transfer(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime) -> Payment:
    """Pay by bank transfer: the booking waits, approved, for the platform to record the transfer. The
    caller holds the booking's lock."""
    ensure_may_pay(user, booking)
    expected = expected_transfer(booking)
    if expected is not None:
        return expected
    payment = _new_payment(session, booking, PaymentMethod.TRANSFER, PaymentPurpose.SHARE, booking.payable_fen,
                           status=PaymentStatus.TRANSFER_EXPECTED)
    booking.payment_method = PaymentMethod.TRANSFER
    _drop_card_attempts(booking)  # cancelled at the gateway after commit
    sync_payment_state(booking)
    session.flush()
    record_audit(session, actor, "payment.transfer_chosen", payment, after=_view(payment))
    return payment


def record_transfer(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                    amount_fen: int, received_on: date, reference: str) -> Payment:
    """The transfer that arrived: the booking's share is paid. The caller holds the booking's lock and
    has checked that this user may record it."""
    if not awaits_payment(booking):
        raise RuleBroken("nothing_to_pay", _("This booking is not waiting for a payment."))
    if amount_fen != booking.payable_fen:
        raise RuleBroken("transfer_amount_mismatch", _(
            "The booking's share is %(amount)s; record the transfer when that exact amount has arrived.",
            amount=format_yuan(booking.payable_fen)), field="amount_fen")
    if received_on > to_local(now).date():
        raise RuleBroken("transfer_in_future", _("A transfer cannot arrive in the future."), field="received_on")
    if not reference.strip():
        raise RuleBroken("reference_required", _("Give the bank's reference of the transfer."), field="reference")
    payment = expected_transfer(booking) \
        or _new_payment(session, booking, PaymentMethod.TRANSFER, PaymentPurpose.SHARE, booking.payable_fen,
                        status=PaymentStatus.TRANSFER_EXPECTED)
    before = _view(payment)
    _to(payment, PaymentStatus.TRANSFER_RECEIVED)
    payment.captured_fen = amount_fen
    payment.transfer_received_on, payment.transfer_reference = received_on, reference.strip()[:100]
    payment.recorded_by_id = user.id
    booking.payment_method = PaymentMethod.TRANSFER
    _drop_card_attempts(booking)
    sync_payment_state(booking)
    session.flush()
    record_audit(session, actor, "payment.transfer_received", payment, before=before, after=_view(payment))
    return payment


# --- settling -----------------------------------------------------------------------------------

def settle_cancellation(session: Session, booking: Booking, *, fee_fen: int, actor: Actor, now: datetime) -> None:
    """After a cancellation or a no-show, keep fee_fen (0 to payable) and give the rest back: what is to
    be done at the gateway is scheduled, made after commit, and reconciled if it is not answered."""
    if not 0 <= fee_fen <= booking.payable_fen:
        raise ValueError(f"fee {fee_fen} outside 0..{booking.payable_fen}")
    _keep_only(session, booking, fee_fen, actor=actor)
    sync_payment_state(booking)


def settle_completion(session: Session, booking: Booking, *, final_payable_fen: int, actor: Actor,
                      now: datetime) -> None:
    """At check-out, keep the final amount: captured up to what was authorised; more than that is
    charged by a second intent on the same card, confirmed off-session (or expected as a transfer)."""
    remaining = _keep_only(session, booking, final_payable_fen, actor=actor)
    if remaining > 0:
        by_card = _charged_card(booking) is not None
        extra = _new_payment(session, booking, PaymentMethod.CARD if by_card else PaymentMethod.TRANSFER,
                             PaymentPurpose.DIFFERENCE, remaining,
                             status=PaymentStatus.CREATING if by_card else PaymentStatus.TRANSFER_EXPECTED)
        if by_card:
            _schedule(extra, "capture", remaining)  # created, confirmed off-session, then captured
        record_audit(session, actor, "payment.difference_due", extra, after=_view(extra))
    sync_payment_state(booking)


def _keep_plan(booking: Booking, keep_fen: int) -> tuple[list[tuple[Payment, int, int]], int]:
    """How keep_fen is kept from what the booking's payments hold, in their order: (payment, held, kept)
    for each payment with no action waiting for the gateway, and what is kept beyond what is held."""
    plan = []
    for payment in booking.payments:
        if payment.pending_action is not None:
            continue
        held = payment.amount_fen if payment.status == PaymentStatus.REQUIRES_CAPTURE \
            else payment.captured_fen - payment.refunded_fen
        kept = min(keep_fen, held)
        keep_fen -= kept
        plan.append((payment, held, kept))
    return plan, keep_fen


@dataclass(frozen=True, slots=True)
class Returned:
    """What keeping a fee gives back: to the card (an authorisation released, a capture refunded) and by
    the platform's bank transfer (a transfer received)."""

    card_fen: int
    transfer_fen: int


def quote_return(booking: Booking, keep_fen: int) -> Returned:
    """What settle_cancellation(booking, fee_fen=keep_fen) would give back, and how (nothing is changed)."""
    plan, _beyond = _keep_plan(booking, keep_fen)
    given = {method: sum(held - kept for payment, held, kept in plan if payment.method == method)
             for method in (PaymentMethod.CARD, PaymentMethod.TRANSFER)}
    return Returned(card_fen=given[PaymentMethod.CARD], transfer_fen=given[PaymentMethod.TRANSFER])


@dataclass(frozen=True, slots=True)
class Settled:
    """Where a booking's money ended: charged (captured or received, less refunds), given back to the card
    (released uncharged or refunded) and returned, or to be returned, by the platform's bank transfer."""

    charged_fen: int
    card_returned_fen: int
    transfer_returned_fen: int

    @property
    def returned_fen(self) -> int:
        return self.card_returned_fen + self.transfer_returned_fen


def settled_amounts(booking: Booking) -> Settled:
    payments = booking.payments
    return Settled(charged_fen=sum(p.captured_fen - p.refunded_fen for p in payments),
                   card_returned_fen=sum(p.released_fen + p.refunded_fen for p in payments
                                         if p.method == PaymentMethod.CARD),
                   transfer_returned_fen=sum(p.refunded_fen for p in payments if p.method == PaymentMethod.TRANSFER))


def _keep_only(session: Session, booking: Booking, keep_fen: int, *, actor: Actor) -> int:
    """Keep keep_fen of what the booking's payments hold and give back the rest (_keep_plan): an
    authorisation is captured up to it (or released), a capture refunded down to it, a received transfer
    gets the refund due recorded; attempts never authorised are dropped, and an authorisation still on its
    way (or never answered) is released whatever it became. Returns what is kept beyond what is held."""
    plan, beyond = _keep_plan(booking, keep_fen)
    for payment in booking.payments:
        if payment.pending_action == "authorise":
            _schedule(payment, "cancel")
    for payment, held, kept in plan:
        if payment.status == PaymentStatus.REQUIRES_CAPTURE:
            _schedule(payment, "capture" if kept else "cancel", kept or None)
        elif held > kept and payment.status == PaymentStatus.SUCCEEDED:
            _schedule(payment, "refund", held - kept)
        elif held > kept and payment.status == PaymentStatus.TRANSFER_RECEIVED:
            _refund_transfer(session, payment, held - kept, actor=actor)
    _drop_card_attempts(booking)
    _drop_expected_transfer(session, booking, actor=actor)
    return beyond


# --- at the gateway, with no transaction open ---------------------------------------------------

def call_gateway(call: GatewayCall) -> GatewayAnswer:
    """Carry out one recorded call, reading first what the gateway already did. Touches no database."""
    client, intent, refund = gateway(), None, None
    try:
        intent = _intent_for(client, call)
        path = f"/v1/payment_intents/{intent['id']}" if intent else ""
        if call.action in ("authorise", "charge") and intent and call.confirm and not intent.get("last_payment_error") \
                and intent["status"] in ("requires_payment_method", "requires_confirmation"):
            if call.card and intent.get("payment_method") != call.card:
                intent = client.post(path, {"payment_method": call.card}, key=_call_key(call, "attach"))
            if intent["status"] == "requires_confirmation":
                intent = client.post(f"{path}/confirm", key=_call_key(call, "confirm"))
        elif call.action == "cancel" and intent and intent["status"] in CANCELLABLE:
            intent = _cancel(client, intent, call)
        elif call.action == "capture" and intent and intent["status"] == "requires_capture":
            intent = client.post(f"{path}/capture", {"amount_to_capture": call.amount_fen},
                                 key=_call_key(call, "capture"))
        elif call.action == "refund" and intent:
            refund = _refund(client, call, intent["id"])
        answer = GatewayAnswer(intent, refund)
    except GatewayError as error:
        answer = GatewayAnswer(intent, refund, error)
    fault_point("payment_answered")
    return answer


def fault_point(name: str) -> None:
    """Tests only: the process dies here (no cleanup, no commit) when the FAULT_POINT setting names this
    point, as a worker killed between two steps would."""
    if current_app.config.get("FAULT_POINT") == name:
        logging.shutdown()
        os._exit(FAULT_EXIT)


def _intent_for(client: StripeClient, call: GatewayCall) -> dict | None:
    """The payment's intent: read back; found by its metadata after a creation whose answer was lost; or
    made, when the action makes one (an authorisation, a difference's charge)."""
    if call.intent_id is not None:
        return client.get(f"/v1/payment_intents/{call.intent_id}")
    found = _find_intent(client, call.tags) if call.search or call.action in ("cancel", "refund") else None
    makes = (call.action in ("authorise", "charge") and call.confirm) or (call.action == "capture" and call.card_of)
    if found is not None or not makes:
        return found
    params: dict[str, Any] = {"amount": call.amount_fen, "currency": CURRENCY,  # a charge is captured at once
                              "capture_method": "automatic" if call.action == "charge" else "manual",
                              "payment_method": call.card, "metadata": call.tags}
    if call.purpose == PaymentPurpose.DIFFERENCE:
        share = client.get(f"/v1/payment_intents/{call.card_of}")
        params |= {"payment_method": share["payment_method"], "confirm": True, "off_session": True}
    return client.post("/v1/payment_intents", params, key=_call_key(call, "create"))


def _cancel(client: StripeClient, intent: dict, call: GatewayCall) -> dict:
    """Cancel the intent; one cancelled meanwhile by another call is read back as it is."""
    try:
        return client.post(f"/v1/payment_intents/{intent['id']}/cancel", key=_call_key(call, "cancel"))
    except GatewayError as error:
        if error.kind != "invalid":
            raise
        again = client.get(f"/v1/payment_intents/{intent['id']}")
        if again["status"] != "canceled":
            raise
        return again


def _refund(client: StripeClient, call: GatewayCall, intent_id: str) -> dict | None:
    """Refund at most what was captured and not refunded; a refund an unanswered attempt made is adopted."""
    if call.amount_fen <= 0:
        return None
    tag = f"{call.key}-refund-{call.refund_number}"
    made = client.get("/v1/refunds", {"payment_intent": intent_id, "limit": 100})["data"]
    return next((r for r in made if (r.get("metadata") or {}).get("idempotency_key") == tag), None) \
        or client.post("/v1/refunds", {"payment_intent": intent_id, "amount": call.amount_fen,
                                       "metadata": {"idempotency_key": tag}}, key=_call_key(call, "refund"))


def _call_key(call: GatewayCall, step: str) -> str:
    return f"{call.key}-{step}-{call.attempt}"


def _find_intent(client: StripeClient, tags: dict[str, str]) -> dict | None:
    return next((intent for intent in client.intents() if _is_tagged(intent, tags)), None)


def _is_tagged(intent: dict, tags: dict[str, str]) -> bool:
    return all((intent.get("metadata") or {}).get(name) == value for name, value in tags.items())


# --- the answers, recorded under the booking's lock ---------------------------------------------

def record_answer(session: Session, booking: Booking, call: GatewayCall, answer: GatewayAnswer, *,
                  actor: Actor) -> Recorded:
    """Write what the gateway answered to `call`, in the caller's new unit of work, the booking locked
    and read afresh: the payment's status moves by the answer, its pending action is cleared, or kept
    (with the attempt counted) when the gateway did not answer."""
    payment = next(p for p in booking.payments if p.id == call.payment_id)
    if (payment.pending_action, payment.attempt, payment.intent_id) != (call.action, call.attempt, call.intent_id):
        recorded = _overtaken(payment, call, answer)  # settled, taken over or better known meanwhile
    elif answer.error is not None and answer.error.kind != "declined" \
            and (call.action != "authorise" or answer.error.kind == "unavailable"):
        recorded = _unanswered(session, payment, call, answer, actor=actor)
    elif call.action == "charge":
        recorded = record_charge(session, [payment], call, answer, actor=actor)
    elif call.action == "authorise":
        recorded = _record_authorisation(session, booking, payment, call, answer, actor=actor)
    else:
        recorded = _record_settlement(session, payment, call, answer, actor=actor)
    sync_payment_state(booking)
    session.flush()
    return recorded


def _overtaken(payment: Payment, call: GatewayCall, answer: GatewayAnswer) -> Recorded:
    """The payment's action changed while the call was out (a cancellation released the booking an
    authorisation was for; another call settled it): whatever the answer holds at the gateway for a
    payment now cancelled is released, after commit."""
    intent = answer.intent
    _adopt(payment, intent)
    held = intent is not None and intent["id"] == payment.intent_id and intent["status"] in CANCELLABLE
    if payment.pending_action == "cancel" or (held and payment.status == PaymentStatus.CANCELED):
        _schedule(payment, "cancel")  # made again with what is known now
    if call.action == "authorise" and payment.status != PaymentStatus.REQUIRES_CAPTURE:
        return Recorded(problem=_cancelled_meanwhile())
    return Recorded()


def _adopt(payment: Payment, intent: dict | None) -> None:
    """The payment learns its intent, once (made by the call, or found by its metadata)."""
    if intent is not None and payment.intent_id is None:
        payment.intent_id, payment.client_secret = intent["id"], intent.get("client_secret")


def _cancelled_meanwhile() -> Conflict:
    return Conflict("booking_state_changed", _("This booking was cancelled while you paid: what was held on your "
                                               "card is released and nothing was charged."))


def _unanswered(session: Session, payment: Payment, call: GatewayCall, answer: GatewayAnswer, *,
                actor: Actor) -> Recorded:
    """No answer (or a refusal of a settlement): the action stays pending for reconciliation, with the
    intent if one was made before the silence; the next call is a new one, since Stripe keeps even a 5xx
    answer under its key."""
    error = answer.error
    _adopt(payment, answer.intent)
    payment.attempt += 1
    payment.last_error = error.message[:500]
    log.warning("payment %s: %s left pending: %s", payment.id, call.action, error.message)
    if call.action != "authorise":
        return Recorded(settled=False)
    session.flush()
    record_audit(session, actor, "payment.pending", payment, after=_view(payment) | {"error": payment.last_error})
    return Recorded(settled=False, problem=PaymentGatewayUnavailable())


def _record_authorisation(session: Session, booking: Booking, payment: Payment, call: GatewayCall,
                          answer: GatewayAnswer, *, actor: Actor) -> Recorded:
    """Authorised → held for the booking if it still waits for its payment, else released at once.
    Declined, refused or unconfirmed → the attempt is over or waits for the card; nothing was charged."""
    intent, error = answer.intent, answer.error
    _adopt(payment, intent)
    _schedule(payment, None)
    declined = (error.message, error.code) if error is not None and error.kind == "declined" else None
    if intent is not None and intent.get("last_payment_error"):
        declined = (intent["last_payment_error"].get("message", ""), intent["last_payment_error"].get("code"))
    if declined is not None:
        payment.last_error = declined[0][:500]
        _to(payment, PaymentStatus.FAILED)
        session.flush()
        record_audit(session, actor, "payment.declined", payment, after=_view(payment) | {"code": declined[1]})
        return Recorded(problem=RuleBroken("card_declined", _(
            "The card was declined and nothing was charged. Try another card, or pay by bank transfer."), field="card"))
    if error is not None:  # refused as invalid
        log.error("payment %s: the gateway refused: %s", payment.id, error.message)
        payment.last_error = error.message[:500]
        if payment.intent_id is None:
            _to(payment, PaymentStatus.FAILED)
        return Recorded(problem=RuleBroken("payment_refused", _(
            "The payment service refused this card; nothing was charged. Check the card's details, or pay by "
            "bank transfer."), field="card"))
    if intent is None:  # reconciliation: the creation never reached the gateway
        _to(payment, PaymentStatus.CANCELED)
        session.flush()
        record_audit(session, actor, "payment.canceled", payment, after=_view(payment))
        return Recorded()
    _to(payment, INTENT_STATUS.get(intent["status"], payment.status))
    payment.last_error = None
    if payment.status == PaymentStatus.REQUIRES_CAPTURE:
        session.flush()
        record_audit(session, actor, "payment.authorised", payment, after=_view(payment))
        if awaits_payment(booking) and not any(_holds_share(p) for p in booking.payments if p is not payment):
            return Recorded(authorised=True)
        _schedule(payment, "cancel")  # the booking no longer waits for it: released after commit
        return Recorded(problem=_cancelled_meanwhile())
    if payment.status == PaymentStatus.REQUIRES_CONFIRMATION and call.confirm:
        if intent["status"] == "requires_payment_method":
            return Recorded(problem=RuleBroken("card_required", _("Enter the card's details."), field="card"))
        payment.last_error = f"intent {intent['status']}"
        _to(payment, PaymentStatus.FAILED)
        session.flush()
        record_audit(session, actor, "payment.failed", payment, after=_view(payment))
        return Recorded(problem=RuleBroken("card_not_authorised", _(
            "The card could not be authorised (it asks for a check this page does not offer). Try another card, "
            "or pay by bank transfer."), field="card"))
    return Recorded()  # not confirmed (reconciliation) or cancelled at the gateway: the booker pays again


def _record_settlement(session: Session, payment: Payment, call: GatewayCall, answer: GatewayAnswer, *,
                       actor: Actor) -> Recorded:
    before, intent, authorised = _view(payment), answer.intent, payment.status == PaymentStatus.REQUIRES_CAPTURE
    if answer.error is not None:  # a difference declined
        payment.last_error = answer.error.message[:500]
        _to(payment, PaymentStatus.FAILED)
    elif intent is not None:
        _adopt(payment, intent)
        _to(payment, INTENT_STATUS.get(intent["status"], payment.status))
    elif call.action == "cancel":  # no intent was ever made
        _to(payment, PaymentStatus.CANCELED)
    if call.action == "capture" and intent is not None and intent["status"] == "succeeded":
        payment.captured_fen = call.amount_fen
        payment.released_fen = payment.amount_fen - payment.captured_fen if authorised else 0
    elif call.action == "cancel" and authorised and payment.status == PaymentStatus.CANCELED:
        payment.released_fen = payment.amount_fen
    elif call.action == "capture" and answer.error is None:
        log.error("payment %s: not captured, the intent is %s", payment.id, intent and intent["status"])
    if answer.refund is not None:
        payment.refund_ids = [*payment.refund_ids, answer.refund["id"]]
        payment.refunded_fen += answer.refund["amount"]
    _schedule(payment, None)
    session.flush()
    record_audit(session, actor, SETTLED[call.action], payment, before=before, after=_view(payment))
    return Recorded()


# --- reconciliation -----------------------------------------------------------------------------

def calls_to_reconcile(session: Session, *, now: datetime) -> list[GatewayCall]:
    """Every pending action no request is still waiting for, to be read at the gateway and settled: an
    authorisation is read (found by its metadata when its creation was never recorded), never confirmed."""
    rows = session.scalars(select(Payment).where(
        Payment.pending_action.is_not(None),
        sa.or_(Payment.last_error.is_not(None), Payment.updated_at <= now - IN_FLIGHT)).order_by(Payment.id)).all()
    return [_call(payment, confirm=False, search=True) for payment in rows]


TAGS = ("booking_id", "booked_at", "idempotency_key")


def open_intents(*, now: datetime) -> list[dict]:
    """The open intents made in the last ORPHAN_WINDOW that carry our tags, read at the gateway (no
    transaction is open); none when it does not answer."""
    since = (now - ORPHAN_WINDOW).timestamp()
    try:
        return [intent for intent in gateway().intents() if intent["status"] in CANCELLABLE
                and intent.get("created", since) >= since and all((intent.get("metadata") or {}).get(tag) for tag in TAGS)]
    except GatewayError as error:
        log.warning("orphan intents left for the next run: %s", error.message)
        return []


Orphan = tuple[type, int, str]  # whose it is (the Payment, else the Booking model), its id, and the intent's id


def tagged_booking_ids(intents: list[dict]) -> set[int]:
    """The booking ids the intents' metadata names."""
    return {int(i["metadata"]["booking_id"]) for i in intents if i["metadata"]["booking_id"].isdigit()}


def sort_orphans(bookings: list[Booking], intents: list[dict]) -> tuple[list[Orphan], list[dict]]:
    """Of the open intents, those made for our bookings that no payment holds as its own: to release,
    (the model and id of its payment or booking, intent id) for one made under the key of a payment that has another intent
    (a creation retried after its answer was lost) or an unrecorded one never authorised; to record, an
    authorisation under a key no payment has (its payment never committed). An intent whose creation its
    payment has not recorded yet is left to that payment's reconciliation; one that names none of
    `bookings` (those of tagged_booking_ids) is another database's and is left alone."""
    ours = {(str(b.id), b.created_at.isoformat()): b for b in bookings}
    release, record = [], []
    for intent in intents:
        tags = intent["metadata"]
        booking = ours.get((tags["booking_id"], tags["booked_at"]))
        payment = next((p for p in booking.payments if tags["idempotency_key"] in (p.idempotency_key, p.group_key)),
                       None) if booking is not None else None
        if booking is None or (payment is not None and (intent["id"] == payment.intent_id
                                                        or (payment.intent_id is None and payment.pending_action))):
            continue
        if payment is None and intent["status"] == "requires_capture":
            record.append(intent)
        else:
            subject = payment or booking
            release.append((type(subject), subject.id, intent["id"]))
    return release, record


def release_orphans(release: list[Orphan], *, actor: Actor) -> int:
    """Cancel the intents sort_orphans found to release (no transaction is open), then audit each."""
    client, released = gateway(), []
    try:
        for model, subject_id, intent_id in release:
            client.post(f"/v1/payment_intents/{intent_id}/cancel", key=f"orphan-{intent_id}-cancel")
            released.append((model, subject_id, intent_id))
    except GatewayError as error:
        log.warning("orphan intents left for the next run: %s", error.message)
    if released:
        with unit_of_work() as session:
            for model, subject_id, intent_id in released:
                record_audit(session, actor, "payment.orphan_canceled", session.get(model, subject_id),
                             after={"intent_id": intent_id})
    return len(released)


def record_unrecorded(session: Session, booking: Booking, intent: dict, *, actor: Actor) -> Recorded:
    """An authorisation made for this booking under a key no payment has (the payment's record never
    committed): recorded now as that payment, then read as any authorisation's answer: held for the
    booking if it still waits for it, released otherwise. The caller holds the booking's lock."""
    payment = Payment(booking=booking, method=PaymentMethod.CARD, purpose=PaymentPurpose.SHARE,
                      status=PaymentStatus.CREATING, amount_fen=intent["amount"],
                      idempotency_key=intent["metadata"]["idempotency_key"])
    session.add(payment)
    session.flush()
    _schedule(payment, "authorise", payment.amount_fen)
    record_audit(session, actor, "payment.recovered", payment, after=_view(payment) | {"intent_id": intent["id"]})
    return record_answer(session, booking, _call(payment, confirm=False), GatewayAnswer(intent), actor=actor)


# --- the parts ----------------------------------------------------------------------------------

# A booking is paid when what the enterprise owed was captured or received: "paid", or "refunded" when
# completion on a shorter time than booked gave back the overpaid difference.
PAID_STATES = (PaymentState.PAID, PaymentState.REFUNDED)


def sync_payment_state(booking: Booking) -> None:
    """The one place the booking's payment_state is set: derived from its payments. The voucher part's
    use hears whether the booking is paid (an enterprise-reimbursed use is claimable once it is)."""
    state, session = payment_state_of(booking), object_session(booking)
    if state != booking.payment_state and booking.voucher_id is not None and booking.id is not None:
        vouchers.record_payment(session, booking_id=booking.id, is_paid=state in PAID_STATES)
    booking.payment_state = state


def payment_state_of(booking: Booking) -> PaymentState:
    """Where the booking's payment stands, from its payments: PENDING while any action waits for the
    gateway's answer."""
    payments = booking.payments
    if any(p.pending_action or p.status == PaymentStatus.CREATING for p in payments):
        return PaymentState.PENDING
    if any(p.purpose == PaymentPurpose.DIFFERENCE and p.status in (PaymentStatus.FAILED,
                                                                   PaymentStatus.TRANSFER_EXPECTED) for p in payments):
        return PaymentState.DUE
    if any(p.refunded_fen for p in payments):
        return PaymentState.REFUNDED
    if any(p.captured_fen for p in payments):
        return PaymentState.PAID
    if any(p.status == PaymentStatus.REQUIRES_CAPTURE for p in payments):
        return PaymentState.AUTHORISED
    if booking.payable_fen == 0 and not payments:
        return PaymentState.NOT_DUE
    if not booking.awaits_confirmation \
            and any(p.method == PaymentMethod.CARD and p.status == PaymentStatus.CANCELED for p in payments):
        return PaymentState.RELEASED
    return PaymentState.DUE


def _in_flight(payment: Payment, now: datetime) -> bool:
    return payment.pending_action is not None and payment.last_error is None \
        and payment.updated_at > now - IN_FLIGHT


def _holds_share(payment: Payment) -> bool:
    return payment.purpose == PaymentPurpose.SHARE and (
        payment.status in (PaymentStatus.REQUIRES_CAPTURE, PaymentStatus.TRANSFER_RECEIVED) or payment.captured_fen > 0)


def _live_card(booking: Booking) -> Payment | None:
    return next((p for p in booking.payments if p.method == PaymentMethod.CARD and p.purpose == PaymentPurpose.SHARE
                 and p.pending_action in (None, "authorise")
                 and p.status in (PaymentStatus.CREATING, PaymentStatus.REQUIRES_CONFIRMATION,
                                  PaymentStatus.REQUIRES_CAPTURE)), None)


def _new_payment(session: Session, booking: Booking, method: PaymentMethod, purpose: PaymentPurpose,
                 amount_fen: int, *, status: PaymentStatus = PaymentStatus.CREATING) -> Payment:
    """A payment keyed by what it is: booking-7-authorise-2 is booking 7's second card authorisation.
    The key is unique, so two racing requests cannot both make one."""
    number = 1 + sum(1 for p in booking.payments if (p.method, p.purpose) == (method, purpose))
    payment = Payment(booking=booking, method=method, purpose=purpose, status=status, amount_fen=amount_fen,
                      idempotency_key=f"booking-{booking.id}-{KEY_ACTIONS[method, purpose]}-{number}")
    session.add(payment)
    session.flush()
    return payment


def _view(payment: Payment) -> dict[str, Any]:
    return {"status": payment.status.value, "amount_fen": payment.amount_fen, "captured_fen": payment.captured_fen,
            "refunded_fen": payment.refunded_fen, "released_fen": payment.released_fen, "intent_id": payment.intent_id,
            "pending_action": payment.pending_action, "pending_amount_fen": payment.pending_amount_fen}


def _tags(payment: Payment) -> dict[str, str]:
    """The intent's metadata: whose it is. A booking is its id and creation time, since another database
    (a test's, a reset development one) may have had a booking of the same id on the same gateway."""
    if payment.group_key is not None:  # one intent for the group: named by its first payment's booking
        lead = group_payments(object_session(payment), payment.group_key)[0]
        return {"booking_id": str(lead.booking_id), "booked_at": lead.booking.created_at.isoformat(),
                "idempotency_key": payment.group_key}
    return {"booking_id": str(payment.booking_id), "booked_at": payment.booking.created_at.isoformat(),
            "idempotency_key": payment.idempotency_key}


def _refund_transfer(session: Session, payment: Payment, amount_fen: int, *, actor: Actor) -> None:
    """A transfer is paid back by the platform's bank, outside the gateway: the refund due is recorded."""
    before = _view(payment)
    payment.refunded_fen += amount_fen
    session.flush()
    record_audit(session, actor, "payment.refund_due", payment, before=before, after=_view(payment))


def _drop_card_attempts(booking: Booking) -> None:
    """Card attempts never authorised are to be cancelled at the gateway."""
    for payment in booking.payments:
        if payment.method == PaymentMethod.CARD and payment.pending_action is None \
                and payment.status in (PaymentStatus.CREATING, PaymentStatus.REQUIRES_CONFIRMATION):
            _schedule(payment, "cancel")


def _drop_expected_transfer(session: Session, booking: Booking, *, actor: Actor) -> None:
    expected = expected_transfer(booking)
    if expected is not None:
        _to(expected, PaymentStatus.CANCELED)
        session.flush()
        record_audit(session, actor, "payment.canceled", expected, after=_view(expected))


def _charged_card(booking: Booking) -> Payment | None:
    """The share's card payment, authorised or captured: the card a difference is charged to."""
    return next((p for p in booking.payments if p.method == PaymentMethod.CARD and p.purpose == PaymentPurpose.SHARE
                 and p.intent_id and (p.captured_fen or p.status == PaymentStatus.REQUIRES_CAPTURE
                                      or p.pending_action == "capture")), None)
