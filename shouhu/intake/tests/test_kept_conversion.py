"""`RowValidator._convert` keeps what the cells of a coded or date column converted to. What the
rest of the validation may count on: every cell converts to what `_convert` gives it (or fails
with the same messages), whichever cells came before it; a list of codes is the row's own; a cell
that fails is never kept; a column keeps at most `_KEPT` values."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from shouhu.intake import columns as cols
from shouhu.intake import reader as r

# What a messy sheet puts in coded and date cells, read as the readers give them.
CELLS: list[Any] = [
    "是",
    "否",
    " 是 ",
    "Y",
    "1",
    1.0,
    0.0,
    1,
    True,
    False,
    "√",
    "不",
    "也许",
    "小学",
    "初中",
    "  高中 ",
    "幼儿园",
    "大学",
    "外出务工",
    "服刑在押、外出务工",
    "无",
    "正常",
    "务工,重残",
    "一级",
    "二级",
    "4",
    3.0,
    "五级",
    "汉族",
    "城镇",
    "农业",
    "父母双亡",
    "2015.3.8",
    "2015年3月8日",
    "20150308",
    20150308.0,
    42071.0,
    42071,
    "42071",
    "2015-02-30",
    "2015.3",
    date(2015, 3, 8),
    datetime(2015, 3, 8, 10, 30),
    "",
    "  ",
    None,
    "abc",
    1e20,
    float("nan"),
]


def _outcome(convert: Any, column: cols.Column, value: Any) -> Any:
    try:
        return ("ok", convert(column, value))
    except ValidationError as exc:
        return ("error", exc.messages)


def _same(a: Any, b: Any) -> bool:
    if a[0] == "ok" and isinstance(a[1], float) and a[1] != a[1]:
        return b[0] == "ok" and b[1] != b[1]
    return a == b and type(a[1]) is type(b[1])


KEPT_COLUMNS = [column for column in cols.COLUMNS if column.kind in r._KEPT_KINDS]


def test_there_are_kept_columns_of_every_kind():
    assert {column.kind for column in KEPT_COLUMNS} == set(r._KEPT_KINDS)


@pytest.mark.parametrize("column", KEPT_COLUMNS, ids=lambda c: c.key)
def test_every_cell_converts_as_convert_converts_it_whatever_came_before(db, users, column):  # noqa: ANN001
    validator = r.RowValidator(users["district"])
    for cells in (CELLS, CELLS, list(reversed(CELLS))):  # fills the memo, then reads it, both ways
        for value in cells:
            kept = _outcome(validator._convert, column, value)
            plain = _outcome(r._convert, column, value)
            assert _same(kept, plain), (column.key, value, kept, plain)


def test_a_list_of_codes_is_the_rows_own(db, users):  # noqa: ANN001
    column = next(c for c in KEPT_COLUMNS if c.kind == cols.Kind.MULTI and c.key.endswith("_situation"))
    validator = r.RowValidator(users["district"])
    first = validator._convert(column, "外出务工")
    first.append("changed")
    assert validator._convert(column, "外出务工") == r._convert(column, "外出务工")


def test_a_failing_cell_is_not_kept_and_a_column_keeps_at_most_kept(db, users, monkeypatch):  # noqa: ANN001
    column = next(c for c in KEPT_COLUMNS if c.kind == cols.Kind.DATE)
    validator = r.RowValidator(users["district"])
    with pytest.raises(ValidationError):
        validator._convert(column, "abc")
    assert validator._converted.get(column.key, {}) == {}
    monkeypatch.setattr(r, "_KEPT", 3)
    for day in range(1, 10):
        assert validator._convert(column, f"2015.3.{day}") == date(2015, 3, day)
    assert len(validator._converted[column.key]) == 3
