"""Catalogue releases (定期面向全区发布): numbered, frozen snapshots of the public catalogue
with what was added, changed and withdrawn since the previous release, and their downloads.

A release is written once, with its final counts: the database refuses to update or delete it."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import to_local
from core.errors import Conflict, Forbidden, NotFound, RuleBroken
from core.exports import csv_bytes, xlsx_bytes
from core.models import Organisation, Role, User
from core.money import fen_to_yuan
from marketplace.catalogue.models import CatalogueRelease, CatalogueReleaseItem, ReleaseChange
from marketplace.registry.imports import SHARING_MODE_CHOICES, XLSX_MIMETYPE
from marketplace.registry.models import CATALOGUE_STATES, PUBLIC_FIELDS, Instrument, InstrumentCategory, to_json_value
from marketplace.registry.models import FIELD_LABELS as INSTRUMENT_FIELD_LABELS

# --- the frozen record ------------------------------------------------------------------------

# Labels of the record's keys: the registry's own for the public fields, and those a release adds.
FIELD_LABELS = {**{name: INSTRUMENT_FIELD_LABELS[name] for name in PUBLIC_FIELDS},
                "platform_name": _l("Platform"), "is_large": _l("Large instrument"), "state": _l("Status")}
# Record keys that change together with another one and share its label.
FIELD_ALIASES = {"category_code": "category_id", "category_name_zh": "category_id",
                 "category_name_en": "category_id", "platform_id": "platform_name"}

CHANGE_LABELS = {
    ReleaseChange.ADDED: _l("Added"),
    ReleaseChange.CHANGED: _l("Changed"),
    ReleaseChange.UNCHANGED: _l("Unchanged"),
    ReleaseChange.WITHDRAWN: _l("Withdrawn"),
}


def _record(public: dict[str, Any], *, instrument_id: int, platform_id: int, platform_name: str,
            category_code: str, category_name_zh: str, category_name_en: str, state: Any,
            large_line_fen: int) -> dict[str, Any]:
    return {"id": instrument_id, **public, "platform_id": platform_id, "platform_name": platform_name,
            "category_code": category_code, "category_name_zh": category_name_zh,
            "category_name_en": category_name_en,
            "is_large": public["original_value_fen"] >= large_line_fen, "state": to_json_value(state)}


def release_record(instrument: Instrument, *, large_line_fen: int) -> dict[str, Any]:
    """The frozen public record of an instrument, as a release keeps it (plain JSON values)."""
    return _record(instrument.public_values(), instrument_id=instrument.id, platform_id=instrument.platform_id,
                   platform_name=instrument.platform.name, category_code=instrument.category.code,
                   category_name_zh=instrument.category.name_zh, category_name_en=instrument.category.name_en,
                   state=instrument.state, large_line_fen=large_line_fen)


def _catalogue_records(session: Session, *, large_line_fen: int) -> dict[int, dict[str, Any]]:
    """Every catalogue instrument's record, read as rows (no ORM objects: 20,000 of them must be quick)."""
    table = Instrument.__table__
    stmt = (select(table.c.id, table.c.platform_id, table.c.state, *(table.c[name] for name in PUBLIC_FIELDS),
                   Organisation.name.label("platform_name"), InstrumentCategory.code.label("category_code"),
                   InstrumentCategory.name_zh.label("category_name_zh"),
                   InstrumentCategory.name_en.label("category_name_en"))
            .join(Organisation, Organisation.id == table.c.platform_id)
            .join(InstrumentCategory, InstrumentCategory.id == table.c.category_id)
            .where(table.c.state.in_(CATALOGUE_STATES))
            .order_by(table.c.id))
    records = {}
    for row in session.execute(stmt).mappings():
        public = {name: to_json_value(row[name]) for name in PUBLIC_FIELDS}
        records[row["id"]] = _record(
            public, instrument_id=row["id"], platform_id=row["platform_id"], platform_name=row["platform_name"],
            category_code=row["category_code"], category_name_zh=row["category_name_zh"],
            category_name_en=row["category_name_en"], state=row["state"], large_line_fen=large_line_fen)
    return records


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The record keys whose values differ, in the record's order."""
    keys = [*after, *(key for key in before if key not in after)]
    return [key for key in keys if before.get(key) != after.get(key)]


def changed_field_labels(fields: Iterable[str]) -> list[Any]:
    """Human labels of changed record keys, one per field as a person sees it."""
    canonical = {FIELD_ALIASES.get(name, name) for name in fields}
    return [label for name, label in FIELD_LABELS.items() if name in canonical]


# --- numbering --------------------------------------------------------------------------------

