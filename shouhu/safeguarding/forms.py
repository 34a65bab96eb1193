"""Forms of the report pages. They only shape input; the rules live in the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from shouhu.org.models import Region, RegionLevel
from shouhu.registry.forms import ShouhuForm, field_of
from shouhu.safeguarding.models import SHORT, SITUATIONS, Measure, PlacementKind, Sex

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def when_field(label: Any, *, required: bool = False) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label, required=required, input_formats=DATETIME_FORMATS, widget=LocalDateTimeInput()
    )


def now_local() -> str:
    return timezone.localtime().strftime("%Y-%m-%dT%H:%M")


def district_towns() -> Any:
    """The towns (镇/街道) of the district the platform serves."""
    district = Region.objects.filter(level=RegionLevel.DISTRICT).order_by("code").first()
    prefix = district.code[:6] if district else ""
    return Region.objects.filter(level=RegionLevel.TOWN, code__startswith=prefix).order_by("code")


def villages_of(town_code: str) -> Any:
    if len(town_code) != 12 or not town_code.isdigit():
        return Region.objects.none()
    return Region.objects.filter(level=RegionLevel.VILLAGE, code__startswith=town_code[:9]).order_by("code")


class ReportForm(ShouhuForm):
    data: MultiValueDict[str, Any]  # request.POST when bound; the page reads its checked boxes back
    situations = forms.TypedMultipleChoiceField(
        label=gettext_lazy("发现的情形（可多选）"),
        coerce=int,
        choices=[(n, SITUATIONS[n]) for n in SITUATIONS],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("请至少选择一种情形。")},
    )
    danger_now = forms.TypedChoiceField(
        label=gettext_lazy("儿童当前是否处于危险中"),
        coerce=lambda v: v == "yes",
        empty_value=None,
        choices=[("yes", gettext_lazy("是，正处于危险中")), ("no", gettext_lazy("否 / 不确定"))],
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("请选择儿童当前是否处于危险中。")},
    )
    child = forms.UUIDField(required=False, widget=forms.HiddenInput)
    child_name = forms.CharField(
        label=gettext_lazy("儿童姓名"),
        max_length=40,
        required=False,
        help_text=gettext_lazy("不知道可以不填，如“约10岁男孩”写在下面的情况里。"),
    )
    child_sex = forms.ChoiceField(label=gettext_lazy("性别"), choices=Sex.choices, required=False)
    child_age = forms.IntegerField(label=gettext_lazy("大致年龄"), min_value=0, max_value=17, required=False)
    child_id_number = forms.CharField(label=gettext_lazy("身份证号（选填）"), max_length=30, required=False)
    place_town = forms.ChoiceField(label=gettext_lazy("镇（街道）"), choices=())
    place_village = forms.ChoiceField(label=gettext_lazy("村（社区）（选填）"), choices=(), required=False)
    place = forms.CharField(
        label=gettext_lazy("具体地点"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("如：学校门口、某小区3栋")}),
    )
    found_at = when_field(gettext_lazy("发现时间"), required=True)
    description = forms.CharField(
        label=gettext_lazy("看到的情况"),
        max_length=4000,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": gettext_lazy("简要写明看到、听到的情况，不需要调查核实。")}
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        towns = list(district_towns())
        field_of(self, "place_town", forms.ChoiceField).choices = [("", _("请选择镇（街道）"))] + [
            (t.code, t.name) for t in towns
        ]
        town = self.data.get("place_town") if self.is_bound else self.initial.get("place_town")
        field_of(self, "place_village", forms.ChoiceField).choices = [("", _("不确定 / 不选"))] + [
            (v.code, v.name) for v in villages_of(str(town or ""))
        ]
        self.fields["found_at"].widget.attrs["max"] = now_local()
        self.short = SHORT

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        town, village = data.get("place_town"), data.get("place_village")
        region = None
        if village and town and village[:9] == town[:9]:
            region = Region.objects.filter(code=village, level=RegionLevel.VILLAGE).first()
        if region is None and town:
            region = Region.objects.filter(code=town, level=RegionLevel.TOWN).first()
        data["place_region"] = region
        return data

    def report_data(self, child: Any) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "situations": d["situations"],
            "danger_now": d["danger_now"],
            "child": child,
            "child_name": d["child_name"],
            "child_sex": d["child_sex"],
            "child_age": d["child_age"],
            "child_id_number": d["child_id_number"],
            "found_at": d["found_at"],
            "place_region": d["place_region"],
            "place": d["place"],
            "description": d["description"],
        }


class AcceptForm(ShouhuForm):
    officer = forms.CharField(label=gettext_lazy("受理民警"), max_length=40)
    at = when_field(gettext_lazy("受理时间"))


class DispatchForm(ShouhuForm):
    at = when_field(gettext_lazy("出警时间"))


class MeasureForm(ShouhuForm):
    measure = forms.ChoiceField(
        label=gettext_lazy("处置措施"), choices=[("", gettext_lazy("请选择"))] + Measure.choices
    )
    note = forms.CharField(
        label=gettext_lazy("说明"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    at = when_field(gettext_lazy("时间"))


class NoteForm(ShouhuForm):
    note = forms.CharField(
        label=gettext_lazy("说明"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ResultForm(ShouhuForm):
    outcome = forms.CharField(
        label=gettext_lazy("处理结果（将反馈报告单位）"), max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )
    close = forms.BooleanField(label=gettext_lazy("同时办结"), required=False, initial=True)


class AssessForm(ShouhuForm):
    note = forms.CharField(
        label=gettext_lazy("评估帮扶情况（安全、监护、身心健康）"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    child = forms.UUIDField(required=False, widget=forms.HiddenInput)


class HelpForm(ShouhuForm):
    need = forms.ChoiceField(label=gettext_lazy("需要协助的事项"))
    note = forms.CharField(
        label=gettext_lazy("情况说明"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from shouhu.org.models import NeedType
        from shouhu.safeguarding.services import HELP_NEEDS

        names = dict(NeedType.objects.filter(code__in=HELP_NEEDS).values_list("code", "name"))
        field_of(self, "need", forms.ChoiceField).choices = [("", gettext_lazy("请选择"))] + [
            (c, names[c]) for c in HELP_NEEDS if c in names
        ]


class PlacementForm(ShouhuForm):
    kind = forms.ChoiceField(label=gettext_lazy("安置方式"), choices=PlacementKind.choices)
    ground = forms.CharField(label=gettext_lazy("临时监护情形（第九十二条）"), max_length=200)
    where = forms.CharField(label=gettext_lazy("安置地点/照料人"), max_length=200, required=False)
    received_at = when_field(gettext_lazy("接收时间"))


class PlacementEndForm(ShouhuForm):
    note = forms.CharField(label=gettext_lazy("结束说明"), max_length=300)
    ended_at = when_field(gettext_lazy("结束时间"))


class CommendForm(ShouhuForm):
    note = forms.CharField(label=gettext_lazy("表扬奖励说明"), max_length=500)
