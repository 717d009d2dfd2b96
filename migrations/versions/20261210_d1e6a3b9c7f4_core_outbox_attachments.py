"""core: an outbox message may carry text attachments (a confirmed booking's calendar entry)

Revision ID: d1e6a3b9c7f4
Revises: c5d8e2f4a6b1
Create Date: 2026-12-08 03:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd1e6a3b9c7f4'
down_revision = 'c5d8e2f4a6b1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachments', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('attachments')
