"""Every deadline kind through `manage.py check_deadlines --now ISO-8601`.

For each kind: when the clock starts (which step creates the deadline) and how long it runs, that
nothing escalates at the deadline itself and one instant later it does, exactly once (the same and
a later `--now` escalate nothing more), and that a step done in time never escalates. An
escalation is an event on the report's timeline and a notification to the district police and the
district office — never to the reporter, whose identity stays with those who may know it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from shouhu.lib.workdays import add_workdays
from shouhu.notify.models import Notification
from shouhu.org.models import Region
from shouhu.safeguarding import services
from shouhu.safeguarding.models import DeadlineKind, EventKind, Measure, ReportDeadline

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)


@pytest.fixture
def town(hutang_village):
    return Region.objects.get(code=hutang_village.code[:9] + "000")


def _file(users, town, *, situations=(8,), danger_now=False):
    report, created = services.report_submit(
        actor=users["school_hutang"],
        data={
            "situations": list(situations),
            "child_name": "小红",
            "child_sex": "F",
            "child_age": 9,
            "found_at": timezone.now(),
            "place_region": town,
            "place": "学校门口",
            "description": "手臂多处淤青",
            "danger_now": danger_now,
        },
    )
    assert created
    return report


def about(span: timedelta, expected: timedelta) -> bool:
    """The clock starts when the report is stored, a moment after its `created_at`."""
    return timedelta(0) <= span - expected < timedelta(seconds=2)


def run(now: datetime) -> dict[str, int]:
    out = StringIO()
    call_command("check_deadlines", "--now", now.isoformat(), stdout=out)
    return json.loads(out.getvalue())


def deadline(report, kind) -> ReportDeadline:
    return ReportDeadline.objects.get(report=report, kind=kind)


def assert_escalates_once(report, kind) -> ReportDeadline:
    """Nothing at the deadline; one instant later this deadline (and only it) escalates; the same and
    a later run escalate nothing more."""
    due = deadline(report, kind).due_at
    assert run(due)["escalated"] == 0  # due_at itself is still in time
    assert deadline(report, kind).escalated_at is None
    assert run(due + TICK) == {"checked": 1, "escalated": 1}
    assert run(due + TICK)["escalated"] == 0  # the same --now again
    assert run(due + timedelta(minutes=5))["escalated"] == 0  # a later one
    late = deadline(report, kind)
    assert late.escalated_at == due + TICK and late.met_at is None
    events = report.events.filter(kind=EventKind.ESCALATED)
    assert [e.note for e in events] == [str(DeadlineKind(kind).label)]
    return late


def escalation_recipients(late: ReportDeadline) -> set[str]:
    return set(
        Notification.objects.filter(kind="report_escalated", dedupe_key=f"report_escalated:{late.pk}").values_list(
            "recipient__username", flat=True
        )
    )


# ----- when each clock starts and how long it runs -------------------------------------------------


def test_the_urgent_accept_clock_is_an_hour_and_escalates_once_to_the_district_not_the_reporter(users, town):
    report = _file(users, town, situations=(4,))
    assert report.urgent
    due = deadline(report, DeadlineKind.ACCEPT).due_at
    assert about(due - report.created_at, timedelta(hours=1))
    assert set(report.deadlines.values_list("kind", flat=True)) == {
        DeadlineKind.ACCEPT,
        DeadlineKind.FEEDBACK,
        DeadlineKind.RESULT,
    }  # the others start with their steps

    late = assert_escalates_once(report, DeadlineKind.ACCEPT)
    # The district police and the district office are told, once each; the reporter is not.
    recipients = escalation_recipients(late)
    assert {"police", "district"} <= recipients
    assert "school_hutang" not in recipients
    assert not Notification.objects.filter(recipient=users["school_hutang"], kind="report_escalated").exists()
    assert Notification.objects.filter(kind="report_escalated", recipient=users["police"]).count() == 1

    # The timeline shows it to the station, as a system step.
    page = Client()
    page.force_login(users["police_hutang"])
    html = page.get(f"/reports/{report.pk}/").content.decode()
    assert "超时升级督办" in html and "已升级督办" in html


def test_the_danger_now_flag_alone_makes_the_accept_clock_an_hour(users, town):
    report = _file(users, town, situations=(8,), danger_now=True)
    assert report.urgent
    due = deadline(report, DeadlineKind.ACCEPT).due_at
    assert about(due - report.created_at, timedelta(hours=1))


def test_a_non_urgent_report_is_accepted_within_24_hours(users, town):
    report = _file(users, town)
    assert not report.urgent
    due = deadline(report, DeadlineKind.ACCEPT).due_at
    assert about(due - report.created_at, timedelta(hours=24))
    assert run(report.created_at + timedelta(hours=2))["escalated"] == 0  # an urgent one would be late by now
    assert_escalates_once(report, DeadlineKind.ACCEPT)


def test_the_reporter_is_told_of_the_acceptance_within_3_days(users, town):
    report = _file(users, town)
    feedback = deadline(report, DeadlineKind.FEEDBACK)
    assert about(feedback.due_at - report.created_at, timedelta(days=3))
    # The accept clock (24 h) runs out first: it escalates on its own, then the feedback's.
    assert run(feedback.due_at) == {"checked": 1, "escalated": 1}
    assert deadline(report, DeadlineKind.ACCEPT).escalated_at is not None
    assert deadline(report, DeadlineKind.FEEDBACK).escalated_at is None
    assert run(feedback.due_at + TICK) == {"checked": 1, "escalated": 1}
    assert run(feedback.due_at + TICK)["escalated"] == 0
    assert run(feedback.due_at + timedelta(days=1))["escalated"] == 0
    assert list(report.events.filter(kind=EventKind.ESCALATED).values_list("note", flat=True)) == [
        str(DeadlineKind.ACCEPT.label),
        str(DeadlineKind.FEEDBACK.label),
    ]


def test_the_result_is_due_in_90_days(users, town):
    report = _file(users, town)
    services.report_accept(actor=users["police_hutang"], report=report, officer="张警官")  # meets accept + feedback
    result = deadline(report, DeadlineKind.RESULT)
    assert about(result.due_at - report.created_at, timedelta(days=90))
    assert run(result.due_at - timedelta(days=1))["escalated"] == 0
    assert_escalates_once(report, DeadlineKind.RESULT)


@pytest.mark.parametrize("first_step", ["dispatch", "measure"])
def test_the_town_is_notified_within_24_hours_of_the_first_dispatch_or_measure(users, town, first_step):
    report = _file(users, town)
    police = users["police_hutang"]
    services.report_accept(actor=police, report=report, officer="张警官")
    assert not report.deadlines.filter(kind=DeadlineKind.TOWN_NOTIFY).exists()  # no handling yet, no clock
    handled_at = timezone.now() - timedelta(hours=2)  # recorded afterwards, with the time it happened
    if first_step == "dispatch":
        services.report_dispatch(actor=police, report=report, at=handled_at)
    else:
        services.report_measure(actor=police, report=report, measure=Measure.EVIDENCE, note="询问邻居", at=handled_at)
    notify = deadline(report, DeadlineKind.TOWN_NOTIFY)
    assert notify.due_at == handled_at + timedelta(hours=24)
    # A later step does not restart the clock.
    services.report_measure(actor=police, report=report, measure=Measure.HOSPITAL, note="送医")
    assert deadline(report, DeadlineKind.TOWN_NOTIFY).due_at == notify.due_at
    assert_escalates_once(report, DeadlineKind.TOWN_NOTIFY)


def test_the_town_assesses_within_3_working_days_at_half_past_five(users, town):
    report = _file(users, town)
    police = users["police_hutang"]
    services.report_accept(actor=police, report=report, officer="张警官")
    services.report_dispatch(actor=police, report=report)
    assert not report.deadlines.filter(kind=DeadlineKind.ASSESSMENT).exists()
    task = services.report_notify_town(actor=police, report=report)
    assessment = deadline(report, DeadlineKind.ASSESSMENT)
    day = add_workdays(timezone.localdate(), 3)
    assert timezone.localtime(assessment.due_at).replace(tzinfo=None) == datetime(day.year, day.month, day.day, 17, 30)
    assert task.due_at == assessment.due_at
    assert deadline(report, DeadlineKind.TOWN_NOTIFY).met_at is not None
    late = assert_escalates_once(report, DeadlineKind.ASSESSMENT)
    assert "town_hutang" not in escalation_recipients(late)


# ----- a step done in time never escalates ----------------------------------------------------------


def test_no_escalation_after_each_step_is_done(users, town):
    urgent = _file(users, town, situations=(2,))
    police = users["police_hutang"]
    services.report_accept(actor=police, report=urgent, officer="张警官")
    services.report_dispatch(actor=police, report=urgent)
    services.report_measure(actor=police, report=urgent, measure=Measure.ESCORT, note="护送至救助站")
    services.report_measure(actor=police, report=urgent, measure=Measure.CRIMINAL_CASE, note="已立案")
    services.report_notify_town(actor=police, report=urgent, note="请评估")
    services.report_assessed(actor=users["town_hutang"], report=urgent, note="已入户评估")
    services.report_result(actor=police, report=urgent, outcome="已依法处理")
    kinds = set(urgent.deadlines.values_list("kind", flat=True))
    assert kinds == set(DeadlineKind.values)  # every kind was started …
    assert not urgent.deadlines.filter(met_at__isnull=True).exists()  # … and met

    far = timezone.now() + timedelta(days=400)  # past every deadline of every kind
    assert run(far) == {"checked": 0, "escalated": 0}
    assert not urgent.deadlines.filter(escalated_at__isnull=False).exists()
    assert not urgent.events.filter(kind=EventKind.ESCALATED).exists()
    assert not Notification.objects.filter(kind="report_escalated").exists()


def test_a_step_done_late_after_its_escalation_is_not_escalated_again(users, town):
    report = _file(users, town, situations=(4,))
    due = deadline(report, DeadlineKind.ACCEPT).due_at
    assert run(due + TICK)["escalated"] == 1
    services.report_accept(actor=users["police_hutang"], report=report, officer="张警官")  # late, but done
    late = deadline(report, DeadlineKind.ACCEPT)
    assert late.met_at is not None and late.escalated_at == due + TICK
    assert run(due + timedelta(days=5))["escalated"] == 0  # feedback was met by the acceptance too
    assert report.events.filter(kind=EventKind.ESCALATED).count() == 1


def test_a_bad_now_is_refused():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("check_deadlines", "--now", "yesterday", stdout=StringIO())
