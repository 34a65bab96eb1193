"""Reads of cases, scoped to the actor: a case is seen through its child (`child_get_for`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.cases.models import REFERRAL_SOURCE, Case, CaseState
from shouhu.org.access import Cap, scope_for
from shouhu.registry.selectors import child_get_for, children_visible_to


@dataclass
class CaseFile:
    """Everything on a case's page and in its printed summary, read once: assessments (newest
    first), goals with their actions, each action's referral tasks (every round, oldest first),
    services, reviews and the case's own events."""

    case: Case
    assessments: list[Any]
    goals: list[Any]
    actions: list[Any]
    referrals: dict[int, list[Any]]
    services: list[Any]
    reviews: list[Any]
    events: list[Any]

    @property
    def latest(self) -> Any:
        return self.assessments[0] if self.assessments else None

    def before(self, assessment: Any) -> Any:
        """The assessment before this one (its previous scores), or None."""
        index = next(n for n, a in enumerate(self.assessments) if a.pk == assessment.pk)
        return self.assessments[index + 1] if index + 1 < len(self.assessments) else None


def case_file(case: Case) -> CaseFile:
    from shouhu.cases.services import referrals_of

    goals = list(case.goals.prefetch_related("actions__need_type"))
    actions = [action for g in goals for action in g.actions.all()]
    for action in actions:
        action.goal.case = case
    return CaseFile(
        case=case,
        assessments=list(case.assessments.select_related("assessor")),
        goals=goals,
        actions=actions,
        referrals=referrals_of(actions),
        services=list(case.services.all()),
        reviews=list(case.reviews.select_related("reviewer")),
        events=list(case.events.select_related("actor")),
    )


def case_get_for(actor: Any, pk: Any, *, request: HttpRequest | None = None) -> Case:
    """The case if its child is in the actor's scope; a missing case and one out of scope are both 404."""
    if not scope_for(actor).can(Cap.CASES):
        raise Http404
    try:
        case = Case.objects.select_related("owner_org", "owner", "worker", "worker__organization").get(pk=pk)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    case.child = child_get_for(actor, case.child_id, request=request)
    return case


def may_assign(actor: Any, case: Case) -> bool:
    """The owner's organisation and the district office assign the case's social worker."""
    scope = scope_for(actor)
    return case.owner_org_id == scope.organization_id or scope.can(Cap.CASES_APPROVE)


def may_work(actor: Any, case: Case) -> bool:
    """Who works the case (assess, plan, refer, record, ask to close): the owner's organisation,
    the assigned social worker's organisation, the district office."""
    scope = scope_for(actor)
    worker_org = case.worker.organization_id if case.worker is not None else None
    return may_assign(actor, case) or (worker_org is not None and worker_org == scope.organization_id)


def open_cases_for(actor: Any) -> QuerySet[Case]:
    """My organisation's open cases — owned, or worked by its social workers — the most urgent
    review first (children still in scope)."""
    from django.db.models import Q

    org_id = scope_for(actor).organization_id
    if org_id is None:
        return Case.objects.none()
    return (
        Case.objects.filter(
            Q(owner_org_id=org_id) | Q(worker__organization_id=org_id),
            state=CaseState.OPEN,
            child__in=children_visible_to(actor),
        )
        .select_related("child", "child__region", "owner")
        .order_by("next_review_due", "-opened_at")
    )


def awaiting_approval_for(actor: Any) -> QuerySet[Case]:
    if not scope_for(actor).can(Cap.CASES_APPROVE):
        return Case.objects.none()
    return (
        Case.objects.filter(
            state=CaseState.OPEN, close_requested_at__isnull=False, child__in=children_visible_to(actor)
        )
        .select_related("child", "owner_org")
        .order_by("close_requested_at")
    )


# ----- the chronology ---------------------------------------------------------------------------

KINDS = (
    ("ledger", _("台账变更")),
    ("category", _("认定类别")),
    ("visit", _("走访")),
    ("report", _("强制报告")),
    ("assessment", _("评估")),
    ("referral", _("转介")),
    ("service", _("服务")),
    ("case", _("个案")),
)


@dataclass
class Item:
    at: datetime
    kind: str
    title: str
    detail: str = ""
    who: str = ""
    url: str = ""


def _aware(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(0, 0)))


