"""Catalogue releases: the frozen snapshot and its diff, numbering, immutability, the quarterly job,
the bureau's button, the downloads (with the formula-injection guard), the Atom feed and the API."""
from __future__ import annotations

import csv
import io
import json
import threading
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import flask_migrate
import openpyxl
import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy import func, select

from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.demo import load as load_demo
from core.extensions import db
from core.models import AuditEntry, Platform, User
from core.scheduler import registered_jobs
from marketplace.catalogue import releases
from marketplace.catalogue.jobs import publish_scheduled_release
from marketplace.catalogue.models import CatalogueRelease, CatalogueReleaseItem, ReleaseChange
from marketplace.registry import services
from marketplace.registry.models import CATALOGUE_STATES, Instrument, InstrumentState
from tests.conftest import make_app
from tests.marketplace.conftest import instrument_values

S, C = InstrumentState, ReleaseChange
UTC = timezone.utc
LINE = 300_000_00  # the default large-instrument line: 300,000 yuan
NOW = datetime(2031, 5, 10, 2, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"


def publish(session, demo_user, now: datetime = NOW) -> CatalogueRelease:
    bureau = demo_user("bureau")
    return releases.publish_release(session, actor=Actor.of(bureau, "127.0.0.1"), user=bureau, now=now,
                                    large_line_fen=LINE)


def items_of(session, release) -> dict[int, releases.ReleaseItem]:
    return {item.instrument_id: item for item in releases.release_items(session, release)}


def in_catalogue(items: dict[int, releases.ReleaseItem]) -> set[int]:
    return {i for i, item in items.items() if item.change != C.WITHDRAWN}


# --- the snapshot and its diff ----------------------------------------------------------------

def test_a_release_holds_the_public_catalogue_and_nothing_else(session, create_instrument, demo_user):
    previous = releases.find_latest_release(session)
    before = in_catalogue(items_of(session, previous)) if previous else set()
    published = create_instrument(state=S.PUBLISHED)
    small = create_instrument(state=S.PUBLISHED, original_value_fen=8_000_000)  # 80,000 yuan
    in_maintenance = create_instrument(state=S.MAINTENANCE)
    hidden = [create_instrument(state=state) for state in (S.DRAFT, S.SUBMITTED, S.REJECTED, S.RETIRED)]

    release = publish(session, demo_user)

    items = items_of(session, release)
    catalogue = set(session.scalars(select(Instrument.id).where(Instrument.state.in_(CATALOGUE_STATES))))
    assert in_catalogue(items) == catalogue
    assert {i for i in catalogue - before if items[i].change != C.ADDED} == set()  # new to the catalogue: added
    assert not {instrument.id for instrument in hidden} & set(items)
    assert items[published.id].change == items[in_maintenance.id].change == C.ADDED
    record = items[published.id].record
    assert record == releases.release_record(published, large_line_fen=LINE)
    assert (record["name_zh"], record["category_code"], record["platform_name"], record["state"]) == (
        "液相色谱-质谱联用仪", "0101", published.platform.name, "published")
    assert record["original_value_fen"] == 320_000_000 and record["is_large"] is True
    assert items[small.id].record["is_large"] is False
    assert items[in_maintenance.id].record["state"] == "maintenance"
    assert (release.instrument_count, release.added_count, release.withdrawn_count) == (
        len(catalogue), len(catalogue - before), 0)
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "catalogue_release.published",
                                                    AuditEntry.subject_id == release.id))
    assert entry.actor_id == demo_user("bureau").id and entry.after["number"] == release.number


