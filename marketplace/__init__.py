"""The marketplace: instrument registry, public catalogue and releases (later: booking, payments, iCalendar)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from core.demo import register_demo
    from core.scheduler import register_jobs
    from marketplace import api, demo, models, views  # noqa: F401  models: the tables must be known to Alembic
    from marketplace.jobs import JOBS

    views.register(app)
    api.register(app)
    register_jobs(app, JOBS)
    register_demo(app, demo.load_into)
