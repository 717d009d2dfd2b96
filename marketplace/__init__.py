"""The marketplace: instrument registry, public catalogue and releases (later: booking, payments, iCalendar)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from marketplace import api, models, views  # noqa: F401  models: the tables must be known to Alembic
    from marketplace.jobs import JOBS
    from core.scheduler import register_jobs

    views.register(app)
    api.register(app)
    register_jobs(app, JOBS)
