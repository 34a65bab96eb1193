"""The risk rule of a case assessment (调查评估): a pure function of the eight domain scores.

Each domain is scored 1–4:

    1 无明显问题   2 有一定问题   3 问题严重   4 危及儿童（需立即处置）

Rule `RULE_VERSION` (the first that matches gives the level; every matching reason is shown):

    1. any domain scored 4                                   → 红 (critical)
    2. safety (安全处境) or guardianship (监护情况) scored 3     → 橙 (high)
    3. two or more domains scored 3                          → 橙 (high)
    4. exactly one domain scored 3                           → 黄 (medium)
    5. otherwise (every domain 1 or 2)                       → 绿 (low)

A person may set another level with a written reason (`Assessment.override_level`); the derived
level and its reasons stay on the record beside it. The rule takes no data from the database, so
a past assessment can be re-derived and explained exactly as it was (keep old versions' text here
when the rule changes, and bump the version).

Service times (referral deadlines in working days per need type) and review cycles (days per risk
level) are defaults below, overridable in settings (`SHOUHU_CASE_SERVICE_DAYS`,
`SHOUHU_CASE_REVIEW_DAYS`); the numbers are local practice, not national text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

RULE_VERSION = "cases-risk-2026.1"

DOMAINS: tuple[tuple[str, Any], ...] = (
    ("safety", gettext_lazy("安全处境")),
    ("guardianship", gettext_lazy("监护情况")),
    ("physical_health", gettext_lazy("身体健康")),
    ("mental_health", gettext_lazy("心理健康")),
    ("schooling", gettext_lazy("就学情况")),
    ("economic", gettext_lazy("经济状况")),
    ("housing", gettext_lazy("居住条件")),
    ("social_support", gettext_lazy("社会支持")),
)
DOMAIN_KEYS = tuple(key for key, _label in DOMAINS)
DOMAIN_NAMES = dict(DOMAINS)
SCALE: tuple[tuple[int, Any], ...] = (
    (1, gettext_lazy("1 无明显问题")),
    (2, gettext_lazy("2 有一定问题")),
    (3, gettext_lazy("3 问题严重")),
    (4, gettext_lazy("4 危及儿童")),
)
KEY_DOMAINS = ("safety", "guardianship")

RED, ORANGE, YELLOW, GREEN = "red", "orange", "yellow", "green"  # shouhu.visits.models.RiskLevel values
HIGH_RISK = frozenset({RED, ORANGE})  # closing such a case needs the district office's approval


@dataclass(frozen=True)
class Derived:
    level: str
    reasons: tuple[str, ...]
    version: str = RULE_VERSION


def _names(keys: list[str]) -> str:
    return "、".join(str(DOMAIN_NAMES[k]) for k in keys)


def validate_scores(scores: dict[str, Any]) -> dict[str, int]:
    """Every domain present, each an integer 1–4; raises ValueError naming the first bad domain."""
    clean: dict[str, int] = {}
    for key in DOMAIN_KEYS:
        value = scores.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
            raise ValueError(key)
        clean[key] = value
    return clean


def derive(scores: dict[str, int]) -> Derived:
    """The risk level and the reasons that produced it (rule `RULE_VERSION`)."""
    scores = validate_scores(scores)
    fours = [k for k in DOMAIN_KEYS if scores[k] == 4]
    threes = [k for k in DOMAIN_KEYS if scores[k] == 3]
    key_threes = [k for k in KEY_DOMAINS if scores[k] == 3]
    if fours:
        return Derived(RED, (_("%(d)s评分为4（危及儿童）→ 红") % {"d": _names(fours)},))
    if key_threes or len(threes) >= 2:
        reasons = []
        if key_threes:
            reasons.append(_("%(d)s评分为3（问题严重）→ 橙") % {"d": _names(key_threes)})
        if len(threes) >= 2:
            reasons.append(_("%(n)s个领域评分为3（%(d)s）→ 橙") % {"n": len(threes), "d": _names(threes)})
        return Derived(ORANGE, tuple(reasons))
    if threes:
        return Derived(YELLOW, (_("%(d)s评分为3（问题严重）→ 黄") % {"d": _names(threes)},))
    return Derived(GREEN, (_("各领域评分均不高于2 → 绿"),))


DEFAULT_SERVICE_DAYS: dict[str, int] = {
    "default": 10,
    "emergency_response": 1,
    "placement": 1,
    "medical_treatment": 3,
    "injury_assessment": 5,
    "dropout": 10,
    "legal_aid": 10,
    "social_assistance": 20,
    "housing": 30,
}

DEFAULT_REVIEW_DAYS: dict[str, int] = {RED: 14, ORANGE: 30, YELLOW: 90, GREEN: 180}


# Who is alerted when an assessment puts a case at this level (rising to it): the case's own
# organisation ("owner") and the district office ("district"). Overridable: SHOUHU_CASE_ALERTS.
DEFAULT_ALERTS: dict[str, tuple[str, ...]] = {RED: ("owner", "district"), ORANGE: ("owner",)}


def alerted(level: str) -> tuple[str, ...]:
    table = {**DEFAULT_ALERTS, **getattr(settings, "SHOUHU_CASE_ALERTS", {})}
    return tuple(table.get(level, ()))


def service_days(need_code: str) -> int:
    """Working days a unit has to answer a referral of this need type."""
    table = {**DEFAULT_SERVICE_DAYS, **getattr(settings, "SHOUHU_CASE_SERVICE_DAYS", {})}
    return int(table.get(need_code, table["default"]))


def review_days(level: str) -> int:
    """Calendar days until the next review (reassessment) of a case at this risk level."""
    table = {**DEFAULT_REVIEW_DAYS, **getattr(settings, "SHOUHU_CASE_REVIEW_DAYS", {})}
    return int(table.get(level, table[GREEN]))
