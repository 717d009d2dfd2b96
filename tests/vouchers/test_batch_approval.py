"""The bureau approves chosen applications in one action, each at the amount it asks: all or none. A pool
short of the sum refuses the batch naming the sum and what is left; an application breaking a rule of its
own (decided already, over its group's yearly cap) refuses the batch naming it and why; each approval is
audited on its own (SQLite and PostgreSQL). Concurrent batches are in test_concurrency.py."""
from __future__ import annotations

import pytest
from flask_babel import force_locale, ngettext
from sqlalchemy import select

from core.models import AuditEntry
from tests.vouchers.conftest import page_of
from tests.vouchers.test_applications import said
from vouchers.models import ApplicationState, Voucher


def states(session, *applications) -> list[ApplicationState]:
    for application in applications:
        session.refresh(application)
    return [a.state for a in applications]


def test_the_bureau_approves_the_chosen_applications_in_one_action(app, login_as, session, create_programme,
                                                                   create_member, apply_for):
    programme = create_programme(pool_fen=500_00)
    first = apply_for(programme=programme, requested_fen=200_00)
    second = apply_for(user=create_member(), programme=programme, requested_fen=300_00)
    untouched = apply_for(user=create_member(), programme=programme, requested_fen=1_00)
    client = login_as("bureau")
    queue = page_of(client.get(f"/voucher-applications?programme_id={programme.id}"))
    assert queue.all("select-all") and queue.all("approve-chosen")
    response = client.post("/voucher-applications/approve-chosen",
                           data={"application_id": [str(first.id), str(second.id)]}, follow_redirects=True)
    with app.test_request_context(), force_locale("zh_CN"):
        done = ngettext("%(num)d application approved; its voucher is issued.",
                        "%(num)d applications approved; their vouchers are issued.", 2)
    assert done in response.get_data(as_text=True)
    assert states(session, first, second, untouched) == [ApplicationState.APPROVED] * 2 + [ApplicationState.SUBMITTED]
    assert (first.approved_fen, second.approved_fen) == (200_00, 300_00)
    session.refresh(programme)
    assert programme.issued_fen == 500_00
    amounts = session.scalars(select(Voucher.amount_fen).where(Voucher.programme_id == programme.id)
                              .order_by(Voucher.amount_fen)).all()
    assert amounts == [200_00, 300_00]
    audited = session.scalars(select(AuditEntry.subject_id).where(
        AuditEntry.action == "voucher_application.approved", AuditEntry.subject_id.in_([first.id, second.id]))).all()
    assert sorted(audited) == sorted([first.id, second.id])


def test_a_pool_short_of_the_sum_approves_nothing_and_says_the_sum_and_what_is_left(
        app, login_as, session, create_programme, create_member, apply_for):
    programme = create_programme(pool_fen=500_00)
    first = apply_for(programme=programme, requested_fen=300_00)
    second = apply_for(user=create_member(), programme=programme, requested_fen=300_00)
    response = login_as("bureau").post("/voucher-applications/approve-chosen",
                                       data={"application_id": [str(first.id), str(second.id)]},
                                       follow_redirects=True)
    assert said(app, "Nothing was approved: the chosen applications need %(needed)s from the pool of %(name)s, "
                     "which has only %(left)s left.", needed="¥600.00", name=programme.name, left="¥500.00") \
        in response.get_data(as_text=True)
    assert states(session, first, second) == [ApplicationState.SUBMITTED] * 2
    session.refresh(programme)
    assert programme.issued_fen == 0
    assert session.scalar(select(Voucher.id).where(Voucher.programme_id == programme.id)) is None


def test_one_application_breaking_its_group_cap_refuses_the_batch_and_is_named(
        app, login_as, session, create_programme, create_member, apply_for):
    programme = create_programme(enterprise_year_cap_fen=100_00)
    sister, brother = create_member(actual_controller="王五"), create_member(actual_controller="王五")
    outsider = create_member()
    a = apply_for(user=sister, programme=programme, requested_fen=60_00)
    b = apply_for(user=brother, programme=programme, requested_fen=60_00)  # the group's cap counts a's voucher
    c = apply_for(user=outsider, programme=programme, requested_fen=60_00)
    response = login_as("bureau").post("/voucher-applications/approve-chosen",
                                       data={"application_id": [str(a.id), str(b.id), str(c.id)]},
                                       follow_redirects=True)
    refusal = said(app, "%(enterprise)s, application %(id)d: %(reason)s", enterprise=b.enterprise.name, id=b.id,
                   reason=said(app, "The enterprise's group has %(left)s left of its yearly cap.", left="¥40.00"))
    assert said(app, "Nothing was approved. %(refusals)s", refusals=refusal) in response.get_data(as_text=True)
    assert states(session, a, b, c) == [ApplicationState.SUBMITTED] * 3
    session.refresh(programme)
    assert programme.issued_fen == 0


def test_an_application_decided_already_refuses_the_batch_and_says_so(app, login_as, session, create_programme,
                                                                      create_member, apply_for):
    programme = create_programme()
    done = apply_for(programme=programme, requested_fen=10_00)
    waiting = apply_for(user=create_member(), programme=programme, requested_fen=10_00)
    client = login_as("bureau")
    client.post(f"/voucher-applications/{done.id}/approve", data={f"a{done.id}-amount_fen": "10"})
    response = client.post("/voucher-applications/approve-chosen",
                           data={"application_id": [str(done.id), str(waiting.id)]}, follow_redirects=True)
    text = response.get_data(as_text=True)
    assert said(app, "This application is already approved.") in text and done.enterprise.name in text
    assert states(session, done, waiting) == [ApplicationState.APPROVED, ApplicationState.SUBMITTED]
    session.refresh(programme)
    assert programme.issued_fen == 10_00


@pytest.mark.parametrize("data", [{}, {"application_id": ["abc", "-1", "99999999999"]}])
def test_nothing_chosen_or_ids_that_are_no_ids_approve_nothing(app, login_as, apply_for, session, data):
    application = apply_for()
    response = login_as("bureau").post("/voucher-applications/approve-chosen", data=data, follow_redirects=True)
    assert response.status_code == 200
    assert said(app, "Choose the applications to approve.") in response.get_data(as_text=True)
    assert states(session, application) == [ApplicationState.SUBMITTED]


def test_an_application_that_does_not_exist_refuses_the_batch(app, login_as, apply_for, session):
    application = apply_for()
    response = login_as("bureau").post("/voucher-applications/approve-chosen",
                                       data={"application_id": [str(application.id), "2147483000"]},
                                       follow_redirects=True)
    assert said(app, "Some of the chosen applications no longer exist.") in response.get_data(as_text=True)
    assert states(session, application) == [ApplicationState.SUBMITTED]


@pytest.mark.parametrize("who", ["enterprise", "auditor", "finance", "platform"])
def test_only_the_bureau_approves_in_a_batch(login_as, session, apply_for, who):
    application = apply_for()
    assert login_as(who).post("/voucher-applications/approve-chosen",
                              data={"application_id": [str(application.id)]}).status_code == 403
    assert states(session, application) == [ApplicationState.SUBMITTED]
    assert not page_of(login_as("auditor").get("/voucher-applications")).all("select-all")
