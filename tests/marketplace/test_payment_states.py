"""A payment's lifecycle: one table of moves (PAYMENT_TRANSITIONS), changed only by core.states.move; the
booking's payment_state derived from its payments in one function; nothing else assigns either."""
from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from core.errors import IllegalTransition
from core.states import move
from marketplace.booking.models import Booking, BookingState
from marketplace.payments.models import (
    PAYMENT_TRANSITIONS,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentState,
    PaymentStatus,
)
from marketplace.payments.services import payment_state_of

ROOT = Path(__file__).resolve().parents[2]
ALL_STATUSES = list(PaymentStatus)


@pytest.mark.parametrize(("start", "to"), list(itertools.product(ALL_STATUSES, ALL_STATUSES)))
def test_every_payment_move_is_allowed_or_refused_by_the_one_table(start, to):
    payment = Payment(status=start)
    if to in PAYMENT_TRANSITIONS.get(start, set()):
        move(payment, to, PAYMENT_TRANSITIONS)
        assert payment.status == to
    else:
        with pytest.raises(IllegalTransition):
            move(payment, to, PAYMENT_TRANSITIONS)
        assert payment.status == start


def test_a_payment_never_goes_back_and_its_ends_are_final():
    final = {PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED, PaymentStatus.FAILED, PaymentStatus.TRANSFER_RECEIVED}
    assert final.isdisjoint(PAYMENT_TRANSITIONS)
    assert PaymentStatus.CREATING not in set().union(*PAYMENT_TRANSITIONS.values())  # every payment is born there
    assert PaymentStatus.REQUIRES_CONFIRMATION not in PAYMENT_TRANSITIONS[PaymentStatus.REQUIRES_CAPTURE]


def card(status: PaymentStatus, **values) -> Payment:
    return Payment(method=PaymentMethod.CARD, purpose=PaymentPurpose.SHARE, status=status, amount_fen=90_000,
                   captured_fen=values.pop("captured_fen", 0), refunded_fen=values.pop("refunded_fen", 0), **values)


@pytest.mark.parametrize(("state", "payable", "payments", "expected"), [
    (BookingState.CONFIRMED, 0, [], PaymentState.NOT_DUE),
    (BookingState.APPROVED, 90_000, [], PaymentState.DUE),
    (BookingState.APPROVED, 90_000, [card(PaymentStatus.CREATING, pending_action="authorise")], PaymentState.PENDING),
    (BookingState.CANCELLED, 90_000, [card(PaymentStatus.REQUIRES_CAPTURE, pending_action="cancel")],
     PaymentState.PENDING),
    (BookingState.CONFIRMED, 90_000, [card(PaymentStatus.REQUIRES_CAPTURE)], PaymentState.AUTHORISED),
    (BookingState.COMPLETED, 90_000, [card(PaymentStatus.SUCCEEDED, captured_fen=50_000)], PaymentState.PAID),
    (BookingState.CANCELLED, 90_000, [card(PaymentStatus.SUCCEEDED, captured_fen=90_000, refunded_fen=45_000)],
     PaymentState.REFUNDED),
    (BookingState.CANCELLED, 90_000, [card(PaymentStatus.CANCELED)], PaymentState.RELEASED),
    (BookingState.APPROVED, 90_000, [card(PaymentStatus.CANCELED)], PaymentState.DUE),  # to be paid again
    (BookingState.APPROVED, 90_000, [card(PaymentStatus.FAILED)], PaymentState.DUE),
])
def test_the_bookings_payment_state_is_derived_from_its_payments(state, payable, payments, expected):
    booking = Booking(state=state, payable_fen=payable, payments=payments)
    assert payment_state_of(booking) == expected


def assignments(attribute: str) -> set[str]:
    """Where in the application `<something>.<attribute> = …` is written: file:function."""
    found = set()
    for path in [*ROOT.glob("marketplace/**/*.py"), *ROOT.glob("core/**/*.py"), *ROOT.glob("vouchers/**/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
                for target in targets:
                    for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if isinstance(element, ast.Attribute) and element.attr == attribute:
                            found.add(f"{path.relative_to(ROOT)}:{function.name}")
    return found


def test_payment_states_are_changed_in_one_place_each():
    assert assignments("status") <= {"marketplace/booking/ics.py:__init__"}  # an HTTP status; a payment's: only by move()
    assert assignments("payment_state") == {"marketplace/payments/services.py:sync_payment_state"}
    assert assignments("pending_action") == {"marketplace/payments/services.py:_schedule"}
    assert "core/states.py:move" in assignments("state")
