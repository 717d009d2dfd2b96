"""marketplace: catalogue indexes: counts and the platforms filter from the index alone; PostgreSQL's newest-first order

Revision ID: 8d2e4b6a1f37
Revises: 5c1f7a2e9b40
Create Date: 2026-11-27 11:40:00.000000

The newest-first index is PostgreSQL's only, and left out of the models (core.db.not_modelled): SQLite
indexes take no NULLS LAST (SQLite reads ix_instruments_published_at backwards).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '8d2e4b6a1f37'
down_revision = '5c1f7a2e9b40'
branch_labels = None
depends_on = None

CATALOGUE_COLUMNS = ['state', 'category_id', 'original_value_fen', 'hourly_rate_district_enterprise_fen',
                     'sharing_mode', 'platform_id', 'id']


def upgrade():
    with op.batch_alter_table('instruments', schema=None) as batch_op:
        batch_op.drop_index('ix_instruments_catalogue')
        batch_op.create_index('ix_instruments_catalogue', CATALOGUE_COLUMNS, unique=False)
        batch_op.drop_index('ix_instruments_platform_id')
        batch_op.create_index('ix_instruments_platform_id', ['platform_id', 'state'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # the catalogue's default order (newest first): a browse reads the page's ids and stops
        op.execute("CREATE INDEX ix_instruments_catalogue_newest ON instruments "
                   "(published_at DESC NULLS LAST, id DESC NULLS LAST) WHERE state IN ('published', 'maintenance')")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_instruments_catalogue_newest")
    with op.batch_alter_table('instruments', schema=None) as batch_op:
        batch_op.drop_index('ix_instruments_platform_id')
        batch_op.create_index('ix_instruments_platform_id', ['platform_id'], unique=False)
        batch_op.drop_index('ix_instruments_catalogue')
        batch_op.create_index('ix_instruments_catalogue', ['state', 'category_id'], unique=False)
