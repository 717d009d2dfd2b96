"""Money under concurrency, on committed data: approvals racing for one pool never issue beyond it,
approvals and withdrawals racing on one application make one change, and holds racing on one voucher
never take more than its balance (SQLite and PostgreSQL)."""
from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import LOCAL_ZONE, to_local
from core.db import unit_of_work, utcnow
from core.demo import demo_credit_code
from core.errors import Conflict, RuleBroken
from core.extensions import db
from core.models import Enterprise, Platform, Role, RoleGrant, User, VerificationState
from marketplace.booking import services as bookings
from marketplace.registry import services as catalogue
from tests.marketplace.conftest import instrument_values
from vouchers import ledger, services
from vouchers.models import Application, Programme, Voucher

pytestmark = pytest.mark.live


def race(app, count: int, work) -> list[str]:
    """Run work(session, n) in `count` threads released together, each in its own app context and unit of
    work; each returns an outcome or raises RuleBroken."""
    outcomes: list[str] = []
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work() as session:
                    outcomes.append(work(session, n))
            except RuleBroken as error:
                outcomes.append(error.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=lambda n=n: run(n)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def new_programme(session, bureau: User, **changes) -> Programme:
    today = date.today()
    return services.create_programme(session, actor=Actor.system("test"), user=bureau, values={
        "name": f"并发测试 {uuid.uuid4().hex[:8]}", "year": 2026, "pool_fen": 1_000_000, "coverage_bp": 5_000,
        "sme_coverage_bp": 5_000, "enterprise_year_cap_fen": 10_000_000, "order_cap_fen": 10_000_000,
        "validity_days": 365, "applications_open_on": today - timedelta(days=1),
        "applications_close_on": today + timedelta(days=1), "redemption_mode": "provider",
        "eligible_category_codes": [], "eligible_platform_ids": []} | changes)


def test_concurrent_approvals_never_issue_beyond_the_pool(live_app):
    applicants = 16
    with live_app.app_context():
        with unit_of_work() as session:
            bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
            programme = new_programme(session, bureau)
            tag = uuid.uuid4().int % 10_000
            application_ids = []
            for n in range(applicants):
                enterprise = Enterprise(name=f"并发券企业 {tag}-{n}", credit_code=demo_credit_code(500_000 + tag * 20 + n),
                                        legal_representative=f"代表{tag}-{n}", verification_state=VerificationState.VERIFIED)
                member = User(email=f"pool-{tag}-{n}@example.com", name="并发", password_hash="x")
                session.add_all([enterprise, member])
                session.flush()
                session.add(RoleGrant(user_id=member.id, role=Role.ENTERPRISE_MEMBER, organisation_id=enterprise.id))
                session.flush()
                session.refresh(member)
                application_ids.append(services.apply_for_voucher(
                    session, actor=Actor.system("test"), user=member, programme_id=programme.id,
                    enterprise_id=enterprise.id, requested_fen=100_000, purpose="并发", planned_instruments="",
                    now=utcnow()).id)
            programme_id, bureau_id = programme.id, bureau.id
        db.session.remove()

        def approve(session, n: int) -> str:
            services.approve_application(session, session.get(Application, application_ids[n]),
                                         actor=Actor.system("test"), user=session.get(User, bureau_id),
                                         amount_fen=100_000, now=utcnow())
            return "issued"

        outcomes = race(live_app, applicants, approve)
        assert sorted(outcomes) == ["issued"] * 10 + ["pool_exhausted"] * 6
        issued = db.session.scalars(select(Voucher).where(Voucher.programme_id == programme_id)).all()
        assert len(issued) == 10 and sum(v.amount_fen for v in issued) == 1_000_000
        assert db.session.get(Programme, programme_id).issued_fen == 1_000_000
        db.session.remove()


def applications_racing_for_a_pool(count: int, *, requested_fen: int) -> tuple[int, int, list[int]]:
    """(programme id, bureau id, application ids): committed applications of `count` new enterprises to a new
    programme of 1,000,000 fen."""
    with unit_of_work() as session:
        bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
        programme = new_programme(session, bureau)
        tag = uuid.uuid4().int % 10_000
        application_ids = []
        for n in range(count):
            enterprise = Enterprise(name=f"批量券企业 {tag}-{n}", credit_code=demo_credit_code(700_000 + tag * 20 + n),
                                    legal_representative=f"批量{tag}-{n}", verification_state=VerificationState.VERIFIED)
            member = User(email=f"batch-{tag}-{n}@example.com", name="批量", password_hash="x")
            session.add_all([enterprise, member])
            session.flush()
            session.add(RoleGrant(user_id=member.id, role=Role.ENTERPRISE_MEMBER, organisation_id=enterprise.id))
            session.flush()
            session.refresh(member)
            application_ids.append(services.apply_for_voucher(
                session, actor=Actor.system("test"), user=member, programme_id=programme.id,
                enterprise_id=enterprise.id, requested_fen=requested_fen, purpose="批量", planned_instruments="",
                now=utcnow()).id)
        ids = programme.id, bureau.id
    db.session.remove()
    return *ids, application_ids


def test_concurrent_batch_approvals_never_overdraw_the_pool_and_each_is_all_or_nothing(live_app):
    """Four batches of three applications, 300,000 fen a batch, race for a pool of 1,000,000 fen: three are
    approved whole, the fourth not at all."""
    with live_app.app_context():
        programme_id, bureau_id, ids = applications_racing_for_a_pool(12, requested_fen=100_000)
        batches = [ids[n:n + 3] for n in range(0, 12, 3)]

        def approve(session, n: int) -> str:
            services.approve_applications(session, batches[n], actor=Actor.system("test"),
                                          user=session.get(User, bureau_id), now=utcnow())
            return "approved"

        outcomes = race(live_app, 4, approve)
        assert sorted(outcomes) == ["approved"] * 3 + ["pool_exhausted"]
        issued = {v.application_id: v.amount_fen
                  for v in db.session.scalars(select(Voucher).where(Voucher.programme_id == programme_id))}
        assert sum(issued.values()) == db.session.get(Programme, programme_id).issued_fen == 900_000
        assert sorted(len(set(batch) & set(issued)) for batch in batches) == [0, 3, 3, 3]
        db.session.remove()


def test_batch_and_single_approvals_racing_on_the_same_applications_never_overdraw_the_pool(live_app):
    """Each batch races a single approval of its own last application: either the batch wins whole, or the
    single one does and the batch is refused whole (already approved); the pool is never passed."""
    with live_app.app_context():
        programme_id, bureau_id, ids = applications_racing_for_a_pool(12, requested_fen=100_000)
        batches = [ids[n:n + 3] for n in range(0, 12, 3)]

        def approve(session, n: int) -> str:
            user = session.get(User, bureau_id)
            if n < 4:
                services.approve_applications(session, batches[n], actor=Actor.system("test"), user=user, now=utcnow())
                return "batch"
            try:
                services.approve_application(session, session.get(Application, batches[n - 4][-1]),
                                             actor=Actor.system("test"), user=user, amount_fen=100_000, now=utcnow())
            except Conflict as error:
                return error.code
            return "single"

        outcomes = race(live_app, 8, approve)
        assert len(outcomes) == 8
        issued = {v.application_id for v in db.session.scalars(select(Voucher).where(Voucher.programme_id == programme_id))}
        assert len(issued) * 100_000 == db.session.get(Programme, programme_id).issued_fen <= 1_000_000
        for batch in batches:  # the first two of a batch are issued together or not at all
            assert len(set(batch[:2]) & issued) in (0, 2)
        assert len([b for b in batches if set(b) <= issued]) == outcomes.count("batch")
        db.session.remove()


def test_approvals_and_withdrawals_racing_on_one_application_make_one_change(live_app):
    with live_app.app_context():
        with unit_of_work() as session:
            bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
            member = session.scalar(select(User).where(User.email == "enterprise@kequip.test"))
            programme = new_programme(session, bureau)
            application = services.apply_for_voucher(
                session, actor=Actor.system("test"), user=member, programme_id=programme.id,
                enterprise_id=sorted(member.organisation_ids(Role.ENTERPRISE_MEMBER))[0], requested_fen=100_000,
                purpose="并发", planned_instruments="", now=utcnow())
            application_id, programme_id, ids = application.id, programme.id, (bureau.id, member.id)
        db.session.remove()

        def approve_or_withdraw(session, n: int) -> str:
            found = session.get(Application, application_id)
            try:
                if n % 2:
                    services.withdraw_application(session, found, actor=Actor.system("test"),
                                                  user=session.get(User, ids[1]))
                    return "withdrawn"
                services.approve_application(session, found, actor=Actor.system("test"),
                                             user=session.get(User, ids[0]), amount_fen=100_000, now=utcnow())
                return "approved"
            except Conflict as error:
                return error.code

        outcomes = race(live_app, 8, approve_or_withdraw)
        [won] = [outcome for outcome in outcomes if not outcome.startswith("already_")]
        assert sorted(outcomes) == sorted([won] + [f"already_{won}"] * 7)
        issued = db.session.scalars(select(Voucher).where(Voucher.programme_id == programme_id)).all()
        assert [v.amount_fen for v in issued] == ([100_000] if won == "approved" else [])
        assert db.session.get(Programme, programme_id).issued_fen == (100_000 if won == "approved" else 0)
        db.session.remove()


def own_bookings(session, count: int) -> list[int]:
    """`count` bookings of a new instrument by its platform's admin, on the mornings of the weeks ahead
    (a day the district's rules close is passed over)."""
    admin, bureau = (session.scalar(select(User).where(User.email == email))
                     for email in ("platform@kequip.test", "bureau@kequip.test"))
    platform = session.get(Platform, admin.grants[0].organisation_id)
    instrument = catalogue.create_instrument(session, platform, admin, actor=Actor.system("test"), submit=True,
                                             now=utcnow(), values=instrument_values(
                                                 session, asset_number=f"KQ-HOLD-{uuid.uuid4().hex[:10]}"))
    catalogue.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
    monday = to_local(utcnow()).date() - timedelta(days=to_local(utcnow()).weekday())
    booked = []
    for day in (monday + timedelta(days=n) for n in range(7, 35) if n % 7 < 5):
        for hour in (9, 10):
            start = datetime.combine(day, time(hour), tzinfo=LOCAL_ZONE)
            try:
                booked.append(bookings.book_instrument(session, actor=Actor.system("test"), user=admin,
                                                       instrument_id=instrument.id, start_at=start,
                                                       end_at=start + timedelta(hours=1), now=utcnow()).id)
            except RuleBroken:
                continue
            if len(booked) == count:
                return booked
    raise AssertionError(f"only {len(booked)} slots could be booked")


def test_concurrent_holds_never_take_more_than_the_balance(live_app):
    with live_app.app_context():
        with unit_of_work() as session:
            bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
            member = session.scalar(select(User).where(User.email == "enterprise@kequip.test"))
            enterprise_id = sorted(member.organisation_ids(Role.ENTERPRISE_MEMBER))[0]
            platform_id = session.scalar(select(Platform.id).order_by(Platform.id.desc()))
            programme = new_programme(session, bureau)
            application = services.apply_for_voucher(session, actor=Actor.system("test"), user=member,
                                                     programme_id=programme.id, enterprise_id=enterprise_id,
                                                     requested_fen=100_000, purpose="并发", planned_instruments="",
                                                     now=utcnow())
            voucher_id = services.approve_application(session, application, actor=Actor.system("test"), user=bureau,
                                                      amount_fen=100_000, now=utcnow()).id
            booking_ids = own_bookings(session, 20)  # a hold is for a booking
        db.session.remove()

        def hold(session, n: int) -> str:
            part = services.quote_voucher_part(session, voucher_id, enterprise_id=enterprise_id,
                                               platform_id=platform_id, category_code="0101", price_fen=14_000,
                                               now=utcnow())
            services.hold_for_booking(session, part, services.BookedService(
                booking_id=booking_ids[n], platform_id=platform_id, instrument_name_zh="并发", instrument_name_en="",
                asset_number="", category_code="0101", start_at=utcnow(), end_at=utcnow() + timedelta(hours=1),
                price_fen=14_000), actor=Actor.system("test"), now=utcnow())
            return "held"

        outcomes = race(live_app, 20, hold)  # 7,000 fen each from 100,000: 14 holds fit, the 15th finds 2,000 (a smaller part)
        voucher = db.session.get(Voucher, voucher_id)
        assert outcomes.count("held") == 15 and outcomes.count("voucher_insufficient") == 5
        assert (voucher.balance_fen, voucher.held_fen) == (0, 100_000)
        assert ledger.ledger_totals(db.session, voucher_id) == ledger.Totals(0, 100_000, 0, 0)
        db.session.remove()
