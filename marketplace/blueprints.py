"""The marketplace's two blueprints, shared by its subpackages: the pages (`bp`, endpoints
"marketplace.*") and the JSON API under /api/v1 (`api_bp`, endpoints "marketplace_api.*"). Each
subpackage's views and API modules attach their routes to these; marketplace/__init__.py registers them."""
from __future__ import annotations

from flask import Blueprint, request
from flask_babel import gettext as _
from flask_smorest import Blueprint as ApiBlueprint

from core.auth import current_principal
from core.errors import Forbidden
from core.extensions import db
from core.models import Platform, Role

bp = Blueprint("marketplace", __name__)
api_bp = ApiBlueprint("marketplace_api", __name__, url_prefix="/api/v1", description="Instruments and the catalogue")


def my_platform() -> Platform:
    """The platform the admin works for (?platform_id= picks one when they admin several)."""
    platform_ids = sorted(current_principal().organisation_ids(Role.PLATFORM_ADMIN))
    wanted = request.values.get("platform_id", type=int) or platform_ids[0]
    if wanted not in platform_ids:
        raise Forbidden("forbidden", _("You are not an admin of this platform."))
    return db.session.get(Platform, wanted)
