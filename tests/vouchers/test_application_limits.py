"""An application within what the enterprise may still get, withdrawing while it waits, and the
approval that shows the pool and says why it cannot be made: the yearly cap left refuses an application
(page and API) with the room in yuan; the member withdraws (page and API, audited), no one else does,
and not once decided; a second approval says it is already approved; a short pool says what it has."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.db import utcnow
from core.errors import Conflict, RuleBroken
from core.models import AuditEntry, User
from tests.vouchers.conftest import enterprise_of, page_of
from tests.vouchers.test_applications import application_form, applications_of, said
from vouchers import services
from vouchers.models import ApplicationState

CAP_MESSAGE = "The enterprise's group has %(left)s left of its yearly cap."


@pytest.fixture
def capped(create_programme, issue_voucher):
    """A programme capping an enterprise at ¥200,000 a year, of which the demo enterprise holds ¥30,000."""
    programme = create_programme(enterprise_year_cap_fen=200_000_00)
    issue_voucher(amount_fen=30_000_00, programme=programme)
    return programme


# --- the yearly cap left, when applying -----------------------------------------------------------

def test_an_application_above_the_cap_left_is_refused_with_the_room_to_the_fen(app, session, demo_user, capped,
                                                                                 apply_for):
    with pytest.raises(RuleBroken) as refused:
        apply_for(programme=capped, requested_fen=250_000_00)
    assert (refused.value.code, refused.value.field) == ("enterprise_cap_exceeded", "requested_fen")
    assert "¥170,000.00" in refused.value.message
    with pytest.raises(RuleBroken):
        apply_for(programme=capped, requested_fen=170_000_01)
    assert services.cap_room_fen(session, capped, enterprise_of(demo_user("enterprise"))) == 170_000_00
    assert apply_for(programme=capped, requested_fen=170_000_00).state == ApplicationState.SUBMITTED


def test_the_apply_page_shows_the_room_beside_the_amount(app, login_as, session, capped):
    response = login_as("enterprise").post(f"/voucher-programmes/{capped.id}/apply",
                                           data=application_form(requested_fen="250000.00"))
    assert response.status_code == 422
    assert "requested_fen" in page_of(response).invalid
    assert said(app, CAP_MESSAGE, left="¥170,000.00") in response.get_data(as_text=True)
    assert [a.requested_fen for a in applications_of(session, capped)] == [30_000_00]  # the issued one only


def test_one_controller_group_shares_the_room_when_applying(session, create_member, create_programme, issue_voucher,
                                                            apply_for):
    programme = create_programme(enterprise_year_cap_fen=100_00)
    sister, brother = create_member(actual_controller="张三"), create_member(actual_controller="张三")
    issue_voucher(sister, amount_fen=60_55, programme=programme)
    with pytest.raises(RuleBroken) as refused:
        apply_for(user=brother, programme=programme, requested_fen=39_46)
    assert refused.value.code == "enterprise_cap_exceeded" and "¥39.45" in refused.value.message
    assert apply_for(user=brother, programme=programme, requested_fen=39_45).requested_fen == 39_45


def test_the_api_refuses_above_the_cap_left_with_its_code(api_as, capped):
    response = api_as("enterprise").post("/api/v1/voucher-applications", json={
        "programme_id": capped.id, "requested_fen": 250_000_00, "purpose": "检测"})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "enterprise_cap_exceeded"
    assert "170,000.00" in response.json["error"]["message"]


# --- withdrawing ------------------------------------------------------------------------------------

def withdrawn_audit(session, application) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "voucher_application.withdrawn",
                                                         AuditEntry.subject_id == application.id)))


def test_the_member_withdraws_a_waiting_application_on_its_page(app, login_as, session, demo_user, create_programme,
                                                                 apply_for):
    programme = create_programme()
    application = apply_for(programme=programme)
    client = login_as("enterprise")
    form = page_of(client.get(f"/voucher-applications/{application.id}")).one("withdraw-form")
    assert form["action"] == f"/voucher-applications/{application.id}/withdraw"
    assert 'name="csrf_token"' in client.get(f"/voucher-applications/{application.id}").get_data(as_text=True)
    response = client.post(f"/voucher-applications/{application.id}/withdraw", follow_redirects=True)
    assert said(app, "The application is withdrawn.") in response.get_data(as_text=True)
    session.refresh(application)
    assert application.state == ApplicationState.WITHDRAWN
    assert page_of(response).one("state")["data-state"] == "withdrawn"
    assert not page_of(response).all("withdraw-form")
    [entry] = withdrawn_audit(session, application)
    assert (entry.actor_id, entry.before, entry.after) == (demo_user("enterprise").id, {"state": "submitted"},
                                                           {"state": "withdrawn"})
    assert apply_for(programme=programme).state == ApplicationState.SUBMITTED  # a new one may follow


@pytest.mark.parametrize("who, status", [("stranger", 404), ("bureau", 403), ("platform", 403)])
def test_no_one_else_withdraws(login_as, session, create_member, apply_for, who, status):
    application = apply_for()
    client = login_as(create_member().email if who == "stranger" else who)
    assert client.post(f"/voucher-applications/{application.id}/withdraw").status_code == status
    session.refresh(application)
    assert application.state == ApplicationState.SUBMITTED and not withdrawn_audit(session, application)


def test_a_decided_application_cannot_be_withdrawn(app, login_as, session, demo_user, apply_for):
    application = apply_for(requested_fen=100_00)
    bureau = demo_user("bureau")
    services.approve_application(session, application, actor=Actor.of(bureau, None), user=bureau, amount_fen=100_00,
                                 now=utcnow())
    client = login_as("enterprise")
    assert not page_of(client.get(f"/voucher-applications/{application.id}")).all("withdraw-form")
    response = client.post(f"/voucher-applications/{application.id}/withdraw", follow_redirects=True)
    assert said(app, "This application is already approved.") in response.get_data(as_text=True)
    session.refresh(application)
    assert (application.state, application.approved_fen) == (ApplicationState.APPROVED, 100_00)
    assert not withdrawn_audit(session, application)


def test_the_api_withdraws_for_the_member_only_and_not_after_a_decision(api_as, session, demo_user, create_member,
                                                                         create_programme, apply_for):
    programme = create_programme()
    mine, rejected = apply_for(programme=programme), apply_for(user=create_member(), programme=programme)
    stranger = create_member()
    assert api_as(stranger.email).post(f"/api/v1/voucher-applications/{mine.id}/withdraw").json["error"]["code"] \
        == "not_found"
    assert api_as("platform").post(f"/api/v1/voucher-applications/{mine.id}/withdraw").status_code == 403
    response = api_as("enterprise").post(f"/api/v1/voucher-applications/{mine.id}/withdraw")
    assert (response.status_code, response.json["state"], response.json["id"]) == (200, "withdrawn", mine.id)
    again = api_as("enterprise").post(f"/api/v1/voucher-applications/{mine.id}/withdraw")
    assert (again.status_code, again.json["error"]["code"]) == (409, "already_withdrawn")
    assert len(withdrawn_audit(session, mine)) == 1
    bureau = demo_user("bureau")
    services.reject_application(session, rejected, actor=Actor.of(bureau, None), user=bureau, reason="材料不全",
                                now=utcnow())
    owner = session.get(User, rejected.applicant_id)
    refused = api_as(owner.email).post(f"/api/v1/voucher-applications/{rejected.id}/withdraw")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "already_rejected")
    session.refresh(rejected)
    assert rejected.state == ApplicationState.REJECTED


def test_withdrawing_is_in_the_openapi_document(api_as):
    document = api_as(None).get("/api/v1/openapi.json").json
    withdraw = document["paths"]["/api/v1/voucher-applications/{application_id}/withdraw"]["post"]
    assert "already_approved" in withdraw["responses"]["409"]["description"]
    assert "enterprise_cap_exceeded" in document["paths"]["/api/v1/voucher-applications"]["post"]["responses"][
        "422"]["description"]


# --- approving ----------------------------------------------------------------------------------------

def test_the_approve_buttons_show_the_pool_left(login_as, create_programme, issue_voucher, create_member, apply_for):
    programme = create_programme(pool_fen=1_000_00)
    issue_voucher(amount_fen=333_33, programme=programme)
    waiting = apply_for(user=create_member(), programme=programme, requested_fen=100_00)
    client = login_as("bureau")
    for url in (f"/voucher-applications?programme_id={programme.id}", f"/voucher-applications/{waiting.id}"):
        [left] = page_of(client.get(url)).all("pool-left")
        assert (left["data-fen"], "¥666.67" in left["text"]) == (str(666_67), True)


def test_approving_more_than_the_pool_has_says_how_much_is_left(app, login_as, session, create_programme,
                                                                 issue_voucher, create_member, apply_for):
    programme = create_programme(pool_fen=100_00)
    issue_voucher(amount_fen=59_99, programme=programme)
    waiting = apply_for(user=create_member(), programme=programme, requested_fen=60_00)
    refused = login_as("bureau").post(f"/voucher-applications/{waiting.id}/approve",
                                      data={f"a{waiting.id}-amount_fen": "40.02"}, follow_redirects=True)
    assert said(app, "The programme's pool has only %(left)s left.", left="¥40.01") in refused.get_data(as_text=True)
    session.refresh(programme), session.refresh(waiting)
    assert (programme.issued_fen, waiting.state) == (59_99, ApplicationState.SUBMITTED)


def test_a_second_approval_says_it_is_already_approved(app, login_as, session, apply_for):
    application = apply_for(requested_fen=100_00)
    client = login_as("bureau")
    client.post(f"/voucher-applications/{application.id}/approve", data={f"a{application.id}-amount_fen": "80"})
    again = client.post(f"/voucher-applications/{application.id}/approve",
                        data={f"a{application.id}-amount_fen": "80"}, follow_redirects=True)
    assert said(app, "This application is already approved.") in again.get_data(as_text=True)
    session.refresh(application)
    assert application.approved_fen == 80_00 and application.programme.issued_fen == 80_00


def test_a_withdrawn_application_is_not_decided(session, demo_user, apply_for):
    application = apply_for()
    member, bureau = demo_user("enterprise"), demo_user("bureau")
    services.withdraw_application(session, application, actor=Actor.of(member, None), user=member)
    with pytest.raises(Conflict) as refused:
        services.approve_application(session, application, actor=Actor.of(bureau, None), user=bureau,
                                     amount_fen=application.requested_fen, now=utcnow())
    assert refused.value.code == "already_withdrawn"
    with pytest.raises(Conflict):
        services.reject_application(session, application, actor=Actor.of(bureau, None), user=bureau, reason="x",
                                    now=utcnow())
    assert application.programme.issued_fen == 0
