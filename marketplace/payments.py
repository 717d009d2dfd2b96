"""Payments (DESIGN §2.2): the enterprise's share of a booking, authorised by card (a PaymentIntent with
manual capture) or paid by bank transfer (对公转账), captured at completion, cancelled or refunded by the
cancellation policy, and reconciled when the gateway (marketplace/gateway.py) did not answer.

Every POST to the gateway carries an Idempotency-Key made of the payment's own key (booking, action,
number: booking-7-authorise-1), the call and its attempt. localstripe ignores that header, so the app is
idempotent on its own side too: the Payment row, whose key is unique, is flushed before the call that
creates its intent, a repeat finds it, and a call whose answer was lost is settled by first reading
what the gateway did. The app also enforces what localstripe does not: it never captures a cancelled
intent (it reads the intent's status first) and never refunds more than it captured.

A settlement the gateway has not confirmed is kept as payment.pending_action ("cancel", "capture" or
"refund" of pending_amount_fen), with the booking's payment_state PENDING, until reconcile_payments
carries it out. When paying fails, the service records the outcome, then raises RuleBroken (declined)
or PaymentGatewayUnavailable (503): the edge catches it inside its unit of work, so that is committed."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import to_local
from core.errors import Forbidden, KequipError, RuleBroken
from core.models import User
from core.money import format_yuan
from marketplace import bookings
from marketplace.gateway import GatewayError, StripeClient, gateway
from marketplace.models import (Booking, BookingState, Payment, PaymentMethod, PaymentPurpose, PaymentState,
                                PaymentStatus)

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


class PaymentGatewayUnavailable(KequipError):
    status = 503

    def __init__(self) -> None:
        super().__init__("payment_gateway_unavailable", _(
            "The payment service is not reachable. Your booking is kept and nothing was charged; "
            "try again in a few minutes."))


# --- who may ------------------------------------------------------------------------------------

def can_pay(user: User | None, booking: Booking) -> bool:
    """The booker pays a requested or approved booking's share until it is authorised or paid."""
    return user is not None and booking.booker_id == user.id and _awaits_payment(booking)


def can_record_transfer(user: User | None, booking: Booking) -> bool:
    """The owning platform's admins record a transfer for a booking still to be paid."""
    return bookings.can_manage(user, booking) and _awaits_payment(booking)


def _awaits_payment(booking: Booking) -> bool:
    """A share may be paid as soon as the booking is made: while it waits for approval too (confirmed on
    approval, the authorisation released on rejection or expiry)."""
    return (booking.state in (BookingState.REQUESTED, BookingState.APPROVED) and booking.payable_fen > 0
            and booking.payment_state in (PaymentState.DUE, PaymentState.PENDING))


def ensure_may_pay(user: User, booking: Booking) -> None:
    if booking.booker_id != user.id:
        raise Forbidden("forbidden", _("Only the booker pays for a booking."))
    if not can_pay(user, booking):
        raise RuleBroken("nothing_to_pay", _("This booking has nothing to pay now."))


def expected_transfer(booking: Booking) -> Payment | None:
    """The transfer the booker announced; its key is the note the transfer should carry."""
    return next((p for p in booking.payments if p.status == PaymentStatus.TRANSFER_EXPECTED), None)


# --- paying -------------------------------------------------------------------------------------

def start_card_payment(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                       payment_method: str | None = None) -> Payment:
    """The card payment of the booking's share: one PaymentIntent with manual capture, however often
    this is called (a double click, a reload, a retry). Its client_secret is for the browser; the card
    (a PaymentMethod or card id) may come now or with complete_card_payment."""
    _lock(session, booking)
    live = _live_card(booking)
    if live is not None and live.status == PaymentStatus.REQUIRES_CAPTURE:
        return live
    ensure_may_pay(user, booking)
    if live is not None and live.intent_id is not None:
        return live
    _drop_expected_transfer(session, booking, actor=actor)
    payment = live or _new_payment(session, booking, PaymentMethod.CARD, PaymentPurpose.SHARE, booking.payable_fen)
    booking.payment_method = PaymentMethod.CARD
    try:
        _ensure_intent(gateway(), payment, payment_method=payment_method)
    except GatewayError as error:
        _gateway_failed(session, payment, error, actor=actor)
    booking.payment_state = PaymentState.DUE
    record_audit(session, actor, "payment.started", payment, after=_view(payment))
    return payment


