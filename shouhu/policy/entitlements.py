"""What a child is owed, given the categories found: pure rules naming a need type.

The unit responsible is the need type's primary unit in the duty catalogue (`routes`, need type
code → unit code), so routing stays data. `village_committee` and `town_government` stand for the
child's own village committee and town government.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from shouhu.policy.facts import Facts
from shouhu.policy.params import Params
from shouhu.policy.rules import CATEGORY_NAMES, Finding

LOCAL_UNITS = {"entrustment": "village_committee", "home_visits": "village_committee"}
SCHOOL_STAGES = {"kindergarten", "primary", "junior", "senior", "vocational"}


@dataclass(frozen=True)
class Entitlement:
    code: str
    name: str
    need_type: str
    explanation: str
    source: str
    amount_monthly: Decimal | None = None


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1"), rounding=ROUND_HALF_UP)


def entitlements_for(
    f: Facts, p: Params, categories: Mapping[str, Finding], jiangsu_class: int | None
) -> list[Entitlement]:
    out: list[Entitlement] = []
    has = categories.__contains__
    assistance = f.child.household_assistance
    scattered = Decimal(p.orphan_scattered_monthly)

    if has("orphan"):
        out.append(
            Entitlement(
                "orphan_allowance",
                "孤儿基本生活费",
                "social_assistance",
                f"孤儿按散居孤儿标准每月 {_money(scattered)} 元发放基本生活费（集中养育的按机构标准）",
                "国办发〔2010〕54号",
                _money(scattered),
            )
        )
        out.append(
            Entitlement(
                "guardianship_appointment",
                "监护人确定或指定",
                "guardianship_appointment",
                "孤儿须有明确的监护人；无人担任时由民政部门担任或申请人民法院指定监护人",
                "民法典第三十一、三十二条；未成年人保护法第九十四条",
            )
        )
    if has("de_facto_unsupported"):
        text = f"事实无人抚养儿童参照孤儿标准，每月 {_money(scattered)} 元"
        if assistance & {"dibao", "tekun"}:
            text += "；已享受低保、特困供养的，只发放与孤儿标准的差额"
        if f.child.disability is not None:
            text += "；已领取残疾人两项补贴的，按规定计算差额"
        out.append(
            Entitlement(
                "de_facto_allowance",
                "事实无人抚养儿童基本生活补贴",
                "social_assistance",
                text + "；经乡镇审核、区民政局确认后次月起发放",
                "民发〔2019〕62号",
                _money(scattered),
            )
        )
    elif jiangsu_class in (2, 3):
        ratio = Decimal(p.jiangsu_class2_ratio if jiangsu_class == 2 else p.jiangsu_class3_ratio)
        out.append(
            Entitlement(
                "jiangsu_allowance",
                "困境儿童基本生活补贴",
                "social_assistance",
                f"江苏第{jiangsu_class}类困境儿童，按不低于散居孤儿标准 {int(ratio * 100)}% 发放，每月 {_money(scattered * ratio)} 元",
                "江苏省困境儿童保障补充意见（2018）",
                _money(scattered * ratio),
            )
        )
    if has("poverty") and "dibao_edge" in assistance and not assistance & {"dibao", "tekun"}:
        out.append(
            Entitlement(
                "dibao_referral",
                "低保或临时救助申请",
                "social_assistance",
                "低保边缘家庭儿童：协助家庭申请低保或临时救助",
                "社会救助暂行办法",
            )
        )
    if has("poverty") and assistance & {"dibao", "tekun"}:
        out.append(
            Entitlement(
                "housing_guarantee",
                "住房保障",
                "housing",
                "低保、特困家庭符合住房保障条件的，纳入公共租赁住房或租赁补贴保障",
                "联席会议职责分工（区住建局）",
            )
        )
    if jiangsu_class is not None and f.child.school_stage in SCHOOL_STAGES:
        out.append(
            Entitlement(
                "education_aid",
                "教育资助",
                "education_aid",
                "困境儿童在校期间落实免费义务教育和教育资助政策，学校全程跟踪",
                "国发〔2016〕36号；联席会议职责分工（区教育局）",
            )
        )
    if f.child.school_stage == "dropped_out" and (jiangsu_class is not None or has("left_behind")):
        out.append(
            Entitlement(
                "dropout_followup",
                "控辍保学",
                "dropout",
                "儿童已辍学：教育部门组织劝返复学，确保不因贫困失学",
                "义务教育法；联席会议职责分工（区教育局）",
            )
        )
    if has("disability"):
        out.append(
            Entitlement(
                "rehabilitation",
                "残疾儿童康复救助",
                "rehabilitation",
                "残疾儿童纳入康复救助，提供康复训练和日间照料",
                "国发〔2016〕36号；联席会议职责分工（区残联）",
            )
        )
        out.append(
            Entitlement(
                "disability_subsidies",
                "残疾人两项补贴",
                "social_assistance",
                "困难残疾人生活补贴、重度残疾人护理补贴（符合条件的）",
                "国发〔2015〕52号",
            )
        )
    if has("serious_illness"):
        out.append(
            Entitlement(
                "medical_assistance",
                "医疗救助",
                "medical_treatment",
                "重病儿童落实基本医疗保险、大病保险和医疗救助",
                "国发〔2016〕36号；联席会议职责分工（区卫健委）",
            )
        )
    if has("guardianship_missing") or has("guardianship_improper"):
        out.append(
            Entitlement(
                "legal_aid",
                "法律援助",
                "legal_aid",
                "监护缺失或监护不当的儿童及其家庭，可获法律援助和法律服务",
                "联席会议职责分工（区司法局）",
            )
        )
    if has("left_behind") or has("guardianship_improper"):
        out.append(
            Entitlement(
                "family_education",
                "家庭教育指导",
                "family_education",
                "对父母和受委托监护人开展家庭教育指导",
                "联席会议职责分工（区妇联）；家庭教育促进法",
            )
        )
    if has("left_behind"):
        out.append(
            Entitlement(
                "day_care",
                "假期日间照料、课后辅导",
                "day_care",
                "依托儿童之家等阵地提供假期日间照料、课后辅导、心理疏导",
                "联席会议职责分工（区妇联、团区委）",
            )
        )
        out.append(
            Entitlement(
                "entrustment",
                "委托监护确认",
                "entrustment",
                "父母外出须委托有监护能力的成年人照护，签订委托监护责任确认书并书面告知村（居）委会和学校",
                "未成年人保护法第二十二、二十三条；江苏省委托监护责任确认书",
            )
        )
    if jiangsu_class is not None and f.child.school_stage in {"dropped_out", "not_in_school"}:
        out.append(
            Entitlement(
                "vocational_training",
                "职业技能培训",
                "vocational_training",
                "适龄困境未成年人可参加职业技能培训和职业介绍",
                "联席会议职责分工（区人社局）",
            )
        )
    if categories:
        names = "、".join(CATEGORY_NAMES[c] for c in categories)
        out.append(
            Entitlement(
                "home_visits",
                "定期走访",
                "home_visits",
                f"{names}纳入儿童主任定期走访，频次按类别和风险等级确定",
                "民发〔2019〕34号",
            )
        )
    return out


def unit_for(entitlement: Entitlement, routes: Mapping[str, str]) -> str:
    return LOCAL_UNITS.get(entitlement.need_type) or routes.get(entitlement.need_type, "civil_affairs")
