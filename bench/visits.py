#!/usr/bin/env python
"""Visits benchmark: seed N children and their visit plans, then time a town's due list and the
district's overdue counts per town in-process next to the same results as raw SQL, and print one
JSON object.

    SHOUHU_DEMO=1 SHOUHU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/shouhu_bench_visits \
        .venv/bin/python bench/visits.py --children 1000000 --keep

Goals (the issue): a town's list <= 100 ms, the district's overdue counts per town <= 300 ms on
PostgreSQL. See bench/README.md. Only for a dedicated PostgreSQL database whose name contains "bench".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shouhu.settings")

import django  # noqa: E402

django.setup()

import ledger  # noqa: E402  (bench/ledger.py: the children's seeding)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from shouhu.org.access import scope_for  # noqa: E402
from shouhu.org.models import User  # noqa: E402
from shouhu.registry.models import Child  # noqa: E402
from shouhu.visits.models import VisitPlan  # noqa: E402
from shouhu.visits.review import TOWN_PREFIX, review_for  # noqa: E402
from shouhu.visits.selectors import due_filter, plans_for  # noqa: E402
from shouhu.visits.services import week_end  # noqa: E402

log = ledger.log
PAGE = 50
GOALS_MS = {"town_list": 100.0, "district_counts": 300.0}


# ----- seeding the plans ------------------------------------------------------------------------------------


def seed_plans(today: date) -> tuple[float, int]:
    """One plan for every active child that has none, in one INSERT ... SELECT (the plan's key is
    the child): next_due spread from -120 to +90 days around today, about 20 % overdue (before
    today), interval 7/14/30/90 days, region = the child's village. As services.refresh_plans
    keeps them, exited children have no plan."""
    started = time.monotonic()
    plan = VisitPlan._meta.db_table
    conn = ledger.pg_connect()
    with conn.transaction():
        conn.execute("SELECT setseed(0.2026)")
        # r1: overdue or not; r2: how far; r3: interval and risk; r4: first visit or not.
        cur = conn.execute(
            f"""
            INSERT INTO "{plan}" (child_id, region_id, risk_level, interval_days, next_due, first_visit,
                                  basis, last_visit_on, updated_at)
            SELECT id, region_id,
                   CASE WHEN r3 < 0.03 THEN 'red' WHEN r3 < 0.10 THEN 'orange' WHEN r3 < 0.25 THEN 'yellow'
                        WHEN r3 < 0.40 THEN 'green' ELSE '' END,
                   iv, due, r4 < 0.1,
                   CASE WHEN r4 < 0.1 THEN '首次走访：登记后 15 日内' ELSE '定期走访：每 ' || iv || ' 天' END,
                   CASE WHEN r4 < 0.1 THEN NULL ELSE due - iv END,
                   now()
            FROM (SELECT id, region_id, r3, r4,
                         CASE WHEN r3 < 0.10 THEN 7 WHEN r3 < 0.25 THEN 14 WHEN r3 < 0.75 THEN 30 ELSE 90 END AS iv,
                         CASE WHEN r1 < 0.2 THEN %(today)s::date - 1 - floor(r2 * 120)::int
                              ELSE %(today)s::date + floor(r2 * 91)::int END AS due
                  FROM (SELECT c.id, c.region_id, random() AS r1, random() AS r2, random() AS r3, random() AS r4
                        FROM registry_child c
                        WHERE c.status = 'active'
                          AND NOT EXISTS (SELECT 1 FROM "{plan}" p WHERE p.child_id = c.id)) AS x) AS y
        """,
            {"today": today},
        )
        added = cur.rowcount
    conn.execute(f'VACUUM (ANALYZE) "{plan}"')
    conn.close()
    return time.monotonic() - started, added


# ----- the raw floor ----------------------------------------------------------------------------------------


def like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Raw:
    """The same results, hand-written, through a bare psycopg connection."""

    def __init__(self, town_prefixes: tuple[str, ...], district_prefixes: tuple[str, ...]) -> None:
        self.conn = ledger.pg_connect()
        self.town = town_prefixes
        self.district = district_prefixes

    @staticmethod
    def _scope(prefixes: tuple[str, ...], column: str) -> tuple[str, list[str]]:
        # As the app filters (shouhu.visits.selectors.code_range_q): a range a btree index serves.
        sql = " OR ".join(f"{column} BETWEEN %s AND %s" for _ in prefixes)
        return f"({sql})", [bound for p in prefixes for bound in (p.ljust(12, "0"), p.ljust(12, "9"))]

    def town_list(self, today: date, end: date) -> tuple[tuple[int, int, int], list[Any]]:
        """The three tab counts in one query, then the overdue tab's first page with what a row shows."""
        scope, params = self._scope(self.town, "p.region_id")
        # Only children in the ledger have a plan (refresh_plans deletes the others): no join to count.
        where = f"WHERE {scope} AND p.next_due IS NOT NULL"
        cur = self.conn.cursor()
        cur.execute(
            "SELECT COUNT(*) FILTER (WHERE p.next_due < %s), "
            "COUNT(*) FILTER (WHERE p.next_due >= %s AND p.next_due <= %s), COUNT(*) "
            f"FROM visits_visitplan p {where}",
            [today, today, end, *params],
        )
        counts = cur.fetchone()
        cur.execute(
            "SELECT p.child_id, c.name, r.name, t.name, p.risk_level, p.basis, p.last_visit_on, p.next_due "
            "FROM visits_visitplan p JOIN registry_child c ON c.id = p.child_id "
            "JOIN org_region r ON r.code = p.region_id LEFT JOIN org_region t ON t.code = r.parent_id "
            f"{where} AND p.next_due < %s ORDER BY p.next_due, p.child_id LIMIT {PAGE}",
            [*params, today],
        )
        return counts, cur.fetchall()

    def district_overdue(self, today: date) -> dict[str, int]:
        """Overdue plans per town: one GROUP BY on the town prefix of the plan's region."""
        scope, params = self._scope(self.district, "p.region_id")
        cur = self.conn.cursor()
        cur.execute(
            f"SELECT left(p.region_id, {TOWN_PREFIX}), COUNT(*) FROM visits_visitplan p "
            f"WHERE {scope} AND p.next_due < %s GROUP BY 1",
            [*params, today],
        )
        return dict(cur.fetchall())

    def district_numbers(self, today: date, end: date) -> dict[str, tuple[int, ...]]:
        """Every plan number the review shows, per town (what plan_numbers + the per-town sum give)."""
        scope, params = self._scope(self.district, "p.region_id")
        cur = self.conn.cursor()
        cur.execute(
            f"SELECT left(p.region_id, {TOWN_PREFIX}), "
            "COUNT(*) FILTER (WHERE p.next_due IS NOT NULL), COUNT(*) FILTER (WHERE p.next_due < %s), "
            "COUNT(*) FILTER (WHERE p.next_due >= %s AND p.next_due <= %s), "
            "COUNT(*) FILTER (WHERE p.interval_days IS NOT NULL), "
            "COUNT(*) FILTER (WHERE p.interval_days IS NOT NULL AND p.last_visit_on IS NOT NULL "
            "AND p.next_due >= %s), "
            "COUNT(*) FILTER (WHERE p.first_visit AND p.next_due < %s) "
            f"FROM visits_visitplan p WHERE {scope} GROUP BY 1",
            [today, today, end, today, today, *params],
        )
        return {row[0]: tuple(row[1:]) for row in cur.fetchall()}


