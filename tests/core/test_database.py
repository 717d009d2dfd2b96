"""How every connection is set up (core.db), on the database the suite runs on."""
from __future__ import annotations

from sqlalchemy import func, select, text

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
