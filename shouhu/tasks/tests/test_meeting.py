"""The joint-meeting view: per member unit (sub-organisations rolled up) and per town, over a period."""

from __future__ import annotations

import io
import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from shouhu.audit.models import AuditEvent
from shouhu.org.models import Organization, OrgKind
from shouhu.tasks.meeting import Period, meeting_for, period_from, quarter_of
from shouhu.tasks.models import Task, TaskKind, TaskState

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Shanghai")
Q2_2020 = Period("quarter", date(2020, 4, 1), date(2020, 6, 30))
NOW = datetime(2026, 11, 29, 10, 0, tzinfo=TZ)
_source = itertools.count(1)


def at(day: int, hour: int = 8, month: int = 4) -> datetime:
    return datetime(2020, month, day, hour, 0, tzinfo=TZ)


def make_task(owner, *, created, due, state=TaskState.OPEN, accepted=None, closed=None, child=None, reason=""):  # noqa: ANN001, ANN201
    task = Task.objects.create(
        owner=owner,
        kind=TaskKind.REFERRAL,
        title="转介",
        due_at=due,
        state=state,
        source_type="meeting-test",
        source_id=str(next(_source)),
        accepted_at=accepted,
        closed_at=closed,
        child=child,
        decline_reason=reason,
    )
    Task.objects.filter(pk=task.pk).update(created_at=created)  # created_at is auto_now_add
    return task


@pytest.fixture
def world(make_child, hutang_village):  # noqa: ANN001, ANN201
    education = Organization.objects.get(code="education")
    school = Organization.objects.get(name="湖塘中心小学")
    town = Organization.objects.get(kind=OrgKind.TOWN_GOVERNMENT, regions__code="320412100000")
    child = make_child(hutang_village, name="李秘密")
    due = at(3)
    # Accepted and completed exactly at the deadline: both on time (the school, rolled up to education).
    make_task(school, created=at(1), due=due, state=TaskState.DONE, accepted=due, closed=due, child=child)
    # One second late for each: neither on time.
    make_task(
        education,
        created=at(1),
        due=due,
        state=TaskState.DONE,
        accepted=due + timedelta(seconds=1),
        closed=due + timedelta(seconds=1),
        child=child,
    )
    # Accepted on time, done late; then a declined one with its reason; then one still open (overdue now).
    make_task(school, created=at(2), due=due, state=TaskState.DONE, accepted=at(2, 20), closed=at(10), child=child)
    make_task(school, created=at(5), due=at(8), state=TaskState.DECLINED, closed=at(6), reason="不属于本校职责")
    make_task(school, created=at(6), due=at(9), child=child)
    # Received before the period: not counted as received, but overdue now.
    make_task(education, created=at(1, month=3), due=at(5, month=3))
    # The town government's own task (no child): counted under 湖塘镇.
    make_task(town, created=at(7), due=at(9), state=TaskState.DONE, accepted=at(7, 9), closed=at(8))
    return {"education": education, "school": school, "town": town}


def _row(rows, name):  # noqa: ANN001, ANN202
    return next(r for r in rows if r.name == name)


def test_on_time_definitions_and_roll_up(users, world):
    m = meeting_for(users["district"], period=Q2_2020, now=NOW)
    edu = _row(m.units, world["education"].name)
    assert edu.received == 5
    assert edu.accepted_on_time == 2  # at the deadline, and well before it; one second late is late
    assert edu.completed_on_time == 1  # done at the deadline; done late or one second late is late
    assert edu.completed == 3 and edu.declined == 1
    assert edu.overdue_now >= 2  # the open one in the period and the one from March
    # Medians over accepted (48h, 48h, 12h → 48) and completed tasks (48h, 48h, 216h → 48).
    assert edu.median_accept_hours == 48.0 and edu.median_complete_hours == 48.0
    school = _row(edu.children, "湖塘中心小学")
    assert school.received == 4 and school.accepted_on_time == 2 and school.declined == 1
    assert _row(edu.children, world["education"].name).received == 1
    assert [d.reason for d in edu.decline_list] == ["不属于本校职责"]
    local = _row(m.units, "镇（街道）、村（社区）")
    assert local.received == 1 and local.completed_on_time == 1
    hutang = _row(m.towns, "湖塘镇")
    assert hutang.received == 5  # four about the 湖塘 child, and the town's own; the declined one has no child


