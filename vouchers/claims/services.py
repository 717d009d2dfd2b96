"""Redemption claims (兑付): a platform claims the voucher parts of the bookings it served
(provider-redeemed programmes), or an enterprise claims back the voucher parts of bookings it paid in
full (enterprise-reimbursed programmes); the bureau approves or returns (per line or whole), the claimant
resubmits without the returned lines, and the finance officer marks an approved claim paid, which writes
a `redeem` entry per line to the ledger.

A voucher use is one booking's consumption: the ledger's CONSUME entries of a booking. It is in at most
one claim: the query that gathers uses leaves out every booking already in a claim, and
voucher_claim_lines.booking_id is unique, so of two claims racing for the same uses one fails (Conflict).

vouchers sits below the marketplace: what a claim shows of a booking (the instrument, whether it is paid)
is the VoucherUse the marketplace handed over, never a read of its tables."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import local_midnight, to_local
from core.errors import Conflict, Forbidden, NotFound, RuleBroken
from core.models import AuditEntry, Enterprise, Platform, Role, User
from core.services import administers
from core.states import move
from vouchers import ledger
from vouchers.models import (
    CLAIM_STATE_LABELS,
    CLAIM_TRANSITIONS,
    Attachment,
    Claim,
    ClaimKind,
    ClaimLine,
    ClaimState,
    EntryKind,
    LedgerEntry,
    Programme,
    RedemptionMode,
    Voucher,
    VoucherUse,
)

READERS = (Role.BUREAU_ADMIN, Role.FINANCE_OFFICER, Role.AUDITOR)

# The truthfulness declaration the claimant signs; kept on the claim in the words it was signed in.
DECLARATION = _l("I declare that the services listed in this claim were actually provided as recorded, that "
                 "the amounts are true, and that none of them has been claimed before. I accept responsibility "
                 "for any false statement, including the voiding of the vouchers involved and the suspension "
                 "from the programme.")

MAX_TEXT = 500


# --- who ------------------------------------------------------------------------------------------

def reads_all(user: User | None) -> bool:
    return user is not None and user.has_role(*READERS)


def is_claimant(user: User | None, claim: Claim) -> bool:
    """The claiming platform's admins, or the claiming enterprise's members."""
    if user is None:
        return False
    if claim.kind == ClaimKind.PROVIDER:
        return administers(user, claim.platform_id)
    return claim.enterprise_id in user.organisation_ids(Role.ENTERPRISE_MEMBER)


def can_see_claim(user: User | None, claim: Claim) -> bool:
    return reads_all(user) or is_claimant(user, claim)


def get_claim(session: Session, claim_id: int, user: User | None) -> Claim:
    claim = session.get(Claim, claim_id)
    if claim is None or not can_see_claim(user, claim):
        raise NotFound("not_found", _("There is no such claim."))
    return claim


def can_review(user: User | None, claim: Claim) -> bool:
    return user is not None and user.has_role(Role.BUREAU_ADMIN) and claim.state == ClaimState.SUBMITTED


def can_resubmit(user: User | None, claim: Claim) -> bool:
    return is_claimant(user, claim) and claim.state == ClaimState.RETURNED


def can_attach(user: User | None, claim: Claim) -> bool:
    return is_claimant(user, claim) and claim.state in (ClaimState.SUBMITTED, ClaimState.RETURNED)


def can_mark_paid(user: User | None, claim: Claim) -> bool:
    return user is not None and user.has_role(Role.FINANCE_OFFICER) and claim.state == ClaimState.APPROVED


def claims_query(user: User, *, state: ClaimState | None = None, platform_id: int | None = None,
                 enterprise_id: int | None = None, kind: ClaimKind | None = None, own_only: bool = False) -> sa.Select:
    """Claims the user may read, newest first: the readers every claim (unless own_only), a platform's
    admins their platforms' claims, an enterprise's members their enterprises' claims."""
    stmt = select(Claim).order_by(Claim.created_at.desc(), Claim.id.desc())
    if own_only or not reads_all(user):
        stmt = stmt.where(sa.or_(Claim.platform_id.in_(user.organisation_ids(Role.PLATFORM_ADMIN)),
                                 Claim.enterprise_id.in_(user.organisation_ids(Role.ENTERPRISE_MEMBER))))
    if state is not None:
        stmt = stmt.where(Claim.state == state)
    if platform_id:
        stmt = stmt.where(Claim.platform_id == platform_id)
    if enterprise_id:
        stmt = stmt.where(Claim.enterprise_id == enterprise_id)
    if kind is not None:
        stmt = stmt.where(Claim.kind == kind)
    return stmt