# ----- measurement ------------------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, float]:
    """Median and nearest-rank p95, in ms."""
    return {"median": round(statistics.median(values) * 1000, 2), "p95": ledger.pct(values, 0.95), "n": len(values)}


def measure(cases: dict[str, Callable[[], Any]], reps: int, warmup: int) -> dict[str, list[float]]:
    """Each case `reps` times, in rotation (the order shifts each round, so none is always first)."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(reps):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            cases[name]()
            out[name].append(time.perf_counter() - started)
    return out


def explain(label: str, run: Callable[[], Any]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every plan query `run` sends, to stderr."""
    with CaptureQueriesContext(connection) as ctx:
        run()
    for q in ctx.captured_queries:
        sql = q["sql"]
        if "visits_visitplan" not in sql:
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"--- {label}\n{sql}\n{plan}\n", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--children", type=int, required=True)
    ap.add_argument("--reps", type=int, default=100, help="timed repetitions of each case")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the children (and plans) this run seeded; otherwise they are removed at the end",
    )
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workers", type=int, default=2, help="processes generating the children (ledger.py)")
    ap.add_argument("--town-user", default="town_hutang")
    ap.add_argument("--district-user", default="district")
    ap.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE of the ORM's plan queries, to stderr")
    ap.add_argument("--no-migrate", action="store_true")
    args = ap.parse_args()

    db = settings.DATABASES["default"]
    if not settings.DEMO_MODE:
        sys.exit("bench: set SHOUHU_DEMO=1 (it creates the demo accounts and uses the demo data key)")
    if connection.vendor != "postgresql":
        sys.exit("bench: PostgreSQL only (the goals are PostgreSQL's)")
    if "bench" not in str(db["NAME"]).lower():
        sys.exit(f"bench: refusing database {db['NAME']!r}: use a dedicated one whose name contains 'bench'")

    if not args.no_migrate:
        call_command("migrate", verbosity=0, interactive=False)
    seed_seconds, added = ledger.seed(args.children, seed_value=args.seed, workers=args.workers)
    connection.close()
    today = timezone.localdate()
    end = week_end(today)
    plan_seconds, plans_added = seed_plans(today)
    total = Child.objects.count()
    plans = VisitPlan.objects.count()
    log(
        f"{total} children ({added} added in {seed_seconds:.1f}s), {plans} plans ({plans_added} added in "
        f"{plan_seconds:.1f}s)"
    )

    town_user = User.objects.get(username=args.town_user)
    district_user = User.objects.get(username=args.district_user)
    raw = Raw(scope_for(town_user).prefixes, scope_for(district_user).prefixes)
    town_client, district_client = Client(REMOTE_ADDR="127.0.0.1"), Client(REMOTE_ADDR="127.0.0.1")
    town_client.force_login(town_user)
    district_client.force_login(district_user)

    def get(client: Client, url: str) -> Any:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response

    def town_selectors() -> tuple[dict[str, int], list[VisitPlan]]:
        """What due_list asks of the selectors: the three tab counts and the overdue tab's first page."""
        base = plans_for(town_user)
        counts = {key: due_filter(base, key, today, end).count() for key in ("overdue", "week", "all")}
        return counts, list(due_filter(base, "overdue", today, end)[:PAGE])

    def district_counts() -> dict[str, int]:
        """The review page's numbers for the district (review_for), as overdue per town."""
        review = review_for(district_user, today=today)
        return {row.region.prefix: row.numbers.overdue for row in review.rows}

    # Same answers from the ORM and from the raw SQL.
    counts, page = town_selectors()
    (raw_overdue, raw_week, raw_all), raw_page = raw.town_list(today, end)
    assert counts == {"overdue": raw_overdue, "week": raw_week, "all": raw_all}, (counts, raw_overdue, raw_week)
    assert [p.child_id for p in page] == [r[0] for r in raw_page]
    by_town = district_counts()
    raw_by_town = raw.district_overdue(today)
    assert {k: v for k, v in by_town.items() if v} == raw_by_town, (by_town, raw_by_town)
    numbers = raw.district_numbers(today, end)
    assert {k: v[1] for k, v in numbers.items() if v[1]} == raw_by_town
    html = get(town_client, "/visits/?due=overdue").content.decode()
    assert page and page[0].child.name in html
    get(district_client, "/visits/review/")
    log(
        f"town {args.town_user}: {counts}; district {args.district_user}: {len(by_town)} towns, "
        f"{sum(by_town.values())} overdue"
    )

    if args.explain:
        explain("town due list (selectors)", town_selectors)
        explain("district review_for", district_counts)

    cases: dict[str, Callable[[], Any]] = {
        "town_page": lambda: get(town_client, "/visits/?due=overdue"),
        "town_selectors": town_selectors,
        "town_floor": lambda: raw.town_list(today, end),
        "district_counts": district_counts,
        "district_page": lambda: get(district_client, "/visits/review/"),
        "district_floor": lambda: raw.district_numbers(today, end),
        "district_overdue_floor": lambda: raw.district_overdue(today),
        "district_list_page": lambda: get(district_client, "/visits/?due=overdue"),
    }
    log(f"timing {len(cases)} cases x {args.reps}")
    timed = measure(cases, args.reps, args.warmup)
    s = {name: stats(values) for name, values in timed.items()}

    with CaptureQueriesContext(connection) as ctx:
        get(town_client, "/visits/?due=overdue")
    town_queries = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        district_counts()
    district_queries = len(ctx.captured_queries)

    if added and not args.keep:
        ledger.cleanup()  # TRUNCATE ... CASCADE also empties the plans

    def ratio(a: str, b: str) -> float | None:
        return round(s[a]["median"] / s[b]["median"], 2) if s[b]["median"] else None

    result = {
        "children": total,
        "plans": plans,
        "database": connection.vendor,
        "date": today.isoformat(),
        "town_user": args.town_user,
        "town_counts": counts,
        "towns": len(by_town),
        "district_overdue": sum(by_town.values()),
        "town_list_ms": s["town_page"],
        "town_list_selectors_ms": s["town_selectors"],
        "district_counts_ms": s["district_counts"],
        "district_page_ms": s["district_page"],
        "district_list_ms": s["district_list_page"],
        "floor": {
            "town_list_ms": s["town_floor"],
            "district_counts_ms": s["district_floor"],
            "district_overdue_only_ms": s["district_overdue_floor"],
        },
        "ratio": {  # medians
            "town_list": ratio("town_page", "town_floor"),
            "town_list_selectors": ratio("town_selectors", "town_floor"),
            "district_counts": ratio("district_counts", "district_floor"),
            "district_page": ratio("district_page", "district_floor"),
        },
        "goal_ms": GOALS_MS,
        "goal_met": {  # on the p95 (the median is in the figures above)
            "town_list": s["town_page"]["p95"] <= GOALS_MS["town_list"],
            "district_counts": s["district_counts"]["p95"] <= GOALS_MS["district_counts"],
        },
        "queries": {"town_page": town_queries, "district_counts": district_queries},
        "seed_seconds": {"children": round(seed_seconds, 1), "plans": round(plan_seconds, 1)},
        "reps": args.reps,
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