def release_label(release: CatalogueRelease) -> str:
    """"2026年第4期" in Chinese."""
    return _("%(year)d issue %(issue)d", year=release.year, issue=release.issue)


def quarter_period(now: datetime) -> str:
    """The quarter of an instant on the Asia/Shanghai calendar: "2026Q4"."""
    local = to_local(now)
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


# --- reading ----------------------------------------------------------------------------------

def list_releases(session: Session) -> list[CatalogueRelease]:
    """Newest first."""
    return list(session.scalars(select(CatalogueRelease).order_by(CatalogueRelease.number.desc())))


def find_latest_release(session: Session) -> CatalogueRelease | None:
    return session.scalar(select(CatalogueRelease).order_by(CatalogueRelease.number.desc()).limit(1))


def find_release_for_period(session: Session, period: str) -> CatalogueRelease | None:
    return session.scalar(select(CatalogueRelease).where(CatalogueRelease.period == period))


def get_release(session: Session, number: int) -> CatalogueRelease:
    release = session.scalar(select(CatalogueRelease).where(CatalogueRelease.number == number))
    if release is None:
        raise NotFound("not_found", _("There is no such catalogue release."))
    return release


def get_latest_release(session: Session) -> CatalogueRelease:
    release = find_latest_release(session)
    if release is None:
        raise NotFound("not_found", _("No catalogue release has been published yet."))
    return release


def unchanged_count(release: CatalogueRelease) -> int:
    return release.instrument_count - release.added_count - release.changed_count


@dataclass(frozen=True, slots=True)
class ReleaseItem:
    instrument_id: int
    change: ReleaseChange
    changed_fields: list[str]
    record: dict[str, Any]


def release_items(session: Session, release: CatalogueRelease, *, changes: Sequence[ReleaseChange] | None = None,
                  limit: int | None = None) -> list[ReleaseItem]:
    """A release's items in instrument order, optionally of some kinds of change only."""
    item = CatalogueReleaseItem.__table__
    stmt = (select(item.c.instrument_id, item.c.change, item.c.changed_fields, item.c.data)
            .where(item.c.release_id == release.id).order_by(item.c.instrument_id).limit(limit))
    if changes is not None:
        stmt = stmt.where(item.c.change.in_(changes))
    return [ReleaseItem(row.instrument_id, ReleaseChange(row.change), list(row.changed_fields or []), row.data)
            for row in session.execute(stmt)]


# --- publishing -------------------------------------------------------------------------------

def publish_release(session: Session, *, actor: Actor, user: User | None, now: datetime,
                    period: str | None = None, large_line_fen: int) -> CatalogueRelease:
    """Freeze the catalogue as the next numbered release. By hand only the bureau may (user given);
    the scheduled job passes no user and the period it makes the release for (unique: a second
    release for one period raises Conflict with code release_period_taken)."""
    if user is not None and not user.has_role(Role.BUREAU_ADMIN):
        raise Forbidden("forbidden", _("Only the bureau publishes catalogue releases."))
    previous = find_latest_release(session)
    current = _catalogue_records(session, large_line_fen=large_line_fen)
    if previous is None and not current:
        raise RuleBroken("catalogue_empty", _("The catalogue has no instruments yet: there is nothing to release."))
    before = {entry.instrument_id: entry.record
              for entry in (release_items(session, previous) if previous is not None else [])
              if entry.change != ReleaseChange.WITHDRAWN}

    rows: list[dict[str, Any]] = []
    counts = dict.fromkeys(ReleaseChange, 0)
    for instrument_id, record in current.items():
        if instrument_id not in before:
            change, fields = ReleaseChange.ADDED, []
        else:
            fields = changed_fields(before[instrument_id], record)
            change = ReleaseChange.CHANGED if fields else ReleaseChange.UNCHANGED
        counts[change] += 1
        rows.append({"instrument_id": instrument_id, "change": change, "changed_fields": fields, "data": record})
    for instrument_id, record in before.items():
        if instrument_id not in current:
            counts[ReleaseChange.WITHDRAWN] += 1
            rows.append({"instrument_id": instrument_id, "change": ReleaseChange.WITHDRAWN, "changed_fields": [],
                         "data": record})

    year = to_local(now).year
    issue = (session.scalar(select(sa.func.max(CatalogueRelease.issue)).where(CatalogueRelease.year == year)) or 0) + 1
    release = CatalogueRelease(
        number=(previous.number if previous is not None else 0) + 1, year=year, issue=issue, period=period,
        published_at=now, published_by_id=user.id if user is not None else None, instrument_count=len(current),
        added_count=counts[ReleaseChange.ADDED], changed_count=counts[ReleaseChange.CHANGED],
        withdrawn_count=counts[ReleaseChange.WITHDRAWN])
    try:
        with session.begin_nested():  # a release made at the same moment elsewhere takes its number first
            session.add(release)
            session.flush()
    except IntegrityError:
        if period is not None and find_release_for_period(session, period) is not None:
            raise Conflict("release_period_taken", _("The release of %(period)s has been made already.",
                                                     period=period)) from None
        raise Conflict("release_conflict", _("Another release was published at the same moment. Try again.")) from None
    if rows:
        for row in rows:
            row["release_id"] = release.id
        session.execute(sa.insert(CatalogueReleaseItem.__table__), rows)
    record_audit(session, actor, "catalogue_release.published", release,
                 after={"number": release.number, "year": year, "issue": issue, "period": period,
                        "instruments": release.instrument_count, "added": release.added_count,
                        "changed": release.changed_count, "withdrawn": release.withdrawn_count})
    return release


