"""The booking jobs (expiry, no-shows, reminders), each idempotent, and the booking e-mails rendered in
both languages. Bookings lie two weeks back, made with a `now` before them; the jobs get
later `now` values to move time."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.models import AuditEntry, OutboxMessage
from core.outbox import render_mail
from marketplace.booking import jobs, waitlist
from marketplace.booking import services as bookings
from marketplace.booking.models import BookingState
from marketplace.payments.models import PaymentState
from marketplace.registry.models import InstrumentState
from tests.marketplace.booking_fixtures import appointment_instrument, workday_at  # noqa: F401  (fixtures)

HOUR = timedelta(hours=1)


def mails(session, template: str, booking_id: int | None = None) -> list[OutboxMessage]:
    found = session.scalars(select(OutboxMessage).where(OutboxMessage.template == template)
                            .order_by(OutboxMessage.id)).all()
    return [m for m in found if booking_id is None or m.context.get("booking_id") == booking_id]


def audit_actions(session, booking) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "bookings",
                                                                AuditEntry.subject_id == booking.id)
                                .order_by(AuditEntry.id)))


def test_a_request_never_approved_expires_at_its_start_once(session, appointment_instrument, book):
    start = workday_at(9, days=-14)
    booking = book(appointment_instrument, start, start + HOUR, now=start - timedelta(days=2))
    assert booking.state == BookingState.REQUESTED
    jobs.expire_bookings(now=start - timedelta(minutes=1))
    assert booking.state == BookingState.REQUESTED  # not yet: it may still be approved
    assert jobs.expire_bookings(now=start) >= 1
    assert booking.state == BookingState.EXPIRED and booking.sequence >= 1
    assert jobs.expire_bookings(now=start) == 0  # a second run finds nothing
    assert jobs.expire_bookings(now=start + HOUR) == 0
    assert audit_actions(session, booking).count("booking.expired") == 1


def test_an_approved_booking_never_paid_expires_but_a_confirmed_one_stays(session, create_instrument, free_instrument,
                                                                          book):
    start = workday_at(9, days=-14)
    priced = create_instrument(state=InstrumentState.PUBLISHED)
    unpaid = book(priced, start, start + HOUR, now=start - timedelta(days=2))
    confirmed = book(free_instrument, start, start + HOUR, now=start - timedelta(days=2))
    assert (unpaid.state, unpaid.payment_state) == (BookingState.APPROVED, PaymentState.DUE)
    assert confirmed.state == BookingState.CONFIRMED
    assert jobs.expire_bookings(now=start + timedelta(minutes=5)) >= 1
    assert (unpaid.state, confirmed.state) == (BookingState.EXPIRED, BookingState.CONFIRMED)
    assert jobs.expire_bookings(now=start + timedelta(minutes=5)) == 0


def test_no_check_in_within_the_grace_period_is_a_no_show_with_its_fee_once(session, create_instrument, free_instrument,
                                                                            book, demo_user):
    start = workday_at(9, days=-14)
    admin = demo_user("platform")
    priced = create_instrument(state=InstrumentState.PUBLISHED)  # district enterprises: ¥100 + ¥400 an hour
    paid = book(priced, start, start + HOUR, now=start - timedelta(days=3))
    assert paid.payable_fen == 50_000
    bookings.record_transfer(session, paid, actor=Actor.of(admin, "127.0.0.1"), user=admin,
                             now=start - timedelta(days=2), amount_fen=50_000,
                             received_on=to_local(start - timedelta(days=2)).date(), reference="ICBC 2026-0042")
    free = book(free_instrument, start, start + HOUR, now=start - timedelta(days=3))
    came = book(free_instrument, start + 2 * HOUR, start + 3 * HOUR, now=start - timedelta(days=3))
    assert (paid.state, free.state, came.state) == (BookingState.CONFIRMED,) * 3
    operator = demo_user("operator")
    bookings.check_in(session, came, actor=Actor.of(operator, None), user=operator,
                      now=start + 2 * HOUR + timedelta(minutes=5))

    jobs.mark_no_shows(now=start + timedelta(minutes=29))  # the grace period is 30 minutes
    assert (paid.state, free.state) == (BookingState.CONFIRMED, BookingState.CONFIRMED)
    assert jobs.mark_no_shows(now=start + timedelta(minutes=31)) >= 2
    assert (paid.state, free.state) == (BookingState.NO_SHOW, BookingState.NO_SHOW)
    assert paid.cancellation_fee_fen == 50_000  # the no-show fee: 100 % of the price, kept from the transfer
    assert paid.payments[0].refunded_fen == 0
    assert free.cancellation_fee_fen == 0  # nothing was due
    assert jobs.mark_no_shows(now=start + timedelta(minutes=31)) == 0  # a second run finds nothing
    assert jobs.mark_no_shows(now=start + 4 * HOUR) == 0
    assert came.state == BookingState.IN_PROGRESS  # checked in: never a no-show
    assert audit_actions(session, paid).count("booking.no_show") == 1


def test_one_reminder_the_day_before_never_twice(session, free_instrument, book):
    start = workday_at(9, days=-14)
    booking = book(free_instrument, start, start + HOUR, now=start - timedelta(days=3))
    assert booking.state == BookingState.CONFIRMED
    jobs.send_booking_reminders(now=start - timedelta(hours=25))
    assert booking.reminder_sent_at is None and not mails(session, "booking_reminder", booking.id)
    assert jobs.send_booking_reminders(now=start - timedelta(hours=23)) >= 1
    assert booking.reminder_sent_at == start - timedelta(hours=23)
    assert jobs.send_booking_reminders(now=start - timedelta(hours=22)) == 0
    assert jobs.send_booking_reminders(now=start - timedelta(minutes=10)) == 0
    [reminder] = mails(session, "booking_reminder", booking.id)
    assert reminder.to == "enterprise@kequip.test"


def test_a_cancelled_booking_gets_no_reminder(session, free_instrument, book, demo_user):
    start = workday_at(9, days=-14)
    booking = book(free_instrument, start, start + HOUR, now=start - timedelta(days=3))
    user = demo_user("enterprise")
    bookings.cancel_booking(session, booking, actor=Actor.of(user, None), user=user, now=start - timedelta(days=2))
    jobs.send_booking_reminders(now=start - timedelta(hours=23))
    assert booking.reminder_sent_at is None and not mails(session, "booking_reminder", booking.id)


# --- the mails, in both languages ----------------------------------------------------------------

SUBJECTS = {  # template: (a part of the Chinese subject, a part of the English one)
    "booking_requested": ("已收到预约", "received"),
    "booking_requested_platform": ("新的预约申请", "New booking request"),
    "booking_approved": ("已批准", "approved"),
    "booking_rejected": ("未获批准", "rejected"),
    "booking_confirmed": ("已确认", "confirmed"),
    "booking_cancelled": ("已取消", "cancelled"),
    "booking_cancelled_platform": ("预约人取消", "cancelled by the booker"),
    "booking_reminder": ("提醒", "Reminder"),
    "waitlist_offer": ("候补", "waited for"),
}


@pytest.fixture
def every_mail(session, create_instrument, appointment_instrument, free_instrument, book, demo_user):
    """Runs every booking flow once: {template: one outbox message of it}."""
    start = workday_at(9, days=-14)
    before = start - timedelta(days=5)
    admin, user, operator = demo_user("platform"), demo_user("enterprise"), demo_user("operator")
    as_admin = {"actor": Actor.of(admin, None), "user": admin}
    requested = book(appointment_instrument, start, start + HOUR, now=before)  # requested (+ platform)
    bookings.reject_booking(session, requested, **as_admin, now=before, reason="样品不符合要求")
    priced = create_instrument(state=InstrumentState.PUBLISHED, sharing_mode="appointment")
    approved = book(priced, start, start + HOUR, now=before)
    bookings.approve_booking(session, approved, **as_admin, now=before)  # approved, ¥500.00 to pay
    bookings.record_transfer(session, approved, **as_admin, now=before, amount_fen=50_000,
                             received_on=to_local(before).date(), reference="ICBC 2026-0042")  # confirmed
    bookings.cancel_booking(session, approved, actor=Actor.of(user, None), user=user,
                            now=start - 2 * HOUR)  # late: a fee of ¥250.00 (+ platform)
    reminded = book(free_instrument, start, start + HOUR, now=before)
    bookings.send_reminders(session, now=start - timedelta(hours=20))
    blocker = book(free_instrument, start + 2 * HOUR, start + 3 * HOUR, user="operator", now=before)
    waitlist.join_waitlist(session, actor=Actor.of(user, None), user=user, instrument_id=free_instrument.id,
                           start_at=blocker.start_at, end_at=blocker.end_at, now=before)
    bookings.cancel_booking(session, blocker, actor=Actor.of(operator, None), user=operator, now=before)
    waitlist.offer_freed_slots(session, now=before)
    session.flush()
    found = {}
    for template in SUBJECTS:
        wanted = {"booking_rejected": requested.id, "booking_cancelled": approved.id,
                  "booking_reminder": reminded.id}.get(template)
        messages = mails(session, template, wanted)
        assert messages, template
        found[template] = messages[0]
    return found


def rendered(message: OutboxMessage, locale: str):
    email = render_mail(OutboxMessage(to=message.to, locale=locale, template=message.template,
                                      context=message.context))
    return (email["Subject"], email.get_body(("plain",)).get_content(), email.get_body(("html",)).get_content())


@pytest.mark.parametrize("template", SUBJECTS)
def test_each_booking_mail_renders_in_chinese_and_english(session, every_mail, template):
    message = every_mail[template]
    context = message.context
    zh_fragment, en_fragment = SUBJECTS[template]
    for locale, fragment, greeting in (("zh_CN", zh_fragment, "您好"), ("en", en_fragment, "Hello")):
        subject, text, html = rendered(message, locale)
        assert fragment in subject, (locale, subject)
        assert "液相色谱-质谱联用仪" in subject and "LC-MS/MS" in subject
        assert greeting in text and greeting in html
        assert context["start"] in text and context["end"] in text
        assert "{{" not in text + html and "%(" not in text + html
        if template == "waitlist_offer":
            assert "http://kequip.test/waitlist/mine" in text and 'href="http://kequip.test/waitlist/mine"' in html
            assert context["expires"] in text
        else:
            link = f"http://kequip.test/bookings/{context['booking_id']}"
            assert f"#{context['booking_id']}" in subject
            assert link in text and f'href="{link}"' in html
    zh_subject, zh_text, _zh_html = rendered(message, "zh_CN")
    en_subject, en_text, _en_html = rendered(message, "en")
    assert zh_subject != en_subject and zh_text != en_text


def test_mails_carry_the_amounts_in_yuan_and_the_reason(every_mail):
    _subject, approved, _html = rendered(every_mail["booking_approved"], "en")
    assert "¥500.00" in approved
    _subject, cancelled, html = rendered(every_mail["booking_cancelled"], "zh_CN")
    assert "¥250.00" in cancelled and "¥250.00" in html
    _subject, rejected, html = rendered(every_mail["booking_rejected"], "zh_CN")
    assert "样品不符合要求" in rejected and "样品不符合要求" in html
    assert every_mail["booking_requested_platform"].to == "platform@kequip.test"
