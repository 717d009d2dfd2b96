"""booking: the no-overlap guarantee covers completed bookings too

Revision ID: c5d8e2f4a6b1
Revises: b7e3d1a9c4f2
Create Date: 2026-12-09 10:00:00.000000

PostgreSQL's exclusion constraint ex_bookings_no_overlap is recreated with completed bookings in its
WHERE: a slot once used is never booked again. SQLite has no such constraint; there the booking service's
check under the write lock carries the rule.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c5d8e2f4a6b1'
down_revision = 'b7e3d1a9c4f2'
branch_labels = None
depends_on = None

ACTIVE = ('requested', 'approved', 'confirmed', 'in_progress')


def _exclude_overlaps(states: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
    op.execute("ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
               "(instrument_id WITH =, tstzrange(start_at, block_end_at, '[)') WITH &&) "
               "WHERE (state IN (" + ", ".join(f"'{state}'" for state in states) + "))")


def upgrade():
    _exclude_overlaps((*ACTIVE, 'completed'))


def downgrade():
    _exclude_overlaps(ACTIVE)
