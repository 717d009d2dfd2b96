"""Booking changes and payments racing each other, and a process dying between the gateway's answer and
its record, on committed data (SQLite and PostgreSQL) against the real localstripe.

Every change of a booking takes its row lock and re-reads its state (bookings.lock_booking): of racing
changes one is made and the others get 409 booking_state_changed, with one audit row and one mail. No
gateway call is made inside a transaction (bookings.booking_change, bookings.pay_by_card): a hung
gateway holds no lock, and what a crash leaves is settled by reconciliation."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import services as core_services
from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.errors import KequipError
from core.extensions import db
from core.models import AuditEntry, OutboxMessage, Platform, User
from marketplace.booking import jobs
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingState
from marketplace.payments import services as payments
from marketplace.payments.models import Payment, PaymentState, PaymentStatus
from marketplace.registry import services
from tests.app_servers import post_at_once
from tests.marketplace.conftest import instrument_values

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
PAYABLE = 10_000 + 2 * 40_000  # the district enterprise's ¥100 setup fee and two hours at ¥400


def user(session, name: str) -> User:
    return session.scalar(sa.select(User).where(User.email == f"{name}@kequip.test"))


@pytest.fixture
def live_booking(live_app, monday_at):
    """live_booking(sharing_mode="open") → the id of the enterprise's committed booking of an instrument
    of its own, Monday next week 09:00–11:00 with ¥900.00 to pay: approved, or requested for an
    instrument by appointment."""

    def make(sharing_mode: str = "open") -> int:
        with live_app.app_context():
            with unit_of_work() as session:
                admin, bureau = user(session, "platform"), user(session, "bureau")
                platform = session.get(Platform, admin.grants[0].organisation_id)
                instrument = services.create_instrument(
                    session, platform, admin, actor=Actor.system("test"), submit=True, now=utcnow(),
                    values=instrument_values(session, name_zh="并发付款测试仪", sharing_mode=sharing_mode))
                services.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
                enterprise = user(session, "enterprise")
                booking = bookings.book_instrument(session, actor=Actor.of(enterprise, None), user=enterprise,
                                                   instrument_id=instrument.id, start_at=monday_at(9),
                                                   end_at=monday_at(11), now=utcnow())
                booking_id = booking.id
            db.session.remove()
        return booking_id

    return make


def at_once(app, work: list[Callable[[], object]]) -> list[int | tuple[int, str]]:
    """Run each piece of work in its own thread and app context, all released at one moment: 200 for
    each that succeeded, (status, code) for each refused."""
    outcomes: list = [None] * len(work)
    barrier = threading.Barrier(len(work))

    def run(n: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                work[n]()
                outcomes[n] = 200
            except KequipError as error:
                outcomes[n] = (error.status, error.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def pay(booking_id: int, card: str) -> None:
    enterprise = user(db.session, "enterprise")
    bookings.pay_by_card(booking_id, actor=Actor.of(enterprise, None), user=enterprise, now=utcnow(), card=card)


def cancel(booking_id: int, who: str = "enterprise") -> None:
    person = user(db.session, who)
    with bookings.booking_change(actor=Actor.of(person, None), now=utcnow()) as session:
        booking = bookings.get_booking(session, booking_id, person)
        bookings.cancel_booking(session, booking, actor=Actor.of(person, None), user=person, now=utcnow())


def trail(booking_id: int) -> tuple[Counter, Counter]:
    """The booking's audit actions and the templates of the mails queued about it."""
    audit = Counter(db.session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.subject_type == "bookings", AuditEntry.subject_id == booking_id)))
    mails = Counter(m.template for m in db.session.scalars(sa.select(OutboxMessage))
                    if m.context.get("booking_id") == booking_id)
    return audit, mails


def at_gateway(stripe, booking: Booking) -> list[str]:
    """The statuses of the booking's intents, as the gateway has them."""
    return [i["status"] for i in stripe.intents() if i["metadata"].get("booking_id") == str(booking.id)
            and i["metadata"].get("booked_at") == booking.created_at.isoformat()]


def test_of_20_concurrent_cancellations_one_is_made_and_the_gateway_released_once(
        live_app, live_server, live_booking, card, stripe):
    booking_id = live_booking()
    with live_app.app_context():
        pay(booking_id, card())
        token, _row = core_services.issue_api_token(db.session, user(db.session, "enterprise"),
                                                    actor=Actor.system("test"), now=utcnow(), ttl=timedelta(hours=1))
        db.session.commit()
        db.session.remove()
    answers = post_at_once(f"{live_server.url}/api/v1/bookings/{booking_id}/cancel", [(token, {})] * 20)
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: 1, 409: 19}, [answer.text for answer in answers if answer.status_code not in (200, 409)]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"booking_state_changed"}
    assert next(a.json() for a in answers if a.status_code == 200)["booking"]["payment_state"] == "released"
    with live_app.app_context():
        booking = db.session.get(Booking, booking_id)
        audit, mails = trail(booking_id)
        assert (audit["booking.cancelled"], mails["booking_cancelled"]) == (1, 1)
        assert (booking.state, booking.payment_state) == (BookingState.CANCELLED, PaymentState.RELEASED)
        payment = booking.payments[0]
        assert (payment.status, payment.pending_action, payment.captured_fen) == (PaymentStatus.CANCELED, None, 0)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.subject_type == "payments", AuditEntry.subject_id == payment.id,
            AuditEntry.action == "payment.canceled")) == 1
        assert at_gateway(stripe, booking) == ["canceled"]
        db.session.remove()


