"""core: an outbox message is claimed (claimed_until) while a job sends it, with no transaction open

Revision ID: 4f2a9c7e1b63
Revises: a4c2e81f9d03
Create Date: 2026-12-08 00:15:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '4f2a9c7e1b63'
down_revision = 'a4c2e81f9d03'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
