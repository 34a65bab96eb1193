"""The facts a rule reads: a plain, immutable snapshot. No database here.

`facts_from_json` parses the documented input of `manage.py classify` (docs/policy.md) and names
the bad field when the input is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

SITUATION_KINDS = frozenset(
    {
        "out_for_work",
        "severe_disability",
        "serious_illness",
        "imprisoned",
        "drug_rehab",
        "restricted_liberty",
        "lost_contact",
        "deceased",
        "declared_missing",
        "guardianship_revoked",
        "deported",
        "no_capacity",
    }
)
DISABILITY_TYPES = frozenset({"physical", "visual", "hearing", "speech", "intellectual", "mental", "multiple"})
ASSISTANCE = frozenset({"dibao", "tekun", "dibao_edge"})
MANUAL_CATEGORIES = frozenset({"guardianship_missing", "guardianship_improper"})
SCHOOL_STAGES = frozenset(
    {
        "not_enrolled",
        "kindergarten",
        "primary",
        "junior",
        "senior",
        "vocational",
        "dropped_out",
        "not_in_school",
        "",
    }
)


@dataclass(frozen=True)
class Disability:
    grade: int
    type: str


@dataclass(frozen=True)
class Situation:
    kind: str
    since: date | None = None
    until: date | None = None
    disability_grade: int | None = None
    disability_type: str = ""

    def active_on(self, day: date) -> bool:
        return (self.since is None or self.since <= day) and (self.until is None or self.until >= day)


@dataclass(frozen=True)
class Parent:
    role: str  # "father" | "mother"
    situations: tuple[Situation, ...] = ()


@dataclass(frozen=True)
class ChildFacts:
    birth_date: date
    hukou_type: str = "rural"
    disability: Disability | None = None
    serious_illness: bool = False
    household_assistance: frozenset[str] = frozenset()
    street_child: bool = False
    lives_with_parents: bool = False
    school_stage: str = ""
    manual_categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Facts:
    as_of: date
    child: ChildFacts
    parents: tuple[Parent, ...] = field(default_factory=tuple)

    def parent(self, role: str) -> Parent | None:
        return next((p for p in self.parents if p.role == role), None)


class FactsError(ValueError):
    """Invalid input; `field` is the dotted path of the bad field."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


def _date(value: Any, path: str, *, required: bool = True) -> date | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise FactsError(path, "应为 YYYY-MM-DD 格式的日期")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FactsError(path, f"“{value[:20]}”不是有效日期（YYYY-MM-DD）") from None


def _bool(data: Mapping[str, Any], key: str, path: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise FactsError(f"{path}.{key}", "应为 true 或 false")
    return value


def _grade(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4:
        raise FactsError(path, "残疾等级应为 1 到 4 的整数")
    return value


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FactsError(path, "应为对象")
    return value


def facts_from_json(data: Any) -> Facts:
    root = _mapping(data, "$")
    as_of = _date(root.get("as_of"), "as_of")
    child_data = _mapping(root.get("child"), "child")
    birth = _date(child_data.get("birth_date"), "child.birth_date")
    assert as_of is not None and birth is not None
    if birth > as_of:
        raise FactsError("child.birth_date", "出生日期晚于评估日期")
    hukou = child_data.get("hukou_type", "rural")
    if hukou not in {"rural", "urban"}:
        raise FactsError("child.hukou_type", "应为 rural 或 urban")
    disability = None
    if child_data.get("disability") is not None:
        d = _mapping(child_data["disability"], "child.disability")
        dtype = d.get("type")
        if dtype not in DISABILITY_TYPES:
            raise FactsError("child.disability.type", f"应为 {'/'.join(sorted(DISABILITY_TYPES))} 之一")
        disability = Disability(grade=_grade(d.get("grade"), "child.disability.grade"), type=dtype)
    assistance = child_data.get("household_assistance", [])
    if not isinstance(assistance, list) or any(a not in ASSISTANCE for a in assistance):
        raise FactsError("child.household_assistance", "应为列表，取值 dibao / tekun / dibao_edge")
    manual = child_data.get("manual_categories", [])
    if not isinstance(manual, list) or any(m not in MANUAL_CATEGORIES for m in manual):
        raise FactsError("child.manual_categories", "应为列表，取值 guardianship_missing / guardianship_improper")
    stage = child_data.get("school_stage", "")
    if stage not in SCHOOL_STAGES:
        raise FactsError("child.school_stage", "就学阶段取值不正确")
    child = ChildFacts(
        birth_date=birth,
        hukou_type=hukou,
        disability=disability,
        serious_illness=_bool(child_data, "serious_illness", "child"),
        household_assistance=frozenset(assistance),
        street_child=_bool(child_data, "street_child", "child"),
        lives_with_parents=_bool(child_data, "lives_with_parents", "child"),
        school_stage=stage,
        manual_categories=frozenset(manual),
    )
    parents_data = root.get("parents", [])
    if not isinstance(parents_data, list):
        raise FactsError("parents", "应为列表")
    parents: list[Parent] = []
    seen: set[str] = set()
    for i, raw in enumerate(parents_data):
        p = _mapping(raw, f"parents[{i}]")
        role = p.get("role")
        if role not in {"father", "mother"}:
            raise FactsError(f"parents[{i}].role", "应为 father 或 mother")
        if role in seen:
            raise FactsError(f"parents[{i}].role", f"{role} 重复出现")
        seen.add(role)
        sits_data = p.get("situations", [])
        if not isinstance(sits_data, list):
            raise FactsError(f"parents[{i}].situations", "应为列表")
        situations = []
        for j, rs in enumerate(sits_data):
            path = f"parents[{i}].situations[{j}]"
            s = _mapping(rs, path)
            kind = s.get("kind")
            if kind not in SITUATION_KINDS:
                raise FactsError(f"{path}.kind", f"不认识的情形“{str(kind)[:30]}”")
            since = _date(s.get("since"), f"{path}.since", required=False)
            until = _date(s.get("until"), f"{path}.until", required=False)
            if since and until and until < since:
                raise FactsError(f"{path}.until", "结束日期早于起始日期")
            grade = (
                _grade(s["disability_grade"], f"{path}.disability_grade")
                if s.get("disability_grade") is not None
                else None
            )
            dtype = s.get("disability_type", "") or ""
            if dtype and dtype not in DISABILITY_TYPES:
                raise FactsError(f"{path}.disability_type", "残疾类别取值不正确")
            situations.append(
                Situation(kind=kind, since=since, until=until, disability_grade=grade, disability_type=dtype)
            )
        parents.append(Parent(role=role, situations=tuple(situations)))
    return Facts(as_of=as_of, child=child, parents=tuple(parents))
