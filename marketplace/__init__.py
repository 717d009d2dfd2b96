"""The marketplace: instrument registry, public catalogue and releases (later: booking, payments, iCalendar)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from marketplace import models, views  # noqa: F401  models: the tables must be known to Alembic

    app.register_blueprint(views.bp)
    views.register_nav(app)
