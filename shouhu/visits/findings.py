"""What a visit shows that the platform can recognise itself, proposed to the director as work.

Pure: the caller passes the child's facts and the visit; nothing is read or written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.utils.translation import gettext as _

PARENT_CONTACT_DAYS = 7  # 未成年人保护法 art. 23: parents contact the child at least once a week


@dataclass(frozen=True)
class VisitFinding:
    code: str
    message: str  # Chinese, with the rule it rests on
    action: str  # "risk" (raise the risk level), "help" (ask a unit), "facts" (update the ledger)


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) <= (birth.month, birth.day))


def findings(
    *, birth_date: date, entrustment_issues: list[tuple[str, str]], visit: Any, today: date
) -> list[VisitFinding]:
    """`entrustment_issues`: for a left-behind child, what is not in order with its entrusted care,
    as the registry judges it (`registry.selectors.entrustment_findings`: one rule for the visit
    page, the entrustment list and the import); empty otherwise. `visit`: a Visit (or its data)."""
    out: list[VisitFinding] = []
    on = getattr(visit, "visited_on", None) or today
    age = _age(birth_date, on)
    if getattr(visit, "child_lives_alone", None) and age < 16:
        out.append(
            VisitFinding(
                "alone_under_16",
                _(
                    "未满16周岁的儿童独自居住（未成年人保护法第二十一条不允许）：请立即联系父母安排照护人，"
                    "情况紧急或联系不上父母时报告公安机关。"
                ),
                "risk",
            )
        )
    for code, message in entrustment_issues:
        out.append(
            VisitFinding(code, _("留守儿童委托照护：%(m)s请督促父母办理，并更新儿童档案。") % {"m": message}, "facts")
        )
    last_contact = getattr(visit, "parents_last_contact", None)
    if getattr(visit, "parents_contact_weekly", None) is False or (
        last_contact and on - last_contact > timedelta(days=PARENT_CONTACT_DAYS)
    ):
        out.append(
            VisitFinding(
                "parents_no_contact",
                _(
                    "父母超过一周未与孩子联系（未成年人保护法第二十三条要求每周至少一次）：请联系父母，必要时申请家庭教育指导。"
                ),
                "help",
            )
        )
    if getattr(visit, "guardianship_assessment", "") == "poor":
        out.append(
            VisitFinding(
                "poor_guardianship", _("监护状况评价为“差”：请考虑提高风险等级，并视情况请有关部门帮助。"), "risk"
            )
        )
    return out
