"""The voucher ledger: every movement an append-only entry, the voucher's columns always its ledger's
sums and never negative, whatever sequence of operations runs; the voucher part of a booking to the fen
with each cap and each refusal."""
from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.errors import RuleBroken
from core.jobs import send_outbox
from core.models import Enterprise, Platform, Role
from marketplace.booking import services as bookings
from marketplace.registry.models import InstrumentState
from tests.marketplace.conftest import create_instrument, monday_at  # noqa: F401  (fixtures)
from tests.marketplace.test_booking_pages import page
from vouchers import ledger, services
from vouchers.models import EntryKind, LedgerEntry, Programme, RedemptionMode, Voucher, VoucherState

_names = itertools.count(1)


@pytest.fixture
def programme(session, demo_user):
    def make(**changes) -> Programme:
        bureau = demo_user("bureau")
        today = date.today()
        values = {"name": f"2026 年创新券 {next(_names)}", "year": 2026, "pool_fen": 10_000_000, "coverage_bp": 5_000,
                  "sme_coverage_bp": 7_000, "enterprise_year_cap_fen": 5_000_000, "order_cap_fen": 2_000_000,
                  "validity_days": 365, "applications_open_on": today - timedelta(days=1),
                  "applications_close_on": today + timedelta(days=30), "redemption_mode": RedemptionMode.PROVIDER,
                  "eligible_category_codes": [], "eligible_platform_ids": []} | changes
        return services.create_programme(session, actor=Actor.of(bureau, None), user=bureau, values=values)

    return make


@pytest.fixture
def voucher(session, demo_user, programme):
    """voucher(amount_fen, programme=None, user="enterprise"): applied for and approved through the services."""

    def make(amount_fen: int = 1_000_000, of: Programme | None = None, user: str = "enterprise") -> Voucher:
        member, bureau = demo_user(user), demo_user("bureau")
        of = of or programme()
        enterprise_id = sorted(member.organisation_ids(Role.ENTERPRISE_MEMBER))[0]
        application = services.apply_for_voucher(
            session, actor=Actor.of(member, None), user=member, programme_id=of.id, enterprise_id=enterprise_id,
            requested_fen=amount_fen, purpose="新产品检测", planned_instruments="液质联用仪", now=utcnow())
        return services.approve_application(session, application, actor=Actor.of(bureau, None), user=bureau,
                                            amount_fen=amount_fen, now=utcnow())

    return make


def enterprise_of(session, demo_user, name="enterprise") -> Enterprise:
    return session.get(Enterprise, sorted(demo_user(name).organisation_ids(Role.ENTERPRISE_MEMBER))[0])


def quote(session, voucher, price_fen, *, instrument=None, platform_id=None, category_code="0101", now=None):
    return services.quote_voucher_part(
        session, voucher.id, enterprise_id=voucher.enterprise_id,
        platform_id=platform_id or (instrument.platform_id if instrument else 0), category_code=category_code,
        price_fen=price_fen, now=now or utcnow())


@pytest.fixture
def platform(session, demo_user) -> Platform:
    return session.get(Platform, demo_user("platform").organisation_ids(Role.PLATFORM_ADMIN).pop())


# --- issuance ---------------------------------------------------------------------------------------

def test_approval_issues_a_voucher_with_its_serial_and_an_issue_entry(session, voucher):
    issued = voucher(1_234_567)
    assert issued.serial.startswith("KQ2026-") and len(issued.serial) == len("KQ2026-000123")
    assert (issued.amount_fen, issued.balance_fen, issued.state) == (1_234_567, 1_234_567, VoucherState.ACTIVE)
    entries = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.voucher_id == issued.id)).all()
    assert [(e.kind, e.amount_fen) for e in entries] == [(EntryKind.ISSUE, 1_234_567)]
    assert issued.programme.issued_fen == 1_234_567


