"""Factories for the voucher tests: programmes, enterprises with a member, and vouchers issued through
the real services (an application approved by the bureau). The marketplace's instrument factories are
borrowed for the booking tests."""
from __future__ import annotations

import itertools
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.demo import demo_credit_code
from core.models import Enterprise, Role, RoleGrant, User, VerificationState
from tests.marketplace.conftest import create_instrument, monday_at  # noqa: F401  (fixtures for booking tests)
from vouchers import services
from vouchers.models import Application, Programme, Voucher

_serial = itertools.count(1)


def programme_values(**overrides) -> dict:
    today = to_local(utcnow()).date()
    return {"name": f"创新券测试计划 {next(_serial)}", "year": today.year, "pool_fen": 1_000_000_00,
            "coverage_bp": 5_000, "sme_coverage_bp": 7_000, "enterprise_year_cap_fen": 100_000_00,
            "order_cap_fen": 10_000_00, "validity_days": 365, "applications_open_on": today - timedelta(days=30),
            "applications_close_on": today + timedelta(days=30), "redemption_mode": "provider",
            "eligible_category_codes": [], "eligible_platform_ids": []} | overrides


@pytest.fixture
def create_programme(session, demo_user):
    """create_programme(**values): a programme of the bureau, open for applications today by default."""

    def make(**overrides) -> Programme:
        bureau = demo_user("bureau")
        return services.create_programme(session, actor=Actor.of(bureau, "127.0.0.1"), user=bureau,
                                         values=programme_values(**overrides))

    return make


@pytest.fixture
def create_member(session):
    """create_member(**enterprise values): a new enterprise (verified, valid credit code by default) and a
    member of it; returns the user. The enterprise is user.grants[0].organisation."""
    counter = itertools.count(500)

    def make(verified: bool = True, **values) -> User:
        index = next(counter)
        enterprise = Enterprise(**({"name": f"测试企业 {index}", "credit_code": demo_credit_code(index),
                                    "legal_representative": f"测试法人 {index}", "is_tech_sme": False} | values))
        enterprise.verification_state = VerificationState.VERIFIED if verified else VerificationState.PENDING
        user = User(email=f"member{index}@example.com", name=f"成员 {index}", password_hash="x", locale="zh_CN")
        user.grants.append(RoleGrant(role=Role.ENTERPRISE_MEMBER, organisation=enterprise))
        session.add_all([enterprise, user])
        session.flush()
        return user

    return make


def enterprise_of(user: User) -> Enterprise:
    return next(g.organisation for g in user.grants if g.role == Role.ENTERPRISE_MEMBER)


@pytest.fixture
def apply_for(session, demo_user, create_programme):
    """apply_for(user="enterprise", programme=None, requested_fen=…): a submitted application."""

    def make(user: str | User = "enterprise", programme: Programme | None = None, requested_fen: int = 20_000_00,
             now=None) -> Application:
        member = demo_user(user) if isinstance(user, str) else user
        programme = programme or create_programme()
        return services.apply_for_voucher(
            session, actor=Actor.of(member, "127.0.0.1"), user=member, programme_id=programme.id,
            enterprise_id=enterprise_of(member).id, requested_fen=requested_fen, purpose="材料成分检测",
            planned_instruments="液相色谱-质谱联用仪", now=now or utcnow())

    return make


@pytest.fixture
def issue_voucher(session, demo_user, apply_for):
    """issue_voucher(enterprise_user="enterprise", amount_fen=…, programme=None): a voucher issued through
    an application and the bureau's approval."""

    def make(enterprise_user: str | User = "enterprise", amount_fen: int = 20_000_00,
             programme: Programme | None = None, now=None) -> Voucher:
        now = now or utcnow()
        application = apply_for(enterprise_user, programme=programme, requested_fen=amount_fen, now=now)
        bureau = demo_user("bureau")
        return services.approve_application(session, application, actor=Actor.of(bureau, "127.0.0.1"), user=bureau,
                                            amount_fen=amount_fen, now=now)

    return make


# --- reading pages --------------------------------------------------------------------------------

VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """What the tests read of a page: the form fields marked invalid (by id), and each data-testid
    element's attributes and text (all of them, in order)."""

    def __init__(self, html: str):
        super().__init__()
        self.invalid: set[str] = set()
        self.found: dict[str, list[dict]] = {}
        self._open: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("input", "select", "textarea") and "is-invalid" in attributes.get("class", "").split():
            self.invalid.add(attributes.get("id", ""))
        if "data-testid" in attributes:
            attributes["text"] = ""
            self.found.setdefault(attributes["data-testid"], []).append(attributes)
            if tag not in VOID_TAGS:
                self._open.append((tag, attributes))
        elif tag not in VOID_TAGS:
            self._open.append((tag, {}))

    def handle_endtag(self, tag):
        while self._open:
            open_tag, _attributes = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        for _tag, attributes in self._open:
            if "text" in attributes:
                attributes["text"] += data

    def one(self, testid: str) -> dict:
        [element] = self.found[testid]
        return element

    def all(self, testid: str) -> list[dict]:
        return self.found.get(testid, [])

    def text(self, testid: str) -> str:
        return " ".join(self.one(testid)["text"].split())


def page_of(response) -> Page:
    return Page(response.get_data(as_text=True))


# --- voucher uses: bookings served to completion (for claims and flags) ----------------------------------

@pytest.fixture
def serve_booking(session, demo_user):
    """serve_booking(voucher, instrument, start, hours=2, member="enterprise", used=None): a booking paid by
    the voucher, its share paid by a recorded bank transfer, checked in at its start and out at its end
    (or after `used`, a timedelta) by the demo operator. Returns the completed booking. A start in the past
    is booked the day before it (the services take `now`), so its use can be claimed today."""
    from datetime import timedelta

    from marketplace.booking import services as bookings
    from marketplace.booking.models import BookingState

    def make(voucher: Voucher, instrument, start, *, hours: int = 2, member: str | User = "enterprise",
             used: timedelta | None = None):
        booker = demo_user(member) if isinstance(member, str) else member
        admin, operator = demo_user("platform"), demo_user("operator")
        end = start + timedelta(hours=hours)
        booking = bookings.book_instrument(session, actor=Actor.of(booker, "127.0.0.1"), user=booker,
                                           instrument_id=instrument.id, start_at=start, end_at=end,
                                           now=min(utcnow(), start - timedelta(days=1)), voucher_id=voucher.id)
        if booking.state == BookingState.REQUESTED:
            bookings.approve_booking(session, booking, actor=Actor.of(admin, "127.0.0.1"), user=admin, now=utcnow())
        if booking.payable_fen:
            bookings.choose_transfer(session, booking, actor=Actor.of(booker, "127.0.0.1"), user=booker, now=utcnow())
            bookings.record_transfer(session, booking, actor=Actor.of(admin, "127.0.0.1"), user=admin, now=utcnow(),
                                     amount_fen=booking.payable_fen, received_on=to_local(utcnow()).date(),
                                     reference=f"TRANSFER-{booking.id}")
        bookings.check_in(session, booking, actor=Actor.of(operator, "127.0.0.1"), user=operator, now=start)
        bookings.check_out(session, booking, actor=Actor.of(operator, "127.0.0.1"), user=operator,
                           now=start + used if used is not None else end)
        return booking

    return make
