"""The platform's and the bureau's calendar settings: booking rules, maintenance windows (by hand and from
ICS files), qualifications and service terms (marketplace/booking/calendar_admin.py)."""
from __future__ import annotations

from datetime import datetime, timedelta

import flask_migrate
import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy import select

from config import TestingConfig
from core.app import create_app
from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from core.demo import load
from core.errors import Forbidden, RuleBroken
from core.extensions import db
from core.models import AuditEntry, OutboxMessage, Platform, User
from core.outbox import render_mail
from marketplace.booking import calendar_admin
from marketplace.booking import services as bookings
from marketplace.booking.availability import district_rules, effective_rules
from marketplace.booking.models import BookingRules, BookingState, MaintenanceWindow, Qualification, ServiceTerms
from marketplace.registry import services
from tests.marketplace.calendar_fixtures import other_admin, workday_at  # noqa: F401  (fixtures)
from tests.marketplace.conftest import instrument_values


@pytest.fixture(autouse=True)
def english(app):
    """Messages in English, as their msgids: the assertions read their words."""
    with force_locale("en"):
        yield


@pytest.fixture
def admin(demo_user) -> User:
    return demo_user("platform")


@pytest.fixture
def actor(admin) -> Actor:
    return Actor.of(admin, "127.0.0.1")


def audit_actions(session, subject_type: str) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == subject_type)
                                .order_by(AuditEntry.id)))


def refusal(call) -> RuleBroken:
    with pytest.raises(RuleBroken) as caught:
        call()
    return caught.value


# --- booking rules ------------------------------------------------------------------------------

def test_bureau_saves_the_district_defaults(session, demo_user):
    bureau = demo_user("bureau")
    rules = calendar_admin.save_booking_rules(session, actor=Actor.of(bureau, None), user=bureau, instrument=None,
                                              values={"open_hours": {"5": "09:00-12:00"}, "buffer_minutes": 10})
    assert rules is district_rules(session)
    assert rules.open_hours["5"] == [["09:00", "12:00"]] and rules.open_hours["6"] == []
    assert rules.open_hours["0"] == [], "open hours are given whole: a weekday left out is closed"
    assert rules.buffer_minutes == 10
    assert audit_actions(session, "booking_rules") == ["booking_rules.saved"]


def test_only_the_bureau_saves_the_district_defaults(session, admin, actor):
    with pytest.raises(Forbidden):
        calendar_admin.save_booking_rules(session, actor=actor, user=admin, instrument=None, values={})


@pytest.mark.parametrize(("text", "stored"), [
    ("08:00-12:00, 13:00-24:00", [["08:00", "12:00"], ["13:00", "24:00"]]),
    ("8:30 - 12:00；13:30~17:30", [["08:30", "12:00"], ["13:30", "17:30"]]),
    ("00:00-24:00", [["00:00", "24:00"]]),
    ("08:00-12:00 12:00-13:00", [["08:00", "12:00"], ["12:00", "13:00"]]),
    ("", []),
])
def test_open_hours_are_read_as_several_ranges_a_day(text, stored):
    assert calendar_admin.parse_day_hours(text) == stored


@pytest.mark.parametrize(("text", "words"), [
    ("8 to 12", "is not a range"),
    ("08:00-25:00", "is not a range"),
    ("08:60-12:00", "is not a range"),
    ("24:00-24:00", "is not a range"),  # 24:00 only ends a day
    ("08:00-12:00-13:00", "is not a range"),
    ("12:00-08:00", "ends before it starts"),
    ("08:00-08:00", "ends before it starts"),
    ("08:00-12:00, 11:00-13:00", "without overlaps"),
    ("13:00-17:00, 08:00-12:00", "in order"),
])
def test_bad_open_hours_are_refused_beside_their_weekday(session, admin, actor, create_instrument, text, words):
    instrument = create_instrument()
    error = refusal(lambda: calendar_admin.save_booking_rules(
        session, actor=actor, user=admin, instrument=instrument, values={"open_hours": {"2": text}}))
    assert (error.code, error.field) == ("invalid_rules", "open_hours_2")
    assert words in error.details["open_hours_2"]
    assert calendar_admin.own_rules(session, instrument) is None


