#!/usr/bin/env python
"""Tasks benchmark (issue #7): with N children and ~20,000 referral tasks over the last year, time
the unit inbox and the joint-meeting view next to the raw-SQL floor; print one JSON object.

    createdb -h 127.0.0.1 -U postgres shouhu_bench_cases
    SHOUHU_DEMO=1 SHOUHU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/shouhu_bench_cases \
        .venv/bin/python bench/cases.py --children 100000 --tasks 20000

Children are seeded by bench/ledger.py's seeding (reused when present). The bench's tasks
(source_type "bench") are replaced on every run. Only for a database whose name contains "bench".
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ledger  # noqa: E402  (sets up Django)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from shouhu.org.models import Organization, OrgKind, User  # noqa: E402
from shouhu.registry.models import Child  # noqa: E402
from shouhu.tasks.meeting import Period, meeting_for  # noqa: E402
from shouhu.tasks.models import Task, TaskEvent, TaskEventKind, TaskKind, TaskState  # noqa: E402
from shouhu.tasks.selectors import inbox_for  # noqa: E402

log, summary = ledger.log, ledger.summary


def _owners() -> list[tuple[Organization, float]]:
    """Who receives referrals, with weights: the education bureau and its schools busiest."""
    units = {o.code: o for o in Organization.objects.filter(kind=OrgKind.MEMBER_UNIT)}
    weights: list[tuple[Organization, float]] = []
    for code, w in (
        ("education", 12),
        ("public_security", 5),
        ("health", 4),
        ("civil_affairs", 6),
        ("human_resources", 2),
        ("justice", 3),
        ("womens_federation", 2),
        ("youth_league", 1),
    ):
        if code in units:
            weights.append((units[code], w))
    for org in Organization.objects.filter(kind__in=[OrgKind.SCHOOL, OrgKind.POLICE_STATION, OrgKind.HOSPITAL]):
        weights.append((org, {OrgKind.SCHOOL: 0.6, OrgKind.POLICE_STATION: 0.3, OrgKind.HOSPITAL: 0.2}[org.kind]))
    for org in Organization.objects.filter(kind=OrgKind.TOWN_GOVERNMENT):
        weights.append((org, 0.4))
    return weights


def seed_tasks(n: int, *, seed: int, now: Any) -> float:
    """Replace the bench's tasks: n referrals over the last year, with their events (bulk_create)."""
    started = time.monotonic()
    rng = random.Random(seed)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM tasks_taskevent WHERE task_id IN (SELECT id FROM tasks_task WHERE source_type = 'bench')"
        )
        cursor.execute("DELETE FROM tasks_task WHERE source_type = 'bench'")
    owners = _owners()
    orgs, weights = [o for o, _ in owners], [w for _, w in owners]
    child_ids = list(Child.objects.order_by("?").values_list("id", flat=True)[: max(n, 1000)])
    tasks: list[Task] = []
    plans: list[list[tuple[str, Any, str]]] = []
    for i in range(n):
        created = now - timedelta(days=rng.uniform(0, 365))
        due = created + timedelta(days=rng.choice((3, 5, 7, 15)))
        owner = rng.choices(orgs, weights)[0]
        fate = rng.random()
        accepted = closed = None
        state, reason = TaskState.OPEN, ""
        events: list[tuple[str, Any, str]] = []
        age_h = (now - created).total_seconds() / 3600
        accept_h = rng.lognormvariate(3.0, 1.0)  # median ≈ 20 h
        if fate < 0.08 and age_h > 48:
            closed, state, reason = (
                created + timedelta(hours=min(accept_h, age_h)),
                TaskState.DECLINED,
                "不属于本单位职责，建议转交",
            )
            events.append((TaskEventKind.DECLINED, closed, reason))
        elif accept_h < age_h:
            accepted = created + timedelta(hours=accept_h)
            state = TaskState.IN_PROGRESS
            events.append((TaskEventKind.ACCEPTED, accepted, ""))
            done_h = accept_h + rng.lognormvariate(4.3, 0.9)  # median ≈ 3 days after accepting
            if fate < 0.93 and done_h < age_h:
                closed, state = created + timedelta(hours=done_h), TaskState.DONE
                events.append((TaskEventKind.COMPLETED, closed, "已办结"))
        tasks.append(
            Task(
                owner=owner,
                child_id=rng.choice(child_ids),
                kind=TaskKind.REFERRAL,
                title="转介",
                source_type="bench",
                source_id=str(i),
                due_at=due,
                state=state,
                created_at=created,
                accepted_at=accepted,
                closed_at=closed,
                decline_reason=reason,
                requester=None,
            )
        )
        plans.append(events)
    fields = [Task._meta.get_field("created_at"), TaskEvent._meta.get_field("at")]
    for f in fields:
        f.auto_now_add = False  # keep the generated times (a bench only)
    try:
        with transaction.atomic():
            Task.objects.bulk_create(tasks, batch_size=2000)
            TaskEvent.objects.bulk_create(
                [
                    TaskEvent(task=t, kind=k, at=at, organization_id=t.owner_id, note=note)
                    for t, events in zip(tasks, plans, strict=True)
                    for k, at, note in events
                ],
                batch_size=5000,
            )
    finally:
        for f in fields:
            f.auto_now_add = True
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task; ANALYZE tasks_taskevent")
    return time.monotonic() - started


