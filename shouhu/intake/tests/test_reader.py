"""Reading survey sheets: every messy case gives correct rows or a clear Chinese error, never an
exception. Fixture files are built here, by the tests."""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from datetime import date

import pytest
from openpyxl import Workbook

from shouhu.conftest import new_id_number
from shouhu.intake import reader as r
from shouhu.intake.reader import RowValidator, SurveyFileError, read_rows, validate_row
from shouhu.lib.crypto import blind_index
from shouhu.lib.idnumber import make_id_number

CJK = re.compile(r"[\u4e00-\u9fff]")


def xlsx(rows, *, merges=(), title=None) -> bytes:  # noqa: ANN001
    wb = Workbook()
    ws = wb.active
    if title:
        ws.append([title])
    for row in rows:
        ws.append(list(row))
    for merge in merges:
        ws.merge_cells(merge)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows, encoding: str) -> bytes:  # noqa: ANN001
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


_adult_seq = iter(range(100, 999))


def adult_id(birth: date, *, male: bool) -> str:
    """An adult's number (东城区, 110101, which existed before 1990)."""
    seq = next(_adult_seq)
    seq = seq if (seq % 2 == 1) == male else seq + 1
    return make_id_number("110101", birth, seq)


@pytest.fixture
def director(users):  # noqa: ANN001
    return users["village_hutang"]


def rows_of(data: bytes, name: str) -> list[r.RawRow]:
    return list(read_rows(data, name))


def file_error(data: bytes, name: str) -> str:
    with pytest.raises(SurveyFileError) as info:
        list(read_rows(data, name))
    assert CJK.search(info.value.message), info.value.message
    return info.value.message


# -- the header ------------------------------------------------------------------------------------------


