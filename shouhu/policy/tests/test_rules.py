"""Table-driven cases from the texts: each clause of policy.md with a case on each side of it."""

from __future__ import annotations

import pytest

from shouhu.policy.dates import add_months, age_on, is_under, reaches_age_on
from shouhu.policy.engine import evaluate
from shouhu.policy.tests.factories import d, facts, sit

OUT = [sit("out_for_work", "2024-01-01")]


def codes(f):
    return set(evaluate(f).categories)


def near(f, code):
    return next((n for n in evaluate(f).near_misses if n.code == code), None)


# ----- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "on", "years", "under"),
    [
        ("2010-05-10", "2026-05-10", 16, True),  # on the 16th birthday: still 不满十六周岁
        ("2010-05-10", "2026-05-11", 16, False),  # the day after: 16 reached
        ("2008-02-29", "2026-02-28", 18, True),  # 29 February: anniversary on 28 February
        ("2008-02-29", "2026-03-01", 18, False),
    ],
)
def test_age_is_reached_the_day_after_the_birthday(birth, on, years, under):
    assert is_under(d(birth), years, d(on)) is under


def test_age_on_counts_completed_years():
    assert age_on(d("2010-05-10"), d("2026-05-10")) == 15
    assert age_on(d("2010-05-10"), d("2026-05-11")) == 16
    assert reaches_age_on(d("2010-05-10"), 16) == d("2026-05-11")


@pytest.mark.parametrize(
    ("since", "months", "reached"),
    [
        ("2026-03-01", 6, "2026-09-01"),
        ("2026-08-31", 6, "2027-02-28"),  # a day the month lacks becomes its last day
        ("2025-12-15", 6, "2026-06-15"),
    ],
)
def test_months_run_to_the_same_day(since, months, reached):
    assert add_months(d(since), months) == d(reached)


# ----- 农村留守儿童 (国发〔2016〕13号, 民发〔2016〕42号) -----------------------------------


def test_both_parents_out_for_work_is_left_behind():
    result = evaluate(facts("2026-11-28", father=OUT, mother=OUT))
    assert "left_behind" in result.categories
    assert "国发〔2016〕13号" in result.categories["left_behind"].explanation


def test_left_behind_on_the_16th_birthday_but_not_the_day_after():
    assert "left_behind" in codes(facts("2026-03-08", birth="2010-03-08", father=OUT, mother=OUT))
    result = evaluate(facts("2026-03-09", birth="2010-03-08", father=OUT, mother=OUT))
    assert "left_behind" not in result.categories
    assert (
        "已满16周岁" in near(facts("2026-03-09", birth="2010-03-08", father=OUT, mother=OUT), "left_behind").explanation
    )


def test_one_out_and_the_other_incapable_is_left_behind():
    assert "left_behind" in codes(facts("2026-11-28", father=OUT, mother=[sit("serious_illness", "2023-01-01")]))
    assert "left_behind" in codes(
        facts("2026-11-28", father=OUT, mother=[sit("severe_disability", "2023-01-01", grade=1, dtype="physical")])
    )


def test_one_out_and_the_other_at_home_is_not_left_behind():
    f = facts("2026-11-28", father=OUT, mother=[])
    assert "left_behind" not in codes(f)
    assert "母亲在家且有监护能力" in near(f, "left_behind").explanation


def test_urban_household_registration_is_not_rural_left_behind():
    f = facts("2026-11-28", father=OUT, mother=OUT, hukou="urban")
    assert "left_behind" not in codes(f)
    assert "非农业户口" in near(f, "left_behind").explanation


def test_living_with_the_parents_is_not_left_behind():
    assert "left_behind" not in codes(facts("2026-11-28", father=OUT, mother=OUT, lives_with_parents=True))


def test_a_parent_back_home_ends_left_behind():
    f = facts("2026-11-28", father=[sit("out_for_work", "2024-01-01", "2026-10-01")], mother=OUT)
    assert "left_behind" not in codes(f)


