"""Alerts (预警): the engine that turns what the rules find (monitoring/alert_rules.py) into alerts, the
people's handling of them, and the mail that tells them.

- One unresolved alert per rule and subject (a partial unique index holds it under concurrent runs).
  Evaluating opens an alert for a new finding, updates the figures of one still found and resolves one
  no longer found (a rule switched off finds nothing); the condition's return opens a new alert.
  Evaluating twice opens nothing twice and mails nothing twice.
- open → acknowledged → resolved, by the bureau (any alert) or a platform admin (their platform's); a
  resolution by hand carries a note. Every change is audited.
- Mail goes to the platform's admins for an instrument's alert and to the bureau for the district's:
  at once (one mail per person per evaluation, queued in the transaction that opens the alerts) or in a
  daily digest of the alerts opened since the person's last one, as each person chose."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.errors import Forbidden, NotFound, RuleBroken
from core.models import Role, RoleGrant, User
from core.money import format_yuan
from core.outbox import enqueue_mail
from core.states import move
from core.templating import local_datetime
from monitoring.alert_rules import RULES, THRESHOLDS, Context, Finding, load_rulebook
from monitoring.models import (
    ALERT_KIND_LABELS,
    ALERT_STATE_LABELS,
    ALERT_TRANSITIONS,
    Alert,
    AlertKind,
    AlertMailMode,
    AlertPreference,
    AlertRule,
    AlertState,
)

ALERTS_PATH = "/alerts"  # the alerts page, linked from the mail
ALERT_READERS = frozenset({Role.BUREAU_ADMIN, Role.AUDITOR})  # who sees every alert
SYSTEM = Actor.system("job:evaluate_alerts")


# --- evaluating ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluated:
    opened: int
    updated: int
    resolved: int


def evaluate(session: Session, *, context: Context, kinds: list[AlertKind] | None = None) -> Evaluated:
    """Run the rules (all, or the kinds given) and bring the unresolved alerts in line with what they find;
    mail the newly opened ones to those who want them at once."""
    book = load_rulebook(session)
    opened: list[Alert] = []
    updated = resolved = 0
    for kind, rule in RULES.items():
        if kinds is not None and kind not in kinds:
            continue
        findings = {finding.key: finding for finding in rule(session, book, context)}
        current = {(alert.subject_type, alert.subject_id, alert.subject_key): alert for alert in session.scalars(
            select(Alert).where(Alert.kind == kind, Alert.state != AlertState.RESOLVED).with_for_update())}
        for key, alert in current.items():
            finding = findings.get(key)
            if finding is None:
                _close(session, alert, actor=SYSTEM, user=None, note="", now=context.now)
                resolved += 1
            elif alert.figures != finding.figures:
                alert.figures = finding.figures
                updated += 1
        opened += _open(session, kind, [finding for key, finding in findings.items() if key not in current],
                        now=context.now)
    session.flush()
    _mail_at_once(session, opened, now=context.now)
    return Evaluated(opened=len(opened), updated=updated, resolved=resolved)


def _open(session: Session, kind: AlertKind, findings: list[Finding], *, now: datetime) -> list[Alert]:
    """New alerts for the findings, in one flush; should a concurrent run have opened some of them first
    (uq_alerts_unresolved), one by one, leaving out those it holds."""
    if not findings:
        return []
    try:
        with session.begin_nested():
            opened = [_new_alert(session, kind, finding, now=now) for finding in findings]
    except IntegrityError:
        opened = []
        for finding in findings:
            try:
                with session.begin_nested():
                    alert = _new_alert(session, kind, finding, now=now)
            except IntegrityError:
                continue  # another run holds it
            opened.append(alert)
    for alert in opened:
        record_audit(session, SYSTEM, "alert.opened", alert, after=alert.audit_view())
    return opened


def _new_alert(session: Session, kind: AlertKind, finding: Finding, *, now: datetime) -> Alert:
    alert = Alert(kind=kind, subject_type=finding.subject_type, subject_id=finding.subject_id,
                  subject_key=finding.subject_key, platform_id=finding.platform_id, figures=finding.figures,
                  state=AlertState.OPEN, opened_at=now)
    session.add(alert)
    return alert


def _close(session: Session, alert: Alert, *, actor: Actor, user: User | None, note: str, now: datetime) -> None:
    before = alert.audit_view()
    move(alert, AlertState.RESOLVED, ALERT_TRANSITIONS, ALERT_STATE_LABELS)
    alert.resolved_at, alert.resolved_by_id, alert.resolution_note = now, user.id if user else None, note
    record_audit(session, actor, "alert.resolved", alert, before=before, after=alert.audit_view())


# --- who sees, handles and is told ---------------------------------------------------------------------

def visible_to(user: User) -> list[sa.ColumnElement[bool]]:
    """Conditions on Alert for the alerts a person sees: all for the bureau and the auditor, their
    platforms' for a platform admin."""
    if user.has_role(*ALERT_READERS):
        return []
    return [Alert.platform_id.in_(user.organisation_ids(Role.PLATFORM_ADMIN))]


