"""Visit pages: the due lists, the visit form (phone first), a visit, a child's visits and risk."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.org.access import Cap, allow, scope_for
from shouhu.registry.models import Child
from shouhu.registry.selectors import child_get_for
from shouhu.registry.services import StaleEdit
from shouhu.visits import services
from shouhu.visits.findings import findings
from shouhu.visits.forms import HelpForm, ReturnForm, RiskForm, VisitForm, initial_from
from shouhu.visits.models import CHECKLIST, RiskAssessment, Visit, VisitPhoto, VisitPlan, VisitState
from shouhu.visits.selectors import (
    due_filter,
    last_visit,
    plans_for,
    region_q,
    visit_get_for,
    visits_for,
)

TABS = (("overdue", _("已逾期")), ("week", _("本周到期")), ("all", _("全部计划")))
ENTRUSTMENT_TAB = "entrustment"


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


@allow(Cap.VISITS)
@require_http_methods(["GET"])
def due_list(request: HttpRequest) -> HttpResponse:
    """Children whose visit is overdue / due this week / planned, most overdue first."""
    today = timezone.localdate()
    which = request.GET.get("due", "overdue")
    if which not in dict(TABS) and which != ENTRUSTMENT_TAB:
        which = "overdue"
    base = plans_for(request.user)
    end = services.week_end(today)
    counts = {key: due_filter(base, key, today, end).count() for key, _label in TABS}
    context: dict[str, Any] = {
        "tabs": [(key, label, counts[key]) for key, label in TABS],
        "which": which,
        "today": today,
        "can_review": scope_for(request.user).can(Cap.VISIT_REVIEW),
    }
    if which == ENTRUSTMENT_TAB:
        context.update(_entrustment_needs(request))
        return render(request, "visits/due_list.html", context)
    paginator = Paginator(due_filter(base, which, today, end), 50)
    paginator.count = counts[which]  # counted for the tab already: not a second COUNT
    page = paginator.get_page(request.GET.get("page"))
    context.update(page=page, rows=[(plan, services.overdue_days(plan.next_due, today)) for plan in page.object_list])
    return render(request, "visits/due_list.html", context)


def _entrustment_needs(request: HttpRequest) -> dict[str, Any]:
    """Left-behind children without a valid entrusted-care agreement, with the reasons: for one
    town at a time (a district picks the town), since the list reads each child's family."""
    from shouhu.org.models import Region, RegionLevel
    from shouhu.registry.selectors import children_needing_entrustment, children_visible_to

    scope = scope_for(request.user)
    town = "".join(ch for ch in request.GET.get("town", "") if ch.isdigit())[:12]
    wide = any(len(prefix) < 9 for prefix in scope.prefixes)
    if wide and not (len(town) == 12 and scope.covers_region(town)):
        q = region_q(request.user, "code")
        towns = Region.objects.filter(q, level=RegionLevel.TOWN).order_by("code")
        return {"towns": towns}
    qs = children_visible_to(request.user).filter(region_q(request.user))
    if wide:
        qs = qs.filter(region__code__startswith=town[:9])
    needs = children_needing_entrustment(qs, timezone.localdate())
    if needs:
        record(
            actor=request.user,
            action=Action.VIEW,
            object_type="child",
            object_id="",
            request=request,
            detail={"page": "entrustment_needs", "children": [str(n.child.pk) for n in needs[:500]]},
        )
    return {"needs": needs[:500], "needs_more": max(len(needs) - 500, 0), "town": town}


def _plan_of(child: Any) -> VisitPlan | None:
    """The stored plan, or (not written yet) the plan as computed now: a GET writes nothing."""
    return VisitPlan.objects.filter(child=child).first() or services.plan_preview(child.pk)


@allow(Cap.VISITS)
@require_http_methods(["GET"])
def child_visits(request: HttpRequest, pk: str) -> HttpResponse:
    """A child's plan, risk level with its history, and visits."""
    child = child_get_for(request.user, pk, request=request)
    record(
        actor=request.user,
        action=Action.VIEW,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"page": "visits"},
    )
    visits = list(visits_for(request.user).filter(child=child)[:100])
    return render(
        request,
        "visits/child.html",
        {
            "child": child,
            "plan": _plan_of(child),
            "visits": visits,
            "risks": list(RiskAssessment.objects.filter(child=child).select_related("set_by")[:20]),
            "risk_form": RiskForm(),
            "today": timezone.localdate(),
        },
    )


