"""marketplace: instrument registry and catalogue releases

Revision ID: d987e25bf31a
Revises: 6e06593db44a
Create Date: 2026-11-27 04:03:40.973415

"""
import sqlalchemy as sa
from alembic import op

from core.db import drop_append_only, make_append_only

# The category code list as shipped (marketplace/categories.py at the time of this migration).
CATEGORIES = [
    ("01", "分析仪器", "Analytical instruments", [
        ("0101", "质谱仪器", "Mass spectrometers"), ("0102", "光谱仪器", "Spectrometers"),
        ("0103", "色谱仪器", "Chromatographs"), ("0104", "电子光学仪器（电镜）", "Electron optics (electron microscopes)"),
        ("0105", "波谱仪器", "Magnetic resonance spectrometers"), ("0106", "X射线仪器", "X-ray instruments"),
        ("0107", "电化学仪器", "Electrochemical instruments"), ("0108", "热分析仪器", "Thermal analysers"),
        ("0109", "生化分离分析仪器", "Biochemical separation and analysis"),
        ("0110", "显微镜及图像分析仪器", "Microscopes and image analysers"),
        ("0199", "其他分析仪器", "Other analytical instruments")]),
    ("02", "物理性能测试仪器", "Physical property testing instruments", [
        ("0201", "力学性能测试仪器", "Mechanical property testers"), ("0202", "热学性能测试仪器", "Thermal property testers"),
        ("0203", "光学性能测试仪器", "Optical property testers"), ("0204", "颗粒度测量仪器", "Particle size analysers"),
        ("0205", "声学振动仪器", "Acoustics and vibration"), ("0206", "电磁学参数测量仪器", "Electromagnetic parameter meters"),
        ("0299", "其他物理性能测试仪器", "Other physical property testers")]),
    ("03", "计量仪器", "Metrology instruments", [
        ("0301", "长度计量仪器", "Length metrology"), ("0302", "热学计量仪器", "Thermal metrology"),
        ("0303", "力学计量仪器", "Mechanical metrology"), ("0304", "电磁计量仪器", "Electromagnetic metrology"),
        ("0305", "时间频率计量仪器", "Time and frequency metrology"), ("0399", "其他计量仪器", "Other metrology")]),
    ("04", "电子测量仪器", "Electronic measuring instruments", [
        ("0401", "通用电子测量仪器", "General electronic measurement"),
        ("0402", "射频和微波测试仪器", "RF and microwave testers"), ("0403", "通讯测量仪器", "Communication testers"),
        ("0404", "网络分析仪器", "Network analysers"), ("0405", "半导体器件测试仪器", "Semiconductor device testers"),
        ("0499", "其他电子测量仪器", "Other electronic measurement")]),
    ("05", "医学科研仪器", "Medical research instruments", [
        ("0501", "影像诊断仪器", "Diagnostic imaging"), ("0502", "临床检验分析仪器", "Clinical laboratory analysers"),
        ("0503", "细胞与分子生物学仪器", "Cell and molecular biology instruments"),
        ("0504", "实验动物设备", "Laboratory animal equipment"), ("0599", "其他医学科研仪器", "Other medical research")]),
    ("06", "特种检测仪器", "Special testing instruments", [
        ("0601", "无损检测仪器", "Non-destructive testing"), ("0602", "环境检测仪器", "Environmental testing"),
        ("0603", "纺织品检测仪器", "Textile testing"), ("0604", "安全检测仪器", "Safety testing"),
        ("0699", "其他特种检测仪器", "Other special testing")]),
    ("07", "其他", "Other", [
        ("0701", "激光器", "Lasers"), ("0702", "工艺试验设备", "Process and pilot equipment"),
        ("0799", "其他仪器", "Other instruments")]),
]


def _load_categories():
    table = sa.table("instrument_categories", sa.column("id", sa.Integer), sa.column("code", sa.String),
                     sa.column("parent_id", sa.Integer), sa.column("name_zh", sa.String), sa.column("name_en", sa.String))
    next_id = 1
    for code, zh, en, children in CATEGORIES:
        parent_id = next_id
        rows = [{"id": parent_id, "code": code, "parent_id": None, "name_zh": zh, "name_en": en}]
        next_id += 1
        for child_code, child_zh, child_en in children:
            rows.append({"id": next_id, "code": child_code, "parent_id": parent_id, "name_zh": child_zh,
                         "name_en": child_en})
            next_id += 1
        op.bulk_insert(table, rows)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('instrument_categories', 'id'), "
                   "(SELECT max(id) FROM instrument_categories))")


