"""The JSON API's core: the error envelope every /api/ answer uses, and tokens."""
from __future__ import annotations

import logging
from datetime import timedelta

import marshmallow as ma
from flask import Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException

from core import services
from core.audit import Actor
from core.auth import current_actor, current_principal, public, requires
from core.db import unit_of_work, utcnow
from core.errors import KequipError, Unauthorized
from core.extensions import api, csrf
from core.models import ApiToken
from core.ratelimit import limited_login

log = logging.getLogger(__name__)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Accounts and tokens")

HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited"}


def _http_message(status: int) -> str:
    return {400: _("The request is malformed."),
            401: _("Log in first: send a valid bearer token."),
            403: _("You may not do this."),
            404: _("Not found."),
            405: _("This method is not allowed here."),
            409: _("This conflicts with the current state."),
            413: _("The request is too large."),
            415: _("This content type is not supported."),
            422: _("Some fields are not valid."),
            429: _("Too many requests. Try again in a minute.")}.get(status, _("The request failed."))


def _field_errors(error: HTTPException) -> dict | None:
    messages = (getattr(error, "data", None) or {}).get("messages")
    if not isinstance(messages, dict):
        return None
    fields: dict = {}
    for location_errors in messages.values():  # webargs nests by location: {"json": {"email": [...]}}
        if isinstance(location_errors, dict):
            fields.update(location_errors)
    return fields


def error_response(error: Exception) -> ResponseReturnValue:
    """Every error under /api/ as {"error": {"code", "message"}}; never a traceback."""
    fields = None
    headers = {}
    if isinstance(error, KequipError):
        status, code, message = error.status, error.code, error.message
        headers.update(getattr(error, "headers", None) or {})
        if error.field:
            fields = {error.field: [error.message]}
    elif isinstance(error, HTTPException) and error.code and error.code < 500:
        status = error.code
        code = HTTP_ERROR_CODES.get(status, "bad_request")
        message = _http_message(status)
        exc = getattr(error, "exc", None)  # webargs keeps the parse error here
        if status == 400 and isinstance(exc, ValueError):  # webargs: the body is not JSON
            code, message = "invalid_json", _("The body is not valid JSON.")
        fields = _field_errors(error) if status == 422 else None
        if status == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        if status == 429:
            headers.update(getattr(error, "headers", None) or {})
    else:
        if not isinstance(error, HTTPException):
            log.exception("unhandled error on an API request", exc_info=error)
        status, code, message = 500, "internal_error", _("Something went wrong on our side.")
    body: dict = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return jsonify(error=body), status, headers


def text(*, min_length: int = 0, max_length: int, **kwargs) -> ma.fields.String:
    """A string field of an API schema: bounded, and without NUL (PostgreSQL cannot store it); both
    rules appear in the OpenAPI document, so clients and schemathesis know them."""
    return ma.fields.String(validate=[ma.validate.Length(min=min_length, max=max_length),
                                      ma.validate.Regexp(r"^[^\x00]*$", error=_l("NUL characters are not allowed."))],
                            **kwargs)


def page_of(item: type[ma.Schema]) -> type[ma.Schema]:
    """The schema of one page of a list: {items, total, page, per_page}, named after its items."""
    return ma.Schema.from_dict({
        "items": ma.fields.List(ma.fields.Nested(item), required=True),
        "total": ma.fields.Integer(required=True),
        "page": ma.fields.Integer(required=True),
        "per_page": ma.fields.Integer(required=True),
    }, name=f"{item.__name__.removesuffix('Out')}PageOut")


class TokenIn(ma.Schema):
    email = text(required=True, min_length=1, max_length=254)
    password = text(required=True, min_length=1, max_length=200)


class TokenOut(ma.Schema):
    token = ma.fields.String(required=True)
    expires_at = ma.fields.AwareDateTime(required=True)


class RoleOut(ma.Schema):
    role = ma.fields.String(required=True)
    organisation_id = ma.fields.Integer(allow_none=True)
    organisation_name = ma.fields.Function(lambda grant: grant.organisation.name if grant.organisation else None)


class MeOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    phone = ma.fields.String(allow_none=True)
    locale = ma.fields.String(required=True)
    roles = ma.fields.List(ma.fields.Nested(RoleOut), attribute="grants")


@bp.route("/tokens", methods=["POST"])
@public
@bp.arguments(TokenIn)
@bp.response(201, TokenOut)
@bp.alt_response(401, description="Wrong e-mail or password")
@bp.alt_response(429, description="Too many failed log-ins: the same limits as the log-in page")
def create_token(data: dict):
    """Trade an e-mail and password for a bearer token."""
    def check() -> tuple[str, ApiToken] | None:
        with unit_of_work() as session:
            user = services.authenticate(session, email=data["email"], password=data["password"])
            if user is None:
                return None
            ttl = timedelta(days=current_app.config["API_TOKEN_TTL_DAYS"])
            return services.issue_api_token(session, user, actor=Actor.of(user, request.remote_addr),
                                            now=utcnow(), ttl=ttl)

    issued = limited_login(data["email"], check)
    if issued is None:
        raise Unauthorized("unauthorized", _("Wrong e-mail or password."))
    token, row = issued
    return {"token": token, "expires_at": row.expires_at}


@bp.route("/tokens/current", methods=["DELETE"])
@requires()
@bp.response(204)
@bp.doc(security=[{"bearer": []}])
def revoke_current_token():
    """Revoke the token this request carries."""
    with unit_of_work() as session:
        services.revoke_api_token(session, session.merge(g.api_token), actor=current_actor(), now=utcnow())


@bp.route("/me", methods=["GET"])
@requires()
@bp.response(200, MeOut)
@bp.doc(security=[{"bearer": []}])
def me():
    """The caller's account and roles."""
    return current_principal()


def register(app: Flask) -> None:
    csrf.exempt(bp)  # bearer tokens, no cookies: nothing for CSRF to protect
    api.register_blueprint(bp)
