"""The holiday calendar as data: seeded from the chinesecalendar package, computed for a year without an
arrangement, kept by the bureau on its pages (every change audited, a faulty import saving nothing), and
the warning (banner and one mail) from the day the booking horizon reaches a year without one."""
from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone

import chinese_calendar
import pytest
from sqlalchemy import func, select

from core import clock, holidays
from core.audit import Actor
from core.clock import LOCAL_ZONE
from core.errors import RuleBroken
from core.holidays import (
    ArrangementSource,
    DayKind,
    HolidayArrangement,
    HolidayDay,
    HolidayWarning,
    day_kind,
    statutory_holidays,
)
from core.jobs import send_outbox, warn_missing_holidays
from core.models import AuditEntry, OutboxMessage, Role, RoleGrant, User

ARRANGEMENT_2027 = """date,kind,name
2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,放假,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-20,makeup_workday,春节
"""


def local_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=LOCAL_ZONE).astimezone(timezone.utc)


def audit_actions(session, prefix: str = "holiday") -> list[str]:
    return list(session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith(prefix))
                                .order_by(AuditEntry.id)))


def days_of(session, year: int) -> dict[date, tuple[DayKind, str]]:
    rows = session.execute(select(HolidayDay.day, HolidayDay.kind, HolidayDay.name).join(HolidayArrangement)
                           .where(HolidayArrangement.year == year))
    return {day: (kind, name) for day, kind, name in rows}


# --- the seed and the computed years ---------------------------------------------------------------------

def test_the_migration_seeds_every_year_of_the_library(session):
    years = set(session.scalars(select(HolidayArrangement.year)))
    assert years == set(holidays.library_years()) == set(range(2004, 2027))
    assert session.scalar(select(func.count(HolidayDay.id))) == \
        len(chinese_calendar.holidays) + len(chinese_calendar.workdays)
    assert days_of(session, 2026)[date(2026, 10, 1)] == (DayKind.HOLIDAY, "国庆节")
    assert days_of(session, 2026)[date(2026, 10, 10)] == (DayKind.MAKEUP_WORKDAY, "国庆节")
    assert day_kind(date(2026, 10, 1)) == DayKind.HOLIDAY
    assert day_kind(date(2026, 10, 10)) == DayKind.MAKEUP_WORKDAY


def test_the_statutory_days_of_2027_are_computed_from_the_lunar_calendar():
    assert statutory_holidays(2027) == {
        date(2027, 1, 1): "元旦",
        date(2027, 2, 5): "春节", date(2027, 2, 6): "春节", date(2027, 2, 7): "春节", date(2027, 2, 8): "春节",
        date(2027, 4, 5): "清明", date(2027, 5, 1): "劳动节", date(2027, 5, 2): "劳动节", date(2027, 6, 9): "端午",
        date(2027, 9, 15): "中秋", date(2027, 10, 1): "国庆节", date(2027, 10, 2): "国庆节", date(2027, 10, 3): "国庆节"}


@pytest.mark.parametrize("year", range(2008, 2027))  # 清明, 端午 and 中秋 are holidays since 2008
def test_the_computed_days_are_holidays_of_the_state_council_s_arrangements(year):
    """Each computed statutory day of a year the library knows is a holiday there, but 除夕 and 5月2日,
    which became statutory only in 2025 (before, arrangements often made them working days), and a few
    weekend days inside a holiday period that the library leaves out (2012-06-23, 端午)."""
    published = {day for day in chinese_calendar.holidays if day.year == year}
    spring = min(day for day, name in statutory_holidays(year).items() if name == "春节")
    for day in statutory_holidays(year):
        if day not in (spring, date(year, 5, 2)) or year >= 2025:
            assert day in published or day.weekday() >= 5, day


