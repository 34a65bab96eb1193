"""Dates as typed in survey sheets."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from django.core.exceptions import ValidationError

from shouhu.intake.dates import parse_date

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(
    "value",
    [
        "2015.3.8",
        "2015.03.08",
        "2015-03-08",
        "2015-3-8",
        "2015/3/8",
        "2015年3月8日",
        "2015年03月08日",
        "2015年3月8号",
        "20150308",
        20150308,
        20150308.0,
        42071,
        42071.0,
        "42071",
        "２０１５．３．８",
        " 2015 - 3 - 8 ",
        "2015-03-08 00:00:00",
        date(2015, 3, 8),
        datetime(2015, 3, 8, 12, 30),
    ],
)
def test_accepted_forms(value):  # noqa: ANN001
    assert parse_date(value) == date(2015, 3, 8)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty(value):  # noqa: ANN001
    assert parse_date(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2015.13.1", "不存在"),
        ("2015年2月29日", "不存在"),
        ("2015年3月", "缺少日"),
        ("三月八日", "无法识别"),
        ("abc", "无法识别"),
        (True, "无法识别"),
        (-5, "无法识别"),
        ("2015-3-8-1", "无法识别"),
        (99999999, "无法识别"),
    ],
)
def test_refused_with_a_chinese_message(value, fragment):  # noqa: ANN001
    with pytest.raises(ValidationError) as info:
        parse_date(value)
    message = info.value.messages[0]
    assert fragment in message and CJK.search(message)
