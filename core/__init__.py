"""Core: the app's foundations, people, organisations, roles, auth, audit log, outbox and jobs."""
from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException


def init_app(app: Flask) -> None:
    """core registers itself the way every domain package does."""
    from core import api, cli, devmail, holiday_views, holidays, job_runs, security, templating, views
    from core.auth import is_api_request
    from core.errors import KequipError
    from core.inputs import IdConverter, check_request_input
    from core.jobs import JOBS
    from core.scheduler import on_job_failed, register_jobs

    app.url_map.converters["id"] = IdConverter
    security.register(app)
    app.register_blueprint(views.bp)
    devmail.register(app)
    app.register_blueprint(holiday_views.bp)
    api.register(app)
    templating.register(app)
    templating.register_nav(app, holiday_views.NAV)
    holidays.register(app)
    cli.register(app)
    register_jobs(app, JOBS)
    on_job_failed(app, job_runs.mail_bureau_admins)
    app.before_request(check_request_input)

    def handle_error(error: Exception):
        return api.error_response(error) if is_api_request() else views.error_page(error)

    for exception in (HTTPException, KequipError, Exception):
        app.register_error_handler(exception, handle_error)
