"""How every connection is set up (core.db), on the database the suite runs on."""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core import db as core_db
from core.db import PLAN_FOR_VALUES, WRITES, unit_of_work
from core.extensions import db
from marketplace.registry.models import Instrument
from tests.conftest import only_postgresql, only_sqlite


@only_sqlite
def test_each_sqlite_connection_enforces_keys_waits_for_the_write_lock_and_maps_the_file(session):
    assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    assert session.execute(text("PRAGMA mmap_size")).scalar() == 2147418112


@only_postgresql
def test_a_postgresql_statement_marked_plan_for_values_is_never_prepared(session):
    """psycopg prepares what a connection runs five times, and the server may then plan it once for any
    values; a statement marked PLAN_FOR_VALUES is never prepared, so planned for its values."""
    for price in range(12):
        session.scalar(select(func.count()).select_from(Instrument).where(
            Instrument.hourly_rate_district_enterprise_fen > price), execution_options=PLAN_FOR_VALUES)
        session.scalar(select(func.count()).select_from(Instrument).where(Instrument.original_value_fen > price))
    prepared = list(session.scalars(text("SELECT statement FROM pg_prepared_statements")))
    assert any("original_value_fen" in statement for statement in prepared)  # unmarked: prepared
    assert not any("hourly_rate_district_enterprise_fen" in statement for statement in prepared)


@only_postgresql
def test_a_postgresql_connection_the_server_closed_while_it_waited_in_the_pool_is_replaced(app, monkeypatch):
    """Without the ping the pool would hand the dead connection over and the request's first statement
    would fail; with it, the checkout finds it dead and connects anew."""
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


@pytest.mark.live
@only_sqlite
def test_on_sqlite_a_read_goes_on_while_a_unit_of_work_holds_the_write_lock(live_app):
    """A unit of work begins IMMEDIATE and holds the write lock until it ends; a page that only reads
    begins deferred and reads its snapshot at once instead of waiting behind it."""
    holding, release, seen = threading.Event(), threading.Event(), []

    def writer() -> None:
        with live_app.app_context():
            try:
                with unit_of_work() as session:
                    session.execute(text("UPDATE instruments SET updated_at = updated_at WHERE id = -1"))
                    holding.set()
                    release.wait(10)
            finally:
                db.session.remove()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        with live_app.app_context():
            started = time.monotonic()
            seen.append(db.session.scalar(select(func.count()).select_from(Instrument)))
            waited = time.monotonic() - started
            db.session.remove()
        engine = sa.create_engine(live_app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
        with engine.connect() as other:
            other.connection.dbapi_connection.execute("PRAGMA busy_timeout=50")
            with pytest.raises(sa.exc.OperationalError, match="locked"):  # a second writer waits for it
                other.execution_options(**WRITES).begin()
        engine.dispose()
    finally:
        release.set()
        thread.join()
    assert seen[0] >= 0 and waited < 1.0  # before, every transaction waited here for the write lock


@only_postgresql
def test_on_postgresql_a_read_only_transaction_ends_by_rollback(app):
    """Transaction endings mean what they say: what a session read and then left is rolled back, and so
    is anything it changed without a unit of work."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1)
    ended: list[str] = []
    sa.event.listen(engine, "rollback", lambda connection: ended.append("rollback"))
    sa.event.listen(engine, "commit", lambda connection: ended.append("commit"))
    with Session(engine) as session:
        session.scalar(select(func.count()).select_from(Instrument))
    with Session(engine) as session:
        session.execute(text("CREATE TABLE kequip_probe (n integer)"))
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT to_regclass('kequip_probe')")) is None  # undone
    assert ended == ["rollback", "rollback", "rollback"]
    engine.dispose()
