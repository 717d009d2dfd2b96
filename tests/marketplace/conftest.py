"""Factories for the marketplace's tests."""
from __future__ import annotations

import itertools

import pytest
import requests

from config import TestingConfig
from core.audit import Actor
from core.db import utcnow
from core.models import Platform
from marketplace.payments.gateway import StripeClient
from marketplace.registry import services
from marketplace.registry.models import Instrument, InstrumentState

_serial = itertools.count(1)


def instrument_values(session, **changes) -> dict:
    n = next(_serial)
    return {"asset_number": f"KQ-T-{n:05d}", "name_zh": "液相色谱-质谱联用仪", "name_en": "LC-MS/MS",
            "model": "TSQ Altis Plus", "manufacturer": "Thermo Fisher Scientific", "country_of_origin": "美国",
            "category_id": services.category_by_code(session, "0101").id, "original_value_fen": 320_000_000,
            "is_publicly_funded": True, "building": "A 楼", "room": "301", "description": "三重四极杆质谱",
            "capabilities": ["农药残留检测", "药物代谢物定量"], "sample_requirements": "液体样品 1 mL",
            "contact_name": "陈老师", "contact_phone": "0575-88880000", "contact_email": "lab@example.com",
            "sharing_mode": "open", "setup_fee_own_staff_fen": 0, "hourly_rate_own_staff_fen": 20_000,
            "setup_fee_district_enterprise_fen": 10_000, "hourly_rate_district_enterprise_fen": 40_000,
            "setup_fee_other_fen": 20_000, "hourly_rate_other_fen": 60_000} | changes


@pytest.fixture
def create_instrument(session, demo_user):
    """create_instrument(state=…, **values): an instrument of the demo platform, moved to that state
    through the real services."""

    def make(state: InstrumentState = InstrumentState.DRAFT, platform: Platform | None = None, **changes) -> Instrument:
        admin, bureau = demo_user("platform"), demo_user("bureau")
        platform = platform or session.get(Platform, admin.grants[0].organisation_id)
        actor = Actor.of(admin, "127.0.0.1")
        instrument = services.create_instrument(session, platform, admin, actor=actor,
                                                values=instrument_values(session, **changes), now=utcnow())
        if state == InstrumentState.DRAFT:
            return instrument
        services.submit_instrument(session, instrument, admin, actor=actor, now=utcnow())
        if state == InstrumentState.REJECTED:
            services.reject_instrument(session, instrument, bureau, actor=Actor.of(bureau, None), reason="资料不全")
        elif state != InstrumentState.SUBMITTED:
            services.publish_instrument(session, instrument, bureau, actor=Actor.of(bureau, None), now=utcnow())
            if state == InstrumentState.MAINTENANCE:
                services.set_maintenance(session, instrument, admin, actor=actor, on=True)
            elif state == InstrumentState.RETIRED:
                services.retire_instrument(session, instrument, admin, actor=actor)
        return instrument

    return make


@pytest.fixture
def monday_at():
    """monday_at(hour, minute=0, weeks=1): an aware UTC instant at that Asia/Shanghai wall-clock time on
    the Monday `weeks` weeks after this week's: bookable under the district's default rules."""
    from datetime import datetime, time, timedelta

    from core.clock import LOCAL_ZONE, to_local

    this_monday = to_local(utcnow()).date() - timedelta(days=to_local(utcnow()).weekday())

    def make(hour: int, minute: int = 0, weeks: int = 1, days: int = 0):
        day = this_monday + timedelta(weeks=weeks, days=days)
        return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_ZONE).astimezone(utcnow().tzinfo)

    return make


@pytest.fixture
def free_instrument(create_instrument):
    """A published instrument with no fees: bookings of it are confirmed without payment."""
    zero = {name: 0 for name in services.FEE_FIELDS}
    return create_instrument(state=InstrumentState.PUBLISHED, **zero)


@pytest.fixture
def book(session, demo_user):
    """book(instrument, start, end, user="enterprise", now=None, **kw) → Booking, through bookings.book_instrument."""
    from marketplace.booking import services as bookings

    def make(instrument, start_at, end_at, user="enterprise", now=None, **kwargs):
        person = demo_user(user) if isinstance(user, str) else user
        kwargs.setdefault("purpose", "纤维成分分析")
        return bookings.book_instrument(session, actor=Actor.of(person, "127.0.0.1"), user=person,
                                        instrument_id=instrument.id, start_at=start_at, end_at=end_at,
                                        now=now or utcnow(), **kwargs)

    return make


@pytest.fixture
def own_rules(session):
    """own_rules(instrument, **changes): the instrument gets its own booking rules, the district's with changes."""
    from marketplace.booking.availability import effective_rules
    from marketplace.booking.models import BookingRules

    def make(instrument, **changes) -> BookingRules:
        district = effective_rules(session, instrument)
        values = {c.key: getattr(district, c.key) for c in BookingRules.__table__.columns
                  if c.key not in ("id", "instrument_id", "updated_at", "updated_by_id")}
        rules = BookingRules(instrument_id=instrument.id, **(values | changes))
        session.add(rules)
        session.flush()
        return rules

    return make


@pytest.fixture
def stripe(stripe_server) -> StripeClient:
    """The test's own view of the payment gateway."""
    return StripeClient(stripe_server.url, TestingConfig.STRIPE_SECRET_KEY, timeout=10)


@pytest.fixture
def card(stripe_server):
    """card(number) → the card id that the page's Stripe.js stand-in makes of what a person types
    (a token made with the publishable key, as in the browser)."""

    def make(number: str = "4242424242424242") -> str:
        response = requests.post(f"{stripe_server.url}/v1/tokens", timeout=10, data={
            "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123",
            "key": TestingConfig.STRIPE_PUBLISHABLE_KEY})
        return response.json()["card"]["id"]

    return make
