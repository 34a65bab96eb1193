"""The policy pages as their users meet them."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from shouhu.org.models import Organization
from shouhu.policy.models import ChildEntitlement, PolicyParameter, Proposal, ProposalState
from shouhu.policy.selectors import params_on
from shouhu.policy.services import evaluate_child
from shouhu.tasks.models import Task


@pytest.fixture
def poor_child(make_child, hutang_village, users):
    from shouhu.registry import services

    child = make_child(hutang_village, name="低保甲", birth=date(2014, 6, 1))
    services.household_update(
        actor=users["district"], child=child, data={"economic_status": "dibao"}, version=child.household.version
    )
    evaluate_child(child_id=child.pk)
    return child


def decide(client, child, code, decision, reason=""):
    proposal = Proposal.objects.get(child=child, code=code, state=ProposalState.PENDING)
    return client.post(reverse("policy:decide", args=[child.pk, proposal.pk]), {"decision": decision, "reason": reason})


def test_town_supervisor_confirms_from_the_work_list_and_the_units_get_tasks(client, users, poor_child):
    client.force_login(users["town_hutang"])
    listing = client.get(reverse("policy:proposals")).content.decode()
    assert poor_child.name in listing and "低保、特困、低保边缘家庭儿童" in listing
    assert decide(client, poor_child, "poverty", "confirm").status_code == 302
    assert decide(client, poor_child, "jiangsu_5", "confirm").status_code == 302
    evaluate_child(child_id=poor_child.pk)  # what on_commit does outside a test transaction
    page = client.get(reverse("policy:child", args=[poor_child.pk])).content.decode()
    assert "已认定类别" in page and "住房保障" in page and "教育资助" in page
    housing = Organization.objects.get(code="housing")
    assert Task.objects.filter(owner=housing, child=poor_child, state="open").exists()


def test_rejecting_without_a_reason_is_refused_with_a_message(client, users, poor_child):
    client.force_login(users["town_hutang"])
    response = decide(client, poor_child, "poverty", "reject")
    assert response.status_code == 302
    assert Proposal.objects.get(child=poor_child, code="poverty", state=ProposalState.PENDING)
    follow = client.get(response["Location"]).content.decode()
    assert "驳回时请填写理由" in follow


def test_village_director_sees_proposals_but_cannot_decide(client, users, poor_child):
    client.force_login(users["village_hutang"])
    page = client.get(reverse("policy:child", args=[poor_child.pk])).content.decode()
    assert "由镇（街道）儿童督导员或区民政局确认" in page
    assert decide(client, poor_child, "poverty", "confirm").status_code == 403


def test_the_responsible_unit_records_the_entitlement_and_the_task_closes(client, users, poor_child):
    client.force_login(users["town_hutang"])
    decide(client, poor_child, "poverty", "confirm")
    decide(client, poor_child, "jiangsu_5", "confirm")
    evaluate_child(child_id=poor_child.pk)
    ent = ChildEntitlement.objects.get(child=poor_child, code="education_aid")
    staff = users["education"]  # 区教育局, the unit responsible
    client.force_login(staff)
    inbox = client.get(reverse("tasks:inbox")).content.decode()
    assert "教育资助" in inbox and poor_child.name in inbox
    url = reverse("policy:entitlement", args=[poor_child.pk, ent.pk])
    response = client.post(
        url,
        {
            f"e{ent.pk}-state": "receiving",
            f"e{ent.pk}-on": "2026-09-01",
            f"e{ent.pk}-amount": "500",
            f"e{ent.pk}-reason": "",
            f"e{ent.pk}-version": ent.version,
        },
    )
    assert response.status_code == 302
    ent.refresh_from_db()
    assert ent.state == "receiving" and ent.amount_granted == 500
    assert Task.objects.get(source_type="entitlement", source_id=str(ent.pk)).state == "done"
    # Another unit may not record it, and does not even learn the child exists.
    client.force_login(users["police"])
    assert client.post(url, {f"e{ent.pk}-state": "refused", f"e{ent.pk}-version": ent.version}).status_code == 404


def test_ledger_filters_by_category_class_and_open_work(client, users, poor_child, make_child, hutang_village):
    other = make_child(hutang_village, name="普通乙")
    client.force_login(users["town_hutang"])
    pending = client.get(reverse("registry:ledger"), {"work": "proposal"}).content.decode()
    assert poor_child.name in pending and other.name not in pending
    decide(client, poor_child, "poverty", "confirm")
    decide(client, poor_child, "jiangsu_5", "confirm")
    evaluate_child(child_id=poor_child.pk)
    for params in ({"category": "poverty"}, {"jiangsu": "5"}, {"work": "gap"}):
        html = client.get(reverse("registry:ledger"), params).content.decode()
        assert poor_child.name in html and other.name not in html, params


def test_district_home_counts_categories_per_town(client, users, poor_child):
    client.force_login(users["town_hutang"])
    decide(client, poor_child, "poverty", "confirm")
    client.force_login(users["district"])
    html = client.get(reverse("home")).content.decode()
    assert "各镇（街道、开发区）在册儿童与认定类别" in html and "湖塘镇" in html
    assert poor_child.name not in client.get(reverse("stats")).content.decode()


def test_district_sets_a_parameter_version_and_bad_values_get_a_chinese_message(client, users):
    client.force_login(users["district"])
    url = reverse("policy:parameters")
    bad = client.post(
        url, {"key": "jiangsu_class2_ratio", "value": "1.5", "effective_from": "2026-12-01", "source": "测试"}
    )
    assert bad.status_code == 400 and "比例在0到1之间" in bad.content.decode()
    ok = client.post(
        url,
        {
            "key": "orphan_scattered_monthly",
            "value": "1800",
            "effective_from": "2026-12-01",
            "source": "常民发〔2026〕1号",
        },
    )
    assert ok.status_code == 302
    assert PolicyParameter.objects.get(key="orphan_scattered_monthly").value == "1800"
    assert (
        params_on(date(2026, 11, 30)).orphan_scattered_monthly != params_on(date(2026, 12, 1)).orphan_scattered_monthly
    )
    client.force_login(users["town_hutang"])
    assert client.get(url).status_code == 403
