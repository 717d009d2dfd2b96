"""marketplace: index bookings of an instrument by their end; the state-and-time index covers the free-time filter

Revision ID: 5c1f7a2e9b40
Revises: 17ea8bab0d52
Create Date: 2026-11-27 11:15:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '5c1f7a2e9b40'
down_revision = '17ea8bab0d52'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_instrument_end', ['instrument_id', 'block_end_at', 'start_at', 'state'],
                              unique=False)
        batch_op.drop_index('ix_bookings_state_time')
        batch_op.create_index('ix_bookings_state_time', ['state', 'start_at', 'block_end_at', 'instrument_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_bookings_state_time')
        batch_op.create_index('ix_bookings_state_time', ['state', 'start_at'], unique=False)
        batch_op.drop_index('ix_bookings_instrument_end')
