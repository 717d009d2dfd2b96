"""The alerts page in Chromium: the bureau sees an idle-instrument alert that the rules opened over the
live database (an instrument published 200 days ago and never used), with the count in the header,
and acknowledges it."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.models import Platform, User
from marketplace.registry import services
from marketplace.registry.models import InstrumentState
from monitoring import alerts, metrics
from monitoring.alert_rules import Context
from monitoring.models import Alert, AlertKind, AlertState
from tests.conftest import DEMO_EMAILS
from tests.marketplace.conftest import instrument_values

pytestmark = pytest.mark.live


@pytest.fixture
def idle_alert(live_app, live_session) -> Alert:
    session = live_session
    admin = session.scalar(select(User).where(User.email == DEMO_EMAILS["platform"]))
    bureau = session.scalar(select(User).where(User.email == DEMO_EMAILS["bureau"]))
    name = f"闲置测试仪器 {uuid.uuid4().int % 10**6:06d}"  # digits: the role walks read the page for English
    instrument = services.create_instrument(
        session, session.get(Platform, admin.grants[0].organisation_id), admin, actor=Actor.of(admin, None),
        values=instrument_values(session, name_zh=name, asset_number=f"KQ-A-{uuid.uuid4().hex[:8]}"), now=utcnow())
    services.submit_instrument(session, instrument, admin, actor=Actor.of(admin, None), now=utcnow())
    services.publish_instrument(session, instrument, bureau, actor=Actor.of(bureau, None), now=utcnow())
    assert instrument.state == InstrumentState.PUBLISHED
    instrument.published_at = utcnow() - timedelta(days=200)  # as if published long ago
    today = to_local(utcnow()).date()
    metrics.recompute(session, today - timedelta(days=181), today, now=utcnow(), instrument_ids=[instrument.id])
    alerts.evaluate(session, context=Context(now=utcnow(), large_line_fen=live_app.config["LARGE_INSTRUMENT_LINE_FEN"]),
                    kinds=[AlertKind.IDLE])
    session.commit()
    return session.scalar(select(Alert).where(Alert.kind == AlertKind.IDLE, Alert.subject_id == instrument.id,
                                              Alert.state == AlertState.OPEN))


def test_the_bureau_sees_an_idle_instrument_alert_and_acknowledges_it(page: Page, live_server, log_in, idle_alert,
                                                                      live_session):
    log_in(page, DEMO_EMAILS["bureau"], DEMO_PASSWORD)
    header = page.get_by_test_id("header-alerts.alert_list")
    expect(header).to_contain_text("预警")
    count = int(header.get_by_test_id("header-count").inner_text())
    header.click()
    expect(page.locator("h1")).to_have_text("预警")
    row = page.locator(f"[data-testid=alert-row][data-alert-id='{idle_alert.id}']")
    expect(row).to_contain_text("仪器闲置")
    expect(row).to_contain_text(idle_alert.figures["name"])
    expect(row.get_by_test_id("alert-reason")).to_contain_text("近 90 天利用率 0.0 %")
    expect(row.get_by_test_id("alert-state")).to_have_text("未处理")
    row.get_by_role("button", name="确认").click()
    expect(page.get_by_role("alert").first).to_contain_text("预警已确认")
    expect(row.get_by_test_id("alert-state")).to_contain_text("已确认")
    expect(page.get_by_test_id("header-alerts.alert_list")).to_contain_text(str(count - 1) if count > 1 else "预警")
    live_session.rollback()  # end the read begun above: the page committed since
    assert live_session.get(Alert, idle_alert.id).state == AlertState.ACKNOWLEDGED
