"""The downloadable survey template: Chinese columns, drop-downs, text-formatted IDs, instructions,
the village pre-filled, and a filled-in template reads back through the importer."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from shouhu.conftest import new_id_number
from shouhu.intake.columns import BY_KEY, COLUMNS
from shouhu.intake.reader import read_rows, validate_row
from shouhu.intake.template import (
    DATA_SHEET,
    FIRST_DATA_ROW,
    HEADER_ROW,
    HELP_SHEET,
    template_bytes,
)


def column_index(key: str) -> int:
    return [c.key for c in COLUMNS].index(key) + 1


def test_template_for_a_village(db, hutang_village):
    wb = load_workbook(io.BytesIO(template_bytes(hutang_village, rows=50)))
    assert wb.sheetnames[0] == DATA_SHEET and HELP_SHEET in wb.sheetnames
    ws = wb[DATA_SHEET]
    assert [ws.cell(HEADER_ROW, i).value for i in range(1, len(COLUMNS) + 1)] == [c.header for c in COLUMNS]
    assert hutang_village.name in ws.cell(1, 1).value
    # ID and phone columns are text, so Excel keeps all 18 digits.
    for key in ("id_number", "father_id_number", "father_phone", "carer_id_number", "carer_phone"):
        assert ws.cell(FIRST_DATA_ROW + 10, column_index(key)).number_format == "@", key
    # The village is pre-filled.
    assert ws.cell(FIRST_DATA_ROW, column_index("region")).value == hutang_village.name
    assert ws.cell(FIRST_DATA_ROW + 49, column_index("region_code")).value == hutang_village.code
    # Drop-downs on the coded columns, from the hidden options sheet.
    covered = {}
    for dv in ws.data_validations.dataValidation:
        if dv.type == "list":
            for ref in str(dv.sqref).split():
                covered[ref.split(":")[0].rstrip("0123456789")] = dv.formula1
    from openpyxl.utils import get_column_letter

    for key in ("school_stage", "health", "guardianship_type", "father_situation", "hukou_type", "boarding"):
        assert get_column_letter(column_index(key)) in covered, key
    options = wb["选项"]
    assert options.sheet_state == "hidden"
    values = {
        options.cell(1, c).value: [options.cell(r, c).value for r in range(2, options.max_row + 1)]
        for c in range(1, options.max_column + 1)
    }
    assert [v for v in values["就学阶段"] if v] == list(BY_KEY["school_stage"].options)
    help_text = " ".join(str(c.value) for row in wb[HELP_SHEET].iter_rows() for c in row if c.value)
    assert "文本" in help_text and "3.20412E+17" in help_text and hutang_village.code in help_text


def test_filled_template_reads_back(db, users, hutang_village):
    wb = load_workbook(io.BytesIO(template_bytes(hutang_village, rows=30)))
    ws = wb[DATA_SHEET]
    row = FIRST_DATA_ROW + 1  # the first pre-filled row left empty: skipped
    child_id = new_id_number(date(2016, 6, 6))
    for key, value in {
        "name": "模板娃",
        "id_number": child_id,
        "school_stage": "幼儿园",
        "health": "健康",
        "birth_date": date(2016, 6, 6),
        "father_name": "模板爸",
        "father_situation": "外出务工",
    }.items():
        ws.cell(row, column_index(key), value)
    buffer = io.BytesIO()
    wb.save(buffer)
    reader = read_rows(buffer.getvalue(), "模板.xlsx")
    assert reader.header.row == HEADER_ROW and not reader.header.unknown
    rows = list(reader)
    assert [raw.row for raw in rows] == [row]
    result = validate_row(rows[0], users["village_hutang"])
    assert result.ok, [str(e) for e in result.errors]
    assert result.child["region"].code == hutang_village.code and result.child["id_number"] == child_id


def test_template_without_region_and_for_a_town(db, hutang_village):
    wb = load_workbook(io.BytesIO(template_bytes(None, rows=5)))
    assert wb[DATA_SHEET].cell(FIRST_DATA_ROW, column_index("region")).value is None
    town = hutang_village.parent
    wb = load_workbook(io.BytesIO(template_bytes(town, rows=5)))
    assert wb[DATA_SHEET].cell(FIRST_DATA_ROW, column_index("region")).value is None
    assert hutang_village.name in [c.value for c in wb["选项"]["A"]]


def test_management_command(db, tmp_path, hutang_village):
    out = tmp_path / "t.xlsx"
    call_command("survey_template", str(out), "--region", hutang_village.code, "--rows", "20", stdout=io.StringIO())
    wb = load_workbook(out)
    assert wb[DATA_SHEET].cell(FIRST_DATA_ROW, column_index("region_code")).value == hutang_village.code
    with pytest.raises(CommandError):
        call_command("survey_template", str(out), "--region", "999999999999", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("survey_template", str(tmp_path / "t.xls"), stdout=io.StringIO())
