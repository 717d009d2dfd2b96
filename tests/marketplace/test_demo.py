"""The whole demo district loads on both databases, and loading it again adds nothing."""
from __future__ import annotations

import flask_migrate
from sqlalchemy import func, select

from config import TestingConfig
from core.app import create_app
from core.db import utcnow
from core.demo import load
from core.extensions import db
from marketplace.bookings import count_active_overlaps
from marketplace.demo import FIRST_RELEASE, IN_REVIEW, INSTRUMENTS, SERIES_WEEKS
from marketplace.models import (ACTIVE_BOOKING_STATES, Booking, BookingRules, BookingSeries, BookingState,
                                CatalogueRelease, Instrument, InstrumentState, MaintenanceWindow, Payment,
                                PaymentMethod, PaymentState, PaymentStatus, Qualification, ServiceTerms,
                                WaitlistEntry)


def test_demo_district_with_instruments_and_bookings_loads_once(db_kind, new_database, tmp_path):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=new_database(db_kind, "kequip_demo"),
                     UPLOAD_DIR=str(tmp_path))
    with app.app_context():
        flask_migrate.upgrade()
        assert load(everything=True) > len(INSTRUMENTS)
        counts = {model: db.session.scalar(select(func.count()).select_from(model))
                  for model in (Booking, Payment, WaitlistEntry, MaintenanceWindow, Qualification, BookingRules)}
        assert load(everything=True) == 0
        assert counts == {model: db.session.scalar(select(func.count()).select_from(model)) for model in counts}
        _check_instruments()
        _check_bookings()
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


def _check_bookings() -> None:
    session = db.session
    states = dict(session.execute(select(Booking.state, func.count()).group_by(Booking.state)).all())
    assert set(states) == set(BookingState) and sum(states.values()) > 150
    assert count_active_overlaps(session) == 0
    every = session.scalars(select(Booking)).all()
    assert len({b.instrument_id for b in every}) >= 8 and len({b.booker_id for b in every}) >= 5
    for booking in every:
        hours_fen = (booking.hourly_rate_fen * (booking.end_at - booking.start_at).total_seconds() // 60 + 30) // 60
        assert booking.price_fen == booking.setup_fee_fen + hours_fen == booking.payable_fen > 0
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
        if booking.state == BookingState.NO_SHOW:
            assert booking.cancellation_fee_fen == booking.price_fen
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
