"""Numbers the texts leave to local practice: versioned settings the district office edits.

`DEFAULTS` ships the values of policy.md, each with its source and whether it is only an example.
The engine takes a `Params` (pure); `shouhu.policy.selectors.params_on(day)` builds it from the
district's saved settings in force on a day.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    key: str
    label: str
    default: Any
    source: str
    example_only: bool = False  # a placeholder the district office must set


SPECS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "orphan_institutional_monthly",
        "集中养育孤儿基本生活费（元/月）",
        Decimal("2410"),
        "淮安市自2019-07-01标准（示例，常州/武进标准未查到，须由区民政局设定）",
        example_only=True,
    ),
    ParamSpec(
        "orphan_scattered_monthly",
        "散居孤儿基本生活费（元/月）",
        Decimal("1620"),
        "淮安市自2019-07-01标准（示例，须由区民政局设定）",
        example_only=True,
    ),
    ParamSpec(
        "jiangsu_class2_ratio",
        "父母监护缺失儿童补贴占散居孤儿标准比例",
        Decimal("0.80"),
        "江苏省困境儿童保障补充意见（2018）：不低于80%",
    ),
    ParamSpec(
        "jiangsu_class3_ratio",
        "父母无力履行监护职责儿童补贴占散居孤儿标准比例",
        Decimal("0.60"),
        "江苏省困境儿童保障补充意见（2018）：不低于60%",
    ),
    ParamSpec(
        "restriction_months", "服刑、强制隔离戒毒、限制人身自由的最短期限（月）", 6, "民发〔2019〕62号：六个月以上"
    ),
    ParamSpec("lost_contact_months", "失联的最短期限（月）", 6, "民发〔2019〕62号：失联六个月以上"),
    ParamSpec(
        "serious_diseases",
        "重病目录",
        (
            "白血病",
            "先天性心脏病",
            "恶性肿瘤",
            "尿毒症",
            "肾病综合征",
            "再生障碍性贫血",
            "血友病",
            "1型糖尿病",
            "重症精神病",
            "苯丙酮尿症",
            "地中海贫血",
            "脑瘫",
        ),
        "地方重特大疾病目录（示例，须由区民政局、卫健委确认）",
        example_only=True,
    ),
    ParamSpec("visit_first_working_days", "纳入台账后首次走访期限（工作日）", 5, "杭州 DB3301/T 0460-2024（参考）"),
    ParamSpec("visit_days_red", "红色（极高风险）走访周期（天）", 7, "本地设定（默认）"),
    ParamSpec("visit_days_orange", "橙色（高风险）走访周期（天）", 14, "本地设定（默认）"),
    ParamSpec("visit_days_left_behind", "留守儿童、事实无人抚养儿童走访周期（天）", 30, "本地设定（默认）"),
    ParamSpec("visit_days_other", "其他困境儿童走访周期（天）", 90, "本地设定（默认）"),
    ParamSpec(
        "report_accept_urgent_minutes", "紧急强制报告：公安受理期限（分钟）", 60, "本地设定（默认，policy.md §4）"
    ),
    ParamSpec(
        "report_accept_hours", "强制报告：公安受理期限（小时）", 24, "高检发〔2020〕9号第八条：立即受理；本地设定"
    ),
    ParamSpec("report_town_notify_hours", "公安处置后通报镇（街道）政府期限（小时）", 24, "国发〔2016〕13号；本地设定"),
    ParamSpec("report_feedback_days", "向报告单位反馈受理情况期限（天）", 3, "未成年人保护法第十一条；本地设定"),
    ParamSpec("report_result_days", "向报告单位反馈处理结果期限（天）", 90, "本地设定（默认三个月）"),
    ParamSpec("report_assessment_working_days", "镇（街道）评估帮扶期限（工作日）", 3, "国发〔2016〕13号；本地设定"),
)
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}


@dataclass(frozen=True)
class Params:
    values: dict[str, Any] = field(default_factory=lambda: {s.key: s.default for s in SPECS})

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None

    def with_values(self, **changes: Any) -> Params:
        unknown = set(changes) - set(SPEC_BY_KEY)
        if unknown:
            raise KeyError(f"unknown policy parameters: {sorted(unknown)}")
        return replace(self, values={**self.values, **changes})


DEFAULT_PARAMS = Params()
