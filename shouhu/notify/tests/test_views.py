"""The inbox pages: one's own notifications only, and no open redirect."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from shouhu.notify.models import Notification
from shouhu.notify.services import notify
from shouhu.notify.tests.conftest import RecordingChannel

pytestmark = pytest.mark.django_db


def note(user, title="有 3 项走访已逾期", url="/tasks/", **extra):
    return Notification.objects.create(recipient=user, kind="digest", title=title, url=url, **extra)


def test_the_inbox_lists_my_notifications_newest_first_and_not_a_colleagues(client, users):
    me, colleague = users["village_hutang"], users["town_hutang"]
    older, newer = note(me, "较早的通知"), note(me, "较新的通知")
    note(colleague, "督导员的通知")
    client.force_login(me)
    page = client.get(reverse("notify:inbox")).content.decode()
    assert page.index("较新的通知") < page.index("较早的通知")
    assert "督导员的通知" not in page
    assert reverse("notify:open", args=[newer.pk]) in page and older.title in page


def test_the_unread_filter(client, users):
    me = users["village_hutang"]
    note(me, "未读的通知")
    read = note(me, "已读的通知")
    read.read_at = read.created_at
    read.save()
    client.force_login(me)
    page = client.get(reverse("notify:inbox"), {"unread": "1"}).content.decode()
    assert "未读的通知" in page and "已读的通知" not in page


def test_the_top_bar_shows_my_unread_count(client, users):
    me = users["leader"]
    client.force_login(me)
    assert 'class="badge rounded-pill' not in client.get(reverse("notify:inbox")).content.decode()
    for _ in range(3):
        note(me)
    note(users["district"])  # not mine
    page = client.get(reverse("home")).content.decode()
    assert "通知（3 条未读）" in page
    assert f'href="{reverse("notify:inbox")}"' in page


def test_the_bell_costs_one_count_query(client, users):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(users["leader"])
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("home")).status_code == 200
    queries = [q["sql"] for q in ctx.captured_queries if "notify_notification" in q["sql"]]
    assert len(queries) == 1 and "COUNT" in queries[0].upper()


def test_opening_a_notification_marks_it_read_and_goes_to_its_link(client, users):
    me = users["village_hutang"]
    n = note(me, url="/tasks/?overdue=1")
    client.force_login(me)
    response = client.get(reverse("notify:open", args=[n.pk]))
    assert response.status_code == 302 and response["Location"] == "/tasks/?overdue=1"
    n.refresh_from_db()
    assert n.read_at is not None


def test_opening_a_colleagues_notification_is_a_404_and_leaves_it_unread(client, users):
    theirs = note(users["town_hutang"])
    client.force_login(users["village_hutang"])
    assert client.get(reverse("notify:open", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notify:read", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


@pytest.mark.parametrize("url", ["https://evil.example/", "//evil.example/", "/\\evil.example", "", "http:/x"])
def test_a_link_that_is_not_a_platform_path_never_redirects_off_site(client, users, url):
    """The database refuses such rows; the view checks again for one that slipped in anyway."""
    from unittest import mock

    me = users["village_hutang"]
    n = note(me, url="")
    n.url = url
    client.force_login(me)
    with mock.patch("shouhu.notify.views.notification_get_for", return_value=n):
        response = client.get(reverse("notify:open", args=[n.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("notify:inbox")
    n.refresh_from_db()
    assert n.read_at is not None


def test_mark_read_and_mark_all_read_touch_only_my_notifications(client, users):
    me, colleague = users["village_hutang"], users["town_hutang"]
    a, b = note(me), note(me)
    theirs = note(colleague)
    client.force_login(me)
    assert client.post(reverse("notify:read", args=[a.pk])).status_code == 302
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.read_at is not None and b.read_at is None
    response = client.post(reverse("notify:read_all"), follow=True)
    assert "已将 1 条通知标为已读。" in response.content.decode()
    assert not Notification.objects.filter(recipient=me, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_marking_read_is_post_only(client, users):
    n = note(users["leader"])
    client.force_login(users["leader"])
    assert client.get(reverse("notify:read", args=[n.pk])).status_code == 405
    assert client.get(reverse("notify:read_all")).status_code == 405


def test_anonymous_goes_to_the_login_page(client):
    response = client.get(reverse("notify:inbox"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_management_command_and_the_periodic_task_deliver_what_is_due(users, use_channels, capsys):
    from shouhu.notify.tasks import deliver_notifications

    log = RecordingChannel("log")
    use_channels(log)
    notify(recipients=[users["leader"]], kind="digest", title="本周走访提醒", url="/tasks/")
    call_command("deliver_notifications")
    assert capsys.readouterr().out.strip() == '{"sent": 1}'
    notify(recipients=[users["district"]], kind="digest", title="本周走访提醒", url="/tasks/")
    deliver_notifications.call_local()
    assert len(log.sent) == 2
