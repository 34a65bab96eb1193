"""`lib.writebehind`: COPYs sent by a writer thread on the import's own connection. What the
importing thread must be able to count on: its next statement sees every write handed over; a
write that failed is raised there (translated), once, and refused afterwards; a read handed over
sees the writes before it; ids reserved on the side connection are the sequence's own; leaving
the block, however it is left, ends the thread."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from shouhu.lib import writebehind
from shouhu.lib.writebehind import write_behind

COPY = "COPY wb_test (id, v) FROM STDIN"

pytestmark = pytest.mark.django_db


class Duplicate(Exception):
    """What `translate` turns a unique violation into."""


def _translate(error: BaseException) -> BaseException | None:
    return Duplicate("重复") if isinstance(error, IntegrityError) else None


def _count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM wb_test")
        return cursor.fetchone()[0]


@pytest.fixture
def table(db):  # noqa: ANN001, ANN201
    if connection.vendor != "postgresql":
        pytest.skip("write-behind is PostgreSQL's (elsewhere the block gives None)")
    with connection.cursor() as cursor:  # the test's transaction drops it again
        cursor.execute("CREATE TABLE wb_test (id integer PRIMARY KEY, v text NOT NULL, n serial)")


def test_elsewhere_the_block_gives_none(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's behaviour")
    with write_behind(connection) as behind:
        assert behind is None
        assert writebehind.current(connection) is None


def test_a_statement_sees_the_writes_handed_over(table):
    with write_behind(connection) as behind:
        assert writebehind.current(connection) is behind
        for start in range(0, 3000, 1000):
            behind.copy(COPY, [[i, f"值{i}"] for i in range(start, start + 1000)], None)
        assert _count() == 3000  # waited for all three
        with write_behind(connection) as inner:  # nested: the outer one goes on
            assert inner is None
    assert writebehind.current(connection) is None
    assert not behind.thread.is_alive()
    assert _count() == 3000


def test_a_call_sees_the_writes_before_it(table):
    with write_behind(connection) as behind:
        behind.copy(COPY, [[1, "甲"], [2, "乙"]], None)
        first = behind.call(_count)
        behind.copy(COPY, [[3, "丙"]], None)
        second = behind.call(_count)
        assert (behind.collect(first), behind.collect(second)) == (2, 3)


def test_a_failed_write_is_raised_at_the_next_statement_translated(table):
    with pytest.raises(Duplicate):
        with transaction.atomic(), write_behind(connection) as behind:
            behind.copy(COPY, [[1, "甲"]], _translate)
            behind.copy(COPY, [[1, "甲又"]], _translate)  # the primary key again
            behind.copy(COPY, [[2, "乙"]], _translate)  # not sent: after the failure
            _count()
    assert not behind.thread.is_alive()
    assert _count() == 0  # rolled back to the savepoint, which went through
    assert isinstance(behind.error, Duplicate)


def test_after_a_failure_nothing_more_is_taken_and_the_block_cannot_end_normally(table):
    with pytest.raises(IntegrityError):  # untranslated
        with transaction.atomic():
            with write_behind(connection) as behind:
                behind.copy(COPY, [[1, "甲"], [1, "甲"]], None)
                behind._idle()
                with pytest.raises(IntegrityError):
                    behind.copy(COPY, [[2, "乙"]], None)
                with pytest.raises(IntegrityError):
                    behind.call(_count)
                # leaving normally raises it again: the writes were not made
    assert not behind.thread.is_alive()
    assert _count() == 0


def test_a_failed_read_is_raised_where_it_is_collected(table):
    def broken() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM wb_test")

    with pytest.raises(Exception) as caught, transaction.atomic(), write_behind(connection) as behind:
        future = behind.call(broken)
        behind.collect(future)
    assert "no_such_column" in str(caught.value)
    assert not behind.thread.is_alive()


def test_an_exception_drops_what_is_not_yet_sent_and_ends_the_thread(table):
    with pytest.raises(ZeroDivisionError), transaction.atomic(), write_behind(connection) as behind:
        for i in range(20):
            behind.copy(COPY, [[j, "值"] for j in range(i * 500, i * 500 + 500)], None)
        1 / 0  # noqa: B018
    assert not behind.thread.is_alive()
    assert behind.pending == 0
    assert _count() == 0
    with write_behind(connection) as again:  # and a new block can start on the connection
        again.copy(COPY, [[1, "甲"]], None)
    assert _count() == 1


def test_ids_reserved_are_the_sequences_own(table):
    # The second connection sees only what is committed: a table of the schema's, not the test's.
    from shouhu.registry.models import Household

    name = Household._meta.db_table
    with write_behind(connection) as behind:
        first = behind.reserve(name, "id", 3)
        second = behind.reserve(name, "id", 5)  # from the stock reserved with the first
        assert first + second == list(range(first[0], first[0] + 8))
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [name])
            after = cursor.fetchone()[0]
        assert after > second[-1] + 1  # beyond the stock too: no id is given twice
    assert behind.side.closed


def test_ids_are_taken_ahead_by_a_thread_of_their_own_and_never_given_twice(table):
    from shouhu.registry.models import Household

    name = Household._meta.db_table
    given: list[int] = []
    with write_behind(connection) as behind:
        for _ in range(4):  # 80 taken at once; 40 left after these
            given += behind.reserve(name, "id", 10)
        assert not behind.refills
        given += behind.reserve(name, "id", 10)  # 30 left: less than half a lot
        assert (name, "id") in behind.refills, "the next lot is asked for before it is needed"
        for count in [100, 7, 250, 1, 100, 400, 3] * 6:
            ids = behind.reserve(name, "id", count)
            assert len(ids) == count
            given += ids
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [name])
            after = cursor.fetchone()[0]
    assert len(set(given)) == len(given) and max(given) < after
    assert given == sorted(given)  # the sequence's order: nothing else took values meanwhile
    assert behind.ids_thread is not None and behind.side.closed
    assert not [t for t in threading.enumerate() if t.name.startswith("write-behind-ids")]
