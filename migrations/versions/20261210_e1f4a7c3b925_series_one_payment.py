"""booking: a weekly series keeps why each week was skipped and is paid by one intent

Revision ID: e1f4a7c3b925
Revises: e3b9a1c7d5f2
Create Date: 2026-12-10 02:00:00.000000

booking_series.skip_codes maps each skipped occurrence to the code of the rule that refused it.
payments.group_key names the one gateway intent several payments (the bookings of a series) share, so
payments.intent_id is no longer unique.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e1f4a7c3b925'
down_revision = 'e3b9a1c7d5f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('booking_series', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skip_codes', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_key', sa.String(length=100), nullable=True))
        batch_op.drop_constraint('uq_payments_intent_id', type_='unique')
        batch_op.create_index(batch_op.f('ix_payments_intent_id'), ['intent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_group_key'), ['group_key'], unique=False)


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_group_key'))
        batch_op.drop_index(batch_op.f('ix_payments_intent_id'))
        batch_op.create_unique_constraint('uq_payments_intent_id', ['intent_id'])
        batch_op.drop_column('group_key')
    with op.batch_alter_table('booking_series', schema=None) as batch_op:
        batch_op.drop_column('skip_codes')
