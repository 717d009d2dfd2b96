"""monitoring: alert rules (district defaults and category overrides), alerts (one unresolved per rule and
subject) and each person's alert mail preference

Revision ID: 2aa9c0ec65f1
Revises: 9e1b7c3d5f2a
Create Date: 2026-12-08 03:08:50.309177

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '2aa9c0ec65f1'
down_revision = '9e1b7c3d5f2a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('alert_preferences',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.Enum('immediate', 'digest', name='alertmailmode', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('digest_until', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_alert_preferences_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_alert_preferences'))
    )
    op.create_table('alert_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('idle', 'hoarded', 'unbooked_use', 'overrun', 'device_offline', 'no_shows', 'unapproved_request', 'stale_entry', 'voucher_pool_warning', 'voucher_pool_critical', 'voucher_flag', 'job_failed', name='alertkind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('is_enabled', sa.Boolean(), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['category_id'], ['instrument_categories.id'], name=op.f('fk_alert_rules_category_id_instrument_categories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_alert_rules_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules')),
    sa.UniqueConstraint('kind', 'category_id', name=op.f('uq_alert_rules_kind_category_id'))
    )
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.create_index('uq_alert_rules_district', ['kind'], unique=True, sqlite_where=sa.text('category_id IS NULL'), postgresql_where=sa.text('category_id IS NULL'))

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('idle', 'hoarded', 'unbooked_use', 'overrun', 'device_offline', 'no_shows', 'unapproved_request', 'stale_entry', 'voucher_pool_warning', 'voucher_pool_critical', 'voucher_flag', 'job_failed', name='alertkind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('subject_key', sa.String(length=60), nullable=False),
    sa.Column('state', sa.Enum('open', 'acknowledged', 'resolved', name='alertstate', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=True),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolution_note', sa.String(length=500), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_alerts_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['platform_id'], ['platforms.id'], name=op.f('fk_alerts_platform_id_platforms')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_alerts_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_opened_at', ['opened_at'], unique=False)
        batch_op.create_index('ix_alerts_state_platform', ['state', 'platform_id'], unique=False)
        batch_op.create_index('uq_alerts_unresolved', ['kind', 'subject_type', 'subject_id', 'subject_key'], unique=True, sqlite_where=sa.text("state <> 'resolved'"), postgresql_where=sa.text("state <> 'resolved'"))


def downgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_unresolved', sqlite_where=sa.text("state <> 'resolved'"), postgresql_where=sa.text("state <> 'resolved'"))
        batch_op.drop_index('ix_alerts_state_platform')
        batch_op.drop_index('ix_alerts_opened_at')

    op.drop_table('alerts')
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.drop_index('uq_alert_rules_district', sqlite_where=sa.text('category_id IS NULL'), postgresql_where=sa.text('category_id IS NULL'))

    op.drop_table('alert_rules')
    op.drop_table('alert_preferences')
