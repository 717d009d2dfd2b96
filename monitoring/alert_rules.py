"""The alert rules: each finds the subjects that meet its condition now, with the figures that say why.
The engine (monitoring/alerts.py) opens, updates and resolves alerts from what they find.

The bureau sets each rule's thresholds and switch for the district and may override them for an
instrument category (a 4-digit category's override applies, else its 2-digit parent's, else the
district's). Rules about an instrument, its bookings or its use read the instrument's category; the
others (no-shows by a person, voucher programmes and flags) only the district's.

Utilization and sharing read the daily figures (InstrumentDay) that the roll_up_metrics job keeps
current; the alert job does not recompute them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import to_local
from core.models import JobOutcome, JobRun, User
from marketplace.booking.models import Booking, BookingState
from marketplace.registry.models import CATALOGUE_STATES, Instrument, InstrumentCategory, InstrumentState
from monitoring import metrics
from monitoring.models import (
    DEFAULT_OFFLINE_AFTER_MINUTES,
    AlertKind,
    AlertRule,
    DeviceEvent,
    DeviceToken,
    InstrumentMonitoring,
    UsageSession,
)
from vouchers import flags as voucher_flags
from vouchers.models import Programme, Voucher

WINDOWS = (90, 180)  # trailing days over which utilization is judged
SHARING_WINDOW = 180
DAYS_A_YEAR = 365


@dataclass(frozen=True)
class Threshold:
    name: str
    label: object
    default: int
    low: int
    high: int


THRESHOLDS: dict[AlertKind, tuple[Threshold, ...]] = {
    AlertKind.IDLE: (Threshold("utilization_pct", _l("Utilization under (%)"), 10, 0, 100),
                     Threshold("benchmark_hours", _l("Yearly benchmark of a large instrument (effective hours)"),
                               1200, 0, 8760)),
    AlertKind.HOARDED: (Threshold("sharing_pct", _l("Sharing rate under (%)"), 20, 0, 100),
                        Threshold("min_hours", _l("With at least (effective hours in 180 days)"), 100, 0, 4380)),
    AlertKind.UNBOOKED_USE: (Threshold("days", _l("Looking back (days)"), 7, 1, 90),),
    AlertKind.OVERRUN: (Threshold("minutes", _l("Past the booking's end by more than (minutes)"), 30, 1, 1440),
                        Threshold("days", _l("Looking back (days)"), 7, 1, 90)),
    AlertKind.DEVICE_OFFLINE: (),  # each instrument's own offline time
    AlertKind.NO_SHOWS: (Threshold("count", _l("No-shows at least"), 3, 2, 100),
                         Threshold("days", _l("Within (days)"), 30, 1, 365)),
    AlertKind.UNAPPROVED_REQUEST: (Threshold("hours", _l("Unapproved for more than (hours)"), 24, 1, 720),),
    AlertKind.STALE_ENTRY: (Threshold("months", _l("Not updated for (months)"), 12, 1, 120),),
    AlertKind.VOUCHER_POOL_WARNING: (Threshold("spent_pct", _l("Pool spent at least (%)"), 80, 1, 100),),
    AlertKind.VOUCHER_POOL_CRITICAL: (Threshold("spent_pct", _l("Pool spent at least (%)"), 95, 1, 100),),
    AlertKind.VOUCHER_FLAG: (),
    AlertKind.JOB_FAILED: (),
}

# Rules whose subject belongs to an instrument: a category may override their thresholds
BY_CATEGORY = frozenset({AlertKind.IDLE, AlertKind.HOARDED, AlertKind.UNBOOKED_USE, AlertKind.OVERRUN,
                         AlertKind.DEVICE_OFFLINE, AlertKind.UNAPPROVED_REQUEST, AlertKind.STALE_ENTRY})


def defaults(kind: AlertKind) -> dict[str, int]:
    return {threshold.name: threshold.default for threshold in THRESHOLDS[kind]}


@dataclass
class Rulebook:
    """The rules as the bureau set them, read once per evaluation."""

    rules: dict[tuple[AlertKind, int | None], AlertRule]
    parents: dict[int, int | None]

    def rule(self, kind: AlertKind, category_id: int | None = None) -> AlertRule | None:
        """The row that governs the kind for the category: its own, its parent's, the district's."""
        if kind in BY_CATEGORY and category_id is not None:
            for key in (category_id, self.parents.get(category_id)):
                if key is not None and (kind, key) in self.rules:
                    return self.rules[(kind, key)]
        return self.rules.get((kind, None))

    def values(self, kind: AlertKind, category_id: int | None = None) -> dict[str, int]:
        """The thresholds set for the category (or the district), whether the rule is on or off."""
        row = self.rule(kind, category_id)
        return defaults(kind) | (dict(row.thresholds) if row is not None else {})

    def is_enabled(self, kind: AlertKind, category_id: int | None = None) -> bool:
        row = self.rule(kind, category_id)
        return row is None or row.is_enabled

    def settings(self, kind: AlertKind, category_id: int | None = None) -> dict[str, int] | None:
        """The thresholds in force, or None when the rule is off there."""
        return self.values(kind, category_id) if self.is_enabled(kind, category_id) else None


def load_rulebook(session: Session) -> Rulebook:
    rules = {(row.kind, row.category_id): row for row in session.scalars(select(AlertRule))}
    parents = dict(session.execute(select(InstrumentCategory.id, InstrumentCategory.parent_id)).all())
    return Rulebook(rules, parents)


@dataclass(frozen=True)
class Finding:
    """A subject that meets a rule's condition now, and the figures that say why."""

    subject_type: str
    subject_id: int
    platform_id: int | None  # whose admins are told; None: the bureau's
    figures: dict
    subject_key: str = ""

    @property
    def key(self) -> tuple[str, int, str]:
        return self.subject_type, self.subject_id, self.subject_key


