"""Core tables: people, organisations, roles, tokens, audit log, outbox, rate-limit counters, job runs."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, UTCTime, str_enum, utcnow
from core.extensions import db


class Role(StrEnum):
    ENTERPRISE_MEMBER = "enterprise_member"
    PLATFORM_ADMIN = "platform_admin"
    PLATFORM_OPERATOR = "platform_operator"
    BUREAU_ADMIN = "bureau_admin"
    FINANCE_OFFICER = "finance_officer"
    INTRODUCER = "introducer"
    EXPERT = "expert"
    AUDITOR = "auditor"


ROLE_LABELS = {
    Role.ENTERPRISE_MEMBER: _l("Enterprise member"),
    Role.PLATFORM_ADMIN: _l("Platform admin"),
    Role.PLATFORM_OPERATOR: _l("Platform operator"),
    Role.BUREAU_ADMIN: _l("Bureau admin"),
    Role.FINANCE_OFFICER: _l("Finance officer"),
    Role.INTRODUCER: _l("Introducer"),
    Role.EXPERT: _l("Expert"),
    Role.AUDITOR: _l("Auditor"),
}

# Roles held within one organisation, and the kind of organisation each needs.
SCOPED_ROLES = {
    Role.ENTERPRISE_MEMBER: "enterprise",
    Role.PLATFORM_ADMIN: "platform",
    Role.PLATFORM_OPERATOR: "platform",
}


class OrganisationKind(StrEnum):
    PLATFORM = "platform"
    ENTERPRISE = "enterprise"
    BUREAU = "bureau"


ORGANISATION_KIND_LABELS = {
    OrganisationKind.PLATFORM: _l("Platform"),
    OrganisationKind.ENTERPRISE: _l("Enterprise"),
    OrganisationKind.BUREAU: _l("Bureau"),
}


class PlatformType(StrEnum):
    RESEARCH_INSTITUTE = "research_institute"
    LABORATORY = "laboratory"
    INNOVATION_CENTRE = "innovation_centre"
    TECHNOLOGY_CENTRE = "technology_centre"


PLATFORM_TYPE_LABELS = {
    PlatformType.RESEARCH_INSTITUTE: _l("Research institute"),
    PlatformType.LABORATORY: _l("Laboratory"),
    PlatformType.INNOVATION_CENTRE: _l("Innovation centre"),
    PlatformType.TECHNOLOGY_CENTRE: _l("Technology centre"),
}


class LegalForm(StrEnum):
    PUBLIC_INSTITUTION = "public_institution"
    PRIVATE_NON_ENTERPRISE = "private_non_enterprise"
    ENTERPRISE = "enterprise"


LEGAL_FORM_LABELS = {
    LegalForm.PUBLIC_INSTITUTION: _l("Public institution"),
    LegalForm.PRIVATE_NON_ENTERPRISE: _l("Private non-enterprise unit"),
    LegalForm.ENTERPRISE: _l("Enterprise (legal form)"),
}


class Industry(StrEnum):
    MODERN_TEXTILES = "modern_textiles"
    NEW_MATERIALS = "new_materials"
    BIOMEDICINE = "biomedicine"
    SEMICONDUCTOR_OPTOELECTRONICS = "semiconductor_optoelectronics"


INDUSTRY_LABELS = {
    Industry.MODERN_TEXTILES: _l("Modern textiles"),
    Industry.NEW_MATERIALS: _l("New materials"),
    Industry.BIOMEDICINE: _l("Biomedicine"),
    Industry.SEMICONDUCTOR_OPTOELECTRONICS: _l("Semiconductors and optoelectronic information"),
}


class BureauKind(StrEnum):
    SCIENCE_TECHNOLOGY = "science_technology"
    FINANCE = "finance"
    AUDIT = "audit"


BUREAU_KIND_LABELS = {
    BureauKind.SCIENCE_TECHNOLOGY: _l("Science and Technology Bureau"),
    BureauKind.FINANCE: _l("Finance Bureau"),
    BureauKind.AUDIT: _l("Audit Bureau"),
}


class VerificationState(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


VERIFICATION_STATE_LABELS = {
    VerificationState.PENDING: _l("Awaiting verification"),
    VerificationState.VERIFIED: _l("Verified"),
    VerificationState.REJECTED: _l("Rejected"),
}

VERIFICATION_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    VerificationState.PENDING: {VerificationState.VERIFIED, VerificationState.REJECTED},
    VerificationState.REJECTED: {VerificationState.VERIFIED, VerificationState.PENDING},
    VerificationState.VERIFIED: {VerificationState.REJECTED},
}


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
                      sa.CheckConstraint("locale IN ('zh_CN', 'en')", name="locale_known"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    phone: Mapped[str | None] = mapped_column(sa.String(30))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    locale: Mapped[str] = mapped_column(sa.String(8), default="zh_CN")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    # Raised by log-out and by a new password: every session and remember-me cookie made before ends
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")

    grants: Mapped[list[RoleGrant]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                   lazy="selectin", order_by="RoleGrant.id")

    @property
    def roles(self) -> set[Role]:
        return {grant.role for grant in self.grants}

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def organisation_ids(self, *roles: Role) -> set[int]:
        return {g.organisation_id for g in self.grants if g.role in roles and g.organisation_id is not None}

    def get_id(self) -> str:
        """What the session and the remember-me cookie keep: the id and the session version, so a
        cookie made before a log-out or a new password no longer logs anyone in (core.auth.load_user)."""
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class Organisation(db.Model):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OrganisationKind] = mapped_column(str_enum(OrganisationKind, name="organisation_kind"))
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    address: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    __mapper_args__ = {"polymorphic_on": "kind"}

    def audit_view(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address}


class Bureau(Organisation):
    __tablename__ = "bureaus"

    id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    bureau_kind: Mapped[BureauKind] = mapped_column(str_enum(BureauKind), unique=True)

    __mapper_args__ = {"polymorphic_identity": OrganisationKind.BUREAU}


class Enterprise(Organisation):
    __tablename__ = "enterprises"
    __table_args__ = (sa.CheckConstraint("length(credit_code) = 18", name="credit_code_length"),)

    id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    credit_code: Mapped[str] = mapped_column(sa.String(18), unique=True)
    legal_representative: Mapped[str] = mapped_column(sa.String(100))
    actual_controller: Mapped[str | None] = mapped_column(sa.String(100), index=True)  # 实际控制人
    is_tech_sme: Mapped[bool] = mapped_column(default=False)
    verification_state: Mapped[VerificationState] = mapped_column(
        str_enum(VerificationState), default=VerificationState.PENDING)
    verification_note: Mapped[str | None] = mapped_column(sa.String(500))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __mapper_args__ = {"polymorphic_identity": OrganisationKind.ENTERPRISE}

    @property
    def state(self) -> VerificationState:  # the name core.states.move() changes
        return self.verification_state

    @state.setter
    def state(self, value: VerificationState) -> None:
        self.verification_state = value

    @property
    def is_verified(self) -> bool:
        return self.verification_state == VerificationState.VERIFIED

    def audit_view(self) -> dict[str, Any]:
        return super().audit_view() | {
            "credit_code": self.credit_code, "legal_representative": self.legal_representative,
            "actual_controller": self.actual_controller,
            "is_tech_sme": self.is_tech_sme, "verification_state": str(self.verification_state)}


class Platform(Organisation):
    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    platform_type: Mapped[PlatformType] = mapped_column(str_enum(PlatformType))
    legal_form: Mapped[LegalForm] = mapped_column(str_enum(LegalForm))
    description: Mapped[str | None] = mapped_column(sa.Text)
    # the legal entity behind the platform: an enterprise sharing any of these is a related party
    credit_code: Mapped[str | None] = mapped_column(sa.String(18), index=True)
    legal_representative: Mapped[str | None] = mapped_column(sa.String(100))
    actual_controller: Mapped[str | None] = mapped_column(sa.String(100))
    # where redemption claims are paid
    bank_account_name: Mapped[str | None] = mapped_column(sa.String(200))
    bank_name: Mapped[str | None] = mapped_column(sa.String(200))
    bank_account_number: Mapped[str | None] = mapped_column(sa.String(40))

    industry_rows: Mapped[list[PlatformIndustry]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="PlatformIndustry.industry")

    __mapper_args__ = {"polymorphic_identity": OrganisationKind.PLATFORM}

    @property
    def industries(self) -> list[Industry]:
        return [row.industry for row in self.industry_rows]

    @industries.setter
    def industries(self, values: list[Industry]) -> None:
        wanted = set(values)
        self.industry_rows = [row for row in self.industry_rows if row.industry in wanted] + [
            PlatformIndustry(industry=value) for value in sorted(wanted - set(self.industries))]

    def audit_view(self) -> dict[str, Any]:
        return super().audit_view() | {
            "platform_type": str(self.platform_type), "legal_form": str(self.legal_form),
            "industries": [str(i) for i in self.industries], "description": self.description,
            "credit_code": self.credit_code, "legal_representative": self.legal_representative,
            "actual_controller": self.actual_controller, "bank_account_name": self.bank_account_name,
            "bank_name": self.bank_name, "bank_account_number": self.bank_account_number}


class PlatformIndustry(db.Model):
    __tablename__ = "platform_industries"

    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"), primary_key=True)
    industry: Mapped[Industry] = mapped_column(str_enum(Industry), primary_key=True)


class ChangeState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


CHANGE_STATE_LABELS = {
    ChangeState.PENDING: _l("Waiting for the bureau"),
    ChangeState.APPROVED: _l("Approved"),
    ChangeState.REJECTED: _l("Rejected"),
}

CHANGE_TRANSITIONS: dict[StrEnum, set[StrEnum]] = {
    ChangeState.PENDING: {ChangeState.APPROVED, ChangeState.REJECTED},
}

# The fields that decide a voucher's ratio (tech SME), a controller group's yearly cap, the related-party
# test and admission: changed by the organisation's own people, they wait for the bureau's review.
KEY_FIELDS = {
    OrganisationKind.ENTERPRISE: ("is_tech_sme", "actual_controller", "legal_representative"),
    OrganisationKind.PLATFORM: ("platform_type", "legal_form", "industries"),
}

KEY_FIELD_LABELS = {
    "is_tech_sme": _l("Registered technology-based SME"),
    "actual_controller": _l("Actual controller (实际控制人)"),
    "legal_representative": _l("Legal representative"),
    "platform_type": _l("Type"),
    "legal_form": _l("Legal form"),
    "industries": _l("Industries"),
}


class OrganisationChange(db.Model):
    """A change of an organisation's key fields asked by its own people: the organisation keeps its values
    until the bureau approves; at most one waits per organisation (the partial unique index)."""

    __tablename__ = "organisation_changes"
    __table_args__ = (
        sa.Index("uq_organisation_changes_pending", "organisation_id", unique=True,
                 sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'")),
        sa.CheckConstraint("(state = 'pending') = (decided_at IS NULL)", name="decided_when_not_pending"),
        sa.CheckConstraint("state != 'rejected' OR decision_note IS NOT NULL", name="rejection_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    state: Mapped[ChangeState] = mapped_column(str_enum(ChangeState, name="change_state"), default=ChangeState.PENDING)
    old_values: Mapped[dict] = mapped_column(sa.JSON)  # field → value when asked, as JSON
    new_values: Mapped[dict] = mapped_column(sa.JSON)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(sa.String(500))

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])

    def fields(self) -> list[tuple[str, Any, Any]]:
        """(field, value when asked, value asked for), in the order of KEY_FIELDS."""
        return [(name, self.old_values.get(name), self.new_values[name])
                for name in KEY_FIELDS[self.organisation.kind] if name in self.new_values]


class RoleGrant(db.Model):
    __tablename__ = "role_grants"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "role", "organisation_id"),
        sa.CheckConstraint(
            "(role IN ('enterprise_member', 'platform_admin', 'platform_operator')) = (organisation_id IS NOT NULL)",
            name="scoped_roles_have_organisation"),
        sa.Index("uq_role_grants_unscoped", "user_id", "role", unique=True,
                 sqlite_where=sa.text("organisation_id IS NULL"),
                 postgresql_where=sa.text("organisation_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    granted_at: Mapped[UTCTime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="grants")
    organisation: Mapped[Organisation | None] = relationship(lazy="joined")


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hint: Mapped[str] = mapped_column(sa.String(8))  # the first characters, to tell tokens apart
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    expires_at: Mapped[UTCTime]
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


class PasswordResetToken(db.Model):
    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    expires_at: Mapped[UTCTime]
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class AuditEntry(db.Model):
    """Append-only: triggers in the migration refuse UPDATE and DELETE on both databases."""

    __tablename__ = "audit_entries"
    __table_args__ = (sa.Index("ix_audit_entries_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[UTCTime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    actor_label: Mapped[str] = mapped_column(sa.String(100))  # the e-mail or "job:…", kept if the user goes
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    action: Mapped[str] = mapped_column(sa.String(80), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(50))
    subject_id: Mapped[int | None] = mapped_column()
    before: Mapped[dict | None] = mapped_column(sa.JSON(none_as_null=True))
    after: Mapped[dict | None] = mapped_column(sa.JSON(none_as_null=True))


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (sa.Index("ix_outbox_messages_pending", "sent_at", "attempts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    to: Mapped[str] = mapped_column(sa.String(254))
    locale: Mapped[str] = mapped_column(sa.String(8))
    template: Mapped[str] = mapped_column(sa.String(100))
    context: Mapped[dict] = mapped_column(sa.JSON)
    attachments: Mapped[list | None] = mapped_column(sa.JSON)  # core.outbox.Attachment, as JSON
    created_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())  # a job is sending it (core.outbox)


class RateLimitCounter(db.Model):
    """Fixed-window counters of Flask-Limiter, shared by every worker through the database."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[float] = mapped_column(sa.Float)  # epoch seconds, as the limits library counts


class JobOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


JOB_OUTCOME_LABELS = {
    JobOutcome.RUNNING: _l("Running"),
    JobOutcome.SUCCEEDED: _l("Succeeded"),
    JobOutcome.FAILED: _l("Failed"),
}


class JobRun(db.Model):
    """One run of a periodic job (core.scheduler.run_job): its start is committed before the job runs,
    its outcome after, so a run whose process died stays "running". A failed run that alerted the
    bureau carries the day (Asia/Shanghai) of its alert: the unique index lets one run a day do so."""

    __tablename__ = "job_runs"
    __table_args__ = (sa.Index("ix_job_runs_job_id_started_at", "job_id", "started_at"),
                      sa.UniqueConstraint("job_id", "alert_day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(80))
    started_at: Mapped[UTCTime]
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column()
    outcome: Mapped[JobOutcome] = mapped_column(str_enum(JobOutcome), default=JobOutcome.RUNNING)
    result: Mapped[str | None] = mapped_column(sa.String(200))
    error: Mapped[str | None] = mapped_column(sa.String(4000))
    alert_day: Mapped[date | None] = mapped_column()
