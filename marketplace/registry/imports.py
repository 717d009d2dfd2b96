"""XLSX bulk import of instruments: a template to fill in, every row checked, all or nothing.

The template's sheet names, column headers and the Chinese labels of choices (开放共享, 是/否) are data
a platform fills in, so they are not translated; the explanations and every message are.

A file is read first, before any database transaction begins (read_workbook): in openpyxl's read-only
mode, within limits checked before the work they bound (ImportLimits), each row checked for its shape
(required cells, amounts in yuan with at most two decimals, dates, choices). Then, in the caller's
transaction (import_instruments), against the registry: categories, the record rules of the forms
(services.check_values), duplicates in the platform and inside the file. Any bad row: nothing is
imported and every error is reported by row and column. All good: every row becomes an instrument in
the caller's one transaction, created in bulk, with one audit entry each."""
from __future__ import annotations

import io
import re
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import current_app
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

from core import exports
from core.audit import Actor, record_audit
from core.errors import RuleBroken
from core.models import Platform, User
from core.money import AmountTooLarge, TooManyDecimals, yuan_to_fen
from core.states import move
from marketplace.registry import services
from marketplace.registry.models import (
    EDITABLE_FIELDS,
    INSTRUMENT_STATE_LABELS,
    INSTRUMENT_TRANSITIONS,
    Instrument,
    InstrumentCategory,
    InstrumentState,
    SharingMode,
    to_json_value,
)
from marketplace.registry.search import instrument_index_text

DATA_SHEET = "仪器"
HELP_SHEET = "填写说明"
CATEGORY_SHEET = "分类"
TEMPLATE_FILENAME = "仪器导入模板.xlsx"
XLSX_MIMETYPE = exports.XLSX_MIMETYPE
WRITE_BATCH = 500  # instruments written (and let go of) at a time: the memory of a 5,000-row import stays low

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


def category_choices(session: Session) -> list[str]:
    """The sub-categories as the template's drop-down offers them: «0101 质谱仪器»."""
    return [_category_choice(c) for c in services.list_categories(session) if c.parent_id is not None]


def template_xlsx(choices: list[str], limits: ImportLimits) -> bytes:
    """The file a platform fills in: the sheet 仪器 with one header per field and drop-downs, the sheet
    填写说明 explaining each column, and a hidden sheet with the category choices."""
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

    lists = workbook.create_sheet(CATEGORY_SHEET)
    for choice in choices:
        lists.append([choice])
    lists.sheet_state = "hidden"

    last_row = limits.max_rows + 1

    def drop_down(column_field: str, formula: str, *, strict: bool) -> None:
        letter = get_column_letter(HEADERS.index(COLUMN_BY_FIELD[column_field].header) + 1)
        validation = DataValidation(type="list", formula1=formula, allow_blank=True,
                                    errorStyle="stop" if strict else "warning", showErrorMessage=True,
                                    errorTitle=COLUMN_BY_FIELD[column_field].header,
                                    error=str(COLUMN_BY_FIELD[column_field].note))
        validation.add(f"{letter}2:{letter}{last_row}")
        sheet.add_data_validation(validation)

    # A typed code (0101) or name is accepted too, so the category list only warns.
    drop_down("category_id", f"'{CATEGORY_SHEET}'!$A$1:$A${max(len(choices), 1)}", strict=False)
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
                 _("At most %(rows)d rows and %(mb)d MB per file.", rows=limits.max_rows, mb=limits.max_megabytes)):
        help_sheet.append([line])
    for letter, width in zip("ABCDE", (26, 10, 30, 28, 70), strict=True):
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
#
# A file is read before any database transaction begins, within limits checked before the work they
# bound: the upload's size; the unpacked size of the workbook's parts (a zip's declared sizes bound
# what it unpacks to: a part longer than declared fails its CRC check), each part's own, and the count
# of shared strings; the sheet's rows under the header, empty ones included (openpyxl's read-only mode
# yields a row for each row number the sheet skips); its columns; its filled cells. The sheet's own
# dimension, which anyone may write, only serves to refuse early: the rows are counted as they stream,
# and the read stops at the limit. Cells right of the last column read are never looked at.

@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int
    max_unpacked_bytes: int
    max_rows: int  # under the header row, empty rows included
    max_columns: int
    max_cells: int  # filled cells

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> ImportLimits:
        return cls(max_bytes=config["IMPORT_MAX_BYTES"], max_unpacked_bytes=config["IMPORT_MAX_UNPACKED_BYTES"],
                   max_rows=config["IMPORT_MAX_ROWS"], max_columns=config["IMPORT_MAX_COLUMNS"],
                   max_cells=config["IMPORT_MAX_CELLS"])

    @classmethod
    def configured(cls) -> ImportLimits:
        return cls.of(current_app.config)

    @property
    def max_megabytes(self) -> int:
        return self.max_bytes // (1024 * 1024)