def complete_card_payment(session: Session, payment: Payment, *, actor: Actor, user: User, now: datetime,
                          payment_method: str | None = None) -> Payment:
    """Attach the card, confirm, and read the intent back. Authorised → the booking is confirmed.
    Declined → RuleBroken card_declined; the booking stays approved and may be paid again. No answer
    → PaymentGatewayUnavailable; the booking is PENDING until reconciled or paid again."""
    booking = payment.booking
    _lock(session, booking)
    if payment.status == PaymentStatus.REQUIRES_CAPTURE:
        return payment  # a second submit of the same form
    ensure_may_pay(user, booking)
    if payment.method != PaymentMethod.CARD or payment.status not in (PaymentStatus.CREATING,
                                                                      PaymentStatus.REQUIRES_CONFIRMATION):
        raise RuleBroken("payment_closed", _("This payment attempt is over; start the payment again."))
    client = gateway()
    try:
        intent: dict = {"status": "requires_confirmation"}  # as recorded, when every earlier call was answered
        if payment.status == PaymentStatus.CREATING or payment.attempt:
            intent = _ensure_intent(client, payment, payment_method=payment_method)
        path = f"/v1/payment_intents/{payment.intent_id}"
        if intent["status"] in ("requires_payment_method", "requires_confirmation") \
                and not intent.get("last_payment_error"):
            if payment_method and intent.get("payment_method") != payment_method:
                intent = client.post(path, {"payment_method": payment_method}, key=_call_key(payment, "attach"))
            if intent["status"] == "requires_payment_method":
                raise RuleBroken("card_required", _("Enter the card's details."), field="card")
            intent = client.post(f"{path}/confirm", key=_call_key(payment, "confirm"))
    except GatewayError as error:
        _gateway_failed(session, payment, error, actor=actor)
    _read_confirmation(session, payment, intent, actor=actor, now=now)
    return payment


def choose_transfer(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime) -> Payment:
    """Pay by bank transfer: the booking waits, approved, for the platform to record the transfer."""
    _lock(session, booking)
    ensure_may_pay(user, booking)
    expected = expected_transfer(booking)
    if expected is not None:
        return expected
    payment = _new_payment(session, booking, PaymentMethod.TRANSFER, PaymentPurpose.SHARE, booking.payable_fen)
    payment.status = PaymentStatus.TRANSFER_EXPECTED
    booking.payment_method, booking.payment_state = PaymentMethod.TRANSFER, PaymentState.DUE
    _drop_card_attempts(booking)  # cancelled at the gateway by the next reconciliation
    session.flush()
    record_audit(session, actor, "payment.transfer_chosen", payment, after=_view(payment))
    return payment


def record_transfer(session: Session, booking: Booking, *, actor: Actor, user: User, now: datetime,
                    amount_fen: int, received_on: date, reference: str) -> Payment:
    """The platform admin records the transfer that arrived: the booking is paid and confirmed."""
    _lock(session, booking)
    if not bookings.can_manage(user, booking):
        raise Forbidden("forbidden", _("Only the admins of the instrument's platform record transfers."))
    if not can_record_transfer(user, booking):
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
        or _new_payment(session, booking, PaymentMethod.TRANSFER, PaymentPurpose.SHARE, booking.payable_fen)
    before = _view(payment)
    payment.status, payment.captured_fen = PaymentStatus.TRANSFER_RECEIVED, amount_fen
    payment.transfer_received_on, payment.transfer_reference = received_on, reference.strip()[:100]
    payment.recorded_by_id = user.id
    booking.payment_method, booking.payment_state = PaymentMethod.TRANSFER, PaymentState.PAID
    _drop_card_attempts(booking)
    session.flush()
    record_audit(session, actor, "payment.transfer_received", payment, before=before, after=_view(payment))
    if booking.state == BookingState.APPROVED:
        bookings.confirm_booking(session, booking, actor=actor, now=now)
    return payment


# --- settling -----------------------------------------------------------------------------------

def settle_cancellation(session: Session, booking: Booking, *, fee_fen: int, actor: Actor, now: datetime) -> None:
    """After a cancellation or a no-show, keep fee_fen (0 to payable) and give the rest back. What the
    gateway does not confirm stays pending for reconciliation; the booking's own change goes through."""
    if not 0 <= fee_fen <= booking.payable_fen:
        raise ValueError(f"fee {fee_fen} outside 0..{booking.payable_fen}")
    _keep_only(session, booking, fee_fen, actor=actor)
    _settle_all(session, booking, actor=actor)