def test_issuing_never_passes_the_pool(session, voucher, programme, demo_user):
    small = programme(pool_fen=1_500_000, enterprise_year_cap_fen=5_000_000)
    voucher(1_000_000, of=small)
    with pytest.raises(RuleBroken) as refused:
        voucher(600_000, of=small, user="enterprise")
    assert refused.value.code in {"pool_exhausted", "application_pending"}
    assert small.issued_fen == 1_000_000


def test_enterprises_under_one_actual_controller_share_the_yearly_cap(session, voucher, programme, demo_user):
    capped = programme(enterprise_year_cap_fen=1_000_000)
    voucher(800_000, of=capped)
    mine = enterprise_of(session, demo_user)
    sister = session.scalars(sa.select(Enterprise).where(Enterprise.id != mine.id).order_by(Enterprise.id)).first()
    member, bureau = demo_user("enterprise"), demo_user("bureau")
    session.execute(sa.text("INSERT INTO role_grants (user_id, role, organisation_id, granted_at) "
                            "VALUES (:u, 'enterprise_member', :o, CURRENT_TIMESTAMP)"), {"u": member.id, "o": sister.id})
    session.expire(member)
    application = services.apply_for_voucher(session, actor=Actor.of(member, None), user=member,
                                             programme_id=capped.id, enterprise_id=sister.id, requested_fen=300_000,
                                             purpose="检测", planned_instruments="", now=utcnow())
    mine.actual_controller = sister.actual_controller = "王某某"  # grouped after applying: approval checks again
    session.flush()
    assert services.group_enterprise_ids(session, sister) == sorted([mine.id, sister.id])
    with pytest.raises(RuleBroken) as refused:
        services.approve_application(session, application, actor=Actor.of(bureau, None), user=bureau,
                                     amount_fen=300_000, now=utcnow())
    assert refused.value.code == "enterprise_cap_exceeded"
    assert services.approve_application(session, application, actor=Actor.of(bureau, None), user=bureau,
                                        amount_fen=200_000, now=utcnow()).balance_fen == 200_000


# --- the voucher part, to the fen ---------------------------------------------------------------------

def test_voucher_part_is_the_ratio_of_the_price_rounded_down(session, voucher, platform, demo_user):
    enterprise_of(session, demo_user).is_tech_sme = False
    issued = voucher(1_000_000)
    part = quote(session, issued, 100_001, platform_id=platform.id)
    assert (part.amount_fen, part.enterprise_pays_fen, part.ratio_bp) == (50_000, 50_001, 5_000)


def test_tech_smes_get_the_higher_ratio(session, voucher, platform, demo_user):
    enterprise_of(session, demo_user).is_tech_sme = True
    part = quote(session, voucher(1_000_000), 100_000, platform_id=platform.id)
    assert (part.amount_fen, part.enterprise_pays_fen) == (70_000, 30_000)


def test_voucher_part_is_capped_by_order_cap_and_balance(session, voucher, programme, platform, demo_user):
    enterprise_of(session, demo_user).is_tech_sme = False
    issued = voucher(100_000, of=programme(order_cap_fen=30_000))
    assert quote(session, issued, 100_000, platform_id=platform.id).amount_fen == 30_000  # order cap
    ledger.post(session, issued, EntryKind.HOLD, 80_000, actor=Actor.system("test"), now=utcnow())
    assert quote(session, issued, 100_000, platform_id=platform.id).amount_fen == 20_000  # balance


