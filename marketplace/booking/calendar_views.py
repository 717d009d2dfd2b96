"""iCalendar feeds (marketplace/booking/ics.py): an instrument's public busy times, a user's private feed behind
a secret token, one booking as a file, and the page where a user gets (or replaces) the feed's address."""
from __future__ import annotations

from collections.abc import Callable

from flask import Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from core.auth import AccessRule, current_actor, current_principal, public, requires
from core.db import unit_of_work, utcnow
from core.extensions import current_language, db
from core.templating import NavItem
from marketplace.blueprints import bp
from marketplace.booking import ics
from marketplace.booking import services as bookings
from marketplace.registry import services

NAV: list[NavItem] = [NavItem("marketplace.calendar_feed", _l("My calendar feed"), AccessRule(frozenset()))]
TOKEN = "<string(minlength=20, maxlength=100):token>"


def _booking_urls() -> Callable[[int], str]:
    """booking id → the booking's page, with url_for's work done once: a feed may link thousands
    (the page's URL ends in its id)."""
    prefix = url_for("marketplace.booking_detail", booking_id=1, _external=True).removesuffix("/1")
    return lambda booking_id: f"{prefix}/{booking_id}"


def _calendar_response(body: bytes, *, filename: str | None = None, private: bool = True) -> ResponseReturnValue:
    """text/calendar; charset=utf-8, with an ETag so a polling client gets 304 while nothing changed."""
    response = Response(body, mimetype="text/calendar")
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.cache_control.private = private
    response.cache_control.public = not private
    response.cache_control.max_age = 0 if private else 300
    response.add_etag()
    return response.make_conditional(request)


@bp.route("/instruments/<id:instrument_id>/calendar.ics")
@public
def instrument_calendar(instrument_id: int) -> ResponseReturnValue:
    instrument = services.get_instrument(db.session, instrument_id, None)  # in the catalogue, whoever asks
    body = ics.instrument_calendar(db.session, instrument, now=utcnow(), language=current_language())
    return _calendar_response(body, private=False)


@bp.route(f"/calendar/{TOKEN}.ics")
@public  # the token is the secret
def user_calendar(token: str) -> ResponseReturnValue:
    owner = ics.get_feed_owner(db.session, token)
    with force_locale(owner.locale):  # a calendar client sends no cookie: the owner's language
        body = ics.user_calendar(db.session, owner, now=utcnow(), language=owner.locale, booking_url=_booking_urls())
    return _calendar_response(body)


@bp.route("/bookings/<id:booking_id>.ics")
@requires()
def booking_ics(booking_id: int) -> ResponseReturnValue:
    booking = bookings.get_booking(db.session, booking_id, current_principal())  # others: 404
    body = ics.booking_calendar(db.session, booking, language=current_language(), booking_url=_booking_urls())
    return _calendar_response(body, filename=f"booking-{booking.id}.ics")


@bp.route("/calendar")
@requires()
def calendar_feed():
    return _feed_page(new_token=None)


@bp.route("/calendar/regenerate", methods=["POST"])
@requires()
def regenerate_calendar_feed():
    with unit_of_work() as session:
        token = ics.issue_feed_token(session, current_principal(), actor=current_actor(), now=utcnow())
    return _feed_page(new_token=token)  # shown this once: only its hash is kept, so no redirect


def _feed_page(*, new_token: str | None):
    feed_url = url_for(".user_calendar", token=new_token, _external=True) if new_token else None
    webcal_url = "webcal://" + feed_url.split("://", 1)[1] if feed_url else None
    return render_template("marketplace/calendar_feed.html", feed=ics.find_feed(db.session, current_principal()),
                           feed_url=feed_url, webcal_url=webcal_url)
