"""booking: the check-in window, a booking rule (minutes around the start; the district's default 15)

Revision ID: d2f6a8c3e5b7
Revises: d1e6a3b9c7f4
Create Date: 2026-12-10 02:50:00.000000

Check-in opens this long before a booking's start; after the start by as much a check-in is late and the
booking may be marked a no-show. Every existing row (the district's defaults and each instrument's own
rules) gets 15 minutes.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd2f6a8c3e5b7'
down_revision = 'd1e6a3b9c7f4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('booking_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('check_in_window_minutes', sa.Integer(), server_default='15', nullable=False))
        batch_op.create_check_constraint(op.f('ck_booking_rules_check_in_window_not_negative'),
                                         sa.text('check_in_window_minutes >= 0'))


def downgrade():
    with op.batch_alter_table('booking_rules', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_booking_rules_check_in_window_not_negative'), type_='check')
        batch_op.drop_column('check_in_window_minutes')
