"""Ledger pages: register, view, edit (with optimistic locking), exit/re-enter, history, unmask, list."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.conftest import new_id_number
from shouhu.lib.idnumber import make_id_number
from shouhu.registry import services
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation
from shouhu.registry.views import PAGE_SIZE


def counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (Child, Household, FamilyMember, ParentSituation, Entrustment, AuditEvent)
    )


def audit(child: Child, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type="child", object_id=str(child.pk), action=action).order_by("seq"))


def situations(prefix: str, rows: list[dict[str, str]]) -> dict[str, str]:
    data = {
        f"{prefix}-TOTAL_FORMS": str(max(len(rows), 1)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "8",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


FATHER_ID = make_id_number("320402", date(1986, 2, 3), 11)
MOTHER_ID = make_id_number("320402", date(1988, 4, 5), 12)


def create_post(region, **overrides) -> dict[str, str]:  # noqa: ANN001
    """What the browser sends from the registration page: child, household, both parents, carer."""
    data = {
        "name": "张小明",
        "id_number": new_id_number(date(2015, 6, 1)),
        "gender": "",
        "birth_date": "",
        "ethnicity": "汉族",
        "hukou_registered": "on",
        "hukou_type": "rural",
        "hukou_place": "江苏省常州市武进区",
        "region": region.code,
        "health": "healthy",
        "school_stage": "primary",
        "school_name": "湖塘中心小学",
        "grade": "四年级",
        "guardianship_type": "ordinary",
        "guardianship_assessment": "",
        "note": "",
        "hh-address": "武进区湖塘镇示例村8号",
        "hh-economic_status": "ordinary",
        "hh-housing": "",
        "father-relation": "father",
        "father-name": "张大山",
        "father-id_number": FATHER_ID,
        "father-phone": "13812345678",
        "father-work_place": "苏州",
        "father-is_guardian": "on",
        "father-capacity": "full",
        "mother-relation": "mother",
        "mother-name": "李小芳",
        "mother-id_number": MOTHER_ID,
        "mother-phone": "13912345678",
        "mother-work_place": "上海",
        "mother-is_guardian": "on",
        "mother-capacity": "full",
        "carer-carer_name": "张奶奶",
        "carer-carer_relation": "grandmother_p",
        "carer-carer_phone": "13711112222",
        "carer-carer_birth_date": "1960-01-01",
        "carer-since": "2023-02-01",
        "carer-agreement_signed": "on",
        "carer-agreement_date": "2023-02-01",
        "carer-village_informed": "on",
        **situations("father-sit", [{"kind": "out_for_work", "since": "2023-02-01"}]),
        **situations("mother-sit", [{"kind": "out_for_work", "since": "2023-03-01"}]),
    }
    data.update(overrides)
    return data


def child_edit_post(child: Child, **overrides) -> dict[str, str]:
    data = {
        "name": child.name,
        "id_number": child.id_number,
        "gender": child.gender,
        "birth_date": child.birth_date.isoformat(),
        "ethnicity": child.ethnicity,
        "hukou_registered": "on" if child.hukou_registered else "",
        "hukou_type": child.hukou_type,
        "hukou_place": child.hukou_place,
        "region": child.region_id,
        "health": child.health,
        "disability_type": child.disability_type,
        "disability_grade": child.disability_grade or "",
        "illness": child.illness,
        "school_stage": child.school_stage,
        "school_name": child.school_name,
        "grade": child.grade,
        "guardianship_type": child.guardianship_type,
        "guardianship_assessment": child.guardianship_assessment,
        "note": child.note,
        "version": str(child.version),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not False}


@pytest.fixture
def director(client, users):  # noqa: ANN001
    client.force_login(users["village_hutang"])
    return users["village_hutang"]


# ----- registration --------------------------------------------------------------------------


def test_create_page_shows_the_form(client, director):
    response = client.get(reverse("registry:child_create"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="father-sit-TOTAL_FORMS"' in html and 'name="carer-carer_name"' in html


def test_register_child_with_parents_situations_and_carer(client, director, hutang_village):
    data = create_post(hutang_village)
    response = client.post(reverse("registry:child_create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    child = Child.objects.get(id_number_index=services.child_index(data["id_number"]))
    assert response.url == reverse("registry:child_detail", args=[child.pk])
    assert child.region_id == hutang_village.code and child.registered_by == director
    assert child.birth_date == date(2015, 6, 1) and child.gender in {"M", "F"}
    assert child.household.address == "武进区湖塘镇示例村8号"
    father = child.family.get(relation="father")
    mother = child.family.get(relation="mother")
    assert (father.name, father.id_number, father.phone, father.birth_date) == (
        "张大山",
        FATHER_ID,
        "13812345678",
        date(1986, 2, 3),
    )
    assert list(father.situations.values_list("kind", "since")) == [("out_for_work", date(2023, 2, 1))]
    assert list(mother.situations.values_list("kind", flat=True)) == ["out_for_work"]
    carer = child.entrustments.get()
    assert (carer.carer_name, carer.carer_relation, carer.agreement_signed) == ("张奶奶", "grandmother_p", True)
    [event] = audit(child, "create")
    assert event.actor_name == "village_hutang" and event.detail == {"members": 2, "entrustment": True}
    assert event.ip == "127.0.0.1"


def test_register_child_without_parents_or_carer(client, director, hutang_village):
    data = create_post(
        hutang_village,
        **{
            "father-name": "",
            "father-id_number": "",
            "father-phone": "",
            "mother-name": "",
            "mother-id_number": "",
            "mother-phone": "",
            "carer-carer_name": "",
            "carer-carer_relation": "",
            "carer-carer_phone": "",
            "carer-carer_birth_date": "",
            "carer-agreement_signed": "",
            "carer-agreement_date": "",
            "carer-since": "",
        },
    )
    data.update(situations("father-sit", []))
    data.update(situations("mother-sit", []))
    response = client.post(reverse("registry:child_create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    child = Child.objects.get(id_number_index=services.child_index(data["id_number"]))
    assert not child.family.exists() and not child.entrustments.exists()


@pytest.mark.parametrize(
    ("overrides", "field_id", "fragment"),
    [
        ({"id_number": "320412201503081234"}, "id_id_number", "校验位"),
        (
            {"gender": "F", "id_number": make_id_number("320481", date(2015, 6, 1), 11)},
            "id_gender",
            "性别与身份证号不一致",
        ),
        (
            {"birth_date": "2015-06-02", "id_number": make_id_number("320481", date(2015, 6, 1), 13)},
            "id_birth_date",
            "出生日期与身份证号不一致",
        ),
        ({"father-phone": "12345"}, "id_father-phone", "电话号码格式不正确"),
        ({"note": "很" * 2001}, "id_note", "2000"),
        ({"carer-since": "2999-01-01"}, "id_carer-since", "日期不能晚于今天"),
        ({"father-sit-0-since": "2999-01-01"}, "id_father-sit-0-since", "日期不能晚于今天"),
        ({"mother-id_number": FATHER_ID}, "id_mother-id_number", "性别"),
    ],
    ids=["checksum", "gender", "birth", "phone", "oversized", "future-carer", "future-situation", "mother-male-id"],
)
def test_invalid_registration_shows_the_error_on_its_field_and_writes_nothing(
    client, director, hutang_village, overrides, field_id, fragment
):
    before = counts()
    response = client.post(reverse("registry:child_create"), create_post(hutang_village, **overrides))
    assert response.status_code == 400
    html = response.content.decode()
    assert fragment in error_of(html, field_id)
    assert "有信息需要修改" in html
    assert counts() == before


def error_of(html: str, field_id: str) -> str:
    """The error list shown with a field: between its label and the next field's label."""
    start = html.index(f'for="{field_id}"')
    end = html.find("<label", html.index(f'id="{field_id}"'))
    block = html[start : end if end > 0 else None]
    assert 'class="errorlist"' in block, block
    return block


