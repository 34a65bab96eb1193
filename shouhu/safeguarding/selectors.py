"""Who sees which report, and how much of it.

* the district office (REPORTS_ALL): every report, with the reporter;
* the police (REPORTS_HANDLE): the reports routed to their station — with the reporter — and, for
  the district police, every report (without the reporter unless it is handling it itself);
* the town (REPORTS_TOWN): reports in its area, never who reported;
* the procuratorate (REPORTS_SUPERVISE): every report's timeline and response times; no child
  name, no description, no reporter;
* a reporting organisation (REPORT_FILE): its own reports' status, receipt and outcome — not the
  police's notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from shouhu.org.access import Cap, scope_for
from shouhu.safeguarding.models import Report, ReportDeadline


@dataclass(frozen=True)
class View:
    """What the actor may see of one report."""

    details: bool  # the child, the place, the description, the police's notes
    reporter: bool  # who reported (confidential)
    handle: bool  # may record the police's steps
    town: bool  # may record the town's assessment
    district: bool  # placement, commendation
    supervise: bool  # the procuratorate's read-only view
    own: bool  # the actor's organisation filed it


def reports_visible_to(actor: Any) -> QuerySet[Report]:
    scope = scope_for(actor)
    org_id = scope.organization_id
    if scope.can(Cap.REPORTS_ALL) or scope.can(Cap.REPORTS_SUPERVISE):
        return Report.objects.all()
    q = Q(pk__in=[])
    if scope.can(Cap.REPORTS_HANDLE) and org_id:
        org = getattr(actor, "organization", None)
        if org is not None and org.code == "public_security":
            return Report.objects.all()
        q |= Q(police_station_id=org_id)
    if scope.can(Cap.REPORTS_TOWN):
        for prefix in scope.prefixes:
            q |= Q(town_code__startswith=prefix[:9])
    if scope.can(Cap.REPORT_FILE) and org_id:
        q |= Q(reporter_org_id=org_id)
    if scope.can(Cap.REPORT_FILE):
        q |= Q(reporter_id=getattr(actor, "pk", None))
    return Report.objects.filter(q)


def view_of(actor: Any, report: Report) -> View:
    scope = scope_for(actor)
    org = getattr(actor, "organization", None)
    org_id = scope.organization_id
    district = scope.can(Cap.REPORTS_ALL)
    handling = (
        scope.can(Cap.REPORTS_HANDLE)
        and org_id is not None
        and (report.police_station_id == org_id or (org is not None and org.code == "public_security"))
    )
    station = scope.can(Cap.REPORTS_HANDLE) and org_id is not None and report.police_station_id == org_id
    town = scope.can(Cap.REPORTS_TOWN) and scope.covers_region(report.town_code)
    own = (org_id is not None and report.reporter_org_id == org_id) or report.reporter_id == getattr(actor, "pk", None)
    supervise = scope.can(Cap.REPORTS_SUPERVISE)
    return View(
        details=district or handling or town,
        reporter=district or station,
        handle=handling,
        town=town,
        district=district,
        supervise=supervise,
        own=own,
    )


def report_get_for(actor: Any, pk: Any) -> tuple[Report, View]:
    try:
        report = reports_visible_to(actor).select_related("police_station", "place_region", "reporter_org").get(pk=pk)
    except (Report.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    return report, view_of(actor, report)


@dataclass(frozen=True)
class Clock:
    kind: str
    label: str
    due_at: Any
    met_at: Any
    escalated_at: Any
    overdue: bool
    colour: str  # "" / "yellow" (over half the time gone) / "red" (overdue)


def clocks(report: Report, now: Any = None) -> list[Clock]:
    now = now or timezone.now()
    out = []
    for d in report.deadlines.all():
        overdue = d.met_at is None and d.due_at < now
        colour = "red" if overdue else ""
        if d.met_at is None and not overdue:
            total = (d.due_at - report.created_at).total_seconds()
            left = (d.due_at - now).total_seconds()
            if total > 0 and left < total / 2:
                colour = "yellow"
        out.append(Clock(d.kind, d.get_kind_display(), d.due_at, d.met_at, d.escalated_at, overdue, colour))
    return out


_R = TypeVar("_R", bound=Report)


def overdue_reports(qs: QuerySet[_R], now: Any = None) -> QuerySet[_R]:
    now = now or timezone.now()
    late = ReportDeadline.objects.filter(met_at__isnull=True, due_at__lt=now).values("report_id")
    return qs.filter(pk__in=late)


# ----- figures for the district office and the procuratorate (added with the report pages) ----------


@dataclass(frozen=True)
class StationFigures:
    station_id: int | None
    station: str
    reports: int
    accepted: int
    accept_median: float | None  # minutes from receipt to acceptance
    accept_p90: float | None
    dispatched: int
    dispatch_median: float | None  # minutes from receipt to dispatch
    dispatch_p90: float | None
    overdue_now: int  # reports with a step past its deadline and not done
    escalated: int  # reports with at least one escalation


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile (the value a person can point at in the list)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q)
    return round(ordered[int(rank) - 1], 1)


def station_response_times(qs: QuerySet[Report], now: Any = None) -> list[StationFigures]:
    """Per police station: how fast reports were accepted and dispatched, and how many are late.

    Medians and 90th percentiles are computed here rather than in SQL (SQLite has neither); one
    query for the times, two for the counts."""
    from shouhu.org.models import Organization

    now = now or timezone.now()
    rows = qs.values_list("police_station_id", "created_at", "accepted_at", "dispatched_at")
    by_station: dict[int | None, dict[str, Any]] = {}
    for station_id, created, accepted, dispatched in rows.iterator(chunk_size=2000):
        s = by_station.setdefault(station_id, {"n": 0, "acc": [], "dis": []})
        s["n"] += 1
        if accepted is not None:
            s["acc"].append((accepted - created).total_seconds() / 60)
        if dispatched is not None:
            s["dis"].append((dispatched - created).total_seconds() / 60)
    overdue: dict[int | None, int] = {}
    for station_id in overdue_reports(qs, now).values_list("police_station_id", flat=True):
        overdue[station_id] = overdue.get(station_id, 0) + 1
    escalated: dict[int | None, int] = {}
    late = ReportDeadline.objects.filter(escalated_at__isnull=False).values("report_id")
    for station_id in qs.filter(pk__in=late).values_list("police_station_id", flat=True):
        escalated[station_id] = escalated.get(station_id, 0) + 1
    names = dict(Organization.objects.filter(pk__in=[k for k in by_station if k]).values_list("pk", "name"))
    out = [
        StationFigures(
            station_id=k,
            station=names.get(k, "") if k else "",
            reports=v["n"],
            accepted=len(v["acc"]),
            accept_median=_quantile(v["acc"], 0.5),
            accept_p90=_quantile(v["acc"], 0.9),
            dispatched=len(v["dis"]),
            dispatch_median=_quantile(v["dis"], 0.5),
            dispatch_p90=_quantile(v["dis"], 0.9),
            overdue_now=overdue.get(k, 0),
            escalated=escalated.get(k, 0),
        )
        for k, v in by_station.items()
    ]
    out.sort(key=lambda f: (-f.overdue_now, f.station))
    return out
