"""The instrument registry and the catalogue releases (DESIGN §2.1)."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship, synonym

from core.db import Fen, UTCDateTime, UTCTime, not_modelled, str_enum, utcnow
from core.extensions import db
from core.models import Platform, User


# search.py's index, made by hand in the migration: SQLite's FTS5 table and PostgreSQL's GIN index;
# and PostgreSQL's newest-first catalogue index (migration 8d2e4b6a1f37: SQLite indexes take no NULLS LAST)
not_modelled("instrument_search", "ix_instruments_search_text", "ix_instruments_catalogue_newest")


class InstrumentState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    PUBLISHED = "published"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"
    REJECTED = "rejected"


INSTRUMENT_STATE_LABELS = {
    InstrumentState.DRAFT: _l("Draft"),
    InstrumentState.SUBMITTED: _l("Submitted for review"),
    InstrumentState.PUBLISHED: _l("Published"),
    InstrumentState.MAINTENANCE: _l("Under maintenance"),
    InstrumentState.RETIRED: _l("Retired"),
    InstrumentState.REJECTED: _l("Rejected"),
}

# The one table of allowed moves (STYLE 2.4); states absent here are final.
INSTRUMENT_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    InstrumentState.DRAFT: {InstrumentState.SUBMITTED, InstrumentState.RETIRED},
    InstrumentState.SUBMITTED: {InstrumentState.PUBLISHED, InstrumentState.REJECTED},
    InstrumentState.REJECTED: {InstrumentState.DRAFT},
    InstrumentState.PUBLISHED: {InstrumentState.MAINTENANCE, InstrumentState.RETIRED},
    InstrumentState.MAINTENANCE: {InstrumentState.PUBLISHED, InstrumentState.RETIRED},
}

# States in which an instrument is in the public catalogue.
CATALOGUE_STATES = (InstrumentState.PUBLISHED, InstrumentState.MAINTENANCE)


class SharingMode(StrEnum):
    OPEN = "open"
    APPOINTMENT = "appointment"
    INTERNAL = "internal"


SHARING_MODE_LABELS = {
    SharingMode.OPEN: _l("Open to all"),
    SharingMode.APPOINTMENT: _l("By appointment with the platform"),
    SharingMode.INTERNAL: _l("Internal use only"),
}


class UserType(StrEnum):
    """Who pays which rate (DESIGN §2.2)."""

    OWN_STAFF = "own_staff"
    DISTRICT_ENTERPRISE = "district_enterprise"
    OTHER = "other"


USER_TYPE_LABELS = {
    UserType.OWN_STAFF: _l("The platform's own staff"),
    UserType.DISTRICT_ENTERPRISE: _l("District enterprises"),
    UserType.OTHER: _l("Others"),
}


class InstrumentCategory(db.Model):
    __tablename__ = "instrument_categories"
    __table_args__ = (sa.CheckConstraint("length(code) IN (2, 4)", name="code_two_levels"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(4), unique=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("instrument_categories.id"), index=True)
    name_zh: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str] = mapped_column(sa.String(100))

    parent: Mapped[InstrumentCategory | None] = relationship(remote_side="InstrumentCategory.id", lazy="joined")

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_zh


# The fields a platform fills in; those marked public are shown in the catalogue and reviewed by the
# bureau when they change on a published instrument.
PUBLIC_FIELDS = ("name_zh", "name_en", "model", "manufacturer", "country_of_origin", "category_id",
                 "original_value_fen", "purchased_on", "is_publicly_funded", "building", "room", "description",
                 "capabilities", "sample_requirements", "contact_name", "contact_phone", "contact_email",
                 "sharing_mode", "setup_fee_own_staff_fen", "hourly_rate_own_staff_fen",
                 "setup_fee_district_enterprise_fen", "hourly_rate_district_enterprise_fen",
                 "setup_fee_other_fen", "hourly_rate_other_fen")
EDITABLE_FIELDS = ("asset_number", *PUBLIC_FIELDS)
FIELD_LABELS = {
    "asset_number": _l("Asset number"), "name_zh": _l("Name (Chinese)"), "name_en": _l("Name (English)"),
    "model": _l("Model"), "manufacturer": _l("Manufacturer"), "country_of_origin": _l("Country of origin"),
    "category_id": _l("Category"), "original_value_fen": _l("Original value (yuan)"),
    "purchased_on": _l("Purchase date"), "is_publicly_funded": _l("Bought with public money"),
    "building": _l("Building"), "room": _l("Room"), "description": _l("Description"),
    "capabilities": _l("Test capabilities"), "sample_requirements": _l("Sample requirements"),
    "contact_name": _l("Contact person"), "contact_phone": _l("Contact phone"), "contact_email": _l("Contact e-mail"),
    "sharing_mode": _l("Sharing mode"),
    "setup_fee_own_staff_fen": _l("Setup fee, own staff (yuan)"),
    "hourly_rate_own_staff_fen": _l("Hourly rate, own staff (yuan)"),
    "setup_fee_district_enterprise_fen": _l("Setup fee, district enterprises (yuan)"),
    "hourly_rate_district_enterprise_fen": _l("Hourly rate, district enterprises (yuan)"),
    "setup_fee_other_fen": _l("Setup fee, others (yuan)"), "hourly_rate_other_fen": _l("Hourly rate, others (yuan)"),
}


class Instrument(db.Model):
    __tablename__ = "instruments"
    __table_args__ = (
        sa.UniqueConstraint("platform_id", "model", "asset_number"),
        sa.CheckConstraint("original_value_fen > 0", name="value_positive"),
        sa.CheckConstraint(
            "setup_fee_own_staff_fen >= 0 AND hourly_rate_own_staff_fen >= 0 AND "
            "setup_fee_district_enterprise_fen >= 0 AND hourly_rate_district_enterprise_fen >= 0 AND "
            "setup_fee_other_fen >= 0 AND hourly_rate_other_fen >= 0", name="fees_not_negative"),
        sa.CheckConstraint("state <> 'rejected' OR review_note IS NOT NULL", name="rejection_has_reason"),
        # the catalogue by state and category; the columns of the other filters and the id follow, so a
        # count (free-time filters included) reads the index alone, not the wide rows
        sa.Index("ix_instruments_catalogue", "state", "category_id", "original_value_fen",
                 "hourly_rate_district_enterprise_fen", "sharing_mode", "platform_id", "id"),
        # a platform's instruments, and whether it has any in the catalogue (the filter's platforms), alone
        sa.Index("ix_instruments_platform_id", "platform_id", "state"),
        # a price range without a category: its count and its page in any order from the index alone
        sa.Index("ix_instruments_price", "hourly_rate_district_enterprise_fen", "state", "published_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id"))  # ix_instruments_platform_id
    asset_number: Mapped[str] = mapped_column(sa.String(50))
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    model: Mapped[str] = mapped_column(sa.String(100))
    manufacturer: Mapped[str] = mapped_column(sa.String(200))
    country_of_origin: Mapped[str] = mapped_column(sa.String(50), default="")
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("instrument_categories.id"), index=True)
    original_value_fen: Mapped[Fen]
    purchased_on: Mapped[date | None] = mapped_column()
    is_publicly_funded: Mapped[bool] = mapped_column(default=False)
    building: Mapped[str] = mapped_column(sa.String(100), default="")
    room: Mapped[str] = mapped_column(sa.String(50), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    capabilities: Mapped[list] = mapped_column(sa.JSON, default=list)
    sample_requirements: Mapped[str] = mapped_column(sa.Text, default="")
    contact_name: Mapped[str] = mapped_column(sa.String(100), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    sharing_mode: Mapped[SharingMode] = mapped_column(str_enum(SharingMode), default=SharingMode.OPEN)
    setup_fee_own_staff_fen: Mapped[Fen] = mapped_column(default=0)
    hourly_rate_own_staff_fen: Mapped[Fen] = mapped_column(default=0)
    setup_fee_district_enterprise_fen: Mapped[Fen] = mapped_column(default=0)
    hourly_rate_district_enterprise_fen: Mapped[Fen] = mapped_column(default=0)
    setup_fee_other_fen: Mapped[Fen] = mapped_column(default=0)
    hourly_rate_other_fen: Mapped[Fen] = mapped_column(default=0)

    state: Mapped[InstrumentState] = mapped_column(str_enum(InstrumentState), default=InstrumentState.DRAFT)
    review_note: Mapped[str | None] = mapped_column(sa.String(1000))  # the bureau's reason when rejecting
    # an edit of a published instrument, in review; SQL NULL when there is none (not JSON null)
    pending_changes: Mapped[dict | None] = mapped_column(sa.JSON(none_as_null=True))
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)  # "newest" in the catalogue
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    updated_at: Mapped[UTCTime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)
    search_text: Mapped[str] = mapped_column(sa.Text, default="")  # tokens for full-text search (search.py)

    platform: Mapped[Platform] = relationship(lazy="joined", innerjoin=True)  # never NULL: an inner join
    category: Mapped[InstrumentCategory] = relationship(lazy="joined", innerjoin=True)
    photos: Mapped[list[InstrumentPhoto]] = relationship(
        back_populates="instrument", cascade="all, delete-orphan", order_by="InstrumentPhoto.position",
        lazy="selectin")

    @property
    def is_in_catalogue(self) -> bool:
        return self.state in CATALOGUE_STATES

    def fee(self, user_type: UserType) -> tuple[int, int]:
        """(setup fee, hourly rate) in fen for a user type."""
        return (getattr(self, f"setup_fee_{user_type.value}_fen"), getattr(self, f"hourly_rate_{user_type.value}_fen"))

    def public_values(self) -> dict[str, Any]:
        return {name: to_json_value(getattr(self, name)) for name in PUBLIC_FIELDS}

    def __repr__(self) -> str:
        return f"<Instrument {self.id} {self.name_zh} {self.state}>"


def to_json_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


class InstrumentPhoto(db.Model):
    __tablename__ = "instrument_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"), index=True)
    stored_name: Mapped[str] = mapped_column(sa.String(100), unique=True)  # under UPLOAD_DIR/instruments/
    width: Mapped[int]
    height: Mapped[int]
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    instrument: Mapped[Instrument] = relationship(back_populates="photos")


class ReleaseChange(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    WITHDRAWN = "withdrawn"


class CatalogueRelease(db.Model):
    """A numbered, frozen release of the catalogue (定期面向全区发布). Append-only once written."""

    __tablename__ = "catalogue_releases"
    __table_args__ = (sa.UniqueConstraint("year", "issue"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)  # 1, 2, 3 … across years
    year: Mapped[int]
    issue: Mapped[int]  # 第 N 期 within the year
    period: Mapped[str | None] = mapped_column(sa.String(10), unique=True)  # "2026Q4" when made by the schedule
    published_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    instrument_count: Mapped[int]
    added_count: Mapped[int]
    changed_count: Mapped[int]
    withdrawn_count: Mapped[int]


class CatalogueReleaseItem(db.Model):
    __tablename__ = "catalogue_release_items"
    __table_args__ = (sa.UniqueConstraint("release_id", "instrument_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(sa.ForeignKey("catalogue_releases.id"), index=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), index=True)
    change: Mapped[ReleaseChange] = mapped_column(str_enum(ReleaseChange))
    changed_fields: Mapped[list] = mapped_column(sa.JSON, default=list)
    data: Mapped[dict] = mapped_column(sa.JSON)  # the instrument's public record as released


# --- the booking calendar (DESIGN §2.2) --------------------------------------------------------

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
    waitlist_offer_minutes: Mapped[int] = mapped_column(default=120)
    updated_at: Mapped[UTCTime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    def audit_view(self) -> dict[str, Any]:
        return {column.name: to_json_value(getattr(self, column.key)) for column in self.__table__.columns
                if column.name not in ("id", "updated_at", "updated_by_id")}


class MaintenanceWindow(db.Model):
    __tablename__ = "maintenance_windows"
    __table_args__ = (sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
                      sa.UniqueConstraint("instrument_id", "external_uid"),
                      sa.Index("ix_maintenance_windows_instrument_time", "instrument_id", "start_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"))
    start_at: Mapped[UTCTime]
    end_at: Mapped[UTCTime]
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    external_uid: Mapped[str | None] = mapped_column(sa.String(300))  # ICS UID + occurrence, for re-imports
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

# The one table of allowed moves (STYLE 2.4); states absent here are final.
BOOKING_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    BookingState.REQUESTED: {BookingState.APPROVED, BookingState.REJECTED, BookingState.CANCELLED,
                             BookingState.EXPIRED},
    BookingState.APPROVED: {BookingState.CONFIRMED, BookingState.CANCELLED, BookingState.EXPIRED},
    BookingState.CONFIRMED: {BookingState.IN_PROGRESS, BookingState.CANCELLED, BookingState.NO_SHOW},
    BookingState.IN_PROGRESS: {BookingState.COMPLETED},
}

# Bookings that hold their time: no two of one instrument overlap (buffers included).
ACTIVE_BOOKING_STATES = (BookingState.REQUESTED, BookingState.APPROVED, BookingState.CONFIRMED,
                         BookingState.IN_PROGRESS)


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
        sa.CheckConstraint("state <> 'rejected' OR decision_note IS NOT NULL", name="rejection_has_reason"),
        sa.Index("ix_bookings_instrument_time", "instrument_id", "start_at"),
        # "which bookings of an instrument meet [start, end)" (availability, the conflict check): read
        # from the end time up, the scan stops at the booking horizon instead of walking the instrument's
        # whole history, and the index alone answers it
        sa.Index("ix_bookings_instrument_end", "instrument_id", "block_end_at", "start_at", "state"),
        # by state and time (the jobs), and covering "which instruments are booked in [start, end)" for the
        # catalogue's free-time filter, read from the index alone
        sa.Index("ix_bookings_state_time", "state", "start_at", "block_end_at", "instrument_id"),
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
    payments: Mapped[list[Payment]] = relationship(back_populates="booking", order_by="Payment.id",
                                                   lazy="selectin")

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_BOOKING_STATES

    def audit_view(self) -> dict[str, Any]:
        return {"state": self.state.value, "start_at": self.start_at.isoformat(), "end_at": self.end_at.isoformat(),
                "price_fen": self.price_fen, "payable_fen": self.payable_fen,
                "payment_state": self.payment_state.value, "cancellation_fee_fen": self.cancellation_fee_fen,
                "final_price_fen": self.final_price_fen}

    def __repr__(self) -> str:
        return f"<Booking {self.id} {self.instrument_id} {self.start_at:%Y-%m-%d %H:%M} {self.state}>"


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
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id"), index=True)
    purpose: Mapped[PaymentPurpose] = mapped_column(str_enum(PaymentPurpose), default=PaymentPurpose.SHARE)
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus))
    amount_fen: Mapped[Fen]
    captured_fen: Mapped[Fen] = mapped_column(default=0)
    refunded_fen: Mapped[Fen] = mapped_column(default=0)
    idempotency_key: Mapped[str] = mapped_column(sa.String(100), unique=True)  # of the creating call
    intent_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)  # the gateway's pi_…
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

    booking: Mapped[Booking] = relationship(back_populates="payments")
    state = synonym("status")  # the name core.states.move() changes


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


# The one table of the waitlist's moves (STYLE 2.4); states absent here are final.
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