def can_read(user: User | None) -> bool:
    return user is not None and user.has_role(*ALERT_READERS, Role.PLATFORM_ADMIN)


def can_handle(user: User | None, alert: Alert) -> bool:
    """The bureau handles any alert; a platform admin their platform's."""
    if user is None:
        return False
    if user.has_role(Role.BUREAU_ADMIN):
        return True
    return alert.platform_id is not None and alert.platform_id in user.organisation_ids(Role.PLATFORM_ADMIN)


def _mailed_to(user: User) -> sa.ColumnElement[bool]:
    """The alerts whose mail reaches the person: their platforms', and the district's for the bureau."""
    conditions = [Alert.platform_id.in_(user.organisation_ids(Role.PLATFORM_ADMIN))]
    if user.has_role(Role.BUREAU_ADMIN):
        conditions.append(Alert.platform_id.is_(None))
    return sa.or_(*conditions)


def alerts_for(user: User, *, state: AlertState | None = None) -> sa.Select:
    """The person's alerts, unresolved first, newest first (a statement, for a page of them)."""
    conditions = visible_to(user) + ([Alert.state == state] if state is not None else [])
    return select(Alert).where(*conditions).order_by((Alert.state == AlertState.RESOLVED), Alert.opened_at.desc(),
                                                     Alert.id.desc())


def count_open(session: Session, user: User | None) -> int:
    """The open alerts the person sees: the count in the page header."""
    if not can_read(user):
        return 0
    return session.scalar(select(func.count(Alert.id)).where(Alert.state == AlertState.OPEN, *visible_to(user)))


def get_alert(session: Session, alert_id: int, *, user: User, lock: bool = False) -> Alert:
    statement = select(Alert).where(Alert.id == alert_id, *visible_to(user))
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    alert = session.scalar(statement)
    if alert is None:
        raise NotFound("alert_not_found", _("There is no such alert."))
    return alert


def _handled(session: Session, alert_id: int, user: User) -> Alert:
    alert = get_alert(session, alert_id, user=user, lock=True)
    if not can_handle(user, alert):
        raise Forbidden("forbidden", _("Only the bureau or the platform's admins handle this alert."))
    return alert


def acknowledge(session: Session, alert_id: int, *, user: User, actor: Actor, now: datetime) -> Alert:
    """Someone has seen the alert and takes it on; it stays until its condition clears or it is resolved."""
    alert = _handled(session, alert_id, user)
    before = alert.audit_view()
    move(alert, AlertState.ACKNOWLEDGED, ALERT_TRANSITIONS, ALERT_STATE_LABELS)
    alert.acknowledged_at, alert.acknowledged_by_id = now, user.id
    record_audit(session, actor, "alert.acknowledged", alert, before=before, after=alert.audit_view())
    return alert


def resolve(session: Session, alert_id: int, *, user: User, note: str, actor: Actor, now: datetime) -> Alert:
    """Resolve by hand, saying how; should the condition still hold, the next evaluation opens it again."""
    note = note.strip()
    if not note:
        raise RuleBroken("note_required", _("Say how the alert was resolved."), field="note")
    alert = _handled(session, alert_id, user)
    _close(session, alert, actor=actor, user=user, note=note[:500], now=now)
    return alert


# --- mail --------------------------------------------------------------------------------------------

def _recipients(session: Session, platform_ids: set[int | None]) -> dict[int | None, list[User]]:
    """The people told of the alerts of each platform (None: the district's, told to the bureau)."""
    wanted = [pid for pid in platform_ids if pid is not None]
    grants = session.execute(select(RoleGrant.organisation_id, RoleGrant.role, User).join(User).where(
        User.is_active.is_(True), sa.or_(
            sa.and_(RoleGrant.role == Role.PLATFORM_ADMIN, RoleGrant.organisation_id.in_(wanted)),
            RoleGrant.role == Role.BUREAU_ADMIN))).all()
    found: dict[int | None, list[User]] = defaultdict(list)
    for organisation_id, role, user in grants:
        found[None if role == Role.BUREAU_ADMIN else organisation_id].append(user)
    return found


def _modes(session: Session, user_ids: set[int]) -> dict[int, AlertMailMode]:
    return dict(session.execute(select(AlertPreference.user_id, AlertPreference.mode)
                                .where(AlertPreference.user_id.in_(user_ids))).all()) if user_ids else {}


def mail_view(alert: Alert) -> dict:
    """What a mail shows of an alert (rendered later, in the recipient's language)."""
    return {"id": alert.id, "kind": alert.kind.value, "figures": dict(alert.figures),
            "opened_at": alert.opened_at.isoformat()}


