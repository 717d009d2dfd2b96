"""core: the public-holiday calendar as data (each year's arrangement and its days), seeded from the
chinesecalendar package for every year it covers; the years the bureau was warned about

Revision ID: e3b9a1c7d5f2
Revises: e3b9a1c7d52f
Create Date: 2026-12-10 09:00:00.000000

The seed is the package's copy of the State Council's notices, read here once: later versions of the
package change nothing in the table, which the bureau keeps from then on.
"""
from datetime import datetime, timezone

import chinese_calendar
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e3b9a1c7d5f2'
down_revision = 'e3b9a1c7d52f'
branch_labels = None
depends_on = None

DAY_KIND = sa.Enum('ordinary', 'holiday', 'makeup_workday', name='daykind', native_enum=False,
                   create_constraint=True, length=32)
SOURCE = sa.Enum('library', 'bureau', name='arrangementsource', native_enum=False, create_constraint=True,
                 length=32)


def _seed(arrangements: sa.Table, days: sa.Table) -> None:
    chinese = {holiday.value: holiday.chinese for holiday in chinese_calendar.Holiday}
    rows = [(day, 'holiday', chinese[name]) for day, name in chinese_calendar.holidays.items()]
    rows += [(day, 'makeup_workday', chinese[name]) for day, name in chinese_calendar.workdays.items()]
    years = sorted({day.year for day, _kind, _name in rows})
    now = datetime.now(timezone.utc)
    op.bulk_insert(arrangements, [{'id': n, 'year': year, 'source': 'library', 'updated_at': now}
                                  for n, year in enumerate(years, start=1)])
    ids = {year: n for n, year in enumerate(years, start=1)}
    op.bulk_insert(days, [{'arrangement_id': ids[day.year], 'day': day, 'kind': kind, 'name': name}
                          for day, kind, name in sorted(rows)])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("SELECT setval(pg_get_serial_sequence('holiday_arrangements', 'id'), "
                   "(SELECT max(id) FROM holiday_arrangements))")


def upgrade():
    arrangements = op.create_table('holiday_arrangements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('source', SOURCE, nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('year BETWEEN 1901 AND 2099', name=op.f('ck_holiday_arrangements_year_in_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holiday_arrangements')),
    sa.UniqueConstraint('year', name=op.f('uq_holiday_arrangements_year'))
    )
    days = op.create_table('holiday_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrangement_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', DAY_KIND, nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.CheckConstraint("kind <> 'ordinary'", name=op.f('ck_holiday_days_kind_not_ordinary')),
    sa.CheckConstraint("name <> ''", name=op.f('ck_holiday_days_name_not_empty')),
    sa.ForeignKeyConstraint(['arrangement_id'], ['holiday_arrangements.id'],
                            name=op.f('fk_holiday_days_arrangement_id_holiday_arrangements'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holiday_days')),
    sa.UniqueConstraint('day', name=op.f('uq_holiday_days_day'))
    )
    with op.batch_alter_table('holiday_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holiday_days_arrangement_id'), ['arrangement_id'], unique=False)
    op.create_table('holiday_warnings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('mailed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holiday_warnings')),
    sa.UniqueConstraint('year', name=op.f('uq_holiday_warnings_year'))
    )
    _seed(arrangements, days)


def downgrade():
    op.drop_table('holiday_warnings')
    with op.batch_alter_table('holiday_days', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_holiday_days_arrangement_id'))
    op.drop_table('holiday_days')
    op.drop_table('holiday_arrangements')
