"""The visit form: few fields to type, most pre-filled; large touch targets on a phone."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shouhu.registry.forms import DateInput, ShouhuForm, _style, field_of
from shouhu.visits.models import CHECKLIST, MET_CHOICES, Rating, RiskLevel, VisitMode

TRI = [("", _("未填")), ("yes", _("是")), ("no", _("否"))]


class VisitForm(ShouhuForm):
    visited_on = forms.DateField(label=_("走访日期"), widget=DateInput)
    mode = forms.ChoiceField(label=_("走访方式"), choices=VisitMode.choices, widget=forms.RadioSelect)
    met = forms.MultipleChoiceField(
        label=_("见到的人"), choices=MET_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    child_lives_alone = forms.ChoiceField(
        label=_("儿童独自居住（身边没有成年人照护）"), choices=TRI, required=False, widget=forms.RadioSelect
    )
    parents_contact_weekly = forms.ChoiceField(
        label=_("父母每周至少与孩子联系一次"), choices=TRI, required=False, widget=forms.RadioSelect
    )
    parents_last_contact = forms.DateField(label=_("父母最近一次联系日期"), required=False, widget=DateInput)
    carer_performance = forms.ChoiceField(
        label=_("照护人履责情况"),
        choices=[("", _("未填"))] + list(Rating.choices),
        required=False,
        widget=forms.RadioSelect,
    )
    guardianship_assessment = forms.ChoiceField(
        label=_("监护状况评价"), choices=Rating.choices, widget=forms.RadioSelect
    )
    notes = forms.CharField(
        label=_("走访情况"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 4})
    )
    location = forms.CharField(label=_("位置（可选，不作考核）"), required=False, max_length=60)
    past_dates = ("visited_on", "parents_last_contact")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, label in CHECKLIST:
            self.fields[f"check_{key}"] = forms.ChoiceField(
                label=label,
                choices=[("ok", _("正常")), ("concern", _("有问题"))],
                initial="ok",
                widget=forms.RadioSelect,
            )
            self.fields[f"note_{key}"] = forms.CharField(label=_("问题说明"), required=False, max_length=200)
        _style(self)  # the checklist fields too (idempotent for the others)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for key, label in CHECKLIST:
            if data.get(f"check_{key}") == "concern" and not (data.get(f"note_{key}") or "").strip():
                self.add_error(f"note_{key}", _("“%(l)s”有问题时，请简要说明。") % {"l": label})
        return data

    def checklist_rows(self) -> list[tuple[Any, Any]]:
        return [(self[f"check_{key}"], self[f"note_{key}"]) for key, _label in CHECKLIST]

    def visit_data(self) -> dict[str, Any]:
        d = self.cleaned_data
        tri = {"yes": True, "no": False}
        contact = tri.get(d.get("parents_contact_weekly") or "")
        return {
            "visited_on": d["visited_on"],
            "mode": d["mode"],
            "met": list(d.get("met") or []),
            # A note belongs to a concern: an item set back to 正常 drops it (a pre-filled one too).
            "checklist": {
                key: {
                    "ok": d.get(f"check_{key}") != "concern",
                    "note": (d.get(f"note_{key}") or "").strip() if d.get(f"check_{key}") == "concern" else "",
                }
                for key, _label in CHECKLIST
            },
            "child_lives_alone": tri.get(d.get("child_lives_alone") or ""),
            "parents_contact_weekly": contact,
            "parents_last_contact": d.get("parents_last_contact"),
            "carer_performance": d.get("carer_performance") or "",
            "guardianship_assessment": d.get("guardianship_assessment") or "",
            "notes": (d.get("notes") or "").strip(),
            "location": (d.get("location") or "").strip(),
        }


def initial_from(last: Any, plan: Any = None) -> dict[str, Any]:
    """Pre-fill from the last visit: the director confirms or changes, does not retype."""
    initial: dict[str, Any] = {"visited_on": timezone.localdate(), "mode": "home"}
    if last is None:
        return initial
    initial.update(
        {
            "mode": last.mode,
            "met": last.met,
            "carer_performance": last.carer_performance,
            "guardianship_assessment": last.guardianship_assessment,
            "parents_contact_weekly": {True: "yes", False: "no"}.get(last.parents_contact_weekly, ""),
            "child_lives_alone": {True: "yes", False: "no"}.get(last.child_lives_alone, ""),
            "parents_last_contact": last.parents_last_contact,
        }
    )
    for key, _label in CHECKLIST:
        item = (last.checklist or {}).get(key) or {}
        initial[f"check_{key}"] = "ok" if item.get("ok", True) else "concern"
        initial[f"note_{key}"] = item.get("note", "")
    return initial


class RiskForm(ShouhuForm):
    level = forms.ChoiceField(label=_("风险等级"), choices=RiskLevel.choices, widget=forms.RadioSelect)
    reason = forms.CharField(label=_("理由"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class ReturnForm(ShouhuForm):
    comment = forms.CharField(label=_("退回意见"), max_length=300)


class HelpForm(ShouhuForm):
    need = forms.ChoiceField(label=_("需要帮助的事项"))
    note = forms.CharField(
        label=_("情况说明"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    # The needs a visit commonly finds, routed by the duty catalogue to their unit.
    NEEDS = (
        "dropout",
        "schooling",
        "medical_treatment",
        "health_assessment",
        "counselling",
        "legal_aid",
        "social_assistance",
        "rehabilitation",
        "family_education",
        "day_care",
        "tutoring",
        "housing",
        "family_hardship",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from shouhu.org.models import NeedType

        names = dict(NeedType.objects.filter(code__in=self.NEEDS).values_list("code", "name"))
        field_of(self, "need", forms.ChoiceField).choices = [("", _("请选择"))] + [
            (c, names[c]) for c in self.NEEDS if c in names
        ]