def _mail_at_once(session: Session, alerts: list[Alert], *, now: datetime) -> None:
    """One mail to each person who wants alerts at once, listing the alerts of this run that reach them."""
    if not alerts:
        return
    people = _recipients(session, {alert.platform_id for alert in alerts})
    modes = _modes(session, {user.id for users in people.values() for user in users})
    reaching: dict[int, tuple[User, list[Alert]]] = {}
    for alert in alerts:
        for user in people.get(alert.platform_id, []):
            if modes.get(user.id, AlertMailMode.IMMEDIATE) == AlertMailMode.IMMEDIATE:
                reaching.setdefault(user.id, (user, []))[1].append(alert)
        alert.notified_at = now
    for user, theirs in reaching.values():
        enqueue_mail(session, to=user.email, locale=user.locale, template="alert_opened",
                     context={"name": user.name, "alerts": [mail_view(alert) for alert in theirs], "path": ALERTS_PATH})


def send_digests(session: Session, *, now: datetime) -> int:
    """Queue each digest reader's mail of the alerts opened since their last digest; the mails queued.
    The digest's watermark moves in the same transaction, so no alert is in two digests."""
    sent = 0
    for preference in session.scalars(select(AlertPreference).where(AlertPreference.mode == AlertMailMode.DIGEST)
                                      .with_for_update()):
        user = session.get(User, preference.user_id)
        alerts = list(session.scalars(select(Alert).where(
            _mailed_to(user), Alert.opened_at > preference.digest_until, Alert.opened_at <= now)
            .order_by(Alert.opened_at, Alert.id)))
        if alerts and user.is_active:
            enqueue_mail(session, to=user.email, locale=user.locale, template="alert_digest",
                         context={"name": user.name, "alerts": [mail_view(alert) for alert in alerts],
                                  "path": ALERTS_PATH})
            sent += 1
        preference.digest_until = now
    return sent


def preference_of(session: Session, user: User) -> AlertMailMode:
    preference = session.get(AlertPreference, user.id)
    return preference.mode if preference is not None else AlertMailMode.IMMEDIATE


def save_preference(session: Session, user: User, *, mode: AlertMailMode, actor: Actor, now: datetime) -> None:
    """Choose at once or the daily digest; a new digest reader's first digest starts now (what was opened
    before was mailed at once)."""
    preference = session.scalar(select(AlertPreference).where(AlertPreference.user_id == user.id).with_for_update())
    if preference is None:
        preference = AlertPreference(user_id=user.id, mode=mode, digest_until=now)
        session.add(preference)
        before = None
    else:
        before = {"mode": preference.mode.value}
        if preference.mode != mode:
            preference.digest_until = now
        preference.mode = mode
    session.flush()
    record_audit(session, actor, "alert_preference.saved", preference, before=before, after={"mode": mode.value})


# --- the bureau's rules -----------------------------------------------------------------------------

def save_rule(session: Session, *, kind: AlertKind, category_id: int | None, is_enabled: bool,
              thresholds: dict[str, str | int | None], actor: Actor) -> AlertRule:
    """Set a rule for the district (no category) or a category; each threshold a whole number in range."""
    values: dict[str, int] = {}
    for threshold in THRESHOLDS[kind]:
        raw = thresholds.get(threshold.name)
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise RuleBroken("threshold_invalid", _("Enter a whole number."), field=threshold.name) from None
        if not threshold.low <= value <= threshold.high:
            raise RuleBroken("threshold_out_of_range", _("Enter a number from %(low)s to %(high)s.",
                                                         low=threshold.low, high=threshold.high), field=threshold.name)
        values[threshold.name] = value
    rule = session.scalar(select(AlertRule).where(AlertRule.kind == kind, AlertRule.category_id.is_(None)
                                                  if category_id is None else AlertRule.category_id == category_id)
                          .with_for_update())
    before = rule.audit_view() if rule is not None else None
    if rule is None:
        rule = AlertRule(kind=kind, category_id=category_id)
        session.add(rule)
    rule.is_enabled, rule.thresholds, rule.updated_by_id = is_enabled, values, actor.user_id
    session.flush()
    record_audit(session, actor, "alert_rule.saved", rule, before=before, after=rule.audit_view())
    return rule


def remove_override(session: Session, rule_id: int, *, actor: Actor) -> None:
    """Drop a category's override: the district's rule applies again."""
    rule = session.scalar(select(AlertRule).where(AlertRule.id == rule_id, AlertRule.category_id.is_not(None))
                          .with_for_update())
    if rule is None:
        raise NotFound("alert_rule_not_found", _("There is no such category override."))
    record_audit(session, actor, "alert_rule.removed", rule, before=rule.audit_view())
    session.delete(rule)
    session.flush()