def test_escalations_are_counted_for_the_tasks_received_in_the_period(users, world):
    from shouhu.tasks.escalation import escalate_overdue

    assert _row(meeting_for(users["district"], period=Q2_2020, now=NOW).units, world["education"].name).escalated == 0
    escalate_overdue(now=NOW)  # the school's open one (April) and the bureau's (March) are late
    m = meeting_for(users["district"], period=Q2_2020, now=NOW)
    edu = _row(m.units, world["education"].name)
    assert edu.escalated == 1  # the March one was received before the period
    assert _row(edu.children, "湖塘中心小学").escalated == 1
    assert m.total.escalated == 1


def test_period_parsing():
    today = date(2026, 11, 29)
    assert period_from({}, today=today) == quarter_of(today) == Period("quarter", date(2026, 10, 1), date(2026, 12, 31))
    assert period_from({"period": "year", "year": "2025"}, today=today).end == date(2025, 12, 31)
    assert period_from({"period": "quarter", "year": "2026", "quarter": "1"}, today=today).end == date(2026, 3, 31)
    custom = period_from({"period": "custom", "start": "2026-01-05", "end": "2026-02-01"}, today=today)
    assert (custom.kind, custom.start, custom.end) == ("custom", date(2026, 1, 5), date(2026, 2, 1))
    assert period_from({"period": "custom", "start": "2026-02-01", "end": "2026-01-05"}, today=today).kind == "quarter"
    assert period_from({"period": "year", "year": "x"}, today=today).kind == "quarter"


def test_a_fixed_number_of_queries(users, world):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            meeting_for(users["district"], period=Q2_2020, now=NOW)
        return len(ctx)

    count()  # the actor's roles and regions, cached on the user
    before = count()
    for day in range(10, 20):
        make_task(
            world["school"],
            created=at(day),
            due=at(day + 2),
            state=TaskState.DONE,
            accepted=at(day, 9),
            closed=at(day + 1),
        )
    assert count() == before == 4  # tasks, organisations, towns, town and village regions


def test_district_sees_the_page_without_child_names(client, users, world):
    client.force_login(users["district"])
    response = client.get("/tasks/meeting/", {"period": "quarter", "year": "2020", "quarter": "2"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "区教育局" in body or world["education"].name in body
    assert "湖塘中心小学" in body and "湖塘镇" in body and "不属于本校职责" in body
    assert "李秘密" not in body and "<svg" in body and "style=" not in body.split("<svg", 1)[1].split("</svg>")[0]


def test_leader_sees_numbers_only(client, users, world):
    client.force_login(users["leader"])
    response = client.get("/tasks/meeting/", {"period": "quarter", "year": "2020", "quarter": "2"})
    body = response.content.decode()
    assert response.status_code == 200 and "湖塘中心小学" in body
    assert "不属于本校职责" not in body and "李秘密" not in body


def test_town_supervisor_sees_only_their_town(users, world):
    m = meeting_for(users["town_niutang"], period=Q2_2020, now=NOW)
    assert [t.name for t in m.towns] == ["牛塘镇"]
    assert _row(m.units, world["education"].name).received == 0


def test_village_director_is_refused(client, users, world):
    client.force_login(users["village_hutang"])
    assert client.get("/tasks/meeting/").status_code == 403
    assert client.get("/tasks/meeting.xlsx").status_code == 403


def test_export_is_watermarked_and_audited(client, users, world):
    client.force_login(users["district"])
    before = AuditEvent.objects.filter(action="export", actor_id=users["district"].pk).count()
    response = client.get("/tasks/meeting.xlsx", {"period": "quarter", "year": "2020", "quarter": "2"})
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert book.sheetnames == ["按成员单位", "按镇街", "退回情况", "说明"]
    units = book["按成员单位"]
    assert units.cell(3, 1).value == "成员单位" and units.cell(3, 2).value == "收到任务"
    rows = {r[0]: r for r in units.iter_rows(min_row=4, values_only=True)}
    assert rows[world["education"].name][1:3] == (5, 2)
    assert "内部资料" in (book.properties.description or "")
    text = "".join(str(c) for ws in book for row in ws.iter_rows(values_only=True) for c in row if c)
    assert "李秘密" not in text
    events = AuditEvent.objects.filter(action="export", actor_id=users["district"].pk).order_by("-seq")
    assert events.count() == before + 1 and events[0].detail["kind"] == "meeting"