def chronology(actor: Any, child: Any, *, kinds: set[str] | None = None) -> list[Item]:
    """Everything that happened to the child, oldest first. `kinds` filters (None: all)."""
    from shouhu.registry.history import child_history

    want = kinds or {k for k, _label in KINDS}
    items: list[Item] = []
    scope = scope_for(actor)
    if "ledger" in want:
        for e in child_history(child, scope):
            changes = "；".join(f"{c.field}：{c.old} → {c.new}" for c in e.changes)
            items.append(Item(e.at, "ledger", str(e.subject), changes, str(e.user or "")))
    if "category" in want:
        from shouhu.policy.models import ChildCategory

        for c in ChildCategory.objects.filter(child=child).select_related("confirmed_by"):
            items.append(
                Item(
                    c.confirmed_at,
                    "category",
                    _("认定：%(c)s") % {"c": c.get_code_display()},
                    c.source,
                    str(c.confirmed_by or ""),
                )
            )
            if c.valid_to:
                items.append(
                    Item(_aware(c.valid_to), "category", _("终止：%(c)s") % {"c": c.get_code_display()}, c.ended_reason)
                )
    if "visit" in want:
        from django.urls import reverse

        from shouhu.visits.models import RiskAssessment, Visit, VisitState

        for v in Visit.objects.filter(child=child).exclude(state=VisitState.DRAFT).select_related("visitor"):
            items.append(
                Item(
                    v.submitted_at or _aware(v.visited_on),
                    "visit",
                    _("走访（%(m)s）") % {"m": v.get_mode_display()},
                    str(v.get_guardianship_assessment_display() or ""),
                    str(v.visitor or ""),
                    reverse("visits:detail", args=[v.pk]),
                )
            )
        for risk in RiskAssessment.objects.filter(child=child).select_related("set_by"):
            items.append(
                Item(
                    risk.set_at,
                    "visit",
                    _("风险等级：%(l)s") % {"l": risk.get_level_display()},
                    risk.reason,
                    str(risk.set_by or ""),
                )
            )
    if "report" in want:
        from shouhu.safeguarding.models import ReportEvent

        # The steps only: never who reported, never the notes (the report's own pages decide that).
        for rev in ReportEvent.objects.filter(report__child=child).select_related("report"):
            items.append(
                Item(
                    rev.at,
                    "report",
                    _("强制报告 %(c)s：%(k)s") % {"c": rev.report.receipt_code, "k": rev.get_kind_display()},
                )
            )
    cases = list(Case.objects.filter(child=child))
    case_ids = [c.pk for c in cases]
    if "assessment" in want:
        from shouhu.cases.models import Assessment

        for a in Assessment.objects.filter(case_id__in=case_ids).select_related("assessor"):
            detail = "；".join(a.reasons)
            if a.override_level:
                detail += _("；人工调整：%(r)s") % {"r": a.override_reason}
            items.append(
                Item(
                    a.assessed_at,
                    "assessment",
                    _("调查评估：%(l)s") % {"l": a.get_level_display()},
                    detail,
                    str(a.assessor or ""),
                )
            )
    if "referral" in want:
        from shouhu.tasks.models import Task

        for t in (
            Task.objects.filter(child=child, source_type=REFERRAL_SOURCE)
            .select_related("owner")
            .prefetch_related("events__organization")
        ):
            items.append(Item(t.created_at, "referral", _("转介 %(u)s：%(t)s") % {"u": t.owner.name, "t": t.title}))
            for tev in t.events.all():
                items.append(
                    Item(
                        tev.at,
                        "referral",
                        f"{t.owner.name} {tev.get_kind_display()}",
                        tev.note,
                        str(tev.organization or ""),
                    )
                )
    if "service" in want:
        from shouhu.cases.models import Service

        for s in Service.objects.filter(case_id__in=case_ids):
            items.append(
                Item(
                    _aware(s.date),
                    "service",
                    _("服务：%(k)s（%(h)s小时）") % {"k": s.kind, "h": s.hours},
                    s.note,
                    s.provider,
                )
            )
    if "case" in want:
        from shouhu.cases.models import CaseEvent, Goal, Review

        for ev in CaseEvent.objects.filter(case_id__in=case_ids).select_related("actor"):
            items.append(
                Item(
                    ev.at,
                    "case",
                    _("个案 #%(id)s %(k)s") % {"id": ev.case_id, "k": ev.get_kind_display()},
                    ev.note,
                    str(ev.actor or ""),
                )
            )
        for r in Review.objects.filter(case_id__in=case_ids).select_related("reviewer"):
            items.append(
                Item(r.recorded_at, "case", _("个案回顾（%(d)s）") % {"d": r.date}, r.note, str(r.reviewer or ""))
            )
        for g in Goal.objects.filter(case_id__in=case_ids):
            items.append(Item(g.created_at, "case", _("帮扶目标：%(t)s") % {"t": g.text}))
    items.sort(key=lambda i: i.at)
    return items
