"""Synthetic demo data for a realistic Wujin: villages, organisations, accounts and children.

Everything here is invented. Villages are flagged `is_synthetic` and named as examples; ID
numbers are valid in form (checksum, a Wujin birth place of the birth year) but belong to
nobody. Only demo mode may create the demo accounts (`DEMO_PASSWORD`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from faker import Faker

from shouhu.lib.crypto import blind_index
from shouhu.lib.idnumber import make_id_number
from shouhu.lib.text import pinyin_keys
from shouhu.org.catalogue import DISTRICT, WUJIN_TOWNS
from shouhu.org.models import Organization, OrgKind, Region, RegionLevel, Role, User, UserRole

DEMO_PASSWORD = "Shouhu@2026"  # demo mode only; printed in the README

VILLAGE_STEMS = [
    "东庄",
    "西塘",
    "南桥",
    "北港",
    "前巷",
    "后圩",
    "新安",
    "大墅",
    "小河",
    "杨桥",
    "湖滨",
    "庙桥",
    "塘洋",
    "夏墅",
    "蒋湾",
    "梅林",
    "竹园",
    "高家",
    "陈巷",
    "芦墅",
    "龙潭",
    "凤凰",
    "马杭",
    "卢家",
    "丰北",
    "泰村",
    "王家",
    "石桥",
    "长沟",
    "华渡",
    "永安",
    "兴隆",
    "和平",
    "建东",
    "花园",
    "锦绣",
]


@dataclass
class DemoWorld:
    villages: list[Region] = field(default_factory=list)
    committees: dict[str, Organization] = field(default_factory=dict)


def _village_name(rng: random.Random, used: set[str], town: str, community: bool) -> str:
    for _ in range(100):
        name = rng.choice(VILLAGE_STEMS) + ("社区" if community else "村")
        if name not in used:
            used.add(name)
            return name
    return f"{town}示例{len(used)}{'社区' if community else '村'}"


@transaction.atomic
def build_world(*, seed: int, villages_per_town: int = 8) -> DemoWorld:
    """Villages (synthetic) with their committees, police stations, schools and hospitals."""
    rng = random.Random(seed)
    world = DemoWorld()
    district = Region.objects.get(code=DISTRICT[0])
    units = {o.code: o for o in Organization.objects.filter(kind=OrgKind.MEMBER_UNIT)}
    for town_code, town_name, kind in WUJIN_TOWNS:
        town = Region.objects.get(code=town_code)
        used: set[str] = set()
        for i in range(villages_per_town):
            community = kind == "street" or i < 2
            code = f"{town_code[:9]}{(i + 1) if community else 200 + i:03d}"
            village, _ = Region.objects.get_or_create(
                code=code,
                defaults={
                    "name": _village_name(rng, used, town_name, community),
                    "level": RegionLevel.VILLAGE,
                    "kind": "community" if community else "village",
                    "parent": town,
                    "is_synthetic": True,
                },
            )
            world.villages.append(village)
            suffix = "居民委员会" if village.kind == "community" else "村民委员会"
            committee, _ = Organization.objects.get_or_create(
                kind=OrgKind.VILLAGE_COMMITTEE, name=f"{town_name}{village.name}{suffix}"
            )
            committee.regions.set([village])
            world.committees[code] = committee
        short = town_name.removesuffix("街道").removesuffix("镇")
        for name, kind_, parent in (
            (f"{short}派出所", OrgKind.POLICE_STATION, units["public_security"]),
            (f"{short}中心小学", OrgKind.SCHOOL, units["education"]),
            (f"{short}初级中学", OrgKind.SCHOOL, units["education"]),
            (f"{short}社区卫生服务中心", OrgKind.HOSPITAL, units["health"]),
        ):
            org, _ = Organization.objects.get_or_create(kind=kind_, name=name, defaults={"parent": parent})
            org.regions.set([town])
    hospital, _ = Organization.objects.get_or_create(
        kind=OrgKind.HOSPITAL, name="武进人民医院（示例）", defaults={"parent": units["health"]}
    )
    hospital.regions.set([district])
    social, _ = Organization.objects.get_or_create(kind=OrgKind.SOCIAL_WORK, name="武进区阳光社会工作服务中心（示例）")
    social.regions.set([district])
    return world


# (username, full name, organisation finder, roles)
DEMO_ACCOUNTS: list[tuple[str, str, str, list[str]]] = [
    ("admin", "系统管理员（演示）", "unit:civil_affairs", [Role.SYSTEM_ADMIN]),
    ("security", "安全管理员（演示）", "unit:civil_affairs", [Role.SECURITY_ADMIN]),
    ("auditor", "审计管理员（演示）", "unit:civil_affairs", [Role.AUDIT_ADMIN]),
    ("district", "区民政局儿童福利科（演示）", "unit:civil_affairs", [Role.DISTRICT_OFFICER]),
    ("leader", "区领导（演示）", "unit:comprehensive_governance", [Role.LEADER]),
    ("town_hutang", "湖塘镇儿童督导员（演示）", "town:320412100000", [Role.TOWN_SUPERVISOR]),
    ("town_niutang", "牛塘镇儿童督导员（演示）", "town:320412102000", [Role.TOWN_SUPERVISOR]),
    ("village_hutang", "湖塘镇儿童主任（演示）", "village:320412100", [Role.VILLAGE_DIRECTOR]),
    ("village_niutang", "牛塘镇儿童主任（演示）", "village:320412102", [Role.VILLAGE_DIRECTOR]),
    ("police", "区公安分局（演示）", "unit:public_security", [Role.UNIT_STAFF, Role.POLICE]),
    ("police_hutang", "湖塘派出所（演示）", "org:湖塘派出所", [Role.UNIT_STAFF, Role.POLICE]),
    ("education", "区教育局（演示）", "unit:education", [Role.UNIT_STAFF]),
    ("school_hutang", "湖塘中心小学（演示）", "org:湖塘中心小学", [Role.REPORTER, Role.UNIT_STAFF]),
    ("procurator", "区检察院（演示）", "unit:procuratorate", [Role.PROCURATOR]),
    ("social_worker", "阳光社工（演示）", "org:武进区阳光社会工作服务中心（示例）", [Role.PROVIDER]),
]


def _find_org(spec: str) -> Organization:
    kind, _, key = spec.partition(":")
    if kind == "unit":
        return Organization.objects.get(code=key)
    if kind == "town":
        return Organization.objects.get(kind=OrgKind.TOWN_GOVERNMENT, regions__code=key)
    if kind == "village":
        village = (
            Organization.objects.filter(kind=OrgKind.VILLAGE_COMMITTEE, regions__code__startswith=key)
            .order_by("regions__code")
            .first()
        )
        if village is None:
            raise Organization.DoesNotExist(f"no village committee under {key}")
        return village
    return Organization.objects.get(name=key)


@transaction.atomic
def create_demo_accounts() -> list[User]:
    password = make_password(DEMO_PASSWORD)
    users = []
    for username, full_name, org_spec, roles in DEMO_ACCOUNTS:
        user, _ = User.objects.update_or_create(
            username=username,
            defaults={
                "full_name": full_name,
                "organization": _find_org(org_spec),
                "is_demo": True,
                "is_active": True,
                "password": password,
            },
        )
        UserRole.objects.filter(user=user).exclude(role__in=roles).delete()
        for role in roles:
            UserRole.objects.get_or_create(user=user, role=role)
        users.append(user)
    return users


# ----- children -----------------------------------------------------------------------------

SCENARIOS = [  # (weight, name)
    (34, "both_out"),
    (8, "one_out_other_ill"),
    (3, "father_prison"),
    (5, "lost_contact"),
    (2, "orphan"),
    (2, "one_dead_other_prison"),
    (46, "ordinary"),
]


@dataclass
class ChildRows:
    household: dict[str, Any]
    child: dict[str, Any]
    members: list[dict[str, Any]]
    entrustment: dict[str, Any] | None


def _birth(rng: random.Random, today: date) -> date:
    return today - timedelta(days=rng.randint(30, 18 * 365 - 20))


def _school(rng: random.Random, age: int) -> tuple[str, str]:
    if age < 3:
        return "not_enrolled", ""
    if age < 6:
        return "kindergarten", ""
    if age < 12:
        return "primary", f"{age - 5}年级"
    if age < 15:
        return ("dropped_out", "") if rng.random() < 0.01 else ("junior", f"初{age - 11}")
    roll = rng.random()
    if roll < 0.03:
        return "dropped_out", ""
    if roll < 0.35:
        return "vocational", ""
    return "senior", f"高{min(age - 14, 3)}"


def _wujin_place(birth: date) -> str:
    """Wujin's birth-place code in the year of birth (GB/T 2260 history, as python-stdnum checks it):
    武进县 of 镇江地区 to 1983, 武进县 of 常州 to 1995, 武进市 to 2002, then 武进区."""
    if birth.year < 1983:
        return "322622"
    if birth.year < 1995:
        return "320421"
    if birth.year < 2002:
        return "320483"
    return "320412"


def generate_children(*, n: int, seed: int, villages: list[Region], today: date) -> Iterator[ChildRows]:
    """Plain dicts for `n` children (deterministic for a seed); no database access."""
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    weights = [w for w, _ in SCENARIOS]
    names = [s for _, s in SCENARIOS]
    used_ids: set[str] = set()
    cities = ["苏州", "上海", "无锡", "南京", "杭州", "深圳", "宁波", "广州", "常州市区"]
    for _ in range(n):
        village = rng.choice(villages)
        birth = _birth(rng, today)
        while True:
            seq = rng.randint(0, 999)
            id_number = make_id_number("320412", birth, seq)
            if id_number not in used_ids:
                used_ids.add(id_number)
                break
        gender = "M" if seq % 2 else "F"
        surname = fake.last_name()
        given = fake.first_name_male() if gender == "M" else fake.first_name_female()
        age = (today - birth).days // 365
        stage, grade = _school(rng, age)
        scenario = rng.choices(names, weights)[0]
        economic = rng.choices(["ordinary", "dibao", "tekun", "dibao_edge"], [82, 10, 2, 6])[0]
        disabled = rng.random() < 0.05
        child = {
            "name": surname + given,
            "id_number": id_number,
            "gender": gender,
            "birth_date": birth,
            "hukou_type": "rural" if village.kind == "village" or rng.random() < 0.4 else "urban",
            "hukou_place": "江苏省常州市武进区",
            "region_id": village.code,
            "school_stage": stage,
            "school_name": "",
            "grade": grade,
            "boarding": stage in {"junior", "senior"} and rng.random() < 0.2,
            "health": "disabled" if disabled else ("ill" if rng.random() < 0.03 else "healthy"),
            "disability_type": rng.choice(["physical", "intellectual", "hearing", "visual", "mental"])
            if disabled
            else "",
            "disability_grade": rng.randint(1, 4) if disabled else None,
            "lives_with_parents": scenario == "ordinary",
            "guardianship_type": "ordinary",
        }
        if child["health"] == "ill":
            child["illness"] = rng.choice(["白血病", "先天性心脏病", "肾病综合征", "1型糖尿病"])
        father_birth = birth - timedelta(days=rng.randint(23 * 365, 42 * 365))
        mother_birth = birth - timedelta(days=rng.randint(21 * 365, 38 * 365))
        father: dict[str, Any] = {
            "relation": "father",
            "name": surname + fake.first_name_male(),
            "birth_date": father_birth,
            "id_number": make_id_number(_wujin_place(father_birth), father_birth, rng.randrange(1, 999, 2)),
            "phone": f"1{rng.choice('3578')}{rng.randint(100000000, 999999999)}",
            "is_guardian": True,
            "capacity": "full",
            "work_place": "",
            "situations": [],
        }
        mother: dict[str, Any] = {
            "relation": "mother",
            "name": fake.last_name() + fake.first_name_female(),
            "birth_date": mother_birth,
            "id_number": make_id_number(_wujin_place(mother_birth), mother_birth, rng.randrange(0, 998, 2)),
            "phone": f"1{rng.choice('3578')}{rng.randint(100000000, 999999999)}",
            "is_guardian": True,
            "capacity": "full",
            "work_place": "",
            "situations": [],
        }

        def since(min_days: int = 30, max_days: int = 2000) -> date:
            return today - timedelta(days=rng.randint(min_days, max_days))

        entrustment = None
        if scenario in {"both_out", "one_out_other_ill"}:
            father["work_place"] = rng.choice(cities)
            father["situations"].append({"kind": "out_for_work", "since": since()})
            if scenario == "both_out":
                mother["work_place"] = rng.choice(cities)
                mother["situations"].append({"kind": "out_for_work", "since": since()})
            else:
                kind = rng.choice(["serious_illness", "severe_disability"])
                mother["capacity"] = "none"
                mother["situations"].append(
                    {
                        "kind": kind,
                        "since": since(),
                        "disability_grade": rng.randint(1, 2) if kind == "severe_disability" else None,
                        "disability_type": "physical" if kind == "severe_disability" else "",
                    }
                )
            if scenario == "both_out" and rng.random() < 0.85:
                carer_birth = birth - timedelta(days=rng.randint(45 * 365, 65 * 365))
                entrustment = {
                    "carer_name": surname + fake.first_name_male() if rng.random() < 0.5 else fake.name(),
                    "carer_relation": rng.choice(["grandfather_p", "grandmother_p", "grandmother_m", "other_relative"]),
                    "carer_birth_date": carer_birth,
                    "carer_phone": f"1{rng.choice('3578')}{rng.randint(100000000, 999999999)}",
                    "since": since(),
                    "agreement_signed": rng.random() < 0.75,
                    "village_informed": rng.random() < 0.8,
                    "school_informed": rng.random() < 0.6,
                }
                if entrustment["agreement_signed"]:
                    entrustment["agreement_date"] = entrustment["since"]
        elif scenario == "father_prison":
            father["situations"].append({"kind": "imprisoned", "since": since(200, 3000)})
            father["capacity"] = "none"
            if rng.random() < 0.5:
                mother["situations"].append({"kind": "lost_contact", "since": since(60, 2000)})
        elif scenario == "lost_contact":
            (father if rng.random() < 0.6 else mother)["situations"].append(
                {"kind": "lost_contact", "since": since(30, 3000)}
            )
        elif scenario == "orphan":
            father["situations"].append({"kind": "deceased", "since": since(100, 4000)})
            mother["situations"].append({"kind": "deceased", "since": since(100, 4000)})
            father["is_guardian"] = mother["is_guardian"] = False
            child["guardianship_type"] = "none"
        elif scenario == "one_dead_other_prison":
            father["situations"].append({"kind": "deceased", "since": since(100, 4000)})
            father["is_guardian"] = False
            mother["situations"].append({"kind": "imprisoned", "since": since(200, 3000)})
            child["guardianship_type"] = "none"
        if scenario in {"both_out"} and entrustment is None:
            child["guardianship_type"] = "none"
        elif scenario == "one_out_other_ill":
            child["guardianship_type"] = "parent_incapable"
        household = {
            "address": f"江苏省常州市武进区{village.parent.name if village.parent else ''}{village.name}{rng.randint(1, 300)}号",
            "economic_status": economic,
            "income_sources": ["migrant_work"] if scenario in {"both_out", "one_out_other_ill"} else ["farming"],
            "assistance_received": ["dibao"] if economic in {"dibao", "tekun"} else [],
        }
        yield ChildRows(household=household, child=child, members=[father, mother], entrustment=entrustment)


def insert_children(rows: list[ChildRows], *, registered_by: User | None = None) -> int:
    """Bulk insert (demo data and benchmarks): the same encryption and indexes as the services."""
    from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation

    with transaction.atomic():
        households = Household.objects.bulk_create(
            [
                Household(
                    address=r.household["address"],
                    economic_status=r.household["economic_status"],
                    income_sources=r.household["income_sources"],
                    assistance_received=r.household["assistance_received"],
                )
                for r in rows
            ]
        )
        children = []
        for r, hh in zip(rows, households, strict=True):
            data = dict(r.child)
            py, initials = pinyin_keys(data["name"])
            children.append(
                Child(
                    household=hh,
                    name_pinyin=py,
                    name_initials=initials,
                    id_number_index=blind_index(data["id_number"], purpose="child_id"),
                    registered_by=registered_by,
                    **data,
                )
            )
        Child.objects.bulk_create(children)
        members, situations = [], []
        for r, child in zip(rows, children, strict=True):
            for m in r.members:
                data = {k: v for k, v in m.items() if k != "situations"}
                member = FamilyMember(
                    child=child, id_number_index=blind_index(data["id_number"], purpose="person_id"), **data
                )
                members.append((member, m["situations"]))
        FamilyMember.objects.bulk_create([m for m, _ in members])
        for member, sits in members:
            for s in sits:
                situations.append(ParentSituation(member=member, **s))
        ParentSituation.objects.bulk_create(situations)
        Entrustment.objects.bulk_create(
            [
                Entrustment(child=child, **r.entrustment)
                for r, child in zip(rows, children, strict=True)
                if r.entrustment
            ]
        )
    return len(children)
