"""XLSX bulk import of instruments (DESIGN §2.1): a template to fill in, every row checked, all or nothing.

The template's sheet names, column headers and the Chinese labels of choices (开放共享, 是/否) are data
a platform fills in, so they are not translated; the explanations and every message are.

A file is read in openpyxl's read-only mode. Each row is first checked for its shape (required cells,
amounts in yuan with at most two decimals, dates, choices), then against the record rules of the
registry (services.check_values, the same rules as the forms), then for duplicates inside the file.
Any bad row: nothing is imported and every error is reported by row and column. All good: every row
becomes an instrument in the caller's one transaction, created in bulk, with one audit entry each."""
from __future__ import annotations

import io
import re
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.db import utcnow
from core.errors import RuleBroken
from core.models import Platform, User
from core.states import move
from marketplace import services
from marketplace.models import (EDITABLE_FIELDS, INSTRUMENT_STATE_LABELS, INSTRUMENT_TRANSITIONS, Instrument,
                                InstrumentCategory, InstrumentState, SharingMode, to_json_value)
from marketplace.search import instrument_index_text

MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000
MAX_AMOUNT_FEN = 10 ** 15  # ten trillion yuan: anything above is a typing error
DATA_SHEET = "仪器"
HELP_SHEET = "填写说明"
CATEGORY_SHEET = "分类"
TEMPLATE_FILENAME = "仪器导入模板.xlsx"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

SHARING_MODE_CHOICES = {"开放共享": SharingMode.OPEN, "预约共享": SharingMode.APPOINTMENT, "内部使用": SharingMode.INTERNAL}
YES, NO = "是", "否"
YES_NO_CHOICES = {YES: True, NO: False, "y": True, "n": False, "yes": True, "no": False,
                  "true": True, "false": False, "1": True, "0": False}
CAPABILITY_SEPARATORS = re.compile(r"[；;\r\n]+")
DATE_TEXT = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CATEGORY_TEXT = re.compile(r"(\d{2,4})\s*(.*)")


@dataclass(frozen=True)
class Column:
    """One column of the template: its Chinese header (data) and the instrument field it fills."""

    header: str
    field: str
    kind: str  # text, category, amount, date, yes_no, capabilities, sharing_mode, email
    required: bool
    width: int
    example: str
    note: Any  # a lazy string


