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


# --- alert rules and alerts -------------------------------------------------------------------------

class AlertKind(StrEnum):
    IDLE = "idle"  # utilization under the threshold; large instruments under the yearly benchmark
    HOARDED = "hoarded"  # sharing rate under the threshold with enough effective hours
    UNBOOKED_USE = "unbooked_use"  # a usage session without a booking
    OVERRUN = "overrun"  # use past a booking's end
    DEVICE_OFFLINE = "device_offline"  # a device silent during a booking
    NO_SHOWS = "no_shows"  # repeated no-shows by one user
    UNAPPROVED_REQUEST = "unapproved_request"  # a booking request waiting for approval too long
    STALE_ENTRY = "stale_entry"  # a catalogue entry not updated for months
    VOUCHER_POOL_WARNING = "voucher_pool_warning"  # a programme's pool spent past the first line
    VOUCHER_POOL_CRITICAL = "voucher_pool_critical"  # … past the second
    VOUCHER_FLAG = "voucher_flag"  # one of the voucher anti-abuse flags
    JOB_FAILED = "job_failed"  # a periodic job whose last run failed


ALERT_KIND_LABELS = {
    AlertKind.JOB_FAILED: _l("Job failed"),
    AlertKind.IDLE: _l("Idle instrument"),
    AlertKind.HOARDED: _l("Hoarded instrument"),
    AlertKind.UNBOOKED_USE: _l("Use without a booking"),
    AlertKind.OVERRUN: _l("Overrun past the booking"),
    AlertKind.DEVICE_OFFLINE: _l("Device offline during a booking"),
    AlertKind.NO_SHOWS: _l("Repeated no-shows"),
    AlertKind.UNAPPROVED_REQUEST: _l("Booking request left unapproved"),
    AlertKind.STALE_ENTRY: _l("Catalogue entry not updated"),
    AlertKind.VOUCHER_POOL_WARNING: _l("Voucher pool nearly spent"),
    AlertKind.VOUCHER_POOL_CRITICAL: _l("Voucher pool almost exhausted"),
    AlertKind.VOUCHER_FLAG: _l("Voucher flag"),
}


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ALERT_STATE_LABELS = {
    AlertState.OPEN: _l("Open"),
    AlertState.ACKNOWLEDGED: _l("Acknowledged"),
    AlertState.RESOLVED: _l("Resolved"),
}

# The one table of allowed moves; resolved is final (the condition's return opens a new alert)
ALERT_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    AlertState.OPEN: {AlertState.ACKNOWLEDGED, AlertState.RESOLVED},
    AlertState.ACKNOWLEDGED: {AlertState.RESOLVED},
}


class AlertRule(db.Model):
    """A rule's switch and thresholds set by the bureau: the district's (no category) or a category's
    override. A kind without a district row runs on the defaults in monitoring/alerts.py."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        sa.UniqueConstraint("kind", "category_id"),
        sa.Index("uq_alert_rules_district", "kind", unique=True,
                 sqlite_where=sa.text("category_id IS NULL"), postgresql_where=sa.text("category_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("instrument_categories.id", ondelete="CASCADE"))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    thresholds: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[UTCTime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    def audit_view(self) -> dict:
        return {"kind": self.kind.value, "category_id": self.category_id, "is_enabled": self.is_enabled,
                "thresholds": dict(self.thresholds)}


class Alert(db.Model):
    """One finding of a rule about one subject (an instrument, a booking, a user, a programme …): open
    until it is resolved, by hand or by itself when its condition clears. At most one unresolved alert
    per rule and subject; the condition's return opens a new one."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("uq_alerts_unresolved", "kind", "subject_type", "subject_id", "subject_key", unique=True,
                 sqlite_where=sa.text("state <> 'resolved'"), postgresql_where=sa.text("state <> 'resolved'")),
        sa.Index("ix_alerts_state_platform", "state", "platform_id"),
        sa.Index("ix_alerts_opened_at", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind))
    subject_type: Mapped[str] = mapped_column(sa.String(40))  # the subject's table
    subject_id: Mapped[int]
    subject_key: Mapped[str] = mapped_column(sa.String(60), default="")  # tells apart findings of one subject
    state: Mapped[AlertState] = mapped_column(str_enum(AlertState), default=AlertState.OPEN)
    platform_id: Mapped[int | None] = mapped_column(sa.ForeignKey("platforms.id"))  # None: the bureau's
    figures: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # what the rule found, for the reason
    opened_at: Mapped[UTCTime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # None: resolved by itself
    resolution_note: Mapped[str] = mapped_column(sa.String(500), default="")
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when its immediate mail was queued

    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    def audit_view(self) -> dict:
        return {"kind": self.kind.value, "subject_type": self.subject_type, "subject_id": self.subject_id,
                "subject_key": self.subject_key, "state": self.state.value, "figures": dict(self.figures),
                "resolution_note": self.resolution_note}


class AlertMailMode(StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"


ALERT_MAIL_MODE_LABELS = {
    AlertMailMode.IMMEDIATE: _l("At once, one mail per alert"),
    AlertMailMode.DIGEST: _l("Once a day, as a digest"),
}


class AlertPreference(db.Model):
    """How a person wants alert mail; without a row, at once. digest_until: the digest has covered the
    alerts opened until then."""

    __tablename__ = "alert_preferences"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[AlertMailMode] = mapped_column(str_enum(AlertMailMode), default=AlertMailMode.IMMEDIATE)
    digest_until: Mapped[UTCTime] = mapped_column(default=utcnow)

    @property
    def id(self) -> int:  # the audit log names a subject by its table and id
        return self.user_id
