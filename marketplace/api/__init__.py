"""The marketplace's JSON API under /api/v1, one module per concern, on one flask-smorest blueprint."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

bp = Blueprint("marketplace_api", __name__, url_prefix="/api/v1", description="Instruments and the catalogue")

from marketplace.api import bookings, catalogue, releases  # noqa: E402  (routes attach to bp)


def register(app: Flask) -> None:
    from core.extensions import api, csrf

    csrf.exempt(bp)
    api.register_blueprint(bp)
