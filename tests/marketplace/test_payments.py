"""Payments against a real localstripe process, on SQLite and PostgreSQL: authorisation, capture at
completion (in part, or with a second intent for a higher price), cancellation and refunds by the
policy, declines, double submits, bank transfers, and the gateway stopped or frozen mid-flow, then
settled by reconciliation. Every gateway call is made after the change that
asked for it has committed (bookings.pay_by_card, bookings.booking_change).

localstripe keeps its state for the whole session while each test's rows are rolled back (and SQLite
gives the next booking the same id), so a test finds its own intents by their key and creation time."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.errors import Forbidden, RuleBroken
from core.models import AuditEntry
from marketplace.booking import jobs
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState
from marketplace.payments import services as payments
from marketplace.payments.gateway import GatewayError, StripeClient
from marketplace.payments.models import Payment, PaymentMethod, PaymentState, PaymentStatus
from marketplace.registry.models import InstrumentState

DECLINED = "4000000000000341"
PAYABLE = 10_000 + 2 * 40_000  # the district enterprise's ¥100 setup fee and two hours at ¥400


@pytest.fixture
def enterprise(demo_user):
    return demo_user("enterprise")


@pytest.fixture
def approved(session, create_instrument, enterprise, monday_at):
    """An enterprise's approved booking, Monday next week 09:00–11:00, ¥900.00 to pay."""
    instrument = create_instrument(state=InstrumentState.PUBLISHED)
    booking = bookings.book_instrument(session, actor=Actor.of(enterprise, "127.0.0.1"), user=enterprise,
                                       instrument_id=instrument.id, start_at=monday_at(9), end_at=monday_at(11),
                                       now=utcnow())
    assert (booking.state, booking.payment_state, booking.payable_fen) == (BookingState.APPROVED, PaymentState.DUE,
                                                                          PAYABLE)
    return booking


@pytest.fixture
def pay(session, enterprise):
    """pay(booking, card_id) → the card payment of the booking's share, made as the booker."""

    def run(booking, card_id: str | None) -> Payment:
        try:
            bookings.pay_by_card(booking.id, actor=Actor.of(enterprise, "127.0.0.1"), user=enterprise, now=utcnow(),
                                 card=card_id)
        finally:
            session.expire_all()
        return card_share(booking)

    return run


def card_share(booking) -> Payment:
    return [p for p in booking.payments if p.method == PaymentMethod.CARD and p.purpose.value == "share"][-1]


def settled(actor: Actor, now=None):
    """The unit of work of a booking change, whose gateway calls are made after it commits."""
    return bookings.booking_change(actor=actor, now=now or utcnow())


@pytest.fixture
def outage(stripe_server):
    """The session's localstripe, to stop or freeze mid-flow; it runs again after the test."""
    yield stripe_server
    stripe_server.restart()


@pytest.fixture
def reconcile(session):
    """A run of the reconciliation job, late enough that no request could still be waiting for a call."""

    def run() -> int:
        settled_count = bookings.reconcile_payments(actor=Actor.system("test"), now=utcnow() + payments.IN_FLIGHT)
        session.expire_all()
        return settled_count

    return run


def intents_of(stripe: StripeClient, booking) -> list[dict]:
    return [i for i in stripe.intents() if i["metadata"].get("booking_id") == str(booking.id)
            and i["metadata"].get("booked_at") == booking.created_at.isoformat()]


def audit_actions(session, payment: Payment) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).where(
        AuditEntry.subject_type == "payments", AuditEntry.subject_id == payment.id).order_by(AuditEntry.id)))


def operator_checks(session, demo_user, booking, *, hours: float) -> None:
    """The operator checks the booker in at the start and out `hours` later."""
    operator = demo_user("operator")
    actor = Actor.of(operator, "127.0.0.1")
    bookings.check_in(session, booking, actor=actor, user=operator, now=booking.start_at)
    with settled(actor):
        bookings.check_out(session, booking, actor=actor, user=operator, now=booking.start_at + timedelta(hours=hours))


# --- the gateway client -------------------------------------------------------------------------

