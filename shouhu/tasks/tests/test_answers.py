"""A unit answers a task: accept with a handler, progress, decline with a reason, complete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from shouhu.org.models import Organization
from shouhu.tasks import services
from shouhu.tasks.models import TaskEventKind, TaskKind, TaskState

pytestmark = pytest.mark.django_db


@pytest.fixture
def referral(users, make_child, hutang_village):
    child = make_child(hutang_village)
    return services.task_open(
        actor=users["town_hutang"],
        owner=Organization.objects.get(code="education"),
        kind=TaskKind.REFERRAL,
        child=child,
        title="控辍保学",
        due_at=timezone.now() + timedelta(days=5),
        source_type="test",
        source_id="r1",
    )


def test_accept_progress_complete(users, referral):
    education = users["education"]
    with pytest.raises(PermissionDenied):
        services.task_accept(actor=users["police"], task=referral, handler="某人")
    with pytest.raises(ValidationError):
        services.task_accept(actor=education, task=referral, handler=" ")
    task = services.task_accept(actor=education, task=referral, handler="王老师")
    assert task.state == TaskState.IN_PROGRESS and task.accepted_at and task.handler == "王老师"
    services.task_progress(actor=education, task=task, note="已联系家长", info_request=False)
    done = services.task_complete(actor=education, task=task, outcome="已返校就读")
    assert done.state == TaskState.DONE and done.closed_at
    assert [e.kind for e in done.events.all()] == [
        TaskEventKind.ACCEPTED,
        TaskEventKind.PROGRESS,
        TaskEventKind.COMPLETED,
    ]
    with pytest.raises(ValidationError):
        services.task_complete(actor=education, task=done, outcome="again")


def test_decline_returns_to_the_requester(users, referral):
    from shouhu.notify.models import Notification

    referral.requester = users["town_hutang"].organization
    referral.save(update_fields=["requester"])
    with pytest.raises(ValidationError):
        services.task_decline(actor=users["education"], task=referral, reason="")
    task = services.task_decline(actor=users["education"], task=referral, reason="不属于本单位职责，应转学校")
    assert task.state == TaskState.DECLINED and task.decline_reason.startswith("不属于")
    assert Notification.objects.filter(recipient=users["town_hutang"], kind="task_declined").exists()


def test_the_unit_sees_the_child_only_while_the_task_is_open(users, referral):
    from shouhu.registry.selectors import children_visible_to

    education = users["education"]
    assert children_visible_to(education).filter(pk=referral.child_id).exists()
    services.task_accept(actor=education, task=referral, handler="王老师")
    assert children_visible_to(education).filter(pk=referral.child_id).exists()
    services.task_complete(actor=education, task=referral, outcome="已返校")
    assert not children_visible_to(education).filter(pk=referral.child_id).exists()
