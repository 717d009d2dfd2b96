"""The rules about people, organisations, roles and tokens: plain functions over a session."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError as StdnumError

from core.audit import Actor, record_audit
from core.auth import hash_password, hash_secret, needs_rehash, new_secret, verify_password
from core.errors import Conflict, Forbidden, NotFound, RuleBroken
from core.models import (
    CHANGE_STATE_LABELS,
    CHANGE_TRANSITIONS,
    KEY_FIELDS,
    SCOPED_ROLES,
    VERIFICATION_STATE_LABELS,
    VERIFICATION_TRANSITIONS,
    ApiToken,
    AuditEntry,
    ChangeState,
    Enterprise,
    Industry,
    LegalForm,
    Organisation,
    OrganisationChange,
    OrganisationKind,
    PasswordResetToken,
    Platform,
    PlatformType,
    Role,
    RoleGrant,
    User,
    VerificationState,
)
from core.outbox import enqueue_mail
from core.states import can_move, move

MIN_PASSWORD_LENGTH = 8


# --- checks -----------------------------------------------------------------------------------

def normalise_credit_code(value: str) -> str:
    """The 18-character unified social credit code, checked by its GB 32100-2015 check digit."""
    try:
        return uscc.validate(value)
    except StdnumError:
        raise RuleBroken("invalid_credit_code", _("The check digit of this credit code is wrong."),
                         field="credit_code") from None


def administers(user: User | None, platform_id: int) -> bool:
    """Whether the person is an admin of the platform: the one check behind everything a platform runs
    (its instruments, calendars, bookings, claims)."""
    return user is not None and platform_id in user.organisation_ids(Role.PLATFORM_ADMIN)


def can_manage_organisation(user: User | None, organisation: Organisation) -> bool:
    if user is None:
        return False
    if user.has_role(Role.BUREAU_ADMIN):
        return True
    managers = {OrganisationKind.PLATFORM: (Role.PLATFORM_ADMIN,),
                OrganisationKind.ENTERPRISE: (Role.ENTERPRISE_MEMBER,)}.get(organisation.kind, ())
    return organisation.id in user.organisation_ids(*managers)


def can_view_organisation(user: User | None, organisation: Organisation) -> bool:
    if user is not None and user.has_role(Role.AUDITOR, Role.FINANCE_OFFICER):
        return True
    if user is not None and organisation.id in user.organisation_ids(*SCOPED_ROLES):
        return True
    return can_manage_organisation(user, organisation)


def ensure_may_manage_organisation(user: User, organisation: Organisation) -> None:
    if not can_manage_organisation(user, organisation):
        raise Forbidden("forbidden", _("You may not change this organisation."))


def ensure_may_view_organisation(user: User, organisation: Organisation) -> None:
    if not can_view_organisation(user, organisation):
        raise Forbidden("forbidden", _("You may not see this organisation."))


def _ensure_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RuleBroken("password_too_short",
                         _("The password needs at least %(n)d characters.", n=MIN_PASSWORD_LENGTH), field=field)


def _ensure_email_free(session: Session, email: str) -> None:
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise RuleBroken("email_taken", _("An account with this e-mail address exists already."), field="email")


# --- accounts ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Registration:
    email: str
    name: str
    phone: str | None
    password: str
    locale: str
    enterprise_name: str
    credit_code: str
    legal_representative: str
    address: str | None
    is_tech_sme: bool


def register_enterprise(session: Session, data: Registration, *, actor: Actor) -> User:
    """A person registers with their enterprise; the enterprise waits for the bureau's verification."""
    email = data.email.strip().lower()
    credit_code = normalise_credit_code(data.credit_code)
    _ensure_password(data.password)
    _ensure_email_free(session, email)
    if session.scalar(select(Enterprise.id).where(Enterprise.credit_code == credit_code)) is not None:
        raise RuleBroken("enterprise_exists",
                         _("This enterprise is registered already: ask its members to add you."), field="credit_code")
    if session.scalar(select(Organisation.id).where(Organisation.name == data.enterprise_name.strip())):
        raise RuleBroken("name_taken", _("An organisation with this name exists already."), field="enterprise_name")
    enterprise = Enterprise(name=data.enterprise_name.strip(), credit_code=credit_code,
                            legal_representative=data.legal_representative.strip(),
                            address=data.address, is_tech_sme=data.is_tech_sme)
    user = User(email=email, name=data.name.strip(), phone=data.phone, locale=data.locale,
                password_hash=hash_password(data.password))
    user.grants.append(RoleGrant(role=Role.ENTERPRISE_MEMBER, organisation=enterprise))
    session.add_all([enterprise, user])
    try:
        session.flush()
    except sa.exc.IntegrityError:  # a concurrent registration won the race for the same keys
        raise RuleBroken("enterprise_exists", _("This enterprise or e-mail address was registered a moment ago."),
                         field="credit_code") from None
    actor = Actor.of(user, actor.ip)
    record_audit(session, actor, "enterprise.registered", enterprise, after=enterprise.audit_view())
    record_audit(session, actor, "role.granted", user.grants[0],
                 after={"user_id": user.id, "role": str(Role.ENTERPRISE_MEMBER), "organisation_id": enterprise.id})
    return user


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """The user, or None; the same work and answer for a wrong password and an unknown address."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if not verify_password(user, password) or not user.is_active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def request_password_reset(session: Session, *, email: str, now: datetime, ttl: timedelta) -> str | None:
    """E-mail a one-time link if the address has an account; the caller says the same either way."""
    user = session.scalar(select(User).where(User.email == email.strip().lower(), User.is_active.is_(True)))
    if user is None:
        return None
    token, token_hash = new_secret()
    session.add(PasswordResetToken(user_id=user.id, token_hash=token_hash, created_at=now, expires_at=now + ttl))
    enqueue_mail(session, to=user.email, locale=user.locale, template="password_reset",
                 context={"name": user.name, "path": f"/password/reset/{token}",
                          "minutes": int(ttl.total_seconds() // 60)})
    return token


def find_reset_token(session: Session, token: str, *, now: datetime) -> PasswordResetToken | None:
    row = session.scalar(select(PasswordResetToken).where(PasswordResetToken.token_hash == hash_secret(token)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def reset_password(session: Session, *, token: str, password: str, now: datetime, actor: Actor) -> User:
    row = find_reset_token(session, token, now=now)
    if row is None:
        raise RuleBroken("token_invalid", _("This link has expired or was used already. Ask for a new one."))
    _ensure_password(password)
    user = row.user
    # claim the token atomically: of two requests racing with one link, only one finds it unused
    claimed = session.execute(sa.update(PasswordResetToken)
                              .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
                              .values(used_at=now)).rowcount
    if claimed != 1:
        raise RuleBroken("token_invalid", _("This link has expired or was used already. Ask for a new one."))
    session.execute(sa.update(PasswordResetToken)
                    .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
                    .values(used_at=now))
    revoked = _set_password(session, user, password, now=now)
    record_audit(session, Actor.of(user, actor.ip), "user.password_reset", user,
                 after={"api_tokens_revoked": revoked, "sessions_ended": True})
    return user


def change_password(session: Session, user: User, *, current: str, new: str, now: datetime,
                    actor: Actor) -> User:
    """The person's own change: the current password first. Every other session ends; the caller
    keeps its own by storing the new User.get_id in it."""
    if not verify_password(user, current):
        raise RuleBroken("wrong_password", _("This is not your current password."), field="current_password")
    _ensure_password(new)
    revoked = _set_password(session, user, new, now=now)
    record_audit(session, actor, "user.password_changed", user,
                 after={"api_tokens_revoked": revoked, "sessions_ended": True})
    return user


def _set_password(session: Session, user: User, password: str, *, now: datetime) -> int:
    """A new password ends what the old one opened: every session and remember-me cookie (the
    session version) and every API token, since whoever knew the old password may hold one.
    Returns how many tokens were revoked."""
    user.password_hash = hash_password(password)
    _raise_session_version(session, user)
    return session.execute(sa.update(ApiToken)
                           .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                           .values(revoked_at=now)).rowcount


def _raise_session_version(session: Session, user: User) -> None:
    """Incremented in the database, so two requests raising it at once both count."""
    user.session_version = User.session_version + 1
    session.flush()
    session.refresh(user, ["session_version"])


def end_sessions(session: Session, user: User, *, actor: Actor) -> User:
    """Log-out: every session and remember-me cookie of the person ends, a copied one too."""
    _raise_session_version(session, user)
    record_audit(session, actor, "user.sessions_ended", user, after={"session_version": user.session_version})
    return user


def update_profile(session: Session, user: User, *, actor: Actor, name: str, phone: str | None,
                   locale: str) -> User:
    before = {"name": user.name, "phone": user.phone, "locale": user.locale}
    user.name, user.phone, user.locale = name.strip(), phone, locale
    session.flush()
    record_audit(session, actor, "user.updated", user, before=before,
                 after={"name": user.name, "phone": user.phone, "locale": user.locale})
    return user


def issue_api_token(session: Session, user: User, *, actor: Actor, now: datetime,
                    ttl: timedelta) -> tuple[str, ApiToken]:
    token, token_hash = new_secret()
    row = ApiToken(user_id=user.id, token_hash=token_hash, hint=token[:6], created_at=now, expires_at=now + ttl)
    session.add(row)
    session.flush()
    record_audit(session, actor, "api_token.issued", row,
                 after={"user_id": user.id, "hint": row.hint, "expires_at": row.expires_at.isoformat()})
    return token, row


def revoke_api_token(session: Session, row: ApiToken, *, actor: Actor, now: datetime) -> ApiToken:
    if row.user_id != actor.user_id:
        raise Forbidden("forbidden", _("You may revoke only your own tokens."))
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
        record_audit(session, actor, "api_token.revoked", row, after={"hint": row.hint})
    return row


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc())))


# --- organisations ----------------------------------------------------------------------------

def verify_enterprise(session: Session, enterprise: Enterprise, *, actor: Actor, to: VerificationState,
                      note: str | None, now: datetime) -> Enterprise:
    if to == VerificationState.REJECTED and not (note or "").strip():
        raise RuleBroken("reason_required", _("Give the reason for the rejection."), field="note")
    before = str(enterprise.verification_state)
    move(enterprise, to, VERIFICATION_TRANSITIONS, VERIFICATION_STATE_LABELS)
    enterprise.verification_note = (note or "").strip() or None
    enterprise.verified_at = now if to == VerificationState.VERIFIED else None
    session.flush()
    record_audit(session, actor, f"enterprise.{to.value}", enterprise,
                 before={"verification_state": before},
                 after={"verification_state": str(to), "note": enterprise.verification_note})
    return enterprise


EDITABLE_FIELDS = {
    OrganisationKind.ENTERPRISE: ("name", "address", "legal_representative", "actual_controller", "is_tech_sme"),
    OrganisationKind.PLATFORM: ("name", "address", "platform_type", "legal_form", "industries", "description",
                                "credit_code", "legal_representative", "actual_controller",
                                "bank_account_name", "bank_name", "bank_account_number"),
    OrganisationKind.BUREAU: ("name", "address"),
}
BUREAU_ONLY_FIELDS = {"credit_code"}
# Kept as NULL when left empty: the related-party check and claims treat a blank as "not recorded".
OPTIONAL_TEXT_FIELDS = {"actual_controller", "bank_account_name", "bank_name", "bank_account_number"}


def update_organisation(session: Session, organisation: Organisation, user: User, *, actor: Actor,
                        changes: dict[str, Any], now: datetime) -> OrganisationChange | None:
    """Change what the organisation's managers may change; an enterprise's credit code only the bureau (a
    platform's, the credit code of its legal entity, its admins too). Blank optional texts are kept as NULL.
    A changed key field (KEY_FIELDS) asked by anyone but the bureau is not applied: it becomes the change
    returned, waiting for the bureau's review, while the other fields are saved at once."""
    ensure_may_manage_organisation(user, organisation)
    allowed = set(EDITABLE_FIELDS[organisation.kind])
    if isinstance(organisation, Enterprise) and user.has_role(Role.BUREAU_ADMIN):
        allowed |= BUREAU_ONLY_FIELDS
    unknown = set(changes) - allowed
    if unknown:
        raise Forbidden("forbidden", _("You may not change these fields: %(f)s", f=", ".join(sorted(unknown))))
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        taken = session.scalar(select(Organisation.id).where(Organisation.name == changes["name"],
                                                             Organisation.id != organisation.id))
        if taken is not None:
            raise RuleBroken("name_taken", _("An organisation with this name exists already."), field="name")
    for name in OPTIONAL_TEXT_FIELDS | ({"credit_code", "legal_representative"} if isinstance(organisation, Platform)
                                       else set()):
        if name in changes:
            changes[name] = (changes[name] or "").strip() or None
    if isinstance(organisation, Enterprise) and changes.get("legal_representative"):
        changes["legal_representative"] = changes["legal_representative"].strip()
    if isinstance(organisation, Platform):
        if changes.get("credit_code"):  # the platform's legal entity's, to tell related parties
            changes["credit_code"] = normalise_credit_code(changes["credit_code"])
    elif "credit_code" in changes:
        changes["credit_code"] = normalise_credit_code(changes["credit_code"])
        taken = session.scalar(select(Enterprise.id).where(Enterprise.credit_code == changes["credit_code"],
                                                           Enterprise.id != organisation.id))
        if taken is not None:
            raise RuleBroken("enterprise_exists", _("Another enterprise has this credit code."), field="credit_code")
    asked = {} if user.has_role(Role.BUREAU_ADMIN) else {
        name: changes.pop(name) for name in KEY_FIELDS.get(organisation.kind, ())
        if name in changes and _json_value(changes[name]) != _json_value(getattr(organisation, name))}
    _apply(session, organisation, changes, actor=actor, action=f"{organisation.kind.value}.updated")
    return _ask_for_change(session, organisation, user, asked, actor=actor, now=now) if asked else None


def _json_value(value: Any) -> Any:
    """A field's value as the change keeps it: an enum by its value, a list (industries) sorted."""
    if isinstance(value, (list, tuple, set)):
        return sorted(_json_value(v) for v in value)
    return value.value if isinstance(value, StrEnum) else value


def _apply(session: Session, organisation: Organisation, changes: dict[str, Any], *, actor: Actor,
           action: str) -> None:
    """Set the fields and audit what changed, if anything did."""
    before = organisation.audit_view()
    for name, value in changes.items():
        setattr(organisation, name, value)
    session.flush()
    after = organisation.audit_view()
    if after != before:
        record_audit(session, actor, action, organisation,
                     before={k: v for k, v in before.items() if after.get(k) != v},
                     after={k: v for k, v in after.items() if before.get(k) != v})


# --- changes of key fields, reviewed by the bureau ---------------------------------------------------

def pending_change(session: Session, organisation_id: int) -> OrganisationChange | None:
    return session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == organisation_id,
                                                           OrganisationChange.state == ChangeState.PENDING))


