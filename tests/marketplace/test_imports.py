"""XLSX bulk import: the template, all-or-nothing imports, every bad-file case, exact amounts, who may."""
from __future__ import annotations

import dataclasses
import io
import re
import time
import zipfile
from datetime import date, datetime

import openpyxl
import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from core.audit import Actor
from core.db import utcnow
from core.errors import Forbidden, RuleBroken
from core.models import AuditEntry, Platform
from marketplace.registry import imports
from marketplace.registry.imports import HEADERS
from marketplace.registry.models import Instrument, InstrumentState, SharingMode
from testsupport.workbooks import crafted_xlsx, rows_xlsx, sample_row


@pytest.fixture
def admin(demo_user):
    return demo_user("platform")


@pytest.fixture
def platform(session, admin):
    return session.get(Platform, admin.grants[0].organisation_id)


def limits(**changes) -> imports.ImportLimits:
    return dataclasses.replace(imports.ImportLimits.configured(), **changes)


def count(session, platform) -> int:
    return session.scalar(select(func.count()).select_from(Instrument).where(Instrument.platform_id == platform.id))


def run_import(session, platform, admin, data: bytes, *, submit: bool = False) -> imports.ImportResult:
    return imports.import_instruments(session, platform, admin, actor=Actor.of(admin, "127.0.0.1"),
                                      rows=imports.read_workbook(data), submit=submit, now=utcnow())


def row_errors(session, platform, rows: list[dict]) -> list[tuple[int, str]]:
    """(row, column) of each error of a file made of these rows."""
    result = imports.validate_rows(session, imports.read_workbook(rows_xlsx(rows)), platform.id)
    return [(error.row, error.column) for error in result.errors]


def upload(client, data: bytes, *, submit: bool = False, filename: str = "仪器.xlsx", headers=None, **extra):
    form = {"file": FileStorage(io.BytesIO(data), filename=filename, content_type=imports.XLSX_MIMETYPE), **extra}
    if submit:
        form["submit_for_review"] = "y"
    # encoded in memory: the test client would spool a large body to a file it never closes
    boundary, body = encode_multipart(form)
    return client.post("/instruments/import", data=body, content_type=f"multipart/form-data; boundary={boundary}",
                       headers=headers)


# --- the template -----------------------------------------------------------------------------

def test_template_has_chinese_headers_an_explanation_sheet_and_drop_downs(login_as):
    response = login_as("platform").get("/instruments/import/template.xlsx")
    assert response.status_code == 200
    assert response.mimetype == imports.XLSX_MIMETYPE
    assert "attachment" in response.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(response.data))
    assert workbook.sheetnames[:2] == ["仪器", "填写说明"]
    sheet = workbook["仪器"]
    assert tuple(cell.value for cell in sheet[1]) == HEADERS
    assert HEADERS[:8] == ("资产编号", "中文名称", "英文名称", "型号", "生产厂商", "产地国别", "分类代码", "原值（元）")
    assert sheet.freeze_panes == "A2"
    assert sheet.max_row == 1  # no example row that could be imported by mistake
    explained = [row[0] for row in workbook["填写说明"].iter_rows(min_row=2, max_row=len(HEADERS) + 1, values_only=True)]
    assert explained == list(HEADERS)
    formulas = {validation.formula1: str(validation.sqref) for validation in sheet.data_validations.dataValidation}
    assert formulas['"开放共享,预约共享,内部使用"'].startswith("S2:")
    assert formulas['"是,否"'].startswith("J2:")
    category_range = next(formula for formula in formulas if formula.startswith("'分类'!"))
    assert formulas[category_range].startswith("G2:")
    categories = workbook["分类"]
    assert categories.sheet_state == "hidden"
    choices = [row[0] for row in categories.iter_rows(values_only=True)]
    assert "0101 质谱仪器" in choices and all(len(choice.split()[0]) == 4 for choice in choices)
    assert category_range.endswith(f"$A${len(choices)}")


