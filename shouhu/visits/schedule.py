"""When a child's next visit is due: a pure function of its confirmed categories, its risk level,
its last visit and the district's visit parameters (shouhu.policy.params, versioned: the values
in force on the day asked about).

Rules (policy.md §6, defaults configurable):
* a child never visited since entering the ledger: first visit within `visit_first_working_days`
  working days (Chinese working days: public holidays off, adjusted working days on);
* otherwise the last visit plus the shortest interval that applies: 红 `visit_days_red`,
  橙 `visit_days_orange`, 留守儿童 and 事实无人抚养儿童 `visit_days_left_behind`, any other
  category of child in difficulty `visit_days_other`;
* a child with no confirmed category and risk 黄/绿 or none has no periodic visit (the first visit
  still applies to every child in the ledger).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.utils.translation import gettext as _

from shouhu.lib.workdays import add_workdays

MONTHLY_CATEGORIES = frozenset({"left_behind", "de_facto_unsupported"})


@dataclass(frozen=True)
class Plan:
    next_due: date | None
    interval_days: int | None
    first_visit: bool
    basis: str  # a Chinese sentence: which rule, which numbers


def plan(
    *, registered_on: date, last_visit_on: date | None, categories: Iterable[str], risk_level: str, params: Any
) -> Plan:
    """The next due date and why. `params` is a `Params` (attributes visit_*)."""
    from shouhu.policy.rules import CATEGORY_NAMES

    codes = set(categories)
    candidates: list[tuple[int, str]] = []
    if risk_level == "red":
        candidates.append((int(params.visit_days_red), _("风险等级为红色")))
    if risk_level == "orange":
        candidates.append((int(params.visit_days_orange), _("风险等级为橙色")))
    monthly = sorted(codes & MONTHLY_CATEGORIES)
    if monthly:
        names = "、".join(CATEGORY_NAMES.get(c, c) for c in monthly)
        candidates.append((int(params.visit_days_left_behind), names))
    other = sorted(codes - MONTHLY_CATEGORIES)
    if other:
        names = "、".join(CATEGORY_NAMES.get(c, c) for c in other)
        candidates.append((int(params.visit_days_other), names))
    interval, why = min(candidates) if candidates else (None, "")
    if last_visit_on is None:
        days = int(params.visit_first_working_days)
        due = add_workdays(registered_on, days)
        return Plan(due, interval, True, _("纳入台账后%(n)d个工作日内首次走访") % {"n": days})
    if interval is None:
        return Plan(None, None, False, _("无已认定类别、风险等级不高：不设定期走访"))
    return Plan(
        last_visit_on + timedelta(days=interval),
        interval,
        False,
        _("%(why)s：每%(n)d天走访一次") % {"why": why, "n": interval},
    )
