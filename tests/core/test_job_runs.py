"""Every run of a job is recorded and shown to the bureau; a failing job is mailed to the bureau's admins once a
day, and stops no other job."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from core.jobs import send_outbox
from core.models import AuditEntry, JobOutcome, JobRun, OutboxMessage, RateLimitCounter, Role, RoleGrant, User
from core.scheduler import FAILURE_HOOKS_EXTENSION, JOBS_EXTENSION, Job, run_job


class GaugeBroken(RuntimeError):
    pass


def _writes_then_fails() -> int:
    """A job whose work is written, then fails: the work must be rolled back, the failure recorded."""
    from core.extensions import db

    db.session.add(RateLimitCounter(key="job-test/rolled-back", count=1, expires_at=0))
    db.session.flush()
    raise GaugeBroken("the gauge is broken")


FAILING = Job("gauge_check", _writes_then_fails, "interval", {"minutes": 5})
COUNTING = Job("gauge_count", lambda: 7, "cron", {"hour": 2, "minute": 40, "timezone": "Asia/Shanghai"})


@pytest.fixture
def test_jobs(app, monkeypatch) -> dict[str, Job]:
    """Two jobs added to the app's registry for this test, one failing, one counting."""
    registry = app.extensions[JOBS_EXTENSION]
    for job in (FAILING, COUNTING):
        monkeypatch.setitem(registry, job.id, job)
    return {job.id: job for job in (FAILING, COUNTING)}


def _runs(session, job_id: str) -> list[JobRun]:
    session.expire_all()
    return list(session.scalars(select(JobRun).where(JobRun.job_id == job_id).order_by(JobRun.id)))


def _bureau_admins(session) -> list[str]:
    return list(session.scalars(select(User.email).join(RoleGrant).where(RoleGrant.role == Role.BUREAU_ADMIN)))


def test_a_failing_job_is_recorded_and_mailed_once_a_day_and_the_other_job_still_runs(
        app, session, mailbox, test_jobs):
    for _ in range(2):  # as the scheduler runs them: the failing one first, twice the same day
        assert run_job(app, FAILING, reraise=False) is None
        assert run_job(app, COUNTING, reraise=False) == 7

    failed, counted = _runs(session, "gauge_check"), _runs(session, "gauge_count")
    assert [run.outcome for run in failed] == [JobOutcome.FAILED] * 2
    assert "GaugeBroken: the gauge is broken" in failed[0].error and "_writes_then_fails" in failed[0].error
    assert failed[0].finished_at >= failed[0].started_at and failed[0].duration_ms >= 0
    assert [(run.outcome, run.result, run.error) for run in counted] == [(JobOutcome.SUCCEEDED, "7", None)] * 2
    # the failed job's own work was rolled back; its run still says failed
    assert session.get(RateLimitCounter, "job-test/rolled-back") is None

    admins = _bureau_admins(session)
    assert admins
    alerts = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "job_failed")).all()
    assert sorted(message.to for message in alerts) == sorted(admins)  # one each, not one per run
    send_outbox()
    mail = mailbox.wait_for(admins[0])
    assert "gauge_check" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "GaugeBroken: the gauge is broken" in body and "/jobs/gauge_check" in body
    assert len([m for m in mailbox.messages if "gauge_check" in m["Subject"]]) == len(admins)


def test_a_failure_the_next_day_mails_again(app, session, test_jobs):
    run_job(app, FAILING, reraise=False)
    first = _runs(session, "gauge_check")[0]
    first.alert_day -= timedelta(days=1)  # as if it had failed yesterday
    session.flush()
    run_job(app, FAILING, reraise=False)
    assert session.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.template == "job_failed")) == 2 * len(_bureau_admins(session))


def test_from_the_command_line_a_failure_is_raised_and_recorded(app, session, test_jobs):
    with pytest.raises(GaugeBroken):
        run_job(app, FAILING)
    assert [run.outcome for run in _runs(session, "gauge_check")] == [JobOutcome.FAILED]
    failed = app.test_cli_runner().invoke(args=["jobs", "run", "gauge_check"])
    assert failed.exit_code != 0
    assert len(_runs(session, "gauge_check")) == 2


