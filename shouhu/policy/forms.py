from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from shouhu.policy.models import MANUAL_CODES, EntitlementState
from shouhu.policy.params import SPEC_BY_KEY
from shouhu.policy.rules import CATEGORY_NAMES
from shouhu.registry.forms import DateInput, ShouhuForm


class DecideForm(ShouhuForm):
    decision = forms.ChoiceField(choices=[("confirm", gettext_lazy("确认")), ("reject", gettext_lazy("驳回"))])
    reason = forms.CharField(label=gettext_lazy("理由"), max_length=300, required=False)


class ManualCategoryForm(ShouhuForm):
    code = forms.ChoiceField(label=gettext_lazy("类别"), choices=[(c, CATEGORY_NAMES[c]) for c in MANUAL_CODES])
    on = forms.ChoiceField(
        label=gettext_lazy("操作"), choices=[("1", gettext_lazy("认定")), ("0", gettext_lazy("终止"))]
    )
    reason = forms.CharField(label=gettext_lazy("理由"), max_length=500)


class EntitlementForm(ShouhuForm):
    state = forms.ChoiceField(
        label=gettext_lazy("记录为"),
        choices=[
            (EntitlementState.APPLIED, gettext_lazy("已申请")),
            (EntitlementState.RECEIVING, gettext_lazy("已享受")),
            (EntitlementState.REFUSED, gettext_lazy("不予")),
            (EntitlementState.ENDED, gettext_lazy("已终止")),
        ],
    )
    on = forms.DateField(label=gettext_lazy("日期"), widget=DateInput, required=False)
    amount = forms.DecimalField(
        label=gettext_lazy("金额（元/月）"), max_digits=10, decimal_places=2, required=False, min_value=Decimal("0")
    )
    reason = forms.CharField(label=gettext_lazy("说明或不予理由"), max_length=200, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)
    past_dates = ("on",)


class ParameterForm(ShouhuForm):
    key = forms.ChoiceField(label=gettext_lazy("参数"), choices=[(k, s.label) for k, s in SPEC_BY_KEY.items()])
    value = forms.CharField(
        label=gettext_lazy("取值"),
        max_length=2000,
        help_text=gettext_lazy("金额、比例、天数填数字；重病目录每行一个病种"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    effective_from = forms.DateField(label=gettext_lazy("生效日期"), widget=DateInput)
    source = forms.CharField(label=gettext_lazy("依据（文件号）"), max_length=200)
    note = forms.CharField(label=gettext_lazy("说明"), max_length=200, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        key, raw = data.get("key"), (data.get("value") or "").strip()
        if not key or not raw:
            return data
        default = SPEC_BY_KEY[key].default
        try:
            if isinstance(default, tuple):
                items = [
                    line.strip() for line in raw.replace("，", "\n").replace(",", "\n").splitlines() if line.strip()
                ]
                if not items:
                    raise ValueError
                data["parsed"] = items
            elif isinstance(default, Decimal):
                value = Decimal(raw)
                if value < 0 or (key.endswith("_ratio") and value > 1):
                    raise ValueError
                data["parsed"] = str(value)
            else:
                number = int(raw)
                if number <= 0 or number > 3650:
                    raise ValueError
                data["parsed"] = number
        except (ValueError, ArithmeticError):
            self.add_error(
                "value", _("取值格式不正确：金额、比例填数字（比例在0到1之间），天数、月数填正整数，目录每行一项。")
            )
        effective = data.get("effective_from")
        if effective and effective < timezone.localdate().replace(year=timezone.localdate().year - 10):
            raise ValidationError({"effective_from": [_("生效日期过早。")]})
        return data
