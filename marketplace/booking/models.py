"""The booking calendar's tables: rules, maintenance, qualifications, service terms, bookings, the waitlist, feeds."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from core.db import Fen, UTCDateTime, UTCTime, str_enum, utcnow
from core.extensions import db
from core.models import User
from marketplace.payments.models import Payment, PaymentMethod, PaymentState
from marketplace.registry.models import Instrument, UserType, to_json_value

# --- the booking calendar --------------------------------------------------------

class QualificationRule(StrEnum):
    """What an instrument asks of a booker's qualification."""

    NONE = "none"  # anyone may book
    OPERATOR = "operator"  # unqualified users may book, with an operator present
    REQUIRED = "required"  # unqualified users may not book


QUALIFICATION_RULE_LABELS = {
    QualificationRule.NONE: _l("No qualification needed"),
    QualificationRule.OPERATOR: _l("Unqualified users book with an operator present"),
    QualificationRule.REQUIRED: _l("Only qualified users may book"),
}

WEEKDAYS = ("0", "1", "2", "3", "4", "5", "6")  # Monday = "0", the keys of BookingRules.open_hours


class BookingRules(db.Model):
    """The district's defaults (instrument_id NULL: the one row the migration writes) or one instrument's
    own rules, whole: an instrument without a row follows the district; its row replaces every default."""

    __tablename__ = "booking_rules"
    __table_args__ = (
        sa.CheckConstraint("slot_minutes > 0 AND 1440 % slot_minutes = 0", name="slot_divides_day"),
        sa.CheckConstraint("min_minutes >= slot_minutes AND max_minutes >= min_minutes", name="durations_ordered"),
        sa.CheckConstraint("lead_minutes >= 0 AND horizon_days > 0 AND buffer_minutes >= 0", name="times_not_negative"),
        sa.CheckConstraint("free_cancel_hours >= 0", name="free_cancel_not_negative"),
        sa.CheckConstraint("late_cancel_fee_pct BETWEEN 0 AND 100 AND no_show_fee_pct BETWEEN 0 AND 100",
                           name="fees_are_percentages"),
        sa.CheckConstraint("no_show_grace_minutes >= 0 AND waitlist_offer_minutes > 0", name="grace_and_offer"),
        sa.CheckConstraint("check_in_window_minutes >= 0", name="check_in_window_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int | None] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"),
                                                      unique=True)
    # {"0": [["08:30", "12:00"], ["13:30", "17:30"]], …, "6": []}: wall-clock Asia/Shanghai per weekday
    open_hours: Mapped[dict] = mapped_column(sa.JSON)
    closed_on_holidays: Mapped[bool] = mapped_column(default=True)  # and open on official make-up days
    slot_minutes: Mapped[int] = mapped_column(default=30)
    min_minutes: Mapped[int] = mapped_column(default=30)
    max_minutes: Mapped[int] = mapped_column(default=480)
    lead_minutes: Mapped[int] = mapped_column(default=120)
    horizon_days: Mapped[int] = mapped_column(default=90)
    buffer_minutes: Mapped[int] = mapped_column(default=0)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    requires_operator: Mapped[bool] = mapped_column(default=False)
    allows_overnight: Mapped[bool] = mapped_column(default=False)  # may run past closing and across days
    qualification: Mapped[QualificationRule] = mapped_column(str_enum(QualificationRule),
                                                             default=QualificationRule.NONE)
    free_cancel_hours: Mapped[int] = mapped_column(default=24)
    late_cancel_fee_pct: Mapped[int] = mapped_column(default=50)
    no_show_fee_pct: Mapped[int] = mapped_column(default=100)
    no_show_grace_minutes: Mapped[int] = mapped_column(default=30)
    # check-in opens this long before the start; after the start by as much it is late (confirmed by the
    # operator), and the booking may be marked a no-show
    check_in_window_minutes: Mapped[int] = mapped_column(default=15, server_default="15")
    waitlist_offer_minutes: Mapped[int] = mapped_column(default=120)
    updated_at: Mapped[UTCTime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    def block_end(self, end_at: datetime) -> datetime:
        """Where a booking that ends at end_at stops keeping the instrument from others: its buffer after."""
        return end_at + timedelta(minutes=self.buffer_minutes)

    def bookable_starts(self, now: datetime) -> tuple[datetime, datetime]:
        """The earliest and the latest start of a booking made now: the lead time and the horizon."""
        return now + timedelta(minutes=self.lead_minutes), now + timedelta(days=self.horizon_days)

    @property
    def check_in_window(self) -> timedelta:
        return timedelta(minutes=self.check_in_window_minutes)
    def cancellation_terms(self, start_at: datetime, *, price_fen: int, payable_fen: int,
                           voucher_fen: int) -> CancellationTerms:
        """The terms of a booking starting at start_at, fixed when it is made: free cancellation until
        free_cancel_hours before the start, then the late-cancellation fee; the no-show fee; each a share
        of the price (rounded down), at most the enterprise's own share: a voucher never pays a fee."""
        return CancellationTerms(free_until=start_at - timedelta(hours=self.free_cancel_hours),
                                 late_fee_fen=min(price_fen * self.late_cancel_fee_pct // 100, payable_fen),
                                 no_show_fee_fen=min(price_fen * self.no_show_fee_pct // 100, payable_fen),
                                 voucher_fen=voucher_fen)

    def audit_view(self) -> dict[str, Any]:
        return {column.name: to_json_value(getattr(self, column.key)) for column in self.__table__.columns
                if column.name not in ("id", "updated_at", "updated_by_id")}


@dataclass(frozen=True, slots=True)
class CancellationTerms:
    """What cancelling a booking costs, promised before it is made and kept on the booking: the form, the
    booking's page, its mails and the fee charged read the same values."""

    free_until: datetime  # cancelling before this instant is free
    late_fee_fen: int  # cancelling from then on, once confirmed
    no_show_fee_fen: int  # nobody checked in
    voucher_fen: int  # the voucher's part, released whatever happens: it never pays a fee

    def is_free_at(self, now: datetime) -> bool:
        return now < self.free_until


class MaintenanceWindow(db.Model):
    __tablename__ = "maintenance_windows"
    __table_args__ = (sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
                      sa.UniqueConstraint("instrument_id", "external_uid"),
                      sa.Index("ix_maintenance_windows_instrument_time", "instrument_id", "start_at"),
                      sa.Index("ix_maintenance_windows_instrument_series", "instrument_id", "series_uid"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"))
    start_at: Mapped[UTCTime]
    end_at: Mapped[UTCTime]
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    external_uid: Mapped[str | None] = mapped_column(sa.String(300))  # ICS UID + occurrence, for re-imports
    series_uid: Mapped[str | None] = mapped_column(sa.String(300))  # a recurring ICS event's UID: its windows
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)


class Qualification(db.Model):
    """A user trained on an instrument, until an expiry date (inclusive) or for good."""

    __tablename__ = "qualifications"
    __table_args__ = (sa.UniqueConstraint("instrument_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_on: Mapped[date | None] = mapped_column()
    granted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    granted_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class ServiceTerms(db.Model):
    """A platform's service terms, versioned (platform_id NULL: the district's model terms, which apply
    until a platform writes its own). A version is never changed: append-only in the database."""

    __tablename__ = "service_terms"
    __table_args__ = (sa.UniqueConstraint("platform_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int | None] = mapped_column(sa.ForeignKey("platforms.id"), index=True)
    version: Mapped[int]
    scope: Mapped[str] = mapped_column(sa.Text)
    confidentiality: Mapped[str] = mapped_column(sa.Text)
    intellectual_property: Mapped[str] = mapped_column(sa.Text)
    liability: Mapped[str] = mapped_column(sa.Text)
    published_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class BookingState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    CONFIRMED = "confirmed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    NO_SHOW = "no_show"


BOOKING_STATE_LABELS = {
    BookingState.REQUESTED: _l("Requested"),
    BookingState.APPROVED: _l("Approved"),
    BookingState.CONFIRMED: _l("Confirmed"),
    BookingState.IN_PROGRESS: _l("In progress"),
    BookingState.COMPLETED: _l("Completed"),
    BookingState.REJECTED: _l("Rejected"),
    BookingState.CANCELLED: _l("Cancelled"),
    BookingState.EXPIRED: _l("Expired"),
    BookingState.NO_SHOW: _l("No-show"),
}

# The one table of allowed moves; states absent here are final.
BOOKING_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    BookingState.REQUESTED: {BookingState.APPROVED, BookingState.REJECTED, BookingState.CANCELLED,
                             BookingState.EXPIRED},
    BookingState.APPROVED: {BookingState.CONFIRMED, BookingState.CANCELLED, BookingState.EXPIRED},
    BookingState.CONFIRMED: {BookingState.IN_PROGRESS, BookingState.CANCELLED, BookingState.NO_SHOW},
    BookingState.IN_PROGRESS: {BookingState.COMPLETED},
    BookingState.NO_SHOW: {BookingState.CANCELLED},  # a no-show undone: cancelled, its fee refunded
}

# Bookings that hold their time ahead or now.
ACTIVE_BOOKING_STATES = (BookingState.REQUESTED, BookingState.APPROVED, BookingState.CONFIRMED,
                         BookingState.IN_PROGRESS)
# Bookings whose time is held or was used: no two of one instrument overlap (buffers included). A completed
# booking keeps its time, so no later booking may take any of it; no-shows and ended requests do not.
USE_STATES = (*ACTIVE_BOOKING_STATES, BookingState.COMPLETED)


class BookingSeries(db.Model):
    """A weekly recurring booking: the occurrences booked are Booking rows; skipped ones are EXDATEs."""

    __tablename__ = "booking_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), index=True)
    booker_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    first_start_at: Mapped[UTCTime]
    duration_minutes: Mapped[int]
    count: Mapped[int]  # occurrences asked for, one a week (RRULE FREQ=WEEKLY;COUNT=n)
    skipped: Mapped[list] = mapped_column(sa.JSON, default=list)  # ISO instants of occurrences not booked
    skip_codes: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # ISO instant → the refusal's code
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
        sa.CheckConstraint("block_end_at >= end_at", name="buffer_not_negative"),
        # the enterprise pays the price less the voucher part, or the whole price when it claims the
        # voucher part back afterwards (enterprise-reimbursed programmes)
        sa.CheckConstraint("price_fen >= 0 AND voucher_fen >= 0 AND voucher_fen <= price_fen AND "
                           "(payable_fen = price_fen - voucher_fen OR payable_fen = price_fen)", name="price_adds_up"),
        sa.CheckConstraint("cancellation_fee_fen >= 0 AND (final_price_fen IS NULL OR final_price_fen >= 0) AND "
                           "(final_voucher_fen IS NULL OR final_voucher_fen BETWEEN 0 AND final_price_fen)",
                           name="fees_not_negative"),
        sa.CheckConstraint("late_cancel_fee_fen BETWEEN 0 AND payable_fen AND no_show_fee_fen BETWEEN 0 AND payable_fen",
                           name="cancellation_fees_within_share"),
        sa.CheckConstraint("state <> 'rejected' OR decision_note IS NOT NULL", name="rejection_has_reason"),
        sa.Index("ix_bookings_instrument_time", "instrument_id", "start_at"),
        # "which bookings of an instrument meet [start, end)" (availability, the conflict check): read
        # from the end time up, the scan stops at the booking horizon instead of walking the instrument's
        # whole history, and the index alone answers it
        sa.Index("ix_bookings_instrument_end", "instrument_id", "block_end_at", "start_at", "state"),
        # by state and time (the jobs), and covering "which instruments are booked in [start, end)" for the
        # catalogue's free-time filter, read from the index alone
        sa.Index("ix_bookings_state_time", "state", "start_at", "block_end_at", "instrument_id"),
        # what changed since the metrics roll-up's last run, without reading every booking
        sa.Index("ix_bookings_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"))
    booker_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(sa.ForeignKey("enterprises.id"), index=True)
    series_id: Mapped[int | None] = mapped_column(sa.ForeignKey("booking_series.id"), index=True)
    state: Mapped[BookingState] = mapped_column(str_enum(BookingState), default=BookingState.REQUESTED)
    start_at: Mapped[UTCTime]
    end_at: Mapped[UTCTime]
    block_end_at: Mapped[UTCTime]  # end_at + the instrument's buffer: the time no other booking may take
    purpose: Mapped[str] = mapped_column(sa.String(500), default="")
    user_type: Mapped[UserType] = mapped_column(str_enum(UserType))
    needs_operator: Mapped[bool] = mapped_column(default=False)
    terms_id: Mapped[int] = mapped_column(sa.ForeignKey("service_terms.id"))
    # the price as quoted: setup fee + hourly rate × booked hours, for the booker's user type
    setup_fee_fen: Mapped[Fen]
    hourly_rate_fen: Mapped[Fen]
    price_fen: Mapped[Fen]
    voucher_id: Mapped[int | None] = mapped_column(sa.ForeignKey("vouchers.id"), index=True)
    voucher_fen: Mapped[Fen] = mapped_column(default=0)  # the innovation voucher's part (vouchers/)
    payable_fen: Mapped[Fen]  # the enterprise's share, through the gateway or by transfer
    payment_method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod), default=PaymentMethod.NONE)
    payment_state: Mapped[PaymentState] = mapped_column(str_enum(PaymentState), default=PaymentState.NOT_DUE)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(sa.String(1000))  # the reason when rejected
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500))
    cancellation_fee_fen: Mapped[Fen] = mapped_column(default=0)  # late-cancellation or no-show fee
    # the cancellation terms, fixed when the booking is made (BookingRules.cancellation_terms): what the
    # booker was promised holds whatever the rules or the booking's payment do afterwards
    free_cancel_until: Mapped[UTCTime]
    late_cancel_fee_fen: Mapped[Fen]
    no_show_fee_fen: Mapped[Fen]
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    operator_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    final_price_fen: Mapped[int | None] = mapped_column(sa.BigInteger)  # on the actual time, at completion
    final_voucher_fen: Mapped[int | None] = mapped_column(sa.BigInteger)  # what the voucher paid of it
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sequence: Mapped[int] = mapped_column(default=0)  # iCalendar SEQUENCE: raised on every change
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    updated_at: Mapped[UTCTime] = mapped_column(default=utcnow, onupdate=utcnow)

    instrument: Mapped[Instrument] = relationship(lazy="joined")
    booker: Mapped[User] = relationship(foreign_keys=[booker_id], lazy="joined")
    terms: Mapped[ServiceTerms] = relationship()
    series: Mapped[BookingSeries | None] = relationship()
    # declared here, with Payment.booking as its backref: payments.models never names a booking's class
    payments: Mapped[list[Payment]] = relationship(backref=backref("booking"), order_by="Payment.id",
                                                   lazy="selectin")

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_BOOKING_STATES

    @hybrid_property
    def expires_at(self) -> datetime:
        """When a booking never approved or never paid expires: at its start. One rule for the page that
        shows the deadline and, as SQL on the class, for the expiry job that selects by it."""
        return self.start_at

    @property
    def cancellation_terms(self) -> CancellationTerms:
        return CancellationTerms(free_until=self.free_cancel_until, late_fee_fen=self.late_cancel_fee_fen,
                                 no_show_fee_fen=self.no_show_fee_fen, voucher_fen=self.voucher_fen)

    def fix_cancellation_terms(self, terms: CancellationTerms) -> None:
        self.free_cancel_until, self.late_cancel_fee_fen, self.no_show_fee_fen = (
            terms.free_until, terms.late_fee_fen, terms.no_show_fee_fen)

    @property
    def awaits_confirmation(self) -> bool:
        """Requested or approved: not confirmed yet, so its share may still be paid."""
        return self.state in (BookingState.REQUESTED, BookingState.APPROVED)

    def audit_view(self) -> dict[str, Any]:
        return {"state": self.state.value, "start_at": self.start_at.isoformat(), "end_at": self.end_at.isoformat(),
                "price_fen": self.price_fen, "payable_fen": self.payable_fen,
                "payment_state": self.payment_state.value, "cancellation_fee_fen": self.cancellation_fee_fen,
                "final_price_fen": self.final_price_fen}

    def __repr__(self) -> str:
        return f"<Booking {self.id} {self.instrument_id} {self.start_at:%Y-%m-%d %H:%M} {self.state}>"


class WaitlistState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # the slot is free and offered to this user until offer_expires_at
    BOOKED = "booked"
    LAPSED = "lapsed"  # the offer ran out
    WITHDRAWN = "withdrawn"


WAITLIST_STATE_LABELS = {
    WaitlistState.WAITING: _l("Waiting"),
    WaitlistState.OFFERED: _l("Offered"),
    WaitlistState.BOOKED: _l("Booked"),
    WaitlistState.LAPSED: _l("Offer lapsed"),
    WaitlistState.WITHDRAWN: _l("Withdrawn"),
}


# The one table of the waitlist's moves; states absent here are final.
WAITLIST_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    WaitlistState.WAITING: {WaitlistState.OFFERED, WaitlistState.WITHDRAWN, WaitlistState.LAPSED},
    WaitlistState.OFFERED: {WaitlistState.BOOKED, WaitlistState.WITHDRAWN, WaitlistState.LAPSED},
}


class WaitlistEntry(db.Model):
    __tablename__ = "waitlist_entries"
    __table_args__ = (sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
                      sa.Index("ix_waitlist_entries_instrument_state", "instrument_id", "state", "created_at"),
                      # one open entry per user and slot, however many requests race
                      sa.Index("ix_waitlist_entries_open_once", "instrument_id", "user_id", "start_at", "end_at",
                               unique=True, sqlite_where=sa.text("state IN ('waiting', 'offered')"),
                               postgresql_where=sa.text("state IN ('waiting', 'offered')")))

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    start_at: Mapped[UTCTime]
    end_at: Mapped[UTCTime]
    state: Mapped[WaitlistState] = mapped_column(str_enum(WaitlistState), default=WaitlistState.WAITING)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    instrument: Mapped[Instrument] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")


class CalendarFeed(db.Model):
    """A user's private iCalendar feed: the URL's secret, kept as SHA-256; regenerating replaces it."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
