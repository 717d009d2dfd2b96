"""Every Flask extension, created unbound and bound by init_extensions."""
from __future__ import annotations

from functools import cache

import marshmallow as ma
from babel import Locale
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from core.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
bootstrap = Bootstrap5()


class ErrorDetail(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "Machine-readable, e.g. booking_conflict"})
    message = ma.fields.String(required=True, metadata={"description": "Translated for the caller"})
    fields = ma.fields.Dict(keys=ma.fields.String(), metadata={"description": "Errors by field, on 422"})


class ErrorBody(ma.Schema):
    error = ma.fields.Nested(ErrorDetail, required=True)


class KequipApi(Api):
    """flask-smorest, documenting our error envelope; core registers the handler that writes it."""

    ERROR_SCHEMA = ErrorBody

    def _register_error_handlers(self) -> None:
        pass


api = KequipApi(spec_kwargs={"components": {"securitySchemes": {
    "bearer": {"type": "http", "scheme": "bearer"},
    "device": {"type": "http", "scheme": "bearer", "description": "A device token of one instrument"}}}})


def select_locale() -> Locale:
    """?lang= (kept in the session), else the person's preference, else Chinese."""
    g.language = _choose_language()
    return _babel_locale(g.language)


@cache
def _babel_locale(code: str) -> Locale:
    """Made once per language: Flask-Babel has Babel parse the code the selector gives on every request,
    a search through the locale data; a Locale given is taken as it is."""
    return Locale.parse(code)


def current_language() -> str:
    """The chosen code as configured ("zh_CN" or "en"); Babel itself would say "zh_Hans_CN"."""
    if "language" not in g:
        g.language = _choose_language()
    return g.language


def _choose_language() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    asked = request.args.get("lang")
    if asked in languages:
        if request.blueprint is None or not request.blueprint.startswith("api"):
            session["lang"] = asked
        return asked
    if "lang" in session and session["lang"] in languages:
        return session["lang"]
    user = g.get("api_user") or (current_user if current_user and current_user.is_authenticated else None)
    if user is not None and user.locale in languages:
        return user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def init_extensions(app: Flask) -> None:
    import core.ratelimit  # noqa: F401  registers the kequipdb:// storage with the limits library

    for extension in (db, login_manager, csrf, limiter, bootstrap):
        extension.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR", "migrations")))
    babel.init_app(app, locale_selector=select_locale)
    api.init_app(app)
