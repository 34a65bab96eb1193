"""The unit's inbox: every need found for a child that landed on this organisation, and its answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from shouhu.org.access import Cap, allow, scope_for
from shouhu.registry.forms import ShouhuForm
from shouhu.registry.selectors import children_visible_to, children_with_restricted_facts
from shouhu.registry.services import StaleEdit
from shouhu.tasks import services
from shouhu.tasks.models import OPEN_STATES, Task, TaskKind, TaskState
from shouhu.tasks.selectors import (
    escalated_task_ids,
    inbox_for,
    requested_by,
    supervised_org_ids,
    supervision_for,
    task_get_for,
    task_owned_by,
)
from shouhu.tasks.services import task_close

RESTRICTED_DETAIL = gettext_lazy("说明涉及受限信息，您的角色无权查看；请与儿童所在镇（街道）儿童督导员联系。")


class CloseForm(ShouhuForm):
    state = forms.ChoiceField(
        choices=[(TaskState.DONE, gettext_lazy("办结")), (TaskState.CANCELLED, gettext_lazy("撤销"))]
    )
    outcome = forms.CharField(label=gettext_lazy("办理结果"), max_length=500)
    version = forms.IntegerField(widget=forms.HiddenInput)


class AnswerForm(ShouhuForm):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    back = forms.ChoiceField(choices=[("inbox", "inbox"), ("detail", "detail")], required=False)


class AcceptForm(AnswerForm):
    handler = forms.CharField(label=gettext_lazy("承办人"), max_length=40)


class DeclineForm(AnswerForm):
    reason = forms.CharField(label=gettext_lazy("退回理由"), max_length=300)


class ProgressForm(AnswerForm):
    note = forms.CharField(label=gettext_lazy("进展情况"), max_length=500)
    info_request = forms.BooleanField(label=gettext_lazy("要求发起单位补充情况"), required=False)


class CompleteForm(AnswerForm):
    outcome = forms.CharField(label=gettext_lazy("办理结果"), max_length=500)


def _withhold_restricted(actor: Any, tasks: list[Task]) -> None:
    restricted = children_with_restricted_facts(actor, {t.child_id for t in tasks if t.child_id})
    for task in tasks:
        if task.child_id in restricted:
            # A task's detail quotes the family's facts, some of which this role is not cleared to read.
            task.detail = str(RESTRICTED_DETAIL)


@allow(Cap.TASKS)
@require_http_methods(["GET"])
def inbox(request: HttpRequest) -> HttpResponse:
    qs = inbox_for(request.user)
    now = timezone.now()
    overdue_only = request.GET.get("overdue") == "1"
    kind = request.GET.get("kind", "")
    if overdue_only:
        qs = qs.filter(due_at__lt=now)
    if kind in TaskKind.values:
        qs = qs.filter(kind=kind)
    else:
        kind = ""
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    _withhold_restricted(request.user, page.object_list)
    escalated = escalated_task_ids(page.object_list)
    for task in page.object_list:
        task.escalated = task.pk in escalated
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "tasks/inbox.html",
        {
            "page": page,
            "now": now,
            "overdue_only": overdue_only,
            "kind": kind,
            "kinds": TaskKind.choices,
            "querystring": params.urlencode(),
        },
    )


@allow(Cap.TASKS)
@require_http_methods(["GET"])
def answers(request: HttpRequest, task_id: int) -> HttpResponse:
    """The answer forms of one task of the organisation's inbox (loaded when a card is opened)."""
    task = task_owned_by(request.user, task_id)
    if task.state not in OPEN_STATES:
        return HttpResponse(_("该事项已经办结、撤销或退回。"))
    return render(request, "tasks/_answers.html", {"t": task, "back": "inbox"})


@allow(Cap.TASKS)
@require_http_methods(["GET"])
def requested(request: HttpRequest) -> HttpResponse:
    """The referrals this organisation asked other units for: where each stands, late ones marked."""
    page = Paginator(requested_by(request.user), 50).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    escalated = escalated_task_ids(page.object_list)
    for task in page.object_list:
        task.escalated = task.pk in escalated
    return render(request, "tasks/requested.html", {"page": page, "now": timezone.now(), "querystring": ""})


