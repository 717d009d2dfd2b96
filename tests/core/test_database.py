"""How every connection is set up (core.db), on the database the suite runs on."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core import db as core_db
from core.db import PLAN_FOR_VALUES
from marketplace.models import Instrument


def test_each_connection_is_set_up_for_its_database(session, db_kind):
    """SQLite: foreign keys enforced, waiting for the write lock, the file read through a memory map.
    PostgreSQL: psycopg prepares what a connection runs five times, and the server may then plan it once
    for any values; a statement marked PLAN_FOR_VALUES is never prepared, so planned for its values."""
    if db_kind == "sqlite":
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert session.execute(text("PRAGMA mmap_size")).scalar() == 2147418112
        return
    for price in range(12):
        session.scalar(select(func.count()).select_from(Instrument).where(
            Instrument.hourly_rate_district_enterprise_fen > price), execution_options=PLAN_FOR_VALUES)
        session.scalar(select(func.count()).select_from(Instrument).where(Instrument.original_value_fen > price))
    prepared = list(session.scalars(text("SELECT statement FROM pg_prepared_statements")))
    assert any("original_value_fen" in statement for statement in prepared)  # unmarked: prepared
    assert not any("hourly_rate_district_enterprise_fen" in statement for statement in prepared)


def test_a_postgresql_connection_the_server_closed_while_it_waited_in_the_pool_is_replaced(app, db_kind, monkeypatch):
    """Without the ping the pool would hand the dead connection over and the request's first statement
    would fail; with it, the checkout finds it dead and connects anew."""
    if db_kind == "sqlite":
        return  # a file cannot go away
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    engine, admin = sa.create_engine(url), sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        first = connection.scalar(text("SELECT pg_backend_pid()"))
    with admin.connect() as other:
        assert other.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    monkeypatch.setattr(core_db, "IDLE_BEFORE_PING", 0.0)  # it has waited long enough to be asked
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT pg_backend_pid()")) not in (None, first)
    engine.dispose()
    admin.dispose()


def test_on_postgresql_a_transaction_that_only_read_keeps_the_prepared_statements_and_one_that_wrote_is_undone(
        app, db_kind):
    """psycopg forgets what it prepared at every ROLLBACK: a transaction of SELECTs ends by COMMIT instead
    (core.db._end_reads_by_commit), so a statement read request after request is run prepared. A
    transaction that changed anything is rolled back as before."""
    if db_kind == "sqlite":
        return
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1)
    count = select(func.count()).select_from(Instrument).where(Instrument.original_value_fen > 1)
    for _ in range(6):  # one request each, which reads and ends with the session's close: a rollback
        with Session(engine) as session:
            session.scalar(count)
    with engine.connect() as connection:
        prepared = list(connection.scalars(text("SELECT statement FROM pg_prepared_statements")))
    assert any("original_value_fen" in statement for statement in prepared)
    with Session(engine) as session:
        session.execute(text("CREATE TABLE kequip_probe (n integer)"))
        session.execute(text("INSERT INTO kequip_probe VALUES (1)"))
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT to_regclass('kequip_probe')")) is None  # undone
    engine.dispose()
