"""Paying a weekly series with a double (or quadruple) click, on committed data: one charge is made,
the other clicks wait for it or find nothing left to pay (SQLite and PostgreSQL, a real localstripe)."""
from __future__ import annotations

from functools import partial

import pytest
import sqlalchemy as sa

from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.extensions import db
from core.models import Platform
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking
from marketplace.payments.models import Payment, PaymentState
from marketplace.registry import services
from tests.marketplace.conftest import instrument_values
from tests.marketplace.test_payment_concurrency import at_once, user

pytestmark = pytest.mark.live

WEEK_FEN = 10_000 + 40_000  # the district enterprise's ¥100 setup fee and one hour at ¥400


def pay_series(series_id: int, card: str) -> None:
    enterprise = user(db.session, "enterprise")
    bookings.pay_series_by_card(series_id, actor=Actor.of(enterprise, None), user=enterprise, now=utcnow(), card=card)


def test_a_quadruple_click_on_paying_a_series_charges_once(live_app, monday_at, card, stripe):
    with live_app.app_context():
        with unit_of_work() as session:
            admin, bureau = user(session, "platform"), user(session, "bureau")
            platform = session.get(Platform, admin.grants[0].organisation_id)
            instrument = services.create_instrument(
                session, platform, admin, actor=Actor.system("test"), submit=True, now=utcnow(),
                values=instrument_values(session, name_zh="并发每周付款测试仪"))
            services.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
            enterprise = user(session, "enterprise")
            series, booked, _skipped = bookings.book_series(
                session, actor=Actor.of(enterprise, None), user=enterprise, instrument_id=instrument.id,
                start_at=monday_at(9), end_at=monday_at(10), weeks=3, now=utcnow())
            series_id, booking_ids = series.id, [b.id for b in booked]
        db.session.remove()

    outcomes = at_once(live_app, [partial(pay_series, series_id, card())] * 4)

    assert outcomes.count(200) == 1, outcomes
    assert set(outcomes) <= {200, (409, "payment_in_progress"), (422, "nothing_to_pay")}
    with live_app.app_context():
        parts = db.session.scalars(sa.select(Payment).where(Payment.booking_id.in_(booking_ids))).all()
        assert len(parts) == 3 and len({p.group_key for p in parts}) == 1
        assert [db.session.get(Booking, b).payment_state for b in booking_ids] == [PaymentState.PAID] * 3
        lead = db.session.get(Booking, min(booking_ids))  # the intent names the group's first booking
        intents = [i for i in stripe.intents() if i["metadata"] == {
            "booking_id": str(lead.id), "booked_at": lead.created_at.isoformat(), "idempotency_key": parts[0].group_key}]
        assert [(i["status"], i["amount"]) for i in intents] == [("succeeded", 3 * WEEK_FEN)]
        db.session.remove()
