"""core: a session version per person, raised by log-out and a new password to end older sessions

Revision ID: a4c2e7f19b3d
Revises: 3b7c9e2d4a58
Create Date: 2026-12-07 23:55:00.000000

Sessions kept a fingerprint of the password hash until now: they all end once, at the upgrade.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a4c2e7f19b3d'
down_revision = '3b7c9e2d4a58'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
