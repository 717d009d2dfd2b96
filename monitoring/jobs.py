"""Monitoring's jobs: the metrics roll-up (the days that changed since the last run), ending the
sessions of devices that went silent, evaluating the alert rules and the daily alert digests."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.clock import to_local
from core.db import unit_of_work, utcnow
from core.scheduler import Job
from marketplace.booking import services as bookings
from monitoring import alerts, metrics, telemetry
from monitoring.alert_rules import Context
from monitoring.models import MetricsWatermark
from vouchers import flags

# A change made while the last run read may have been committed just after it: look back this far again
# (recomputing a day twice changes nothing)
OVERLAP = timedelta(minutes=5)


def close_silent_sessions(now: datetime | None = None) -> int:
    now = now or utcnow()
    with bookings.booking_change(actor=telemetry.DEVICE, now=now) as session:
        return telemetry.close_silent_sessions(session, now=now)


def roll_up_metrics(now: datetime | None = None) -> int:
    """Recompute the days whose bookings or sessions changed since the last run (all of this year's on
    the first run); the rows changed."""
    now = now or utcnow()
    with unit_of_work() as session:
        mark = session.scalar(select(MetricsWatermark).with_for_update())
        if mark is None:
            today = to_local(now).date()
            result = metrics.recompute(session, today.replace(month=1, day=1), today, now=now)
            session.add(MetricsWatermark(taken_until=now))
        else:
            result = metrics.recompute_touched(session, mark.taken_until - OVERLAP, now=now)
            mark.taken_until = now
        return result.changed


def evaluate_alerts(now: datetime | None = None) -> int:
    """Run every alert rule over the district (on the daily figures roll_up_metrics keeps); the alerts
    opened. Running it again opens and mails nothing twice."""
    context = Context(now=now or utcnow(), large_line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"],
                      voucher_usage=flags.usage_source(current_app))
    with unit_of_work() as session:
        return alerts.evaluate(session, context=context).opened


def send_alert_digests(now: datetime | None = None) -> int:
    with unit_of_work() as session:
        return alerts.send_digests(session, now=now or utcnow())


JOBS: list[Job] = [
    Job("close_silent_device_sessions", close_silent_sessions, "interval", {"minutes": 5},
        _l("End the sessions of silent devices")),
    Job("roll_up_metrics", roll_up_metrics, "interval", {"minutes": 10}, _l("Roll up the usage figures")),
    Job("evaluate_alerts", evaluate_alerts, "interval", {"minutes": 15}, _l("Evaluate the alert rules")),
    Job("send_alert_digests", send_alert_digests, "cron", {"hour": 8, "minute": 0, "timezone": "Asia/Shanghai"},
        _l("Send the daily alert digests")),
]
