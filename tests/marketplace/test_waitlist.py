"""The waitlist of a busy slot: join, the offer to the first in line when the slot frees (by e-mail, for
the rules' waitlist_offer_minutes), lapse to the next in line, accept, and a slot taken meanwhile.
The service tests work two weeks back with explicit `now` values; the page test books
ahead of the real clock."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.errors import Conflict, NotFound, RuleBroken
from core.jobs import send_outbox
from core.models import AuditEntry, OutboxMessage
from marketplace.booking import jobs, waitlist
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState, MaintenanceWindow, WaitlistEntry, WaitlistState
from tests.marketplace.booking_fixtures import workday_at

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def slot():
    """A working-day hour two weeks back, and a `now` three days before it."""
    start = workday_at(9, days=-14)
    return start, start + HOUR, start - timedelta(days=3)


@pytest.fixture
def taken(free_instrument, book, slot):
    """The slot, booked (and confirmed) by the platform's operator."""
    start, end, before = slot
    return book(free_instrument, start, end, user="operator", now=before)


@pytest.fixture
def join(session, demo_user, free_instrument, slot):
    """join(name, now=…): that demo user joins the waitlist of the slot."""
    start, end, before = slot

    def make(name: str, now=None, **changes) -> WaitlistEntry:
        user = demo_user(name)
        values = {"instrument_id": free_instrument.id, "start_at": start, "end_at": end} | changes
        return waitlist.join_waitlist(session, actor=Actor.of(user, None), user=user, now=now or before, **values)

    return make


def as_user(demo_user, name: str) -> dict:
    user = demo_user(name)
    return {"actor": Actor.of(user, "127.0.0.1"), "user": user}


def cancel(session, booking, demo_user, *, now) -> None:
    bookings.cancel_booking(session, booking, **as_user(demo_user, "operator"), now=now)


def offers_to(session, email: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.template == "waitlist_offer",
                                                            OutboxMessage.to == email)))


def test_joining_the_waitlist_of_a_free_slot_is_refused(session, join, slot):
    start, end, _before = slot
    with pytest.raises(RuleBroken) as refused:
        join("enterprise")
    assert refused.value.code == "slot_free"
    assert session.scalar(select(WaitlistEntry)) is None


def test_joining_a_busy_slot_once_per_user_and_under_the_booking_rules(session, taken, join, slot, create_instrument):
    start, end, before = slot
    first = join("enterprise")
    assert (first.state, first.user.email) == (WaitlistState.WAITING, "enterprise@kequip.test")
    assert join("enterprise", now=before + HOUR).id == first.id  # joining twice gives the same entry
    assert session.scalar(select(AuditEntry.action).where(AuditEntry.subject_type == "waitlist_entries",
                                                          AuditEntry.subject_id == first.id)) == "waitlist_entry.waiting"
    with pytest.raises(RuleBroken) as own:
        join("operator")
    assert own.value.code == "own_booking"
    with pytest.raises(RuleBroken) as rule:
        join("enterprise", start_at=start + timedelta(minutes=10), end_at=end)
    assert rule.value.code == "slot_granularity"
    with pytest.raises(RuleBroken) as late:
        join("enterprise", now=start - MINUTE)
    assert late.value.code == "lead_time"
    with pytest.raises(RuleBroken) as bureau:
        join("bureau")  # no enterprise, no platform: may not book at all
    assert bureau.value.code == "enterprise_not_verified"
    with pytest.raises(NotFound):
        join("enterprise", instrument_id=2_000_000_000)


