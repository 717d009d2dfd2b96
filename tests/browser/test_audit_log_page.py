"""The audit log in Chromium at 1366 px: Chinese labels, no sideways scrolling, for the auditor and finance."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.demo import DEMO_PASSWORD
from tests.conftest import DEMO_EMAILS


@pytest.mark.parametrize("who", ["auditor", "finance"])
def test_the_audit_log_reads_in_chinese_at_1366_px(page: Page, live_server, log_in, who):
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, DEMO_EMAILS[who], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/audit")
    expect(page.locator("h1")).to_have_text("审计日志")
    expect(page.locator("thead")).to_contain_text("操作人")
    expect(page.locator("label[for=person]")).to_have_text("人员（邮箱或姓名）")
    expect(page.locator("tbody tr").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    page.screenshot(path=f"/tmp/audit-{who}-1366.png", full_page=False)
