"""The REST API: same validation, scope and audit as the pages; bearer tokens or the session."""

from __future__ import annotations

import re
import uuid
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from shouhu.api.models import ApiToken
from shouhu.audit.models import AuditEvent
from shouhu.conftest import new_id_number
from shouhu.lib.idnumber import make_id_number
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation

API = "/api/v1"
CJK = re.compile(r"[\u4e00-\u9fff]")


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Child, Household, FamilyMember, ParentSituation, Entrustment))


def issue(username: str) -> str:
    out = StringIO()
    call_command("issue_token", username, stdout=out)
    return out.getvalue().strip()


class Api:
    """A test client speaking JSON with a bearer token."""

    def __init__(self, client, token: str | None) -> None:  # noqa: ANN001
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict | None = None):  # noqa: ANN201
        response = self.client.get(API + path, params or {}, headers=self.headers)
        assert response.status_code < 500, response.content
        return response

    def post(self, path: str, body: object):  # noqa: ANN201
        response = self.client.post(API + path, body, content_type="application/json", headers=self.headers)
        assert response.status_code < 500, response.content
        return response

    def patch(self, path: str, body: object):  # noqa: ANN201
        response = self.client.patch(API + path, body, content_type="application/json", headers=self.headers)
        assert response.status_code < 500, response.content
        return response


@pytest.fixture
def api_as(db, client):  # noqa: ANN001
    def make(username: str) -> Api:
        return Api(client, issue(username))

    return make


@pytest.fixture
def district(api_as):  # noqa: ANN001
    return api_as("district")


def create_body(region_code: str, **overrides) -> dict:
    body = {
        "name": "陈小龙",
        "id_number": new_id_number(date(2014, 4, 4)),
        "region": region_code,
        "school_stage": "primary",
        "health": "healthy",
        "household": {"address": "武进区湖塘镇示例路3号", "economic_status": "dibao", "income_sources": ["farming"]},
        "family": [
            {
                "relation": "father",
                "name": "陈大龙",
                "id_number": make_id_number("320402", date(1985, 1, 1), 15),
                "phone": "13812340000",
                "is_guardian": True,
                "situations": [{"kind": "out_for_work", "since": "2023-01-01"}],
            },
            {
                "relation": "mother",
                "name": "王小燕",
                "phone": "0519-86123456",
                "situations": [{"kind": "serious_illness", "since": "2022-05-01"}],
            },
        ],
        "entrustment": {"carer_name": "陈爷爷", "carer_relation": "grandfather_p", "carer_birth_date": "1955-01-01"},
    }
    body.update(overrides)
    return body


# ----- authentication ----------------------------------------------------------------------


def test_issue_token_prints_a_token_and_stores_only_its_hash(db, users):
    token = issue("district")
    assert token.startswith("shk_") and len(token) > 40
    row = ApiToken.objects.get(user=users["district"], prefix=token[:12])
    assert token not in row.key_hash
    event = AuditEvent.objects.filter(action="token_issued").latest("seq")
    assert event.detail["for"] == "district" and token not in str(event.detail)