def test_concurrent_approvals_approve_once(live_app, live_booking):
    booking_id = live_booking(sharing_mode="appointment")

    def approve() -> None:
        admin = user(db.session, "platform")
        with bookings.booking_change(actor=Actor.of(admin, None), now=utcnow()) as session:
            booking = bookings.get_booking(session, booking_id, admin)
            bookings.approve_booking(session, booking, actor=Actor.of(admin, None), user=admin, now=utcnow())

    outcomes = at_once(live_app, [approve] * 10)
    assert Counter(outcomes) == {200: 1, (409, "booking_state_changed"): 9}
    with live_app.app_context():
        audit, mails = trail(booking_id)
        assert (audit["booking.approved"], mails["booking_approved"]) == (1, 1)
        assert db.session.get(Booking, booking_id).state == BookingState.APPROVED
        db.session.remove()


@pytest.mark.parametrize("pairs", [6])
def test_paying_against_cancelling_ends_paid_or_cancelled_with_nothing_held(live_app, live_booking, card, stripe,
                                                                           pairs):
    for _pair in range(pairs):
        booking_id, visa = live_booking(), card()
        paid, cancelled = at_once(live_app, [partial(pay, booking_id, visa), partial(cancel, booking_id)])
        with live_app.app_context():
            booking = db.session.get(Booking, booking_id)
            held = at_gateway(stripe, booking)
            assert all(p.pending_action is None for p in booking.payments), (paid, cancelled)
            if booking.state == BookingState.CANCELLED:
                assert cancelled == 200
                assert "requires_capture" not in held, (paid, held)
                assert booking.payment_state in (PaymentState.RELEASED, PaymentState.DUE)
                assert all(p.status in (PaymentStatus.CANCELED, PaymentStatus.FAILED) for p in booking.payments)
            else:
                assert (paid, cancelled) == (200, (409, "booking_state_changed"))
                assert (booking.state, booking.payment_state, held) == (
                    BookingState.CONFIRMED, PaymentState.AUTHORISED, ["requires_capture"])
            assert paid == 200 or paid in {(409, "booking_state_changed"), (422, "nothing_to_pay")}
            assert trail(booking_id)[0]["booking.cancelled"] <= 1
            db.session.remove()


def test_a_double_click_on_pay_authorises_once(live_app, live_booking, card, stripe):
    booking_id, visa = live_booking(), card()
    outcomes = at_once(live_app, [partial(pay, booking_id, visa)] * 4)
    assert set(outcomes) <= {200, (409, "payment_in_progress")} and 200 in outcomes
    with live_app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert (booking.state, booking.payment_state, len(booking.payments)) == (
            BookingState.CONFIRMED, PaymentState.AUTHORISED, 1)
        assert at_gateway(stripe, booking) == ["requires_capture"]
        assert trail(booking_id)[0]["booking.confirmed"] == 1
        db.session.remove()


def test_a_hung_gateway_holds_no_lock_and_the_booker_is_told_nothing_was_charged(
        live_app, live_booking, card, stripe_server):
    """While one card payment waits for a frozen gateway, another booking is cancelled at once."""
    paying, other, visa = live_booking(), live_booking(), card()
    outcome: list = []
    stripe_server.pause()
    try:
        waiting = threading.Thread(target=lambda: outcome.extend(at_once(live_app, [lambda: pay(paying, visa)])))
        waiting.start()
        with live_app.app_context():
            deadline = time.monotonic() + 5
            while db.session.scalar(sa.select(Payment.pending_action).where(Payment.booking_id == paying)) is None:
                db.session.remove()
                assert time.monotonic() < deadline
                time.sleep(0.05)
            db.session.remove()
            began = time.monotonic()
            cancel(other)  # a change of its own, while the payment's call hangs (its gateway part waits: none)
            took = time.monotonic() - began
            db.session.remove()
        waiting.join(30)
    finally:
        stripe_server.resume()
    assert took < 1.0 and waiting.is_alive() is False
    assert outcome == [(503, "payment_gateway_unavailable")]
    with live_app.app_context():
        assert db.session.get(Booking, paying).payment_state == PaymentState.PENDING
        assert db.session.get(Booking, other).state == BookingState.CANCELLED
        db.session.remove()


