"""The unit's answers through the API, and the home page's response figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from shouhu.api.auth import issue_token
from shouhu.tasks.models import Task, TaskKind, TaskState
from shouhu.tasks.selectors import response_figures

pytestmark = pytest.mark.django_db


def _post(user, path, body):  # noqa: ANN001, ANN202
    response = Client().post(
        "/api/v1" + path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {issue_token(user)}"
    )
    assert response.status_code < 500, response.content
    return response


def test_accept_progress_complete_return_the_task_as_listed(users, referral):
    education = users["education"]
    response = _post(education, f"/tasks/{referral.pk}/accept", {"handler": "王老师"})
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "in_progress" and body["handler"] == "王老师" and body["id"] == referral.pk
    listed = Client().get("/api/v1/tasks", HTTP_AUTHORIZATION=f"Bearer {issue_token(education)}").json()["items"]
    assert listed == [body]
    assert (
        _post(education, f"/tasks/{referral.pk}/progress", {"note": "请补充", "info_request": True}).status_code == 200
    )
    done = _post(education, f"/tasks/{referral.pk}/complete", {"outcome": "已返校"})
    assert done.status_code == 200 and done.json()["state"] == "done"


def test_accepting_twice_is_a_conflict_with_a_chinese_message(users, referral):
    _post(users["education"], f"/tasks/{referral.pk}/accept", {"handler": "王老师"})
    again = _post(users["education"], f"/tasks/{referral.pk}/accept", {"handler": "李老师"})
    assert again.status_code == 409 and "已接收" in again.json()["detail"]


def test_a_stale_version_is_a_conflict(users, referral):
    response = _post(users["education"], f"/tasks/{referral.pk}/accept", {"handler": "王老师", "version": 99})
    assert response.status_code == 409 and "version" in response.json()["errors"]


def test_decline(users, referral):
    response = _post(users["education"], f"/tasks/{referral.pk}/decline", {"reason": "应由学校办理"})
    assert response.status_code == 200 and response.json()["state"] == "declined"


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("accept", {"handler": "  "}, "handler"),
        ("decline", {"reason": ""}, "reason"),
        ("progress", {"note": ""}, "note"),
        ("complete", {}, "outcome"),
        ("accept", {"handler": "x" * 41}, "handler"),
    ],
)
def test_bad_input_is_a_422_in_the_api_error_shape(users, referral, action, body, field):
    response = _post(users["education"], f"/tasks/{referral.pk}/{action}", body)
    assert response.status_code == 422
    assert field in response.json()["errors"] and response.json()["detail"].startswith("请求内容有误")
    assert Task.objects.get(pk=referral.pk).state == TaskState.OPEN


@pytest.mark.parametrize("username", ["town_hutang", "police", "district"])
def test_another_organisations_task_is_a_404(users, referral, username):
    response = _post(users[username], f"/tasks/{referral.pk}/accept", {"handler": "某人"})
    assert response.status_code == 404
    assert Task.objects.get(pk=referral.pk).accepted_at is None


def test_a_role_without_the_inbox_is_refused(users, referral):
    assert _post(users["leader"], f"/tasks/{referral.pk}/accept", {"handler": "某人"}).status_code == 403


def test_response_figures_on_both_sides_of_on_time(users, referral):
    owner, now = referral.owner, timezone.now()
    Task.objects.filter(pk=referral.pk).delete()

    def task(n, *, created_days_ago, accept_hours=None, done_hours=None, due_hours, state=TaskState.OPEN):  # noqa: ANN001, ANN202
        created = now - timedelta(days=created_days_ago)
        t = Task.objects.create(
            owner=owner,
            kind=TaskKind.REFERRAL,
            title=f"t{n}",
            source_type="fig",
            source_id=str(n),
            due_at=created + timedelta(hours=due_hours),
            state=state,
            accepted_at=created + timedelta(hours=accept_hours) if accept_hours else None,
            closed_at=created + timedelta(hours=done_hours) if done_hours else None,
        )
        Task.objects.filter(pk=t.pk).update(created_at=created)

    task(1, created_days_ago=10, accept_hours=2, done_hours=20, due_hours=24, state=TaskState.DONE)  # on time
    task(2, created_days_ago=10, accept_hours=4, done_hours=48, due_hours=24, state=TaskState.DONE)  # late
    task(3, created_days_ago=5, accept_hours=6, due_hours=24, state=TaskState.IN_PROGRESS)  # open, past due
    task(4, created_days_ago=1, due_hours=72)  # open, not yet due: unknown
    task(5, created_days_ago=120, accept_hours=1, done_hours=2, due_hours=24, state=TaskState.DONE)  # outside
    figures = response_figures(organization_id=owner.pk, now=now)
    assert figures.received == 4 and figures.accepted == 3 and figures.completed == 2
    assert figures.median_accept == timedelta(hours=4)
    assert figures.median_complete == timedelta(hours=34)
    assert (figures.on_time, figures.due, figures.on_time_percent) == (1, 3, 33)
    home = Client()
    home.force_login(users["education"])
    body = home.get("/").content.decode()
    assert "按期办结率（1/3）" in body and "33%" in body and "4小时" in body and "1天10小时" in body