COLUMNS: tuple[Column, ...] = (
    Column("资产编号", "asset_number", "text", True, 16, "KQ-2021-0001",
           _l("The platform's own asset number. With the model it identifies the instrument: a platform has "
              "each model and asset number once.")),
    Column("中文名称", "name_zh", "text", True, 24, "液相色谱-质谱联用仪", _l("The name in Chinese, as users search for it.")),
    Column("英文名称", "name_en", "text", False, 24, "LC-MS/MS", _l("The name in English, if it has one.")),
    Column("型号", "model", "text", True, 16, "TSQ Altis Plus", _l("The manufacturer's model designation.")),
    Column("生产厂商", "manufacturer", "text", True, 22, "Thermo Fisher Scientific", _l("The manufacturer.")),
    Column("产地国别", "country_of_origin", "text", False, 10, "美国", _l("The country where it was made.")),
    Column("分类代码", "category_id", "category", True, 26, "0101 质谱仪器",
           _l("A sub-category: pick it from the drop-down list, or type its four-digit code (such as 0101) or "
              "its Chinese name.")),
    Column("原值（元）", "original_value_fen", "amount", True, 14, "3200000.00",
           _l("The purchase value in yuan: above zero, at most two decimals.")),
    Column("购置日期", "purchased_on", "date", False, 12, "2021-06-18",
           _l("The date of purchase: an Excel date or text as YYYY-MM-DD.")),
    Column("是否财政资金购置", "is_publicly_funded", "yes_no", False, 10, YES,
           _l("Whether public money paid for it: 是 or 否. Empty means 否.")),
    Column("楼宇", "building", "text", False, 12, "A 楼", _l("The building where it stands.")),
    Column("房间", "room", "text", False, 8, "301", _l("The room where it stands.")),
    Column("仪器描述", "description", "text", False, 30, "三重四极杆质谱，配超高效液相色谱",
           _l("What the instrument is and does.")),
    Column("测试能力", "capabilities", "capabilities", False, 30, "农药残留检测；药物代谢物定量",
           _l("The tests it offers; separate several with ； or line breaks.")),
    Column("样品要求", "sample_requirements", "text", False, 24, "液体样品 1 mL", _l("What samples must be like.")),
    Column("联系人", "contact_name", "text", False, 10, "陈老师", _l("Who answers questions about it.")),
    Column("联系电话", "contact_phone", "text", False, 14, "0575-88880000", _l("The contact's phone number.")),
    Column("联系邮箱", "contact_email", "email", False, 22, "lab@example.com", _l("The contact's e-mail address.")),
    Column("共享方式", "sharing_mode", "sharing_mode", False, 12, "开放共享",
           _l("开放共享 (open to all), 预约共享 (by appointment with the platform) or 内部使用 (internal use "
              "only). Empty means 开放共享.")),
    Column("本单位人员开机费（元）", "setup_fee_own_staff_fen", "amount", False, 12, "0",
           _l("The setup fee per use for the platform's own staff, in yuan. Empty means 0.")),
    Column("本单位人员每小时收费（元）", "hourly_rate_own_staff_fen", "amount", False, 12, "200",
           _l("The hourly rate for the platform's own staff, in yuan. Empty means 0.")),
    Column("区内企业开机费（元）", "setup_fee_district_enterprise_fen", "amount", False, 12, "100",
           _l("The setup fee per use for district enterprises, in yuan. Empty means 0.")),
    Column("区内企业每小时收费（元）", "hourly_rate_district_enterprise_fen", "amount", False, 12, "400",
           _l("The hourly rate for district enterprises, in yuan. Empty means 0.")),
    Column("其他用户开机费（元）", "setup_fee_other_fen", "amount", False, 12, "200",
           _l("The setup fee per use for other users, in yuan. Empty means 0.")),
    Column("其他用户每小时收费（元）", "hourly_rate_other_fen", "amount", False, 12, "600.50",
           _l("The hourly rate for other users, in yuan. Empty means 0.")),
)
HEADERS = tuple(column.header for column in COLUMNS)
COLUMN_BY_FIELD = {column.field: column for column in COLUMNS}
assert set(COLUMN_BY_FIELD) == set(EDITABLE_FIELDS), "one column per editable field of an instrument"

# What an empty optional cell means.
DEFAULTS: dict[str, Any] = {"name_en": "", "country_of_origin": "", "purchased_on": None, "is_publicly_funded": False,
                            "building": "", "room": "", "description": "", "capabilities": [],
                            "sample_requirements": "", "contact_name": "", "contact_phone": "", "contact_email": "",
                            "sharing_mode": SharingMode.OPEN, **{name: 0 for name in services.FEE_FIELDS}}


@dataclass(frozen=True)
class RowError:
    row: int  # as Excel shows it: the header is row 1
    column: str  # the Chinese header
    message: str

    def __str__(self) -> str:
        return _("Row %(row)d, «%(column)s»: %(message)s", row=self.row, column=self.column, message=self.message)


@dataclass
class ImportResult:
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (row number, instrument values)
    errors: list[RowError] = field(default_factory=list)
    imported: int = 0
    instrument_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class CellError(ValueError):
    """A cell's shape is wrong; the message says what the cell must hold."""


# --- the template -----------------------------------------------------------------------------

def _category_choice(category: InstrumentCategory) -> str:
    return f"{category.code} {category.name_zh}"


