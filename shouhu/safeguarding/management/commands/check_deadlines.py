"""Run the mandatory-report deadline check once: `manage.py check_deadlines [--now ISO-8601]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from shouhu.lib.commands import now_option
from shouhu.safeguarding.services import check_deadlines


class Command(BaseCommand):
    help = "Escalate every mandatory-report step past its deadline, once; print JSON counts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--now", help="the moment to check at (ISO-8601; for drills and tests)")

    def handle(self, *args: Any, **options: Any) -> None:
        now = now_option(options.get("now"))
        self.stdout.write(json.dumps(check_deadlines(now)))
