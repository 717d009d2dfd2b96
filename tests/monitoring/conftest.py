"""Factories for the monitoring tests: the marketplace's instrument and booking factories, an instrument
registered long ago (so that past events are after it existed), and a device token for it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.audit import Actor
from core.db import utcnow
from tests.marketplace.conftest import book, create_instrument, free_instrument, monday_at  # noqa: F401  (fixtures)


@pytest.fixture
def instrument(session, free_instrument):
    """A published instrument with no fees, registered 60 days ago."""
    free_instrument.created_at = utcnow() - timedelta(days=60)
    session.flush()
    return free_instrument


@pytest.fixture
def device(session, instrument, demo_user):
    """A device token of the instrument: (token row, secret)."""
    from monitoring import telemetry

    admin = demo_user("platform")
    return telemetry.issue_token(session, instrument, label="HPLC 控制电脑", actor=Actor.of(admin, "127.0.0.1"))
