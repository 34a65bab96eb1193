"""Writes to the ledger: one transaction each, optimistic locking, and an audit event per change."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from shouhu.audit.models import AuditEvent
from shouhu.audit.services import verify_chain
from shouhu.conftest import new_id_number
from shouhu.lib.idnumber import make_id_number
from shouhu.registry import services
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation


def events_for(child: Child) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type="child", object_id=str(child.pk)).order_by("seq"))


def counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (Child, Household, FamilyMember, ParentSituation, Entrustment, AuditEvent)
    )


FATHER = {
    "relation": "father",
    "name": "张大山",
    "id_number": make_id_number("320402", date(1986, 2, 3), 11),
    "phone": "13812345678",
    "work_place": "苏州",
    "is_guardian": True,
    "capacity": "full",
    "situations": [{"kind": "out_for_work", "since": date(2023, 2, 1)}],
}
MOTHER = {
    "relation": "mother",
    "name": "李小芳",
    "phone": "13912345678",
    "is_guardian": True,
    "capacity": "full",
    "situations": [{"kind": "out_for_work", "since": date(2023, 3, 1)}],
}
CARER = {
    "carer_name": "张奶奶",
    "carer_relation": "grandmother_p",
    "carer_phone": "13711112222",
    "carer_birth_date": date(1958, 1, 1),
    "since": date(2023, 2, 1),
    "agreement_signed": True,
    "agreement_date": date(2023, 2, 1),
    "village_informed": True,
}


def child_data(region, **extra):  # noqa: ANN001, ANN201
    id_number = new_id_number(date(2015, 6, 1))
    return {
        "name": "张小明",
        "id_number": id_number,
        "gender": "M",
        "birth_date": date(2015, 6, 1),
        "region": region,
        "school_stage": "primary",
        "health": "healthy",
        "guardianship_type": "ordinary",
        **extra,
    }


def test_child_create_writes_everything_and_one_audit_event(db, users, hutang_village):
    actor = users["village_hutang"]
    child = services.child_create(
        actor=actor,
        data=child_data(hutang_village),
        household={"address": "湖塘镇示例路2号", "economic_status": "dibao"},
        members=[FATHER, MOTHER],
        entrustment=CARER,
    )
    child.refresh_from_db()
    assert child.registered_by == actor
    assert (child.name_pinyin, child.name_initials) == ("zhangxiaoming", "zxm")
    assert child.household.economic_status == "dibao"
    assert sorted(child.family.values_list("relation", flat=True)) == ["father", "mother"]
    father = child.family.get(relation="father")
    assert father.id_number == FATHER["id_number"] and father.phone == "13812345678"
    assert list(father.situations.values_list("kind", flat=True)) == ["out_for_work"]
    assert child.entrustments.get().carer_name == "张奶奶"
    [event] = events_for(child)
    assert event.action == "create" and event.actor_name == "village_hutang"
    assert event.organization_id == actor.organization_id
    assert event.detail == {"members": 2, "entrustment": True}
    # Every history row names who did it.
    assert Child.history.filter(id=child.pk).get().history_user == actor


def test_child_create_refuses_a_duplicate_without_partial_write(db, users, hutang_village):
    data = child_data(hutang_village)
    services.child_create(actor=users["district"], data=data, household={"address": "甲"})
    before = counts()
    with pytest.raises(ValidationError) as excinfo:
        services.child_create(
            actor=users["district"], data={**data, "name": "李四"}, household={"address": "乙"}, members=[FATHER]
        )
    assert "已在台账中登记" in excinfo.value.message_dict["id_number"][0]
    assert counts() == before


def test_child_create_refuses_invalid_model_data_without_partial_write(db, users, hutang_village):
    before = counts()
    with pytest.raises(ValidationError):
        services.child_create(
            actor=users["district"],
            data=child_data(hutang_village, school_stage="university"),
            household={"address": "甲"},
        )
    assert counts() == before


def test_update_records_changed_fields_but_never_personal_values(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    new_id = new_id_number(date(2015, 3, 8))
    updated = services.child_update(
        actor=users["town_hutang"],
        child=child,
        version=1,
        data={"school_stage": "junior", "id_number": new_id, "name": "张晓明"},
    )
    assert updated.version == 2
    child.refresh_from_db()
    assert child.school_stage == "junior" and child.id_number == new_id
    assert child.name_pinyin == "zhangxiaoming"
    event = events_for(child)[-1]
    assert event.action == "update"
    changes = event.detail["changes"]
    assert changes["school_stage"] == ["primary", "junior"]
    assert changes["id_number"] == ["***", "***"] and changes["name"] == ["***", "***"]
    assert new_id not in str(event.detail) and "张晓明" not in str(event.detail)


def test_update_without_changes_writes_nothing(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    before = counts()
    services.child_update(actor=users["district"], child=child, version=1, data={"school_stage": "primary"})
    child.refresh_from_db()
    assert child.version == 1
    assert counts() == before


@pytest.mark.parametrize("version", [None, 0, 1, 3])
def test_stale_child_update_is_refused_and_changes_nothing(db, users, hutang_village, make_child, version):
    child = make_child(hutang_village)
    services.child_update(actor=users["district"], child=child, version=1, data={"grade": "三年级"})
    before = counts()
    with pytest.raises(services.StaleEdit) as excinfo:
        services.child_update(actor=users["town_hutang"], child=child, version=version, data={"grade": "四年级"})
    assert excinfo.value.current_version == 2
    assert "他人修改" in excinfo.value.message
    child.refresh_from_db()
    assert child.grade == "三年级" and child.version == 2
    assert counts() == before


def test_household_update_and_stale_household(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    hh = services.household_update(
        actor=users["district"], child=child, version=1, data={"economic_status": "tekun", "address": "新地址1号"}
    )
    assert hh.version == 2 and hh.address == "新地址1号"
    event = events_for(child)[-1]
    assert event.detail["household"]["address"] == ["***", "***"]
    assert event.detail["household"]["economic_status"] == ["ordinary", "tekun"]
    with pytest.raises(services.StaleEdit):
        services.household_update(actor=users["district"], child=child, version=1, data={"housing": "危房"})
    assert Household.objects.get(pk=hh.pk).housing == ""


def test_household_is_created_when_missing(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    Child.objects.filter(pk=child.pk).update(household=None)
    child.refresh_from_db()
    hh = services.household_update(actor=users["district"], child=child, version=None, data={"address": "新建1号"})
    child.refresh_from_db()
    assert child.household_id == hh.pk


def test_member_update_replaces_situations_and_checks_version(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    member = services.member_create(actor=users["district"], child=child, data=FATHER)
    updated = services.member_update(
        actor=users["district"],
        member=member,
        version=1,
        data={"work_place": "上海"},
        situations=[{"kind": "serious_illness", "since": date(2024, 1, 1)}],
    )
    assert updated.version == 2
    assert list(updated.situations.values_list("kind", flat=True)) == ["serious_illness"]
    event = events_for(child)[-1]
    # Counts only: situation kinds carry sensitivity labels the audit administrator is not cleared for.
    assert event.detail["changes"]["situations"] == [1, 1]
    before = counts()
    with pytest.raises(services.StaleEdit):
        services.member_update(
            actor=users["district"], member=member, version=1, data={"work_place": "杭州"}, situations=[]
        )
    assert counts() == before
    assert FamilyMember.objects.get(pk=member.pk).work_place == "上海"


def test_member_delete_checks_version(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    member = services.member_create(actor=users["district"], child=child, data=MOTHER)
    with pytest.raises(services.StaleEdit):
        services.member_delete(actor=users["district"], member=member, version=7)
    assert FamilyMember.objects.filter(pk=member.pk).exists()
    services.member_delete(actor=users["district"], member=member, version=1)
    assert not FamilyMember.objects.filter(pk=member.pk).exists()
    assert events_for(child)[-1].detail == {"member_removed": "母亲"}


def test_entrustment_save_create_then_stale(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    ent = services.entrustment_save(actor=users["district"], child=child, data=CARER, entrustment=None, version=None)
    assert ent.version == 1
    services.entrustment_save(
        actor=users["district"], child=child, data={"school_informed": True}, entrustment=ent, version=1
    )
    with pytest.raises(services.StaleEdit):
        services.entrustment_save(
            actor=users["district"], child=child, data={"village_informed": False}, entrustment=ent, version=1
        )
    ent.refresh_from_db()
    assert ent.version == 2 and ent.village_informed is True and ent.school_informed is True


def test_exit_and_reenter(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    actor = users["village_hutang"]
    exited = services.child_exit(
        actor=actor, child=child, reason="moved_away", exit_date=date(2025, 9, 1), note="随父母迁往上海", version=1
    )
    assert (exited.status, exited.exit_reason, exited.exit_date, exited.version) == (
        "exited",
        "moved_away",
        date(2025, 9, 1),
        2,
    )
    with pytest.raises(ValidationError):
        services.child_exit(actor=actor, child=child, reason="other", exit_date=date(2025, 9, 2), note="", version=2)
    back = services.child_reenter(actor=actor, child=child, note="已返回本村居住", version=2)
    assert (back.status, back.exit_reason, back.exit_date, back.exit_note, back.version) == ("active", "", None, "", 3)
    with pytest.raises(ValidationError):
        services.child_reenter(actor=actor, child=child, note="again", version=3)
    actions = [e.action for e in events_for(child)]
    assert actions[-2:] == ["exit", "reenter"]
    assert events_for(child)[-2].detail == {"reason": "moved_away", "date": "2025-09-01"}
    history = list(Child.history.filter(id=child.pk).order_by("history_date").values_list("status", flat=True))
    assert history == ["active", "exited", "active"]


def test_exit_before_birth_is_refused(db, users, hutang_village, make_child):
    child = make_child(hutang_village, birth=date(2015, 3, 8))
    with pytest.raises(ValidationError) as excinfo:
        services.child_exit(
            actor=users["district"], child=child, reason="other", exit_date=date(2015, 1, 1), note="", version=1
        )
    assert "出生日期" in excinfo.value.message_dict["exit_date"][0]
    child.refresh_from_db()
    assert child.status == "active"


def test_stale_exit_is_refused(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    with pytest.raises(services.StaleEdit):
        services.child_exit(
            actor=users["district"], child=child, reason="other", exit_date=date(2025, 1, 1), note="", version=5
        )
    child.refresh_from_db()
    assert child.status == "active"


def test_audit_chain_holds_after_a_series_of_writes(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    services.child_update(actor=users["district"], child=child, version=1, data={"grade": "二年级"})
    services.child_exit(
        actor=users["district"], child=child, reason="other", exit_date=date(2025, 1, 1), note="", version=2
    )
    result = verify_chain()
    assert result.ok, result
