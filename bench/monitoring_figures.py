"""Usage monitoring's figures on district-L: the daily metrics of a year for all 20,000 instruments built
from the bookings and their usage sessions, a day's incremental roll-up, the quarterly sharing report as
XLSX, the bureau's dashboard, and device events through the usage API from many instruments at once
against gunicorn with 4 workers on PostgreSQL. The one-offs run before the server: the dashboard reads the
days the recompute builds."""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import requests
import sqlalchemy as sa

from bench.dataset import Account, Dataset, bench_app, device_secret
from bench.figures import TIMEOUT, BenchmarkFailed, _expect, log_in
from bench.runner import Benchmark, OneOff, Request, Sample, Target, Throughput, Timing
from core.clock import to_local

BUREAU = Account("bureau@kequip.test", "区科技局管理员")  # the demo district's bureau admin
YEAR = timedelta(days=365)
DASHBOARD_TIMEOUT = 300  # seconds: a slow answer is measured, not cut off at the harness's usual TIMEOUT


def _today(dataset: Dataset) -> date:
    return to_local(dataset.bookings.now).date()


def _year(dataset: Dataset) -> tuple[date, date]:
    """The last 365 days to the generation's day, included."""
    today = _today(dataset)
    return today - YEAR + timedelta(days=1), today


# --- the metrics, recomputed ----------------------------------------------------------------------

def metrics_recompute(dataset: Dataset) -> list[Timing]:
    """monitoring.metrics.recompute over the last 365 days for every instrument, with its commit: the
    instrument-day rows are built from nothing (the data set has none)."""
    from core.db import unit_of_work, utcnow
    from core.extensions import db
    from monitoring import metrics

    first, last = _year(dataset)
    app = bench_app(dataset.url)
    with app.app_context():
        try:
            started = time.perf_counter()
            with unit_of_work() as session:
                result = metrics.recompute(session, first, last, now=utcnow())
            seconds = time.perf_counter() - started
        finally:
            db.session.remove()
            db.engine.dispose()
    return [Timing(f"{first} to {last}: {result.days:,} instrument-days, {result.changed:,} rows written", seconds)]


def _last_open_day(dataset: Dataset) -> date:
    from bench.bookings import open_days

    today = _today(dataset)
    return open_days(today - timedelta(days=14), today)[-1]


def metrics_roll_up(dataset: Dataset) -> list[Timing]:
    """Untimed: the watermark set to now (the generated rows taken in), then every booking and usage session
    of the last open day before today touched (updated_at set), committed; timed:
    monitoring.jobs.roll_up_metrics, which recomputes the days those changes touched."""
    from core.db import unit_of_work, utcnow
    from core.extensions import db
    from marketplace.booking.models import Booking
    from monitoring import jobs
    from monitoring.metrics import day_bounds
    from monitoring.models import MetricsWatermark, UsageSession

    app = bench_app(dataset.url)
    with app.app_context():
        try:
            day = _last_open_day(dataset)  # the holiday calendar is the database's
            start, end = day_bounds(day, day)
            with unit_of_work() as session:
                mark = session.scalar(sa.select(MetricsWatermark)) or MetricsWatermark()
                # what changed before the touch is taken in already; the generated rows too, by an earlier run:
                # the job's look-back (OVERLAP) must not reach the bookings confirmed just before generation's now
                mark.taken_until = max(utcnow(), dataset.bookings.now + jobs.OVERLAP)
                session.add(mark)
                touched = {}
                for label, model in (("bookings", Booking), ("usage sessions", UsageSession)):
                    table = model.__table__
                    touched[label] = session.execute(sa.update(table).where(table.c.start_at >= start,
                                                                            table.c.start_at < end)
                                                     .values(updated_at=utcnow())).rowcount
                instruments = session.scalar(sa.select(sa.func.count(sa.distinct(Booking.instrument_id)))
                                             .where(Booking.start_at >= start, Booking.start_at < end))
            started = time.perf_counter()
            jobs.roll_up_metrics()
            seconds = time.perf_counter() - started
        finally:
            db.session.remove()
            db.engine.dispose()
    return [Timing(f"{day}: {touched['bookings']:,} bookings and {touched['usage sessions']:,} usage sessions of "
                   f"{instruments:,} instruments touched", seconds)]


