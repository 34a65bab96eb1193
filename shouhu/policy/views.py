"""The 类别与待遇 tab of a child, the town's list of proposals, and the district's parameters."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.org.access import Cap, allow, scope_for
from shouhu.policy import services
from shouhu.policy.forms import DecideForm, EntitlementForm, ManualCategoryForm, ParameterForm
from shouhu.policy.models import (
    ChildCategory,
    ChildEntitlement,
    EvaluationState,
    PolicyParameter,
    Proposal,
    ProposalState,
)
from shouhu.policy.params import SPECS
from shouhu.policy.selectors import params_on
from shouhu.registry.selectors import (
    child_get_for,
    children_visible_to,
    children_with_restricted_facts,
)
from shouhu.registry.services import StaleEdit


def _tab_url(child_id: Any) -> str:
    return reverse("policy:child", args=[child_id])


def can_record(actor: Any, entitlement: ChildEntitlement, child: Any) -> bool:
    """The civil-affairs line in its regions, or the unit responsible for the entitlement."""
    scope = scope_for(actor)
    if scope.can(Cap.LEDGER_EDIT) and scope.covers_region(child.region_id):
        return True
    return scope.can(Cap.TASKS) and entitlement.unit_id is not None and entitlement.unit_id == scope.organization_id


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["GET"])
def child_policy(request: HttpRequest, pk: str) -> HttpResponse:
    child = child_get_for(request.user, pk, request=request)
    scope = scope_for(request.user)
    record(
        actor=request.user,
        action=Action.VIEW,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"tab": "policy"},
    )
    state = EvaluationState.objects.filter(child=child).first()
    entitlements = list(child.entitlements.select_related("unit").order_by("state", "code"))
    for ent in entitlements:
        ent.can_record = can_record(request.user, ent, child)
        ent.form = EntitlementForm(initial={"version": ent.version, "on": timezone.localdate()}, prefix=f"e{ent.pk}")
    can_confirm = scope.can(Cap.POLICY_CONFIRM) and scope.covers_region(child.region_id)
    current = list(child.categories.filter(valid_to__isnull=True).select_related("confirmed_by").order_by("code"))
    pending = list(child.proposals.filter(state=ProposalState.PENDING).order_by("kind", "code"))
    near_misses = state.result.get("near_misses", []) if state else []
    jiangsu = state.result.get("jiangsu_explanation", "") if state else ""
    if children_with_restricted_facts(request.user, [child.pk]):
        # The explanations quote the family's facts, some of which this role is not cleared to read.
        withheld = _("依据说明涉及受限信息，您的角色无权查看。")
        rows: list[ChildCategory | Proposal | ChildEntitlement] = [*current, *pending, *entitlements]
        for row in rows:
            row.explanation = withheld
        near_misses, jiangsu = [], withheld
    return render(
        request,
        "policy/child_policy.html",
        {
            "child": child,
            "age": child.age_on(timezone.localdate()),
            "tab": "policy",
            "can_unmask": scope.can(Cap.UNMASK) and scope.covers_region(child.region_id),
            "current": current,
            "ended": child.categories.filter(valid_to__isnull=False)
            .select_related("confirmed_by")
            .order_by("-valid_to"),
            "pending": pending,
            "decided": child.proposals.exclude(state=ProposalState.PENDING).select_related("decided_by")[:20],
            "evaluation": state,
            "near_misses": near_misses,
            "jiangsu": jiangsu,
            "entitlements": entitlements,
            "can_confirm": can_confirm,
            "manual_form": ManualCategoryForm(),
            "decide_form": DecideForm(),
        },
    )


def _confirmable_child(request: HttpRequest, pk: str) -> Any:
    child = child_get_for(request.user, pk, request=request)
    if not scope_for(request.user).covers_region(child.region_id):
        raise Http404
    return child


@allow(Cap.POLICY_CONFIRM)
@require_POST
def proposal_decide(request: HttpRequest, pk: str, proposal_id: int) -> HttpResponse:
    child = _confirmable_child(request, pk)
    proposal = get_object_or_404(Proposal, pk=proposal_id, child=child)
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请选择确认或驳回。"))
    else:
        try:
            services.proposal_decide(
                actor=request.user,
                proposal=proposal,
                confirm=form.cleaned_data["decision"] == "confirm",
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as exc:
            messages.error(request, "；".join(exc.messages))
        else:
            messages.success(request, _("已处理：%(what)s") % {"what": proposal.get_code_display()})
    next_url = request.POST.get("next", "")
    return redirect(next_url if next_url == reverse("policy:proposals") else _tab_url(child.pk))


@allow(Cap.POLICY_CONFIRM)
@require_POST
def manual_category(request: HttpRequest, pk: str) -> HttpResponse:
    child = _confirmable_child(request, pk)
    form = ManualCategoryForm(request.POST)
    if not form.is_valid():
        messages.error(request, "；".join(str(e) for errs in form.errors.values() for e in errs))
    else:
        try:
            services.manual_category_set(
                actor=request.user,
                child=child,
                code=form.cleaned_data["code"],
                on=form.cleaned_data["on"] == "1",
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as exc:
            messages.error(request, "；".join(exc.messages))
        else:
            messages.success(request, _("已保存认定。"))
    return redirect(_tab_url(child.pk))


@allow(Cap.LEDGER_VIEW, Cap.TASKS)
@require_POST
def entitlement_record(request: HttpRequest, pk: str, entitlement_id: int) -> HttpResponse:
    child = child_get_for(request.user, pk, request=request)
    entitlement = get_object_or_404(ChildEntitlement, pk=entitlement_id, child=child)
    if not can_record(request.user, entitlement, child):
        raise Http404
    form = EntitlementForm(request.POST, prefix=f"e{entitlement.pk}")
    if not form.is_valid():
        messages.error(request, "；".join(str(e) for errs in form.errors.values() for e in errs))
    else:
        data = form.cleaned_data
        try:
            services.entitlement_record(
                actor=request.user,
                entitlement=entitlement,
                state=data["state"],
                version=data["version"],
                on=data["on"],
                amount=data["amount"],
                reason=data["reason"],
                request=request,
            )
        except StaleEdit as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            messages.error(request, "；".join(exc.messages))
        else:
            messages.success(request, _("已记录：%(name)s") % {"name": entitlement.name})
    return redirect(_tab_url(child.pk) + "#entitlements")


@allow(Cap.POLICY_CONFIRM)
@require_http_methods(["GET"])
def proposals(request: HttpRequest) -> HttpResponse:
    """The town's work list: every pending proposal in the actor's regions, oldest first."""
    qs = (
        Proposal.objects.filter(state=ProposalState.PENDING, child__in=children_visible_to(request.user))
        .select_related("child", "child__region")
        .order_by("created_at", "id")
    )
    code = request.GET.get("code", "")[:30]
    if code:
        qs = qs.filter(code=code)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "policy/proposals.html",
        {
            "page": page,
            "code": code,
            "codes": Proposal._meta.get_field("code").choices,
            "querystring": params.urlencode(),
            "decide_form": DecideForm(),
        },
    )


def _display(value: Any) -> str:
    return "、".join(value) if isinstance(value, tuple | list) else str(value)


@allow(Cap.POLICY_SETTINGS)
@require_http_methods(["GET", "POST"])
def parameters(request: HttpRequest) -> HttpResponse:
    form = ParameterForm(request.POST or None, initial={"effective_from": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            row, created = PolicyParameter.objects.update_or_create(
                key=data["key"],
                effective_from=data["effective_from"],
                defaults={
                    "value": data["parsed"],
                    "source": data["source"],
                    "note": data["note"],
                    "set_by": request.user,
                },
            )
            record(
                actor=request.user,
                action=Action.ADMIN_CHANGE,
                object_type="policy_parameter",
                object_id=row.pk,
                request=request,
                detail={"key": row.key, "value": row.value, "from": row.effective_from.isoformat()},
            )
        messages.success(
            request,
            _("已保存，%(day)s 起生效；今晚的重新评估将按新参数计算。") % {"day": row.effective_from.isoformat()},
        )
        return redirect("policy:parameters")
    today = timezone.localdate()
    in_force = params_on(today)
    rows = [
        {
            "spec": spec,
            "value": _display(getattr(in_force, spec.key)),
            "saved": PolicyParameter.objects.filter(key=spec.key, effective_from__lte=today).first(),
        }
        for spec in SPECS
    ]
    return render(
        request,
        "policy/parameters.html",
        {
            "form": form,
            "rows": rows,
            "history": PolicyParameter.objects.select_related("set_by").order_by("-set_at")[:50],
        },
        status=400 if request.method == "POST" else 200,
    )
