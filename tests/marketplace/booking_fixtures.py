"""Fixtures shared by the waitlist and booking-job tests: bookings made through the real service, at
working-day times relative to today."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from core.clock import LOCAL_ZONE, to_local
from core.db import utcnow
from core.holidays import DayKind, day_kind
from marketplace.registry import services
from marketplace.registry.models import InstrumentState


def workday_at(hour: int, minute: int = 0, *, days: int) -> datetime:
    """Aware UTC at that Asia/Shanghai time on an ordinary working day (Monday to Friday, no public
    holiday): the first one `days` days from today or later (earlier for a negative `days`), so that
    the district's default open hours apply."""
    step = timedelta(days=-1 if days < 0 else 1)
    day = to_local(utcnow()).date() + timedelta(days=days)
    while day.weekday() >= 5 or day_kind(day) != DayKind.ORDINARY:
        day += step
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_ZONE).astimezone(timezone.utc)




@pytest.fixture
def appointment_instrument(create_instrument):
    """A published instrument with no fees that is shared by appointment: the platform approves bookings."""
    zero = {name: 0 for name in services.FEE_FIELDS}
    return create_instrument(state=InstrumentState.PUBLISHED, sharing_mode="appointment", **zero)
