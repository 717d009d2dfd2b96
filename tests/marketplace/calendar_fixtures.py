"""Fixtures shared by the tests of the platform's calendar settings and pages."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core import services as core_services
from core.audit import Actor
from core.clock import to_local
from core.holidays import DayKind, day_kind
from core.models import Platform, Role, User


@pytest.fixture
def workday_at(monday_at):
    """workday_at(hour, minute=0, weeks=1): like monday_at, on the first such Monday that is an ordinary
    working day (no public holiday), so the district's default hours apply."""

    def make(hour: int, minute: int = 0, weeks: int = 1):
        while day_kind(to_local(monday_at(0, weeks=weeks)).date()) != DayKind.ORDINARY:
            weeks += 1
        return monday_at(hour, minute, weeks=weeks)

    return make




@pytest.fixture
def other_admin(session) -> User:
    """The admin of a second platform, who holds no role on the demo platform."""
    platform = session.scalar(select(Platform).where(Platform.name == "鉴湖光电信息技术中心"))
    person = User(email="other-admin@kequip.test", name="别的平台", password_hash="x")
    session.add(person)
    session.flush()
    core_services.grant_role(session, person, actor=Actor.system("test"), role=Role.PLATFORM_ADMIN,
                             organisation=platform)
    session.flush()
    return person
