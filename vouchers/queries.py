"""The statements a booking with a voucher runs (its quote, its group's yearly spending, the ledger's
move), each built once with bound parameters.

Why this module exists: a voucher part held at booking must add little to the booking (its figure is in
docs/benchmarks.md), and building and keying these statements at every call cost more than running
them. What they decide is the voucher rules' (vouchers.services, vouchers.ledger); here is only how the
statements are kept."""
from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from sqlalchemy import func, select, update
from sqlalchemy.orm import contains_eager, lazyload

from core.db import PLAN_FOR_VALUES
from core.models import Platform
from vouchers.models import EntryKind, LedgerEntry, Programme, ProgrammeSuspension, RelatedParty, Voucher, VoucherState


def declared_related(enterprise_id: int | sa.ColumnElement, platform_id: int | sa.ColumnElement) -> sa.Exists:
    return sa.exists().where(RelatedParty.enterprise_id == enterprise_id, RelatedParty.platform_id == platform_id)


def suspension(programme_id: int | sa.ColumnElement, platform_id: int | sa.ColumnElement) -> sa.Exists:
    return sa.exists().where(ProgrammeSuspension.programme_id == programme_id,
                             ProgrammeSuspension.platform_id == platform_id)


@cache
def quote() -> sa.Select:
    """`voucher_id`, `platform_id`: the voucher and its programme, locked; whether the platform is
    suspended from the programme or declared related to the enterprise; the platform's legal entity.
    The enterprise comes from the session (the booking loaded it), not from a join."""
    platforms = Platform.__table__
    platform_id = sa.bindparam("platform_id", type_=sa.Integer)
    return (select(Voucher, suspension(Voucher.programme_id, platform_id).label("suspended"),
                   declared_related(Voucher.enterprise_id, platform_id).label("declared"), platforms.c.credit_code,
                   platforms.c.legal_representative, platforms.c.actual_controller)
            .join(Voucher.programme).join(platforms, platforms.c.id == platform_id)
            .options(contains_eager(Voucher.programme), lazyload(Voucher.enterprise))
            .where(Voucher.id == sa.bindparam("voucher_id", type_=sa.Integer))
            .with_for_update(of=(Voucher, Programme)).execution_options(populate_existing=True))


@cache
def group_spent() -> sa.Select:
    """`programme_id`, `enterprise_ids`, `start`, `end`: holds less releases of those enterprises'
    vouchers of the programme in [start, end). Planned for its values: the quick plan depends on the
    group and the year."""
    signed = sa.case((LedgerEntry.kind == EntryKind.HOLD.value, LedgerEntry.amount_fen),
                     else_=-LedgerEntry.amount_fen)
    return (select(func.coalesce(func.sum(signed), 0)).join(Voucher, Voucher.id == LedgerEntry.voucher_id)
            .where(Voucher.programme_id == sa.bindparam("programme_id"),
                   Voucher.enterprise_id.in_(sa.bindparam("enterprise_ids", expanding=True)),
                   LedgerEntry.kind.in_((EntryKind.HOLD, EntryKind.RELEASE)),
                   LedgerEntry.at >= sa.bindparam("start"), LedgerEntry.at < sa.bindparam("end"))
            .execution_options(**PLAN_FOR_VALUES))


@cache
def move(kind: EntryKind, effect: tuple[tuple[str, int], ...], *, require_active: bool) -> sa.Update:
    """`voucher_id`, `amount`: the ledger's conditional UPDATE (vouchers.ledger.post): each column of
    `effect` moved by `amount` as its sign says, only where none would go below zero (nor redemptions
    past consumption, nor a hold off an inactive voucher), returning the columns."""
    table = Voucher.__table__
    amount = sa.bindparam("amount", type_=sa.BigInteger)
    changes = {name: table.c[name] + amount if sign > 0 else table.c[name] - amount for name, sign in effect if sign}
    guards = [table.c[name] >= amount for name, sign in effect if sign < 0]
    if kind == EntryKind.REDEEM:
        guards.append(table.c.consumed_fen - table.c.redeemed_fen >= amount)
    if require_active:
        guards.append(table.c.state == VoucherState.ACTIVE)
    return (update(table).where(table.c.id == sa.bindparam("voucher_id", type_=sa.Integer), *guards)
            .values(**changes).returning(*(table.c[name] for name, _sign in effect)))
