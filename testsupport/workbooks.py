"""Sample import files for the tests and the benchmark: good rows, workbooks of them, and hostile workbooks
that no spreadsheet program would write."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from datetime import date
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from openpyxl import Workbook

from marketplace.registry.imports import COLUMNS, DATA_SHEET, HEADERS, SHARED_STRINGS_PART


def sample_row(n: int, *, category: str = "0101 质谱仪器", **changes: Any) -> dict[str, Any]:
    """A good row ({header: value}) for instrument number n."""
    row = {column.header: column.example for column in COLUMNS}
    row.update({"资产编号": f"KQ-IMP-{n:06d}", "中文名称": f"液相色谱-质谱联用仪 {n}", "型号": f"TSQ-{n % 97}",
                "分类代码": category, "原值（元）": 1_200_000 + n, "购置日期": date(2020, 1, 1)})
    row.update(changes)
    return row


def rows_xlsx(rows: list[dict[str, Any]], *, headers: tuple[str, ...] | list[str] = HEADERS,
              sheet_title: str = DATA_SHEET) -> bytes:
    """A workbook with the given headers and rows ({header: value})."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    sheet.append(list(headers))
    for row in rows:
        sheet.append([row.get(header) for header in headers])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def crafted_xlsx(extra_rows: Iterable[str] = (), *, dimension: str | None = None, padding: int = 0,
                 shared_strings: Iterable[str] | None = None) -> bytes:
    """A workbook as rows_xlsx writes it with the headers only, then changed as no spreadsheet program
    would write it: the given <row> elements added to the data sheet (an iterable, so millions stream
    into the zip), a <dimension ref="…"> claiming any size, `padding` spaces between the rows (a part that
    unpacks to far more than its zip holds), a shared string table (as Excel and WPS write text; a cell
    <c t="s"><v>N</v></c> shows string N). For the tests and the benchmark of hostile files."""
    sheet_path = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(rows_xlsx([]))) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    head, tail = parts.pop(sheet_path).decode().split("</sheetData>")
    if dimension:
        head = head.replace("</sheetPr>", f'</sheetPr><dimension ref="{dimension}"/>', 1)
    if shared_strings is not None:
        parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(b"</Types>", (
            f'<Override PartName="/{SHARED_STRINGS_PART}" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sharedStrings+xml"/></Types>').encode())
        parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(b"</Relationships>", (
            b'<Relationship Id="rIdStrings" Target="sharedStrings.xml" Type="http://schemas.openxmlformats.org/'
            b'officeDocument/2006/relationships/sharedStrings"/></Relationships>'))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in parts.items():
            target.writestr(name, content)
        with target.open(sheet_path, "w", force_zip64=True) as sheet:
            sheet.write(head.encode())
            for _ in range(padding // 1_000_000):
                sheet.write(b" " * 1_000_000)
            sheet.write(b" " * (padding % 1_000_000))
            _write_batched(sheet, extra_rows)
            sheet.write(("</sheetData>" + tail).encode())
        if shared_strings is not None:
            with target.open(SHARED_STRINGS_PART, "w", force_zip64=True) as table:
                table.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
                _write_batched(table, (f"<si><t>{xml_escape(text)}</t></si>" for text in shared_strings))
                table.write(b"</sst>")
    return buffer.getvalue()


def _write_batched(target, pieces: Iterable[str]) -> None:
    batch: list[str] = []
    for piece in pieces:
        batch.append(piece)
        if len(batch) == 100_000:
            target.write("".join(batch).encode())
            batch.clear()
    target.write("".join(batch).encode())
