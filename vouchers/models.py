"""Innovation vouchers (创新券): programmes, applications, vouchers, the append-only ledger, redemption
claims and related parties. Bookings are the marketplace's: a ledger entry and a voucher use
name a booking's key but map no relationship to it, and what vouchers need to know of a booking the
marketplace tells them through the voucher services (vouchers sits below marketplace)."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Fen, UTCDateTime, UTCTime, str_enum, utcnow
from core.extensions import db
from core.models import Enterprise, Platform, User


class RedemptionMode(StrEnum):
    PROVIDER = "provider"  # 通兑: the enterprise pays its share, the platform claims the voucher part
    ENTERPRISE = "enterprise"  # 通用: the enterprise pays in full and claims the voucher part back


REDEMPTION_MODE_LABELS = {
    RedemptionMode.PROVIDER: _l("Provider-redeemed (the platform claims the voucher part)"),
    RedemptionMode.ENTERPRISE: _l("Enterprise-reimbursed (the enterprise claims the voucher part back)"),
}


class Programme(db.Model):
    """A voucher programme of the bureau. issued_fen never passes pool_fen (CHECK, and an atomic
    conditional UPDATE at issuance), however many approvals run at once."""

    __tablename__ = "voucher_programmes"
    __table_args__ = (
        sa.CheckConstraint("pool_fen > 0 AND issued_fen >= 0 AND issued_fen <= pool_fen", name="within_pool"),
        sa.CheckConstraint("coverage_bp BETWEEN 1 AND 10000 AND sme_coverage_bp BETWEEN coverage_bp AND 10000",
                           name="coverage_is_a_share"),
        sa.CheckConstraint("enterprise_year_cap_fen > 0 AND order_cap_fen > 0", name="caps_positive"),
        sa.CheckConstraint("validity_days > 0", name="validity_positive"),
        sa.CheckConstraint("applications_close_on >= applications_open_on", name="window_ordered"),
        sa.UniqueConstraint("name", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    year: Mapped[int]
    pool_fen: Mapped[Fen]
    issued_fen: Mapped[Fen] = mapped_column(default=0)  # the sum of issue entries: what the pool has given
    coverage_bp: Mapped[int] = mapped_column(default=5_000)  # 5,000 bp = 50 % of the eligible price
    sme_coverage_bp: Mapped[int] = mapped_column(default=7_000)  # for 科技型中小企业
    enterprise_year_cap_fen: Mapped[Fen]  # per enterprise, or per group under one actual controller, per year
    order_cap_fen: Mapped[Fen]
    validity_days: Mapped[int] = mapped_column(default=365)  # from issuance to expiry
    applications_open_on: Mapped[date]
    applications_close_on: Mapped[date]
    redemption_mode: Mapped[RedemptionMode] = mapped_column(str_enum(RedemptionMode),
                                                            default=RedemptionMode.PROVIDER)
    eligible_category_codes: Mapped[list] = mapped_column(sa.JSON, default=list)  # 2- or 4-digit; [] = all
    eligible_platform_ids: Mapped[list] = mapped_column(sa.JSON, default=list)  # [] = every platform
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    def is_open_for_applications(self, on: date) -> bool:
        return self.applications_open_on <= on <= self.applications_close_on

    @property
    def remaining_fen(self) -> int:
        return self.pool_fen - self.issued_fen

    def coverage_bp_for(self, enterprise: Enterprise) -> int:
        """The share of the eligible price a voucher of this programme pays for the enterprise: the higher
        ratio for a tech SME (科技型中小企业), else the general one."""
        return self.sme_coverage_bp if enterprise.is_tech_sme else self.coverage_bp

    def audit_view(self) -> dict[str, Any]:
        return {c.name: (v.isoformat() if isinstance(v := getattr(self, c.key), (date, datetime))
                         else v.value if isinstance(v, StrEnum) else v)
                for c in self.__table__.columns if c.name not in ("id", "created_at", "created_by_id")}


class ProgrammeSuspension(db.Model):
    """A platform suspended from a programme: its instruments take no vouchers of it."""

    __tablename__ = "voucher_programme_suspensions"
    __table_args__ = (sa.UniqueConstraint("programme_id", "platform_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("voucher_programmes.id"))
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id"))
    reason: Mapped[str] = mapped_column(sa.String(500))
    suspended_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    suspended_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    platform: Mapped[Platform] = relationship(lazy="joined", innerjoin=True)


class ApplicationState(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # by the applicant enterprise, while it waited


APPLICATION_STATE_LABELS = {
    ApplicationState.SUBMITTED: _l("Submitted"),
    ApplicationState.APPROVED: _l("Approved"),
    ApplicationState.REJECTED: _l("Rejected"),
    ApplicationState.WITHDRAWN: _l("Withdrawn by the applicant"),
}
APPLICATION_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    ApplicationState.SUBMITTED: {ApplicationState.APPROVED, ApplicationState.REJECTED, ApplicationState.WITHDRAWN},
}
# Why an application that is no longer waiting cannot be decided or withdrawn (409, with the state's code).
APPLICATION_DONE_MESSAGES = {
    ApplicationState.APPROVED: _l("This application is already approved."),
    ApplicationState.REJECTED: _l("This application is already rejected."),
    ApplicationState.WITHDRAWN: _l("This application was withdrawn by the enterprise."),
}


class Application(db.Model):
    __tablename__ = "voucher_applications"
    __table_args__ = (
        sa.CheckConstraint("requested_fen > 0", name="request_positive"),
        sa.CheckConstraint("approved_fen IS NULL OR (approved_fen > 0 AND approved_fen <= requested_fen)",
                           name="approval_within_request"),
        sa.CheckConstraint("state <> 'rejected' OR decision_note IS NOT NULL", name="rejection_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("voucher_programmes.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id"), index=True)
    applicant_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    requested_fen: Mapped[Fen]
    purpose: Mapped[str] = mapped_column(sa.Text)
    planned_instruments: Mapped[str] = mapped_column(sa.Text, default="")
    state: Mapped[ApplicationState] = mapped_column(str_enum(ApplicationState), default=ApplicationState.SUBMITTED)
    approved_fen: Mapped[int | None] = mapped_column(sa.BigInteger)
    decision_note: Mapped[str | None] = mapped_column(sa.String(1000))
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    programme: Mapped[Programme] = relationship(lazy="joined", innerjoin=True)
    enterprise: Mapped[Enterprise] = relationship(lazy="joined", innerjoin=True)
    attachments: Mapped[list[Attachment]] = relationship(
        primaryjoin="and_(Attachment.owner_type == 'application', foreign(Attachment.owner_id) == Application.id)",
        viewonly=True, lazy="selectin", order_by="Attachment.id")


class Attachment(db.Model):
    """A file (PDF, JPEG or PNG, 10 MB at most) of an application or a claim, under UPLOAD_DIR/vouchers/."""

    __tablename__ = "voucher_attachments"
    __table_args__ = (sa.CheckConstraint("owner_type IN ('application', 'claim')", name="owner_known"),
                      sa.Index("ix_voucher_attachments_owner", "owner_type", "owner_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_type: Mapped[str] = mapped_column(sa.String(20))
    owner_id: Mapped[int]
    stored_name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    original_name: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(50))
    size: Mapped[int]
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    uploaded_at: Mapped[UTCTime] = mapped_column(default=utcnow)


class VoucherState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    VOID = "void"


VOUCHER_STATE_LABELS = {
    VoucherState.ACTIVE: _l("Active"),
    VoucherState.EXPIRED: _l("Expired"),
    VoucherState.VOID: _l("Void"),
}
VOUCHER_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    VoucherState.ACTIVE: {VoucherState.EXPIRED, VoucherState.VOID},
    VoucherState.EXPIRED: {VoucherState.VOID},
}


class Voucher(db.Model):
    """balance_fen is what may still be spent; held_fen is set aside for bookings not yet completed;
    consumed_fen was spent on completed bookings, of which redeemed_fen has been paid out by a claim.
    Each column is the sum of the ledger (services.ledger_totals), never negative (CHECKs)."""

    __tablename__ = "vouchers"
    __table_args__ = (
        sa.CheckConstraint("balance_fen >= 0", name="balance_not_negative"),
        sa.CheckConstraint("held_fen >= 0", name="held_not_negative"),
        sa.CheckConstraint("consumed_fen >= 0 AND redeemed_fen >= 0 AND redeemed_fen <= consumed_fen",
                           name="redeemed_within_consumed"),
        sa.CheckConstraint("balance_fen + held_fen + consumed_fen <= amount_fen", name="within_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(sa.String(20), unique=True)  # KQ2026-000123
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("voucher_programmes.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id"), index=True)
    application_id: Mapped[int] = mapped_column(sa.ForeignKey("voucher_applications.id"), unique=True)
    amount_fen: Mapped[Fen]
    balance_fen: Mapped[Fen]
    held_fen: Mapped[Fen] = mapped_column(default=0)
    consumed_fen: Mapped[Fen] = mapped_column(default=0)
    redeemed_fen: Mapped[Fen] = mapped_column(default=0)
    state: Mapped[VoucherState] = mapped_column(str_enum(VoucherState), default=VoucherState.ACTIVE)
    issued_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    expires_at: Mapped[UTCTime]
    void_reason: Mapped[str | None] = mapped_column(sa.String(500))

    programme: Mapped[Programme] = relationship(lazy="joined", innerjoin=True)
    enterprise: Mapped[Enterprise] = relationship(lazy="joined", innerjoin=True)

    def audit_view(self) -> dict[str, Any]:
        return {"serial": self.serial, "state": self.state.value, "balance_fen": self.balance_fen,
                "held_fen": self.held_fen, "consumed_fen": self.consumed_fen, "redeemed_fen": self.redeemed_fen}


class EntryKind(StrEnum):
    ISSUE = "issue"  # + balance
    HOLD = "hold"  # balance → held, for a booking
    RELEASE = "release"  # held → balance (cancellation, rejection, or less consumed than held)
    CONSUME = "consume"  # held → consumed, at completion on the final price
    EXPIRE = "expire"  # balance → gone, at the end of validity (back to the programme's record)
    VOID = "void"  # balance → gone, by the bureau (collusion, falsification)
    REDEEM = "redeem"  # consumed → paid out by an approved and paid claim


ENTRY_KIND_LABELS = {
    EntryKind.ISSUE: _l("Issued"), EntryKind.HOLD: _l("Held"), EntryKind.RELEASE: _l("Released"),
    EntryKind.CONSUME: _l("Consumed"), EntryKind.EXPIRE: _l("Expired"), EntryKind.VOID: _l("Voided"),
    EntryKind.REDEEM: _l("Redeemed"),
}


class LedgerEntry(db.Model):
    """Append-only: triggers refuse UPDATE and DELETE on both databases."""

    __tablename__ = "voucher_ledger_entries"
    __table_args__ = (sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
                      sa.Index("ix_voucher_ledger_entries_voucher", "voucher_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(sa.ForeignKey("vouchers.id"))
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind))
    amount_fen: Mapped[Fen]
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"), index=True)
    claim_id: Mapped[int | None] = mapped_column(sa.ForeignKey("voucher_claims.id"), index=True)
    platform_id: Mapped[int | None] = mapped_column(sa.ForeignKey("platforms.id"), index=True)  # who served
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(sa.String(100))
    at: Mapped[UTCTime] = mapped_column(default=utcnow, index=True)


class VoucherUse(db.Model):
    """A booking a voucher pays part of, as the marketplace described it to vouchers: at the hold, what
    was booked where, when and at what price, and the coverage ratio held (the one consumption applies);
    at completion, when it was served and on what final price; and whether the enterprise has paid what
    it owed (paid, or paid and the overpaid difference refunded). Claims, flags and reports read it and
    the ledger, never the marketplace's tables. One per booking: a booking holds one voucher once."""

    __tablename__ = "voucher_uses"
    __table_args__ = (sa.CheckConstraint("price_fen >= 0 AND (final_price_fen IS NULL OR final_price_fen >= 0)",
                                         name="prices_not_negative"),
                      sa.CheckConstraint("ratio_bp BETWEEN 1 AND 10000", name="ratio_is_a_share"),
                      sa.CheckConstraint("end_at > start_at", name="ends_after_start"))

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id"), unique=True)  # the booking reference
    voucher_id: Mapped[int] = mapped_column(sa.ForeignKey("vouchers.id"), index=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id"), index=True)  # the provider
    instrument_name_zh: Mapped[str] = mapped_column(sa.String(200))
    instrument_name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    asset_number: Mapped[str] = mapped_column(sa.String(50), default="")
    category_code: Mapped[str] = mapped_column(sa.String(4))  # the instrument's, 2 or 4 digits
    start_at: Mapped[UTCTime]  # the time booked
    end_at: Mapped[UTCTime]
    price_fen: Mapped[Fen]  # the price at booking
    ratio_bp: Mapped[int]  # the coverage ratio held, applied again to the final price at completion
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the usage as the operator recorded it
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)  # served to completion
    final_price_fen: Mapped[int | None] = mapped_column(sa.BigInteger)
    is_paid: Mapped[bool] = mapped_column(default=False)

    def instrument_name(self, language: str) -> str:
        return (self.instrument_name_en if language == "en" else "") or self.instrument_name_zh


