"""The cancellation terms and what a cancellation does with the money, as the booker sees them: the terms
fixed when the booking is made (the form, the booking's page, the mails and the fee charged read the same
values), the confirmation page that states the fee and the refund to the fen before cancelling, and the
refunds shown on the booking's page, in the list and in the mail. Against real localstripe and a real SMTP
server, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.errors import Conflict
from core.jobs import send_outbox
from core.models import Platform
from marketplace.booking import services as bookings
from marketplace.booking.models import Booking, BookingRules, BookingState
from marketplace.payments import services as payments
from marketplace.payments.models import PaymentState
from marketplace.registry.models import InstrumentState
from tests.marketplace.test_booking_pages import confirm_series, local_input, own_rules, page
from tests.marketplace.test_payments import card_share, intents_of, operator_checks

HOUR = timedelta(hours=1)


@pytest.fixture
def instrument(create_instrument, session):
    """District enterprises pay ¥100.00 + ¥400.00 an hour; open round the clock, the district's policy:
    free until 24 hours before, then 50 % of the price; 100 % for a no-show."""
    instrument = create_instrument(state=InstrumentState.PUBLISHED)
    own_rules(session, instrument, free_cancel_hours=24, late_cancel_fee_pct=50, no_show_fee_pct=100)
    return instrument


def next_slot(hours_ahead: float) -> datetime:
    """The start of the half-hour slot about this many hours from now."""
    at = utcnow() + timedelta(hours=hours_ahead)
    return at.replace(minute=0 if at.minute < 30 else 30, second=0, microsecond=0) + timedelta(minutes=30)


def book_on_the_page(client, session, instrument, start: datetime, end: datetime) -> Booking:
    terms_id = bookings.current_terms(session, instrument.platform_id).id
    sent = client.post(f"/instruments/{instrument.id}/book", data={
        "start": local_input(start), "end": local_input(end), "terms_id": str(terms_id), "accept_terms": "y",
        "purpose": "", "submit": "Book"})
    assert sent.status_code == 302, sent.get_data(as_text=True)
    return session.get(Booking, int(sent.location.rsplit("/", 1)[1]))


def terms_shown(html_page) -> tuple[str, str, str]:
    [terms] = html_page.find("div", data_testid="cancellation-terms")
    return terms["data-free-until"], terms["data-late-fee-fen"], terms["data-no-show-fee-fen"]


def pay_by_card(client, booking, card) -> None:
    sent = client.post(f"/bookings/{booking.id}/pay", data={"card-payment_method": card()})
    assert (sent.status_code, sent.location) == (302, f"/bookings/{booking.id}")


def mail_with(mailbox, to: str, subject_part: str):
    found = [m for m in mailbox.messages if m["To"] == to and subject_part in m["Subject"]]
    assert found, [m["Subject"] for m in mailbox.messages]
    return found[-1].get_body(("plain",)).get_content()


# --- the promise made at booking holds ------------------------------------------------------------

def test_a_booking_made_8_hours_ahead_is_charged_the_fee_its_form_promised_and_no_other(
        login_as, session, instrument, card, stripe, mailbox):
    start = next_slot(8)
    end = start + HOUR + 30 * timedelta(minutes=1)  # ¥100.00 + 1.5 h × ¥400.00 = ¥700.00
    promised = (start - 24 * HOUR).isoformat(), "35000", "70000"
    client = login_as("enterprise")

    form = page(client.get(f"/instruments/{instrument.id}/book",
                           query_string={"start": start.isoformat(), "end": end.isoformat()}))
    assert terms_shown(form) == promised
    assert "¥350.00" in form.text("late-fee") and to_local(start - 24 * HOUR).strftime("%H:%M") in form.text(
        "free-until")
    booking = book_on_the_page(client, session, instrument, start, end)
    assert (booking.state, booking.payable_fen) == (BookingState.APPROVED, 70_000)
    assert (booking.free_cancel_until.isoformat(), str(booking.late_cancel_fee_fen),
            str(booking.no_show_fee_fen)) == promised

    before_paying = page(client.get(f"/bookings/{booking.id}"))
    assert terms_shown(before_paying) == promised
    assert terms_shown(page(client.get(f"/bookings/{booking.id}/pay"))) == promised
    assert before_paying.find("p", data_testid="cancel-fee")[0]["data-fee-fen"] == "0"  # nothing confirmed yet
    pay_by_card(client, booking, card)
    session.expire_all()
    assert (booking.state, booking.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    rules = session.get(BookingRules, own_rules_id(session, instrument))
    rules.late_cancel_fee_pct, rules.free_cancel_hours = 100, 0  # the platform changes its policy afterwards
    session.flush()

    after_paying = page(client.get(f"/bookings/{booking.id}"))
    assert terms_shown(after_paying) == promised  # the same terms, seconds after paying
    assert after_paying.find("p", data_testid="cancel-fee")[0]["data-fee-fen"] == "35000"
    confirm = page(client.get(f"/bookings/{booking.id}/cancel"))
    [outcome] = confirm.find("dl", data_testid="cancel-outcome")
    assert (outcome["data-fee-fen"], outcome["data-card-fen"], outcome["data-transfer-fen"]) == ("35000", "35000", "0")
    sent = client.post(f"/bookings/{booking.id}/cancel", data={"fee_fen": "35000", "reason": "改期"})
    assert sent.status_code == 302
    session.expire_all()
    assert (booking.state, booking.cancellation_fee_fen) == (BookingState.CANCELLED, 35_000)
    charge = stripe.get(f"/v1/payment_intents/{card_share(booking).intent_id}")["latest_charge"]
    assert (charge["amount"] - charge["amount_refunded"], charge["amount_refunded"]) == (35_000, 35_000)  # kept, released

    send_outbox()
    confirmed = mail_with(mailbox, "enterprise@kequip.test", "已确认")
    assert f"{to_local(start - 24 * HOUR):%Y-%m-%d %H:%M}" in confirmed and "¥350.00" in confirmed
    assert "¥700.00" in confirmed  # the no-show fee
    cancelled = mail_with(mailbox, "enterprise@kequip.test", "已取消")
    assert "¥350.00" in cancelled and "退回您的银行卡" in cancelled


def own_rules_id(session, instrument) -> int:
    return session.scalar(select(BookingRules.id).where(BookingRules.instrument_id == instrument.id))


# --- asking before cancelling -------------------------------------------------------------------------

@pytest.fixture
def paid(session, instrument, login_as, card, monday_at):
    """A confirmed booking of Monday week 09:00–11:00 (¥900.00), authorised on a card."""
    client = login_as("enterprise")
    booking = book_on_the_page(client, session, instrument, monday_at(9), monday_at(11))
    pay_by_card(client, booking, card)
    session.expire_all()
    assert (booking.state, booking.payment_state) == (BookingState.CONFIRMED, PaymentState.AUTHORISED)
    return booking


def test_the_cancel_page_asks_first_and_states_the_fee_and_the_refund_to_the_fen(
        login_as, session, paid, stripe):
    client = login_as("enterprise")
    detail = page(client.get(f"/bookings/{paid.id}"))
    [form] = detail.find("form", data_testid="cancel-form")
    assert (form["method"], form["action"]) == ("get", f"/bookings/{paid.id}/cancel")  # asks, does not cancel
    confirm = page(client.get(f"/bookings/{paid.id}/cancel"))
    [outcome] = confirm.find("dl", data_testid="cancel-outcome")
    assert (outcome["data-fee-fen"], outcome["data-card-fen"]) == ("0", "90000")  # days ahead: free
    assert confirm.text("outcome-card") == "¥900.00"
    assert confirm.find("input", name="fee_fen")[0]["value"] == "0"
    session.refresh(paid)
    assert paid.state == BookingState.CONFIRMED  # looking cancels nothing

    client.post(f"/bookings/{paid.id}/cancel", data={"fee_fen": "0"})
    session.expire_all()
    assert (paid.state, paid.cancellation_fee_fen, paid.payment_state) == (BookingState.CANCELLED, 0,
                                                                           PaymentState.RELEASED)
    intent = stripe.get(f"/v1/payment_intents/{card_share(paid).intent_id}")
    assert (intent["status"], intent["amount"], intent["latest_charge"]["captured"]) == ("canceled", 90_000, False)
    after = page(client.get(f"/bookings/{paid.id}"))
    assert (after.text("charged"), after.text("card-returned")) == ("¥0.00", "¥900.00")


def test_a_late_cancellation_matches_what_the_page_said_to_the_fen(login_as, session, paid, stripe, demo_user):
    user = demo_user("enterprise")
    late = paid.start_at - 2 * HOUR
    outcome = bookings.quote_cancellation(paid, user, now=late)
    assert (outcome.fee_fen, outcome.card_fen, outcome.transfer_fen) == (45_000, 45_000, 0)
    with bookings.booking_change(actor=Actor.of(user, None), now=late) as change:
        fee = bookings.cancel_booking(change, paid, actor=Actor.of(user, None), user=user, now=late,
                                      expected_fee_fen=outcome.fee_fen)
    session.expire_all()
    assert fee == outcome.fee_fen
    charge = stripe.get(f"/v1/payment_intents/{card_share(paid).intent_id}")["latest_charge"]
    assert (charge["amount"] - charge["amount_refunded"], charge["amount_refunded"]) == (outcome.fee_fen,
                                                                                        outcome.card_fen)
    assert payments.settled_amounts(paid) == payments.Settled(charged_fen=45_000, card_returned_fen=45_000,
                                                              transfer_returned_fen=0)


def test_a_fee_that_changed_since_the_page_was_shown_cancels_nothing(login_as, session, paid, demo_user):
    user = demo_user("enterprise")
    late = paid.start_at - 2 * HOUR
    with pytest.raises(Conflict) as changed:
        bookings.cancel_booking(session, paid, actor=Actor.of(user, None), user=user, now=late, expected_fee_fen=0)
    assert changed.value.code == "cancellation_fee_changed" and "¥450.00" in changed.value.message
    assert paid.state == BookingState.CONFIRMED
    shown_free = login_as("enterprise").post(f"/bookings/{paid.id}/cancel", data={"fee_fen": "1"})
    assert shown_free.status_code == 409  # the page again, with the fee as it is now
    assert page(shown_free).find("input", name="fee_fen")[0]["value"] == "0"
    session.expire_all()
    assert paid.state == BookingState.CONFIRMED


# --- refunds wherever the payment is shown --------------------------------------------------------

def test_a_transfer_refund_shows_on_the_page_the_list_and_in_the_mail(
        login_as, session, instrument, monday_at, demo_user, mailbox):
    client, admin = login_as("enterprise"), demo_user("platform")
    booking = book_on_the_page(client, session, instrument, monday_at(9), monday_at(11))
    client.post(f"/bookings/{booking.id}/pay", data={"transfer-submit": "1"})
    bookings.record_transfer(session, booking, actor=Actor.of(admin, None), user=admin, now=utcnow(),
                             amount_fen=90_000, received_on=to_local(utcnow()).date(), reference="ICBC-0042")
    session.flush()
    late = booking.start_at - 3 * HOUR
    user = demo_user("enterprise")
    outcome = bookings.quote_cancellation(booking, user, now=late)
    assert (outcome.fee_fen, outcome.card_fen, outcome.transfer_fen) == (45_000, 0, 45_000)
    bookings.cancel_booking(session, booking, actor=Actor.of(user, None), user=user, now=late)
    session.flush()

    detail = page(client.get(f"/bookings/{booking.id}"))
    assert (detail.text("cancellation-fee"), detail.text("charged")) == ("¥450.00", "¥450.00")
    assert "¥450.00" in detail.text("transfer-returned")
    listed = page(client.get("/bookings?when=all"))
    row = [r for r in listed.find("span", data_testid="charged")]
    assert [r["data-fen"] for r in row] == ["45000"]  # what was finally charged, not the ¥900.00 price
    assert [r["data-fen"] for r in listed.find("div", data_testid="returned")] == ["45000"]
    send_outbox()
    mail = mail_with(mailbox, "enterprise@kequip.test", "已取消")
    assert "¥450.00" in mail and "银行转账" in mail


def test_the_list_shows_the_final_charge_after_a_shorter_use(login_as, session, paid, demo_user, stripe):
    operator_checks(session, demo_user, paid, hours=1)  # ¥500.00 captured of the ¥900.00 held
    session.expire_all()
    client = login_as("enterprise")
    listed = page(client.get("/bookings?when=all"))
    assert [r["data-fen"] for r in listed.find("span", data_testid="charged")] == ["50000"]
    assert [r["data-fen"] for r in listed.find("div", data_testid="returned")] == ["40000"]
    detail = page(client.get(f"/bookings/{paid.id}"))
    assert (detail.text("charged"), detail.text("card-returned")) == ("¥500.00", "¥400.00")
    [intent] = intents_of(stripe, paid)
    assert intent["latest_charge"]["amount_refunded"] == 40_000


# --- before booking: the instrument's page and the booking form ------------------------------------

def test_the_instrument_page_and_the_form_show_the_policy_before_a_slot_is_chosen(app, login_as, instrument):
    for client in (app.test_client(), login_as("enterprise")):
        shown = page(client.get(f"/instruments/{instrument.id}"))
        assert "24" in shown.text("free-until") and "50" in shown.text("late-fee") and "100" in shown.text(
            "no-show-fee")
    form = page(login_as("enterprise").get(f"/instruments/{instrument.id}/book"))
    assert "24" in form.text("free-until") and "50" in form.text("late-fee")


def test_the_quote_returns_the_terms_of_the_chosen_slot(login_as, instrument, monday_at):
    start, end = monday_at(9), monday_at(11)
    answer = login_as("enterprise").get(f"/instruments/{instrument.id}/book/quote",
                                        query_string={"start": start.isoformat(), "end": end.isoformat()}).json
    html = answer["cancellation_html"]
    assert f'data-free-until="{(start - 24 * HOUR).isoformat()}"' in html and 'data-late-fee-fen="45000"' in html


def test_every_demo_platform_has_a_bank_account_for_transfers(session):
    platforms = session.scalars(select(Platform)).all()
    assert platforms and all(p.bank_name and p.bank_account_name and p.bank_account_number for p in platforms)


def test_cancelling_the_rest_of_a_series_asks_first_with_every_occurrence_and_the_total(
        login_as, session, instrument, monday_at):
    client = login_as("enterprise")
    terms_id = bookings.current_terms(session, instrument.platform_id).id
    confirm_series(client, instrument, {
        "start": local_input(monday_at(9)), "end": local_input(monday_at(10)), "weeks": "3",
        "terms_id": str(terms_id), "accept_terms": "y", "purpose": "", "submit": "Book"})
    first, second, third = session.scalars(select(Booking).where(Booking.instrument_id == instrument.id)
                                           .order_by(Booking.start_at)).all()
    confirm = page(client.get(f"/bookings/{second.id}/cancel-series"))
    assert [row["data-booking-id"] for row in confirm.find("tr", data_testid="cancel-row")] == [
        str(second.id), str(third.id)]
    [outcome] = confirm.find("dl", data_testid="cancel-outcome")
    assert outcome["data-fee-fen"] == "0"
    assert client.post(f"/bookings/{second.id}/cancel-series", data={"fee_fen": "0"}).status_code == 302
    session.expire_all()
    assert [b.state for b in (first, second, third)] == [BookingState.APPROVED, BookingState.CANCELLED,
                                                         BookingState.CANCELLED]
