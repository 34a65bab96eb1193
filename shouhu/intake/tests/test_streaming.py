"""Issue #4's memory goal: a survey file is read a row at a time (the sheet is never held whole),
what the import keeps per row is small, and on PostgreSQL the new records, their history and the
audit events go in with COPY, the same rows as `bulk_create` and simple-history write."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.db import connection
from openpyxl import Workbook

from shouhu.audit.models import AuditEvent
from shouhu.intake import xlsx as streaming
from shouhu.intake.reader import SeenIds, read_rows, validate_rows
from shouhu.intake.tests.test_commit import director  # noqa: F401 - fixture
from shouhu.intake.tests.test_preview import HEADERS
from shouhu.intake.tests.test_reader import xlsx
from shouhu.lib.crypto import blind_index
from shouhu.lib.idnumber import make_id_number
from shouhu.registry import services
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation


def _assorted() -> bytes:
    """One cell of each kind a sheet can hold, some rows and columns left empty."""
    wb = Workbook()
    ws = wb.active
    ws.append(
        [
            "文字",
            1,
            2.5,
            True,
            False,
            date(2015, 3, 8),
            datetime(2015, 3, 8, 10, 30),
            time(10, 30),
            timedelta(hours=30),
            320412201503081234,
            "=1+1",
            None,
            "末列",
        ]
    )
    for ref, value, fmt in (
        ("B3", 5, None),
        ("C3", "&<>\"'", None),
        ("D3", 42000, "yyyy/m/d"),
        ("E3", 42000, "0.00"),
        ("F3", 42000.5, "[$-F800]dddd, mmmm dd, yyyy"),
        ("G3", 20, 'yyyy"年"m"月"d"日"'),
        ("H3", 20, "[Red]0.00"),
        ("I3", 1.5, "[h]:mm:ss"),
        ("J3", 45000, "yyyy年m月d日"),
    ):
        ws[ref] = value
        if fmt:
            ws[ref].number_format = fmt
    ws["B6"] = "隔了两行"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _excel_like() -> bytes:
    """A workbook whose text is in the shared-string table, as Excel and WPS write it (openpyxl
    writes inline strings: its sheet is rewritten here), one string in rich-text runs with a
    phonetic guide (which is not part of the text)."""
    import re
    import zipfile

    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "备注"])
    ws.append(["张三", "320412201503081234", "A&B"])
    ws.append(["李四", "张三", "富文本"])  # a string used twice; the last one rewritten as runs below
    source = io.BytesIO()
    wb.save(source)
    strings: list[str] = []

    def shared(match: re.Match[str]) -> str:
        text = match.group(2)
        if text not in strings:
            strings.append(text)
        return f'<c r="{match.group(1)}" t="s"><v>{strings.index(text)}</v></c>'

    out = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info).decode()
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(r'<c r="([A-Z]+\d+)" t="inlineStr"><is><t>([^<]*)</t></is></c>', shared, data)
            elif info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(
                    "</Relationships>",
                    '<Relationship Id="rIdSST" Type="http://schemas.openxmlformats.org/'
                    'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                    "</Relationships>",
                )
            elif info.filename == "[Content_Types].xml":
                data = data.replace(
                    "</Types>",
                    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
                )
            new.writestr(info.filename, data)
        items = [
            '<si><r><t>富</t></r><r><rPr><b/></rPr><t>文本</t></r><rPh sb="0" eb="1"><t>fu</t></rPh></si>'
            if text == "富文本"
            else f"<si><t>{text}</t></si>"
            for text in strings
        ]
        new.writestr(
            "xl/sharedStrings.xml",
            '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
            f'openxmlformats.org/spreadsheetml/2006/main" count="{len(items)}">{"".join(items)}</sst>',
        )
    return out.getvalue()


@pytest.mark.parametrize("make", [_assorted, _excel_like])
def test_the_streamed_cells_are_those_python_calamine_reads(make):
    import python_calamine as pc

    data = make()
    book = streaming.Workbook(data)
    streamed = [cells for _number, cells in book.rows(book.sheets[0])]
    whole = [list(r) for r in pc.CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).iter_rows()]
    assert len(streamed) == len(whole)
    for mine, theirs in zip(streamed, whole, strict=True):
        width = max(len(mine), len(theirs))
        mine, theirs = mine + [""] * (width - len(mine)), theirs + [""] * (width - len(theirs))
        assert mine == theirs
        assert [type(v) for v in mine] == [type(v) for v in theirs]


def _big_sheet(rows: int) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("摸底排查表")
    ws.append(HEADERS)
    for i in range(rows):
        ws.append(
            [
                "人民村",
                f"学生{i:05d}",
                make_id_number("320411", date(2014, 1, 1) + timedelta(days=i), 1),
                "小学",
                f"湖塘镇人民路{i}号",
                "",
                "",
                "",
            ]
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_sheet_is_read_as_it_is_parsed_not_held_whole():
    data = _big_sheet(3000)
    book = streaming.Workbook(data)
    sheet = book.sheets[0]
    parsed = [0, 0]
    rows = book.rows(sheet, progress=parsed)
    first = [next(rows) for _ in range(10)]
    assert [n for n, _cells in first] == list(range(1, 11))
    # Ten rows in, only the first chunk of the sheet's XML has been parsed.
    assert 0 < parsed[0] < book.member_size(sheet) / 4
    assert parsed[1] < 1000
    assert sum(1 for _ in rows) == 3001 - 10  # and the rest follows, to the last row


def test_the_reader_yields_rows_lazily_and_estimates_the_total(db):
    reader = read_rows(_big_sheet(3000), "大表.xlsx")
    first = next(reader)
    assert first.row == 2 and first.values["name"] == "学生00000"
    assert 2000 < reader.total_estimate < 4000  # from the XML parsed so far (no <dimension> here)
    assert sum(1 for _ in reader) == 2999


def test_a_csv_is_decoded_as_it_is_read(db):
    text = (
        "\n".join([",".join(HEADERS), "人民村,王五," + make_id_number("320411", date(2015, 1, 1), 3) + ",小学,,,,"])
        + "\n"
    )
    for encoding in ("utf-8", "utf-8-sig", "gb18030", "utf-16"):
        [row] = list(read_rows(text.encode(encoding), "表.csv"))
        assert row.values["name"] == "王五", encoding


def test_the_ids_seen_in_a_file_take_tens_of_bytes_a_row():
    seen = SeenIds(capacity=8)
    indexes = [blind_index(str(n), purpose="child_id") for n in range(5000)]
    for row, index in enumerate(indexes, start=2):
        assert seen.get(index) is None
        seen.add(index, row)
    assert len(seen) == 5000
    assert seen.get(indexes[0]) == 2 and seen.get(indexes[-1]) == 5001
    seen.add(indexes[0], 9999)  # a later row keeps the first one's number
    assert seen.get(indexes[0]) == 2
    stored = len(seen._keys) + seen._rows.itemsize * len(seen._rows)  # noqa: SLF001
    assert stored / len(seen) <= 96


def test_a_duplicate_id_in_a_file_names_the_first_row(db, director, hutang_village):  # noqa: F811
    number = make_id_number("320411", date(2016, 6, 6), 777)
    rows = [HEADERS] + [[hutang_village.name, f"重复{i}", number, "小学", "", "", "", ""] for i in range(3)]
    results = list(validate_rows(read_rows(xlsx(rows), "dup.xlsx"), director))
    assert results[0].ok
    assert ["与第2行的身份证号重复" in str(e) for r in results[1:] for e in r.errors] == [True, True]


def _rows_of(model: type, pks: list, *, key: str = "id") -> list[dict]:
    """The stored rows of these records, as the database holds them (ciphertexts decrypted by the
    fields, which would fail on a wrong one), less the columns that differ by nature."""
    return list(model.objects.filter(**{f"{key}__in": pks}).order_by(key, "id").values())


# Each table a new child's records are in: (model, the column that finds them, their keys from the children).
_CHILDRENS_RECORDS: list[tuple[type, str, Any]] = [
    (Child, "id", lambda cs: [c.pk for c in cs]),
    (Household, "id", lambda cs: [c.household_id for c in cs]),
    (FamilyMember, "child_id", lambda cs: [c.pk for c in cs]),
    (Entrustment, "child_id", lambda cs: [c.pk for c in cs]),
    (ParentSituation, "member__child_id", lambda cs: [c.pk for c in cs]),
]


def _survey_rows(importer: Any, village: Any, tag: str, seq: int) -> list[dict]:
    """Three children's cleaned records (`create_kwargs`) read and validated from a survey sheet:
    household, both parents with situations, a carer."""
    from shouhu.intake.reader import RowValidator

    data = xlsx(
        [
            [
                "所在村（社区）",
                "姓名",
                "身份证号",
                "就学阶段",
                "现住址",
                "家庭经济状况",
                "父亲姓名",
                "父亲身份证号",
                "父亲联系电话",
                "父亲情况",
                "父亲情况起始日期",
                "母亲姓名",
                "母亲情况",
                "受委托人姓名",
                "受委托人与儿童关系",
                "受委托人联系电话",
                "委托起始日期",
                "收入来源",
            ]
        ]
        + [
            [
                village.name,
                f"{tag}童{i}",
                make_id_number("320404", date(2014, 2, 1 + i), seq + 2 * i),
                "小学",
                f"人民路{i}号",
                "低保",
                f"{tag}父",
                "",
                "13812345678",
                "外出务工",
                "2020-01-0" + str(i + 1),
                f"{tag}母",
                "死亡",
                "王奶奶",
                "祖母",
                "13987654321",
                "2021-05-01",
                "务农、政府救助",
            ]
            for i in range(3)
        ]
    )
    validator = RowValidator(importer)
    raw = list(read_rows(data, f"{tag}.xlsx"))
    validator.prefetch(raw)
    out = []
    for r in raw:
        result = validator.validate(r)
        assert result.ok, [str(e) for e in result.errors]
        out.append(result.create_kwargs())
    return out


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_copy_writes_the_rows_bulk_create_writes(db, director, hutang_village, monkeypatch):  # noqa: F811
    def rows(tag: str, seq: int) -> list[dict]:
        return _survey_rows(director, hutang_village, tag, seq)

    audit_before = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    copied = services.children_create_bulk(actor=director, rows=rows("甲", 101))
    audit_middle = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    monkeypatch.setattr(connection, "vendor", "other")  # the bulk_create path, on the same database
    bulk = services.children_create_bulk(actor=director, rows=rows("乙", 301))
    monkeypatch.undo()

    ignore = {
        "id",
        "history_id",
        "history_date",
        "name",
        "name_pinyin",
        "name_initials",
        "id_number",
        "id_number_index",
        "child_id",
        "household_id",
        "member_id",
        "registered_at",
        "updated_at",
        "birth_date",
        "address",
        "since",
    }

    def same(model: type, a: list, b: list, key: str) -> None:
        rows_a, rows_b = _rows_of(model, a, key=key), _rows_of(model, b, key=key)
        assert len(rows_a) == len(rows_b) > 0, model
        for x, y in zip(rows_a, rows_b, strict=True):
            assert {k: v for k, v in x.items() if k not in ignore} == {k: v for k, v in y.items() if k not in ignore}

    for model, key, pick in _CHILDRENS_RECORDS:
        same(model, pick(copied), pick(bulk), key)
        same(model.history.model, pick(copied), pick(bulk), key)

    # What the import reads back: the copied records decrypt, and point at each other.
    child = Child.objects.select_related("household").get(pk=copied[0].pk)
    assert child.id_number and child.household.address == "人民路0号"
    assert child.history.get().id_number == child.id_number and child.history.get().history_type == "+"
    father = FamilyMember.objects.get(child=child, relation="father")
    assert father.phone == "13812345678" and father.situations.get().kind == "out_for_work"

    # The audit events: one per child, chained, the same details either way.
    events = list(AuditEvent.objects.filter(seq__gt=audit_before).order_by("seq"))
    assert [e.object_id for e in events] == [str(c.pk) for c in copied + bulk]
    assert [e.detail for e in events if e.seq <= audit_middle] == [e.detail for e in events if e.seq > audit_middle]
    from shouhu.audit.services import verify_chain

    assert verify_chain().ok


def test_bulk_creation_writes_what_child_create_writes(db, director, hutang_village):  # noqa: F811
    """An import's new children are built without `Model(**kwargs)` and `_apply` per record
    (`lib.bulkcopy.Builder`): the records, and their history rows, hold what registering each
    child on its own (`child_create`) stores, but for the columns that differ by nature."""
    bulk = services.children_create_bulk(actor=director, rows=_survey_rows(director, hutang_village, "甲", 501))
    one_by_one = [
        services.child_create(actor=director, **row) for row in _survey_rows(director, hutang_village, "乙", 701)
    ]
    differ = {"id", "history_id", "history_date", "name", "name_pinyin", "name_initials", "id_number"}
    differ |= {"id_number_index", "child_id", "household_id", "member_id", "registered_at", "updated_at"}
    differ |= {"birth_date", "history_change_reason"}  # simple-history: "" in bulk, None per record
    for model, key, pick in _CHILDRENS_RECORDS:
        for table in (model, model.history.model):
            for pk_a, pk_b in zip(pick(bulk), pick(one_by_one), strict=True):  # child by child, in order
                a, b = _rows_of(table, [pk_a], key=key), _rows_of(table, [pk_b], key=key)
                assert len(a) == len(b) > 0, table
                for x, y in zip(a, b, strict=True):
                    assert {k: v for k, v in x.items() if k not in differ} == {
                        k: v for k, v in y.items() if k not in differ
                    }, table
    assert all(c.registered_by == director and c.household.address for c in bulk)


def test_the_new_childrens_evaluation_reads_them_from_the_import(db, director, hutang_village):  # noqa: F811
    """The commit keeps no list of the children it created: the job after it reads the items."""
    from shouhu.intake.jobs import evaluate_import
    from shouhu.intake.services import import_commit

    rows = [HEADERS] + [
        [hutang_village.name, f"新童{i}", make_id_number("320411", date(2015, 4, 1 + i), 9), "小学", "", "", "", ""]
        for i in range(3)
    ]
    imp = import_commit(actor=director, source=xlsx(rows), filename="新.xlsx")
    assert imp.state == "committed" and imp.counts["new"] == 3
    assert evaluate_import.call_local(imp.pk) == {"children": 3, "changed": 3}


def test_a_background_commit_leaves_the_kept_file_as_it_was_stored(db, director, hutang_village):  # noqa: F811
    """The job's row already holds the upload, encrypted: the commit neither reads it back nor
    encrypts it again (the same ciphertext, nonce and all, before and after)."""
    from shouhu.intake import jobs
    from shouhu.intake.models import ImportState, SurveyImport

    rows = [HEADERS] + [
        [hutang_village.name, f"后台{i}", make_id_number("320411", date(2015, 5, 1 + i), 11), "小学", "", "", "", ""]
        for i in range(2)
    ]
    data = xlsx(rows)
    imp = jobs.start_check(actor=director, data=data, filename="后台.xlsx")  # huey immediate: checked now

    def stored() -> bytes:
        with connection.cursor() as cursor:
            cursor.execute("SELECT file FROM intake_surveyimport WHERE id = %s", [imp.pk])
            return bytes(cursor.fetchone()[0])

    imp.refresh_from_db()
    assert imp.state == ImportState.PREVIEWED
    before = stored()
    assert jobs.start_commit(actor=director, imp=imp)
    done = SurveyImport.objects.get(pk=imp.pk)
    assert done.state == ImportState.COMMITTED and done.counts["new"] == 2
    assert stored() == before and done.file_bytes() == data


def test_the_changed_childrens_evaluation_runs_once_after_commit(
    db,
    director,  # noqa: F811
    hutang_village,
    make_child,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    """A changed row's writes schedule no evaluation each (a dozen queries per row); the job after
    the commit evaluates the changed children, read from the import's items."""
    from shouhu.intake.services import import_commit
    from shouhu.policy import signals
    from shouhu.policy.models import Proposal

    child = make_child(hutang_village, actor=director, name="留守测试", birth=date(2015, 6, 1))
    assert not Proposal.objects.filter(child=child, code="left_behind").exists()
    rows = [
        ["所在村（社区）", "姓名", "身份证号", "就学阶段", "父亲姓名", "父亲情况", "母亲姓名", "母亲情况"],
        [hutang_village.name, child.name, child.id_number, "小学", "留大", "外出务工", "留妈", "外出务工"],
    ]
    scheduled: list = []
    schedule = signals.schedule
    monkeypatch.setattr(signals, "schedule", lambda child_id: (scheduled.append(child_id), schedule(child_id)))
    with django_capture_on_commit_callbacks(execute=True):
        imp = import_commit(actor=director, source=xlsx(rows), filename="变更.xlsx")
    assert imp.state == "committed" and imp.counts["changed"] == 1
    assert scheduled == []  # no evaluation per saved record
    assert Proposal.objects.filter(child=child, code="left_behind").exists()  # the job's