def test_a_filled_in_template_imports(login_as, session, platform, admin):
    """As a person does it: download, type rows under the headers with the drop-down values, upload."""
    workbook = openpyxl.load_workbook(io.BytesIO(login_as("platform").get("/instruments/import/template.xlsx").data))
    sheet = workbook["仪器"]
    for n in range(3):
        sheet.append([sample_row(n, 分类代码="0102 光谱仪器", 是否财政资金购置="否", 共享方式="预约共享")[h] for h in HEADERS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = run_import(session, platform, admin, buffer.getvalue())
    assert result.imported == 3
    instrument = session.get(Instrument, result.instrument_ids[0])
    assert (instrument.category.code, instrument.is_publicly_funded, instrument.sharing_mode) == \
        ("0102", False, SharingMode.APPOINTMENT)


# --- good files -------------------------------------------------------------------------------

def test_a_good_file_imports_every_row_as_drafts_with_an_audit_entry_each(login_as, session, platform):
    before = count(session, platform)
    rows = [sample_row(n) for n in range(25)]
    rows[0] |= {"原值（元）": 1234.56, "其他用户每小时收费（元）": "600.50", "本单位人员开机费（元）": None,
                "测试能力": "农药残留检测；药物代谢物定量\n元素分析", "购置日期": "2021-06-18", "房间": 301}
    response = upload(login_as("platform"), rows_xlsx(rows))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/instruments/mine?platform_id={platform.id}")
    assert count(session, platform) == before + 25
    instrument = session.scalar(select(Instrument).where(Instrument.asset_number == rows[0]["资产编号"]))
    assert instrument.state == InstrumentState.DRAFT
    assert instrument.original_value_fen == 123456  # 1234.56 yuan, to the fen
    assert instrument.hourly_rate_other_fen == 60050
    assert instrument.setup_fee_own_staff_fen == 0
    assert instrument.capabilities == ["农药残留检测", "药物代谢物定量", "元素分析"]
    assert (instrument.purchased_on, instrument.room, instrument.category.code) == (date(2021, 6, 18), "301", "0101")
    assert "质谱" in instrument.search_text.split()
    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "instrument.imported",
                                                       AuditEntry.subject_type == "instruments")).all()
    assert len(audited) == 25
    entry = next(e for e in audited if e.subject_id == instrument.id)
    assert entry.after["state"] == "draft" and entry.after["original_value_fen"] == 123456 and entry.after["row"] == 2


def test_submit_for_review_imports_every_row_as_submitted(login_as, session, platform):
    rows = [sample_row(n) for n in range(4)]
    response = upload(login_as("platform"), rows_xlsx(rows), submit=True)
    assert response.status_code == 302
    imported = session.scalars(select(Instrument).where(Instrument.asset_number.in_([r["资产编号"] for r in rows]))).all()
    assert len(imported) == 4
    assert {i.state for i in imported} == {InstrumentState.SUBMITTED}
    assert all(i.submitted_at is not None for i in imported)


