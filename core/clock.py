"""Instants are aware UTC; Asia/Shanghai only at the edges (STYLE 2.5)."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from core.db import utcnow

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

__all__ = ["LOCAL_ZONE", "from_local", "to_local", "utcnow"]


def from_local(value: datetime) -> datetime:
    """A naive Asia/Shanghai wall-clock time (form input) → aware UTC."""
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    return value.replace(tzinfo=LOCAL_ZONE).astimezone(timezone.utc)


def to_local(value: datetime) -> datetime:
    return value.astimezone(LOCAL_ZONE)
