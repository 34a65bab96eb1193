"""Reads for the policy engine: facts snapshots from the ledger, parameters in force, routes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from shouhu.lib import refcache
from shouhu.org.models import NeedRoute, Organization, OrgKind
from shouhu.policy.facts import ChildFacts, Disability, Facts, Parent, Situation
from shouhu.policy.models import MANUAL_CODES, ChildCategory, PolicyParameter
from shouhu.policy.params import DEFAULT_PARAMS, SPEC_BY_KEY, Params
from shouhu.registry.models import Child

ASSISTANCE_STATUSES = {"dibao", "tekun", "dibao_edge"}


def params_on(day: date) -> Params:
    """Defaults overridden by the district's settings in force on `day` (memoised per process for
    a few seconds: shouhu/lib/refcache.py)."""
    return refcache.memo("params_on", day, lambda: _params_on(day))


def _params_on(day: date) -> Params:
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
    """Need type code → primary member unit code, from the duty catalogue in the database. A route
    to an organisation without a code (the admin allows one) is no route: its None would match any
    uncoded organisation in the callers' `filter(code=...)`."""
    rows = NeedRoute.objects.filter(primary=True, unit__code__isnull=False).values_list("need_type__code", "unit__code")
    return {need: unit for need, unit in rows if unit is not None}


def snapshot_children() -> Any:
    """The queryset shape `facts_for` needs, with everything prefetched (no N+1)."""
    return Child.objects.select_related("household").prefetch_related("family__situations")


def manual_codes_by_child(child_ids: Iterable[Any], on: date) -> dict[Any, set[str]]:
    out: dict[Any, set[str]] = {}
    rows = ChildCategory.objects.filter(
        child_id__in=list(child_ids), code__in=MANUAL_CODES, valid_to__isnull=True, valid_from__lte=on
    ).values_list("child_id", "code")
    for child_id, code in rows:
        out.setdefault(child_id, set()).add(code)
    return out


def facts_for(child: Child, on: date, params: Params, manual: set[str] | None = None) -> Facts:
    """A pure snapshot of one child's facts (call on children from `snapshot_children`)."""
    row = {name: getattr(child, name) for name in CHILD_FACT_FIELDS if "__" not in name}
    row["household__economic_status"] = child.household.economic_status if child.household else None
    roles: dict[str, tuple[Situation, ...]] = {}
    for member in child.family.all():
        if member.relation in ("father", "mother"):
            roles[member.relation] = roles.get(member.relation, ()) + tuple(
                Situation(
                    kind=s.kind,
                    since=s.since,
                    until=s.until,
                    disability_grade=s.disability_grade,
                    disability_type=s.disability_type or "",
                )
                for s in member.situations.all()
            )
    return _facts_from_values(row, roles, on, params, manual or set())


CHILD_FACT_FIELDS = (
    "id",
    "birth_date",
    "hukou_type",
    "health",
    "disability_grade",
    "disability_type",
    "illness",
    "street_child",
    "lives_with_parents",
    "school_stage",
    "household__economic_status",
)


def facts_batch(child_ids: list[Any], on: date, params: Params) -> dict[Any, Facts]:
    """Facts of many children in three queries of plain values (the nightly run's fast path:
    no model instances, no decryption of identifiers it does not need)."""
    from shouhu.registry.models import FamilyMember, ParentSituation

    situations: dict[int, list[Situation]] = {}
    for row in ParentSituation.objects.filter(
        member__child_id__in=child_ids, member__relation__in=("father", "mother")
    ).values_list("member_id", "kind", "since", "until", "disability_grade", "disability_type"):
        situations.setdefault(row[0], []).append(
            Situation(kind=row[1], since=row[2], until=row[3], disability_grade=row[4], disability_type=row[5] or "")
        )
    parents: dict[Any, dict[str, tuple[Situation, ...]]] = {}
    for member_id, child_id, relation in FamilyMember.objects.filter(
        child_id__in=child_ids, relation__in=("father", "mother")
    ).values_list("id", "child_id", "relation"):
        roles = parents.setdefault(child_id, {})
        roles[relation] = roles.get(relation, ()) + tuple(situations.get(member_id, ()))
    manual = manual_codes_by_child(child_ids, on)
    out: dict[Any, Facts] = {}
    for row in Child.objects.filter(pk__in=child_ids).values(*CHILD_FACT_FIELDS):
        out[row["id"]] = _facts_from_values(row, parents.get(row["id"], {}), on, params, manual.get(row["id"], set()))
    return out


def _facts_from_values(
    row: dict[str, Any], roles: dict[str, tuple[Situation, ...]], on: date, params: Params, manual: set[str]
) -> Facts:
    disability = None
    if row["health"] == "disabled" and row["disability_grade"] and row["disability_type"]:
        disability = Disability(grade=row["disability_grade"], type=row["disability_type"])
    illness = row["illness"] or ""
    status = row["household__economic_status"]
    return Facts(
        as_of=on,
        child=ChildFacts(
            birth_date=row["birth_date"],
            hukou_type="rural" if row["hukou_type"] == "rural" else "urban",
            disability=disability,
            serious_illness=row["health"] == "ill" and any(d and d in illness for d in params.serious_diseases),
            household_assistance=frozenset({status} & ASSISTANCE_STATUSES) if status else frozenset(),
            street_child=row["street_child"],
            lives_with_parents=row["lives_with_parents"],
            school_stage=row["school_stage"],
            manual_categories=frozenset(manual),
        ),
        parents=tuple(Parent(role, sits) for role, sits in sorted(roles.items())),
    )


def local_unit(child: Child, unit_code: str) -> Organization | None:
    """The child's own village committee or town government."""
    if unit_code == "village_committee":
        return Organization.objects.filter(kind=OrgKind.VILLAGE_COMMITTEE, regions__code=child.region_id).first()
    if unit_code == "town_government":
        return Organization.objects.filter(
            kind=OrgKind.TOWN_GOVERNMENT, regions__code=child.region_id[:9] + "000"
        ).first()
    return Organization.objects.filter(code=unit_code).first()


def category_counts_by_town() -> dict[str, dict[str, int]]:
    """Children with a current confirmed category, per town prefix and category code: numbers only."""
    from django.db.models import Count
    from django.db.models.functions import Substr

    out: dict[str, dict[str, int]] = {}
    rows = (
        ChildCategory.objects.filter(valid_to__isnull=True, child__status="active")
        .annotate(town=Substr("child__region_id", 1, 9))
        .values_list("town", "code")
        .annotate(n=Count("child_id", distinct=True))
    )
    for town, code, n in rows:
        out.setdefault(town, {})[code] = n
    return out