def timed(fn: Any, reps: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)  # seconds (ledger.summary reports ms)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--children", type=int, default=100_000)
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--inbox-reps", type=int, default=200)
    ap.add_argument("--meeting-reps", type=int, default=20)
    ap.add_argument("--unit", default="education", help="demo account whose inbox is measured")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    db = settings.DATABASES["default"]
    if not settings.DEMO_MODE:
        sys.exit("bench: set SHOUHU_DEMO=1")
    if "bench" not in str(db["NAME"]).lower() or connection.vendor != "postgresql":
        sys.exit(f"bench: refusing database {db['NAME']!r}: a dedicated PostgreSQL database named *bench*")
    call_command("migrate", verbosity=0, interactive=False)
    seed_children_s, added = ledger.seed(args.children, seed_value=args.seed, workers=args.workers)
    now = timezone.now()
    seed_tasks_s = seed_tasks(args.tasks, seed=args.seed, now=now)
    log(f"{Child.objects.count()} children, {Task.objects.count()} tasks, {TaskEvent.objects.count()} events")

    unit_user = User.objects.get(username=args.unit)
    district = User.objects.get(username="district")
    today = timezone.localdate()
    year = Period("custom", today - timedelta(days=365), today)

    def inbox_orm() -> tuple[int, list[Task]]:
        qs = inbox_for(unit_user)
        return qs.count(), list(qs[:50])

    raw = ledger.pg_connect()
    cur = raw.cursor()

    def inbox_raw() -> tuple[int, list[Any]]:
        cur.execute(
            "SELECT count(*) FROM tasks_task WHERE owner_id = %s AND state IN ('open', 'in_progress')",
            [unit_user.organization_id],
        )
        count = cur.fetchone()[0]
        cur.execute(
            "SELECT t.*, c.*, r.*, n.* FROM tasks_task t LEFT JOIN registry_child c ON c.id = t.child_id "
            "LEFT JOIN org_region r ON r.code = c.region_id LEFT JOIN org_needtype n ON n.id = t.need_type_id "
            "WHERE t.owner_id = %s AND t.state IN ('open', 'in_progress') ORDER BY t.due_at, t.id LIMIT 50",
            [unit_user.organization_id],
        )
        return count, cur.fetchall()

    start, end = year.bounds()

    def meeting_raw() -> list[Any]:
        cur.execute(
            "SELECT t.owner_id, t.kind, t.state, t.due_at, t.created_at, t.accepted_at, t.closed_at, c.region_id, "
            "n.name, t.decline_reason FROM tasks_task t LEFT JOIN registry_child c ON c.id = t.child_id "
            "LEFT JOIN org_needtype n ON n.id = t.need_type_id WHERE (t.created_at >= %s AND t.created_at < %s) "
            "OR (t.state IN ('open', 'in_progress') AND t.due_at < %s)",
            [start, end, now],
        )
        rows = cur.fetchall()
        cur.execute("SELECT id, name, kind, parent_id, is_active FROM org_organization")
        cur.fetchall()
        return rows

    assert inbox_orm()[0] == inbox_raw()[0]
    m = meeting_for(district, period=year, now=now)
    raw_rows = meeting_raw()
    log(f"inbox {inbox_orm()[0]} open; meeting: {m.total.received} received, {len(raw_rows)} rows")

    unit_client, district_client = Client(), Client()
    unit_client.force_login(unit_user)
    district_client.force_login(district)
    leader_client = Client()
    leader_client.force_login(User.objects.get(username="leader"))

    def page(client: Client, url: str, params: dict[str, str] | None = None) -> Any:
        def get() -> None:
            response = client.get(url, params or {})
            assert response.status_code == 200, response.status_code

        return get

    year_params = year.as_params()
    results = {
        "inbox_selector": timed(inbox_orm, args.inbox_reps),
        "inbox_raw_sql": timed(inbox_raw, args.inbox_reps),
        "inbox_page": timed(page(unit_client, "/tasks/"), args.inbox_reps // 2),
        "meeting_aggregation": timed(lambda: meeting_for(district, period=year, now=now), args.meeting_reps),
        "meeting_raw_sql": timed(meeting_raw, args.meeting_reps),
        "meeting_page": timed(page(district_client, "/tasks/meeting/", year_params), args.meeting_reps),
        "meeting_xlsx": timed(
            page(district_client, "/tasks/meeting.xlsx", year_params), max(3, args.meeting_reps // 4), warmup=1
        ),
    }
    out = {
        "bench": "cases",
        "database": "postgresql",
        "children": Child.objects.count(),
        "tasks": Task.objects.count(),
        "task_events": TaskEvent.objects.count(),
        "children_added": added,
        "seed_children_s": round(seed_children_s, 1),
        "seed_tasks_s": round(seed_tasks_s, 1),
        "inbox_unit": args.unit,
        "inbox_open": inbox_orm()[0],
        "meeting_period": [year.start.isoformat(), year.end.isoformat()],
        "meeting_received": m.total.received,
        "meeting_units": len(m.units),
        "meeting_towns": len(m.towns),
        "goals_ms": {"inbox_p95": 100, "meeting": 1000},
        "ms": {name: summary(values) for name, values in results.items()},
    }
    out["goals_met"] = {
        "inbox_p95": max(out["ms"]["inbox_selector"]["p95_ms"], out["ms"]["inbox_page"]["p95_ms"]) <= 100,
        "meeting": max(out["ms"]["meeting_aggregation"]["p95_ms"], out["ms"]["meeting_page"]["p95_ms"]) <= 1000,
    }
    raw.close()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