def sharing_report_xlsx(dataset: Dataset) -> list[Timing]:
    """In-process, as the view makes it (translated as for a request): the rows of the district's last
    quarter (monitoring.sharing_report.rows) and the XLSX of them (as_xlsx); timed: both."""
    from core.extensions import db
    from monitoring import sharing_report

    quarter = sharing_report.quarter_from({}, today=_today(dataset))
    app = bench_app(dataset.url)
    with app.app_context(), app.test_request_context():
        try:
            started = time.perf_counter()
            found = sharing_report.rows(db.session, quarter, [])
            data = sharing_report.as_xlsx(found, title=f"{quarter.year}Q{quarter.number}")
            seconds = time.perf_counter() - started
        finally:
            db.session.remove()
            db.engine.dispose()
    _expect(bool(found), "the sharing report has no rows")
    hours = sum(row.effective_hours for row in found)
    _expect(hours > 0, "the sharing report shows no effective hours: were the metrics recomputed?")
    return [Timing(f"{quarter.year} Q{quarter.number}: {len(found):,} instruments, {hours:,.0f} effective hours, "
                   f"{len(data) / 1024 / 1024:.1f} MiB", seconds)]


# --- the bureau's dashboard -----------------------------------------------------------------------

def _months(dataset: Dataset) -> tuple[date, date]:
    """The twelve months to the generation's day: from the first of the month eleven months back."""
    today = _today(dataset)
    month = today.month - 11
    first = date(today.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
    return first, today


def _ensure_metrics(dataset: Dataset) -> None:
    """Untimed, when the recompute figure did not run before (`--only dashboard`): the year's days."""
    from monitoring.models import InstrumentDay

    engine = sa.create_engine(dataset.url)
    try:
        with engine.connect() as connection:
            built = connection.scalar(sa.select(sa.func.count()).select_from(InstrumentDay.__table__))
    finally:
        engine.dispose()
    if not built:
        metrics_recompute(dataset)


def monitoring_dashboard(target: Target) -> Sample:
    """The bureau logged in once (untimed); timed: GET /monitoring?period=month&start=…&end=… for the
    twelve months to today: the district's series, totals, rankings of its 20,000 instruments and the
    breakdowns by platform, industry and category."""
    from core.demo import DEMO_PASSWORD

    base_url, dataset = target.base_url, target.dataset
    _ensure_metrics(dataset)
    first, last = _months(dataset)
    session = requests.Session()
    response = log_in(session, base_url, BUREAU, DEMO_PASSWORD)
    _expect(response.status_code == 200 and not response.url.endswith("/login"), f"{BUREAU.email} could not log in")
    params = {"period": "month", "start": first.isoformat(), "end": last.isoformat()}

    def sample(_i: int) -> float:
        started = time.perf_counter()
        response = session.get(f"{base_url}/monitoring", params=params, timeout=DASHBOARD_TIMEOUT)
        elapsed = time.perf_counter() - started
        _expect(response.status_code == 200, f"GET /monitoring answered {response.status_code}")
        _expect('data-testid="totals"' in response.text, "GET /monitoring shows no totals")
        return elapsed

    return sample


# --- device events through the usage API, many instruments at once ------------------------------------

CYCLE = 10  # events of one use: a start, heartbeats a second apart, a stop


class _Device:
    """A client reporting for its own instruments in turn: each instrument's events in time order (start,
    heartbeats, stop, then the next use), stamped with the current time, later than the last one of the
    same instrument."""

    def __init__(self, base_url: str, instruments: list[int]) -> None:
        self.base_url, self.instruments = base_url, instruments
        self.session = requests.Session()
        self.sent = 0
        self.last: dict[int, datetime] = {}

    def __call__(self) -> bool:
        instrument = self.instruments[self.sent % len(self.instruments)]
        step = (self.sent // len(self.instruments)) % CYCLE
        kind = "start" if step == 0 else "stop" if step == CYCLE - 1 else "heartbeat"
        at = datetime.now().astimezone()
        previous = self.last.get(instrument)
        if previous is not None and at <= previous:
            at = previous + timedelta(milliseconds=1)
        self.last[instrument] = at
        self.sent += 1
        response = self.session.post(f"{self.base_url}/api/v1/instruments/{instrument}/usage",
                                     json={"event": kind, "at": at.isoformat(timespec="milliseconds")},
                                     headers={"Authorization": f"Bearer {device_secret(instrument)}"},
                                     timeout=TIMEOUT)
        if response.status_code != 200:
            raise BenchmarkFailed(f"POST …/{instrument}/usage ({kind}) answered {response.status_code}: "
                                  f"{response.text[:300]}")
        body = response.json()
        return not body["duplicate"] and (kind == "stop" or body["session"] is not None)


def device_clients(base_url: str, dataset: Dataset, clients: int) -> list[Request]:
    """Each client reports for its own share of the instruments with a device token."""
    _expect(len(dataset.devices) >= clients, "too few instruments with a device token for the clients")
    return [_Device(base_url, dataset.devices[number::clients]) for number in range(clients)]


def device_events_kept(dataset: Dataset, clients: list[Request]) -> str:
    """Every event sent (warm-ups included) is a row of device_events; none lost."""
    from monitoring.models import DeviceEvent, UsageSession, UsageSource

    sent = sum(client.sent for client in clients)
    engine = sa.create_engine(dataset.url)
    try:
        with engine.connect() as connection:
            rows = connection.scalar(sa.select(sa.func.count()).select_from(DeviceEvent.__table__)
                                     .where(DeviceEvent.instrument_id.in_(dataset.devices)))
            sessions = connection.scalar(sa.select(sa.func.count()).select_from(UsageSession.__table__)
                                         .where(UsageSession.instrument_id.in_(dataset.devices),
                                                UsageSession.source == UsageSource.DEVICE))
    finally:
        engine.dispose()
    if rows != sent:
        raise BenchmarkFailed(f"{sent:,} events sent, {rows:,} stored: {sent - rows:,} lost")
    return f"{sent:,} events sent (warm-ups included), {rows:,} stored: 0 lost; {sessions:,} device sessions"


# --- the figures ------------------------------------------------------------------------------------

ONE_OFFS: list[OneOff] = [
    OneOff("metrics recompute (a year, all instruments)", 10, metrics_recompute,
           "monitoring.metrics.recompute for every instrument over the last 365 days, with its commit, in-process; "
           "the data set holds no instrument-day rows before: all are built from the bookings and the usage "
           "sessions of the completed ones"),
    OneOff("metrics incremental roll-up (a day)", 1, metrics_roll_up,
           "monitoring.jobs.roll_up_metrics after every booking and usage session of the last open day was touched "
           "(updated_at set, untimed): the days those changes touch, recomputed and committed"),
    OneOff("sharing report XLSX (a quarter)", 5, sharing_report_xlsx,
           "monitoring.sharing_report.rows and as_xlsx in-process for the district's last quarter (its year to the "
           "quarter's end), every registered instrument a row"),
]

BENCHMARKS: list[Benchmark] = [
    Benchmark("bureau's monitoring dashboard", 200, monitoring_dashboard,
              "GET /monitoring?period=month&start=…&end=… logged in as the bureau: twelve months of the district's "
              "figures by month, the totals, the top and bottom instruments of the 20,000, the breakdowns by "
              "platform, industry and category and the voucher programmes' spending; the workers' resident memory "
              "is read after it", samples=100, memory=True),
]

THROUGHPUTS: list[Throughput] = [
    Throughput("POST …/usage, device events", 500, device_clients, databases=("postgresql",),
               workers=4, clients=16, requests_per_client=100, verify=device_events_kept,
               description="device events (start, heartbeats, stop, each instrument's in time order) from 16 clients "
                           "in parallel, each for its own 4 instruments with a device token, through POST "
                           "/api/v1/instruments/{id}/usage with the device's bearer token; gunicorn with 4 workers "
                           "on PostgreSQL; every answer must be 200 and new, and every event sent a row afterwards "
                           "(none lost)"),
]
