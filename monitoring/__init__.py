"""Usage monitoring and early warning (监测预警): usage sessions, device telemetry, utilization metrics,
alert rules and alerts. It reads the booking calendar, vouchers and the catalogue; none of them imports it
(the calendar announces check-in and check-out by signals, which this package receives)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from core.demo import register_demo
    from core.scheduler import register_jobs
    from marketplace.booking import signals
    from monitoring import (  # noqa: F401  models: known to Alembic; dashboard_views: its routes
        alert_views,
        api,
        cli,
        dashboard_views,
        demo,
        models,
        sessions,
        views,
    )
    from monitoring.jobs import JOBS

    signals.checked_in.connect(sessions.on_checked_in)
    signals.checked_out.connect(sessions.on_checked_out)
    api.register(app)
    views.register(app)
    alert_views.register(app)
    register_jobs(app, JOBS)
    app.cli.add_command(cli.cli)
    register_demo(app, demo.load_into)  # after the marketplace's: it reads the bookings
