"""APScheduler, once across every worker and machine: whoever holds the lock runs the jobs.

The lock is a PostgreSQL advisory lock held on a dedicated connection, or a file lock beside the
SQLite database. Processes without the lock stand by and try again, so one takes over when the
holder stops. Every run of a job, scheduled or by hand, is recorded (core.job_runs)."""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from filelock import FileLock, Timeout
from flask import Flask
from sqlalchemy.orm import Session

from core import job_runs
from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.extensions import db
from core.job_runs import JobFailure

FailureHook = Callable[[Session, JobFailure], None]

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 0x6B657175  # "kequ"
JOBS_EXTENSION = "kequip.jobs"
FAILURE_HOOKS_EXTENSION = "kequip.job_failed"
SCHEDULER_EXTENSION = "kequip.scheduler"


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[], Any]
    trigger: str = "interval"
    trigger_args: dict[str, Any] = field(default_factory=dict)
    label: object = None  # what it does, in words (a lazy string), for the bureau's jobs page


def register_jobs(app: Flask, jobs: list[Job]) -> None:
    registry: dict[str, Job] = app.extensions.setdefault(JOBS_EXTENSION, {})
    for job in jobs:
        if job.id in registry:
            raise ValueError(f"job {job.id!r} registered twice")
        registry[job.id] = job


def registered_jobs(app: Flask) -> dict[str, Job]:
    return dict(app.extensions.get(JOBS_EXTENSION, {}))


def on_job_failed(app: Flask, hook: FailureHook) -> None:
    """Call hook(session, failure) whenever a job fails (core.job_runs.JobFailure), in the transaction
    that records the failure: what it writes (a mail in the outbox, an alert) commits with the record.
    core mails the bureau's admins this way; a package that raises alerts adds its own hook."""
    app.extensions.setdefault(FAILURE_HOOKS_EXTENSION, []).append(hook)


@dataclass(frozen=True, slots=True)
class RecordedRun:
    run_id: int
    result: Any = None
    error: Exception | None = None


def run_recorded(app: Flask, job: Job, *, actor: Actor | None = None) -> RecordedRun:
    """Run one job in an app context and record the run (core.job_runs): its start committed before the
    job runs, its outcome after, each in a short transaction of its own, so a failed job's rolled-back
    work leaves a run that says "failed". A failure is logged, told to the on_job_failed hooks and
    returned, never raised. actor: someone who started the job by hand."""
    with app.app_context():
        try:
            with unit_of_work() as session:
                run_id = job_runs.start(session, job.id, now=utcnow(), actor=actor).id
            started = time.monotonic()
            try:
                result = job.func()
            except Exception as error:
                log.exception("job %s failed", job.id)
                db.session.rollback()
                _record(app, run_id, started, error=_describe(error))
                return RecordedRun(run_id, error=error)
            _record(app, run_id, started, result=result)
        finally:
            db.session.remove()
        log.log(logging.INFO if result else logging.DEBUG, "job %s done: %s", job.id, result)
        return RecordedRun(run_id, result)


def run_job(app: Flask, job: Job, *, reraise: bool = True, actor: Actor | None = None) -> Any:
    """run_recorded, with the job's result; a failure is raised again unless reraise is False (the
    scheduler's way: it goes on with the other jobs), then None."""
    run = run_recorded(app, job, actor=actor)
    if run.error is not None and reraise:
        raise run.error
    return run.result


def _describe(error: Exception) -> str:
    """The exception and a short traceback: its last frames, where the error arose."""
    return "".join(traceback.format_exception(error, limit=-5)).strip()


def _record(app: Flask, run_id: int, started: float, *, result: Any = None, error: str | None = None) -> None:
    with unit_of_work() as session:
        failure = job_runs.finish(session, run_id, now=utcnow(), result=result, error=error,
                                  duration_ms=round((time.monotonic() - started) * 1000))
        for hook in app.extensions.get(FAILURE_HOOKS_EXTENSION, []) if failure else ():
            try:
                with session.begin_nested():
                    hook(session, failure)
            except Exception:  # a broken hook loses its own writes only, never the record of the run
                log.exception("on_job_failed hook %r failed for job run %s", hook, run_id)


class SchedulerLock:
    def __init__(self, app: Flask):
        self.app = app
        self._connection: sa.Connection | None = None
        self._file_lock: FileLock | None = None

    def acquire(self) -> bool:
        with self.app.app_context():
            engine = db.engine
            if engine.dialect.name == "postgresql":
                connection = engine.connect()
                if connection.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}):
                    connection.commit()
                    self._connection = connection
                    return True
                connection.close()
                return False
        lock = FileLock(self.app.config["SCHEDULER_LOCK_FILE"], thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        self._file_lock = lock
        return True

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # closing the session frees the advisory lock
            self._connection = None
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None


class KequipScheduler:
    def __init__(self, app: Flask):
        self.app = app
        self.lock = SchedulerLock(app)
        self.scheduler: BackgroundScheduler | None = None
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.scheduler is not None

    def _start_jobs(self) -> None:
        scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        for job in registered_jobs(self.app).values():
            scheduler.add_job(run_job, job.trigger, args=[self.app, job], kwargs={"reraise": False},
                              id=job.id, **job.trigger_args)
        scheduler.start()
        self.scheduler = scheduler
        log.info("scheduler started: this process holds the lock and runs %d jobs", len(scheduler.get_jobs()))

    def _loop(self) -> None:
        announced = False
        while not self._stop.is_set():
            if self.lock.acquire():
                self._start_jobs()
                return
            if not announced:
                log.info("scheduler standing by: another process holds the lock")
                announced = True
            self._stop.wait(self.app.config["SCHEDULER_RETRY_SECONDS"])

    def start(self) -> KequipScheduler:
        self.thread = threading.Thread(target=self._loop, name="kequip-scheduler", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self.lock.release()


def start_scheduler(app: Flask, *, force: bool = False) -> KequipScheduler | None:
    """Start (or stand by to start) the scheduler in this process. The app keeps it: were it garbage
    collected, its lock (a file handle or a connection) would go with it and another process would
    start a second scheduler."""
    if not (force or app.config["SCHEDULER_ENABLED"]):
        return None
    scheduler = app.extensions.get(SCHEDULER_EXTENSION)
    if scheduler is None:
        scheduler = app.extensions[SCHEDULER_EXTENSION] = KequipScheduler(app).start()
    return scheduler


def serve_forever(app: Flask) -> None:
    """`flask jobs scheduler`: a process that only runs jobs."""
    start_scheduler(app, force=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        app.extensions[SCHEDULER_EXTENSION].stop()
