"""Working-day deadlines (民发〔2019〕62号 counts 15 working days), with China's holidays and
adjusted working days from chinese-calendar; years it does not know yet fall back to Mon–Fri."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import chinese_calendar


@lru_cache(maxsize=8192)
def is_workday(day: date) -> bool:
    # Memoised: chinese-calendar scans its holiday tables on every call (a min() and a max() over
    # them), and an import of 100,000 children asks about the same few weeks 500,000 times.
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_workdays(start: date, days: int) -> date:
    """The date `days` working days after `start` (the start day itself not counted)."""
    current, left = start, days
    while left > 0:
        current += timedelta(days=1)
        if is_workday(current):
            left -= 1
    return current


END_OF_WORKDAY = time(17, 30)


def workday_deadline(days: int, start: date | None = None) -> datetime:
    """The end of the working day (17:30, local time) `days` working days after `start` (today):
    the due time of a task, a referral or a town's assessment."""
    from django.utils import timezone

    day = add_workdays(start or timezone.localdate(), days)
    return datetime.combine(day, END_OF_WORKDAY, tzinfo=timezone.get_current_timezone())
