from django.core.management.base import BaseCommand, CommandError

from shouhu.audit.services import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain: prints 'ok N' or the first broken link (exit code 1)."

    def handle(self, *args, **options):
        result = verify_chain()
        if result.ok:
            self.stdout.write(f"ok {result.count} events")
            return
        raise CommandError(
            f"broken at seq {result.broken_seq}: {result.reason} ({result.count} events verified before it)"
        )