def count_claims(session: Session, state: ClaimState) -> int:
    """How many claims are in this state, every claimant's: a queue's size for the dashboard."""
    return session.scalar(select(func.count()).select_from(Claim).where(Claim.state == state))


# --- the uses a claim may gather ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Use:
    """A voucher use not yet claimed: a completed booking's consumption."""

    booking_id: int
    voucher_id: int
    amount_fen: int
    served_on: date  # the local date of completion (the consumption)


def _local_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in Asia/Shanghai, as aware instants."""
    return local_midnight(start), local_midnight(end + timedelta(days=1))


def unclaimed_uses(session: Session, kind: ClaimKind, owner_id: int, *, period_start: date | None = None,
                   period_end: date | None = None) -> list[Use]:
    """The uses a claim of this kind by this platform (provider) or enterprise (enterprise) may gather:
    consumption (written at completion only), in a programme of the matching redemption mode, in no claim
    yet; for an enterprise only bookings it has paid in full. Within the period (local dates) when given."""
    mode = RedemptionMode.PROVIDER if kind == ClaimKind.PROVIDER else RedemptionMode.ENTERPRISE
    stmt = (select(LedgerEntry.booking_id, LedgerEntry.voucher_id, func.sum(LedgerEntry.amount_fen),
                   func.max(LedgerEntry.at))
            .join(Voucher, Voucher.id == LedgerEntry.voucher_id)
            .join(Programme, Programme.id == Voucher.programme_id)
            .where(LedgerEntry.kind == EntryKind.CONSUME, Programme.redemption_mode == mode,
                   ~sa.exists().where(ClaimLine.booking_id == LedgerEntry.booking_id))
            .group_by(LedgerEntry.booking_id, LedgerEntry.voucher_id)
            .order_by(func.max(LedgerEntry.at), LedgerEntry.booking_id))
    if kind == ClaimKind.PROVIDER:
        stmt = stmt.where(LedgerEntry.platform_id == owner_id)
    else:
        stmt = stmt.join(VoucherUse, VoucherUse.booking_id == LedgerEntry.booking_id).where(
            Voucher.enterprise_id == owner_id, VoucherUse.is_paid)
    if period_start is not None and period_end is not None:
        start, end = _local_bounds(period_start, period_end)
        stmt = stmt.where(LedgerEntry.at >= start, LedgerEntry.at < end)
    return [Use(booking_id, voucher_id, int(amount), to_local(at).date())
            for booking_id, voucher_id, amount, at in session.execute(stmt)]


# --- creating a claim --------------------------------------------------------------------------------

def _is_claimed_twice(error: IntegrityError) -> bool:
    text = str(error.orig)
    return "uq_voucher_claim_lines_booking_id" in text or "voucher_claim_lines.booking_id" in text


def _check_claim_input(*, period_start: date, period_end: date, bank: dict[str, str | None],
                       declaration_accepted: bool, now: datetime) -> dict[str, str]:
    if period_end < period_start:
        raise RuleBroken("invalid", _("The period ends after it starts."), field="period_end")
    if period_end > to_local(now).date():
        raise RuleBroken("invalid", _("A claim covers days that have passed (today at the latest)."),
                         field="period_end")
    cleaned = {name: (value or "").strip() for name, value in bank.items()}
    for name, value in cleaned.items():
        if not value:
            raise RuleBroken("bank_account_required", _("Give the bank account the money is paid to."), field=name)
    if not declaration_accepted:
        raise RuleBroken("declaration_required", _("Sign the declaration that the services were provided."),
                         field="declaration_accepted")
    return cleaned


def _file_claim(session: Session, claim: Claim, uses: list[Use], *, actor: Actor) -> Claim:
    """Add the claim with a line per use; a use another claim took meanwhile → Conflict."""
    if not uses:
        raise RuleBroken("nothing_to_claim", _("There is no unclaimed voucher use in this period."),
                         field="period_start")
    claim.total_fen = sum(u.amount_fen for u in uses)
    try:
        with session.begin_nested():
            session.add(claim)
            session.flush()
            # The lines by one executemany, not as objects: a claim may gather tens of thousands of uses.
            session.execute(sa.insert(ClaimLine), [
                {"claim_id": claim.id, "booking_id": u.booking_id, "voucher_id": u.voucher_id,
                 "amount_fen": u.amount_fen, "served_on": u.served_on} for u in uses])
    except IntegrityError as error:
        if _is_claimed_twice(error):
            raise Conflict("claim_conflict", _("Another claim took some of these voucher uses just now; "
                                               "open the claim form again to see what is left.")) from None
        raise
    session.expire(claim, ["lines"])  # read from the database when asked for
    record_audit(session, actor, "voucher_claim.submitted", claim, after=claim.audit_view(lines=len(uses)) | {
        "kind": claim.kind.value, "bookings": [u.booking_id for u in uses]})
    return claim


def create_provider_claim(session: Session, *, actor: Actor, user: User, platform_id: int, period_start: date,
                          period_end: date, declaration_accepted: bool, now: datetime,
                          bank_account_name: str | None = None, bank_name: str | None = None,
                          bank_account_number: str | None = None) -> Claim:
    """A platform admin claims every unclaimed use of the platform's services completed in the period.
    The bank account defaults to the platform's."""
    if not administers(user, platform_id):
        raise Forbidden("forbidden", _("Only the platform's admins file its claims."))
    platform = session.get(Platform, platform_id)
    bank = _check_claim_input(
        period_start=period_start, period_end=period_end, declaration_accepted=declaration_accepted, now=now,
        bank={"bank_account_name": bank_account_name or platform.bank_account_name,
              "bank_name": bank_name or platform.bank_name,
              "bank_account_number": bank_account_number or platform.bank_account_number})
    uses = unclaimed_uses(session, ClaimKind.PROVIDER, platform.id, period_start=period_start, period_end=period_end)
    claim = Claim(kind=ClaimKind.PROVIDER, platform_id=platform.id, period_start=period_start, period_end=period_end,
                  declaration=str(DECLARATION), signed_by_id=user.id, signed_at=now, created_at=now, **bank)
    return _file_claim(session, claim, uses, actor=actor)


