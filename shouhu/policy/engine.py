"""Evaluate a child's facts on a day: categories, near misses, Jiangsu class and entitlements.

Pure: the same facts, day and parameters always give the same result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shouhu.policy.dates import is_under
from shouhu.policy.entitlements import Entitlement, entitlements_for, unit_for
from shouhu.policy.facts import Facts
from shouhu.policy.params import DEFAULT_PARAMS, Params
from shouhu.policy.rules import KINDS_2020, Finding, one_evaluation, parent_status, rules_in_force

JIANGSU_SOURCE = "江苏省困境儿童保障补充意见（2018）"
JIANGSU_NAMES = {
    1: "孤儿",
    2: "父母监护缺失的儿童",
    3: "父母无力履行监护职责的儿童",
    4: "重残、重病及流浪儿童",
    5: "贫困家庭儿童",
    6: "其他需要帮助的儿童",
}


@dataclass(frozen=True)
class Evaluation:
    as_of: Any
    categories: dict[str, Finding]
    near_misses: list[Finding]
    jiangsu_class: int | None
    jiangsu_explanation: str
    entitlements: list[Entitlement]

    def to_json(self, routes: Mapping[str, str], unit_names: Mapping[str, str] | None = None) -> dict[str, Any]:
        unit_names = unit_names or {}
        return {
            "as_of": self.as_of.isoformat(),
            "categories": [
                {"code": f.code, "source": f.source, "version": f.version, "explanation": f.explanation}
                for f in self.categories.values()
            ],
            "jiangsu_class": self.jiangsu_class,
            "jiangsu_explanation": self.jiangsu_explanation,
            "near_misses": [
                {
                    "code": f.code,
                    "explanation": f.explanation,
                    **({"eligible_from": f.eligible_from.isoformat()} if f.eligible_from else {}),
                }
                for f in self.near_misses
            ],
            "entitlements": [
                {
                    "code": e.code,
                    "name": e.name,
                    "unit": unit_for(e, routes),
                    "unit_name": unit_names.get(unit_for(e, routes), ""),
                    "explanation": e.explanation,
                    "source": e.source,
                    **({"amount_monthly": str(e.amount_monthly)} if e.amount_monthly else {}),
                }
                for e in self.entitlements
            ],
        }


def jiangsu_class(facts: Facts, params: Params, categories: Mapping[str, Finding]) -> tuple[int | None, str]:
    """The lowest (most protective) of the six Jiangsu classes the child falls in."""
    if "orphan" in categories:
        return 1, f"孤儿 → 第1类，依据{JIANGSU_SOURCE}"
    if "de_facto_unsupported" in categories or "guardianship_missing" in categories:
        return 2, f"父母监护缺失（含事实无人抚养）→ 第2类，依据{JIANGSU_SOURCE}"
    # Class 3 (parents unable): a parent in a situation of 62号 that has not made the child class 1
    # or 2 — e.g. one parent in prison and the other at home. A reading of the 2018 text [M]; a
    # person confirms every class before it counts.
    statuses = [parent_status(facts, role, params, KINDS_2020) for role in ("father", "mother")]
    unable = [s.qualifying for s in statuses if s.qualifying]
    if unable:
        return 3, f"{'；'.join(unable)} → 父母无力履行监护职责，第3类，依据{JIANGSU_SOURCE}"
    disability = categories.get("disability")
    if (
        (disability and disability.detail.get("severe"))
        or "serious_illness" in categories
        or "street_child" in categories
    ):
        return 4, f"重残、重病或流浪 → 第4类，依据{JIANGSU_SOURCE}"
    if "poverty" in categories:
        return 5, f"低保、特困、低保边缘家庭 → 第5类，依据{JIANGSU_SOURCE}"
    if disability or "guardianship_improper" in categories:
        return 6, f"其他需要帮助的儿童 → 第6类，依据{JIANGSU_SOURCE}"
    return None, "不属于江苏省六类困境儿童"


def evaluate(facts: Facts, params: Params = DEFAULT_PARAMS) -> Evaluation:
    with one_evaluation():
        return _evaluate(facts, params)


def _evaluate(facts: Facts, params: Params) -> Evaluation:
    categories: dict[str, Finding] = {}
    near: list[Finding] = []
    for rule in rules_in_force(facts.as_of):
        finding = rule.evaluate(facts, params)
        if finding.given:
            categories[finding.code] = finding
        elif finding.relevant:
            near.append(finding)
    if is_under(facts.child.birth_date, 18, facts.as_of):
        jclass, jtext = jiangsu_class(facts, params, categories)
    else:
        jclass, jtext = None, "已满18周岁，不属于困境儿童"
    return Evaluation(
        as_of=facts.as_of,
        categories=categories,
        near_misses=near,
        jiangsu_class=jclass,
        jiangsu_explanation=jtext,
        entitlements=entitlements_for(facts, params, categories, jclass),
    )
