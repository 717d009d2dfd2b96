"""Database foundations: the declarative base, column types, and the unit of work."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
from sqlalchemy.pool import Pool

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """Stores aware instants as UTC; refuses naive values; returns aware UTC values (SQLite drops tzinfo)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: times are stored as aware UTC instants")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UTCTime = Annotated[datetime, mapped_column(UTCDateTime())]
Fen = Annotated[int, mapped_column(sa.BigInteger)]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def str_enum(enum_class: type[StrEnum], *, name: str | None = None) -> sa.Enum:
    """An enum column storing the lowercase values, with a named CHECK of the allowed ones."""
    return sa.Enum(
        enum_class,
        name=name or enum_class.__name__.lower(),
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@sa.event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    """pysqlite recipe: let SQLAlchemy emit BEGIN itself so SAVEPOINTs nest; enforce foreign keys; let
    readers go on while one writer writes (WAL); wait for the write lock rather than fail. Read the file
    through a memory map (its first 2 GiB, SQLite's largest), from the operating system's cache that
    every worker shares, rather than page by page into a private cache of 2 MB (the catalogue's search figure in
    docs/benchmarks.md needs it)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA mmap_size=2147418112")
        cursor.close()


# A pooled connection idle this long is asked whether the server still has it before it is used again.
IDLE_BEFORE_PING = 10.0  # seconds


@sa.event.listens_for(Pool, "checkin")
def _note_idle(dbapi_connection, connection_record) -> None:
    connection_record.info["idle_since"] = time.monotonic()


@sa.event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    """A PostgreSQL connection that waited in the pool may have been closed meanwhile (a restart of the
    server, a timeout on the way); one given back a moment ago has not. SQLAlchemy's pool_pre_ping asks
    the server before every checkout, a round trip on every request; here only a connection idle for
    IDLE_BEFORE_PING seconds is asked, and a dead one is replaced (DisconnectionError: the pool connects
    anew). A SQLite file cannot go away."""
    idle_since = connection_record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING:
        return
    if type(dbapi_connection).__module__.startswith("psycopg"):
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as error:  # psycopg.OperationalError, or any other sign of a broken connection
            raise sa.exc.DisconnectionError() from error


# An execution option for statements whose best plan depends on the values bound (a search's keywords,
# a range over a growing table): see _plan_for_values.
PLAN_FOR_VALUES = {"plan_for_values": True}


@sa.event.listens_for(Engine, "do_execute")
def _plan_for_values(cursor, statement, parameters, context) -> bool | None:
    """psycopg prepares a statement once a connection has run it five times, and five runs later
    PostgreSQL may keep one plan for any values (a generic plan), blind to the values bound. That suits
    the lookups by key of a booking, which it spares planning; it does not suit a statement marked with
    PLAN_FOR_VALUES, which is run unprepared and so planned for its values each time: a generic plan
    made some keyword searches and the sum of a group's voucher spending for the yearly cap many times
    slower, and the latter slower as the ledger grows."""
    if context.execution_options.get("plan_for_values") and context.dialect.driver == "psycopg":
        cursor.execute(statement, parameters, prepare=False)
        return True
    return None


# The execution option a unit of work sets on its connection: on SQLite its transaction takes the
# write lock when it begins (see _sqlite_on_begin).
WRITES = {"kequip_writes": True}


@sa.event.listens_for(Engine, "begin")
def _sqlite_on_begin(connection: sa.Connection) -> None:
    """On SQLite a unit of work takes the write lock when it begins (BEGIN IMMEDIATE): a check and the
    write that depends on it can never interleave with another writer's, and a transaction never fails
    half-way because a reader became a writer while another wrote. Every other transaction only reads
    (a page, a feed, a report) and begins deferred: it reads a WAL snapshot and never waits for a writer."""
    if connection.dialect.name == "sqlite":
        writes = connection.get_execution_options().get("kequip_writes", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One request's or job's change: a write transaction, committed once at the end, rolled back on
    any error (and the error re-raised). On SQLite a read transaction the caller left open ends first,
    so that the write one begins with the write lock held (objects loaded before are expired and
    reload under it); on PostgreSQL the transaction goes on, and rows are locked where a rule needs it."""
    from core.extensions import db

    session = db.session
    if session().in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.commit()  # only reads happened: this ends the deferred transaction
    if not session().in_transaction():
        session.connection(execution_options=WRITES)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def end_reads(*keep: object) -> None:
    """End the request's transaction, which has only read so far, before slow work (parsing an upload,
    rendering a document): a transaction left open would keep its snapshot for as long as the work takes
    (SQLite cannot checkpoint its WAL past it, PostgreSQL cannot vacuum behind it). What it loaded stays
    in the session, expired, and is read again when next used; the objects in `keep` leave the session
    instead, with what was loaded, so the slow work reads their columns without a query."""
    from core.extensions import db

    for instance in keep:
        db.session.expunge(instance)
    db.session.commit()


def make_append_only(op, table: str) -> None:
    """In a migration: refuse UPDATE and DELETE (and TRUNCATE) on a table, on SQLite and PostgreSQL."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""CREATE OR REPLACE FUNCTION kequip_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION kequip_refuse_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION kequip_refuse_change()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def drop_append_only(op, table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")


def not_modelled(*prefixes: str) -> None:
    """Declare objects made by hand in migrations (an FTS table, an expression index) that the models
    do not describe, so that comparing models with the database leaves them out."""
    Base.metadata.info.setdefault("not_modelled", set()).update(prefixes)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's filter: everything but what not_modelled() declared."""
    return not (name or "").startswith(tuple(Base.metadata.info.get("not_modelled", ())))
