"""The voucher rules: programmes, applications and issuance within the pool, the voucher part of a
booking with its caps and refusals, holds, consumption, expiry and voiding.

The marketplace calls quote_voucher_part / hold_for_booking / release_for_booking /
consume_for_booking / record_payment with plain values: vouchers knows no Booking class and reads no
table of the marketplace. What claims, flags and reports need of a booking (where, when, at what price
and ratio, how it ended, whether it is paid) it hands over in those calls, kept as a VoucherUse."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from core.audit import Actor, record_audit
from core.clock import local_midnight, to_local
from core.errors import Conflict, Forbidden, NotFound, RuleBroken
from core.models import Enterprise, Platform, Role, User
from core.money import format_yuan
from core.services import administers
from core.states import can_move, move
from vouchers import ledger, queries
from vouchers.models import (
    APPLICATION_DONE_MESSAGES,
    APPLICATION_STATE_LABELS,
    APPLICATION_TRANSITIONS,
    VOUCHER_STATE_LABELS,
    VOUCHER_TRANSITIONS,
    Application,
    ApplicationState,
    EntryKind,
    Programme,
    ProgrammeSuspension,
    RedemptionMode,
    RelatedParty,
    Voucher,
    VoucherState,
    VoucherUse,
)

BASIS_POINTS = 10_000


# --- who ------------------------------------------------------------------------------------------

def ensure_bureau(user: User) -> None:
    if not user.has_role(Role.BUREAU_ADMIN):
        raise Forbidden("forbidden", _("Only the bureau runs voucher programmes."))


def member_enterprise(session: Session, user: User, enterprise_id: int) -> Enterprise:
    if enterprise_id not in user.organisation_ids(Role.ENTERPRISE_MEMBER):
        raise Forbidden("forbidden", _("You are not a member of this enterprise."))
    return session.get(Enterprise, enterprise_id)


def can_see_voucher(user: User | None, voucher: Voucher) -> bool:
    return user is not None and (voucher.enterprise_id in user.organisation_ids(Role.ENTERPRISE_MEMBER)
                                 or user.has_role(Role.BUREAU_ADMIN, Role.FINANCE_OFFICER, Role.AUDITOR))


def get_voucher(session: Session, voucher_id: int, user: User | None) -> Voucher:
    voucher = session.get(Voucher, voucher_id)
    if voucher is None or not can_see_voucher(user, voucher):
        raise NotFound("not_found", _("There is no such voucher."))
    return voucher


# --- programmes -----------------------------------------------------------------------------------

PROGRAMME_FIELDS = ("name", "year", "pool_fen", "coverage_bp", "sme_coverage_bp", "enterprise_year_cap_fen",
                    "order_cap_fen", "validity_days", "applications_open_on", "applications_close_on",
                    "redemption_mode", "eligible_category_codes", "eligible_platform_ids")


def _check_programme(values: dict) -> None:
    if values["pool_fen"] <= 0:
        raise RuleBroken("invalid", _("The pool must be more than zero."), field="pool_fen")
    if not 1 <= values["coverage_bp"] <= BASIS_POINTS:
        raise RuleBroken("invalid", _("The coverage ratio is between 0.01 % and 100 %."), field="coverage_bp")
    if not values["coverage_bp"] <= values["sme_coverage_bp"] <= BASIS_POINTS:
        raise RuleBroken("invalid", _("The ratio for tech SMEs is at least the general ratio and at most 100 %."),
                         field="sme_coverage_bp")
    for name in ("enterprise_year_cap_fen", "order_cap_fen", "validity_days"):
        if values[name] <= 0:
            raise RuleBroken("invalid", _("This must be more than zero."), field=name)
    if values["applications_close_on"] < values["applications_open_on"]:
        raise RuleBroken("invalid", _("The application window closes after it opens."), field="applications_close_on")


def create_programme(session: Session, *, actor: Actor, user: User, values: dict) -> Programme:
    ensure_bureau(user)
    _check_programme(values)
    programme = Programme(**{name: values[name] for name in PROGRAMME_FIELDS if name in values},
                          created_by_id=user.id)
    session.add(programme)
    session.flush()
    record_audit(session, actor, "voucher_programme.created", programme, after=programme.audit_view())
    return programme


def update_programme(session: Session, programme: Programme, *, actor: Actor, user: User, values: dict) -> Programme:
    """The pool may not go below what was issued; the rest may change (for vouchers yet to come)."""
    ensure_bureau(user)
    merged = {name: getattr(programme, name) for name in PROGRAMME_FIELDS} | values
    _check_programme(merged)
    if merged["pool_fen"] < programme.issued_fen:
        raise RuleBroken("invalid", _("The pool cannot be less than what was issued already."), field="pool_fen")
    before = programme.audit_view()
    for name in PROGRAMME_FIELDS:
        setattr(programme, name, merged[name])
    session.flush()
    record_audit(session, actor, "voucher_programme.updated", programme, before=before, after=programme.audit_view())
    return programme


# The instrument categories a programme names are the marketplace's code list: vouchers sits below the
# marketplace and reads none of its tables, so the marketplace lends the list at start-up.
# (session, language) → [(code, name)] in code order; read by listing.category_choices.
CategorySource = Callable[[Session, str], list[tuple[str, str]]]
CATEGORY_EXTENSION = "kequip.voucher_category_source"


def register_category_source(app: Flask, source: CategorySource) -> None:
    app.extensions[CATEGORY_EXTENSION] = source


def open_programmes(session: Session, *, on: date) -> list[Programme]:
    return list(session.scalars(select(Programme).where(Programme.applications_open_on <= on,
                                                        Programme.applications_close_on >= on)
                                .order_by(Programme.year.desc(), Programme.name)))


# --- the controller group and its yearly cap -----------------------------------------------------

def group_enterprise_ids(session: Session, enterprise: Enterprise) -> list[int]:
    """The enterprise and every other under the same actual controller (实际控制人)."""
    if not (enterprise.actual_controller or "").strip():
        return [enterprise.id]
    return list(session.scalars(select(Enterprise.id).where(
        Enterprise.actual_controller == enterprise.actual_controller.strip()).order_by(Enterprise.id)))


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return local_midnight(date(year, 1, 1)), local_midnight(date(year + 1, 1, 1))


def group_issued_fen(session: Session, programme: Programme, enterprise: Enterprise) -> int:
    """What the enterprise's group was issued in the programme."""
    return int(session.scalar(select(func.coalesce(func.sum(Voucher.amount_fen), 0)).where(
        Voucher.programme_id == programme.id, Voucher.enterprise_id.in_(group_enterprise_ids(session, enterprise)))))