def _create_search_index():
    """Full-text search over instruments.search_text (marketplace/search.py makes the tokens)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_instruments_search_text ON instruments "
                   "USING gin (to_tsvector('simple', search_text))")
        return
    op.execute("CREATE VIRTUAL TABLE instrument_search USING fts5(search_text, content='instruments', "
               "content_rowid='id', tokenize='unicode61')")
    op.execute("CREATE TRIGGER instrument_search_ai AFTER INSERT ON instruments BEGIN "
               "INSERT INTO instrument_search(rowid, search_text) VALUES (new.id, new.search_text); END")
    op.execute("CREATE TRIGGER instrument_search_ad AFTER DELETE ON instruments BEGIN "
               "INSERT INTO instrument_search(instrument_search, rowid, search_text) "
               "VALUES ('delete', old.id, old.search_text); END")
    op.execute("CREATE TRIGGER instrument_search_au AFTER UPDATE OF search_text ON instruments BEGIN "
               "INSERT INTO instrument_search(instrument_search, rowid, search_text) "
               "VALUES ('delete', old.id, old.search_text); "
               "INSERT INTO instrument_search(rowid, search_text) VALUES (new.id, new.search_text); END")


def _drop_search_index():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_instruments_search_text")
        return
    for trigger in ("instrument_search_ai", "instrument_search_ad", "instrument_search_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS instrument_search")


# revision identifiers, used by Alembic.
revision = 'd987e25bf31a'
down_revision = '6e06593db44a'
branch_labels = None
depends_on = None


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('instrument_categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.CheckConstraint('length(code) IN (2, 4)', name=op.f('ck_instrument_categories_code_two_levels')),
    sa.ForeignKeyConstraint(['parent_id'], ['instrument_categories.id'], name=op.f('fk_instrument_categories_parent_id_instrument_categories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instrument_categories')),
    sa.UniqueConstraint('code', name=op.f('uq_instrument_categories_code'))
    )
    with op.batch_alter_table('instrument_categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instrument_categories_parent_id'), ['parent_id'], unique=False)

    op.create_table('catalogue_releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('issue', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('instrument_count', sa.Integer(), nullable=False),
    sa.Column('added_count', sa.Integer(), nullable=False),
    sa.Column('changed_count', sa.Integer(), nullable=False),
    sa.Column('withdrawn_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_catalogue_releases_published_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_releases')),
    sa.UniqueConstraint('number', name=op.f('uq_catalogue_releases_number')),
    sa.UniqueConstraint('period', name=op.f('uq_catalogue_releases_period')),
    sa.UniqueConstraint('year', 'issue', name=op.f('uq_catalogue_releases_year_issue'))
    )
    op.create_table('instruments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('asset_number', sa.String(length=50), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('manufacturer', sa.String(length=200), nullable=False),
    sa.Column('country_of_origin', sa.String(length=50), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('original_value_fen', sa.BigInteger(), nullable=False),
    sa.Column('purchased_on', sa.Date(), nullable=True),
    sa.Column('is_publicly_funded', sa.Boolean(), nullable=False),
    sa.Column('building', sa.String(length=100), nullable=False),
    sa.Column('room', sa.String(length=50), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('capabilities', sa.JSON(), nullable=False),
    sa.Column('sample_requirements', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.String(length=100), nullable=False),
    sa.Column('contact_phone', sa.String(length=30), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('sharing_mode', sa.Enum('open', 'appointment', 'internal', name='sharingmode', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('setup_fee_own_staff_fen', sa.BigInteger(), nullable=False),
    sa.Column('hourly_rate_own_staff_fen', sa.BigInteger(), nullable=False),
    sa.Column('setup_fee_district_enterprise_fen', sa.BigInteger(), nullable=False),
    sa.Column('hourly_rate_district_enterprise_fen', sa.BigInteger(), nullable=False),
    sa.Column('setup_fee_other_fen', sa.BigInteger(), nullable=False),
    sa.Column('hourly_rate_other_fen', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('draft', 'submitted', 'published', 'maintenance', 'retired', 'rejected', name='instrumentstate', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('review_note', sa.String(length=1000), nullable=True),
    sa.Column('pending_changes', sa.JSON(), nullable=True),
    sa.Column('pending_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.CheckConstraint("state <> 'rejected' OR review_note IS NOT NULL", name=op.f('ck_instruments_rejection_has_reason')),
    sa.CheckConstraint('original_value_fen > 0', name=op.f('ck_instruments_value_positive')),
    sa.CheckConstraint('setup_fee_own_staff_fen >= 0 AND hourly_rate_own_staff_fen >= 0 AND setup_fee_district_enterprise_fen >= 0 AND hourly_rate_district_enterprise_fen >= 0 AND setup_fee_other_fen >= 0 AND hourly_rate_other_fen >= 0', name=op.f('ck_instruments_fees_not_negative')),
    sa.ForeignKeyConstraint(['category_id'], ['instrument_categories.id'], name=op.f('fk_instruments_category_id_instrument_categories')),
    sa.ForeignKeyConstraint(['platform_id'], ['platforms.id'], name=op.f('fk_instruments_platform_id_platforms')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instruments')),
    sa.UniqueConstraint('platform_id', 'model', 'asset_number', name=op.f('uq_instruments_platform_id_model_asset_number'))
    )
    with op.batch_alter_table('instruments', schema=None) as batch_op:
        batch_op.create_index('ix_instruments_catalogue', ['state', 'category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instruments_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instruments_hourly_rate_district_enterprise_fen'), ['hourly_rate_district_enterprise_fen'], unique=False)
        batch_op.create_index(batch_op.f('ix_instruments_platform_id'), ['platform_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instruments_updated_at'), ['updated_at'], unique=False)

    op.create_table('catalogue_release_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('change', sa.Enum('added', 'changed', 'unchanged', 'withdrawn', name='releasechange', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('changed_fields', sa.JSON(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_catalogue_release_items_instrument_id_instruments')),
    sa.ForeignKeyConstraint(['release_id'], ['catalogue_releases.id'], name=op.f('fk_catalogue_release_items_release_id_catalogue_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_release_items')),
    sa.UniqueConstraint('release_id', 'instrument_id', name=op.f('uq_catalogue_release_items_release_id_instrument_id'))
    )
    with op.batch_alter_table('catalogue_release_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_release_items_instrument_id'), ['instrument_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalogue_release_items_release_id'), ['release_id'], unique=False)

    op.create_table('instrument_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('stored_name', sa.String(length=100), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_instrument_photos_instrument_id_instruments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instrument_photos')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_instrument_photos_stored_name'))
    )
    with op.batch_alter_table('instrument_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instrument_photos_instrument_id'), ['instrument_id'], unique=False)

    # ### end Alembic commands ###
    _load_categories()
    _create_search_index()
    make_append_only(op, "catalogue_releases")
    make_append_only(op, "catalogue_release_items")


def downgrade():
    drop_append_only(op, "catalogue_release_items")
    drop_append_only(op, "catalogue_releases")
    _drop_search_index()
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('instrument_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instrument_photos_instrument_id'))

    op.drop_table('instrument_photos')
    with op.batch_alter_table('catalogue_release_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalogue_release_items_release_id'))
        batch_op.drop_index(batch_op.f('ix_catalogue_release_items_instrument_id'))

    op.drop_table('catalogue_release_items')
    with op.batch_alter_table('instruments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instruments_updated_at'))
        batch_op.drop_index(batch_op.f('ix_instruments_platform_id'))
        batch_op.drop_index(batch_op.f('ix_instruments_hourly_rate_district_enterprise_fen'))
        batch_op.drop_index(batch_op.f('ix_instruments_category_id'))
        batch_op.drop_index('ix_instruments_catalogue')

    op.drop_table('instruments')
    op.drop_table('catalogue_releases')
    with op.batch_alter_table('instrument_categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instrument_categories_parent_id'))

    op.drop_table('instrument_categories')
    # ### end Alembic commands ###
