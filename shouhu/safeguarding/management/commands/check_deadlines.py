"""Run the mandatory-report deadline check once: `manage.py check_deadlines [--now ISO-8601]`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shouhu.safeguarding.services import check_deadlines


class Command(BaseCommand):
    help = "Escalate every mandatory-report step past its deadline, once; print JSON counts."

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
        self.stdout.write(json.dumps(check_deadlines(now)))