def test_a_freed_slot_is_offered_to_the_first_in_line_by_mail(session, taken, join, slot, demo_user, mailbox):
    start, end, before = slot
    first = join("enterprise")
    second = join("platform", now=before + MINUTE)
    assert jobs.offer_waitlist_slots(now=before + HOUR) == 0  # still taken
    cancel(session, taken, demo_user, now=before + 2 * HOUR)
    assert jobs.offer_waitlist_slots(now=before + 2 * HOUR + 5 * MINUTE) == 1
    assert (first.state, second.state) == (WaitlistState.OFFERED, WaitlistState.WAITING)
    assert first.offered_at == before + 2 * HOUR + 5 * MINUTE
    assert first.offer_expires_at == first.offered_at + timedelta(minutes=120)  # the district's default
    assert jobs.offer_waitlist_slots(now=before + 2 * HOUR + 10 * MINUTE) == 0  # one live offer at a time
    [offer] = offers_to(session, "enterprise@kequip.test")
    assert offer.locale == "zh_CN" and offer.context["entry_id"] == first.id
    assert offer.context["expires"] == f"{to_local(first.offer_expires_at):%Y-%m-%d %H:%M}"
    assert not offers_to(session, "platform@kequip.test")

    assert send_outbox() >= 1  # delivered over SMTP, in Chinese
    mail = mailbox.wait_for("enterprise@kequip.test")
    assert "候补" in mail["Subject"] and "液相色谱-质谱联用仪" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "http://kequip.test/waitlist/mine" in body and offer.context["expires"] in body
    assert "企业用户，您好" in body


def test_an_offer_that_lapses_goes_to_the_next_in_line(session, taken, join, slot, demo_user):
    start, end, before = slot
    first, second = join("enterprise"), join("platform", now=before + MINUTE)
    cancel(session, taken, demo_user, now=before + HOUR)
    jobs.offer_waitlist_slots(now=before + HOUR)
    expires = first.offer_expires_at
    assert jobs.offer_waitlist_slots(now=expires - MINUTE) == 0
    assert first.state == WaitlistState.OFFERED
    assert jobs.offer_waitlist_slots(now=expires) == 1
    assert (first.state, second.state) == (WaitlistState.LAPSED, WaitlistState.OFFERED)
    assert second.offer_expires_at == expires + timedelta(minutes=120)
    assert len(offers_to(session, "platform@kequip.test")) == 1
    with pytest.raises(RuleBroken) as lapsed:
        waitlist.accept_offer(session, **as_user(demo_user, "enterprise"), entry_id=first.id, now=expires,
                              terms_id=None)
    assert lapsed.value.code == "offer_not_open"
    assert jobs.offer_waitlist_slots(now=second.offer_expires_at) == 0  # nobody left
    assert second.state == WaitlistState.LAPSED
    assert jobs.offer_waitlist_slots(now=second.offer_expires_at) == 0


def test_accepting_an_offer_books_the_slot(session, taken, join, slot, demo_user, free_instrument):
    start, end, before = slot
    first, second = join("enterprise"), join("platform", now=before + MINUTE)
    cancel(session, taken, demo_user, now=before + HOUR)
    jobs.offer_waitlist_slots(now=before + HOUR)
    terms = bookings.current_terms(session, free_instrument.platform_id)
    booking = waitlist.accept_offer(session, **as_user(demo_user, "enterprise"), entry_id=first.id,
                                    now=before + 2 * HOUR, terms_id=terms.id)
    assert (booking.state, booking.booker.email) == (BookingState.CONFIRMED, "enterprise@kequip.test")
    assert (booking.start_at, booking.end_at, booking.terms_id) == (start, end, terms.id)
    assert (first.state, first.booking_id) == (WaitlistState.BOOKED, booking.id)
    again = waitlist.accept_offer(session, **as_user(demo_user, "enterprise"), entry_id=first.id,
                                  now=before + 2 * HOUR, terms_id=terms.id)
    assert again.id == booking.id  # a double click books once
    assert jobs.offer_waitlist_slots(now=first.offer_expires_at) == 0  # taken again: the next one waits
    assert second.state == WaitlistState.WAITING
    with pytest.raises(NotFound):  # an entry is its user's own
        waitlist.accept_offer(session, **as_user(demo_user, "platform"), entry_id=first.id, now=before + 2 * HOUR,
                              terms_id=terms.id)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "waitlist_entries",
                                                              AuditEntry.subject_id == first.id)
                              .order_by(AuditEntry.id)).all()
    assert actions == ["waitlist_entry.waiting", "waitlist_entry.offered", "waitlist_entry.booked"]