def test_a_failure_hook_is_told_and_a_broken_hook_loses_nothing_else(app, session, monkeypatch, test_jobs):
    told = []

    def broken_hook(session, failure):
        raise ValueError("the alert module is down")

    hooks = app.extensions[FAILURE_HOOKS_EXTENSION]
    monkeypatch.setitem(app.extensions, FAILURE_HOOKS_EXTENSION,
                        [broken_hook, *hooks, lambda session, failure: told.append(failure)])
    run_job(app, FAILING, reraise=False)
    run_job(app, FAILING, reraise=False)
    runs = _runs(session, "gauge_check")
    assert [(f.job_id, f.run_id, f.first_today) for f in told] == [
        ("gauge_check", runs[0].id, True), ("gauge_check", runs[1].id, False)]
    assert "GaugeBroken" in told[0].error
    assert all(run.outcome == JobOutcome.FAILED for run in runs)
    assert session.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.template == "job_failed")) == len(_bureau_admins(session))


def test_runs_older_than_30_days_are_deleted_when_the_job_runs(app, session, test_jobs):
    now = utcnow()
    for age in (31, 29):
        session.add(JobRun(job_id="gauge_count", started_at=now - timedelta(days=age), outcome=JobOutcome.SUCCEEDED))
    session.add(JobRun(job_id="another_job", started_at=now - timedelta(days=40), outcome=JobOutcome.SUCCEEDED))
    session.flush()
    run_job(app, COUNTING)
    ages = [round((now - run.started_at) / timedelta(days=1)) for run in _runs(session, "gauge_count")]
    assert ages == [29, 0]
    assert len(_runs(session, "another_job")) == 1  # another job's runs go when that job runs


def test_the_jobs_page_shows_every_job_with_its_schedule_and_a_failed_run_with_its_error(
        app, session, login_as, test_jobs):
    run_job(app, FAILING, reraise=False)
    run_job(app, COUNTING, reraise=False)
    page = login_as("bureau").get("/jobs").get_data(as_text=True)
    assert "定时任务" in page
    for job_id in app.extensions[JOBS_EXTENSION]:
        assert f'data-job="{job_id}"' in page
    for schedule in ("每 15 秒", "每 5 分钟", "每 1 小时", "每天 11:30", "每天 02:40", "每天 01:00", "每天 00:10"):
        assert schedule in page, schedule  # optimize_database runs at 03:30 UTC: 11:30 Beijing time
    assert "发送待发邮件" in page and "核对每张创新券与其流水" in page  # each job named in words, then by id
    failed_row = page.split('data-job="gauge_check"')[1].split("</tr>")[0]
    assert 'data-outcome="failed"' in failed_row and "失败" in failed_row
    assert "GaugeBroken: the gauge is broken" in failed_row
    counted_row = page.split('data-job="gauge_count"')[1].split("</tr>")[0]
    assert 'data-outcome="succeeded"' in counted_row and "成功" in counted_row

    detail = login_as("auditor").get("/jobs/gauge_check").get_data(as_text=True)
    assert detail.count('data-outcome="failed"') == 1 and "Traceback" in detail
    assert "立即运行" not in detail  # the auditor reads; only the bureau runs


def test_the_job_page_lists_the_last_20_runs(app, session, login_as, test_jobs):
    now = utcnow()
    for minutes in range(25):
        session.add(JobRun(job_id="gauge_count", started_at=now - timedelta(minutes=minutes), duration_ms=1500,
                           finished_at=now, outcome=JobOutcome.SUCCEEDED, result=str(minutes)))
    session.flush()
    page = login_as("bureau").get("/jobs/gauge_count").get_data(as_text=True)
    assert page.count('data-outcome="succeeded"') == 20 and "1.5 秒" in page and "最近 20 次运行" in page