def last_decided_change(session: Session, organisation_id: int) -> OrganisationChange | None:
    """The latest decided change, for the organisation's page to tell its outcome."""
    return session.scalar(select(OrganisationChange)
                          .where(OrganisationChange.organisation_id == organisation_id,
                                 OrganisationChange.state != ChangeState.PENDING)
                          .order_by(OrganisationChange.decided_at.desc(), OrganisationChange.id.desc()).limit(1))


def _ask_for_change(session: Session, organisation: Organisation, user: User, asked: dict[str, Any], *,
                    actor: Actor, now: datetime) -> OrganisationChange:
    """One change waits per organisation: a second is refused until the bureau decides the first (the
    partial unique index holds the line against two asked at once)."""
    refusal = RuleBroken("change_pending", _("A change of this organisation's key fields waits for the bureau's "
                                             "review already: ask again once it is decided."))
    if pending_change(session, organisation.id) is not None:
        raise refusal
    change = OrganisationChange(
        organisation_id=organisation.id, requested_by_id=user.id, requested_at=now,
        old_values={name: _json_value(getattr(organisation, name)) for name in asked},
        new_values={name: _json_value(value) for name, value in asked.items()})
    try:
        with session.begin_nested():
            session.add(change)
            session.flush()
    except sa.exc.IntegrityError:
        raise refusal from None
    record_audit(session, actor, "organisation_change.requested", change,
                 after={"organisation_id": organisation.id, "old": change.old_values, "new": change.new_values})
    return change