def test_title_row_and_two_row_merged_header(db, director, hutang_village):
    child_id = new_id_number(date(2015, 3, 8))
    father_id = adult_id(date(1985, 6, 1), male=True)
    data = xlsx(
        [
            ["所在村（社区）", "姓名", "身份证号", "就学阶段", "父亲情况", None, None, None, "备注"],
            [None, None, None, None, "姓名", "身份证号码", "联系电话", "情况", None],
            [hutang_village.name, "张小明", child_id, "小学", "张大山", father_id, "13812345678", "外出务工", ""],
        ],
        title="湖塘镇 2026年摸底排查表",
        merges=["A1:I1", "A2:A3", "B2:B3", "C2:C3", "D2:D3", "E2:H2", "I2:I3"],
    )
    reader = read_rows(data, "survey.xlsx")
    assert reader.header.row == 3
    assert set(reader.header.by_key) >= {
        "region",
        "name",
        "id_number",
        "school_stage",
        "father_name",
        "father_id_number",
        "father_phone",
        "father_situation",
        "note",
    }
    assert reader.header.by_key["father_name"].header == "父亲情况/姓名"
    rows = list(reader)
    assert [raw.row for raw in rows] == [4]
    result = validate_row(rows[0], director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.child["name"] == "张小明" and result.child["region"].code == hutang_village.code
    father = result.members[0]
    assert father["relation"] == "father" and father["name"] == "张大山" and father["id_number"] == father_id
    assert [s["kind"] for s in father["situations"]] == ["out_for_work"]


def test_columns_in_any_order_with_variants_and_unknown_columns(db, director, hutang_village):
    child_id = new_id_number(date(2016, 1, 2))
    data = xlsx(
        [
            ["序号", "公民身份号码", "儿童姓名", "学段", "村（居）", "爱好"],
            [1, child_id, "李小花", "幼儿园", hutang_village.code, "画画"],
        ]
    )
    reader = read_rows(data, "a.xlsx")
    assert [c.header for c in reader.header.unknown] == ["爱好"]  # 序号 is ignored silently
    assert reader.header.warnings() == ["以下列无法识别，已忽略：F列“爱好”。"]
    rows = list(reader)
    result = validate_row(rows[0], director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.child["school_stage"] == "kindergarten"
    assert result.id_index == blind_index(child_id, purpose="child_id")


def test_no_header_in_first_ten_rows(db):
    rows = [[f"说明{i}"] for i in range(12)] + [["姓名", "身份证号"], ["张三", "1"]]
    assert "表头" in file_error(xlsx(rows), "x.xlsx")


def test_empty_rows_are_skipped_and_row_numbers_kept(db, director, hutang_village):
    data = xlsx(
        [
            ["姓名", "身份证号", "就学阶段", "所在村（社区）"],
            [None, None, None, None],
            ["王一", new_id_number(date(2014, 2, 2)), "小学", hutang_village.name],
            ["", "  ", "", ""],
            ["王二", new_id_number(date(2014, 3, 3)), "初中", hutang_village.name],
            [None, None, None, hutang_village.name],  # only the pre-filled village: empty
        ]
    )
    rows = rows_of(data, "x.xlsx")
    assert [raw.row for raw in rows] == [3, 5]
    validator = RowValidator(director)
    assert all(validator.validate(raw).ok for raw in rows)


# -- cells --------------------------------------------------------------------------------------------------


def test_id_typed_as_a_number_is_refused_with_the_excel_fix(db, director, hutang_village):
    child_id = new_id_number(date(2015, 3, 8))
    data = xlsx(
        [["姓名", "身份证号", "就学阶段", "村"], ["张三", int(child_id[:17] + "1"), "小学", hutang_village.name]]
    )
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    assert not result.ok
    [error] = [e for e in result.errors if e.key == "id_number"]
    assert "文本" in error.message and "E+17" in error.message
    assert error.column == "身份证号" and error.letter == "B" and error.row == 2


def test_id_in_scientific_notation_from_csv_is_refused(db, director, hutang_village):
    data = csv_bytes(
        [["姓名", "身份证号", "就学阶段", "村"], ["张三", "3.20412E+17", "小学", hutang_village.name]], "utf-8"
    )
    result = validate_row(rows_of(data, "x.csv")[0], director)
    [error] = [e for e in result.errors if e.key == "id_number"]
    assert "3.20412E+17" in error.message and "文本" in error.message


def test_full_width_digits_and_stray_spaces(db, director, hutang_village):
    child_id = new_id_number(date(2013, 7, 9))
    full = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in child_id)
    data = xlsx(
        [
            ["姓名", "身份证号", "出生日期", "就学阶段", "村", "父亲姓名", "父亲电话"],
            [
                " 赵  小龙 ",
                f" {full[:6]} {full[6:]} ",
                "２０１３年７月９日",
                " 小学 ",
                f" {hutang_village.name} ",
                "赵大龙",
                "138 1234 5678",
            ],
        ]
    )
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.child["id_number"] == child_id and result.child["name"] == "赵 小龙"
    assert result.child["birth_date"] == date(2013, 7, 9)
    assert result.members[0]["phone"] == "13812345678"


@pytest.mark.parametrize(
    "cell",
    ["2013.7.9", "2013-07-09", "2013/7/9", "2013年7月9日", "20130709", 20130709, 41464, "41464", date(2013, 7, 9)],
)
def test_birth_date_forms(db, director, hutang_village, cell):  # noqa: ANN001
    data = xlsx(
        [
            ["姓名", "身份证号", "出生日期", "就学阶段", "村"],
            ["钱小", new_id_number(date(2013, 7, 9)), cell, "小学", hutang_village.name],
        ]
    )
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.child["birth_date"] == date(2013, 7, 9)


def test_bad_date_and_coded_values_are_cell_errors(db, director, hutang_village):
    data = xlsx(
        [
            ["姓名", "身份证号", "出生日期", "就学阶段", "健康状况", "村", "母亲姓名", "母亲情况"],
            [
                "孙小",
                new_id_number(date(2013, 7, 9)),
                "2013年2月30日",
                "大学",
                "很好",
                hutang_village.name,
                "李梅",
                "出差",
            ],
        ]
    )
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    by_column = {e.column: e.message for e in result.errors}
    assert "不存在" in by_column["出生日期"]
    assert "小学" in by_column["就学阶段"] and "大学" in by_column["就学阶段"]
    assert "健康" in by_column["健康状况"]
    assert "出差" in by_column["母亲情况"]
    assert all(CJK.search(e.message) for e in result.errors)
    assert result.child == {} and result.members == []


def test_birth_date_disagreeing_with_id_uses_the_form_message(db, director, hutang_village):
    data = xlsx(
        [
            ["姓名", "身份证号", "出生日期", "就学阶段", "村"],
            ["周小", new_id_number(date(2013, 7, 9)), "2013-07-10", "小学", hutang_village.name],
        ]
    )
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    [error] = result.errors
    assert error.column == "出生日期" and "与身份证号不一致" in error.message


def test_duplicate_id_in_the_file(db, director, hutang_village):
    child_id = new_id_number(date(2012, 1, 1))
    data = xlsx(
        [
            ["姓名", "身份证号", "就学阶段", "村"],
            ["吴一", child_id, "小学", hutang_village.name],
            ["吴一", child_id.lower(), "小学", hutang_village.name],
        ]
    )
    validator = RowValidator(director)
    first, second = (validator.validate(raw) for raw in rows_of(data, "x.xlsx"))
    assert first.ok
    assert not second.ok and "第2行" in second.errors[0].message and second.id_index == first.id_index


def test_village_by_code_name_out_of_scope_and_unknown(db, director, hutang_village, niutang_village):
    ids = [new_id_number(date(2012, 1, d)) for d in range(1, 5)]
    data = xlsx(
        [
            ["姓名", "身份证号", "就学阶段", "所在村（社区）"],
            ["甲一", ids[0], "小学", hutang_village.code],
            ["甲二", ids[1], "小学", niutang_village.name],
            ["甲三", ids[2], "小学", "不存在村"],
            ["甲四", ids[3], "小学", niutang_village.code],
        ]
    )
    results = [validate_row(raw, director) for raw in rows_of(data, "x.xlsx")]
    assert results[0].ok
    assert "管辖范围" in results[1].errors[0].message
    assert "找不到" in results[2].errors[0].message
    assert "管辖范围" in results[3].errors[0].message


def test_missing_village_column_means_the_directors_own_village(db, director, hutang_village, users):
    data = xlsx([["姓名", "身份证号", "就学阶段"], ["郑一", new_id_number(date(2012, 5, 5)), "小学"]])
    reader = read_rows(data, "x.xlsx")
    assert reader.header.missing == ["所在村（社区）"]
    [raw] = list(reader)
    assert validate_row(raw, director).child["region"].code == hutang_village.code
    town = validate_row(raw, users["town_hutang"])
    assert [e.message for e in town.errors] == ["请填写所在村（社区）。"]


def test_existing_child_is_matched_by_blind_index_not_refused(db, director, hutang_village, make_child):
    child = make_child(hutang_village, actor=director)
    data = xlsx([["姓名", "身份证号", "就学阶段", "村"], [child.name, child.id_number, "初中", hutang_village.name]])
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.existing_child_id == child.pk and result.id_index == child.id_number_index
    assert result.child["school_stage"] == "junior"
    child.refresh_from_db()
    assert child.school_stage == "primary"  # validating wrote nothing


def test_existing_child_out_of_scope_is_refused(db, users, hutang_village, niutang_village, make_child):
    child = make_child(hutang_village, actor=users["village_hutang"])
    data = xlsx([["姓名", "身份证号", "就学阶段", "村"], [child.name, child.id_number, "初中", niutang_village.name]])
    result = validate_row(rows_of(data, "x.xlsx")[0], users["village_niutang"])
    assert result.existing_child_id is None
    assert any("无法登记" in e.message for e in result.errors)


# Every column a director fills in, and a row that fills each in as directors type it
# (dates in three spellings, codes by their Chinese names).
FULL_HEADERS = [
    "村",
    "姓名",
    "身份证号",
    "民族",
    "户口性质",
    "健康状况",
    "残疾类别",
    "残疾等级",
    "就学阶段",
    "学校",
    "是否寄宿",
    "监护类型",
    "家庭住址",
    "家庭经济状况",
    "收入来源",
    "已获救助",
    "父亲姓名",
    "父亲情况",
    "父亲情况起始日期",
    "母亲姓名",
    "母亲情况",
    "母亲残疾等级",
    "爷爷姓名",
    "受委托人姓名",
    "受委托人与儿童关系",
    "受委托人联系电话",
    "受委托人出生日期",
    "委托起始日期",
    "是否签订委托监护确认书",
    "确认书签订日期",
]


def full_row(village: str, id_number: str) -> list[str]:
    return [
        village,
        "冯小雨",
        id_number,
        "汉",
        "农业",
        "残疾",
        "肢体残疾",
        "二级",
        "小学",
        "湖塘实验小学",
        "是",
        "一般",
        "湖塘镇某路1号",
        "低保户",
        "外出务工、务农",
        "低保，医疗救助",
        "冯大",
        "服刑在押",
        "2022.1.1",
        "陈二",
        "重残",
        "一级",
        "冯老",
        "冯老",
        "爷爷",
        "13900001111",
        "1960-01-01",
        "2023/9/1",
        "是",
        "2023年9月1日",
    ]


def test_full_row_validates_and_creates_through_the_service(db, director, hutang_village):
    from shouhu.registry import services
    from shouhu.registry.models import Child

    child_id = new_id_number(date(2014, 4, 4))
    row = full_row(hutang_village.name, child_id)
    data = xlsx([FULL_HEADERS, row])
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.child["disability_grade"] == 2 and result.child["boarding"] is True
    assert result.household["income_sources"] == ["migrant_work", "farming"]
    assert result.household["economic_status"] == "dibao"
    father, mother, grandpa = result.members
    assert father["capacity"] == "none" and father["is_guardian"] is False
    assert father["situations"][0]["since"] == date(2022, 1, 1)
    assert mother["situations"][0]["disability_grade"] == 1
    assert grandpa["relation"] == "grandfather_p"
    assert result.entrustment["carer_relation"] == "grandfather_p" and result.entrustment["agreement_signed"]
    child = services.child_create(actor=director, **result.create_kwargs())
    assert Child.objects.get(pk=child.pk).family.count() == 3
    assert child.entrustments.get().since == date(2023, 9, 1)


def test_parent_errors_name_the_parent_column(db, director, hutang_village):
    mother_id = adult_id(date(1988, 1, 1), male=True)  # a man's number
    data = xlsx(
        [
            ["姓名", "身份证号", "就学阶段", "村", "母亲身份证号", "母亲情况"],
            ["褚一", new_id_number(date(2012, 1, 1)), "小学", hutang_village.name, mother_id, "重残"],
        ]
    )
    result = validate_row(rows_of(data, "x.xlsx")[0], director)
    columns = {e.column for e in result.errors}
    assert {"母亲身份证号"} <= columns  # 性别与“母亲”不符
    assert any(e.key == "mother_name" for e in result.errors)  # the name is required
    assert any("残疾等级" in e.message for e in result.errors)  # 重残 without a grade


# -- files ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
def test_csv_encodings(db, director, hutang_village, encoding):  # noqa: ANN001
    data = csv_bytes(
        [
            ["姓名", "身份证号", "就学阶段", "所在村（社区）", "备注"],
            ["欧阳小娟", new_id_number(date(2011, 11, 11)), "初中", hutang_village.name, "镕"],
        ],
        encoding,
    )
    [raw] = rows_of(data, "名单.csv")
    result = validate_row(raw, director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.child["name"] == "欧阳小娟" and result.child["note"] == "镕"


def test_csv_separated_by_tabs_in_utf16(db, director, hutang_village):
    text = (
        "姓名\t身份证号\t就学阶段\t村\r\n" + f"欧阳\t{new_id_number(date(2011, 1, 1))}\t初中\t{hutang_village.name}\r\n"
    )
    [raw] = rows_of(text.encode("utf-16"), "x.csv")
    assert validate_row(raw, director).ok


def test_undecodable_csv(db):
    assert "编码" in file_error(b"\xff\xfe\xfd" * 10 + "姓名".encode() + b"\x81", "x.csv")


@pytest.mark.parametrize(
    ("data", "name", "fragment"),
    [
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\x00\x00", "表.xlsx", "扩展名"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "表.xls", "扩展名"),
        (b"", "表.xlsx", "空"),
        (b"abc", "表.pdf", "不支持"),
    ],
)
def test_not_a_spreadsheet(db, data, name, fragment):  # noqa: ANN001
    assert fragment in file_error(data, name)


def test_a_zip_that_is_not_a_workbook(db):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    assert "扩展名" in file_error(buffer.getvalue(), "表.xlsx")


def test_damaged_xlsx(db):
    data = xlsx([["姓名", "身份证号"], ["a", "b"]])
    assert "扩展名" in file_error(data[: len(data) // 2], "表.xlsx")


def test_zip_bomb_is_refused_before_reading(db):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            chunk = b"\x00" * (1 << 20)
            for _ in range(40):
                member.write(chunk)
    data = buffer.getvalue()
    assert len(data) < 200_000
    assert "解压后过大" in file_error(data, "表.xlsx")


def test_uncompressed_size_limit(db, monkeypatch):
    monkeypatch.setattr(r, "MAX_UNCOMPRESSED_BYTES", 2000)
    data = xlsx([["姓名", "身份证号"]] + [[f"名字{i}", str(i)] for i in range(200)])
    assert "解压后过大" in file_error(data, "表.xlsx")


def test_encrypted_workbook(db):
    data = r._OLE2 + b"\x00" * 504 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 600
    assert "密码" in file_error(data, "表.xlsx")


def test_row_limit(db, monkeypatch):
    monkeypatch.setattr(r, "MAX_ROWS", 3)
    rows = [["姓名", "身份证号"]] + [[f"名{i}", str(i)] for i in range(5)]
    assert "拆分" in file_error(csv_bytes(rows, "utf-8"), "x.csv")
    assert "拆分" in file_error(xlsx(rows * 2), "x.xlsx")


def test_reads_from_a_path_and_a_file_object(db, tmp_path, hutang_village):
    data = xlsx([["姓名", "身份证号"], ["甲", "1"]])
    path = tmp_path / "a.xlsx"
    path.write_bytes(data)
    assert len(list(read_rows(path))) == 1
    assert len(list(read_rows(io.BytesIO(data), "a.xlsx"))) == 1


def test_xls_file(db, director, hutang_village, tmp_path):
    xlwt = pytest.importorskip("xlwt", reason="no .xls writer installed (xlwt); calamine reads .xls")
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Sheet1")
    for j, value in enumerate(["姓名", "身份证号", "就学阶段", "村"]):
        sheet.write(0, j, value)
    for j, value in enumerate(["老表", new_id_number(date(2012, 2, 2)), "小学", hutang_village.name]):
        sheet.write(1, j, value)
    path = tmp_path / "old.xls"
    book.save(str(path))
    [raw] = list(read_rows(path))
    assert validate_row(raw, director).ok


@pytest.mark.parametrize("seed", range(int(os.environ.get("SHOUHU_FUZZ_FILES", "12"))))
def test_garbage_never_escapes_as_an_exception(db, director, seed):  # noqa: ANN001
    import random

    rng = random.Random(seed)
    good = xlsx([["姓名", "身份证号", "出生日期", "村"], ["甲乙", "1" * 18, "2015.13.40", "x"]])
    choices = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))),
        bytearray(good),
        "姓名,身份证号\n".encode() + bytes(rng.randrange(32, 127) for _ in range(500)),
    ]
    data = bytearray(choices[seed % 3])
    if seed % 3 == 1:
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    for name in ("x.xlsx", "x.csv", "x.xls"):
        try:
            for raw in read_rows(bytes(data), name):
                result = validate_row(raw, director)
                assert all(CJK.search(e.message) for e in result.errors)
        except SurveyFileError as exc:
            assert CJK.search(exc.message)


