"""Instants are aware UTC; Asia/Shanghai only at the edges."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from core.db import utcnow

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

__all__ = ["LOCAL_ZONE", "from_local", "local_midnight", "to_local", "utcnow"]


def from_local(value: datetime) -> datetime:
    """A naive Asia/Shanghai wall-clock time (form input) → aware UTC."""
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    return value.replace(tzinfo=LOCAL_ZONE).astimezone(timezone.utc)


def to_local(value: datetime) -> datetime:
    return value.astimezone(LOCAL_ZONE)


def local_midnight(day: date) -> datetime:
    """00:00 of a calendar day in Asia/Shanghai, aware (in that zone): where a local day, week or year
    begins and ends."""
    return datetime.combine(day, time(0), tzinfo=LOCAL_ZONE)