def template_xlsx(session: Session) -> bytes:
    """The file a platform fills in: the sheet 仪器 with one header per field and drop-downs, the sheet
    填写说明 explaining each column, and a hidden sheet with the category list."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = DATA_SHEET
    sheet.append(list(HEADERS))
    required_font, optional_font = Font(bold=True, color="C00000"), Font(bold=True)
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for index, column in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = required_font if column.required else optional_font
        cell.fill = header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.row_dimensions[1].height = 32
    sheet.freeze_panes = "A2"

    categories = [c for c in services.list_categories(session) if c.parent_id is not None]
    lists = workbook.create_sheet(CATEGORY_SHEET)
    for category in categories:
        lists.append([_category_choice(category)])
    lists.sheet_state = "hidden"

    last_row = MAX_IMPORT_ROWS + 1

    def drop_down(column_field: str, formula: str, *, strict: bool) -> None:
        letter = get_column_letter(HEADERS.index(COLUMN_BY_FIELD[column_field].header) + 1)
        validation = DataValidation(type="list", formula1=formula, allow_blank=True,
                                    errorStyle="stop" if strict else "warning", showErrorMessage=True,
                                    errorTitle=COLUMN_BY_FIELD[column_field].header,
                                    error=str(COLUMN_BY_FIELD[column_field].note))
        validation.add(f"{letter}2:{letter}{last_row}")
        sheet.add_data_validation(validation)

    # A typed code (0101) or name is accepted too, so the category list only warns.
    drop_down("category_id", f"'{CATEGORY_SHEET}'!$A$1:$A${max(len(categories), 1)}", strict=False)
    drop_down("sharing_mode", '"' + ",".join(SHARING_MODE_CHOICES) + '"', strict=True)
    drop_down("is_publicly_funded", f'"{YES},{NO}"', strict=True)

    help_sheet = workbook.create_sheet(HELP_SHEET, index=1)
    help_sheet.append([_("Column"), _("Required"), _("Format"), _("Example"), _("Explanation")])
    for cell in help_sheet[1]:
        cell.font, cell.fill = optional_font, header_fill
    for column in COLUMNS:
        help_sheet.append([column.header, _("Required") if column.required else _("Optional"),
                           _format_hint(column), column.example, str(column.note)])
    help_sheet.append([])
    for line in (_("One instrument per row, from the second row of the sheet «%(sheet)s»; keep its first row "
                   "as it is.", sheet=DATA_SHEET),
                 _("Columns in red are required."),
                 _("If any row has an error, nothing is imported, and the page lists every error by row and "
                   "column."),
                 _("At most %(rows)d rows and 10 MB per file.", rows=MAX_IMPORT_ROWS)):
        help_sheet.append([line])
    for letter, width in zip("ABCDE", (26, 10, 30, 28, 70)):
        help_sheet.column_dimensions[letter].width = width
    for row in help_sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    help_sheet.freeze_panes = "A2"

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _format_hint(column: Column) -> str:
    if column.kind == "text":
        length = getattr(Instrument.__table__.c[column.field].type, "length", None)
        return _("Text, at most %(n)d characters", n=length) if length else _("Text")
    return {
        "category": _("A sub-category from the list"),
        "amount": _("Amount in yuan, at most two decimals"),
        "date": _("Date (YYYY-MM-DD)"),
        "yes_no": f"{YES} / {NO}",
        "capabilities": _("Text; several separated by ；"),
        "sharing_mode": " / ".join(SHARING_MODE_CHOICES),
        "email": _("E-mail address"),
    }[column.kind]


# --- reading a file ---------------------------------------------------------------------------

def _normalise_header(value: Any) -> str:
    text = "" if value is None else str(value)
    return re.sub(r"\s+", "", text).replace("(", "（").replace(")", "）")


def _open_sheet(data: bytes):
    if len(data) > MAX_IMPORT_BYTES:
        raise RuleBroken("file_too_large", _("The file is larger than 10 MB. Split it into several files."),
                         field="file")
    not_xlsx = RuleBroken("not_xlsx", _("This is not an Excel workbook (.xlsx). Save the file as .xlsx, "
                                        "preferably starting from the template."), field="file")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise not_xlsx
    try:
        with warnings.catch_warnings():  # openpyxl warns of spreadsheet features it leaves out; they do not matter here
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError):
        raise not_xlsx from None
    sheet = workbook[DATA_SHEET] if DATA_SHEET in workbook.sheetnames else workbook.worksheets[0]
    return workbook, sheet


def _header_columns(header_row: tuple) -> list[Column | None]:
    """The column of each cell of the header row (None for empty cells); wrong_headers when they are off."""
    by_header = {_normalise_header(column.header): column for column in COLUMNS}
    found: list[Column | None] = []
    unknown: list[str] = []
    for value in header_row:
        name = _normalise_header(value)
        if not name:
            found.append(None)
            continue
        column = by_header.get(name)
        if column is None or column in found:
            unknown.append(str(value).strip())
        found.append(column)
    missing = [column.header for column in COLUMNS if column not in found]
    if missing or unknown:
        parts = [_("The first row of the sheet must hold the template's column headers.")]
        if missing:
            parts.append(_("Missing: %(headers)s.", headers="、".join(f"「{h}」" for h in missing)))
        if unknown:
            parts.append(_("Unknown or repeated: %(headers)s.", headers="、".join(f"「{h}」" for h in unknown)))
        raise RuleBroken("wrong_headers", " ".join(parts), field="file", details={"missing": missing, "unknown": unknown})
    return found


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _read_rows(data: bytes, max_rows: int) -> list[tuple[int, dict[str, Any]]]:
    """(row number, {field: raw cell value}) for every non-empty row under the headers."""
    workbook, sheet = _open_sheet(data)
    try:
        rows = sheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None or all(_is_blank(v) for v in header_row):
            raise RuleBroken("empty_sheet", _("The sheet «%(sheet)s» is empty: fill in one instrument per row "
                                              "under the headers.", sheet=sheet.title), field="file")
        columns = _header_columns(header_row)
        read: list[tuple[int, dict[str, Any]]] = []
        for number, cells in enumerate(rows, start=2):
            if all(_is_blank(v) for v in cells):
                continue
            if len(read) == max_rows:
                raise RuleBroken("too_many_rows", _("A file may hold at most %(n)d instruments. Split it into "
                                                    "several files.", n=max_rows), field="file")
            read.append((number, {column.field: value for column, value in zip(columns, cells) if column}))
    finally:
        workbook.close()
    if not read:
        raise RuleBroken("empty_sheet", _("The sheet «%(sheet)s» has no instruments: fill in one per row under "
                                          "the headers.", sheet=sheet.title), field="file")
    return read


# --- one cell ---------------------------------------------------------------------------------

def _text(value: Any) -> str:
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value).strip()


def parse_yuan(value: Any) -> int:
    """An amount in yuan (a number cell or text) → integer fen, exactly; at most two decimals."""
    if isinstance(value, bool) or isinstance(value, (date, datetime)):
        raise CellError(_("Enter an amount in yuan, such as 1234.56."))
    if isinstance(value, (int, float)):
        text = repr(value)  # a float cell's shortest round-trip text: 1234.56 stays 1234.56
    else:
        text = re.sub(r"[\s,，]", "", str(value)).lstrip("¥￥").removesuffix("元")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise CellError(_("Enter an amount in yuan, such as 1234.56.")) from None
    if not amount.is_finite():
        raise CellError(_("Enter an amount in yuan, such as 1234.56."))
    if amount != amount.quantize(Decimal("0.01")):
        raise CellError(_("An amount has at most two decimals (fen)."))
    fen = int(amount * 100)
    if abs(fen) >= MAX_AMOUNT_FEN:
        raise CellError(_("This amount is too large."))
    return fen


def _parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    match = DATE_TEXT.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if match:
        try:
            parsed = date(*(int(part) for part in match.groups()))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.year >= 1900:
            return parsed
    raise CellError(_("Enter a date as YYYY-MM-DD, such as 2021-06-18."))


def _parse_category(value: Any, categories: dict[str, int]) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        number = str(int(value))
        value = number.zfill(4) if len(number) > 2 else number.zfill(2)  # 0101 typed into a number cell
    text = _text(value)
    match = CATEGORY_TEXT.fullmatch(text)
    key = match.group(1) if match and (match.group(1) in categories) else text
    if key not in categories:
        raise CellError(_("Unknown category: pick one from the list, or give a code such as 0101 or its Chinese "
                          "name."))
    return categories[key]


def _parse_cell(column: Column, value: Any, categories: dict[str, int]) -> Any:
    kind = column.kind
    if kind == "amount":
        return parse_yuan(value)
    if kind == "date":
        return _parse_date(value)
    if kind == "category":
        return _parse_category(value, categories)
    if kind == "yes_no":
        choice = value if isinstance(value, bool) else YES_NO_CHOICES.get(_text(value).lower())
        if choice is None:
            raise CellError(_("Write %(yes)s or %(no)s.", yes=YES, no=NO))
        return choice
    if kind == "sharing_mode":
        text = _text(value)
        mode = SHARING_MODE_CHOICES.get(text) or (SharingMode(text) if text in set(SharingMode) else None)
        if mode is None:
            raise CellError(_("Choose one of: %(choices)s.", choices="、".join(SHARING_MODE_CHOICES)))
        return mode
    if kind == "capabilities":
        return [part.strip() for part in CAPABILITY_SEPARATORS.split(_text(value)) if part.strip()]
    text = _text(value)
    length = getattr(Instrument.__table__.c[column.field].type, "length", None)
    if length and len(text) > length:
        raise CellError(_("At most %(n)d characters.", n=length))
    if "\x00" in text:
        raise CellError(_("This text holds a character that is not allowed."))
    if kind == "email" and text and not EMAIL.fullmatch(text):
        raise CellError(_("This is not an e-mail address."))
    return text


def _category_lookup(categories: list[InstrumentCategory]) -> dict[str, int]:
    """Code, Chinese name or «code name» (as the drop-down writes it) → category id."""
    lookup: dict[str, int] = {}
    for category in categories:
        lookup[category.name_zh] = category.id
        lookup[_category_choice(category)] = category.id
        lookup[category.code] = category.id  # codes win over any name
    return lookup


# --- checking and importing -------------------------------------------------------------------

def validate_rows(session: Session, workbook_bytes: bytes, platform_id: int, *,
                  max_rows: int = MAX_IMPORT_ROWS) -> ImportResult:
    """Read and check every row; the errors of all rows, or the values ready to import. File-level
    problems raise RuleBroken (not_xlsx, file_too_large, wrong_headers, empty_sheet, too_many_rows)."""
    raw_rows = _read_rows(workbook_bytes, max_rows)
    known_categories = services.list_categories(session)  # held, so check_values finds them in the session
    categories = _category_lookup(known_categories)
    existing = {(model, asset_number) for model, asset_number in session.execute(
        select(Instrument.model, Instrument.asset_number).where(Instrument.platform_id == platform_id))}
    first_row_of: dict[tuple[str, str], int] = {}
    result = ImportResult()
    for number, cells in raw_rows:
        values: dict[str, Any] = {}
        row_errors: dict[str, str] = {}
        for column in COLUMNS:
            value = cells.get(column.field)
            if _is_blank(value):
                if column.required:
                    row_errors[column.field] = _("This field is required.")
                else:
                    values[column.field] = DEFAULTS[column.field]
                continue
            try:
                values[column.field] = _parse_cell(column, value, categories)
            except CellError as error:
                row_errors[column.field] = str(error)
        key = (values.get("model"), values.get("asset_number"))
        if None not in key:
            if key in existing:
                row_errors.setdefault("asset_number", _("This platform has an instrument of this model and asset "
                                                        "number already."))
            elif key in first_row_of:
                row_errors.setdefault("asset_number", _("Row %(row)d has the same model and asset number.",
                                                        row=first_row_of[key]))
            first_row_of.setdefault(key, number)
        # The record rules of the forms. Model and asset number are left out: their two rules (present;
        # not a duplicate of the platform's instruments) are checked above for all rows with one query.
        checked = {name: value for name, value in values.items() if name not in ("model", "asset_number")}
        for name, message in services.check_values(session, checked, platform_id=platform_id).items():
            row_errors.setdefault(name, message)
        if row_errors:
            result.errors.extend(RowError(number, column.header, row_errors[column.field])
                                 for column in COLUMNS if column.field in row_errors)
        else:
            result.rows.append((number, values))
    if result.errors:
        result.rows = []
    return result


def import_instruments(session: Session, platform: Platform, user: User, *, actor: Actor, data: bytes,
                       submit: bool, now: datetime) -> ImportResult:
    """All rows or none: raises RuleBroken("invalid_rows", details=the ImportResult with every error)
    when any row is bad; otherwise adds every instrument, as a draft or submitted for review, with one
    audit entry "instrument.imported" each. The caller's unit of work commits."""
    services.ensure_may_manage(user, platform.id)
    result = validate_rows(session, data, platform.id)
    if not result.ok:
        rows = len({error.row for error in result.errors})
        raise RuleBroken("invalid_rows", ngettext("%(num)d row has errors.", "%(num)d rows have errors.", rows),
                         field="file", details=result)
    instruments: list[Instrument] = []
    for _number, values in result.rows:
        instrument = Instrument(platform_id=platform.id, state=InstrumentState.DRAFT, **values)
        instrument.search_text = instrument_index_text(values)
        if submit:
            move(instrument, InstrumentState.SUBMITTED, INSTRUMENT_TRANSITIONS, INSTRUMENT_STATE_LABELS)
            instrument.submitted_at = now
        instruments.append(instrument)
    session.add_all(instruments)
    session.flush()  # one batched INSERT … RETURNING for all rows
    for (number, values), instrument in zip(result.rows, instruments):
        record_audit(session, actor, "instrument.imported", instrument,
                     after={**{name: to_json_value(value) for name, value in values.items()},
                            "state": instrument.state.value, "row": number})
    session.flush()
    result.imported = len(instruments)
    result.instrument_ids = [instrument.id for instrument in instruments]
    return result


