"""Core's jobs: mail delivery and housekeeping; each safe to run twice."""
from __future__ import annotations

import time
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from core import holidays, outbox
from core.db import unit_of_work, utcnow
from core.models import RateLimitCounter
from core.scheduler import Job


def send_outbox(now: datetime | None = None) -> int:
    """Send the mail that waits: claimed in one transaction, sent with none open, recorded in another; a
    sent message is never selected again."""
    now = now or utcnow()
    with unit_of_work() as session:
        letters = outbox.claim_pending(session, now=now)
    if not letters:
        return 0
    outcomes = outbox.deliver(letters)
    with unit_of_work() as session:
        return outbox.record_outcomes(session, outcomes, now=now)


def purge_rate_limit_counters() -> int:
    with unit_of_work() as session:
        return session.execute(sa.delete(RateLimitCounter).where(RateLimitCounter.expires_at <= time.time())).rowcount


def optimize_database() -> int:
    """Keep the query planner's statistics fresh. PostgreSQL's autovacuum does it by itself; SQLite
    needs PRAGMA optimize (it runs ANALYZE where tables changed enough), or the catalogue's queries
    pick poor indexes. Returns 1 when it did something."""
    with unit_of_work() as session:
        if session.get_bind().dialect.name != "sqlite":
            return 0
        session.execute(sa.text("PRAGMA optimize"))
    return 1


def warn_missing_holidays(now: datetime | None = None) -> int:
    """Mail the bureau about each year the booking horizon reaches without a holiday arrangement, once."""
    with unit_of_work() as session:
        return holidays.warn_bureau(session, now=now or utcnow())


JOBS = [
    Job("send_outbox", send_outbox, "interval", {"seconds": 15}, _l("Send the waiting mail")),
    Job("purge_rate_limit_counters", purge_rate_limit_counters, "interval", {"hours": 1},
        _l("Purge expired rate-limit counters")),
    Job("optimize_database", optimize_database, "cron", {"hour": 3, "minute": 30},
        _l("Refresh the database's query statistics")),
    Job("warn_missing_holidays", warn_missing_holidays, "cron", {"hour": 8, "minute": 0},
        _l("Warn the bureau of a year without a holiday arrangement")),
]
