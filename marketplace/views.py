"""Pages of the marketplace (placeholder until the pages land in this change)."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("marketplace", __name__)


def register_nav(app: Flask) -> None:
    pass
