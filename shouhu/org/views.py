"""Home (今日待办 / the numbers / a unit's duties), login and the district statistics page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from shouhu.lib.http import UserRequest
from shouhu.lib.i18n import lazy_interpolate
from shouhu.org.access import Cap, allow, public, scope_for
from shouhu.org.models import Duty, NeedRoute, Region, RegionLevel
from shouhu.policy.models import Proposal, ProposalState
from shouhu.policy.rules import CATEGORY_NAMES
from shouhu.policy.selectors import category_counts_by_town
from shouhu.registry.models import LedgerStatus
from shouhu.registry.selectors import active_counts_by_town, children_visible_to, findings_for
from shouhu.tasks.selectors import inbox_for

login_view = public(
    auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True)
)
logout_view = public(auth_views.LogoutView.as_view())


@allow(Cap.HOME)
@require_http_methods(["GET"])
def home(request: UserRequest) -> HttpResponse:
    scope = scope_for(request.user)
    context: dict[str, Any] = {"today": timezone.localdate()}
    if scope.can(Cap.LEDGER_EDIT):
        visible = children_visible_to(request.user)
        month_start = timezone.localdate().replace(day=1)
        context["counts"] = visible.aggregate(
            active=Count("pk", filter=Q(status=LedgerStatus.ACTIVE)),
            exited=Count("pk", filter=Q(status=LedgerStatus.EXITED)),
            new_this_month=Count("pk", filter=Q(registered_at__date__gte=month_start)),
        )
        context["findings"] = findings_for(request.user, limit=20)
        context["recent"] = visible.select_related("region").order_by("-updated_at")[:10]
    org = request.user.organization
    unit = org.member_unit if org else None
    if unit is not None and not scope.can(Cap.LEDGER_EDIT):
        context["unit"] = unit
        context["duties"] = Duty.objects.filter(unit=unit).prefetch_related("need_types")
        context["routes"] = NeedRoute.objects.filter(unit=unit).select_related("need_type").order_by("-primary")
    if scope.can(Cap.STATS_VIEW):
        context["town_counts"] = town_counts(request.user)
        context["town_columns"] = TOWN_COLUMNS.values()
    if scope.can(Cap.TASKS):
        inbox = inbox_for(request.user)
        context["tasks"] = list(inbox[:8])
        context["tasks_total"] = inbox.count()
        context["tasks_overdue"] = inbox.filter(due_at__lt=timezone.now()).count()
        context["now"] = timezone.now()
        if scope.organization_id is not None:
            from shouhu.tasks.selectors import response_figures

            context["task_figures"] = response_figures(organization_id=scope.organization_id)
    if scope.can(Cap.VISITS):
        from shouhu.visits.selectors import due_filter, plans_for
        from shouhu.visits.services import week_end

        today = timezone.localdate()
        plans = plans_for(request.user)
        context["visits_overdue"] = due_filter(plans, "overdue", today, week_end(today)).count()
        context["visits_week"] = due_filter(plans, "week", today, week_end(today)).count()
    if scope.can(Cap.POLICY_CONFIRM):
        context["proposals_pending"] = Proposal.objects.filter(
            state=ProposalState.PENDING, child__in=children_visible_to(request.user)
        ).count()
    return render(request, "home.html", context)


def town_counts(actor: Any) -> list[dict[str, Any]]:
    """Active children per town: aggregated numbers only, never a name."""
    scope = scope_for(actor)
    towns = list(Region.objects.filter(level=RegionLevel.TOWN).order_by("code"))
    if scope.prefixes:
        towns = [
            t for t in towns if scope.covers_region(t.code) or any(p.startswith(t.code[:9]) for p in scope.prefixes)
        ]
    per_town = active_counts_by_town()
    per_category = category_counts_by_town()
    codes = list(TOWN_COLUMNS)
    rows: list[dict[str, Any]] = [
        {
            "town": town,
            "active": per_town.get(town.code[:9], 0),
            "categories": [per_category.get(town.code[:9], {}).get(code, 0) for code in codes],
        }
        for town in towns
    ]
    rows.append(
        {
            "town": None,
            "active": sum(r["active"] for r in rows),
            "categories": [sum(r["categories"][i] for r in rows) for i in range(len(codes))],
        }
    )
    return rows


# The columns of the per-town table: the categories, then the Jiangsu classes.
TOWN_COLUMNS = {
    **CATEGORY_NAMES,
    **{f"jiangsu_{n}": lazy_interpolate(gettext_lazy("江苏第%(n)d类"), {"n": n}) for n in range(1, 7)},
}


@allow(Cap.STATS_VIEW)
@require_http_methods(["GET"])
def stats(request: HttpRequest) -> HttpResponse:
    return render(
        request, "stats.html", {"town_counts": town_counts(request.user), "town_columns": TOWN_COLUMNS.values()}
    )
