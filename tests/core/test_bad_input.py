"""Bad input of any kind: a clear answer, never a 500, and nothing changed."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from core.models import AuditEntry, Enterprise, RoleGrant, User, VerificationState


def counts(session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(model)) for model in (User, RoleGrant, AuditEntry))


@pytest.mark.parametrize("query", ["?kind=bogus&state=bogus", "?page=-5", "?page=abc", "?page=99999",
                                   "?page=99999999999999999999", "?q=%FF%FE", "?q=" + "长" * 5000])
def test_listing_pages_take_any_query(login_as, query):
    client = login_as("bureau")
    for path in ("/organisations", "/users", "/audit"):
        assert client.get(path + query).status_code == 200, path + query


@pytest.mark.parametrize("path", ["/organisations/abc", "/organisations/99999999", "/users/0",
                                  "/users/99999999999999999999", "/organisations/2147483648/edit",
                                  "/voucher-claims/99999999999999999999", "/bookings/99999999999999999999/pay",
                                  "/voucher-programmes/0", "/password/reset/%00"])
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


# --- what no view could answer: refused at the door on both databases -------------------------

def error_of(response) -> tuple[int, str]:
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return response.status_code, body["error"]["code"]


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
LONG_NUMBER = "9" * 5001  # Python's int() refuses more than 4,300 digits


@pytest.mark.parametrize("body", [DEEP_JSON, b'{"email": ' + DEEP_JSON + b', "password": "x"}',
                                  f'{{"email": "a@b.cn", "password": {LONG_NUMBER}}}'.encode(),
                                  b'{"email": "\xff\xfe", "password": "x"}', b'{"email": '],
                         ids=["deep", "deep-field", "5001-digits", "bad-utf8", "truncated"])
def test_unparsable_json_is_400_invalid_json_even_unauthenticated(api_as, body):
    response = api_as(None).post("/api/v1/tokens", data=body, content_type="application/json")
    assert error_of(response) == (400, "invalid_json")


@pytest.mark.parametrize("body", [{"programme_id": 1, "requested_fen": "LONG", "purpose": "x"},
                                  {"programme_id": 1, "requested_fen": 1, "purpose": "x", "extra": [[["LONG"]]]}])
def test_a_5001_digit_number_is_400_on_an_authenticated_endpoint_and_changes_nothing(api_as, session, body):
    before = counts(session)
    text = json.dumps(body).replace('"LONG"', LONG_NUMBER)
    response = api_as("enterprise").post("/api/v1/voucher-applications", data=text, content_type="application/json")
    assert error_of(response) == (400, "invalid_json")
    assert counts(session)[0:2] == before[0:2]


@pytest.mark.parametrize("body, field", [({"email": "a\u0000@b.cn", "password": "x"}, "email"),
                                         ({"email": "a@b.cn", "password": "x", "nested": [{"deep": "\u0000"}]}, "nested"),
                                         ({"email": "a@b.cn", "password": "x", "ke\u0000y": 1}, "ke\u0000y")])
def test_nul_anywhere_in_a_json_body_is_422_by_field(api_as, body, field):
    response = api_as(None).post("/api/v1/tokens", json=body)
    assert error_of(response) == (422, "validation_error")
    assert list(response.get_json()["error"]["fields"]) == [field]


def test_nul_in_a_json_string_of_a_booking_is_refused_before_any_rule(api_as, session):
    response = api_as("enterprise").post("/api/v1/bookings", json={"instrument_id": 1, "start": "2030-01-07T09:00+08:00",
                                                                   "end": "2030-01-07T10:00\u0000+08:00"})
    assert error_of(response) == (422, "validation_error") and "end" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("path, data", [("/register", {"name": "李\x00雷", "email": "x@example.com"}),
                                        ("/login", {"email": "bureau@kequip.test", "password": "a\x00b"})])
def test_nul_in_any_form_field_is_400_with_a_message_and_changes_nothing(client, session, path, data):
    before = counts(session)
    response = client.post(path, data=data)
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    assert counts(session) == before


@pytest.mark.parametrize("query", ["?page=" + LONG_NUMBER, "?q=" + LONG_NUMBER, "?min_yuan=" + LONG_NUMBER,
                                   "?min_yuan=1e26", "?max_yuan=-" + LONG_NUMBER])
def test_5001_digit_numbers_in_a_query_are_answered_without_a_server_error(client, query):
    assert client.get("/catalogue" + query).status_code in (200, 400, 422)


@pytest.mark.parametrize("query", ["page=" + LONG_NUMBER, "price_min=" + LONG_NUMBER, "price_max=1e26",
                                   "price_max=" + "9" * 30])
def test_huge_numbers_in_an_api_query_are_422(api_as, query):
    assert error_of(api_as(None).get("/api/v1/instruments?" + query))[0] == 422


def test_an_oversized_body_is_413_as_json_in_the_api_and_as_a_page_elsewhere(app, api_as, login_as):
    too_large = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = api_as(None).post("/api/v1/tokens", data=too_large, content_type="application/json")
    assert error_of(response) == (413, "payload_too_large")
    page = login_as("platform").post("/instruments/import", data=too_large,
                                     content_type="multipart/form-data; boundary=x")
    assert page.status_code == 413 and page.mimetype == "text/html"
