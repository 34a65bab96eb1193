"""Visits: plans follow categories, risk and visits; records are idempotent; findings become work."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.visits import services
from shouhu.visits.models import RiskAssessment, Visit, VisitPlan, VisitState

pytestmark = pytest.mark.django_db(transaction=False)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _data(**extra):
    today = timezone.localdate()
    return {
        "visited_on": today,
        "mode": "home",
        "met": ["child", "carer"],
        "checklist": {k: {"ok": True, "note": ""} for k in ("living", "safety", "food", "school", "health", "mood")},
        "child_lives_alone": False,
        "parents_contact_weekly": True,
        "parents_last_contact": today,
        "carer_performance": "good",
        "guardianship_assessment": "good",
        "notes": "",
        "location": "",
        **extra,
    }


def _confirm(child, code, actor):
    from shouhu.policy.models import ChildCategory

    ChildCategory.objects.create(
        child=child, code=code, explanation="测试", valid_from=date(2026, 1, 1), confirmed_by=actor
    )


def test_new_child_gets_a_first_visit_due(make_child, hutang_village, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        child = make_child(hutang_village)
    plan = VisitPlan.objects.get(child=child)
    assert plan.first_visit and plan.next_due > timezone.localdate() and plan.region_id == hutang_village.code


def test_visit_moves_the_due_date_and_category_sets_the_interval(
    make_child, hutang_village, users, django_capture_on_commit_callbacks
):
    director = users["village_hutang"]
    with django_capture_on_commit_callbacks(execute=True):
        child = make_child(hutang_village)
        _confirm(child, "left_behind", users["town_hutang"])
    with django_capture_on_commit_callbacks(execute=True):
        services.visit_save(
            actor=director, child=child, data=_data(visited_on=date(2026, 11, 2)), key=uuid.uuid4(), submit=True
        )
    plan = VisitPlan.objects.get(child=child)
    assert not plan.first_visit and plan.interval_days == 30 and plan.next_due == date(2026, 12, 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.risk_set(actor=director, child=child, level="orange", reason="父母失联两周")
    plan.refresh_from_db()
    assert plan.interval_days == 14 and plan.next_due == date(2026, 11, 16) and plan.risk_level == "orange"
    assert RiskAssessment.objects.filter(child=child).count() == 1


def test_a_draft_or_returned_visit_is_not_the_last_visit(
    make_child, hutang_village, users, django_capture_on_commit_callbacks
):
    director = users["village_hutang"]
    with django_capture_on_commit_callbacks(execute=True):
        child = make_child(hutang_village)
        _confirm(child, "left_behind", director)
        services.visit_save(
            actor=director, child=child, data=_data(visited_on=date(2026, 11, 2)), key=uuid.uuid4(), submit=False
        )
    assert VisitPlan.objects.get(child=child).first_visit
    with django_capture_on_commit_callbacks(execute=True):
        visit, _ = services.visit_save(
            actor=director, child=child, data=_data(visited_on=date(2026, 11, 3)), key=uuid.uuid4(), submit=True
        )
    assert VisitPlan.objects.get(child=child).last_visit_on == date(2026, 11, 3)
    with django_capture_on_commit_callbacks(execute=True):
        services.visit_return(actor=users["town_hutang"], visit=visit, comment="请补充父母联系情况")
    plan = VisitPlan.objects.get(child=child)
    assert plan.last_visit_on is None and plan.first_visit


def test_the_same_key_twice_is_one_visit(make_child, hutang_village, users):
    child = make_child(hutang_village)
    key = uuid.uuid4()
    first, created = services.visit_save(actor=users["village_hutang"], child=child, data=_data(), key=key, submit=True)
    again, created_again = services.visit_save(
        actor=users["village_hutang"], child=child, data=_data(notes="x"), key=key, submit=True
    )
    assert created and not created_again and first.pk == again.pk
    assert Visit.objects.filter(child=child).count() == 1 and again.notes == ""


def test_visit_rules(make_child, hutang_village, users):
    child = make_child(hutang_village)
    actor = users["village_hutang"]
    with pytest.raises(ValidationError):
        services.visit_save(
            actor=actor,
            child=child,
            data=_data(visited_on=timezone.localdate() + timedelta(days=1)),
            key=uuid.uuid4(),
            submit=True,
        )
    with pytest.raises(ValidationError):
        services.visit_save(
            actor=actor, child=child, data=_data(), key=uuid.uuid4(), submit=True, photos=[b"GIF89a" + b"\0" * 10]
        )
    assert not Visit.objects.filter(child=child).exists()  # nothing half-written
    visit, _ = services.visit_save(actor=actor, child=child, data=_data(), key=uuid.uuid4(), submit=True, photos=[PNG])
    assert visit.photos.get().content_type == "image/png"
    with pytest.raises(ValidationError):  # a submitted record is not edited in place
        services.visit_save(
            actor=actor,
            child=child,
            data=_data(),
            key=visit.idempotency_key,
            submit=True,
            visit=visit,
            version=visit.version,
        )
    with pytest.raises(ValidationError):
        services.risk_set(actor=actor, child=child, level="red", reason=" ")


def test_help_request_routes_by_the_duty_catalogue(make_child, hutang_village, users):
    child = make_child(hutang_village)
    task = services.help_request(actor=users["village_hutang"], child=child, need_code="dropout", note="已两周未到校")
    assert task.owner.code == "education" and task.child_id == child.pk and task.kind == "referral"
    again = services.help_request(actor=users["village_hutang"], child=child, need_code="dropout", note="")
    assert again.pk == task.pk  # idempotent while open


# ----- pages -----------------------------------------------------------------------------------------


def test_director_records_a_visit_on_the_page(client, make_child, hutang_village, users):
    child = make_child(hutang_village)
    client.force_login(users["village_hutang"])
    page = client.get(reverse("visits:new", args=[child.pk]))
    assert page.status_code == 200
    key = page.context["key"]
    form = {
        "key": str(key),
        "visited_on": timezone.localdate().isoformat(),
        "mode": "home",
        "met": ["child"],
        "guardianship_assessment": "fair",
        "action": "submit",
        **{f"check_{k}": "ok" for k in ("living", "safety", "food", "school", "health", "mood")},
    }
    response = client.post(reverse("visits:new", args=[child.pk]), form, HTTP_ACCEPT="application/json")
    assert response.status_code == 201 and response.json()["created"]
    again = client.post(reverse("visits:new", args=[child.pk]), form, HTTP_ACCEPT="application/json")
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
    assert Visit.objects.filter(child=child).count() == 1
    bad = client.post(
        reverse("visits:new", args=[child.pk]),
        {**form, "key": str(uuid.uuid4()), "check_safety": "concern"},
        HTTP_ACCEPT="application/json",
    )
    assert bad.status_code == 400 and "note_safety" in bad.json()["errors"]


def test_outsider_cannot_see_or_visit(client, make_child, hutang_village, users):
    child = make_child(hutang_village)
    client.force_login(users["village_niutang"])
    assert client.get(reverse("visits:new", args=[child.pk])).status_code == 404
    assert client.get(reverse("visits:child", args=[child.pk])).status_code == 404
    visit, _ = services.visit_save(
        actor=users["village_hutang"], child=child, data=_data(), key=uuid.uuid4(), submit=True
    )
    assert client.get(reverse("visits:detail", args=[visit.pk])).status_code == 404
    client.force_login(users["leader"])
    assert client.get(reverse("visits:due")).status_code == 403


def test_due_list_most_overdue_first(client, make_child, hutang_village, users, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        a = make_child(hutang_village, name="甲小明")
        b = make_child(hutang_village, name="乙小明")
    today = timezone.localdate()
    VisitPlan.objects.filter(child=a).update(next_due=today - timedelta(days=3))
    VisitPlan.objects.filter(child=b).update(next_due=today - timedelta(days=10))
    client.force_login(users["village_hutang"])
    page = client.get(reverse("visits:due"), {"due": "overdue"})
    names = [plan.child.name for plan, _late in page.context["rows"]]
    assert names.index("乙小明") < names.index("甲小明")
    assert dict((plan.child.name, late) for plan, late in page.context["rows"])["乙小明"] == 10
    VisitPlan.objects.filter(child=a).update(next_due=today)  # due today is not overdue
    page = client.get(reverse("visits:due"), {"due": "overdue"})
    assert "甲小明" not in [plan.child.name for plan, _late in page.context["rows"]]


def test_visit_page_proposes_findings_and_is_audited(client, make_child, hutang_village, users):
    child = make_child(hutang_village, birth=date(2014, 5, 1))
    visit, _ = services.visit_save(
        actor=users["village_hutang"],
        child=child,
        key=uuid.uuid4(),
        submit=True,
        data=_data(child_lives_alone=True, guardianship_assessment="poor", parents_contact_weekly=False),
    )
    client.force_login(users["town_hutang"])
    before = AuditEvent.objects.filter(object_type="visit", object_id=str(visit.pk), action="view").count()
    page = client.get(reverse("visits:detail", args=[visit.pk]))
    codes = {f.code for f in page.context["findings"]}
    assert codes == {"alone_under_16", "poor_guardianship", "parents_no_contact"}
    assert page.context["can_return"]
    assert AuditEvent.objects.filter(object_type="visit", object_id=str(visit.pk), action="view").count() == before + 1
    response = client.post(reverse("visits:return", args=[visit.pk]), {"comment": "请补充照护人情况"})
    assert response.status_code == 302
    visit.refresh_from_db()
    assert visit.state == VisitState.RETURNED


def test_photo_only_to_those_who_see_the_child(client, make_child, hutang_village, users):
    child = make_child(hutang_village)
    visit, _ = services.visit_save(
        actor=users["village_hutang"], child=child, data=_data(), key=uuid.uuid4(), submit=True, photos=[PNG]
    )
    photo = visit.photos.get()
    client.force_login(users["town_hutang"])
    response = client.get(reverse("visits:photo", args=[photo.pk]))
    assert response.status_code == 200 and response.content == PNG and "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(object_type="visit_photo", object_id=str(photo.pk)).exists()
    client.force_login(users["village_niutang"])
    assert client.get(reverse("visits:photo", args=[photo.pk])).status_code == 404


def test_entrustment_tab_lists_left_behind_children_without_agreement(client, make_child, hutang_village, users):
    from shouhu.registry import services as registry

    child = make_child(hutang_village, name="留小守", lives_with_parents=False)
    for relation in ("father", "mother"):
        registry.member_create(
            actor=users["district"],
            child=child,
            data={
                "relation": relation,
                "name": "家长" + relation[:1],
                "id_number": "",
                "birth_date": None,
                "phone": "",
                "work_place": "苏州",
                "is_guardian": True,
                "capacity": "full",
                "situations": [
                    {
                        "kind": "out_for_work",
                        "since": date(2025, 1, 1),
                        "until": None,
                        "note": "",
                        "disability_grade": None,
                        "disability_type": "",
                    }
                ],
            },
        )
    client.force_login(users["village_hutang"])
    page = client.get(reverse("visits:due"), {"due": "entrustment"})
    assert page.status_code == 200
    assert child.pk in [need.child.pk for need in page.context["needs"]]
    client.force_login(users["district"])
    page = client.get(reverse("visits:due"), {"due": "entrustment"})
    assert page.context["towns"] is not None  # the district picks a town first
    page = client.get(reverse("visits:due"), {"due": "entrustment", "town": hutang_village.code[:9] + "000"})
    assert child.pk in [need.child.pk for need in page.context["needs"]]


def test_a_child_who_leaves_the_ledger_loses_its_plan_and_gets_it_back(
    make_child, hutang_village, users, django_capture_on_commit_callbacks
):
    """The due lists do not join the children: a plan exists only while its child is in the ledger."""
    from shouhu.registry import services as registry

    with django_capture_on_commit_callbacks(execute=True):
        child = make_child(hutang_village)
    assert VisitPlan.objects.filter(child=child).exists()
    with django_capture_on_commit_callbacks(execute=True):
        child = registry.child_exit(
            actor=users["district"],
            child=child,
            reason="parent_returned",
            exit_date=timezone.localdate(),
            note="",
            version=child.version,
        )
    assert not VisitPlan.objects.filter(child=child).exists()
    with django_capture_on_commit_callbacks(execute=True):
        registry.child_reenter(actor=users["district"], child=child, note="重新纳入", version=child.version)
    assert VisitPlan.objects.filter(child=child).exists()


def test_a_left_behind_childs_entrusted_care_is_judged_by_the_registrys_rule(client, make_child, hutang_village, users):
    child = make_child(hutang_village, birth=date(2014, 5, 1))
    _confirm(child, "left_behind", users["district"])
    visit, _ = services.visit_save(
        actor=users["village_hutang"], child=child, key=uuid.uuid4(), submit=True, data=_data()
    )
    client.force_login(users["town_hutang"])
    page = client.get(reverse("visits:detail", args=[visit.pk]))
    found = {f.code: f for f in page.context["findings"]}
    assert set(found) == {"no_entrustment"}  # the registry's code and wording, not a second rule
    assert "未登记委托照护" in found["no_entrustment"].message and found["no_entrustment"].action == "facts"
    other = make_child(hutang_village, birth=date(2014, 5, 1))  # not left-behind: no entrustment finding
    visit, _ = services.visit_save(
        actor=users["village_hutang"], child=other, key=uuid.uuid4(), submit=True, data=_data()
    )
    assert client.get(reverse("visits:detail", args=[visit.pk])).context["findings"] == []


def test_reading_a_childs_page_writes_no_plan(client, make_child, hutang_village, users):
    child = make_child(hutang_village)
    VisitPlan.objects.filter(child=child).delete()  # as if the commit hook had not run yet
    client.force_login(users["village_hutang"])
    page = client.get(reverse("visits:child", args=[child.pk]))
    assert page.status_code == 200 and page.context["plan"].next_due is not None
    assert not VisitPlan.objects.filter(child=child).exists()


def test_plans_computed_together_are_each_childs_own(make_child, hutang_village, users):
    """Children planned in one call share a worked-out plan only when everything it depends on is
    the same: here the day registered, a category, a visit and a risk level each tell them apart."""
    from shouhu.registry.models import Child
    from shouhu.visits.services import plans_computed

    director = users["village_hutang"]
    children = [make_child(hutang_village) for _ in range(6)]
    today = timezone.localdate()
    Child.objects.filter(pk=children[1].pk).update(registered_at=timezone.now() - timedelta(days=9))
    _confirm(children[2], "left_behind", director)
    Visit.objects.create(
        child=children[3],
        visited_on=today - timedelta(days=3),
        state=VisitState.SUBMITTED,
        submitted_at=timezone.now(),
        visitor=director,
    )
    RiskAssessment.objects.create(child=children[4], level="red", set_by=director, reason="测试")
    ids = [c.pk for c in children]
    together, _gone = plans_computed(ids, today=today)
    alone = {pk: plans_computed([pk], today=today)[0][pk] for pk in ids}
    assert together == alone
    assert together[children[0].pk] == together[children[5].pk]  # the same in all: one plan
    assert len({tuple(sorted((k, str(v)) for k, v in together[pk].items())) for pk in ids[:5]}) == 5
