"""The bureau's holiday calendar in Chromium: the banner while the booking horizon reaches a year without an
arrangement, the year's computed holidays, a faulty import reported line by line, then the arrangement
imported and the banner gone."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete

from core.demo import DEMO_PASSWORD
from core.holidays import HolidayArrangement, forget_calendar
from tests.conftest import DEMO_EMAILS

pytestmark = pytest.mark.live

FAULTY = "2027-01-01,holiday,元旦\n2027-02-31,holiday,春节\n2027-02-10,makeup_workday,春节\n"
ARRANGEMENT = "2027-01-01,holiday,元旦\n2027-02-06,holiday,春节\n2027-02-20,makeup_workday,春节\n"


@pytest.fixture
def year_2027_unarranged(live_session) -> Iterator[None]:
    """2027 without an arrangement before and after the test (the live database is shared)."""
    def clear() -> None:
        live_session.execute(delete(HolidayArrangement).where(HolidayArrangement.year == 2027))
        live_session.commit()
        forget_calendar()  # a bulk delete passes no flush, so the live server's kept calendar learns it here

    clear()
    yield
    clear()


def test_the_bureau_imports_a_year_s_arrangement_and_the_warning_goes(page: Page, live_server, log_in,
                                                                     year_2027_unarranged):
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, DEMO_EMAILS["bureau"], DEMO_PASSWORD)
    banner = page.get_by_test_id("holiday-warning")
    expect(banner).to_contain_text("2027")  # the 90-day horizon reaches 2027 from early October 2026
    page.locator("nav").get_by_role("link", name="节假日日历").click()
    expect(page.locator("h1")).to_have_text("节假日日历")
    page.get_by_test_id("holiday-years").locator("[data-year='2027']").click()
    expect(page.get_by_test_id("arrangement-state")).to_contain_text("尚未录入放假调休安排")
    expect(page.locator("tr[data-day='2027-02-05']")).to_contain_text("春节")  # 除夕, computed

    form = page.get_by_test_id("import")
    form.locator("textarea").fill(FAULTY)
    form.get_by_role("button", name="导入安排").click()
    errors = page.get_by_test_id("line-errors")
    expect(errors).to_contain_text("第 2 行，日期")
    expect(errors).to_contain_text("第 3 行，类别")
    expect(page.get_by_test_id("arrangement-state")).to_contain_text("尚未录入放假调休安排")

    form = page.get_by_test_id("import")
    form.locator("textarea").fill(ARRANGEMENT)
    form.get_by_role("button", name="导入安排").click()
    expect(page.locator(".alert-success")).to_contain_text("共 3 天")
    expect(page.get_by_test_id("arrangement-state")).to_contain_text("科技局录入")
    expect(page.locator("tr[data-day='2027-02-20']")).to_contain_text("调休上班日")
    expect(page.locator("tr[data-day='2027-02-05']")).to_have_count(0)
    expect(banner).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