def test_the_javascript_upload_gets_the_next_page_as_json(login_as, session, platform):
    response = upload(login_as("platform"), rows_xlsx([sample_row(1)]), headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 200
    assert response.json == {"redirect": f"/instruments/mine?platform_id={platform.id}"}


def test_the_import_page_offers_the_template_and_a_progress_bar(login_as):
    response = login_as("platform").get("/instruments/import")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "/instruments/import/template.xlsx" in html
    assert 'enctype="multipart/form-data"' in html and "data-import-progress" in html
    assert "/static/js/instrument-import.js" in html
    assert "/instruments/import" in login_as("platform").get("/dashboard").get_data(as_text=True)  # in the menu


def test_the_import_script_is_served_locally(client):
    response = client.get("/static/js/instrument-import.js")
    assert response.status_code == 200 and b"upload.onprogress" in response.data
    response.close()


@pytest.mark.parametrize("cells, expected", [
    ({"分类代码": "0102"}, ("category", "0102")),
    ({"分类代码": "光谱仪器"}, ("category", "0102")),
    ({"分类代码": 102}, ("category", "0102")),  # 0102 typed into a number cell
    ({"购置日期": datetime(2019, 3, 5)}, ("purchased_on", date(2019, 3, 5))),
    ({"购置日期": "2019/3/5"}, ("purchased_on", date(2019, 3, 5))),
    ({"是否财政资金购置": "是"}, ("is_publicly_funded", True)),
    ({"是否财政资金购置": None}, ("is_publicly_funded", False)),
    ({"共享方式": "内部使用"}, ("sharing_mode", SharingMode.INTERNAL)),
    ({"共享方式": None}, ("sharing_mode", SharingMode.OPEN)),
    ({"原值（元）": "1,234,567.89"}, ("original_value_fen", 123456789)),
    ({"原值（元）": 0.1}, ("original_value_fen", 10)),
    ({"原值（元）": 12_000_000}, ("original_value_fen", 1_200_000_000)),
    ({"区内企业每小时收费（元）": 0.29}, ("hourly_rate_district_enterprise_fen", 29)),
], ids=lambda v: repr(v))
def test_cells_are_read_as_a_person_means_them(session, platform, admin, cells, expected):
    result = run_import(session, platform, admin, rows_xlsx([sample_row(1, **cells)]))
    instrument = session.get(Instrument, result.instrument_ids[0])
    name, value = expected
    actual = instrument.category.code if name == "category" else getattr(instrument, name)
    assert actual == value


def test_a_thousand_rows_import_in_one_go(session, platform, admin):
    """The 5,000-row figure is measured by the benchmark (bench.figures.xlsx_import)."""
    before = count(session, platform)
    data = rows_xlsx([sample_row(n) for n in range(1000)])
    began = time.perf_counter()
    result = run_import(session, platform, admin, data)
    assert time.perf_counter() - began < 15  # about 2 s on either database
    assert result.imported == 1000 and count(session, platform) == before + 1000


# --- bad rows: nothing is imported ------------------------------------------------------------

def test_one_bad_row_among_many_imports_nothing_and_the_page_lists_it(login_as, session, platform):
    before = count(session, platform)
    rows = [sample_row(n) for n in range(30)]
    rows[10]["原值（元）"] = 0  # Excel row 12: the header is row 1
    response = upload(login_as("platform"), rows_xlsx(rows))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'data-code="invalid_rows"' in html
    assert 'data-row="12" data-column="原值（元）"' in html
    assert html.count("data-row=") == 1
    assert count(session, platform) == before
    assert session.scalar(select(func.count()).select_from(AuditEntry)
                          .where(AuditEntry.action == "instrument.imported")) == 0


def test_errors_of_every_row_are_collected_with_row_and_column(session, platform, admin):
    rows = [sample_row(n) for n in range(6)]
    rows[0]["中文名称"] = None
    rows[1]["原值（元）"] = 1234.567  # more than two decimals
    rows[2]["区内企业开机费（元）"] = -5  # a negative fee
    rows[3] |= {"购置日期": "18.06.2021", "分类代码": "9999"}
    rows[4] |= {"分类代码": "01", "联系邮箱": "not-an-address", "共享方式": "随便"}
    rows[5] |= {"原值（元）": "一百万", "是否财政资金购置": "也许"}
    with pytest.raises(RuleBroken) as caught:
        run_import(session, platform, admin, rows_xlsx(rows))
    assert caught.value.code == "invalid_rows"
    found = [(e.row, e.column) for e in caught.value.details.errors]
    assert found == [(2, "中文名称"), (3, "原值（元）"), (4, "区内企业开机费（元）"), (5, "分类代码"), (5, "购置日期"),
                     (6, "分类代码"), (6, "联系邮箱"), (6, "共享方式"), (7, "原值（元）"), (7, "是否财政资金购置")]
    # in Chinese by default, as the issue shows them: 第 12 行「原值（元）」：…
    assert all(str(e).startswith(f"第 {e.row} 行「{e.column}」：") for e in caught.value.details.errors)


@pytest.mark.parametrize("value", [0, -1, "0.00", "-100"])
def test_the_original_value_must_be_above_zero(session, platform, value):
    assert row_errors(session, platform, [sample_row(1, **{"原值（元）": value})]) == [(2, "原值（元）")]


@pytest.mark.parametrize("value", [1234.567, "0.001", "12.345"])
def test_an_amount_has_at_most_two_decimals(session, platform, value):
    assert row_errors(session, platform, [sample_row(1, **{"其他用户开机费（元）": value})]) == [(2, "其他用户开机费（元）")]


@pytest.mark.parametrize("column", [h for h in HEADERS if "收费" in h or "开机费" in h])
def test_a_negative_fee_is_an_error(session, platform, column):
    assert row_errors(session, platform, [sample_row(1, **{column: -0.01})]) == [(2, column)]


@pytest.mark.parametrize("text, fen", [("1234.56", 123456), ("¥1,234.5", 123450), ("0.01", 1), ("100", 10000),
                                       ("3200000.00", 320000000)])
def test_yuan_convert_exactly_to_fen(app, text, fen):
    assert imports.parse_yuan(text) == fen
    assert imports.parse_yuan(float(text.lstrip("¥").replace(",", ""))) == fen


def test_duplicates_inside_the_file_are_errors(session, platform):
    rows = [sample_row(n) for n in range(5)]
    rows[3] |= {"资产编号": rows[0]["资产编号"], "型号": rows[0]["型号"]}
    rows[4] |= {"资产编号": rows[0]["资产编号"], "型号": "another model"}  # same asset number, other model: fine
    result = imports.validate_rows(session, imports.read_workbook(rows_xlsx(rows)), platform.id)
    assert [(e.row, e.column) for e in result.errors] == [(5, "资产编号")]
    assert "2" in result.errors[0].message  # names the first row


def test_a_duplicate_of_an_existing_instrument_is_an_error(session, platform, admin, create_instrument):
    existing = create_instrument()
    rows = [sample_row(1), sample_row(2, 资产编号=existing.asset_number, 型号=existing.model)]
    before = count(session, platform)
    with pytest.raises(RuleBroken) as caught:
        run_import(session, platform, admin, rows_xlsx(rows))
    assert [(e.row, e.column) for e in caught.value.details.errors] == [(3, "资产编号")]
    assert count(session, platform) == before


# --- bad files --------------------------------------------------------------------------------

def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    return buffer.getvalue()


def _zip_that_is_not_a_workbook() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "你好")
    return buffer.getvalue()


