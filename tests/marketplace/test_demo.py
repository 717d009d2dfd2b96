"""The whole demo district loads on both databases, and loading it again adds nothing."""
from __future__ import annotations

from pathlib import Path

import flask_migrate
from PIL import Image
from sqlalchemy import func, select

from config import TestingConfig
from core.app import create_app
from core.clock import to_local
from core.db import utcnow
from core.demo import load
from core.extensions import db
from core.models import Role, User
from marketplace.booking.models import (
    ACTIVE_BOOKING_STATES,
    Booking,
    BookingRules,
    BookingSeries,
    BookingState,
    MaintenanceWindow,
    Qualification,
    ServiceTerms,
    WaitlistEntry,
)
from marketplace.booking.services import find_overlapping_use
from marketplace.catalogue.models import CatalogueRelease
from marketplace.demo import FIRST_RELEASE, IN_REVIEW, INSTRUMENTS, PHOTOS, SERIES_WEEKS, VOUCHER_STORY
from marketplace.payments.models import Payment, PaymentMethod, PaymentState, PaymentStatus
from marketplace.registry.models import Instrument, InstrumentPhoto, InstrumentState
from marketplace.registry.services import photo_path
from vouchers import ledger
from vouchers import services as voucher_services
from vouchers.demo import APPLICATIONS, programme_name
from vouchers.models import (
    Application,
    ApplicationState,
    Claim,
    ClaimState,
    EntryKind,
    LedgerEntry,
    Programme,
    RelatedParty,
    Voucher,
    VoucherUse,
)


def test_demo_district_with_instruments_and_bookings_loads_once(db_kind, new_database, tmp_path):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=new_database(db_kind, "kequip_demo"),
                     UPLOAD_DIR=str(tmp_path))
    with app.app_context():
        flask_migrate.upgrade()
        assert load(everything=True) > len(INSTRUMENTS)
        counts = {model: db.session.scalar(select(func.count()).select_from(model))
                  for model in (Booking, Payment, WaitlistEntry, MaintenanceWindow, Qualification, BookingRules,
                                Programme, Application, Voucher, LedgerEntry, Claim, RelatedParty)}
        assert load(everything=True) == 0
        assert counts == {model: db.session.scalar(select(func.count()).select_from(model)) for model in counts}
        _check_instruments()
        _check_photos(tmp_path)
        _check_bookings()
        _check_vouchers()
        db.session.remove()
        db.engine.dispose()


def _check_instruments() -> None:
    states = dict(db.session.execute(select(Instrument.state, func.count()).group_by(Instrument.state)).all())
    assert states[InstrumentState.SUBMITTED] == len(IN_REVIEW) and states[InstrumentState.RETIRED] == 1
    first, second = db.session.scalars(select(CatalogueRelease).order_by(CatalogueRelease.number)).all()
    assert first.added_count == first.instrument_count > 30
    assert (second.added_count, second.changed_count, second.withdrawn_count) == (
        len(INSTRUMENTS) - FIRST_RELEASE - 1, 1, 1)
    assert sum(states.values()) == len(INSTRUMENTS) >= 60
    values = db.session.scalars(select(Instrument.original_value_fen)).all()
    assert min(values) >= 80_000_00 and max(values) <= 12_000_000_00
    categories = db.session.scalar(select(func.count(func.distinct(Instrument.category_id))))
    assert categories >= 25


def _check_photos(upload_dir: Path) -> None:
    """Every demo instrument has its category's drawn photo, stored as an upload is, a few KB each."""
    photos = db.session.scalars(select(InstrumentPhoto)).all()
    assert len(photos) == len(INSTRUMENTS) == len({p.instrument_id for p in photos})
    for photo in photos:
        stored = photo_path(upload_dir, photo.stored_name)
        assert 1_000 < stored.stat().st_size < 20_000
        with Image.open(stored) as image:
            assert (image.format, image.size) == ("JPEG", (photo.width, photo.height)) == ("JPEG", (480, 360))
    assert len(list(PHOTOS.glob("*.jpg"))) == len({row[0] for row in INSTRUMENTS})