@pytest.mark.parametrize(("values", "field", "words"), [
    ({"slot_minutes": 7}, "slot_minutes", "divide a day"),
    ({"slot_minutes": 0}, "slot_minutes", "from 1 to 1440"),
    ({"min_minutes": 45}, "min_minutes", "whole number of slots"),
    ({"min_minutes": 15}, "min_minutes", "whole number of slots"),
    ({"max_minutes": 450, "slot_minutes": 60, "min_minutes": 60}, "max_minutes", "whole number of slots"),
    ({"min_minutes": 120, "max_minutes": 60}, "max_minutes", "cannot be shorter"),
    ({"late_cancel_fee_pct": 101}, "late_cancel_fee_pct", "from 0 to 100"),
    ({"no_show_fee_pct": -1}, "no_show_fee_pct", "from 0 to 100"),
    ({"horizon_days": 0}, "horizon_days", "from 1 to 730"),
    ({"lead_minutes": -5}, "lead_minutes", "from 0"),
    ({"buffer_minutes": 10**12}, "buffer_minutes", "from 0 to 1440"),
    ({"waitlist_offer_minutes": 0}, "waitlist_offer_minutes", "from 1"),
    ({"lead_minutes": "120"}, "lead_minutes", "whole number"),
    ({"free_cancel_hours": True}, "free_cancel_hours", "whole number"),
    ({"requires_approval": "yes"}, "requires_approval", "Yes or no"),
    ({"qualification": "sometimes"}, "qualification", "listed rules"),
])
def test_each_bad_rule_is_refused_beside_its_field(session, admin, actor, create_instrument, values, field, words):
    instrument = create_instrument()
    error = refusal(lambda: calendar_admin.save_booking_rules(session, actor=actor, user=admin,
                                                              instrument=instrument, values=values))
    assert error.code == "invalid_rules" and field in error.details
    assert words in error.details[field]


def test_every_bad_rule_is_reported_at_once(session, admin, actor, create_instrument):
    error = refusal(lambda: calendar_admin.save_booking_rules(
        session, actor=actor, user=admin, instrument=create_instrument(),
        values={"open_hours": {"0": "x", "6": "18:00-17:00"}, "slot_minutes": 7, "no_show_fee_pct": 200}))
    assert set(error.details) == {"open_hours_0", "open_hours_6", "slot_minutes", "no_show_fee_pct"}


def test_instrument_rules_are_a_whole_copy_until_reset(session, admin, actor, demo_user, create_instrument):
    instrument, bureau = create_instrument(), demo_user("bureau")
    assert effective_rules(session, instrument) is district_rules(session)
    own = calendar_admin.save_booking_rules(session, actor=actor, user=admin, instrument=instrument,
                                            values={"buffer_minutes": 15, "requires_approval": True})
    assert own.instrument_id == instrument.id and effective_rules(session, instrument) is own
    assert own.buffer_minutes == 15 and own.requires_approval is True
    assert own.open_hours == district_rules(session).open_hours and own.slot_minutes == 30
    calendar_admin.save_booking_rules(session, actor=Actor.of(bureau, None), user=bureau, instrument=None,
                                      values={"slot_minutes": 60, "min_minutes": 60})
    assert effective_rules(session, instrument).slot_minutes == 30, "the district's later changes pass it by"

    assert calendar_admin.reset_booking_rules(session, actor=actor, user=admin, instrument=instrument) is True
    assert calendar_admin.own_rules(session, instrument) is None
    assert effective_rules(session, instrument).slot_minutes == 60
    assert calendar_admin.reset_booking_rules(session, actor=actor, user=admin, instrument=instrument) is False
    assert audit_actions(session, "booking_rules") == ["booking_rules.saved", "booking_rules.saved",
                                                       "booking_rules.reset"]


def test_another_platforms_admin_cannot_set_an_instruments_rules(session, other_admin, create_instrument):
    instrument = create_instrument()
    with pytest.raises(Forbidden):
        calendar_admin.save_booking_rules(session, actor=Actor.of(other_admin, None), user=other_admin,
                                          instrument=instrument, values={"buffer_minutes": 5})
    with pytest.raises(Forbidden):
        calendar_admin.reset_booking_rules(session, actor=Actor.of(other_admin, None), user=other_admin,
                                           instrument=instrument)
    assert session.scalar(select(BookingRules).where(BookingRules.instrument_id == instrument.id)) is None


# --- maintenance --------------------------------------------------------------------------------

