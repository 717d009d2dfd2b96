"""Innovation vouchers (创新券): programmes, applications, issuance, the ledger, redemption claims."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from vouchers import models  # noqa: F401  the tables must be known to Alembic