# ----- 事实无人抚养儿童 (民发〔2019〕62号, 民发〔2020〕125号) ---------------------------------

PRISON = [sit("imprisoned", "2025-01-01")]


def test_lost_contact_exactly_six_months_qualifies():
    f = facts("2026-09-01", father=PRISON, mother=[sit("lost_contact", "2026-03-01")])
    result = evaluate(f)
    assert "de_facto_unsupported" in result.categories
    text = result.categories["de_facto_unsupported"].explanation
    assert "父亲服刑在押（2025-01-01 起，已满6个月）" in text and "母亲失联（2026-03-01 起，已满6个月）" in text
    assert "民发〔2019〕62号第二条" in text


def test_lost_contact_one_day_short_is_a_near_miss_with_the_date():
    f = facts("2026-08-31", father=PRISON, mother=[sit("lost_contact", "2026-03-01")])
    assert "de_facto_unsupported" not in codes(f)
    miss = near(f, "de_facto_unsupported")
    assert miss.eligible_from == d("2026-09-01")
    assert "母亲失联未满6个月" in miss.explanation and "2026-09-01 期满后可认定" in miss.explanation


def test_one_parent_deceased_and_the_other_imprisoned():
    f = facts("2026-11-28", father=[sit("deceased", "2020-01-01")], mother=[sit("imprisoned", "2026-01-01")])
    assert "de_facto_unsupported" in codes(f)


def test_one_parent_deceased_and_the_other_well_is_not_de_facto():
    f = facts("2026-11-28", father=[sit("deceased", "2020-01-01")], mother=[])
    assert "de_facto_unsupported" not in codes(f)


@pytest.mark.parametrize(("dtype", "given"), [("physical", False), ("intellectual", True), ("mental", True)])
def test_disability_grade_three_counts_only_for_intellectual_or_mental(dtype, given):
    f = facts(
        "2026-11-28",
        father=[sit("deceased", "2020-01-01")],
        mother=[sit("severe_disability", "2020-01-01", grade=3, dtype=dtype)],
    )
    assert ("de_facto_unsupported" in codes(f)) is given


@pytest.mark.parametrize(("grade", "given"), [(2, True), (3, False)])
def test_physical_disability_counts_to_grade_two(grade, given):
    f = facts(
        "2026-11-28",
        father=[sit("deceased", "2020-01-01")],
        mother=[sit("severe_disability", "2020-01-01", grade=grade, dtype="physical")],
    )
    assert ("de_facto_unsupported" in codes(f)) is given


def test_a_sentence_of_six_months_or_more_counts_from_its_start():
    f = facts(
        "2026-11-28", father=[sit("deceased", "2020-01-01")], mother=[sit("imprisoned", "2026-10-01", "2028-10-01")]
    )
    assert "de_facto_unsupported" in codes(f)


def test_a_short_detention_never_counts():
    f = facts(
        "2026-11-28", father=[sit("deceased", "2020-01-01")], mother=[sit("imprisoned", "2026-10-01", "2026-12-31")]
    )
    assert "de_facto_unsupported" not in codes(f)
    miss = near(f, "de_facto_unsupported")
    assert miss is None or miss.eligible_from is None


def test_both_parents_deceased_is_an_orphan_not_de_facto():
    f = facts("2026-11-28", father=[sit("deceased", "2020-01-01")], mother=[sit("declared_missing", "2021-01-01")])
    result = evaluate(f)
    assert "orphan" in result.categories and "de_facto_unsupported" not in result.categories
    assert result.jiangsu_class == 1


@pytest.mark.parametrize(("as_of", "given"), [("2020-06-01", False), ("2022-06-01", True)])
def test_guardianship_revoked_counts_from_the_2020_rules(as_of, given):
    f = facts(
        as_of,
        birth="2012-01-01",
        father=[sit("deceased", "2015-01-01")],
        mother=[sit("guardianship_revoked", "2019-01-01")],
    )
    assert ("de_facto_unsupported" in codes(f)) is given


