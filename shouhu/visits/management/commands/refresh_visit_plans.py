import json

from django.core.management.base import BaseCommand

from shouhu.visits.tasks import refresh_all


class Command(BaseCommand):
    help = "Recompute every child's visit plan (what the 02:45 job does); prints JSON counts."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(refresh_all(), sort_keys=True))
