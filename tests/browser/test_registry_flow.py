"""The instrument registry in a real browser against the live server, on SQLite and on PostgreSQL: a
platform admin registers an instrument, the bureau publishes it, an anonymous visitor finds it by a
two-character Chinese keyword; an XLSX import with one bad row shows the errors and imports nothing.

The live database is shared by the session's tests and committed, so every instrument gets a model and
asset number of its own. Texts differ while the Chinese translation is being written: the tests look at
addresses, field ids and data-testid, or ask the live app for a text in the language the page shows."""
from __future__ import annotations

import io
import re
import uuid

import openpyxl
import pytest
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.demo import DEMO_PASSWORD
from core.extensions import db
from core.money import format_yuan
from marketplace.registry import imports, services
from marketplace.registry.models import INSTRUMENT_STATE_LABELS, Instrument, InstrumentState, UserType

pytestmark = pytest.mark.live

PLATFORM_ADMIN, BUREAU_ADMIN = "platform@kequip.test", "bureau@kequip.test"
NMR_NAME = "桌面型核磁共振波谱仪"
FEES_YUAN = {  # user type → (setup fee, hourly rate) as typed into the form, in yuan
    UserType.OWN_STAFF: ("0", "300"), UserType.DISTRICT_ENTERPRISE: ("150", "500"),
    UserType.OTHER: ("300", "800.50")}
FEES_FEN = {UserType.OWN_STAFF: (0, 30_000), UserType.DISTRICT_ENTERPRISE: (15_000, 50_000),
            UserType.OTHER: (30_000, 80_050)}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def instrument_row(page: Page, model: str):
    return page.get_by_test_id("instrument-row").filter(has_text=model)


def fill_instrument_form(page: Page, *, model: str, asset_number: str, category_id: int) -> None:
    for field, value in {"name_zh": NMR_NAME, "name_en": "Benchtop NMR spectrometer", "model": model,
                         "manufacturer": "Magritek", "country_of_origin": "新西兰", "asset_number": asset_number,
                         "original_value_fen": "4800000", "building": "B 楼", "room": "112",
                         "contact_name": "陈老师", "contact_phone": "0575-88880000",
                         "contact_email": "nmr@example.com"}.items():
        page.locator(f"#{field}").fill(value)
    page.locator("#category_id").select_option(str(category_id))
    page.locator("#capabilities").fill("有机结构解析\n反应过程监测")
    page.locator("#sample_requirements").fill("液体样品 0.5 mL")
    for user_type, (setup, hourly) in FEES_YUAN.items():
        page.locator(f"#setup_fee_{user_type.value}_fen").fill(setup)
        page.locator(f"#hourly_rate_{user_type.value}_fen").fill(hourly)


