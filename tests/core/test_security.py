"""Security defaults: CSRF on forms, cookie flags, a kept secret key, no debug, no secrets shown."""
from __future__ import annotations

import logging
import re

import pytest
from limits import parse
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix

from config import ROOT, Config, TestingConfig
from core.app import create_app
from core.security import content_security_policy, trust_proxies


def test_forms_refuse_posts_without_the_csrf_token(live_app):
    client = live_app.test_client()
    response = client.post("/login", data={"email": "bureau@kequip.test", "password": "kequip-demo"})
    assert response.status_code == 400
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    ok = client.post("/login", data={"email": "bureau@kequip.test", "password": "kequip-demo", "csrf_token": token})
    assert ok.status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(live_app):
    client = live_app.test_client()
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_secret_key_is_generated_once_and_kept_in_instance(tmp_path, monkeypatch):
    monkeypatch.setattr("core.app.INSTANCE_DIR", tmp_path)

    class NoSecret(TestingConfig):
        SECRET_KEY = None

    first = create_app(NoSecret).config["SECRET_KEY"]
    second = create_app(NoSecret).config["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_debug_is_off_unless_asked_for():
    assert not Config.DEBUG and not create_app(TestingConfig).debug


def test_no_password_or_token_appears_in_logs_or_audit(api_as, session, caplog):
    from sqlalchemy import select

    from core.models import AuditEntry

    caplog.set_level(logging.DEBUG)
    response = api_as(None).post("/api/v1/tokens", json={"email": "bureau@kequip.test", "password": "kequip-demo"})
    token = response.get_json()["token"]
    assert "kequip-demo" not in caplog.text and token not in caplog.text
    audit = " ".join(str(e.after) for e in session.scalars(select(AuditEntry)))
    assert token not in audit and "argon2" not in audit


def test_oversized_form_post_is_413_page(client):
    response = client.post("/login", data={"email": "x" * (12 * 1024 * 1024)})
    assert response.status_code == 413 and response.mimetype == "text/html"


def test_unknown_page_is_404_page_and_forbidden_page_is_403(login_as, client):
    assert client.get("/no/such/page").status_code == 404
    forbidden = login_as("enterprise").get("/users")
    assert forbidden.status_code == 403 and "<h1>" in forbidden.get_data(as_text=True)


def test_login_page_protects_against_open_redirects(client):
    response = client.post("/login?next=//evil.example", data={"email": "bureau@kequip.test", "password": "kequip-demo"})
    assert response.location == "/dashboard"


def test_login_next_with_a_tab_or_newline_cannot_lead_to_another_host(client):
    """Browsers and urllib drop tabs and newlines from URLs: "/\\t/evil.example" is "//evil.example"."""
    for target in ("/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example"):
        client.post("/logout")
        response = client.post(f"/login?next={target}",
                               data={"email": "bureau@kequip.test", "password": "kequip-demo"})
        assert response.status_code == 302 and response.location == "/dashboard", target


@pytest.mark.parametrize("stored", ["{id}", "{id}:{stale}", "{id}:{version}x", "{id}:"])
def test_a_session_without_the_current_session_version_is_not_logged_in(app, session, demo_user, stored):
    """A bare id (a forged or old cookie), or a version a log-out or new password has passed."""
    user = demo_user("bureau")
    client = app.test_client()
    with client.session_transaction() as http_session:
        http_session["_user_id"] = stored.format(id=user.id, version=user.session_version,
                                                 stale=user.session_version - 1)
        http_session["_fresh"] = True
    assert client.get("/dashboard").status_code == 401


# --- security headers -------------------------------------------------------------------------

def _policy(headers) -> dict[str, str]:
    directives = (part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    return {name: value for name, value in directives}


@pytest.mark.parametrize("path", ["/", "/login", "/catalogue", "/no/such/page", "/api/v1/openapi.json",
                                  "/static/kequip.css"])
def test_every_response_carries_the_security_headers(client, path):
    with client.get(path) as response:
        headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    policy = _policy(headers)
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["default-src"] == "'self'" and policy["base-uri"] == "'self'"
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in policy[directive] and "'unsafe-eval'" not in policy[directive]
    assert policy["style-src"] == "'self'"


def test_the_policy_lets_in_exactly_the_payment_gateway(app, client, stripe_server):
    policy = _policy(client.get("/").headers)
    assert policy["script-src"] == f"'self' {stripe_server.url}"  # localstripe serves the card field's script
    assert policy["connect-src"] == f"'self' {stripe_server.url}"
    assert policy["frame-src"] == "'none'"
    stripe = content_security_policy({"STRIPE_JS_URL": "https://js.stripe.com/v3/",
                                      "STRIPE_API_BASE": "https://api.stripe.com"})
    assert "script-src 'self' https://js.stripe.com;" in stripe and "frame-src https://js.stripe.com;" in stripe
    assert "connect-src 'self' https://api.stripe.com;" in stripe


def test_templates_hold_no_inline_script_handler_or_style():
    """The policy refuses them: every script is a file in static/, every style a class."""
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        markup = "\n".join(line for line in text.splitlines() if "{% macro" not in line)  # a parameter "style"
        assert not re.search(r"\bstyle\s*=\s*[\"']", markup), template  # an attribute, or a field's keyword
        assert "javascript:" not in text, template


# --- cookies ----------------------------------------------------------------------------------

def test_remember_cookie_is_httponly_and_samesite_lax(client):
    client.post("/login", data={"email": "bureau@kequip.test", "password": "kequip-demo", "remember": "y"})
    for name in ("session", "remember_token"):
        cookie = client.get_cookie(name)
        assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure, name


def test_with_session_cookie_secure_both_cookies_are_secure(app, session, monkeypatch):
    assert create_app(TestingConfig, SESSION_COOKIE_SECURE=True).config["REMEMBER_COOKIE_SECURE"] is True
    assert create_app(TestingConfig).config.get("REMEMBER_COOKIE_SECURE", False) is False
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    monkeypatch.setitem(app.config, "REMEMBER_COOKIE_SECURE", True)
    client = app.test_client()
    client.post("/login", base_url="https://localhost",
                data={"email": "bureau@kequip.test", "password": "kequip-demo", "remember": "y"})
    for name in ("session", "remember_token"):
        cookie = client.get_cookie(name, domain="localhost")
        assert cookie.secure and cookie.http_only and cookie.same_site == "Lax", name


# --- the client's address behind reverse proxies ----------------------------------------------

def test_proxy_fix_is_off_by_default_and_trusts_as_many_proxies_as_configured():
    assert Config.PROXY_FIX == 0 and not isinstance(create_app(TestingConfig).wsgi_app, ProxyFix)
    proxied = create_app(TestingConfig, PROXY_FIX=2).wsgi_app
    assert isinstance(proxied, ProxyFix) and proxied.x_for == 2 and proxied.x_proto == 2


def _wrong_guesses(client, count: int, forwarded: str) -> list[int]:
    return [client.post("/login", data={"email": "finance@kequip.test", "password": "x"},
                        headers={"X-Forwarded-For": forwarded}).status_code for _ in range(count)]


def test_with_proxy_fix_the_forwarded_address_is_what_limits_and_audit_see(app, client, api_as, session,
                                                                           monkeypatch):
    from core.models import AuditEntry

    monkeypatch.setitem(app.config, "PROXY_FIX", 1)
    monkeypatch.setattr(app, "wsgi_app", app.wsgi_app)
    trust_proxies(app)
    limit = parse(app.config["LOGIN_FAILURE_LIMIT"]).amount
    assert _wrong_guesses(client, limit + 1, "203.0.113.7") == [200] * limit + [429]
    assert _wrong_guesses(client, 1, "203.0.113.8") == [200]  # another client behind the same proxy
    response = api_as(None).post("/api/v1/tokens", json={"email": "bureau@kequip.test", "password": "kequip-demo"},
                                 headers={"X-Forwarded-For": "198.51.100.9"})
    assert response.status_code == 201
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "api_token.issued")
                           .order_by(AuditEntry.id.desc()))
    assert entry.ip == "198.51.100.9"


