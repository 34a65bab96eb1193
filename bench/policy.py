#!/usr/bin/env python
"""Policy engine benchmark (issue #3): pure evaluation rate, and the nightly re-evaluation of N
children stored in the configured database, next to the raw floor (the same fact-reading SELECTs
through a bare cursor). Prints one JSON object.

    SHOUHU_DEMO=1 SHOUHU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/shouhu_bench \\
        .venv/bin/python bench/policy.py --children 100000

Seeds through bench/ledger.py's seeder (COPY on PostgreSQL) when the database holds fewer than N
children. Only for a dedicated database: it writes proposals and evaluation states.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shouhu.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from shouhu.policy.engine import evaluate  # noqa: E402
from shouhu.policy.facts import ChildFacts, Disability, Facts, Parent, Situation  # noqa: E402
from shouhu.policy.models import EvaluationState, Proposal, ProposalState  # noqa: E402
from shouhu.policy.params import DEFAULT_PARAMS  # noqa: E402
from shouhu.policy.services import reevaluate_all  # noqa: E402
from shouhu.registry.demo import generate_children  # noqa: E402
from shouhu.registry.models import Child, LedgerStatus  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synthetic_facts(n: int, today: date) -> list[Facts]:
    """Facts of n demo children, built in memory (the pure benchmark touches no database)."""
    from types import SimpleNamespace

    villages = [
        SimpleNamespace(code=f"320412100{i:03d}", kind="village", name="示例村", parent=SimpleNamespace(name="示例镇"))
        for i in range(1, 20)
    ]
    out = []
    for rows in generate_children(n=n, seed=11, villages=villages, today=today):
        c = rows.child
        disability = Disability(c["disability_grade"], c["disability_type"]) if c.get("disability_grade") else None
        parents = tuple(
            Parent(
                m["relation"],
                tuple(
                    Situation(
                        kind=s["kind"],
                        since=s.get("since"),
                        until=s.get("until"),
                        disability_grade=s.get("disability_grade"),
                        disability_type=s.get("disability_type") or "",
                    )
                    for s in m["situations"]
                ),
            )
            for m in rows.members
        )
        status = rows.household["economic_status"]
        out.append(
            Facts(
                as_of=today,
                child=ChildFacts(
                    birth_date=c["birth_date"],
                    hukou_type=c["hukou_type"],
                    disability=disability,
                    serious_illness=c.get("health") == "ill",
                    household_assistance=frozenset({status} - {"ordinary"}),
                    street_child=False,
                    lives_with_parents=c["lives_with_parents"],
                    school_stage=c["school_stage"],
                ),
                parents=parents,
            )
        )
    return out


def pure_rate(facts: list[Facts], rounds: int) -> dict[str, float]:
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for f in facts:
            evaluate(f, DEFAULT_PARAMS)
        rates.append(len(facts) / (time.perf_counter() - started))
    return {
        "pure_children_per_s": round(statistics.median(rates)),
        "pure_rounds": rounds,
        "pure_min_per_s": round(min(rates)),
        "pure_max_per_s": round(max(rates)),
    }


def raw_floor(batch: int) -> float:
    """The fact-reading SELECTs of the nightly run, by hand, for every active child."""
    started = time.perf_counter()
    ids = list(Child.objects.filter(status=LedgerStatus.ACTIVE).order_by("pk").values_list("pk", flat=True))
    ph = "%s"
    with connection.cursor() as cursor:
        for start in range(0, len(ids), batch):
            chunk = [str(i) if connection.vendor == "postgresql" else i.hex for i in ids[start : start + batch]]
            marks = ",".join([ph] * len(chunk))
            cursor.execute(
                "SELECT c.id, c.birth_date, c.hukou_type, c.health, c.disability_grade, c.disability_type, c.illness,"
                " c.street_child, c.lives_with_parents, c.school_stage, h.economic_status FROM registry_child c"
                f" LEFT JOIN registry_household h ON h.id = c.household_id WHERE c.id IN ({marks})",
                chunk,
            )
            cursor.fetchall()
            cursor.execute(
                f"SELECT id, child_id, relation FROM registry_familymember WHERE child_id IN ({marks})"
                " AND relation IN ('father', 'mother')",
                chunk,
            )
            cursor.fetchall()
            cursor.execute(
                "SELECT s.member_id, s.kind, s.since, s.until, s.disability_grade, s.disability_type"
                " FROM registry_parentsituation s JOIN registry_familymember m ON m.id = s.member_id"
                f" WHERE m.child_id IN ({marks}) AND m.relation IN ('father', 'mother')",
                chunk,
            )
            cursor.fetchall()
            cursor.execute(f"SELECT child_id, digest FROM policy_evaluationstate WHERE child_id IN ({marks})", chunk)
            cursor.fetchall()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--pure", type=int, default=20_000, help="children in the pure benchmark")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    today = timezone.localdate()
    result: dict[str, object] = {"database": connection.vendor}
    log(f"pure: building {args.pure} facts")
    result.update(pure_rate(synthetic_facts(args.pure, today), args.rounds))

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from ledger import seed  # bench/ledger.py: COPY-based seeding on PostgreSQL

    seed_seconds, added = seed(args.children, seed_value=2026, workers=args.workers)
    active = Child.objects.filter(status=LedgerStatus.ACTIVE).count()
    result.update({"children": active, "seed_seconds": round(seed_seconds, 1), "seeded": added})

    log("nightly, cold: no child evaluated before (the bulk path)")
    EvaluationState.objects.all().delete()
    Proposal.objects.filter(state=ProposalState.PENDING).delete()
    started = time.perf_counter()
    cold = reevaluate_all(as_of=today, batch=args.batch)
    result["nightly_cold_seconds"] = round(time.perf_counter() - started, 2)
    result["nightly_cold_changed"] = cold["changed"]

    warm = []
    floors = []
    for _ in range(3):
        log("nightly, warm: nothing changed since the last run")
        started = time.perf_counter()
        counts = reevaluate_all(as_of=today, batch=args.batch)
        warm.append(time.perf_counter() - started)
        floors.append(raw_floor(args.batch))
    result.update(
        {
            "nightly_warm_seconds": round(statistics.median(warm), 2),
            "nightly_warm_changed": counts["changed"],
            "raw_floor_seconds": round(statistics.median(floors), 2),
            "warm_ratio": round(statistics.median(warm) / statistics.median(floors), 2),
            "nightly_children_per_s": round(active / statistics.median(warm)),
        }
    )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
