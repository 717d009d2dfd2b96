"""The "district-L" data set: an empty database, the Alembic migrations, the demo district, then
200 platforms, 5,000 enterprises and their people, and 20,000 instruments (bench.instruments) written
with bulk Core inserts (executemany). The instruments' search_text is made as the registry makes it
(marketplace.registry.search.instrument_index_text), and the insert fires the database's own search index:
the FTS5 triggers on SQLite, the GIN index on PostgreSQL. Then 1,000,000 bookings (bench.bookings) with the
usage sessions of the completed ones, timed on their own, and a device token for each of DEVICES free
instruments (the usage API's throughput figure reports their use)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bench.bookings import BOOKINGS, BookingSet
from core.db import utcnow

if TYPE_CHECKING:
    from flask import Flask

    from bench.busy_week import BusyWeek

BENCH_PASSWORD = "kequip-bench"
DEVICES = 64  # free instruments with a device token each: nothing booked ahead, so no booking follows their use

_PLATFORM_TYPES = ("research_institute", "laboratory", "innovation_centre", "technology_centre")
_LEGAL_FORMS = ("public_institution", "private_non_enterprise", "enterprise")
_INDUSTRIES = ("modern_textiles", "new_materials", "biomedicine", "semiconductor_optoelectronics")
_CREDIT_CODE_OFFSET = 100_000  # the demo district uses indexes 1…10 of the same scheme


@dataclass(frozen=True)
class DatasetSize:
    name: str = "district-L"
    platforms: int = 200
    enterprises: int = 5_000
    members_per_enterprise: int = 1
    admins_per_platform: int = 1
    instruments: int = 20_000


@dataclass(frozen=True)
class Account:
    email: str
    name: str


@dataclass(frozen=True)
class CatalogueEntry:
    """A published instrument of the data set, as its public page must show it."""

    id: int
    name_zh: str


@dataclass
class Dataset:
    """What was built, how long it took, and the accounts the benchmarks log in with."""

    size: DatasetSize
    url: str
    schema_seconds: float = 0.0  # migrations + demo district
    bulk_seconds: float = 0.0  # the bulk inserts + ANALYZE
    instrument_seconds: float = 0.0  # of bulk_seconds: the instruments' rows, index text and insert
    counts: dict[str, int] = field(default_factory=dict)
    members: list[Account] = field(default_factory=list)
    admins: list[Account] = field(default_factory=list)  # admins[i] runs the i-th generated platform
    published: list[CatalogueEntry] = field(default_factory=list)  # the generated published instruments
    bookings: BookingSet = field(default_factory=BookingSet)
    busy_week: BusyWeek | None = None  # an instrument with the busiest week (bench.busy_week)
    devices: list[int] = field(default_factory=list)  # instrument ids with a device token (device_secret)

    @property
    def total_seconds(self) -> float:
        return self.schema_seconds + self.bulk_seconds


def credit_code(index: int) -> str:
    """A valid 18-character unified social credit code, computed as core.demo.demo_credit_code does."""
    from core.demo import demo_credit_code

    return demo_credit_code(_CREDIT_CODE_OFFSET + index)


def device_secret(instrument_id: int) -> str:
    """The secret of the generated device token of an instrument: known, so clients can send it."""
    return f"kequip-bench-device-{instrument_id}"


def bench_app(url: str) -> Flask:
    """The app the harness works with in-process, on the database at `url`; the process's garbage
    collector set as a gunicorn worker's (gunicorn.conf.py), so in-process figures run as a request would."""
    from config import Config
    from core.app import create_app, tune_garbage_collector

    app = create_app(Config, SQLALCHEMY_DATABASE_URI=url, SCHEDULER_ENABLED=False, SECRET_KEY="bench",
                     RATELIMIT_STORAGE_URI="memory://")
    tune_garbage_collector()
    return app