def test_gateway_errors_are_told_apart(stripe, app, card):
    with pytest.raises(GatewayError) as invalid:  # localstripe refuses parameters it does not know
        stripe.post("/v1/payment_intents", {"amount": 100, "currency": "cny", "description": "x"}, key="t-1")
    intent = stripe.post("/v1/payment_intents", {"amount": 100, "currency": "cny", "capture_method": "manual",
                                                 "payment_method": card(DECLINED)}, key="t-2")
    with pytest.raises(GatewayError) as declined:
        stripe.post(f"/v1/payment_intents/{intent['id']}/confirm", key="t-3")
    with pytest.raises(GatewayError) as unavailable:
        StripeClient("http://127.0.0.1:9", "sk_test_x", timeout=1).get("/v1/payment_intents")
    assert (invalid.value.kind, declined.value.kind, declined.value.code, unavailable.value.kind) == (
        "invalid", "declined", "card_declined", "unavailable")


# --- paying by card -----------------------------------------------------------------------------

def test_card_payment_is_authorised_and_confirms_the_booking(session, approved, pay, card, stripe):
    payment = pay(approved, card())
    assert (approved.state, approved.payment_state, approved.payment_method) == (
        BookingState.CONFIRMED, PaymentState.AUTHORISED, PaymentMethod.CARD)
    assert (payment.status, payment.amount_fen, payment.captured_fen) == (PaymentStatus.REQUIRES_CAPTURE, PAYABLE, 0)
    assert payment.idempotency_key == f"booking-{approved.id}-authorise-1" and payment.client_secret
    intent = stripe.get(f"/v1/payment_intents/{payment.intent_id}")
    assert (intent["status"], intent["amount"], intent["currency"], intent["capture_method"]) == (
        "requires_capture", PAYABLE, "cny", "manual")
    assert intent["metadata"] == {"booking_id": str(approved.id), "booked_at": approved.created_at.isoformat(),
                                  "idempotency_key": payment.idempotency_key}
    assert audit_actions(session, payment) == ["payment.started", "payment.authorised"]


def test_double_submit_makes_one_intent_and_one_payment(session, approved, pay, card, stripe):
    with pytest.raises(RuleBroken) as no_card:  # the page sent no card: the intent waits for one
        pay(approved, None)
    first = card_share(approved)
    assert (no_card.value.code, first.status) == ("card_required", PaymentStatus.REQUIRES_CONFIRMATION)
    visa = card()
    assert pay(approved, visa) is first
    assert pay(approved, visa) is first
    assert [p.id for p in approved.payments] == [first.id]
    assert [i["id"] for i in intents_of(stripe, approved)] == [first.intent_id]
    assert (approved.state, first.status) == (BookingState.CONFIRMED, PaymentStatus.REQUIRES_CAPTURE)


