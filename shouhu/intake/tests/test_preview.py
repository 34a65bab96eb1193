"""The import preview (dry run): new / changed / unchanged / invalid against the ledger, a masked
field-level diff for changed children, and not one write to the database."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from shouhu.conftest import new_id_number
from shouhu.intake.preview import EMPTY, FieldDiff, preview_import
from shouhu.intake.reader import SurveyFileError, read_rows, validate_rows
from shouhu.intake.tests.test_reader import FULL_HEADERS, adult_id, csv_bytes, full_row, xlsx
from shouhu.lib.text import mask_address, mask_phone

HEADERS = ["所在村（社区）", "姓名", "身份证号", "就学阶段", "现住址", "父亲姓名", "父亲联系电话", "父亲情况"]


@pytest.fixture
def director(users):  # noqa: ANN001
    return users["village_hutang"]


@pytest.fixture
def ledger_child(director, hutang_village):  # noqa: ANN001
    """A child in the ledger with a household and a father working away."""
    from shouhu.registry import services

    child_id = new_id_number(date(2013, 5, 6))
    data = xlsx(
        [
            HEADERS,
            [hutang_village.name, "周小川", child_id, "小学", "湖塘镇人民路8号", "周大海", "13812345678", "外出务工"],
        ]
    )
    [result] = validate_rows(read_rows(data, "seed.xlsx"), director)
    assert result.ok, [str(e) for e in result.errors]
    return services.child_create(actor=director, **result.create_kwargs())


def _row(village, child, **changes):  # noqa: ANN001
    values = {
        "所在村（社区）": village.name,
        "姓名": child.name,
        "身份证号": child.id_number,
        "就学阶段": "小学",
        "现住址": "湖塘镇人民路8号",
        "父亲姓名": "周大海",
        "父亲联系电话": "13812345678",
        "父亲情况": "外出务工",
    }
    values.update(changes)
    return [values[h] for h in HEADERS]


def test_counts_and_rows_for_a_mixed_file(db, director, hutang_village, ledger_child, make_child):
    other = make_child(hutang_village, actor=director, name="吴小亮")
    data = xlsx(
        [
            HEADERS,
            [hutang_village.name, "郑新来", new_id_number(date(2016, 2, 2)), "幼儿园", "", "", "", ""],  # new
            _row(hutang_village, ledger_child, 就学阶段="初中"),  # changed
            [hutang_village.name, other.name, other.id_number, "小学", "", "", "", ""],  # unchanged
            [hutang_village.name, "王错号", "320481201501019999", "小学", "", "", "", ""],  # invalid ID
            [hutang_village.name, "周小川", ledger_child.id_number, "小学", "", "", "", ""],  # the same ID again
        ],
        title="湖塘村摸底排查表",
    )
    preview = preview_import(actor=director, source=data, filename="湖塘村.xlsx")
    assert preview.counts == {"new": 1, "changed": 1, "unchanged": 1, "invalid": 2}
    assert [(p.row, p.status) for p in preview.rows] == [
        (3, "new"),
        (4, "changed"),
        (5, "unchanged"),
        (6, "invalid"),
        (7, "invalid"),
    ]
    assert [p.name for p in preview.rows] == ["郑新来", "周小川", "吴小亮", "王错号", "周小川"]
    assert preview.rows[1].existing_child_id == ledger_child.pk and preview.rows[2].existing_child_id == other.pk
    assert preview.rows[0].existing_child_id is None and preview.rows[0].diffs == []
    assert preview.rows[2].diffs == []
    assert [e.row for e in preview.errors] == sorted(e.row for e in preview.errors)
    assert {e.row for e in preview.errors} == {6, 7}
    assert {(e.row, e.letter, e.column) for e in preview.errors if e.key == "id_number"} >= {
        (6, "C", "身份证号"),
        (7, "C", "身份证号"),
    }
    assert not preview.ok and preview.total == 5
    assert preview.format == "xlsx" and preview.sheet and preview.header_row == 2
    assert preview.sha256 == hashlib.sha256(data).hexdigest()
    assert preview.filename == "湖塘村.xlsx"


def test_diff_shows_old_and_new_masked_and_labelled(db, director, hutang_village, ledger_child):
    data = xlsx(
        [
            HEADERS,
            _row(
                hutang_village,
                ledger_child,
                就学阶段="初中",
                现住址="湖塘镇长安路100号",
                父亲联系电话="13987654321",
                父亲情况="服刑",
            ),
        ]
    )
    preview = preview_import(actor=director, source=data, filename="x.xlsx")
    [row] = preview.rows
    assert row.status == "changed"
    assert row.diffs == [
        FieldDiff("就学阶段", "小学", "初中"),
        FieldDiff("现住址", mask_address("湖塘镇人民路8号"), mask_address("湖塘镇长安路100号")),
        FieldDiff("父亲联系电话", mask_phone("13812345678"), mask_phone("13987654321")),
        FieldDiff("父亲情况", "外出务工", "服刑在押"),
    ]
    shown = " ".join(f"{d.old} {d.new}" for d in row.diffs)
    assert "13812345678" not in shown and "13987654321" not in shown and "人民路8号" not in shown
    label, old, new = row.diffs[0]  # a plain (label, old, new) triple
    assert (label, old, new) == ("就学阶段", "小学", "初中")


def test_a_blank_cell_is_not_an_edit(db, director, hutang_village, ledger_child):
    row = _row(hutang_village, ledger_child, 现住址="", 父亲联系电话="", 父亲情况=None)
    preview = preview_import(actor=director, source=xlsx([HEADERS, row]), filename="x.xlsx")
    assert preview.counts["unchanged"] == 1, preview.rows[0].diffs


def test_a_value_the_ledger_lacks_is_shown_as_added(db, director, hutang_village, make_child):
    child = make_child(hutang_village, actor=director)  # no family
    data = xlsx(
        [
            ["姓名", "身份证号", "就学阶段", "母亲姓名", "母亲身份证号", "母亲联系电话"],
            [child.name, child.id_number, "小学", "李春梅", adult_id(date(1989, 4, 4), male=False), "13700001234"],
        ]
    )
    preview = preview_import(actor=director, source=data, filename="x.xlsx")
    [row] = preview.rows
    assert row.status == "changed"
    diffs = {d.label: (d.old, d.new) for d in row.diffs}
    assert diffs["母亲姓名"] == (EMPTY, "李春梅")
    assert diffs["母亲联系电话"] == (EMPTY, mask_phone("13700001234"))
    old, new = diffs["母亲身份证号"]
    assert old == EMPTY and "*" in new and len(new) == 18


def test_a_file_equal_to_the_ledger_is_all_unchanged(db, director, hutang_village):
    """Idempotence, seen from the preview: import a full file, then preview it again."""
    from shouhu.registry import services

    rows = [
        full_row(hutang_village.name, new_id_number(date(2014, 4, 4))),
        [
            hutang_village.code,
            "蒋小米",
            new_id_number(date(2017, 7, 7)),
            "",
            "",
            "",
            "",
            "",
            "幼儿园",
            "",
            "否",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
    ]
    data = xlsx([FULL_HEADERS, *rows])
    first = preview_import(actor=director, source=data, filename="x.xlsx")
    assert first.counts == {"new": 2, "changed": 0, "unchanged": 0, "invalid": 0}, [str(e) for e in first.errors]
    for result in validate_rows(read_rows(data, "x.xlsx"), director):
        services.child_create(actor=director, **result.create_kwargs())
    again = preview_import(actor=director, source=data, filename="x.xlsx")
    assert again.counts == {"new": 0, "changed": 0, "unchanged": 2, "invalid": 0}, [r.diffs for r in again.rows]


def test_the_preview_writes_nothing(db, director, hutang_village, ledger_child):
    from shouhu.audit.models import AuditEvent
    from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation

    models = [Child, Household, FamilyMember, ParentSituation, Entrustment, AuditEvent]
    models += [model.history.model for model in (Child, Household, FamilyMember, ParentSituation, Entrustment)]

    def counts() -> list[int]:
        return [model.objects.count() for model in models]

    before = counts()
    data = xlsx(
        [
            HEADERS,
            _row(hutang_village, ledger_child, 就学阶段="初中", 父亲联系电话="13987654321"),
            [hutang_village.name, "郑新来", new_id_number(date(2016, 2, 2)), "幼儿园", "某路", "郑父", "", "外出务工"],
            [hutang_village.name, "王错号", "123", "小学", "", "", "", ""],
        ]
    )
    preview = preview_import(actor=director, source=data, filename="x.xlsx")
    assert preview.counts == {"new": 1, "changed": 1, "unchanged": 0, "invalid": 1}
    assert counts() == before
    ledger_child.refresh_from_db()
    assert ledger_child.school_stage == "primary" and ledger_child.version == 1


def test_csv_upload_and_header_warnings(db, director, hutang_village, ledger_child):
    data = csv_bytes(
        [["姓名", "身份证号", "就学阶段", "爱好"], [ledger_child.name, ledger_child.id_number, "小学", "画画"]], "gbk"
    )
    preview = preview_import(actor=director, source=data, filename="名单.csv")
    assert preview.format == "csv" and preview.sheet == "CSV"
    assert preview.counts["unchanged"] == 1
    assert "以下列无法识别，已忽略：D列“爱好”。" in preview.warnings


def test_a_path_and_a_file_object_are_accepted(db, director, hutang_village, ledger_child, tmp_path):
    data = xlsx([HEADERS, _row(hutang_village, ledger_child)])
    path = tmp_path / "名单.xlsx"
    path.write_bytes(data)
    by_path = preview_import(actor=director, source=path, filename="")
    with path.open("rb") as handle:
        by_handle = preview_import(actor=director, source=handle, filename="名单.xlsx")
    assert by_path.counts == by_handle.counts == {"new": 0, "changed": 0, "unchanged": 1, "invalid": 0}
    assert by_path.sha256 == by_handle.sha256 == hashlib.sha256(data).hexdigest()
    assert by_path.filename.endswith("名单.xlsx")


def test_an_unreadable_file_raises_the_readers_error(db, director):
    with pytest.raises(SurveyFileError):
        preview_import(actor=director, source=b"not a workbook at all\x00\x01", filename="x.xlsx")


def test_judicial_facts_stay_hidden_from_an_importer_not_cleared(db, director, hutang_village, ledger_child):
    from shouhu.intake.preview import RESTRICTED, _Differ
    from shouhu.registry.models import ParentSituation

    ParentSituation.objects.filter(member__child=ledger_child).update(kind="imprisoned")
    data = xlsx([HEADERS, _row(hutang_village, ledger_child)])
    [result] = validate_rows(read_rows(data, "x.xlsx"), director)
    differ = _Differ(director)
    assert differ.diff(result) == [FieldDiff("父亲情况", "服刑在押", "外出务工")]  # a village director is cleared
    differ.restricted = frozenset({"imprisoned"})  # as for a role without the judicial clearance
    assert differ.diff(result) == [FieldDiff("父亲情况", RESTRICTED, "外出务工")]


def test_ledger_children_are_compared_in_batches(db, director, hutang_village, make_child, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from shouhu.intake import preview as p

    children = [
        make_child(hutang_village, actor=director, name=f"批次{n}", birth=date(2014, 1, n + 1)) for n in range(5)
    ]
    rows = [["姓名", "身份证号", "就学阶段"]]
    rows += [[c.name, c.id_number, "初中" if n % 2 else "小学"] for n, c in enumerate(children)]
    data = xlsx(rows)
    monkeypatch.setattr(p, "BATCH", 2)
    preview = preview_import(actor=director, source=data, filename="x.xlsx")
    assert [r.status for r in preview.rows] == ["unchanged", "changed", "unchanged", "changed", "unchanged"]
    assert [r.existing_child_id for r in preview.rows] == [c.pk for c in children]
    assert preview.rows[1].diffs == [FieldDiff("就学阶段", "小学", "初中")]
    assert preview.counts == {"new": 0, "changed": 2, "unchanged": 3, "invalid": 0}
    # Reading the ledger for the comparison costs a few queries per batch, not per row.
    monkeypatch.setattr(p, "BATCH", 500)
    queries = {}
    for count in (1, 5):
        data = xlsx(rows[: count + 1])
        with CaptureQueriesContext(connection) as context:
            preview_import(actor=director, source=data, filename="x.xlsx")
        queries[count] = sum(
            "registry_familymember" in q["sql"] or "registry_entrustment" in q["sql"] for q in context.captured_queries
        )
    assert queries[1] == queries[5] == 2, queries


def test_coded_values_show_their_chinese_labels(db, users, hutang_village, make_child):
    from shouhu.org.models import Region

    town = users["town_hutang"]
    other = (
        Region.objects.filter(parent=hutang_village.parent, level=5)
        .exclude(code=hutang_village.code)
        .order_by("code")
        .first()
    )
    child = make_child(hutang_village, actor=town)
    data = xlsx(
        [
            [
                "村（社区）代码",
                "姓名",
                "身份证号",
                "就学阶段",
                "健康状况",
                "残疾类别",
                "残疾等级",
                "是否寄宿",
                "监护类型",
                "家庭经济状况",
                "收入来源",
            ],
            [
                other.code,
                child.name,
                child.id_number,
                "小学",
                "残疾",
                "肢体",
                "二级",
                "是",
                "较好",
                "低保",
                "务农、外出务工",
            ],
        ]
    )
    preview = preview_import(actor=town, source=data, filename="x.xlsx")
    [row] = preview.rows
    assert {d.label: (d.old, d.new) for d in row.diffs} == {
        "所在村（社区）": (f"{hutang_village.name}（{hutang_village.code}）", f"{other.name}（{other.code}）"),
        "健康状况": ("健康", "残疾"),
        "残疾类别": (EMPTY, "肢体"),
        "残疾等级": (EMPTY, "二级"),
        "是否寄宿": ("否", "是"),
        "监护类型": ("一般", "较好"),
        "家庭经济状况": ("一般", "低保"),
        "收入来源": (EMPTY, "务农、外出务工"),
    }