def create_enterprise_claim(session: Session, *, actor: Actor, user: User, enterprise_id: int, period_start: date,
                            period_end: date, bank_account_name: str, bank_name: str, bank_account_number: str,
                            declaration_accepted: bool, has_proof: bool, now: datetime) -> Claim:
    """An enterprise member claims back the voucher part of the enterprise's completed bookings paid in
    full in the period (enterprise-reimbursed programmes). Proof of payment is required: the caller
    stores the files (vouchers.attachments.store, owner_type 'claim') in the same unit of work."""
    if enterprise_id not in user.organisation_ids(Role.ENTERPRISE_MEMBER):
        raise Forbidden("forbidden", _("You are not a member of this enterprise."))
    bank = _check_claim_input(
        period_start=period_start, period_end=period_end, declaration_accepted=declaration_accepted, now=now,
        bank={"bank_account_name": bank_account_name, "bank_name": bank_name,
              "bank_account_number": bank_account_number})
    if not has_proof:
        raise RuleBroken("proof_required", _("Add the proof of payment (the bank slip or the invoice)."),
                         field="attachments")
    uses = unclaimed_uses(session, ClaimKind.ENTERPRISE, enterprise_id, period_start=period_start,
                          period_end=period_end)
    claim = Claim(kind=ClaimKind.ENTERPRISE, enterprise_id=enterprise_id, period_start=period_start,
                  period_end=period_end, declaration=str(DECLARATION), signed_by_id=user.id, signed_at=now,
                  created_at=now, **bank)
    return _file_claim(session, claim, uses, actor=actor)


# --- review, resubmission, payment ----------------------------------------------------------------------

def _ensure_bureau(user: User) -> None:
    if not user.has_role(Role.BUREAU_ADMIN):
        raise Forbidden("forbidden", _("Only the bureau reviews claims."))


def _move(claim: Claim, to: ClaimState) -> str:
    before = claim.state.value
    move(claim, to, CLAIM_TRANSITIONS, CLAIM_STATE_LABELS)
    return before


def approve_claim(session: Session, claim: Claim, *, actor: Actor, user: User, now: datetime,
                  note: str = "") -> Claim:
    _ensure_bureau(user)
    before = _move(claim, ClaimState.APPROVED)
    claim.review_note = note.strip()[:1000] or None
    claim.reviewed_by_id, claim.reviewed_at = user.id, now
    session.flush()
    record_audit(session, actor, "voucher_claim.approved", claim, before={"state": before},
                 after={"state": claim.state.value, "total_fen": claim.total_fen, "note": claim.review_note})
    return claim


