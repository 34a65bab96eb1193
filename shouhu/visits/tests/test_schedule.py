"""The visit schedule rule, table-driven: first visit in working days, intervals by risk and category."""

from __future__ import annotations

from datetime import date

import pytest

from shouhu.policy.params import DEFAULT_PARAMS
from shouhu.visits.schedule import plan

P = DEFAULT_PARAMS


@pytest.mark.parametrize(
    ("registered", "expected"),
    [
        (
            date(2026, 9, 28),
            date(2026, 10, 10),
        ),  # 9-29, 9-30, (10-1..7 off), 10-8, 10-9, Sat 10-10 adjusted working day
        (date(2026, 11, 2), date(2026, 11, 9)),  # Monday + 5 working days
        (date(2026, 11, 6), date(2026, 11, 13)),  # Friday: the weekend is not counted
    ],
)
def test_first_visit_within_five_chinese_working_days(registered, expected):
    p = plan(registered_on=registered, last_visit_on=None, categories=[], risk_level="", params=P)
    assert p.first_visit and p.next_due == expected and "5个工作日" in p.basis


@pytest.mark.parametrize(
    ("categories", "risk", "days"),
    [
        (["left_behind"], "", 30),
        (["de_facto_unsupported"], "green", 30),
        (["poverty"], "", 90),
        (["disability", "left_behind"], "", 30),  # the shortest interval that applies
        (["poverty"], "orange", 14),
        ([], "red", 7),
        (["left_behind"], "red", 7),
        (["left_behind"], "yellow", 30),
    ],
)
def test_interval_is_the_shortest_that_applies(categories, risk, days):
    last = date(2026, 11, 1)
    p = plan(registered_on=date(2026, 1, 5), last_visit_on=last, categories=categories, risk_level=risk, params=P)
    assert not p.first_visit and p.interval_days == days
    assert (p.next_due - last).days == days


def test_no_category_and_low_risk_has_no_periodic_visit():
    p = plan(
        registered_on=date(2026, 1, 5), last_visit_on=date(2026, 3, 1), categories=[], risk_level="green", params=P
    )
    assert p.next_due is None and p.interval_days is None


def test_parameters_are_configurable():
    p = plan(
        registered_on=date(2026, 1, 5),
        last_visit_on=date(2026, 3, 1),
        categories=["left_behind"],
        risk_level="",
        params=P.with_values(visit_days_left_behind=21),
    )
    assert p.next_due == date(2026, 3, 22) and "21" in p.basis


@pytest.mark.parametrize(
    ("last", "categories", "risk", "due"),
    [
        (date(2026, 1, 31), ["left_behind"], "", date(2026, 3, 2)),  # a month end: counted in days, not months
        (date(2028, 1, 31), ["left_behind"], "", date(2028, 3, 1)),  # leap year: February has 29 days
        (date(2028, 2, 29), ["left_behind"], "", date(2028, 3, 30)),  # from the leap day itself
        (date(2026, 12, 20), ["poverty"], "", date(2027, 3, 20)),  # across the year end
        (date(2026, 12, 28), [], "red", date(2027, 1, 4)),
    ],
)
def test_due_dates_across_month_ends_leap_years_and_year_ends(last, categories, risk, due):
    p = plan(registered_on=date(2025, 6, 1), last_visit_on=last, categories=categories, risk_level=risk, params=P)
    assert p.next_due == due


def test_first_visit_over_the_spring_festival_counts_working_days_only():
    # 2026 Spring Festival: 2-15 .. 2-23 off, 2-14 (Sat) and 2-28 (Sat) adjusted working days.
    p = plan(registered_on=date(2026, 2, 12), last_visit_on=None, categories=["left_behind"], risk_level="", params=P)
    from shouhu.lib.workdays import add_workdays

    assert p.next_due == add_workdays(date(2026, 2, 12), 5) and p.next_due > date(2026, 2, 23)
