"""A weekly series paid in one card payment, against a real localstripe: one intent for the sum of the
enterprise's shares (what the preview showed, to the fen), captured at once, and one payment per
booking holding its share of it; cancelling one booking refunds exactly its part from that intent."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.db import utcnow
from core.errors import RuleBroken
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState
from marketplace.payments import services as payments
from marketplace.payments.models import Payment, PaymentState, PaymentStatus
from marketplace.registry.models import InstrumentState

DECLINED = "4000000000000341"
WEEK_FEN = 10_000 + 40_000  # the district enterprise's ¥100 setup fee and one hour at ¥400


@pytest.fixture
def enterprise(demo_user):
    return demo_user("enterprise")


@pytest.fixture
def series_args(session, create_instrument, enterprise, monday_at):
    instrument = create_instrument(state=InstrumentState.PUBLISHED)
    return {"actor": Actor.of(enterprise, "127.0.0.1"), "user": enterprise, "instrument_id": instrument.id,
            "start_at": monday_at(9), "end_at": monday_at(10), "weeks": 3, "now": utcnow()}


@pytest.fixture
def series(session, series_args):
    made, booked, skipped = bookings.book_series(session, **series_args)
    assert not skipped and [b.state for b in booked] == [BookingState.APPROVED] * 3
    return made, booked


def pay(session, series, enterprise, card_id: str) -> list[Payment]:
    made, booked = series
    try:
        bookings.pay_series_by_card(made.id, actor=Actor.of(enterprise, "127.0.0.1"), user=enterprise, now=utcnow(),
                                    card=card_id)
    finally:
        session.expire_all()
    return [b.payments[-1] for b in booked]


def test_the_series_is_charged_once_for_what_its_preview_showed(session, series_args, enterprise, card, stripe):
    plan = bookings.preview_series(session, **series_args)
    made, booked, _skipped = bookings.book_series(session, **series_args)

    parts = pay(session, (made, booked), enterprise, card())

    assert plan.payable_fen == sum(b.payable_fen for b in booked) == 3 * WEEK_FEN
    assert {p.intent_id for p in parts} == {parts[0].intent_id} and parts[0].intent_id
    intent = stripe.get(f"/v1/payment_intents/{parts[0].intent_id}")
    assert (intent["status"], intent["amount"], intent["capture_method"]) == ("succeeded", plan.payable_fen, "automatic")
    assert intent["latest_charge"]["amount"] == plan.payable_fen
    assert intent["metadata"]["idempotency_key"] == parts[0].group_key == f"series-{made.id}-charge-1"
    assert [(p.status, p.amount_fen, p.captured_fen, p.group_key) for p in parts] == [
        (PaymentStatus.SUCCEEDED, WEEK_FEN, WEEK_FEN, parts[0].group_key)] * 3
    assert [(b.state, b.payment_state) for b in booked] == [(BookingState.CONFIRMED, PaymentState.PAID)] * 3
    with pytest.raises(RuleBroken) as nothing:  # paid: neither the series nor one of its bookings again
        pay(session, (made, booked), enterprise, card())
    assert nothing.value.code == "nothing_to_pay"
    assert not payments.can_pay(enterprise, booked[1])


def test_cancelling_one_booking_of_a_paid_series_refunds_exactly_its_part(session, series, enterprise, card, stripe):
    made, booked = series
    parts = pay(session, series, enterprise, card())
    actor = Actor.of(enterprise, None)

    with bookings.booking_change(actor=actor, now=utcnow()) as change:
        fee = bookings.cancel_booking(change, booked[1], actor=actor, user=enterprise,
                                      now=booked[1].start_at - timedelta(days=3))
    session.expire_all()

    assert fee == 0
    assert (parts[1].refunded_fen, booked[1].state, booked[1].payment_state) == (
        WEEK_FEN, BookingState.CANCELLED, PaymentState.REFUNDED)
    assert [(booked[i].payment_state, parts[i].refunded_fen) for i in (0, 2)] == [(PaymentState.PAID, 0)] * 2
    charge = stripe.get(f"/v1/payment_intents/{parts[1].intent_id}")["latest_charge"]
    assert (charge["amount"], charge["amount_refunded"]) == (3 * WEEK_FEN, WEEK_FEN)


def test_a_late_cancellation_of_one_booking_keeps_its_fee_and_refunds_the_rest_of_its_part(
        session, series, enterprise, card, stripe):
    made, booked = series
    parts = pay(session, series, enterprise, card())
    actor = Actor.of(enterprise, None)
    with bookings.booking_change(actor=actor, now=utcnow()) as change:
        fee = bookings.cancel_booking(change, booked[0], actor=actor, user=enterprise,
                                      now=booked[0].start_at - timedelta(hours=2))
    session.expire_all()
    assert fee == WEEK_FEN * 50 // 100
    assert parts[0].refunded_fen == WEEK_FEN - fee
    charge = stripe.get(f"/v1/payment_intents/{parts[0].intent_id}")["latest_charge"]
    assert charge["amount_refunded"] == WEEK_FEN - fee


def test_a_declined_card_charges_nothing_and_the_series_can_be_paid_again(session, series, enterprise, card, stripe):
    made, booked = series
    with pytest.raises(RuleBroken) as declined:
        pay(session, series, enterprise, card(DECLINED))
    assert declined.value.code == "card_declined"
    first = [b.payments[-1] for b in booked]
    assert [(p.status, p.captured_fen) for p in first] == [(PaymentStatus.FAILED, 0)] * 3
    assert [(b.state, b.payment_state) for b in booked] == [(BookingState.APPROVED, PaymentState.DUE)] * 3

    again = pay(session, series, enterprise, card())

    assert {p.group_key for p in again} == {f"series-{made.id}-charge-2"}
    assert [b.payment_state for b in booked] == [PaymentState.PAID] * 3
    assert stripe.get(f"/v1/payment_intents/{again[0].intent_id}")["amount"] == 3 * WEEK_FEN


def test_gateway_down_leaves_the_series_pending_and_reconciliation_settles_it(session, series, enterprise, card,
                                                                              stripe_server):
    made, booked = series
    visa = card()
    stripe_server.kill()
    try:
        with pytest.raises(payments.PaymentGatewayUnavailable):
            pay(session, series, enterprise, visa)
        assert [b.payment_state for b in booked] == [PaymentState.PENDING] * 3
        with pytest.raises(Exception) as waiting:  # a second click waits for the first
            pay(session, series, enterprise, visa)
        assert waiting.value.code == "payment_in_progress"
    finally:
        stripe_server.restart()
    assert bookings.reconcile_payments(actor=Actor.system("test"), now=utcnow() + payments.IN_FLIGHT) == 3
    session.expire_all()
    assert [(b.payment_state, b.payments[-1].status) for b in booked] == [
        (PaymentState.DUE, PaymentStatus.CANCELED)] * 3  # the charge never reached the gateway: nothing charged


def test_the_series_pay_page_shows_the_total_and_pays_it(session, series, enterprise, login_as, card, stripe):
    made, booked = series
    client = login_as("enterprise")
    result = client.get(f"/booking-series/{made.id}").get_data(as_text=True)
    assert f'href="/booking-series/{made.id}/pay"' in result and "¥1,500.00" in result
    page = client.get(f"/booking-series/{made.id}/pay")
    assert page.status_code == 200 and 'data-fen="150000"' in page.get_data(as_text=True)
    assert login_as("expert").get(f"/booking-series/{made.id}/pay").status_code == 404
    assert client.post(f"/booking-series/{made.id}/pay", data={"card-payment_method": "nonsense"}).status_code == 422

    paid = client.post(f"/booking-series/{made.id}/pay", data={"card-payment_method": card()})

    assert paid.status_code == 302 and paid.headers["Location"] == f"/booking-series/{made.id}"
    session.expire_all()
    assert [b.payment_state for b in booked] == [PaymentState.PAID] * 3
    assert session.scalar(select(Payment.intent_id).where(Payment.booking_id == booked[0].id))
    again = client.get(f"/booking-series/{made.id}/pay")
    assert again.status_code == 302  # nothing left to pay