def test_xls_id_typed_as_a_number(db, director, hutang_village, tmp_path):
    xlwt = pytest.importorskip("xlwt", reason="no .xls writer installed (xlwt); calamine reads .xls")
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Sheet1")
    for j, value in enumerate(["姓名", "身份证号", "就学阶段", "村"]):
        sheet.write(0, j, value)
    for j, value in enumerate(["老表", float(new_id_number(date(2012, 2, 2))[:17] + "1"), "小学", hutang_village.name]):
        sheet.write(1, j, value)
    path = tmp_path / "old.xls"
    book.save(str(path))
    [raw] = list(read_rows(path))
    assert "文本" in validate_row(raw, director).errors[0].message


def test_data_on_a_later_sheet_and_away_from_a1(db, director, hutang_village):
    wb = Workbook()
    wb.active.title = "说明"
    wb.active["A1"] = "请在第二个工作表填写"
    ws = wb.create_sheet("名单")
    ws["C5"], ws["D5"], ws["E5"], ws["F5"] = "姓名", "身份证号", "就学阶段", "村"
    ws["C6"], ws["D6"], ws["E6"], ws["F6"] = "远一", "bad", "小学", hutang_village.name
    hidden = wb.create_sheet("隐藏")
    hidden.sheet_state = "hidden"
    buffer = io.BytesIO()
    wb.save(buffer)
    reader = read_rows(buffer.getvalue(), "x.xlsx")
    assert reader.header.sheet == "名单" and reader.header.row == 5
    [raw] = list(reader)
    assert raw.row == 6
    [error] = validate_row(raw, director).errors
    assert error.letter == "D" and error.column == "身份证号" and "18位" in error.message
    assert str(error).startswith("第6行“身份证号”：")