def test_issue_token_for_an_unknown_user_fails(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("issue_token", "nobody", stdout=StringIO())


def test_bearer_token_and_session_both_work(db, client, users, district):
    assert district.get("/children").status_code == 200
    client.force_login(users["district"])
    response = Api(client, None).get("/children")
    assert response.status_code == 200 and response.json()["count"] > 0


@pytest.mark.parametrize("header", ["Bearer shk_not-a-real-token", "Bearer garbage", "Basic abc", ""])
def test_bad_credentials_are_401(db, client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get(f"{API}/children", headers=headers)
    assert response.status_code == 401


def test_revoked_token_and_inactive_user_are_refused(db, client, users):
    token = issue("town_hutang")
    api = Api(client, token)
    assert api.get("/children").status_code == 200
    ApiToken.objects.filter(prefix=token[:12]).update(revoked_at=timezone.now())
    assert api.get("/children").status_code == 401
    token = issue("town_hutang")
    users["town_hutang"].is_active = False
    users["town_hutang"].save(update_fields=["is_active"])
    assert Api(client, token).get("/children").status_code == 401


def test_api_answers_are_not_cached(district):
    assert district.get("/children")["Cache-Control"] == "no-store"


def test_openapi_schema_is_served_to_a_logged_in_user(client, users):
    assert client.get(f"{API}/openapi.json").status_code == 302  # to the login page
    client.force_login(users["district"])
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/children", "/api/v1/children/search", "/api/v1/children/{child_id}"} <= set(paths)
    # The title, summaries and field descriptions are lazy translations, rendered as text.
    assert response.json()["info"]["title"] == "守护 Shouhu API"
    assert paths["/api/v1/children"]["get"]["summary"] == "台账列表（筛选、检索、分页）"
    schemas = response.json()["components"]["schemas"]
    assert schemas["TaskOut"]["properties"]["escalated"]["description"] == "本事项或所涉强制报告已超时升级督办"


# ----- list and search ---------------------------------------------------------------------


def test_list_is_scoped_filtered_and_paginated(api_as, hutang_village, niutang_village, make_child):
    mine = make_child(hutang_village, name="周小舟", school_stage="junior")
    theirs = make_child(niutang_village, name="周小舟")
    api = api_as("village_hutang")
    body = api.get("/children", {"q": "zxz", "status": "all"}).json()
    ids = {item["id"] for item in body["items"]}
    assert str(mine.pk) in ids and str(theirs.pk) not in ids
    assert all(item["region_code"].startswith(hutang_village.code) for item in body["items"])
    item = next(i for i in body["items"] if i["id"] == str(mine.pk))
    assert "id_number" not in item and "id_number_masked" not in item
    assert str(mine.pk) in {
        i["id"] for i in api.get("/children", {"school_stage": "junior", "q": "周"}).json()["items"]
    }
    assert str(mine.pk) not in {
        i["id"] for i in api.get("/children", {"school_stage": "primary", "q": "周"}).json()["items"]
    }
    page1 = api_as("district").get("/children", {"page_size": 7}).json()
    page2 = api_as("district").get("/children", {"page_size": 7, "page": 2}).json()
    assert page1["count"] == page2["count"] > 14
    assert len(page1["items"]) == len(page2["items"]) == 7
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2["items"]}


@pytest.mark.parametrize(
    "q", ["32041220150308123X", "32041220150308123x", "３２０４１２２０１５０３０８１２３Ｘ", "320412150308123"]
)
def test_id_number_in_a_get_query_is_400(district, q):
    response = district.get("/children", {"q": q})
    assert response.status_code == 400
    assert "POST" in response.json()["detail"] and CJK.search(response.json()["detail"])


def test_search_by_id_number_is_a_post_and_audited(district, hutang_village, make_child):
    child = make_child(hutang_village, name="孙小圣")
    response = district.post("/children/search", {"q": child.id_number.lower()})
    assert response.status_code == 200
    assert [i["id"] for i in response.json()["items"]] == [str(child.pk)]
    event = AuditEvent.objects.filter(action="search").latest("seq")
    assert event.detail == {"by": "id_number", "via": "api"}
    response = district.post("/children/search", {"q": "sxs"})
    assert str(child.pk) in {i["id"] for i in response.json()["items"]}


def test_filter_values_are_bounded(district):
    assert district.get("/children", {"page_size": 1000}).status_code == 422
    assert district.get("/children", {"page": 0}).status_code == 422
    assert district.get("/children", {"region": "abc", "status": "whatever", "sort": "x"}).status_code == 200


# ----- detail ----------------------------------------------------------------------------


def test_detail_masks_identifiers_and_is_audited(district, hutang_village, make_child):
    child = make_child(hutang_village)
    response = district.get(f"/children/{child.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id_number_masked"] == child.id_number_masked
    assert child.id_number not in response.content.decode()
    assert "示例路1号" not in response.content.decode()  # the address is not in the API answer
    assert body["version"] == 1
    event = AuditEvent.objects.filter(action="view", object_id=str(child.pk)).latest("seq")
    assert event.detail == {"via": "api"} and event.actor_name == "district"


def test_out_of_scope_or_missing_child_is_404(api_as, hutang_village, make_child):
    child = make_child(hutang_village)
    api = api_as("village_niutang")
    for path in (f"/children/{child.pk}", f"/children/{uuid.uuid4()}"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "未找到该记录。"}
    assert api.patch(f"/children/{child.pk}", {"version": 1, "grade": "x"}).status_code == 404
    assert AuditEvent.objects.filter(action="denied", object_id=str(child.pk)).exists()
    child.refresh_from_db()
    assert child.grade == ""


def test_malformed_id_in_the_path_is_not_a_server_error(district):
    assert district.get("/children/not-a-uuid").status_code in {404, 422}


def test_judicial_situations_are_counted_not_shown_without_clearance(api_as, hutang_village, make_child, users):
    from shouhu.registry import services
    from shouhu.registry.models import ChildShare

    child = make_child(hutang_village)
    services.member_create(
        actor=users["district"],
        child=child,
        data={
            "relation": "father",
            "name": "某某",
            "capacity": "none",
            "situations": [{"kind": "imprisoned", "since": date(2022, 1, 1)}],
        },
    )
    ChildShare.objects.create(child=child, organization=users["police"].organization, reason="测试转介")
    police = api_as("police").get(f"/children/{child.pk}").json()
    [father] = police["family"]
    assert father["situations"] == [] and father["restricted_situations"] == 1
    district = api_as("district").get(f"/children/{child.pk}").json()
    assert district["family"][0]["situations"][0]["kind"] == "imprisoned"


# ----- create ----------------------------------------------------------------------------


def test_create_child_with_family_and_carer(api_as, hutang_village):
    api = api_as("village_hutang")
    body = create_body(hutang_village.code)
    response = api.post("/children", body)
    assert response.status_code == 201, response.json()
    out = response.json()
    child = Child.objects.get(pk=out["id"])
    assert child.id_number == body["id_number"] and child.registered_by.username == "village_hutang"
    assert out["birth_date"] == "2014-04-04" and out["gender"] in {"M", "F"}
    # Fields the client left out take the model's defaults, as on the registration page.
    assert (child.ethnicity, child.hukou_registered, child.hukou_type, child.guardianship_type) == (
        "汉族",
        True,
        "rural",
        "ordinary",
    )
    assert out["household"]["economic_status"] == "dibao"
    assert sorted(m["relation"] for m in out["family"]) == ["father", "mother"]
    father = next(m for m in out["family"] if m["relation"] == "father")
    assert father["phone_masked"] == "138****0000" and father["situations"][0]["kind"] == "out_for_work"
    assert out["entrustments"][0]["carer_name"] == "陈爷爷"
    assert AuditEvent.objects.filter(action="create", object_id=str(child.pk)).count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"id_number": "320412201503081234"}, "id_number", "校验位"),
        ({"id_number": "3204122015030812"}, "id_number", "18位"),
        ({"gender": "F", "id_number": make_id_number("320481", date(2014, 4, 4), 17)}, "gender", "性别"),
        (
            {"birth_date": "2014-04-05", "id_number": make_id_number("320481", date(2014, 4, 4), 19)},
            "birth_date",
            "出生日期",
        ),
        ({"region": "320412102001"}, "region", ""),
        ({"school_stage": "university"}, "school_stage", ""),
        ({"note": "<script>" * 300}, "note", ""),
        ({"name": ""}, "name", ""),
    ],
)
def test_create_invalid_is_422_with_chinese_messages_per_field(api_as, hutang_village, overrides, field, fragment):
    api = api_as("village_hutang")
    before = counts()
    response = api.post("/children", create_body(hutang_village.code, **overrides))
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert field in errors, errors
    assert all(CJK.search(m) for messages in errors.values() for m in messages), errors
    assert fragment in " ".join(errors[field])
    assert CJK.search(response.json()["detail"])
    assert counts() == before


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["family"][0].update(phone="12345"), "family.0.phone"),
        (lambda b: b["family"][1].update(relation="cousin"), "family.1.relation"),
        (lambda b: b["family"][0]["situations"][0].update(since="2999-01-01"), "family.0.situations.0.since"),
        (lambda b: b["entrustment"].update(carer_birth_date="2015-01-01"), "entrustment.carer_birth_date"),
        (lambda b: b["household"].update(income_sources=["lottery"]), "household.income_sources"),
    ],
)
def test_nested_errors_name_their_path(api_as, hutang_village, mutate, field):
    body = create_body(hutang_village.code)
    mutate(body)
    before = counts()
    response = api_as("village_hutang").post("/children", body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert field in errors, errors
    assert all(CJK.search(m) for m in errors[field])
    assert counts() == before


def test_schema_errors_are_422_in_chinese(district):
    response = district.post("/children", {"name": 5, "region": None})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {"id_number", "name", "region", "school_stage"} <= set(errors)
    assert all(CJK.search(m) for ms in errors.values() for m in ms)
    response = district.client.post(
        f"{API}/children", "{not json", content_type="application/json", headers=district.headers
    )
    assert response.status_code in {400, 422}


def test_create_duplicate_is_422_with_link_only_when_visible(api_as, hutang_village, niutang_village, make_child):
    existing = make_child(hutang_village, name="钱多多")
    response = api_as("village_hutang").post(
        "/children", create_body(hutang_village.code, id_number=existing.id_number)
    )
    assert response.status_code == 422 and str(existing.pk) in " ".join(response.json()["errors"]["id_number"])
    response = api_as("village_niutang").post(
        "/children", create_body(niutang_village.code, id_number=existing.id_number)
    )
    assert response.status_code == 422
    message = " ".join(response.json()["errors"]["id_number"])
    assert str(existing.pk) not in message and "钱多多" not in message


def test_adult_is_refused(district, hutang_village):
    response = district.post("/children", create_body(hutang_village.code, id_number=new_id_number(date(2000, 1, 1))))
    assert response.status_code == 422 and "年满18周岁" in " ".join(response.json()["errors"]["id_number"])


# ----- patch -----------------------------------------------------------------------------


def test_patch_updates_and_bumps_the_version(api_as, hutang_village, make_child):
    child = make_child(hutang_village)
    api = api_as("town_hutang")
    response = api.patch(f"/children/{child.pk}", {"version": 1, "school_stage": "junior", "grade": "初一"})
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2 and response.json()["grade"] == "初一"
    child.refresh_from_db()
    assert (child.school_stage, child.grade, child.version, child.name) == ("junior", "初一", 2, "张小明")
    event = AuditEvent.objects.filter(action="update", object_id=str(child.pk)).latest("seq")
    assert event.detail["changes"]["grade"] == ["", "初一"]


def test_patch_of_the_id_number_derives_birth_date_and_gender(district, hutang_village, make_child):
    child = make_child(hutang_village, birth=date(2015, 3, 8))
    corrected = make_id_number("320481", date(2015, 8, 3), 998)  # a typo in the birth digits, and female
    response = district.patch(f"/children/{child.pk}", {"version": 1, "id_number": corrected})
    assert response.status_code == 200, response.json()
    assert (response.json()["birth_date"], response.json()["gender"]) == ("2015-08-03", "F")
    # A birth date the client does send is still cross-checked.
    response = district.patch(
        f"/children/{child.pk}",
        {"version": 2, "id_number": new_id_number(date(2015, 3, 8)), "birth_date": "2015-03-09"},
    )
    assert response.status_code == 422 and "birth_date" in response.json()["errors"]


def test_patch_with_a_stale_version_is_409_and_changes_nothing(district, hutang_village, make_child):
    child = make_child(hutang_village)
    assert district.patch(f"/children/{child.pk}", {"version": 1, "grade": "一年级"}).status_code == 200
    response = district.patch(f"/children/{child.pk}", {"version": 1, "grade": "二年级"})
    assert response.status_code == 409
    body = response.json()
    assert "他人修改" in body["detail"] and body["errors"]["version"] == ["当前版本为 2"]
    child.refresh_from_db()
    assert (child.grade, child.version) == ("一年级", 2)


def test_patch_needs_a_version(district, hutang_village, make_child):
    child = make_child(hutang_village)
    response = district.patch(f"/children/{child.pk}", {"grade": "一年级"})
    assert response.status_code == 422 and "version" in response.json()["errors"]


def test_patch_invalid_is_422_and_changes_nothing(district, hutang_village, make_child):
    child = make_child(hutang_village)
    for body, field in (
        ({"version": 1, "id_number": "123"}, "id_number"),
        ({"version": 1, "birth_date": "2999-01-01"}, "birth_date"),
        ({"version": 1, "health": "disabled"}, "disability_type"),
        ({"version": 1, "name": "<b>x</b>"}, "name"),
    ):
        response = district.patch(f"/children/{child.pk}", body)
        assert response.status_code == 422, body
        assert field in response.json()["errors"]
    child.refresh_from_db()
    assert child.version == 1


def test_patch_to_a_duplicate_id_is_422(district, hutang_village, make_child):
    a, b = make_child(hutang_village), make_child(hutang_village)
    response = district.patch(f"/children/{b.pk}", {"version": 1, "id_number": a.id_number})
    assert response.status_code == 422
    b.refresh_from_db()
    assert b.id_number != a.id_number


def test_shared_child_is_read_only_for_the_share(api_as, users, hutang_village, make_child):
    from shouhu.registry.models import ChildShare

    child = make_child(hutang_village)
    ChildShare.objects.create(child=child, organization=users["village_niutang"].organization, reason="测试")
    api = api_as("village_niutang")
    assert api.get(f"/children/{child.pk}").status_code == 200
    assert api.patch(f"/children/{child.pk}", {"version": 1, "grade": "x"}).status_code == 404
    assert AuditEvent.objects.filter(action="denied", object_id=str(child.pk), actor_name="village_niutang").exists()


# ----- roles -----------------------------------------------------------------------------


def test_leader_gets_403_everywhere(api_as, hutang_village, make_child):
    child = make_child(hutang_village)
    api = api_as("leader")
    assert api.get("/children").status_code == 403
    assert api.post("/children/search", {"q": "张"}).status_code == 403
    assert api.get(f"/children/{child.pk}").status_code == 403
    assert api.post("/children", create_body(hutang_village.code)).status_code == 403
    response = api.patch(f"/children/{child.pk}", {"version": 1, "grade": "x"})
    assert response.status_code == 403 and CJK.search(response.json()["detail"])


def test_unit_staff_see_nothing_unshared_and_cannot_write(api_as, hutang_village, make_child):
    child = make_child(hutang_village)
    api = api_as("police")
    assert api.get("/children", {"status": "all"}).json()["count"] == 0
    assert api.get(f"/children/{child.pk}").status_code == 404
    assert api.post("/children", create_body(hutang_village.code)).status_code == 403
    assert api.patch(f"/children/{child.pk}", {"version": 1, "grade": "x"}).status_code == 403


# ----- what fuzzing found ------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"school_stage": "\x00"},
        {"q": "张\x00"},
        {"health": "a\x00b"},
        {"guardianship_type": "\x00", "gender": "\x00", "age_band": "\x00"},
    ],
)
def test_nul_in_filters_is_not_a_server_error(district, params):
    """PostgreSQL refuses NUL in text; a filter or search term carrying one is just no match."""
    assert district.get("/children", params).status_code == 200


