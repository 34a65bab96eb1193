"""The organisation's tasks through the API, for units whose own systems do the work.
Mounted on the API in shouhu/api/api.py.

* `GET /tasks` — the open tasks of the caller's organisation;
* `POST /tasks/{task_id}/accept|decline|progress|complete` — the unit's answers, through the same
  services as the inbox page. A task of another organisation is a 404, as missing as one that does
  not exist; an answer the task's state no longer allows (accepting it twice, completing a closed
  one) is a 409; a missing or empty field is a 422.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import Field, Path, Query, Schema
from ninja.responses import Status

from shouhu.api.auth import AuthedRequest, GuardedRouter
from shouhu.lib.i18n import lazy_str
from shouhu.org.access import Cap, allow
from shouhu.registry.services import StaleEdit
from shouhu.tasks import services
from shouhu.tasks.models import Task
from shouhu.tasks.selectors import escalated_task_ids, inbox_for, report_id_of, task_owned_by

router = GuardedRouter(tags=["tasks"])

MAX_ID = 9223372036854775807


def _form_errors(errors: dict[str, list[str]]) -> Exception:
    from shouhu.api.api import FormErrors  # the API module mounts this router: imported late

    return FormErrors(errors)


# ----- schemas -------------------------------------------------------------------------------------


class TaskOut(Schema):
    id: int
    kind: str
    title: str
    state: str
    report_id: int | None
    child_id: UUID | None
    due_at: datetime
    overdue: bool
    escalated: bool = Field(..., description=lazy_str(gettext_lazy("本事项或所涉强制报告已超时升级督办")))
    accepted_at: datetime | None = None
    handler: str = ""
    version: int = Field(1, description=lazy_str(gettext_lazy("当前版本号；答复时可带上，过期返回 409")))


class TaskPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[TaskOut]


class TaskFilters(Schema):
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(50, ge=1, le=200)


class TaskConflict(Schema):
    detail: str
    errors: dict[str, list[str]] = {}


class AcceptIn(Schema):
    handler: str = Field(..., max_length=40, description=lazy_str(gettext_lazy("承办人")))
    version: int | None = Field(None, ge=1, le=2147483647)


class DeclineIn(Schema):
    reason: str = Field(..., max_length=300, description=lazy_str(gettext_lazy("退回理由，事项退回发起单位")))
    version: int | None = Field(None, ge=1, le=2147483647)


class ProgressIn(Schema):
    note: str = Field(..., max_length=500, description=lazy_str(gettext_lazy("进展情况，或需要发起单位补充的情况")))
    info_request: bool = Field(False, description=lazy_str(gettext_lazy("true：要求发起单位补充情况")))
    version: int | None = Field(None, ge=1, le=2147483647)


class CompleteIn(Schema):
    outcome: str = Field(..., max_length=500, description=lazy_str(gettext_lazy("办理结果")))
    version: int | None = Field(None, ge=1, le=2147483647)


# ----- operations ----------------------------------------------------------------------------------


def task_out(task: Task, escalated: set[int], now: datetime) -> dict[str, Any]:
    return {
        "id": task.pk,
        "kind": task.kind,
        "title": task.title,
        "state": task.state,
        "report_id": report_id_of(task),
        "child_id": task.child_id,
        "due_at": task.due_at,
        "overdue": task.due_at < now,
        "escalated": task.pk in escalated,
        "accepted_at": task.accepted_at,
        "handler": task.handler,
        "version": task.version,
    }


@router.get("/tasks", response=TaskPage, summary=lazy_str(gettext_lazy("本单位待办事项")))
@allow(Cap.TASKS)
def list_tasks(request: AuthedRequest, filters: Query[TaskFilters]) -> dict[str, Any]:
    qs = inbox_for(request.auth)
    total = qs.count()
    start = (filters.page - 1) * filters.page_size
    tasks = list(qs[start : start + filters.page_size])
    escalated = escalated_task_ids(tasks)
    now = timezone.now()
    return {
        "count": total,
        "page": filters.page,
        "page_size": filters.page_size,
        "items": [task_out(task, escalated, now) for task in tasks],
    }


def _answer(request: AuthedRequest, task_id: int, texts: dict[str, str], call: Callable[[Task], Any]) -> Status:
    task = task_owned_by(request.auth, task_id)
    for name, value in texts.items():
        if "\x00" in value:
            raise _form_errors({name: [_("文本含有不允许的字符。")]})
    try:
        call(task)
    except StaleEdit as exc:
        return Status(
            409, {"detail": exc.message, "errors": {"version": [_("当前版本为 %(v)d") % {"v": exc.current_version}]}}
        )
    except PermissionDenied:
        raise Http404 from None
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise _form_errors(exc.message_dict) from None
        return Status(409, {"detail": "；".join(exc.messages)})
    task.refresh_from_db()
    return Status(200, task_out(task, escalated_task_ids([task]), timezone.now()))


RESPONSES = {200: TaskOut, 409: TaskConflict}
TASK_ID = Path(..., ge=1, le=MAX_ID)


@router.post("/tasks/{task_id}/accept", response=RESPONSES, summary=lazy_str(gettext_lazy("接收事项")))
@allow(Cap.TASKS)
def accept_task(request: AuthedRequest, payload: AcceptIn, task_id: int = TASK_ID) -> Status:
    return _answer(
        request,
        task_id,
        {"handler": payload.handler},
        lambda task: services.task_accept(
            actor=request.auth, task=task, handler=payload.handler, version=payload.version
        ),
    )


@router.post("/tasks/{task_id}/decline", response=RESPONSES, summary=lazy_str(gettext_lazy("退回事项")))
@allow(Cap.TASKS)
def decline_task(request: AuthedRequest, payload: DeclineIn, task_id: int = TASK_ID) -> Status:
    return _answer(
        request,
        task_id,
        {"reason": payload.reason},
        lambda task: services.task_decline(
            actor=request.auth, task=task, reason=payload.reason, version=payload.version
        ),
    )


@router.post("/tasks/{task_id}/progress", response=RESPONSES, summary=lazy_str(gettext_lazy("报告进展或要求补充情况")))
@allow(Cap.TASKS)
def progress_task(request: AuthedRequest, payload: ProgressIn, task_id: int = TASK_ID) -> Status:
    return _answer(
        request,
        task_id,
        {"note": payload.note},
        lambda task: services.task_progress(
            actor=request.auth, task=task, note=payload.note, info_request=payload.info_request, version=payload.version
        ),
    )


@router.post("/tasks/{task_id}/complete", response=RESPONSES, summary=lazy_str(gettext_lazy("办结事项")))
@allow(Cap.TASKS)
def complete_task(request: AuthedRequest, payload: CompleteIn, task_id: int = TASK_ID) -> Status:
    return _answer(
        request,
        task_id,
        {"outcome": payload.outcome},
        lambda task: services.task_complete(
            actor=request.auth, task=task, outcome=payload.outcome, version=payload.version
        ),
    )