# --- why, in words -------------------------------------------------------------------------------------

def mail_time(value: str | None) -> str:
    """An instant kept as ISO text in the figures, shown in Asia/Shanghai."""
    return local_datetime(datetime.fromisoformat(value)) if value else "—"


def describe(kind: AlertKind | str, figures: dict) -> str:
    """Why the alert is open, with its figures, in the reader's language."""
    f = figures
    match AlertKind(kind):
        case AlertKind.IDLE:
            parts = []
            if f.get("under_utilization"):
                parts.append(_("Utilization %(u90)s %% over 90 days and %(u180)s %% over 180 days, under %(t)s %%.",
                               u90=f["utilization_90_pct"], u180=f["utilization_180_pct"], t=f["threshold_pct"]))
            if f.get("under_benchmark"):
                parts.append(_("A large instrument with %(hours)s effective hours over 180 days, under the "
                               "yearly benchmark's %(benchmark)s.", hours=f["effective_hours_180"],
                               benchmark=f["benchmark_hours_180"]))
            return " ".join(parts)
        case AlertKind.HOARDED:
            return _("Sharing rate %(rate)s %% over 180 days (%(external)s of %(hours)s effective hours by users "
                     "outside the platform), under %(t)s %%.", rate=f["sharing_pct"], external=f["external_hours"],
                     hours=f["effective_hours"], t=f["threshold_pct"])
        case AlertKind.UNBOOKED_USE:
            return _("Used from %(start)s without a booking. Reason given: %(reason)s",
                     start=mail_time(f["start_at"]), reason=f["reason"] or "—")
        case AlertKind.OVERRUN:
            return _("Used until %(until)s, %(minutes)s minutes past the booking's end at %(end)s (allowed: "
                     "%(t)s).", until=mail_time(f["used_until"]), minutes=f["overrun_minutes"],
                     end=mail_time(f["booking_end_at"]), t=f["threshold_minutes"])
        case AlertKind.DEVICE_OFFLINE:
            return _("No word from the device for %(minutes)s minutes during a booking (offline after %(t)s "
                     "minutes; last heard %(at)s).", minutes=f["silent_minutes"], t=f["offline_after_minutes"],
                     at=mail_time(f["last_heard_at"]))
        case AlertKind.NO_SHOWS:
            return _("%(name)s missed %(count)s bookings within %(days)s days.", name=f["name"], count=f["count"],
                     days=f["days"])
        case AlertKind.UNAPPROVED_REQUEST:
            return _("Requested at %(at)s and unapproved for %(hours)s hours (allowed: %(t)s).",
                     at=mail_time(f["requested_at"]), hours=f["waited_hours"], t=f["threshold_hours"])
        case AlertKind.STALE_ENTRY:
            return _("Last updated at %(at)s, more than %(months)s months ago.", at=mail_time(f["updated_at"]),
                     months=f["months"])
        case AlertKind.JOB_FAILED:
            return _("The job's last run failed at %(at)s: %(error)s", at=mail_time(f["failed_at"]),
                     error=f["error"] or "—")
        case AlertKind.VOUCHER_POOL_WARNING | AlertKind.VOUCHER_POOL_CRITICAL:
            return _("%(spent)s of the pool of %(pool)s spent (%(pct)s %%; the alert is at %(t)s %%).",
                     spent=format_yuan(f["spent_fen"]), pool=format_yuan(f["pool_fen"]), pct=f["spent_pct"],
                     t=f["threshold_pct"])
    return _describe_voucher_flag(f)


def _describe_voucher_flag(f: dict) -> str:
    if f["flag"] == "frequent_pair":
        return _("%(count)s voucher bookings between %(enterprise)s and %(platform)s in a short window.",
                 count=f["count"], enterprise=f["enterprise"], platform=f["platform"])
    if f["flag"] == "unused_completion":
        return _("A voucher booking of %(name)s by %(enterprise)s completed with %(used)s of %(booked)s booked "
                 "hours used.", name=f["name"], enterprise=f["enterprise"],
                 used=f["used_hours"] if f["used_hours"] is not None else 0, booked=f["booked_hours"])
    if f["flag"] == "repeated_amount":
        return _("The same amount %(amount)s charged %(count)s times between %(enterprise)s and %(platform)s.",
                 amount=format_yuan(f["amount_fen"]), count=f["count"], enterprise=f["enterprise"],
                 platform=f["platform"])
    return _("A claim line filed %(days)s days after the service.", days=f["days"])


def kind_label(kind: AlertKind | str) -> str:
    return str(ALERT_KIND_LABELS[AlertKind(kind)])


def subject_label(alert: Alert | dict) -> str:
    figures = alert["figures"] if isinstance(alert, dict) else alert.figures
    return figures.get("name") or figures.get("enterprise") or ""