@allow(Cap.TASKS)
@require_http_methods(["GET"])
def supervision(request: HttpRequest) -> HttpResponse:
    """督办: the late tasks of the units this organisation supervises, without any child's data."""
    page = Paginator(supervision_for(request.user), 50).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    now = timezone.now()
    for task in page.object_list:
        task.days_late = (now - task.due_at).days
    org_ids = supervised_org_ids(request.user)
    return render(
        request,
        "tasks/supervision.html",
        {
            "page": page,
            "now": now,
            "querystring": "",
            "supervises": org_ids is None or bool(org_ids),
        },
    )


@allow(Cap.TASKS)
@require_http_methods(["GET"])
def detail(request: HttpRequest, task_id: int) -> HttpResponse:
    """The task and its timeline: the owner answers here, the organisation that asked reads it."""
    task = task_get_for(request.user, task_id)
    _withhold_restricted(request.user, [task])
    org_id = scope_for(request.user).organization_id
    owner = task.owner_id == org_id
    events = list(task.events.select_related("actor", "organization"))
    child_visible = task.child_id is not None and children_visible_to(request.user).filter(pk=task.child_id).exists()
    return render(
        request,
        "tasks/detail.html",
        {
            "t": task,
            "events": events,
            "owner": owner,
            "overdue": task.state in OPEN_STATES and task.due_at < timezone.now(),
            "can_answer": owner and task.state in OPEN_STATES,
            "escalated": bool(escalated_task_ids([task])),
            "child_visible": child_visible,
            "back": "detail",
        },
    )


@allow(Cap.TASKS)
@require_POST
def close(request: HttpRequest, task_id: int) -> HttpResponse:
    task = Task.objects.filter(pk=task_id, owner_id=scope_for(request.user).organization_id).first()
    if task is None:
        raise Http404
    form = CloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "；".join(str(e) for errs in form.errors.values() for e in errs))
    else:
        try:
            task_close(
                actor=request.user,
                task=task,
                state=form.cleaned_data["state"],
                outcome=form.cleaned_data["outcome"],
                version=form.cleaned_data["version"],
            )
        except StaleEdit as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            messages.error(request, "；".join(exc.messages))
        else:
            messages.success(request, _("已办结：%(title)s") % {"title": task.title})
    return redirect("tasks:inbox")


def _answer_view(
    form_class: type[AnswerForm], call: Callable[[Any, Task, dict[str, Any]], Any], done: Any
) -> Callable[[HttpRequest, int], HttpResponse]:
    """A small POST form of the owner organisation, calling one service; back to where it was sent from."""

    @allow(Cap.TASKS)
    @require_POST
    def view(request: HttpRequest, task_id: int) -> HttpResponse:
        task = task_owned_by(request.user, task_id)
        form = form_class(request.POST)
        if not form.is_valid():
            messages.error(request, "；".join(str(e) for errs in form.errors.values() for e in errs))
        else:
            try:
                call(request.user, task, form.cleaned_data)
            except StaleEdit as exc:
                messages.error(request, exc.message)
            except PermissionDenied:
                raise Http404 from None
            except ValidationError as exc:
                messages.error(request, "；".join(exc.messages))
            else:
                messages.success(request, done % {"title": task.title})
        if request.POST.get("back") == "detail":
            return redirect("tasks:detail", task_id=task.pk)
        return redirect("tasks:inbox")

    return view


accept = _answer_view(
    AcceptForm,
    lambda actor, task, data: services.task_accept(
        actor=actor, task=task, handler=data["handler"], version=data["version"]
    ),
    gettext_lazy("已接收：%(title)s"),
)
decline = _answer_view(
    DeclineForm,
    lambda actor, task, data: services.task_decline(
        actor=actor, task=task, reason=data["reason"], version=data["version"]
    ),
    gettext_lazy("已退回：%(title)s"),
)
progress = _answer_view(
    ProgressForm,
    lambda actor, task, data: services.task_progress(
        actor=actor, task=task, note=data["note"], info_request=data["info_request"], version=data["version"]
    ),
    gettext_lazy("已记录进展：%(title)s"),
)
complete = _answer_view(
    CompleteForm,
    lambda actor, task, data: services.task_complete(
        actor=actor, task=task, outcome=data["outcome"], version=data["version"]
    ),
    gettext_lazy("已办结：%(title)s"),
)
