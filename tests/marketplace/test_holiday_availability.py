"""Booking and the catalogue's free-time filter across the year boundary into 2027, a year the seeded
holiday data does not know: its computed statutory holidays are closed until the bureau enters the
arrangement, which then decides (its make-up working day opens with a Monday's hours)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import LOCAL_ZONE
from core.errors import RuleBroken
from core.holidays import import_arrangement, read_arrangement
from marketplace.booking.availability import compute_availability
from marketplace.catalogue.services import free_between
from marketplace.registry.models import Instrument

NOW = datetime(2026, 12, 20, 9, tzinfo=LOCAL_ZONE).astimezone(timezone.utc)  # 2027-03-20 is within 90 days
SPRING_FESTIVAL_2027 = [date(2027, 2, 5), date(2027, 2, 8)]  # 除夕 (Friday) and 初三 (Monday): weekdays
ARRANGEMENT_2027 = """2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-20,makeup_workday,春节
"""


def local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_ZONE).astimezone(timezone.utc)


def refusal(book, instrument, day: date) -> str | None:
    try:
        book(instrument, local(day, 9), local(day, 10), now=NOW)
    except RuleBroken as error:
        return error.code
    return None


def free_days(session, instrument, first: date, last: date) -> set[date]:
    free = compute_availability(session, instrument, local(first, 0), local(last + timedelta(days=1), 0)).free
    return {start.astimezone(LOCAL_ZONE).date() for start, _end in free}


def listed_free(session, instrument, day: date) -> bool:
    """Whether the catalogue's "free between" filter keeps the instrument for 09:00-10:00 of that day."""
    ids = session.scalars(select(Instrument.id).where(*free_between(session, local(day, 9), local(day, 10))))
    return instrument.id in set(ids)


def enter_arrangement(session) -> None:
    import_arrangement(session, 2027, read_arrangement(ARRANGEMENT_2027, year=2027), actor=Actor.system("test"),
                       now=NOW)
    session.commit()  # a savepoint here: the kept calendar is forgotten on commit


@pytest.mark.parametrize("day", [date(2027, 1, 1), *SPRING_FESTIVAL_2027])
def test_without_an_arrangement_the_computed_holidays_of_2027_are_refused_and_not_free(session, free_instrument,
                                                                                       book, day):
    assert refusal(book, free_instrument, day) == "holiday"
    assert day not in free_days(session, free_instrument, day - timedelta(days=1), day)
    assert not listed_free(session, free_instrument, day)


def test_the_year_boundary_2026_12_31_is_open_and_2027_01_01_is_closed(session, free_instrument, book):
    assert free_days(session, free_instrument, date(2026, 12, 30), date(2027, 1, 4)) == \
        {date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 4)}
    assert listed_free(session, free_instrument, date(2026, 12, 31))
    assert not listed_free(session, free_instrument, date(2027, 1, 1))
    assert book(free_instrument, local(date(2026, 12, 31), 9), local(date(2026, 12, 31), 10), now=NOW).id
    assert refusal(book, free_instrument, date(2027, 1, 1)) == "holiday"


def test_the_entered_arrangement_decides_and_opens_its_make_up_working_day(session, free_instrument, book):
    saturday = date(2027, 2, 20)
    assert refusal(book, free_instrument, saturday) is not None  # a weekend day: closed by the weekly hours
    enter_arrangement(session)
    assert refusal(book, free_instrument, date(2027, 1, 1)) == "holiday"
    assert refusal(book, free_instrument, date(2027, 2, 10)) == "holiday"  # a Wednesday of the arrangement
    assert listed_free(session, free_instrument, date(2027, 2, 5))  # 除夕: not a holiday of this arrangement
    assert listed_free(session, free_instrument, saturday) and saturday in free_days(
        session, free_instrument, saturday, saturday)
    assert book(free_instrument, local(saturday, 9), local(saturday, 10), now=NOW).id
    assert book(free_instrument, local(date(2027, 2, 5), 9), local(date(2027, 2, 5), 10), now=NOW).id
