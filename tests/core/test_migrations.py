"""The schema comes only from Alembic: an empty database of each kind upgrades to head, matches the
models exactly, and downgrades to base."""
from __future__ import annotations

import flask_migrate
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from config import TestingConfig
from core.app import create_app
from core.db import include_object
from core.extensions import db


def test_migrations_upgrade_match_models_and_downgrade(db_kind, new_database, tmp_path):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=new_database(db_kind, "kequip_migrations"))
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "include_object": include_object})
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"users", "organisations", "role_grants", "audit_entries", "outbox_messages"} <= tables
        flask_migrate.downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()  # and back up again, as a later deploy would
        db.engine.dispose()


def test_every_constraint_has_a_conventional_name(app):
    for table in db.metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name and str(constraint.name).startswith(("pk_", "fk_", "uq_", "ck_")), \
                f"{table.name}: {constraint!r}"
