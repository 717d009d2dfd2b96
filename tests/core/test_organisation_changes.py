"""Changes of an organisation's key fields (an enterprise's tech-SME flag, actual controller and legal
representative; a platform's type, legal form and industries) asked by its own people wait for the bureau:
the other fields save at once, the organisation keeps its values until approval, one change waits at a
time, the bureau approves (applied under the row's lock, audited) or rejects with a reason, and the
requester sees the change waiting on the organisation's page and hears the outcome by mail (SQLite and
PostgreSQL). Racing decisions are in test_concurrency.py."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_babel import force_locale, gettext
from markupsafe import escape
from sqlalchemy import select

from core.jobs import send_outbox
from core.models import (
    AuditEntry,
    ChangeState,
    Enterprise,
    Industry,
    LegalForm,
    OrganisationChange,
    Platform,
    PlatformType,
)
from tests.vouchers.conftest import page_of


def said(app, msgid: str, **values) -> str:
    """A message as a page shows it: in Chinese, HTML-escaped."""
    with app.test_request_context(), force_locale("zh_CN"):
        return str(escape(gettext(msgid, **values)))


def last_audit(session, action: str) -> AuditEntry:
    return session.scalar(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc()))


@pytest.fixture
def enterprise(session, demo_user) -> Enterprise:
    return session.get(Enterprise, demo_user("enterprise").grants[0].organisation_id)


@pytest.fixture
def platform(session, demo_user) -> Platform:
    return session.get(Platform, demo_user("platform").grants[0].organisation_id)


def enterprise_form(enterprise: Enterprise, **changes) -> dict:
    data = {"name": enterprise.name, "address": enterprise.address or "",
            "legal_representative": enterprise.legal_representative,
            "actual_controller": enterprise.actual_controller or ""} | changes
    if data.pop("is_tech_sme", enterprise.is_tech_sme):
        data["is_tech_sme"] = "y"
    return data


def platform_form(platform: Platform, **changes) -> dict:
    return {"name": platform.name, "address": platform.address or "", "platform_type": platform.platform_type.value,
            "legal_form": platform.legal_form.value, "industries": [i.value for i in platform.industries],
            "description": platform.description or ""} | changes


def ask_for_enterprise_change(login_as, enterprise: Enterprise, **changes):
    return login_as("enterprise").post(f"/organisations/{enterprise.id}/edit", data=enterprise_form(enterprise, **changes))


def test_a_member_s_key_fields_wait_for_the_bureau_while_the_other_fields_save_at_once(app, login_as, session,
                                                                                     enterprise):
    was = (enterprise.is_tech_sme, enterprise.actual_controller, enterprise.legal_representative)
    response = ask_for_enterprise_change(login_as, enterprise, address="柯桥新址 9 号", is_tech_sme=not was[0],
                                         actual_controller="赵六", legal_representative="新法人")
    assert response.status_code == 302
    session.expire_all()
    assert enterprise.address == "柯桥新址 9 号"
    assert (enterprise.is_tech_sme, enterprise.actual_controller, enterprise.legal_representative) == was
    change = session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == enterprise.id))
    assert change.state == ChangeState.PENDING
    assert change.old_values == {"is_tech_sme": was[0], "actual_controller": was[1], "legal_representative": was[2]}
    assert change.new_values == {"is_tech_sme": not was[0], "actual_controller": "赵六", "legal_representative": "新法人"}
    assert last_audit(session, "enterprise.updated").after == {"address": "柯桥新址 9 号"}
    assert last_audit(session, "organisation_change.requested").subject_id == change.id
    page = page_of(login_as("enterprise").get(f"/organisations/{enterprise.id}"))
    [box] = page.all("pending-change")
    fields = {row["data-field"]: row["text"] for row in page.all("change-field")}
    assert set(fields) == {"is_tech_sme", "actual_controller", "legal_representative"}
    assert "赵六" in fields["actual_controller"] and "新法人" in fields["legal_representative"]
    assert page.text("actual-controller") == (was[1] or "")  # the page's values stay until approval
    assert said(app, "Legal representative") in page_of(
        login_as("enterprise").get(f"/organisations/{enterprise.id}/edit")).text("reviewed-fields")


def test_saving_with_the_key_fields_as_they_are_asks_for_nothing(login_as, session, enterprise):
    assert ask_for_enterprise_change(login_as, enterprise, address="别处 1 号").status_code == 302
    assert session.scalar(select(OrganisationChange.id).where(OrganisationChange.organisation_id == enterprise.id)) \
        is None


def test_a_second_change_is_refused_while_one_waits_and_nothing_of_it_is_saved(app, login_as, session, enterprise):
    ask_for_enterprise_change(login_as, enterprise, actual_controller="赵六")
    response = ask_for_enterprise_change(login_as, enterprise, address="另一个地址", actual_controller="钱七")
    assert response.status_code == 200
    assert said(app, "A change of this organisation's key fields waits for the bureau's review already: ask again "
                     "once it is decided.") in response.get_data(as_text=True)
    session.expire_all()
    assert enterprise.address != "另一个地址"
    changes = session.scalars(select(OrganisationChange).where(OrganisationChange.organisation_id == enterprise.id)).all()
    assert [c.new_values for c in changes] == [{"actual_controller": "赵六"}]
    # the other fields still save while the change waits
    assert ask_for_enterprise_change(login_as, enterprise, address="另一个地址").status_code == 302
    session.expire_all()
    assert enterprise.address == "另一个地址"


def test_the_database_keeps_one_waiting_change_per_organisation(session, enterprise):
    session.add(OrganisationChange(organisation_id=enterprise.id, old_values={}, new_values={"is_tech_sme": True}))
    session.flush()
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
        session.add(OrganisationChange(organisation_id=enterprise.id, old_values={}, new_values={"is_tech_sme": False}))
        session.flush()


def test_the_bureau_approves_and_the_values_apply_audited_and_the_requester_hears(app, login_as, session, enterprise,
                                                                               mailbox):
    sme_before = enterprise.is_tech_sme
    ask_for_enterprise_change(login_as, enterprise, is_tech_sme=not sme_before, actual_controller="赵六")
    change = session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == enterprise.id))
    send_outbox()
    mailbox.messages.clear()
    bureau = login_as("bureau")
    review = page_of(bureau.get(f"/organisation-changes/{change.id}"))
    assert {row["data-field"]: (row["text"].split("→")[-1].strip()) for row in review.all("change-field")}[
        "actual_controller"] == "赵六"
    response = bureau.post(f"/organisation-changes/{change.id}/approve")
    assert response.status_code == 302
    session.expire_all()
    assert (enterprise.is_tech_sme, enterprise.actual_controller) == (not sme_before, "赵六")
    assert change.state == ChangeState.APPROVED and change.decided_at is not None
    applied = last_audit(session, "enterprise.updated")
    assert applied.actor_label == "bureau@kequip.test" and applied.after == {"is_tech_sme": not sme_before,
                                                                              "actual_controller": "赵六"}
    assert last_audit(session, "organisation_change.approved").subject_id == change.id
    assert send_outbox() == 1
    mail = mailbox.wait_for("enterprise@kequip.test")
    assert enterprise.name in mail["Subject"] and "批准" in mail["Subject"]
    page = page_of(login_as("enterprise").get(f"/organisations/{enterprise.id}"))
    assert not page.all("pending-change") and page.one("decided-change")["data-state"] == "approved"
    assert page.text("actual-controller") == "赵六"


def test_the_tech_sme_flag_decides_the_voucher_ratio_only_once_approved(login_as, session, enterprise):
    from vouchers.models import Programme

    programme = Programme(coverage_bp=3_000, sme_coverage_bp=7_000)
    before = programme.coverage_bp_for(enterprise)
    ask_for_enterprise_change(login_as, enterprise, is_tech_sme=not enterprise.is_tech_sme)
    session.expire_all()
    assert programme.coverage_bp_for(enterprise) == before
    change = session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == enterprise.id))
    login_as("bureau").post(f"/organisation-changes/{change.id}/approve")
    session.expire_all()
    assert programme.coverage_bp_for(enterprise) == ({3_000, 7_000} - {before}).pop()


def test_the_bureau_rejects_with_a_reason_and_the_organisation_keeps_its_values(app, login_as, session, enterprise,
                                                                                mailbox):
    controller = enterprise.actual_controller
    ask_for_enterprise_change(login_as, enterprise, actual_controller="赵六")
    change = session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == enterprise.id))
    send_outbox()
    mailbox.messages.clear()
    bureau = login_as("bureau")
    refused = bureau.post(f"/organisation-changes/{change.id}/reject", data={"reason": "  "})
    assert refused.status_code == 422 and "reason" in page_of(refused).invalid
    session.expire_all()
    assert change.state == ChangeState.PENDING
    assert bureau.post(f"/organisation-changes/{change.id}/reject", data={"reason": "无工商变更材料"}).status_code == 302
    session.expire_all()
    assert (change.state, change.decision_note, enterprise.actual_controller) == (
        ChangeState.REJECTED, "无工商变更材料", controller)
    assert last_audit(session, "organisation_change.rejected").after == {"state": "rejected", "reason": "无工商变更材料"}
    assert send_outbox() == 1
    mail = mailbox.wait_for("enterprise@kequip.test")
    assert "无工商变更材料" in mail.get_body(("plain",)).get_content()
    page = page_of(login_as("enterprise").get(f"/organisations/{enterprise.id}"))
    decided = page.one("decided-change")
    assert decided["data-state"] == "rejected" and "无工商变更材料" in decided["text"]
    # decided: a new change may be asked
    assert ask_for_enterprise_change(login_as, enterprise, actual_controller="钱七").status_code == 302


def test_a_change_decided_already_is_not_decided_again(app, login_as, session, enterprise):
    controller = enterprise.actual_controller
    ask_for_enterprise_change(login_as, enterprise, actual_controller="赵六")
    change = session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == enterprise.id))
    bureau = login_as("bureau")
    bureau.post(f"/organisation-changes/{change.id}/reject", data={"reason": "不符"})
    again = bureau.post(f"/organisation-changes/{change.id}/approve", follow_redirects=True)
    assert said(app, "This change was decided already: %(state)s.", state=said(app, "Rejected")) \
        in again.get_data(as_text=True)
    session.expire_all()
    assert (change.state, enterprise.actual_controller) == (ChangeState.REJECTED, controller)


def test_a_platform_s_type_legal_form_and_industries_wait_and_apply_on_approval(login_as, session, platform):
    platform_type, legal_form, industries = platform.platform_type, platform.legal_form, set(platform.industries)
    new_type = next(t for t in PlatformType if t != platform_type)
    new_form = next(f for f in LegalForm if f != legal_form)
    new_industries = {Industry.BIOMEDICINE, Industry.SEMICONDUCTOR_OPTOELECTRONICS}
    response = login_as("platform").post(f"/organisations/{platform.id}/edit", data=platform_form(
        platform, platform_type=new_type.value, legal_form=new_form.value, industries=[i.value for i in new_industries],
        description="新的简介"))
    assert response.status_code == 302
    session.expire_all()
    assert platform.description == "新的简介"
    assert (platform.platform_type, platform.legal_form, set(platform.industries)) == (
        platform_type, legal_form, industries)
    change = session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == platform.id))
    assert change.new_values == {"platform_type": new_type.value, "legal_form": new_form.value,
                                 "industries": sorted(i.value for i in new_industries)}
    login_as("bureau").post(f"/organisation-changes/{change.id}/approve")
    session.expire_all()
    assert (platform.platform_type, platform.legal_form, set(platform.industries)) == (
        new_type, new_form, new_industries)


def test_the_bureau_s_own_edit_of_key_fields_applies_at_once(login_as, session, enterprise):
    data = enterprise_form(enterprise, actual_controller="孙八") | {"credit_code": enterprise.credit_code}
    assert login_as("bureau").post(f"/organisations/{enterprise.id}/edit", data=data).status_code == 302
    session.expire_all()
    assert enterprise.actual_controller == "孙八"
    assert session.scalar(select(OrganisationChange.id).where(OrganisationChange.organisation_id == enterprise.id)) \
        is None


def test_the_queue_shows_old_and_new_counts_on_the_dashboard_and_approves_the_chosen(login_as, session, enterprise,
                                                                                     platform):
    bureau = login_as("bureau")

    def waiting() -> int:
        return {t["data-endpoint"]: int(t["text"].split()[-1]) for t in page_of(bureau.get("/dashboard")).all("todo")
                }.get("core.organisation_changes", 0)

    before = waiting()
    ask_for_enterprise_change(login_as, enterprise, actual_controller="赵六")
    login_as("platform").post(f"/organisations/{platform.id}/edit", data=platform_form(
        platform, industries=[Industry.BIOMEDICINE.value]))
    assert waiting() == before + 2
    queue = page_of(bureau.get("/organisation-changes"))
    assert queue.all("select-all")
    rows = {row["data-id"]: row["text"] for row in queue.all("change-row")}
    ids = [c.id for c in session.scalars(select(OrganisationChange).where(
        OrganisationChange.organisation_id.in_([enterprise.id, platform.id])).order_by(OrganisationChange.id))]
    assert "赵六" in rows[str(ids[0])] and enterprise.name in rows[str(ids[0])] and platform.name in rows[str(ids[1])]
    assert 'href="/organisation-changes"' in bureau.get("/dashboard").get_data(as_text=True)
    response = bureau.post("/organisation-changes/approve-chosen", data={"change_id": [str(i) for i in ids]})
    assert response.status_code == 302
    session.expire_all()
    assert enterprise.actual_controller == "赵六" and platform.industries == [Industry.BIOMEDICINE]
    assert waiting() == before
    assert [a.subject_id for a in session.scalars(select(AuditEntry).where(
        AuditEntry.action == "organisation_change.approved", AuditEntry.subject_id.in_(ids)))] == ids


def test_approving_the_chosen_is_all_or_nothing(app, login_as, session, enterprise, platform):
    ask_for_enterprise_change(login_as, enterprise, actual_controller="赵六")
    login_as("platform").post(f"/organisations/{platform.id}/edit", data=platform_form(
        platform, industries=[Industry.BIOMEDICINE.value]))
    ids = [c.id for c in session.scalars(select(OrganisationChange).where(
        OrganisationChange.organisation_id.in_([enterprise.id, platform.id])).order_by(OrganisationChange.id))]
    bureau = login_as("bureau")
    bureau.post(f"/organisation-changes/{ids[1]}/reject", data={"reason": "不符"})
    response = bureau.post("/organisation-changes/approve-chosen", data={"change_id": [str(i) for i in ids]},
                           follow_redirects=True)
    assert said(app, "This change was decided already: %(state)s.", state=said(app, "Rejected")) \
        in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(OrganisationChange, ids[0]).state == ChangeState.PENDING
    assert enterprise.actual_controller != "赵六"
    nothing = bureau.post("/organisation-changes/approve-chosen", data={"change_id": ["x"]}, follow_redirects=True)
    assert said(app, "Choose the changes to approve.") in nothing.get_data(as_text=True)


@pytest.mark.parametrize("who", ["enterprise", "platform", "auditor", "finance"])
def test_only_the_bureau_reviews_changes(login_as, session, enterprise, who):
    ask_for_enterprise_change(login_as, enterprise, actual_controller="赵六")
    change = session.scalar(select(OrganisationChange).where(OrganisationChange.organisation_id == enterprise.id))
    client = login_as(who)
    assert client.get("/organisation-changes").status_code == 403
    assert client.get(f"/organisation-changes/{change.id}").status_code == 403
    assert client.post(f"/organisation-changes/{change.id}/approve").status_code == 403
    assert client.post(f"/organisation-changes/{change.id}/reject", data={"reason": "x"}).status_code == 403
    assert client.post("/organisation-changes/approve-chosen", data={"change_id": [str(change.id)]}).status_code == 403
    session.expire_all()
    assert change.state == ChangeState.PENDING
    assert login_as("bureau").get("/organisation-changes/2147483000").status_code == 404
