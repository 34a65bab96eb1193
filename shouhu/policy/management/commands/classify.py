"""Evaluate a facts document without touching the database; print the result as JSON."""

import json
import sys

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from shouhu.org.catalogue import ROUTES
from shouhu.org.seed_units import MEMBER_UNITS
from shouhu.policy.engine import evaluate
from shouhu.policy.facts import FactsError, facts_from_json


class Command(BaseCommand):
    help = "Classify a child from a JSON facts document (FILE or - for standard input); see docs/policy.md."
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--json", dest="path", required=True, help="facts file, or - for standard input")

    def handle(self, *args, path, **options):
        try:
            raw = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        except OSError as exc:
            self.stderr.write(f"cannot read {path}: {exc}")
            sys.exit(2)
        try:
            facts = facts_from_json(json.loads(raw))
        except json.JSONDecodeError as exc:
            self.stderr.write(f"$: not valid JSON ({exc.msg}, line {exc.lineno})")
            sys.exit(2)
        except FactsError as exc:
            self.stderr.write(f"{exc.field}: {exc.message}")
            sys.exit(2)
        routes = {need: units[0] for need, units in ROUTES.items()}
        names = {code: full for code, _short, full, _text in MEMBER_UNITS}
        names.update({"village_committee": _("村（居）民委员会"), "town_government": _("镇（街道）人民政府")})
        self.stdout.write(json.dumps(evaluate(facts).to_json(routes, names), ensure_ascii=False, indent=2))