def build(url: str, size: DatasetSize = DatasetSize(), *, booking_count: int = BOOKINGS) -> Dataset:
    """Migrate an empty database at `url`, load the demo district, then bulk-insert the data set
    (`booking_count` bookings: fewer make a quicker data set to iterate on)."""
    import flask_migrate

    from bench import bookings, busy_week
    from core import demo
    from core.extensions import db

    app = bench_app(url)
    dataset = Dataset(size=size, url=url)
    with app.app_context():
        try:
            started = time.perf_counter()
            flask_migrate.upgrade()
            demo.load(everything=True)
            dataset.schema_seconds = time.perf_counter() - started

            started = time.perf_counter()
            with db.engine.begin() as connection:
                _bulk_insert(connection, size, dataset)
            # Statistics for the planners, as after any bulk load. In a transaction that commits: on SQLite
            # core.db begins every transaction itself (BEGIN IMMEDIATE), even under AUTOCOMMIT, so an
            # ANALYZE outside one was rolled back and SQLite planned without sqlite_stat1.
            with db.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
            dataset.bulk_seconds = time.perf_counter() - started

            dataset.bookings = bookings.generate(db.engine, members=[account.email for account in dataset.members],
                                                 now=utcnow(), count=booking_count)
            dataset.busy_week = busy_week.add_busy_instrument(db.engine, now=dataset.bookings.now)
            dataset.devices = _device_tokens(db.engine, dataset.bookings.free[:DEVICES], now=dataset.bookings.now)
            dataset.counts = _counts(db.engine)
        finally:
            db.session.remove()
            db.engine.dispose()
    return dataset


