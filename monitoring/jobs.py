"""Monitoring's jobs: ending the sessions of devices that went silent."""
from __future__ import annotations

from datetime import datetime

from core.db import unit_of_work, utcnow
from core.scheduler import Job
from monitoring import telemetry


def close_silent_sessions(now: datetime | None = None) -> int:
    with unit_of_work() as session:
        return telemetry.close_silent_sessions(session, now=now or utcnow())


JOBS: list[Job] = [
    Job("close_silent_device_sessions", close_silent_sessions, "interval", {"minutes": 5}),
]
