"""The marketplace, in subpackages by concern: the instrument registry (registry/), the public catalogue
and its releases (catalogue/), the booking calendar (booking/) and payments (payments/).
Imports between them run one way (docs/architecture.md): registry ← booking ← catalogue, payments ← booking."""
from __future__ import annotations

from flask import Flask

# Modules imported for what importing them does: their tables become known (to Alembic too) and their
# routes attach to the shared blueprints of marketplace.blueprints.
MODULES = ("marketplace.registry.models", "marketplace.catalogue.models", "marketplace.payments.models",
           "marketplace.booking.models", "marketplace.booking.api", "marketplace.catalogue.api",
           "marketplace.catalogue.release_api")


def init_app(app: Flask) -> None:
    from importlib import import_module

    from flask_babel import lazy_gettext as _l

    from core.demo import register_demo
    from core.extensions import api, csrf
    from core.holidays import register_horizon
    from core.scheduler import register_jobs
    from core.templating import register_nav, register_todo
    from marketplace import demo
    from marketplace.blueprints import api_bp, bp
    from marketplace.booking import availability, calendar_views, payment_views, platform_views, waitlist_views
    from marketplace.booking import cli as booking_cli
    from marketplace.booking import jobs as booking_jobs
    from marketplace.booking import views as booking_views
    from marketplace.catalogue import jobs as catalogue_jobs
    from marketplace.catalogue import release_views
    from marketplace.catalogue import views as catalogue_views
    from marketplace.registry import import_views, services
    from marketplace.registry import models as registry_models
    from marketplace.registry import views as registry_views
    from vouchers.services import register_category_source

    for name in MODULES:
        import_module(name)
    app.register_blueprint(bp)
    app.cli.add_command(booking_cli.cli)
    register_nav(app, [*catalogue_views.NAV, *registry_views.NAV, *import_views.NAV, *release_views.NAV])
    register_nav(app, [*booking_views.NAV, *waitlist_views.NAV, *calendar_views.NAV, *platform_views.NAV,
                       *payment_views.NAV], group=_l("Bookings"))
    register_todo(app, registry_views.TODO)
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
    register_horizon(app, availability.longest_horizon)
