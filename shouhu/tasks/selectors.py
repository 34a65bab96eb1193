from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from shouhu.org.access import scope_for
from shouhu.tasks.models import OPEN_STATES, Task


def inbox_for(actor: Any) -> QuerySet[Task]:
    """The open tasks of the actor's organisation, overdue first (the earliest deadline first)."""
    scope = scope_for(actor)
    if scope.organization_id is None:
        return Task.objects.none()
    return (
        Task.objects.filter(owner_id=scope.organization_id, state__in=OPEN_STATES)
        .select_related("child", "child__region", "need_type")
        .order_by("due_at", "id")
    )

