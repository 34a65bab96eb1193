"""The one validation path of the ledger (pages and API): every error a Chinese sentence on its field."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from shouhu.conftest import new_id_number
from shouhu.lib.idnumber import make_id_number
from shouhu.registry.forms import (
    ChildForm,
    EntrustmentForm,
    FamilyMemberForm,
    HouseholdForm,
    SituationForm,
)
from shouhu.registry.models import Child

CJK = re.compile(r"[\u4e00-\u9fff]")


def child_post(region, **overrides):  # noqa: ANN001, ANN201
    data = {
        "name": "王小红",
        "id_number": new_id_number(date(2016, 5, 20)),
        "gender": "",
        "birth_date": "",
        "ethnicity": "汉族",
        "hukou_registered": "on",
        "hukou_type": "rural",
        "hukou_place": "",
        "region": region.code,
        "health": "healthy",
        "disability_type": "",
        "disability_grade": "",
        "illness": "",
        "school_stage": "primary",
        "school_name": "",
        "grade": "",
        "guardianship_type": "ordinary",
        "guardianship_assessment": "",
        "note": "",
    }
    data.update(overrides)
    return data


def assert_chinese_errors(form) -> None:  # noqa: ANN001
    for field, errors in form.errors.items():
        for message in errors:
            assert CJK.search(message), f"{field}: {message!r} is not a Chinese sentence"


@pytest.fixture
def director(users):  # noqa: ANN001
    return users["village_hutang"]


def form_for(actor, data, instance=None):  # noqa: ANN001, ANN201
    return ChildForm(data, actor=actor, instance=instance)


def test_valid_id_derives_birth_date_and_gender(db, director, hutang_village):
    id_number = make_id_number("320481", date(2016, 5, 20), 124)
    form = form_for(director, child_post(hutang_village, id_number=id_number))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["birth_date"] == date(2016, 5, 20)
    assert form.cleaned_data["gender"] == "F"
    assert form.cleaned_data["id_number"] == id_number


def test_lower_case_x_is_accepted_and_stored_upper_case(db, director, hutang_village):
    birth = date(2014, 9, 9)
    value = next(v for v in (make_id_number("320481", birth, s) for s in range(1, 999)) if v.endswith("X"))
    form = form_for(director, child_post(hutang_village, id_number=value.lower()))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["id_number"] == value


def test_full_width_digits_are_normalised(db, director, hutang_village):
    value = new_id_number(date(2013, 2, 3))
    full = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)
    assert full.startswith("３２０４")
    form = form_for(director, child_post(hutang_village, id_number=full))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["id_number"] == value


@pytest.mark.parametrize(
    ("make_raw", "fragment"),
    [
        (lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"), "校验位"),
        (lambda v: v[:17], "18位"),
        (lambda v: v[:6] + v[8:17], "15位"),
        (lambda v: v[:10] + "1340" + v[14:], "出生日期"),
        (lambda v: "ABC" + v[3:], "只能包含数字"),
    ],
    ids=["checksum", "17-digits", "15-digits", "impossible-date", "letters"],
)
def test_invalid_id_numbers_are_refused_on_the_field(db, director, hutang_village, make_raw, fragment):
    raw = make_raw(new_id_number(date(2015, 3, 8)))
    form = form_for(director, child_post(hutang_village, id_number=raw))
    assert not form.is_valid()
    assert list(form.errors) == ["id_number"]
    assert fragment in form.errors["id_number"][0]
    assert_chinese_errors(form)


def test_future_birth_date_in_id_is_refused(db, director, hutang_village):
    raw = make_id_number("320481", timezone.localdate() + timedelta(days=30), 11)
    form = form_for(director, child_post(hutang_village, id_number=raw))
    assert not form.is_valid()
    assert "晚于今天" in form.errors["id_number"][0]


def test_typed_future_birth_date_is_refused(db, director, hutang_village):
    form = form_for(
        director, child_post(hutang_village, birth_date=(timezone.localdate() + timedelta(days=3)).isoformat())
    )
    assert not form.is_valid()
    assert any("晚于今天" in e for e in form.errors["birth_date"])
    assert_chinese_errors(form)


def test_typed_birth_date_must_match_the_id(db, director, hutang_village):
    raw = make_id_number("320481", date(2016, 5, 20), 11)
    form = form_for(director, child_post(hutang_village, id_number=raw, birth_date="2016-05-21"))
    assert not form.is_valid()
    assert list(form.errors) == ["birth_date"]
    assert "出生日期与身份证号不一致" in form.errors["birth_date"][0]
    assert "2016-05-20" in form.errors["birth_date"][0]


def test_typed_gender_must_match_the_id(db, director, hutang_village):
    raw = make_id_number("320481", date(2016, 5, 20), 11)  # odd 17th digit: male
    form = form_for(director, child_post(hutang_village, id_number=raw, gender="F"))
    assert not form.is_valid()
    assert list(form.errors) == ["gender"]
    assert "性别与身份证号不一致" in form.errors["gender"][0] and "男" in form.errors["gender"][0]


def test_matching_typed_values_are_accepted(db, director, hutang_village):
    raw = make_id_number("320481", date(2016, 5, 20), 11)
    form = form_for(director, child_post(hutang_village, id_number=raw, gender="M", birth_date="2016-05-20"))
    assert form.is_valid(), form.errors


def _years_ago(years: int, *, days: int = 0) -> date:
    today = timezone.localdate()
    try:
        day = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        day = today.replace(year=today.year - years, day=28)
    return day + timedelta(days=days)


def test_on_the_18th_birthday_a_child_is_still_under_18(db, director, hutang_village):
    form = form_for(director, child_post(hutang_village, id_number=new_id_number(_years_ago(18))))
    assert form.is_valid(), form.errors


def test_the_day_after_the_18th_birthday_registration_is_refused(db, director, hutang_village):
    form = form_for(director, child_post(hutang_village, id_number=new_id_number(_years_ago(18, days=-1))))
    assert not form.is_valid()
    assert "年满18周岁" in form.errors["id_number"][0]


def test_adult_refused_but_an_existing_record_may_still_be_edited(db, director, hutang_village, make_child):
    """Age is checked on registration; a child who has since turned 18 stays editable (for the exit)."""
    child = make_child(hutang_village, birth=_years_ago(18, days=-10))
    data = child_post(hutang_village, id_number=child.id_number, name=child.name, version=str(child.version))
    form = form_for(director, data, instance=child)
    assert form.is_valid(), form.errors


def test_duplicate_id_links_to_the_existing_child_when_visible(db, director, hutang_village, make_child):
    existing = make_child(hutang_village, name="赵小雨")
    form = form_for(director, child_post(hutang_village, id_number=existing.id_number))
    assert not form.is_valid()
    message = form.errors["id_number"][0]
    assert "已登记" in message
    assert f"/children/{existing.pk}/" in message


def test_duplicate_id_gives_no_hint_when_not_visible(db, users, hutang_village, niutang_village, make_child):
    existing = make_child(hutang_village, name="赵小雨")
    form = form_for(users["village_niutang"], child_post(niutang_village, id_number=existing.id_number))
    assert not form.is_valid()
    message = form.errors["id_number"][0]
    assert str(existing.pk) not in message
    assert "赵小雨" not in message and "href" not in message and "湖塘" not in message
    assert_chinese_errors(form)


def test_editing_a_child_does_not_collide_with_itself(db, director, hutang_village, make_child):
    child = make_child(hutang_village)
    form = form_for(director, child_post(hutang_village, id_number=child.id_number, version="1"), instance=child)
    assert form.is_valid(), form.errors


def test_region_outside_the_actor_scope_is_refused(db, director, niutang_village):
    form = form_for(director, child_post(niutang_village))
    assert not form.is_valid()
    assert "region" in form.errors
    assert_chinese_errors(form)


def test_oversized_text_is_refused(db, director, hutang_village):
    form = form_for(director, child_post(hutang_village, note="很" * 2001, school_name="校" * 101, name="张" * 41))
    assert not form.is_valid()
    assert {"note", "school_name", "name"} <= set(form.errors)
    assert_chinese_errors(form)


def test_html_in_text_is_kept_as_text(db, director, hutang_village):
    form = form_for(
        director,
        child_post(hutang_village, note="<script>alert(1)</script>", school_name='<img src=x onerror="alert(1)">'),
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["note"] == "<script>alert(1)</script>"


def test_markup_in_a_name_is_refused(db, director, hutang_village):
    form = form_for(director, child_post(hutang_village, name="<b>张三</b>"))
    assert not form.is_valid()
    assert "特殊符号" in form.errors["name"][0]


def test_disability_needs_type_and_grade(db, director, hutang_village):
    form = form_for(director, child_post(hutang_village, health="disabled"))
    assert not form.is_valid()
    assert set(form.errors) == {"disability_type", "disability_grade"}
    assert_chinese_errors(form)


def test_required_fields_are_named_in_chinese(db, director, hutang_village):
    form = form_for(director, {"name": "", "id_number": "", "region": "", "school_stage": ""})
    assert not form.is_valid()
    assert {"name", "id_number", "region", "school_stage"} <= set(form.errors)
    assert_chinese_errors(form)


def test_invalid_form_writes_nothing(db, director, hutang_village):
    before = Child.objects.count()
    form = form_for(director, child_post(hutang_village, id_number="123"))
    assert not form.is_valid()
    assert Child.objects.count() == before


# ----- family members, situations, carers, households -------------------------------------------


def member_post(**overrides):  # noqa: ANN201
    data = {
        "relation": "father",
        "name": "王大山",
        "id_number": "",
        "birth_date": "",
        "phone": "",
        "work_place": "",
        "is_guardian": "on",
        "capacity": "full",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "phone", ["13812345678", "0519-86123456", "051986123456", "+86 138 1234 5678", "１３８１２３４５６７８"]
)
def test_valid_phones(db, phone):
    form = FamilyMemberForm(member_post(phone=phone))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["phone"].isascii()


@pytest.mark.parametrize("phone", ["12345", "23812345678", "1381234567", "138123456789", "phone", "0519-123"])
def test_invalid_phones(db, phone):
    form = FamilyMemberForm(member_post(phone=phone))
    assert not form.is_valid()
    assert list(form.errors) == ["phone"]
    assert "电话号码格式不正确" in form.errors["phone"][0]


def test_parent_id_must_match_the_relation_gender(db):
    mother_id = make_id_number("320402", date(1988, 1, 1), 12)  # even: female
    form = FamilyMemberForm(member_post(id_number=mother_id))
    assert not form.is_valid()
    assert "性别" in form.errors["id_number"][0]
    form = FamilyMemberForm(member_post(relation="mother", id_number=mother_id))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["birth_date"] == date(1988, 1, 1)


def test_member_future_birth_date_refused(db):
    form = FamilyMemberForm(member_post(birth_date=(timezone.localdate() + timedelta(days=1)).isoformat()))
    assert not form.is_valid()
    assert "晚于今天" in form.errors["birth_date"][0]


def test_situation_dates(db):
    form = SituationForm({"kind": "out_for_work", "since": "2024-05-01", "until": "2024-04-01"})
    assert not form.is_valid()
    assert "早于起始日期" in form.errors["until"][0]
    future = (timezone.localdate() + timedelta(days=5)).isoformat()
    form = SituationForm({"kind": "out_for_work", "since": future})
    assert not form.is_valid()
    assert "晚于今天" in form.errors["since"][0]
    form = SituationForm({"kind": "severe_disability", "since": "2020-01-01"})
    assert not form.is_valid()
    assert "残疾等级" in form.errors["disability_grade"][0]


def test_carer_must_be_an_adult(db):
    young = make_id_number("320481", _years_ago(16), 13)
    form = EntrustmentForm({"carer_name": "王哥哥", "carer_relation": "sibling", "carer_id_number": young})
    assert not form.is_valid()
    assert "年满18周岁" in form.errors["carer_birth_date"][0]


def test_carer_agreement_needs_a_date(db):
    form = EntrustmentForm({"carer_name": "李奶奶", "carer_relation": "grandmother_m", "agreement_signed": "on"})
    assert not form.is_valid()
    assert "签订日期" in form.errors["agreement_date"][0]


def test_carer_phone_validated(db):
    form = EntrustmentForm({"carer_name": "李奶奶", "carer_relation": "grandmother_m", "carer_phone": "110"})
    assert not form.is_valid()
    assert "电话号码格式不正确" in form.errors["carer_phone"][0]


def test_household_address_length(db):
    form = HouseholdForm({"address": "路" * 201, "economic_status": "ordinary"})
    assert not form.is_valid()
    assert "200" in form.errors["address"][0]
    form = HouseholdForm({"address": "  武进区　湖塘镇  ", "economic_status": "dibao", "income_sources": ["farming"]})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["address"] == "武进区 湖塘镇"
