"""Usage monitoring's tables: usage sessions (the one record of real use), the devices that report it
and their events, and each instrument's monitoring settings."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, UTCTime, str_enum, utcnow
from core.extensions import db
from core.models import User
from marketplace.registry.models import Instrument

DEFAULT_OFFLINE_AFTER_MINUTES = 15


class UsageSource(StrEnum):
    CHECK_IN = "check_in"  # the operator's check-in and check-out on the day sheet
    DEVICE = "device"  # the instrument itself, over the telemetry API
    MANUAL = "manual"  # entered or corrected by the platform admin, with a reason


USAGE_SOURCE_LABELS = {
    UsageSource.CHECK_IN: _l("Operator check-in"),
    UsageSource.DEVICE: _l("Device report"),
    UsageSource.MANUAL: _l("Manual entry"),
}


class DeviceEventKind(StrEnum):
    START = "start"
    STOP = "stop"
    HEARTBEAT = "heartbeat"


class UsageSession(db.Model):
    """A stretch of real use of one instrument: open while end_at is empty. Linked to the booking it
    fulfils, if any; external when the user is outside the instrument's own platform."""

    __tablename__ = "usage_sessions"
    __table_args__ = (
        sa.CheckConstraint("end_at IS NULL OR end_at >= start_at", name="ends_after_start"),
        sa.CheckConstraint("last_seen_at >= start_at", name="seen_after_start"),
        sa.CheckConstraint("source <> 'manual' OR reason <> ''", name="manual_has_reason"),
        sa.Index("ix_usage_sessions_instrument_time", "instrument_id", "start_at"),
        sa.Index("ix_usage_sessions_open", "source", "end_at"),
        sa.Index("ix_usage_sessions_updated_at", "updated_at"),  # what changed since the metrics roll-up's last run
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"))
    source: Mapped[UsageSource] = mapped_column(str_enum(UsageSource))
    start_at: Mapped[UTCTime]
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[UTCTime]  # a device's last heartbeat; the start for other sources
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"))
    is_external: Mapped[bool] = mapped_column(default=False)  # a user outside the owning platform
    is_flagged: Mapped[bool] = mapped_column(default=False)  # use without a booking
    reason: Mapped[str] = mapped_column(sa.String(500), default="")  # of a walk-in or a manual entry
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    updated_at: Mapped[UTCTime] = mapped_column(default=utcnow, onupdate=utcnow)

    instrument: Mapped[Instrument] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])

    @property
    def is_open(self) -> bool:
        return self.end_at is None

    def duration(self, now: datetime) -> timedelta:
        return (self.end_at or now) - self.start_at

    def audit_view(self) -> dict:
        return {"instrument_id": self.instrument_id, "source": self.source.value,
                "start_at": self.start_at.isoformat(), "end_at": self.end_at.isoformat() if self.end_at else None,
                "booking_id": self.booking_id, "user_id": self.user_id, "organisation_id": self.organisation_id,
                "is_external": self.is_external, "reason": self.reason}


class InstrumentMonitoring(db.Model):
    """An instrument's monitoring settings. Its row is also what telemetry locks: one instrument's
    events are applied one at a time."""

    __tablename__ = "instrument_monitoring"
    __table_args__ = (sa.CheckConstraint("offline_after_minutes BETWEEN 1 AND 1440", name="offline_after_range"),)

    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), primary_key=True)
    offline_after_minutes: Mapped[int] = mapped_column(default=DEFAULT_OFFLINE_AFTER_MINUTES)

    @property
    def id(self) -> int:  # the audit log names a subject by its table and id
        return self.instrument_id

    @property
    def offline_after(self) -> timedelta:
        return timedelta(minutes=self.offline_after_minutes)


class DeviceToken(db.Model):
    """A device's credential for one instrument: shown once when made, kept as its SHA-256."""

    __tablename__ = "device_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), index=True)
    label: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None

    def audit_view(self) -> dict:
        return {"instrument_id": self.instrument_id, "label": self.label,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


class DeviceEvent(db.Model):
    """What a device reported, as it reported it: the same event sent twice is one row."""

    __tablename__ = "device_events"
    __table_args__ = (sa.UniqueConstraint("instrument_id", "kind", "at"),
                      sa.Index("ix_device_events_instrument_at", "instrument_id", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"))
    kind: Mapped[DeviceEventKind] = mapped_column(str_enum(DeviceEventKind))
    at: Mapped[UTCTime]
    token_id: Mapped[int] = mapped_column(sa.ForeignKey("device_tokens.id"))
    session_id: Mapped[int | None] = mapped_column(sa.ForeignKey("usage_sessions.id", ondelete="SET NULL"))
    received_at: Mapped[UTCTime] = mapped_column(default=utcnow)


class InstrumentDay(db.Model):
    """One instrument's figures for one local (Asia/Shanghai) day, kept by the metrics job and rolled up
    to weeks, months, quarters and years by the period columns. Times in seconds, money in fen."""

    __tablename__ = "instrument_days"
    __table_args__ = (sa.Index("ix_instrument_days_day", "day"),)

    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    week: Mapped[date] = mapped_column()  # the Monday of the day's week
    month: Mapped[date] = mapped_column()  # the first of its month
    quarter: Mapped[date] = mapped_column()  # the first day of its quarter
    year: Mapped[int] = mapped_column()
    available_seconds: Mapped[int] = mapped_column(default=0)  # open hours less holidays and maintenance
    booked_seconds: Mapped[int] = mapped_column(default=0)
    effective_seconds: Mapped[int] = mapped_column(default=0)  # 有效工作机时, from usage sessions
    external_seconds: Mapped[int] = mapped_column(default=0)  # of those, by users outside the platform
    revenue_enterprise_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    revenue_voucher_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    bookings: Mapped[int] = mapped_column(default=0)
    no_shows: Mapped[int] = mapped_column(default=0)
    cancellations: Mapped[int] = mapped_column(default=0)

    FIGURES = ("available_seconds", "booked_seconds", "effective_seconds", "external_seconds",
               "revenue_enterprise_fen", "revenue_voucher_fen", "bookings", "no_shows", "cancellations")


class MetricsWatermark(db.Model):
    """Until when the incremental metrics job has taken changes in: one row."""

    __tablename__ = "metrics_watermark"

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_until: Mapped[UTCTime]
