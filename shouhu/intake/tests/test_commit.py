"""Committing a survey import (all or nothing, idempotent, recorded) and undoing it."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from shouhu.audit.models import AuditEvent
from shouhu.conftest import new_id_number
from shouhu.intake.models import SurveyImport
from shouhu.intake.services import import_commit, import_undo
from shouhu.intake.tests.test_preview import HEADERS, _row
from shouhu.intake.tests.test_reader import xlsx
from shouhu.registry import services
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation


@pytest.fixture
def director(users):  # noqa: ANN001
    return users["village_hutang"]


@pytest.fixture
def ledger_child(director, hutang_village):  # noqa: ANN001
    """A child in the ledger with a household and a father working away (as in test_preview)."""
    from shouhu.intake.reader import read_rows, validate_rows

    village = hutang_village

    data = xlsx(
        [
            HEADERS,
            [
                village.name,
                "周小川",
                new_id_number(date(2013, 5, 6)),
                "小学",
                "湖塘镇人民路8号",
                "周大海",
                "13812345678",
                "外出务工",
            ],
        ]
    )
    [result] = validate_rows(read_rows(data, "seed.xlsx"), director)
    assert result.ok, [str(e) for e in result.errors]
    return services.child_create(actor=director, **result.create_kwargs())


def _new_row(village, name="郑新来", birth=date(2016, 2, 2)):  # noqa: ANN001
    return [village.name, name, new_id_number(birth), "幼儿园", "湖塘镇新村1号", "郑父", "", "外出务工"]


def _ledger_counts() -> list[int]:
    models = [Child, Household, FamilyMember, ParentSituation, Entrustment, AuditEvent]
    models += [model.history.model for model in (Child, Household, FamilyMember, ParentSituation, Entrustment)]
    return [model.objects.count() for model in models]


def test_commit_creates_and_updates_with_history_and_audit(db, director, hutang_village, ledger_child):
    new = _new_row(hutang_village)
    data = xlsx([HEADERS, new, _row(hutang_village, ledger_child, 就学阶段="初中", 现住址="湖塘镇长安路100号")])
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    imp = import_commit(actor=director, source=data, filename="湖塘村.xlsx")

    assert imp.state == "committed" and imp.committed_at is not None
    assert {k: imp.counts[k] for k in ("new", "changed", "unchanged", "invalid")} == {
        "new": 1,
        "changed": 1,
        "unchanged": 0,
        "invalid": 0,
    }
    assert imp.file_bytes() == data and imp.size == len(data) and imp.format == "xlsx"
    assert imp.imported_by == director and imp.organization == director.organization
    created = Child.objects.get(name="郑新来")
    assert created.region_id == hutang_village.code and created.household.address == "湖塘镇新村1号"
    assert created.family.get(relation="father").name == "郑父"
    ledger_child.refresh_from_db()
    assert ledger_child.school_stage == "junior" and ledger_child.version == 2
    assert ledger_child.household.address == "湖塘镇长安路100号"
    assert ledger_child.history.count() == 2  # created, then changed by the import
    items = {i.action: i for i in imp.items.all()}
    assert items["created"].child == created and items["changed"].child_id == ledger_child.pk
    assert items["changed"].version_after == 2
    events = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq"))
    actions = [(e.action, e.object_type) for e in events]
    assert ("create", "child") in actions and ("update", "child") in actions
    assert actions[-1] == ("import", "survey_import")
    assert events[-1].detail["new"] == 1 and events[-1].detail["changed"] == 1
    assert "湖塘镇" not in str(events[-1].detail)  # no personal data in the audit detail
    # the file and the replaced values are stored encrypted
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT file FROM intake_surveyimport WHERE id = %s", [imp.pk])
        stored = bytes(cursor.fetchone()[0])
        assert not stored.startswith(b"PK") and data not in stored  # not the plain zip
        cursor.execute(
            "SELECT replaced FROM intake_surveyimportitem WHERE survey_import_id = %s AND action = %s",
            [imp.pk, "changed"],
        )
        assert "人民路" not in cursor.fetchone()[0]


def test_invalid_rows_write_nothing_and_record_a_failed_import(db, director, hutang_village, ledger_child):
    data = xlsx(
        [
            HEADERS,
            _new_row(hutang_village),
            _row(hutang_village, ledger_child, 就学阶段="初中"),
            [hutang_village.name, "王错号", "320481201501019999", "小学", "", "", "", ""],
        ]
    )
    before = _ledger_counts()

    imp = import_commit(actor=director, source=data, filename="x.xlsx")

    assert imp.state == "failed" and imp.committed_at is None
    assert imp.counts["invalid"] == 1 and imp.counts["new"] == 1 and imp.counts["changed"] == 1
    assert imp.preview.errors and {e.row for e in imp.preview.errors} == {4}
    assert _ledger_counts() == before
    assert not imp.items.exists()
    ledger_child.refresh_from_db()
    assert ledger_child.school_stage == "primary" and ledger_child.version == 1


def test_the_same_file_twice_changes_nothing_the_second_time(db, director, hutang_village, ledger_child):
    data = xlsx([HEADERS, _new_row(hutang_village), _row(hutang_village, ledger_child, 就学阶段="初中")])
    first = import_commit(actor=director, source=data, filename="x.xlsx")
    after_first = _ledger_counts()

    second = import_commit(actor=director, source=data, filename="x.xlsx")

    assert (first.counts["new"], first.counts["changed"]) == (1, 1)
    assert {k: second.counts[k] for k in ("new", "changed", "unchanged", "invalid")} == {
        "new": 0,
        "changed": 0,
        "unchanged": 2,
        "invalid": 0,
    }
    assert second.state == "committed" and not second.items.exists()
    assert second.sha256 == first.sha256
    # only the second import's own audit event was added
    assert [a - b for a, b in zip(_ledger_counts(), after_first, strict=True)] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert SurveyImport.objects.filter(sha256=first.sha256).count() == 2


def test_family_and_carer_columns_of_a_ledger_child_are_applied_and_undone(db, director, hutang_village, ledger_child):
    headers = [*HEADERS, "母亲姓名", "受委托人姓名", "受委托人与儿童关系"]
    row = [*_row(hutang_village, ledger_child, 父亲联系电话="13987654321", 父亲情况="服刑"), "李春梅", "周奶奶", "祖母"]
    imp = import_commit(actor=director, source=xlsx([headers, row]), filename="x.xlsx")
    assert imp.counts["changed"] == 1 and imp.counts["not_applied"] == 0, imp.counts
    father = ledger_child.family.get(relation="father")
    assert father.phone == "13987654321" and father.capacity == "none" and not father.is_guardian
    assert [s.kind for s in father.situations.all()] == ["imprisoned"]
    assert ledger_child.family.get(relation="mother").name == "李春梅"
    assert ledger_child.entrustments.get().carer_name == "周奶奶"
    again = import_commit(actor=director, source=xlsx([headers, row]), filename="x.xlsx")
    assert again.counts["unchanged"] == 1 and again.counts["changed"] == 0

    import_undo(actor=director, imp=again)  # an import that changed nothing undoes to nothing
    import_undo(actor=director, imp=imp)
    father.refresh_from_db()
    assert father.phone == "13812345678" and father.capacity == "full" and father.is_guardian
    assert [s.kind for s in father.situations.all()] == ["out_for_work"]
    assert not ledger_child.family.filter(relation="mother").exists()
    assert not ledger_child.entrustments.exists()


@pytest.mark.parametrize("service", ["child_update", "ledger_update_bulk"])  # a row written alone, rows together
def test_a_stale_edit_rolls_everything_back(db, director, hutang_village, ledger_child, monkeypatch, service):
    from shouhu.intake import services as intake

    data = xlsx([HEADERS, _new_row(hutang_village), _row(hutang_village, ledger_child, 就学阶段="初中")])
    before = _ledger_counts()
    imports = SurveyImport.objects.count()

    def stale(**kwargs):  # noqa: ANN003, ANN202
        raise services.StaleEdit(99)

    monkeypatch.setattr(intake, "BULK_UPDATES", service == "ledger_update_bulk")
    monkeypatch.setattr(services, service, stale)
    with pytest.raises(services.StaleEdit):
        import_commit(actor=director, source=data, filename="x.xlsx")
    assert _ledger_counts() == before and SurveyImport.objects.count() == imports


def test_out_of_scope_village_rows_are_refused(db, director, hutang_village, niutang_village):
    data = xlsx([HEADERS, _new_row(hutang_village), _new_row(niutang_village, name="外村娃")])
    before = _ledger_counts()
    imp = import_commit(actor=director, source=data, filename="x.xlsx")
    assert imp.state == "failed" and imp.counts["invalid"] == 1
    assert "不在您的管辖范围内" in " ".join(e.message for e in imp.preview.errors)
    assert _ledger_counts() == before


def test_a_user_who_may_not_edit_the_ledger_cannot_import(db, users, hutang_village):
    data = xlsx([HEADERS, _new_row(hutang_village)])
    with pytest.raises(PermissionDenied):
        import_commit(actor=users["leader"], source=data, filename="x.xlsx")


def test_undo_deletes_created_and_restores_changed(db, director, hutang_village, ledger_child):
    data = xlsx(
        [
            HEADERS,
            _new_row(hutang_village),
            _row(hutang_village, ledger_child, 就学阶段="初中", 现住址="湖塘镇长安路100号"),
        ]
    )
    imp = import_commit(actor=director, source=data, filename="x.xlsx")
    created_pk = imp.items.get(action="created").child_id
    created_household = Child.objects.get(pk=created_pk).household_id

    undone = import_undo(actor=director, imp=imp)

    assert undone.state == "undone" and undone.undone_by == director and undone.undone_at is not None
    assert not Child.objects.filter(pk=created_pk).exists()
    assert not Household.objects.filter(pk=created_household).exists()
    ledger_child.refresh_from_db()
    assert ledger_child.school_stage == "primary" and ledger_child.household.address == "湖塘镇人民路8号"
    assert ledger_child.version == 3  # restored through the service: a new version, in the history
    events = list(AuditEvent.objects.order_by("-seq")[:5])
    assert events[0].action == "import_undo" and events[0].detail == {"deleted": 1, "restored": 1}
    assert any(e.action == "delete" and e.object_id == str(created_pk) for e in events)
    with pytest.raises(ValidationError):
        import_undo(actor=director, imp=undone)  # only once


def test_undo_is_refused_after_a_later_edit(db, director, hutang_village, ledger_child):
    data = xlsx([HEADERS, _new_row(hutang_village, name="后改娃"), _row(hutang_village, ledger_child, 就学阶段="初中")])
    imp = import_commit(actor=director, source=data, filename="x.xlsx")
    created = Child.objects.get(name="后改娃")
    services.child_update(actor=director, child=created, data={"school_name": "湖塘幼儿园"}, version=created.version)
    before = _ledger_counts()

    with pytest.raises(ValidationError) as refused:
        import_undo(actor=director, imp=imp)

    assert "后改娃" in str(refused.value) and "周小川" not in str(refused.value)
    assert _ledger_counts() == before
    imp.refresh_from_db()
    assert imp.state == "committed"


def test_undo_is_refused_after_a_family_member_edit(db, director, hutang_village):
    data = xlsx([HEADERS, _new_row(hutang_village, name="改父娃")])
    imp = import_commit(actor=director, source=data, filename="x.xlsx")
    father = Child.objects.get(name="改父娃").family.get(relation="father")
    services.member_update(actor=director, member=father, data={"work_place": "苏州"}, version=father.version)
    with pytest.raises(ValidationError, match="改父娃"):
        import_undo(actor=director, imp=imp)


def test_undo_of_a_failed_import_is_refused(db, director, hutang_village):
    data = xlsx([HEADERS, [hutang_village.name, "王错号", "123", "小学", "", "", "", ""]])
    imp = import_commit(actor=director, source=data, filename="x.xlsx")
    with pytest.raises(ValidationError):
        import_undo(actor=director, imp=imp)


def test_an_outsider_cannot_undo_the_import(db, users, director, hutang_village):
    imp = import_commit(
        actor=director, source=xlsx([HEADERS, _new_row(hutang_village, name="外人撤销娃")]), filename="x.xlsx"
    )
    with pytest.raises(PermissionDenied):
        import_undo(actor=users["village_niutang"], imp=imp)
    assert Child.objects.filter(name="外人撤销娃").exists()
    imp.refresh_from_db()
    assert imp.state == "committed"


def test_a_refused_undo_names_ten_children_and_counts_the_rest(db, director, hutang_village, monkeypatch):
    from shouhu.intake import services as intake

    monkeypatch.setattr(intake, "UNDO_NAMES_SHOWN", 2)
    data = xlsx([HEADERS] + [_new_row(hutang_village, name=f"多改{'甲乙丙'[n]}") for n in range(3)])
    imp = import_commit(actor=director, source=data, filename="x.xlsx")
    for child in Child.objects.filter(name__startswith="多改"):
        services.child_update(actor=director, child=child, data={"school_name": "湖塘小学"}, version=child.version)
    with pytest.raises(ValidationError) as refused:
        import_undo(actor=director, imp=imp)
    [message] = refused.value.messages
    assert message == "以下儿童在本次导入后已被修改，不能撤销导入：多改甲（第2行）、多改乙（第3行）等3名儿童。"
