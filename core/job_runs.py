"""The runs of the periodic jobs: recorded by core.scheduler.run_job, read by the bureau's jobs page, and
a failing job's alert to the bureau's admins (one mail per job a day, whatever the runs)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import LOCAL_ZONE, to_local
from core.models import JobOutcome, JobRun, Role, RoleGrant, User
from core.outbox import enqueue_mail

KEEP = timedelta(days=30)  # runs older than this are deleted when a run of the same job is recorded
RECENT = 20  # the runs a job's page lists
RESULT_CHARS = 200
ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class JobFailure:
    """What the hooks of core.scheduler.on_job_failed are told. first_today: no other run of this job
    alerted the bureau today (Asia/Shanghai); a hook that alerts once a day alerts on it only."""

    job_id: str
    run_id: int
    error: str
    at: datetime
    first_today: bool


def start(session: Session, job_id: str, *, now: datetime, actor: Actor | None = None) -> JobRun:
    """The run's row, "running"; a run someone started by hand is in the audit log."""
    run = JobRun(job_id=job_id, started_at=now, outcome=JobOutcome.RUNNING)
    session.add(run)
    session.flush()
    if actor is not None:
        record_audit(session, actor, "job_run.started", run, after={"job_id": job_id})
    return run


def finish(session: Session, run_id: int, *, now: datetime, duration_ms: int, result: object = None,
           error: str | None = None) -> JobFailure | None:
    """Record the outcome; delete the job's runs older than KEEP. A failure is returned for the hooks,
    first_today claimed through the unique (job_id, alert_day): of two runs failing at once, one has it."""
    run = session.get(JobRun, run_id, with_for_update=True)
    run.finished_at, run.duration_ms = now, duration_ms
    run.outcome = JobOutcome.FAILED if error is not None else JobOutcome.SUCCEEDED
    run.result = None if result is None else str(result)[:RESULT_CHARS]
    run.error = None if error is None else error[-ERROR_CHARS:]  # the end of a traceback says most
    session.execute(sa.delete(JobRun).where(JobRun.job_id == run.job_id, JobRun.started_at < now - KEEP))
    if error is None:
        return None
    session.flush()
    return JobFailure(run.job_id, run.id, run.error, now, first_today=_claim_alert(session, run, to_local(now).date()))


def _claim_alert(session: Session, run: JobRun, day: date) -> bool:
    if session.scalar(sa.select(sa.exists().where(JobRun.job_id == run.job_id, JobRun.alert_day == day))):
        return False
    try:
        with session.begin_nested():
            run.alert_day = day
            session.flush()
    except IntegrityError:  # another run of the job claimed today's alert meanwhile
        return False
    return True


def mail_bureau_admins(session: Session, failure: JobFailure) -> None:
    """core's hook: the first failure of a job on a day is mailed to every active bureau admin."""
    if not failure.first_today:
        return
    admins = session.scalars(sa.select(User).join(RoleGrant).where(
        RoleGrant.role == Role.BUREAU_ADMIN, User.is_active).distinct().order_by(User.id)).all()
    for admin in admins:
        enqueue_mail(session, to=admin.email, locale=admin.locale, template="job_failed", context={
            "name": admin.name, "job_id": failure.job_id, "run_id": failure.run_id,
            "at": to_local(failure.at).strftime("%Y-%m-%d %H:%M"), "error": failure.error.splitlines()[-1][:300],
            "path": f"/jobs/{failure.job_id}"})


# --- what the jobs page reads ------------------------------------------------------------------

def latest_runs(session: Session, job_ids: list[str]) -> dict[str, JobRun]:
    """Each job's latest run: one lookup per job down the (job_id, started_at) index, never a scan of all runs."""
    latest = sa.union_all(*(sa.select(JobRun.id).where(JobRun.job_id == job_id)
                            .order_by(JobRun.started_at.desc()).limit(1).subquery().select() for job_id in job_ids))
    return {run.job_id: run for run in session.scalars(sa.select(JobRun).where(JobRun.id.in_(latest)))}


def recent_runs(session: Session, job_id: str, limit: int = RECENT) -> list[JobRun]:
    """The latest runs, read down the (job_id, started_at) index."""
    return list(session.scalars(sa.select(JobRun).where(JobRun.job_id == job_id)
                                .order_by(JobRun.started_at.desc()).limit(limit)))


_INTERVAL_UNITS = (("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1))


def describe_schedule(trigger: str, args: dict) -> str:
    """A schedule in words, its times in Asia/Shanghai: "every 5 minutes", "daily at 02:40"."""
    if trigger == "interval" and set(args) <= {unit for unit, _ in _INTERVAL_UNITS}:
        seconds = sum(args.get(unit, 0) * size for unit, size in _INTERVAL_UNITS)
        unit = next(unit for unit, size in _INTERVAL_UNITS if seconds % size == 0)
        count = seconds // dict(_INTERVAL_UNITS)[unit]
        return {
            "days": lambda: ngettext("every %(num)s day", "every %(num)s days", count),
            "hours": lambda: ngettext("every %(num)s hour", "every %(num)s hours", count),
            "minutes": lambda: ngettext("every %(num)s minute", "every %(num)s minutes", count),
            "seconds": lambda: ngettext("every %(num)s second", "every %(num)s seconds", count),
        }[unit]()
    fields = {key: value for key, value in args.items() if key != "timezone"}
    if trigger == "cron" and set(fields) == {"hour", "minute"} and all(isinstance(v, int) for v in fields.values()):
        zone = args.get("timezone", "UTC")  # the scheduler's zone unless the job names one
        moment = datetime(2026, 1, 1, fields["hour"], fields["minute"],
                          tzinfo=timezone.utc if zone == "UTC" else ZoneInfo(str(zone)))
        return _("daily at %(time)s", time=moment.astimezone(LOCAL_ZONE).strftime("%H:%M"))
    if trigger == "cron" and set(fields) == {"minute"} and isinstance(fields["minute"], int):
        return _("hourly at minute %(minute)02d", minute=fields["minute"])
    return f"{trigger}(" + ", ".join(f"{key}={value}" for key, value in args.items()) + ")"
