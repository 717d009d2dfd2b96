"""booking: maintenance windows remember the recurring ICS event they came from

Revision ID: e3b9a7c1d524
Revises: e1f4a7c3b925
Create Date: 2026-12-10 02:40:00.000000

maintenance_windows.series_uid holds a recurring event's UID, so the platform can remove its windows as
one series. Windows imported before are given it where their external_uid ("UID/start") shows an event
with more than one occurrence on the instrument.
"""
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e3b9a7c1d524'
down_revision = 'e1f4a7c3b925'
branch_labels = None
depends_on = None

windows = sa.table("maintenance_windows", sa.column("id", sa.Integer), sa.column("instrument_id", sa.Integer),
                   sa.column("external_uid", sa.String), sa.column("series_uid", sa.String))


def upgrade():
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_uid', sa.String(length=300), nullable=True))
        batch_op.create_index('ix_maintenance_windows_instrument_series', ['instrument_id', 'series_uid'],
                              unique=False)
    bind = op.get_bind()
    groups = defaultdict(list)
    for window_id, instrument_id, external_uid in bind.execute(
            sa.select(windows.c.id, windows.c.instrument_id, windows.c.external_uid)
            .where(windows.c.external_uid.is_not(None))):
        groups[(instrument_id, external_uid.rpartition("/")[0])].append(window_id)
    for (_instrument_id, series_uid), ids in groups.items():
        if series_uid and len(ids) > 1:
            bind.execute(windows.update().where(windows.c.id.in_(ids)).values(series_uid=series_uid))


def downgrade():
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.drop_index('ix_maintenance_windows_instrument_series')
        batch_op.drop_column('series_uid')