def test_voucher_part_is_capped_by_what_the_controller_group_has_left_this_year(
        session, voucher, programme, platform, demo_user, create_instrument, monday_at):
    """Two enterprises issued vouchers before they were known to share a controller: once they are, their
    spending together stays within one yearly cap."""
    member = demo_user("enterprise")
    mine = enterprise_of(session, demo_user)
    sister = session.scalars(sa.select(Enterprise).where(Enterprise.id != mine.id).order_by(Enterprise.id)).first()
    session.execute(sa.text("INSERT INTO role_grants (user_id, role, organisation_id, granted_at) "
                            "VALUES (:u, 'enterprise_member', :o, CURRENT_TIMESTAMP)"), {"u": member.id, "o": sister.id})
    session.expire(member)
    shared = programme(enterprise_year_cap_fen=100_000)
    first = voucher(80_000, of=shared)
    bureau = demo_user("bureau")
    application = services.apply_for_voucher(session, actor=Actor.of(member, None), user=member, programme_id=shared.id,
                                             enterprise_id=sister.id, requested_fen=80_000, purpose="检测",
                                             planned_instruments="", now=utcnow())
    second = services.approve_application(session, application, actor=Actor.of(bureau, None), user=bureau,
                                          amount_fen=80_000, now=utcnow())
    mine.actual_controller = sister.actual_controller = "王某某"
    mine.is_tech_sme = sister.is_tech_sme = False
    session.flush()
    hold = quote(session, first, 140_000, platform_id=platform.id)
    admin = demo_user("platform")  # a hold is for a booking: one by the platform's own staff
    booking_id = bookings.book_instrument(session, actor=Actor.system("test"), user=admin,
                                          instrument_id=create_instrument(state=InstrumentState.PUBLISHED).id,
                                          start_at=monday_at(9), end_at=monday_at(10), now=utcnow()).id
    services.hold_for_booking(session, hold, services.BookedService(
        booking_id=booking_id, platform_id=platform.id, instrument_name_zh="检测", instrument_name_en="",
        asset_number="", category_code="0101", start_at=utcnow(), end_at=utcnow() + timedelta(hours=1),
        price_fen=140_000), actor=Actor.system("test"), now=utcnow())
    assert hold.amount_fen == 70_000
    assert services.group_spent_fen(session, shared, sister, year=utcnow().year) == 70_000
    assert quote(session, second, 200_000, platform_id=platform.id).amount_fen == 30_000  # 100,000 − 70,000


def test_enterprise_reimbursed_programmes_let_the_enterprise_pay_in_full(session, voucher, programme, platform,
                                                                         demo_user):
    enterprise_of(session, demo_user).is_tech_sme = False
    issued = voucher(100_000, of=programme(redemption_mode=RedemptionMode.ENTERPRISE))
    part = quote(session, issued, 60_000, platform_id=platform.id)
    assert (part.amount_fen, part.enterprise_pays_fen) == (30_000, 60_000)


def test_refusals_each_with_its_code(session, voucher, programme, platform, demo_user):
    issued = voucher(100_000)

    def code(call) -> str:
        with pytest.raises(RuleBroken) as refused:
            call()
        return refused.value.code

    assert code(lambda: services.quote_voucher_part(session, issued.id, enterprise_id=issued.enterprise_id + 999,
                                                    platform_id=platform.id, category_code="0101", price_fen=1000,
                                                    now=utcnow())) == "voucher_not_eligible"
    assert code(lambda: quote(session, issued, 1000, platform_id=platform.id,
                              now=issued.expires_at + timedelta(seconds=1))) == "voucher_expired"
    narrow = voucher(100_000, of=programme(eligible_category_codes=["02"]), user="enterprise")
    assert code(lambda: quote(session, narrow, 1000, platform_id=platform.id)) == "voucher_not_eligible"
    assert quote(session, narrow, 1000, platform_id=platform.id, category_code="0203").amount_fen > 0
    elsewhere = voucher(100_000, of=programme(eligible_platform_ids=[platform.id + 999]))
    assert code(lambda: quote(session, elsewhere, 1000, platform_id=platform.id)) == "voucher_not_eligible"
    platform.legal_representative = issued.enterprise.legal_representative
    assert code(lambda: quote(session, issued, 1000, platform_id=platform.id)) == "related_party"
    platform.legal_representative = None
    ledger.post(session, issued, EntryKind.HOLD, 100_000, actor=Actor.system("test"), now=utcnow())
    assert code(lambda: quote(session, issued, 1000, platform_id=platform.id)) == "voucher_insufficient"
    bureau = demo_user("bureau")
    services.void_voucher(session, issued, actor=Actor.of(bureau, None), user=bureau, reason="串通", now=utcnow())
    assert code(lambda: quote(session, issued, 1000, platform_id=platform.id)) == "voucher_expired"


