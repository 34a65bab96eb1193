"""Spreadsheets out: the ledger list and the statistics tables, as the user sees them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from shouhu.audit.models import AuditEvent
from shouhu.lib.text import mask_id_number, mask_phone
from shouhu.lib.workbook import FORMULA_TRIGGERS, neutralise
from shouhu.registry.models import Child, ChildShare, FamilyMember
from shouhu.registry.selectors import children_visible_to

LEDGER = reverse("intake:export_ledger")
STATS = reverse("intake:export_stats")
ID_COL, NAME_COL, FATHER_PHONE_COL, NOTE_COL = 7, 2, 24, 34


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _workbook(response: Any) -> Any:
    assert response.status_code == 200, response.status_code
    return load_workbook(io.BytesIO(b"".join(response.streaming_content)))


def _rows(workbook: Any) -> list[tuple[Any, ...]]:
    ws = workbook["儿童台账"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("序号", "姓名", "性别")
    return rows[1:]


def _exports(user: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="export", actor_id=user.pk).order_by("seq"))


# ----- who gets what -----------------------------------------------------------------------------


def test_village_director_export_holds_exactly_the_children_of_their_ledger(
    users, hutang_village, niutang_village, make_child
):
    mine = make_child(hutang_village, name="湖塘导出娃")
    other = make_child(niutang_village, name="牛塘导出娃")
    director = users["village_hutang"]

    rows = _rows(_workbook(_client(director).get(LEDGER)))

    expected = children_visible_to(director).filter(status="active")
    assert sorted(r[NAME_COL - 1] for r in rows) == sorted(expected.values_list("name", flat=True))
    assert len(rows) == expected.count() > 0
    names = {r[NAME_COL - 1] for r in rows}
    assert mine.name in names and other.name not in names
    assert {r[8] for r in rows} <= {hutang_village.name}  # the village column: only their own village
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))


def test_export_keeps_the_filters_and_the_search_of_the_page(users, hutang_village, make_child):
    make_child(hutang_village, name="筛选甲", school_stage="junior")
    make_child(hutang_village, name="筛选乙", school_stage="primary")
    client = _client(users["town_hutang"])

    workbook = _workbook(client.get(LEDGER, {"school_stage": "junior"}))
    rows = _rows(workbook)
    assert rows and {r[11] for r in rows} == {"初中"}
    assert ("筛选条件", "状态=在册；就学阶段=初中") in list(workbook["说明"].iter_rows(values_only=True))
    assert "筛选甲" in {r[1] for r in rows} and "筛选乙" not in {r[1] for r in rows}

    response = client.post(reverse("registry:search"), {"q": "筛选乙"})
    token = response["Location"].split("s=")[1]
    rows = _rows(_workbook(client.get(LEDGER, {"s": token})))
    assert [r[1] for r in rows] == ["筛选乙"]
    event = _exports(users["town_hutang"])[-1]
    assert event.detail["filters"] == {"status": "active", "search": "name"}
    assert "筛选乙" not in json.dumps(event.detail, ensure_ascii=False)


def test_leader_gets_the_statistics_but_never_the_ledger(users):
    client = _client(users["leader"])
    assert client.get(LEDGER).status_code == 403
    assert client.get(LEDGER, {"unmasked": "1"}).status_code == 403
    assert _workbook(client.get(STATS))
    assert [e.detail["kind"] for e in _exports(users["leader"])] == ["stats"]


def test_roles_without_a_ledger_or_statistics_are_refused(users, client):
    assert _client(users["auditor"]).get(LEDGER).status_code == 403
    assert _client(users["village_hutang"]).get(STATS).status_code == 403
    assert client.get(LEDGER).status_code == 302  # anonymous: to the login page


def test_export_is_an_attachment_never_cached(users):
    response = _client(users["village_hutang"]).get(LEDGER)
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"].startswith("attachment;")
    assert ".xlsx" in response["Content-Disposition"]
    assert response["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")


# ----- masking -------------------------------------------------------------------------------------


@pytest.fixture
def child_with_phone(hutang_village, make_child):
    child = make_child(hutang_village, name="电话娃")
    FamilyMember.objects.create(child=child, relation="father", name="电话爸", phone="13812345678", is_guardian=True)
    return child


def _row_of(rows: list[tuple[Any, ...]], name: str) -> tuple[Any, ...]:
    return next(r for r in rows if r[NAME_COL - 1] == name)


def test_identifiers_are_masked_by_default(users, child_with_phone):
    rows = _rows(_workbook(_client(users["village_hutang"]).get(LEDGER)))
    row = _row_of(rows, "电话娃")
    assert row[ID_COL - 1] == mask_id_number(child_with_phone.id_number) != child_with_phone.id_number
    assert row[FATHER_PHONE_COL - 1] == mask_phone("13812345678")
    assert "示例路" not in (row[9] or "")[6:]  # the address keeps only its start
    event = _exports(users["village_hutang"])[-1]
    assert event.detail["kind"] == "ledger" and event.detail["masked"] is True
    assert event.detail["rows"] == len(rows)


def test_unmasked_only_when_allowed_and_asked(users, child_with_phone):
    director = _client(users["village_hutang"])
    row = _row_of(_rows(_workbook(director.get(LEDGER, {"unmasked": "1"}))), "电话娃")
    assert row[ID_COL - 1] == child_with_phone.id_number
    assert row[FATHER_PHONE_COL - 1] == "13812345678"
    event = _exports(users["village_hutang"])[-1]
    assert event.detail["masked"] is False and event.detail["unmasked_rows"] >= 1

    # A member unit may read a shared child but never unmask it, whatever it asks for.
    police = users["police_hutang"]
    ChildShare.objects.create(child=child_with_phone, organization=police.organization, reason="测试")
    row = _row_of(_rows(_workbook(_client(police).get(LEDGER, {"unmasked": "1"}))), "电话娃")
    assert row[ID_COL - 1] == mask_id_number(child_with_phone.id_number)
    assert _exports(police)[-1].detail["masked"] is True


def test_a_shared_child_outside_the_directors_regions_stays_masked(users, niutang_village, make_child):
    child = make_child(niutang_village, name="共享外村娃")
    director = users["village_hutang"]
    ChildShare.objects.create(child=child, organization=director.organization, reason="测试")
    row = _row_of(_rows(_workbook(_client(director).get(LEDGER, {"unmasked": "1"}))), "共享外村娃")
    assert row[ID_COL - 1] == mask_id_number(child.id_number)


# ----- formula injection --------------------------------------------------------------------------


def test_cells_that_a_spreadsheet_would_evaluate_are_neutralised(users, hutang_village, make_child):
    child = make_child(
        hutang_village,
        name="公式娃",
        note='=HYPERLINK("http://evil.example","点我")',
        school_name="+1+2",
        illness="@SUM(1)",
    )
    # A name as an old import or the admin could have stored it, bypassing the form.
    Child.objects.filter(pk=child.pk).update(name="=1+1\x07")
    FamilyMember.objects.create(child=child, relation="father", name="-2+3", phone="", is_guardian=True)

    workbook = _workbook(_client(users["village_hutang"]).get(LEDGER))
    row = _row_of(_rows(workbook), "'=1+1")
    assert row[NOTE_COL - 1] == '\'=HYPERLINK("http://evil.example","点我")'
    assert "'+1+2" in row and "'@SUM(1)" in row and "'-2+3" in row
    for ws in workbook.worksheets:
        for cells in ws.iter_rows():
            for cell in cells:
                assert cell.data_type != "f", cell.coordinate
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_TRIGGERS), cell.value


def test_neutralise():
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("\t=1") == "'\t=1"
    assert neutralise("\r@x") == "'\r@x"
    assert neutralise("张三") == "张三"
    assert neutralise("a\x00b\x1f") == "ab"


# ----- watermark ----------------------------------------------------------------------------------


def test_watermark_in_header_footer_and_properties(users):
    user = users["town_hutang"]
    workbook = _workbook(_client(user).get(LEDGER))
    ws = workbook["儿童台账"]
    header = " ".join(part.text or "" for part in (ws.oddHeader.left, ws.oddHeader.center, ws.oddHeader.right))
    footer = " ".join(part.text or "" for part in (ws.oddFooter.left, ws.oddFooter.center, ws.oddFooter.right))
    assert user.username in header and user.organization.name in header
    assert "内部资料 注意保密" in header
    event = _exports(user)[-1]
    from django.utils import timezone

    assert timezone.localtime(event.at).strftime("%Y-%m-%d") in footer and "导出时间" in footer
    props = workbook.properties
    assert props.creator == user.username
    assert user.organization.name in props.description and "内部资料 注意保密" in props.description
    notes = [r for r in workbook["说明"].iter_rows(values_only=True)]
    assert ("导出人", f"{user.full_name}（{user.username}）") in notes


# ----- statistics ----------------------------------------------------------------------------------


def _table(workbook: Any, sheet: str) -> dict[str, dict[str, Any]]:
    rows = list(workbook[sheet].iter_rows(values_only=True))
    header = rows[2]
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows[3:]}


def test_statistics_numbers_are_right_and_hold_no_name(users, hutang_village, make_child):
    make_child(hutang_village, name="统计导出娃", school_stage="junior")
    workbook = _workbook(_client(users["district"]).get(STATS))
    active = Child.objects.filter(status="active")

    by_town = _table(workbook, "镇街×类别")
    assert by_town["合计"]["在册儿童"] == active.count()
    assert by_town["湖塘镇"]["在册儿童"] == active.filter(region__code__startswith="320412100").count()
    for sheet in ("年龄段", "就学阶段", "监护类型"):
        table = _table(workbook, sheet)
        assert table["合计"]["合计"] == active.count(), sheet
        assert table["湖塘镇"]["合计"] == by_town["湖塘镇"]["在册儿童"], sheet
    stages = _table(workbook, "就学阶段")
    assert (
        stages["湖塘镇"]["初中"] == active.filter(region__code__startswith="320412100", school_stage="junior").count()
    )
    assert stages["合计"]["初中"] == active.filter(school_stage="junior").count()

    cells = [c for ws in workbook.worksheets for row in ws.iter_rows(values_only=True) for c in row if c is not None]
    names = set(Child.objects.values_list("name", flat=True))
    assert not names & {c for c in cells if isinstance(c, str)}
    for sheet in ("镇街×类别", "年龄段", "就学阶段", "监护类型"):
        for row in list(workbook[sheet].iter_rows(values_only=True))[3:]:
            assert all(isinstance(n, int) for n in row[1:])
    event = _exports(users["district"])[-1]
    assert event.detail["kind"] == "stats" and event.object_type == "stats"


def test_town_supervisor_statistics_cover_only_their_town(users, hutang_village, niutang_village, make_child):
    make_child(niutang_village, name="牛塘统计娃")
    workbook = _workbook(_client(users["town_hutang"]).get(STATS))
    ages = _table(workbook, "年龄段")
    assert set(ages) == {"湖塘镇", "合计"}
    assert ages["合计"]["合计"] == Child.objects.filter(status="active", region__code__startswith="320412100").count()


# ----- the ledger page ----------------------------------------------------------------------------


def test_ledger_page_offers_the_export_with_its_filters(users):
    html = (
        _client(users["village_hutang"])
        .get(reverse("registry:ledger"), {"school_stage": "junior", "page": "2"})
        .content.decode()
    )
    assert f'action="{LEDGER}"' in html and "导出Excel" in html
    assert '<input type="hidden" name="school_stage" value="junior">' in html
    assert 'name="page"' not in html.split('id="ledger-export"')[1].split("</form>")[0]
    assert 'name="unmasked"' in html  # the director may unmask
    police_html = _client(users["police_hutang"]).get(reverse("registry:ledger")).content.decode()
    assert "导出Excel" in police_html and 'name="unmasked"' not in police_html


def test_export_reads_the_ledger_in_a_constant_number_of_queries(
    users, hutang_village, make_child, django_assert_max_num_queries
):
    for n in range(5):
        child = make_child(hutang_village, name=f"查询娃{n}")
        FamilyMember.objects.create(child=child, relation="mother", name="查询妈", phone="13900000000")
    client = _client(users["district"])
    total = Child.objects.count()
    assert total > 60
    # Session, user, second factor and scope (7); the chunk of children and its three prefetches
    # (4); the audit chain and the session save in their savepoints (8): none of it per child.
    with django_assert_max_num_queries(19):
        assert len(_rows(_workbook(client.get(LEDGER, {"status": "all"})))) == total
