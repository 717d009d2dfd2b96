"""monitoring: each instrument's figures per local day (instrument_days) and the incremental job's watermark

Revision ID: c389378d033d
Revises: 40587709f230
Create Date: 2026-12-08 03:02:33.528595

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c389378d033d'
down_revision = '40587709f230'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('metrics_watermark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('taken_until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics_watermark'))
    )
    op.create_table('instrument_days',
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('week', sa.Date(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('quarter', sa.Date(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('available_seconds', sa.Integer(), nullable=False),
    sa.Column('booked_seconds', sa.Integer(), nullable=False),
    sa.Column('effective_seconds', sa.Integer(), nullable=False),
    sa.Column('external_seconds', sa.Integer(), nullable=False),
    sa.Column('revenue_enterprise_fen', sa.BigInteger(), nullable=False),
    sa.Column('revenue_voucher_fen', sa.BigInteger(), nullable=False),
    sa.Column('bookings', sa.Integer(), nullable=False),
    sa.Column('no_shows', sa.Integer(), nullable=False),
    sa.Column('cancellations', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_instrument_days_instrument_id_instruments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('instrument_id', 'day', name=op.f('pk_instrument_days'))
    )
    with op.batch_alter_table('instrument_days', schema=None) as batch_op:
        batch_op.create_index('ix_instrument_days_day', ['day'], unique=False)


def downgrade():
    with op.batch_alter_table('instrument_days', schema=None) as batch_op:
        batch_op.drop_index('ix_instrument_days_day')

    op.drop_table('instrument_days')
    op.drop_table('metrics_watermark')
