"""The town's review of visits: numbers per village and per town, directors' workload, scope."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.org.models import Region
from shouhu.visits import services
from shouhu.visits.models import CHECKLIST_KEYS, Visit, VisitPlan
from shouhu.visits.review import review_for

FULL_CHECKLIST = {key: {"ok": True, "note": ""} for key in CHECKLIST_KEYS}


@pytest.fixture(autouse=True)
def _no_other_plans(db):  # noqa: ANN001
    """Only the children a test makes have plans (the session world's children have none, but a
    plan left by anything else would blur the exact numbers)."""
    VisitPlan.objects.all().delete()


@pytest.fixture
def today() -> date:
    return timezone.localdate()


def set_plan(child, **values) -> VisitPlan:  # noqa: ANN001
    """The child's plan, refreshed, then with the stored values a test needs (the review reads
    only what is stored)."""
    services.refresh_plans([child.pk])
    VisitPlan.objects.filter(child=child).update(**values)
    return VisitPlan.objects.get(child=child)


def submit_visit(actor, child, visited_on, *, complete=True) -> Visit:  # noqa: ANN001
    data = {
        "visited_on": visited_on,
        "mode": "home",
        "met": ["child"],
        "checklist": FULL_CHECKLIST if complete else {},
        "guardianship_assessment": "good" if complete else "",
    }
    visit, _ = services.visit_save(actor=actor, child=child, data=data, key=uuid.uuid4(), submit=True)
    return visit


def village_row(review, region: Region):  # noqa: ANN001
    return next(row for row in review.rows if row.region.code == region.code)


def test_overdue_week_and_first_visits_each_side_of_the_due_date(users, hutang_village, make_child, today):
    on_due_day = make_child(hutang_village, name="甲")
    set_plan(on_due_day, next_due=today, first_visit=False, interval_days=30, last_visit_on=today - timedelta(30))
    a_day_late = make_child(hutang_village, name="乙")
    set_plan(
        a_day_late,
        next_due=today - timedelta(1),
        first_visit=False,
        interval_days=30,
        last_visit_on=today - timedelta(31),
    )
    first_late = make_child(hutang_village, name="丙")
    set_plan(first_late, next_due=today - timedelta(3), first_visit=True, interval_days=None, last_visit_on=None)
    first_in_time = make_child(hutang_village, name="丁")
    set_plan(first_in_time, next_due=services.week_end(today), first_visit=True, interval_days=None, last_visit_on=None)
    later = make_child(hutang_village, name="戊")
    set_plan(
        later,
        next_due=services.week_end(today) + timedelta(1),
        first_visit=False,
        interval_days=90,
        last_visit_on=today - timedelta(60),
    )
    no_date = make_child(hutang_village, name="己")
    set_plan(no_date, next_due=None, first_visit=False, interval_days=None, last_visit_on=today - timedelta(10))

    n = village_row(review_for(users["town_hutang"], today=today), hutang_village).numbers
    assert n.planned == 5  # every plan with a due date
    assert n.overdue == 2  # the day after the due date, and the late first visit; not on the day
    assert n.week == 2  # due today, and due on Sunday
    assert n.first_overdue == 1
    assert (n.periodic, n.covered) == (3, 2)  # on the due day and later are within the interval
    assert n.coverage == 67


def test_a_child_who_left_the_ledger_is_not_counted(
    users, hutang_village, make_child, today, django_capture_on_commit_callbacks
):
    from shouhu.registry import services as registry

    child = make_child(hutang_village)
    set_plan(child, next_due=today - timedelta(5))
    # Leaving the ledger deletes the plan (the review counts plans, without joining the children).
    with django_capture_on_commit_callbacks(execute=True):
        registry.child_exit(
            actor=users["district"],
            child=child,
            reason="parent_returned",
            exit_date=today,
            note="",
            version=child.version,
        )
    n = village_row(review_for(users["town_hutang"], today=today), hutang_village).numbers
    assert (n.planned, n.overdue) == (0, 0)


def test_a_returned_visit_does_not_count_as_the_last_visit(users, hutang_village, make_child, today):
    director, supervisor = users["village_hutang"], users["town_hutang"]
    child = make_child(hutang_village, actor=director)
    services.risk_set(actor=director, child=child, level="red", reason="独自在家")
    visit = submit_visit(director, child, today - timedelta(2))
    services.refresh_plans([child.pk])
    n = village_row(review_for(supervisor, today=today), hutang_village).numbers
    assert (n.periodic, n.covered, n.returned, n.submitted) == (1, 1, 0, 1)

    services.visit_return(actor=supervisor, visit=visit, comment="请补充见到的人")
    services.refresh_plans([child.pk])  # what visit_return schedules on commit
    plan = VisitPlan.objects.get(child=child)
    assert plan.last_visit_on is None and plan.first_visit
    n = village_row(review_for(supervisor, today=today), hutang_village).numbers
    assert (n.periodic, n.covered, n.returned, n.submitted) == (1, 0, 1, 0)


def test_quality_hint_is_the_share_of_complete_submitted_visits(users, hutang_village, make_child, today):
    director = users["village_hutang"]
    child = make_child(hutang_village, actor=director)
    submit_visit(director, child, today - timedelta(3))
    submit_visit(director, child, today - timedelta(2), complete=False)
    submit_visit(director, child, today - timedelta(100))  # older than the hint's 90 days
    draft, _ = services.visit_save(
        actor=director,
        child=child,
        key=uuid.uuid4(),
        submit=False,
        data={"visited_on": today, "checklist": FULL_CHECKLIST, "guardianship_assessment": "good"},
    )
    n = village_row(review_for(users["town_hutang"], today=today), hutang_village).numbers
    assert (n.submitted, n.complete, n.quality) == (2, 1, 50)


def test_director_workload_counts_their_villages_and_drafts(users, hutang_village, make_child, today):
    director = users["village_hutang"]
    other_village = (
        Region.objects.filter(code__startswith="320412100", level=5)
        .exclude(code=hutang_village.code)
        .order_by("code")
        .first()
    )
    mine = make_child(hutang_village, actor=director)
    set_plan(mine, next_due=today - timedelta(4))
    set_plan(make_child(hutang_village, actor=director), next_due=today + timedelta(20))
    set_plan(make_child(other_village), next_due=today - timedelta(4))
    services.visit_save(actor=director, child=mine, key=uuid.uuid4(), submit=False, data={"visited_on": today})

    review = review_for(users["town_hutang"], today=today)
    rows = {d.user.username: d for d in review.directors}
    assert set(rows) == {"village_hutang"}  # the other town's director is not listed
    d = rows["village_hutang"]
    assert [r.code for r in d.regions] == [hutang_village.code]
    assert (d.numbers.planned, d.numbers.overdue, d.drafts, d.returned_pending) == (2, 1, 1, 0)
    assert review.total.overdue == 2 and review.total.planned == 3


def test_town_supervisor_sees_only_their_own_towns_villages(users, hutang_village, niutang_village, make_child, today):
    set_plan(make_child(niutang_village, name="牛塘孩子"), next_due=today - timedelta(1))
    review = review_for(users["town_hutang"], today=today)
    codes = {row.region.code for row in review.rows}
    assert hutang_village.code in codes
    assert all(code.startswith("320412100") for code in codes)
    assert review.total.overdue == 0 and not review.by_town


def test_district_sees_towns_and_drills_down(users, hutang_village, niutang_village, make_child, today):
    set_plan(make_child(hutang_village), next_due=today - timedelta(1))
    set_plan(make_child(niutang_village), next_due=today)
    review = review_for(users["district"], today=today)
    assert review.by_town and not review.directors
    towns = {row.region.code: row.numbers for row in review.rows}
    assert towns["320412100000"].overdue == 1 and towns["320412102000"].week == 1
    drilled = review_for(users["district"], town_code="320412102000", today=today)
    assert not drilled.by_town and drilled.drilled and drilled.town.code == "320412102000"
    assert {row.region.code[:9] for row in drilled.rows} == {"320412102"}
    assert drilled.total.week == 1 and drilled.total.overdue == 0


# ----- the page ------------------------------------------------------------------------------------


def test_review_page_for_the_town_supervisor(client, users, hutang_village, niutang_village, make_child, today):
    director = users["village_hutang"]
    child = make_child(hutang_village, actor=director, name="湖塘小明")
    submit_visit(director, child, today - timedelta(1))
    other = make_child(niutang_village, actor=users["village_niutang"], name="牛塘小红")
    submit_visit(users["village_niutang"], other, today - timedelta(1))
    client.force_login(users["town_hutang"])
    before = AuditEvent.objects.filter(object_type="visit_review").count()
    response = client.get(reverse("visits:review"))
    assert response.status_code == 200
    html = response.content.decode()
    assert hutang_village.name in html and niutang_village.name not in html
    assert "湖塘小明" in html and "牛塘小红" not in html
    assert "儿童主任工作量" in html
    events = list(AuditEvent.objects.filter(object_type="visit_review").order_by("seq"))
    assert len(events) == before + 1
    assert events[-1].action == "view" and events[-1].detail["children"] == [str(child.pk)]


def test_review_page_refuses_another_town_and_the_village_director(client, users):
    client.force_login(users["town_hutang"])
    assert client.get(reverse("visits:review") + "?town=320412102000").status_code == 404
    assert client.get(reverse("visits:review") + "?town=nonsense").status_code == 404
    client.force_login(users["village_hutang"])
    assert client.get(reverse("visits:review")).status_code == 403


def test_review_page_without_visits_records_no_view(client, users):
    client.force_login(users["district"])
    before = AuditEvent.objects.filter(object_type="visit_review").count()
    response = client.get(reverse("visits:review"))
    assert response.status_code == 200 and "湖塘镇" in response.content.decode()
    assert AuditEvent.objects.filter(object_type="visit_review").count() == before


def test_review_page_query_count_does_not_grow_with_children(client, users, hutang_village, make_child, today):
    client.force_login(users["town_hutang"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("visits:review")).status_code == 200
        # The session middleware's periodic write is not the page's.
        return len(
            [
                q
                for q in ctx.captured_queries
                if "django_session" not in q["sql"] and not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
            ]
        )

    director = users["village_hutang"]
    child = make_child(hutang_village, actor=director)
    submit_visit(director, child, today - timedelta(1))
    services.refresh_plans([child.pk])
    few = queries()
    for i in range(6):
        extra = make_child(hutang_village, actor=director, name=f"儿童{i}")
        submit_visit(director, extra, today - timedelta(i + 1), complete=bool(i % 2))
        set_plan(extra, next_due=today - timedelta(i))
    assert queries() == few
    assert few <= 20
