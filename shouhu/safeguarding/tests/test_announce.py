"""A new report is committed first and announced right after: the worker fans out its notifications
once, and a worker or queue that is down delays them without losing any.

In tests huey runs tasks at once (immediate mode), so "after the commit" is the on-commit callback
that `report_submit` registers; `django_capture_on_commit_callbacks(execute=False)` is a queue that
never ran the task (the worker down).
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from shouhu.api.auth import issue_token
from shouhu.notify import services as notify_services
from shouhu.notify.models import Delivery, Notification
from shouhu.org.models import Region
from shouhu.safeguarding import services, tasks
from shouhu.safeguarding.models import Report

pytestmark = pytest.mark.django_db

API = "/api/v1"
AUDIENCE = {"police_hutang", "police", "town_hutang", "district"}


@pytest.fixture
def town(hutang_village):
    return Region.objects.get(code=hutang_village.code[:9] + "000")


def _file(users, place, key: str = "") -> Report:
    report, created = services.report_submit(
        actor=users["school_hutang"],
        data={
            "situations": [4],
            "child_name": "王小红",
            "child_sex": "F",
            "child_age": 9,
            "found_at": timezone.now(),
            "place_region": place,
            "place": "学校门口",
            "description": "手臂多处淤青",
            "danger_now": True,
        },
        idempotency_key=key,
    )
    assert created
    return report


def _told(report: Report) -> set[str]:
    return set(
        Notification.objects.filter(url=f"/reports/{report.pk}/", kind="report_new").values_list(
            "recipient__username", flat=True
        )
    )


def _notifications(report: Report):
    return Notification.objects.filter(url=f"/reports/{report.pk}/")


def test_the_report_is_committed_first_and_announced_once_right_after(users, town, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = _file(users, town)
        # Inside the submission's transaction: stored, nobody told yet.
        assert not _notifications(report).exists()
    assert callbacks
    report.refresh_from_db()
    assert report.announced_at is not None
    assert _told(report) >= AUDIENCE
    assert _notifications(report).filter(kind="report_receipt", recipient=users["school_hutang"]).exists()
    count = _notifications(report).count()
    # The minute sweep, a second task, the management of a busy queue: nothing is sent twice.
    assert services.announce_reports() == 0
    tasks.announce_missed_reports.call_local()
    tasks.announce_new_reports.call_local()
    assert _notifications(report).count() == count


def test_with_the_worker_down_nothing_is_lost_and_the_sweep_announces_it_once(
    users, town, django_capture_on_commit_callbacks
):
    # The queue never runs the task: the report stands with its clocks, nobody told yet.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = _file(users, town)
    assert len(callbacks) == 1
    report.refresh_from_db()
    assert report.announced_at is None and report.deadlines.count() == 3
    assert not _notifications(report).exists()

    # The worker is back: the minute sweep announces it, with its deliveries pending in the outbox.
    tasks.announce_missed_reports.call_local()
    report.refresh_from_db()
    assert report.announced_at is not None and _told(report) >= AUDIENCE
    assert Delivery.objects.filter(notification__url=f"/reports/{report.pk}/").exists()
    count = _notifications(report).count()
    # The task the queue kept runs late: it finds the report announced already.
    callbacks[0]()
    assert services.announce_reports() == 0
    assert _notifications(report).count() == count


def test_a_queue_that_refuses_the_task_fails_no_submission(
    users, town, monkeypatch, django_capture_on_commit_callbacks
):
    def down() -> None:
        raise ConnectionError("the queue is down")

    monkeypatch.setattr(tasks, "announce_new_reports", down)
    token = issue_token(users["school_hutang"])
    body = {
        "situations": [4],
        "child": {"name": "王小红", "sex": "F", "age": 9},
        "found_at": timezone.now().isoformat(),
        "place_region_code": town.code,
        "description": "手臂多处淤青",
    }
    from django.test import Client

    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            API + "/reports", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
    assert response.status_code == 201
    report = Report.objects.get(pk=response.json()["id"])
    assert report.announced_at is None and not _notifications(report).exists()
    assert services.announce_reports() == 1 and _told(report) >= AUDIENCE


def test_a_fan_out_that_fails_midway_rolls_back_and_is_retried(
    users, town, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        report = _file(users, town)
    real = notify_services.notify_many

    def failing(*args, **kwargs):
        raise RuntimeError("the worker died here")

    monkeypatch.setattr(notify_services, "notify_many", failing)
    with pytest.raises(RuntimeError):
        services.announce_reports()
    report.refresh_from_db()
    assert report.announced_at is None  # the claim went with the failed fan-out
    monkeypatch.setattr(notify_services, "notify_many", real)
    assert services.announce_reports() == 1 and _told(report) >= AUDIENCE


def test_waiting_reports_go_out_as_one_batch_each_to_its_own_audience(
    users, town, niutang_village, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    niutang = Region.objects.get(code=niutang_village.code[:9] + "000")
    with django_capture_on_commit_callbacks(execute=False):
        hutang_reports = [_file(users, town) for _i in range(3)]
        niutang_report = _file(users, niutang)
    # Claim, recipients (two queries), duplicate check, notifications, deliveries: the same few
    # statements for four reports as for one.
    with django_assert_max_num_queries(12):
        assert services.announce_reports() == 4
    for report in hutang_reports:
        assert _told(report) >= AUDIENCE and "town_niutang" not in _told(report)
    told = _told(niutang_report)
    assert "town_niutang" in told and "town_hutang" not in told and "police_hutang" not in told


def test_a_submission_costs_few_statements(users, town, django_assert_max_num_queries):
    """The API submission: the token (with its user's roles), the region, the station, then one
    transaction — report, clocks, timeline, audit event (the chain head locked last)."""
    from django.test import Client

    token = issue_token(users["school_hutang"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = {
        "situations": [2],
        "child": {"name": "小军", "sex": "M", "age": 8},
        "found_at": timezone.now().isoformat(),
        "place_region_code": town.code,
        "description": "孩子独自在家多日",
    }

    def send(key: str) -> int:
        return client.post(
            API + "/reports", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
        ).status_code

    assert send("warm-up") == 201  # the token's last use is written once a minute, not on every call
    with django_assert_max_num_queries(14):
        assert send("counted") == 201
    with django_assert_max_num_queries(10):
        assert send("counted") == 200  # the retry meets the first at the insert (its unique key)
    assert Report.objects.filter(idempotency_key="counted").count() == 1


def test_a_server_process_hands_the_worker_one_task_for_a_burst_of_reports(monkeypatch):
    """Outside immediate mode the hand-over runs on a thread of the server process, after a short
    window: five commits at once are one task (which announces all five), a later one another."""
    import threading
    import time

    handed = []
    done = threading.Event()

    def enqueue() -> None:
        handed.append(time.monotonic())
        done.set()

    monkeypatch.setattr(services, "_enqueue_announcement", enqueue)
    announcer = services._Announcer()
    for _i in range(5):
        announcer.poke()
    assert done.wait(5)
    time.sleep(services.ANNOUNCE_WINDOW_SECONDS * 4)
    assert len(handed) == 1
    done.clear()
    announcer.poke()
    assert done.wait(5) and len(handed) == 2
