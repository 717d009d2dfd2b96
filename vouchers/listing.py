"""What the voucher pages and the API read: programmes, applications and vouchers as each person may
see them, a voucher's ledger, the controller group beside an application, and the choices of the
programme form. Read-only: the rules that change things are in vouchers/services.py.

Who reads what: the bureau, the finance officer and the auditor read everything; an enterprise
member reads their own enterprises' applications and vouchers (services.can_see_voucher)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import Enterprise, Platform, Role, User
from vouchers import services
from vouchers.models import (
    Application,
    ApplicationState,
    LedgerEntry,
    Programme,
    ProgrammeSuspension,
    Voucher,
    VoucherState,
)

READERS = (Role.BUREAU_ADMIN, Role.FINANCE_OFFICER, Role.AUDITOR)



def reads_all(user: User) -> bool:
    return user.has_role(*READERS)


def member_enterprise_ids(user: User) -> set[int]:
    return user.organisation_ids(Role.ENTERPRISE_MEMBER)


def member_enterprises(session: Session, user: User) -> list[Enterprise]:
    ids = member_enterprise_ids(user)
    return list(session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)).order_by(Enterprise.id))) \
        if ids else []


def default_enterprise_id(session: Session, user: User) -> int | None:
    """The enterprise a member acts for when they name none: their first verified one, else their first."""
    enterprises = member_enterprises(session, user)
    return next((e.id for e in enterprises if e.is_verified), enterprises[0].id if enterprises else None)


# --- programmes ---------------------------------------------------------------------------------

def list_programmes(session: Session) -> list[Programme]:
    return list(session.scalars(select(Programme).order_by(Programme.year.desc(), Programme.name)))


def get_programme(session: Session, programme_id: int) -> Programme:
    programme = session.get(Programme, programme_id)
    if programme is None:
        raise NotFound("not_found", _("There is no such programme."))
    return programme


def suspensions(session: Session, programme_id: int) -> list[ProgrammeSuspension]:
    return list(session.scalars(select(ProgrammeSuspension).where(ProgrammeSuspension.programme_id == programme_id)
                                .order_by(ProgrammeSuspension.suspended_at)))


def category_choices(session: Session, language: str) -> list[tuple[str, str]]:
    """Every instrument category as (code, name) in code order, from the code list the marketplace lends
    (services.register_category_source); none while no package lends one."""
    source = current_app.extensions.get(services.CATEGORY_EXTENSION)
    return source(session, language) if source is not None else []


def platform_choices(session: Session) -> list[tuple[int, str]]:
    return [(pid, name) for pid, name in session.execute(select(Platform.id, Platform.name).order_by(Platform.name))]


# --- applications ---------------------------------------------------------------------------------

def applications_query(user: User, *, programme_id: int | None = None, state: ApplicationState | None = None,
                       own_only: bool = False) -> Select:
    """Applications the user may read, newest first; own_only: only their enterprises' (for a reader too)."""
    stmt = select(Application).order_by(Application.created_at.desc(), Application.id.desc())
    if own_only or not reads_all(user):
        stmt = stmt.where(Application.enterprise_id.in_(member_enterprise_ids(user)))
    if programme_id:
        stmt = stmt.where(Application.programme_id == programme_id)
    if state is not None:
        stmt = stmt.where(Application.state == state)
    return stmt


def count_applications(session: Session, state: ApplicationState) -> int:
    """How many applications are in this state, every enterprise's: a queue's size for the dashboard."""
    return session.scalar(select(func.count()).select_from(Application).where(Application.state == state))


def can_see_application(user: User | None, application: Application) -> bool:
    return user is not None and (reads_all(user) or application.enterprise_id in member_enterprise_ids(user))


def get_application(session: Session, application_id: int, user: User | None) -> Application:
    application = session.get(Application, application_id)
    if application is None or not can_see_application(user, application):
        raise NotFound("not_found", _("There is no such application."))
    return application


def voucher_of(session: Session, application: Application) -> Voucher | None:
    return session.scalar(select(Voucher).where(Voucher.application_id == application.id))


@dataclass(frozen=True, slots=True)
class Group:
    """The enterprises under one actual controller, and what they were issued in a programme."""

    controller: str | None
    enterprises: list[Enterprise]
    issued_fen: int
    cap_fen: int

    @property
    def cap_left_fen(self) -> int:
        return max(self.cap_fen - self.issued_fen, 0)


def controller_group(session: Session, application: Application) -> Group:
    ids = services.group_enterprise_ids(session, application.enterprise)
    enterprises = list(session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)).order_by(Enterprise.name)))
    return Group(controller=(application.enterprise.actual_controller or "").strip() or None, enterprises=enterprises,
                 issued_fen=services.group_issued_fen(session, application.programme, application.enterprise),
                 cap_fen=application.programme.enterprise_year_cap_fen)


# --- vouchers -------------------------------------------------------------------------------------

def vouchers_query(user: User, *, programme_id: int | None = None, enterprise_id: int | None = None,
                   state: VoucherState | None = None, own_only: bool = False) -> Select:
    """Vouchers the user may read, newest first; own_only: only their enterprises' (for a reader too)."""
    stmt = select(Voucher).order_by(Voucher.issued_at.desc(), Voucher.id.desc())
    if own_only or not reads_all(user):
        stmt = stmt.where(Voucher.enterprise_id.in_(member_enterprise_ids(user)))
    if programme_id:
        stmt = stmt.where(Voucher.programme_id == programme_id)
    if enterprise_id:
        stmt = stmt.where(Voucher.enterprise_id == enterprise_id)
    if state is not None:
        stmt = stmt.where(Voucher.state == state)
    return stmt


def ledger(session: Session, voucher: Voucher) -> list[LedgerEntry]:
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.voucher_id == voucher.id)
                                .order_by(LedgerEntry.at, LedgerEntry.id)))


def enterprises_with_vouchers(session: Session) -> list[tuple[int, str]]:
    return [(eid, name) for eid, name in session.execute(
        select(Enterprise.id, Enterprise.name).where(Enterprise.id.in_(select(Voucher.enterprise_id)))
        .order_by(Enterprise.name))]
