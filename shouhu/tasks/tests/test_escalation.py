"""Overdue tasks escalate once to the unit's leadership, the supervising unit and whoever asked."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.notify.models import Notification
from shouhu.org.models import Organization, Role, User, UserRole
from shouhu.tasks import services
from shouhu.tasks.escalation import escalate_overdue
from shouhu.tasks.models import Task, TaskEventKind, TaskKind

pytestmark = pytest.mark.django_db


def _task(users, child, owner: Organization, *, due_in: timedelta, source_id: str, requester=True) -> Task:
    task = services.task_open(
        actor=users["town_hutang"],
        owner=owner,
        kind=TaskKind.REFERRAL,
        child=child,
        title="个案转介：辍学",
        due_at=timezone.now() + due_in,
        source_type="test",
        source_id=source_id,
    )
    if requester:
        task.requester = users["town_hutang"].organization
        task.save(update_fields=["requester"])
    return task


@pytest.fixture
def school():
    return Organization.objects.get(name="湖塘中心小学")


@pytest.fixture
def late(users, make_child, hutang_village, school):
    """A referral to the child's school, due an hour ago."""
    return _task(users, make_child(hutang_village), school, due_in=-timedelta(hours=1), source_id="late")


def _titles(user) -> list[str]:
    return list(Notification.objects.filter(recipient=user, kind="task_escalated").values_list("title", flat=True))


def test_a_late_task_escalates_once_to_the_school_its_bureau_and_the_requester(users, late, school):
    bureau_leader = User.objects.create(username="edu_head", organization=school.parent, full_name="局长")
    UserRole.objects.create(user=bureau_leader, role=Role.LEADER)
    counts = escalate_overdue()
    assert counts == {"checked": 1, "escalated": 1}
    late.refresh_from_db()
    assert late.escalated_at is not None
    assert list(late.events.values_list("kind", flat=True)) == [TaskEventKind.ESCALATED]
    assert AuditEvent.objects.filter(
        object_type="task", object_id=str(late.pk), actor_name="system", detail__step="escalated"
    ).exists()
    assert _titles(users["school_hutang"]) == ["本单位有 1 项待办超过办理期限，已升级督办"]
    assert _titles(users["education"]) == ["湖塘中心小学有 1 项待办超时未办结，请督办"]
    assert _titles(bureau_leader) == ["湖塘中心小学有 1 项待办超时未办结，已升级督办"]
    assert _titles(users["town_hutang"]) == ["本单位发起的 1 项转介超过办理期限仍未办结，已升级督办"]
    # Neither the joint-meeting office (the bureau supervises a school) nor an unrelated leader.
    assert _titles(users["district"]) == [] and _titles(users["leader"]) == []
    # No child data in any notification.
    assert not Notification.objects.filter(kind="task_escalated", title__contains=late.child.name).exists()
    # Exactly once: the next run finds nothing.
    assert escalate_overdue() == {"checked": 0, "escalated": 0}
    assert late.events.filter(kind=TaskEventKind.ESCALATED).count() == 1


def test_a_member_units_own_late_task_goes_to_the_joint_meeting_office(users, make_child, hutang_village):
    education = Organization.objects.get(code="education")
    task = _task(
        users, make_child(hutang_village), education, due_in=-timedelta(minutes=5), source_id="bureau", requester=False
    )
    escalate_overdue()
    task.refresh_from_db()
    assert task.escalated_at is not None
    assert _titles(users["district"]) == ["武进区教育局有 1 项待办超时未办结，请督办"]
    assert Notification.objects.get(recipient=users["district"], kind="task_escalated").url == "/tasks/supervision/"
    assert _titles(users["education"]) == ["本单位有 1 项待办超过办理期限，已升级督办"]
    assert Notification.objects.get(recipient=users["education"], kind="task_escalated").url == f"/tasks/{task.pk}/"


def test_nothing_escalates_before_the_deadline_after_the_answer_or_for_a_reports_own_clock(
    users, make_child, hutang_village, school
):
    child = make_child(hutang_village)
    not_yet = _task(users, child, school, due_in=timedelta(hours=1), source_id="soon")
    answered = _task(users, child, school, due_in=-timedelta(hours=2), source_id="answered")
    services.task_complete(actor=users["school_hutang"], task=answered, outcome="已返校")
    report_step = services.task_open(
        actor=users["district"],
        owner=users["town_hutang"].organization,
        kind=TaskKind.REPORT,
        title="评估帮扶",
        due_at=timezone.now() - timedelta(days=1),
        source_type="report_assessment",
        source_id="1",
    )
    assert escalate_overdue() == {"checked": 0, "escalated": 0}
    for task in (not_yet, answered, report_step):
        task.refresh_from_db()
        assert task.escalated_at is None
    # An hour later the first one is late.
    assert escalate_overdue(now=timezone.now() + timedelta(hours=2))["escalated"] == 1


def test_many_late_tasks_give_one_notification_per_group(users, make_child, hutang_village, school):
    child = make_child(hutang_village)
    for n in range(5):
        _task(users, child, school, due_in=-timedelta(hours=n + 1), source_id=f"many{n}")
    assert escalate_overdue()["escalated"] == 5
    assert _titles(users["school_hutang"]) == ["本单位有 5 项待办超过办理期限，已升级督办"]
    assert Notification.objects.get(recipient=users["school_hutang"], kind="task_escalated").url == "/tasks/?overdue=1"
    assert _titles(users["town_hutang"]) == ["本单位发起的 5 项转介超过办理期限仍未办结，已升级督办"]


def test_the_command_runs_the_check_at_a_given_moment(users, make_child, hutang_village, school):
    task = _task(users, make_child(hutang_village), school, due_in=timedelta(days=3), source_id="cmd")
    out = StringIO()
    call_command("escalate_tasks", "--now", (timezone.now() + timedelta(days=4)).isoformat(), stdout=out)
    assert json.loads(out.getvalue()) == {"checked": 1, "escalated": 1}
    task.refresh_from_db()
    assert task.escalated_at is not None


def test_the_supervision_page_lists_the_schools_late_task_without_the_child(client, users, late):
    escalate_overdue()
    client.force_login(users["education"])
    page = client.get("/tasks/supervision/").content.decode()
    assert "湖塘中心小学" in page and "未接收" in page
    assert late.child.name not in page
    client.force_login(users["school_hutang"])
    assert "本单位没有下属承办单位" in client.get("/tasks/supervision/").content.decode()
    client.force_login(users["district"])
    assert "湖塘中心小学" in client.get("/tasks/supervision/").content.decode()


def test_the_requested_page_shows_where_each_referral_stands(client, users, late):
    escalate_overdue()
    client.force_login(users["town_hutang"])
    page = client.get("/tasks/requested/").content.decode()
    assert "个案转介：辍学" in page and "湖塘中心小学" in page and "已升级督办" in page
    client.force_login(users["village_niutang"])
    assert "个案转介：辍学" not in client.get("/tasks/requested/").content.decode()


def test_the_inbox_loads_a_cards_answer_forms_on_demand(client, users, late):
    client.force_login(users["school_hutang"])
    page = client.get("/tasks/").content.decode()
    assert f"/tasks/{late.pk}/answers/" in page and 'name="handler"' not in page
    answers = client.get(f"/tasks/{late.pk}/answers/").content.decode()
    assert 'name="handler"' in answers and 'value="inbox"' in answers
    client.force_login(users["town_hutang"])  # the requester reads the task, but does not answer it
    assert client.get(f"/tasks/{late.pk}/answers/").status_code == 404