def test_nul_in_a_search_or_a_body_is_not_a_server_error(district, hutang_village):
    assert district.post("/children/search", {"q": "张\x00三"}).status_code == 200
    for overrides in ({"region": "\x00"}, {"name": "张\x00三"}, {"school_stage": "\x00"}):
        response = district.post("/children", create_body(hutang_village.code, **overrides))
        assert response.status_code == 422, overrides


@pytest.mark.parametrize("cookie", ["abc\x00defghijkl", "x" * 5000, "ünïcödé-session-key", "' OR 1=1 --"])
def test_a_malformed_session_cookie_is_no_session(db, client, cookie):
    """Fuzzing sent a NUL byte in the session cookie: on PostgreSQL every page answered 500."""
    client.cookies["sessionid"] = cookie
    assert client.get(f"{API}/children").status_code == 401
    assert client.get("/children/").status_code == 302  # to the login page
    assert client.get("/login/").status_code == 200


def test_a_real_session_still_works_with_the_strict_store(client, users):
    client.force_login(users["district"])
    assert client.get(f"{API}/children").status_code == 200
    assert client.session.session_key.isalnum()


def test_create_and_patch_with_the_session(client, users, hutang_village):
    client.force_login(users["village_hutang"])
    api = Api(client, None)
    response = api.post("/children", create_body(hutang_village.code))
    assert response.status_code == 201, response.json()
    child_id = response.json()["id"]
    response = api.patch(f"/children/{child_id}", {"version": 1, "grade": "二年级"})
    assert response.status_code == 200 and response.json()["version"] == 2
    assert api.patch(f"/children/{child_id}", {"version": 1, "grade": "三年级"}).status_code == 409
    assert api.post("/children/search", {"q": "clx"}).status_code == 200


def test_session_writes_need_the_csrf_token(db, users, hutang_village):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(users["village_hutang"])
    before = counts()
    response = client.post(f"{API}/children", create_body(hutang_village.code), content_type="application/json")
    assert response.status_code == 403
    assert counts() == before
    # A bearer token is not a cookie: no CSRF token needed.
    token = issue("village_hutang")
    response = Client(enforce_csrf_checks=True).post(
        f"{API}/children",
        create_body(hutang_village.code),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
