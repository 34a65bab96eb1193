"""The report chain's services: storing, routing, the police steps, the clocks, who sees what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from shouhu.org.models import Region
from shouhu.safeguarding import services
from shouhu.safeguarding.models import (
    DeadlineKind,
    EventKind,
    Measure,
    Report,
    ReportDeadline,
    ReportStatus,
)
from shouhu.safeguarding.selectors import reports_visible_to, view_of

pytestmark = pytest.mark.django_db


def _data(region, **extra):
    return {
        "situations": [4],
        "child_name": "小红",
        "child_sex": "F",
        "child_age": 9,
        "found_at": timezone.now(),
        "place_region": region,
        "place": "学校门口",
        "description": "手臂多处淤青，说是被打的",
        "danger_now": False,
        **extra,
    }


@pytest.fixture
def town(hutang_village):
    return Region.objects.get(code=hutang_village.code[:9] + "000")


def test_a_report_is_stored_routed_and_clocked(users, town):
    report, created = services.report_submit(actor=users["school_hutang"], data=_data(town), idempotency_key="k1")
    assert created and report.urgent  # situation 4 is urgent
    assert report.police_station.name == "湖塘派出所" and report.town_code == town.code
    kinds = {d.kind: d for d in report.deadlines.all()}
    assert set(kinds) == {DeadlineKind.ACCEPT, DeadlineKind.FEEDBACK, DeadlineKind.RESULT}
    assert kinds[DeadlineKind.ACCEPT].due_at - report.created_at <= timedelta(minutes=61)
    assert [e.kind for e in report.events.all()] == [EventKind.RECEIVED, EventKind.ROUTED]
    again, created_again = services.report_submit(
        actor=users["school_hutang"], data=_data(town, situations=[9]), idempotency_key="k1"
    )
    assert not created_again and again.pk == report.pk and Report.objects.count() == 1


def test_a_non_urgent_report_has_a_day(users, town):
    report, _ = services.report_submit(actor=users["school_hutang"], data=_data(town, situations=[8]))
    accept = report.deadlines.get(kind=DeadlineKind.ACCEPT)
    assert not report.urgent and accept.due_at - report.created_at > timedelta(hours=23)


def test_bad_input_is_refused_and_nothing_stored(users, town, hutang_village):
    from shouhu.org.models import Region as R

    district = R.objects.get(code="320412000000")
    for bad in (
        _data(town, situations=[]),
        _data(town, situations=[10]),
        _data(town, description=" "),
        _data(district),
        _data(town, found_at=timezone.now() + timedelta(days=1)),
    ):
        with pytest.raises(ValidationError):
            services.report_submit(actor=users["school_hutang"], data=bad)
    with pytest.raises(ValidationError):
        services.report_submit(actor=users["school_hutang"], data=_data(town), attachments=[b"MZ\x90\x00 not a photo"])
    assert Report.objects.count() == 0


def test_the_police_chain_and_the_town_task(users, town):
    from shouhu.tasks.models import Task

    report, _ = services.report_submit(actor=users["school_hutang"], data=_data(town))
    police = users["police_hutang"]
    with pytest.raises(PermissionDenied):
        services.report_accept(actor=users["town_hutang"], report=report, officer="张警官")
    services.report_accept(actor=police, report=report, officer="张警官")
    services.report_dispatch(actor=police, report=report)
    services.report_measure(actor=police, report=report, measure=Measure.HOSPITAL, note="送医检查")
    task = services.report_notify_town(actor=police, report=report)
    assert task.owner.kind == "town_government" and task.kind == "report"
    report.refresh_from_db()
    assert report.status == ReportStatus.HANDLED and report.town_notified_at is not None
    met = dict(report.deadlines.values_list("kind", "met_at"))
    assert met[DeadlineKind.ACCEPT] and met[DeadlineKind.FEEDBACK] and met[DeadlineKind.TOWN_NOTIFY]
    assert met[DeadlineKind.ASSESSMENT] is None
    services.report_assessed(actor=users["town_hutang"], report=report, note="已入户评估，安排心理疏导")
    assert report.deadlines.get(kind=DeadlineKind.ASSESSMENT).met_at is not None
    assert Task.objects.get(pk=task.pk).state == "done"
    services.report_result(actor=police, report=report, outcome="已依法处理")
    report.refresh_from_db()
    assert report.status == ReportStatus.CLOSED and report.outcome == "已依法处理"


def test_escalation_exactly_once_and_never_after_the_step(users, town):
    report, _ = services.report_submit(actor=users["school_hutang"], data=_data(town))
    later = timezone.now() + timedelta(hours=2)
    assert services.check_deadlines(later)["escalated"] == 1  # the hour to accept is gone
    assert services.check_deadlines(later + timedelta(minutes=1))["escalated"] == 0
    assert report.events.filter(kind=EventKind.ESCALATED).count() == 1
    other, _ = services.report_submit(actor=users["school_hutang"], data=_data(town))
    services.report_accept(actor=users["police_hutang"], report=other, officer="李警官")
    assert services.check_deadlines(later)["escalated"] == 0  # accepted in time: nothing to escalate
    far = timezone.now() + timedelta(days=4)
    counts = services.check_deadlines(far)  # the first report's feedback (3 days) is late too
    assert counts["escalated"] == 1
    assert ReportDeadline.objects.filter(report=report, escalated_at__isnull=False).count() == 2


def test_who_sees_what(users, town, niutang_village):
    mine, _ = services.report_submit(actor=users["school_hutang"], data=_data(town))
    elsewhere, _ = services.report_submit(
        actor=users["district"], data=_data(Region.objects.get(code=niutang_village.code[:9] + "000"))
    )
    school = reports_visible_to(users["school_hutang"])
    assert mine in school and elsewhere not in school  # a school sees only its own reports
    assert not view_of(users["school_hutang"], mine).details
    town_view = view_of(users["town_hutang"], mine)
    assert mine in reports_visible_to(users["town_hutang"]) and town_view.details and not town_view.reporter
    assert elsewhere not in reports_visible_to(users["town_hutang"])
    station = view_of(users["police_hutang"], mine)
    assert station.reporter and station.handle
    assert elsewhere not in reports_visible_to(users["police_hutang"])
    supervise = view_of(users["procurator"], mine)
    assert supervise.supervise and not supervise.details and not supervise.reporter
    assert view_of(users["district"], mine).reporter
    assert reports_visible_to(users["leader"]).count() == 0


def test_the_town_asks_units_for_help_through_the_duty_catalogue(users, town):
    from shouhu.policy.selectors import routes
    from shouhu.tasks.models import Task

    report, _ = services.report_submit(actor=users["school_hutang"], data=_data(town))
    task = services.report_help(
        actor=users["town_hutang"], report=report, need_code="injury_assessment", note="左臂淤青，需鉴定伤情"
    )
    assert task.owner.code == routes()["injury_assessment"] and task.kind == "referral"  # as the catalogue says
    legal = services.report_help(actor=users["town_hutang"], report=report, need_code="legal_aid")
    assert legal.owner.code == routes()["legal_aid"] == "justice"
    assert report.events.filter(kind=EventKind.HELP).count() == 2
    again = services.report_help(actor=users["town_hutang"], report=report, need_code="legal_aid")
    assert again.pk == legal.pk and Task.objects.filter(source_type="report_help").count() == 2
    with pytest.raises(PermissionDenied):
        services.report_help(actor=users["town_niutang"], report=report, need_code="legal_aid")
    with pytest.raises(ValidationError):
        services.report_help(actor=users["town_hutang"], report=report, need_code="housing")
