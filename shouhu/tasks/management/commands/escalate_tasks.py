"""Escalate overdue tasks once: `manage.py escalate_tasks [--now ISO-8601]`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shouhu.tasks.escalation import escalate_overdue


class Command(BaseCommand):
    help = "Escalate every open task past its deadline to the unit's leadership, once; print JSON counts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--now", help="the moment to check at (ISO-8601; for drills and tests)")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options.get("now"):
            try:
                now = datetime.fromisoformat(options["now"])
            except ValueError:
                raise CommandError(f"--now: not an ISO-8601 date-time: {options['now']!r}") from None
            if timezone.is_naive(now):
                now = timezone.make_aware(now)
        self.stdout.write(json.dumps(escalate_overdue(now=now)))
