"""The bureau watches utilization in Chromium: the dashboard with an instrument's use, then the quarterly
sharing report, downloaded as XLSX with the numbers of the screen."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD
from core.models import User
from marketplace.registry.models import Instrument
from monitoring import metrics, sessions
from monitoring.models import Alert, AlertState
from tests.browser.test_alerts_page import idle_alert  # noqa: F401  (a fixture)
from tests.browser.test_booking_flow import published_instrument
from tests.conftest import DEMO_EMAILS

pytestmark = pytest.mark.live


@pytest.fixture
def used_instrument(live_session):
    """A published instrument with three hours of use by an enterprise 40 days ago, and the figures."""
    instrument_id = published_instrument(live_session)
    instrument = live_session.get(Instrument, instrument_id)
    admin = live_session.scalar(select(User).where(User.email == DEMO_EMAILS["platform"]))
    enterprise = live_session.scalar(select(User).where(User.email == DEMO_EMAILS["enterprise"]))
    start = utcnow().replace(microsecond=0) - timedelta(days=40)
    sessions.enter(live_session, instrument, start_at=start, end_at=start + timedelta(hours=3), user=enterprise,
                   reason="浏览器测试补录", actor=Actor.of(admin, None), now=utcnow())
    day = to_local(start).date()
    metrics.recompute(live_session, day, day, now=utcnow(), instrument_ids=[instrument_id])
    live_session.commit()
    return instrument, day


def test_the_bureau_reads_utilization_and_downloads_the_quarterly_sharing_report(page: Page, live_server, log_in,
                                                                                 used_instrument):
    instrument, day = used_instrument
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, DEMO_EMAILS["bureau"], DEMO_PASSWORD)
    page.get_by_test_id("role-nav").get_by_role("link", name="利用率", include_hidden=True).click()
    expect(page.locator("h1")).to_contain_text("利用率")
    page.locator("#start").fill(day.replace(day=1).isoformat())
    page.locator("#end").fill(day.isoformat())
    page.get_by_role("button", name="显示").click()
    expect(page).to_have_url(f"{live_server.url}/monitoring?period=month&start={day.replace(day=1)}&end={day}")
    row = page.get_by_test_id("figures-by-instrument").locator("tr", has_text=instrument.name_zh).first
    expect(row).to_contain_text("3.00")  # effective and external hours
    expect(page.get_by_test_id("chart-rates")).to_be_visible()

    page.get_by_test_id("sharing-report-link").click()
    quarter = (day.month - 1) // 3 + 1
    page.locator("#year").fill(str(day.year))
    page.locator("#quarter").select_option(str(quarter))
    page.get_by_role("button", name="显示").click()
    report_row = page.get_by_test_id("sharing-report").locator("tr", has_text=instrument.asset_number)
    expect(report_row).to_contain_text("3.00")
    with page.expect_download() as download:
        page.get_by_test_id("download-xlsx").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    with open(download.value.path(), "rb") as file:
        sheet = load_workbook(io.BytesIO(file.read())).active
    rows = [[cell.value for cell in line] for line in sheet.iter_rows()]
    mine = next(line for line in rows if line[3] == instrument.asset_number)
    for value in mine:
        expect(report_row).to_contain_text(str(value))


def test_the_bureau_sees_an_idle_alert_on_the_dashboard_acknowledges_it_and_downloads_the_report(
        page: Page, live_server, log_in, idle_alert, live_session):
    log_in(page, DEMO_EMAILS["bureau"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/monitoring")
    expect(page.get_by_test_id("open-alerts")).to_contain_text(idle_alert.figures["name"])
    page.get_by_role("link", name="全部预警").click()
    row = page.locator(f"[data-testid=alert-row][data-alert-id='{idle_alert.id}']")
    expect(row).to_contain_text("仪器闲置")
    row.get_by_role("button", name="确认").click()
    expect(row.get_by_test_id("alert-state")).to_contain_text("已确认")
    page.goto(f"{live_server.url}/monitoring")
    page.get_by_test_id("sharing-report-link").click()
    with page.expect_download() as download:
        page.get_by_test_id("download-xlsx").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    with open(download.value.path(), "rb") as file:
        header = [cell.value for cell in next(load_workbook(io.BytesIO(file.read())).active.iter_rows())]
    assert header[:2] == ["仪器名称", "型号"]
    live_session.rollback()  # end the read begun by the fixture: the page committed since
    assert live_session.get(Alert, idle_alert.id).state == AlertState.ACKNOWLEDGED
