"""`lib.bulkcopy.update_in_bulk` stores what `bulk_update` stores: on PostgreSQL its own statement
(one UPDATE joined to the batch's rows), elsewhere `bulk_update` itself. Columns of every kind an
import edits: text, encrypted text, a date, a boolean, a null and a number, JSON, a foreign key."""

from __future__ import annotations

from datetime import date

import pytest

from shouhu.lib.bulkcopy import update_in_bulk
from shouhu.registry.models import Child, Household

CHILD_COLUMNS = ["note", "id_number", "birth_date", "boarding", "disability_grade", "region", "school_name"]


def _edit(child: Child, household: Household, village, n: int) -> None:  # noqa: ANN001
    child.note = f"批量改{n}" if n % 2 else ""
    child.birth_date = date(2014, 1 + n, 2)
    child.boarding = bool(n % 2)
    child.disability_grade = None if n % 2 else 2
    child.region = village
    child.school_name = "湖塘'中心\"小学;--"  # quotes and SQL punctuation are values, not SQL
    household.income_sources = ["farming", "migrant_work"][: 1 + n % 2]
    household.address = f"湖塘镇新街{n}号"


def _stored(pks: list, model: type, names: list[str]) -> list[tuple]:
    return [tuple(getattr(obj, name) for name in names) for obj in model.objects.filter(pk__in=pks).order_by("pk")]


def test_update_in_bulk_stores_what_bulk_update_stores(db, make_child, hutang_village, niutang_village, monkeypatch):
    from django.db import connection

    made = [make_child(hutang_village, name=f"批量{'甲乙丙丁'[n]}", birth=date(2014, 1 + n, 2)) for n in range(4)]
    children = list(Child.objects.filter(pk__in=[c.pk for c in made]).select_related("household").order_by("pk"))
    households = [Household.objects.create(address="旧址") for _ in children]
    for way in ("update_in_bulk", "bulk_update"):
        for n, (child, household) in enumerate(zip(children, households, strict=True)):
            _edit(child, household, niutang_village if way == "update_in_bulk" else hutang_village, n)
        if way == "bulk_update":
            monkeypatch.setattr(connection, "vendor", "other")  # update_in_bulk falls back to it
        update_in_bulk(Child, children, CHILD_COLUMNS, batch_size=3)  # two batches
        update_in_bulk(Household, households, ["income_sources", "address"], batch_size=3)
        monkeypatch.undo()
        expected = [tuple(getattr(c, name) for name in CHILD_COLUMNS) for c in children]
        assert _stored([c.pk for c in children], Child, CHILD_COLUMNS) == expected, way  # id_number: encrypted anew
        assert _stored([h.pk for h in households], Household, ["income_sources", "address"]) == [
            (h.income_sources, h.address) for h in households
        ]
    assert {c.region_id for c in Child.objects.filter(pk__in=[c.pk for c in children])} == {hutang_village.code}


def test_update_in_bulk_refuses_what_is_not_a_column(db):
    with pytest.raises(ValueError):
        update_in_bulk(Child, [Child()], ["family"])
