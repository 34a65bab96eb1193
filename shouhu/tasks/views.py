"""The unit's inbox: every need found for a child that landed on this organisation."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from shouhu.org.access import Cap, allow, scope_for
from shouhu.registry.forms import ShouhuForm
from shouhu.registry.selectors import children_with_restricted_facts
from shouhu.registry.services import StaleEdit
from shouhu.tasks.models import Task, TaskState
from shouhu.tasks.selectors import inbox_for
from shouhu.tasks.services import task_close


class CloseForm(ShouhuForm):
    state = forms.ChoiceField(choices=[(TaskState.DONE, gettext_lazy("办结")), (TaskState.CANCELLED, gettext_lazy("撤销"))])
    outcome = forms.CharField(label=gettext_lazy("办理结果"), max_length=500)
    version = forms.IntegerField(widget=forms.HiddenInput)


@allow(Cap.TASKS)
@require_http_methods(["GET"])
def inbox(request: HttpRequest) -> HttpResponse:
    qs = inbox_for(request.user)
    if request.GET.get("overdue") == "1":
        qs = qs.filter(due_at__lt=timezone.now())
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    restricted = children_with_restricted_facts(request.user, {t.child_id for t in page.object_list if t.child_id})
    for task in page.object_list:
        if task.child_id in restricted:
            # A task's detail quotes the family's facts, some of which this role is not cleared to read.
            task.detail = _("说明涉及受限信息，您的角色无权查看；请与儿童所在镇（街道）儿童督导员联系。")
    params = request.GET.copy()
    params.pop("page", None)
    return render(request, "tasks/inbox.html", {
        "page": page, "now": timezone.now(), "overdue_only": request.GET.get("overdue") == "1",
        "querystring": params.urlencode(),
    })


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
            task_close(actor=request.user, task=task, state=form.cleaned_data["state"],
                       outcome=form.cleaned_data["outcome"], version=form.cleaned_data["version"])
        except StaleEdit as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            messages.error(request, "；".join(exc.messages))
        else:
            messages.success(request, _("已办结：%(title)s") % {"title": task.title})
    return redirect("tasks:inbox")

