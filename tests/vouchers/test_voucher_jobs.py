"""The vouchers' jobs: the daily expiry (idempotent, the balance to zero with an EXPIRE entry, what is held
for booked services kept) and the nightly check that finds a voucher whose columns left its ledger."""
from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import select

from core.audit import Actor
from core.scheduler import registered_jobs
from marketplace.booking import services as bookings
from marketplace.registry.models import InstrumentState
from tests.marketplace.conftest import create_instrument, monday_at  # noqa: F401  (fixtures)
from vouchers import jobs, ledger
from vouchers.models import EntryKind, LedgerEntry, VoucherState


def kinds(session, voucher) -> list[tuple[EntryKind, int]]:
    return [(e.kind, e.amount_fen) for e in session.scalars(
        select(LedgerEntry).where(LedgerEntry.voucher_id == voucher.id).order_by(LedgerEntry.id))]


def test_the_jobs_are_registered_daily_in_beijing_time(app):
    registry = registered_jobs(app)
    expire, check = registry["expire_vouchers"], registry["check_voucher_ledger"]
    assert (expire.func, expire.trigger, expire.trigger_args) == (
        jobs.expire_vouchers, "cron", {"hour": 0, "minute": 10, "timezone": "Asia/Shanghai"})
    assert (check.func, check.trigger, check.trigger_args["timezone"]) == (jobs.check_voucher_ledger, "cron",
                                                                          "Asia/Shanghai")


def test_expiry_releases_the_balance_once_and_keeps_what_is_held(session, demo_user, issue_voucher, create_instrument,
                                                                 monday_at):
    voucher = issue_voucher("enterprise", amount_fen=500_000)
    member = demo_user("enterprise")
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                                   hourly_rate_district_enterprise_fen=40_000)
    bookings.book_instrument(session, actor=Actor.of(member, None), user=member, instrument_id=instrument.id,
                             start_at=monday_at(9), end_at=monday_at(10), now=voucher.issued_at,
                             voucher_id=voucher.id)
    held = voucher.held_fen
    assert held > 0
    jobs.expire_vouchers(now=voucher.expires_at - timedelta(seconds=1))
    session.expire_all()
    assert voucher.state == VoucherState.ACTIVE  # valid to its last second
    assert jobs.expire_vouchers(now=voucher.expires_at) >= 1
    session.expire_all()
    assert (voucher.state, voucher.balance_fen, voucher.held_fen) == (VoucherState.EXPIRED, 0, held)
    assert kinds(session, voucher)[-1] == (EntryKind.EXPIRE, 500_000 - held)
    assert jobs.expire_vouchers(now=voucher.expires_at + timedelta(days=1)) == 0  # nothing left to expire
    assert kinds(session, voucher).count((EntryKind.EXPIRE, 500_000 - held)) == 1
    assert ledger.ledger_totals(session, voucher.id) == ledger.Totals(0, held, 0, 0)


def test_the_nightly_check_finds_a_tampered_voucher_and_none_otherwise(session, issue_voucher, caplog):
    voucher = issue_voucher("enterprise", amount_fen=300_000)
    assert jobs.check_voucher_ledger() == 0
    session.execute(sa.text("UPDATE vouchers SET balance_fen = balance_fen - 100 WHERE id = :id"), {"id": voucher.id})
    session.expire_all()
    with caplog.at_level(logging.ERROR, logger="vouchers.jobs"):
        assert jobs.check_voucher_ledger() == 1
    [record] = [r for r in caplog.records if r.name == "vouchers.jobs"]
    assert record.levelno == logging.ERROR and voucher.serial in record.getMessage()
    assert "299900" in record.getMessage() and "300000" in record.getMessage()
