"""Changed rows that only edit existing records are written together (`registry.ledger_update_bulk`):
the ledger, the history rows, the audit events, the import's items and the visit plans come out
as they do when every row goes through the per-record services."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import transaction
from django.utils import timezone

from shouhu.conftest import new_id_number
from shouhu.intake import services as intake
from shouhu.intake.services import import_commit, import_undo
from shouhu.intake.tests.test_preview import HEADERS
from shouhu.intake.tests.test_reader import xlsx
from shouhu.registry import services
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation


@pytest.fixture
def director(users):  # noqa: ANN001
    return users["village_hutang"]


CARER = ["受委托人姓名", "受委托人与儿童关系", "受委托人联系电话", "委托起始日期"]


def _carer(n: int, phone: str = "") -> dict[str, str]:
    return dict(zip(CARER, (f"批奶奶{n}", "祖母", phone or f"1370000000{n}", "2020-01-01"), strict=True))


def _survey(village, ids: list[str], **changes: dict[int, dict[str, str]]) -> bytes:  # noqa: ANN001
    rows = [HEADERS + CARER]
    for n, id_number in enumerate(ids):
        values = {
            **dict.fromkeys(CARER, ""),  # a blank cell is not an edit
            "所在村（社区）": village.name,
            "姓名": f"批改{'甲乙丙丁戊己庚辛壬'[n]}",
            "身份证号": id_number,
            "就学阶段": "小学",
            "现住址": f"湖塘镇人民路{n}号",
            "父亲姓名": f"批父{n}",
            "父亲联系电话": f"1381234000{n}",
            "父亲情况": "外出务工",
        }
        values.update(changes.get("rows", {}).get(n, {}))
        rows.append([values[h] for h in HEADERS + CARER])
    return xlsx(rows)


def _snapshot(children: list[Child], imp) -> dict:  # noqa: ANN001
    """Everything the import wrote about these children, without ids the database assigns anew and
    without timestamps."""
    from shouhu.audit.models import AuditEvent
    from shouhu.visits.models import VisitPlan

    pks = [c.pk for c in children]
    # A member added anew gets a new id each run: members are named by child and relation instead.
    member = {m.pk: (str(m.child_id), m.relation) for m in FamilyMember.objects.filter(child__in=pks)}

    def rows(model, exclude=(), **filters) -> list:  # noqa: ANN001, ANN003
        names = [f.attname for f in model._meta.concrete_fields if f.attname not in exclude]
        values = model.objects.filter(**filters).values_list(*names)
        at = names.index("member_id") if "member_id" in names else None
        return sorted(repr(v if at is None else (*v[:at], member[v[at]], *v[at + 1 :])) for v in values)

    def replaced(item) -> str:  # noqa: ANN001
        data = item.get_replaced()
        data["members_created"] = sorted(member.get(pk, ("?", pk)) for pk in data.get("members_created") or [])
        if data.get("entrustment_created"):
            data["entrustment_created"] = carer.get(data["entrustment_created"], "?")
        if data.get("entrustment"):
            data["entrustment"]["pk"] = carer.get(data["entrustment"]["pk"], "?")
        return repr(data)

    stamps = ("updated_at", "registered_at", "history_date", "history_id")
    # A carer added anew gets a new id each run: named by its child instead.
    carer = {e.pk: str(e.child_id) for e in Entrustment.objects.filter(child__in=pks)}
    return {
        "children": rows(Child, stamps, pk__in=pks),
        "households": rows(Household, stamps, children__in=pks),
        "members": rows(FamilyMember, (*stamps, "id"), child__in=pks),  # an added one's id is new
        "child_history": rows(Child.history.model, stamps, id__in=pks),
        "household_history": rows(Household.history.model, stamps, id__in=Household.objects.filter(children__in=pks)),
        "member_history": rows(FamilyMember.history.model, (*stamps, "id"), child_id__in=pks),
        # Situations are added anew: compared without their ids.
        "situations": rows(ParentSituation, ("id",), member__child__in=pks),  # member_id: (child, relation)
        "situation_history": rows(
            ParentSituation.history.model,
            (*stamps, "id"),
            member_id__in=FamilyMember.objects.filter(child__in=pks).values("pk"),
        ),
        "carers": rows(Entrustment, (*stamps, "id"), child__in=pks),
        "carer_history": rows(Entrustment.history.model, (*stamps, "id"), child_id__in=pks),
        "audit": [
            (e.action, e.object_type, e.object_id, e.detail, e.actor_id)
            for e in AuditEvent.objects.filter(object_id__in=[str(pk) for pk in pks]).order_by("object_id", "seq")
        ],
        "items": sorted(
            (i.row, i.action, str(i.child_id), i.version_after, i.household_version_after, replaced(i))
            for i in imp.items.all()
        ),
        "plans": rows(VisitPlan, ("id", "updated_at"), child_id__in=pks),
        "counts": imp.counts,
    }


def test_changed_rows_written_together_equal_rows_written_one_by_one(db, director, hutang_village, monkeypatch):
    ids = [new_id_number(date(2013, 1 + n, 3)) for n in range(9)]
    no_father = {"父亲姓名": "", "父亲联系电话": "", "父亲情况": ""}
    first = import_commit(
        actor=director,
        source=_survey(hutang_village, ids, rows={6: no_father, 7: _carer(7), 8: _carer(8)}),
        filename="a.xlsx",
    )
    assert first.counts["new"] == 9
    children = list(Child.objects.filter(name__startswith="批改").order_by("name"))
    resurvey = _survey(
        hutang_village,
        ids,
        rows={
            0: {"就学阶段": "初中", "姓名": "批改甲新"},  # the child's own columns (a name: its pinyin too)
            1: {"现住址": "湖塘镇新街1号"},  # the household's
            2: {"父亲联系电话": "13900001111"},  # a family member's
            3: {"就学阶段": "初中", "现住址": "湖塘镇新街3号", "父亲联系电话": "13900003333"},  # all three
            4: {"父亲情况": "服刑在押"},  # a parent's situations replaced
            6: _carer(6),  # gains a father (with a situation: the cells of row 0) and a carer
            7: _carer(7, phone="13911110007"),  # the carer's phone changed
            8: _carer(8),  # the carer unchanged
        },  # row 5 unchanged
    )
    snapshots = {}
    together_rows: list[int] = []
    bulk = services.ledger_update_bulk
    monkeypatch.setattr(
        services, "ledger_update_bulk", lambda **kwargs: (together_rows.append(len(kwargs["rows"])), bulk(**kwargs))[1]
    )
    for together in (False, True):
        monkeypatch.setattr(intake, "BULK_UPDATES", together)
        with transaction.atomic():
            imp = import_commit(actor=director, source=resurvey, filename="b.xlsx")
            assert imp.state == "committed"
            assert imp.counts["changed"] == 7 and imp.counts["unchanged"] == 2, imp.counts
            snapshots[together] = _snapshot(children, imp)
            if together:  # and it undoes as the rows written one by one do
                import_undo(actor=director, imp=imp)
                assert _snapshot(children, imp)["children"] == _snapshot(children, first)["children"]
                carers = Entrustment.objects.filter(child__in=children)
                assert sorted(carers.values_list("carer_name", "carer_phone")) == [
                    ("批奶奶7", "13700000007"),  # its phone put back
                    ("批奶奶8", "13700000008"),
                ]  # and the carer added is gone
            transaction.set_rollback(True)
    assert together_rows == [7]  # every changed row: its records edited, a family member or a carer added
    one_by_one, together = snapshots[False], snapshots[True]
    for key in one_by_one:
        assert together[key] == one_by_one[key], (
            key,
            {repr(x) for x in together[key]} ^ {repr(x) for x in one_by_one[key]}
            if isinstance(together[key], list)
            else None,
        )


def test_a_member_edited_since_it_was_read_is_a_stale_edit(db, director, hutang_village):
    ids = [new_id_number(date(2014, 2, 3))]
    import_commit(actor=director, source=_survey(hutang_village, ids), filename="a.xlsx")
    child = Child.objects.get(id_number_index=services.child_index(ids[0]))
    father = child.family.get(relation="father")
    FamilyMember.objects.filter(pk=father.pk).update(version=father.version + 1)  # someone saved it meanwhile
    with pytest.raises(services.StaleEdit):
        services.ledger_update_bulk(
            actor=director,
            rows=[services.BulkUpdate(child=child, members=[(father, {"phone": "13900002222"}, None)])],
        )
    father.refresh_from_db()
    assert father.phone == "13812340000"


def test_a_carer_edited_since_it_was_read_is_a_stale_edit(db, director, hutang_village):
    ids = [new_id_number(date(2014, 3, 3))]
    import_commit(actor=director, source=_survey(hutang_village, ids, rows={0: _carer(0)}), filename="a.xlsx")
    child = Child.objects.get(id_number_index=services.child_index(ids[0]))
    carer = child.entrustments.get()
    Entrustment.objects.filter(pk=carer.pk).update(version=carer.version + 1)  # someone saved it meanwhile
    with pytest.raises(services.StaleEdit):
        services.ledger_update_bulk(
            actor=director,
            rows=[services.BulkUpdate(child=child, entrustment=(carer, {"carer_phone": "13900002222"}))],
        )
    carer.refresh_from_db()
    assert carer.carer_phone == "13700000000"


def test_new_rows_get_the_visit_plans_a_refresh_would_write(db, director, hutang_village):
    """New rows' plans are written from the children in memory (`plans_for_created`, COPY on
    PostgreSQL): recomputing them the usual way (`refresh_plans`) finds nothing to change."""
    from shouhu.visits.models import VisitPlan
    from shouhu.visits.services import plans_computed, refresh_plans

    ids = [new_id_number(date(2015, 1 + n, 9)) for n in range(4)]
    imp = import_commit(actor=director, source=_survey(hutang_village, ids, rows={3: _carer(3)}), filename="a.xlsx")
    assert imp.counts["new"] == 4
    children = list(imp.items.values_list("child_id", flat=True))
    plans = {p.child_id: p for p in VisitPlan.objects.filter(child_id__in=children)}
    assert set(plans) == set(children)
    assert all(p.first_visit and p.next_due and p.region_id == hutang_village.code for p in plans.values())
    expected, _gone = plans_computed(children, today=timezone.localdate())
    assert {pk: {k: getattr(plans[pk], k) for k in values} for pk, values in expected.items()} == expected
    assert refresh_plans(children) == 0  # nothing differs
