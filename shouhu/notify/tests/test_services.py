"""notify(): what is stored, for whom, and when deliveries start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from shouhu.notify.models import Delivery, DeliveryState, Notification
from shouhu.notify.services import notify
from shouhu.notify.tests.conftest import RecordingChannel
from shouhu.org.models import Role, User

pytestmark = pytest.mark.django_db

ALERT = {"kind": "report", "title": "收到一份新的强制报告", "body": "请及时处理。", "url": "/tasks/"}


def test_notify_stores_one_inbox_entry_per_recipient_and_a_delivery_per_channel(users, use_channels):
    use_channels(RecordingChannel("log"), RecordingChannel("sms"))
    created = notify(recipients=[users["village_hutang"], users["town_hutang"]], **ALERT)
    assert {n.recipient.username for n in created} == {"village_hutang", "town_hutang"}
    assert all(n.read_at is None and n.url == "/tasks/" for n in created)
    assert Delivery.objects.filter(notification__in=created).count() == 4
    assert set(Delivery.objects.filter(notification__in=created).values_list("state", flat=True)) == {"pending"}


def test_deliveries_are_attempted_after_the_commit_only(users, use_channels, django_capture_on_commit_callbacks):
    log = RecordingChannel("log")
    use_channels(log)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [n] = notify(recipients=[users["village_hutang"]], **ALERT)
        assert log.sent == []
    assert log.sent == [] and len(callbacks) == 1
    callbacks[0]()  # the commit: the background task (immediate in tests) sends
    assert log.sent == [("addr", n.pk)]
    assert Delivery.objects.get(notification=n).state == DeliveryState.SENT


def test_a_rolled_back_caller_leaves_no_notification_and_sends_nothing(
    users, use_channels, django_capture_on_commit_callbacks
):
    log = RecordingChannel("log")
    use_channels(log)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            notify(recipients=[users["village_hutang"]], **ALERT)
            raise RuntimeError("the caller's own write failed")
    assert callbacks == [] and log.sent == []
    assert not Notification.objects.filter(recipient=users["village_hutang"]).exists()
    assert not Delivery.objects.exists()


def test_the_same_dedupe_key_never_notifies_a_recipient_twice(users, use_channels):
    use_channels(RecordingChannel("log"))
    first = notify(recipients=[users["village_hutang"]], dedupe_key="digest:2026-05-04", **ALERT)
    again = notify(recipients=[users["village_hutang"], users["town_hutang"]], dedupe_key="digest:2026-05-04", **ALERT)
    assert len(first) == 1
    assert [n.recipient.username for n in again] == ["town_hutang"]  # only the one not yet notified
    assert Notification.objects.filter(dedupe_key="digest:2026-05-04").count() == 2
    assert Delivery.objects.count() == 2
    other_day = notify(recipients=[users["village_hutang"]], dedupe_key="digest:2026-05-05", **ALERT)
    assert len(other_day) == 1


def test_a_dedupe_key_taken_concurrently_is_skipped_not_an_error(users, use_channels, monkeypatch):
    """Two notify() calls racing past the existence check: the unique constraint decides."""
    use_channels()
    notify(recipients=[users["village_hutang"]], dedupe_key="race", **ALERT)
    from django.db.models import QuerySet

    real_filter = QuerySet.filter

    def blind_filter(self, *args, **kwargs):  # the check sees nothing, as a concurrent caller would
        if self.model is Notification and kwargs.get("dedupe_key") == "race":
            return real_filter(self, pk__in=[])
        return real_filter(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "filter", blind_filter)
    created = notify(recipients=[users["village_hutang"], users["town_hutang"]], dedupe_key="race", **ALERT)
    monkeypatch.undo()
    assert [n.recipient.username for n in created] == ["town_hutang"]
    assert Notification.objects.filter(dedupe_key="race").count() == 2


def test_an_organization_notifies_its_active_users_with_the_roles_asked(users, use_channels):
    use_channels()
    town = users["town_hutang"].organization
    colleague = User.objects.create(username="town_hutang_2", organization=town, full_name="同事")
    colleague.roles.create(role=Role.TOWN_SUPERVISOR)
    gone = User.objects.create(username="town_hutang_gone", organization=town, is_active=False)
    gone.roles.create(role=Role.TOWN_SUPERVISOR)
    clerk = User.objects.create(username="town_hutang_clerk", organization=town)
    clerk.roles.create(role=Role.REPORTER)

    created = notify(organization=town, roles=[Role.TOWN_SUPERVISOR], **ALERT)
    assert {n.recipient.username for n in created} == {"town_hutang", "town_hutang_2"}
    assert all(n.organization_id == town.pk for n in created)
    everyone = notify(organization=town, kind="digest", title="本周走访提醒", url="/tasks/")
    assert {n.recipient.username for n in everyone} == {"town_hutang", "town_hutang_2", "town_hutang_clerk"}


def test_inactive_recipients_are_skipped(users, use_channels):
    use_channels()
    gone = User.objects.create(username="gone", is_active=False)
    assert [n.recipient for n in notify(recipients=[gone, users["leader"]], **ALERT)] == [users["leader"]]


@pytest.mark.parametrize(
    "url", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "tasks/", "/a b"]
)
def test_only_a_relative_platform_link_is_accepted(users, use_channels, url):
    use_channels()
    with pytest.raises(ValidationError):
        notify(recipients=[users["leader"]], kind="x", title="标题", url=url)
    assert not Notification.objects.filter(recipient=users["leader"]).exists()


def test_the_database_refuses_an_absolute_link_too(users):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(recipient=users["leader"], kind="x", title="t", url="https://evil.example/")


def test_a_long_title_or_body_is_refused_it_is_meant_to_be_a_short_neutral_sentence(users, use_channels):
    use_channels()
    with pytest.raises(ValidationError):
        notify(recipients=[users["leader"]], kind="x", title="长" * 81)
    with pytest.raises(ValidationError):
        notify(recipients=[users["leader"]], kind="x", title="标题", body="长" * 201)


def test_channels_narrow_the_enabled_ones_and_unknown_names_are_refused(users, use_channels):
    use_channels(RecordingChannel("log"), RecordingChannel("email"))
    [n] = notify(recipients=[users["leader"]], channels=["inbox", "email", "sms"], **ALERT)  # sms not enabled
    assert list(n.deliveries.values_list("channel", flat=True)) == ["email"]
    [n] = notify(recipients=[users["leader"]], channels=["inbox"], **ALERT)
    assert not n.deliveries.exists()
    with pytest.raises(ValueError):
        notify(recipients=[users["leader"]], channels=["carrier_pigeon"], **ALERT)


def test_notify_needs_recipients_or_an_organization(use_channels):
    use_channels()
    with pytest.raises(ValueError):
        notify(**ALERT)


def test_notify_many_batches_and_deduplicates(users, django_assert_max_num_queries):
    from shouhu.notify.models import Delivery, Notification
    from shouhu.notify.services import Message, notify_many

    a, b, c = users["district"], users["town_hutang"], users["village_hutang"]
    messages = [
        Message((a, b), "report_new", "收到一份强制报告", "/reports/1/", "", "k1"),
        Message((b, c, c), "report_new", "本镇收到一份强制报告", "/reports/1/", "", "k1"),
        Message((c,), "report_receipt", "回执", "/reports/1/", "", "k2"),
    ]
    with django_assert_max_num_queries(8):
        created = notify_many(messages)
    # b has "k1" once (the first message wins), c once per key; nobody twice for one key.
    assert sorted((n.recipient.username, n.dedupe_key) for n in created) == [
        ("district", "k1"),
        ("town_hutang", "k1"),
        ("village_hutang", "k1"),
        ("village_hutang", "k2"),
    ]
    assert notify_many(messages) == []  # the same event again: nothing new
    assert Notification.objects.filter(dedupe_key__in=["k1", "k2"]).count() == 4
    assert Delivery.objects.filter(notification__in=created).exists() or not Delivery.objects.exists()
