"""`lib.bulkcopy`: `checked_as_written` — inside the block a foreign key that points nowhere fails
the statement that wrote it, after the block the transaction's checks are deferred to commit
again, as Django makes them; `Builder` — an instance left as `Model.__init__` leaves it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import signals
from django.test.utils import CaptureQueriesContext

from shouhu.lib.bulkcopy import Builder, checked_as_written
from shouhu.registry.models import FamilyMember

pytestmark = pytest.mark.django_db


def _dangling() -> None:
    FamilyMember.objects.create(child_id=2_000_000_000, relation="father", name="张三")


def test_keys_are_checked_by_each_statement_inside_and_at_commit_after():
    if connection.vendor != "postgresql":
        pytest.skip("SET CONSTRAINTS is PostgreSQL's (elsewhere the block does nothing)")
    with checked_as_written(connection):
        with pytest.raises(IntegrityError), transaction.atomic():
            _dangling()
    with transaction.atomic():
        _dangling()  # deferred again: written, to be refused at commit
        with pytest.raises(IntegrityError), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the pending check runs now
        transaction.set_rollback(True)


def test_elsewhere_the_block_does_nothing():
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's behaviour")
    with CaptureQueriesContext(connection) as queries, checked_as_written(connection):
        pass
    assert not queries.captured_queries


def _as_init_leaves_it(record: Any) -> dict[str, Any]:
    state = record._state  # the id is a fresh uuid4 for each
    values = {k: v for k, v in vars(record).items() if k not in ("_state", "id")}
    return {**values, "_adding": state.adding, "_db": state.db, "_cached": state.fields_cache}


def test_builder_leaves_an_instance_as_model_init_does():
    from datetime import date

    from shouhu.registry.models import Child, Household

    household = Household(address="武进区湖塘镇1号")
    build = Builder(Child, ["name", "birth_date", "region", "gender"])
    assert build.direct  # the attributes are Django's own, nobody listens for init
    data = {"name": "李小花", "birth_date": date(2015, 3, 8), "gender": "F"}
    built = build(data, household=household)
    made = Child(**data, household=household)
    assert _as_init_leaves_it(built) == _as_init_leaves_it(made)
    assert built.id != made.id and built.id.version == 4
    assert built.household is household and built.name == "李小花" and built.region_id is None
    built.household_id = 12345  # the foreign key's setter still drops the cached object
    assert not Child._meta.get_field("household").is_cached(built)


def test_builder_goes_through_init_when_someone_listens():
    from shouhu.registry.models import Household

    seen = []

    def listener(sender, instance, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.append(instance)

    signals.post_init.connect(listener, sender=Household)
    try:
        build = Builder(Household, ["address"])
        assert not build.direct
        record = build({"address": "一号"})
    finally:
        signals.post_init.disconnect(listener, sender=Household)
    assert seen == [record] and record.address == "一号"


def test_a_dangling_key_is_not_taken_for_a_duplicate_id_number():
    from django.core.exceptions import ValidationError

    from shouhu.registry.services import _duplicate_from

    if connection.vendor != "postgresql":
        pytest.skip("SQLSTATE is PostgreSQL's")
    with checked_as_written(connection):
        with pytest.raises(IntegrityError) as dangling, transaction.atomic():
            _dangling()
    assert _duplicate_from(dangling.value) is None
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE dup_test (v int UNIQUE)")
        cursor.execute("INSERT INTO dup_test VALUES (1)")
        with pytest.raises(IntegrityError) as duplicate, transaction.atomic():
            with connection.cursor() as inner:
                inner.execute("INSERT INTO dup_test VALUES (1)")
    assert isinstance(_duplicate_from(duplicate.value), ValidationError)
