"""Vouchers read what they own: each booking a voucher pays part of is kept as a voucher use with what the
marketplace told at the hold, at completion and as payments settled; the ratio held is the ratio
consumed; the migration's backfill writes the uses the services write; and no module of vouchers reads a
table of another package, imports a higher one, or states a booking's or a payment's state."""
from __future__ import annotations

import ast
import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.extensions import db
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState
from marketplace.payments.models import PaymentState
from marketplace.registry.models import InstrumentState
from tests.marketplace.conftest import create_instrument, monday_at  # noqa: F401  (fixtures)
from tests.vouchers.conftest import enterprise_of
from vouchers import ledger
from vouchers.claims import services as claims
from vouchers.models import ClaimKind, EntryKind, LedgerEntry, RedemptionMode, VoucherUse

ROOT = Path(__file__).resolve().parents[2]
VOUCHERS = ROOT / "vouchers"
HIGHER_PACKAGES = ("marketplace", "monitoring", "reports", "funding", "evaluation")


@pytest.fixture
def instrument(create_instrument):
    """¥400 an hour for district enterprises, no setup fee."""
    return create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                             hourly_rate_district_enterprise_fen=40_000)


def book_and_confirm(session, demo_user, voucher, instrument, start, *, hours: int = 2):
    """A booking paid partly by the voucher, approved and its share paid by a recorded transfer."""
    member, admin = demo_user("enterprise"), demo_user("platform")
    booking = bookings.book_instrument(session, actor=Actor.of(member, None), user=member,
                                       instrument_id=instrument.id, start_at=start, end_at=start + timedelta(hours=hours),
                                       now=start - timedelta(days=1), voucher_id=voucher.id)
    if booking.state == BookingState.REQUESTED:
        bookings.approve_booking(session, booking, actor=Actor.of(admin, None), user=admin, now=utcnow())
    bookings.choose_transfer(session, booking, actor=Actor.of(member, None), user=member, now=utcnow())
    bookings.record_transfer(session, booking, actor=Actor.of(admin, None), user=admin, now=utcnow(),
                             amount_fen=booking.payable_fen, received_on=to_local(utcnow()).date(),
                             reference=f"TRANSFER-{booking.id}")
    return booking


def serve(session, demo_user, booking, *, used: timedelta) -> None:
    operator = demo_user("operator")
    bookings.check_in(session, booking, actor=Actor.of(operator, None), user=operator, now=booking.start_at)
    bookings.check_out(session, booking, actor=Actor.of(operator, None), user=operator,
                       now=booking.start_at + used)


def entries_of(session, booking_id: int) -> list[tuple[EntryKind, int]]:
    return [(kind, amount) for kind, amount in session.execute(
        sa.select(LedgerEntry.kind, LedgerEntry.amount_fen).where(LedgerEntry.booking_id == booking_id)
        .order_by(LedgerEntry.id))]


@pytest.mark.parametrize("sme_at_booking", [True, False])
def test_the_ratio_held_is_the_ratio_consumed_when_the_sme_flag_changes_before_completion(
        session, demo_user, issue_voucher, instrument, monday_at, sme_at_booking):
    enterprise = enterprise_of(demo_user("enterprise"))
    enterprise.is_tech_sme = sme_at_booking
    voucher = issue_voucher("enterprise", amount_fen=100_000_00)  # 70 % for a tech SME, 50 % for the others
    booking = book_and_confirm(session, demo_user, voucher, instrument, monday_at(9, weeks=-1))
    held = 56_000 if sme_at_booking else 40_000  # of ¥800.00 booked
    assert (booking.price_fen, booking.voucher_fen) == (80_000, held)
    enterprise.is_tech_sme = not sme_at_booking  # the bureau changes the flag before the service is done
    session.flush()
    serve(session, demo_user, booking, used=timedelta(minutes=90))  # ¥600.00 on the actual time
    consumed = 42_000 if sme_at_booking else 30_000  # the ratio held, not the enterprise's new one
    assert (booking.final_price_fen, booking.final_voucher_fen) == (60_000, consumed)
    assert entries_of(session, booking.id) == [(EntryKind.HOLD, held), (EntryKind.CONSUME, consumed),
                                               (EntryKind.RELEASE, held - consumed)]
    assert (voucher.held_fen, voucher.consumed_fen, voucher.balance_fen) == (0, consumed, 100_000_00 - consumed)
    use = session.scalar(sa.select(VoucherUse).where(VoucherUse.booking_id == booking.id))
    assert (use.ratio_bp, use.price_fen, use.final_price_fen) == (7_000 if sme_at_booking else 5_000, 80_000, 60_000)
    assert voucher.id not in ledger.mismatched_vouchers(session)