def ics(*events: str) -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\n{event.strip()}\r\nEND:VEVENT\r\n" for event in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kequip tests//EN\r\n{body}END:VCALENDAR\r\n".encode()


def stamp(instant: datetime) -> str:
    return to_local(instant).strftime("%Y%m%dT%H%M%S")


def weekly_service(first: datetime, count: int = 4) -> str:
    return (f"UID:pm-weekly@kequip.test\r\nSUMMARY:Preventive maintenance\r\n"
            f"DTSTART;TZID=Asia/Shanghai:{stamp(first)}\r\nDTEND;TZID=Asia/Shanghai:{stamp(first + timedelta(hours=1))}"
            f"\r\nRRULE:FREQ=WEEKLY;COUNT={count}")


def import_ics(session, actor, admin, instrument, data: bytes, *, now=None):
    """As the page does it: the file read first (with no transaction open there), then imported."""
    now = now or utcnow()
    reading = calendar_admin.read_maintenance_ics(
        data, now=now, horizon_days=calendar_admin.maintenance_horizon_days(session, instrument))
    return calendar_admin.import_maintenance_ics(session, actor=actor, user=admin, instrument=instrument,
                                                 reading=reading, now=now)


def test_ics_import_expands_recurring_events_and_reimporting_adds_nothing(session, admin, actor, create_instrument,
                                                                          monday_at):
    instrument, now = create_instrument(), utcnow()
    first = monday_at(7)
    calibration_day = to_local(monday_at(0, days=2)).strftime("%Y%m%d")
    data = ics(weekly_service(first),
               f"UID:calibration@kequip.test\r\nSUMMARY:Calibration\r\nDTSTART;VALUE=DATE:{calibration_day}",
               "UID:old@kequip.test\r\nDTSTART:20200106T010000Z\r\nDTEND:20200106T020000Z",
               f"UID:called-off@kequip.test\r\nSTATUS:CANCELLED\r\nDTSTART;TZID=Asia/Shanghai:{stamp(monday_at(15))}"
               f"\r\nDTEND;TZID=Asia/Shanghai:{stamp(monday_at(16))}")
    result = import_ics(session, actor, admin, instrument, data, now=now)
    windows = calendar_admin.list_maintenance_windows(session, instrument.id, now=now)
    assert [(w.start_at, w.end_at) for w in windows] == [
        (first, first + timedelta(hours=1)), (monday_at(0, days=2), monday_at(0, days=3)),
        *((first + timedelta(weeks=n), first + timedelta(weeks=n, hours=1)) for n in (1, 2, 3))]
    assert (len(result.windows), result.skipped, result.hit) == (5, 0, [])
    assert windows[0].reason == "Preventive maintenance" and windows[1].reason == "Calibration"
    assert windows[0].external_uid == f"pm-weekly@kequip.test/{first:%Y%m%dT%H%M%SZ}"

    again = import_ics(session, actor, admin, instrument, data, now=now)
    assert (again.windows, again.skipped) == ([], 5)
    assert len(calendar_admin.list_maintenance_windows(session, instrument.id, now=now)) == 5
    assert audit_actions(session, "maintenance_windows").count("maintenance_window.added") == 5


def test_ics_import_stops_at_the_booking_horizon(session, admin, actor, create_instrument, monday_at):
    instrument = create_instrument()
    calendar_admin.save_booking_rules(session, actor=actor, user=admin, instrument=instrument,
                                      values={"horizon_days": 20})
    result = import_ics(session, actor, admin, instrument, ics(weekly_service(monday_at(7), count=52)))
    assert 2 <= len(result.windows) <= 3
    assert all(w.start_at < utcnow() + timedelta(days=20) for w in result.windows)


