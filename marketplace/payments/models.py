"""Payments of a booking's share: one row per gateway PaymentIntent or bank transfer, and the states."""
from __future__ import annotations

from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, synonym

from core.db import Fen, UTCTime, str_enum, utcnow
from core.extensions import db


class PaymentMethod(StrEnum):
    NONE = "none"  # nothing to pay
    CARD = "card"  # through the gateway: authorised at confirmation, captured at completion
    TRANSFER = "transfer"  # 对公转账: the platform records the transfer


PAYMENT_METHOD_LABELS = {
    PaymentMethod.NONE: _l("Nothing to pay"),
    PaymentMethod.CARD: _l("Card"),
    PaymentMethod.TRANSFER: _l("Bank transfer"),
}


class PaymentState(StrEnum):
    """Where the enterprise's share of a booking stands."""

    NOT_DUE = "not_due"  # nothing to pay
    DUE = "due"  # to be paid before the booking is confirmed
    PENDING = "payment_pending"  # a gateway call whose outcome is unknown: the reconciliation job settles it
    AUTHORISED = "authorised"  # card authorised, to be captured at completion
    PAID = "paid"  # captured, or the transfer recorded
    RELEASED = "released"  # authorisation cancelled: nothing charged
    REFUNDED = "refunded"  # money returned, in part or whole (refunded_fen)


PAYMENT_STATE_LABELS = {
    PaymentState.NOT_DUE: _l("Nothing to pay"),
    PaymentState.DUE: _l("Payment due"),
    PaymentState.PENDING: _l("Payment being checked"),
    PaymentState.AUTHORISED: _l("Payment authorised"),
    PaymentState.PAID: _l("Paid"),
    PaymentState.RELEASED: _l("Authorisation released"),
    PaymentState.REFUNDED: _l("Refunded"),
}


class PaymentPurpose(StrEnum):
    SHARE = "share"  # the enterprise's share, authorised at confirmation
    DIFFERENCE = "difference"  # what the final price adds beyond the authorised amount


class PaymentStatus(StrEnum):
    """One gateway PaymentIntent (or one bank transfer) as the app knows it."""

    CREATING = "creating"  # the call went out; its outcome is not known yet
    REQUIRES_CONFIRMATION = "requires_confirmation"  # created, waiting for the card
    REQUIRES_CAPTURE = "requires_capture"  # authorised
    SUCCEEDED = "succeeded"  # captured (captured_fen), perhaps refunded in part (refunded_fen)
    CANCELED = "canceled"
    FAILED = "failed"  # declined
    TRANSFER_EXPECTED = "transfer_expected"
    TRANSFER_RECEIVED = "transfer_received"


# The one table of a payment's moves; they follow the gateway's PaymentIntent, which never goes back
# (a refund changes refunded_fen, not the status). States absent here are final.
PAYMENT_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    PaymentStatus.CREATING: {PaymentStatus.REQUIRES_CONFIRMATION, PaymentStatus.REQUIRES_CAPTURE,
                             PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED, PaymentStatus.FAILED},
    PaymentStatus.REQUIRES_CONFIRMATION: {PaymentStatus.REQUIRES_CAPTURE, PaymentStatus.CANCELED,
                                          PaymentStatus.FAILED},
    PaymentStatus.REQUIRES_CAPTURE: {PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED},
    PaymentStatus.TRANSFER_EXPECTED: {PaymentStatus.TRANSFER_RECEIVED, PaymentStatus.CANCELED},
}


class Payment(db.Model):
    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint("captured_fen >= 0 AND captured_fen <= amount_fen", name="capture_within_amount"),
        sa.CheckConstraint("refunded_fen >= 0 AND refunded_fen <= captured_fen", name="refund_within_capture"),
        sa.CheckConstraint("released_fen >= 0 AND captured_fen + released_fen <= amount_fen",
                           name="release_within_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id"), index=True)
    purpose: Mapped[PaymentPurpose] = mapped_column(str_enum(PaymentPurpose), default=PaymentPurpose.SHARE)
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus))
    amount_fen: Mapped[Fen]
    captured_fen: Mapped[Fen] = mapped_column(default=0)
    refunded_fen: Mapped[Fen] = mapped_column(default=0)
    released_fen: Mapped[Fen] = mapped_column(default=0)  # of an authorisation, given back uncharged
    idempotency_key: Mapped[str] = mapped_column(sa.String(100), unique=True)  # of the creating call
    # the gateway's pi_…; the payments of one group (a weekly series paid at once) share one intent
    intent_id: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    # several bookings paid by one intent: their payments carry the intent's key (series-3-charge-1), each
    # with its booking's part as amount_fen; the intent's amount is the sum of the group's parts
    group_key: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    client_secret: Mapped[str | None] = mapped_column(sa.String(200))
    refund_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    attempt: Mapped[int] = mapped_column(default=0)  # of the call in flight; part of its idempotency key
    # what is to be done at the gateway ("authorise", "cancel", "capture" or "refund" of pending_amount_fen),
    # committed before the call and cleared when its answer is recorded: reconciliation settles what stays
    pending_action: Mapped[str | None] = mapped_column(sa.String(20))
    pending_amount_fen: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    transfer_reference: Mapped[str | None] = mapped_column(sa.String(100))
    transfer_received_on: Mapped[date | None] = mapped_column()
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    updated_at: Mapped[UTCTime] = mapped_column(default=utcnow, onupdate=utcnow)

    # booking: the backref of Booking.payments (booking.models); this table only holds its key
    state = synonym("status")  # the name core.states.move() changes
