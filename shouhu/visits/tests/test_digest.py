"""The morning digest of due and overdue visits, and the commands that run the periodic jobs once."""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from shouhu.notify.models import Notification
from shouhu.visits import services
from shouhu.visits.models import VisitPlan
from shouhu.visits.tasks import send_digest


@pytest.fixture(autouse=True)
def _no_other_plans(db):  # noqa: ANN001
    VisitPlan.objects.all().delete()


@pytest.fixture
def today() -> date:
    return timezone.localdate()


def due(child, next_due: date) -> None:  # noqa: ANN001
    services.refresh_plans([child.pk])
    VisitPlan.objects.filter(child=child).update(next_due=next_due)


def digests(username: str) -> list[Notification]:
    return list(Notification.objects.filter(recipient__username=username, kind="visit_digest").order_by("id"))


def test_digest_counts_each_users_regions_and_names_no_child(users, hutang_village, make_child, today):
    names = ["王小一", "王小二", "王小三"]
    due(make_child(hutang_village, name=names[0]), today - timedelta(3))
    due(make_child(hutang_village, name=names[1]), today - timedelta(1))
    due(make_child(hutang_village, name=names[2]), today)  # on the due day: due, not overdue
    due(make_child(hutang_village, name="王小四"), services.week_end(today) + timedelta(1))  # next week

    counts = send_digest(today=today)

    assert counts["notified"] == 2  # the Hutang director and supervisor
    for username in ("village_hutang", "town_hutang"):
        [n] = digests(username)
        assert "2 名儿童走访已逾期" in n.title and "1 名本周到期" in n.title
        assert n.url == "/visits/?due=overdue" and n.dedupe_key == f"visit_digest:{today.isoformat()}"
        assert not any(name in n.title or name in n.body for name in [*names, "王小四"])
    # Nothing is due in Niutang: no notification at all.
    assert digests("village_niutang") == [] and digests("town_niutang") == []
    assert digests("district") == []  # not a digest role


def test_digest_only_due_this_week_links_to_the_week(users, hutang_village, make_child, today):
    due(make_child(hutang_village), today)
    send_digest(today=today)
    [n] = digests("town_hutang")
    assert n.url == "/visits/?due=week" and "本周到期" in n.title and "逾期" not in n.title


def test_digest_twice_the_same_day_sends_once(users, hutang_village, make_child, today):
    due(make_child(hutang_village), today - timedelta(2))
    first = send_digest(today=today)
    second = send_digest(today=today)
    assert first["notified"] == 2 and second["notified"] == 0 and second["already_notified"] == 2
    assert len(digests("village_hutang")) == 1
    send_digest(today=today + timedelta(1))  # a new day: a new digest
    assert len(digests("village_hutang")) == 2


def test_no_digest_when_nothing_is_due(users, hutang_village, make_child, today):
    due(make_child(hutang_village), services.week_end(today) + timedelta(10))
    counts = send_digest(today=today)
    assert counts["notified"] == 0 and counts["nothing_due"] == counts["users"] >= 4
    assert not Notification.objects.filter(kind="visit_digest").exists()


def test_inactive_user_gets_no_digest(users, hutang_village, make_child, today):
    users["village_hutang"].is_active = False
    users["village_hutang"].save(update_fields=["is_active"])
    due(make_child(hutang_village), today - timedelta(2))
    send_digest(today=today)
    assert digests("village_hutang") == [] and len(digests("town_hutang")) == 1


def test_visit_digest_command_prints_counts_for_a_date(users, hutang_village, make_child, today):
    day = today - timedelta(7)
    due(make_child(hutang_village), day - timedelta(1))
    out = StringIO()
    call_command("visit_digest", "--date", day.isoformat(), stdout=out)
    assert json.loads(out.getvalue())["notified"] == 2
    assert digests("town_hutang")[0].dedupe_key == f"visit_digest:{day.isoformat()}"
    with pytest.raises(CommandError):
        call_command("visit_digest", "--date", "29.11.2026", stdout=StringIO())


def test_refresh_visit_plans_command_plans_every_active_child_and_drops_leavers(hutang_village, make_child, today):
    from shouhu.registry.models import Child, LedgerStatus

    child = make_child(hutang_village)
    leaver = make_child(hutang_village, name="李走了")
    services.refresh_plans([leaver.pk])
    Child.objects.filter(pk=leaver.pk).update(status=LedgerStatus.EXITED, exit_date=today)
    out = StringIO()
    call_command("refresh_visit_plans", stdout=out)
    counts = json.loads(out.getvalue())
    active = Child.objects.filter(status=LedgerStatus.ACTIVE).count()
    assert counts["children"] == active + 1
    assert VisitPlan.objects.count() == active
    assert VisitPlan.objects.filter(child=child).exists() and not VisitPlan.objects.filter(child=leaver).exists()


def test_periodic_tasks_are_scheduled_in_the_morning_and_at_night():
    from datetime import datetime

    from shouhu.visits.tasks import refresh_all_visit_plans, visit_digest

    digest, refresh = visit_digest.s(), refresh_all_visit_plans.s()
    assert digest.validate_datetime(datetime(2026, 12, 1, 7, 30))
    assert not digest.validate_datetime(datetime(2026, 12, 1, 7, 31))
    assert refresh.validate_datetime(datetime(2026, 12, 1, 2, 45))