# --- sample files, for tests and the benchmark ------------------------------------------------

def sample_row(n: int, *, category: str = "0101 质谱仪器", **changes: Any) -> dict[str, Any]:
    """A good row ({header: value}) for instrument number n."""
    row = {column.header: column.example for column in COLUMNS}
    row.update({"资产编号": f"KQ-IMP-{n:06d}", "中文名称": f"液相色谱-质谱联用仪 {n}", "型号": f"TSQ-{n % 97}",
                "分类代码": category, "原值（元）": 1_200_000 + n, "购置日期": date(2020, 1, 1)})
    row.update(changes)
    return row


def rows_xlsx(rows: list[dict[str, Any]], *, headers: tuple[str, ...] | list[str] = HEADERS,
              sheet_title: str = DATA_SHEET) -> bytes:
    """A workbook with the given headers and rows ({header: value}); for tests and the benchmark."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    sheet.append(list(headers))
    for row in rows:
        sheet.append([row.get(header) for header in headers])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def bench_import(session: Session, platform: Platform, user: User, rows: int = 5000) -> float:
    """Seconds to import a generated file of `rows` good rows into the platform (the file is made first,
    outside the timing). The caller decides whether to commit or roll back."""
    start_at = (session.scalar(select(Instrument.id).order_by(Instrument.id.desc()).limit(1)) or 0) + 1
    data = rows_xlsx([sample_row(start_at + n, 资产编号=f"KQ-BENCH-{start_at + n:07d}") for n in range(rows)])
    began = time.perf_counter()
    import_instruments(session, platform, user, actor=Actor.system("bench:import"), data=data, submit=False,
                       now=utcnow())
    return time.perf_counter() - began