def test_day_kind_at_the_year_boundary(session):
    assert day_kind(date(2026, 12, 31)) == DayKind.ORDINARY  # the 2026 arrangement: a Thursday
    assert day_kind(date(2027, 1, 1)) == DayKind.HOLIDAY  # 2027: no arrangement, 元旦 computed
    assert day_kind(date(2027, 2, 8)) == DayKind.HOLIDAY  # 初三
    assert day_kind(date(2027, 2, 9)) == DayKind.ORDINARY
    assert day_kind(date(2027, 2, 20)) == DayKind.ORDINARY  # a Saturday: no make-up day is known


def test_an_imported_arrangement_replaces_the_computed_days_and_opens_its_make_up_day(session, login_as):
    response = login_as("bureau").post("/holidays/2027/import", data={"text": ARRANGEMENT_2027})
    assert response.status_code == 302
    assert day_kind(date(2027, 1, 1)) == DayKind.HOLIDAY
    assert day_kind(date(2027, 2, 5)) == DayKind.ORDINARY  # 除夕: not in this arrangement
    assert day_kind(date(2027, 2, 9)) == DayKind.HOLIDAY
    assert day_kind(date(2027, 2, 20)) == DayKind.MAKEUP_WORKDAY
    assert day_kind(date(2027, 10, 1)) == DayKind.ORDINARY  # the arrangement lists what the year has
    arrangement = holidays.arrangement_of(session, 2027)
    assert arrangement.source == ArrangementSource.BUREAU and len(arrangement.days) == 6
    assert audit_actions(session) == ["holiday_arrangement.created", "holiday_arrangement.imported"]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "holiday_arrangement.imported"))
    assert entry.after == {"days": 6, "year": 2027} and entry.actor_label == "bureau@kequip.test"


# --- bad input ---------------------------------------------------------------------------------------------

def test_an_import_with_faulty_lines_lists_them_by_line_and_field_and_saves_nothing(session, login_as):
    before = session.scalar(select(func.count(HolidayDay.id)))
    text = ("2027-01-01,holiday,元旦\n"
            "2027-13-01,holiday,春节\n"  # no such month
            "2026-12-31,holiday,元旦\n"  # another year
            "2027-02-08,vacation,春节\n"  # no such kind
            "2027-02-10,makeup_workday,春节\n"  # a Wednesday
            "2027-01-01,holiday,\n")  # twice, and no name
    response = login_as("bureau").post("/holidays/2027/import", data={"text": text})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for expected in ("第 2 行，日期", "第 3 行，日期", "第 4 行，类别", "第 5 行，类别", "第 6 行，日期",
                     "第 6 行，节日"):
        assert expected in page, expected
    assert "第 1 行" not in page
    assert session.scalar(select(func.count(HolidayDay.id))) == before
    assert holidays.arrangement_of(session, 2027) is None
    assert audit_actions(session) == []


