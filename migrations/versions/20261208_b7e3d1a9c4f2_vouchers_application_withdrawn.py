"""vouchers: an application may be withdrawn by its enterprise while it waits (state 'withdrawn')

Revision ID: b7e3d1a9c4f2
Revises: 4f2a9c7e1b63
Create Date: 2026-12-08 01:30:00.000000

The state column's named CHECK of allowed values is recreated with the new value (batch mode: SQLite
copies the table, PostgreSQL alters it). Downgrading turns withdrawn applications into rejected ones
with a note, so that the narrower CHECK (and "a rejection has a reason") still holds.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e3d1a9c4f2'
down_revision = '4f2a9c7e1b63'
branch_labels = None
depends_on = None

NAME = 'ck_voucher_applications_applicationstate'


def _allow(states: tuple[str, ...]) -> None:
    with op.batch_alter_table('voucher_applications', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_='check')
        batch_op.create_check_constraint(op.f(NAME), sa.text(
            "state IN (" + ", ".join(f"'{state}'" for state in states) + ")"))


def upgrade():
    _allow(('submitted', 'approved', 'rejected', 'withdrawn'))


def downgrade():
    op.execute("UPDATE voucher_applications SET state = 'rejected', decision_note = 'withdrawn' "
               "WHERE state = 'withdrawn'")
    _allow(('submitted', 'approved', 'rejected'))
