"""Evaluations racing over committed data (SQLite and PostgreSQL): however many run at once, each
subject gets one unresolved alert and each alert one immediate mail per recipient."""
from __future__ import annotations

import uuid
from collections import Counter

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.models import OutboxMessage, Platform, User
from marketplace.registry import services as catalogue
from monitoring import alerts
from monitoring.alert_rules import Context
from monitoring.models import Alert, AlertKind, AlertState
from tests.marketplace.conftest import instrument_values
from tests.vouchers.test_concurrency import race

pytestmark = pytest.mark.live


def test_racing_evaluations_open_each_alert_once_and_mail_it_once(live_app):
    later = utcnow() + relativedelta(years=5)  # every catalogue entry is stale by then
    context = Context(now=later, large_line_fen=live_app.config["LARGE_INSTRUMENT_LINE_FEN"])
    with live_app.app_context(), unit_of_work() as session:
        admin = session.scalar(select(User).where(User.email == "platform@kequip.test"))
        bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
        platform = session.get(Platform, admin.grants[0].organisation_id)
        for _n in range(3):
            instrument = catalogue.create_instrument(session, platform, admin, actor=Actor.system("test"), values=
                                                     instrument_values(session, asset_number=f"KQ-R-{uuid.uuid4().hex[:8]}"),
                                                     now=utcnow())
            catalogue.submit_instrument(session, instrument, admin, actor=Actor.system("test"), now=utcnow())
            catalogue.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
        before = session.scalar(select(func.max(Alert.id))) or 0
        mails_before = session.scalar(select(func.max(OutboxMessage.id))) or 0

    outcomes = race(live_app, 4, lambda session, _n: alerts.evaluate(
        session, context=context, kinds=[AlertKind.STALE_ENTRY]).opened)

    with live_app.app_context(), unit_of_work() as session:
        new = list(session.scalars(select(Alert).where(Alert.id > before, Alert.kind == AlertKind.STALE_ENTRY)))
        unresolved = Counter((a.subject_type, a.subject_id) for a in session.scalars(
            select(Alert).where(Alert.kind == AlertKind.STALE_ENTRY, Alert.state != AlertState.RESOLVED)))
        mails = Counter((message.to, alert["id"]) for message in session.scalars(select(OutboxMessage).where(OutboxMessage.id > mails_before,
                                                                    OutboxMessage.template == "alert_opened"))
                        for alert in message.context["alerts"])
        assert len(outcomes) == 4 and all(isinstance(opened, int) for opened in outcomes)
        assert sum(outcomes) == len(new) >= 3
        assert set(unresolved.values()) == {1}
        assert mails and set(mails.values()) == {1}
        # leave the live data as it was: the alerts resolve once the entries are fresh again
        alerts.evaluate(session, context=Context(now=utcnow(), large_line_fen=context.large_line_fen),
                        kinds=[AlertKind.STALE_ENTRY])