def test_related_parties_declared_or_sharing_a_controller_or_credit_code(session, voucher, platform, demo_user):
    enterprise = enterprise_of(session, demo_user)
    assert not services.is_related(session, enterprise, platform)
    platform.actual_controller = enterprise.actual_controller = "李某"
    assert services.is_related(session, enterprise, platform)
    platform.actual_controller = None
    platform.credit_code = enterprise.credit_code
    assert services.is_related(session, enterprise, platform)
    platform.credit_code = None
    bureau = demo_user("bureau")
    services.declare_related(session, actor=Actor.of(bureau, None), user=bureau, enterprise=enterprise,
                             platform=platform, note="母子公司")
    assert services.is_related(session, enterprise, platform)


# --- through the booking life -----------------------------------------------------------------------

def test_hold_at_booking_consume_at_completion_release_on_cancellation(session, voucher, create_instrument,
                                                                       monday_at, demo_user):
    enterprise_of(session, demo_user).is_tech_sme = False
    zero_own = {"setup_fee_own_staff_fen": 0, "hourly_rate_own_staff_fen": 0}
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                                   hourly_rate_district_enterprise_fen=40_000, **zero_own)
    issued = voucher(1_000_000)
    member = demo_user("enterprise")

    def book(hour):
        return bookings.book_instrument(session, actor=Actor.of(member, None), user=member,
                                        instrument_id=instrument.id, start_at=monday_at(hour),
                                        end_at=monday_at(hour + 2), now=utcnow(), voucher_id=issued.id)

    first = book(9)
    assert (first.price_fen, first.voucher_fen, first.payable_fen) == (80_000, 40_000, 40_000)
    assert (issued.balance_fen, issued.held_fen) == (960_000, 40_000)
    second = book(14)
    bookings.cancel_booking(session, second, actor=Actor.of(member, None), user=member, now=utcnow())
    assert (issued.balance_fen, issued.held_fen) == (960_000, 40_000)
    # completed on 1.5 h of actual time: the voucher pays half the final price, the rest of its hold returns
    consumed = services.consume_for_booking(session, booking_id=first.id, final_price_fen=60_000,
                                            actor=Actor.system("test"), now=utcnow())
    assert consumed == 30_000
    assert (issued.balance_fen, issued.held_fen, issued.consumed_fen) == (970_000, 0, 30_000)
    assert ledger.ledger_totals(session, issued.id) == ledger.Totals(970_000, 0, 30_000, 0)


def test_expiry_and_voiding_keep_the_entries(session, voucher, demo_user):
    issued = voucher(500_000)
    assert services.expire_vouchers(session, now=issued.expires_at) == 1
    assert services.expire_vouchers(session, now=issued.expires_at) == 0
    assert (issued.state, issued.balance_fen) == (VoucherState.EXPIRED, 0)
    kinds = session.scalars(sa.select(LedgerEntry.kind).where(LedgerEntry.voucher_id == issued.id)
                            .order_by(LedgerEntry.id)).all()
    assert kinds == [EntryKind.ISSUE, EntryKind.EXPIRE]


def test_the_ledger_is_append_only_in_the_database(session, voucher):
    issued = voucher(100_000)
    for statement in ("UPDATE voucher_ledger_entries SET amount_fen = 1", "DELETE FROM voucher_ledger_entries"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), session.begin_nested():
            session.execute(sa.text(statement + " WHERE voucher_id = :v"), {"v": issued.id})


def test_a_balance_can_never_go_below_zero_even_written_by_hand(session, voucher):
    issued = voucher(100_000)
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
        session.execute(sa.text("UPDATE vouchers SET balance_fen = -1 WHERE id = :v"), {"v": issued.id})


# --- the ledger equals the balance, whatever happens ----------------------------------------------------

