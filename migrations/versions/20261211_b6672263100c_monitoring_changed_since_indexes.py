"""monitoring: bookings and usage sessions indexed by updated_at, so the metrics roll-up finds what changed
since its last run without reading them all

Revision ID: b6672263100c
Revises: 2aa9c0ec65f1
Create Date: 2026-12-08 03:58:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b6672263100c'
down_revision = '2aa9c0ec65f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_updated_at', ['updated_at'], unique=False)
    with op.batch_alter_table('usage_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_usage_sessions_updated_at', ['updated_at'], unique=False)


def downgrade():
    with op.batch_alter_table('usage_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_sessions_updated_at')
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_bookings_updated_at')
