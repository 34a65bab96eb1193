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
from shouhu.tasks.models import OPEN_STATES, Task, TaskState


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
    task = Task(owner=owner, child=child, kind=kind, need_type=need_type, title=title[:120], detail=detail,
                source_type=source_type, source_id=source_id, due_at=due_at)
    task.full_clean()
    task.save()
    if child is not None:
        ChildShare.objects.get_or_create(
            child=child, organization=owner, source_type="task", source_id=str(task.pk),
            defaults={"reason": title[:100]},
        )
    record(actor=actor, action=Action.CREATE, object_type="task", object_id=task.pk,
           detail={"kind": kind, "owner": owner.pk, "child": str(child.pk) if child else None})
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
    record(actor=actor, action=Action.UPDATE, object_type="task", object_id=current.pk,
           detail={"state": state})
    return current


def cancel_for_source(*, actor: Any, source_type: str, source_id: str, outcome: str) -> int:
    """Cancel the open task of a source that no longer needs work (e.g. an entitlement ended)."""
    count = 0
    for task in Task.objects.filter(source_type=source_type, source_id=source_id, state__in=OPEN_STATES):
        task_close(actor=actor, task=task, state=TaskState.CANCELLED, outcome=outcome, version=None)
        count += 1
    return count

