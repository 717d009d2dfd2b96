"""The marketplace: instrument registry, public catalogue and releases (later: booking, payments, iCalendar)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from core.demo import register_demo
    from core.scheduler import register_jobs
    from marketplace import api, demo, models, services, views  # noqa: F401  models: the tables, for Alembic
    from marketplace.jobs import JOBS
    from vouchers.services import register_category_source

    views.register(app)
    register_category_source(app, services.category_choices)  # the code list the voucher programmes name
    api.register(app)
    register_jobs(app, JOBS)
    register_demo(app, demo.load_into)
