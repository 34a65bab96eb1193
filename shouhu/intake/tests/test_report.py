"""The error report: the uploaded sheet with exactly the bad cells marked (light red, a comment with
the Chinese message) and a 错误清单 sheet; a CSV or .xls upload gets a fresh .xlsx marked the same way."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from shouhu.conftest import new_id_number
from shouhu.intake.preview import preview_import
from shouhu.intake.report import ERROR_FILL, LIST_SHEET, error_report
from shouhu.intake.tests.test_reader import csv_bytes, xlsx

HEADERS = ["所在村（社区）", "姓名", "身份证号", "就学阶段", "学校", "备注"]


@pytest.fixture
def director(users):  # noqa: ANN001
    return users["village_hutang"]


def _rows(village) -> list[list[object]]:  # noqa: ANN001
    return [
        HEADERS,
        [village.name, "好一", new_id_number(date(2014, 1, 1)), "小学", "湖塘小学", "保留的备注"],
        [village.name, "坏二", "320481201501019999", "读书", "湖塘小学", ""],  # bad ID and bad stage
        [village.name, "好三", new_id_number(date(2015, 1, 1)), "初中", "", "=1+1"],
        ["火星村", "坏四", new_id_number(date(2016, 1, 1)), "小学", "", ""],  # unknown village
    ]


def _marked(ws) -> dict[str, str]:  # noqa: ANN001
    """Coordinate -> comment text of every marked cell (filled or commented)."""
    out = {}
    for row in ws.iter_rows():
        for cell in row:
            filled = cell.fill is not None and cell.fill.fgColor.rgb == ERROR_FILL.fgColor.rgb
            if filled or cell.comment is not None:
                assert filled and cell.comment is not None, cell.coordinate
                out[cell.coordinate] = cell.comment.text
    return out


def _expected(preview) -> dict[str, list[str]]:  # noqa: ANN001
    out: dict[str, list[str]] = {}
    for e in preview.errors:
        if e.letter:
            out.setdefault(f"{e.letter}{e.row}", []).append(e.message)
        else:  # no cell: noted on the row's first cell
            out.setdefault(f"A{e.row}", []).append(f"“{e.column}”：{e.message}")
    return out


def _check(report: bytes, preview, sheet_title: str | None = None) -> None:  # noqa: ANN001
    wb = load_workbook(io.BytesIO(report))
    assert wb.sheetnames[-1] == LIST_SHEET
    ws = wb[sheet_title] if sheet_title else wb.worksheets[0]
    expected = _expected(preview)
    marked = _marked(ws)
    assert set(marked) == set(expected), [str(e) for e in preview.errors]  # exactly the bad cells
    for coordinate, messages in expected.items():
        assert marked[coordinate] == "\n".join(messages)
    listing = [tuple(row) for row in wb[LIST_SHEET].iter_rows(values_only=True)]
    assert listing[0] == ("行", "列", "说明")
    assert listing[1:] == [
        (e.row, f"{e.letter}列 {e.column}" if e.letter else e.column, e.message) for e in preview.errors
    ]


def test_xlsx_report_marks_exactly_the_bad_cells(db, director, hutang_village):
    data = xlsx(_rows(hutang_village), title="湖塘镇摸底排查表", merges=["A1:F1"])
    preview = preview_import(actor=director, source=data, filename="名单.xlsx")
    assert preview.counts["invalid"] == 2 and {e.row for e in preview.errors} == {4, 6}
    assert {(e.row, e.letter) for e in preview.errors} >= {(4, "C"), (4, "D"), (6, "A")}
    report = error_report(source=data, filename="名单.xlsx", preview=preview)
    _check(report, preview)
    ws = load_workbook(io.BytesIO(report)).worksheets[0]
    # The upload itself: the title, the merge, every value kept (a formula stays what it was).
    assert ws["A1"].value == "湖塘镇摸底排查表" and "A1:F1" in {str(m) for m in ws.merged_cells.ranges}
    assert ws["F3"].value == "保留的备注" and ws["F5"].value == "=1+1" and ws["B6"].value == "坏四"
    assert "读书" in ws["D4"].comment.text and "火星村" in ws["A6"].comment.text


def test_csv_upload_gets_an_xlsx_report(db, director, hutang_village):
    data = csv_bytes(_rows(hutang_village), "gbk")
    preview = preview_import(actor=director, source=data, filename="名单.csv")
    assert preview.format == "csv" and preview.counts["invalid"] == 2
    report = error_report(source=data, filename="名单.csv", preview=preview)
    assert report[:4] == b"PK\x03\x04"
    _check(report, preview)
    ws = load_workbook(io.BytesIO(report)).worksheets[0]
    # Same header, same rows, at the same places; the ID stays text; "=1+1" is text, not a formula.
    assert [c.value for c in ws[1]] == HEADERS
    assert ws["B3"].value == "坏二" and ws["C3"].value == "320481201501019999"
    assert ws["F4"].value == "=1+1" and ws["F4"].data_type == "s"


def test_csv_with_a_title_row_keeps_the_row_numbers(db, director, hutang_village):
    data = csv_bytes([["湖塘镇摸底排查表"], *_rows(hutang_village)], "utf-8-sig")
    preview = preview_import(actor=director, source=data, filename="名单.csv")
    assert {e.row for e in preview.errors} == {4, 6}
    report = error_report(source=data, filename="名单.csv", preview=preview)
    _check(report, preview)


def test_an_error_without_a_cell_is_listed_and_noted_on_the_row(db, users, hutang_village):
    town = users["town_hutang"] if "town_hutang" in users else None
    if town is None:
        pytest.skip("no town user in the fixtures")
    data = xlsx([["姓名", "身份证号", "就学阶段"], ["无村名", new_id_number(date(2014, 1, 1)), "小学"]])
    preview = preview_import(actor=town, source=data, filename="x.xlsx")
    [error] = preview.errors
    assert error.letter == "" and error.row == 2  # no village column: 请填写所在村（社区）
    report = error_report(source=data, filename="x.xlsx", preview=preview)
    wb = load_workbook(io.BytesIO(report))
    ws = wb.worksheets[0]
    assert error.message in ws["A2"].comment.text
    listing = list(wb[LIST_SHEET].iter_rows(min_row=2, values_only=True))
    assert listing == [(2, error.column, error.message)]


def test_a_clean_file_gets_an_empty_list(db, director, hutang_village):
    data = xlsx([HEADERS, [hutang_village.name, "好一", new_id_number(date(2014, 1, 1)), "小学", "", ""]])
    preview = preview_import(actor=director, source=data, filename="x.xlsx")
    assert preview.ok
    wb = load_workbook(io.BytesIO(error_report(source=data, filename="x.xlsx", preview=preview)))
    assert list(wb[LIST_SHEET].iter_rows(min_row=2, values_only=True)) == []
    assert _marked(wb.worksheets[0]) == {}


def test_report_from_a_file_object_already_read(db, director, hutang_village, tmp_path):
    data = xlsx(_rows(hutang_village))
    path = tmp_path / "名单.xlsx"
    path.write_bytes(data)
    with path.open("rb") as handle:
        preview = preview_import(actor=director, source=handle, filename="名单.xlsx")
        report = error_report(source=handle, filename="名单.xlsx", preview=preview)
    _check(report, preview)
    _check(error_report(source=path, filename="名单.xlsx", preview=preview), preview)


def test_xls_upload_gets_an_xlsx_report(db, director, hutang_village, tmp_path):
    xlwt = pytest.importorskip("xlwt", reason="no .xls writer installed (xlwt); calamine reads .xls")
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("摸底")
    sheet.write(0, 0, "湖塘镇摸底排查表")
    for i, row in enumerate(_rows(hutang_village), start=1):
        for j, value in enumerate(row):
            sheet.write(i, j, value)
    path = tmp_path / "old.xls"
    book.save(str(path))
    preview = preview_import(actor=director, source=path, filename="old.xls")
    assert preview.format == "xls" and preview.sheet == "摸底" and {e.row for e in preview.errors} == {4, 6}
    report = error_report(source=path, filename="old.xls", preview=preview)
    _check(report, preview, "摸底")
    ws = load_workbook(io.BytesIO(report))["摸底"]
    assert ws["A1"].value == "湖塘镇摸底排查表" and [c.value for c in ws[2]] == HEADERS


def test_csv_report_from_a_file_object_already_read(db, director, hutang_village):
    handle = io.BytesIO(csv_bytes(_rows(hutang_village), "utf-8"))
    preview = preview_import(actor=director, source=handle, filename="名单.csv")
    _check(error_report(source=handle, filename="名单.csv", preview=preview), preview)


def test_filled_template_report_keeps_the_template(db, director, hutang_village, make_child):
    from shouhu.intake.columns import COLUMNS
    from shouhu.intake.template import DATA_SHEET, FIRST_DATA_ROW, HELP_SHEET, template_bytes

    def col(key: str) -> int:
        return [c.key for c in COLUMNS].index(key) + 1

    child = make_child(hutang_village, actor=director)
    wb = load_workbook(io.BytesIO(template_bytes(hutang_village, rows=20)))
    ws = wb[DATA_SHEET]
    filled = {
        FIRST_DATA_ROW: {"name": child.name, "id_number": child.id_number, "school_stage": "初中"},  # changed
        FIRST_DATA_ROW + 1: {"name": "模板新", "id_number": new_id_number(date(2016, 6, 6)), "school_stage": "幼儿园"},
        FIRST_DATA_ROW + 2: {
            "name": "模板错",
            "id_number": new_id_number(date(2016, 6, 7)),
            "school_stage": "幼儿园",
            "health": "残疾",
        },  # no disability type and grade
    }
    for row, values in filled.items():
        for key, value in values.items():
            ws.cell(row, col(key), value)
    buffer = io.BytesIO()
    wb.save(buffer)
    data = buffer.getvalue()
    preview = preview_import(actor=director, source=data, filename="模板.xlsx")
    assert preview.sheet == DATA_SHEET
    assert preview.counts == {"new": 1, "changed": 1, "unchanged": 0, "invalid": 1}
    assert {e.key for e in preview.errors} == {"disability_type", "disability_grade"}
    report = error_report(source=data, filename="模板.xlsx", preview=preview)
    _check(report, preview, DATA_SHEET)
    out = load_workbook(io.BytesIO(report))
    assert HELP_SHEET in out.sheetnames and out.active.title == DATA_SHEET
    assert out[DATA_SHEET].data_validations.dataValidation  # the drop-downs are still there