OPERATIONS = st.lists(st.tuples(st.sampled_from([EntryKind.HOLD, EntryKind.RELEASE, EntryKind.CONSUME,
                                                 EntryKind.REDEEM, EntryKind.EXPIRE]),
                                st.integers(min_value=1, max_value=60_000)), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_every_vouchers_columns_equal_its_ledger_after_any_sequence(session, voucher, operations):
    """A model of the four columns predicts which operations the ledger refuses; after each step the
    voucher's columns equal its ledger's sums, none is negative, and the nightly check finds nothing."""
    with session.begin_nested() as example:
        issued = voucher(100_000)
        model = {"balance_fen": 100_000, "held_fen": 0, "consumed_fen": 0, "redeemed_fen": 0}
        for kind, amount in operations:
            effect = dict(zip(ledger.COLUMNS, ledger.EFFECTS[kind], strict=True))
            after = {name: model[name] + sign * amount for name, sign in effect.items()}
            possible = all(value >= 0 for value in after.values()) and after["redeemed_fen"] <= after["consumed_fen"]
            if possible:
                ledger.post(session, issued, kind, amount, actor=Actor.system("test"), now=utcnow())
                model = after
            else:
                with pytest.raises(RuleBroken):
                    ledger.post(session, issued, kind, amount, actor=Actor.system("test"), now=utcnow())
            assert {name: getattr(issued, name) for name in ledger.COLUMNS} == model
            assert ledger.ledger_totals(session, issued.id) == ledger.Totals(**model)
        assert ledger.mismatched_vouchers(session) == []
        example.rollback()


def test_the_voucher_part_is_in_the_terms_and_released_on_the_cancel_page_the_booking_page_and_the_mail(
        session, voucher, create_instrument, monday_at, demo_user, login_as, mailbox):
    enterprise_of(session, demo_user).is_tech_sme = False  # the voucher pays 50 %
    instrument = create_instrument(state=InstrumentState.PUBLISHED, setup_fee_district_enterprise_fen=0,
                                   hourly_rate_district_enterprise_fen=40_000)
    issued, member, admin = voucher(1_000_000), demo_user("enterprise"), demo_user("platform")
    booking = bookings.book_instrument(session, actor=Actor.of(member, None), user=member, instrument_id=instrument.id,
                                       start_at=monday_at(9), end_at=monday_at(11), now=utcnow(), voucher_id=issued.id)
    assert (booking.price_fen, booking.voucher_fen, booking.payable_fen) == (80_000, 40_000, 40_000)
    assert (booking.late_cancel_fee_fen, booking.no_show_fee_fen) == (40_000, 40_000)  # never paid by the voucher
    bookings.choose_transfer(session, booking, actor=Actor.of(member, None), user=member, now=utcnow())
    bookings.record_transfer(session, booking, actor=Actor.of(admin, None), user=admin, now=utcnow(),
                             amount_fen=40_000, received_on=to_local(utcnow()).date(), reference="ICBC-7")
    session.flush()
    client = login_as("enterprise")
    assert "¥400.00" in page(client.get(f"/bookings/{booking.id}")).text("voucher-terms")

    confirm = page(client.get(f"/bookings/{booking.id}/cancel"))
    assert (confirm.text("outcome-fee"), confirm.text("outcome-transfer"), confirm.text("outcome-voucher")) == (
        "无", "¥400.00", "¥400.00")  # days ahead: free; the share comes back by transfer, the part to the voucher
    assert client.post(f"/bookings/{booking.id}/cancel", data={"fee_fen": "0"}).status_code == 302
    session.expire_all()
    assert (booking.state, issued.balance_fen, issued.held_fen) == ("cancelled", 1_000_000, 0)
    after = page(client.get(f"/bookings/{booking.id}"))
    assert (after.text("voucher-released"), after.text("charged")) == ("¥400.00", "¥0.00")
    assert "¥400.00" in after.text("transfer-returned")
    send_outbox()
    [mail] = [m for m in mailbox.messages if m["To"] == "enterprise@kequip.test" and "已取消" in m["Subject"]]
    body = mail.get_body(("plain",)).get_content()
    assert "创新券抵扣的 ¥400.00 已退回创新券" in body and "¥400.00 将由平台通过银行转账退还给您" in body
