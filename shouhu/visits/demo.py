"""Demo visits: risk levels and a few months of submitted visits in the two demo towns, so the due
lists and the town's review show realistic numbers (children visited in time, some overdue, some
never visited, a few records returned and a few drafts). Demo mode only (called by `seed_demo`),
deterministic for a seed."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from shouhu.org.models import User
from shouhu.registry.models import Child, LedgerStatus
from shouhu.visits import services
from shouhu.visits.models import CHECKLIST_KEYS, RiskLevel, Visit, VisitMode, VisitPlan, VisitState

DEMO_TOWNS = {"320412100": "town_hutang", "320412102": "town_niutang"}  # town prefix -> supervisor account
DEMO_DIRECTORS = ("village_hutang", "village_niutang")

RISK_REASONS = {
    RiskLevel.RED: ["父母均外出，照护人年迈多病，儿童多次独自在家。", "照护人长期住院，儿童暂无人照看。"],
    RiskLevel.ORANGE: [
        "照护人身体较差，儿童近期情绪低落。",
        "父母联系不稳定，近两个月未联系。",
        "儿童出勤不稳定，学校反映多次缺课。",
    ],
    RiskLevel.YELLOW: ["照护基本到位，需关注学习情况。", "家庭经济困难，照护人精力有限。"],
    RiskLevel.GREEN: ["照护良好，父母每周联系。", "走访评估后情况稳定。"],
}
NOTES = [
    "儿童在家，照护人陪同，居住环境整洁。",
    "电话联系照护人，了解儿童近况，学习正常。",
    "儿童放学后在家写作业，祖母照看。",
    "与班主任沟通，儿童在校表现稳定。",
    "照护人反映儿童近期睡眠不好，已提醒关注。",
    "家中用电、用火安全，已再次提醒。",
]
MET_SETS = [["child", "grandparent"], ["child", "carer"], ["child", "mother"], ["grandparent"], ["child"]]


def _at(day: date, rng: random.Random, late: bool) -> datetime:
    moment = datetime.combine(day + timedelta(days=1 if late else 0), time(rng.randint(9, 19), rng.randint(0, 59)))
    return min(timezone.make_aware(moment), timezone.now())


def _visit(rng: random.Random, child: Any, visitor: User, day: date) -> Visit:
    concern = rng.random() < 0.15
    checklist = {key: {"ok": True, "note": ""} for key in CHECKLIST_KEYS}
    if concern:
        checklist[rng.choice(CHECKLIST_KEYS)] = {"ok": False, "note": "需持续关注"}
    mode = VisitMode.PHONE if rng.random() < 0.2 else VisitMode.HOME
    return Visit(
        child_id=child.pk,
        visitor=visitor,
        organization_id=visitor.organization_id,
        idempotency_key=uuid.UUID(int=rng.getrandbits(128), version=4),
        state=VisitState.SUBMITTED,
        visited_on=day,
        mode=mode,
        met=rng.choice(MET_SETS) if mode == VisitMode.HOME else ["carer"],
        checklist=checklist,
        child_lives_alone=False,
        parents_contact_weekly=rng.random() < 0.7,
        carer_performance=rng.choice(["good", "good", "fair"]),
        # Some records without an assessment, so the review's quality hint is not always 100%.
        guardianship_assessment="" if rng.random() < 0.1 else rng.choice(["good", "good", "fair", "poor"]),
        notes=rng.choice(NOTES),
        submitted_at=_at(day, rng, late=rng.random() < 0.1),
    )


def seed_demo_visits(*, seed: int, today: date | None = None) -> dict[str, int]:
    """Plans for every child; in the demo towns risk levels, visits, returns and drafts. A second
    run only refreshes the plans (the visits are already there)."""
    from shouhu.visits.tasks import refresh_all, send_digest

    today = today or timezone.localdate()
    if Visit.objects.exists():
        return {"plans": refresh_all(today=today)["written"], "risks": 0, "visits": 0, "returned": 0, "drafts": 0}
    rng = random.Random(seed)
    accounts = {
        u.username: u
        for u in User.objects.filter(username__in=[*DEMO_TOWNS.values(), *DEMO_DIRECTORS])
        .select_related("organization")
        .prefetch_related("organization__regions")
    }
    director_villages: dict[str, User] = {}
    for name in DEMO_DIRECTORS:
        director = accounts.get(name)
        if director is not None and director.organization is not None:
            for code in director.organization.regions.values_list("code", flat=True):
                director_villages[code] = director

    def visitor_for(child: Any) -> User | None:
        return director_villages.get(child.region_id) or accounts.get(DEMO_TOWNS[child.region_id[:9]])

    children = [
        c
        for prefix in DEMO_TOWNS
        for c in Child.objects.filter(status=LedgerStatus.ACTIVE, region__code__startswith=prefix)
        .only("pk", "region_id", "registered_at")
        .order_by("pk")
    ]
    # A ledger kept for a while: registered weeks or months ago, so first visits can be late too.
    for child in children:
        child.registered_at = timezone.now() - timedelta(days=rng.randint(20, 400), hours=rng.randint(0, 10))
    Child.objects.bulk_update(children, ["registered_at"], batch_size=500)

    counts = {"risks": 0, "visits": 0, "returned": 0, "drafts": 0}
    levels = [RiskLevel.RED] * 6 + [RiskLevel.ORANGE] * 12 + [RiskLevel.YELLOW] * 10 + [RiskLevel.GREEN] * 8
    with transaction.atomic():
        for child, level in zip(rng.sample(children, min(len(levels), len(children))), levels, strict=False):
            actor = visitor_for(child)
            services.risk_set(actor=actor, child=child, level=level, reason=rng.choice(RISK_REASONS[level]))
            counts["risks"] += 1
    refresh_all(today=today)

    plans = VisitPlan.objects.in_bulk([c.pk for c in children])
    visits: list[Visit] = []
    for child in children:
        plan, visitor = plans.get(child.pk), visitor_for(child)
        if plan is None or visitor is None:
            continue
        registered = timezone.localtime(child.registered_at).date()
        interval = plan.interval_days
        roll = rng.random()
        if interval is None:
            # No regular visits: most got their first visit, some long after the deadline.
            if roll < 0.7:
                visits.append(_visit(rng, child, visitor, min(today, registered + timedelta(days=rng.randint(2, 12)))))
            continue
        if roll < 0.15:
            continue  # never visited: the first visit is overdue
        if roll < 0.35:
            last = today - timedelta(days=interval + rng.randint(1, 40))  # overdue
        else:
            last = today - timedelta(days=rng.randint(0, interval - 1))  # within the interval
        day = last
        while day >= registered and len(visits) < 5000:
            visits.append(_visit(rng, child, visitor, day))
            day -= timedelta(days=interval + rng.randint(-3, 5))
            if rng.random() < 0.25:
                break
    Visit.objects.bulk_create(visits, batch_size=500)
    counts["visits"] = len(visits)

    # The towns have returned a few records with a comment, and the director has drafts open.
    for prefix, supervisor_name in DEMO_TOWNS.items():
        supervisor = accounts.get(supervisor_name)
        recent = list(
            Visit.objects.filter(
                child__region__code__startswith=prefix, state=VisitState.SUBMITTED, visitor__isnull=False
            )
            .exclude(visitor=supervisor)
            .order_by("-visited_on", "id")[:2]
        )
        for visit in recent:
            services.visit_return(actor=supervisor, visit=visit, comment="请补充见到的人和监护状况评价。")
            counts["returned"] += 1
    for name in DEMO_DIRECTORS:
        director = accounts.get(name)
        if director is None:
            continue
        mine = [c for c in children if director_villages.get(c.region_id) == director][:2]
        for child in mine:
            services.visit_save(
                actor=director,
                child=child,
                key=uuid.UUID(int=rng.getrandbits(128), version=4),
                submit=False,
                data={"visited_on": today, "mode": VisitMode.HOME, "met": ["child"], "notes": "走访途中，稍后补充。"},
            )
            counts["drafts"] += 1
    counts["plans"] = refresh_all(today=today)["written"]
    counts["digests"] = send_digest(today=today)["notified"]
    return counts