def group_spent_fen(session: Session, programme: Programme, enterprise: Enterprise, *, year: int) -> int:
    """What the group's vouchers of the programme paid or hold for bookings this (local) year: holds less
    releases. Consumption moves held money, so it is already counted."""
    start, end = _year_bounds(year)
    return int(session.scalar(queries.group_spent(), {
        "programme_id": programme.id, "enterprise_ids": group_enterprise_ids(session, enterprise),
        "start": start, "end": end}))


def cap_room_fen(session: Session, programme: Programme, enterprise: Enterprise) -> int:
    """What the programme may still issue to the enterprise this year: the yearly cap per enterprise (per
    controller group: enterprises under one actual controller share it) less what the group was issued."""
    return max(programme.enterprise_year_cap_fen - group_issued_fen(session, programme, enterprise), 0)


def _ensure_within_cap(session: Session, programme: Programme, enterprise: Enterprise, amount_fen: int, *,
                       field: str) -> None:
    room = cap_room_fen(session, programme, enterprise)
    if amount_fen > room:
        raise RuleBroken("enterprise_cap_exceeded", _("The enterprise's group has %(left)s left of its yearly cap.",
                                                      left=format_yuan(room)), field=field)


# --- applications and issuance --------------------------------------------------------------------

def apply_for_voucher(session: Session, *, actor: Actor, user: User, programme_id: int, enterprise_id: int,
                      requested_fen: int, purpose: str, planned_instruments: str, now: datetime) -> Application:
    enterprise = member_enterprise(session, user, enterprise_id)
    programme = session.get(Programme, programme_id)
    if programme is None:
        raise NotFound("not_found", _("There is no such programme."))
    if not programme.is_open_for_applications(to_local(now).date()):
        raise RuleBroken("programme_closed", _("This programme takes no applications now."), field="programme_id")
    if not uscc.is_valid(enterprise.credit_code) or not enterprise.is_verified:
        raise RuleBroken("enterprise_not_verified", _("Your enterprise's unified social credit code must be valid "
                                                      "and verified by the bureau before it applies."))
    if requested_fen <= 0:
        raise RuleBroken("invalid", _("Ask for an amount above zero."), field="requested_fen")
    if not purpose.strip():
        raise RuleBroken("invalid", _("Say what the voucher is for."), field="purpose")
    _ensure_within_cap(session, programme, enterprise, requested_fen, field="requested_fen")
    pending = session.scalar(select(Application.id).where(Application.programme_id == programme.id,
                                                          Application.enterprise_id == enterprise.id,
                                                          Application.state == ApplicationState.SUBMITTED))
    if pending is not None:
        raise RuleBroken("application_pending", _("Your enterprise already has an application in review here."))
    application = Application(programme=programme, enterprise=enterprise, applicant_id=user.id,
                              requested_fen=requested_fen, purpose=purpose.strip(),
                              planned_instruments=planned_instruments.strip(), created_at=now)
    session.add(application)
    session.flush()
    record_audit(session, actor, "voucher_application.submitted", application,
                 after={"requested_fen": requested_fen, "programme_id": programme.id})
    return application