def test_a_registered_instrument_is_published_by_the_bureau_and_found_by_a_visitor_with_a_chinese_keyword(
        new_context, live_server, live_session, log_in, in_locale):
    url = live_server.url
    model, asset_number = unique("Spinsolve-80"), unique("KQ-NMR")
    nmr_category_id = services.category_by_code(live_session, "0105").id  # 波谱仪器
    live_session.rollback()  # SQLite: the live session's transaction would hold the write lock (BEGIN IMMEDIATE)

    # The platform admin registers the instrument and submits it for review.
    platform_page = new_context().new_page()
    log_in(platform_page, PLATFORM_ADMIN, DEMO_PASSWORD)
    platform_page.goto(f"{url}/instruments/new")
    fill_instrument_form(platform_page, model=model, asset_number=asset_number, category_id=nmr_category_id)
    platform_page.locator("[name=save_and_submit]").click()

    expect(platform_page).to_have_url(re.compile(re.escape(f"{url}/instruments/mine")))
    row = instrument_row(platform_page, model)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(NMR_NAME)
    expect(row).to_contain_text(asset_number)
    expect(row.get_by_test_id("state")).to_have_text(
        in_locale("zh_CN", INSTRUMENT_STATE_LABELS[InstrumentState.SUBMITTED]))
    instrument = live_session.scalar(select(Instrument).where(Instrument.model == model))
    assert instrument.state == InstrumentState.SUBMITTED
    assert instrument.original_value_fen == 480_000_000
    assert instrument.category_id == nmr_category_id
    assert instrument.capabilities == ["有机结构解析", "反应过程监测"]
    assert {t: instrument.fee(t) for t in UserType} == FEES_FEN
    instrument_id = instrument.id
    live_session.rollback()

    # Not public yet: a visitor cannot tell it exists.
    visitor = new_context().new_page()
    response = visitor.goto(f"{url}/instruments/{instrument_id}")
    assert response is not None and response.status == 404

    # The bureau finds it in the review queue, looks at the diff and publishes it.
    bureau_page = new_context().new_page()
    log_in(bureau_page, BUREAU_ADMIN, DEMO_PASSWORD)
    bureau_page.goto(f"{url}/review")
    review_row = bureau_page.get_by_test_id("review-row").filter(has_text=model)
    expect(review_row).to_have_count(1)
    review_row.locator(f'a[href="/review/{instrument_id}"]').click()
    expect(bureau_page).to_have_url(f"{url}/review/{instrument_id}")
    diff = bureau_page.get_by_test_id("review-diff")
    expect(diff).to_contain_text(model)
    expect(diff).to_contain_text(format_yuan(480_000_000))
    expect(diff).to_contain_text(format_yuan(FEES_FEN[UserType.OTHER][1]))
    bureau_page.locator(f'form[action="/review/{instrument_id}/publish"]').get_by_role("button").click()
    expect(bureau_page).to_have_url(f"{url}/review")
    expect(bureau_page.locator(".alert-success")).to_contain_text(NMR_NAME)
    expect(bureau_page.get_by_test_id("review-row").filter(has_text=model)).to_have_count(0)
    assert live_session.get(Instrument, instrument_id).state == InstrumentState.PUBLISHED
    live_session.rollback()

    # An anonymous visitor searches the catalogue for 核磁 and finds it.
    visitor.goto(f"{url}/catalogue")
    search = visitor.get_by_test_id("catalogue-search")
    search.locator("#q").fill("核磁")
    search.locator("#sort").select_option("newest")  # the shared database may hold other 核磁 instruments
    search.locator("button[type=submit]").click()
    expect(visitor).to_have_url(re.compile(r"/catalogue\?.*q=%E6%A0%B8%E7%A3%81"))
    card = visitor.locator(f'[data-testid=instrument-card][data-instrument-id="{instrument_id}"]')
    expect(card).to_be_visible()
    expect(card).to_contain_text(model)
    expect(card.get_by_test_id("price")).to_have_text(format_yuan(FEES_FEN[UserType.DISTRICT_ENTERPRISE][1]))

    # Its page shows the fee schedule to the fen.
    card.locator(f'a[href="/instruments/{instrument_id}"]').first.click()
    expect(visitor).to_have_url(f"{url}/instruments/{instrument_id}")
    expect(visitor.locator("h1")).to_contain_text(NMR_NAME)
    expect(visitor.get_by_test_id("specifications")).to_contain_text(model)
    expect(visitor.get_by_test_id("original-value")).to_have_text(format_yuan(480_000_000))
    fees = visitor.get_by_test_id("fees")
    for user_type, (setup_fen, hourly_fen) in FEES_FEN.items():
        cells = fees.locator(f'tr[data-user-type="{user_type.value}"] td')
        expect(cells).to_have_text([format_yuan(setup_fen), format_yuan(hourly_fen)])
    expect(visitor.get_by_test_id("capabilities").locator("li")).to_have_text(["有机结构解析", "反应过程监测"])


# --- the XLSX import --------------------------------------------------------------------------