def settle_completion(session: Session, booking: Booking, *, final_payable_fen: int, actor: Actor,
                      now: datetime) -> None:
    """At check-out, keep the final amount: captured up to what was authorised; more than that is
    charged by a second intent on the same card, confirmed off-session (or expected as a transfer)."""
    remaining = _keep_only(session, booking, final_payable_fen, actor=actor)
    if remaining > 0:
        by_card = _charged_card(booking) is not None
        extra = _new_payment(session, booking, PaymentMethod.CARD if by_card else PaymentMethod.TRANSFER,
                             PaymentPurpose.DIFFERENCE, remaining)
        if by_card:
            _schedule(extra, "capture", remaining)  # _settle creates, confirms off-session, then captures
        else:
            extra.status = PaymentStatus.TRANSFER_EXPECTED
        record_audit(session, actor, "payment.difference_due", extra, after=_view(extra))
    _settle_all(session, booking, actor=actor)


def reconcile_payments(session: Session, *, actor: Actor, now: datetime) -> int:
    """Settle against the gateway every payment left CREATING, with a pending action, or confirmed
    without an answer; then cancel intents made for our payments that no payment recorded (a creation
    retried after a lost answer, a commit that failed). Idempotent; returns how many it settled."""
    rows = session.scalars(select(Payment).join(Booking).where(sa.or_(
        Payment.status == PaymentStatus.CREATING, Payment.pending_action.is_not(None),
        sa.and_(Booking.payment_state == PaymentState.PENDING, Payment.status == PaymentStatus.REQUIRES_CONFIRMATION)))
        .order_by(Payment.id)).all()
    client, settled = gateway(), 0
    for payment in rows:
        booking = payment.booking
        _lock(session, booking)
        if payment.pending_action is not None:
            done = _settle(session, client, payment, actor=actor)
        else:
            done = _reconcile_card_share(session, client, payment, actor=actor, now=now)
        if not done:
            return settled  # the gateway does not answer: the next run goes on
        if booking.payment_state == PaymentState.PENDING:
            booking.payment_state = _derived_state(booking)
        settled += 1
    return settled + _cancel_orphans(session, client, actor=actor, now=now)


# --- the parts ----------------------------------------------------------------------------------

def _lock(session: Session, booking: Booking) -> None:
    """Serialise the payment changes of one booking (FOR UPDATE; SQLite serialises writers by itself)
    and read it and its payments afresh: a concurrent request may have paid while we waited."""
    session.flush()
    session.execute(select(Booking.id).where(Booking.id == booking.id).with_for_update())
    session.refresh(booking)
    session.scalars(select(Payment).where(Payment.booking_id == booking.id)
                    .execution_options(populate_existing=True)).all()


def _live_card(booking: Booking) -> Payment | None:
    return next((p for p in booking.payments if p.method == PaymentMethod.CARD and p.purpose == PaymentPurpose.SHARE
                 and p.pending_action is None and p.status in (PaymentStatus.CREATING,
                                                               PaymentStatus.REQUIRES_CONFIRMATION,
                                                               PaymentStatus.REQUIRES_CAPTURE)), None)


def _new_payment(session: Session, booking: Booking, method: PaymentMethod, purpose: PaymentPurpose,
                 amount_fen: int) -> Payment:
    """A payment keyed by what it is: booking-7-authorise-2 is booking 7's second card authorisation.
    The key is unique, so two racing requests cannot both make one."""
    number = 1 + sum(1 for p in booking.payments if (p.method, p.purpose) == (method, purpose))
    payment = Payment(booking=booking, method=method, purpose=purpose, status=PaymentStatus.CREATING,
                      amount_fen=amount_fen,
                      idempotency_key=f"booking-{booking.id}-{KEY_ACTIONS[method, purpose]}-{number}")
    session.add(payment)
    session.flush()
    return payment


def _call_key(payment: Payment, action: str) -> str:
    return f"{payment.idempotency_key}-{action}-{payment.attempt}"


