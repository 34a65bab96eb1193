"""The risk rule, table-driven: each row sits on one side of a threshold."""

from __future__ import annotations

import pytest

from shouhu.cases import rules

ALL_ONES = dict.fromkeys(rules.DOMAIN_KEYS, 1)


def scores(**changes: int) -> dict[str, int]:
    return {**ALL_ONES, **changes}


@pytest.mark.parametrize(
    ("given", "level"),
    [
        (scores(), "green"),
        (dict.fromkeys(rules.DOMAIN_KEYS, 2), "green"),  # every domain 2: still below every threshold
        (scores(housing=3), "yellow"),  # one non-key 3
        (scores(economic=3, housing=2), "yellow"),
        (scores(safety=3), "orange"),  # a key domain at 3
        (scores(guardianship=3), "orange"),
        (scores(housing=3, economic=3), "orange"),  # two 3s
        (scores(housing=4), "red"),  # any 4
        (scores(safety=4, guardianship=3), "red"),
        (dict.fromkeys(rules.DOMAIN_KEYS, 3), "orange"),  # all 3 but no 4: not red
    ],
)
def test_derive_levels(given, level):
    derived = rules.derive(given)
    assert derived.level == level
    assert derived.reasons and derived.version == rules.RULE_VERSION


def test_reasons_name_the_domains():
    derived = rules.derive(scores(safety=3, housing=3))
    text = "；".join(derived.reasons)
    assert "安全处境" in text and "居住条件" in text and len(derived.reasons) == 2


@pytest.mark.parametrize("bad", [scores(safety=0), scores(safety=5), {"safety": 1}, scores(safety=True)])
def test_invalid_scores_are_refused(bad):
    with pytest.raises(ValueError):
        rules.derive(bad)


def test_service_days_default_and_override(settings):
    assert rules.service_days("no_such_need") == 10
    settings.SHOUHU_CASE_SERVICE_DAYS = {"legal_aid": 3}
    assert rules.service_days("legal_aid") == 3