def filled_template(live_app, rows: list[dict[str, object]]) -> bytes:
    """The live app's own template with the rows ({header: value}) written under its headers."""
    with live_app.app_context():
        template = imports.template_xlsx(imports.category_choices(db.session), imports.ImportLimits.configured())
        db.session.remove()
    workbook = openpyxl.load_workbook(io.BytesIO(template))
    sheet = workbook[imports.DATA_SHEET]
    headers = [cell.value for cell in sheet[1]]
    assert headers == list(imports.HEADERS)
    for row in rows:
        sheet.append([row.get(header) for header in headers])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def import_rows(run: str, count: int) -> list[dict[str, object]]:
    return [{"资产编号": f"KQ-IMP-{run}-{n}", "中文名称": f"气相色谱仪 {run}-{n}", "英文名称": "Gas chromatograph",
             "型号": f"GC-{run}-{n}", "生产厂商": "Agilent", "分类代码": "0102", "原值（元）": 350_000 + n,
             "共享方式": "开放共享", "区内企业每小时收费（元）": "260.50"} for n in range(1, count + 1)]


def upload(page: Page, url: str, name: str, data: bytes) -> None:
    page.goto(f"{url}/instruments/import")
    page.locator("#file").set_input_files({"name": name, "mimeType": imports.XLSX_MIMETYPE, "buffer": data})
    page.locator("main form[data-import-form] [type=submit]").click()


def test_an_import_with_one_bad_row_lists_the_error_and_imports_nothing_then_a_good_file_imports(
        page, live_server, live_app, live_session, log_in, in_locale):
    url = live_server.url
    run = uuid.uuid4().hex[:8].upper()
    rows = import_rows(run, 4)
    rows[2]["原值（元）"] = -5  # spreadsheet row 4: the header is row 1
    log_in(page, PLATFORM_ADMIN, DEMO_PASSWORD)

    upload(page, url, "仪器-有错.xlsx", filled_template(live_app, rows))

    error = page.get_by_test_id("import-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-code", "invalid_rows")
    expect(error).to_contain_text(in_locale("zh_CN", _l("Nothing was imported.")))
    errors = page.get_by_test_id("import-errors").locator("tbody tr")
    expect(errors).to_have_count(1)
    expect(errors).to_have_attribute("data-row", "4")
    expect(errors).to_have_attribute("data-column", "原值（元）")
    expect(errors.locator("td")).to_have_text([
        in_locale("zh_CN", _l("Row %(row)d", row=4)), "原值（元）",
        in_locale("zh_CN", _l("The original value must be an amount above zero."))])
    models = [row["型号"] for row in rows]
    asset_numbers = [row["资产编号"] for row in rows]
    assert live_session.scalars(select(Instrument.id).where(
        Instrument.model.in_(models) | Instrument.asset_number.in_(asset_numbers))).all() == []
    live_session.rollback()

    rows[2]["原值（元）"] = 5
    upload(page, url, "仪器.xlsx", filled_template(live_app, rows))

    expect(page).to_have_url(re.compile(re.escape(f"{url}/instruments/mine")))
    expect(page.locator(".alert-success")).to_have_text(
        in_locale("zh_CN", lazy_ngettext("%(num)d instrument imported.", "%(num)d instruments imported.", 4)))
    draft = in_locale("zh_CN", INSTRUMENT_STATE_LABELS[InstrumentState.DRAFT])
    for row in rows:
        listed = instrument_row(page, row["型号"])
        expect(listed).to_have_count(1)
        expect(listed).to_contain_text(row["中文名称"])
        expect(listed.get_by_test_id("state")).to_have_text(draft)
    imported = {i.model: i for i in live_session.scalars(select(Instrument).where(Instrument.model.in_(models)))}
    assert sorted(imported) == sorted(models)
    assert {i.state for i in imported.values()} == {InstrumentState.DRAFT}
    assert imported[rows[2]["型号"]].original_value_fen == 500
    assert {i.hourly_rate_district_enterprise_fen for i in imported.values()} == {26_050}
