"""Free and busy time: the interval arithmetic on sorted lists (merged, subtracted), checked against the
`portion` library, and compute_availability on open hours, buffers, maintenance, midnight, holidays and
a week of nearly two hundred bookings."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import portion
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.clock import LOCAL_ZONE
from marketplace.booking.availability import compute_availability, merged, subtracted
from marketplace.booking.models import MaintenanceWindow

T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def periods(*pairs: tuple[int, int]) -> list[tuple[datetime, datetime]]:
    return [(at(lower), at(upper)) for lower, upper in pairs]


def local(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_ZONE).astimezone(timezone.utc)


# --- merged and subtracted -------------------------------------------------------------------------

def test_merged_joins_touching_and_overlapping_periods_and_drops_empty_ones():
    assert merged(periods((60, 90), (0, 30), (30, 45), (40, 50), (90, 120), (200, 200), (150, 140))) == \
        periods((0, 50), (60, 120))
    assert merged(periods((0, 100), (10, 20), (30, 40))) == periods((0, 100))  # inside another
    assert merged([]) == []


def test_subtracted_leaves_what_nothing_takes():
    open_time = periods((0, 100), (200, 300))
    assert subtracted(open_time, []) == open_time
    assert subtracted(open_time, periods((0, 100), (200, 300))) == []  # exactly taken: nothing empty left
    assert subtracted(open_time, periods((-50, 10), (90, 210), (250, 260), (290, 400))) == \
        periods((10, 90), (210, 250), (260, 290))  # one taken period across two open ones
    assert subtracted(open_time, periods((100, 200))) == open_time  # touching at the edges takes nothing
    assert subtracted(open_time, periods((10, 20), (20, 30))) == periods((0, 10), (30, 100), (200, 300))
    assert subtracted([], periods((0, 10))) == []


_PAIRS = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=30)


def _portion(pairs: list[tuple[datetime, datetime]]) -> portion.Interval:
    return portion.Interval(*(portion.closedopen(lower, upper) for lower, upper in pairs if lower < upper))


def _as_pairs(interval: portion.Interval) -> list[tuple[datetime, datetime]]:
    return [(atomic.lower, atomic.upper) for atomic in interval if not atomic.empty]


@given(_PAIRS, _PAIRS)
def test_merged_and_subtracted_agree_with_the_portion_library(first, second):
    ours, theirs = periods(*first), periods(*second)
    assert merged(ours) == _as_pairs(_portion(ours))
    assert subtracted(merged(ours), merged(theirs)) == _as_pairs(_portion(ours) - _portion(theirs))


# --- compute_availability ----------------------------------------------------------------------------

ROUND_THE_CLOCK = {str(weekday): [["00:00", "24:00"]] for weekday in range(7)}


def test_open_hours_buffers_and_maintenance(session, free_instrument, book, own_rules, monday_at):
    own_rules(free_instrument, buffer_minutes=30)
    book(free_instrument, monday_at(9), monday_at(10))
    book(free_instrument, monday_at(10, 30), monday_at(11))  # right after the first one's buffer: one busy time
    session.add(MaintenanceWindow(instrument_id=free_instrument.id, start_at=monday_at(11, 30),
                                  end_at=monday_at(14)))  # over the lunch break
    session.flush()
    found = compute_availability(session, free_instrument, monday_at(0), monday_at(0, days=1))
    assert found.busy == [(monday_at(9), monday_at(14))]  # touching: merged
    assert found.free == [(monday_at(8, 30), monday_at(9)), (monday_at(14), monday_at(17, 30))]


def test_a_range_cutting_through_bookings_and_open_hours_is_clipped(session, free_instrument, book, monday_at):
    book(free_instrument, monday_at(9), monday_at(11))
    found = compute_availability(session, free_instrument, monday_at(10), monday_at(14))
    assert found.busy == [(monday_at(10), monday_at(11))]
    assert found.free == [(monday_at(11), monday_at(12)), (monday_at(13, 30), monday_at(14))]


def test_round_the_clock_time_runs_across_midnight(session, free_instrument, book, own_rules, monday_at):
    own_rules(free_instrument, open_hours=ROUND_THE_CLOCK, closed_on_holidays=False, allows_overnight=True)
    book(free_instrument, monday_at(23), monday_at(1, days=1))
    found = compute_availability(session, free_instrument, monday_at(0), monday_at(0, days=3))
    assert found.busy == [(monday_at(23), monday_at(1, days=1))]
    # the days' open hours touch at midnight: free time is one period on each side of the booking
    assert found.free == [(monday_at(0), monday_at(23)), (monday_at(1, days=1), monday_at(0, days=3))]


def test_closed_on_a_public_holiday_open_on_a_make_up_working_day(session, free_instrument):
    # 2026-10-01 (Thursday) to 10-07: National Day; Saturday 10-10 is worked in lieu with a Monday's hours
    found = compute_availability(session, free_instrument, local(2026, 9, 30, 0), local(2026, 10, 11, 0))
    assert found.busy == []
    assert found.free == [(local(2026, 9, 30, 8, 30), local(2026, 9, 30, 12)),
                          (local(2026, 9, 30, 13, 30), local(2026, 9, 30, 17, 30)),
                          (local(2026, 10, 8, 8, 30), local(2026, 10, 8, 12)),
                          (local(2026, 10, 8, 13, 30), local(2026, 10, 8, 17, 30)),
                          (local(2026, 10, 9, 8, 30), local(2026, 10, 9, 12)),
                          (local(2026, 10, 9, 13, 30), local(2026, 10, 9, 17, 30)),
                          (local(2026, 10, 10, 8, 30), local(2026, 10, 10, 12)),
                          (local(2026, 10, 10, 13, 30), local(2026, 10, 10, 17, 30))]
    assert date(2026, 10, 10).weekday() == 5


def test_a_busy_week_of_194_bookings(session, free_instrument, book, own_rules, monday_at):
    """30 minutes every 52 minutes, round the clock: a free time between each two bookings."""
    own_rules(free_instrument, open_hours=ROUND_THE_CLOCK, closed_on_holidays=False, allows_overnight=True,
              slot_minutes=2, lead_minutes=0)
    week = monday_at(0)
    starts = [week + timedelta(minutes=52 * n) for n in range(194)]
    for start in starts:
        book(free_instrument, start, start + timedelta(minutes=30))
    found = compute_availability(session, free_instrument, week, week + timedelta(weeks=1))
    assert found.busy == [(start, start + timedelta(minutes=30)) for start in starts]
    assert found.free == [(start + timedelta(minutes=30), start + timedelta(minutes=52)) for start in starts[:-1]] \
        + [(starts[-1] + timedelta(minutes=30), week + timedelta(weeks=1))]


@pytest.mark.parametrize("hour", [8, 12])
def test_a_range_outside_the_open_hours_is_neither_free_nor_busy(session, free_instrument, monday_at, hour):
    found = compute_availability(session, free_instrument, monday_at(hour), monday_at(hour, 30))
    assert found.free == [] and found.busy == []
