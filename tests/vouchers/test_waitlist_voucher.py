"""The waitlist's offer panel lets its holder pay with an innovation voucher, as the booking form does:
the voucher's part is held for the booking the offer makes, and a voucher that cannot pay says why."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.audit import Actor
from core.db import utcnow
from marketplace.booking import jobs
from marketplace.booking import services as bookings
from marketplace.booking.models import WaitlistEntry, WaitlistState
from marketplace.registry.models import InstrumentState
from tests.marketplace.booking_fixtures import workday_at
from vouchers.models import VoucherState


def test_the_offer_panel_offers_the_vouchers_and_the_accepted_booking_is_paid_by_the_chosen_one(
        session, login_as, create_instrument, issue_voucher, demo_user):
    instrument = create_instrument(state=InstrumentState.PUBLISHED)  # ¥100.00 + ¥400.00 an hour for enterprises
    voucher = issue_voucher("enterprise", amount_fen=20_000_00)
    assert voucher.state == VoucherState.ACTIVE
    start = workday_at(9, days=3)
    end = start + timedelta(hours=1)
    operator = demo_user("operator")
    taken = bookings.book_instrument(session, actor=Actor.of(operator, None), user=operator,
                                     instrument_id=instrument.id, start_at=start, end_at=end, now=utcnow())
    client = login_as("enterprise")
    assert client.post("/waitlist", data={"instrument_id": instrument.id, "start": start.isoformat(),
                                          "end": end.isoformat()}).status_code == 302
    bookings.cancel_booking(session, taken, actor=Actor.of(operator, None), user=operator, now=utcnow())
    assert jobs.offer_waitlist_slots(now=utcnow()) == 1
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.instrument_id == instrument.id))

    panel = client.get("/waitlist/mine").get_data(as_text=True)
    assert 'data-testid="offer-voucher"' in panel and f'<option value="{voucher.id}">{voucher.serial}' in panel
    terms = bookings.current_terms(session, instrument.platform_id)
    refused = client.post(f"/waitlist/{entry.id}/accept", data={"terms_id": terms.id, "accept_terms": "y",
                                                                 "voucher_id": 99_999_999}, follow_redirects=True)
    session.expire_all()
    assert refused.status_code == 200 and entry.state == WaitlistState.OFFERED
    accepted = client.post(f"/waitlist/{entry.id}/accept", data={"terms_id": terms.id, "accept_terms": "y",
                                                                  "voucher_id": voucher.id})

    session.expire_all()
    assert accepted.status_code == 302 and entry.state == WaitlistState.BOOKED
    booking = entry.booking_id and session.get(type(taken), entry.booking_id)
    # 70 % of ¥500.00 (the programme's coverage of a tech SME, as the demo enterprise is); the enterprise pays the rest
    assert (booking.voucher_id, booking.price_fen, booking.voucher_fen, booking.payable_fen) == (
        voucher.id, 50_000, 35_000, 15_000)
