"""In bulk (a survey import, `in_bulk`), a ledger form cleans its fields without bound fields
(`_clean_fields`) and checks the model's fields on the values it cleaned instead of filling in its
instance and running `Model.full_clean` (`_check_model_fields`). These tests hold both equal to
Django's own paths: for every form and every field, a valid record and that record
with the field blank, missing, too long, of the wrong type or out of its choices give the same
errors (field by field, message by message, in order) and the same cleaned values."""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

import pytest
from django import forms

from shouhu.conftest import new_id_number
from shouhu.registry import forms as f

# What a survey row may put in a cell, once read: blank, missing, far too long, of another type,
# no choice of any field, spaces around a value, a date in the future.
BAD_VALUES: list[Any] = ["", None, "长" * 300, "x" * 31, "abc", 12345, "zzz", [], ["zzz"], "  王  ", date(2999, 1, 1)]


def _child(village: Any) -> dict[str, Any]:
    return {
        "name": "周小川",
        "id_number": new_id_number(date(2013, 5, 6)),
        "gender": "",
        "birth_date": None,
        "ethnicity": "汉族",
        "hukou_registered": True,
        "hukou_type": "rural",
        "hukou_place": "武进区湖塘镇",
        "region": village.code,
        "health": "healthy",
        "disability_type": "",
        "disability_grade": "",
        "illness": "",
        "school_stage": "primary",
        "school_name": "湖塘中心小学",
        "grade": "三年级",
        "boarding": False,
        "lives_with_parents": False,
        "guardianship_type": "ordinary",
        "guardianship_assessment": "",
        "note": "",
    }


RECORDS: dict[str, dict[str, Any]] = {
    "household": {
        "address": "湖塘镇人民路1号",
        "economic_status": "ordinary",
        "housing": "自有住房",
        "income_sources": ["farming"],
        "assistance_received": [],
    },
    "member": {
        "relation": "father",
        "name": "周大海",
        "id_number": "",
        "birth_date": date(1985, 3, 8),
        "phone": "13812345678",
        "work_place": "苏州",
        "is_guardian": True,
        "capacity": "full",
    },
    "situation": {
        "kind": "out_for_work",
        "since": date(2020, 1, 1),
        "until": None,
        "note": "",
        "disability_type": "",
        "disability_grade": "",
    },
    "entrustment": {
        "carer_name": "王奶奶",
        "carer_relation": "grandmother_p",
        "carer_id_number": "",
        "carer_phone": "13712345678",
        "carer_birth_date": None,
        "since": date(2020, 1, 1),
        "until": None,
        "agreement_signed": True,
        "agreement_date": date(2020, 1, 1),
        "village_informed": False,
        "school_informed": False,
    },
}


def _new_form(kind: str, actor: Any) -> Any:
    return f.bulk_form(kind, actor)


def _django_paths(form: Any) -> Any:
    """The form validating as Django does it: each field through its bound field, then the
    instance filled in and `Model.full_clean`."""
    form._checks = None
    form._clean_fields = functools.partial(forms.BaseForm._clean_fields, form)
    return form


def _outcome(form: Any) -> tuple:
    try:
        valid = form.is_valid()
    except (AttributeError, TypeError) as exc:  # Django's forms take text: some values break both alike
        return "raised", type(exc).__name__, str(exc)
    errors = [
        (name, [(e.code, str(e.message % e.params if e.params else e.message)) for e in errs])
        for name, errs in form.errors.as_data().items()
    ]
    cleaned = {k: v for k, v in form.cleaned_data.items() if k != "agreement_scan"} if valid else None
    return valid, errors, cleaned