def ensure_bureau(user: User) -> None:
    if not user.has_role(Role.BUREAU_ADMIN):
        raise Forbidden("forbidden", _("Only the bureau reviews changes of organisations."))


def lock_change(session: Session, change: OrganisationChange, *, to: ChangeState) -> OrganisationChange:
    """Take the change's row lock and read it afresh (FOR UPDATE on PostgreSQL; SQLite's write transaction
    serialises writers): of two decisions on one change, one is made and the other told, 409."""
    session.flush()
    session.execute(select(OrganisationChange).where(OrganisationChange.id == change.id)
                    .with_for_update(of=OrganisationChange).execution_options(populate_existing=True)).scalar_one()
    if not can_move(change, to, CHANGE_TRANSITIONS):
        raise Conflict(f"already_{change.state.value}", _("This change was decided already: %(state)s.",
                                                          state=CHANGE_STATE_LABELS[change.state]))
    return change


def _from_json(name: str, value: Any) -> Any:
    """A kept value as the field takes it."""
    column = {"platform_type": PlatformType, "legal_form": LegalForm}.get(name)
    if name == "industries":
        return [Industry(v) for v in value]
    return column(value) if column is not None and value is not None else value


def approve_change(session: Session, change: OrganisationChange, user: User, *, actor: Actor,
                   now: datetime) -> OrganisationChange:
    """Apply the asked values under the organisation's row lock, read afresh, and tell the requester."""
    ensure_bureau(user)
    lock_change(session, change, to=ChangeState.APPROVED)
    organisation_class = type(change.organisation)
    organisation = session.execute(
        select(organisation_class).where(organisation_class.id == change.organisation_id)
        .with_for_update(of=Organisation).execution_options(populate_existing=True)).scalar_one()
    move(change, ChangeState.APPROVED, CHANGE_TRANSITIONS, CHANGE_STATE_LABELS)
    change.decided_by_id, change.decided_at = user.id, now
    _apply(session, organisation, {name: _from_json(name, value)
                                   for name, value in change.new_values.items()},
           actor=actor, action=f"{organisation.kind.value}.updated")
    record_audit(session, actor, "organisation_change.approved", change,
                 before={"state": "pending"}, after={"state": "approved", "new": change.new_values})
    _tell_requester(session, change)
    return change