def test_the_next_release_shows_what_was_added_changed_and_withdrawn(session, create_instrument, demo_user):
    admin, bureau = demo_user("platform"), demo_user("bureau")
    actor, bureau_actor = Actor.of(admin, None), Actor.of(bureau, None)
    untouched = create_instrument(state=S.PUBLISHED)
    changing = create_instrument(state=S.PUBLISHED)
    retiring = create_instrument(state=S.PUBLISHED)
    first = publish(session, demo_user)
    services.update_instrument(session, changing, admin, actor=actor, now=utcnow(),
                               values={"room": "508", "hourly_rate_district_enterprise_fen": 45_000})
    in_review = publish(session, demo_user, NOW + timedelta(days=1))  # a change in review is not public yet
    assert items_of(session, in_review)[changing.id].change == C.UNCHANGED
    assert (in_review.added_count, in_review.changed_count, in_review.withdrawn_count) == (0, 0, 0)

    added = create_instrument(state=S.PUBLISHED)
    services.publish_instrument(session, changing, bureau, actor=bureau_actor, now=utcnow())
    services.retire_instrument(session, retiring, admin, actor=actor)
    second = publish(session, demo_user, NOW + timedelta(days=2))

    items = items_of(session, second)
    assert items[added.id].change == C.ADDED and items[added.id].changed_fields == []
    assert items[changing.id].change == C.CHANGED
    assert items[changing.id].changed_fields == ["room", "hourly_rate_district_enterprise_fen"]
    assert items[changing.id].record["room"] == "508"
    assert [str(label) for label in releases.changed_field_labels(items[changing.id].changed_fields)] == [
        str(releases.FIELD_LABELS["room"]), str(releases.FIELD_LABELS["hourly_rate_district_enterprise_fen"])]
    assert items[untouched.id].change == C.UNCHANGED and items[untouched.id].changed_fields == []
    assert items[retiring.id].change == C.WITHDRAWN
    assert items[retiring.id].record == items_of(session, first)[retiring.id].record  # as last released
    assert (second.added_count, second.changed_count, second.withdrawn_count) == (1, 1, 1)
    assert second.instrument_count == in_review.instrument_count

    third = publish(session, demo_user, NOW + timedelta(days=3))
    assert retiring.id not in items_of(session, third)  # withdrawn once, then gone
    assert (third.added_count, third.changed_count, third.withdrawn_count) == (0, 0, 0)
    assert releases.unchanged_count(third) == third.instrument_count == second.instrument_count


def test_a_category_change_is_one_field_to_people(session, create_instrument, demo_user):
    admin, bureau = demo_user("platform"), demo_user("bureau")
    instrument = create_instrument(state=S.PUBLISHED)
    publish(session, demo_user)
    services.update_instrument(session, instrument, admin, actor=Actor.of(admin, None), now=utcnow(),
                               values={"category_id": services.category_by_code(session, "0102").id})
    services.publish_instrument(session, instrument, bureau, actor=Actor.of(bureau, None), now=utcnow())
    item = items_of(session, publish(session, demo_user, NOW + timedelta(days=1)))[instrument.id]
    assert set(item.changed_fields) == {"category_id", "category_code", "category_name_zh", "category_name_en"}
    assert releases.changed_field_labels(item.changed_fields) == [releases.FIELD_LABELS["category_id"]]


def test_releases_are_numbered_across_years_with_issues_within_each_year(session, create_instrument, demo_user):
    create_instrument(state=S.PUBLISHED)

    def issues_in(year: int) -> int:
        return session.scalar(select(func.count()).select_from(CatalogueRelease).where(CatalogueRelease.year == year))

    in_2031, in_2032 = issues_in(2031), issues_in(2032)
    first = publish(session, demo_user, datetime(2031, 12, 31, 15, 59, tzinfo=UTC))  # 23:59 in Beijing
    second = publish(session, demo_user, datetime(2031, 12, 31, 16, 0, tzinfo=UTC))  # 1 January, 00:00
    third = publish(session, demo_user, datetime(2032, 3, 1, tzinfo=UTC))
    assert [r.number for r in (second, third)] == [first.number + 1, first.number + 2]
    assert [(r.year, r.issue) for r in (first, second, third)] == [(2031, in_2031 + 1), (2032, in_2032 + 1),
                                                                  (2032, in_2032 + 2)]
    with force_locale("en"):
        assert releases.release_label(third) == f"2032 issue {in_2032 + 2}"
    assert releases.list_releases(session)[:3] == [third, second, first]


def test_only_the_bureau_publishes_by_hand(session, create_instrument, demo_user):
    from core.errors import Forbidden

    create_instrument(state=S.PUBLISHED)
    admin = demo_user("platform")
    with pytest.raises(Forbidden):
        releases.publish_release(session, actor=Actor.of(admin, None), user=admin, now=NOW, large_line_fen=LINE)