def test_a_slot_someone_else_booked_meanwhile_gives_conflict(session, taken, join, slot, demo_user, book,
                                                             free_instrument):
    start, end, before = slot
    first = join("enterprise")
    cancel(session, taken, demo_user, now=before + HOUR)
    jobs.offer_waitlist_slots(now=before + HOUR)
    assert first.state == WaitlistState.OFFERED
    book(free_instrument, start, end, user="operator", now=before + HOUR + MINUTE)  # the booking form is open to all
    with pytest.raises(Conflict) as conflict:
        waitlist.accept_offer(session, **as_user(demo_user, "enterprise"), entry_id=first.id,
                              now=before + HOUR + 2 * MINUTE, terms_id=None)
    assert conflict.value.code == "booking_conflict"
    assert first.state == WaitlistState.OFFERED and first.booking_id is None


def test_withdrawn_entries_and_maintenance_get_no_offer(session, taken, join, slot, demo_user, free_instrument):
    start, end, before = slot
    first, second = join("enterprise"), join("platform", now=before + MINUTE)
    enterprise = as_user(demo_user, "enterprise")
    assert waitlist.withdraw_waitlist_entry(session, **enterprise, entry_id=first.id, now=before).state \
        == WaitlistState.WITHDRAWN
    waitlist.withdraw_waitlist_entry(session, **enterprise, entry_id=first.id, now=before)  # twice: no change
    with pytest.raises(NotFound):
        waitlist.withdraw_waitlist_entry(session, **enterprise, entry_id=second.id, now=before)
    cancel(session, taken, demo_user, now=before + HOUR)
    session.add(MaintenanceWindow(instrument_id=free_instrument.id, start_at=end - 30 * MINUTE,
                                  end_at=end + HOUR, reason="校准"))
    session.flush()
    assert jobs.offer_waitlist_slots(now=before + HOUR) == 0
    assert (first.state, second.state) == (WaitlistState.WITHDRAWN, WaitlistState.WAITING)
    assert jobs.offer_waitlist_slots(now=start) == 0  # the slot has begun: the wait is over
    assert second.state == WaitlistState.LAPSED


# --- the pages ----------------------------------------------------------------------------------

