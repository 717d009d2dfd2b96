"""A busy week of one instrument, and the figure that asks for it: an instrument open around the clock
with BUSY_BOOKINGS bookings in the week after the generation's, 30 minutes every 52 minutes, as the
busiest tool of a large shared facility has them (ten times a hot district-L instrument's week). Its
availability answer is the longest the API gives for a week: 194 busy times and 194 free ones."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa

from bench.bookings import FREE_CANCEL_HOURS
from bench.figures import TIMEOUT, _expect
from bench.runner import Benchmark, Sample, Target
from core.clock import local_midnight, to_local

BUSY_BOOKINGS = 194
BOOKING_MINUTES, EVERY_MINUTES = 30, 52
ROUND_THE_CLOCK = {str(weekday): [["00:00", "24:00"]] for weekday in range(7)}


@dataclass(frozen=True)
class BusyWeek:
    """The instrument, and the week [start, end) its bookings fill."""

    instrument_id: int
    start: datetime
    end: datetime


def add_busy_instrument(engine: sa.Engine, *, now: datetime) -> BusyWeek:
    """A copy of the first published instrument, free of charge (nothing to pay), open around the clock
    every day with rules of its own, and BUSY_BOOKINGS confirmed bookings of a member of a verified
    enterprise in the week after `now`'s, written with Core inserts and committed."""
    from marketplace.booking.models import Booking, BookingRules
    from marketplace.registry.models import Instrument
    from marketplace.registry.services import FEE_FIELDS

    instruments = Instrument.__table__
    today = to_local(now).date()
    start = local_midnight(today - timedelta(days=today.weekday()) + timedelta(weeks=1))
    with engine.begin() as connection:
        template = connection.execute(sa.select(instruments).where(instruments.c.state == "published")
                                      .order_by(instruments.c.id).limit(1)).mappings().one()
        row = {name: value for name, value in template.items() if name != "id"}
        row |= {name: 0 for name in FEE_FIELDS}
        row |= {"name_zh": "高通量测序仪（繁忙）", "name_en": "High-throughput sequencer (busy)",
                "asset_number": "BUSY-WEEK-1"}
        instrument_id = connection.execute(sa.insert(instruments).returning(instruments.c.id), row).scalar_one()
        connection.execute(sa.insert(BookingRules.__table__), {
            "instrument_id": instrument_id, "open_hours": ROUND_THE_CLOCK, "closed_on_holidays": False,
            "allows_overnight": True, "updated_at": now})
        booker_id, enterprise_id = connection.execute(sa.text(
            "SELECT g.user_id, g.organisation_id FROM role_grants g JOIN enterprises e ON e.id = g.organisation_id "
            "WHERE g.role = 'enterprise_member' AND e.verification_state = 'verified' ORDER BY g.user_id LIMIT 1")).one()
        terms_id = connection.scalar(sa.text("SELECT min(id) FROM service_terms WHERE platform_id IS NULL"))
        bookings = []
        for number in range(BUSY_BOOKINGS):
            begins = start + timedelta(minutes=number * EVERY_MINUTES)
            ends = begins + timedelta(minutes=BOOKING_MINUTES)
            bookings.append({
                "instrument_id": instrument_id, "booker_id": booker_id, "enterprise_id": enterprise_id,
                "state": "confirmed", "start_at": begins, "end_at": ends, "block_end_at": ends,
                "purpose": "测序", "user_type": "district_enterprise", "needs_operator": False, "terms_id": terms_id,
                "setup_fee_fen": 0, "hourly_rate_fen": 0, "price_fen": 0, "voucher_fen": 0, "payable_fen": 0,
                "payment_method": "none", "payment_state": "not_due", "decided_at": now, "confirmed_at": now,
                "sequence": 2, "created_at": now, "updated_at": now,
                "free_cancel_until": begins - timedelta(hours=FREE_CANCEL_HOURS), "late_cancel_fee_fen": 0,
                "no_show_fee_fen": 0})  # the district's policy fixed on each booking: nothing to pay here
        connection.execute(sa.insert(Booking.__table__), bookings)
    return BusyWeek(instrument_id, start, start + timedelta(weeks=1))


def busy_week_api(target: Target) -> Sample:
    """Anonymous, one keep-alive session; timed: GET /api/v1/instruments/{id}/availability for the busy
    week, which must list every booking as busy time."""
    busy = target.dataset.busy_week
    _expect(busy is not None, "the data set has no busy week")
    url = f"{target.base_url}/api/v1/instruments/{busy.instrument_id}/availability"
    params = {"start": to_local(busy.start).isoformat(), "end": to_local(busy.end).isoformat()}
    session = requests.Session()

    def sample(_number: int) -> float:
        started = time.perf_counter()
        response = session.get(url, params=params, timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        _expect(response.status_code == 200, f"GET {url} answered {response.status_code}: {response.text[:200]}")
        busy_times = len(response.json()["busy"])
        _expect(busy_times == BUSY_BOOKINGS, f"GET {url}: {busy_times} busy times, not {BUSY_BOOKINGS}")
        return elapsed

    return sample


BENCHMARKS: list[Benchmark] = [
    Benchmark("GET …/availability (a busy week)", 10, busy_week_api,
              f"GET /api/v1/instruments/{{id}}/availability?start=…&end=… (anonymous) for next week of an instrument "
              f"open around the clock with {BUSY_BOOKINGS} bookings in it ({BOOKING_MINUTES} minutes every "
              f"{EVERY_MINUTES}, ten times a busy district-L week): {BUSY_BOOKINGS} busy and {BUSY_BOOKINGS} free "
              "times in the answer"),
]