@allow(Cap.VISITS)
@require_POST
def risk_set(request: HttpRequest, pk: str) -> HttpResponse:
    child = child_get_for(request.user, pk, request=request)
    form = RiskForm(request.POST)
    if form.is_valid():
        visit = None
        if request.POST.get("visit"):
            visit = Visit.objects.filter(pk=request.POST["visit"], child=child).first()
        services.risk_set(
            actor=request.user,
            child=child,
            level=form.cleaned_data["level"],
            reason=form.cleaned_data["reason"],
            visit=visit,
        )
        messages.success(request, _("风险等级已更新，走访计划随之调整。"))
    else:
        messages.error(request, _("未更新风险等级：请选择等级并写明理由。"))
    next_url = request.POST.get("next", "")
    return redirect(next_url if next_url.startswith("/visits/") else reverse("visits:child", args=[child.pk]))


def _photos(request: HttpRequest) -> list[bytes]:
    files = request.FILES.getlist("photos")[: services.PHOTO_MAX_PER_VISIT + 1]
    return [f.read(services.PHOTO_MAX_BYTES + 1) for f in files]


def _error_text(exc: ValidationError) -> str:
    return "；".join(exc.messages)


@allow(Cap.VISITS)
@require_http_methods(["GET", "POST"])
def visit_new(request: HttpRequest, pk: str) -> HttpResponse:
    """The visit form. Its idempotency key is chosen when the form is opened: a form sent again
    (the connection dropped) returns the visit it made instead of a second one."""
    child = child_get_for(request.user, pk, request=request)
    last = last_visit(child.pk)
    if request.method == "GET":
        form = VisitForm(initial=initial_from(last))
        return render(
            request,
            "visits/form.html",
            {"child": child, "form": form, "key": uuid.uuid4(), "last": last, "plan": _plan_of(child)},
        )
    try:
        key = uuid.UUID(request.POST.get("key", ""))
    except ValueError:
        key = None
    form = VisitForm(request.POST)
    if key is None or not form.is_valid():
        if _wants_json(request):
            return JsonResponse(
                {
                    "ok": False,
                    "errors": form.errors.get_json_data()
                    if key
                    else {"key": [{"message": _("表单已过期，请刷新页面后重新填写。")}]},
                },
                status=400,
            )
        return render(
            request,
            "visits/form.html",
            {"child": child, "form": form, "key": key or uuid.uuid4(), "last": last, "plan": _plan_of(child)},
            status=400,
        )
    submit = request.POST.get("action") != "draft"
    try:
        visit, created = services.visit_save(
            actor=request.user,
            child=child,
            data=form.visit_data(),
            key=key,
            submit=submit,
            photos=_photos(request),
            request=request,
        )
    except ValidationError as exc:
        if _wants_json(request):
            return JsonResponse({"ok": False, "errors": {"__all__": [{"message": _error_text(exc)}]}}, status=400)
        form.add_error(None, exc)
        return render(
            request,
            "visits/form.html",
            {"child": child, "form": form, "key": key, "last": last, "plan": _plan_of(child)},
            status=400,
        )
    except PermissionDenied:
        raise Http404 from None
    url = reverse("visits:detail", args=[visit.pk])
    if created:
        messages.success(request, _("走访记录已提交。") if submit else _("已保存为草稿，可稍后补充提交。"))
    else:
        messages.info(request, _("这份走访记录此前已经保存，没有重复记录。"))
    if _wants_json(request):  # the page's script goes to `url` next, where the message shows
        return JsonResponse(
            {"ok": True, "id": visit.pk, "url": url, "created": created}, status=201 if created else 200
        )
    return redirect(url)