def test_an_ics_import_says_how_far_it_reaches_and_that_a_series_goes_on(session, admin, actor, create_instrument,
                                                                         monday_at):
    instrument, now = create_instrument(), utcnow()
    calendar_admin.save_booking_rules(session, actor=actor, user=admin, instrument=instrument,
                                      values={"horizon_days": 20})
    result = import_ics(session, actor, admin, instrument, ics(weekly_service(monday_at(7), count=52)), now=now)
    assert (result.until, result.cut) == (to_local(now + timedelta(days=20)).date(), True)
    assert {w.series_uid for w in result.windows} == {"pm-weekly@kequip.test"}

    finite = create_instrument()
    result = import_ics(session, actor, admin, finite, ics(weekly_service(monday_at(7), count=2)), now=now)
    assert (result.until, result.cut, len(result.windows)) == (to_local(now + timedelta(days=90)).date(), False, 2)
    far = to_local(now + timedelta(days=200)).strftime("%Y%m%dT%H%M%S")
    single = import_ics(session, actor, admin, create_instrument(), ics(
        f"UID:soon@kequip.test\r\nDTSTART;TZID=Asia/Shanghai:{stamp(monday_at(9))}\r\n"
        f"DTEND;TZID=Asia/Shanghai:{stamp(monday_at(10))}",
        f"UID:far@kequip.test\r\nDTSTART;TZID=Asia/Shanghai:{far}"), now=now)
    assert (len(single.windows), single.cut, single.windows[0].series_uid) == (1, False, None), \
        "a single event past the horizon is no series cut short"


def test_an_imported_series_is_removed_as_one_from_now_on(session, admin, actor, create_instrument, monday_at,
                                                         demo_user, other_admin):
    instrument, now = create_instrument(), utcnow()
    other_series = weekly_service(monday_at(15), count=2).replace("pm-weekly@", "calibration@")
    import_ics(session, actor, admin, instrument, ics(
        weekly_service(monday_at(7), count=4), other_series,
        f"UID:once@kequip.test\r\nDTSTART;TZID=Asia/Shanghai:{stamp(monday_at(11))}\r\n"
        f"DTEND;TZID=Asia/Shanghai:{stamp(monday_at(12))}"), now=now)
    past = MaintenanceWindow(instrument_id=instrument.id, start_at=monday_at(7, weeks=-2),
                             end_at=monday_at(8, weeks=-2), series_uid="pm-weekly@kequip.test",
                             external_uid=f"pm-weekly@kequip.test/{monday_at(7, weeks=-2):%Y%m%dT%H%M%SZ}")
    by_hand = calendar_admin.add_maintenance_window(session, actor=actor, user=admin, instrument=instrument,
                                                    start_at=monday_at(13), end_at=monday_at(14), reason="",
                                                    now=now).windows[0]
    session.add(past)
    session.flush()
    series = [w for w in calendar_admin.list_maintenance_windows(session, instrument.id, now=now)
              if w.series_uid == "pm-weekly@kequip.test"]
    assert len(series) == 4

    with pytest.raises(Forbidden):
        calendar_admin.remove_maintenance_series(session, series[2], actor=Actor.of(other_admin, None),
                                                 user=other_admin, now=now)
    operator = demo_user("operator")
    removed = calendar_admin.remove_maintenance_series(session, series[2], actor=Actor.of(operator, None),
                                                       user=operator, now=now)
    assert sorted(w.start_at for w in removed) == [monday_at(7, weeks=n) for n in (1, 2, 3, 4)]
    left = session.scalars(select(MaintenanceWindow).where(MaintenanceWindow.instrument_id == instrument.id)
                           .order_by(MaintenanceWindow.start_at)).all()
    assert [(w.series_uid, w.start_at) for w in left] == [
        ("pm-weekly@kequip.test", monday_at(7, weeks=-2)), (None, monday_at(11)), (None, monday_at(13)),
        ("calibration@kequip.test", monday_at(15)), ("calibration@kequip.test", monday_at(15, weeks=2))]
    removals = session.execute(select(AuditEntry.subject_id, AuditEntry.actor_id, AuditEntry.before).where(
        AuditEntry.action == "maintenance_window.removed")).all()
    assert sorted(entry.subject_id for entry in removals) == sorted(w.id for w in removed)
    assert all(entry.actor_id == operator.id and entry.before["series_uid"] == "pm-weekly@kequip.test"
               for entry in removals)
    assert refusal(lambda: calendar_admin.remove_maintenance_series(
        session, by_hand, actor=actor, user=admin, now=now)).code == "not_a_series"


