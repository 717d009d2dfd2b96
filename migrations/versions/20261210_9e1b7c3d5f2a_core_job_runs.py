"""core: job_runs, one row per run of a periodic job, for the bureau's jobs page

Revision ID: 9e1b7c3d5f2a
Revises: c389378d033d
Create Date: 2026-12-10 03:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '9e1b7c3d5f2a'
down_revision = 'c389378d033d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.String(length=80), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.Enum('running', 'succeeded', 'failed', name='joboutcome', native_enum=False,
                                     create_constraint=True, length=32), nullable=False),
        sa.Column('result', sa.String(length=200), nullable=True),
        sa.Column('error', sa.String(length=4000), nullable=True),
        sa.Column('alert_day', sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
        sa.UniqueConstraint('job_id', 'alert_day', name=op.f('uq_job_runs_job_id_alert_day')),
    )
    op.create_index('ix_job_runs_job_id_started_at', 'job_runs', ['job_id', 'started_at'], unique=False)


def downgrade():
    op.drop_index('ix_job_runs_job_id_started_at', table_name='job_runs')
    op.drop_table('job_runs')
