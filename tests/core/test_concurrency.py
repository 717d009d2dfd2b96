"""Concurrent requests against committed data: one wins, the others get a clear refusal, never a 500."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core import services
from core.audit import Actor
from core.db import unit_of_work
from core.demo import demo_credit_code
from core.errors import RuleBroken
from core.extensions import db
from core.models import Enterprise
from core.ratelimit import DatabaseStorage

pytestmark = pytest.mark.live


def test_concurrent_registrations_of_one_enterprise_create_it_once(live_app):
    code = demo_credit_code(4242)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def register(n: int) -> None:
        data = services.Registration(email=f"race{n}@example.com", name=f"竞{n}", phone=None, password="password-1",
                                     locale="zh_CN", enterprise_name=f"并发测试企业{n}", credit_code=code,
                                     legal_representative="甲", address=None, is_tech_sme=False)
        with live_app.app_context():
            barrier.wait()
            try:
                with unit_of_work() as session:
                    services.register_enterprise(session, data, actor=Actor.system("test"))
                outcomes.append("created")
            except RuleBroken as error:
                outcomes.append(error.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["created"] + ["enterprise_exists"] * 7
    with live_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Enterprise).where(Enterprise.credit_code == code)) == 1
        db.session.remove()


def test_rate_limit_counters_in_the_database_are_shared_and_expire(live_app):
    with live_app.app_context():
        storage, other_worker = DatabaseStorage(), DatabaseStorage()
        storage.clear("k")
        assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
        assert other_worker.get("k") == 3 and other_worker.get_expiry("k") > 0
        assert storage.incr("short", 0) == 1 and storage.get("short") == 0  # expired at once
        assert storage.incr("short", 60) == 1  # a new window starts from one
        storage.clear("k")
        assert other_worker.get("k") == 0 and storage.check()