def test_without_proxy_fix_a_forwarded_address_is_ignored(app, client, api_as, session):
    from core.models import AuditEntry

    limit = parse(app.config["LOGIN_FAILURE_LIMIT"]).amount
    spoofed = [_wrong_guesses(client, 1, f"203.0.113.{n}")[0] for n in range(limit + 1)]
    assert spoofed == [200] * limit + [429]  # a new X-Forwarded-For each time does not start afresh
    response = api_as(None).post("/api/v1/tokens", json={"email": "bureau@kequip.test", "password": "kequip-demo"},
                                 headers={"X-Forwarded-For": "198.51.100.9"})
    assert response.status_code == 201
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "api_token.issued")
                           .order_by(AuditEntry.id.desc()))
    assert entry.ip == "127.0.0.1"


def test_an_svg_image_gets_a_policy_that_draws_it_and_runs_nothing(app):
    """The voucher charts are SVG with an inline <style>: opened on their own, they still draw."""
    from flask import Response

    with app.test_request_context("/voucher-programmes/1/chart-pool.svg"):
        response = app.process_response(Response("<svg/>", mimetype="image/svg+xml"))
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; " \
                                                          "frame-ancestors 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_password_fields_tell_password_managers_what_they_hold(login_as, client):
    login = client.get("/login").get_data(as_text=True)
    assert re.search(r'<input[^>]*autocomplete="current-password"[^>]*id="password"', login)
    change = login_as("expert").get("/profile/password").get_data(as_text=True)
    assert re.search(r'autocomplete="current-password"[^>]*id="current_password"', change)
    assert len(re.findall(r'autocomplete="new-password"', change)) == 2
