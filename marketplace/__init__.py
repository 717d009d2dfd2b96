"""The marketplace, in subpackages by concern: the instrument registry (registry/), the public catalogue
and its releases (catalogue/), the booking calendar (booking/) and payments (payments/).
Imports between them run one way (docs/architecture.md): registry ← booking ← catalogue, payments ← booking."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from core.demo import register_demo
    from core.extensions import api, csrf
    from core.scheduler import register_jobs
    from core.templating import register_nav
    from flask_babel import lazy_gettext as _l
    from marketplace import demo
    from marketplace.blueprints import api_bp, bp
    from marketplace.booking import jobs as booking_jobs
    from marketplace.booking import models as booking_models  # noqa: F401  the tables, for Alembic
    from marketplace.booking import (api as booking_api, calendar_views, payment_views, platform_views,  # noqa: F401
                                     views as booking_views, waitlist_views)  # (routes attach to the blueprints)
    from marketplace.catalogue import jobs as catalogue_jobs
    from marketplace.catalogue import models as catalogue_models  # noqa: F401
    from marketplace.catalogue import api as catalogue_api, release_api, release_views  # noqa: F401
    from marketplace.catalogue import views as catalogue_views
    from marketplace.payments import models as payment_models  # noqa: F401
    from marketplace.registry import import_views, services
    from marketplace.registry import models as registry_models
    from marketplace.registry import views as registry_views
    from vouchers.services import register_category_source

    app.register_blueprint(bp)
    register_nav(app, [*catalogue_views.NAV, *registry_views.NAV, *import_views.NAV, *release_views.NAV])
    register_nav(app, [*booking_views.NAV, *waitlist_views.NAV, *calendar_views.NAV, *platform_views.NAV,
                       *payment_views.NAV], group=_l("Bookings"))
    app.add_template_filter(registry_views.field_value)
    app.context_processor(lambda: {"INSTRUMENT_STATE_LABELS": registry_models.INSTRUMENT_STATE_LABELS,
                                   "FIELD_LABELS": registry_models.FIELD_LABELS,
                                   "SHARING_MODE_LABELS": registry_models.SHARING_MODE_LABELS,
                                   "USER_TYPE_LABELS": registry_models.USER_TYPE_LABELS})
    csrf.exempt(api_bp)
    api.register_blueprint(api_bp)
    register_category_source(app, services.category_choices)  # the code list the voucher programmes name
    register_jobs(app, [*catalogue_jobs.JOBS, *booking_jobs.JOBS])
    register_demo(app, demo.load_into)
