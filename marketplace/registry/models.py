"""The instrument registry's tables: instruments, their categories and photos, and the fields a platform fills in."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core import audit_log
from core.db import Fen, UTCDateTime, UTCTime, not_modelled, str_enum, utcnow
from core.extensions import db
from core.models import Platform

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

# The one table of allowed moves; states absent here are final.
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
    """Who pays which rate."""

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
audit_log.add_field_labels(FIELD_LABELS)  # the audit log names an instrument's fields as its form does


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
