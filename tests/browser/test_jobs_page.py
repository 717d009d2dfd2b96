"""The jobs page in Chromium at 1366 px: the bureau finds a failed job through the menu, reads its error, and
runs it again from its page."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.demo import DEMO_PASSWORD
from core.models import AuditEntry, JobOutcome, JobRun
from core.scheduler import JOBS_EXTENSION, Job, run_job
from tests.conftest import DEMO_EMAILS

pytestmark = pytest.mark.live


def _fails() -> int:
    raise ConnectionError("the instrument gateway does not answer")


def test_the_bureau_sees_a_failed_job_reads_its_error_and_runs_it_again(page: Page, live_server, live_app,
                                                                       live_session, log_in, monkeypatch):
    job = Job("browser_gateway_check", _fails, "interval", {"minutes": 10})
    monkeypatch.setitem(live_app.extensions[JOBS_EXTENSION], job.id, job)
    run_job(live_app, job, reraise=False)  # as the scheduler runs it

    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, DEMO_EMAILS["bureau"], DEMO_PASSWORD)
    page.get_by_test_id("role-nav").get_by_role("link", name="定时任务", include_hidden=True).click()
    expect(page.locator("h1")).to_have_text("定时任务")
    row = page.locator(f"tr[data-job='{job.id}']")
    expect(row.get_by_test_id("outcome")).to_have_text("失败")
    expect(row).to_contain_text("每 10 分钟")
    expect(page.locator("tr[data-job='send_outbox']")).to_contain_text("每 15 秒")
    error = row.locator("details.job-error")
    expect(error.locator("summary")).to_contain_text("ConnectionError: the instrument gateway does not answer")
    expect(error.locator("pre")).to_be_hidden()
    error.locator("summary").click()
    expect(error.locator("pre")).to_contain_text("Traceback")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    page.screenshot(path="/tmp/jobs-bureau-1366.png", full_page=False)

    row.get_by_role("link", name=job.id).click()
    expect(page.locator("h1")).to_have_text(job.id)
    page.get_by_role("button", name="立即运行").click()
    expect(page.locator(".alert-danger")).to_contain_text("任务失败，错误见下。")
    expect(page.locator("table.job-runs [data-outcome='failed']")).to_have_count(2)

    runs = live_session.scalars(select(JobRun).where(JobRun.job_id == job.id).order_by(JobRun.id)).all()
    assert [run.outcome for run in runs] == [JobOutcome.FAILED, JobOutcome.FAILED]
    assert live_session.scalar(select(AuditEntry.actor_label).where(
        AuditEntry.action == "job_run.started", AuditEntry.subject_id == runs[1].id)) == DEMO_EMAILS["bureau"]


def test_the_auditor_reads_the_jobs_page_without_a_run_button(page: Page, live_server, log_in):
    log_in(page, DEMO_EMAILS["auditor"], DEMO_PASSWORD)
    page.goto(f"{live_server.url}/jobs")
    expect(page.locator("tr[data-job='expire_bookings']")).to_contain_text("每 5 分钟")
    page.locator("tr[data-job='expire_bookings']").get_by_role("link").click()
    expect(page.locator("h1")).to_have_text("未确认预约到期处理")
    expect(page.get_by_role("button", name="立即运行")).to_have_count(0)