def publish_period_release(session: Session, *, actor: Actor, now: datetime,
                           large_line_fen: int) -> CatalogueRelease | None:
    """The scheduled release of the quarter `now` falls in, unless it exists: at most one per quarter
    however often this runs, and at whatever point of the quarter. None when nothing was made (made
    already, here or by a run at the same moment; or an empty catalogue with nothing released yet)."""
    period = quarter_period(now)
    if find_release_for_period(session, period) is not None:
        return None
    try:
        return publish_release(session, actor=actor, user=None, now=now, period=period,
                               large_line_fen=large_line_fen)
    except Conflict as error:
        if error.code == "release_period_taken":
            return None
        raise
    except RuleBroken as error:
        if error.code == "catalogue_empty":
            return None
        raise


# --- downloads --------------------------------------------------------------------------------

DOWNLOAD_FORMATS = ("xlsx", "csv", "json")

# The files speak the district's language whatever the page's: like the import template, their
# Chinese headers and values are a data format that other systems read, not page text.
_CHANGE_ZH = {ReleaseChange.ADDED: "新增", ReleaseChange.CHANGED: "变更", ReleaseChange.UNCHANGED: "未变",
              ReleaseChange.WITHDRAWN: "撤出"}
_SHARING_ZH = {mode.value: label for label, mode in SHARING_MODE_CHOICES.items()}  # the import template's
_STATE_ZH = {"published": "正常", "maintenance": "维修中"}


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else fen_to_yuan(fen)


def _yes_no(flag: bool | None) -> str:
    return "是" if flag else "否"


def _field(name: str) -> Callable[[dict], Any]:
    return lambda record: record.get(name)


EXPORT_COLUMNS: list[tuple[str, str, Callable[[dict], Any]]] = [
    ("id", "仪器编号", _field("id")),
    ("name_zh", "仪器名称", _field("name_zh")),
    ("name_en", "英文名称", _field("name_en")),
    ("model", "型号", _field("model")),
    ("manufacturer", "生产厂商", _field("manufacturer")),
    ("country_of_origin", "产地国别", _field("country_of_origin")),
    ("category_code", "分类代码", _field("category_code")),
    ("category_name_zh", "分类名称", _field("category_name_zh")),
    ("platform_name", "所属平台", _field("platform_name")),
    ("original_value_fen", "原值（元）", lambda r: _yuan(r.get("original_value_fen"))),
    ("is_large", "大型仪器", lambda r: _yes_no(r.get("is_large"))),
    ("purchased_on", "购置日期", _field("purchased_on")),
    ("is_publicly_funded", "财政资金购置", lambda r: _yes_no(r.get("is_publicly_funded"))),
    ("building", "楼宇", _field("building")),
    ("room", "房间", _field("room")),
    ("sharing_mode", "共享方式", lambda r: _SHARING_ZH.get(r.get("sharing_mode"), r.get("sharing_mode"))),
    ("state", "状态", lambda r: _STATE_ZH.get(r.get("state"), r.get("state"))),
    ("setup_fee_own_staff_fen", "本平台人员开机费（元）", lambda r: _yuan(r.get("setup_fee_own_staff_fen"))),
    ("hourly_rate_own_staff_fen", "本平台人员机时费（元/小时）", lambda r: _yuan(r.get("hourly_rate_own_staff_fen"))),
    ("setup_fee_district_enterprise_fen", "区内企业开机费（元）",
     lambda r: _yuan(r.get("setup_fee_district_enterprise_fen"))),
    ("hourly_rate_district_enterprise_fen", "区内企业机时费（元/小时）",
     lambda r: _yuan(r.get("hourly_rate_district_enterprise_fen"))),
    ("setup_fee_other_fen", "其他用户开机费（元）", lambda r: _yuan(r.get("setup_fee_other_fen"))),
    ("hourly_rate_other_fen", "其他用户机时费（元/小时）", lambda r: _yuan(r.get("hourly_rate_other_fen"))),
    ("capabilities", "检测能力", lambda r: "；".join(r.get("capabilities") or [])),
    ("sample_requirements", "样品要求", _field("sample_requirements")),
    ("description", "仪器简介", _field("description")),
    ("contact_name", "联系人", _field("contact_name")),
    ("contact_phone", "联系电话", _field("contact_phone")),
    ("contact_email", "联系邮箱", _field("contact_email")),
]
CATALOGUE_HEADER = [header for _key, header, _value in EXPORT_COLUMNS]
CHANGES_HEADER = ["变更类型", "仪器编号", "仪器名称", "型号", "所属平台", "变更内容"]


