"""The JSON API's contract: tokens, and the error envelope for every kind of bad request."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from config import TestingConfig
from core import services
from core.app import create_app
from core.audit import Actor
from core.auth import public
from core.db import utcnow
from core.models import ApiToken


def error_of(response) -> tuple[int, str]:
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


def test_token_for_email_and_password(api_as, session):
    response = api_as(None).post("/api/v1/tokens", json={"email": "platform@kequip.test", "password": "kequip-demo"})
    assert response.status_code == 201
    token = response.get_json()["token"]
    assert len(token) >= 40 and response.get_json()["expires_at"].endswith("+00:00")
    stored = session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored  # only its hash is kept
    me = api_as(None).get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["email"] == "platform@kequip.test"
    assert me.get_json()["roles"][0]["role"] == "platform_admin"


def test_wrong_password_gives_401_unauthorized(api_as):
    response = api_as(None).post("/api/v1/tokens", json={"email": "platform@kequip.test", "password": "bad"})
    assert error_of(response) == (401, "unauthorized")


def test_revoked_token_no_longer_works(api_as):
    client = api_as("enterprise")
    assert client.get("/api/v1/me").status_code == 200
    assert client.delete("/api/v1/tokens/current").status_code == 204
    assert error_of(client.get("/api/v1/me")) == (401, "unauthorized")


def test_expired_token_is_refused(api_as, session, demo_user):
    user = demo_user("auditor")
    token, _row = services.issue_api_token(session, user, actor=Actor.of(user, None), now=utcnow() - timedelta(days=2),
                                           ttl=timedelta(days=1))
    response = api_as(None).get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert error_of(response) == (401, "unauthorized")


def test_session_cookie_does_not_authenticate_the_api(login_as):
    assert error_of(login_as("bureau").get("/api/v1/me")) == (401, "unauthorized")


@pytest.mark.parametrize("body, content_type", [("{not json", "application/json"), ('{"email": ', "application/json")])
def test_malformed_json_is_400_invalid_json(api_as, body, content_type):
    response = api_as(None).post("/api/v1/tokens", data=body, content_type=content_type)
    assert error_of(response) == (400, "invalid_json")


@pytest.mark.parametrize("payload", [{}, {"email": "a@b.c"}, {"email": 5, "password": []}, [], "text",
                                     {"email": "", "password": ""}, {"email": "x" * 300, "password": "y"}])
def test_invalid_body_is_422_with_field_errors(api_as, payload):
    response = api_as(None).post("/api/v1/tokens", json=payload)
    assert error_of(response) == (422, "validation_error")
    assert response.get_json()["error"].get("fields")


def test_unknown_route_method_and_oversized_body(api_as):
    client = api_as(None)
    assert error_of(client.get("/api/v1/nothing-here")) == (404, "not_found")
    response = client.get("/api/v1/tokens")
    assert error_of(response) == (405, "method_not_allowed") and "POST" in response.headers["Allow"]
    big = client.post("/api/v1/tokens", data="x" * (12 * 1024 * 1024), content_type="application/json")
    assert error_of(big) == (413, "payload_too_large")


def test_sixth_failed_token_request_is_429_rate_limited(api_as):
    client = api_as(None)
    for _ in range(5):
        client.post("/api/v1/tokens", json={"email": "expert@kequip.test", "password": "wrong"})
    response = client.post("/api/v1/tokens", json={"email": "expert@kequip.test", "password": "kequip-demo"})
    assert error_of(response) == (429, "rate_limited")


def test_unexpected_failure_is_500_internal_error_without_traceback(tmp_path):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'x.sqlite'}")

    @app.get("/api/v1/boom")
    @public
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/v1/boom")
    assert error_of(response) == (500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    page = app.test_client().get("/boom-page")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_errors_are_translated_for_the_caller(api_as):
    zh = api_as(None).get("/api/v1/nothing-here").get_json()["error"]["message"]
    en = api_as(None).get("/api/v1/nothing-here?lang=en").get_json()["error"]["message"]
    assert en == "Not found." and zh != en


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/tokens", "/api/v1/tokens/current", "/api/v1/me"} <= set(spec["paths"])
    error_schema = spec["components"]["schemas"]["ErrorBody"]
    assert error_schema["required"] == ["error"]


def test_nul_characters_are_refused_on_both_databases(api_as, login_as):
    response = api_as(None).post("/api/v1/tokens", json={"email": "a\u0000@b.c", "password": "x"})
    assert error_of(response) == (422, "validation_error") and "email" in response.get_json()["error"]["fields"]
    assert login_as("bureau").get("/organisations?q=%00").status_code == 400