def _empty_workbook() -> bytes:
    buffer = io.BytesIO()
    openpyxl.Workbook().save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("make, code", [
    (lambda: "资产编号,中文名称\nA1,质谱仪\n".encode("utf-8-sig"), "not_xlsx"),  # a CSV named .xlsx
    (_png, "not_xlsx"),
    (_zip_that_is_not_a_workbook, "not_xlsx"),
    (lambda: b"", "not_xlsx"),
    (lambda: rows_xlsx([], headers=HEADERS), "empty_sheet"),  # the headers and no rows
    (lambda: rows_xlsx([{}, {}], headers=HEADERS), "empty_sheet"),  # blank rows only
    (_empty_workbook, "empty_sheet"),
    (lambda: rows_xlsx([sample_row(1)], headers=HEADERS[:-1]), "wrong_headers"),
    (lambda: b"PK\x03\x04" + bytes(imports.ImportLimits.configured().max_bytes), "file_too_large"),
], ids=["csv", "png", "zip", "nothing", "headers-only", "blank-rows", "empty-workbook", "wrong-headers", "over-10-MB"])
def test_each_bad_file_gets_a_clear_message(session, platform, admin, make, code):
    before = count(session, platform)
    with pytest.raises(RuleBroken) as caught:
        run_import(session, platform, admin, make())
    assert caught.value.code == code
    assert caught.value.message
    assert count(session, platform) == before