@allow(Cap.VISITS)
@require_http_methods(["GET", "POST"])
def visit_detail(request: HttpRequest, visit_id: int) -> HttpResponse:
    """A visit; its author edits a draft or a returned one here."""
    visit = visit_get_for(request.user, visit_id)
    child = child_get_for(request.user, visit.child_id, request=request)
    mine = visit.visitor_id == request.user.pk
    editable = mine and visit.state in (VisitState.DRAFT, VisitState.RETURNED)
    form = None
    if editable:
        if request.method == "POST":
            form = VisitForm(request.POST)
            if form.is_valid():
                try:
                    services.visit_save(
                        actor=request.user,
                        child=child,
                        data=form.visit_data(),
                        key=visit.idempotency_key,
                        submit=request.POST.get("action") != "draft",
                        visit=visit,
                        version=int(request.POST.get("version") or 0),
                        photos=_photos(request),
                        request=request,
                    )
                except StaleEdit:
                    messages.error(request, _("保存失败：这条记录在您编辑期间已被修改，请刷新后再试。"))
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    messages.success(request, _("已保存。"))
                    return redirect("visits:detail", visit_id=visit.pk)
        else:
            form = VisitForm(
                initial={
                    **initial_from(visit),
                    "visited_on": visit.visited_on,
                    "notes": visit.notes,
                    "location": visit.location,
                }
            )
    elif request.method == "POST":
        raise PermissionDenied
    record(
        actor=request.user,
        action=Action.VIEW,
        object_type="visit",
        object_id=visit.pk,
        request=request,
        detail={"child": str(child.pk)},
    )
    found = _findings_of(child, visit) if visit.state != VisitState.DRAFT else []
    scope = scope_for(request.user)
    current_risk = RiskAssessment.objects.filter(child=child).order_by("-set_at", "-id").first()
    return render(
        request,
        "visits/detail.html",
        {
            "visit": visit,
            "child": child,
            "form": form,
            "editable": editable,
            "findings": found,
            "photos": list(visit.photos.values_list("pk", flat=True)),
            "concerns": [
                (label, (visit.checklist or {}).get(key, {}).get("note", ""))
                for key, label in CHECKLIST
                if not (visit.checklist or {}).get(key, {}).get("ok", True)
            ],
            "risk_form": RiskForm(initial={"level": current_risk.level} if current_risk else None),
            "current_risk": current_risk,
            "help_form": HelpForm(),
            "return_form": ReturnForm(),
            "can_return": scope.can(Cap.VISIT_REVIEW) and visit.state == VisitState.SUBMITTED,
            "key": visit.idempotency_key,
        },
    )


def _findings_of(child: Child, visit: Visit) -> list[Any]:
    """The visit's findings; a left-behind child's entrusted care is judged by the registry's rule."""
    from shouhu.registry.selectors import entrustment_issues_of

    today = timezone.localdate()
    return findings(
        birth_date=child.birth_date, entrustment_issues=entrustment_issues_of(child, today), visit=visit, today=today
    )


@allow(Cap.VISIT_REVIEW)
@require_POST
def visit_return(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_get_for(request.user, visit_id)
    form = ReturnForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请填写退回意见。"))
    else:
        try:
            services.visit_return(
                actor=request.user, visit=visit, comment=form.cleaned_data["comment"], request=request
            )
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, _("已退回，走访人会收到通知。"))
    return redirect("visits:detail", visit_id=visit.pk)


@allow(Cap.VISITS)
@require_POST
def help_request(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Ask the responsible member unit for help with what the visit found (a task in its inbox)."""
    visit = visit_get_for(request.user, visit_id)
    child = child_get_for(request.user, visit.child_id, request=request)
    form = HelpForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请选择需要帮助的事项。"))
        return redirect("visits:detail", visit_id=visit.pk)
    try:
        task = services.help_request(
            actor=request.user,
            child=child,
            need_code=form.cleaned_data["need"],
            note=form.cleaned_data["note"],
            visit=visit,
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            _("已转给%(u)s办理（期限 %(d)s）。")
            % {"u": task.owner.name, "d": timezone.localtime(task.due_at).strftime("%Y-%m-%d")},
        )
    return redirect("visits:detail", visit_id=visit.pk)


@allow(Cap.VISITS)
@require_http_methods(["GET"])
def photo(request: HttpRequest, photo_id: int) -> HttpResponse:
    """A visit photo, to those who may see the visit's child; every view audited."""
    item = VisitPhoto.objects.filter(pk=photo_id).select_related("visit").first()
    if item is None:
        raise Http404
    visit = visit_get_for(request.user, item.visit_id)
    child_get_for(request.user, visit.child_id, request=request)
    record(
        actor=request.user,
        action=Action.VIEW,
        object_type="visit_photo",
        object_id=item.pk,
        request=request,
        detail={"visit": visit.pk, "child": str(visit.child_id)},
    )
    response = HttpResponse(base64.b64decode(item.content), content_type=item.content_type)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response