def test_waitlist_pages_join_list_accept_and_withdraw(session, login_as, free_instrument, book, demo_user):
    start = workday_at(9, days=3)
    end = start + HOUR
    taken = book(free_instrument, start, end, user="operator")
    enterprise, admin = login_as("enterprise"), login_as("platform")
    local_start = to_local(start).strftime("%Y-%m-%dT%H:%M")  # as a datetime-local input sends it
    joined = enterprise.post("/waitlist", data={"instrument_id": free_instrument.id, "start": local_start,
                                                "end": to_local(end).strftime("%Y-%m-%dT%H:%M")})
    assert joined.status_code == 302 and joined.location.endswith("/waitlist/mine")
    joined = admin.post(f"/waitlist?instrument_id={free_instrument.id}",  # as the calendar's form sends it
                        data={"start": start.isoformat(), "end": end.isoformat()})
    assert joined.status_code == 302 and joined.location.endswith("/waitlist/mine")
    first, second = session.scalars(select(WaitlistEntry).where(WaitlistEntry.instrument_id == free_instrument.id)
                                    .order_by(WaitlistEntry.id)).all()
    assert (first.user.email, first.start_at, first.end_at) == ("enterprise@kequip.test", start, end)
    assert (second.user.email, second.start_at, second.end_at) == ("platform@kequip.test", start, end)

    free = enterprise.post("/waitlist", data={"instrument_id": free_instrument.id,
                                              "start": (start + 2 * HOUR).isoformat(),
                                              "end": (end + 2 * HOUR).isoformat()})
    assert free.status_code == 302 and f"/instruments/{free_instrument.id}/book" in free.location
    page = enterprise.get(free.location).get_data(as_text=True)
    assert "book it instead of joining the waitlist" in page or "请直接预约" in page
    bad = enterprise.post("/waitlist", data={"instrument_id": free_instrument.id, "start": "soon", "end": ""})
    assert bad.status_code == 302

    page = enterprise.get("/waitlist/mine")
    assert page.status_code == 200 and 'data-testid="waitlist-entry"' in page.get_data(as_text=True)
    assert 'data-testid="accept-form"' not in page.get_data(as_text=True)

    cancel(session, taken, demo_user, now=utcnow())
    assert jobs.offer_waitlist_slots(now=utcnow()) == 1
    page = enterprise.get("/waitlist/mine").get_data(as_text=True)
    terms = bookings.current_terms(session, free_instrument.platform_id)
    assert 'data-testid="accept-form"' in page and f'name="terms_id" value="{terms.id}"' in page
    assert terms.scope in page
    unticked = enterprise.post(f"/waitlist/{first.id}/accept", data={"terms_id": terms.id})
    assert unticked.status_code == 302 and unticked.location.endswith("/waitlist/mine")
    assert first.state == WaitlistState.OFFERED
    accepted = enterprise.post(f"/waitlist/{first.id}/accept", data={"terms_id": terms.id, "accept_terms": "y"})
    session.expire_all()
    assert first.state == WaitlistState.BOOKED
    assert accepted.status_code == 302 and accepted.location.endswith(f"/bookings/{first.booking_id}")
    assert enterprise.get(accepted.location).status_code == 200

    withdrawn = admin.post(f"/waitlist/{second.id}/withdraw")
    assert withdrawn.status_code == 302
    session.expire_all()
    assert second.state == WaitlistState.WITHDRAWN
    assert admin.post(f"/waitlist/{first.id}/withdraw").status_code == 404  # not theirs
    assert admin.post("/waitlist/99999999/accept", data={"accept_terms": "y"}).status_code == 404
    assert login_as("bureau").get("/waitlist/mine").status_code == 200


def test_an_offer_is_taken_when_its_holder_books_an_overlapping_time_directly(session, taken, join, slot, demo_user,
                                                                              book, free_instrument):
    start, end, before = slot
    first, second = join("enterprise"), join("platform", now=before + MINUTE)
    cancel(session, taken, demo_user, now=before + HOUR)
    jobs.offer_waitlist_slots(now=before + HOUR)
    assert first.state == WaitlistState.OFFERED

    direct = book(free_instrument, start + 30 * MINUTE, end + HOUR, user="enterprise", now=before + HOUR + MINUTE)

    assert (first.state, first.booking_id) == (WaitlistState.BOOKED, direct.id)
    assert waitlist.accept_offer(session, **as_user(demo_user, "enterprise"), entry_id=first.id,
                                 now=before + HOUR + 2 * MINUTE, terms_id=None).id == direct.id  # nothing more
    assert jobs.offer_waitlist_slots(now=first.offer_expires_at) == 0  # taken: not passed on as free
    assert second.state == WaitlistState.WAITING
    audit = session.scalars(select(AuditEntry).where(AuditEntry.subject_type == "waitlist_entries",
                                                     AuditEntry.subject_id == first.id)
                            .order_by(AuditEntry.id.desc())).first()
    assert (audit.action, audit.after["booking_id"]) == ("waitlist_entry.booked", direct.id)


def test_the_holder_s_booking_of_another_time_leaves_the_offer_open(session, taken, join, slot, demo_user, book,
                                                                    free_instrument):
    start, end, before = slot
    first = join("enterprise")
    cancel(session, taken, demo_user, now=before + HOUR)
    jobs.offer_waitlist_slots(now=before + HOUR)
    book(free_instrument, end + HOUR, end + 2 * HOUR, user="enterprise", now=before + HOUR + MINUTE)
    assert first.state == WaitlistState.OFFERED and first.booking_id is None
