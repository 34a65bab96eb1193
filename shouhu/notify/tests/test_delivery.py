"""The delivery loop: retries with backoff, giving up, and one sender per delivery."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from shouhu.notify.channels import DeliveryError, PermanentDeliveryError
from shouhu.notify.models import Delivery, DeliveryState, Notification
from shouhu.notify.services import LEASE, _claim, deliver_pending, notify, retry_delay
from shouhu.notify.tests.conftest import RecordingChannel
from shouhu.org.models import User

ALERT = {"kind": "report", "title": "收到一份新的强制报告", "url": "/tasks/"}


def test_backoff_doubles_from_a_minute_up_to_an_hour():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 7, 8, 30)] == [60, 120, 240, 480, 3600, 3600, 3600]


@pytest.mark.django_db
def test_a_failing_channel_is_retried_with_backoff_and_sends_when_it_recovers(users, use_channels):
    sms = RecordingChannel("sms", fail=DeliveryError("HTTP 503"))
    use_channels(sms)
    [n] = notify(recipients=[users["village_hutang"]], **ALERT)
    now = timezone.now()
    assert deliver_pending(now=now) == {"failed": 1}
    delivery = Delivery.objects.get(notification=n)
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("failed", 1, "HTTP 503")
    assert delivery.next_attempt_at == now + timedelta(minutes=1)

    assert deliver_pending(now=now + timedelta(seconds=30)) == {}  # not due yet
    assert deliver_pending(now=now + timedelta(minutes=1)) == {"failed": 1}
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.next_attempt_at == now + timedelta(minutes=1 + 2)

    sms.fail = None  # the gateway is back
    assert deliver_pending(now=now + timedelta(minutes=3)) == {"sent": 1}
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("sent", 3, None)
    assert delivery.sent_at is not None and sms.sent == [("addr", n.pk)]
    assert deliver_pending(now=now + timedelta(days=1)) == {}  # idempotent: sent once


@pytest.mark.django_db
@override_settings(SHOUHU_NOTIFY_MAX_ATTEMPTS=3)
def test_a_delivery_is_given_up_after_the_maximum_attempts_and_the_inbox_keeps_it(users, use_channels):
    use_channels(RecordingChannel("sms", fail=DeliveryError("connection failed: ConnectionRefusedError")))
    [n] = notify(recipients=[users["village_hutang"]], **ALERT)
    when = timezone.now()
    for _ in range(5):
        deliver_pending(now=when)
        when += timedelta(hours=2)
    delivery = Delivery.objects.get(notification=n)
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("given_up", 3, None)
    assert "gave up after 3 attempts" in delivery.last_error
    assert Notification.objects.filter(pk=n.pk, read_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_permanent_refusal_is_given_up_at_once(users, use_channels):
    use_channels(RecordingChannel("wecom", fail=PermanentDeliveryError("wecom errcode 81013")))
    [n] = notify(recipients=[users["leader"]], **ALERT)
    assert deliver_pending() == {"given_up": 1}
    assert Delivery.objects.get(notification=n).last_error == "wecom errcode 81013"


@pytest.mark.django_db
def test_a_user_without_an_address_on_a_channel_is_given_up_with_a_reason_not_an_error(users, use_channels):
    use_channels(RecordingChannel("sms", address=""), RecordingChannel("log"))
    [n] = notify(recipients=[users["leader"]], **ALERT)
    assert deliver_pending() == {"given_up": 1, "sent": 1}
    delivery = n.deliveries.get(channel="sms")
    assert (delivery.state, delivery.last_error) == ("given_up", "the recipient has no sms address")


@pytest.mark.django_db
def test_a_channel_raising_something_unexpected_is_retried_and_the_loop_goes_on(users, use_channels):
    broken = RecordingChannel("sms", fail=KeyError("13800000000"))
    log = RecordingChannel("log")
    use_channels(broken, log)
    notify(recipients=[users["leader"], users["district"]], **ALERT)
    assert deliver_pending() == {"failed": 2, "sent": 2}
    errors = set(Delivery.objects.filter(channel="sms").values_list("last_error", flat=True))
    assert errors == {"unexpected KeyError"}  # the exception's text (maybe an address) is not stored


@pytest.mark.django_db
def test_a_channel_disabled_after_the_notification_was_stored_is_given_up(users, use_channels):
    use_channels(RecordingChannel("sms"))
    [n] = notify(recipients=[users["leader"]], **ALERT)
    use_channels()
    assert deliver_pending() == {"given_up": 1}
    assert "not enabled" in n.deliveries.get().last_error


@pytest.mark.django_db
def test_a_claimed_delivery_is_not_taken_by_a_second_worker_until_its_lease_runs_out(users, use_channels):
    sms = RecordingChannel("sms")
    use_channels(sms)
    [n] = notify(recipients=[users["leader"]], **ALERT)
    now = timezone.now()
    [claimed] = _claim(now, None)  # a worker took it, then died before recording anything
    assert claimed.attempts == 1
    assert deliver_pending(now=now) == {} and sms.sent == []
    assert deliver_pending(now=now + LEASE) == {"sent": 1}  # the lease ran out: another worker sends
    assert Delivery.objects.get(notification=n).attempts == 2


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks (SKIP LOCKED) need PostgreSQL; SQLite serialises writers, which the lease test above covers",
)
@pytest.mark.django_db
def test_concurrent_loops_send_each_delivery_exactly_once(use_channels, monkeypatch):
    """Four workers at once over committed rows, each on its own connection, in small batches.

    The test's own connection is inside the test transaction, which other connections cannot see:
    the whole scenario runs in threads, in autocommit, and removes its rows at the end.
    """
    monkeypatch.setattr("shouhu.notify.services.CLAIM_BATCH", 3)
    slow = RecordingChannel("sms")
    real_send = slow.send

    def send(address, notification):
        time.sleep(0.01)  # a gateway round trip, so the workers overlap
        real_send(address, notification)

    slow.send = send
    use_channels(slow)
    outcome: dict[str, object] = {}

    def scenario() -> None:
        ids: list[int] = []
        try:
            users = list(User.objects.filter(is_active=True).order_by("id")[:10])
            for i in range(4):
                ids += [
                    n.pk for n in notify(recipients=users, dedupe_key=f"concurrency-{i}", channels=["sms"], **ALERT)
                ]
            # notify()'s on-commit delivery ran already (autocommit): make them all due again
            Delivery.objects.filter(notification_id__in=ids).update(
                state="pending", attempts=0, next_attempt_at=timezone.now(), sent_at=None
            )
            slow.sent.clear()
            results: list[dict[str, int]] = []
            errors: list[BaseException] = []

            def worker() -> None:
                try:
                    results.append(deliver_pending(notification_ids=ids))
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                finally:
                    connections.close_all()

            threads = [threading.Thread(target=worker) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            outcome.update(
                ids=list(ids),
                results=results,
                errors=errors,
                sent=sorted(pk for _, pk in slow.sent),
                rows=set(Delivery.objects.filter(notification_id__in=ids).values_list("state", "attempts")),
            )
        except BaseException as exc:  # noqa: BLE001
            outcome["failure"] = exc
        finally:
            Notification.objects.filter(pk__in=ids).delete()
            connections.close_all()

    runner = threading.Thread(target=scenario)
    runner.start()
    runner.join()
    if "failure" in outcome:
        raise outcome["failure"]  # type: ignore[misc]
    assert not outcome["errors"]
    assert outcome["sent"] == sorted(outcome["ids"])  # each exactly once
    assert sum(r.get("sent", 0) for r in outcome["results"]) == len(outcome["ids"])
    assert sum(1 for r in outcome["results"] if r) > 1, "the workers did not overlap"
    assert outcome["rows"] == {(DeliveryState.SENT, 1)}


@pytest.mark.django_db
def test_a_batch_is_claimed_and_recorded_in_a_fixed_number_of_statements(users, use_channels):
    """Sending does not cost two updates per delivery: the claim and the record of the sent ones
    are one statement each per batch (on PostgreSQL; SQLite claims row by row)."""
    from django.test.utils import CaptureQueriesContext

    use_channels(RecordingChannel("sms"))

    def statements(n: int) -> int:
        recipients = list(User.objects.filter(is_active=True).order_by("id")[:n])
        notify(recipients=recipients, **{**ALERT, "title": f"批次 {n}"})
        with CaptureQueriesContext(connection) as ctx:
            assert deliver_pending(now=timezone.now() + timedelta(seconds=1)) == {"sent": n}
        return len(ctx.captured_queries)

    few, many = statements(2), statements(8)
    if connection.vendor == "postgresql":
        assert few == many
    else:
        assert many - few == 6  # one conditional claim per row
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
