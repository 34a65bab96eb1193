"""Opening and closing tasks. Opening a task about a child shares that child with the owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.org.models import NeedType, Organization
from shouhu.registry.models import Child, ChildShare
from shouhu.tasks.models import OPEN_STATES, Task, TaskEvent, TaskEventKind, TaskState


@transaction.atomic
def task_open(
    *,
    actor: Any,
    owner: Organization,
    kind: str,
    title: str,
    due_at: datetime,
    child: Child | None = None,
    need_type: NeedType | None = None,
    detail: str = "",
    source_type: str = "",
    source_id: str = "",
) -> Task:
    """Open a task, or return the open one for the same source (idempotent)."""
    if source_type and source_id:
        existing = Task.objects.filter(source_type=source_type, source_id=source_id, state__in=OPEN_STATES).first()
        if existing is not None:
            return existing
    task = Task(
        owner=owner,
        child=child,
        kind=kind,
        need_type=need_type,
        title=title[:120],
        detail=detail,
        source_type=source_type,
        source_id=source_id,
        due_at=due_at,
    )
    task.full_clean()
    task.save()
    if child is not None:
        ChildShare.objects.get_or_create(
            child=child,
            organization=owner,
            source_type="task",
            source_id=str(task.pk),
            defaults={"reason": title[:100]},
        )
    record(
        actor=actor,
        action=Action.CREATE,
        object_type="task",
        object_id=task.pk,
        detail={"kind": kind, "owner": owner.pk, "child": str(child.pk) if child else None},
    )
    return task


@transaction.atomic
def task_close(*, actor: Any, task: Task, state: str, outcome: str, version: int | None) -> Task:
    if state not in (TaskState.DONE, TaskState.CANCELLED):
        raise ValidationError({"state": [_("请选择办结或撤销。")]})
    current = Task.objects.select_for_update().get(pk=task.pk)
    if version is not None and current.version != version:
        from shouhu.registry.services import StaleEdit

        raise StaleEdit(current.version)
    if current.state not in OPEN_STATES:
        raise ValidationError(_("该事项已经办结或撤销。"))
    current.state, current.outcome = state, outcome[:500]
    current.closed_at, current.closed_by = timezone.now(), actor if getattr(actor, "is_authenticated", False) else None
    current.version += 1
    current.save(update_fields=["state", "outcome", "closed_at", "closed_by", "version"])
    end_share(current)
    TaskEvent.objects.create(
        task=current,
        kind=TaskEventKind.COMPLETED if state == TaskState.DONE else TaskEventKind.CANCELLED,
        actor=current.closed_by,
        organization=getattr(current.closed_by, "organization", None),
        note=outcome[:500],
    )
    record(actor=actor, action=Action.UPDATE, object_type="task", object_id=current.pk, detail={"state": state})
    return current


def cancel_for_source(*, actor: Any, source_type: str, source_id: str, outcome: str) -> int:
    """Cancel the open task of a source that no longer needs work (e.g. an entitlement ended)."""
    count = 0
    for task in Task.objects.filter(source_type=source_type, source_id=source_id, state__in=OPEN_STATES):
        task_close(actor=actor, task=task, state=TaskState.CANCELLED, outcome=outcome, version=None)
        count += 1
    return count


def end_share(task: Task) -> int:
    """A unit sees a referred child only while its task is open: closing, declining or completing
    the task ends the share it opened (other open tasks about the child keep theirs)."""
    deleted, _counts = ChildShare.objects.filter(source_type="task", source_id=str(task.pk)).delete()
    return deleted


# ----- the unit's answers ----------------------------------------------------------------------------


def _owned(actor: Any, task: Task, version: int | None) -> Task:
    current = Task.objects.select_for_update().get(pk=task.pk)
    org_id = getattr(actor, "organization_id", None)
    if org_id is None or current.owner_id != org_id:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied
    if version is not None and current.version != version:
        from shouhu.registry.services import StaleEdit

        raise StaleEdit(current.version)
    if current.state not in OPEN_STATES:
        raise ValidationError(_("该事项已经办结、撤销或退回。"))
    return current


def _step(actor: Any, task: Task, kind: str, note: str = "") -> TaskEvent:
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = TaskEvent.objects.create(
        task=task, kind=kind, actor=user, organization=getattr(user, "organization", None), note=(note or "")[:500]
    )
    record(actor=actor, action=Action.UPDATE, object_type="task", object_id=task.pk, detail={"step": kind})
    return event


@transaction.atomic
def task_accept(*, actor: Any, task: Task, handler: str, version: int | None = None) -> Task:
    """The unit takes the task on, naming who handles it."""
    current = _owned(actor, task, version)
    handler = (handler or "").strip()
    if not handler:
        raise ValidationError({"handler": [_("请填写承办人。")]})
    if current.accepted_at is not None:
        raise ValidationError(_("该事项已接收。"))
    current.state, current.accepted_at, current.handler = TaskState.IN_PROGRESS, timezone.now(), handler[:40]
    current.version += 1
    current.save(update_fields=["state", "accepted_at", "handler", "version"])
    _step(actor, current, TaskEventKind.ACCEPTED, handler)
    return current


@transaction.atomic
def task_decline(*, actor: Any, task: Task, reason: str, version: int | None = None) -> Task:
    """The unit declines with a reason; the task returns to whoever asked (not a silent drop)."""
    current = _owned(actor, task, version)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("请写明退回理由。")]})
    user = actor if getattr(actor, "is_authenticated", False) else None
    current.state, current.decline_reason = TaskState.DECLINED, reason[:300]
    current.closed_at, current.closed_by = timezone.now(), user
    current.version += 1
    current.save(update_fields=["state", "decline_reason", "closed_at", "closed_by", "version"])
    end_share(current)
    _step(actor, current, TaskEventKind.DECLINED, reason)
    if current.requester_id:
        from shouhu.notify.services import notify

        notify(
            organization=current.requester,
            kind="task_declined",
            title=_("有一项转介被退回，请查看理由"),
            body=_("请登录平台查看退回理由并重新安排。"),
            url="/tasks/",
            dedupe_key=f"task_declined:{current.pk}",
        )
    return current


@transaction.atomic
def task_progress(
    *, actor: Any, task: Task, note: str, info_request: bool = False, version: int | None = None
) -> TaskEvent:
    """A progress note, or a request for more information from whoever asked."""
    current = _owned(actor, task, version)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": [_("请填写进展情况。")]})
    current.version += 1
    current.save(update_fields=["version"])
    return _step(actor, current, TaskEventKind.INFO_REQUESTED if info_request else TaskEventKind.PROGRESS, note)


@transaction.atomic
def task_complete(*, actor: Any, task: Task, outcome: str, version: int | None = None) -> Task:
    """Done, with the outcome."""
    current = _owned(actor, task, version)
    outcome = (outcome or "").strip()
    if not outcome:
        raise ValidationError({"outcome": [_("请填写办理结果。")]})
    user = actor if getattr(actor, "is_authenticated", False) else None
    current.state, current.outcome = TaskState.DONE, outcome[:500]
    current.closed_at, current.closed_by = timezone.now(), user
    if current.accepted_at is None:
        current.accepted_at = current.closed_at
    current.version += 1
    current.save(update_fields=["state", "outcome", "closed_at", "closed_by", "accepted_at", "version"])
    end_share(current)
    _step(actor, current, TaskEventKind.COMPLETED, outcome)
    return current
