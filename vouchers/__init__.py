"""Innovation vouchers (创新券): programmes, applications, issuance, the ledger, redemption claims."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from vouchers import api, models, views  # noqa: F401  models: the tables must be known to Alembic

    views.register(app)
    api.register(app)