def lock_application(session: Session, application: Application, *, to: ApplicationState) -> Application:
    """Take the application's row lock (FOR UPDATE on PostgreSQL; on SQLite the unit of work's write
    transaction serialises writers) and read it afresh: of racing decisions and a withdrawal, one is made
    and the others are told, with 409 and a code naming the state the application is in now."""
    session.flush()
    session.execute(select(Application).where(Application.id == application.id).with_for_update(of=Application)
                    .execution_options(populate_existing=True)).scalar_one()
    if not can_move(application, to, APPLICATION_TRANSITIONS):
        raise Conflict(f"already_{application.state.value}", str(APPLICATION_DONE_MESSAGES[application.state]))
    return application


def serial_of(programme: Programme, application: Application) -> str:
    """KQ2026-000123: the programme's year and the application's number, unique by construction."""
    return f"KQ{programme.year}-{application.id:06d}"


def approve_application(session: Session, application: Application, *, actor: Actor, user: User,
                        amount_fen: int, now: datetime) -> Voucher:
    """Issue a voucher of amount_fen (at most what was asked, what the group's yearly cap leaves and what
    the pool has left). The pool is taken by one conditional UPDATE: concurrent approvals never pass it."""
    ensure_bureau(user)
    lock_application(session, application, to=ApplicationState.APPROVED)
    programme = application.programme
    if not 0 < amount_fen <= application.requested_fen:
        raise RuleBroken("invalid", _("Approve an amount above zero and at most what was asked."), field="amount_fen")
    _ensure_within_cap(session, programme, application.enterprise, amount_fen, field="amount_fen")
    taken = session.execute(update(Programme).where(Programme.id == programme.id,
                                                    Programme.issued_fen + amount_fen <= Programme.pool_fen)
                            .values(issued_fen=Programme.issued_fen + amount_fen)
                            .execution_options(synchronize_session=False))
    session.expire(programme, ["issued_fen"])
    if taken.rowcount != 1:
        raise RuleBroken("pool_exhausted", _("The programme's pool has only %(left)s left.",
                                             left=format_yuan(programme.remaining_fen)), field="amount_fen")
    move(application, ApplicationState.APPROVED, APPLICATION_TRANSITIONS, APPLICATION_STATE_LABELS)
    application.approved_fen, application.decided_by_id, application.decided_at = amount_fen, user.id, now
    voucher = Voucher(serial=serial_of(programme, application), programme=programme,
                      enterprise_id=application.enterprise_id, application_id=application.id, amount_fen=amount_fen,
                      balance_fen=0, issued_at=now, expires_at=now + timedelta(days=programme.validity_days))
    session.add(voucher)
    session.flush()
    record_audit(session, actor, "voucher_application.approved", application, before={"state": "submitted"},
                 after={"state": "approved", "approved_fen": amount_fen, "voucher": voucher.serial})
    ledger.post(session, voucher, EntryKind.ISSUE, amount_fen, actor=actor, now=now)
    return voucher