@dataclass(frozen=True)
class Context:
    now: datetime
    large_line_fen: int  # an instrument worth this much or more is large
    voucher_usage: voucher_flags.UsageSource = field(default=voucher_flags.checkin_usage)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1)


# --- utilization and sharing ------------------------------------------------------------------------

def _published(session: Session, since: datetime):
    """Published instruments published before `since` (a full window of history)."""
    return session.execute(select(Instrument.id, Instrument.platform_id, Instrument.category_id, Instrument.name_zh,
                                  Instrument.original_value_fen).where(
        Instrument.state == InstrumentState.PUBLISHED, Instrument.published_at <= since)).all()


def _totals(session: Session, context: Context, days: int) -> dict[int, dict[str, int]]:
    yesterday = to_local(context.now).date() - timedelta(days=1)
    return dict(metrics.instrument_totals(session, [Instrument.state == InstrumentState.PUBLISHED],
                                          yesterday - timedelta(days=days - 1), yesterday))


def idle(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """Utilization under the threshold over both the trailing 90 and 180 days; a large instrument also
    when its effective hours over 180 days fall short of the yearly benchmark pro rata."""
    longest = max(WINDOWS)
    totals = {days: _totals(session, context, days) for days in WINDOWS}
    found = []
    for instrument in _published(session, context.now - timedelta(days=longest)):
        settings = book.settings(AlertKind.IDLE, instrument.category_id)
        windows = [totals[days].get(instrument.id) for days in WINDOWS]
        if settings is None or any(window is None or not window["available_seconds"] for window in windows):
            continue
        rates = [_pct(window["effective_seconds"], window["available_seconds"]) for window in windows]
        under = all(rate < settings["utilization_pct"] for rate in rates)
        is_large = instrument.original_value_fen >= context.large_line_fen
        hours = round(windows[-1]["effective_seconds"] / 3600, 1)
        benchmark = round(settings["benchmark_hours"] * longest / DAYS_A_YEAR, 1)
        short = is_large and hours < benchmark
        if under or short:
            found.append(Finding("instruments", instrument.id, instrument.platform_id, {
                "name": instrument.name_zh, "utilization_90_pct": rates[0], "utilization_180_pct": rates[1],
                "threshold_pct": settings["utilization_pct"], "is_large": is_large, "effective_hours_180": hours,
                "benchmark_hours_180": benchmark, "under_utilization": under, "under_benchmark": short}))
    return found


def hoarded(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """Enough effective hours over 180 days, but too few of them by users outside the platform."""
    totals = _totals(session, context, SHARING_WINDOW)
    found = []
    for instrument in _published(session, context.now - timedelta(days=SHARING_WINDOW)):
        settings = book.settings(AlertKind.HOARDED, instrument.category_id)
        window = totals.get(instrument.id)
        if settings is None or window is None or not window["effective_seconds"]:
            continue
        hours = round(window["effective_seconds"] / 3600, 1)
        rate = _pct(window["external_seconds"], window["effective_seconds"])
        if hours >= settings["min_hours"] and rate < settings["sharing_pct"]:
            found.append(Finding("instruments", instrument.id, instrument.platform_id, {
                "name": instrument.name_zh, "sharing_pct": rate, "threshold_pct": settings["sharing_pct"],
                "effective_hours": hours, "external_hours": round(window["external_seconds"] / 3600, 1),
                "min_hours": settings["min_hours"]}))
    return found


# --- use, bookings and devices -----------------------------------------------------------------------

def _bound(book: Rulebook, kind: AlertKind, name: str, pick: Callable = max) -> int | None:
    """The largest (or smallest) value of a threshold wherever the rule is on, None where it is off
    everywhere: how far a query must reach before each subject is judged by its own thresholds."""
    found = [book.settings(kind, category) for (k, category) in book.rules if k == kind] + [book.settings(kind)]
    return pick((settings[name] for settings in found if settings is not None), default=None)


def unbooked_use(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """A session of use that no booking covers (flagged), started within the days looked back."""
    days = _bound(book, AlertKind.UNBOOKED_USE, "days")
    if days is None:
        return []
    since = context.now - timedelta(days=days)
    found = []
    for usage, instrument in session.execute(
            select(UsageSession, Instrument).join(Instrument, Instrument.id == UsageSession.instrument_id)
            .where(UsageSession.is_flagged.is_(True), UsageSession.start_at >= since)):
        settings = book.settings(AlertKind.UNBOOKED_USE, instrument.category_id)
        if settings is None or usage.start_at < context.now - timedelta(days=settings["days"]):
            continue
        found.append(Finding("usage_sessions", usage.id, instrument.platform_id, {
            "name": instrument.name_zh, "instrument_id": instrument.id, "start_at": _iso(usage.start_at),
            "end_at": _iso(usage.end_at), "reason": usage.reason}))
    return found


def overrun(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """Use that went on past its booking's end by more than the threshold (an open session: until now)."""
    days = _bound(book, AlertKind.OVERRUN, "days")
    if days is None:
        return []
    since = context.now - timedelta(days=days)
    latest: dict[int, tuple[Booking, Instrument, datetime]] = {}
    for usage, booking, instrument in session.execute(
            select(UsageSession, Booking, Instrument).join(Booking, Booking.id == UsageSession.booking_id)
            .join(Instrument, Instrument.id == Booking.instrument_id)
            .where(Booking.end_at >= since, func.coalesce(UsageSession.end_at, context.now) > Booking.end_at)):
        until = usage.end_at or context.now
        if booking.id not in latest or until > latest[booking.id][2]:
            latest[booking.id] = (booking, instrument, until)
    found = []
    for booking, instrument, until in latest.values():
        settings = book.settings(AlertKind.OVERRUN, instrument.category_id)
        minutes = int((until - booking.end_at).total_seconds() // 60)
        if settings is None or booking.end_at < context.now - timedelta(days=settings["days"]) \
                or minutes <= settings["minutes"]:
            continue
        found.append(Finding("bookings", booking.id, instrument.platform_id, {
            "name": instrument.name_zh, "instrument_id": instrument.id, "booking_end_at": _iso(booking.end_at),
            "used_until": _iso(until), "overrun_minutes": minutes, "threshold_minutes": settings["minutes"]}))
    return found


def device_offline(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """A booking under way on an instrument with a live device token, and no event from the device for
    longer than the instrument's offline time (counted from the booking's start at the earliest)."""
    now = context.now
    with_device = select(DeviceToken.instrument_id).where(DeviceToken.revoked_at.is_(None))
    rows = session.execute(
        select(Booking, Instrument, InstrumentMonitoring.offline_after_minutes)
        .join(Instrument, Instrument.id == Booking.instrument_id)
        .outerjoin(InstrumentMonitoring, InstrumentMonitoring.instrument_id == Booking.instrument_id)
        .where(Booking.state.in_((BookingState.CONFIRMED, BookingState.IN_PROGRESS)), Booking.start_at <= now,
               Booking.end_at > now, Booking.instrument_id.in_(with_device))).all()
    if not rows:
        return []
    last_heard = dict(session.execute(
        select(DeviceEvent.instrument_id, func.max(DeviceEvent.at))
        .where(DeviceEvent.instrument_id.in_({instrument.id for _b, instrument, _m in rows}), DeviceEvent.at <= now)
        .group_by(DeviceEvent.instrument_id)).all())
    found = []
    for booking, instrument, minutes in rows:
        if book.settings(AlertKind.DEVICE_OFFLINE, instrument.category_id) is None:
            continue
        offline_after = minutes or DEFAULT_OFFLINE_AFTER_MINUTES
        heard = last_heard.get(instrument.id)
        silent_since = max(heard, booking.start_at) if heard else booking.start_at
        if now - silent_since > timedelta(minutes=offline_after):
            found.append(Finding("bookings", booking.id, instrument.platform_id, {
                "name": instrument.name_zh, "instrument_id": instrument.id, "last_heard_at": _iso(heard),
                "silent_minutes": int((now - silent_since).total_seconds() // 60),
                "offline_after_minutes": offline_after}))
    return found


def no_shows(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """One person missed N bookings or more within M days."""
    settings = book.settings(AlertKind.NO_SHOWS)
    if settings is None:
        return []
    counted = func.count(Booking.id)
    rows = session.execute(
        select(User.id, User.name, User.email, counted).join(Booking, Booking.booker_id == User.id)
        .where(Booking.state == BookingState.NO_SHOW, Booking.start_at >= context.now - timedelta(days=settings["days"]),
               Booking.start_at <= context.now)
        .group_by(User.id, User.name, User.email).having(counted >= settings["count"])).all()
    return [Finding("users", user_id, None, {"name": name, "email": email, "count": count, "days": settings["days"]})
            for user_id, name, email, count in rows]


def unapproved_request(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """A booking request waiting for the platform's approval longer than the threshold."""
    hours = _bound(book, AlertKind.UNAPPROVED_REQUEST, "hours", min)
    if hours is None:
        return []
    found = []
    for booking, instrument in session.execute(
            select(Booking, Instrument).join(Instrument, Instrument.id == Booking.instrument_id)
            .where(Booking.state == BookingState.REQUESTED,
                   Booking.created_at <= context.now - timedelta(hours=hours))):
        settings = book.settings(AlertKind.UNAPPROVED_REQUEST, instrument.category_id)
        waited = (context.now - booking.created_at).total_seconds() / 3600
        if settings is None or waited <= settings["hours"]:
            continue
        found.append(Finding("bookings", booking.id, instrument.platform_id, {
            "name": instrument.name_zh, "instrument_id": instrument.id, "requested_at": _iso(booking.created_at),
            "waited_hours": int(waited), "threshold_hours": settings["hours"]}))
    return found


def stale_entry(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """A catalogue entry not updated for the months given."""
    found = []
    for instrument in session.execute(select(Instrument.id, Instrument.platform_id, Instrument.category_id,
                                             Instrument.name_zh, Instrument.updated_at)
                                      .where(Instrument.state.in_(CATALOGUE_STATES))):
        settings = book.settings(AlertKind.STALE_ENTRY, instrument.category_id)
        if settings is None or instrument.updated_at > context.now - relativedelta(months=settings["months"]):
            continue
        found.append(Finding("instruments", instrument.id, instrument.platform_id, {
            "name": instrument.name_zh, "updated_at": _iso(instrument.updated_at), "months": settings["months"]}))
    return found


# --- vouchers ---------------------------------------------------------------------------------------

def _voucher_pool(kind: AlertKind) -> Callable[[Session, Rulebook, Context], list[Finding]]:
    def rule(session: Session, book: Rulebook, context: Context) -> list[Finding]:
        """A programme whose vouchers have spent (consumed on completed bookings) this share of its pool."""
        settings = book.settings(kind)
        if settings is None:
            return []
        rows = session.execute(select(Programme.id, Programme.name, Programme.pool_fen,
                                      func.coalesce(func.sum(Voucher.consumed_fen), 0))
                               .outerjoin(Voucher, Voucher.programme_id == Programme.id)
                               .where(Programme.pool_fen > 0).group_by(Programme.id, Programme.name, Programme.pool_fen))
        return [Finding("programmes", programme_id, None, {
            "name": name, "pool_fen": pool, "spent_fen": int(spent), "spent_pct": _pct(int(spent), pool),
            "threshold_pct": settings["spent_pct"]})
            for programme_id, name, pool, spent in rows if 100 * int(spent) >= settings["spent_pct"] * pool]

    return rule


def voucher_flag(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """Each of the voucher anti-abuse flags (vouchers/flags.py), raised as an alert for the bureau."""
    if book.settings(AlertKind.VOUCHER_FLAG) is None:
        return []
    raised = voucher_flags.flags_for_bureau(session, now=context.now, usage=context.voucher_usage)
    found = [Finding("enterprises", flag.enterprise_id, None, {
        "flag": "frequent_pair", "enterprise": flag.enterprise_name, "platform": flag.platform_name,
        "count": flag.count}, subject_key=f"frequent:{flag.platform_id}") for flag in raised.frequent_pairs]
    found += [Finding("bookings", flag.booking_id, None, {
        "flag": "unused_completion", "enterprise": flag.enterprise_name, "platform": flag.platform_name,
        "name": flag.instrument_name, "booked_hours": round(flag.booked_seconds / 3600, 1),
        "used_hours": round(flag.used_seconds / 3600, 1) if flag.used_seconds is not None else None},
        subject_key="unused") for flag in raised.unused_completions]
    found += [Finding("enterprises", flag.enterprise_id, None, {
        "flag": "repeated_amount", "enterprise": flag.enterprise_name, "platform": flag.platform_name,
        "amount_fen": flag.amount_fen, "count": flag.count},
        subject_key=f"amount:{flag.platform_id}:{flag.amount_fen}") for flag in raised.repeated_amounts]
    found += [Finding("claim_lines", flag.line_id, None, {
        "flag": "late_claim", "claim_id": flag.claim_id, "days": flag.days}, subject_key="late")
        for flag in raised.late_claims]
    return found


# --- jobs -----------------------------------------------------------------------------------------

def job_failed(session: Session, book: Rulebook, context: Context) -> list[Finding]:
    """A periodic job whose last finished run failed, for the bureau: resolved by its next good run."""
    if book.settings(AlertKind.JOB_FAILED) is None:
        return []
    last = (select(JobRun.job_id, func.max(JobRun.started_at).label("started_at"))
            .where(JobRun.finished_at.is_not(None)).group_by(JobRun.job_id).subquery())
    return [Finding("job_runs", 0, None, {"name": run.job_id, "run_id": run.id, "failed_at": _iso(run.finished_at),
                                                "error": (run.error or "").splitlines()[-1:][0][:200]
                                                if run.error else ""}, subject_key=run.job_id)
            for run in session.scalars(select(JobRun).join(last, sa.and_(
                JobRun.job_id == last.c.job_id, JobRun.started_at == last.c.started_at))
                .where(JobRun.outcome == JobOutcome.FAILED))]


RULES: dict[AlertKind, Callable[[Session, Rulebook, Context], list[Finding]]] = {
    AlertKind.IDLE: idle,
    AlertKind.HOARDED: hoarded,
    AlertKind.UNBOOKED_USE: unbooked_use,
    AlertKind.OVERRUN: overrun,
    AlertKind.DEVICE_OFFLINE: device_offline,
    AlertKind.NO_SHOWS: no_shows,
    AlertKind.UNAPPROVED_REQUEST: unapproved_request,
    AlertKind.STALE_ENTRY: stale_entry,
    AlertKind.VOUCHER_POOL_WARNING: _voucher_pool(AlertKind.VOUCHER_POOL_WARNING),
    AlertKind.VOUCHER_POOL_CRITICAL: _voucher_pool(AlertKind.VOUCHER_POOL_CRITICAL),
    AlertKind.JOB_FAILED: job_failed,
    AlertKind.VOUCHER_FLAG: voucher_flag,
}
