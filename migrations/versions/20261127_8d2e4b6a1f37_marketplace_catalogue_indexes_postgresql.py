"""marketplace: catalogue indexes for PostgreSQL (newest-first browse, index-only counts)

Revision ID: 8d2e4b6a1f37
Revises: 5c1f7a2e9b40
Create Date: 2026-11-27 11:40:00.000000

PostgreSQL only, and left out of the models (core.db.not_modelled): SQLite indexes take no NULLS LAST,
and every SQLite index holds the rowid (the id) already, so ix_instruments_catalogue (state, category_id)
counts from the index alone there.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '8d2e4b6a1f37'
down_revision = '5c1f7a2e9b40'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # the catalogue's default order (newest first): a browse reads the page's ids and stops
    op.execute("CREATE INDEX ix_instruments_catalogue_newest ON instruments "
               "(published_at DESC NULLS LAST, id DESC NULLS LAST) WHERE state IN ('published', 'maintenance')")
    # a browse's count (by state and category, with the free-time filters' NOT IN on the id) from an
    # index-only scan instead of reading every instrument row
    op.execute("CREATE INDEX ix_instruments_catalogue_count ON instruments (state, category_id, id)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_instruments_catalogue_count")
    op.execute("DROP INDEX ix_instruments_catalogue_newest")