def reject_change(session: Session, change: OrganisationChange, user: User, *, actor: Actor, reason: str,
                  now: datetime) -> OrganisationChange:
    ensure_bureau(user)
    reason = (reason or "").strip()
    if not reason:
        raise RuleBroken("reason_required", _("Give the reason for the rejection."), field="reason")
    lock_change(session, change, to=ChangeState.REJECTED)
    move(change, ChangeState.REJECTED, CHANGE_TRANSITIONS, CHANGE_STATE_LABELS)
    change.decided_by_id, change.decided_at, change.decision_note = user.id, now, reason[:500]
    session.flush()
    record_audit(session, actor, "organisation_change.rejected", change,
                 before={"state": "pending"}, after={"state": "rejected", "reason": change.decision_note})
    _tell_requester(session, change)
    return change


def bulk_approve_changes(session: Session, change_ids: list[int], user: User, *, actor: Actor,
                         now: datetime) -> list[OrganisationChange]:
    """Approve every chosen change, or none: each as on its own."""
    ensure_bureau(user)
    changes = list(session.scalars(select(OrganisationChange).where(OrganisationChange.id.in_(change_ids))
                                   .order_by(OrganisationChange.id)))
    if not changes or len(changes) != len(set(change_ids)):
        raise NotFound("not_found", _("Some of the chosen changes no longer exist."))
    return [approve_change(session, change, user, actor=actor, now=now) for change in changes]


