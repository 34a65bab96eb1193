from __future__ import annotations

import pytest

from shouhu.cases import services
from shouhu.cases.models import ActionMode
from shouhu.cases.rules import DOMAIN_KEYS


def make_scores(**changes: int) -> dict[str, int]:
    return {**dict.fromkeys(DOMAIN_KEYS, 1), **changes}


_seq = iter(range(1, 999))


@pytest.fixture
def child(db, hutang_village, users):
    """A child registered through the service. Its own identity numbers (born in 钟楼区, 320404):
    the shared `make_child` draws from a session-wide sequence these tests should not use up."""
    from datetime import date

    from shouhu.lib.idnumber import make_id_number, parse_id_number
    from shouhu.registry import services as registry

    id_number = make_id_number("320404", date(2014, 6, 1), next(_seq))
    info = parse_id_number(id_number)
    data = {
        "name": "李小雨",
        "id_number": id_number,
        "gender": info.gender,
        "birth_date": info.birth_date,
        "region": hutang_village,
        "school_stage": "primary",
        "ethnicity": "汉族",
        "hukou_type": "rural",
        "health": "healthy",
        "guardianship_type": "ordinary",
        "school_name": users["school_hutang"].organization.name,
    }
    return registry.child_create(
        actor=users["district"],
        data=data,
        household={"address": "武进区湖塘镇示例路2号", "economic_status": "ordinary"},
    )


@pytest.fixture
def case(users, child):
    return services.case_open(actor=users["town_hutang"], child=child, opened_from="visit", source_ref="v1")


@pytest.fixture
def referred(users, case):
    goal = services.goal_add(actor=users["town_hutang"], case=case, text="返校就读")
    return services.action_add(
        actor=users["town_hutang"],
        goal=goal,
        text="劝返复学",
        mode=ActionMode.REFERRAL,
        need_code="dropout",
        note="已辍学两周",
    )