def return_claim(session: Session, claim: Claim, *, actor: Actor, user: User, now: datetime, note: str = "",
                 line_reasons: dict[int, str] | None = None) -> Claim:
    """Send the claim back with a reason for the whole claim, for some lines, or both. A returned line is
    dropped when the claimant resubmits, and its use may then be claimed again."""
    _ensure_bureau(user)
    reasons = {line_id: reason.strip()[:MAX_TEXT] for line_id, reason in (line_reasons or {}).items()
               if reason and reason.strip()}
    lines = {line.id: line for line in claim.lines}
    unknown = set(reasons) - set(lines)
    if unknown:
        raise RuleBroken("invalid", _("These lines are not in this claim: %(ids)s",
                                      ids=", ".join(str(i) for i in sorted(unknown))))
    if not note.strip() and not reasons:
        raise RuleBroken("reason_required", _("Give the reason for returning the claim, or for some of its lines."),
                         field="note")
    before = _move(claim, ClaimState.RETURNED)
    for line_id, line in lines.items():
        line.returned_reason = reasons.get(line_id)
    claim.review_note = note.strip()[:1000] or None
    claim.reviewed_by_id, claim.reviewed_at = user.id, now
    session.flush()
    record_audit(session, actor, "voucher_claim.returned", claim, before={"state": before},
                 after={"state": claim.state.value, "note": claim.review_note,
                        "lines": {str(lines[i].booking_id): r for i, r in reasons.items()}})
    return claim


def resubmit_claim(session: Session, claim: Claim, *, actor: Actor, user: User, declaration_accepted: bool,
                   now: datetime, bank_account_name: str | None = None, bank_name: str | None = None,
                   bank_account_number: str | None = None) -> Claim:
    """The claimant sends a returned claim again: the returned lines are dropped (their uses are free to
    be claimed later), the total recomputed, the declaration signed anew; the bank account may change."""
    if not is_claimant(user, claim):
        raise Forbidden("forbidden", _("Only the claimant resubmits a claim."))
    if not declaration_accepted:
        raise RuleBroken("declaration_required", _("Sign the declaration that the services were provided."),
                         field="declaration_accepted")
    dropped = [line for line in claim.lines if line.returned_reason]
    kept = [line for line in claim.lines if not line.returned_reason]
    if not kept:
        raise RuleBroken("nothing_to_claim", _("Every line of this claim was returned: nothing is left to submit."))
    before = _move(claim, ClaimState.SUBMITTED)
    for line in dropped:
        claim.lines.remove(line)  # delete-orphan: the booking is free for a later claim
    changes = {"bank_account_name": bank_account_name, "bank_name": bank_name,
               "bank_account_number": bank_account_number}
    for name, value in changes.items():
        if value is not None and value.strip():
            setattr(claim, name, value.strip())
    claim.total_fen = sum(line.amount_fen for line in kept)
    claim.declaration, claim.signed_by_id, claim.signed_at = str(DECLARATION), user.id, now
    claim.review_note = None
    session.flush()
    record_audit(session, actor, "voucher_claim.resubmitted", claim, before={"state": before},
                 after={"state": claim.state.value, "total_fen": claim.total_fen,
                        "dropped": {str(line.booking_id): line.returned_reason for line in dropped}})
    return claim


def mark_claim_paid(session: Session, claim: Claim, *, actor: Actor, user: User, paid_on: date, reference: str,
                    now: datetime) -> Claim:
    """The finance officer records the payment of an approved claim: a `redeem` entry per line."""
    if not user.has_role(Role.FINANCE_OFFICER):
        raise Forbidden("forbidden", _("Only the finance officer marks claims paid."))
    if not reference.strip():
        raise RuleBroken("reference_required", _("Give the payment's reference."), field="payment_reference")
    if paid_on > to_local(now).date():
        raise RuleBroken("invalid", _("A payment cannot be made in the future."), field="paid_on")
    before = _move(claim, ClaimState.PAID)
    claim.paid_on, claim.payment_reference, claim.paid_by_id = paid_on, reference.strip()[:100], user.id
    session.flush()
    record_audit(session, actor, "voucher_claim.paid", claim, before={"state": before},
                 after={"state": claim.state.value, "paid_on": paid_on.isoformat(),
                        "payment_reference": claim.payment_reference, "total_fen": claim.total_fen})
    for line in claim.lines:
        ledger.post(session, line.voucher, EntryKind.REDEEM, line.amount_fen, actor=actor, now=now,
                    booking_id=line.booking_id, claim_id=claim.id, platform_id=claim.platform_id)
    return claim


# --- what a claim shows ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClaimRow:
    """A line as shown and exported: the use with its voucher, booking, enterprise and instrument."""

    line: ClaimLine
    serial: str
    booking_id: int
    enterprise_name: str
    instrument_name: str
    asset_number: str
    served_on: date
    amount_fen: int
    returned_reason: str | None


