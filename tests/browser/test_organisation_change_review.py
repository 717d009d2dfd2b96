"""The review of an organisation's key fields in a real browser against the live server, on SQLite and on
PostgreSQL: an enterprise member changes the actual controller and the address; the address is saved at
once, the controller waits and the enterprise's page shows the change waiting; the bureau sees it counted
on its dashboard, reads old → new on the review page and rejects it with a reason, which the member then
reads; asked again, the bureau approves it from the queue with select-all, and the new value applies."""
from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.auth import hash_password
from core.demo import DEMO_PASSWORD, demo_credit_code
from core.models import ChangeState, Enterprise, OrganisationChange, Role, RoleGrant, User, VerificationState

pytestmark = pytest.mark.live

BUREAU_ADMIN = "bureau@kequip.test"


def new_member(session) -> tuple[str, int]:
    """(e-mail, enterprise id): an enterprise of its own, so that the shared live database's demo
    enterprise keeps its values for the other tests."""
    tag = uuid.uuid4().int % 100_000
    enterprise = Enterprise(name=f"浏览器变更企业 {tag}", credit_code=demo_credit_code(800_000 + tag),
                            legal_representative="原法人", actual_controller="原控制人",
                            verification_state=VerificationState.VERIFIED)
    user = User(email=f"change-browser-{tag}@example.com", name="变更专员", password_hash=hash_password(DEMO_PASSWORD))
    session.add_all([enterprise, user])
    session.flush()
    session.add(RoleGrant(user_id=user.id, role=Role.ENTERPRISE_MEMBER, organisation_id=enterprise.id))
    made = user.email, enterprise.id
    session.commit()
    return made


def ask_for_controller(page: Page, url: str, enterprise_id: int, controller: str, address: str) -> None:
    page.goto(f"{url}/organisations/{enterprise_id}/edit")
    expect(page.get_by_test_id("reviewed-fields")).to_be_visible()
    page.locator("#actual_controller").fill(controller)
    page.locator("#address").fill(address)
    page.locator("main form [type=submit]").click()
    expect(page).to_have_url(f"{url}/organisations/{enterprise_id}")


def test_a_member_s_change_waits_is_rejected_with_a_reason_then_approved_from_the_queue(
        new_context, live_server, live_session, log_in):
    url = live_server.url
    email, enterprise_id = new_member(live_session)
    member = new_context().new_page()
    log_in(member, email, DEMO_PASSWORD)

    ask_for_controller(member, url, enterprise_id, "新控制人", "柯桥区新址 1 号")
    expect(member.locator(".alert-success")).to_be_visible()
    pending = member.get_by_test_id("pending-change")
    expect(pending.locator('[data-field="actual_controller"] [data-testid=old]')).to_have_text("原控制人")
    expect(pending.locator('[data-field="actual_controller"] [data-testid=new]')).to_have_text("新控制人")
    expect(member.get_by_test_id("actual-controller")).to_have_text("原控制人")
    expect(member.locator("main")).to_contain_text("柯桥区新址 1 号")  # saved at once

    bureau = new_context().new_page()
    log_in(bureau, BUREAU_ADMIN, DEMO_PASSWORD)
    bureau.goto(f"{url}/dashboard")
    todo = bureau.locator('[data-testid=todo][data-endpoint="core.organisation_changes"]')
    expect(todo).to_be_visible()
    todo.click()
    expect(bureau).to_have_url(f"{url}/organisation-changes")
    live_session.rollback()  # a new snapshot of the live database
    change_id = live_session.scalar(select(OrganisationChange.id).where(
        OrganisationChange.organisation_id == enterprise_id, OrganisationChange.state == ChangeState.PENDING))
    live_session.rollback()
    row = bureau.locator(f'[data-testid=change-row][data-id="{change_id}"]')
    expect(row.locator('[data-field="actual_controller"]')).to_contain_text("原控制人")
    row.locator(f'a[href="/organisation-changes/{change_id}"]').click()
    expect(bureau.get_by_test_id("change-state")).to_have_attribute("data-state", "pending")
    bureau.locator("#reason").fill("")
    bureau.locator(f'form[action="/organisation-changes/{change_id}/reject"] [type=submit]').click()
    expect(bureau.locator("#reason.is-invalid")).to_be_visible()
    bureau.locator("#reason").fill("请上传工商变更登记材料")
    bureau.locator(f'form[action="/organisation-changes/{change_id}/reject"] [type=submit]').click()
    expect(bureau).to_have_url(f"{url}/organisation-changes")
    expect(bureau.locator(f'[data-testid=change-row][data-id="{change_id}"]')).to_have_count(0)

    member.goto(f"{url}/organisations/{enterprise_id}")
    decided = member.get_by_test_id("decided-change")
    expect(decided).to_have_attribute("data-state", "rejected")
    expect(decided).to_contain_text("请上传工商变更登记材料")
    expect(member.get_by_test_id("actual-controller")).to_have_text("原控制人")

    # asked again, approved from the queue with select-all
    ask_for_controller(member, url, enterprise_id, "新控制人", "柯桥区新址 1 号")
    bureau.goto(f"{url}/organisation-changes")
    bureau.get_by_test_id("select-all").check()
    boxes = bureau.locator("input[name=change_id]")
    assert boxes.count() >= 1
    for n in range(boxes.count()):
        expect(boxes.nth(n)).to_be_checked()
    bureau.get_by_test_id("approve-chosen").click()
    expect(bureau.locator(".alert-success")).to_be_visible()
    expect(bureau.get_by_test_id("change-row")).to_have_count(0)

    member.goto(f"{url}/organisations/{enterprise_id}")
    expect(member.get_by_test_id("decided-change")).to_have_attribute("data-state", "approved")
    expect(member.get_by_test_id("actual-controller")).to_have_text("新控制人")
    live_session.rollback()
    assert live_session.get(Enterprise, enterprise_id).actual_controller == "新控制人"
