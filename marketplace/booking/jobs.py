"""The booking calendar's jobs: expiry, no-shows, reminders, the waitlist's offers, payment reconciliation."""
from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.scheduler import Job
from marketplace.booking import services as bookings
from marketplace.booking import waitlist


def expire_bookings(now: datetime | None = None) -> int:
    now = now or utcnow()
    with bookings.booking_change(actor=Actor.system("job:expire_bookings"), now=now) as session:
        return bookings.expire_bookings(session, now=now)


def mark_no_shows(now: datetime | None = None) -> int:
    now = now or utcnow()
    with bookings.booking_change(actor=Actor.system("job:mark_no_shows"), now=now) as session:
        return bookings.mark_no_shows(session, now=now)


def send_booking_reminders(now: datetime | None = None) -> int:
    with unit_of_work() as session:
        return bookings.send_reminders(session, now=now or utcnow())


def offer_waitlist_slots(now: datetime | None = None) -> int:
    """Lapse the offers that ran out, then offer each freed slot to the first in line: the offers made."""
    now = now or utcnow()
    with unit_of_work() as session:
        waitlist.lapse_offers(session, now=now)
        return waitlist.offer_freed_slots(session, now=now)


def reconcile_payments(now: datetime | None = None) -> int:
    """Settle what the payment gateway left unanswered: the payments settled (and orphans cancelled)."""
    return bookings.reconcile_payments(actor=Actor.system("job:reconcile_payments"), now=now or utcnow())


JOBS: list[Job] = [
    Job("expire_bookings", expire_bookings, "interval", {"minutes": 5}, _l("Expire unconfirmed bookings")),
    Job("mark_no_shows", mark_no_shows, "interval", {"minutes": 5}, _l("Mark no-shows")),
    Job("send_booking_reminders", send_booking_reminders, "interval", {"minutes": 15},
        _l("Send booking reminders")),
    Job("offer_waitlist_slots", offer_waitlist_slots, "interval", {"minutes": 5},
        _l("Offer freed slots to the waiting list")),
    Job("reconcile_payments", reconcile_payments, "interval", {"minutes": 5},
        _l("Reconcile payments with the gateway")),
]