def approve_applications(session: Session, application_ids: list[int], *, actor: Actor, user: User,
                         now: datetime) -> list[Voucher]:
    """Approve every chosen application at the amount it asks, or none. The applications' rows are locked
    first, then their programmes' rows (in id order, as a single approval takes them: application, then
    pool), so concurrent batches and single approvals neither overdraw a pool nor deadlock. A pool that
    cannot cover the chosen sum refuses the batch naming the sum and what is left; otherwise each
    application passes approve_application's own rules (its state, the group's yearly cap, counting the
    vouchers issued earlier in the batch), and any refusal refuses them all, naming each and why."""
    ensure_bureau(user)
    ids = sorted(set(application_ids))
    applications = list(session.scalars(
        select(Application).where(Application.id.in_(ids)).order_by(Application.id)
        .with_for_update(of=Application).execution_options(populate_existing=True)))
    if not ids or len(applications) != len(ids):
        raise NotFound("not_found", _("Some of the chosen applications no longer exist."))
    programmes = session.scalars(
        select(Programme).where(Programme.id.in_({a.programme_id for a in applications})).order_by(Programme.id)
        .with_for_update(of=Programme).execution_options(populate_existing=True)).all()
    for programme in programmes:
        needed = sum(a.requested_fen for a in applications
                     if a.programme_id == programme.id and a.state == ApplicationState.SUBMITTED)
        if needed > programme.remaining_fen:
            raise RuleBroken("pool_exhausted", _(
                "Nothing was approved: the chosen applications need %(needed)s from the pool of %(name)s, "
                "which has only %(left)s left.", needed=format_yuan(needed), name=programme.name,
                left=format_yuan(programme.remaining_fen)))
    vouchers, refusals = [], []
    for application in applications:
        try:
            vouchers.append(approve_application(session, application, actor=actor, user=user,
                                                amount_fen=application.requested_fen, now=now))
        except (RuleBroken, Conflict) as error:  # nothing of this application changed: go on to name them all
            refusals.append(_("%(enterprise)s, application %(id)d: %(reason)s", enterprise=application.enterprise.name,
                              id=application.id, reason=error.message))
    if refusals:
        raise RuleBroken("batch_refused", _("Nothing was approved. %(refusals)s", refusals=" ".join(refusals)),
                         details=refusals)
    return vouchers


def reject_application(session: Session, application: Application, *, actor: Actor, user: User, reason: str,
                       now: datetime) -> Application:
    ensure_bureau(user)
    if not reason.strip():
        raise RuleBroken("reason_required", _("Give the applicant a reason."), field="reason")
    lock_application(session, application, to=ApplicationState.REJECTED)
    move(application, ApplicationState.REJECTED, APPLICATION_TRANSITIONS, APPLICATION_STATE_LABELS)
    application.decision_note, application.decided_by_id, application.decided_at = reason.strip(), user.id, now
    session.flush()
    record_audit(session, actor, "voucher_application.rejected", application, before={"state": "submitted"},
                 after={"state": "rejected", "reason": application.decision_note})
    return application


def withdraw_application(session: Session, application: Application, *, actor: Actor, user: User) -> Application:
    """The applicant enterprise's member takes back an application while it waits for the bureau."""
    member_enterprise(session, user, application.enterprise_id)
    lock_application(session, application, to=ApplicationState.WITHDRAWN)
    move(application, ApplicationState.WITHDRAWN, APPLICATION_TRANSITIONS, APPLICATION_STATE_LABELS)
    session.flush()
    record_audit(session, actor, "voucher_application.withdrawn", application, before={"state": "submitted"},
                 after={"state": "withdrawn"})
    return application


# --- spending at booking ----------------------------------------------------------------------------

