"""The bureau's work on organisations and roles, and the audit trail each change leaves."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from core.demo import demo_credit_code
from core.models import AuditEntry, Enterprise, Platform, Role, RoleGrant, User, VerificationState


def last_audit(session, action: str) -> AuditEntry:
    return session.scalar(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc()))


@pytest.fixture
def pending_enterprise(client, session):
    client.post("/register", data={
        "name": "张三", "email": "zhang@example.com", "password": "password-1", "password_again": "password-1",
        "enterprise_name": "柯桥待审企业有限公司", "credit_code": demo_credit_code(777), "legal_representative": "张三"})
    return session.scalar(select(Enterprise).where(Enterprise.credit_code == demo_credit_code(777)))


def test_bureau_lists_pending_enterprises_and_verifies_one(login_as, session, pending_enterprise):
    bureau = login_as("bureau")
    listing = bureau.get("/organisations?kind=enterprise&state=pending").get_data(as_text=True)
    assert pending_enterprise.name in listing and "柯桥华纺" not in listing
    response = bureau.post(f"/organisations/{pending_enterprise.id}/verify", data={"decision": "verified"})
    assert response.status_code == 302
    session.refresh(pending_enterprise)
    assert pending_enterprise.verification_state == VerificationState.VERIFIED
    entry = last_audit(session, "enterprise.verified")
    assert (entry.subject_id, entry.before, entry.after["verification_state"]) == (
        pending_enterprise.id, {"verification_state": "pending"}, "verified")
    assert entry.actor_label == "bureau@kequip.test" and entry.ip


def test_rejection_needs_a_reason(login_as, session, pending_enterprise):
    bureau = login_as("bureau")
    bureau.post(f"/organisations/{pending_enterprise.id}/verify", data={"decision": "rejected", "note": " "})
    session.refresh(pending_enterprise)
    assert pending_enterprise.verification_state == VerificationState.PENDING
    bureau.post(f"/organisations/{pending_enterprise.id}/verify", data={"decision": "rejected", "note": "执照不符"})
    session.refresh(pending_enterprise)
    assert (pending_enterprise.verification_state, pending_enterprise.verification_note) == (
        VerificationState.REJECTED, "执照不符")


def test_illegal_verification_move_is_refused_with_a_message(login_as, session, pending_enterprise):
    bureau = login_as("bureau")
    bureau.post(f"/organisations/{pending_enterprise.id}/verify", data={"decision": "verified"})
    page = bureau.post(f"/organisations/{pending_enterprise.id}/verify", data={"decision": "verified"},
                       follow_redirects=True)
    assert "alert-danger" in page.get_data(as_text=True)


def test_platform_admin_edits_own_platform_and_the_change_is_audited(login_as, session, demo_user):
    platform_id = demo_user("platform").grants[0].organisation_id
    response = login_as("platform").post(f"/organisations/{platform_id}/edit", data={
        "name": "柯桥纺织产业创新研究院", "address": "新地址 2 号", "platform_type": "research_institute",
        "legal_form": "public_institution", "industries": ["modern_textiles", "biomedicine"], "description": "简介"})
    assert response.status_code == 302
    platform = session.get(Platform, platform_id)
    session.refresh(platform)
    # the address is saved at once; the industries, a key field, wait for the bureau (test_organisation_changes.py)
    assert platform.address == "新地址 2 号" and set(platform.industries) == {"modern_textiles", "new_materials"}
    entry = last_audit(session, "platform.updated")
    assert entry.after["address"] == "新地址 2 号" and "name" not in entry.after and "industries" not in entry.after
    assert last_audit(session, "organisation_change.requested").after["new"] == {
        "industries": ["biomedicine", "modern_textiles"]}


def test_only_the_bureau_changes_a_credit_code_and_it_must_be_valid(login_as, session, demo_user):
    enterprise_id = demo_user("enterprise").grants[0].organisation_id
    data = {"name": "绍兴柯桥华纺科技有限公司", "legal_representative": "法定代表人1", "credit_code": "91330621MA20000010"}
    page = login_as("bureau").post(f"/organisations/{enterprise_id}/edit", data=data).get_data(as_text=True)
    assert "is-invalid" in page
    login_as("enterprise").post(f"/organisations/{enterprise_id}/edit", data=data | {"credit_code": demo_credit_code(555)})
    assert session.get(Enterprise, enterprise_id).credit_code == demo_credit_code(1)


def test_organisation_names_stay_unique(login_as, session, demo_user):
    platform_id = demo_user("platform").grants[0].organisation_id
    page = login_as("platform").post(f"/organisations/{platform_id}/edit", data={
        "name": "柯桥生物医药创新中心", "platform_type": "laboratory", "legal_form": "enterprise",
        "industries": ["biomedicine"]}).get_data(as_text=True)
    assert "is-invalid" in page


def test_bureau_grants_and_revokes_roles_with_audit(login_as, session, demo_user):
    expert = demo_user("expert")
    platform_id = demo_user("platform").grants[0].organisation_id
    bureau = login_as("bureau")
    assert bureau.post(f"/users/{expert.id}/roles", data={"role": "platform_operator",
                                                          "organisation_id": platform_id}).status_code == 302
    grant = session.scalar(select(RoleGrant).where(RoleGrant.user_id == expert.id,
                                                   RoleGrant.role == Role.PLATFORM_OPERATOR))
    assert grant.organisation_id == platform_id
    assert last_audit(session, "role.granted").after == {"user_id": expert.id, "role": "platform_operator",
                                                         "organisation_id": platform_id}
    grant_id = grant.id
    assert bureau.post(f"/roles/{grant_id}/revoke").status_code == 302
    assert session.scalar(select(RoleGrant.id).where(RoleGrant.id == grant_id)) is None
    assert last_audit(session, "role.revoked").before["role"] == "platform_operator"


@pytest.mark.parametrize("role, org", [("platform_admin", None), ("auditor", "platform"), ("enterprise_member", "platform"),
                                       ("expert", None)])
def test_role_scope_is_checked(login_as, session, demo_user, role, org):
    expert = demo_user("expert")
    org_id = demo_user("platform").grants[0].organisation_id if org else 0
    response = login_as("bureau").post(f"/users/{expert.id}/roles", data={"role": role, "organisation_id": org_id})
    assert response.status_code == 422
    assert "is-invalid" in response.get_data(as_text=True)


def test_bureau_cannot_revoke_own_admin_role(login_as, session, demo_user):
    bureau = demo_user("bureau")
    login_as("bureau").post(f"/roles/{bureau.grants[0].id}/revoke")
    session.expire_all()
    assert session.get(User, bureau.id).has_role(Role.BUREAU_ADMIN)


def test_bureau_auditor_and_finance_read_and_filter_the_audit_log(login_as, pending_enterprise):
    for who in ("bureau", "auditor", "finance"):
        page = login_as(who).get("/audit?action=enterprise.registered").get_data(as_text=True).split("<tbody")[1]
        assert "企业已注册" in page and "角色已授予" not in page
    assert login_as("enterprise").get("/audit").status_code == 403


def test_audit_log_refuses_update_and_delete_in_the_database(session):
    entry_id = session.scalar(select(AuditEntry.id).limit(1))
    for statement in (sa.update(AuditEntry).where(AuditEntry.id == entry_id).values(action="forged"),
                      sa.delete(AuditEntry).where(AuditEntry.id == entry_id)):
        nested = session.begin_nested()
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            session.execute(statement)
        nested.rollback()
    assert session.get(AuditEntry, entry_id).action != "forged"
