"""Case pages: the owner works the case; an outsider gets 404, unit staff 403; the chronology is in order."""

from __future__ import annotations

import pytest
from django.urls import reverse

from shouhu.audit.models import AuditEvent
from shouhu.cases import services
from shouhu.cases.models import Case, CaseState
from shouhu.cases.tests.conftest import make_scores
from shouhu.tasks import services as task_services
from shouhu.tasks.models import Task

pytestmark = pytest.mark.django_db


def _client(client, user):
    client.force_login(user)
    return client


def test_open_assess_and_list(client, users, child):
    c = _client(client, users["town_hutang"])
    assert c.get(reverse("cases:new") + f"?child={child.pk}").status_code == 200
    response = c.post(reverse("cases:new"), {"child": str(child.pk), "opened_from": "by_hand", "source_ref": ""})
    case = Case.objects.get(child=child, state=CaseState.OPEN)
    assert response.status_code == 302 and response["Location"] == reverse("cases:assess", args=[case.pk])
    data = {f"score_{k}": v for k, v in make_scores(safety=3).items()} | {"evidence_safety": "夜间独自在家"}
    assert c.post(reverse("cases:assess", args=[case.pk]), data).status_code == 302
    page = c.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "安全处境评分为3" in page and "夜间独自在家" in page
    assert AuditEvent.objects.filter(object_type="case", object_id=str(case.pk), action="view").exists()
    listing = c.get(reverse("cases:list")).content.decode()
    assert child.name in listing and "sh-risk-orange" in listing


def test_previous_scores_shown_beside(client, users, case):
    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(housing=3))
    page = _client(client, users["town_hutang"]).get(reverse("cases:assess", args=[case.pk])).content.decode()
    assert "上次" in page


def test_outsider_gets_404_and_unit_staff_403(client, users, case, child):
    for name in ("town_niutang",):
        c = _client(client, users[name])
        assert c.get(reverse("cases:detail", args=[case.pk])).status_code == 404
        assert c.get(reverse("cases:chronology", args=[child.pk])).status_code == 404
        assert c.post(reverse("cases:goal", args=[case.pk]), {"text": "x"}).status_code == 404
        assert c.get(reverse("cases:new") + f"?child={child.pk}").status_code == 404
    c = _client(client, users["education"])
    assert c.get(reverse("cases:detail", args=[case.pk])).status_code == 403
    assert c.get(reverse("cases:list")).status_code == 403


def test_decline_reason_shown_and_re_referral(client, users, referred):
    case = referred.goal.case
    task = Task.objects.get(owner__code="education", source_id__startswith=f"{referred.pk}:")
    task_services.task_decline(actor=users["education"], task=task, reason="请先由学校劝返")
    c = _client(client, users["town_hutang"])
    page = c.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "请先由学校劝返" in page
    assert "重新转介" not in page  # the school's referral is still open
    school = Task.objects.get(owner=users["school_hutang"].organization)
    task_services.task_decline(actor=users["school_hutang"], task=school, reason="非本校学生")
    assert "重新转介" in c.get(reverse("cases:detail", args=[case.pk])).content.decode()
    response = c.post(reverse("cases:refer", args=[case.pk]), {"action": referred.pk, "note": "已核实"})
    assert response.status_code == 302
    assert Task.objects.filter(source_id__startswith=f"{referred.pk}:", state="open").count() == 2


def test_high_risk_close_goes_to_district(client, users, case):
    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(guardianship=4))
    c = _client(client, users["town_hutang"])
    c.post(reverse("cases:close", args=[case.pk]), {"reason": "risk_removed", "summary": "已落实监护"})
    case.refresh_from_db()
    assert case.state == CaseState.OPEN and case.awaiting_approval
    assert c.post(reverse("cases:approve", args=[case.pk])).status_code == 403
    d = _client(client, users["district"])
    assert "待审批结案" in d.get(reverse("cases:list")).content.decode()
    d.post(reverse("cases:approve", args=[case.pk]), {"note": "同意"})
    case.refresh_from_db()
    assert case.state == CaseState.CLOSED


def test_chronology_in_order_and_filterable(client, users, referred):
    case = referred.goal.case
    services.assessment_add(actor=users["town_hutang"], case=case, scores=make_scores(housing=3))
    task = Task.objects.get(owner__code="education", source_id__startswith=f"{referred.pk}:")
    task_services.task_decline(actor=users["education"], task=task, reason="转学校")
    c = _client(client, users["town_hutang"])
    response = c.get(reverse("cases:chronology", args=[case.child_id]))
    items = response.context["items"]
    assert [i.at for i in items] == sorted(i.at for i in items)
    kinds = {i.kind for i in items}
    assert {"ledger", "case", "referral", "assessment"} <= kinds
    titles = [i.title for i in items]
    opened = next(n for n, t in enumerate(titles) if "立案" in t)
    declined = next(n for n, t in enumerate(titles) if "退回" in t)
    assert opened < declined
    only = c.get(reverse("cases:chronology", args=[case.child_id]) + "?kind=referral").context["items"]
    assert only and {i.kind for i in only} == {"referral"}
