"""Properties of the engine that must hold for any facts (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shouhu.org.catalogue import ROUTES
from shouhu.policy.dates import reaches_age_on
from shouhu.policy.engine import evaluate
from shouhu.policy.facts import SITUATION_KINDS, ChildFacts, Disability, Facts, Parent, Situation

ROUTE_MAP = {need: units[0] for need, units in ROUTES.items()}
dates = st.dates(min_value=date(2005, 1, 1), max_value=date(2030, 12, 31))


ALL_KINDS = st.sampled_from(sorted(SITUATION_KINDS))


@st.composite
def situations(draw, kinds=ALL_KINDS):
    kind = draw(kinds)
    since = draw(st.one_of(st.none(), dates))
    until = draw(st.one_of(st.none(), dates.filter(lambda u: since is None or u >= since)))
    grade = draw(st.one_of(st.none(), st.integers(1, 4))) if kind == "severe_disability" else None
    dtype = draw(st.sampled_from(["", "physical", "intellectual", "mental"])) if kind == "severe_disability" else ""
    return Situation(kind=kind, since=since, until=until, disability_grade=grade, disability_type=dtype)


@st.composite
def all_facts(draw):
    birth = draw(st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 1, 1)))
    as_of = draw(st.dates(min_value=max(birth, date(2016, 3, 1)), max_value=date(2030, 12, 31)))
    child = ChildFacts(
        birth_date=birth,
        hukou_type=draw(st.sampled_from(["rural", "urban"])),
        disability=draw(
            st.one_of(
                st.none(), st.builds(Disability, st.integers(1, 4), st.sampled_from(["physical", "intellectual"]))
            )
        ),
        serious_illness=draw(st.booleans()),
        household_assistance=frozenset(draw(st.lists(st.sampled_from(["dibao", "tekun", "dibao_edge"]), max_size=2))),
        street_child=draw(st.booleans()),
        lives_with_parents=draw(st.booleans()),
        school_stage=draw(st.sampled_from(["primary", "junior", "dropped_out", ""])),
    )
    parents = []
    for role in draw(st.sampled_from([("father", "mother"), ("father",), ("mother",), ()])):
        parents.append(Parent(role, tuple(draw(st.lists(situations(), max_size=3)))))
    return Facts(as_of=as_of, child=child, parents=tuple(parents))


@settings(max_examples=300, deadline=None)
@given(all_facts())
def test_evaluation_is_deterministic(f):
    assert evaluate(f).to_json(ROUTE_MAP) == evaluate(f).to_json(ROUTE_MAP)


@settings(max_examples=300, deadline=None)
@given(all_facts(), st.integers(0, 4000))
def test_moving_past_the_16th_birthday_never_adds_left_behind(f, days):
    later = max(f.as_of, reaches_age_on(f.child.birth_date, 16)) + timedelta(days=days)
    assert "left_behind" not in evaluate(replace(f, as_of=later)).categories


QUALIFYING = [
    "severe_disability",
    "serious_illness",
    "imprisoned",
    "drug_rehab",
    "restricted_liberty",
    "lost_contact",
    "guardianship_revoked",
    "deported",
]


@settings(max_examples=300, deadline=None)
@given(all_facts(), st.sampled_from(["father", "mother"]), situations(kinds=st.sampled_from(QUALIFYING)))
def test_adding_a_qualifying_situation_never_removes_de_facto(f, role, extra):
    if "de_facto_unsupported" not in evaluate(f).categories:
        return
    parents = list(f.parents)
    index = next((i for i, p in enumerate(parents) if p.role == role), None)
    if index is None:
        parents.append(Parent(role, (extra,)))
    else:
        parents[index] = Parent(role, parents[index].situations + (extra,))
    assert "de_facto_unsupported" in evaluate(replace(f, parents=tuple(parents))).categories


@settings(max_examples=300, deadline=None)
@given(all_facts(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_order(f, rnd: random.Random):
    shuffled = [Parent(p.role, tuple(rnd.sample(p.situations, len(p.situations)))) for p in f.parents]
    rnd.shuffle(shuffled)
    assert evaluate(replace(f, parents=tuple(shuffled))).to_json(ROUTE_MAP) == evaluate(f).to_json(ROUTE_MAP)