def _view(payment: Payment) -> dict[str, Any]:
    return {"status": payment.status.value, "amount_fen": payment.amount_fen, "captured_fen": payment.captured_fen,
            "refunded_fen": payment.refunded_fen, "intent_id": payment.intent_id,
            "pending_action": payment.pending_action, "pending_amount_fen": payment.pending_amount_fen}


def _ensure_intent(client: StripeClient, payment: Payment, *, payment_method: str | None = None) -> dict:
    """The payment's intent: read back; adopted after a creation whose answer was lost; or created."""
    if payment.intent_id is not None:
        return client.get(f"/v1/payment_intents/{payment.intent_id}")
    intent = _find_intent(client, payment) if payment.attempt else None
    if intent is None:
        params: dict[str, Any] = {"amount": payment.amount_fen, "currency": CURRENCY, "capture_method": "manual",
                                  "payment_method": payment_method,
                                  "metadata": _tags(payment)}
        if payment.purpose == PaymentPurpose.DIFFERENCE:
            share = client.get(f"/v1/payment_intents/{_charged_card(payment.booking).intent_id}")
            params |= {"payment_method": share["payment_method"], "confirm": True, "off_session": True}
        intent = client.post("/v1/payment_intents", params, key=_call_key(payment, "create"))
    payment.intent_id, payment.client_secret = intent["id"], intent.get("client_secret")
    payment.status = INTENT_STATUS.get(intent["status"], payment.status)
    return intent


def _tags(payment: Payment) -> dict[str, Any]:
    """The intent's metadata: whose it is. A booking is its id and creation time, since another database
    (a test's, a reset development one) may have had a booking of the same id on the same gateway."""
    return {"booking_id": payment.booking_id, "booked_at": payment.booking.created_at.isoformat(),
            "idempotency_key": payment.idempotency_key}


def _is_tagged(intent: dict, payment: Payment) -> bool:
    tags = {name: str(value) for name, value in _tags(payment).items()}
    return all((intent.get("metadata") or {}).get(name) == value for name, value in tags.items())


def _find_intent(client: StripeClient, payment: Payment) -> dict | None:
    return next((intent for intent in client.intents() if _is_tagged(intent, payment)), None)


def _gateway_failed(session: Session, payment: Payment, error: GatewayError, *, actor: Actor) -> None:
    """Record a failed call and raise what the user reads: a decline, a refusal, or no answer (pending)."""
    booking = payment.booking
    payment.last_error = error.message[:500]
    if error.kind == "declined":
        payment.status, booking.payment_state = PaymentStatus.FAILED, PaymentState.DUE
        session.flush()
        record_audit(session, actor, "payment.declined", payment, after=_view(payment) | {"code": error.code})
        raise RuleBroken("card_declined", _("The card was declined and nothing was charged. Try another card, "
                                            "or pay by bank transfer."), field="card")
    if error.kind == "invalid":
        log.error("payment %s: the gateway refused: %s", payment.id, error.message)
        raise RuleBroken("payment_refused", _("The payment service refused this card; nothing was charged. "
                                              "Check the card's details, or pay by bank transfer."), field="card")
    payment.attempt += 1  # the retry is a new call: Stripe keeps even a 5xx answer under its key
    booking.payment_state = PaymentState.PENDING
    session.flush()
    record_audit(session, actor, "payment.pending", payment, after=_view(payment) | {"error": payment.last_error})
    raise PaymentGatewayUnavailable()


def _read_confirmation(session: Session, payment: Payment, intent: dict, *, actor: Actor, now: datetime) -> None:
    """A confirmed intent: authorised → the booking is confirmed; else the payment failed (raises)."""
    booking = payment.booking
    payment.status = INTENT_STATUS.get(intent["status"], payment.status)
    if intent["status"] == "requires_capture":
        payment.last_error, booking.payment_state = None, PaymentState.AUTHORISED
        session.flush()
        record_audit(session, actor, "payment.authorised", payment, after=_view(payment))
        if booking.state == BookingState.APPROVED:
            bookings.confirm_booking(session, booking, actor=actor, now=now)
        return
    error = intent.get("last_payment_error") or {}
    if error:
        _gateway_failed(session, payment, GatewayError("declined", error.get("message", ""), code=error.get("code")),
                        actor=actor)
    payment.status, payment.last_error = PaymentStatus.FAILED, f"intent {intent['status']}"
    booking.payment_state = PaymentState.DUE
    session.flush()
    record_audit(session, actor, "payment.failed", payment, after=_view(payment))
    raise RuleBroken("card_not_authorised", _("The card could not be authorised (it asks for a check this page "
                                              "does not offer). Try another card, or pay by bank transfer."),
                     field="card")