def claim_rows(session: Session, claim: Claim, *, language: str = "zh_CN") -> list[ClaimRow]:
    booking_ids = [line.booking_id for line in claim.lines]
    uses = {use.booking_id: use for use in session.scalars(
        select(VoucherUse).where(VoucherUse.booking_id.in_(booking_ids)))} if booking_ids else {}
    rows = []
    for line in claim.lines:
        use = uses.get(line.booking_id)
        rows.append(ClaimRow(
            line=line, serial=line.voucher.serial, booking_id=line.booking_id,
            enterprise_name=line.voucher.enterprise.name,  # the booking's enterprise: the voucher's own
            instrument_name=use.instrument_name(language) if use else "",
            asset_number=use.asset_number if use else "", served_on=line.served_on,
            amount_fen=line.amount_fen, returned_reason=line.returned_reason))
    return rows


def claimant_name(session: Session, claim: Claim) -> str:
    owner = session.get(Platform, claim.platform_id) if claim.kind == ClaimKind.PROVIDER \
        else session.get(Enterprise, claim.enterprise_id)
    return owner.name if owner is not None else ""


# --- the claim's history ---------------------------------------------------------------------------------

# Each step of a claim is an audit entry written by the service above: the audit log is append-only, so
# the history survives any number of return and resubmit rounds with nothing of its own to keep.
STEP_LABELS = {"submitted": _l("Claim filed"), "returned": _l("Returned"), "resubmitted": _l("Resubmitted"),
               "approved": _l("Approved"), "paid": _l("Paid")}


@dataclass(frozen=True, slots=True)
class StepLine:
    """A line a step returned (or, on resubmission, dropped), by its booking, with the bureau's reason."""

    booking_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ClaimStep:
    step: str  # a key of STEP_LABELS
    at: datetime
    actor_id: int | None
    actor_name: str
    note: str | None  # the bureau's note on a return or an approval; the payment's reference
    total_fen: int | None
    lines: tuple[StepLine, ...]

    @property
    def label(self) -> str:
        return str(STEP_LABELS[self.step])


def _step_lines(reasons: dict[str, str] | None) -> tuple[StepLine, ...]:
    return tuple(StepLine(int(booking_id), reason)
                 for booking_id, reason in sorted((reasons or {}).items(), key=lambda item: int(item[0])))


def claim_history(session: Session, claim: Claim) -> list[ClaimStep]:
    """Every step of the claim in order: who did it (their name; the recorded label if they are gone),
    when, the note, the total after it, and the lines it returned or dropped with their reasons."""
    rows = session.execute(
        select(AuditEntry, User.name).outerjoin(User, User.id == AuditEntry.actor_id)
        .where(AuditEntry.subject_type == Claim.__tablename__, AuditEntry.subject_id == claim.id,
               AuditEntry.action.in_([f"voucher_claim.{step}" for step in STEP_LABELS]))
        .order_by(AuditEntry.id))
    steps = []
    for entry, name in rows:
        after = entry.after or {}
        step = entry.action.removeprefix("voucher_claim.")
        steps.append(ClaimStep(
            step=step, at=entry.at, actor_id=entry.actor_id, actor_name=name or entry.actor_label,
            note=after.get("payment_reference") if step == "paid" else after.get("note"),
            total_fen=after.get("total_fen"),
            lines=_step_lines(after.get("dropped") if step == "resubmitted" else
                              after.get("lines") if step == "returned" else None)))
    return steps


def claim_attachments(session: Session, claim: Claim) -> list[Attachment]:
    return list(session.scalars(select(Attachment).where(Attachment.owner_type == "claim",
                                                         Attachment.owner_id == claim.id).order_by(Attachment.id)))


def redeem_entries(session: Session, claim: Claim) -> list[LedgerEntry]:
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.claim_id == claim.id,
                                                          LedgerEntry.kind == EntryKind.REDEEM)
                                .order_by(LedgerEntry.id)))


def claimable_platforms(session: Session, user: User) -> list[Platform]:
    ids = user.organisation_ids(Role.PLATFORM_ADMIN)
    return list(session.scalars(select(Platform).where(Platform.id.in_(ids)).order_by(Platform.name))) if ids else []


def claimable_enterprises(session: Session, user: User) -> list[Enterprise]:
    ids = user.organisation_ids(Role.ENTERPRISE_MEMBER)
    return list(session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)).order_by(Enterprise.name))) \
        if ids else []


def total_of(uses: Iterable[Use]) -> int:
    return sum(u.amount_fen for u in uses)