def test_wrong_headers_say_which_are_missing_and_which_are_unknown(session, platform):
    headers = [h for h in HEADERS if h != "型号"] + ["备注"]
    with pytest.raises(RuleBroken) as caught:
        imports.read_workbook(rows_xlsx([sample_row(1)], headers=headers))
    assert caught.value.code == "wrong_headers"
    assert caught.value.details == {"missing": ["型号"], "unknown": ["备注"]}
    assert "「型号」" in caught.value.message and "「备注」" in caught.value.message


def test_headers_in_another_order_or_with_ascii_brackets_are_fine(session, platform):
    headers = [h.replace("（", "(").replace("）", ")") for h in reversed(HEADERS)]
    rows = [{h.replace("（", "(").replace("）", ")"): v for h, v in sample_row(1).items()}]
    assert imports.validate_rows(session, imports.read_workbook(rows_xlsx(rows, headers=headers)), platform.id).ok


def test_a_file_with_too_many_rows_is_refused(session, platform):
    with pytest.raises(RuleBroken) as caught:
        imports.read_workbook(rows_xlsx([sample_row(n) for n in range(6)]), limits(max_rows=5))
    assert caught.value.code == "too_many_rows"


def test_a_bad_file_on_the_page_says_nothing_was_imported(login_as, session, platform):
    response = upload(login_as("platform"), _png())
    assert response.status_code == 422
    assert 'data-code="not_xlsx"' in response.get_data(as_text=True)
    response = upload(login_as("platform"), b"PK\x03\x04" + bytes(imports.ImportLimits.configured().max_bytes))
    assert response.status_code == 422
    assert 'data-code="file_too_large"' in response.get_data(as_text=True)


