"""`lib.collector.fewer_collections`: what a bulk job may count on. Inside, the young generation
waits for `THRESHOLD` new objects and the objects from before are set aside; afterwards, however
the block ended, the collector is as it was; overlapping blocks share one setting; cycles made
inside are still reclaimed. And the survey import runs inside it, checking and committing."""

from __future__ import annotations

import gc
import threading
import weakref
from datetime import date
from typing import Any

import pytest

from shouhu.conftest import new_id_number
from shouhu.lib import collector
from shouhu.lib.collector import fewer_collections


@pytest.fixture(autouse=True)
def _collector_as_found():  # noqa: ANN202
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    yield
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_block_raises_the_threshold_sets_the_old_objects_aside_and_undoes_both():
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (collector.THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > 1000  # the process's modules, at least
    assert gc.get_threshold() == before


def test_an_exception_undoes_it_too():
    before = gc.get_threshold()
    with pytest.raises(ZeroDivisionError), fewer_collections():
        1 / 0  # noqa: B018
    assert gc.get_threshold() == before


def test_a_higher_threshold_set_before_is_kept():
    before = gc.get_threshold()
    gc.set_threshold(collector.THRESHOLD * 2, before[1], before[2])
    try:
        with fewer_collections():
            assert gc.get_threshold()[0] == collector.THRESHOLD * 2
        assert gc.get_threshold()[0] == collector.THRESHOLD * 2
    finally:
        gc.set_threshold(*before)


def test_overlapping_blocks_share_one_setting_undone_by_the_last_to_leave():
    before = gc.get_threshold()
    inside, leave = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def other() -> None:
        with fewer_collections():
            inside.set()
            leave.wait(10)
        seen.append(gc.get_threshold())

    thread = threading.Thread(target=other)
    with fewer_collections():
        thread.start()
        assert inside.wait(10)
        with fewer_collections():  # nested in the same thread too
            pass
        assert gc.get_threshold()[0] == collector.THRESHOLD
    assert gc.get_threshold()[0] == collector.THRESHOLD  # the other block is still running
    assert gc.get_freeze_count() > 0
    leave.set()
    thread.join(10)
    assert seen == [before]
    assert gc.get_threshold() == before


class _Node:
    pass


def test_a_cycle_made_inside_is_still_reclaimed_by_the_collector():
    with fewer_collections():
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # reference counting cannot free a cycle
        # Enough new objects for a young collection at the raised threshold.
        keep = [[] for _ in range(collector.THRESHOLD + 1000)]
        assert gone() is None
        del keep


def test_the_survey_import_checks_and_commits_inside_the_block(db, users, hutang_village):  # noqa: ANN001
    from shouhu.intake.preview import preview_import
    from shouhu.intake.services import import_commit
    from shouhu.intake.tests.test_preview import HEADERS
    from shouhu.intake.tests.test_reader import xlsx

    director = users["village_hutang"]
    row = [
        hutang_village.name,
        "郑新来",
        new_id_number(date(2016, 2, 2)),
        "幼儿园",
        "湖塘镇新村1号",
        "郑父",
        "",
        "外出务工",
    ]
    data = xlsx([HEADERS, row])
    thresholds: list[int] = []

    def progress(done: int, total: int) -> None:
        thresholds.append(gc.get_threshold()[0])

    preview = preview_import(actor=director, source=data, filename="a.xlsx", progress=progress)
    assert preview.ok
    imp = import_commit(actor=director, source=data, filename="a.xlsx", progress=progress)
    assert imp.counts["new"] == 1
    assert thresholds and set(thresholds) == {collector.THRESHOLD}


def test_the_ledger_export_writes_inside_the_block(db, users, monkeypatch):  # noqa: ANN001
    import io

    from shouhu.intake import export
    from shouhu.registry.selectors import LedgerFilters

    thresholds: list[int] = []
    ledger_row = export.ledger_row

    def row(*args: Any, **kwargs: Any) -> Any:
        thresholds.append(gc.get_threshold()[0])
        return ledger_row(*args, **kwargs)

    monkeypatch.setattr(export, "ledger_row", row)
    export.write_ledger(io.BytesIO(), actor=users["district"], filters=LedgerFilters())
    assert thresholds and set(thresholds) == {collector.THRESHOLD}