def test_same_village_name_in_two_places_asks_for_the_code(db, users, hutang_village):
    from shouhu.org.models import Region

    town = hutang_village.parent
    twin = Region.objects.create(code=town.code[:9] + "999", name=hutang_village.name, level=5, parent=town)
    data = xlsx(
        [
            ["姓名", "身份证号", "就学阶段", "村", "村代码"],
            ["双一", new_id_number(date(2012, 1, 1)), "小学", hutang_village.name, ""],
            ["双二", new_id_number(date(2012, 1, 2)), "小学", hutang_village.name, twin.code],
        ]
    )
    first, second = (validate_row(raw, users["town_hutang"]) for raw in rows_of(data, "x.xlsx"))
    assert "多个" in first.errors[0].message and twin.code in first.errors[0].message
    assert second.ok and second.child["region"].code == twin.code


def test_village_committee_suffix_and_town_prefix(db, users, hutang_village):
    town = hutang_village.parent
    name = hutang_village.name
    committee = name[:-1] + "村民委员会" if name.endswith("村") else name + "居民委员会"
    data = xlsx(
        [
            ["姓名", "身份证号", "就学阶段", "村"],
            ["前一", new_id_number(date(2012, 1, 3)), "小学", town.name + name],
            ["前二", new_id_number(date(2012, 1, 4)), "小学", committee],
        ]
    )
    results = [validate_row(raw, users["town_hutang"]) for raw in rows_of(data, "x.xlsx")]
    assert [res.ok for res in results] == [True, True], [str(e) for res in results for e in res.errors]


