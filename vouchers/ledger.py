"""The voucher ledger: the one place where a voucher's money moves.

Every movement is an append-only LedgerEntry and, in the same transaction, a conditional UPDATE of the
voucher's columns that refuses to take any column below zero:
concurrent holds on one voucher can never spend more than its balance, on SQLite (one writer at a
time) and PostgreSQL (the UPDATE locks the row and re-checks its condition) alike."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.audit import Actor, record_audit
from core.errors import RuleBroken
from core.money import format_yuan
from vouchers import queries
from vouchers.models import EntryKind, LedgerEntry, Voucher

# How each kind of entry moves a voucher's columns: (balance, held, consumed, redeemed) per fen.
EFFECTS: dict[EntryKind, tuple[int, int, int, int]] = {
    EntryKind.ISSUE: (1, 0, 0, 0),
    EntryKind.HOLD: (-1, 1, 0, 0),
    EntryKind.RELEASE: (1, -1, 0, 0),
    EntryKind.CONSUME: (0, -1, 1, 0),
    EntryKind.EXPIRE: (-1, 0, 0, 0),
    EntryKind.VOID: (-1, 0, 0, 0),
    EntryKind.REDEEM: (0, 0, 0, 1),
}
COLUMNS = ("balance_fen", "held_fen", "consumed_fen", "redeemed_fen")


def post(session: Session, voucher: Voucher, kind: EntryKind, amount_fen: int, *, actor: Actor, now: datetime,
         booking_id: int | None = None, claim_id: int | None = None, platform_id: int | None = None,
         require_active: bool = False) -> None:
    """Move amount_fen on a voucher and write the entry; RuleBroken("voucher_insufficient") when a
    column would go below zero (or past what was consumed, for a redemption)."""
    if amount_fen <= 0:
        raise ValueError("a ledger entry moves a positive amount")
    session.flush()  # the session's pending changes first: a Core UPDATE does not autoflush
    # the conditional UPDATE: no row back means a column would go below zero
    moved = session.execute(queries.move(kind, tuple(zip(COLUMNS, EFFECTS[kind], strict=True)),
                                         require_active=require_active),
                            {"voucher_id": voucher.id, "amount": amount_fen}).first()
    if moved is None:
        raise RuleBroken("voucher_insufficient", _("The voucher %(serial)s does not have %(amount)s left.",
                                                   serial=voucher.serial, amount=format_yuan(amount_fen)),
                         field="voucher_id")
    for name, value in zip(COLUMNS, moved, strict=True):  # the columns as the database has them now
        set_committed_value(voucher, name, value)
    session.execute(insert(LedgerEntry.__table__), {  # written at once, as the move was
        "voucher_id": voucher.id, "kind": kind, "amount_fen": amount_fen, "booking_id": booking_id,
        "claim_id": claim_id, "platform_id": platform_id, "actor_id": actor.user_id,
        "actor_label": actor.label[:100], "at": now})
    record_audit(session, actor, f"voucher.{kind.value}", voucher,
                 after={"amount_fen": amount_fen, "booking_id": booking_id, "claim_id": claim_id,
                        **{name: getattr(voucher, name) for name in COLUMNS}})


@dataclass(frozen=True, slots=True)
class Totals:
    balance_fen: int
    held_fen: int
    consumed_fen: int
    redeemed_fen: int


def ledger_totals(session: Session, voucher_id: int) -> Totals:
    """A voucher's columns recomputed from its ledger alone."""
    sums = dict(session.execute(select(LedgerEntry.kind, func.sum(LedgerEntry.amount_fen))
                                .where(LedgerEntry.voucher_id == voucher_id).group_by(LedgerEntry.kind)).all())
    totals = [0, 0, 0, 0]
    for kind, amount in sums.items():
        for index, sign in enumerate(EFFECTS[EntryKind(kind)]):
            totals[index] += sign * int(amount)
    return Totals(*totals)


def mismatched_vouchers(session: Session) -> list[int]:
    """Every voucher whose columns differ from its ledger, in one query (the nightly check)."""
    def signed(column_index: int) -> sa.ColumnElement:
        return func.coalesce(func.sum(sa.case(
            *((LedgerEntry.kind == kind.value, LedgerEntry.amount_fen * effect[column_index])
              for kind, effect in EFFECTS.items() if effect[column_index]), else_=0)), 0)

    sums = (select(LedgerEntry.voucher_id.label("voucher_id"),
                   *(signed(i).label(name) for i, name in enumerate(COLUMNS)))
            .group_by(LedgerEntry.voucher_id).subquery())
    query = select(Voucher.id).outerjoin(sums, sums.c.voucher_id == Voucher.id).where(sa.or_(
        *(getattr(Voucher, name) != func.coalesce(getattr(sums.c, name), 0) for name in COLUMNS)))
    return list(session.scalars(query))


def held_for_booking(session: Session, booking_id: int) -> tuple[int | None, int]:
    """(voucher id, amount still held) for a booking: its holds less its releases and consumption."""
    rows = session.execute(select(LedgerEntry.voucher_id, LedgerEntry.kind, func.sum(LedgerEntry.amount_fen))
                           .where(LedgerEntry.booking_id == booking_id,
                                  LedgerEntry.kind.in_((EntryKind.HOLD, EntryKind.RELEASE, EntryKind.CONSUME)))
                           .group_by(LedgerEntry.voucher_id, LedgerEntry.kind)).all()
    voucher_id, held = None, 0
    for row_voucher_id, kind, amount in rows:
        voucher_id = row_voucher_id
        held += int(amount) if kind == EntryKind.HOLD else -int(amount)
    return voucher_id, held
