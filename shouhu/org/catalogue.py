"""The duty catalogue: need types, which member unit answers for each, and the regions of Wujin.

`sync_catalogue()` is idempotent and runs after every `migrate` (see apps.py), so a fresh
database always has the 23 member units, their duties from the source document, the need
types routed to them, and the district's towns with their governments.
"""

from __future__ import annotations

import re

from django.db import transaction

from shouhu.org.seed_units import MEMBER_UNITS

# (code, name, description, keywords found in a duty sentence that mean this need type)
NEED_TYPES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("schooling", "就学保障", "入学、在校关爱与全程管理", ("受教育情况", "教育关爱", "入学需求")),
    ("dropout", "控辍保学", "防止辍学、失学", ("控辍保学", "失学")),
    ("education_aid", "教育资助", "免费义务教育与教育资助政策", ("教育资助", "免费义务教育")),
    ("boarding", "寄宿照料", "寄宿制学校管理与照料", ("寄宿制",)),
    ("emergency_response", "应急处置", "接报出警、带离护送、应急处置", ("出警", "应急处置", "带离护送")),
    ("investigation", "调查取证", "调查取证、立案侦查", ("调查取证", "立案侦查")),
    ("medical_treatment", "医疗救治", "接收救治遭受侵害或意外伤害的儿童", ("救治", "协助就医")),
    ("injury_assessment", "伤情鉴定", "伤情鉴定", ("伤情鉴定", "鉴定伤情")),
    ("health_assessment", "身心健康评估", "身心健康状况评估", ("身心健康状况评估",)),
    ("legal_aid", "法律援助", "法律援助和法律服务", ("法律援助",)),
    ("legal_education", "法治宣传", "以案释法、普法、引导父母履行监护责任", ("以案释法", "普法", "法治宣传")),
    ("social_assistance", "社会救助", "纳入社会救助、社会福利政策保障", ("社会救助",)),
    ("placement", "临时安置", "接收安置公安机关护送的儿童、临时监护照料", ("接收安置", "临时监护")),
    ("guardianship_supervision", "监护监督", "监护监督的政策指导与技术支持", ("监护监督",)),
    ("guardianship_appointment", "指定监护人", "为无人监护或遭受监护侵害的儿童指定监护人", ("指定监护人",)),
    ("prosecution", "依法追责", "追究失职父母或侵害人的法律责任", ("法律责任", "惩处")),
    ("housing", "住房保障", "公共租赁住房或租赁补贴", ("住房保障", "公共租赁住房", "租赁补贴")),
    ("rehabilitation", "康复", "残疾儿童康复", ("康复",)),
    ("day_care", "假期日间照料", "假期日间照料", ("日间照料",)),
    ("tutoring", "课后辅导", "课后辅导", ("课后辅导",)),
    ("counselling", "心理疏导", "心理疏导", ("心理疏导",)),
    ("family_education", "家庭教育指导", "对父母、受委托监护人的家庭教育指导", ("家庭教育指导",)),
    ("vocational_training", "职业技能培训", "适龄儿童职业技能培训和职业介绍", ("职业技能培训", "职业介绍")),
    ("volunteer_service", "志愿服务", "志愿者关爱服务", ("志愿服务", "志愿者")),
    ("purchased_services", "政府购买服务", "资金筹措与政府购买服务", ("购买服务", "筹措资金")),
    ("facilities", "设施建设", "临时监护照料场所与设施建设", ("设施建设",)),
    ("family_hardship", "困难帮扶", "对农民工家庭的困难帮扶", ("送温暖", "困难帮扶")),
    ("mandatory_reporting", "强制报告", "强制报告意识与工作", ("强制报告",)),
    ("oversight", "考核督导", "纳入考核，督导与追责", ("考核",)),
]

# Which unit answers for a need type (primary) and which contribute. Data, edited here or in admin.
ROUTES: dict[str, list[str]] = {
    "schooling": ["education"],
    "dropout": ["education"],
    "education_aid": ["education"],
    "boarding": ["education"],
    "emergency_response": ["public_security"],
    "investigation": ["public_security"],
    "medical_treatment": ["health", "public_security"],
    "injury_assessment": ["health", "public_security"],
    "health_assessment": ["health"],
    "legal_aid": ["justice"],
    "legal_education": ["justice", "culture_media"],
    "social_assistance": ["civil_affairs"],
    "placement": ["civil_affairs", "development_reform"],
    "guardianship_supervision": ["civil_affairs"],
    "guardianship_appointment": ["court"],
    "prosecution": ["procuratorate", "court", "public_security"],
    "housing": ["housing"],
    "rehabilitation": ["disabled_federation"],
    "day_care": ["women_federation", "youth_league", "disabled_federation"],
    "tutoring": ["youth_league", "women_federation"],
    "counselling": ["women_federation", "youth_league", "disabled_federation"],
    "family_education": ["women_federation"],
    "vocational_training": ["human_resources"],
    "volunteer_service": ["youth_league"],
    "purchased_services": ["finance", "civil_affairs"],
    "facilities": ["development_reform"],
    "family_hardship": ["trade_union"],
    "mandatory_reporting": ["civil_affairs", "education", "health", "justice", "culture_media"],
    "oversight": ["comprehensive_governance", "civilization_office"],
}