def test_a_post_without_a_file_asks_for_one(login_as):
    response = login_as("platform").post("/instruments/import", data={}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert 'name="file"' in response.get_data(as_text=True)


# --- who may ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bureau", "operator", "enterprise", "auditor"])
def test_only_platform_admins_may_import(login_as, name):
    client = login_as(name)
    assert client.get("/instruments/import").status_code == 403
    assert client.get("/instruments/import/template.xlsx").status_code == 403
    assert upload(client, rows_xlsx([sample_row(1)])).status_code == 403


def test_anonymous_visitors_must_log_in(client):
    assert client.get("/instruments/import").status_code == 401
    assert upload(client, rows_xlsx([sample_row(1)])).status_code == 401


def test_an_admin_cannot_import_into_another_platform(login_as, session, platform, admin):
    other = session.scalar(select(Platform).where(Platform.id != platform.id).order_by(Platform.id))
    before = count(session, other)
    response = upload(login_as("platform"), rows_xlsx([sample_row(1)]), platform_id=str(other.id))
    assert response.status_code == 403
    assert count(session, other) == before
    with pytest.raises(Forbidden):
        run_import(session, other, admin, rows_xlsx([sample_row(1)]))


# --- bounded work: every limit refuses before the work it bounds ------------------------------

def inline_cell(reference: str, text: str = "x") -> str:
    return f'<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>'


def refused(data: bytes, **changes) -> tuple[str, float]:
    began = time.perf_counter()
    with pytest.raises(RuleBroken) as caught:
        imports.read_workbook(data, limits(**changes))
    assert caught.value.message and caught.value.field == "file"
    return caught.value.code, time.perf_counter() - began


@pytest.mark.parametrize("make, code", [
    (lambda: crafted_xlsx(dimension="A1:Y20000001"), "too_many_rows"),  # the sheet says so
    # it says 2 rows, but a cell sits in row 20,000,000: counted as read, refused at row 5,002
    (lambda: crafted_xlsx([f'<row r="20000000">{inline_cell("A20000000")}</row>'], dimension="A1:Y2"),
     "too_many_rows"),
    (lambda: crafted_xlsx('<row r="%d"/>' % n for n in range(2, 5003)), "too_many_rows"),  # blank ones count
    (lambda: crafted_xlsx(["<row/>"] * 5001), "too_many_rows"),  # rows without numbers too
    (lambda: crafted_xlsx(dimension="A1:CZ2"), "too_many_columns"),
    (lambda: crafted_xlsx([f'<row r="2">{inline_cell("BI2")}</row>']), "too_many_columns"),  # column 61
    (lambda: crafted_xlsx(padding=41 * 1024 * 1024), "file_too_large"),  # 41 MB unpacked from 41 KB
    (lambda: crafted_xlsx(['<row r="2"><c r="A2"><v>1</v></c>', "<broken"]), "not_xlsx"),
    (lambda: crafted_xlsx(['<row r="2"><c r="A2" t="s"><v>99</v></c></row>']), "not_xlsx"),  # no such string
], ids=["dimension-20M-rows", "cell-in-row-20M", "5001-blank-rows", "5001-unnumbered-rows", "dimension-104-columns",
        "cell-in-column-61", "unpacks-to-41MB", "broken-xml", "missing-shared-string"])
def test_a_hostile_sheet_is_refused_at_once_with_a_clear_message(app, make, code):
    assert imports.ImportLimits.configured() == limits(max_rows=5000, max_columns=60)
    found, seconds = refused(make())
    assert found == code and seconds < 5  # a few hundredths of a second here


def test_blank_rows_within_the_limit_are_skipped_and_the_row_after_them_is_read(session, platform, admin):
    good = rows_xlsx([sample_row(1, 购置日期="2020-01-01")])  # text: the crafted file has no date style
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    data_row = sheet.split("</row>", 1)[1].split("</sheetData>")[0].replace('r="2"', 'r="4000"')
    data_row = re.sub(r'r="([A-Z]+)2"', r'r="\g<1>4000"', data_row)
    rows = imports.read_workbook(crafted_xlsx([data_row]))
    assert [row.number for row in rows] == [4000] and not rows[0].errors


def test_too_many_filled_cells_are_refused(session):
    assert refused(rows_xlsx([sample_row(n) for n in range(3)]), max_cells=50)[0] == "too_many_cells"


def test_a_shared_string_table_longer_than_the_cells_allowed_is_refused_before_it_is_read(app):
    """Counted as it unpacks, in chunks of 1 MB: 2.1 KB strings make some cross a chunk's edge."""
    def workbook(strings: int) -> bytes:
        return crafted_xlsx(['<row r="2"><c r="A2" t="s"><v>0</v></c></row>'],
                                    shared_strings=(f"KQ-S-{n}" + "长" * 700 * bool(n) for n in range(strings)))

    assert refused(workbook(1001), max_cells=1000)[0] == "too_many_cells"
    rows = imports.read_workbook(workbook(1000), limits(max_cells=1000))  # its strings are read
    assert rows[0].values["asset_number"] == "KQ-S-0"


def test_a_part_read_whole_is_limited_on_its_own(session):
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(rows_xlsx([sample_row(1)]))) as source, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "xl/styles.xml":  # 2 MB of cell styles would take openpyxl seconds and 40 MB
                content = content.replace(b"</styleSheet>", b" " * 2 * 1024 * 1024 + b"</styleSheet>")
            target.writestr(name, content)
    assert refused(buffer.getvalue())[0] == "file_too_large"


def test_an_amount_of_1e26_yuan_is_a_cell_error_not_a_crash(session, platform):
    for value in ("1e26", 1e26, "-1e26", "1e999999999"):
        assert row_errors(session, platform, [sample_row(1, **{"原值（元）": value})]) == [(2, "原值（元）")], value


def test_the_page_reads_the_file_before_its_transaction_begins(login_as, session, platform, transaction_spy):
    """On SQLite a transaction holds the write lock from its BEGIN: while the page reads the file, none
    is open, so other requests write meanwhile."""
    transaction_spy.watch(imports, "read_workbook")
    response = upload(login_as("platform"), rows_xlsx([sample_row(1)]))
    assert response.status_code == 302 and transaction_spy.open_at_calls == [False]
    assert count(session, platform) >= 1