@pytest.mark.parametrize(("data", "code"), [
    (b"hello, this is no calendar", "ics_invalid"),
    (b"\xff\xfe\x00binary", "ics_invalid"),
    (b"BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20301201T100000Z\r\nEND:VEVENT\r\n", "ics_invalid"),
    (ics("UID:x\r\nDTSTART:not-a-time"), "ics_invalid"),
    (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nEND:VCALENDAR\r\n", "ics_no_events"),
    (ics("UID:old\r\nDTSTART:20200106T010000Z\r\nDTEND:20200106T020000Z"), "ics_nothing_ahead"),
    (ics("UID:big\r\nDESCRIPTION:" + "x" * (1024 * 1024) + "\r\nDTSTART:20301201T100000Z"), "ics_too_big"),
    (ics("UID:flood\r\nDTSTART:20261201T000000Z\r\nDTEND:20261201T000100Z\r\nRRULE:FREQ=MINUTELY;INTERVAL=2"),
     "ics_too_many"),
])
def test_bad_ics_files_are_refused_clearly(session, admin, actor, create_instrument, data, code):
    instrument = create_instrument()
    error = refusal(lambda: import_ics(session, actor, admin, instrument, data))
    assert (error.code, error.field) == (code, "file")
    assert session.scalar(select(MaintenanceWindow).where(MaintenanceWindow.instrument_id == instrument.id)) is None


def test_a_window_over_bookings_lists_them_and_tells_their_bookers(session, admin, actor, free_instrument, workday_at,
                                                                   book, demo_user):
    hit = book(free_instrument, workday_at(9), workday_at(10))
    spared = book(free_instrument, workday_at(14), workday_at(15))
    before = session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1))
    result = calendar_admin.add_maintenance_window(session, actor=actor, user=admin, instrument=free_instrument,
                                                   start_at=workday_at(9, 30), end_at=workday_at(11),
                                                   reason="更换离子源", now=utcnow())
    assert result.hit == [hit] and result.notified == ["enterprise@kequip.test"]
    assert hit.state == BookingState.CONFIRMED, "the platform decides what becomes of it"
    assert calendar_admin.list_maintenance_conflicts(session, free_instrument.id, now=utcnow()) == [hit]
    mails = session.scalars(select(OutboxMessage).where(OutboxMessage.id > before,
                                                        OutboxMessage.template == "maintenance_conflict")).all()
    assert [(m.to, m.context["booking_id"], m.context["reason"]) for m in mails] == [
        ("enterprise@kequip.test", hit.id, "更换离子源")]
    email = render_mail(mails[0])
    assert str(hit.id) in email["Subject"] and "更换离子源" in email.get_body(("plain",)).get_content()
    assert spared not in calendar_admin.list_maintenance_conflicts(session, free_instrument.id, now=utcnow())

    late = refusal(lambda: book(free_instrument, workday_at(10, 30), workday_at(11, 30)))
    assert late.code == "maintenance"


def test_an_imported_window_over_a_booking_lists_it(session, admin, actor, free_instrument, workday_at, book):
    booking = book(free_instrument, workday_at(9), workday_at(10))
    data = ics(f"UID:repair@kequip.test\r\nDTSTART;TZID=Asia/Shanghai:{stamp(workday_at(8))}\r\n"
               f"DTEND;TZID=Asia/Shanghai:{stamp(workday_at(12))}")
    result = import_ics(session, actor, admin, free_instrument, data)
    assert result.hit == [booking] and result.notified == ["enterprise@kequip.test"]


@pytest.mark.parametrize(("start", "end", "code"), [(10, 9, "invalid_range"), (10, 10, "invalid_range")])
def test_a_window_must_end_after_it_starts(session, admin, actor, create_instrument, monday_at, start, end, code):
    error = refusal(lambda: calendar_admin.add_maintenance_window(
        session, actor=actor, user=admin, instrument=create_instrument(), start_at=monday_at(start),
        end_at=monday_at(end), reason="", now=utcnow()))
    assert (error.code, error.field) == (code, "end_at")


def test_a_window_in_the_past_is_refused(session, admin, actor, create_instrument):
    error = refusal(lambda: calendar_admin.add_maintenance_window(
        session, actor=actor, user=admin, instrument=create_instrument(), start_at=utcnow() - timedelta(days=2),
        end_at=utcnow() - timedelta(days=1), reason="", now=utcnow()))
    assert error.code == "window_in_past"