DISTRICT = ("320412000000", "武进区")
CITY = ("320400000000", "常州市")
PROVINCE = ("320000000000", "江苏省")

# Wujin's towns, streets and development zones (NBS 统计用区划代码, cut-off 2022-10-31).
WUJIN_TOWNS: list[tuple[str, str, str]] = [
    ("320412001000", "戚墅堰街道", "street"),
    ("320412002000", "丁堰街道", "street"),
    ("320412003000", "潞城街道", "street"),
    ("320412100000", "湖塘镇", "town"),
    ("320412102000", "牛塘镇", "town"),
    ("320412103000", "洛阳镇", "town"),
    ("320412104000", "遥观镇", "town"),
    ("320412105000", "横林镇", "town"),
    ("320412106000", "横山桥镇", "town"),
    ("320412110000", "雪堰镇", "town"),
    ("320412113000", "前黄镇", "town"),
    ("320412114000", "礼嘉镇", "town"),
    ("320412119000", "嘉泽镇", "town"),
    ("320412120000", "湟里镇", "town"),
    ("320412400000", "武进经济开发区", "development_zone"),
    ("320412411000", "高新区", "development_zone"),
    ("320412412000", "西太湖生态休闲区", "development_zone"),
    ("320412413000", "太湖旅游度假区", "development_zone"),
]

_SENTENCE = re.compile(r"[^。；]+[。；]?")


def split_duties(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(paragraph) if s.strip()]


def town_government_name(town_name: str) -> str:
    if town_name.endswith("街道"):
        return f"{town_name}办事处"
    if town_name.endswith("区"):
        return f"{town_name}管委会"
    return f"{town_name}人民政府"


@transaction.atomic
def sync_regions() -> None:
    from shouhu.org.models import Region, RegionLevel

    province, _ = Region.objects.update_or_create(
        code=PROVINCE[0], defaults={"name": PROVINCE[1], "level": RegionLevel.PROVINCE, "kind": "province"}
    )
    city, _ = Region.objects.update_or_create(
        code=CITY[0], defaults={"name": CITY[1], "level": RegionLevel.CITY, "kind": "city", "parent": province}
    )
    district, _ = Region.objects.update_or_create(
        code=DISTRICT[0],
        defaults={"name": DISTRICT[1], "level": RegionLevel.DISTRICT, "kind": "district", "parent": city},
    )
    for code, name, kind in WUJIN_TOWNS:
        Region.objects.update_or_create(
            code=code, defaults={"name": name, "level": RegionLevel.TOWN, "kind": kind, "parent": district}
        )


@transaction.atomic
def sync_catalogue() -> None:
    """Create or update the member units, need types, routes, duties and town governments."""
    from shouhu.org.models import Duty, NeedRoute, NeedType, Organization, OrgKind, Region

    sync_regions()
    district = Region.objects.get(code=DISTRICT[0])
    units: dict[str, Organization] = {}
    for code, short, full, _paragraph in MEMBER_UNITS:
        unit, _ = Organization.objects.update_or_create(
            code=code, defaults={"name": full, "short_name": short, "kind": OrgKind.MEMBER_UNIT}
        )
        unit.regions.add(district)
        units[code] = unit

    need_types: dict[str, NeedType] = {}
    for code, name, description, _keywords in NEED_TYPES:
        need_types[code], _ = NeedType.objects.update_or_create(
            code=code, defaults={"name": name, "description": description}
        )
    for need_code, unit_codes in ROUTES.items():
        NeedRoute.objects.filter(need_type=need_types[need_code]).exclude(unit__code__in=unit_codes).delete()
        NeedRoute.objects.filter(need_type=need_types[need_code]).update(primary=False)
        for position, unit_code in enumerate(unit_codes):
            NeedRoute.objects.update_or_create(
                need_type=need_types[need_code], unit=units[unit_code], defaults={"primary": position == 0}
            )

    routed: dict[str, set[str]] = {}
    for need_code, unit_codes in ROUTES.items():
        for unit_code in unit_codes:
            routed.setdefault(unit_code, set()).add(need_code)
    keywords = {code: kws for code, _n, _d, kws in NEED_TYPES}
    for code, _short, _full, paragraph in MEMBER_UNITS:
        unit = units[code]
        sentences = split_duties(paragraph)
        Duty.objects.filter(unit=unit, order__gte=len(sentences)).delete()
        for order, sentence in enumerate(sentences):
            duty, _ = Duty.objects.update_or_create(unit=unit, order=order, defaults={"text": sentence})
            matched = [need_types[n] for n in routed.get(code, ()) if any(k in sentence for k in keywords[n])]
            duty.need_types.set(matched)

    for town in Region.objects.filter(parent=district):
        gov, _ = Organization.objects.get_or_create(
            kind=OrgKind.TOWN_GOVERNMENT, name=town_government_name(town.name), defaults={"parent": None}
        )
        gov.regions.set([town])
