from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from shouhu.org.access import scope_for
from shouhu.tasks.models import OPEN_STATES, Task, TaskState


def inbox_for(actor: Any) -> QuerySet[Task]:
    """The open tasks of the actor's organisation, overdue first (the earliest deadline first)."""
    scope = scope_for(actor)
    if scope.organization_id is None:
        return Task.objects.none()
    return (
        Task.objects.filter(owner_id=scope.organization_id, state__in=OPEN_STATES)
        .select_related("child", "child__region", "need_type")
        .order_by("due_at", "id")
    )


def task_get_for(actor: Any, task_id: int) -> Task:
    """A task the actor's organisation owns or asked for; anything else is a 404, as if missing."""
    org_id = scope_for(actor).organization_id
    if org_id is None:
        raise Http404
    task = (
        Task.objects.filter(Q(owner_id=org_id) | Q(requester_id=org_id), pk=task_id)
        .select_related("owner", "requester", "child", "child__region", "need_type")
        .first()
    )
    if task is None:
        raise Http404
    return task


def task_owned_by(actor: Any, task_id: int) -> Task:
    """A task of the actor's own organisation (the only one that may answer it), else a 404."""
    org_id = scope_for(actor).organization_id
    task = Task.objects.filter(pk=task_id, owner_id=org_id).first() if org_id is not None else None
    if task is None:
        raise Http404
    return task


def report_id_of(task: Task) -> int | None:
    if task.source_type == "report_assessment" and task.source_id.isdigit():
        return int(task.source_id)
    return None


def escalated_task_ids(tasks: list[Task]) -> set[int]:
    """The tasks escalated themselves, or whose mandatory report has an escalated step (one query)."""
    from shouhu.safeguarding.models import ReportDeadline

    escalated = {t.pk for t in tasks if t.escalated_at is not None}
    report_ids = {rid for t in tasks if (rid := report_id_of(t)) is not None}
    if report_ids:
        hot = set(
            ReportDeadline.objects.filter(report_id__in=report_ids, escalated_at__isnull=False).values_list(
                "report_id", flat=True
            )
        )
        escalated |= {t.pk for t in tasks if report_id_of(t) in hot}
    return escalated


# ----- response figures --------------------------------------------------------------------------

FIGURES_DAYS = 90


@dataclass(frozen=True)
class ResponseFigures:
    days: int
    received: int
    accepted: int
    median_accept: timedelta | None
    completed: int
    median_complete: timedelta | None
    due: int  # tasks whose outcome against the deadline is known: completed, or still open past it
    on_time: int  # completed no later than the deadline

    @property
    def on_time_percent(self) -> int | None:
        return round(100 * self.on_time / self.due) if self.due else None


def _median(qs: QuerySet[Task], expression: Any, n: int) -> timedelta | None:
    """The median of a duration, portably (SQLite has no percentile function): order by it and
    read the one or two middle rows, so a large period never loads every row."""
    if n == 0:
        return None
    values = list(qs.annotate(d=expression).order_by("d").values_list("d", flat=True)[(n - 1) // 2 : n // 2 + 1])
    return sum(values, timedelta()) / len(values)


def response_figures(*, organization_id: int, days: int = FIGURES_DAYS, now: Any = None) -> ResponseFigures:
    """How an organisation answered the tasks it received in the last `days` days.

    Time to accept runs from a task's creation to its acceptance, time to complete to its
    completion. On time: completed no later than the deadline, out of the tasks completed or
    still open past their deadline (withdrawn and declined tasks are counted separately).
    """
    now = now or timezone.now()
    period = Task.objects.filter(
        owner_id=organization_id, created_at__gte=now - timedelta(days=days), created_at__lte=now
    )
    done = Q(state=TaskState.DONE)
    counts = period.aggregate(
        received=Count("pk"),
        accepted=Count("pk", filter=Q(accepted_at__isnull=False)),
        completed=Count("pk", filter=done),
        on_time=Count("pk", filter=done & Q(closed_at__lte=F("due_at"))),
        late_open=Count("pk", filter=Q(state__in=OPEN_STATES, due_at__lt=now)),
    )
    to_accept = ExpressionWrapper(F("accepted_at") - F("created_at"), output_field=DurationField())
    to_complete = ExpressionWrapper(F("closed_at") - F("created_at"), output_field=DurationField())
    return ResponseFigures(
        days=days,
        received=counts["received"],
        accepted=counts["accepted"],
        median_accept=_median(period.filter(accepted_at__isnull=False), to_accept, counts["accepted"]),
        completed=counts["completed"],
        median_complete=_median(period.filter(done), to_complete, counts["completed"]),
        due=counts["completed"] + counts["late_open"],
        on_time=counts["on_time"],
    )


def requested_by(actor: Any) -> QuerySet[Task]:
    """The tasks the actor's organisation asked other units for (its referrals), open ones first,
    the earliest deadline first; closed ones follow, the latest first."""
    org_id = scope_for(actor).organization_id
    if org_id is None:
        return Task.objects.none()
    return (
        Task.objects.filter(requester_id=org_id)
        .exclude(owner_id=org_id)
        .select_related("owner", "need_type")
        .order_by(F("closed_at").desc(nulls_first=True), "due_at", "id")
    )


def supervised_org_ids(actor: Any) -> set[int] | None:
    """The organisations whose late tasks the actor's organisation supervises: a member unit its
    sub-organisations (a bureau its schools or hospitals); the joint-meeting office (the district
    civil-affairs office) every unit. None means all; an empty set means none."""
    from shouhu.org.models import Organization

    org_id = scope_for(actor).organization_id
    if org_id is None:
        return set()
    orgs = dict(Organization.objects.values_list("id", "parent_id"))
    if Organization.objects.filter(pk=org_id, code="civil_affairs").exists():
        return None
    below: set[int] = set()
    frontier = {org_id}
    while frontier:
        frontier = {child for child, parent in orgs.items() if parent in frontier and child not in below}
        below |= frontier
    below.discard(org_id)
    return below


def supervision_for(actor: Any) -> QuerySet[Task]:
    """Open tasks past their deadline of the organisations the actor supervises (numbers and units
    only: the page shows no child)."""
    org_ids = supervised_org_ids(actor)
    qs = (
        Task.objects.filter(state__in=OPEN_STATES, due_at__lt=timezone.now())
        .select_related("owner", "owner__parent", "need_type")
        .order_by("due_at", "id")
    )
    if org_ids is None:
        return qs
    return qs.filter(owner_id__in=org_ids)