# --- a process killed between the gateway's answer and its record ------------------------------------

CRASHING = """
import sys
from config import TestingConfig
from core.app import create_app
from core.audit import Actor
from core.db import utcnow
from core.extensions import db
from core.models import User
from marketplace.booking import services as bookings

action, database_url, gateway_url, booking_id, card = sys.argv[1:6]
app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, STRIPE_API_BASE=gateway_url,
                 FAULT_POINT="payment_answered")
with app.app_context():
    person = db.session.scalar(db.select(User).where(User.email == "enterprise@kequip.test"))
    actor, booking_id = Actor.of(person, None), int(booking_id)
    if action == "pay":
        bookings.pay_by_card(booking_id, actor=actor, user=person, now=utcnow(), card=card)
    else:
        with bookings.booking_change(actor=actor, now=utcnow()) as session:
            bookings.cancel_booking(session, bookings.get_booking(session, booking_id, person), actor=actor,
                                    user=person, now=utcnow())
"""


def crash(live_app, stripe_server, action: str, booking_id: int, card: str = "") -> None:
    """Run the app's own code for `action` in a process of its own, which dies once the gateway has answered."""
    done = subprocess.run([sys.executable, "-c", CRASHING, action, live_app.config["SQLALCHEMY_DATABASE_URI"],
                           stripe_server.url, str(booking_id), card], cwd=ROOT, capture_output=True, timeout=60,
                          env=os.environ | {"PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == payments.FAULT_EXIT, done.stderr.decode()[-3000:]


def reconcile_later() -> int:
    return jobs.reconcile_payments(now=utcnow() + payments.IN_FLIGHT)


def test_an_authorisation_whose_record_died_with_its_process_is_attached_by_reconciliation(
        live_app, live_booking, card, stripe, stripe_server):
    booking_id = live_booking()
    crash(live_app, stripe_server, "pay", booking_id, card())
    with live_app.app_context():
        booking = db.session.get(Booking, booking_id)
        payment = booking.payments[0]
        assert (booking.state, booking.payment_state) == (BookingState.APPROVED, PaymentState.PENDING)
        assert (payment.status, payment.pending_action, payment.intent_id) == (PaymentStatus.CREATING, "authorise",
                                                                               None)
        assert at_gateway(stripe, booking) == ["requires_capture"]  # authorised, and nobody knows
        db.session.remove()

        assert reconcile_later() >= 1  # the live database is shared: other tests' leftovers are settled too
        booking = db.session.get(Booking, booking_id)
        payment = booking.payments[0]
        assert (booking.state, booking.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
        assert (payment.status, payment.pending_action, payment.amount_fen) == (PaymentStatus.REQUIRES_CAPTURE, None,
                                                                                PAYABLE)
        intent = stripe.get(f"/v1/payment_intents/{payment.intent_id}")
        assert (intent["status"], intent["amount"]) == ("requires_capture", PAYABLE)
        assert db.session.scalars(sa.select(AuditEntry.action).where(
            AuditEntry.subject_type == "payments", AuditEntry.subject_id == payment.id).order_by(AuditEntry.id)
        ).all() == ["payment.started", "payment.authorised"]
        assert trail(booking_id)[0]["booking.confirmed"] == 1
        db.session.remove()
        reconcile_later()  # a second run finds nothing of it to do
        assert trail(booking_id)[0]["booking.confirmed"] == 1
        db.session.remove()


def test_an_authorisation_left_by_a_crash_on_a_booking_cancelled_since_is_released(
        live_app, live_booking, card, stripe, stripe_server):
    booking_id = live_booking()
    crash(live_app, stripe_server, "pay", booking_id, card())
    crash(live_app, stripe_server, "cancel", booking_id)  # it finds the authorisation, releases it, and dies too
    with live_app.app_context():
        booking = db.session.get(Booking, booking_id)
        payment = booking.payments[0]
        assert (booking.state, booking.payment_state) == (BookingState.CANCELLED, PaymentState.PENDING)
        assert (payment.status, payment.pending_action) == (PaymentStatus.CREATING, "cancel")
        db.session.remove()

        assert reconcile_later() >= 1  # the live database is shared: other tests' leftovers are settled too
        booking = db.session.get(Booking, booking_id)
        payment = booking.payments[0]
        assert (booking.state, booking.payment_state) == (BookingState.CANCELLED, PaymentState.RELEASED)
        assert (payment.status, payment.pending_action, payment.captured_fen) == (PaymentStatus.CANCELED, None, 0)
        assert at_gateway(stripe, booking) == ["canceled"]
        assert payment.intent_id is not None
        actions = db.session.scalars(sa.select(AuditEntry.action).where(
            AuditEntry.subject_type == "payments", AuditEntry.subject_id == payment.id).order_by(AuditEntry.id)).all()
        assert actions == ["payment.started", "payment.canceled"]
        db.session.remove()