def _insert_returning_ids(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> list[int]:
    """One executemany that hands back the new ids in the order of `rows` (SQLAlchemy's insertmanyvalues),
    so the database's own sequence assigns them and stays right for later inserts."""
    statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(connection.execute(statement, rows).scalars())


def _bulk_insert(connection: sa.Connection, size: DatasetSize, dataset: Dataset) -> None:
    from core.auth import hash_password
    from core.models import Enterprise, Organisation, Platform, PlatformIndustry, RoleGrant, User

    organisations, platforms, enterprises = (Organisation.__table__, Platform.__table__, Enterprise.__table__)
    users, grants, industries = User.__table__, RoleGrant.__table__, PlatformIndustry.__table__
    now = utcnow()
    password_hash = hash_password(BENCH_PASSWORD)  # once: every generated account shares it

    platform_ids = _insert_returning_ids(connection, organisations, [
        {"kind": "platform", "name": f"基准平台 {i:04d}", "address": f"柯桥区基准路 {i} 号", "created_at": now}
        for i in range(1, size.platforms + 1)])
    connection.execute(sa.insert(platforms), [
        {"id": pid, "platform_type": _PLATFORM_TYPES[i % 4], "legal_form": _LEGAL_FORMS[i % 3],
         "description": f"基准数据集的第 {i + 1} 个平台"}
        for i, pid in enumerate(platform_ids)])
    connection.execute(sa.insert(industries), [
        {"platform_id": pid, "industry": industry}
        for i, pid in enumerate(platform_ids)
        for industry in sorted({_INDUSTRIES[i % 4], _INDUSTRIES[(i * 7 + 1) % 4]})])

    enterprise_ids = _insert_returning_ids(connection, organisations, [
        {"kind": "enterprise", "name": f"基准企业 {i:05d} 有限公司", "address": f"柯桥区企业路 {i} 号",
         "created_at": now}
        for i in range(1, size.enterprises + 1)])
    connection.execute(sa.insert(enterprises), [
        {"id": eid, "credit_code": credit_code(i), "legal_representative": f"法定代表人 {i:05d}",
         "is_tech_sme": i % 3 == 0,
         # nine in ten verified, the rest waiting for the bureau, as in a running district
         "verification_state": "pending" if i % 10 == 0 else "verified",
         "verified_at": None if i % 10 == 0 else now - timedelta(days=i % 365)}
        for i, eid in enumerate(enterprise_ids, start=1)])

    members = [Account(f"member{i:05d}-{k}@enterprise.bench.test", f"企业用户 {i:05d}-{k}")
               for i in range(1, size.enterprises + 1) for k in range(1, size.members_per_enterprise + 1)]
    admins = [Account(f"admin{i:04d}-{k}@platform.bench.test", f"平台管理员 {i:04d}-{k}")
              for i in range(1, size.platforms + 1) for k in range(1, size.admins_per_platform + 1)]
    user_ids = _insert_returning_ids(connection, users, [
        {"email": account.email, "name": account.name, "password_hash": password_hash, "locale": "zh_CN",
         "is_active": True, "created_at": now}
        for account in members + admins])
    member_orgs = [eid for eid in enterprise_ids for _ in range(size.members_per_enterprise)]
    admin_orgs = [pid for pid in platform_ids for _ in range(size.admins_per_platform)]
    roles = ["enterprise_member"] * len(members) + ["platform_admin"] * len(admins)
    connection.execute(sa.insert(grants), [
        {"user_id": uid, "role": role, "organisation_id": org_id, "granted_at": now}
        for uid, role, org_id in zip(user_ids, roles, member_orgs + admin_orgs, strict=True)])

    dataset.members, dataset.admins = members, admins

    started = time.perf_counter()
    _insert_instruments(connection, size, dataset, platform_ids, now=now)
    dataset.instrument_seconds = time.perf_counter() - started


def _insert_instruments(connection: sa.Connection, size: DatasetSize, dataset: Dataset, platform_ids: list[int],
                        *, now: datetime) -> None:
    """The instruments, spread over the generated platforms and every sub-category, each with the
    search text the registry would give it; inserting the rows fills the search index."""
    from bench.instruments import Vocabulary, instrument_values
    from marketplace.registry.models import Instrument, InstrumentCategory
    from marketplace.registry.search import instrument_index_text

    categories = InstrumentCategory.__table__
    category_ids = {code: category_id for code, category_id in connection.execute(
        sa.select(categories.c.code, categories.c.id).where(categories.c.parent_id.is_not(None)))}
    rows = list(instrument_values(size.instruments, Vocabulary(category_ids, platform_ids), now=now))
    for row in rows:
        row["search_text"] = instrument_index_text(row)
    ids = _insert_returning_ids(connection, Instrument.__table__, rows)
    dataset.published = [CatalogueEntry(instrument_id, row["name_zh"])
                         for instrument_id, row in zip(ids, rows, strict=True) if row["state"] == "published"]


def _device_tokens(engine: sa.Engine, instrument_ids: list[int], *, now: datetime) -> list[int]:
    """A device token (the hash of device_secret) and the monitoring settings for each instrument, made by
    its platform's admin, as monitoring.telemetry.issue_token leaves them; the instruments."""
    from bench.bookings import platform_admins
    from core.auth import hash_secret
    from marketplace.registry.models import Instrument
    from monitoring.models import DeviceToken, InstrumentMonitoring

    instruments = Instrument.__table__
    with engine.begin() as connection:
        platforms = dict(connection.execute(sa.select(instruments.c.id, instruments.c.platform_id)
                                            .where(instruments.c.id.in_(instrument_ids))).all())
        admins = platform_admins(connection)
        connection.execute(sa.insert(InstrumentMonitoring.__table__), [
            {"instrument_id": instrument_id, "offline_after_minutes": 15} for instrument_id in instrument_ids])
        connection.execute(sa.insert(DeviceToken.__table__), [
            {"instrument_id": instrument_id, "label": "基准设备", "token_hash": hash_secret(device_secret(instrument_id)),
             "created_by_id": admins[platforms[instrument_id]], "created_at": now}
            for instrument_id in instrument_ids])
    return instrument_ids


def _counts(engine: sa.Engine) -> dict[str, int]:
    from core.models import Enterprise, Platform, PlatformIndustry, RoleGrant, User
    from marketplace.booking.models import Booking
    from marketplace.payments.models import Payment
    from marketplace.registry.models import CATALOGUE_STATES, Instrument
    from monitoring.models import UsageSession

    tables = {"platforms": Platform.__table__, "enterprises": Enterprise.__table__,
              "platform industries": PlatformIndustry.__table__, "users": User.__table__,
              "role grants": RoleGrant.__table__, "instruments": Instrument.__table__}
    with engine.connect() as connection:
        counts = {label: connection.scalar(sa.select(sa.func.count()).select_from(table))
                  for label, table in tables.items()}
        counts["of them in the catalogue"] = connection.scalar(
            sa.select(sa.func.count()).select_from(Instrument.__table__).where(Instrument.state.in_(CATALOGUE_STATES)))
        for label, table in (("bookings", Booking.__table__), ("payments", Payment.__table__),
                             ("usage sessions", UsageSession.__table__)):
            counts[label] = connection.scalar(sa.select(sa.func.count()).select_from(table))
    return counts
