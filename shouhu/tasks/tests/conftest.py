from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from shouhu.org.models import Organization
from shouhu.tasks import services
from shouhu.tasks.models import TaskKind


@pytest.fixture
def referral(users, make_child, hutang_village):  # noqa: ANN001
    """A referral from 湖塘镇 to 教育局 about a 湖塘 child."""
    child = make_child(hutang_village)
    task = services.task_open(
        actor=users["town_hutang"],
        owner=Organization.objects.get(code="education"),
        kind=TaskKind.REFERRAL,
        child=child,
        title="控辍保学",
        due_at=timezone.now() + timedelta(days=5),
        source_type="test",
        source_id="page1",
    )
    task.requester = users["town_hutang"].organization
    task.save(update_fields=["requester"])
    return task
