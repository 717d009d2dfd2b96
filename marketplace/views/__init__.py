"""Pages of the marketplace, one module per concern, all on one blueprint."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("marketplace", __name__)

from marketplace.views import catalogue, imports, registry, releases  # noqa: E402  (routes attach to bp)


def register(app: Flask) -> None:
    from core.templating import register_nav

    app.register_blueprint(bp)
    register_nav(app, [*catalogue.NAV, *registry.NAV, *imports.NAV, *releases.NAV])