def test_the_bureau_runs_a_job_now_audited_and_sees_its_outcome(app, session, login_as, demo_user, test_jobs):
    bureau = login_as("bureau")
    response = bureau.post("/jobs/gauge_count/run")
    assert response.status_code == 302 and response.headers["Location"].endswith("/jobs/gauge_count")
    page = bureau.get("/jobs/gauge_count").get_data(as_text=True)
    assert "任务已运行，结果：7。" in page
    run = _runs(session, "gauge_count")[0]
    assert run.outcome == JobOutcome.SUCCEEDED and run.result == "7"
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "job_run.started",
                                                    AuditEntry.subject_id == run.id))
    assert entry.actor_id == demo_user("bureau").id and entry.subject_type == "job_runs"
    assert entry.after == {"job_id": "gauge_count"}

    bureau.post("/jobs/gauge_check/run")
    page = bureau.get("/jobs/gauge_check").get_data(as_text=True)
    assert "任务失败，错误见下。" in page and 'data-outcome="failed"' in page
    assert session.get(RateLimitCounter, "job-test/rolled-back") is None


@pytest.mark.parametrize(("who", "status"), [("bureau", 200), ("auditor", 200), ("finance", 403),
                                             ("platform", 403), ("enterprise", 403), (None, 401)])
def test_who_reads_the_jobs_pages(app, session, login_as, who, status):
    client = login_as(who) if who else app.test_client()
    assert client.get("/jobs").status_code == status
    assert client.get("/jobs/send_outbox").status_code == status


@pytest.mark.parametrize(("who", "status"), [("auditor", 403), ("finance", 403), (None, 401), ("bureau", 404)])
def test_only_the_bureau_runs_a_job_and_an_unknown_job_is_404(app, session, login_as, who, status):
    client = login_as(who) if who else app.test_client()
    job = "no_such_job" if who == "bureau" else "send_outbox"
    before = session.scalar(select(func.count()).select_from(JobRun))
    assert client.post(f"/jobs/{job}/run").status_code == status
    assert session.scalar(select(func.count()).select_from(JobRun)) == before
    if who == "bureau":
        assert client.get("/jobs/no_such_job").status_code == 404


@pytest.mark.live
def test_runs_failing_at_once_mail_the_bureau_once(live_app):
    """Six runs of one job fail at the same moment, each recorded by its own connection: one claims the
    day's alert (the unique job_id, alert_day), the others record their failure and mail nothing."""
    import threading

    from core.extensions import db

    barrier = threading.Barrier(6)

    def fail_together() -> int:
        barrier.wait(30)
        raise GaugeBroken("six at once")

    job = Job("gauge_race", fail_together, "interval", {"minutes": 5})
    threads = [threading.Thread(target=run_job, args=(live_app, job), kwargs={"reraise": False}) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with live_app.app_context():
        runs = db.session.scalars(select(JobRun).where(JobRun.job_id == "gauge_race")).all()
        assert [run.outcome for run in runs] == [JobOutcome.FAILED] * 6
        assert len([run for run in runs if run.alert_day is not None]) == 1
        alerts = [message for message in db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.template == "job_failed"))
            if message.context["job_id"] == "gauge_race"]
        assert sorted(message.to for message in alerts) == sorted(_bureau_admins(db.session))
        db.session.remove()


def test_the_alert_mail_is_in_each_admins_language(app, session, test_jobs, demo_user):
    from core import outbox

    bureau = demo_user("bureau")
    bureau.locale = "en"
    session.flush()
    run_job(app, FAILING, reraise=False)
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.template == "job_failed",
                                                          OutboxMessage.to == bureau.email))
    assert message.locale == "en"
    mail = outbox.render_mail(message)
    assert mail["Subject"] == "Scheduled job gauge_check failed"
    text = mail.get_body(("plain",)).get_content()
    assert "Error: tests.core.test_job_runs.GaugeBroken: the gauge is broken" in text and "(Beijing time)" in text
    message.locale = "zh_CN"
    assert outbox.render_mail(message)["Subject"] == "定时任务 gauge_check 运行失败"
