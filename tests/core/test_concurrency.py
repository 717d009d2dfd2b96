"""Concurrent requests against committed data: one wins, the others get a clear refusal, never a 500."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select

from core import services
from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.demo import demo_credit_code
from core.errors import Conflict, RuleBroken
from core.extensions import db
from core.models import AuditEntry, ChangeState, Enterprise, OrganisationChange, Role, RoleGrant, User
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


def test_concurrent_grants_of_one_role_create_it_once(live_app):
    from core.models import Role, RoleGrant, User

    email = f"grant-race-{uuid.uuid4().hex[:8]}@example.com"  # its own person: the live database is shared
    with live_app.app_context():
        with unit_of_work() as session:
            session.add(User(email=email, name="并发", password_hash="x"))
        db.session.remove()
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def grant() -> None:
        with live_app.app_context():
            barrier.wait()
            try:
                with unit_of_work() as session:
                    person = session.scalar(select(User).where(User.email == email))
                    services.grant_role(session, person, actor=Actor.system("test"), role=Role.EXPERT,
                                        organisation=None)
                outcomes.append("granted")
            except RuleBroken as error:
                outcomes.append(error.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=grant) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["granted"] + ["role_held"] * 5
    with live_app.app_context():
        count = db.session.scalar(select(func.count()).select_from(RoleGrant).join(User).where(
            User.email == email, RoleGrant.role == Role.EXPERT))
        assert count == 1
        db.session.remove()


def test_concurrent_guesses_at_one_account_hear_exactly_the_limit(live_app):
    """Each guess takes its place in the (account, address) count before the password is checked, so
    guesses sent at the same moment cannot slip past the limit together."""
    from limits import parse

    email = f"guess-race-{uuid.uuid4().hex[:8]}@example.com"
    address = f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    limit = parse(live_app.config["LOGIN_FAILURE_LIMIT"]).amount
    statuses: list[int] = []
    barrier = threading.Barrier(limit + 7)

    def guess() -> None:
        client = live_app.test_client()
        barrier.wait()
        statuses.append(client.post("/api/v1/tokens", json={"email": email, "password": "wrong"},
                                    environ_base={"REMOTE_ADDR": address}).status_code)

    threads = [threading.Thread(target=guess) for _ in range(limit + 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [401] * limit + [429] * 7


def test_rate_limit_counters_in_the_database_count_every_concurrent_increment(live_app):
    key = f"race-{uuid.uuid4().hex[:8]}"
    counts: list[int] = []
    barrier = threading.Barrier(8)

    def increment() -> None:
        with live_app.app_context():
            barrier.wait()
            counts.append(DatabaseStorage().incr(key, 60))

    threads = [threading.Thread(target=increment) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(counts) == list(range(1, 9))
    with live_app.app_context():
        DatabaseStorage().clear(key)


def race(live_app, count: int, work) -> list[str]:
    """work(session, n) in `count` threads released together, each in its own app context and unit of work;
    each returns an outcome or raises a RuleBroken or Conflict, whose code is the outcome."""
    outcomes: list[str] = []
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        with live_app.app_context():
            barrier.wait()
            try:
                with unit_of_work() as session:
                    outcomes.append(work(session, n))
            except (RuleBroken, Conflict) as error:
                outcomes.append(error.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def new_enterprise_with_members(session, members: int) -> tuple[int, list[int]]:
    tag = uuid.uuid4().int % 100_000
    enterprise = Enterprise(name=f"变更并发企业 {tag}", credit_code=demo_credit_code(600_000 + tag),
                            legal_representative="原法人", actual_controller="原控制人")
    users = [User(email=f"change-{tag}-{n}@example.com", name=f"变更{n}", password_hash="x") for n in range(members)]
    session.add_all([enterprise, *users])
    session.flush()
    session.add_all([RoleGrant(user_id=u.id, role=Role.ENTERPRISE_MEMBER, organisation_id=enterprise.id) for u in users])
    session.flush()
    return enterprise.id, [u.id for u in users]


def test_concurrent_changes_asked_for_one_organisation_leave_one_waiting(live_app):
    with live_app.app_context():
        with unit_of_work() as session:
            enterprise_id, member_ids = new_enterprise_with_members(session, 6)
        db.session.remove()

        def ask(session, n: int) -> str:
            user = session.get(User, member_ids[n])
            enterprise = session.get(Enterprise, enterprise_id)
            services.update_organisation(session, enterprise, user, actor=Actor.of(user, None), now=utcnow(),
                                         changes={"actual_controller": f"控制人{n}"})
            return "asked"

        outcomes = race(live_app, 6, ask)
        assert sorted(outcomes) == ["asked"] + ["change_pending"] * 5
        waiting = db.session.scalars(select(OrganisationChange).where(
            OrganisationChange.organisation_id == enterprise_id)).all()
        assert len(waiting) == 1 and waiting[0].state == ChangeState.PENDING
        assert db.session.get(Enterprise, enterprise_id).actual_controller == "原控制人"
        db.session.remove()


def test_racing_approvals_and_rejections_of_one_change_make_one_decision(live_app):
    with live_app.app_context():
        with unit_of_work() as session:
            enterprise_id, (member_id,) = new_enterprise_with_members(session, 1)
            member = session.get(User, member_id)
            change = services.update_organisation(session, session.get(Enterprise, enterprise_id), member,
                                                  actor=Actor.of(member, None), now=utcnow(),
                                                  changes={"actual_controller": "新控制人", "legal_representative": "新法人"})
            change_id = change.id
        db.session.remove()

        def decide(session, n: int) -> str:
            bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
            change = session.get(OrganisationChange, change_id)
            actor = Actor.of(bureau, None)
            if n % 2:
                services.reject_change(session, change, bureau, actor=actor, reason="不符", now=utcnow())
                return "rejected"
            services.approve_change(session, change, bureau, actor=actor, now=utcnow())
            return "approved"

        outcomes = race(live_app, 6, decide)
        decided = [o for o in outcomes if o in ("approved", "rejected")]
        assert len(outcomes) == 6 and len(decided) == 1
        assert sorted(set(outcomes) - set(decided)) == [f"already_{decided[0]}"]
        change = db.session.get(OrganisationChange, change_id)
        enterprise = db.session.get(Enterprise, enterprise_id)
        assert change.state.value == decided[0]
        applied = (enterprise.actual_controller, enterprise.legal_representative) == ("新控制人", "新法人")
        assert applied == (decided[0] == "approved")
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.subject_type == "organisation_changes", AuditEntry.subject_id == change_id,
            AuditEntry.action.in_(["organisation_change.approved", "organisation_change.rejected"]))) == 1
        db.session.remove()
