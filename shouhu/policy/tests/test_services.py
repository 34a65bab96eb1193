"""The engine applied to the ledger: proposals, confirmation, entitlements and the unit's inbox."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from shouhu.org.models import Organization
from shouhu.policy.models import (
    ChildCategory,
    ChildEntitlement,
    EntitlementState,
    Proposal,
    ProposalState,
)
from shouhu.policy.services import (
    entitlement_record,
    evaluate_child,
    manual_category_set,
    proposal_decide,
    reevaluate_all,
)
from shouhu.registry import services as registry
from shouhu.registry.selectors import children_visible_to
from shouhu.tasks.models import Task
from shouhu.tasks.selectors import inbox_for

AS_OF = date(2026, 11, 28)


@pytest.fixture
def left_behind_child(make_child, hutang_village, users):
    child = make_child(hutang_village, name="留守甲", birth=date(2016, 4, 1))
    for relation in ("father", "mother"):
        registry.member_create(
            actor=users["district"],
            child=child,
            data={
                "relation": relation,
                "name": "家长",
                "id_number": "",
                "phone": "",
                "work_place": "苏州",
                "is_guardian": True,
                "capacity": "full",
                "birth_date": None,
                "situations": [
                    {
                        "kind": "out_for_work",
                        "since": date(2024, 1, 1),
                        "until": None,
                        "disability_grade": None,
                        "disability_type": "",
                        "note": "",
                    }
                ],
            },
        )
    return child


def pending(child, code):
    return Proposal.objects.get(child=child, code=code, state=ProposalState.PENDING)


def test_evaluation_proposes_and_never_decides(left_behind_child):
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    proposal = pending(left_behind_child, "left_behind")
    assert "国发〔2016〕13号" in proposal.explanation
    assert not ChildCategory.objects.filter(child=left_behind_child).exists()
    assert not ChildEntitlement.objects.filter(child=left_behind_child).exists()


def test_reevaluating_does_not_duplicate_proposals(left_behind_child):
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    assert Proposal.objects.filter(child=left_behind_child, code="left_behind").count() == 1


def test_confirming_creates_the_category_entitlements_and_unit_tasks(left_behind_child, users):
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    proposal_decide(
        actor=users["town_hutang"], proposal=pending(left_behind_child, "left_behind"), confirm=True, reason=""
    )
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)  # on_commit does not run inside a test transaction
    category = ChildCategory.objects.get(child=left_behind_child, code="left_behind", valid_to__isnull=True)
    assert category.confirmed_by == users["town_hutang"]
    codes = set(ChildEntitlement.objects.filter(child=left_behind_child).values_list("code", flat=True))
    assert {"family_education", "day_care", "entrustment", "home_visits"} <= codes
    women = Organization.objects.get(code="women_federation")
    task = Task.objects.get(owner=women, child=left_behind_child, need_type__code="family_education")
    assert task.due_at.date() > AS_OF
    # The task shares the child with the unit, read-only.
    staff = users["education"]
    staff.organization = women
    staff._scope_cache = None
    assert children_visible_to(staff).filter(pk=left_behind_child.pk).exists()
    assert task in inbox_for(staff)


def test_rejecting_needs_a_reason(left_behind_child, users):
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    with pytest.raises(ValidationError):
        proposal_decide(
            actor=users["town_hutang"], proposal=pending(left_behind_child, "left_behind"), confirm=False, reason=" "
        )
    proposal = proposal_decide(
        actor=users["town_hutang"],
        proposal=pending(left_behind_child, "left_behind"),
        confirm=False,
        reason="父母已返乡，登记待更新",
    )
    assert proposal.state == ProposalState.REJECTED


def test_turning_16_proposes_to_end_left_behind(left_behind_child, users):
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    proposal_decide(
        actor=users["town_hutang"], proposal=pending(left_behind_child, "left_behind"), confirm=True, reason=""
    )
    evaluate_child(child_id=left_behind_child.pk, as_of=date(2032, 4, 2))
    removal = pending(left_behind_child, "left_behind")
    assert removal.kind == "remove" and "已满16周岁" in removal.explanation
    proposal_decide(actor=users["town_hutang"], proposal=removal, confirm=True, reason="年满16周岁")
    category = ChildCategory.objects.get(child=left_behind_child, code="left_behind")
    assert category.valid_to is not None  # ended, kept


def test_recording_an_entitlement_closes_the_task(left_behind_child, users):
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    proposal_decide(
        actor=users["town_hutang"], proposal=pending(left_behind_child, "left_behind"), confirm=True, reason=""
    )
    evaluate_child(child_id=left_behind_child.pk, as_of=AS_OF)
    ent = ChildEntitlement.objects.get(child=left_behind_child, code="family_education")
    with pytest.raises(ValidationError):
        entitlement_record(actor=users["district"], entitlement=ent, state="refused", version=ent.version, reason="")
    entitlement_record(actor=users["district"], entitlement=ent, state="receiving", version=ent.version, on=AS_OF)
    ent.refresh_from_db()
    assert ent.state == EntitlementState.RECEIVING
    assert Task.objects.get(source_type="entitlement", source_id=str(ent.pk)).state == "done"


def test_manual_category_needs_a_reason_and_changes_the_jiangsu_class(make_child, hutang_village, users):
    child = make_child(hutang_village, name="监护甲")
    with pytest.raises(ValidationError):
        manual_category_set(actor=users["town_hutang"], child=child, code="guardianship_missing", on=True, reason="")
    manual_category_set(
        actor=users["town_hutang"], child=child, code="guardianship_missing", on=True, reason="走访发现长期无人照料"
    )
    evaluate_child(child_id=child.pk, as_of=timezone.localdate())  # the category counts from today
    assert pending(child, "jiangsu_2").kind == "add"
    with pytest.raises(ValidationError):
        manual_category_set(actor=users["town_hutang"], child=child, code="orphan", on=True, reason="x")


def test_nightly_run_writes_only_what_changed(left_behind_child):
    first = reevaluate_all(as_of=AS_OF)
    assert first["changed"] >= 1
    assert reevaluate_all(as_of=AS_OF)["changed"] == 0


@pytest.mark.django_db
def test_a_primary_route_to_an_uncoded_organisation_is_no_route():
    """The admin lets a route point at an organisation without a code; `routes()` must not map the
    need to None, which the callers' `Organization.objects.filter(code=...)` would match with any
    uncoded organisation (and hand it a child's task)."""
    from shouhu.org.models import NeedRoute, OrgKind
    from shouhu.policy.selectors import routes

    route = NeedRoute.objects.filter(primary=True).select_related("need_type").first()
    assert route is not None and route.need_type.code in routes()
    uncoded = Organization.objects.create(name="无代码单位", kind=OrgKind.MEMBER_UNIT, code=None)
    route.unit = uncoded
    route.save()
    assert route.need_type.code not in routes()


@pytest.mark.django_db
def test_deletions_inside_deleting_children_schedule_no_evaluation(make_child, hutang_village, monkeypatch):
    from shouhu.policy import signals
    from shouhu.registry.models import Child, FamilyMember

    first, second = make_child(hutang_village), make_child(hutang_village, name="李小红")
    scheduled: list = []
    monkeypatch.setattr(signals, "schedule", scheduled.append)
    FamilyMember.objects.create(child=first, relation="father", name="张大")
    FamilyMember.objects.create(child=second, relation="father", name="李大")
    scheduled.clear()
    Child.objects.filter(pk=first.pk).delete()
    assert first.pk in scheduled
    scheduled.clear()
    with signals.deleting_children():
        Child.objects.filter(pk=second.pk).delete()
    assert scheduled == []


@pytest.mark.django_db
def test_changes_inside_evaluated_by_caller_schedule_no_evaluation(make_child, hutang_village, monkeypatch):
    from shouhu.policy import signals
    from shouhu.registry.models import FamilyMember

    child = make_child(hutang_village)
    scheduled: list = []
    monkeypatch.setattr(signals, "schedule", scheduled.append)
    with signals.evaluated_by_caller():
        member = FamilyMember.objects.create(child=child, relation="father", name="张大")
        child.name = "张小亮"
        child.save()
        member.delete()
    assert scheduled == []
    child.save()
    assert scheduled == [child.pk]
