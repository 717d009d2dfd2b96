"""vouchers: voucher uses, what claims, flags and reports read of a booking, backfilled

Revision ID: a4c2e81f9d03
Revises: a4c2e7f19b3d
Create Date: 2026-11-28 09:00:00.000000

A booking paid partly by a voucher is kept by vouchers as a voucher use: what the marketplace tells at
the hold (provider platform, instrument, category, time booked, price, ratio held), at completion (when
served, check-in and check-out, final price) and as payments settle (paid or not). It is a table of its
own, one row per booking (per hold), not columns of voucher_ledger_entries: the ledger stays append-only
without lifting its triggers (entries are facts of money that never change, while a use learns its
completion and payment after the hold), and the ledger's INSERT on the booking path stays as narrow as
it was. The uses of existing holds are backfilled from the bookings and instruments (a migration may read
every table); the ratio held was not recorded before, so theirs is the programme's ratio for the
enterprise as it is now, which is what consumption applied until now.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a4c2e81f9d03'
down_revision = 'a4c2e7f19b3d'
branch_labels = None
depends_on = None

# One use per booking a voucher part was held for (a booking holds once).
BACKFILL = sa.text("""
INSERT INTO voucher_uses (booking_id, voucher_id, platform_id, instrument_name_zh, instrument_name_en, asset_number,
                          category_code, start_at, end_at, price_fen, ratio_bp, checked_in_at, checked_out_at,
                          completed_at, final_price_fen, is_paid)
SELECT b.id, h.voucher_id, i.platform_id, i.name_zh, i.name_en, i.asset_number, c.code, b.start_at, b.end_at,
       b.price_fen, CASE WHEN e.is_tech_sme THEN p.sme_coverage_bp ELSE p.coverage_bp END, b.checked_in_at,
       b.checked_out_at, CASE WHEN b.state = 'completed' THEN b.checked_out_at END,
       CASE WHEN b.state = 'completed' THEN b.final_price_fen END, b.payment_state IN ('paid', 'refunded')
FROM voucher_ledger_entries h
JOIN bookings b ON b.id = h.booking_id
JOIN instruments i ON i.id = b.instrument_id
JOIN instrument_categories c ON c.id = i.category_id
JOIN vouchers v ON v.id = h.voucher_id
JOIN voucher_programmes p ON p.id = v.programme_id
JOIN enterprises e ON e.id = v.enterprise_id
WHERE h.kind = 'hold'
""")


def upgrade():
    op.create_table('voucher_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=False),
    sa.Column('voucher_id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('instrument_name_zh', sa.String(length=200), nullable=False),
    sa.Column('instrument_name_en', sa.String(length=200), nullable=False),
    sa.Column('asset_number', sa.String(length=50), nullable=False),
    sa.Column('category_code', sa.String(length=4), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('price_fen', sa.BigInteger(), nullable=False),
    sa.Column('ratio_bp', sa.Integer(), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('final_price_fen', sa.BigInteger(), nullable=True),
    sa.Column('is_paid', sa.Boolean(), nullable=False),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_voucher_uses_ends_after_start')),
    sa.CheckConstraint('price_fen >= 0 AND (final_price_fen IS NULL OR final_price_fen >= 0)', name=op.f('ck_voucher_uses_prices_not_negative')),
    sa.CheckConstraint('ratio_bp BETWEEN 1 AND 10000', name=op.f('ck_voucher_uses_ratio_is_a_share')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_voucher_uses_booking_id_bookings')),
    sa.ForeignKeyConstraint(['platform_id'], ['platforms.id'], name=op.f('fk_voucher_uses_platform_id_platforms')),
    sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], name=op.f('fk_voucher_uses_voucher_id_vouchers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_uses')),
    sa.UniqueConstraint('booking_id', name=op.f('uq_voucher_uses_booking_id'))
    )
    with op.batch_alter_table('voucher_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voucher_uses_completed_at'), ['completed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_voucher_uses_platform_id'), ['platform_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_voucher_uses_voucher_id'), ['voucher_id'], unique=False)

    op.execute(BACKFILL)


def downgrade():
    with op.batch_alter_table('voucher_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voucher_uses_voucher_id'))
        batch_op.drop_index(batch_op.f('ix_voucher_uses_platform_id'))
        batch_op.drop_index(batch_op.f('ix_voucher_uses_completed_at'))

    op.drop_table('voucher_uses')