def _check_bookings() -> None:
    session = db.session
    states = dict(session.execute(select(Booking.state, func.count()).group_by(Booking.state)).all())
    assert set(states) == set(BookingState) and sum(states.values()) > 150
    assert find_overlapping_use(session) == []
    every = session.scalars(select(Booking)).all()
    assert len({b.instrument_id for b in every}) >= 8 and len({b.booker_id for b in every}) >= 5
    for booking in every:
        hours_fen = (booking.hourly_rate_fen * (booking.end_at - booking.start_at).total_seconds() // 60 + 30) // 60
        assert booking.price_fen == booking.setup_fee_fen + hours_fen == booking.payable_fen + booking.voucher_fen > 0
        assert booking.instrument.fee(booking.user_type) == (booking.setup_fee_fen, booking.hourly_rate_fen)
        paid = booking.state in (BookingState.CONFIRMED, BookingState.IN_PROGRESS, BookingState.COMPLETED,
                                 BookingState.NO_SHOW)
        assert (booking.payment_state == PaymentState.PAID) == paid, booking
        if paid:
            (payment,) = booking.payments
            assert (payment.method, payment.status, payment.amount_fen, booking.payment_method) == (
                PaymentMethod.TRANSFER, PaymentStatus.TRANSFER_RECEIVED, booking.payable_fen, PaymentMethod.TRANSFER)
        else:
            assert booking.payments == []
        if booking.state == BookingState.COMPLETED:
            assert booking.final_price_fen == booking.price_fen and booking.checked_in_at < booking.checked_out_at
            assert booking.final_voucher_fen == (booking.voucher_fen if booking.voucher_id else None)
        if booking.state == BookingState.NO_SHOW:
            assert booking.cancellation_fee_fen == booking.payable_fen  # a voucher never pays a fee
    now = utcnow()  # the load ran a moment ago
    assert all(b.end_at <= now for b in every if b.state in (BookingState.COMPLETED, BookingState.NO_SHOW,
                                                             BookingState.EXPIRED))
    assert all(b.start_at > now for b in every if b.state in (BookingState.REQUESTED, BookingState.APPROVED))
    (in_progress,) = [b for b in every if b.state == BookingState.IN_PROGRESS]
    assert in_progress.checked_in_at is not None and in_progress.end_at > now
    series = session.scalar(select(BookingSeries))
    occurrences = [b for b in every if b.series_id == series.id]
    assert len(occurrences) + len(series.skipped) == series.count == SERIES_WEEKS
    assert {b.state for b in occurrences} >= {BookingState.COMPLETED, BookingState.CONFIRMED, BookingState.CANCELLED}
    own_terms = session.scalars(select(ServiceTerms).where(ServiceTerms.platform_id.is_not(None))).all()
    assert sorted(t.version for t in own_terms) == [1, 2]
    assert {b.terms.version for b in every if b.terms.platform_id is not None} == {1, 2}
    assert session.scalar(select(func.count()).select_from(BookingRules)) == 4  # the district's and three own
    assert any(b.block_end_at > b.end_at for b in every) and any(b.needs_operator for b in every)
    assert any((b.end_at - b.start_at).total_seconds() > 12 * 3600 for b in every)  # overnight
    waiting = session.scalars(select(WaitlistEntry)).all()
    assert len(waiting) == 3
    assert not [b for b in every if b.state in ACTIVE_BOOKING_STATES for w in session.scalars(
        select(MaintenanceWindow).where(MaintenanceWindow.instrument_id == b.instrument_id))
                if w.start_at < b.block_end_at and b.start_at < w.end_at]


def _check_vouchers() -> None:
    """This year's programme, open now; approved, rejected and waiting applications; vouchers partly spent,
    each equal to its ledger; a claim paid and one awaiting review; enterprise@kequip.test's voucher to try."""
    session, now = db.session, utcnow()
    (programme,) = session.scalars(select(Programme)).all()
    assert programme.name == programme_name(programme.year) and programme.is_open_for_applications(
        to_local(now).date())
    states = dict(session.execute(select(Application.state, func.count()).group_by(Application.state)).all())
    assert states == {ApplicationState.APPROVED: 4, ApplicationState.REJECTED: 1, ApplicationState.SUBMITTED: 2}
    assert sum(states.values()) == len(APPLICATIONS)
    vouchers = session.scalars(select(Voucher)).all()
    assert programme.issued_fen == sum(v.amount_fen for v in vouchers) == sum(
        yuan * 100 for *_before, yuan, _purpose, _planned, _days in APPLICATIONS if isinstance(yuan, int))
    assert ledger.mismatched_vouchers(session) == []
    for voucher in vouchers:
        totals = ledger.ledger_totals(session, voucher.id)
        assert (voucher.balance_fen, voucher.held_fen, voucher.consumed_fen, voucher.redeemed_fen) == (
            totals.balance_fen, totals.held_fen, totals.consumed_fen, totals.redeemed_fen)
        assert 0 < voucher.consumed_fen and 0 < voucher.balance_fen < voucher.amount_fen  # partly spent
    assert sum(v.held_fen for v in vouchers) > 0 and sum(v.redeemed_fen for v in vouchers) > 0
    kinds = set(session.scalars(select(LedgerEntry.kind).distinct()))
    assert kinds == {EntryKind.ISSUE, EntryKind.HOLD, EntryKind.RELEASE, EntryKind.CONSUME, EntryKind.REDEEM}

    with_voucher = session.scalars(select(Booking).where(Booking.voucher_id.is_not(None))).all()
    assert len(with_voucher) == len(VOUCHER_STORY)
    assert {b.state for b in with_voucher} == {item.state for item in VOUCHER_STORY}
    for booking in with_voucher:
        assert 0 < booking.voucher_fen < booking.price_fen and booking.payable_fen == booking.price_fen - booking.voucher_fen
        _voucher_id, held = ledger.held_for_booking(session, booking.id)
        assert held == (booking.voucher_fen if booking.state in (BookingState.REQUESTED, BookingState.CONFIRMED)
                        else 0)
        use = session.scalar(select(VoucherUse).where(VoucherUse.booking_id == booking.id))  # what vouchers read
        assert (use.voucher_id, use.platform_id, use.start_at, use.price_fen, use.instrument_name_zh) == (
            booking.voucher_id, booking.instrument.platform_id, booking.start_at, booking.price_fen,
            booking.instrument.name_zh)
        assert use.completed_at == (booking.checked_out_at if booking.state == BookingState.COMPLETED else None)
        assert use.final_price_fen == booking.final_price_fen

    claims = session.scalars(select(Claim).order_by(Claim.id)).all()
    assert [c.state for c in claims] == [ClaimState.PAID, ClaimState.SUBMITTED]
    assert all(c.total_fen == sum(line.amount_fen for line in c.lines) > 0 and len(c.lines) == 3 for c in claims)
    redeemed = session.scalar(select(func.sum(LedgerEntry.amount_fen)).where(LedgerEntry.kind == EntryKind.REDEEM))
    assert redeemed == claims[0].total_fen
    claimed = {line.booking_id for c in claims for line in c.lines}
    done = {b.id for b in with_voucher if b.state == BookingState.COMPLETED}
    assert claimed < done and len(done - claimed) == 1  # the biomedicine centre has not claimed yet

    member = session.scalar(select(User).where(User.email == "enterprise@kequip.test"))
    (usable,) = voucher_services.usable_vouchers(session, min(member.organisation_ids(Role.ENTERPRISE_MEMBER)),
                                                 now=now)
    assert usable.balance_fen > usable.amount_fen // 2
    assert session.scalar(select(func.count()).select_from(RelatedParty)) == 1
