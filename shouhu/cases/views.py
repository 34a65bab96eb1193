"""Case pages: my organisation's open cases, a case on one page, the assessment form, the child's
chronology. Every case is reached through its child's scope (404 outside it); only the owner's
organisation and the district office change a case (403 for other readers)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from shouhu.audit.models import Action as AuditAction
from shouhu.audit.services import record
from shouhu.cases import forms, rules, selectors, services
from shouhu.cases.models import ActionMode, Case, CaseState, Goal
from shouhu.org.access import Cap, allow, scope_for
from shouhu.registry.selectors import child_get_for


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "；".join(m for msgs in exc.message_dict.values() for m in msgs)
    return "；".join(exc.messages)


def _writable(request: HttpRequest, case_id: int) -> Case:
    case = selectors.case_get_for(request.user, case_id, request=request)
    if not selectors.may_work(request.user, case):
        raise PermissionDenied
    return case


def _back(case: Case) -> HttpResponse:
    return redirect("cases:detail", case.pk)


@allow(Cap.CASES)
@require_http_methods(["GET"])
def case_list(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    rows = list(selectors.open_cases_for(request.user)[:200])
    return render(
        request,
        "cases/list.html",
        {"rows": rows, "today": today, "awaiting": list(selectors.awaiting_approval_for(request.user)[:100])},
    )


@allow(Cap.CASES)
@require_http_methods(["GET", "POST"])
def case_new(request: HttpRequest) -> HttpResponse:
    child_id = request.POST.get("child") or request.GET.get("child") or ""
    child = child_get_for(request.user, child_id, request=request)
    existing = Case.objects.filter(child=child, state=CaseState.OPEN).first()
    if existing is not None:
        messages.info(request, _("该儿童已有在案的个案。"))
        return redirect("cases:detail", existing.pk)
    initial = {k: request.GET[k] for k in ("opened_from", "source_ref") if k in request.GET}
    form = forms.OpenForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            case = services.case_open(actor=request.user, child=child, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, _error_text(exc))
        else:
            messages.success(request, _("已立案，请进行调查评估。"))
            return redirect("cases:assess", case.pk)
    return render(request, "cases/new.html", {"child": child, "form": form})


@allow(Cap.CASES)
@require_http_methods(["GET"])
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    case = selectors.case_get_for(request.user, case_id, request=request)
    record(actor=request.user, action=AuditAction.VIEW, object_type="case", object_id=case.pk, request=request)
    file = selectors.case_file(case)
    pairs = []
    for a in file.assessments:
        before, evidence = file.before(a), a.evidence
        pairs.append(
            (
                a,
                [
                    (label, a.scores.get(key), before.scores.get(key) if before else None, evidence.get(key, ""))
                    for key, label in rules.DOMAINS
                ],
            )
        )
    from shouhu.tasks.models import OPEN_STATES

    def can_refer(action: Any) -> bool:
        return action.mode == ActionMode.REFERRAL and not any(
            t.state in OPEN_STATES for t in file.referrals.get(action.pk, [])
        )

    plan = [(g, [(a, file.referrals.get(a.pk, []), can_refer(a)) for a in g.actions.all()]) for g in file.goals]
    scope = scope_for(request.user)
    writable = selectors.may_work(request.user, case)
    can_assign = selectors.may_assign(request.user, case) and case.state == CaseState.OPEN
    return render(
        request,
        "cases/detail.html",
        {
            "case": case,
            "child": case.child,
            "latest": file.latest,
            "pairs": pairs,
            "plan": plan,
            "services": file.services,
            "reviews": file.reviews,
            "events": file.events,
            "writable": writable,
            "can_assign": can_assign,
            "worker_form": forms.WorkerForm(initial={"worker": case.worker_id}) if can_assign else None,
            "can_approve": scope.can(Cap.CASES_APPROVE),
            "needs_approval": services.needs_approval(case),
            "goal_form": forms.GoalForm(),
            "action_form": forms.ActionForm(),
            "service_form": forms.ServiceForm(),
            "review_form": forms.ReviewForm(),
            "close_form": forms.CloseForm(),
            "reopen_form": forms.ReopenForm(),
            "today": timezone.localdate(),
            "rule_version": rules.RULE_VERSION,
        },
    )


@allow(Cap.CASES)
@require_http_methods(["GET", "POST"])
def assess(request: HttpRequest, case_id: int) -> HttpResponse:
    case = _writable(request, case_id)
    previous = case.assessments.first()
    form = forms.AssessmentForm(request.POST or None, previous=previous)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.assessment_add(
                actor=request.user,
                case=case,
                scores={key: data[f"score_{key}"] for key in rules.DOMAIN_KEYS},
                evidence={key: data[f"evidence_{key}"] for key in rules.DOMAIN_KEYS},
                override_level=data["override_level"],
                override_reason=data["override_reason"],
            )
        except ValidationError as exc:
            form.add_error(None, _error_text(exc))
        else:
            messages.success(request, _("评估已保存。"))
            return _back(case)
    return render(
        request,
        "cases/assess.html",
        {
            "case": case,
            "child": case.child,
            "form": form,
            "previous": previous,
            "rule_doc": rules.__doc__,
            "rule_version": rules.RULE_VERSION,
        },
    )


def _post(request: HttpRequest, case_id: int, form_class: Any, apply: Any, done: str) -> HttpResponse:
    case = _writable(request, case_id)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, _("未保存：请检查填写的内容。"))
        return _back(case)
    try:
        apply(case, form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, done)
    return _back(case)


@allow(Cap.CASES)
@require_POST
def goal_add(request: HttpRequest, case_id: int) -> HttpResponse:
    return _post(
        request,
        case_id,
        forms.GoalForm,
        lambda case, d: services.goal_add(actor=request.user, case=case, text=d["text"]),
        _("已添加目标。"),
    )


def _goal_of(case: Case, goal_id: int) -> Goal:
    goal = Goal.objects.filter(case=case, pk=goal_id).first()
    if goal is None:
        raise ValidationError(_("目标不存在。"))
    goal.case = case
    return goal


@allow(Cap.CASES)
@require_POST
def action_add(request: HttpRequest, case_id: int) -> HttpResponse:
    def apply(case: Case, d: dict[str, Any]) -> None:
        services.action_add(
            actor=request.user,
            goal=_goal_of(case, d["goal"]),
            text=d["text"],
            mode=d["mode"],
            need_code=d["need"],
            note=d["note"],
        )

    return _post(request, case_id, forms.ActionForm, apply, _("已添加措施。"))


@allow(Cap.CASES)
@require_POST
def refer(request: HttpRequest, case_id: int) -> HttpResponse:
    """Refer an action again (after a decline)."""
    from shouhu.cases.models import Action

    case = _writable(request, case_id)
    action = (
        Action.objects.filter(goal__case=case, pk=request.POST.get("action") or 0, mode=ActionMode.REFERRAL)
        .select_related("goal", "need_type")
        .first()
        if (request.POST.get("action") or "").isdigit()
        else None
    )
    if action is None:
        messages.error(request, _("请选择要转介的措施。"))
        return _back(case)
    action.goal.case = case
    try:
        services.referral_make(actor=request.user, action=action, note=request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("已重新转介。"))
    return _back(case)


@allow(Cap.CASES)
@require_POST
def service_add(request: HttpRequest, case_id: int) -> HttpResponse:
    return _post(
        request,
        case_id,
        forms.ServiceForm,
        lambda case, d: services.service_add(
            actor=request.user,
            case=case,
            kind=d["kind"],
            on=d["date"],
            hours=d["hours"],
            provider=d["provider"],
            note=d["note"],
        ),
        _("已记录服务。"),
    )


@allow(Cap.CASES)
@require_POST
def review_add(request: HttpRequest, case_id: int) -> HttpResponse:
    return _post(
        request,
        case_id,
        forms.ReviewForm,
        lambda case, d: services.review_add(actor=request.user, case=case, on=d["date"], note=d["note"]),
        _("已记录回顾。"),
    )


@allow(Cap.CASES)
@require_POST
def close(request: HttpRequest, case_id: int) -> HttpResponse:
    """Close, or for a red/orange case ask the district office to approve the closure."""

    def apply(case: Case, d: dict[str, Any]) -> None:
        step = services.close_request if services.needs_approval(case) else services.case_close
        step(actor=request.user, case=case, reason=d["reason"], summary=d["summary"], transfer_to=d["transfer_to"])

    return _post(request, case_id, forms.CloseForm, apply, _("已提交。"))


@allow(Cap.CASES_APPROVE)
@require_POST
def approve(request: HttpRequest, case_id: int) -> HttpResponse:
    case = (
        selectors.case_get_for(request.user, case_id, request=request)
        if scope_for(request.user).can(Cap.CASES)
        else None
    )
    if case is None:
        raise PermissionDenied
    try:
        services.close_approve(actor=request.user, case=case, note=request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("已批准结案。"))
    return _back(case)


@allow(Cap.CASES)
@require_POST
def reopen(request: HttpRequest, case_id: int) -> HttpResponse:
    return _post(
        request,
        case_id,
        forms.ReopenForm,
        lambda case, d: services.case_reopen(actor=request.user, case=case, reason=d["reason"]),
        _("已重新开案。"),
    )


@allow(Cap.CASES)
@require_POST
def assign_worker(request: HttpRequest, case_id: int) -> HttpResponse:
    """Assign the contracted social worker (or withdraw the assignment): the owner or the district."""
    case = selectors.case_get_for(request.user, case_id, request=request)
    if not selectors.may_assign(request.user, case):
        raise PermissionDenied
    form = forms.WorkerForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("未保存：请检查填写的内容。"))
        return _back(case)
    try:
        services.case_assign_worker(actor=request.user, case=case, worker=form.cleaned_data["worker"])
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("已指派承接社工。") if form.cleaned_data["worker"] else _("已撤回指派。"))
    return _back(case)


@allow(Cap.CASES)
@require_http_methods(["GET"])
def chronology(request: HttpRequest, pk: Any) -> HttpResponse:
    child = child_get_for(request.user, pk, request=request)
    chosen = {k for k in request.GET.getlist("kind") if k in dict(selectors.KINDS)}
    items = selectors.chronology(request.user, child, kinds=chosen or None)
    record(
        actor=request.user, action=AuditAction.VIEW, object_type="child_chronology", object_id=child.pk, request=request
    )
    return render(
        request,
        "cases/chronology.html",
        {
            "child": child,
            "items": items,
            "kinds": selectors.KINDS,
            "chosen": chosen,
            "cases": list(Case.objects.filter(child=child).select_related("owner_org")),
            "has_open": Case.objects.filter(child=child, state=CaseState.OPEN).exists(),
        },
    )