def is_related(session: Session, enterprise: Enterprise, platform: Platform) -> bool:
    """Declared related, or sharing a credit code, a legal representative or an actual controller."""
    return bool(session.scalar(select(queries.declared_related(enterprise.id, platform.id)))) \
        or shares_legal_entity(enterprise, legal_entity(platform))


@dataclass(frozen=True, slots=True)
class LegalEntity:
    """Who stands behind a platform: an enterprise sharing any of these with it is a related party."""

    credit_code: str | None
    legal_representative: str | None
    actual_controller: str | None


def legal_entity(platform: Platform | sa.Row) -> LegalEntity:
    """The platform's legal entity, from the Platform or a row of its three columns."""
    return LegalEntity(platform.credit_code, platform.legal_representative, platform.actual_controller)


def shares_legal_entity(enterprise: Enterprise, platform: LegalEntity) -> bool:
    def same(a: str | None, b: str | None) -> bool:
        return bool(a and b and a.strip() == b.strip())

    return same(enterprise.credit_code, platform.credit_code) \
        or same(enterprise.legal_representative, platform.legal_representative) \
        or same(enterprise.actual_controller, platform.actual_controller)


def is_suspended(session: Session, programme_id: int, platform_id: int) -> bool:
    return bool(session.scalar(select(queries.suspension(programme_id, platform_id))))


@dataclass(frozen=True, slots=True)
class VoucherPart:
    voucher: Voucher
    amount_fen: int  # what the voucher pays
    ratio_bp: int
    enterprise_pays_fen: int  # at booking: the price less the voucher part, or all of it (enterprise-reimbursed)


