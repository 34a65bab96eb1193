import json

from django.core.management.base import BaseCommand

from shouhu.notify.services import deliver_pending


class Command(BaseCommand):
    help = "Send the notification deliveries that are due now (what the per-minute job does); prints JSON counts."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(deliver_pending(), sort_keys=True))