@pytest.mark.parametrize("statement", [
    lambda release: sa.update(CatalogueRelease).where(CatalogueRelease.id == release.id).values(added_count=0),
    lambda release: sa.delete(CatalogueRelease).where(CatalogueRelease.id == release.id),
    lambda release: sa.update(CatalogueReleaseItem).where(CatalogueReleaseItem.release_id == release.id)
    .values(change="unchanged"),
    lambda release: sa.delete(CatalogueReleaseItem).where(CatalogueReleaseItem.release_id == release.id),
], ids=["update release", "delete release", "update items", "delete items"])
def test_releases_are_immutable_in_the_database(session, create_instrument, demo_user, statement):
    create_instrument(state=S.PUBLISHED)
    release = publish(session, demo_user)
    with pytest.raises(sa.exc.DBAPIError) as refused:
        with session.begin_nested():
            session.execute(statement(release))
    assert "append-only" in str(refused.value)
    assert session.get(CatalogueRelease, release.id).added_count == release.added_count


# --- the quarterly job ------------------------------------------------------------------------

def test_the_scheduled_job_makes_one_release_per_quarter_however_often_it_runs(app, session, create_instrument):
    create_instrument(state=S.PUBLISHED)
    first_day = datetime(2031, 3, 31, 17, 0, tzinfo=UTC)  # 1 April 01:00 in Beijing: Q2
    assert [publish_scheduled_release(now=first_day) for _ in range(3)] == [1, 0, 0]
    assert publish_scheduled_release(now=datetime(2031, 6, 30, 15, 59, tzinfo=UTC)) == 0  # 30 June 23:59
    made = releases.find_release_for_period(session, "2031Q2")
    assert made.published_by_id is None and made.published_at == first_day
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "catalogue_release.published",
                                                    AuditEntry.subject_id == made.id))
    assert entry.actor_label == "job:publish_scheduled_release"

    late = datetime(2031, 8, 20, 9, 0, tzinfo=UTC)  # Q3's first runs missed: the next one makes it
    assert [publish_scheduled_release(now=late) for _ in range(2)] == [1, 0]
    assert releases.find_release_for_period(session, "2031Q3").number == made.number + 1
    job = registered_jobs(app)["publish_scheduled_release"]
    assert job.trigger == "cron" and job.trigger_args["timezone"] == "Asia/Shanghai"


@pytest.fixture(scope="module")
def race_app(db_kind, new_database, smtp_server, tmp_path_factory):
    """A database of its own with committed data: other connections must see each other's work."""
    app = make_app(new_database(db_kind, "kequip_release_race"), smtp_server, tmp_path_factory.mktemp("race"))
    with app.app_context():
        flask_migrate.upgrade()
        load_demo()
        with unit_of_work() as session:
            admin = session.scalar(select(User).where(User.email == "platform@kequip.test"))
            bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
            platform = session.get(Platform, admin.grants[0].organisation_id)
            instrument = services.create_instrument(session, platform, admin, actor=Actor.system("test"), submit=True,
                                                    values=instrument_values(session), now=utcnow())
            services.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.live
