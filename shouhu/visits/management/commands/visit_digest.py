import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from shouhu.visits.tasks import send_digest


class Command(BaseCommand):
    help = "Send the daily digest of due and overdue visits (what the 07:30 job does); prints JSON counts."

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="day", help="the day to count for, YYYY-MM-DD (default: today)")

    def handle(self, *args, day: str | None = None, **options):
        today = None
        if day:
            try:
                today = date.fromisoformat(day)
            except ValueError as exc:
                raise CommandError(f"--date must be YYYY-MM-DD, not {day!r}") from exc
        self.stdout.write(json.dumps(send_digest(today=today), sort_keys=True))
