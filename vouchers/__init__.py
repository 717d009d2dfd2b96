"""Innovation vouchers (创新券): programmes, applications, issuance, the ledger, redemption claims."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from core.demo import register_demo
    from core.scheduler import register_jobs
    from vouchers import api, demo, models, views  # noqa: F401  models: known to Alembic
    from vouchers.claims import api as claims_api
    from vouchers.claims import views as claims_views
    from vouchers.jobs import JOBS

    views.register(app)
    api.register(app)
    claims_views.register(app)
    claims_api.register(app)
    register_jobs(app, JOBS)
    register_demo(app, demo.load_into)  # the marketplace's demo also loads it first: it spends the vouchers
