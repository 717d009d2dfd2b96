"""The bureau's batch approval of voucher applications in a real browser against the live server, on
SQLite and on PostgreSQL: three applications of 200 yuan to a pool of 500; select-all chooses them all and
the batch is refused whole, the message naming the sum needed and what is left; with one unchosen the
other two are approved and the pool shown beside the remaining one has 100 yuan left."""
from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core.audit import Actor
from core.db import utcnow
from core.demo import DEMO_PASSWORD, demo_credit_code
from core.models import Enterprise, Role, RoleGrant, User, VerificationState
from core.money import format_yuan
from tests.vouchers.conftest import programme_values
from vouchers import services
from vouchers.models import Application, ApplicationState

pytestmark = pytest.mark.live

BUREAU_ADMIN = "bureau@kequip.test"
ASKED_FEN, POOL_FEN = 200_00, 500_00


def programme_with_applications(session, count: int) -> tuple[int, list[int]]:
    """(programme id, application ids): a new programme of POOL_FEN and `count` applications of ASKED_FEN,
    each by an enterprise of its own, committed."""
    bureau = session.scalar(select(User).where(User.email == BUREAU_ADMIN))
    programme = services.create_programme(session, actor=Actor.system("test"), user=bureau, values=programme_values(
        name=f"批量审批 {uuid.uuid4().int % 10**8:08d}", pool_fen=POOL_FEN))
    tag = uuid.uuid4().int % 10_000
    ids = []
    for n in range(count):
        enterprise = Enterprise(name=f"批量审批企业 {tag}-{n}", credit_code=demo_credit_code(900_000 + tag * 10 + n),
                                legal_representative=f"法人{n}", verification_state=VerificationState.VERIFIED)
        member = User(email=f"batch-browser-{tag}-{n}@example.com", name="批量", password_hash="x")
        session.add_all([enterprise, member])
        session.flush()
        session.add(RoleGrant(user_id=member.id, role=Role.ENTERPRISE_MEMBER, organisation_id=enterprise.id))
        session.flush()
        session.refresh(member)
        ids.append(services.apply_for_voucher(
            session, actor=Actor.system("test"), user=member, programme_id=programme.id, enterprise_id=enterprise.id,
            requested_fen=ASKED_FEN, purpose="检测", planned_instruments="", now=utcnow()).id)
    made = programme.id, ids
    session.commit()
    return made


def test_the_bureau_approves_chosen_applications_all_or_nothing(page, live_server, live_session, log_in):
    url = live_server.url
    programme_id, ids = programme_with_applications(live_session, 3)
    log_in(page, BUREAU_ADMIN, DEMO_PASSWORD)
    queue = f"{url}/voucher-applications?programme_id={programme_id}&state=submitted"
    page.goto(queue)
    expect(page.get_by_test_id("application-row")).to_have_count(3)
    page.get_by_test_id("select-all").check()
    for application_id in ids:
        expect(page.locator(f'input[name=application_id][value="{application_id}"]')).to_be_checked()
    page.get_by_test_id("approve-chosen").click()
    refused = page.locator(".alert-danger")
    expect(refused).to_contain_text(format_yuan(3 * ASKED_FEN))
    expect(refused).to_contain_text(format_yuan(POOL_FEN))
    live_session.rollback()
    assert {live_session.get(Application, i).state for i in ids} == {ApplicationState.SUBMITTED}
    live_session.rollback()

    page.goto(queue)
    page.get_by_test_id("select-all").check()
    page.locator(f'input[name=application_id][value="{ids[2]}"]').uncheck()
    page.get_by_test_id("approve-chosen").click()
    expect(page.locator(".alert-success")).to_be_visible()
    page.goto(queue)
    row = page.locator(f'[data-testid=application-row][data-id="{ids[2]}"]')
    expect(page.get_by_test_id("application-row")).to_have_count(1)
    expect(row).to_be_visible()
    expect(page.get_by_test_id("pool-left")).to_have_attribute("data-fen", str(POOL_FEN - 2 * ASKED_FEN))
    live_session.rollback()
    assert [live_session.get(Application, i).state for i in ids] == [
        ApplicationState.APPROVED, ApplicationState.APPROVED, ApplicationState.SUBMITTED]