def _reconcile_card_share(session: Session, client: StripeClient, payment: Payment, *, actor: Actor,
                          now: datetime) -> bool:
    """A share whose creation or confirmation went unanswered: read the intent and act on it."""
    try:
        intent = _ensure_intent(client, payment)
    except GatewayError as error:
        return _note_failure(payment, error)
    if intent["status"] == "requires_capture" or intent.get("last_payment_error"):
        try:
            _read_confirmation(session, payment, intent, actor=actor, now=now)
        except RuleBroken:
            pass  # the decline is recorded on the payment; the booker pays again
    else:
        payment.booking.payment_state = PaymentState.DUE  # not confirmed: the booker enters the card again
    return True


def _keep_only(session: Session, booking: Booking, keep_fen: int, *, actor: Actor) -> int:
    """Keep keep_fen of what the booking's payments hold and give back the rest: an authorisation is
    captured up to it (or released), a capture refunded down to it, a received transfer gets the refund
    due recorded; attempts never authorised are dropped. Returns what is kept beyond what is held."""
    for payment in booking.payments:
        if payment.pending_action is not None:
            continue
        authorised = payment.status == PaymentStatus.REQUIRES_CAPTURE
        held = payment.amount_fen if authorised else payment.captured_fen - payment.refunded_fen
        kept, keep_fen = min(keep_fen, held), keep_fen - min(keep_fen, held)
        if authorised:
            _schedule(payment, "capture" if kept else "cancel", kept or None)
        elif held > kept and payment.status == PaymentStatus.SUCCEEDED:
            _schedule(payment, "refund", held - kept)
        elif held > kept and payment.status == PaymentStatus.TRANSFER_RECEIVED:
            _refund_transfer(session, payment, held - kept, actor=actor)
    _drop_card_attempts(booking)
    _drop_expected_transfer(session, booking, actor=actor)
    return keep_fen


def _schedule(payment: Payment, action: str, amount_fen: int | None = None) -> None:
    payment.pending_action, payment.pending_amount_fen = action, amount_fen


def _settle_all(session: Session, booking: Booking, *, actor: Actor) -> None:
    client = gateway()
    for payment in booking.payments:
        if payment.pending_action is not None and not _settle(session, client, payment, actor=actor):
            break  # the gateway does not answer: what is left waits for reconciliation
    booking.payment_state = _derived_state(booking)


def _settle(session: Session, client: StripeClient, payment: Payment, *, actor: Actor) -> bool:
    """Carry out the payment's pending action, reading first what the gateway already did. True when
    settled (or declined); False when the gateway did not answer: the action stays pending."""
    action, amount, before = payment.pending_action, payment.pending_amount_fen, _view(payment)
    try:
        if payment.intent_id is None and action == "cancel":  # its creation went unanswered, if sent at all
            intent = (_find_intent(client, payment) if payment.attempt else None) or {"id": None, "status": "canceled"}
            payment.intent_id = intent["id"]
        else:
            intent = _ensure_intent(client, payment)
        path = f"/v1/payment_intents/{payment.intent_id}"
        if action == "cancel" and intent["status"] in CANCELLABLE:
            intent = client.post(f"{path}/cancel", key=_call_key(payment, "cancel"))
        elif action == "capture" and intent["status"] == "requires_capture":
            intent = client.post(f"{path}/capture", {"amount_to_capture": amount}, key=_call_key(payment, "capture"))
        elif action == "refund":
            _refund(client, payment, amount)
    except GatewayError as error:
        if error.kind != "declined":
            return _note_failure(payment, error)
        payment.status, payment.last_error = PaymentStatus.FAILED, error.message[:500]  # a difference declined
    else:
        payment.status = INTENT_STATUS.get(intent["status"], payment.status)
        if action == "capture" and intent["status"] == "succeeded":
            payment.captured_fen = amount
        elif action == "capture":
            log.error("payment %s: not captured, the intent is %s", payment.id, intent["status"])
    payment.pending_action = payment.pending_amount_fen = None
    session.flush()
    record_audit(session, actor, SETTLED[action], payment, before=before, after=_view(payment))
    return True