def test_an_empty_import_a_year_out_of_range_and_a_binary_file_are_refused(session, login_as):
    from io import BytesIO

    client = login_as("bureau")
    assert client.post("/holidays/2027/import", data={"text": "date,kind,name\n"}).status_code == 422
    assert client.post("/holidays/3000/import", data={"text": ARRANGEMENT_2027}).status_code == 404
    response = client.post("/holidays/2027/import", data={"file": (BytesIO(b"\xff\xfe\x00bad"), "a.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and "UTF-8" in response.get_data(as_text=True)
    assert holidays.arrangement_of(session, 2027) is None


def test_a_csv_file_imports_like_pasted_text(session, login_as):
    from io import BytesIO

    data = {"file": (BytesIO(("\ufeff" + ARRANGEMENT_2027).encode()), "2027.csv")}
    response = login_as("bureau").post("/holidays/2027/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    assert days_of(session, 2027)[date(2027, 2, 20)] == (DayKind.MAKEUP_WORKDAY, "春节")


# --- the bureau's day-by-day changes, each audited --------------------------------------------------------

def test_a_day_added_to_a_computed_year_starts_its_arrangement_from_the_computed_days(session, login_as):
    client = login_as("bureau")
    response = client.post("/holidays/days", data={"day": "2027-02-20", "kind": "makeup_workday", "name": "春节"})
    assert response.status_code == 302
    recorded = days_of(session, 2027)
    assert len(recorded) == len(statutory_holidays(2027)) + 1
    assert recorded[date(2027, 2, 5)] == (DayKind.HOLIDAY, "春节")
    assert day_kind(date(2027, 2, 20)) == DayKind.MAKEUP_WORKDAY
    # the same day again: the error stands beside the date, nothing changes
    again = client.post("/holidays/days", data={"day": "2027-02-20", "kind": "holiday", "name": "春节"})
    assert again.status_code == 422 and "已在日历中" in again.get_data(as_text=True)
    assert client.post("/holidays/days", data={"day": "2027-03-01", "kind": "holiday", "name": ""}).status_code == 422
    assert client.post("/holidays/days", data={"day": "1800-01-01", "kind": "holiday", "name": "x"}).status_code == 422
    assert audit_actions(session) == ["holiday_arrangement.created", "holiday_day.added"]


def test_a_day_changed_and_removed_is_audited_with_before_and_after(session, login_as):
    client = login_as("bureau")
    row = session.scalar(select(HolidayDay).where(HolidayDay.day == date(2026, 10, 10)))
    assert client.get(f"/holidays/days/{row.id}").status_code == 200
    response = client.post(f"/holidays/days/{row.id}", data={"kind": "holiday", "name": "国庆节"})
    assert response.status_code == 302
    assert day_kind(date(2026, 10, 10)) == DayKind.HOLIDAY
    assert client.post(f"/holidays/days/{row.id}/remove").status_code == 302
    assert day_kind(date(2026, 10, 10)) == DayKind.ORDINARY  # 2026 has an arrangement: nothing is computed
    assert holidays.arrangement_of(session, 2026).source == ArrangementSource.BUREAU
    changed, removed = (session.scalar(select(AuditEntry).where(AuditEntry.action == action))
                        for action in ("holiday_day.updated", "holiday_day.removed"))
    assert changed.before == {"day": "2026-10-10", "kind": "makeup_workday", "name": "国庆节"}
    assert changed.after == {"day": "2026-10-10", "kind": "holiday", "name": "国庆节"}
    assert removed.before == changed.after and removed.subject_id == row.id


def test_only_the_bureau_keeps_the_calendar(session, login_as):
    row_id = session.scalar(select(HolidayDay.id).where(HolidayDay.day == date(2026, 10, 10)))
    for who in ("enterprise", "platform", "auditor"):
        client = login_as(who)
        assert client.get("/holidays/").status_code == 403
        assert client.post(f"/holidays/days/{row_id}/remove").status_code == 403
        assert client.post("/holidays/2027/import", data={"text": ARRANGEMENT_2027}).status_code == 403
    assert day_kind(date(2026, 10, 10)) == DayKind.MAKEUP_WORKDAY


def test_the_calendar_page_shows_a_computed_year_and_the_navigation_links_it(session, login_as):
    page = login_as("bureau").get("/holidays/?year=2027").get_data(as_text=True)
    assert "节假日日历" in page and 'href="/holidays/"' in page
    assert "按农历计算，无安排" in page and "2027-02-05" in page
    assert login_as("bureau").get("/holidays/?year=99999").status_code == 200  # this year's, not a 500


# --- the warning ---------------------------------------------------------------------------------------------

@pytest.fixture
def reach_day(session):
    """The first local day whose booking horizon reaches 2027-01-01."""
    return date(2027, 1, 1) - timedelta(days=holidays.booking_horizon(session))


def test_the_banner_shows_from_the_day_the_horizon_reaches_the_year(session, login_as, monkeypatch, reach_day):
    bureau = login_as("bureau")
    monkeypatch.setattr(clock, "utcnow", lambda: local_noon(reach_day - timedelta(days=1)))
    assert 'data-testid="holiday-warning"' not in bureau.get("/dashboard").get_data(as_text=True)
    monkeypatch.setattr(clock, "utcnow", lambda: local_noon(reach_day))
    page = bureau.get("/dashboard").get_data(as_text=True)
    assert 'data-testid="holiday-warning"' in page and "2027" in page
    assert 'data-testid="holiday-warning"' not in login_as("enterprise").get("/dashboard").get_data(as_text=True)
    bureau.post("/holidays/2027/import", data={"text": ARRANGEMENT_2027})
    assert 'data-testid="holiday-warning"' not in bureau.get("/dashboard").get_data(as_text=True)


def test_the_bureau_is_mailed_once_per_year_without_an_arrangement(session, mailbox, reach_day):
    admins = set(session.scalars(select(User.email).join(RoleGrant).where(RoleGrant.role == Role.BUREAU_ADMIN)))
    assert warn_missing_holidays(now=local_noon(reach_day - timedelta(days=1))) == 0
    assert warn_missing_holidays(now=local_noon(reach_day)) == len(admins) > 0
    assert warn_missing_holidays(now=local_noon(reach_day)) == 0  # the same day again
    assert warn_missing_holidays(now=local_noon(reach_day + timedelta(days=1))) == 0  # and the next
    assert session.scalars(select(HolidayWarning.year)).all() == [2027]
    queued = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "holidays_missing")).all()
    assert {message.to for message in queued} == admins
    assert send_outbox() >= len(admins)
    mail = mailbox.wait_for("bureau@kequip.test")
    assert "2027" in mail["Subject"] and "2027-02-05 春节" in mail.get_body(("plain",)).get_content()


def test_a_year_arranged_before_the_horizon_reaches_it_is_never_mailed(session, reach_day):
    holidays.import_arrangement(session, 2027, holidays.read_arrangement(ARRANGEMENT_2027, year=2027),
                                actor=Actor.system("test"), now=local_noon(reach_day))
    assert warn_missing_holidays(now=local_noon(reach_day)) == 0
    assert holidays.years_without_arrangement(session, now=local_noon(reach_day)) == []


# --- concurrent changes ---------------------------------------------------------------------------------------

@pytest.mark.live
def test_concurrent_first_days_of_a_year_begin_one_arrangement_and_a_day_is_added_once(live_app):
    """Bureau staff enter days of 2028 (no arrangement yet) at the same moment: one arrangement begins,
    every other day joins it; the same day entered at once is added once, the others refused."""
    from core.db import unit_of_work
    from core.extensions import db

    def clear() -> None:
        with live_app.app_context():
            with unit_of_work() as session:
                session.execute(HolidayArrangement.__table__.delete().where(HolidayArrangement.year == 2028))
            db.session.remove()
        holidays.forget_calendar()  # a bulk delete passes no flush

    def race(days: list[date]) -> list[str]:
        outcomes: list[str] = []
        barrier = threading.Barrier(len(days))

        def add(day: date) -> None:
            with live_app.app_context():
                barrier.wait()
                try:
                    with unit_of_work() as session:
                        holidays.add_day(session, actor=Actor.system("test"), now=local_noon(date(2027, 11, 1)),
                                         day=day, kind=DayKind.HOLIDAY, name="测试")
                    outcomes.append("added")
                except RuleBroken as error:
                    outcomes.append(error.code)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=add, args=(day,)) for day in days]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return sorted(outcomes)

    clear()
    with live_app.app_context():
        audited_before = db.session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))
        db.session.remove()
    try:
        assert race([date(2028, 3, n) for n in range(6, 12)]) == ["added"] * 6
        assert race([date(2028, 3, 20)] * 4) == ["added"] + ["holiday_day_taken"] * 3
        with live_app.app_context():
            assert len(days_of(db.session, 2028)) == len(statutory_holidays(2028)) + 7
            created = db.session.scalar(select(func.count(AuditEntry.id)).where(
                AuditEntry.action == "holiday_arrangement.created", AuditEntry.id > audited_before))
            assert created == 1
            db.session.remove()
    finally:
        clear()
