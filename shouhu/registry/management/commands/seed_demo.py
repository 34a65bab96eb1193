import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shouhu.registry.demo import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    build_world,
    create_demo_accounts,
    generate_children,
    insert_children,
)
from shouhu.registry.models import Child


class Command(BaseCommand):
    help = "Build a synthetic Wujin (villages, organisations, demo accounts) and N children. Demo mode only."

    def add_arguments(self, parser):
        parser.add_argument("--children", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the ledger already has children")
        parser.add_argument("--batch", type=int, default=2000)

    def handle(self, *args, children, seed, if_empty, batch, **options):
        if not settings.DEMO_MODE:
            raise CommandError("seed_demo creates demo accounts with a published password: set SHOUHU_DEMO=1")
        if if_empty and Child.objects.exists():
            self.stdout.write("ledger not empty: demo data left as it is")
            return
        started = time.monotonic()
        world = build_world(seed=seed)
        create_demo_accounts()
        today = timezone.localdate()
        rows, done = [], 0
        for item in generate_children(n=children, seed=seed, villages=world.villages, today=today):
            rows.append(item)
            if len(rows) >= batch:
                done += insert_children(rows)
                rows = []
        if rows:
            done += insert_children(rows)
        self.stdout.write(f"{done} children in {len(world.villages)} villages, {time.monotonic() - started:.1f}s")
        # The policy engine's first night, then a district office that confirmed most proposals.
        from shouhu.policy.demo import confirm_demo_proposals
        from shouhu.policy.services import reevaluate_all

        counts = reevaluate_all()
        decided = confirm_demo_proposals(seed=seed)
        self.stdout.write(
            f"policy: {counts['changed']} children evaluated, {decided} proposals confirmed in the "
            f"demo towns, {time.monotonic() - started:.1f}s"
        )
        # Visit plans for every child; risk levels and a few months of visits in the demo towns.
        from shouhu.visits.demo import seed_demo_visits

        self.stdout.write(f"visits: {seed_demo_visits(seed=seed)}, {time.monotonic() - started:.1f}s")
        accounts = ", ".join(a[0] for a in DEMO_ACCOUNTS)
        self.stdout.write(f"demo accounts (password {DEMO_PASSWORD}, demo mode only): {accounts}")
