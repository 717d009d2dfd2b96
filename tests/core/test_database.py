"""What every connection is set up to do (core.db), on the database the suite runs on."""
from __future__ import annotations

from sqlalchemy import text


def test_each_connection_keeps_the_settings_the_rules_rely_on(session):
    if session.get_bind().dialect.name == "sqlite":
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    else:
        # a statement run again and again is still planned for the values it is given, not once for any
        assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"