@dataclass
class ReadRow:
    """One filled row as the file gives it: each cell parsed to its field's shape (the category as the
    text to look up), and what is wrong with each cell that is not."""

    number: int  # as Excel shows it: the header is row 1
    values: dict[str, Any]
    errors: dict[str, str]


def _normalise_header(value: Any) -> str:
    text = "" if value is None else str(value)
    return re.sub(r"\s+", "", text).replace("(", "（").replace(")", "）")


def _not_xlsx() -> RuleBroken:
    return RuleBroken("not_xlsx", _("This is not an Excel workbook (.xlsx). Save the file as .xlsx, preferably "
                                    "starting from the template."), field="file")


# What a damaged or hostile file may raise from zipfile, the XML parser or openpyxl while it is read.
UNREADABLE = (InvalidFileException, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, IndexError, ValueError,
              TypeError, OSError, SyntaxError, EOFError)


# openpyxl streams a worksheet but reads every other part whole, into objects many times the part's size
# (a cell style from 100 bytes of styles.xml, a string of the shared table from 20): those parts have
# limits of their own, far above what a spreadsheet program writes for a sheet of instruments. The
# shared table holds at most one string per filled cell; its strings are counted before it is read.
WORKSHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml")
SHARED_STRINGS_PART = "xl/sharedStrings.xml"
SHARED_STRING = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,31}:)?si[\s/>]")
MAX_SHARED_STRINGS_BYTES = 16 * 1024 * 1024
MAX_OTHER_PART_BYTES = 1024 * 1024
MAX_PARTS = 1_000