def test_uploaded_file_object_gives_its_name(db):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("名单.csv", "姓名,身份证号\n甲,1\n".encode("gbk"))
    reader = read_rows(upload)
    assert reader.format == "csv" and len(list(reader)) == 1


def test_every_column_under_a_group_cell(db, director, hutang_village):
    mother_id = adult_id(date(1990, 2, 2), male=False)
    data = xlsx(
        [
            ["儿童基本情况", None, None, None, "母亲信息", None, "委托监护人", None],
            ["姓名", "身份证号", "就学情况", "村（社区）", "姓名", "身份证号", "姓名", "关系"],
            ["组一", new_id_number(date(2012, 6, 6)), "初中", hutang_village.name, "组母", mother_id, "组奶", "奶奶"],
        ],
        merges=["A1:D1", "E1:F1", "G1:H1"],
    )
    reader = read_rows(data, "x.xlsx")
    assert {k: c.letter for k, c in reader.header.by_key.items()} == {
        "name": "A",
        "id_number": "B",
        "school_stage": "C",
        "region": "D",
        "mother_name": "E",
        "mother_id_number": "F",
        "carer_name": "G",
        "carer_relation": "H",
    }
    result = validate_row(next(reader), director)
    assert result.ok, [str(e) for e in result.errors]
    assert result.members[0]["id_number"] == mother_id
    assert result.entrustment["carer_relation"] == "grandmother_p"
