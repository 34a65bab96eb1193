"""The inbox and a task's page: the owner answers, the organisation that asked reads, others get a 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from shouhu.tasks.models import Task, TaskEventKind, TaskKind, TaskState

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # noqa: ANN001
    client = Client()
    client.force_login(user)
    return client


def test_owner_sees_the_task_in_the_inbox_with_its_state(users, referral):
    client = _client(users["education"])
    body = client.get("/tasks/").content.decode()
    assert "控辍保学" in body and "待处理" in body and f"/tasks/{referral.pk}/answers/" in body
    # The card's answer forms load when it is opened.
    assert f"/tasks/{referral.pk}/accept/" in client.get(f"/tasks/{referral.pk}/answers/").content.decode()


def test_inbox_filters_by_kind_and_overdue(users, referral):
    Task.objects.create(
        owner=referral.owner,
        kind=TaskKind.SUPERVISED_ITEM,
        title="逾期督办",
        source_type="test",
        source_id="late",
        due_at=timezone.now() - timedelta(days=1),
    )
    client = _client(users["education"])
    assert "逾期督办" not in client.get("/tasks/?kind=referral").content.decode()
    overdue = client.get("/tasks/?overdue=1").content.decode()
    assert "逾期督办" in overdue and "控辍保学" not in overdue and "text-danger" in overdue


def test_owner_accepts_reports_progress_and_completes(users, referral):
    client = _client(users["education"])
    response = client.post(
        f"/tasks/{referral.pk}/accept/", {"handler": "王老师", "version": referral.version, "back": "detail"}
    )
    assert response.status_code == 302 and response["Location"] == f"/tasks/{referral.pk}/"
    client.post(f"/tasks/{referral.pk}/progress/", {"note": "请补充家长电话", "info_request": "on"})
    client.post(f"/tasks/{referral.pk}/complete/", {"outcome": "已返校就读"})
    task = Task.objects.get(pk=referral.pk)
    assert task.state == TaskState.DONE and task.handler == "王老师"
    assert [e.kind for e in task.events.all()] == [
        TaskEventKind.ACCEPTED,
        TaskEventKind.INFO_REQUESTED,
        TaskEventKind.COMPLETED,
    ]
    page = client.get(f"/tasks/{referral.pk}/").content.decode()
    assert "请补充家长电话" in page and "已返校就读" in page and "已办结" in page


def test_owner_declines_with_a_reason_and_an_empty_reason_is_refused(users, referral):
    client = _client(users["education"])
    client.post(f"/tasks/{referral.pk}/decline/", {"reason": ""})
    assert Task.objects.get(pk=referral.pk).state == TaskState.OPEN
    client.post(f"/tasks/{referral.pk}/decline/", {"reason": "应由学校办理"})
    assert Task.objects.get(pk=referral.pk).state == TaskState.DECLINED


def test_the_existing_close_flow_still_cancels(users, referral):
    _client(users["education"]).post(
        f"/tasks/{referral.pk}/close/", {"state": "cancelled", "outcome": "不需要了", "version": referral.version}
    )
    assert Task.objects.get(pk=referral.pk).state == TaskState.CANCELLED


def test_requester_reads_the_task_without_the_answer_forms(users, referral):
    response = _client(users["town_hutang"]).get(f"/tasks/{referral.pk}/")
    body = response.content.decode()
    assert response.status_code == 200 and "控辍保学" in body
    assert "/accept/" not in body and "/complete/" not in body


def test_requester_cannot_answer(users, referral):
    response = _client(users["town_hutang"]).post(f"/tasks/{referral.pk}/accept/", {"handler": "某人"})
    assert response.status_code == 404
    assert Task.objects.get(pk=referral.pk).accepted_at is None


@pytest.mark.parametrize("username", ["police", "village_niutang", "town_niutang"])
def test_an_outsider_gets_a_404(users, referral, username):
    client = _client(users[username])
    assert client.get(f"/tasks/{referral.pk}/").status_code == 404
    assert client.post(f"/tasks/{referral.pk}/complete/", {"outcome": "x"}).status_code == 404


def test_a_role_without_the_inbox_gets_a_403(users, referral):
    assert _client(users["leader"]).get(f"/tasks/{referral.pk}/").status_code == 403


def test_inbox_query_count_does_not_grow_with_tasks(users, referral, django_assert_max_num_queries):
    for n in range(10):
        Task.objects.create(
            owner=referral.owner,
            kind=TaskKind.SUPERVISED_ITEM,
            title=f"事项{n}",
            source_type="test",
            source_id=f"q{n}",
            due_at=timezone.now() + timedelta(days=n),
        )
    client = _client(users["education"])
    client.get("/tasks/")
    with django_assert_max_num_queries(15):
        client.get("/tasks/")
