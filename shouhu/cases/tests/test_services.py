"""Case services: one open case per child, assessments set the risk, referrals follow the duty
catalogue and come back when declined, high-risk closure needs the district office."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from shouhu.audit.models import AuditEvent
from shouhu.cases import services
from shouhu.cases.models import REFERRAL_SOURCE, ActionMode, CaseEvent, CaseState
from shouhu.cases.tests.conftest import make_scores
from shouhu.tasks import services as task_services
from shouhu.tasks.models import Task, TaskKind, TaskState
from shouhu.visits.models import RiskAssessment

pytestmark = pytest.mark.django_db


def test_one_open_case_per_child(users, case, child):
    with pytest.raises(ValidationError):
        services.case_open(actor=users["district"], child=child)
    assert case.owner_org == users["town_hutang"].organization and case.owner == users["town_hutang"]
    assert AuditEvent.objects.filter(object_type="case", object_id=str(case.pk), action="create").exists()


def test_assessment_derives_level_and_sets_visit_risk(users, case):
    first = services.assessment_add(
        actor=users["town_hutang"], case=case, scores=make_scores(housing=3), evidence={"housing": "房屋漏雨"}
    )
    assert first.level == "yellow" and first.evidence == {"housing": "房屋漏雨"}
    case.refresh_from_db()
    assert case.risk_level == "yellow" and case.next_review_due
    risk = RiskAssessment.objects.filter(child=case.child).first()
    assert risk.level == "yellow" and "居住条件" in risk.reason


def test_override_needs_a_reason(users, case):
    with pytest.raises(ValidationError):
        services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(), override_level="orange")
    item = services.assessment_add(
        actor=users["town_hutang"],
        case=case,
        scores=make_scores(),
        override_level="orange",
        override_reason="父亲近期出狱，需密切关注",
    )
    assert item.derived_level == "green" and item.level == "orange"


def test_referral_routed_by_catalogue_with_requester_and_school(users, referred):
    tasks = list(Task.objects.filter(source_type=REFERRAL_SOURCE).order_by("id"))
    owners = {t.owner.code if t.owner.code else t.owner.name for t in tasks}
    assert "education" in owners  # the catalogue's unit for 控辍保学
    assert users["school_hutang"].organization in [t.owner for t in tasks]  # and the child's school
    for t in tasks:
        assert t.kind == TaskKind.REFERRAL and t.requester == users["town_hutang"].organization
        assert t.child_id == referred.goal.case.child_id and t.due_at > t.created_at


def test_legal_aid_goes_to_justice(users, case):
    goal = services.goal_add(actor=users["town_hutang"], case=case, text="维护权益")
    action = services.action_add(
        actor=users["town_hutang"], goal=goal, text="申请法律援助", mode=ActionMode.REFERRAL, need_code="legal_aid"
    )
    task = Task.objects.get(source_type=REFERRAL_SOURCE, source_id__startswith=f"{action.pk}:")
    assert task.owner.code == "justice"


def test_decline_then_re_referral(users, referred):
    education_task = Task.objects.get(source_type=REFERRAL_SOURCE, owner__code="education")
    with pytest.raises(ValidationError):  # still open elsewhere: no second referral yet
        services.referral_make(actor=users["town_hutang"], action=referred)
    task_services.task_decline(actor=users["education"], task=education_task, reason="应由学校先行劝返")
    school_task = Task.objects.get(source_type=REFERRAL_SOURCE, owner=users["school_hutang"].organization)
    task_services.task_accept(actor=users["school_hutang"], task=school_task, handler="李老师")
    task_services.task_complete(actor=users["school_hutang"], task=school_task, outcome="已返校")
    again = services.referral_make(actor=users["town_hutang"], action=referred, note="请教育局督办")
    assert [t.owner.code for t in again] == ["education"]  # the school completed: not asked again
    assert again[0].state == TaskState.OPEN and again[0].requester == users["town_hutang"].organization
    assert Task.objects.filter(source_type=REFERRAL_SOURCE, source_id__startswith=f"{referred.pk}:").count() == 3


def test_high_risk_closure_needs_district_approval(users, case):
    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(safety=4))
    case.refresh_from_db()
    with pytest.raises(ValidationError):
        services.case_close(actor=users["town_hutang"], case=case, reason="risk_removed", summary="已安全")
    services.close_request(actor=users["town_hutang"], case=case, reason="risk_removed", summary="已安全")
    with pytest.raises(PermissionDenied):
        services.close_approve(actor=users["town_hutang"], case=case)
    closed = services.close_approve(actor=users["district"], case=case, note="同意")
    assert closed.state == CaseState.CLOSED and closed.close_approved_by == users["district"]


def test_low_risk_closes_directly_and_reopen_keeps_history(users, case):
    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores())
    with pytest.raises(ValidationError):  # moved away needs the receiving office
        services.case_close(actor=users["town_hutang"], case=case, reason="moved_away", summary="随父母迁居")
    closed = services.case_close(actor=users["town_hutang"], case=case, reason="risk_removed", summary="监护落实")
    assert closed.state == CaseState.CLOSED
    with pytest.raises(ValidationError):
        services.service_add(
            actor=users["town_hutang"], case=closed, kind="探访", on=closed.closed_at.date(), hours=1, provider="社工"
        )
    reopened = services.case_reopen(actor=users["town_hutang"], case=closed, reason="再次发现独居")
    assert reopened.state == CaseState.OPEN and reopened.closure_reason == ""
    kinds = list(CaseEvent.objects.filter(case=case).values_list("kind", flat=True))
    assert kinds == ["opened", "closed", "reopened"]
    assert "监护落实" in CaseEvent.objects.get(case=case, kind="closed").note


def test_service_and_review(users, case):
    from datetime import date

    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(safety=3))
    service = services.service_add(
        actor=users["town_hutang"],
        case=case,
        kind="心理疏导",
        on=date(2026, 5, 1),
        hours="1.5",
        provider="阳光社工",
        note="情绪稳定",
    )
    assert str(service.hours) == "1.5"
    with pytest.raises(ValidationError):
        services.service_add(
            actor=users["town_hutang"], case=case, kind="x", on=date(2026, 5, 1), hours=0, provider="p"
        )
    services.review_add(actor=users["town_hutang"], case=case, on=date(2026, 5, 2), note="按计划推进")
    case.refresh_from_db()
    assert case.next_review_due == date(2026, 6, 1)  # orange: 30 days


def test_the_level_decides_who_is_alerted(users, case, settings):
    from shouhu.notify.models import Notification

    def alerted() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for username, title in Notification.objects.filter(kind="case_risk").values_list(
            "recipient__username", "title"
        ):
            out.setdefault(username, []).append(title)
        return out

    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(schooling=3))  # yellow
    assert alerted() == {}
    services.assessment_add(actor=users["district"], case=case, scores=make_scores(safety=4))  # red
    red = f"个案 #{case.pk} 经评估风险等级为红（极高风险），请关注"
    assert alerted() == {"town_hutang": [red]}  # the district officer who assessed is not told of their own act
    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(safety=4))  # red again: no news
    assert alerted() == {"town_hutang": [red]}
    settings.SHOUHU_CASE_ALERTS = {"orange": ("district",)}
    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(guardianship=3))  # orange
    assert alerted()["district"] == [f"个案 #{case.pk} 经评估风险等级为橙（高风险），请关注"]
    assert not Notification.objects.filter(kind="case_risk", title__contains=case.child.name).exists()


def test_morning_reminder_of_reviews_due(users, case, child):
    from datetime import timedelta

    from django.utils import timezone

    from shouhu.cases.models import Case
    from shouhu.cases.tasks import send_review_reminders
    from shouhu.notify.models import Notification

    today = timezone.localdate()
    Case.objects.filter(pk=case.pk).update(next_review_due=today + timedelta(days=30))
    assert send_review_reminders(today=today) == {"organisations": 0, "notified": 0}
    Case.objects.filter(pk=case.pk).update(next_review_due=today - timedelta(days=1))
    assert send_review_reminders(today=today)["notified"] == 1
    note = Notification.objects.get(kind="case_review_due")
    assert note.recipient == users["town_hutang"] and note.title == "个案提醒：1 个个案的评估/回顾已逾期"
    assert child.name not in note.title
    assert send_review_reminders(today=today)["notified"] == 0  # once a day


def test_a_contracted_social_worker_works_the_case_while_assigned(users, case, child):
    from shouhu.cases.selectors import case_get_for, may_assign, may_work, open_cases_for
    from shouhu.registry.selectors import children_visible_to

    worker = users["social_worker"]
    assert not children_visible_to(worker).filter(pk=child.pk).exists()
    with pytest.raises(ValidationError):  # only contracted organisations' staff can be assigned
        services.case_assign_worker(actor=users["town_hutang"], case=case, worker=users["school_hutang"])
    with pytest.raises(ValidationError):  # a social worker does not open cases
        services.case_open(actor=worker, child=child)
    services.case_assign_worker(actor=users["town_hutang"], case=case, worker=worker)
    case = case_get_for(worker, case.pk)
    assert children_visible_to(worker).filter(pk=child.pk).exists()
    assert list(open_cases_for(worker)) == [case]
    assert may_work(worker, case) and not may_assign(worker, case)
    services.assessment_add(actor=worker, case=case, scores=make_scores(schooling=3))  # the worker assesses
    assert CaseEvent.objects.filter(case=case, kind="assigned").exists()
    # Closing ends the worker's view of the child; reopening restores it.
    services.case_close(actor=worker, case=case, reason="risk_removed", summary="已返校")
    assert not children_visible_to(worker).filter(pk=child.pk).exists()
    services.case_reopen(actor=users["town_hutang"], case=case, reason="再次辍学")
    assert children_visible_to(worker).filter(pk=child.pk).exists()
    # Withdrawing the assignment ends it too.
    services.case_assign_worker(actor=users["town_hutang"], case=case, worker=None)
    assert not children_visible_to(worker).filter(pk=child.pk).exists()
    assert list(open_cases_for(worker)) == []


def test_the_worker_pages(client, users, case, child):
    client.force_login(users["town_hutang"])
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert "指派承接社工" in page and "武进区阳光社会工作服务中心（示例） · 阳光社工（演示）" in page
    response = client.post(f"/cases/{case.pk}/worker/", {"worker": users["social_worker"].pk})
    assert response.status_code == 302
    client.force_login(users["social_worker"])
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert "调查评估" in page and f"/cases/{case.pk}/worker/" not in page  # works the case, does not reassign it
    assert client.post(f"/cases/{case.pk}/worker/", {"worker": ""}).status_code == 403
    assert child.name in client.get("/cases/").content.decode()
