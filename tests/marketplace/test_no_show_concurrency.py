"""No-shows marked and undone by racing operators, on committed data (SQLite and PostgreSQL) against the
real localstripe: each change re-reads the booking under its lock, so of racing marks one is made and of
racing undos one is made (one capture, one refund at the gateway); the others get 409
booking_state_changed."""
from __future__ import annotations

from collections import Counter
from functools import partial

import pytest

from core.audit import Actor
from core.extensions import db
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingState
from marketplace.payments.models import PaymentState
from tests.marketplace.test_payment_concurrency import (  # noqa: F401  (fixtures)
    PAYABLE,
    at_gateway,
    at_once,
    live_booking,
    pay,
    trail,
    user,
)

pytestmark = pytest.mark.live


def operator_does(change, booking_id: int, now, reason: str) -> None:
    operator = user(db.session, "operator")
    actor = Actor.of(operator, None)
    with bookings.booking_change(actor=actor, now=now) as session:
        booking = bookings.get_booking(session, booking_id, operator)
        change(session, booking, actor=actor, user=operator, now=now, reason=reason)


def test_racing_no_show_marks_and_undos_each_happen_once(live_app, live_booking, card, stripe, monday_at):
    booking_id = live_booking()
    with live_app.app_context():
        pay(booking_id, card())
        db.session.remove()
    mark = partial(operator_does, bookings.report_no_show, booking_id, monday_at(9, 20), "预约人未到")
    undo = partial(operator_does, bookings.undo_no_show, booking_id, monday_at(10), "仪器故障，改期")

    assert Counter(at_once(live_app, [mark] * 6)) == {200: 1, (409, "booking_state_changed"): 5}
    with live_app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert (booking.state, booking.cancellation_fee_fen, booking.payments[0].captured_fen) == (
            BookingState.NO_SHOW, PAYABLE, PAYABLE)
        db.session.remove()

    assert Counter(at_once(live_app, [undo] * 6)) == {200: 1, (409, "booking_state_changed"): 5}
    with live_app.app_context():
        booking = db.session.get(Booking, booking_id)
        payment = booking.payments[0]
        assert (booking.state, booking.payment_state, booking.cancellation_fee_fen) == (
            BookingState.CANCELLED, PaymentState.REFUNDED, 0)
        assert (payment.captured_fen, payment.refunded_fen, len(payment.refund_ids), payment.pending_action) == (
            PAYABLE, PAYABLE, 1, None)
        assert at_gateway(stripe, booking) == ["succeeded"]
        assert stripe.get(f"/v1/refunds/{payment.refund_ids[0]}")["amount"] == PAYABLE
        audit, mails = trail(booking_id)
        assert (audit["booking.no_show"], audit["booking.no_show_undone"], mails["booking_cancelled"]) == (1, 1, 1)
        db.session.remove()