def _tell_requester(session: Session, change: OrganisationChange) -> None:
    requester = change.requested_by
    if requester is None or not requester.is_active:
        return
    enqueue_mail(session, to=requester.email, locale=requester.locale, template="organisation_change_decided",
                 context={"name": requester.name, "organisation": change.organisation.name,
                          "organisation_id": change.organisation_id, "approved": change.state == ChangeState.APPROVED,
                          "reason": change.decision_note})


def change_queue(session: Session) -> sa.Select:
    """The changes waiting for the bureau, the longest waiting first."""
    return select(OrganisationChange).where(OrganisationChange.state == ChangeState.PENDING) \
        .order_by(OrganisationChange.requested_at, OrganisationChange.id)


def count_pending_changes(session: Session) -> int:
    """How many changes wait in the queue: the bureau's to-do."""
    return session.scalar(select(sa.func.count()).select_from(OrganisationChange)
                          .where(OrganisationChange.state == ChangeState.PENDING))


def list_organisations(session: Session, *, kind: OrganisationKind | None = None,
                       state: VerificationState | None = None, q: str | None = None) -> sa.Select:
    stmt = select(Organisation).order_by(Organisation.kind, Organisation.name)
    if kind is not None:
        stmt = stmt.where(Organisation.kind == kind)
    if state is not None:
        stmt = stmt.where(Organisation.id.in_(select(Enterprise.id).where(Enterprise.verification_state == state)))
    if q:
        stmt = stmt.where(Organisation.name.contains(q.strip()))
    return stmt


def list_platforms(session: Session) -> list[Platform]:
    return list(session.scalars(select(Platform).order_by(Platform.name)))


# --- roles ------------------------------------------------------------------------------------