class ClaimKind(StrEnum):
    PROVIDER = "provider"  # a platform claims the voucher parts of bookings it served
    ENTERPRISE = "enterprise"  # an enterprise claims back the voucher parts of bookings it paid in full


class ClaimState(StrEnum):
    SUBMITTED = "submitted"
    RETURNED = "returned"  # sent back with reasons, per line or whole; resubmitted after correction
    APPROVED = "approved"
    PAID = "paid"


CLAIM_STATE_LABELS = {
    ClaimState.SUBMITTED: _l("Submitted"),
    ClaimState.RETURNED: _l("Returned"),
    ClaimState.APPROVED: _l("Approved"),
    ClaimState.PAID: _l("Paid"),
}
CLAIM_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    ClaimState.SUBMITTED: {ClaimState.RETURNED, ClaimState.APPROVED},
    ClaimState.RETURNED: {ClaimState.SUBMITTED},
    ClaimState.APPROVED: {ClaimState.PAID},
}


class Claim(db.Model):
    """A redemption claim (兑付申请) for a period; each voucher use appears in at most one claim."""

    __tablename__ = "voucher_claims"
    __table_args__ = (
        sa.CheckConstraint("(kind = 'provider') = (platform_id IS NOT NULL) AND "
                           "(kind = 'enterprise') = (enterprise_id IS NOT NULL)", name="claimant_matches_kind"),
        sa.CheckConstraint("period_end >= period_start", name="period_ordered"),
        sa.CheckConstraint("total_fen >= 0", name="total_not_negative"),
        sa.CheckConstraint("state <> 'paid' OR (paid_on IS NOT NULL AND payment_reference IS NOT NULL)",
                           name="paid_has_reference"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ClaimKind] = mapped_column(str_enum(ClaimKind))
    platform_id: Mapped[int | None] = mapped_column(sa.ForeignKey("platforms.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(sa.ForeignKey("enterprises.id"), index=True)
    period_start: Mapped[date]
    period_end: Mapped[date]
    state: Mapped[ClaimState] = mapped_column(str_enum(ClaimState), default=ClaimState.SUBMITTED)
    total_fen: Mapped[Fen] = mapped_column(default=0)
    bank_account_name: Mapped[str] = mapped_column(sa.String(200))
    bank_name: Mapped[str] = mapped_column(sa.String(200))
    bank_account_number: Mapped[str] = mapped_column(sa.String(40))
    declaration: Mapped[str] = mapped_column(sa.Text)  # the truthfulness declaration as signed
    signed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    signed_at: Mapped[UTCTime]
    review_note: Mapped[str | None] = mapped_column(sa.String(1000))
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_on: Mapped[date | None] = mapped_column()
    payment_reference: Mapped[str | None] = mapped_column(sa.String(100))
    paid_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    lines: Mapped[list[ClaimLine]] = relationship(back_populates="claim", cascade="all, delete-orphan",
                                                  order_by="ClaimLine.id", lazy="selectin")
    signed_by: Mapped[User] = relationship(foreign_keys=[signed_by_id])

    def audit_view(self, *, lines: int | None = None) -> dict[str, Any]:
        """`lines`: how many the claim has, when the caller knows (counting them loads them all)."""
        return {"state": self.state.value, "total_fen": self.total_fen,
                "lines": len(self.lines) if lines is None else lines,
                "period": [self.period_start.isoformat(), self.period_end.isoformat()]}


class ClaimLine(db.Model):
    """One voucher use in a claim. booking_id is unique: no use is ever claimed twice."""

    __tablename__ = "voucher_claim_lines"
    __table_args__ = (sa.CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(sa.ForeignKey("voucher_claims.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id"), unique=True)
    voucher_id: Mapped[int] = mapped_column(sa.ForeignKey("vouchers.id"), index=True)
    amount_fen: Mapped[Fen]
    served_on: Mapped[date]
    returned_reason: Mapped[str | None] = mapped_column(sa.String(500))  # set when the bureau returns this line

    claim: Mapped[Claim] = relationship(back_populates="lines")
    voucher: Mapped[Voucher] = relationship(lazy="joined", innerjoin=True)


class RelatedParty(db.Model):
    """A declared relation between an enterprise and a platform: no voucher of the one at the other."""

    __tablename__ = "voucher_related_parties"
    __table_args__ = (sa.UniqueConstraint("enterprise_id", "platform_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id", ondelete="CASCADE"))
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    declared_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    declared_at: Mapped[UTCTime] = mapped_column(default=utcnow)
