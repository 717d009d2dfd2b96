"""Pages of the marketplace, one module per concern, all on one blueprint."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.auth import current_principal
from core.errors import Forbidden
from core.extensions import db
from core.models import Platform, Role

bp = Blueprint("marketplace", __name__)


def my_platform() -> Platform:
    """The platform the admin works for (?platform_id= picks one when they admin several)."""
    platform_ids = sorted(current_principal().organisation_ids(Role.PLATFORM_ADMIN))
    wanted = request.values.get("platform_id", type=int) or platform_ids[0]
    if wanted not in platform_ids:
        raise Forbidden("forbidden", _("You are not an admin of this platform."))
    return db.session.get(Platform, wanted)


from marketplace.views import (bookings, calendars, catalogue, imports, payments, platform_calendar,  # noqa: E402
                               registry, releases, waitlist)  # (routes attach to bp)


def field_value(value: Any, field: str) -> str:
    """An instrument field's value as a person reads it (review diffs, releases)."""
    from core.extensions import current_language, db
    from core.money import format_yuan
    from marketplace.models import SHARING_MODE_LABELS, InstrumentCategory, SharingMode

    if value is None or value == "":
        return "—"
    if field.endswith("_fen"):
        return format_yuan(int(value))
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if field == "category_id":
        category = db.session.get(InstrumentCategory, value)
        return f"{category.code} {category.name(current_language())}" if category else str(value)
    if field == "sharing_mode":
        return str(SHARING_MODE_LABELS[SharingMode(value)])
    if isinstance(value, list):
        return "；".join(str(v) for v in value)
    return str(value)


def register(app: Flask) -> None:
    from core.templating import register_nav
    from marketplace.models import FIELD_LABELS, INSTRUMENT_STATE_LABELS, SHARING_MODE_LABELS, USER_TYPE_LABELS

    app.register_blueprint(bp)
    register_nav(app, [*catalogue.NAV, *registry.NAV, *imports.NAV, *releases.NAV])
    register_nav(app, [*bookings.NAV, *waitlist.NAV, *calendars.NAV, *platform_calendar.NAV, *payments.NAV],
                 group=_l("Bookings"))
    app.add_template_filter(field_value)
    app.context_processor(lambda: {"INSTRUMENT_STATE_LABELS": INSTRUMENT_STATE_LABELS, "FIELD_LABELS": FIELD_LABELS,
                                   "SHARING_MODE_LABELS": SHARING_MODE_LABELS, "USER_TYPE_LABELS": USER_TYPE_LABELS})
