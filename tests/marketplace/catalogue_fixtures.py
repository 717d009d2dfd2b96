"""Fixtures shared by the catalogue's page and API tests: three catalogue instruments on two platforms, and
`search` (the catalogue's search on the test's database, 100 a page)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from core import services as core_services
from core.audit import Actor
from core.models import Platform, Role
from marketplace.catalogue.services import search_catalogue
from marketplace.registry import services
from marketplace.registry.models import InstrumentState

LINE = 300_000_00  # the default large-instrument line, in fen


@pytest.fixture
def search(session):
    def run(**kwargs):
        kwargs.setdefault("per_page", 100)
        return search_catalogue(session, large_line_fen=LINE, dialect=session.get_bind().dialect.name, **kwargs)

    return run


@pytest.fixture
def other_platform(session, demo_user):
    """A second demo platform (semiconductors), which the demo platform admin may also manage here."""
    admin = demo_user("platform")
    platform = session.scalar(select(Platform).where(Platform.name == "鉴湖光电信息技术中心"))
    core_services.grant_role(session, admin, actor=Actor.system("test"), role=Role.PLATFORM_ADMIN,
                             organisation=platform)
    session.flush()
    return platform


@pytest.fixture
def trio(session, create_instrument, other_platform):
    """(ms, em, ir), published on 1, 2 and 3 March 2026:
    ms: 液相色谱-质谱联用仪 of the demo platform (textiles, new materials), 0101, ¥3,200,000, ¥400.00 an hour, open;
    em: 场发射扫描电镜 of the other platform (semiconductors), 0104, ¥250,000, ¥300.00 an hour, by appointment;
    ir: 傅里叶变换红外光谱仪 of the demo platform, 0102, exactly the large line, ¥200.00 an hour, internal."""
    ms = create_instrument(state=InstrumentState.PUBLISHED)
    em = create_instrument(
        state=InstrumentState.PUBLISHED, platform=other_platform, name_zh="场发射扫描电镜",
        name_en="Scanning electron microscope", model="Regulus 8100", manufacturer="日立 Hitachi",
        category_id=services.category_by_code(session, "0104").id, original_value_fen=250_000_00,
        capabilities=["形貌观察"], sharing_mode="appointment", hourly_rate_district_enterprise_fen=30_000)
    ir = create_instrument(
        state=InstrumentState.PUBLISHED, name_zh="傅里叶变换红外光谱仪", name_en="FTIR spectrometer",
        model="Nicolet iS50", category_id=services.category_by_code(session, "0102").id, original_value_fen=LINE,
        capabilities=["纤维成分鉴别"], sharing_mode="internal", hourly_rate_district_enterprise_fen=20_000)
    for day, instrument in enumerate((ms, em, ir), start=1):
        instrument.published_at = datetime(2026, 3, day, tzinfo=timezone.utc)
    session.flush()
    return ms, em, ir
