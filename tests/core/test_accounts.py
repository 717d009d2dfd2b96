"""Accounts as a person meets them: registration, log-in, rate limit, password reset by mail, profile."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from limits import parse
from sqlalchemy import func, select

from core import services
from core.db import utcnow
from core.demo import demo_credit_code
from core.jobs import send_outbox
from core.models import AuditEntry, Enterprise, OutboxMessage, PasswordResetToken, Role, User, VerificationState

VALID_CODE = demo_credit_code(900)


def registration(**changes) -> dict:
    return {"name": "李雷", "email": "lilei@example.com", "phone": "13800000000", "password": "s3cret-pass",
            "password_again": "s3cret-pass", "enterprise_name": "绍兴测试纺织有限公司", "credit_code": VALID_CODE,
            "legal_representative": "韩梅梅", "address": "柯桥区测试路 1 号"} | changes


def test_registration_creates_person_and_enterprise_awaiting_verification(client, session):
    response = client.post("/register", data=registration(is_tech_sme="y"))
    assert response.status_code == 302 and response.location.endswith("/dashboard")
    user = session.scalar(select(User).where(User.email == "lilei@example.com"))
    enterprise = session.scalar(select(Enterprise).where(Enterprise.credit_code == VALID_CODE))
    assert enterprise.verification_state == VerificationState.PENDING and enterprise.is_tech_sme
    assert [(g.role, g.organisation_id) for g in user.grants] == [(Role.ENTERPRISE_MEMBER, enterprise.id)]
    assert user.password_hash.startswith("$argon2")
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert 'data-testid="verification"' in dashboard
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.id)).all()
    assert {"enterprise.registered", "role.granted"} <= set(actions)


@pytest.mark.parametrize("code", ["91330621MA20000010", "12345", "91330621MA2000001!", ""])
def test_registration_with_bad_credit_code_shows_error_beside_field_and_creates_nothing(client, session, code):
    before = session.scalar(select(func.count()).select_from(User))
    response = client.post("/register", data=registration(credit_code=code))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'id="credit_code"[^>]*is-invalid|is-invalid[^>]*id="credit_code"', html)
    assert session.scalar(select(func.count()).select_from(User)) == before


def test_registration_refuses_taken_email_and_registered_enterprise(client, session):
    html = client.post("/register", data=registration(email="enterprise@kequip.test")).get_data(as_text=True)
    assert re.search(r'id="email"[^>]*is-invalid|is-invalid[^>]*id="email"', html)
    html = client.post("/register", data=registration(credit_code=demo_credit_code(1))).get_data(as_text=True)
    assert re.search(r'id="credit_code"[^>]*is-invalid|is-invalid[^>]*id="credit_code"', html)


def test_login_succeeds_and_redirects_only_to_local_next(client):
    response = client.post("/login?next=https://evil.example/x",
                           data={"email": "Bureau@Kequip.test", "password": "kequip-demo"})
    assert response.status_code == 302 and response.location == "/dashboard"
    assert client.get("/dashboard").status_code == 200


def test_wrong_password_and_unknown_email_give_the_same_message(client):
    wrong = client.post("/login", data={"email": "bureau@kequip.test", "password": "nope"}).get_data(as_text=True)
    unknown = client.post("/login", data={"email": "nobody@kequip.test", "password": "nope"}).get_data(as_text=True)
    alert = re.compile(r'<div class="alert alert-danger"[^>]*>(.*?)</div>', re.S)
    assert alert.findall(wrong) and alert.findall(wrong) == alert.findall(unknown)


WRONG = "Wrong e-mail or password."


def _limit(app, setting: str) -> int:
    return parse(app.config[setting]).amount


def _log_in(client, email: str, password: str, address: str = "127.0.0.1"):
    return client.post("/login?lang=en", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def test_exactly_the_configured_number_of_wrong_passwords_is_heard_then_429(app, client):
    limit = _limit(app, "LOGIN_FAILURE_LIMIT")
    assert limit == 5
    for _ in range(limit):
        wrong = _log_in(client, "finance@kequip.test", "x", "10.0.0.1")
        assert wrong.status_code == 200 and WRONG in wrong.get_data(as_text=True)
    refused = _log_in(client, "finance@kequip.test", "kequip-demo", "10.0.0.1")  # even the right one
    assert refused.status_code == 429
    assert "Too many wrong passwords for this account from your address. Try again in 15 minutes" in \
        refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    # the owner, from elsewhere, gets in at once: an account is never locked for other addresses
    assert _log_in(client, "finance@kequip.test", "kequip-demo", "10.0.0.2").status_code == 302


def test_a_success_starts_the_pair_afresh(app, client):
    limit = _limit(app, "LOGIN_FAILURE_LIMIT")
    for _ in range(limit - 1):
        assert _log_in(client, "expert@kequip.test", "x").status_code == 200
    assert _log_in(client, "expert@kequip.test", "kequip-demo").status_code == 302
    for _ in range(limit):
        assert _log_in(client, "expert@kequip.test", "x").status_code == 200
    assert _log_in(client, "expert@kequip.test", "x").status_code == 429


def test_failures_from_one_address_across_accounts_lock_that_address_only(app, client):
    limit = _limit(app, "LOGIN_ADDRESS_FAILURE_LIMIT")
    assert limit > _limit(app, "LOGIN_FAILURE_LIMIT")
    for n in range(limit):
        assert _log_in(client, f"nobody{n}@kequip.test", "x", "10.1.1.1").status_code == 200
    refused = _log_in(client, "bureau@kequip.test", "kequip-demo", "10.1.1.1")
    assert refused.status_code == 429
    assert "Too many failed log-ins from your address. Try again in 60 minutes." in refused.get_data(as_text=True)
    assert _log_in(client, "bureau@kequip.test", "kequip-demo", "10.1.1.2").status_code == 302


def test_successful_logins_do_not_count_against_the_limits(app, client):
    for _ in range(_limit(app, "LOGIN_FAILURE_LIMIT") + 3):
        assert _log_in(client, "expert@kequip.test", "kequip-demo").status_code == 302


def test_the_token_endpoint_keeps_the_same_limits_and_counts(app, api_as):
    api = api_as(None)

    def ask(password: str, address: str = "10.2.2.2"):
        return api.post("/api/v1/tokens?lang=en", json={"email": "auditor@kequip.test", "password": password},
                        environ_base={"REMOTE_ADDR": address})

    limit = _limit(app, "LOGIN_FAILURE_LIMIT")
    client = api.client
    assert _log_in(client, "auditor@kequip.test", "x", "10.2.2.2").status_code == 200  # the page counts too
    for _ in range(limit - 1):
        response = ask("x")
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    refused = ask("kequip-demo")
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
    assert "Try again in 15" in refused.get_json()["error"]["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert _log_in(client, "auditor@kequip.test", "kequip-demo", "10.2.2.2").status_code == 429
    assert ask("kequip-demo", "10.2.2.3").status_code == 201


def test_password_reset_requests_are_limited_per_account_and_per_address(app, client, session):
    per_account = _limit(app, "PASSWORD_RESET_ACCOUNT_LIMIT")
    for _ in range(per_account):
        response = client.post("/password/reset?lang=en", data={"email": "operator@kequip.test"},
                               environ_base={"REMOTE_ADDR": "10.3.3.3"})
        assert response.status_code == 302
    # the account's mailbox gets no more, from any address; the links sent stay valid
    refused = client.post("/password/reset?lang=en", data={"email": "Operator@kequip.test"},
                          environ_base={"REMOTE_ADDR": "10.3.3.4"})
    assert refused.status_code == 429 and "Too many requests for a new password" in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == per_account
    per_address = _limit(app, "PASSWORD_RESET_ADDRESS_LIMIT")
    for n in range(per_address):
        assert client.post("/password/reset", data={"email": f"nobody{n}@kequip.test"},
                           environ_base={"REMOTE_ADDR": "10.3.3.5"}).status_code == 302
    assert client.post("/password/reset", data={"email": "auditor@kequip.test"},
                       environ_base={"REMOTE_ADDR": "10.3.3.5"}).status_code == 429
    assert client.post("/password/reset", data={"email": "auditor@kequip.test"},
                       environ_base={"REMOTE_ADDR": "10.3.3.6"}).status_code == 302


def test_password_reset_mail_arrives_in_chinese_with_a_working_single_use_link(app, client, session, mailbox):
    response = client.post("/password/reset", data={"email": "enterprise@kequip.test"})
    assert response.status_code == 302
    assert send_outbox() == 1
    assert send_outbox() == 0  # a second run sends nothing twice
    mail = mailbox.wait_for("enterprise@kequip.test")
    assert "密码" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    link = re.search(r"http://kequip\.test(/password/reset/\S+)", body).group(1)
    assert client.get(link).status_code == 200
    done = client.post(link, data={"password": "a-new-password", "password_again": "a-new-password"})
    assert done.status_code == 302 and done.location.endswith("/login")
    assert client.post("/login", data={"email": "enterprise@kequip.test", "password": "a-new-password"}
                       ).status_code == 302
    again = client.post(link, data={"password": "another-one!", "password_again": "another-one!"})
    assert again.status_code == 302 and again.location.endswith("/password/reset")
    assert services.authenticate(session, email="enterprise@kequip.test", password="another-one!") is None


def test_reset_request_for_unknown_address_says_the_same_and_sends_nothing(client, session):
    response = client.post("/password/reset", data={"email": "nobody@kequip.test"}, follow_redirects=True)
    assert response.status_code == 200
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_expired_reset_token_is_refused(session, demo_user):
    now = utcnow()
    token = services.request_password_reset(session, email="auditor@kequip.test", now=now - timedelta(hours=2),
                                            ttl=timedelta(hours=1))
    assert services.find_reset_token(session, token, now=now) is None
    row = session.scalar(select(PasswordResetToken))
    assert row.token_hash != token  # only the hash is stored


def test_profile_saves_name_phone_and_language(login_as, session, demo_user):
    client = login_as("operator")
    response = client.post("/profile", data={"name": "王操作", "phone": "0575-1234", "locale": "en"})
    assert response.status_code == 302
    user = demo_user("operator")
    session.refresh(user)
    assert (user.name, user.phone, user.locale) == ("王操作", "0575-1234", "en")
    assert 'lang="en"' in client.get("/dashboard").get_data(as_text=True)


def test_profile_refuses_unknown_language(login_as):
    response = login_as("operator").post("/profile", data={"name": "x", "locale": "fr"})
    assert response.status_code == 200 and "is-invalid" in response.get_data(as_text=True)


def _copy_of(app, client, *cookies: str):
    """Another browser holding copies of these cookies of a client, as a thief would."""
    copy = app.test_client()
    for name in cookies:
        copy.set_cookie(name, client.get_cookie(name).value)
    return copy


def test_a_session_copied_before_logout_no_longer_works_after_it(app, session, demo_user):
    owner = app.test_client()
    assert owner.post("/login", data={"email": "platform@kequip.test", "password": "kequip-demo",
                                      "remember": "y"}).status_code == 302
    copied_session = _copy_of(app, owner, "session")
    copied_remember = _copy_of(app, owner, "remember_token")
    assert copied_session.get("/dashboard").status_code == 200
    assert copied_remember.get("/dashboard").status_code == 200
    assert owner.post("/logout").status_code == 302
    assert owner.get("/dashboard").status_code == 401
    assert copied_session.get("/dashboard").status_code == 401
    assert copied_remember.get("/dashboard").status_code == 401
    user = demo_user("platform")
    ended = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.sessions_ended",
                                                     AuditEntry.subject_id == user.id)).all()
    assert len(ended) == 1 and ended[0].actor_id == user.id
    assert ended[0].after == {"session_version": user.session_version}
    # logging in again works, with the new version
    assert owner.post("/login", data={"email": "platform@kequip.test", "password": "kequip-demo"}).status_code == 302
    assert owner.get("/dashboard").status_code == 200 and copied_session.get("/dashboard").status_code == 401


def test_changing_the_password_keeps_this_session_and_ends_the_others(app, session, demo_user, api_as):
    mine = app.test_client()
    assert mine.post("/login", data={"email": "operator@kequip.test", "password": "kequip-demo",
                                     "remember": "y"}).status_code == 302
    elsewhere = app.test_client()
    assert elsewhere.post("/login", data={"email": "operator@kequip.test", "password": "kequip-demo"}
                          ).status_code == 302
    api = api_as("operator")
    assert mine.get("/profile/password").status_code == 200
    changed = mine.post("/profile/password", data={"current_password": "kequip-demo", "password": "a-new-secret",
                                                   "password_again": "a-new-secret"})
    assert changed.status_code == 302 and changed.location == "/profile"
    assert mine.get("/dashboard").status_code == 200
    assert _copy_of(app, mine, "remember_token").get("/dashboard").status_code == 200  # renewed with it
    assert elsewhere.get("/dashboard").status_code == 401
    assert api.get("/api/v1/me").status_code == 401
    user = demo_user("operator")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "user.password_changed",
                                                    AuditEntry.subject_id == user.id))
    assert entry.actor_id == user.id and entry.after == {"api_tokens_revoked": 1, "sessions_ended": True}
    assert services.authenticate(session, email="operator@kequip.test", password="a-new-secret") is not None


def test_a_wrong_current_password_changes_nothing(login_as, session, demo_user):
    client = login_as("introducer")
    version = demo_user("introducer").session_version
    response = client.post("/profile/password?lang=en", data={
        "current_password": "not-it", "password": "a-new-secret", "password_again": "a-new-secret"})
    assert response.status_code == 200
    assert "This is not your current password." in response.get_data(as_text=True)
    session.expire_all()
    assert demo_user("introducer").session_version == version
    assert client.get("/dashboard").status_code == 200
    assert services.authenticate(session, email="introducer@kequip.test", password="kequip-demo") is not None
    assert session.scalar(select(func.count()).select_from(AuditEntry)
                          .where(AuditEntry.action == "user.password_changed")) == 0


def test_logout_ends_the_session(login_as):
    client = login_as("expert")
    assert client.post("/logout").status_code == 302
    assert client.get("/dashboard").status_code == 401


def test_pages_are_chinese_by_default_and_english_on_request(client):
    assert 'lang="zh-CN"' in client.get("/login").get_data(as_text=True)
    assert 'lang="en"' in client.get("/login?lang=en").get_data(as_text=True)
    assert 'lang="en"' in client.get("/login").get_data(as_text=True)  # the choice sticks


def test_password_hashed_with_old_parameters_is_upgraded_at_login(client, session, demo_user):
    from argon2 import PasswordHasher

    user = demo_user("introducer")
    user.password_hash = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash("kequip-demo")
    session.flush()
    assert client.post("/login", data={"email": "introducer@kequip.test", "password": "kequip-demo"}).status_code == 302
    session.refresh(user)
    assert "m=19456,t=2,p=2" in user.password_hash


def test_language_switch_keeps_the_page_and_its_query(login_as, client):
    import html as html_module

    switch = re.compile(r'href="([^"]*)"[^>]*data-testid="lang-switch"')
    link = html_module.unescape(switch.search(client.get("/login?next=/audit").get_data(as_text=True)).group(1))
    assert link == "?next=%2Faudit&lang=en"
    bureau = login_as("bureau")
    page = bureau.get("/organisations?q=纺织&kind=platform&lang=en").get_data(as_text=True)
    link = html_module.unescape(switch.search(page).group(1))
    assert link == "?q=%E7%BA%BA%E7%BB%87&kind=platform&lang=zh_CN"
    assert 'lang="zh-CN"' in bureau.get("/organisations" + link).get_data(as_text=True)


def test_password_reset_ends_other_sessions_and_revokes_api_tokens(app, client, session, api_as):
    """Whoever knew the old password (a thief) is logged out everywhere once the owner sets a new one."""
    thief = app.test_client()
    assert thief.post("/login", data={"email": "introducer@kequip.test", "password": "kequip-demo",
                                      "remember": "y"}).status_code == 302
    remembered = app.test_client()  # only the remember-me cookie, as after closing the browser
    remembered.set_cookie("remember_token", thief.get_cookie("remember_token").value)
    assert remembered.get("/dashboard").status_code == 200
    api = api_as("introducer")
    assert api.get("/api/v1/me").status_code == 200
    token = services.request_password_reset(session, email="introducer@kequip.test", now=utcnow(),
                                            ttl=timedelta(hours=1))
    session.flush()
    assert client.post(f"/password/reset/{token}",
                       data={"password": "a-new-secret", "password_again": "a-new-secret"}).status_code == 302
    assert thief.get("/dashboard").status_code == 401
    fresh = app.test_client()
    fresh.set_cookie("remember_token", thief.get_cookie("remember_token").value)
    assert fresh.get("/dashboard").status_code == 401
    assert api.get("/api/v1/me").status_code == 401
    owner = app.test_client()
    assert owner.post("/login", data={"email": "introducer@kequip.test", "password": "a-new-secret"}).status_code == 302
    assert owner.get("/dashboard").status_code == 200
