"""Compact builders for facts in tests."""

from __future__ import annotations

from datetime import date

from shouhu.policy.facts import ChildFacts, Disability, Facts, Parent, Situation


def d(text: str) -> date:
    return date.fromisoformat(text)


def sit(
    kind: str, since: str | None = None, until: str | None = None, grade: int | None = None, dtype: str = ""
) -> Situation:
    return Situation(
        kind=kind,
        since=d(since) if since else None,
        until=d(until) if until else None,
        disability_grade=grade,
        disability_type=dtype,
    )


def facts(
    as_of: str,
    birth: str = "2015-03-08",
    *,
    father: list[Situation] | None = None,
    mother: list[Situation] | None = None,
    hukou: str = "rural",
    disability: tuple[int, str] | None = None,
    serious_illness: bool = False,
    assistance: tuple[str, ...] = (),
    street: bool = False,
    lives_with_parents: bool = False,
    school_stage: str = "primary",
    manual: tuple[str, ...] = (),
) -> Facts:
    parents = []
    if father is not None:
        parents.append(Parent("father", tuple(father)))
    if mother is not None:
        parents.append(Parent("mother", tuple(mother)))
    return Facts(
        as_of=d(as_of),
        child=ChildFacts(
            birth_date=d(birth),
            hukou_type=hukou,
            disability=Disability(*disability) if disability else None,
            serious_illness=serious_illness,
            household_assistance=frozenset(assistance),
            street_child=street,
            lives_with_parents=lives_with_parents,
            school_stage=school_stage,
            manual_categories=frozenset(manual),
        ),
        parents=tuple(parents),
    )