def _check_archive(data: bytes, limits: ImportLimits) -> None:
    if len(data) > limits.max_bytes:
        raise RuleBroken("file_too_large", _("The file is larger than %(mb)d MB. Split it into several files.",
                                             mb=limits.max_megabytes), field="file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
            too_large = (len(parts) > MAX_PARTS or sum(part.file_size for part in parts) > limits.max_unpacked_bytes
                         or any(part.file_size > _part_limit(part.filename) for part in parts))
            too_many_strings = (not too_large and SHARED_STRINGS_PART in archive.namelist()
                                and _count_shared_strings(archive) > limits.max_cells)
    except UNREADABLE:
        raise _not_xlsx() from None
    if too_many_strings:
        raise _too_many_cells(limits)
    if too_large:
        raise RuleBroken("file_too_large", _("Unpacked, the workbook holds more than it may (at most %(mb)d MB in "
                                             "all). Split it into several files, each saved from the template.",
                                             mb=limits.max_unpacked_bytes // (1024 * 1024)), field="file")


def _count_shared_strings(archive: zipfile.ZipFile) -> int:
    """The <si> elements of the shared string table, counted as it unpacks (a match may span two chunks:
    the last bytes of each are searched again with the next, and counted only then)."""
    count, tail, overlap = 0, b"", 64
    with archive.open(SHARED_STRINGS_PART) as part:
        while chunk := part.read(1024 * 1024):
            buffer = tail + chunk
            count += sum(1 for match in SHARED_STRING.finditer(buffer) if match.start() < len(buffer) - overlap)
            tail = buffer[-overlap:]
    return count + len(SHARED_STRING.findall(tail))


def _part_limit(name: str) -> int:
    if WORKSHEET_PART.fullmatch(name):
        return sys.maxsize  # streamed: bounded by the unpacked total
    return MAX_SHARED_STRINGS_BYTES if name == SHARED_STRINGS_PART else MAX_OTHER_PART_BYTES


def _open_sheet(data: bytes, limits: ImportLimits):
    _check_archive(data, limits)
    try:
        with warnings.catch_warnings():  # openpyxl warns of spreadsheet features it leaves out; they do not matter here
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except UNREADABLE:
        raise _not_xlsx() from None
    sheets = {sheet.title: sheet for sheet in workbook.worksheets}
    sheet = sheets.get(DATA_SHEET) or next(iter(sheets.values()), None)
    if sheet is None:
        workbook.close()
        raise _not_xlsx()
    return workbook, sheet


def _too_many_rows(limits: ImportLimits) -> RuleBroken:
    return RuleBroken("too_many_rows", _("A sheet may have at most %(n)d rows under the headers, empty rows "
                                         "included. Delete the empty rows, or split the file into several.",
                                         n=limits.max_rows), field="file")


def _too_many_columns(limits: ImportLimits) -> RuleBroken:
    return RuleBroken("too_many_columns", _("A sheet may have at most %(n)d columns. Keep the template's columns "
                                            "and delete the others.", n=limits.max_columns), field="file")


def _too_many_cells(limits: ImportLimits) -> RuleBroken:
    return RuleBroken("too_many_cells", _("A sheet may have at most %(n)d filled cells. Split the file into "
                                          "several.", n=limits.max_cells), field="file")


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


def _stream(sheet, limits: ImportLimits) -> Iterator[tuple]:
    """The sheet's rows, each max_columns + 1 cells wide (a filled last cell is one column too many),
    whatever the sheet's dimension claims; a file that breaks off or holds bad XML is not_xlsx."""
    if (sheet.max_column or 0) > limits.max_columns:
        raise _too_many_columns(limits)
    if (sheet.max_row or 0) > limits.max_rows + 1:
        raise _too_many_rows(limits)
    sheet.reset_dimensions()  # rows past a claimed last row are read too, and counted
    rows = sheet.iter_rows(max_col=limits.max_columns + 1, values_only=True)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except UNREADABLE:
            raise _not_xlsx() from None
        yield row


def _read_cells(data: bytes, limits: ImportLimits) -> list[tuple[int, dict[str, Any]]]:
    """(row number, {field: cell value}) for every filled row under the headers."""
    workbook, sheet = _open_sheet(data, limits)
    try:
        rows = _stream(sheet, limits)
        header_row = next(rows, None)
        if header_row is None or all(_is_blank(v) for v in header_row):
            raise RuleBroken("empty_sheet", _("The sheet «%(sheet)s» is empty: fill in one instrument per row "
                                              "under the headers.", sheet=sheet.title), field="file")
        if not _is_blank(header_row[-1]):
            raise _too_many_columns(limits)
        columns = _header_columns(header_row[:-1])
        read: list[tuple[int, dict[str, Any]]] = []
        cells = 0
        for number, row in enumerate(rows, start=2):
            if number - 1 > limits.max_rows:
                raise _too_many_rows(limits)
            filled = sum(not _is_blank(v) for v in row)
            if not filled:
                continue
            if not _is_blank(row[-1]):
                raise _too_many_columns(limits)
            cells += filled
            if cells > limits.max_cells:
                raise _too_many_cells(limits)
            read.append((number, {column.field: value for column, value in zip(columns, row, strict=False) if column}))
    finally:
        workbook.close()
    if not read:
        raise RuleBroken("empty_sheet", _("The sheet «%(sheet)s» has no instruments: fill in one per row under "
                                          "the headers.", sheet=sheet.title), field="file")
    return read


def read_workbook(data: bytes, limits: ImportLimits | None = None) -> list[ReadRow]:
    """Every filled row of the file, its cells parsed to their shapes; no database is needed, so the
    caller does this before its transaction begins. File-level problems raise RuleBroken (not_xlsx,
    file_too_large, too_many_rows, too_many_columns, too_many_cells, wrong_headers, empty_sheet)."""
    rows = []
    for number, cells in _read_cells(data, limits or ImportLimits.configured()):
        row = ReadRow(number, {}, {})
        for column in COLUMNS:
            value = cells.get(column.field)
            if _is_blank(value):
                if column.required:
                    row.errors[column.field] = _("This field is required.")
                else:
                    row.values[column.field] = DEFAULTS[column.field]
                continue
            try:
                row.values[column.field] = _parse_cell(column, value)
            except CellError as error:
                row.errors[column.field] = str(error)
        rows.append(row)
    return rows


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
    """An amount in yuan (a number cell or text) → integer fen, exactly; at most two decimals, at most
    core.money.MAX_YUAN."""
    if isinstance(value, bool) or isinstance(value, (date, datetime)):
        raise CellError(_("Enter an amount in yuan, such as 1234.56."))
    if isinstance(value, (int, float)):
        text = repr(value)  # a float cell's shortest round-trip text: 1234.56 stays 1234.56
    else:
        text = re.sub(r"[\s,，]", "", str(value)).lstrip("¥￥").removesuffix("元")
    try:
        return yuan_to_fen(text)
    except AmountTooLarge:
        raise CellError(_("This amount is too large.")) from None
    except TooManyDecimals:
        raise CellError(_("An amount has at most two decimals (fen).")) from None
    except ValueError:
        raise CellError(_("Enter an amount in yuan, such as 1234.56.")) from None


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


def _category_text(value: Any) -> str:
    """The category cell as the text to look up (see _find_category)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        number = str(int(value))
        return number.zfill(4) if len(number) > 2 else number.zfill(2)  # 0101 typed into a number cell
    return _text(value)


def _find_category(text: str, categories: dict[str, int]) -> int:
    match = CATEGORY_TEXT.fullmatch(text)
    key = match.group(1) if match and (match.group(1) in categories) else text
    if key not in categories:
        raise CellError(_("Unknown category: pick one from the list, or give a code such as 0101 or its Chinese "
                          "name."))
    return categories[key]


def _parse_cell(column: Column, value: Any) -> Any:
    kind = column.kind
    if kind == "amount":
        return parse_yuan(value)
    if kind == "date":
        return _parse_date(value)
    if kind == "category":
        return _category_text(value)
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

def validate_rows(session: Session, rows: list[ReadRow], platform_id: int) -> ImportResult:
    """Check the rows read against the registry: their categories, the platform's instruments and each
    other, and the record rules of the forms; the errors of all rows, or the values ready to import."""
    known_categories = services.list_categories(session)  # held, so check_values finds them in the session
    categories = _category_lookup(known_categories)
    existing = {(model, asset_number) for model, asset_number in session.execute(
        select(Instrument.model, Instrument.asset_number).where(Instrument.platform_id == platform_id))}
    first_row_of: dict[tuple[str, str], int] = {}
    result = ImportResult()
    for row in rows:
        values, row_errors = dict(row.values), dict(row.errors)
        if "category_id" in values:
            try:
                values["category_id"] = _find_category(values["category_id"], categories)
            except CellError as error:
                row_errors["category_id"] = str(error)
                del values["category_id"]
        key = (values.get("model"), values.get("asset_number"))
        if None not in key:
            if key in existing:
                row_errors.setdefault("asset_number", _("This platform has an instrument of this model and asset "
                                                        "number already."))
            elif key in first_row_of:
                row_errors.setdefault("asset_number", _("Row %(row)d has the same model and asset number.",
                                                        row=first_row_of[key]))
            first_row_of.setdefault(key, row.number)
        # The record rules of the forms. Model and asset number are left out: their two rules (present;
        # not a duplicate of the platform's instruments) are checked above for all rows with one query.
        checked = {name: value for name, value in values.items() if name not in ("model", "asset_number")}
        for name, message in services.check_values(session, checked, platform_id=platform_id).items():
            row_errors.setdefault(name, message)
        if row_errors:
            result.errors.extend(RowError(row.number, column.header, row_errors[column.field])
                                 for column in COLUMNS if column.field in row_errors)
        else:
            result.rows.append((row.number, values))
    if result.errors:
        result.rows = []
    return result


def import_instruments(session: Session, platform: Platform, user: User, *, actor: Actor, rows: list[ReadRow],
                       submit: bool, now: datetime) -> ImportResult:
    """All rows or none, from the rows read_workbook gave: raises RuleBroken("invalid_rows",
    details=the ImportResult with every error) when any row is bad; otherwise adds every instrument, as a
    draft or submitted for review, with one audit entry "instrument.imported" each. The caller's unit of
    work commits."""
    services.ensure_may_manage(user, platform.id)
    result = validate_rows(session, rows, platform.id)
    if not result.ok:
        bad = len({error.row for error in result.errors})
        raise RuleBroken("invalid_rows", ngettext("%(num)d row has errors.", "%(num)d rows have errors.", bad),
                         field="file", details=result)
    for start in range(0, len(result.rows), WRITE_BATCH):
        batch = result.rows[start:start + WRITE_BATCH]
        instruments: list[Instrument] = []
        for _number, values in batch:
            instrument = Instrument(platform_id=platform.id, state=InstrumentState.DRAFT, **values)
            instrument.search_text = instrument_index_text(values)
            if submit:
                move(instrument, InstrumentState.SUBMITTED, INSTRUMENT_TRANSITIONS, INSTRUMENT_STATE_LABELS)
                instrument.submitted_at = now
            instruments.append(instrument)
        session.add_all(instruments)
        session.flush()  # one batched INSERT … RETURNING for the batch
        entries = [record_audit(session, actor, "instrument.imported", instrument,
                                after={**{name: to_json_value(value) for name, value in values.items()},
                                       "state": instrument.state.value, "row": number})
                   for (number, values), instrument in zip(batch, instruments, strict=True)]
        session.flush()
        result.instrument_ids.extend(instrument.id for instrument in instruments)
        for written in (*instruments, *entries):  # written: the session need not hold them to the commit
            session.expunge(written)
    result.imported = len(result.instrument_ids)
    return result
