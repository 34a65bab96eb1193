"""Ages and durations the way the texts count them (policy.md §1).

* Age in 周岁 follows the Gregorian date and is reached on the **day after** the birthday: on the
  16th birthday a child is still 不满十六周岁.
* "N months" runs to the same day of the month N months later (lost contact since 2026-03-01 →
  6 months reached on 2026-09-01); a day that month lacks becomes its last day.
"""

from __future__ import annotations

import calendar
import functools
from datetime import date, timedelta


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@functools.lru_cache(maxsize=65536)
def anniversary(birth: date, years: int) -> date:
    """The `years`-th birthday (29 February → 28 February in a common year)."""
    year = birth.year + years
    return date(year, birth.month, min(birth.day, calendar.monthrange(year, birth.month)[1]))


@functools.lru_cache(maxsize=65536)
def reaches_age_on(birth: date, years: int) -> date:
    """The first day on which a person born on `birth` has completed `years` 周岁."""
    return anniversary(birth, years) + timedelta(days=1)


def is_under(birth: date, years: int, on: date) -> bool:
    """不满 `years` 周岁 on `on`."""
    return on < reaches_age_on(birth, years)


def age_on(birth: date, on: date) -> int:
    years = on.year - birth.year
    if years > 0 and on < reaches_age_on(birth, years):
        years -= 1
    return max(years, 0)


def months_reached(since: date, months: int) -> date:
    return add_months(since, months)