def test_a_voucher_use_keeps_what_the_marketplace_told_at_each_step(session, demo_user, issue_voucher, instrument,
                                                                     monday_at):
    enterprise_of(demo_user("enterprise")).is_tech_sme = False
    voucher = issue_voucher("enterprise", amount_fen=100_000_00)
    start = monday_at(9, weeks=-1)
    booking = book_and_confirm(session, demo_user, voucher, instrument, start)
    use = session.scalar(sa.select(VoucherUse).where(VoucherUse.booking_id == booking.id))
    assert (use.voucher_id, use.platform_id, use.instrument_name_zh, use.instrument_name_en, use.asset_number,
            use.category_code, use.start_at, use.end_at) == (
        voucher.id, instrument.platform_id, instrument.name_zh, instrument.name_en, instrument.asset_number,
        "0101", start, start + timedelta(hours=2))
    assert (use.is_paid, use.completed_at, use.checked_in_at) == (True, None, None)  # the transfer was recorded
    serve(session, demo_user, booking, used=timedelta(hours=2))
    session.refresh(use)
    assert (use.checked_in_at, use.checked_out_at, use.completed_at) == (start, booking.checked_out_at,
                                                                         booking.checked_out_at)


def test_an_enterprise_reimbursed_use_is_claimable_only_while_the_booking_is_paid(
        session, demo_user, issue_voucher, create_programme, instrument, monday_at):
    """Used longer than booked, the enterprise owes a difference: not paid, so nothing to claim back."""
    enterprise = enterprise_of(demo_user("enterprise"))
    enterprise.is_tech_sme = False
    voucher = issue_voucher("enterprise", amount_fen=100_000_00,
                            programme=create_programme(redemption_mode=RedemptionMode.ENTERPRISE))
    paid = book_and_confirm(session, demo_user, voucher, instrument, monday_at(9, weeks=-1))
    owing = book_and_confirm(session, demo_user, voucher, instrument, monday_at(14, weeks=-1), hours=1)
    serve(session, demo_user, paid, used=timedelta(hours=2))
    serve(session, demo_user, owing, used=timedelta(hours=2))  # an hour more than booked and paid
    assert (paid.payment_state, owing.payment_state) == (PaymentState.PAID, PaymentState.DUE)
    uses = claims.unclaimed_uses(session, ClaimKind.ENTERPRISE, enterprise.id)
    assert [(u.booking_id, u.amount_fen) for u in uses] == [(paid.id, 40_000)]


def _migration(revision: str):
    [path] = (ROOT / "migrations" / "versions").glob(f"*_{revision}_*.py")
    spec = importlib.util.spec_from_file_location(f"migration_{revision}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migrations_backfill_writes_the_uses_the_services_write(session, demo_user, issue_voucher, instrument,
                                                                     monday_at):
    enterprise_of(demo_user("enterprise")).is_tech_sme = True
    voucher = issue_voucher("enterprise", amount_fen=100_000_00)
    served = book_and_confirm(session, demo_user, voucher, instrument, monday_at(9, weeks=-1))
    serve(session, demo_user, served, used=timedelta(minutes=90))
    book_and_confirm(session, demo_user, voucher, instrument, monday_at(14, weeks=-1))  # held, not served yet
    session.flush()
    columns = [c for c in VoucherUse.__table__.columns if c.name != "id"]

    def uses() -> list[tuple]:
        return [tuple(row) for row in session.execute(sa.select(*columns).order_by(VoucherUse.booking_id))]

    written = uses()
    assert len(written) == 2
    session.execute(sa.delete(VoucherUse))
    session.execute(_migration("a4c2e81f9d03").BACKFILL)
    assert uses() == written


# --- what vouchers may read ---------------------------------------------------------------------

def _owned_tables() -> set[str]:
    return {table.name for table in db.metadata.tables.values()
            if any(mapper.class_.__module__.startswith("vouchers.") and mapper.local_table is table
                   for mapper in db.Model.registry.mappers)}


def _foreign_state_values() -> set[str]:
    """The values of the booking and payment states that no voucher enum shares."""
    from marketplace.booking.models import BookingState as Booking
    from marketplace.payments.models import PaymentState as Payment
    from vouchers import models

    ours = {member.value for name in dir(models) if isinstance(enum := getattr(models, name), type)
            and issubclass(enum, models.StrEnum) and enum is not models.StrEnum for member in enum}
    return {state.value for state in (*Booking, *Payment)} - ours


def test_vouchers_read_only_their_own_tables_import_no_higher_package_and_state_no_booking_state(app):
    owned = _owned_tables()
    others = {name for name in db.metadata.tables if name not in owned}
    states = _foreign_state_values()
    assert {"voucher_ledger_entries", "voucher_uses"} <= owned and {"bookings", "payments", "instruments"} <= others
    found = []
    for path in sorted(VOUCHERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{where} imports {m}" for m in modules if m.split(".")[0] in HIGHER_PACKAGES]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                    "table", "text", "Table"):
                for argument in node.args[:1]:
                    text = argument.value if isinstance(argument, ast.Constant) and isinstance(argument.value, str) \
                        else ""
                    words = set(text.replace("(", " ").replace(",", " ").split())
                    found += [f"{where} names the table {name}" for name in sorted(words & others)]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in states:
                found.append(f"{where} states {node.value!r}")
    assert found == []
