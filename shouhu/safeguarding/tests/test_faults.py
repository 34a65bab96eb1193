"""Faults on the report chain: the notification channels down, a worker killed mid-run, and a
deadline check that fails between claiming an escalation and notifying it.

The channels are the real SMS gateway and WeCom adapters, configured through settings and the
environment as in production, against local fake servers (shouhu.notify.tests.conftest). The
same API submission sent three times at once is covered in test_api.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from shouhu.notify import services as notify_services
from shouhu.notify.models import Delivery, DeliveryState, Notification
from shouhu.notify.services import LEASE, _claim, deliver_pending
from shouhu.notify.tests.conftest import FakeServer, free_port
from shouhu.notify.tests.test_channels import WeComFake
from shouhu.org.models import Region
from shouhu.safeguarding import services
from shouhu.safeguarding.models import DeadlineKind, EventKind, Report, ReportDeadline

pytestmark = pytest.mark.django_db

CHILD_NAME = "王小红"
DESCRIPTION = "手臂和背部多处淤青，孩子说是被继父打的"


@pytest.fixture
def town(hutang_village):
    return Region.objects.get(code=hutang_village.code[:9] + "000")


@pytest.fixture
def servers() -> Iterator[Callable[..., FakeServer]]:
    started: list[FakeServer] = []

    def start(answer: Callable[[Any], tuple[int, Any]], port: int = 0) -> FakeServer:
        server = FakeServer(answer=answer, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def channels(monkeypatch):
    """SMS and WeCom enabled the way a deployment enables them (settings + environment), pointing
    at 127.0.0.1. The users have no phone or WeCom id field, so both use the username."""
    sms_port, wecom_port = free_port(), free_port()
    env = {
        "SHOUHU_SMS_GATEWAY_URL": f"http://127.0.0.1:{sms_port}/send",
        "SHOUHU_SMS_API_KEY": "k-test",
        "SHOUHU_SMS_PHONE_FIELD": "username",
        "SHOUHU_WECOM_BASE_URL": f"http://127.0.0.1:{wecom_port}",
        "SHOUHU_WECOM_CORP_ID": "ww-corp",
        "SHOUHU_WECOM_SECRET": "s3cret",
        "SHOUHU_WECOM_AGENT_ID": "1000002",
        "SHOUHU_WECOM_USERID_FIELD": "username",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with override_settings(
        SHOUHU_NOTIFY_CHANNELS=["inbox", "sms", "wecom"], SHOUHU_SITE_URL="https://shouhu.example.gov.cn"
    ):
        yield {"sms": sms_port, "wecom": wecom_port}


def _file(users, town, **extra) -> Report:
    report, created = services.report_submit(
        actor=users["school_hutang"],
        data={
            "situations": [4],
            "child_name": CHILD_NAME,
            "child_sex": "F",
            "child_age": 9,
            "found_at": timezone.now(),
            "place_region": town,
            "place": "学校门口",
            "description": DESCRIPTION,
            "danger_now": True,
            **extra,
        },
        idempotency_key="fault-1",
    )
    assert created
    return report


def _report_deliveries(report: Report):
    return Delivery.objects.filter(notification__url=f"/reports/{report.pk}/")


# ----- (a) the channels down -----------------------------------------------------------------------


def test_channels_down_the_report_and_the_inbox_stand_and_every_delivery_is_sent_when_they_return(
    users, town, channels, servers, django_capture_on_commit_callbacks
):
    # The SMS gateway is down (nothing listens); WeCom answers, but with 503 to everything.
    wecom_fake = WeComFake()
    wecom_state = {"up": False}
    servers(lambda seen: wecom_fake(seen) if wecom_state["up"] else (503, {}), port=channels["wecom"])

    # Filed as a school files it; after the commit, the first delivery attempt runs at once (huey's
    # immediate mode in tests) and fails.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = _file(users, town)
    assert callbacks, "the first delivery attempt is scheduled after the commit"
    stored = timezone.now()

    # The report is stored, routed and clocked regardless.
    report.refresh_from_db()
    assert report.police_station.name == "湖塘派出所" and report.urgent
    assert report.deadlines.filter(kind=DeadlineKind.ACCEPT).exists()
    # The in-app notifications exist: the station, the district police, the town, the district office,
    # the reporter's receipt.
    inbox = Notification.objects.filter(url=f"/reports/{report.pk}/")
    assert set(inbox.filter(kind="report_new").values_list("recipient__username", flat=True)) >= {
        "police_hutang",
        "police",
        "town_hutang",
        "district",
    }
    assert inbox.filter(kind="report_receipt", recipient=users["school_hutang"]).exists()

    # Two deliveries per notification (SMS, WeCom): every one failed once, a retry scheduled.
    deliveries = _report_deliveries(report)
    total = deliveries.count()
    assert total == 2 * inbox.count() and total >= 10
    assert set(deliveries.values_list("channel", flat=True)) == {"sms", "wecom"}
    for d in deliveries:
        assert (d.state, d.attempts) == (DeliveryState.FAILED, 1), d
        assert stored - timedelta(seconds=5) < d.next_attempt_at - timedelta(minutes=1) <= stored
        assert d.last_error.startswith("connection failed") if d.channel == "sms" else d.last_error == "HTTP 503"

    # Still down a minute later: retried, failed again, the next try two minutes on.
    second = max(deliveries.values_list("next_attempt_at", flat=True))
    assert deliver_pending(now=second) == {"failed": total}
    assert set(deliveries.values_list("attempts", flat=True)) == {2}
    assert min(deliveries.values_list("next_attempt_at", flat=True)) == second + timedelta(minutes=2)
    assert deliver_pending(now=second + timedelta(minutes=1)) == {}  # backoff: not due yet

    # Both come back.
    sms = servers(lambda seen: (200, {"ok": True}), port=channels["sms"])
    wecom_state["up"] = True
    assert deliver_pending(now=second + timedelta(minutes=2)) == {"sent": total}
    assert set(deliveries.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert deliver_pending(now=second + timedelta(days=1)) == {}  # nothing sent twice
    assert len(sms.seen) == total // 2
    sent_texts = [s.body["text"] for s in sms.seen]
    assert all(f"https://shouhu.example.gov.cn/reports/{report.pk}/" in t for t in sent_texts)
    # Nothing of the child or the facts left the platform.
    outgoing = json.dumps([s.body for s in sms.seen], ensure_ascii=False)
    assert CHILD_NAME not in outgoing and "淤青" not in outgoing and "湖塘中心小学" not in outgoing
    assert Report.objects.filter(pk=report.pk).count() == 1


# ----- (b) a worker killed mid-run ----------------------------------------------------------------


def test_a_delivery_claimed_by_a_worker_that_died_is_sent_after_its_lease(users, town, channels, servers):
    servers(lambda seen: (200, {"ok": True}), port=channels["sms"])
    wecom = servers(WeComFake(), port=channels["wecom"])
    report = _file(users, town)
    assert services.announce_reports() == 1  # the worker's fan-out; its on-commit delivery not run:
    deliveries = _report_deliveries(report)  # the worker was about to take them
    total = deliveries.count()
    assert set(deliveries.values_list("state", flat=True)) == {DeliveryState.PENDING}

    # A worker claims the batch (the service's own claim step), then is killed before sending.
    now = timezone.now()
    claimed = _claim(now, None)
    assert {d.pk for d in claimed} == set(deliveries.values_list("pk", flat=True))
    assert set(deliveries.values_list("attempts", flat=True)) == {1}
    assert set(deliveries.values_list("next_attempt_at", flat=True)) == {now + LEASE}

    # Another worker, while the lease holds: nothing to take.
    assert deliver_pending(now=now + LEASE - timedelta(seconds=1)) == {}
    assert not wecom.seen
    # The lease ran out: the next run sends every one; none lost, none twice.
    assert deliver_pending(now=now + LEASE) == {"sent": total}
    assert set(deliveries.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert set(deliveries.values_list("attempts", flat=True)) == {2}
    assert deliver_pending(now=now + LEASE * 3) == {}
    sends = [s for s in wecom.seen if s.path == "/cgi-bin/message/send"]
    assert len(sends) == total // 2

    # The dead worker's late word (an attempt it never finished) cannot overwrite what was sent.
    stale = claimed[0]
    Delivery.objects.filter(pk=stale.pk, attempts=stale.attempts, state__in=("pending", "failed")).update(
        state=DeliveryState.FAILED
    )
    assert Delivery.objects.get(pk=stale.pk).state == DeliveryState.SENT


def test_a_deadline_check_failing_while_notifying_rolls_back_and_escalates_once_next_time(users, town, monkeypatch):
    """Claiming an escalation, its timeline event and its notifications are one transaction: a check
    interrupted between the claim and the notification leaves the deadline unescalated."""
    report = _file(users, town)
    due = ReportDeadline.objects.get(report=report, kind=DeadlineKind.ACCEPT).due_at
    real_notify = notify_services.notify
    calls = {"n": 0}

    def notify_failing_once(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the worker died here")
        return real_notify(**kwargs)

    monkeypatch.setattr(notify_services, "notify", notify_failing_once)
    later = due + timedelta(minutes=1)
    with pytest.raises(RuntimeError):
        services.check_deadlines(later)
    accept = ReportDeadline.objects.get(report=report, kind=DeadlineKind.ACCEPT)
    assert accept.escalated_at is None  # the claim was rolled back with the failed notification
    assert not report.events.filter(kind=EventKind.ESCALATED).exists()
    assert not Notification.objects.filter(kind="report_escalated").exists()

    assert services.check_deadlines(later) == {"checked": 1, "escalated": 1}
    assert services.check_deadlines(later) == {"checked": 0, "escalated": 0}
    assert services.check_deadlines(later + timedelta(hours=1)) == {"checked": 0, "escalated": 0}
    accept.refresh_from_db()
    assert accept.escalated_at == later
    assert report.events.filter(kind=EventKind.ESCALATED).count() == 1
    escalated = Notification.objects.filter(kind="report_escalated")
    assert set(escalated.values_list("recipient__username", flat=True)) >= {"police", "district"}
    assert escalated.filter(recipient=users["police"]).count() == 1
    assert not escalated.filter(recipient=users["school_hutang"]).exists()
