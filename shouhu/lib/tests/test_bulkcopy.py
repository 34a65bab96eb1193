"""`lib.bulkcopy.checked_as_written`: inside the block a foreign key that points nowhere fails the
statement that wrote it; after the block the transaction's checks are deferred to commit again,
as Django makes them."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from shouhu.lib.bulkcopy import checked_as_written
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