def _changed_headers(fields: Iterable[str]) -> str:
    names = set(fields)
    return "、".join(header for key, header, _value in EXPORT_COLUMNS if key in names)


def release_rows(items: Iterable[ReleaseItem]) -> Iterable[list[Any]]:
    """One row per item: the record's columns, then the change and what changed."""
    for item in items:
        yield [value(item.record) for _key, _header, value in EXPORT_COLUMNS] + [
            _CHANGE_ZH[item.change], _changed_headers(item.changed_fields)]


def change_rows(items: Iterable[ReleaseItem]) -> Iterable[list[Any]]:
    order = {ReleaseChange.ADDED: 0, ReleaseChange.CHANGED: 1, ReleaseChange.WITHDRAWN: 2}
    for item in sorted((i for i in items if i.change in order), key=lambda i: (order[i.change], i.instrument_id)):
        record = item.record
        yield [_CHANGE_ZH[item.change], item.instrument_id, record.get("name_zh"), record.get("model"),
               record.get("platform_name"), _changed_headers(item.changed_fields)]


# A release's files are made from its items read beforehand (release_items): making them needs no
# database, so the caller does it after its transaction has ended (core.db.end_reads).

def release_xlsx(items: list[ReleaseItem]) -> bytes:
    """Sheet 1 the catalogue of the release; sheet 2 what was added, changed and withdrawn."""
    catalogue = [item for item in items if item.change != ReleaseChange.WITHDRAWN]
    return xlsx_bytes([("仪器目录", [*CATALOGUE_HEADER, "本期变更", "变更内容"], release_rows(catalogue)),
                       ("本期变更", CHANGES_HEADER, change_rows(items))])


def release_csv(items: list[ReleaseItem]) -> bytes:
    """Every item of the release: the catalogue, then the withdrawn instruments (本期变更 = 撤出)."""
    ordered = sorted(items, key=lambda item: (item.change == ReleaseChange.WITHDRAWN, item.instrument_id))
    return csv_bytes([*CATALOGUE_HEADER, "本期变更", "变更内容"], release_rows(ordered))


def release_document(release: CatalogueRelease, items: list[ReleaseItem]) -> dict[str, Any]:
    """The release as one JSON document: its metadata, the catalogue items and the withdrawn ones."""

    def entry(item: ReleaseItem) -> dict[str, Any]:
        return {"instrument_id": item.instrument_id, "change": item.change.value,
                "changed_fields": item.changed_fields, "record": item.record}

    return {"number": release.number, "label": release_label(release), "year": release.year,
            "issue": release.issue, "period": release.period, "published_at": release.published_at,
            "counts": {"instruments": release.instrument_count, "added": release.added_count,
                       "changed": release.changed_count, "unchanged": unchanged_count(release),
                       "withdrawn": release.withdrawn_count},
            "items": [entry(item) for item in items if item.change != ReleaseChange.WITHDRAWN],
            "withdrawn": [entry(item) for item in items if item.change == ReleaseChange.WITHDRAWN]}


def release_download(release: CatalogueRelease, items: list[ReleaseItem], fmt: str) -> tuple[bytes, str, str]:
    """(body, mimetype, file name) of a release in one of DOWNLOAD_FORMATS."""
    name = f"catalogue-release-{release.number}.{fmt}"
    if fmt == "xlsx":
        return release_xlsx(items), XLSX_MIMETYPE, name
    if fmt == "csv":
        return release_csv(items), "text/csv", name
    if fmt == "json":
        body = json.dumps(release_document(release, items), ensure_ascii=False, default=to_json_value)
        return body.encode("utf-8"), "application/json", name
    raise NotFound("not_found", _("There is no such download."))