def grant_role(session: Session, user: User, *, actor: Actor, role: Role,
               organisation: Organisation | None) -> RoleGrant:
    needed_kind = SCOPED_ROLES.get(role)
    if needed_kind is None and organisation is not None:
        raise RuleBroken("role_not_scoped", _("This role is not tied to an organisation."), field="organisation_id")
    if needed_kind is not None and (organisation is None or organisation.kind != needed_kind):
        raise RuleBroken("organisation_required",
                         _("This role needs an organisation of the right kind."), field="organisation_id")
    organisation_id = organisation.id if organisation is not None else None
    if any(g.role == role and g.organisation_id == organisation_id for g in user.grants):
        raise RuleBroken("role_held", _("The person holds this role already."), field="role")
    grant = RoleGrant(role=role, organisation=organisation)
    user.grants.append(grant)
    try:
        session.flush()
    except sa.exc.IntegrityError:  # the same grant, made a moment ago by a concurrent request
        raise RuleBroken("role_held", _("The person holds this role already."), field="role") from None
    record_audit(session, actor, "role.granted", grant,
                 after={"user_id": user.id, "role": str(role), "organisation_id": organisation_id})
    return grant


def revoke_role(session: Session, grant: RoleGrant, *, actor: Actor) -> None:
    if grant.user_id == actor.user_id and grant.role == Role.BUREAU_ADMIN:
        raise RuleBroken("own_admin_role", _("You cannot revoke your own bureau admin role."))
    record_audit(session, actor, "role.revoked", grant,
                 before={"user_id": grant.user_id, "role": str(grant.role), "organisation_id": grant.organisation_id})
    grant.user.grants.remove(grant)
    session.flush()


def list_users(session: Session, *, q: str | None = None) -> sa.Select:
    stmt = select(User).order_by(User.email)
    if q:
        pattern = f"%{q.strip().lower()}%"
        stmt = stmt.where(sa.or_(User.email.like(pattern), User.name.contains(q.strip())))
    return stmt


# --- audit log --------------------------------------------------------------------------------

def list_audit_entries(session: Session, *, action: str | None = None, subject_type: str | None = None,
                       subject_id: int | None = None, person: str | None = None, organisation: str | None = None,
                       since: datetime | None = None, until: datetime | None = None) -> sa.Select:
    """The log, newest first. person: the actor's e-mail or name contains it; organisation: the actor
    holds a role in an organisation whose name contains it."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if subject_type:
        stmt = stmt.where(AuditEntry.subject_type == subject_type)
    if subject_id is not None:
        stmt = stmt.where(AuditEntry.subject_id == subject_id)
    if person and person.strip():
        named = select(User.id).where(User.name.contains(person.strip(), autoescape=True))
        stmt = stmt.where(AuditEntry.actor_label.contains(person.strip().lower(), autoescape=True)
                          | AuditEntry.actor_id.in_(named))
    if organisation and organisation.strip():
        members = (select(RoleGrant.user_id).join(Organisation, RoleGrant.organisation_id == Organisation.id)
                   .where(Organisation.name.contains(organisation.strip(), autoescape=True)))
        stmt = stmt.where(AuditEntry.actor_id.in_(members))
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt


def audit_actions(session: Session) -> list[str]:
    """The actions the log holds, for the filter's choices."""
    return list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def list_members(session: Session, organisation: Organisation) -> list[RoleGrant]:
    return list(session.scalars(select(RoleGrant).where(RoleGrant.organisation_id == organisation.id)
                                .join(User).order_by(User.email)))


def list_scoped_organisations(session: Session) -> list[Organisation]:
    """Organisations a scoped role can be tied to: platforms and enterprises."""
    return list(session.scalars(select(Organisation).where(Organisation.kind != OrganisationKind.BUREAU)
                                .order_by(Organisation.kind, Organisation.name)))


def dashboard_summary(session: Session, user: User) -> dict[str, Any]:
    """What each of the person's roles needs to see first."""
    summary: dict[str, Any] = {"organisations": [g.organisation for g in user.grants if g.organisation]}
    if user.has_role(Role.BUREAU_ADMIN):
        counts = dict(session.execute(select(Organisation.kind, sa.func.count()).group_by(Organisation.kind)).all())
        summary["counts"] = {str(kind): counts.get(kind, 0) for kind in OrganisationKind}
        summary["pending_enterprises"] = session.scalar(
            select(sa.func.count()).select_from(Enterprise)
            .where(Enterprise.verification_state == VerificationState.PENDING))
        summary["users"] = session.scalar(select(sa.func.count()).select_from(User))
    if user.has_role(Role.BUREAU_ADMIN, Role.AUDITOR):
        summary["recent_audit"] = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(5)))
    return summary