def test_removing_a_window_frees_its_time(session, admin, actor, free_instrument, workday_at, book, other_admin):
    result = calendar_admin.add_maintenance_window(session, actor=actor, user=admin, instrument=free_instrument,
                                                   start_at=workday_at(9), end_at=workday_at(12), reason="",
                                                   now=utcnow())
    window = result.windows[0]
    with pytest.raises(Forbidden):
        calendar_admin.remove_maintenance_window(session, window, actor=Actor.of(other_admin, None), user=other_admin)
    calendar_admin.remove_maintenance_window(session, window, actor=actor, user=admin)
    assert calendar_admin.list_maintenance_windows(session, free_instrument.id, now=utcnow()) == []
    assert book(free_instrument, workday_at(9), workday_at(10)).state == BookingState.CONFIRMED
    assert audit_actions(session, "maintenance_windows") == ["maintenance_window.added", "maintenance_window.removed"]


def test_another_platforms_admin_adds_no_window(session, other_admin, create_instrument, monday_at):
    with pytest.raises(Forbidden):
        calendar_admin.add_maintenance_window(session, actor=Actor.of(other_admin, None), user=other_admin,
                                              instrument=create_instrument(), start_at=monday_at(9),
                                              end_at=monday_at(10), reason="", now=utcnow())


# --- qualifications -----------------------------------------------------------------------------

def require_qualification(session, admin, actor, instrument, rule: str) -> None:
    calendar_admin.save_booking_rules(session, actor=actor, user=admin, instrument=instrument,
                                      values={"qualification": rule})


def test_only_qualified_users_book_where_the_rule_requires_it(session, admin, actor, free_instrument, workday_at,
                                                              book):
    require_qualification(session, admin, actor, free_instrument, "required")
    assert refusal(lambda: book(free_instrument, workday_at(9), workday_at(10))).code == "not_qualified"

    today = to_local(utcnow()).date()
    calendar_admin.grant_qualification(session, actor=actor, user=admin, instrument=free_instrument,
                                       email=" Enterprise@KEQUIP.test ", expires_on=today + timedelta(days=3),
                                       now=utcnow())
    booking = book(free_instrument, workday_at(9), workday_at(10))
    assert booking.state == BookingState.CONFIRMED and booking.needs_operator is False

    after_expiry = utcnow() + timedelta(days=5)  # the qualification ran out two days ago
    late = refusal(lambda: book(free_instrument, workday_at(9, weeks=2), workday_at(10, weeks=2), now=after_expiry))
    assert late.code == "not_qualified"


def test_unqualified_users_book_with_an_operator_where_the_rule_says_so(session, admin, actor, free_instrument,
                                                                        workday_at, book):
    require_qualification(session, admin, actor, free_instrument, "operator")
    assert book(free_instrument, workday_at(9), workday_at(10)).needs_operator is True
    calendar_admin.grant_qualification(session, actor=actor, user=admin, instrument=free_instrument,
                                       email="enterprise@kequip.test", expires_on=None, now=utcnow())
    assert book(free_instrument, workday_at(14), workday_at(15)).needs_operator is False


def test_granting_again_changes_the_expiry_and_revoking_removes_it(session, admin, actor, create_instrument):
    instrument, today = create_instrument(), to_local(utcnow()).date()
    grant = calendar_admin.grant_qualification(session, actor=actor, user=admin, instrument=instrument,
                                               email="enterprise@kequip.test", expires_on=today, now=utcnow())
    again = calendar_admin.grant_qualification(session, actor=actor, user=admin, instrument=instrument,
                                               email="enterprise@kequip.test", expires_on=None, now=utcnow())
    assert again is grant and grant.expires_on is None
    assert calendar_admin.list_qualifications(session, instrument.id) == [grant]
    calendar_admin.revoke_qualification(session, grant, actor=actor, user=admin)
    assert session.scalar(select(Qualification).where(Qualification.instrument_id == instrument.id)) is None
    assert audit_actions(session, "qualifications") == ["qualification.granted", "qualification.granted",
                                                        "qualification.revoked"]


@pytest.mark.parametrize(("email", "days", "code", "field"), [
    ("nobody@kequip.test", 10, "unknown_user", "email"),
    ("enterprise@kequip.test", -1, "expiry_in_past", "expires_on"),
])
def test_a_qualification_needs_an_account_and_a_future_expiry(session, admin, actor, create_instrument, email, days,
                                                              code, field):
    error = refusal(lambda: calendar_admin.grant_qualification(
        session, actor=actor, user=admin, instrument=create_instrument(), email=email,
        expires_on=to_local(utcnow()).date() + timedelta(days=days), now=utcnow()))
    assert (error.code, error.field) == (code, field)


