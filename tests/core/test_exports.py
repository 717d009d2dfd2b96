"""Every CSV and XLSX download neutralises cells a spreadsheet would run as a formula (CSV injection)."""
from __future__ import annotations

import csv
import io
from datetime import date

import openpyxl
import pytest

from core.exports import csv_bytes, safe_cell, xlsx_bytes

DANGEROUS = ["=1+1", "+86 575 8888 0000", "-2+3", "@SUM(A1:A2)", "\t=cmd|' /C calc'!A0", "\r=HYPERLINK(\"x\")",
             "=HYPERLINK(\"http://evil.example\",\"点我\")"]
HARMLESS = ["质谱仪", "TSQ Altis Plus", "a=b", "1+1", "lab@example.com", "", " =leading space", "'quoted"]
NUMBERS = [0, -5, 123456, -0.5, 3.25]


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes, sheet: str = "导出") -> list[list]:
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    return [list(row) for row in workbook[sheet].iter_rows(values_only=True)]


@pytest.mark.parametrize("value", DANGEROUS)
def test_a_cell_that_starts_like_a_formula_gets_an_apostrophe(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS + NUMBERS + [None, date(2026, 1, 5), True])
def test_other_cells_are_left_as_they_are(value):
    assert safe_cell(value) == value


def test_csv_neutralises_formulas_in_header_and_rows_and_keeps_the_rest():
    data = csv_bytes(["名称", "=header"], [[value, "ok"] for value in DANGEROUS + HARMLESS])
    rows = read_csv(data)
    assert rows[0] == ["名称", "'=header"]
    assert [row[0] for row in rows[1:]] == ["'" + v for v in DANGEROUS] + HARMLESS
    assert all(row[1] == "ok" for row in rows[1:])


def test_csv_writes_numbers_unchanged_and_none_as_empty():
    rows = read_csv(csv_bytes(["n"], [[value] for value in NUMBERS] + [[None]]))
    assert [row[0] for row in rows[1:]] == [str(value) for value in NUMBERS] + [""]


def test_csv_has_the_utf8_bom_and_round_trips_chinese():
    data = csv_bytes(["中文名称", "型号"], [["液相色谱-质谱联用仪", "TSQ Altis Plus"], ["扫描电子显微镜", "Sigma 300"]])
    assert data.startswith("\ufeff".encode())  # Excel opens it as UTF-8
    assert read_csv(data) == [["中文名称", "型号"], ["液相色谱-质谱联用仪", "TSQ Altis Plus"],
                              ["扫描电子显微镜", "Sigma 300"]]


def test_xlsx_neutralises_formulas_and_keeps_text_and_numbers():
    rows = [[value, 1] for value in DANGEROUS + HARMLESS] + [[number, "数字"] for number in NUMBERS]
    data = xlsx_bytes([("导出", ["名称", "@header"], rows)])
    read = read_xlsx(data)
    assert read[0] == ["名称", "'@header"]
    body = read[1:]
    assert [row[0] for row in body[:len(DANGEROUS)]] == ["'" + v for v in DANGEROUS]
    harmless = [row[0] for row in body[len(DANGEROUS):len(DANGEROUS) + len(HARMLESS)]]
    assert harmless == [v or None for v in HARMLESS]  # openpyxl writes "" as an empty cell
    assert [row[0] for row in body[-len(NUMBERS):]] == NUMBERS
    assert all(row[1] == 1 for row in body[:len(DANGEROUS) + len(HARMLESS)])


def test_xlsx_cells_hold_text_not_formulas():
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx_bytes([("导出", ["a"], [[v] for v in DANGEROUS])])))
    cells = [row[0] for row in workbook["导出"].iter_rows(min_row=2)]
    assert all(cell.data_type == "s" for cell in cells)  # "f" would be a formula


def test_xlsx_writes_one_sheet_per_table():
    data = xlsx_bytes([("仪器", ["名称"], [["质谱仪"]]), ("变更", ["字段"], [["=x"]])])
    assert read_xlsx(data, "仪器") == [["名称"], ["质谱仪"]]
    assert read_xlsx(data, "变更") == [["字段"], ["'=x"]]
