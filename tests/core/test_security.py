"""Security defaults: CSRF on forms, cookie flags, a kept secret key, no debug, no secrets shown."""
from __future__ import annotations

import logging
import re

from config import Config, TestingConfig
from core.app import create_app


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


def test_a_session_without_the_password_fingerprint_is_not_logged_in(app, session, demo_user):
    client = app.test_client()
    with client.session_transaction() as http_session:
        http_session["_user_id"] = str(demo_user("bureau").id)  # a bare id, as a forged or old cookie would hold
        http_session["_fresh"] = True
    assert client.get("/dashboard").status_code == 401
