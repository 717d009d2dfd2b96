"""monitoring: usage sessions (the one record of real use), device tokens and their events, per-instrument settings

Revision ID: 40587709f230
Revises: e3b9a7c1d524
Create Date: 2026-12-08 02:47:43.728414

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '40587709f230'
down_revision = 'e3b9a7c1d524'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('device_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_device_tokens_created_by_id_users')),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_device_tokens_instrument_id_instruments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_device_tokens_token_hash'))
    )
    with op.batch_alter_table('device_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_tokens_instrument_id'), ['instrument_id'], unique=False)

    op.create_table('instrument_monitoring',
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('offline_after_minutes', sa.Integer(), nullable=False),
    sa.CheckConstraint('offline_after_minutes BETWEEN 1 AND 1440', name=op.f('ck_instrument_monitoring_offline_after_range')),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_instrument_monitoring_instrument_id_instruments')),
    sa.PrimaryKeyConstraint('instrument_id', name=op.f('pk_instrument_monitoring'))
    )
    op.create_table('usage_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Enum('check_in', 'device', 'manual', name='usagesource', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('is_external', sa.Boolean(), nullable=False),
    sa.Column('is_flagged', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source <> 'manual' OR reason <> ''", name=op.f('ck_usage_sessions_manual_has_reason')),
    sa.CheckConstraint('end_at IS NULL OR end_at >= start_at', name=op.f('ck_usage_sessions_ends_after_start')),
    sa.CheckConstraint('last_seen_at >= start_at', name=op.f('ck_usage_sessions_seen_after_start')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_usage_sessions_booking_id_bookings')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_usage_sessions_created_by_id_users')),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_usage_sessions_instrument_id_instruments')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_usage_sessions_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_usage_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_sessions'))
    )
    with op.batch_alter_table('usage_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_sessions_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index('ix_usage_sessions_instrument_time', ['instrument_id', 'start_at'], unique=False)
        batch_op.create_index('ix_usage_sessions_open', ['source', 'end_at'], unique=False)

    op.create_table('device_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('start', 'stop', 'heartbeat', name='deviceeventkind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_device_events_instrument_id_instruments')),
    sa.ForeignKeyConstraint(['session_id'], ['usage_sessions.id'], name=op.f('fk_device_events_session_id_usage_sessions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['token_id'], ['device_tokens.id'], name=op.f('fk_device_events_token_id_device_tokens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_events')),
    sa.UniqueConstraint('instrument_id', 'kind', 'at', name=op.f('uq_device_events_instrument_id_kind_at'))
    )
    with op.batch_alter_table('device_events', schema=None) as batch_op:
        batch_op.create_index('ix_device_events_instrument_at', ['instrument_id', 'at'], unique=False)



def downgrade():
    with op.batch_alter_table('device_events', schema=None) as batch_op:
        batch_op.drop_index('ix_device_events_instrument_at')

    op.drop_table('device_events')
    with op.batch_alter_table('usage_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_sessions_open')
        batch_op.drop_index('ix_usage_sessions_instrument_time')
        batch_op.drop_index(batch_op.f('ix_usage_sessions_booking_id'))

    op.drop_table('usage_sessions')
    op.drop_table('instrument_monitoring')
    with op.batch_alter_table('device_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_tokens_instrument_id'))

    op.drop_table('device_tokens')