def quote_voucher_part(session: Session, voucher_id: int, *, enterprise_id: int | None, platform_id: int,
                       category_code: str, price_fen: int, now: datetime) -> VoucherPart:
    """Voucher part = min(ratio × eligible price, balance, per-order cap, what is left of the yearly cap
    of the enterprise's controller group), in fen, rounded down. Refusals: voucher_expired,
    voucher_not_eligible, voucher_insufficient, related_party."""
    # One holder of a programme at a time (a row lock on PostgreSQL; SQLite has one writer): the group's
    # yearly cap and the voucher's balance read here are still true when hold_for_booking writes. The
    # voucher's row is locked too, so that it is read as the last holder committed it. In the same
    # statement: whether the platform is suspended from the programme or declared related to the
    # enterprise, and the platform's legal entity.
    found = session.execute(queries.quote(), {"voucher_id": voucher_id, "platform_id": platform_id}).first()
    voucher = found.Voucher if found is not None else None
    if voucher is None or enterprise_id is None or voucher.enterprise_id != enterprise_id:
        raise RuleBroken("voucher_not_eligible", _("This voucher is not your enterprise's."), field="voucher_id")
    if voucher.state != VoucherState.ACTIVE or voucher.expires_at <= now:
        raise RuleBroken("voucher_expired", _("The voucher %(serial)s is no longer valid.", serial=voucher.serial),
                         field="voucher_id")
    programme, enterprise = voucher.programme, voucher.enterprise
    if (programme.eligible_platform_ids and platform_id not in programme.eligible_platform_ids) or found.suspended:
        raise RuleBroken("voucher_not_eligible", _("This platform does not take vouchers of %(programme)s.",
                                                   programme=programme.name), field="voucher_id")
    if programme.eligible_category_codes and not category_code.startswith(tuple(programme.eligible_category_codes)):
        raise RuleBroken("voucher_not_eligible", _("This kind of instrument is not covered by %(programme)s.",
                                                   programme=programme.name), field="voucher_id")
    if found.declared or shares_legal_entity(enterprise, legal_entity(found)):
        raise RuleBroken("related_party", _("Your enterprise and this platform are related parties: no voucher "
                                            "may pay for services between them."), field="voucher_id")
    ratio = programme.coverage_bp_for(enterprise)
    cap_left = programme.enterprise_year_cap_fen - group_spent_fen(session, programme, enterprise,
                                                                   year=to_local(now).year)
    amount = min(price_fen * ratio // BASIS_POINTS, voucher.balance_fen, programme.order_cap_fen, cap_left)
    if amount <= 0:
        raise RuleBroken("voucher_insufficient", _("The voucher %(serial)s has nothing left to pay here.",
                                                   serial=voucher.serial), field="voucher_id")
    pays = price_fen if programme.redemption_mode == RedemptionMode.ENTERPRISE else price_fen - amount
    return VoucherPart(voucher, amount, ratio, pays)


@dataclass(frozen=True, slots=True)
class BookedService:
    """What the marketplace tells vouchers of the booking a voucher part is held for."""

    booking_id: int
    platform_id: int  # the provider
    instrument_name_zh: str
    instrument_name_en: str
    asset_number: str
    category_code: str
    start_at: datetime
    end_at: datetime
    price_fen: int


def hold_for_booking(session: Session, part: VoucherPart, service: BookedService, *, actor: Actor,
                     now: datetime) -> None:
    """Set the quoted voucher part aside for the booking, in the transaction that quoted it (which holds
    the programme's lock); the ledger's conditional UPDATE guards the balance besides. The use is kept
    with the ratio quoted: consumption applies that one, whatever becomes of the enterprise meanwhile."""
    ledger.post(session, part.voucher, EntryKind.HOLD, part.amount_fen, actor=actor, now=now,
                booking_id=service.booking_id, platform_id=service.platform_id, require_active=True)
    session.execute(sa.insert(VoucherUse.__table__), {
        "booking_id": service.booking_id, "voucher_id": part.voucher.id, "platform_id": service.platform_id,
        "instrument_name_zh": service.instrument_name_zh, "instrument_name_en": service.instrument_name_en,
        "asset_number": service.asset_number, "category_code": service.category_code,
        "start_at": service.start_at, "end_at": service.end_at, "price_fen": service.price_fen,
        "ratio_bp": part.ratio_bp, "is_paid": False})


def release_for_booking(session: Session, *, booking_id: int, actor: Actor, now: datetime) -> int:
    """Give back whatever the booking still holds (cancelled, rejected, expired, no-show); idempotent."""
    voucher_id, held = ledger.held_for_booking(session, booking_id)
    if voucher_id is None or held <= 0:
        return 0
    ledger.post(session, session.get(Voucher, voucher_id), EntryKind.RELEASE, held, actor=actor, now=now,
                booking_id=booking_id)
    return held


def consume_for_booking(session: Session, *, booking_id: int, final_price_fen: int, actor: Actor, now: datetime,
                        checked_in_at: datetime | None = None, checked_out_at: datetime | None = None) -> int:
    """At completion: the voucher pays the ratio held of the final price, at most what it held; the rest
    of the hold is released. The use records the completion, the final price and the usage (check-in
    and check-out). Returns the voucher part consumed."""
    voucher_id, held = ledger.held_for_booking(session, booking_id)
    if voucher_id is None or held <= 0:
        return 0
    use = session.scalar(select(VoucherUse).where(VoucherUse.booking_id == booking_id))
    use.completed_at, use.final_price_fen = now, final_price_fen
    use.checked_in_at, use.checked_out_at = checked_in_at, checked_out_at
    voucher = session.get(Voucher, voucher_id)
    consumed = min(final_price_fen * use.ratio_bp // BASIS_POINTS, held)
    if consumed:
        ledger.post(session, voucher, EntryKind.CONSUME, consumed, actor=actor, now=now, booking_id=booking_id,
                    platform_id=use.platform_id)
    if held - consumed:
        ledger.post(session, voucher, EntryKind.RELEASE, held - consumed, actor=actor, now=now, booking_id=booking_id)
    return consumed


def record_payment(session: Session, *, booking_id: int, is_paid: bool) -> None:
    """The marketplace tells whether the enterprise has paid what it owed for a booking a voucher pays
    part of (an enterprise-reimbursed use is claimable once it is)."""
    session.execute(update(VoucherUse).where(VoucherUse.booking_id == booking_id).values(is_paid=is_paid)
                    .execution_options(synchronize_session=False))


def pays_in_full(session: Session, voucher_id: int) -> bool:
    """Whether the enterprise pays the whole price and claims the voucher part back (通用)."""
    return session.get(Voucher, voucher_id).programme.redemption_mode == RedemptionMode.ENTERPRISE


def usable_vouchers(session: Session, enterprise_id: int | None, *, now: datetime) -> list[Voucher]:
    if enterprise_id is None:
        return []
    return list(session.scalars(select(Voucher).where(
        Voucher.enterprise_id == enterprise_id, Voucher.state == VoucherState.ACTIVE, Voucher.expires_at > now,
        Voucher.balance_fen > 0).order_by(Voucher.expires_at)))


# --- expiry and voiding -------------------------------------------------------------------------------

def _end(session: Session, voucher: Voucher, to: VoucherState, kind: EntryKind, *, actor: Actor, now: datetime,
         reason: str | None = None) -> None:
    before = voucher.state.value
    move(voucher, to, VOUCHER_TRANSITIONS, VOUCHER_STATE_LABELS)
    voucher.void_reason = reason
    session.flush()
    record_audit(session, actor, f"voucher.{to.value}", voucher, before={"state": before},
                 after={"state": to.value, "reason": reason})
    if voucher.balance_fen:
        ledger.post(session, voucher, kind, voucher.balance_fen, actor=actor, now=now)


def expire_vouchers(session: Session, *, now: datetime) -> int:
    """Active vouchers past validity expire; their balance goes back to the programme's record (what is
    held for booked services stays held and is consumed or released as those end)."""
    due = session.scalars(select(Voucher).where(Voucher.state == VoucherState.ACTIVE, Voucher.expires_at <= now)).all()
    for voucher in due:
        _end(session, voucher, VoucherState.EXPIRED, EntryKind.EXPIRE, actor=Actor.system("job:expire_vouchers"),
             now=now)
    return len(due)


def void_voucher(session: Session, voucher: Voucher, *, actor: Actor, user: User, reason: str,
                 now: datetime) -> Voucher:
    """Found obtained by collusion or falsification: the remaining balance is voided, the entries kept."""
    ensure_bureau(user)
    if not reason.strip():
        raise RuleBroken("reason_required", _("Give the reason for voiding."), field="reason")
    _end(session, voucher, VoucherState.VOID, EntryKind.VOID, actor=actor, now=now, reason=reason.strip())
    return voucher


def suspend_platform(session: Session, programme: Programme, platform: Platform, *, actor: Actor, user: User,
                     reason: str) -> ProgrammeSuspension:
    ensure_bureau(user)
    if not reason.strip():
        raise RuleBroken("reason_required", _("Give the reason for the suspension."), field="reason")
    if is_suspended(session, programme.id, platform.id):
        raise RuleBroken("already_suspended", _("This platform is suspended from the programme already."))
    suspension = ProgrammeSuspension(programme_id=programme.id, platform_id=platform.id, reason=reason.strip(),
                                     suspended_by_id=user.id)
    session.add(suspension)
    session.flush()
    record_audit(session, actor, "voucher_programme.platform_suspended", programme,
                 after={"platform_id": platform.id, "reason": suspension.reason})
    return suspension


def declare_related(session: Session, *, actor: Actor, user: User, enterprise: Enterprise, platform: Platform,
                    note: str = "") -> RelatedParty:
    """The bureau, the enterprise or the platform declares the two related."""
    may = user.has_role(Role.BUREAU_ADMIN) or enterprise.id in user.organisation_ids(Role.ENTERPRISE_MEMBER) \
        or administers(user, platform.id)
    if not may:
        raise Forbidden("forbidden", _("Only the bureau or one of the two parties declares a relation."))
    relation = session.scalar(select(RelatedParty).where(RelatedParty.enterprise_id == enterprise.id,
                                                         RelatedParty.platform_id == platform.id))
    if relation is None:
        relation = RelatedParty(enterprise_id=enterprise.id, platform_id=platform.id, note=note.strip(),
                                declared_by_id=user.id)
        session.add(relation)
        session.flush()
        record_audit(session, actor, "related_party.declared", relation,
                     after={"enterprise_id": enterprise.id, "platform_id": platform.id, "note": relation.note})
    return relation
