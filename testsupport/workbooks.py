"""Sample import files for the tests and the benchmark: good rows, workbooks of them, and hostile workbooks
that no spreadsheet program would write."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from datetime import date
from typing import Any

from openpyxl import Workbook

from marketplace.imports import COLUMNS, DATA_SHEET, HEADERS


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


def crafted_xlsx(extra_rows: Iterable[str] = (), *, dimension: str | None = None, padding: int = 0) -> bytes:
    """A workbook as rows_xlsx writes it with the headers only, its data sheet's XML then changed as no
    spreadsheet program would write it: the given <row> elements added (an iterable, so millions stream
    into the zip), a <dimension ref="…"> claiming any size, `padding` spaces between the rows (a part that
    unpacks to far more than its zip holds)."""
    sheet_path = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(rows_xlsx([]))) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    head, tail = parts.pop(sheet_path).decode().split("</sheetData>")
    if dimension:
        head = head.replace("</sheetPr>", f'</sheetPr><dimension ref="{dimension}"/>', 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in parts.items():
            target.writestr(name, content)
        with target.open(sheet_path, "w", force_zip64=True) as sheet:
            sheet.write(head.encode())
            for _ in range(padding // 1_000_000):
                sheet.write(b" " * 1_000_000)
            sheet.write(b" " * (padding % 1_000_000))
            batch: list[str] = []
            for row in extra_rows:
                batch.append(row)
                if len(batch) == 100_000:
                    sheet.write("".join(batch).encode())
                    batch.clear()
            sheet.write(("".join(batch) + "</sheetData>" + tail).encode())
    return buffer.getvalue()
