"""Escalate overdue tasks once: `manage.py escalate_tasks [--now ISO-8601]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from shouhu.lib.commands import now_option
from shouhu.tasks.escalation import escalate_overdue


class Command(BaseCommand):
    help = "Escalate every open task past its deadline to the unit's leadership, once; print JSON counts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--now", help="the moment to check at (ISO-8601; for drills and tests)")

    def handle(self, *args: Any, **options: Any) -> None:
        now = now_option(options.get("now"))
        self.stdout.write(json.dumps(escalate_overdue(now=now)))