def test_no_de_facto_rule_before_62hao():
    f = facts(
        "2019-01-01",
        birth="2012-01-01",
        father=[sit("deceased", "2015-01-01")],
        mother=[sit("imprisoned", "2016-01-01")],
    )
    assert "de_facto_unsupported" not in codes(f)
    assert near(f, "de_facto_unsupported") is None


def test_de_facto_ends_at_18_not_on_the_birthday():
    kw = dict(father=[sit("deceased", "2015-01-01")], mother=[sit("imprisoned", "2016-01-01")])
    assert "de_facto_unsupported" in codes(facts("2026-03-08", birth="2008-03-08", **kw))
    assert "de_facto_unsupported" not in codes(facts("2026-03-09", birth="2008-03-08", **kw))


def test_lost_contact_without_a_start_date_is_not_assumed():
    f = facts("2026-11-28", father=PRISON, mother=[sit("lost_contact")])
    assert "de_facto_unsupported" not in codes(f)
    assert near(f, "de_facto_unsupported").eligible_from is None


# ----- 困境儿童 (国发〔2016〕36号) and the Jiangsu six classes ---------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected_class"),
    [
        ({"father": [sit("deceased", "2020-01-01")], "mother": [sit("deceased", "2020-01-01")]}, 1),
        ({"father": [sit("deceased", "2020-01-01")], "mother": [sit("imprisoned", "2024-01-01")]}, 2),
        ({"manual": ("guardianship_missing",)}, 2),
        ({"father": [sit("imprisoned", "2024-01-01")], "mother": []}, 3),
        ({"disability": (1, "physical")}, 4),
        ({"serious_illness": True}, 4),
        ({"street": True}, 4),
        ({"assistance": ("dibao",)}, 5),
        ({"disability": (3, "physical")}, 6),
        ({"manual": ("guardianship_improper",)}, 6),
        ({"father": OUT, "mother": OUT}, None),
        ({}, None),
    ],
)
def test_jiangsu_class(kwargs, expected_class):
    assert evaluate(facts("2026-11-28", **kwargs)).jiangsu_class == expected_class


def test_poverty_and_its_referrals():
    edge = evaluate(facts("2026-11-28", assistance=("dibao_edge",)))
    assert "poverty" in edge.categories
    assert "dibao_referral" in {e.code for e in edge.entitlements}
    dibao = evaluate(facts("2026-11-28", assistance=("dibao",)))
    assert {"housing_guarantee", "education_aid"} <= {e.code for e in dibao.entitlements}


def test_an_adult_is_in_no_category():
    result = evaluate(facts("2026-11-28", birth="2000-01-01", assistance=("dibao",), disability=(1, "physical")))
    assert result.categories == {} and result.jiangsu_class is None


def test_entitlements_name_the_unit_from_the_catalogue():
    from shouhu.org.catalogue import ROUTES

    routes = {need: units[0] for need, units in ROUTES.items()}
    result = evaluate(facts("2026-11-28", disability=(1, "physical"), serious_illness=True, assistance=("dibao",)))
    units = {e["code"]: e["unit"] for e in result.to_json(routes)["entitlements"]}
    assert units["rehabilitation"] == "disabled_federation"
    assert units["medical_assistance"] == "health"
    assert units["housing_guarantee"] == "housing"
    assert units["education_aid"] == "education"
    assert units["home_visits"] == "village_committee"


def test_de_facto_allowance_explains_the_top_up_rule():
    f = facts(
        "2026-11-28",
        father=[sit("deceased", "2020-01-01")],
        mother=[sit("imprisoned", "2024-01-01")],
        assistance=("dibao",),
    )
    allowance = next(e for e in evaluate(f).entitlements if e.code == "de_facto_allowance")
    assert "差额" in allowance.explanation and allowance.amount_monthly is not None
