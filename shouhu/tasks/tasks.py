"""Overdue tasks escalate to the unit's leadership (huey), every five minutes."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from shouhu.tasks.escalation import escalate_overdue


@db_periodic_task(crontab(minute="*/5"))
@lock_task("task-escalation")
def escalate_overdue_tasks() -> dict[str, int]:
    """`manage.py escalate_tasks` runs the same once."""
    return escalate_overdue()
