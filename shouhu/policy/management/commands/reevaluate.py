import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from shouhu.policy.services import reevaluate_all


class Command(BaseCommand):
    help = "Re-evaluate every child in the ledger now (what the nightly job does); prints JSON counts."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", default="", help="YYYY-MM-DD (default: today)")

    def handle(self, *args, as_of, **options):
        try:
            day = date.fromisoformat(as_of) if as_of else None
        except ValueError as exc:
            raise CommandError(f"--as-of: {exc}") from exc
        self.stdout.write(json.dumps(reevaluate_all(as_of=day)))
