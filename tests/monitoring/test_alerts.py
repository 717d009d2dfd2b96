"""Alert rules and alerts: each rule opens an alert, opens it once however often it runs, resolves it by
itself when the condition clears and opens a new one when it returns; mail reaches the real SMTP server
at once or as a daily digest, never twice; people acknowledge and resolve what they may."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.errors import Forbidden, RuleBroken
from core.jobs import send_outbox
from core.models import AuditEntry, OutboxMessage
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState
from marketplace.registry.models import Instrument
from monitoring import alerts, metrics, sessions, telemetry
from monitoring.alert_rules import Context
from monitoring.models import Alert, AlertKind, AlertMailMode, AlertState, DeviceEventKind
from tests.marketplace.conftest import own_rules  # noqa: F401  (a fixture)
from tests.vouchers.conftest import apply_for, create_programme, issue_voucher, serve_booking  # noqa: F401  (fixtures)

LINE = 300_000_00


def context(now: datetime | None = None, **kwargs) -> Context:
    return Context(now=now or utcnow(), large_line_fen=LINE, **kwargs)


def evaluate(session, kind: AlertKind, now: datetime | None = None, **kwargs) -> alerts.Evaluated:
    return alerts.evaluate(session, context=context(now, **kwargs), kinds=[kind])


def alerts_of(session, kind: AlertKind, subject_type: str, subject_id: int) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.kind == kind, Alert.subject_type == subject_type,
                                                    Alert.subject_id == subject_id).order_by(Alert.id)))


def bureau_actor(demo_user) -> Actor:
    return Actor.of(demo_user("bureau"), "127.0.0.1")


def set_rule(session, demo_user, kind: AlertKind, category_id: int | None = None, is_enabled: bool = True, **values):
    return alerts.save_rule(session, kind=kind, category_id=category_id, is_enabled=is_enabled, thresholds=values,
                            actor=bureau_actor(demo_user))


@pytest.fixture
def veteran(session, instrument):
    """The instrument, published 200 days ago and worth less than the large-instrument line, with its
    daily figures computed for the last 180 days."""
    instrument.published_at = utcnow() - timedelta(days=200)
    instrument.original_value_fen = LINE - 1
    session.flush()
    return instrument


def recompute(session, instrument) -> None:
    today = to_local(utcnow()).date()
    metrics.recompute(session, today - timedelta(days=181), today, now=utcnow(), instrument_ids=[instrument.id])


def enter_use(session, demo_user, instrument, days_ago: int, hours: int, user: str = "enterprise"):
    start = utcnow() - timedelta(days=days_ago)
    return sessions.enter(session, instrument, start_at=start, end_at=start + timedelta(hours=hours),
                          user=demo_user(user), reason="补录", actor=Actor.of(demo_user("platform"), None),
                          now=utcnow())


# --- each rule: opens, not twice, resolves by itself, opens again ----------------------------------------

def test_idle_instrument_opens_once_resolves_when_used_and_opens_again(session, veteran, demo_user):
    set_rule(session, demo_user, AlertKind.IDLE, utilization_pct=5, benchmark_hours=1200)
    recompute(session, veteran)
    assert evaluate(session, AlertKind.IDLE).opened >= 1
    [alert] = alerts_of(session, AlertKind.IDLE, "instruments", veteran.id)
    assert (alert.state, alert.figures["utilization_90_pct"], alert.figures["threshold_pct"]) == (AlertState.OPEN, 0, 5)
    assert alert.platform_id == veteran.platform_id
    assert "近 90 天利用率 0.0 %，近 180 天 0.0 %，均低于 5 %" in alerts.describe(alert.kind, alert.figures)

    evaluate(session, AlertKind.IDLE)
    assert len(alerts_of(session, AlertKind.IDLE, "instruments", veteran.id)) == 1  # not twice

    use = enter_use(session, demo_user, veteran, days_ago=20, hours=7 * 24)
    recompute(session, veteran)
    assert evaluate(session, AlertKind.IDLE).resolved >= 1
    assert alert.state == AlertState.RESOLVED and alert.resolved_by_id is None

    sessions.correct(session, use.id, instrument_id=veteran.id, start_at=use.start_at,
                     end_at=use.start_at + timedelta(hours=1), reason="录入有误", actor=bureau_actor(demo_user),
                     now=utcnow())
    recompute(session, veteran)
    evaluate(session, AlertKind.IDLE)
    first, second = alerts_of(session, AlertKind.IDLE, "instruments", veteran.id)
    assert (first.state, second.state) == (AlertState.RESOLVED, AlertState.OPEN)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "alerts",
                                                              AuditEntry.subject_id.in_([first.id, second.id]))).all()
    assert sorted(actions) == ["alert.opened", "alert.opened", "alert.resolved"]


def test_a_large_instrument_under_the_yearly_benchmark_pro_rata_is_idle(session, veteran, demo_user):
    set_rule(session, demo_user, AlertKind.IDLE, utilization_pct=1, benchmark_hours=1200)
    enter_use(session, demo_user, veteran, days_ago=20, hours=7 * 24)
    recompute(session, veteran)
    evaluate(session, AlertKind.IDLE)
    assert alerts_of(session, AlertKind.IDLE, "instruments", veteran.id) == []  # small: well used

    veteran.original_value_fen = LINE
    session.flush()
    evaluate(session, AlertKind.IDLE)
    [alert] = alerts_of(session, AlertKind.IDLE, "instruments", veteran.id)
    assert alert.figures["benchmark_hours_180"] == round(1200 * 180 / 365, 1)  # 591.8 hours
    assert (alert.figures["under_benchmark"], alert.figures["under_utilization"]) == (True, False)
    assert alert.figures["effective_hours_180"] == 168


def test_a_category_override_sets_its_own_threshold_or_turns_the_rule_off(session, veteran, demo_user):
    set_rule(session, demo_user, AlertKind.IDLE, utilization_pct=5, benchmark_hours=1200)
    set_rule(session, demo_user, AlertKind.IDLE, category_id=veteran.category_id, is_enabled=False,
             utilization_pct=5, benchmark_hours=1200)
    recompute(session, veteran)
    evaluate(session, AlertKind.IDLE)
    assert alerts_of(session, AlertKind.IDLE, "instruments", veteran.id) == []


def test_hoarded_instrument_opens_when_the_platform_keeps_it_to_itself(session, veteran, demo_user):
    set_rule(session, demo_user, AlertKind.HOARDED, sharing_pct=20, min_hours=100)
    enter_use(session, demo_user, veteran, days_ago=30, hours=120, user="operator")  # the platform's own
    recompute(session, veteran)
    evaluate(session, AlertKind.HOARDED)
    [alert] = alerts_of(session, AlertKind.HOARDED, "instruments", veteran.id)
    assert (alert.figures["sharing_pct"], alert.figures["effective_hours"]) == (0, 120)

    enter_use(session, demo_user, veteran, days_ago=20, hours=40)  # an enterprise: 40 of 160 hours, 25 %
    recompute(session, veteran)
    evaluate(session, AlertKind.HOARDED)
    assert alert.state == AlertState.RESOLVED


def test_use_without_a_booking_opens_and_resolves_once_out_of_the_days_looked_back(session, instrument, demo_user):
    walk_in = sessions.start_walk_in(session, instrument, user=None, reason="紧急检测",
                                     actor=Actor.of(demo_user("operator"), None), now=utcnow())
    evaluate(session, AlertKind.UNBOOKED_USE)
    evaluate(session, AlertKind.UNBOOKED_USE)
    [alert] = alerts_of(session, AlertKind.UNBOOKED_USE, "usage_sessions", walk_in.id)
    assert alert.figures["reason"] == "紧急检测"
    evaluate(session, AlertKind.UNBOOKED_USE, now=utcnow() + timedelta(days=8))
    assert alert.state == AlertState.RESOLVED


def test_overrun_past_the_booking_end(session, instrument, demo_user, book, monday_at):
    start = monday_at(9, weeks=-1)
    booking = book(instrument, start, start + timedelta(hours=2), now=start - timedelta(days=2))
    usage = sessions.enter(session, instrument, start_at=start, end_at=start + timedelta(hours=2, minutes=20),
                           user=None, reason="补录", actor=Actor.of(demo_user("platform"), None), now=utcnow())
    assert usage.booking_id == booking.id
    evaluate(session, AlertKind.OVERRUN, now=start + timedelta(days=1))
    assert alerts_of(session, AlertKind.OVERRUN, "bookings", booking.id) == []  # 20 minutes: within 30

    sessions.correct(session, usage.id, instrument_id=instrument.id, start_at=start,
                     end_at=start + timedelta(hours=3), reason="实际结束时间", actor=bureau_actor(demo_user),
                     now=utcnow())
    evaluate(session, AlertKind.OVERRUN, now=start + timedelta(days=1))
    evaluate(session, AlertKind.OVERRUN, now=start + timedelta(days=1))
    [alert] = alerts_of(session, AlertKind.OVERRUN, "bookings", booking.id)
    assert (alert.figures["overrun_minutes"], alert.figures["threshold_minutes"]) == (60, 30)


def test_device_offline_during_a_booking(session, instrument, device, book, monday_at):
    token, _secret = device
    booking = book(instrument, monday_at(9), monday_at(11))
    evaluate(session, AlertKind.DEVICE_OFFLINE, now=monday_at(9, 10))
    assert alerts_of(session, AlertKind.DEVICE_OFFLINE, "bookings", booking.id) == []  # not yet 15 minutes
    evaluate(session, AlertKind.DEVICE_OFFLINE, now=monday_at(9, 30))
    [alert] = alerts_of(session, AlertKind.DEVICE_OFFLINE, "bookings", booking.id)
    assert (alert.figures["silent_minutes"], alert.figures["offline_after_minutes"]) == (30, 15)

    telemetry.record_event(session, token, kind=DeviceEventKind.HEARTBEAT, at=monday_at(9, 35), now=monday_at(9, 35))
    evaluate(session, AlertKind.DEVICE_OFFLINE, now=monday_at(9, 40))
    assert alert.state == AlertState.RESOLVED
    evaluate(session, AlertKind.DEVICE_OFFLINE, now=monday_at(10))
    assert [a.state for a in alerts_of(session, AlertKind.DEVICE_OFFLINE, "bookings", booking.id)] == [
        AlertState.RESOLVED, AlertState.OPEN]


def test_repeated_no_shows_by_one_user(session, instrument, demo_user, book, monday_at):
    booker = demo_user("enterprise")
    set_rule(session, demo_user, AlertKind.NO_SHOWS, count=2, days=30)
    for days in (0, 1):
        start = monday_at(9, weeks=-1, days=days)
        book(instrument, start, start + timedelta(hours=1), now=start - timedelta(days=2))
    evaluate(session, AlertKind.NO_SHOWS)
    before = alerts_of(session, AlertKind.NO_SHOWS, "users", booker.id)
    bookings.mark_no_shows(session, now=utcnow())
    evaluate(session, AlertKind.NO_SHOWS)
    evaluate(session, AlertKind.NO_SHOWS)
    after = [a for a in alerts_of(session, AlertKind.NO_SHOWS, "users", booker.id) if a.state != AlertState.RESOLVED]
    assert len(after) == 1 and after[0].figures["count"] >= 2 and after[0].platform_id is None
    assert before == [] or before[0].figures["count"] < after[0].figures["count"]


def test_a_request_left_unapproved_too_long(session, instrument, own_rules, book, monday_at, demo_user):
    own_rules(instrument, requires_approval=True)
    booking = book(instrument, monday_at(9), monday_at(10))
    assert booking.state == BookingState.REQUESTED
    evaluate(session, AlertKind.UNAPPROVED_REQUEST, now=booking.created_at + timedelta(hours=23))
    assert alerts_of(session, AlertKind.UNAPPROVED_REQUEST, "bookings", booking.id) == []
    evaluate(session, AlertKind.UNAPPROVED_REQUEST, now=booking.created_at + timedelta(hours=25))
    [alert] = alerts_of(session, AlertKind.UNAPPROVED_REQUEST, "bookings", booking.id)
    assert alert.figures["waited_hours"] == 25
    admin = demo_user("platform")
    bookings.approve_booking(session, booking, actor=Actor.of(admin, None), user=admin, now=utcnow())
    evaluate(session, AlertKind.UNAPPROVED_REQUEST, now=booking.created_at + timedelta(hours=26))
    assert alert.state == AlertState.RESOLVED


def test_a_catalogue_entry_not_updated_for_months(session, instrument):
    evaluate(session, AlertKind.STALE_ENTRY, now=utcnow() + relativedelta(months=11))
    assert alerts_of(session, AlertKind.STALE_ENTRY, "instruments", instrument.id) == []
    evaluate(session, AlertKind.STALE_ENTRY, now=utcnow() + relativedelta(months=12, days=1))
    [alert] = alerts_of(session, AlertKind.STALE_ENTRY, "instruments", instrument.id)
    assert alert.figures["months"] == 12


def test_voucher_pool_spent_and_voucher_flags_are_raised_for_the_bureau(
        app, session, demo_user, create_instrument, create_programme, issue_voucher, serve_booking, monday_at):
    from marketplace.registry.models import InstrumentState
    from vouchers import flags

    instrument = create_instrument(state=InstrumentState.PUBLISHED)
    programme = create_programme(pool_fen=1_000_00)
    voucher = issue_voucher(amount_fen=1_000_00, programme=programme)
    booking = serve_booking(voucher, instrument, monday_at(9, weeks=-2), used=timedelta(minutes=5))
    session.refresh(voucher)
    assert voucher.consumed_fen >= programme.pool_fen // 100  # at least 1 % spent
    spent = 100 * voucher.consumed_fen / programme.pool_fen
    set_rule(session, demo_user, AlertKind.VOUCHER_POOL_WARNING, spent_pct=int(spent))
    set_rule(session, demo_user, AlertKind.VOUCHER_POOL_CRITICAL, spent_pct=int(spent) + 1)
    for kind in (AlertKind.VOUCHER_POOL_WARNING, AlertKind.VOUCHER_POOL_CRITICAL, AlertKind.VOUCHER_FLAG):
        evaluate(session, kind, voucher_usage=flags.usage_source(app))
    [warning] = alerts_of(session, AlertKind.VOUCHER_POOL_WARNING, "programmes", programme.id)
    assert (warning.figures["spent_fen"], warning.platform_id) == (voucher.consumed_fen, None)
    assert alerts_of(session, AlertKind.VOUCHER_POOL_CRITICAL, "programmes", programme.id) == []
    [flag] = alerts_of(session, AlertKind.VOUCHER_FLAG, "bookings", booking.id)
    assert flag.figures["flag"] == "unused_completion" and flag.figures["booked_hours"] == 2


def test_a_rule_switched_off_resolves_its_alerts(session, instrument, demo_user):
    evaluate(session, AlertKind.STALE_ENTRY, now=utcnow() + relativedelta(months=13))
    [alert] = alerts_of(session, AlertKind.STALE_ENTRY, "instruments", instrument.id)
    set_rule(session, demo_user, AlertKind.STALE_ENTRY, is_enabled=False, months=12)
    evaluate(session, AlertKind.STALE_ENTRY, now=utcnow() + relativedelta(months=13))
    assert alert.state == AlertState.RESOLVED


# --- people ---------------------------------------------------------------------------------------------

def test_acknowledge_and_resolve_by_hand_with_a_note_audited(session, instrument, demo_user):
    evaluate(session, AlertKind.STALE_ENTRY, now=utcnow() + relativedelta(months=13))
    [alert] = alerts_of(session, AlertKind.STALE_ENTRY, "instruments", instrument.id)
    admin, bureau, auditor = demo_user("platform"), demo_user("bureau"), demo_user("auditor")
    with pytest.raises(Forbidden):
        alerts.acknowledge(session, alert.id, user=auditor, actor=Actor.of(auditor, None), now=utcnow())
    alerts.acknowledge(session, alert.id, user=admin, actor=Actor.of(admin, None), now=utcnow())
    assert (alert.state, alert.acknowledged_by_id) == (AlertState.ACKNOWLEDGED, admin.id)
    with pytest.raises(RuleBroken) as refused:
        alerts.resolve(session, alert.id, user=bureau, note="  ", actor=Actor.of(bureau, None), now=utcnow())
    assert refused.value.code == "note_required"
    alerts.resolve(session, alert.id, user=bureau, note="已提醒平台更新", actor=Actor.of(bureau, None), now=utcnow())
    assert (alert.state, alert.resolved_by_id, alert.resolution_note) == (AlertState.RESOLVED, bureau.id, "已提醒平台更新")
    trail = session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "alerts",
                                                            AuditEntry.subject_id == alert.id)
                            .order_by(AuditEntry.id)).all()
    assert trail == ["alert.opened", "alert.acknowledged", "alert.resolved"]
    # the condition still holds: the next run opens it again
    evaluate(session, AlertKind.STALE_ENTRY, now=utcnow() + relativedelta(months=13))
    assert alerts_of(session, AlertKind.STALE_ENTRY, "instruments", instrument.id)[-1].state == AlertState.OPEN


def test_a_threshold_out_of_range_is_refused_by_field(session, demo_user):
    with pytest.raises(RuleBroken) as refused:
        set_rule(session, demo_user, AlertKind.IDLE, utilization_pct=101, benchmark_hours=1200)
    assert (refused.value.code, refused.value.field) == ("threshold_out_of_range", "utilization_pct")
    with pytest.raises(RuleBroken) as refused:
        set_rule(session, demo_user, AlertKind.IDLE, utilization_pct="ten", benchmark_hours=1200)
    assert (refused.value.code, refused.value.field) == ("threshold_invalid", "utilization_pct")


# --- mail -----------------------------------------------------------------------------------------------

def outbox_to(session, email: str, template: str) -> int:
    return session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.to == email,
                                                                   OutboxMessage.template == template))


def test_the_platform_admin_is_mailed_at_once_and_never_twice(session, instrument, demo_user, mailbox):
    admin = demo_user("platform")
    later = utcnow() + relativedelta(months=13)
    evaluate(session, AlertKind.STALE_ENTRY, now=later)
    queued = outbox_to(session, admin.email, "alert_opened")
    assert queued >= 1
    evaluate(session, AlertKind.STALE_ENTRY, now=later)
    assert outbox_to(session, admin.email, "alert_opened") == queued
    assert outbox_to(session, demo_user("bureau").email, "alert_opened") == 0  # an instrument's: its platform's
    send_outbox()
    message = mailbox.wait_for(admin.email)
    assert "预警" in message["Subject"]
    assert instrument.name_zh in message.get_body(("plain",)).get_content()


def test_a_digest_reader_gets_one_daily_mail_of_the_new_alerts_never_twice(session, instrument, demo_user, mailbox,
                                                                           book, monday_at):
    bureau = demo_user("bureau")
    alerts.save_preference(session, bureau, mode=AlertMailMode.DIGEST, actor=Actor.of(bureau, None),
                           now=utcnow() - timedelta(hours=1))
    set_rule(session, demo_user, AlertKind.NO_SHOWS, count=2, days=30)
    for days in (0, 1):
        start = monday_at(9, weeks=-1, days=days)
        book(instrument, start, start + timedelta(hours=1), now=start - timedelta(days=2))
    bookings.mark_no_shows(session, now=utcnow())
    evaluate(session, AlertKind.NO_SHOWS)
    assert outbox_to(session, bureau.email, "alert_opened") == 0  # the bureau reads digests
    assert alerts.send_digests(session, now=utcnow()) >= 1
    assert alerts.send_digests(session, now=utcnow()) == 0
    assert outbox_to(session, bureau.email, "alert_digest") == 1
    send_outbox()
    message = mailbox.wait_for(bureau.email)
    assert "错过" in message.get_body(("plain",)).get_content()


def test_a_parent_categorys_override_applies_to_its_subcategories(session, veteran, demo_user):
    from marketplace.registry.models import InstrumentCategory

    parent_id = session.get(InstrumentCategory, veteran.category_id).parent_id
    assert parent_id is not None
    set_rule(session, demo_user, AlertKind.IDLE, utilization_pct=5, benchmark_hours=1200)
    set_rule(session, demo_user, AlertKind.IDLE, category_id=parent_id, is_enabled=False, utilization_pct=5,
             benchmark_hours=1200)
    recompute(session, veteran)
    evaluate(session, AlertKind.IDLE)
    assert alerts_of(session, AlertKind.IDLE, "instruments", veteran.id) == []
    set_rule(session, demo_user, AlertKind.IDLE, category_id=veteran.category_id, utilization_pct=5,
             benchmark_hours=1200)  # the subcategory's own override wins over its parent's
    evaluate(session, AlertKind.IDLE)
    assert len(alerts_of(session, AlertKind.IDLE, "instruments", veteran.id)) == 1


def test_the_evaluate_alerts_job_runs_every_rule_and_opens_nothing_twice(app, session, instrument):
    from monitoring import jobs

    session.execute(Instrument.__table__.update().where(Instrument.id == instrument.id).values(
        updated_at=utcnow() - relativedelta(months=13)))  # as if untouched for 13 months
    assert jobs.evaluate_alerts() >= 1
    assert len(alerts_of(session, AlertKind.STALE_ENTRY, "instruments", instrument.id)) == 1
    assert jobs.evaluate_alerts() == 0
    assert jobs.send_alert_digests() == 0  # nobody reads digests


def test_a_failed_job_raises_an_alert_to_the_bureau_that_its_next_good_run_resolves(app, session):
    from core.scheduler import Job, run_job

    def failing():
        raise ConnectionError("the catalogue store does not answer")

    job = Job("alert_test_job", failing, "interval", {"minutes": 5})
    session.commit()
    run_job(app, job, reraise=False)
    context = Context(now=utcnow(), large_line_fen=app.config["LARGE_INSTRUMENT_LINE_FEN"])
    alerts.evaluate(session, context=context, kinds=[AlertKind.JOB_FAILED])
    [alert] = session.scalars(select(Alert).where(Alert.kind == AlertKind.JOB_FAILED,
                                                  Alert.subject_key == job.id)).all()
    assert alert.state == AlertState.OPEN and alert.platform_id is None
    assert "ConnectionError: the catalogue store does not answer" in alerts.describe(alert.kind, alert.figures)
    alerts.evaluate(session, context=context, kinds=[AlertKind.JOB_FAILED])
    assert session.scalar(select(func.count()).select_from(Alert).where(Alert.kind == AlertKind.JOB_FAILED,
                                                                          Alert.subject_key == job.id)) == 1
    session.commit()
    run_job(app, Job(job.id, lambda: 0, "interval", {"minutes": 5}), reraise=False)
    alerts.evaluate(session, context=context, kinds=[AlertKind.JOB_FAILED])
    session.refresh(alert)
    assert alert.state == AlertState.RESOLVED