def test_declined_card_leaves_the_booking_approved_and_payable_again(session, approved, pay, card, stripe):
    with pytest.raises(RuleBroken) as declined:
        pay(approved, card(DECLINED))
    assert (declined.value.code, declined.value.field) == ("card_declined", "card")
    failed = approved.payments[0]
    assert (failed.status, failed.last_error) == (PaymentStatus.FAILED, "Your card was declined.")
    assert (approved.state, approved.payment_state) == (BookingState.APPROVED, PaymentState.DUE)
    assert payments.can_pay(approved.booker, approved)

    second = pay(approved, card())
    assert second.idempotency_key == f"booking-{approved.id}-authorise-2"
    assert (approved.state, approved.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    assert [i["status"] for i in intents_of(stripe, approved)] == ["requires_payment_method", "requires_capture"]


def test_only_the_booker_pays_and_only_what_is_due(session, approved, pay, card, demo_user):
    session.commit()  # the refusal rolls back its own unit of work, not the booking
    with pytest.raises(Forbidden):
        bookings.pay_by_card(approved.id, actor=Actor.system("t"), user=demo_user("platform"), now=utcnow(),
                             card=card())
    pay(approved, card())
    with pytest.raises(RuleBroken) as nothing:
        bookings.choose_transfer(session, approved, actor=Actor.system("t"), user=approved.booker, now=utcnow())
    assert nothing.value.code == "nothing_to_pay"


# --- completion ---------------------------------------------------------------------------------

def test_completion_captures_the_final_price_in_part(session, approved, pay, card, stripe, demo_user):
    payment = pay(approved, card())
    operator_checks(session, demo_user, approved, hours=1)  # ¥100 + 1 h × ¥400 = ¥500 of ¥900 authorised
    assert (approved.state, approved.final_price_fen, approved.payment_state) == (
        BookingState.COMPLETED, 50_000, PaymentState.PAID)
    assert (payment.status, payment.captured_fen, payment.refunded_fen) == (PaymentStatus.SUCCEEDED, 50_000, 0)
    charge = stripe.get(f"/v1/payment_intents/{payment.intent_id}")["latest_charge"]
    assert (charge["captured"], charge["amount_refunded"]) == (True, PAYABLE - 50_000)  # the rest released


def test_a_higher_final_price_charges_the_difference_with_a_second_intent(session, approved, pay, card, stripe,
                                                                         demo_user):
    share = pay(approved, card())
    operator_checks(session, demo_user, approved, hours=3)  # ¥100 + 3 h × ¥400 = ¥1,300
    difference = approved.payments[1]
    assert (share.status, share.captured_fen) == (PaymentStatus.SUCCEEDED, PAYABLE)
    assert (difference.purpose.value, difference.status, difference.amount_fen, difference.captured_fen) == (
        "difference", PaymentStatus.SUCCEEDED, 40_000, 40_000)
    assert difference.idempotency_key == f"booking-{approved.id}-charge-difference-1"
    assert approved.payment_state == PaymentState.PAID
    first, second = (stripe.get(f"/v1/payment_intents/{p.intent_id}") for p in (share, difference))
    assert second["payment_method"] == first["payment_method"] and second["status"] == "succeeded"


def test_an_intent_cancelled_at_the_gateway_is_never_captured(session, approved, pay, card, stripe, demo_user):
    payment = pay(approved, card())
    stripe.post(f"/v1/payment_intents/{payment.intent_id}/cancel", key="dashboard-cancel")  # localstripe would
    operator_checks(session, demo_user, approved, hours=1)  # still capture it: the app reads the status first
    assert (payment.status, payment.captured_fen, approved.payment_state) == (PaymentStatus.CANCELED, 0,
                                                                              PaymentState.RELEASED)
    assert stripe.get(f"/v1/payment_intents/{payment.intent_id}")["latest_charge"]["captured"] is False


# --- cancellation -------------------------------------------------------------------------------

def test_free_cancellation_releases_the_authorisation(session, approved, pay, card, stripe, enterprise):
    payment = pay(approved, card())
    with settled(Actor.of(enterprise, None)):
        fee = bookings.cancel_booking(session, approved, actor=Actor.of(enterprise, None), user=enterprise,
                                      now=approved.start_at - timedelta(days=3))
    assert (fee, approved.state, approved.payment_state) == (0, BookingState.CANCELLED, PaymentState.RELEASED)
    assert (payment.status, payment.captured_fen, payment.pending_action) == (PaymentStatus.CANCELED, 0, None)
    assert stripe.get(f"/v1/payment_intents/{payment.intent_id}")["status"] == "canceled"


def test_late_cancellation_captures_the_fee_and_releases_the_rest(session, approved, pay, card, stripe, enterprise):
    payment = pay(approved, card())
    with settled(Actor.of(enterprise, None)):
        fee = bookings.cancel_booking(session, approved, actor=Actor.of(enterprise, None), user=enterprise,
                                      now=approved.start_at - timedelta(hours=2))
    assert fee == PAYABLE * 50 // 100
    assert (payment.status, payment.captured_fen, approved.payment_state) == (PaymentStatus.SUCCEEDED, fee,
                                                                              PaymentState.PAID)
    charge = stripe.get(f"/v1/payment_intents/{payment.intent_id}")["latest_charge"]
    assert charge["amount_refunded"] == PAYABLE - fee


def test_a_refund_never_exceeds_what_was_captured(session, approved, pay, card, stripe, demo_user):
    payment = pay(approved, card())
    operator_checks(session, demo_user, approved, hours=1)  # ¥500 captured
    actor = Actor.system("test")
    with settled(actor):
        payments.settle_cancellation(session, approved, fee_fen=10_000, actor=actor, now=utcnow())
    assert (payment.refunded_fen, approved.payment_state) == (40_000, PaymentState.REFUNDED)
    for _again in range(2):  # asked for everything back, twice: only what is left of the capture is refunded
        with settled(actor):
            payments.settle_cancellation(session, approved, fee_fen=0, actor=actor, now=utcnow())
    assert (payment.captured_fen, payment.refunded_fen, len(payment.refund_ids)) == (50_000, 50_000, 2)
    charge = stripe.get(f"/v1/payment_intents/{payment.intent_id}")["latest_charge"]
    assert charge["amount_refunded"] == PAYABLE  # the ¥400 released at capture and the ¥500 refunded


# --- bank transfer ------------------------------------------------------------------------------

def test_recorded_transfer_confirms_the_booking_and_a_cancellation_records_the_refund_due(
        session, approved, enterprise, demo_user):
    admin, actor = demo_user("platform"), Actor.of(demo_user("platform"), None)
    expected = bookings.choose_transfer(session, approved, actor=Actor.of(enterprise, None), user=enterprise,
                                        now=utcnow())
    assert bookings.choose_transfer(session, approved, actor=Actor.of(enterprise, None), user=enterprise,
                                    now=utcnow()) is expected
    assert (expected.status, approved.state, approved.payment_state, approved.payment_method) == (
        PaymentStatus.TRANSFER_EXPECTED, BookingState.APPROVED, PaymentState.DUE, PaymentMethod.TRANSFER)
    today = utcnow().date()
    record = dict(actor=actor, now=utcnow(), received_on=today, reference="BOC-20261127-0001")
    with pytest.raises(Forbidden):
        bookings.record_transfer(session, approved, user=enterprise, amount_fen=PAYABLE, **record)
    with pytest.raises(RuleBroken) as short:
        bookings.record_transfer(session, approved, user=admin, amount_fen=PAYABLE - 1, **record)
    assert (short.value.code, short.value.field) == ("transfer_amount_mismatch", "amount_fen")
    with pytest.raises(RuleBroken) as future:
        bookings.record_transfer(session, approved, user=admin, amount_fen=PAYABLE,
                                 **record | {"received_on": today + timedelta(days=2)})
    assert future.value.field == "received_on"

    received = bookings.record_transfer(session, approved, user=admin, amount_fen=PAYABLE, **record)
    assert received is expected
    assert (received.status, received.captured_fen, received.transfer_reference, received.recorded_by_id) == (
        PaymentStatus.TRANSFER_RECEIVED, PAYABLE, "BOC-20261127-0001", admin.id)
    assert (approved.state, approved.payment_state) == (BookingState.CONFIRMED, PaymentState.PAID)

    bookings.cancel_booking(session, approved, actor=actor, user=admin, now=utcnow())  # by the platform: no fee
    assert (received.refunded_fen, approved.payment_state) == (PAYABLE, PaymentState.REFUNDED)


def test_choosing_transfer_after_starting_by_card_cancels_the_card_attempt(session, approved, enterprise, stripe, pay,
                                                                           reconcile):
    actor = Actor.of(enterprise, None)
    with pytest.raises(RuleBroken):
        pay(approved, None)  # an intent made, the card never entered
    attempt = card_share(approved)
    with settled(actor):
        bookings.choose_transfer(session, approved, actor=actor, user=enterprise, now=utcnow())
    assert (attempt.status, attempt.pending_action, approved.payment_state) == (PaymentStatus.CANCELED, None,
                                                                                PaymentState.DUE)
    assert stripe.get(f"/v1/payment_intents/{attempt.intent_id}")["status"] == "canceled"
    assert reconcile() == 0


# --- the gateway down, slow, or answering too late ----------------------------------------------

def test_gateway_down_while_paying_keeps_the_booking_and_reconciliation_settles_it(
        app, session, approved, card, outage, stripe, reconcile, pay):
    visa = card()
    outage.kill()
    with pytest.raises(payments.PaymentGatewayUnavailable) as down:
        pay(approved, visa)
    assert (down.value.status, down.value.code) == (503, "payment_gateway_unavailable")
    assert "支付服务没有响应，未产生任何扣款" in down.value.message  # in the default language, zh_CN
    with app.test_request_context(), force_locale("en"):
        assert "not answering; nothing was charged" in payments.PaymentGatewayUnavailable().message
    payment = card_share(approved)
    assert (approved.state, approved.payment_state) == (BookingState.APPROVED, PaymentState.PENDING)
    assert (payment.status, payment.pending_action, payment.captured_fen, payment.attempt) == (
        PaymentStatus.CREATING, "authorise", 0, 1)
    assert reconcile() == 0  # still down: nothing settled, nothing lost
    assert approved.payment_state == PaymentState.PENDING

    outage.restart()
    assert reconcile() == 1  # the gateway never got the intent: the attempt is over, nothing charged
    assert (approved.state, approved.payment_state, payment.status) == (BookingState.APPROVED, PaymentState.DUE,
                                                                        PaymentStatus.CANCELED)
    again = pay(approved, visa)
    assert again.idempotency_key == f"booking-{approved.id}-authorise-2"
    assert (approved.state, approved.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    assert [i["id"] for i in intents_of(stripe, approved)] == [again.intent_id]


def test_an_authorisation_answered_too_late_is_found_by_its_metadata(session, approved, card, outage, stripe,
                                                                     reconcile, pay):
    with pytest.raises(RuleBroken):
        pay(approved, None)  # the intent is made; the card comes next
    payment = card_share(approved)
    visa = card()
    outage.pause()  # the next calls wait past our timeout, then go through unanswered
    with pytest.raises(payments.PaymentGatewayUnavailable):
        pay(approved, visa)
    assert (approved.state, approved.payment_state, payment.pending_action) == (
        BookingState.APPROVED, PaymentState.PENDING, "authorise")
    outage.resume()
    assert reconcile() == 1
    assert payment.status in (PaymentStatus.REQUIRES_CONFIRMATION, PaymentStatus.REQUIRES_CAPTURE)
    if payment.status == PaymentStatus.REQUIRES_CONFIRMATION:  # the confirmation never went out: paid again
        assert approved.payment_state == PaymentState.DUE
        assert pay(approved, visa) is payment
    assert (approved.state, approved.payment_state, payment.status) == (
        BookingState.CONFIRMED, PaymentState.AUTHORISED, PaymentStatus.REQUIRES_CAPTURE)
    assert [i["id"] for i in intents_of(stripe, approved)] == [payment.intent_id]
    assert reconcile() == 0


def test_a_creation_whose_answer_was_lost_is_found_by_its_metadata(session, approved, card, outage, stripe,
                                                                   reconcile, pay):
    visa = card()
    outage.pause()  # the intent is created on resume, its answer lost
    with pytest.raises(payments.PaymentGatewayUnavailable):
        pay(approved, visa)
    payment = card_share(approved)
    assert (payment.status, payment.intent_id) == (PaymentStatus.CREATING, None)
    outage.resume()
    deadline = time.monotonic() + 10
    while not intents_of(stripe, approved) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reconcile() == 1
    made = intents_of(stripe, approved)
    assert [i["id"] for i in made] == [payment.intent_id]
    assert (payment.status, approved.payment_state) == (PaymentStatus.REQUIRES_CONFIRMATION, PaymentState.DUE)
    assert reconcile() == 0


def test_gateway_down_at_cancellation_cancels_the_booking_and_the_job_releases_it_later(
        app, session, approved, pay, card, enterprise, outage, stripe):
    payment = pay(approved, card())
    outage.kill()
    with settled(Actor.of(enterprise, None)):
        bookings.cancel_booking(session, approved, actor=Actor.of(enterprise, None), user=enterprise,
                                now=approved.start_at - timedelta(days=3))
    assert (approved.state, approved.payment_state) == (BookingState.CANCELLED, PaymentState.PENDING)
    assert (payment.status, payment.pending_action, payment.attempt) == (PaymentStatus.REQUIRES_CAPTURE, "cancel", 1)
    outage.restart()
    assert jobs.reconcile_payments() == 1  # an action left unanswered is taken up at once
    session.expire_all()
    assert (payment.status, payment.pending_action, approved.payment_state) == (PaymentStatus.CANCELED, None,
                                                                                PaymentState.RELEASED)
    assert stripe.get(f"/v1/payment_intents/{payment.intent_id}")["status"] == "canceled"
    assert jobs.reconcile_payments() == 0


def test_gateway_down_at_completion_is_captured_by_reconciliation(session, approved, pay, card, outage, demo_user,
                                                                  reconcile, stripe):
    payment = pay(approved, card())
    outage.kill()
    operator_checks(session, demo_user, approved, hours=1)
    assert (approved.state, approved.payment_state) == (BookingState.COMPLETED, PaymentState.PENDING)
    assert (payment.pending_action, payment.pending_amount_fen, payment.captured_fen) == ("capture", 50_000, 0)
    outage.restart()
    assert reconcile() == 1
    assert (payment.status, payment.captured_fen, approved.payment_state) == (PaymentStatus.SUCCEEDED, 50_000,
                                                                              PaymentState.PAID)
    assert stripe.get(f"/v1/payment_intents/{payment.intent_id}")["latest_charge"]["amount_refunded"] == 40_000


def test_an_intent_made_for_a_payment_but_not_its_own_is_cancelled(session, approved, pay, stripe, reconcile):
    with pytest.raises(RuleBroken):
        pay(approved, None)
    payment = card_share(approved)
    orphan = stripe.post("/v1/payment_intents", {  # a creation retried after its answer was lost
        "amount": PAYABLE, "currency": "cny", "capture_method": "manual",
        "metadata": {"booking_id": approved.id, "booked_at": approved.created_at.isoformat(),
                     "idempotency_key": payment.idempotency_key}}, key="retried-create")["id"]
    assert reconcile() == 1
    assert stripe.get(f"/v1/payment_intents/{orphan}")["status"] == "canceled"
    assert stripe.get(f"/v1/payment_intents/{payment.intent_id}")["status"] == "requires_payment_method"
    assert "payment.orphan_canceled" in audit_actions(session, payment)
    assert reconcile() == 0


def authorise_without_record(stripe, booking, card_id: str) -> str:
    """An authorisation made for the booking whose payment never committed (as a request that died
    between the gateway's answer and its commit used to leave one)."""
    return stripe.post("/v1/payment_intents", {
        "amount": PAYABLE, "currency": "cny", "capture_method": "manual", "payment_method": card_id, "confirm": True,
        "metadata": {"booking_id": booking.id, "booked_at": booking.created_at.isoformat(),
                     "idempotency_key": f"booking-{booking.id}-authorise-1"}}, key=f"lost-{booking.id}")["id"]


def test_an_authorisation_with_no_payment_record_is_attached_to_the_booking_waiting_for_it(
        session, approved, card, stripe, reconcile):
    intent_id = authorise_without_record(stripe, approved, card())
    assert reconcile() >= 1
    payment = card_share(approved)
    assert (payment.intent_id, payment.status, payment.amount_fen, payment.idempotency_key) == (
        intent_id, PaymentStatus.REQUIRES_CAPTURE, PAYABLE, f"booking-{approved.id}-authorise-1")
    assert (approved.state, approved.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    assert audit_actions(session, payment) == ["payment.recovered", "payment.authorised"]
    assert stripe.get(f"/v1/payment_intents/{intent_id}")["status"] == "requires_capture"
    assert reconcile() == 0


def test_an_authorisation_with_no_payment_record_on_a_cancelled_booking_is_released(
        session, approved, card, stripe, reconcile, enterprise):
    with settled(Actor.of(enterprise, None)):
        bookings.cancel_booking(session, approved, actor=Actor.of(enterprise, None), user=enterprise, now=utcnow())
    intent_id = authorise_without_record(stripe, approved, card())
    assert reconcile() >= 1
    payment = card_share(approved)
    assert (payment.intent_id, payment.status, payment.captured_fen) == (intent_id, PaymentStatus.CANCELED, 0)
    assert (approved.state, approved.payment_state) == (BookingState.CANCELLED, PaymentState.RELEASED)
    assert audit_actions(session, payment) == ["payment.recovered", "payment.authorised", "payment.canceled"]
    assert stripe.get(f"/v1/payment_intents/{intent_id}")["status"] == "canceled"
    assert reconcile() == 0


# --- the pages ----------------------------------------------------------------------------------

def pay_url(booking) -> str:
    return f"/bookings/{booking.id}/pay"


def test_pay_page_shows_the_amount_and_both_ways_to_pay(approved, login_as, stripe_server):
    page = login_as("enterprise").get(pay_url(approved))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "¥900.00" in html and 'data-testid="card-form"' in html and 'data-testid="transfer-form"' in html
    assert f'src="{stripe_server.url}/js.stripe.com/v3/"' in html and '"pk_test_kequip"' in html


def test_pay_page_is_the_bookers(approved, login_as):
    assert login_as("expert").get(pay_url(approved)).status_code == 404  # may not see the booking
    platform = login_as("platform").get(pay_url(approved))  # sees it, does not pay it
    assert (platform.status_code, platform.location) == (302, f"/bookings/{approved.id}")


def test_paying_by_card_on_the_page_confirms_the_booking_once(session, approved, login_as, card, stripe):
    client, visa = login_as("enterprise"), card()
    for _click in range(2):
        sent = client.post(pay_url(approved), data={"card-payment_method": visa})
        assert (sent.status_code, sent.location) == (302, f"/bookings/{approved.id}")
    session.expire_all()
    assert (approved.state, approved.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    assert len(intents_of(stripe, approved)) == len(approved.payments) == 1


def test_a_declined_card_on_the_page_is_refused_and_the_booking_stays_payable(session, approved, login_as, card):
    refused = login_as("enterprise").post(pay_url(approved), data={"card-payment_method": card(DECLINED)})
    assert refused.status_code == 422 and "alert-danger" in refused.get_data(as_text=True)
    session.expire_all()
    assert [p.status for p in approved.payments] == [PaymentStatus.FAILED]  # the decline is kept
    assert (approved.state, approved.payment_state) == (BookingState.APPROVED, PaymentState.DUE)


def test_a_page_without_the_card_field_filled_asks_for_it(approved, login_as):
    assert login_as("enterprise").post(pay_url(approved), data={"card-payment_method": ""}).status_code == 422


def test_gateway_down_on_the_page_answers_503_and_keeps_the_booking(session, approved, login_as, card, outage):
    visa, client = card(), login_as("enterprise")
    outage.kill()
    down = client.post(pay_url(approved), data={"card-payment_method": visa})
    assert down.status_code == 503 and "alert-danger" in down.get_data(as_text=True)
    assert 'data-testid="payment-pending"' in client.get(pay_url(approved)).get_data(as_text=True)
    session.expire_all()
    assert (approved.state, approved.payment_state) == (BookingState.APPROVED, PaymentState.PENDING)
    assert [p.status for p in approved.payments] == [PaymentStatus.CREATING]


def test_transfer_chosen_on_the_page_and_recorded_by_the_platform(session, approved, login_as):
    booker = login_as("enterprise")
    chosen = booker.post(pay_url(approved), data={"transfer-submit": "1"})
    assert (chosen.status_code, chosen.location) == (302, f"http://localhost{pay_url(approved)}")
    assert 'data-testid="transfer-expected"' in booker.get(pay_url(approved)).get_data(as_text=True)
    url, today = f"/bookings/{approved.id}/transfer", utcnow().date().isoformat()
    assert booker.post(url, data={"amount": "900.00", "received_on": today, "reference": "x"}).status_code == 403

    admin = login_as("platform")
    assert admin.get(url).status_code == 200
    short = admin.post(url, data={"amount": "899.99", "received_on": today, "reference": "BOC-0001"})
    assert short.status_code == 422 and "is-invalid" in short.get_data(as_text=True)
    recorded = admin.post(url, data={"amount": "900.00", "received_on": today, "reference": "BOC-0001"})
    assert (recorded.status_code, recorded.location) == (302, f"/bookings/{approved.id}")
    session.expire_all()
    assert (approved.state, approved.payment_state) == (BookingState.CONFIRMED, PaymentState.PAID)


def test_transfer_page_shows_the_bank_account_the_note_and_the_deadline(session, approved, login_as):
    platform = approved.instrument.platform
    platform.bank_account_name, platform.bank_name, platform.bank_account_number = (
        "柯桥测试平台", "中国工商银行绍兴柯桥支行", "1211014009200012345")
    session.commit()
    deadline = approved.expires_at
    shown = to_local(deadline).strftime("%Y-%m-%d %H:%M")
    booker = login_as("enterprise")
    choice = booker.get(pay_url(approved)).get_data(as_text=True)
    assert f'<time datetime="{deadline.isoformat()}" data-testid="transfer-deadline">{shown}</time>' in choice
    booker.post(pay_url(approved), data={"transfer-submit": "1"})
    session.expire_all()
    note = payments.expected_transfer(approved).idempotency_key
    for url in (pay_url(approved), f"/bookings/{approved.id}"):
        html = booker.get(url).get_data(as_text=True)
        for testid, value in (("bank-account-name", "柯桥测试平台"), ("bank-name", "中国工商银行绍兴柯桥支行"),
                              ("bank-account-number", "1211014009200012345")):
            assert f'data-testid="{testid}">{value}<' in html
        assert f'data-testid="transfer-note">{note}<' in html
        assert f'<time datetime="{deadline.isoformat()}" data-testid="transfer-deadline">{shown}</time>' in html
        assert 'data-testid="no-bank-details"' not in html


def test_transfer_page_without_bank_details_asks_to_contact_the_platform(session, approved, login_as):
    platform = approved.instrument.platform
    platform.bank_account_name = platform.bank_name = platform.bank_account_number = None
    session.commit()
    booker = login_as("enterprise")
    booker.post(pay_url(approved), data={"transfer-submit": "1"})
    for url in (pay_url(approved), f"/bookings/{approved.id}"):
        html = booker.get(url).get_data(as_text=True)
        assert 'data-testid="no-bank-details"' in html and 'data-testid="bank-account-number"' not in html
        assert platform.name in html and 'data-testid="transfer-deadline"' in html


def test_an_unpaid_transfer_expires_at_the_deadline_and_not_before(session, approved, enterprise):
    bookings.choose_transfer(session, approved, actor=Actor.of(enterprise, "127.0.0.1"), user=enterprise,
                             now=utcnow())
    session.commit()
    deadline = approved.expires_at
    assert bookings.expire_bookings(session, now=deadline - timedelta(seconds=1)) == 0
    session.commit()
    assert approved.state == BookingState.APPROVED
    assert bookings.expire_bookings(session, now=deadline) == 1
    session.commit()
    assert approved.state == BookingState.EXPIRED


# --- paying while the platform decides ------------------------------------------------------------

@pytest.fixture
def requested(session, create_instrument, enterprise, monday_at):
    """A booking of an instrument by appointment: it waits for the platform's approval, ¥900.00 to pay."""
    instrument = create_instrument(state=InstrumentState.PUBLISHED, sharing_mode="appointment")
    booking = bookings.book_instrument(session, actor=Actor.of(enterprise, "127.0.0.1"), user=enterprise,
                                       instrument_id=instrument.id, start_at=monday_at(9), end_at=monday_at(11),
                                       now=utcnow())
    assert (booking.state, booking.payment_state) == (BookingState.REQUESTED, PaymentState.DUE)
    return booking


def test_a_share_paid_while_waiting_for_approval_confirms_on_approval(session, requested, pay, card, demo_user):
    pay(requested, card())
    assert (requested.state, requested.payment_state) == (BookingState.REQUESTED, PaymentState.AUTHORISED)
    admin = demo_user("platform")
    bookings.approve_booking(session, requested, actor=Actor.of(admin, None), user=admin, now=utcnow())
    assert (requested.state, requested.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)


def test_rejection_releases_an_authorisation_made_while_waiting(session, requested, pay, card, demo_user, stripe):
    payment = pay(requested, card())
    admin = demo_user("platform")
    with settled(Actor.of(admin, None)):
        bookings.reject_booking(session, requested, actor=Actor.of(admin, None), user=admin, now=utcnow(),
                                reason="当天仪器已安排内部实验")
    assert (requested.state, requested.payment_state, payment.status) == (
        BookingState.REJECTED, PaymentState.RELEASED, PaymentStatus.CANCELED)
    assert [i["status"] for i in intents_of(stripe, requested)] == ["canceled"]
