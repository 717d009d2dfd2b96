"""Bad input of any kind: a clear answer, never a 500, and nothing changed."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.models import AuditEntry, Enterprise, RoleGrant, User, VerificationState


def counts(session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(model)) for model in (User, RoleGrant, AuditEntry))


@pytest.mark.parametrize("query", ["?kind=bogus&state=bogus", "?page=-5", "?page=abc", "?page=99999",
                                   "?q=%FF%FE", "?q=" + "长" * 5000])
def test_listing_pages_take_any_query(login_as, query):
    client = login_as("bureau")
    for path in ("/organisations", "/users", "/audit"):
        assert client.get(path + query).status_code == 200, path + query


@pytest.mark.parametrize("path", ["/organisations/abc", "/organisations/99999999", "/users/0",
                                  "/organisations/99999999/edit", "/password/reset/%00"])
def test_unknown_objects_are_404_or_a_clear_redirect(login_as, path):
    assert login_as("bureau").get(path).status_code in (302, 400, 404)


@pytest.mark.parametrize("data", [{"role": "emperor"}, {"role": "auditor", "organisation_id": "abc"},
                                  {"role": "platform_admin", "organisation_id": "99999999"}, {}])
def test_bad_role_grants_change_nothing(login_as, session, demo_user, data):
    before = counts(session)
    response = login_as("bureau").post(f"/users/{demo_user('expert').id}/roles", data=data)
    assert response.status_code == 422
    assert counts(session) == before


@pytest.mark.parametrize("decision", ["bogus", "", "pending"])
def test_bad_verification_decisions_change_nothing(login_as, session, demo_user, decision):
    enterprise_id = demo_user("enterprise").grants[0].organisation_id
    response = login_as("bureau").post(f"/organisations/{enterprise_id}/verify", data={"decision": decision})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Enterprise, enterprise_id).verification_state == VerificationState.VERIFIED


@pytest.mark.parametrize("field, value", [("email", "not-an-email"), ("email", "a@" + "b" * 300 + ".cn"),
                                          ("name", "名" * 500), ("password", "short"),
                                          ("password_again", "different-pass"), ("phone", "1" * 100)])
def test_registration_shows_each_bad_field_beside_it(client, session, field, value):
    data = {"name": "李雷", "email": "ok@example.com", "password": "s3cret-pass", "password_again": "s3cret-pass",
            "enterprise_name": "绍兴坏输入有限公司", "credit_code": "91330621MA20000013", "legal_representative": "韩"}
    before = counts(session)
    html = client.post("/register", data=data | {field: value}).get_data(as_text=True)
    assert f'id="{field}"' in html and "is-invalid" in html
    assert counts(session) == before


def test_binary_garbage_in_a_form_is_refused_cleanly(client, session):
    before = counts(session)
    response = client.post("/login", data=b"\xff\xfe\x00garbage=\x80\x81",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 400)
    assert counts(session) == before