def _cases(base: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    cases = [dict(base)]
    for name in names:
        cases.append({k: v for k, v in base.items() if k != name})  # the field missing
        cases += [{**base, name: bad} for bad in BAD_VALUES]
    return cases


@pytest.mark.parametrize("kind", ["child", "household", "member", "situation", "entrustment"])
def test_bulk_model_checks_equal_djangos_model_validation(db, users, hutang_village, kind):
    actor = users["town_hutang"]
    base = _child(hutang_village) if kind == "child" else RECORDS[kind]
    fast = _new_form(kind, actor)  # reused, rebound per record, as an import does
    assert fast._model_checks(), "the fast path must apply to this form, or the test compares nothing"
    fields = [name for name in fast.fields if name not in ("version", "agreement_scan")]
    cases = _cases(base, fields)
    if kind == "child":  # rules across fields
        cases += [
            {**base, "health": "disabled"},
            {**base, "health": "ill"},
            {**base, "gender": "F" if base["id_number"][16] in "13579" else "M"},
            {**base, "birth_date": date(2013, 5, 7)},
        ]
    differing = []
    invalid = 0
    # Twice, the second time backwards: the second time every value is one the reused form has
    # cleaned before (`_Memo`), after other values, valid and invalid.
    for data in cases + cases[::-1]:
        fast.rebind(data)
        reference = _django_paths(_new_form(kind, actor))
        reference.rebind(data)
        got, expected = _outcome(fast), _outcome(reference)
        invalid += not expected[0]
        if got != expected:
            differing.append((data, got, expected))
    assert not differing, differing[:3]
    assert invalid > 2 * len(fields), (invalid, len(fields))  # the corpus reaches the rules, not only valid rows
    assert _outcome(fast.rebind(base))[0], _outcome(fast)  # and the valid record still is


def test_a_reused_form_cleans_a_value_once_per_field(db, monkeypatch):
    """What a value cleans to is kept per field (`_Memo`): cleaned once, then taken from the memo;
    a value that fails is cleaned every time (its errors are Django's), and so is a date typed as
    text, which Django reads in the active language's formats."""
    calls: list[Any] = []
    original = forms.DateField.clean

    def counting(self: forms.DateField, value: Any) -> Any:
        calls.append(value)
        return original(self, value)

    monkeypatch.setattr(forms.DateField, "clean", counting)
    form = f.bulk_form("situation", None)
    for _ in range(3):
        assert _outcome(form.rebind({**RECORDS["situation"], "since": date(2020, 1, 1)}))[0]
    assert calls.count(date(2020, 1, 1)) == 1, calls
    for _ in range(2):
        assert not _outcome(form.rebind({**RECORDS["situation"], "since": date(2999, 1, 1)}))[0]
    assert calls.count(date(2999, 1, 1)) == 1, calls  # the field's clean passes it; the form's clean() refuses it
    for _ in range(2):
        assert not _outcome(form.rebind({**RECORDS["situation"], "since": "abc"}))[0]
        assert _outcome(form.rebind({**RECORDS["situation"], "since": "2020-01-01"}))[0]
    assert calls.count("abc") == 2 and calls.count("2020-01-01") == 2, calls


def test_a_memo_keeps_at_most_its_limit_and_only_scalars():
    memo = f._Memo()
    for i in range(f._Memo.LIMIT + 10):
        memo.put(f._memo_key(str(i)), str(i))
    assert len(memo) == f._Memo.LIMIT
    other = f._Memo()
    other.put(f._memo_key("a"), ["a"])  # a list could be changed by whoever got it: not kept
    assert not other
    assert f._memo_key(True) != f._memo_key(1) and f._memo_key([1]) is None
    assert f._memo_key("2020-01-01", texts=False) is None and f._memo_key("", texts=False) == ""


class _LooserSituationForm(f.SituationForm):
    """The ledger's forms refuse every value their models would (the model's checks find nothing
    more today): a form looser than its model shows the model's checks still run, and report as
    Django does."""

    note = forms.CharField(max_length=1000, required=False)  # the model's is 200
    kind = forms.CharField(max_length=100)  # the model's has choices


def test_a_form_looser_than_its_model_gets_the_models_errors_in_bulk(db):
    fast, reference = _LooserSituationForm(), _LooserSituationForm()
    fast.in_bulk = reference.in_bulk = True
    _django_paths(reference)
    for data in (
        {**RECORDS["situation"], "note": "长" * 300},
        {**RECORDS["situation"], "kind": "no_such_kind", "note": "长" * 300},
        RECORDS["situation"],
    ):
        got, expected = _outcome(fast.rebind(data)), _outcome(reference.rebind(data))
        assert got == expected, (got, expected)
        if data is not RECORDS["situation"]:
            assert not got[0] and {name for name, _messages in got[1]} >= {"note"}, got


def test_one_day_holds_the_date_for_the_records_validated_within_it(monkeypatch):
    days = iter([date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)])
    monkeypatch.setattr(f.timezone, "localdate", lambda: next(days))
    with f.one_day() as day:
        assert day == date(2026, 11, 28)
        with f.one_day() as inner:  # a row's own one_day inside its batch's
            assert inner == day
        assert [f.today(), f.today()] == [day, day]  # midnight passed: the batch keeps its day
    assert f.today() == date(2026, 11, 29)  # outside it, the date as it is


@pytest.mark.parametrize("kind", ["child", "household", "member", "situation", "entrustment"])
def test_a_field_read_as_data_get_is_one_its_widget_reads_so(db, users, kind):  # noqa: ANN001
    """`_clean_fields` reads a value with `data.get(name)` where the plan has no reader: for each
    field, on data with the value, without it and with a list, that is what its widget gives."""
    form = f.bulk_form(kind, users["district"])
    form.rebind({})
    form.is_valid()  # builds the plan
    plain = 0
    for name, field, _bound, read, html_name, _clean, _memo in form._clean_plan:
        for data in ({html_name: "x"}, {}, {html_name: ["a", "b"]}, {html_name: ""}):
            widget_reads = field.widget.value_from_datadict(data, {}, html_name)
            if read is None:
                assert widget_reads == data.get(html_name), (kind, name, data)
            else:
                assert read(data, {}, html_name) == widget_reads
        plain += read is None
    assert plain > 0