def _refund(client: StripeClient, payment: Payment, amount: int) -> None:
    """Refund at most what was captured and not refunded; a refund an unanswered attempt made is adopted."""
    amount = min(amount, payment.captured_fen - payment.refunded_fen)
    if amount <= 0:
        return
    tag = f"{payment.idempotency_key}-refund-{len(payment.refund_ids) + 1}"
    made = client.get("/v1/refunds", {"payment_intent": payment.intent_id, "limit": 100})["data"]
    refund = next((r for r in made if (r.get("metadata") or {}).get("idempotency_key") == tag), None) \
        or client.post("/v1/refunds", {"payment_intent": payment.intent_id, "amount": amount,
                                       "metadata": {"idempotency_key": tag}}, key=_call_key(payment, "refund"))
    payment.refund_ids = [*payment.refund_ids, refund["id"]]
    payment.refunded_fen += refund["amount"]


def _note_failure(payment: Payment, error: GatewayError) -> bool:
    payment.attempt += 1
    payment.last_error = error.message[:500]
    payment.booking.payment_state = PaymentState.PENDING
    log.warning("payment %s: %s left pending: %s", payment.id, payment.pending_action or payment.status.value,
                error.message)
    return False


def _refund_transfer(session: Session, payment: Payment, amount_fen: int, *, actor: Actor) -> None:
    """A transfer is paid back by the platform's bank, outside the gateway: the refund due is recorded."""
    before = _view(payment)
    payment.refunded_fen += amount_fen
    session.flush()
    record_audit(session, actor, "payment.refund_due", payment, before=before, after=_view(payment))


def _drop_card_attempts(booking: Booking) -> None:
    """Card attempts never authorised are to be cancelled (by _settle_all, or by reconciliation)."""
    for payment in booking.payments:
        if payment.method == PaymentMethod.CARD and payment.pending_action is None \
                and payment.status in (PaymentStatus.CREATING, PaymentStatus.REQUIRES_CONFIRMATION):
            _schedule(payment, "cancel")


def _drop_expected_transfer(session: Session, booking: Booking, *, actor: Actor) -> None:
    expected = expected_transfer(booking)
    if expected is not None:
        expected.status = PaymentStatus.CANCELED
        session.flush()
        record_audit(session, actor, "payment.canceled", expected, after=_view(expected))


def _charged_card(booking: Booking) -> Payment | None:
    """The share's card payment, authorised or captured: the card a difference is charged to."""
    return next((p for p in booking.payments if p.method == PaymentMethod.CARD and p.purpose == PaymentPurpose.SHARE
                 and p.intent_id and (p.captured_fen or p.status == PaymentStatus.REQUIRES_CAPTURE
                                      or p.pending_action == "capture")), None)


def _derived_state(booking: Booking) -> PaymentState:
    """Where the booking's payment stands, from its payments once settled (or not)."""
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
    if booking.state in (BookingState.REQUESTED, BookingState.APPROVED):
        return PaymentState.DUE
    if any(p.method == PaymentMethod.CARD and p.status == PaymentStatus.CANCELED for p in payments):
        return PaymentState.RELEASED
    return PaymentState.DUE if booking.payment_state == PaymentState.PENDING else booking.payment_state


def _cancel_orphans(session: Session, client: StripeClient, *, actor: Actor, now: datetime) -> int:
    """Cancel open intents tagged for one of our recent payments that are not that payment's own: made
    by a creation retried after a lost answer, or before a commit that failed."""
    recent = {p.idempotency_key: p for p in session.scalars(select(Payment).where(
        Payment.method == PaymentMethod.CARD, Payment.created_at >= now - ORPHAN_WINDOW))}
    cancelled = 0
    try:
        for intent in list(client.intents()) if recent else []:
            payment = recent.get((intent.get("metadata") or {}).get("idempotency_key"))
            if payment is None or intent["id"] == payment.intent_id or intent["status"] not in CANCELLABLE \
                    or payment.status == PaymentStatus.CREATING or not _is_tagged(intent, payment):
                continue
            client.post(f"/v1/payment_intents/{intent['id']}/cancel", key=f"orphan-{intent['id']}-cancel")
            record_audit(session, actor, "payment.orphan_canceled", payment, after={"intent_id": intent["id"]})
            cancelled += 1
    except GatewayError as error:
        log.warning("orphan intents left for the next run: %s", error.message)
    return cancelled
