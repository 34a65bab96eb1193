"""Reads for the town's review of visits (走访督导): per village (or per town, for the district) the
visit coverage and a quality hint, each village director's workload, and the latest submitted
visits; and the numbers of the daily digest.

Numbers only, from a few GROUP BY queries on the stored plans (`VisitPlan.next_due`) and visits:
"overdue" is `next_due < today`, never a flag. Directors are shown with their workload (children,
overdue, drafts), never ranked by how many visits or photos they recorded (national rules against
formalism): rows are in region-code order, whatever the numbers.

Definitions (today = the local date):
* planned: an active child whose plan has a due date;
* overdue: `next_due < today` (on the due date itself it is not overdue);
* due this week: `today <= next_due <= Sunday`;
* periodic: a plan with an interval (a category or risk level that asks for regular visits);
* covered: a periodic plan whose last submitted visit is within its interval, i.e. it has a last
  visit and its next due date (last visit + interval) is today or later. A returned visit is not
  a last visit (the plan is recomputed when a visit is returned);
* first visits overdue: never visited, first-visit deadline passed;
* returned (30 days): visits the town returned in the last 30 days, whatever they became since;
* quality hint: of the visits submitted with a visit date in the last 90 days, the share with a
  guardianship assessment and every checklist item answered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone

from shouhu.org.access import scope_for
from shouhu.org.models import PREFIX_LENGTH, Region, RegionLevel, Role, User
from shouhu.visits.models import CHECKLIST_KEYS, Visit, VisitPlan, VisitState
from shouhu.visits.services import week_end

TOWN_PREFIX = PREFIX_LENGTH[RegionLevel.TOWN]
RETURNED_DAYS = 30
QUALITY_DAYS = 90
LATEST_VISITS = 15


@dataclass
class Numbers:
    """Visit numbers of a region (or of a director's regions, or a total)."""

    planned: int = 0
    overdue: int = 0
    week: int = 0
    periodic: int = 0
    covered: int = 0
    first_overdue: int = 0
    returned: int = 0
    submitted: int = 0
    complete: int = 0

    def add(self, other: Numbers) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def coverage(self) -> int | None:
        """Covered periodic plans in percent; None when there is no periodic plan."""
        return round(100 * self.covered / self.periodic) if self.periodic else None

    @property
    def quality(self) -> int | None:
        return round(100 * self.complete / self.submitted) if self.submitted else None


@dataclass
class Row:
    region: Region
    numbers: Numbers
    drill: bool = False  # a town row of the district view: links to its villages


@dataclass
class DirectorRow:
    user: User
    regions: list[Region]
    numbers: Numbers
    drafts: int = 0
    returned_pending: int = 0


@dataclass
class Review:
    today: date
    week_end: date
    town: Region | None  # the town drilled into (district), or the supervisor's own single town
    by_town: bool  # rows are towns (the district's first view)
    drilled: bool  # a town picked from a wider scope (the page links back to the towns)
    rows: list[Row]
    total: Numbers
    directors: list[DirectorRow] = field(default_factory=list)
    latest: list[Visit] = field(default_factory=list)


def _prefix_q(prefixes: Iterable[str], column: str) -> Q:
    from shouhu.visits.selectors import code_range_q

    return code_range_q(list(prefixes), column)


def plan_numbers(prefixes: Iterable[str], today: date) -> dict[str, Numbers]:
    """Plan numbers per region code (the child's region) under these prefixes: one GROUP BY query."""
    end = week_end(today)
    rows = (
        VisitPlan.objects.filter(_prefix_q(prefixes, "region__code"))
        .values("region_id")
        .order_by("region_id")
        .annotate(
            planned=Count("pk", filter=Q(next_due__isnull=False)),
            overdue=Count("pk", filter=Q(next_due__lt=today)),
            week=Count("pk", filter=Q(next_due__gte=today, next_due__lte=end)),
            periodic=Count("pk", filter=Q(interval_days__isnull=False)),
            covered=Count(
                "pk", filter=Q(interval_days__isnull=False, last_visit_on__isnull=False, next_due__gte=today)
            ),
            first_overdue=Count("pk", filter=Q(first_visit=True, next_due__lt=today)),
        )
    )
    return {r.pop("region_id"): Numbers(**r) for r in rows}


def visit_numbers(prefixes: Iterable[str], today: date) -> dict[str, Numbers]:
    """Returned visits and the quality hint per region code: one GROUP BY query."""
    since_returned = timezone.now() - timedelta(days=RETURNED_DAYS)
    since_quality = today - timedelta(days=QUALITY_DAYS)
    recent = Q(state=VisitState.SUBMITTED, visited_on__gte=since_quality)
    complete = recent & ~Q(guardianship_assessment="") & Q(checklist__has_keys=list(CHECKLIST_KEYS))
    rows = (
        Visit.objects.filter(_prefix_q(prefixes, "child__region__code"))
        .filter(Q(returned_at__gte=since_returned) | recent)
        .values("child__region_id")
        .order_by("child__region_id")
        .annotate(
            returned=Count("pk", filter=Q(returned_at__gte=since_returned)),
            submitted=Count("pk", filter=recent),
            complete=Count("pk", filter=complete),
        )
    )
    return {r.pop("child__region_id"): Numbers(**r) for r in rows}


def numbers_by_region(prefixes: Iterable[str], today: date) -> dict[str, Numbers]:
    prefixes = tuple(prefixes)
    out = plan_numbers(prefixes, today)
    for code, extra in visit_numbers(prefixes, today).items():
        out.setdefault(code, Numbers()).add(extra)
    return out


def _region_prefix(region: Region) -> str:
    return region.code[: PREFIX_LENGTH[RegionLevel(region.level)]]


def _town_of(actor: Any, town_code: str | None) -> Region | None:
    """The town asked for with ?town=, if the actor's regions cover it; a 404 otherwise (a town out
    of scope looks the same as one that does not exist)."""
    if not town_code:
        return None
    scope = scope_for(actor)
    town = Region.objects.filter(code=town_code, level=RegionLevel.TOWN).first()
    if town is None or not scope.prefixes or not any(town.prefix.startswith(p) for p in scope.prefixes):
        raise Http404
    return town


def review_for(actor: Any, *, town_code: str | None = None, today: date | None = None) -> Review:
    """The review page's numbers for the actor's regions: towns for a scope wider than one town
    (unless `town_code` picks one), villages otherwise."""
    today = today or timezone.localdate()
    scope_prefixes = scope_for(actor).prefixes
    town = _town_of(actor, town_code)
    town_code = town.code if town else None
    if town is not None:
        prefixes: tuple[str, ...] = (town.prefix,)
    else:
        prefixes = scope_prefixes
    by_town = town is None and any(len(p) < TOWN_PREFIX for p in prefixes)
    numbers = numbers_by_region(prefixes, today) if prefixes else {}

    total = Numbers()
    for n in numbers.values():
        total.add(n)
    rows: list[Row]
    if by_town:
        towns = list(Region.objects.filter(_prefix_q(prefixes, "code"), level=RegionLevel.TOWN).order_by("code"))
        per_town: dict[str, Numbers] = defaultdict(Numbers)
        for code, n in numbers.items():
            per_town[code[:TOWN_PREFIX]].add(n)
        rows = [Row(region=t, numbers=per_town.get(t.prefix, Numbers()), drill=True) for t in towns]
    else:
        regions = list(
            Region.objects.filter(_prefix_q(prefixes, "code"))
            .filter(Q(level=RegionLevel.VILLAGE) | Q(code__in=list(numbers)))
            .select_related("parent")
            .order_by("code")
        )
        rows = [Row(region=r, numbers=numbers.get(r.code, Numbers())) for r in regions]
        if town is None and len(prefixes) == 1 and len(prefixes[0]) == TOWN_PREFIX:
            town = Region.objects.filter(code=f"{prefixes[0]}000", level=RegionLevel.TOWN).first()
    drilled = town_code is not None and any(len(p) < TOWN_PREFIX for p in scope_prefixes)
    review = Review(
        today=today, week_end=week_end(today), town=town, by_town=by_town, drilled=drilled, rows=rows, total=total
    )
    if not by_town and prefixes:
        review.directors = director_rows(prefixes, numbers)
    if prefixes:
        review.latest = latest_visits(actor, prefixes)
    return review


def director_rows(prefixes: tuple[str, ...], numbers: dict[str, Numbers]) -> list[DirectorRow]:
    """Each active village director whose regions overlap these prefixes, with the workload of their
    own regions: children with a plan, overdue, their drafts and returned records still open.
    In region-code order: this is a workload table, not a ranking."""
    directors = (
        User.objects.filter(is_active=True, roles__role=Role.VILLAGE_DIRECTOR, organization__isnull=False)
        .distinct()
        .select_related("organization")
        .prefetch_related("organization__regions")
    )
    out: list[DirectorRow] = []
    for user in directors:
        regions = [
            r
            for r in user.organization.regions.all()  # type: ignore[union-attr]
            if any(_region_prefix(r).startswith(p) or p.startswith(_region_prefix(r)) for p in prefixes)
        ]
        if not regions:
            continue
        own = tuple(_region_prefix(r) for r in regions)
        n = Numbers()
        for code, region_numbers in numbers.items():
            if code.startswith(own) and code.startswith(prefixes):
                n.add(region_numbers)
        out.append(DirectorRow(user=user, regions=sorted(regions, key=lambda r: r.code), numbers=n))
    if out:
        open_work = (
            Visit.objects.filter(
                visitor_id__in=[d.user.pk for d in out], state__in=[VisitState.DRAFT, VisitState.RETURNED]
            )
            .filter(_prefix_q(prefixes, "child__region__code"))
            .values("visitor_id", "state")
            .order_by()
            .annotate(n=Count("pk"))
        )
        counts = {(r["visitor_id"], r["state"]): r["n"] for r in open_work}
        for d in out:
            d.drafts = counts.get((d.user.pk, VisitState.DRAFT), 0)
            d.returned_pending = counts.get((d.user.pk, VisitState.RETURNED), 0)
    out.sort(key=lambda d: (d.regions[0].code, d.user.full_name or d.user.username, d.user.pk))
    return out


def latest_visits(actor: Any, prefixes: tuple[str, ...], limit: int = LATEST_VISITS) -> list[Visit]:
    """The latest submitted visits under these prefixes that the actor may see, newest first."""
    from shouhu.visits.selectors import visits_for

    return list(
        visits_for(actor)
        .filter(_prefix_q(prefixes, "child__region__code"), state=VisitState.SUBMITTED)
        .select_related("child__region__parent")
        .order_by("-submitted_at", "-id")[:limit]
    )


# ----- the digest ----------------------------------------------------------------------------------

DIGEST_ROLES = (Role.VILLAGE_DIRECTOR, Role.TOWN_SUPERVISOR)


def due_counts_by_region(today: date) -> dict[str, tuple[int, int]]:
    """(overdue, due this week) per region code, district-wide: one GROUP BY query."""
    end = week_end(today)
    rows = (
        VisitPlan.objects.filter(next_due__lte=end)
        .values("region_id")
        .order_by("region_id")
        .annotate(overdue=Count("pk", filter=Q(next_due__lt=today)), week=Count("pk", filter=Q(next_due__gte=today)))
    )
    return {r["region_id"]: (r["overdue"], r["week"]) for r in rows}


def digest_recipients() -> list[User]:
    """Active users with a role that gets the digest (a village director or a town supervisor)."""
    return list(
        User.objects.filter(is_active=True, roles__role__in=DIGEST_ROLES)
        .distinct()
        .select_related("organization")
        .prefetch_related("organization__regions")
        .order_by("pk")
    )


def due_counts_for(user: User, counts: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """(overdue, due this week) in the user's regions."""
    prefixes = scope_for(user).prefixes
    overdue = week = 0
    if prefixes:
        for code, (o, w) in counts.items():
            if code.startswith(prefixes):
                overdue += o
                week += w
    return overdue, week