def test_invalid_registration_keeps_what_was_typed(client, director, hutang_village):
    data = create_post(hutang_village, id_number="123", note="孩子性格开朗，喜欢画画")
    response = client.post(reverse("registry:child_create"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "孩子性格开朗，喜欢画画" in html and "张大山" in html and "张奶奶" in html


def test_duplicate_registration_links_to_the_existing_child(client, director, hutang_village, make_child):
    existing = make_child(hutang_village, name="赵小雨")
    before = counts()
    response = client.post(reverse("registry:child_create"), create_post(hutang_village, id_number=existing.id_number))
    assert response.status_code == 400
    html = response.content.decode()
    assert f'href="{reverse("registry:child_detail", args=[existing.pk])}"' in html
    assert counts() == before


def test_duplicate_registration_out_of_scope_gives_no_hint(client, users, hutang_village, niutang_village, make_child):
    existing = make_child(hutang_village, name="赵小雨")
    client.force_login(users["village_niutang"])
    before = counts()
    response = client.post(
        reverse("registry:child_create"), create_post(niutang_village, id_number=existing.id_number, name="钱小多")
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "该身份证号无法登记" in html
    assert str(existing.pk) not in html and "赵小雨" not in html
    assert counts() == before


def test_script_in_text_is_stored_and_rendered_escaped(client, director, hutang_village):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    data = create_post(hutang_village, note=payload, school_name="<b>小学</b>", **{"father-work_place": payload})
    response = client.post(reverse("registry:child_create"), data)
    assert response.status_code == 302
    child = Child.objects.get(id_number_index=services.child_index(data["id_number"]))
    assert child.note == payload
    html = client.get(reverse("registry:child_detail", args=[child.pk])).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>小学</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    family = client.get(reverse("registry:child_detail", args=[child.pk]) + "?tab=family").content.decode()
    assert "<script>alert" not in family and "&lt;script&gt;" in family


def test_roles_without_edit_cannot_open_the_create_page(client, users):
    for username in ("police", "leader", "education"):
        client.force_login(users[username])
        assert client.get(reverse("registry:child_create")).status_code == 403


# ----- viewing -------------------------------------------------------------------------------


def test_viewing_a_child_is_audited_and_not_cached(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    response = client.get(reverse("registry:child_detail", args=[child.pk]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert child.id_number_masked in html and child.id_number not in html
    [event] = audit(child, "view")
    assert event.actor_name == "village_hutang"


def test_out_of_scope_child_is_404_and_audited(client, users, hutang_village, make_child):
    child = make_child(hutang_village)
    client.force_login(users["village_niutang"])
    for url in (reverse("registry:child_detail", args=[child.pk]), reverse("registry:child_edit", args=[child.pk])):
        assert client.get(url).status_code == 404
    assert client.post(reverse("registry:unmask", args=[child.pk]), {"field": "child.id_number"}).status_code == 404
    assert len(audit(child, "denied")) == 3
    assert not audit(child, "view") and not audit(child, "unmask")


def test_missing_child_is_the_same_404(client, director):
    import uuid

    assert client.get(reverse("registry:child_detail", args=[uuid.uuid4()])).status_code == 404


def test_family_tab_masks_identifiers(client, director, hutang_village):
    data = create_post(hutang_village)
    client.post(reverse("registry:child_create"), data)
    child = Child.objects.get(id_number_index=services.child_index(data["id_number"]))
    html = client.get(reverse("registry:child_detail", args=[child.pk]) + "?tab=family").content.decode()
    assert "138****5678" in html and "13812345678" not in html
    assert FATHER_ID not in html and FATHER_ID[:6] + "********" + FATHER_ID[-4:] in html
    assert "武进区湖塘镇示例村8号" not in html


# ----- unmask -------------------------------------------------------------------------------


def test_unmask_is_a_post_returns_the_value_and_is_audited(client, director, hutang_village):
    data = create_post(hutang_village)
    client.post(reverse("registry:child_create"), data)
    child = Child.objects.get(id_number_index=services.child_index(data["id_number"]))
    url = reverse("registry:unmask", args=[child.pk])
    assert client.get(url, {"field": "child.id_number"}).status_code == 405
    response = client.post(url, {"field": "child.id_number"})
    assert response.status_code == 200 and data["id_number"] in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    father = child.family.get(relation="father")
    response = client.post(url, {"field": "member.phone", "object": str(father.pk)})
    assert "13812345678" in response.content.decode()
    response = client.post(url, {"field": "household.address"})
    assert "武进区湖塘镇示例村8号" in response.content.decode()
    events = audit(child, "unmask")
    assert [e.detail["field"] for e in events] == ["child.id_number", "member.phone", "household.address"]
    assert all(data["id_number"] not in str(e.detail) and "13812345678" not in str(e.detail) for e in events)


def test_unmask_refuses_unknown_fields_and_foreign_objects(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    other = make_child(hutang_village, name="李四")
    member = services.member_create(
        actor=director,
        child=other,
        data={"relation": "father", "name": "李大", "phone": "13800001111", "capacity": "full"},
    )
    url = reverse("registry:unmask", args=[child.pk])
    assert client.post(url, {"field": "name"}).status_code == 400
    assert client.post(url, {"field": "member.phone", "object": "abc"}).status_code == 400
    response = client.post(url, {"field": "member.phone", "object": str(member.pk)})
    assert response.status_code == 404 and "13800001111" not in response.content.decode()
    assert not audit(child, "unmask")


def test_roles_without_unmask_cannot(client, users, hutang_village, make_child):
    child = make_child(hutang_village)
    client.force_login(users["leader"])
    assert client.post(reverse("registry:unmask", args=[child.pk]), {"field": "child.id_number"}).status_code == 403
    assert not audit(child, "unmask")


# ----- editing and optimistic locking --------------------------------------------------------


def test_edit_page_saves_and_records_history(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    url = reverse("registry:child_edit", args=[child.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, child_edit_post(child, school_stage="junior", grade="初一"))
    assert response.status_code == 302
    child.refresh_from_db()
    assert (child.school_stage, child.grade, child.version) == ("junior", "初一", 2)
    assert audit(child, "update")[-1].detail["changes"]["school_stage"] == ["primary", "junior"]


def test_stale_edit_is_409_keeps_the_typed_values_and_changes_nothing(
    client, users, director, hutang_village, make_child
):
    child = make_child(hutang_village)
    url = reverse("registry:child_edit", args=[child.pk])
    first = child_edit_post(child, grade="三年级")
    second = child_edit_post(
        child, note="第二个窗口里输入的很长的备注", school_name="湖塘实验小学"
    )  # both at version 1
    assert client.post(url, first).status_code == 302
    child.refresh_from_db()
    state = (child.grade, child.note, child.school_name, child.version)
    before = counts()
    response = client.post(url, second)
    assert response.status_code == 409
    html = response.content.decode()
    assert "在您编辑期间，该记录已被他人修改" in html
    assert "第二个窗口里输入的很长的备注" in html and 'value="湖塘实验小学"' in html
    assert "在新窗口打开最新记录" in html
    child.refresh_from_db()
    assert (child.grade, child.note, child.school_name, child.version) == state == ("三年级", "", "", 2)
    assert counts() == before


def test_invalid_edit_is_400_and_changes_nothing(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    response = client.post(
        reverse("registry:child_edit", args=[child.pk]), child_edit_post(child, id_number="12345", grade="五年级")
    )
    assert response.status_code == 400
    assert "身份证号应为18位" in response.content.decode()
    child.refresh_from_db()
    assert child.grade == "" and child.version == 1


def household_post(hh: Household, **overrides) -> dict[str, str]:
    data = {
        "address": hh.address,
        "economic_status": hh.economic_status,
        "housing": hh.housing,
        "version": str(hh.version),
    }
    data.update(overrides)
    return data


def test_household_edit_and_stale_household_edit(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    hh = child.household
    url = reverse("registry:household_edit", args=[child.pk])
    assert client.get(url).status_code == 200
    first, second = household_post(hh, economic_status="dibao"), household_post(hh, housing="危房，需要改造")
    assert client.post(url, first).status_code == 302
    before = counts()
    response = client.post(url, second)
    assert response.status_code == 409
    html = response.content.decode()
    assert "该记录已被他人修改" in html and "危房，需要改造" in html
    hh.refresh_from_db()
    assert (hh.economic_status, hh.housing, hh.version) == ("dibao", "", 2)
    assert counts() == before


def member_post(member: FamilyMember, sits: list[dict[str, str]] | None = None, **overrides) -> dict[str, str]:
    data = {
        "relation": member.relation,
        "name": member.name,
        "id_number": member.id_number,
        "birth_date": member.birth_date.isoformat() if member.birth_date else "",
        "phone": member.phone,
        "work_place": member.work_place,
        "is_guardian": "on" if member.is_guardian else "",
        "capacity": member.capacity,
        "version": str(member.version),
    }
    existing = list(member.situations.all())
    data.update(
        {
            "sit-TOTAL_FORMS": str(len(existing) + 1),
            "sit-INITIAL_FORMS": str(len(existing)),
            "sit-MIN_NUM_FORMS": "0",
            "sit-MAX_NUM_FORMS": "8",
        }
    )
    for i, s in enumerate(existing):
        data.update(
            {
                f"sit-{i}-id": str(s.pk),
                f"sit-{i}-member": str(member.pk),
                f"sit-{i}-kind": s.kind,
                f"sit-{i}-since": s.since.isoformat() if s.since else "",
                f"sit-{i}-until": "",
            }
        )
    for j, s in enumerate(sits or []):
        data.update({f"sit-{len(existing) + j}-{k}": v for k, v in s.items()})
    data.update(overrides)
    return data


def test_member_edit_and_stale_member_edit(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    member = services.member_create(
        actor=director,
        child=child,
        data={
            "relation": "father",
            "name": "张大山",
            "id_number": FATHER_ID,
            "phone": "13812345678",
            "capacity": "full",
            "situations": [{"kind": "out_for_work", "since": date(2023, 2, 1)}],
        },
    )
    url = reverse("registry:member_edit", args=[child.pk, member.pk])
    assert client.get(url).status_code == 200
    first = member_post(member, work_place="无锡")
    second = member_post(member, work_place="第二个窗口：南京", phone="13800002222")
    response = client.post(url, first)
    assert response.status_code == 302, response.content.decode()[:3000]
    before = counts()
    response = client.post(url, second)
    assert response.status_code == 409
    html = response.content.decode()
    assert "该记录已被他人修改" in html and "第二个窗口：南京" in html and "13800002222" in html
    member.refresh_from_db()
    assert (member.work_place, member.phone, member.version) == ("无锡", "13812345678", 2)
    assert list(member.situations.values_list("kind", flat=True)) == ["out_for_work"]
    assert counts() == before


def test_member_add_with_a_situation(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    url = reverse("registry:member_create", args=[child.pk])
    data = {
        "relation": "mother",
        "name": "李小芳",
        "id_number": MOTHER_ID,
        "phone": "",
        "capacity": "none",
        "is_guardian": "on",
        "sit-TOTAL_FORMS": "1",
        "sit-INITIAL_FORMS": "0",
        "sit-MIN_NUM_FORMS": "0",
        "sit-MAX_NUM_FORMS": "8",
        "sit-0-kind": "severe_disability",
        "sit-0-since": "2020-01-01",
        "sit-0-disability_grade": "1",
        "sit-0-disability_type": "physical",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    mother = child.family.get()
    assert mother.birth_date == date(1988, 4, 5)
    assert list(mother.situations.values_list("kind", "disability_grade")) == [("severe_disability", 1)]


def test_stale_entrustment_edit(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    ent = services.entrustment_save(
        actor=director,
        child=child,
        entrustment=None,
        version=None,
        data={"carer_name": "张奶奶", "carer_relation": "grandmother_p"},
    )
    url = reverse("registry:entrustment_edit", args=[child.pk, ent.pk])
    base = {"carer_name": "张奶奶", "carer_relation": "grandmother_p", "version": "1"}
    assert client.post(url, {**base, "village_informed": "on"}).status_code == 302
    response = client.post(url, {**base, "carer_phone": "13722223333"})
    assert response.status_code == 409 and "13722223333" in response.content.decode()
    ent.refresh_from_db()
    assert ent.carer_phone == "" and ent.village_informed and ent.version == 2


# ----- exit and re-entry -------------------------------------------------------------------


def test_exit_and_reenter_through_the_pages(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    response = client.post(
        reverse("registry:child_exit", args=[child.pk]),
        {"reason": "moved_away", "exit_date": "2025-09-01", "note": "迁往上海", "version": "1"},
    )
    assert response.status_code == 302
    child.refresh_from_db()
    assert (child.status, child.exit_reason, child.exit_date, child.exit_note) == (
        "exited",
        "moved_away",
        date(2025, 9, 1),
        "迁往上海",
    )
    html = client.get(reverse("registry:child_detail", args=[child.pk])).content.decode()
    assert "已退出台账" in html and "迁出本区" in html and "重新纳入台账" in html
    response = client.post(reverse("registry:child_reenter", args=[child.pk]), {"note": "已返回", "version": "2"})
    assert response.status_code == 302
    child.refresh_from_db()
    assert child.status == "active" and child.exit_date is None and child.version == 3
    assert [e.detail for e in audit(child, "exit")] == [{"reason": "moved_away", "date": "2025-09-01"}]
    assert [e.detail for e in audit(child, "reenter")] == [{"note": "已返回"}]
    history = client.get(reverse("registry:child_detail", args=[child.pk]) + "?tab=history").content.decode()
    assert "台账状态" in history and "退出" in history and "退出原因" in history


def test_exit_in_the_future_or_stale_is_refused(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    future = (timezone.localdate() + timedelta(days=2)).isoformat()
    response = client.post(
        reverse("registry:child_exit", args=[child.pk]),
        {"reason": "other", "exit_date": future, "note": "", "version": "1"},
        follow=True,
    )
    assert "日期不能晚于今天" in response.content.decode()
    response = client.post(
        reverse("registry:child_exit", args=[child.pk]),
        {"reason": "other", "exit_date": "2025-01-01", "note": "", "version": "9"},
        follow=True,
    )
    assert "该记录已被他人修改" in response.content.decode()
    child.refresh_from_db()
    assert child.status == "active" and not audit(child, "exit")


def test_exit_requires_post(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    assert client.get(reverse("registry:child_exit", args=[child.pk])).status_code == 405


# ----- history ---------------------------------------------------------------------------


def test_history_tab_shows_who_when_and_old_to_new_with_masking(client, users, director, hutang_village):
    data = create_post(hutang_village)
    client.post(reverse("registry:child_create"), data)
    child = Child.objects.get(id_number_index=services.child_index(data["id_number"]))
    old_id = child.id_number
    new_id = new_id_number(date(2015, 6, 1))
    client.force_login(users["town_hutang"])
    response = client.post(
        reverse("registry:child_edit", args=[child.pk]), child_edit_post(child, id_number=new_id, grade="五年级")
    )
    assert response.status_code == 302
    father = child.family.get(relation="father")
    services.member_update(actor=users["town_hutang"], member=father, version=1, data={"phone": "13500001111"})
    html = client.get(reverse("registry:child_detail", args=[child.pk]) + "?tab=history").content.decode()
    town_user = str(users["town_hutang"])
    assert town_user in html and str(director) in html
    assert timezone.localtime().strftime("%Y-%m-%d") in html
    # old -> new for a plain field
    assert changed(html, "年级", "四年级", "五年级")
    # ID numbers and phones only masked
    assert old_id not in html and new_id not in html
    assert changed(html, "身份证号", f"{old_id[:6]}********{old_id[-4:]}", f"{new_id[:6]}********{new_id[-4:]}")
    assert "13812345678" not in html and "13500001111" not in html
    assert changed(html, "联系电话", "138****5678", "135****1111")


def changed(html: str, field: str, old: str, new: str) -> bool:
    """One row of the history table: the field, then its old value struck out, then the new one."""
    row = "(?:(?!</tr>).)*?"
    pattern = rf">{re.escape(field)}</th>{row}<del[^>]*>{re.escape(old)}</del>{row}<ins[^>]*>{re.escape(new)}</ins>"
    return re.search(pattern, html, re.S) is not None


# ----- the ledger list -------------------------------------------------------------------


def ledger_ids(client, **params) -> set[str]:  # noqa: ANN001
    response = client.get(reverse("registry:ledger"), params)
    assert response.status_code == 200
    return set(re.findall(r'href="/children/([0-9a-f-]{36})/"', response.content.decode()))


def test_ledger_is_scoped(client, users, hutang_village, niutang_village, make_child):
    mine = make_child(hutang_village)
    theirs = make_child(niutang_village)
    client.force_login(users["village_hutang"])
    ids = ledger_ids(client, status="all")
    assert str(mine.pk) in ids and str(theirs.pk) not in ids
    visible = {
        str(pk)
        for pk in Child.objects.filter(region__code__startswith=hutang_village.code).values_list("pk", flat=True)
    }
    assert ids <= visible


def test_ledger_filters(client, users, hutang_village, make_child):
    today = timezone.localdate()
    client.force_login(users["district"])
    a = make_child(
        hutang_village,
        name="甲一",
        birth=today.replace(year=today.year - 4) - timedelta(days=3),
        school_stage="kindergarten",
        health="disabled",
        disability_type="physical",
        disability_grade=2,
        guardianship_type="none",
    )
    b = make_child(
        hutang_village,
        name="乙二",
        birth=today.replace(year=today.year - 13) - timedelta(days=3),
        school_stage="junior",
        guardianship_type="good",
    )
    c = make_child(hutang_village, name="丙三", birth=date(2015, 3, 8))
    services.child_exit(
        actor=users["district"], child=c, reason="other", exit_date=date(2025, 1, 1), note="", version=1
    )
    region = hutang_village.code
    assert {str(a.pk), str(b.pk)} <= ledger_ids(client, region=region)
    assert str(c.pk) not in ledger_ids(client, region=region)
    assert str(c.pk) in ledger_ids(client, region=region, status="exited")
    assert {str(a.pk), str(b.pk), str(c.pk)} <= ledger_ids(client, region=region, status="all")
    assert str(a.pk) in ledger_ids(client, region=region, age_band="3-5")
    assert str(b.pk) not in ledger_ids(client, region=region, age_band="3-5")
    assert str(b.pk) in ledger_ids(client, region=region, age_band="12-14")
    assert ledger_ids(client, region=region, school_stage="kindergarten") & {str(a.pk), str(b.pk)} == {str(a.pk)}
    assert ledger_ids(client, region=region, health="disabled") & {str(a.pk), str(b.pk)} == {str(a.pk)}
    assert ledger_ids(client, region=region, guardianship_type="good") & {str(a.pk), str(b.pk)} == {str(b.pk)}
    # the town prefix finds the village's children; another town does not
    assert str(a.pk) in ledger_ids(client, region="320412100000")
    assert str(a.pk) not in ledger_ids(client, region="320412102000")


def test_ledger_filter_values_that_mean_nothing_are_ignored(client, users):
    client.force_login(users["district"])
    response = client.get(
        reverse("registry:ledger"),
        {"region": "abc'--", "status": "<x>", "age_band": "9-99", "sort": "password", "page": "-3"},
    )
    assert response.status_code == 200


def test_ledger_paginates(client, users, hutang_village, make_child):
    client.force_login(users["district"])
    total = Child.objects.filter(status="active").count()
    assert total > PAGE_SIZE, "the fixture world should have more than one page"
    first = ledger_ids(client)
    second = ledger_ids(client, page=2)
    assert len(first) == PAGE_SIZE
    assert len(second) == min(PAGE_SIZE, total - PAGE_SIZE)
    assert not first & second
    response = client.get(reverse("registry:ledger"), {"page": 999})
    assert response.status_code == 200  # the last page, not an error


def test_ledger_query_count_is_bounded(client, users, hutang_village, make_child, django_assert_max_num_queries):
    client.force_login(users["district"])
    for i in range(5):
        make_child(hutang_village, name=f"测试{i}号")
    client.get(reverse("registry:ledger"))  # warm caches (session, content types)
    # session, user, MFA device, roles, organisation, its regions, shares, count, region filter, rows,
    # unread notifications (the bell)
    with django_assert_max_num_queries(11):
        response = client.get(reverse("registry:ledger"), {"school_stage": "primary"})
    assert response.status_code == 200
    with django_assert_max_num_queries(11):
        client.get(reverse("registry:ledger"), {"page": 2})


def test_ledger_rows_carry_no_identifiers(client, users, hutang_village, make_child):
    child = make_child(hutang_village)
    client.force_login(users["district"])
    html = client.get(reverse("registry:ledger"), {"status": "all", "region": hutang_village.code}).content.decode()
    assert child.name in html and child.id_number not in html and child.id_number_masked not in html


def test_leader_and_units_see_no_ledger(client, users, hutang_village, make_child):
    child = make_child(hutang_village)
    client.force_login(users["leader"])
    assert client.get(reverse("registry:ledger")).status_code == 403
    assert client.get(reverse("registry:child_detail", args=[child.pk])).status_code == 403
    client.force_login(users["police"])
    assert str(child.pk) not in ledger_ids(client, status="all")
    assert client.get(reverse("registry:child_detail", args=[child.pk])).status_code == 404