def test_two_runs_at_the_same_moment_make_one_release(race_app, db_kind):
    now = datetime(2033, 1, 5, tzinfo=UTC)
    outcomes: list[int] = []
    barrier = threading.Barrier(2, timeout=20)

    def both_insert_together(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("INSERT INTO catalogue_releases ("):
            barrier.wait()  # both have found no release of the quarter and now write theirs

    def run() -> None:
        with race_app.app_context():
            try:
                outcomes.append(publish_scheduled_release(now=now))
            finally:
                db.session.remove()

    with race_app.app_context():
        engine = db.engine
    # SQLite lets one writer in at a time (BEGIN IMMEDIATE), so there the second run waits and finds it made
    if db_kind == "postgresql":
        sa.event.listen(engine, "before_cursor_execute", both_insert_together)
    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        if db_kind == "postgresql":
            sa.event.remove(engine, "before_cursor_execute", both_insert_together)
    assert sorted(outcomes) == [0, 1]
    with race_app.app_context():
        made = db.session.scalars(select(CatalogueRelease).where(CatalogueRelease.period == "2033Q1")).all()
        assert len(made) == 1
        assert db.session.scalar(select(func.count()).select_from(CatalogueReleaseItem)
                                 .where(CatalogueReleaseItem.release_id == made[0].id)) == made[0].instrument_count
        db.session.remove()


# --- pages ------------------------------------------------------------------------------------

def test_the_bureau_publishes_with_the_button_and_others_may_not(session, create_instrument, login_as, client):
    create_instrument(state=S.PUBLISHED)
    bureau = login_as("bureau")
    assert 'action="/catalogue/releases/publish"' in bureau.get("/catalogue/releases").text
    assert 'action="/catalogue/releases/publish"' not in client.get("/catalogue/releases").text
    response = bureau.post("/catalogue/releases/publish")
    latest = releases.find_latest_release(session)
    assert response.status_code == 302 and response.location.endswith(f"/catalogue/releases/{latest.number}")
    page = bureau.get(response.location)
    assert page.status_code == 200 and "液相色谱-质谱联用仪" in page.text
    listing = client.get("/catalogue/releases").text
    assert f'href="/catalogue/releases/{latest.number}"' in listing
    for name in ("platform", "enterprise", "auditor"):
        assert login_as(name).post("/catalogue/releases/publish").status_code == 403
    assert client.post("/catalogue/releases/publish").status_code == 401
    assert releases.find_latest_release(session).number == latest.number


def test_the_release_page_lists_the_changes_with_field_labels(session, create_instrument, demo_user, client):
    admin, bureau = demo_user("platform"), demo_user("bureau")
    changing = create_instrument(state=S.PUBLISHED, name_zh="场发射扫描电镜")
    retiring = create_instrument(state=S.PUBLISHED, name_zh="原子力显微镜")
    publish(session, demo_user)
    create_instrument(state=S.PUBLISHED, name_zh="激光共聚焦显微镜")
    services.update_instrument(session, changing, admin, actor=Actor.of(admin, None), now=utcnow(),
                               values={"sample_requirements": "固体样品，直径小于 2 cm"})
    services.publish_instrument(session, changing, bureau, actor=Actor.of(bureau, None), now=utcnow())
    services.retire_instrument(session, retiring, admin, actor=Actor.of(admin, None))
    second = publish(session, demo_user, NOW + timedelta(days=1))

    page = client.get(f"/catalogue/releases/{second.number}?lang=en")
    assert page.status_code == 200
    added, changed, withdrawn = (page.text.split(f'data-testid="release-{kind}"')[1].split("</section>")[0]
                                 for kind in ("added", "changed", "withdrawn"))
    assert "激光共聚焦显微镜" in added and "场发射扫描电镜" in changed and "原子力显微镜" in withdrawn
    assert "Sample requirements" in changed  # the page was asked for in English
    for fmt in ("xlsx", "csv", "json"):
        assert f'href="/catalogue/releases/{second.number}.{fmt}"' in page.text
    assert client.get("/catalogue/releases/999999").status_code == 404


@pytest.mark.parametrize("path", ["/catalogue/releases/{number}.xlsx", "/catalogue/releases/{number}.json",
                                  "/api/v1/catalogue/releases/latest.csv", "/api/v1/catalogue/releases/latest"])
def test_a_release_file_is_made_with_no_transaction_open(session, create_instrument, demo_user, client,
                                                         transaction_spy, path):
    """On SQLite a transaction holds the write lock from its BEGIN, and anyone may download a release:
    the file is made after the request's reads end."""
    create_instrument(state=S.PUBLISHED)
    release = publish(session, demo_user)
    transaction_spy.watch(releases, "release_download")
    transaction_spy.watch(releases, "release_document")
    assert client.get(path.format(number=release.number)).status_code == 200
    assert transaction_spy.open_at_calls and not any(transaction_spy.open_at_calls)


def test_downloads_open_and_guard_formula_like_cells(session, create_instrument, demo_user, client):
    instrument = create_instrument(state=S.PUBLISHED, name_zh="=HYPERLINK(1)", model="+A1", room="@SUM(1)")
    release = publish(session, demo_user)

    xlsx = client.get(f"/catalogue/releases/{release.number}.xlsx")
    assert xlsx.status_code == 200 and xlsx.mimetype == releases.XLSX_MIMETYPE
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    catalogue, changes = workbook.worksheets
    header = [cell.value for cell in catalogue[1]]
    assert header[:4] == ["仪器编号", "仪器名称", "英文名称", "型号"] and "原值（元）" in header
    row = next(dict(zip(header, (cell.value for cell in r), strict=False)) for r in catalogue.iter_rows(min_row=2)
               if r[0].value == instrument.id)
    assert (row["仪器名称"], row["型号"], row["房间"]) == ("'=HYPERLINK(1)", "'+A1", "'@SUM(1)")
    assert row["原值（元）"] == 3_200_000 and row["大型仪器"] == "是" and row["本期变更"] == "新增"
    assert row["区内企业机时费（元/小时）"] == 400
    assert row["共享方式"] == "开放共享"  # as the import template and the pages name it
    change_rows = [[cell.value for cell in r] for r in changes.iter_rows()]
    assert change_rows[0][:3] == ["变更类型", "仪器编号", "仪器名称"]
    assert ["新增", instrument.id, "'=HYPERLINK(1)"] in [r[:3] for r in change_rows]

    csv_response = client.get(f"/catalogue/releases/{release.number}.csv")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(csv_response.data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["仪器编号", "仪器名称"]
    mine = next(r for r in rows[1:] if r[0] == str(instrument.id))
    assert (mine[1], mine[3]) == ("'=HYPERLINK(1)", "'+A1")
    assert len(rows) - 1 == release.instrument_count + release.withdrawn_count

    document = json.loads(client.get(f"/catalogue/releases/{release.number}.json").data)
    assert document["number"] == release.number and document["counts"]["instruments"] == release.instrument_count
    record = next(i["record"] for i in document["items"] if i["instrument_id"] == instrument.id)
    assert record["name_zh"] == "=HYPERLINK(1)"  # JSON is data, not a spreadsheet: kept as it is


def test_the_atom_feed_lists_the_releases_newest_first(session, create_instrument, demo_user, client):
    create_instrument(state=S.PUBLISHED)
    first = publish(session, demo_user)
    second = publish(session, demo_user, NOW + timedelta(days=90))
    response = client.get("/catalogue/releases.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == session.scalar(select(func.count()).select_from(CatalogueRelease))
    links = [entry.find(f"{ATOM}link").get("href") for entry in entries]
    assert links[:2] == [f"http://localhost/catalogue/releases/{second.number}",
                         f"http://localhost/catalogue/releases/{first.number}"]
    assert entries[0].find(f"{ATOM}title").text == releases.release_label(second)


# --- the API ----------------------------------------------------------------------------------

def test_api_gives_the_latest_release_and_any_by_number(session, create_instrument, demo_user, api_as):
    api = api_as(None)
    assert releases.find_latest_release(session) is None  # the test district starts without releases
    for url in ("/api/v1/catalogue/releases/latest", "/api/v1/catalogue/releases/latest.csv",
                "/api/v1/catalogue/releases/latest.xlsx"):
        missing = api.get(url)
        assert (missing.status_code, missing.json["error"]["code"]) == (404, "not_found")

    kept = create_instrument(state=S.PUBLISHED)
    retired = create_instrument(state=S.PUBLISHED)
    first = publish(session, demo_user)
    services.retire_instrument(session, retired, demo_user("platform"), actor=Actor.system("test"))
    second = publish(session, demo_user, NOW + timedelta(days=1))

    latest = api.get("/api/v1/catalogue/releases/latest")
    assert latest.status_code == 200
    body = latest.json
    assert (body["number"], body["year"], body["issue"], body["period"]) == (second.number, 2031, second.issue, None)
    assert body["counts"] == {"instruments": second.instrument_count, "added": 0, "changed": 0,
                              "unchanged": second.instrument_count, "withdrawn": 1}
    item = next(i for i in body["items"] if i["instrument_id"] == kept.id)
    assert item["change"] == "unchanged" and item["record"]["original_value_fen"] == 320_000_000
    assert [(w["instrument_id"], w["change"]) for w in body["withdrawn"]] == [(retired.id, "withdrawn")]

    by_number = api.get(f"/api/v1/catalogue/releases/{first.number}").json
    assert by_number["number"] == first.number and {i["change"] for i in by_number["items"]} == {"added"}
    missing = api.get("/api/v1/catalogue/releases/999999")
    assert (missing.status_code, missing.json["error"]["code"]) == (404, "not_found")

    as_csv = api.get("/api/v1/catalogue/releases/latest.csv")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    assert as_csv.data.decode("utf-8-sig").startswith("仪器编号,仪器名称")
    as_xlsx = api.get("/api/v1/catalogue/releases/latest.xlsx")
    assert as_xlsx.status_code == 200 and as_xlsx.mimetype == releases.XLSX_MIMETYPE
    assert openpyxl.load_workbook(io.BytesIO(as_xlsx.data)).sheetnames == ["仪器目录", "本期变更"]
