"""marketplace: instruments by price, state, publication and id: a price range's count and page from the index alone

Revision ID: 3b7c9e2d4a58
Revises: 8d2e4b6a1f37
Create Date: 2026-11-27 13:40:00.000000

The single-column price index is its first column: the new one replaces it.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '3b7c9e2d4a58'
down_revision = '8d2e4b6a1f37'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('instruments', schema=None) as batch_op:
        batch_op.drop_index('ix_instruments_hourly_rate_district_enterprise_fen')
        batch_op.create_index('ix_instruments_price', ['hourly_rate_district_enterprise_fen', 'state', 'published_at',
                                                       'id'], unique=False)


def downgrade():
    with op.batch_alter_table('instruments', schema=None) as batch_op:
        batch_op.drop_index('ix_instruments_price')
        batch_op.create_index('ix_instruments_hourly_rate_district_enterprise_fen',
                              ['hourly_rate_district_enterprise_fen'], unique=False)