# --- service terms ------------------------------------------------------------------------------

TERMS = {"scope": "按约定项目提供检测服务。", "confidentiality": "平台对用户数据保密。",
         "intellectual_property": "测试数据归用户所有。", "liability": "因仪器故障未完成的服务不收费。"}


def test_terms_are_versioned_and_a_booking_on_old_terms_is_refused(session, admin, actor, free_instrument,
                                                                    workday_at, book):
    platform = session.get(Platform, free_instrument.platform_id)
    model = bookings.current_terms(session, platform.id)
    assert model.platform_id is None, "until the platform writes its own, the district's model terms apply"
    first = calendar_admin.publish_service_terms(session, actor=actor, user=admin, platform=platform, texts=TERMS,
                                                 now=utcnow())
    second = calendar_admin.publish_service_terms(session, actor=actor, user=admin, platform=platform,
                                                  texts=TERMS | {"liability": "损坏仪器照价赔偿。"}, now=utcnow())
    assert (first.version, second.version) == (1, 2) and first.liability == TERMS["liability"]
    assert bookings.current_terms(session, platform.id) == second
    assert calendar_admin.list_service_terms(session, platform.id) == [second, first]
    assert session.scalar(select(ServiceTerms).where(ServiceTerms.id == model.id)).version == 1

    for old in (model, first):
        stale = refusal(lambda old=old: book(free_instrument, workday_at(9), workday_at(10), terms_id=old.id))
        assert (stale.code, stale.field) == ("terms_changed", "accept_terms")
    booking = book(free_instrument, workday_at(9), workday_at(10), terms_id=second.id)
    assert booking.terms == second
    assert audit_actions(session, "service_terms") == ["service_terms.published"] * 2


def test_terms_need_every_part_and_a_change(session, admin, actor, other_admin):
    platform = session.get(Platform, admin.grants[0].organisation_id)
    empty = refusal(lambda: calendar_admin.publish_service_terms(
        session, actor=actor, user=admin, platform=platform, texts=TERMS | {"scope": " ", "liability": ""},
        now=utcnow()))
    assert empty.code == "invalid_terms" and set(empty.details) == {"scope", "liability"}
    calendar_admin.publish_service_terms(session, actor=actor, user=admin, platform=platform, texts=TERMS,
                                         now=utcnow())
    same = refusal(lambda: calendar_admin.publish_service_terms(session, actor=actor, user=admin, platform=platform,
                                                                texts=TERMS, now=utcnow()))
    assert same.code == "terms_unchanged"
    with pytest.raises(Forbidden):
        calendar_admin.publish_service_terms(session, actor=Actor.of(other_admin, None), user=other_admin,
                                             platform=platform, texts=TERMS | {"scope": "别的"}, now=utcnow())


def test_the_migration_gives_windows_imported_before_their_series(db_kind, new_database, tmp_path):
    """Windows imported before series were kept: those of an event with several occurrences on the
    instrument get its UID as their series; a single event's and a hand-made window get none."""

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=new_database(db_kind, "kequip_series_backfill"),
                     UPLOAD_DIR=str(tmp_path))
    with app.app_context():
        flask_migrate.upgrade()
        load()
        session = db.session
        admin = session.scalar(select(User).where(User.email == "platform@kequip.test"))
        platform = session.get(Platform, admin.grants[0].organisation_id)
        instrument = services.create_instrument(session, platform, admin, actor=Actor.system("test"),
                                                values=instrument_values(session), now=utcnow())
        day = utcnow().replace(microsecond=0) + timedelta(days=3)
        uids = ["pm@kequip.test", "pm@kequip.test", "once@kequip.test", None]
        for n, uid in enumerate(uids):
            start = day + timedelta(weeks=n)
            session.add(MaintenanceWindow(instrument_id=instrument.id, start_at=start, end_at=start + timedelta(hours=1),
                                          external_uid=uid and f"{uid}/{start:%Y%m%dT%H%M%SZ}"))
        session.commit()
        flask_migrate.downgrade(revision="c5d8e2f4a6b1")
        flask_migrate.upgrade()
        rows = session.execute(sa.text("SELECT series_uid FROM maintenance_windows ORDER BY start_at")).scalars().all()
        assert rows == ["pm@kequip.test", "pm@kequip.test", None, None]
        session.remove()
        db.engine.dispose()
