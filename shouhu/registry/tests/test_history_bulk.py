"""Deletions' history rows written in bulk (shouhu/lib/history.py) are the rows simple-history
writes record by record."""

from __future__ import annotations

from datetime import date

import pytest

from shouhu.conftest import new_id_number
from shouhu.lib.history import deletions_in_bulk
from shouhu.registry import services
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation
from shouhu.registry.tests.test_services import CARER, FATHER, MOTHER

MODELS = (Child, Household, FamilyMember, ParentSituation, Entrustment)
UNCOMPARED = {
    "history_id",
    "history_date",
    "history_user_id",
    "registered_at",
    "created_at",
    "updated_at",
    "id",
    "child_id",
    "household_id",
    "member_id",
    "id_number",
    "id_number_index",
    "name",
    "name_pinyin",
    "name_initials",
}


def _family(users, region, name: str) -> Child:  # noqa: ANN001
    from shouhu.lib.idnumber import parse_id_number

    number = new_id_number(date(2014, 6, 1))
    info = parse_id_number(number)
    return services.child_create(
        actor=users["district"],
        household={"address": "武进区湖塘镇示例路1号", "economic_status": "ordinary"},
        members=[FATHER, MOTHER],
        entrustment=CARER,
        data={
            "name": name,
            "id_number": number,
            "gender": info.gender,
            "birth_date": info.birth_date,
            "region": region,
            "school_stage": "primary",
            "ethnicity": "汉族",
            "hukou_type": "rural",
            "health": "healthy",
            "guardianship_type": "ordinary",
        },
    )


def _deletion_rows(child_pk, household_pk) -> dict[str, list[dict]]:  # noqa: ANN001
    out = {}
    for model in MODELS:
        rows = model.history.filter(history_type="-")
        if model is Child:
            rows = rows.filter(id=child_pk)
        elif model is Household:
            rows = rows.filter(id=household_pk)
        elif model is ParentSituation:
            rows = rows.filter(member_id__in=FamilyMember.history.filter(child_id=child_pk).values("id"))
        else:
            rows = rows.filter(child_id=child_pk)
        out[model.__name__] = sorted(
            ({k: v for k, v in row.items() if k not in UNCOMPARED} for row in rows.values()), key=repr
        )
    return out


@pytest.mark.django_db
def test_bulk_deletion_history_is_the_per_record_history(users, hutang_village):
    one, two = _family(users, hutang_village, "王一"), _family(users, hutang_village, "王一")
    keys = [(c.pk, c.household_id) for c in (one, two)]
    Child.objects.filter(pk=one.pk).delete()
    Household.objects.filter(pk=one.household_id).delete()
    with deletions_in_bulk(actor=users["district"]):
        Child.objects.filter(pk=two.pk).delete()
        Household.objects.filter(pk=two.household_id).delete()
    per_record, in_bulk = (_deletion_rows(*k) for k in keys)
    assert per_record["Child"] and per_record["ParentSituation"] and per_record["Entrustment"]
    assert len(per_record["FamilyMember"]) == 2
    for name in per_record:
        for a, b in zip(per_record[name], in_bulk[name], strict=True):
            assert {k: (v, b[k]) for k, v in a.items() if v != b[k]} == {}, name
    assert set(Child.history.filter(id=two.pk, history_type="-").values_list("history_user", flat=True)) == {
        users["district"].pk
    }


@pytest.mark.django_db
def test_a_failed_block_writes_no_history(users, hutang_village):
    child = _family(users, hutang_village, "李二")
    with pytest.raises(RuntimeError), deletions_in_bulk(actor=users["district"]):
        Child.objects.filter(pk=child.pk).delete()
        raise RuntimeError("stop")
    assert not Child.history.filter(id=child.pk, history_type="-").exists()
