"""booking: the cancellation terms are fixed on the booking when it is made; a payment records what of
its authorisation was released uncharged

Revision ID: e3b9a1c7d52f
Revises: fc7e4c01ba44
Create Date: 2026-12-10 02:40:00.000000

bookings gets free_cancel_until, late_cancel_fee_fen and no_show_fee_fen, filled for the bookings made
before from the rules that apply to them now (the instrument's own, else the district's), then made NOT
NULL with their CHECK; payments gets released_fen (0 for what came before: only new settlements know it).
"""
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'e3b9a1c7d52f'
down_revision = 'fc7e4c01ba44'
branch_labels = None
depends_on = None

bookings = sa.table('bookings', sa.column('id', sa.Integer), sa.column('instrument_id', sa.Integer),
                    sa.column('start_at', UTCDateTime()), sa.column('price_fen', sa.BigInteger),
                    sa.column('payable_fen', sa.BigInteger), sa.column('free_cancel_until', UTCDateTime()),
                    sa.column('late_cancel_fee_fen', sa.BigInteger), sa.column('no_show_fee_fen', sa.BigInteger))
rules = sa.table('booking_rules', sa.column('instrument_id', sa.Integer), sa.column('free_cancel_hours', sa.Integer),
                 sa.column('late_cancel_fee_pct', sa.Integer), sa.column('no_show_fee_pct', sa.Integer))


def _fill_terms() -> None:
    connection = op.get_bind()
    by_instrument = {row.instrument_id: row for row in connection.execute(sa.select(rules))}
    district = by_instrument[None]
    for booking in connection.execute(sa.select(bookings)).all():
        rule = by_instrument.get(booking.instrument_id, district)
        connection.execute(bookings.update().where(bookings.c.id == booking.id).values(
            free_cancel_until=booking.start_at - timedelta(hours=rule.free_cancel_hours),
            late_cancel_fee_fen=min(booking.price_fen * rule.late_cancel_fee_pct // 100, booking.payable_fen),
            no_show_fee_fen=min(booking.price_fen * rule.no_show_fee_pct // 100, booking.payable_fen)))


def upgrade():
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('free_cancel_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('late_cancel_fee_fen', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('no_show_fee_fen', sa.BigInteger(), nullable=True))
    _fill_terms()
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        for name in ('free_cancel_until', 'late_cancel_fee_fen', 'no_show_fee_fen'):
            batch_op.alter_column(name, nullable=False)
        batch_op.create_check_constraint(op.f('ck_bookings_cancellation_fees_within_share'), sa.text(
            'late_cancel_fee_fen BETWEEN 0 AND payable_fen AND no_show_fee_fen BETWEEN 0 AND payable_fen'))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_fen', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.create_check_constraint(op.f('ck_payments_release_within_amount'), sa.text(
            'released_fen >= 0 AND captured_fen + released_fen <= amount_fen'))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.alter_column('released_fen', server_default=None)


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_release_within_amount'), type_='check')
        batch_op.drop_column('released_fen')
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_bookings_cancellation_fees_within_share'), type_='check')
        batch_op.drop_column('no_show_fee_fen')
        batch_op.drop_column('late_cancel_fee_fen')
        batch_op.drop_column('free_cancel_until')
