from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shouhu.cases.models import ActionMode, ClosureReason, OpenedFrom
from shouhu.cases.rules import DOMAINS, SCALE
from shouhu.registry.forms import DateInput, field_of
from shouhu.visits.models import RiskLevel


class OpenForm(forms.Form):
    opened_from = forms.ChoiceField(label=_("来源"), choices=OpenedFrom.choices, initial=OpenedFrom.BY_HAND)
    source_ref = forms.CharField(label=_("来源编号（可选）"), max_length=64, required=False)


class AssessmentForm(forms.Form):
    override_level = forms.ChoiceField(
        label=_("调整风险等级（可选）"), required=False, choices=[("", _("按规则"))] + list(RiskLevel.choices)
    )
    override_reason = forms.CharField(label=_("调整理由"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, previous: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.domain_rows = []
        for key, label in DOMAINS:
            self.fields[f"score_{key}"] = forms.TypedChoiceField(
                label=label, choices=SCALE, coerce=int, widget=forms.RadioSelect
            )
            self.fields[f"evidence_{key}"] = forms.CharField(
                label=_("依据"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
            )
            before = previous.scores.get(key) if previous is not None else None
            self.domain_rows.append((key, label, before))

    def rows(self) -> list[tuple[Any, ...]]:
        return [
            (label, self[f"score_{key}"], self[f"evidence_{key}"], before) for key, label, before in self.domain_rows
        ]


class GoalForm(forms.Form):
    text = forms.CharField(label=_("目标"), max_length=200)


class ActionForm(forms.Form):
    goal = forms.IntegerField(widget=forms.HiddenInput)
    text = forms.CharField(label=_("措施"), max_length=200)
    mode = forms.ChoiceField(label=_("落实方式"), choices=ActionMode.choices, initial=ActionMode.OWNER)
    need = forms.ChoiceField(label=_("需求类型（转介时）"), required=False, choices=())
    note = forms.CharField(
        label=_("转介说明"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from shouhu.org.models import NeedType

        super().__init__(*args, **kwargs)
        field_of(self, "need", forms.ChoiceField).choices = [("", "—")] + list(
            NeedType.objects.order_by("code").values_list("code", "name")
        )


class ServiceForm(forms.Form):
    kind = forms.CharField(label=_("服务类型"), max_length=60)
    date = forms.DateField(label=_("服务日期"), initial=timezone.localdate, widget=DateInput)
    hours = forms.DecimalField(label=_("时长（小时）"), min_value=0.1, max_digits=5, decimal_places=1)
    provider = forms.CharField(label=_("服务提供方"), max_length=100)
    note = forms.CharField(label=_("服务记录"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReviewForm(forms.Form):
    date = forms.DateField(label=_("回顾日期"), initial=timezone.localdate, widget=DateInput)
    note = forms.CharField(label=_("回顾意见"), widget=forms.Textarea(attrs={"rows": 3}))


class CloseForm(forms.Form):
    reason = forms.ChoiceField(label=_("结案原因"), choices=ClosureReason.choices)
    summary = forms.CharField(label=_("结案小结"), widget=forms.Textarea(attrs={"rows": 3}))
    transfer_to = forms.CharField(label=_("转交的迁入地民政部门（迁出时）"), required=False, max_length=100)


class ReopenForm(forms.Form):
    reason = forms.CharField(label=_("重新开案理由"), max_length=500)


class WorkerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.organization.name} · {obj}"  # workers_available() has only users of an organisation


class WorkerForm(forms.Form):
    worker = WorkerChoiceField(
        label=_("承接社工（政府购买服务的社会工作服务机构）"),
        queryset=None,
        required=False,
        empty_label=_("（不指派）"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from shouhu.cases.services import workers_available

        super().__init__(*args, **kwargs)
        field_of(self, "worker", WorkerChoiceField).queryset = workers_available()
