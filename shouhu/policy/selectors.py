"""Reads for the policy engine: facts snapshots from the ledger, parameters in force, routes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from shouhu.org.models import NeedRoute, Organization, OrgKind
from shouhu.policy.facts import ChildFacts, Disability, Facts, Parent, Situation
from shouhu.policy.models import MANUAL_CODES, ChildCategory, PolicyParameter
from shouhu.policy.params import DEFAULT_PARAMS, SPEC_BY_KEY, Params
from shouhu.registry.models import Child

ASSISTANCE_STATUSES = {"dibao", "tekun", "dibao_edge"}


def params_on(day: date) -> Params:
    """Defaults overridden by the district's settings in force on `day`."""
    values: dict[str, Any] = {}
    for row in PolicyParameter.objects.filter(effective_from__lte=day).order_by("key", "-effective_from"):
        if row.key in values or row.key not in SPEC_BY_KEY:
            continue
        default = SPEC_BY_KEY[row.key].default
        if isinstance(default, Decimal):
            values[row.key] = Decimal(str(row.value))
        elif isinstance(default, tuple):
            values[row.key] = tuple(row.value)
        else:
            values[row.key] = row.value
    return DEFAULT_PARAMS.with_values(**values) if values else DEFAULT_PARAMS


def routes() -> dict[str, str]:
    """Need type code → primary member unit code, from the duty catalogue in the database."""
    return dict(NeedRoute.objects.filter(primary=True).values_list("need_type__code", "unit__code"))


def snapshot_children() -> Any:
    """The queryset shape `facts_for` needs, with everything prefetched (no N+1)."""
    return Child.objects.select_related("household").prefetch_related("family__situations")


def manual_codes_by_child(child_ids: Iterable[Any], on: date) -> dict[Any, set[str]]:
    out: dict[Any, set[str]] = {}
    rows = ChildCategory.objects.filter(child_id__in=list(child_ids), code__in=MANUAL_CODES, valid_to__isnull=True,
                                        valid_from__lte=on).values_list("child_id", "code")
    for child_id, code in rows:
        out.setdefault(child_id, set()).add(code)
    return out


def facts_for(child: Child, on: date, params: Params, manual: set[str] | None = None) -> Facts:
    """A pure snapshot of one child's facts (call on children from `snapshot_children`)."""
    disability = None
    if child.health == "disabled" and child.disability_grade and child.disability_type:
        disability = Disability(grade=child.disability_grade, type=child.disability_type)
    illness = child.illness or ""
    serious = child.health == "ill" and any(d and d in illness for d in params.serious_diseases)
    household = child.household
    assistance = frozenset({household.economic_status} & ASSISTANCE_STATUSES) if household else frozenset()
    parents = []
    for member in child.family.all():
        if member.relation not in ("father", "mother"):
            continue
        situations = tuple(
            Situation(kind=s.kind, since=s.since, until=s.until, disability_grade=s.disability_grade,
                      disability_type=s.disability_type or "")
            for s in member.situations.all()
        )
        if any(p.role == member.relation for p in parents):
            # Two records of one parent: merge their situations rather than drop one.
            parents = [Parent(p.role, p.situations + situations) if p.role == member.relation else p for p in parents]
        else:
            parents.append(Parent(member.relation, situations))
    return Facts(
        as_of=on,
        child=ChildFacts(
            birth_date=child.birth_date,
            hukou_type="rural" if child.hukou_type == "rural" else "urban",
            disability=disability,
            serious_illness=serious,
            household_assistance=assistance,
            street_child=child.street_child,
            lives_with_parents=child.lives_with_parents,
            school_stage=child.school_stage,
            manual_categories=frozenset(manual or ()),
        ),
        parents=tuple(parents),
    )


def local_unit(child: Child, unit_code: str) -> Organization | None:
    """The child's own village committee or town government."""
    if unit_code == "village_committee":
        return Organization.objects.filter(kind=OrgKind.VILLAGE_COMMITTEE, regions__code=child.region_id).first()
    if unit_code == "town_government":
        return Organization.objects.filter(kind=OrgKind.TOWN_GOVERNMENT,
                                           regions__code=child.region_id[:9] + "000").first()
    return Organization.objects.filter(code=unit_code).first()


def current_categories(child: Child) -> list[ChildCategory]:
    return list(child.categories.filter(valid_to__isnull=True).order_by("code"))
